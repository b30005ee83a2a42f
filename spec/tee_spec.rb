# frozen_string_literal: true

require "io/nonblock"

# One source into several IOs at once: Bytepump.tee and IO#splice_to([...]).
RSpec.describe "tee fan-out" do
  # A pipe whose far end a helper thread drains: [write end, -> { bytes }].
  def drained_pipe
    r, w = track(*IO.pipe)
    r.binmode
    got = helper_thread { r.read }
    [w, lambda {
      w.close unless w.closed?
      got.value
    }]
  end

  describe "the edge cache: an upstream body to the client and into a cache file at once", :integration do
    before(:all) do
      @nginx = Servers::Nginx.new.start
      @body = Random.new(77).bytes((9 << 20) + 123)
      @nginx.add("object.bin", @body)
    end

    after(:all) { @nginx&.stop }

    it "gives the client and the cache file every byte of a real nginx response" do
      upstream = track(TCPSocket.new("127.0.0.1", @nginx.port))
      upstream.write("GET /object.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      response = upstream.skip_headers
      expect(response.status).to eq(200)
      client, received = drained_pipe
      cache = track(Tempfile.new("bytepump-cache"))
      progress = 0
      counts = upstream.splice_to([client, cache.to_io], 30, length: response.content_length) { |n| progress += n }
      expect(counts).to eq([@body.bytesize, @body.bytesize])
      expect(progress).to eq(@body.bytesize)
      expect(received.call == @body).to be(true)
      expect(File.binread(cache.path) == @body).to be(true)
    end
  end

  it "drops a destination whose reader went away, with its count and errno, and the others get everything" do
    data = pattern(4 << 20)
    src = source(:unix, data)
    first, first_got = drained_pipe
    r, w = track(*IO.pipe)
    gone = helper_thread do
      part = r.readpartial(70_000)
      r.close
      part
    end
    last, last_got = drained_pipe
    result = Bytepump.tee(src, [first, w, last], timeout: 10)
    expect(result.status).to eq(:done)
    expect(result.ok?).to be(false)
    broken = result.destinations[1]
    expect(broken).to have_attributes(io: w, status: :error, errno: Errno::EPIPE::Errno)
    expect(broken.bytes_written).to be >= gone.value.bytesize
    expect(broken.error).to be_a(Errno::EPIPE).and(having_attributes(message: /after #{broken.bytes_written} bytes/))
    expect(first_got.call == data).to be(true)
    expect(last_got.call == data).to be(true)
  end

  it "raises TeeError from splice_to after the others finished, naming what failed" do
    data = pattern(3 << 20)
    src = source(:pipe, data)
    ok, ok_got = drained_pipe
    stuck, _peer = track(*UNIXSocket.pair) # nobody reads
    expect { src.splice_to([stuck, ok], 0.3) }.to raise_error(Bytepump::TeeError) { |e|
      expect(e.message).to match(/\A1 of 2 tee destinations failed: tee: UNIXSocket\(fd \d+\) took nothing for the /)
      expect(e.message).to match(/downstream timeout after \d+ bytes\z/)
      expect(e.result.destinations[0].status).to eq(:timeout_downstream)
      expect(e.result.destinations[1].ok?).to be(true)
    }
    expect(ok_got.call == data).to be(true)
  end

  it "ends at once on Thread#raise while waiting, restoring the blocking mode of every IO and leaking no fd" do
    src, _feeder = track(*UNIXSocket.pair) # sends nothing
    a, = track(*UNIXSocket.pair)
    b, = track(*UNIXSocket.pair)
    [src, a, b].each { |io| io.nonblock = false }
    GC.start # IOs dropped by earlier examples close now, not in the middle of this one
    fds = open_fds - (2 * Bytepump::Native.pool_stats[0])
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    teeing = helper_thread { Bytepump.tee(src, [a, b]) }
    sleep 0.2
    teeing.raise(Interrupt, "stop")
    expect { teeing.join(5) }.to raise_error(Interrupt, "stop")
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 2
    expect([src, a, b].map(&:nonblock?)).to eq([false, false, false])
    expect(open_fds - (2 * Bytepump::Native.pool_stats[0])).to be <= fds
  end

  it "runs under the async gem's Fiber scheduler alongside the fiber that feeds it" do
    require "async"
    src, feeder = track(*UNIXSocket.pair)
    a, a_got = drained_pipe
    b, b_got = drained_pipe
    chunks = Array.new(20) { |i| pattern(50_000, i + 1) }
    counts = Async do |task|
      teeing = task.async { src.splice_to([a, b], 10) }
      task.async do
        chunks.each do |chunk|
          feeder.write(chunk)
          sleep 0.005 # the tee waits through the scheduler meanwhile
        end
        feeder.close
      end
      teeing.wait
    end.wait
    expect(counts).to eq([1_000_000, 1_000_000])
    expect(a_got.call == chunks.join).to be(true)
    expect(b_got.call == chunks.join).to be(true)
  end

  it "takes a Tempfile destination, as splice_to with one destination does, and reports it as given" do
    data = pattern(3 << 20, 5)
    src = source(:unix, data)
    client, received = drained_pipe
    cache = Tempfile.new("bytepump-cache")
    (@tempfiles ||= []) << cache
    expect(src.splice_to([client, cache], 10)).to eq([data.bytesize, data.bytesize])
    expect(received.call == data).to be(true)
    expect(File.binread(cache.path) == data).to be(true)
    result = Bytepump.tee(source(:pipe, "abc"), [cache])
    expect(result.destinations.first.io).to equal(cache)
  end

  # Issue 16 item 2: the fds splice refuses go through read/write, as splice_to's do.
  it "appends to a file opened \"ab\" and reads /proc files and /dev/null, as splice_to does" do
    data = pattern(2 << 20, 6)
    log = Tempfile.new("bytepump-append")
    (@tempfiles ||= []) << log
    log.write("kept\n")
    log.flush
    appended = track(File.open(log.path, "ab"))
    client, received = drained_pipe
    expect(source(:unix, data).splice_to([appended, client], 10)).to eq([data.bytesize, data.bytesize])
    expect(received.call == data).to be(true)
    expect(File.binread(log.path) == "kept\n#{data}").to be(true)

    proc_file = track(File.open("/proc/self/cmdline", "rb"))
    expected = File.binread("/proc/self/cmdline")
    first, got_first = drained_pipe
    second, got_second = drained_pipe
    expect(proc_file.splice_to([first, second], 10)).to eq([expected.bytesize, expected.bytesize])
    expect([got_first.call, got_second.call]).to eq([expected, expected])

    null = track(File.open(File::NULL, "rb"))
    third, got_third = drained_pipe
    fourth, got_fourth = drained_pipe
    expect(null.splice_to([third, fourth], 10)).to eq([0, 0])
    expect([got_third.call, got_fourth.call]).to eq(["", ""])
  end

  it "refuses what it cannot tee, naming it" do
    src = source(:pipe, "x")
    dst, = drained_pipe
    expect { Bytepump.tee(src, [dst, StringIO.new]) }
      .to raise_error(TypeError, "tee: destination 1 must be an IO (got StringIO)")
    expect { Bytepump.tee(src, [dst, dst]) }
      .to raise_error(ArgumentError, "tee: destinations 0 and 1 are the same file descriptor")
    expect { Bytepump.tee(src, []) }.to raise_error(ArgumentError, "tee: no destination")
    src.ungetc("y")
    expect { Bytepump.tee(src, [dst]) }.to raise_error(IOError, /tee: the IO has bytes buffered by Ruby/)
  end
end
