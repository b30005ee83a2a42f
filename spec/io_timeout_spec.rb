# frozen_string_literal: true

# Ruby 3.2+: a call given no timeout of its own waits on each IO as long as
# that IO's own IO#timeout allows, and runs out of it with IO::TimeoutError,
# as Ruby's IO methods do. A timeout given to the call wins; Float::INFINITY
# waits forever whatever the IOs say.
RSpec.describe "IO#timeout" do
  before do
    skip "IO#timeout is new in Ruby 3.2 (this is #{RUBY_VERSION})" unless IO.method_defined?(:timeout)
  end

  # A socket source that sends +data+ and then nothing, without closing.
  def stalling_source(data)
    src, peer = track(*UNIXSocket.pair)
    peer.write(data)
    src
  end

  # A socket destination whose peer reads nothing until +drain+ is called;
  # drain returns what arrived once our end is closed.
  def full_destination
    dst, peer = track(*UNIXSocket.pair)
    [dst, lambda {
      dst.close_write
      peer.read.b
    }]
  end

  it "ends splice_to given no timeout with IO::TimeoutError when the source outlasts its own timeout" do
    data = pattern(10_000)
    src = stalling_source(data)
    src.timeout = 0.2
    dst, reader = destination(:pipe)
    progress = 0
    error = nil
    begin
      src.splice_to(dst) { |n| progress += n }
    rescue IO::TimeoutError => e
      error = e
    end
    expect(error).to be_a(Bytepump::IOTimeout).and be_a(Bytepump::TransferError)
    expect(error).to be_a(Bytepump::Error)
    expect(error.side).to eq(:upstream)
    expect(error.timeout).to eq(0.2)
    expect(error.bytes_written).to eq(data.bytesize)
    expect(error.result.status).to eq(:timeout_upstream)
    expect(error.message).to match(/reading upstream from UNIXSocket\(fd \d+\) timed out: nothing moved for 0.2 s/)
    expect(progress).to eq(data.bytesize)
    expect(reader.call == data).to be(true)
  end

  it "ends splice_to with IO::TimeoutError on the downstream side, counting exactly what the destination took" do
    file = track(Tempfile.new("bytepump-io-timeout"))
    file.binmode
    file.write(pattern(4 << 20))
    file.flush
    src = track(File.open(file.path, "rb"))
    dst, drain = full_destination
    dst.timeout = 0.2
    error = nil
    begin
      src.splice_to(dst)
    rescue IO::TimeoutError => e
      error = e
    end
    expect(error).to be_a(Bytepump::IOTimeout)
    expect(error.side).to eq(:downstream)
    expect(error.bytes_written).to be_positive
    arrived = drain.call
    expect(arrived.bytesize).to eq(error.bytes_written)
    expect(arrived == pattern(4 << 20).byteslice(0, arrived.bytesize)).to be(true)
    expect(src.pos).to eq(error.bytes_written) # the next call goes on from there
  end

  it "returns the seed's :timeout_upstream when the call gives its own timeout, whatever the IO's" do
    src = stalling_source("abc")
    src.timeout = 30
    dst, reader = destination(:pipe)
    expect(src.splice_to(dst, 0.2)).to eq(:timeout_upstream)
    expect(reader.call).to eq("abc")
  end

  it "waits past the IO's timeout for a call given Float::INFINITY" do
    src, peer = track(*UNIXSocket.pair)
    src.timeout = 0.05
    dst, reader = destination(:pipe)
    helper_thread do
      sleep 0.5
      peer.write("late")
      peer.close
    end
    expect(src.splice_to(dst, Float::INFINITY)).to eq(4)
    expect(reader.call).to eq("late")
  end

  it "applies to Bytepump.pump, also on the path that copies into a non-IO destination" do
    src = stalling_source("12345")
    src.timeout = 0.2
    expect { Bytepump.pump(src, StringIO.new(+"")) }
      .to raise_error(IO::TimeoutError) { |e| expect([e.side, e.bytes_written]).to eq([:upstream, 5]) }
    src2 = stalling_source("678")
    src2.timeout = 0.2
    dst, reader = destination(:unix)
    expect { Bytepump.pump(src2, dst, downstream_timeout: 5) }
      .to raise_error(IO::TimeoutError) { |e| expect(e.result.bytes_written).to eq(3) }
    expect(reader.call).to eq("678")
    expect(Bytepump.pump(stalling_source("9"), dst2 = StringIO.new(+""), timeout: 0.1).status).to eq(:timeout_upstream)
    expect(dst2.string).to eq("9")
  end

  it "applies while other threads run (the GVL-free wait)" do
    busy = helper_thread { loop { Thread.pass } }
    src = stalling_source("x" * 100)
    src.timeout = 0.2
    dst, reader = destination(:pipe)
    expect { src.splice_to(dst) }.to raise_error(IO::TimeoutError) { |e| expect(e.bytes_written).to eq(100) }
    expect(reader.call.bytesize).to eq(100)
    busy.kill
  end

  it "applies in a fiber under the async scheduler, and Float::INFINITY still waits past it" do
    require "async"
    src = stalling_source("fiber")
    src.timeout = 0.2
    dst, reader = destination(:pipe)
    late_src, late_peer = track(*UNIXSocket.pair)
    late_src.timeout = 0.05
    late_dst, late_reader = destination(:pipe)
    outcome = Async do |task|
      writer = task.async do
        sleep 0.5
        late_peer.write("late")
        late_peer.close
      end
      error = begin
        src.splice_to(dst)
      rescue IO::TimeoutError => e
        e
      end
      late = late_src.splice_to(late_dst, Float::INFINITY)
      writer.wait
      [error, late]
    end.wait
    expect(outcome[0]).to be_a(Bytepump::IOTimeout)
    expect([outcome[0].side, outcome[0].bytes_written]).to eq([:upstream, 5])
    expect(outcome[1]).to eq(4)
    expect(reader.call).to eq("fiber")
    expect(late_reader.call).to eq("late")
  end

  it "drops a tee destination that outlasts its own timeout with IO::TimeoutError; the others get every byte" do
    data = pattern(4 << 20)
    src = source(:unix, data)
    slow, drain = full_destination
    slow.timeout = 0.2
    fast, reader = destination(:unix)
    error = nil
    begin
      src.splice_to([fast, slow])
    rescue Bytepump::TeeError => e
      error = e
    end
    expect(error).not_to be_nil
    dropped = error.result.destinations[1]
    expect(dropped.status).to eq(:timeout_downstream)
    expect(dropped.error).to be_a(IO::TimeoutError).and be_a(Bytepump::IOTimeout)
    expect(dropped.error.side).to eq(:downstream)
    expect(reader.call == data).to be(true)
    expect(drain.call.bytesize).to eq(dropped.bytes_written)
  end

  it "ends a tee whose source outlasts its own timeout with IO::TimeoutError" do
    src = stalling_source("tee")
    src.timeout = 0.2
    a, read_a = destination(:pipe)
    b, read_b = destination(:unix)
    expect { Bytepump.tee(src, [a, b]) }
      .to raise_error(IO::TimeoutError) { |e| expect([e.side, e.bytes_written]).to eq([:upstream, 3]) }
    expect([read_a.call, read_b.call]).to eq(%w[tee tee])
  end

  it "ends skip_headers with IO::TimeoutError, leaving what arrived of the head unread by anyone else" do
    src = stalling_source("HTTP/1.1 200 OK\r\nContent-")
    src.timeout = 0.2
    expect { src.skip_headers }
      .to raise_error(IO::TimeoutError, /skip_headers timed out: nothing moved for 0.2 s/)
    expect { src.skip_headers(timeout: 0.1) }.to raise_error(Bytepump::UpstreamTimeout)
  end

  it "ends Frames#read between frames with IO::TimeoutError, and the next read goes on" do
    io, peer = track(*UNIXSocket.pair)
    io.timeout = 0.2
    frames = Bytepump::Frames.new(io)
    expect { frames.read }.to raise_error(IO::TimeoutError) { |e| expect(e.side).to eq(:upstream) }
    Bytepump::Frames.new(peer).write(7, "payload")
    dst, reader = destination(:pipe)
    expect(frames.read({ 7 => dst })).to eq([7, 7])
    expect(reader.call).to eq("payload")
  end

  it "ends Frames#write into a full IO with IO::TimeoutError" do
    io, _peer = track(*UNIXSocket.pair)
    io.timeout = 0.2
    frames = Bytepump::Frames.new(io)
    expect { 64.times { frames.write(1, "x" * 65_536) } }
      .to raise_error(IO::TimeoutError) { |e| expect(e.side).to eq(:downstream) }
  end
end
