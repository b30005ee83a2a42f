# frozen_string_literal: true

RSpec.describe Bytepump do
  describe ".pump" do
    it "returns a frozen Result with counts, status and strategy" do
      src = source(:file, pattern(50_000))
      dst, received = destination(:tcp)
      result = described_class.pump(src, dst)
      expect(result).to be_frozen
      expect(result).to have_attributes(bytes_read: 50_000, bytes_written: 50_000, status: :done,
                                        strategy: :sendfile, stranded: 0, error: nil)
      expect(result).to be_ok
      expect(received.call.bytesize).to eq(50_000)
    end

    it "builds the Result in the binding from a Native::Options, and refuses anything else" do
      dst, received = destination(:unix)
      options = Bytepump::Native::Options.new(length: 3)
      result = Bytepump::Native.pump(source(:pipe, "abcdef"), dst, options)
      expect(result).to eq(Bytepump::Result.new(bytes_read: 3, bytes_written: 3, status: :done,
                                                strategy: :splice_direct))
      expect(result).to be_frozen
      expect(result.to_h).to include(errno: 0, crc32: nil, body_error: nil)
      expect(received.call).to eq("abc")
      expect { Bytepump::Native.pump(source(:pipe, "x"), destination(:unix).first, { length: 3 }) }
        .to raise_error(TypeError, /options must be a Bytepump::Native::Options/)
    end

    it "gives back every pipe's quota after many transfers at once, keeping at most 2 MiB idle" do
      pairs = Array.new(24) do
        src, peer = track(*UNIXSocket.pair)
        dst, received = destination(:tcp)
        [src, peer, dst, received]
      end
      workers = pairs.map do |src, peer, dst, _|
        helper_thread do
          helper_thread do
            peer.write(pattern(300_000))
            peer.close
          end
          described_class.pump(src, dst).bytes_written
        end
      end
      expect(workers.map(&:value)).to all(eq(300_000))
      pooled, dirty, idle, held = Bytepump::Native.pool_stats
      expect(dirty).to eq(0)
      expect(idle).to be <= 2 << 20
      expect(held).to eq(idle) # nothing handed out is still counted
      expect(pooled).to be <= 8
      pairs.each { |_, _, _dst, received| expect(received.call.bytesize).to eq(300_000) }
    end

    it "picks the strategy from the fd kinds" do
      expect(described_class.pump(source(:pipe, "abc"), destination(:unix).first).strategy).to eq(:splice_direct)
      expect(described_class.pump(source(:tcp, "abc"), destination(:unix).first).strategy).to eq(:splice_pipe)
      expect(described_class.pump(source(:file, "abc"), StringIO.new).strategy).to eq(:copy)
    end

    it "takes a pipe size and still delivers everything" do
      data = pattern(300_000)
      dst, received = destination(:tcp)
      result = described_class.pump(source(:unix, data), dst, pipe_size: 4096)
      expect(result).to have_attributes(strategy: :splice_pipe, bytes_written: 300_000)
      expect(received.call == data).to be(true)
      expect { described_class.pump(source(:unix, "x"), dst, pipe_size: -1) }
        .to raise_error(ArgumentError, "pipe_size must be >= 0 (got -1)")
    end

    it "accepts a non-IO source that responds to #readpartial or #read" do
      dst, received = destination(:pipe)
      result = described_class.pump(StringIO.new("from a StringIO"), dst, length: 9)
      expect(result.bytes_written).to eq(9)
      expect(received.call).to eq("from a St")
    end
  end

  describe "stall timeouts" do
    it "returns :timeout_upstream when the source sends nothing for the timeout" do
      src, peer = track(*tcp_pair)
      peer.write("partial")
      dst, received = destination(:unix)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect(src.splice_to(dst, 0.2)).to eq(:timeout_upstream)
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be >= 0.2
      expect(received.call).to eq("partial")
    end

    it "reports the partial count of a stalled transfer in the Result" do
      src, peer = track(*UNIXSocket.pair)
      peer.write("x" * 1000)
      result = described_class.pump(src, StringIO.new, timeout: 0.1)
      expect(result).to have_attributes(status: :timeout_upstream, bytes_written: 1000)
      expect(result).to be_timeout
    end

    it "returns :timeout_downstream when the destination reads nothing; the count is what arrived" do
      src, feeder = track(*tcp_pair)
      dst, stalled_reader = track(*tcp_pair)
      endless_feeder(feeder)
      result = described_class.pump(src, dst, upstream_timeout: 10, downstream_timeout: 0.2)
      expect(result.status).to eq(:timeout_downstream)
      expect(result.bytes_written).to be > 0
      expect(result.bytes_read).to be >= result.bytes_written
      dst.close
      expect(stalled_reader.read.bytesize).to eq(result.bytes_written)
      feeder.close
    end

    it "times each side separately: a slow but steady source never times out" do
      src, peer = track(*UNIXSocket.pair)
      feeder = helper_thread do
        5.times do
          sleep 0.05
          peer.write("tick")
        end
        peer.close
      end
      dst, received = destination(:pipe)
      expect(src.splice_to(dst, 0.5)).to eq(20)
      expect(received.call).to eq("tick" * 5)
      feeder.join
    end
  end

  describe "failures" do
    it "raises the Errno with side and counts when the peer resets mid-transfer" do
      src, feeder = track(*UNIXSocket.pair)
      dst, client = track(*tcp_pair)
      endless_feeder(feeder)
      resetter = helper_thread do
        got = 0
        got += client.readpartial(65_536).bytesize while got < 1 << 20
        client.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
        client.close
      end
      error = nil
      begin
        src.splice_to(dst)
      rescue Bytepump::TransferError => e
        error = e
      end
      resetter.join
      expect(error).to be_a(Errno::ECONNRESET).or be_a(Errno::EPIPE)
      expect(error.side).to eq(:downstream)
      expect(error.bytes_written).to be >= 1 << 20
      expect(error.message)
        .to match(/writing downstream to TCPSocket\(fd \d+\) failed after \d+ bytes written \(\d+ read\)/)
      feeder.close
    end

    it "raises Errno::EPIPE when a pipe's reader is gone, and the process lives" do
      src = source(:file, pattern(100_000))
      r, w = IO.pipe
      r.close
      track(w)
      expect { src.splice_to(w) }.to raise_error(Errno::EPIPE, /Broken pipe - bytepump: writing downstream/)
      expect(src.pos).to eq(0)
    end

    it "counts what a non-IO destination took before its #write failed" do
      sink = Class.new do
        def initialize = @calls = 0

        def write(data)
          raise Errno::ENOSPC, "disk full" if (@calls += 1) > 2

          data.bytesize
        end
      end.new
      src = source(:file, pattern(1_000_000))
      expect { src.splice_to(sink) }.to raise_error(Errno::ENOSPC) { |e|
        expect(e.bytes_written).to eq(2 * Bytepump::Copy::CHUNK)
        expect(e.side).to eq(:downstream)
      }
    end

    it "stops, cleans up and propagates an exception raised in the block" do
      require "io/nonblock"
      src = source(:tcp, pattern(5_000_000))
      dst, received = destination(:unix)
      dst.nonblock = false
      calls = 0
      expect { src.splice_to(dst) { (calls += 1) == 2 ? raise("stop here") : nil } }
        .to raise_error(RuntimeError, "stop here")
      expect(calls).to eq(2)
      expect(dst.nonblock?).to be(false)
      src.close
      received.call
    end
  end

  describe "resources" do
    it "leaks no fds over 10,000 calls" do
      data = "n" * 1000
      path = track(Tempfile.new("fds")).path
      File.binwrite(path, data)
      src = track(File.open(path, "rb"))
      null = track(File.open(File::NULL, "wb"))
      r, w = track(*IO.pipe)
      src.splice_to(null) # warm the pipe pool
      GC.start # finalize IOs earlier examples dropped, so they don't close mid-count
      before = open_fds
      10_000.times do |i|
        src.rewind
        if i.even?
          expect(src.splice_to(null)).to eq(1000)
        else
          src.splice_to(w, length: 10)
          r.read(10)
        end
      end
      expect(open_fds).to eq(before)
    end
  end
end
