# frozen_string_literal: true

# Bytepump::Frames over real socket pairs: evloop's frames, payloads spliced.
RSpec.describe Bytepump::Frames do
  def header(channel, length) = [channel, length].pack("nN")
  def frame(channel, payload) = [channel, payload.bytesize, payload].pack("nNa*")

  # [reader IO, what arrived]: a pipe whose far end a helper thread drains.
  def sink
    r, w = track(*IO.pipe)
    r.binmode
    got = helper_thread { r.read }
    finish = lambda do
      w.close unless w.closed?
      got.value
    end
    [w, finish]
  end

  let(:pair) { track(*UNIXSocket.pair) }
  let(:writer) { described_class.new(pair[0], timeout: 10) }
  let(:reader) { described_class.new(pair[1], timeout: 10) }

  it "writes String, File and IO payloads and routes each to its channel's IO, byte for byte" do
    file = track(Tempfile.new("bytepump-frames"))
    file.write(pattern(3 << 20))
    file.rewind
    piped_r, piped_w = track(*IO.pipe)
    helper_thread { piped_w.write(pattern(100_000, 2)) }
    logs, log_data = sink
    data, data_data = sink
    sent = helper_thread do
      [writer.write(1, "first"), writer.write(2, file.to_io), writer.write(1, piped_r, length: 100_000)]
    ensure
      pair[0].close_write
    end
    frames = []
    while (frame = reader.read(1 => logs, 2 => data))
      frames << frame
    end
    expect(sent.value).to eq([11, 6 + (3 << 20), 100_006])
    expect(frames).to eq([[1, 5], [2, 3 << 20], [1, 100_000]])
    expect(log_data.call == "first".b + pattern(100_000, 2)).to be(true)
    expect(data_data.call == pattern(3 << 20)).to be(true)
    expect(file.pos).to eq(3 << 20)
  end

  it "reads a header exactly and leaves the bytes after the payload in the IO" do
    pair[0].write(frame(5, "data"), "tail")
    out, got = sink
    expect(reader.read { out }).to eq([5, 4])
    expect(pair[1].read_nonblock(10)).to eq("tail")
    expect(got.call).to eq("data")
  end

  it "routes by block, discards a payload routed to nil, and names the channel of a route that is not an IO" do
    pair[0].write(frame(4, "abc"), frame(6, "ok"), frame(8, "x"))
    out, got = sink
    expect(reader.read { |channel, length| out if channel == 6 && length == 2 }).to eq([4, 3])
    expect(reader.read { |channel, _length| out if channel == 6 }).to eq([6, 2])
    expect do
      reader.read do
        "a String"
      end
    end.to raise_error(TypeError, "the route for channel 8 must be an IO or nil (got String)")
    expect(got.call).to eq("ok")
  end

  it "raises InvalidFrame naming the channel and length, and goes on with the next header" do
    pair[0].write(header(9, 0), header(2, (64 << 20) + 1), frame(3, "hi"))
    pair[0].close_write
    out, got = sink
    expect { reader.read { out } }.to raise_error(Bytepump::InvalidFrame,
                                                  "frame on channel 9 has invalid length 0 (must be 1..67108864)")
    expect { reader.read { out } }.to raise_error(an_instance_of(Bytepump::InvalidFrame)
      .and(having_attributes(channel: 2, length: (64 << 20) + 1)))
    expect(reader.read { out }).to eq([3, 2])
    expect(reader.read { out }).to be_nil
    expect(got.call).to eq("hi")
  end

  it "raises TruncatedFrame with the payload bytes delivered when the stream ends inside a frame" do
    pair[0].write(header(3, 10), "four")
    pair[0].close_write
    out, got = sink
    expect { reader.read { out } }.to raise_error(Bytepump::TruncatedFrame) { |e|
      expect(e.message).to eq("the source ended inside the frame (channel 3, length 10) with 6 payload bytes missing")
      expect(e.bytes_written).to eq(4)
    }
    expect(got.call).to eq("four")
  end

  it "times out between frames and can read on afterwards" do
    quick = described_class.new(pair[1], timeout: 0.2)
    expect { quick.read }.to raise_error(Bytepump::UpstreamTimeout, "Frames#read: no frame within 0.2s")
    pair[0].write(frame(1, "z"))
    out, got = sink
    expect(quick.read { out }).to eq([1, 1])
    expect(got.call).to eq("z")
  end

  it "breaks the stream after a stall inside a frame, and says so on the next read" do
    quick = described_class.new(pair[1], timeout: 0.2)
    pair[0].write(header(1, 100), "only this")
    out, got = sink
    expect { quick.read { out } }
      .to raise_error(Bytepump::UpstreamTimeout,
                      /inside the frame \(channel 1, length 100\) after 9 payload bytes; the frame stream is broken/)
    expect { quick.read { out } }
      .to raise_error(IOError,
                      /the frame stream is broken: an earlier read stopped inside a frame \(channel 1, length 100\)/)
    expect(got.call).to eq("only this")
  end

  # Issue 16 item 6: $stdin, a FIFO opened with File.open, an inherited socket.
  context "on blocking-mode fds" do
    let(:fifo) do
      @fifo_dir = Dir.mktmpdir("bytepump-fifo")
      File.join(@fifo_dir, "f").tap { |path| File.mkfifo(path) }
    end

    after { FileUtils.rm_rf(@fifo_dir) if @fifo_dir }

    it "times out reading a FIFO opened blocking, and leaves it blocking" do
      both = track(File.open(fifo, "r+")).tap { |f| f.sync = true }
      source = track(File.open(fifo, "r"))
      expect(source.nonblock?).to be(false)
      quick = described_class.new(source, timeout: 0.2)
      expect { quick.read }.to raise_error(Bytepump::UpstreamTimeout, "Frames#read: no frame within 0.2s")
      expect(source.nonblock?).to be(false)
      both.write(frame(4, "late"))
      out, got = sink
      expect(quick.read { out }).to eq([4, 4])
      expect(got.call).to eq("late")
    end

    it "times out writing to a blocking socket nobody reads, and leaves it blocking" do
      pair[0].nonblock = false
      quick = described_class.new(pair[0], timeout: 0.2)
      expect { quick.write(1, "x" * (16 << 20)) }.to raise_error(Bytepump::DownstreamTimeout)
      expect(pair[0].nonblock?).to be(false)
    end

    it "ends a read blocked without a timeout on Thread#raise" do
      pair[1].nonblock = false
      blocked = helper_thread { described_class.new(pair[1], timeout: Float::INFINITY).read }
      sleep 0.01 until blocked.status == "sleep" || !blocked.alive?
      sleep 0.1
      blocked.raise(Interrupt, "stop")
      expect { blocked.join(5) }.to raise_error(Interrupt, "stop")
      expect(pair[1].nonblock?).to be(false)
    end
  end

  it "refuses bad channels and lengths, and breaks the write side after a short payload IO" do
    expect { writer.write(70_000, "x") }.to raise_error(ArgumentError, "channel must be 0..65535 (got 70000)")
    expect { writer.write(1, "") }
      .to raise_error(ArgumentError, "frame length must be 1..67108864 (got 0 for channel 1)")
    r, w = track(*IO.pipe)
    w.write("short")
    w.close
    expect { writer.write(4, r, length: 10) }
      .to raise_error(Bytepump::TruncatedFrame,
                      /ended 5 bytes short of the frame \(channel 4, length 10\); the destination/) do |e|
        expect(e.bytes_written).to eq(11)
      end
    expect { writer.write(4, "more") }.to raise_error(IOError, /the frame stream is broken/)
    expect { writer.write(4, r) }.to raise_error(ArgumentError, /length: is needed for a IO payload/)
  end

  it "reads and writes frames in fibers under the async gem's Fiber scheduler" do
    require "async"
    out, got = sink
    read = Async do |task|
      reading = task.async { Array.new(5) { reader.read { out } } }
      task.async do
        5.times do |i|
          writer.write(i, "frame #{i};")
          sleep 0.005
        end
      end
      reading.wait
    end.wait
    expect(read).to eq(Array.new(5) { |i| [i, 8] })
    expect(got.call).to eq(Array.new(5) { |i| "frame #{i};" }.join)
  end

  it "serializes reads from several threads: every frame read whole, once, by one of them" do
    payloads = Array.new(200) { |i| pattern(1 + (i * 3_000), i) }
    feeder = helper_thread do
      payloads.each_with_index { |payload, i| writer.write(i % 4, payload) }
      pair[0].close_write
    end
    readers = Array.new(3) do
      helper_thread do
        got = []
        loop do
          frame, payload = Tempfile.create("bytepump-frame") do |f|
            f.binmode
            [reader.read { |_channel, _length| f }, File.binread(f.path)]
          end
          break unless frame

          got << [frame, payload]
        end
        got
      end
    end
    got = readers.flat_map(&:value)
    feeder.join(10)
    expect(got.size).to eq(200)
    expect(got.map { |(_, length), payload| [length, payload.bytesize] }).to all(satisfy { |l, n| l == n })
    expect(got.map(&:last).sort == payloads.sort).to be(true)
  end

  it "never interleaves frames written by several threads at once, and leaks no fd" do
    payloads = Array.new(4) { |t| Array.new(25) { |i| pattern(1 + (i * 40_000), (t * 100) + i) } }
    sinks = Array.new(4) { sink }
    [writer, reader] # both ends open before counting
    own_fds = -> { open_fds - (2 * Bytepump::Native.pool_stats[0]) } # pooled pipes are the library's
    GC.start # IOs dropped by earlier examples close now, not in the middle of this one
    fds = own_fds.call
    writers = Array.new(4) do |t|
      helper_thread { payloads[t].each { |payload| writer.write(t, payload) } }
    end
    closer = helper_thread do
      writers.each(&:join)
      pair[0].close_write
    end
    count = 0
    count += 1 while reader.read { |channel, _length| sinks[channel][0] }
    closer.join(10)
    expect(count).to eq(100)
    expect(own_fds.call).to be <= fds
    sinks.each_with_index { |(_, got), t| expect(got.call == payloads[t].join).to be(true) }
  end
end
