# frozen_string_literal: true

RSpec.describe "splice_to with threads and fibers" do
  def stalled_pump_in_thread(&on_error)
    src, peer = track(*UNIXSocket.pair)
    dst, = destination(:pipe)
    started = Queue.new
    thread = helper_thread do
      started << true
      src.splice_to(dst) { nil }
    rescue Exception => e # rubocop:disable Lint/RescueException
      on_error&.call(e)
      raise
    end
    started.pop
    sleep 0.1 # let it reach the wait
    [thread, src, peer, dst]
  end

  it "is ended promptly by Thread#raise, leaving the fds usable" do
    require "io/nonblock"
    before = open_fds
    thread, src, peer, = stalled_pump_in_thread
    was_nonblock = src.nonblock?
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    thread.raise(Interrupt, "stop")
    expect { thread.join }.to raise_error(Interrupt, "stop")
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).to be < 2
    expect(src.nonblock?).to eq(was_nonblock)
    peer.write("still works")
    expect(src.readpartial(100)).to eq("still works")
    close_tracked
    expect(open_fds).to be <= before
  end

  it "is ended by Thread#kill" do
    thread, = stalled_pump_in_thread
    thread.kill
    expect(thread.join(2)).to eq(thread)
    expect(thread).not_to be_alive
  end

  it "is ended by Timeout.timeout" do
    src, _peer = track(*tcp_pair)
    dst, = destination(:file)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect { Timeout.timeout(0.2) { src.splice_to(dst) } }.to raise_error(Timeout::Error)
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).to be < 2
  end

  it "is ended by Timeout.timeout while bytes are flowing, not only while waiting" do
    File.open("/dev/zero", "rb") do |zero|
      File.open(File::NULL, "wb") do |null|
        t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        expect { Timeout.timeout(0.3) { zero.splice_to(null, length: 1 << 40) } }.to raise_error(Timeout::Error)
        expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).to be < 3
      end
    end
  end

  it "lets other threads run while a long transfer is in the kernel" do
    ticks = 0
    ticker = helper_thread do
      loop do
        ticks += 1
        Thread.pass
      end
    end
    seen = [] # the ticker's count at each progress report
    File.open("/dev/zero", "rb") do |zero|
      File.open(File::NULL, "wb") do |null|
        expect(zero.splice_to(null, length: 2 << 30) { seen << ticks }).to eq(2 << 30)
      end
    end
    ticker.kill
    expect(seen.size).to be >= 64 # a report every 8 MiB step
    expect(seen.last).to be > seen.first # the ticker ran between the first and the last step
  end

  it "lets other threads run while it waits on a slow peer" do
    src, peer = track(*UNIXSocket.pair)
    dst, received = destination(:pipe)
    ticks = 0
    ticker = helper_thread do
      loop do
        ticks += 1
        sleep 0.001
      end
    end
    feeder = helper_thread do
      10.times do
        sleep 0.02
        peer.write("0123456789")
      end
      peer.close
    end
    expect(src.splice_to(dst, 5)).to eq(100)
    feeder.join
    ticker.kill
    expect(ticks).to be > 20
    expect(received.call).to eq("0123456789" * 10)
  end

  it "gives other fibers a turn during a transfer that never blocks" do
    require "async"
    ticks = 0
    moved = Async do |task|
      ticker = task.async do
        loop do
          ticks += 1
          sleep 0
        end
      end
      begin
        File.open("/dev/zero", "rb") do |zero|
          File.open(File::NULL, "wb") { |null| zero.splice_to(null, length: 512 << 20) }
        end
      ensure
        ticker.stop
      end
    end.wait
    expect(moved).to eq(512 << 20)
    expect(ticks).to be >= 32 # at least one turn per 8 MiB step
  end

  # Falcon's rack.hijack hands out a duplicate socket and keeps its own fd:
  # a registration io-event keeps for the duplicate after the app closed it
  # can never be removed, and the event loop spins on it.
  it "leaves the event loop no registration on a duplicate it waited on and the caller then closed" do
    require "async"
    original, peer = track(*UNIXSocket.pair)
    reader = helper_thread do # slower than the writer, so the transfers wait for room
      got = 0
      loop do
        got += peer.readpartial(64 << 10).bytesize
        sleep 0.001
      end
    rescue IOError # EOFError included
      got
    end
    other, other_peer = track(*UNIXSocket.pair)
    helper_thread { other_peer.read }
    transfers = {
      "splice_to" => ->(dup) { File.open("/dev/zero", "rb") { |zero| zero.splice_to(dup, length: 2 << 20) } },
      "tee" => lambda { |dup|
        r, w = track(*IO.pipe)
        helper_thread { File.open("/dev/zero", "rb") { |zero| zero.splice_to(w, length: 2 << 20) } && w.close }
        Bytepump.tee(r, [other, dup], timeout: 10).bytes_written.min
      },
      "copy (the Ruby path)" => ->(dup) { Bytepump.pump(StringIO.new("x" * (2 << 20)), dup).bytes_written }
    }
    outcomes = transfers.to_h do |name, transfer|
      outcome = Async do
        dup = original.dup
        moved = transfer.call(dup)
        dup.close
        sleep 0.01 # the loop's turns: a registration left on the closed fd goes stale now
        inode = original.stat.ino
        # /proc is read in a thread: async 2.x's io_read hook fails on Ruby 3.1 (no IO#timeout)
        [moved, Thread.new { stale_epoll_registrations.select { |_, ino| ino == inode } }.value]
      end.wait
      [name, outcome]
    end
    expect(outcomes).to eq(transfers.keys.to_h { |name| [name, [2 << 20, []]] })
  ensure
    original&.close
    reader&.join(5)
  end

  it "interleaves two pumps under the async gem's Fiber scheduler" do
    require "async"
    events = []
    pairs = 2.times.map { track(*UNIXSocket.pair) }
    sinks = 2.times.map { destination(:file) }
    counts = Async do |task|
      pumps = pairs.each_with_index.map do |(src, _), i|
        task.async { src.splice_to(sinks[i][0], 5) { |n| events << [i, n] } }
      end
      feeders = pairs.each_with_index.map do |(_, peer), i|
        task.async do
          4.times do |k|
            peer.write("pump#{i}-chunk#{k};")
            sleep 0.01
          end
          peer.close
        end
      end
      feeders.each(&:wait)
      pumps.map(&:wait)
    end.wait
    expect(counts).to eq([52, 52])
    expect(sinks.map { |_, read| read.call }).to eq([0, 1].map { |i| (0..3).map { |k| "pump#{i}-chunk#{k};" }.join })
    order = events.map(&:first)
    expect(order.count(0)).to be >= 2
    expect(order.count(1)).to be >= 2
    expect(order.chunk_while { |a, b| a == b }.count).to be > 2 # interleaved, not one after the other
  end
end

RSpec.describe "splice_to around fork and close" do
  it "keeps a forked child's transfers apart from its parent's (no shared pooled pipe)" do
    data = pattern(4 << 20)
    warm = source(:file, "warm")
    warm.splice_to(track(File.open(File::NULL, "w"))) # leaves a pipe in the pool
    results = 2.times.map do
      r, w = IO.pipe
      pid = fork do
        r.close
        src = source(:file, data)
        dst, received = destination(:tcp)
        src.splice_to(dst)
        w.write(received.call == data ? "ok" : "corrupt")
        exit!(0)
      end
      w.close
      [pid, r]
    end
    src = source(:file, data)
    dst, received = destination(:unix)
    expect(src.splice_to(dst)).to eq(data.bytesize)
    expect(received.call == data).to be(true)
    results.each do |pid, r|
      Process.wait(pid)
      expect(r.read).to eq("ok")
    end
  ensure
    results&.each { |pid, r| stop_child(pid, r) }
  end

  it "raises IOError when another thread closes the IO it waits on" do
    src, _peer = track(*UNIXSocket.pair)
    dst, = destination(:pipe)
    thread = helper_thread { src.splice_to(dst) }
    sleep 0.1
    src.close
    expect { thread.join(5) }.to raise_error(IOError, /closed/)
    expect(dst.write("still usable")).to eq(12)
  end

  it "splices from a Tempfile through its File" do
    tempfile = Tempfile.new("src")
    tempfile.write("from a tempfile")
    tempfile.rewind
    dst, received = destination(:pipe)
    expect(tempfile.splice_to(dst)).to eq(15)
    expect(received.call).to eq("from a tempfile")
  ensure
    tempfile&.close!
  end
end
