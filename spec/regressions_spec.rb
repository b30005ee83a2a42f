# frozen_string_literal: true

require "io/nonblock"

# Paths that once lost bytes, returned a wrong result or leaked; each example
# failed before its fix.
RSpec.describe "regressions" do
  describe "a chunked body after bytes Ruby already read ahead" do
    it "decodes the read-ahead bytes first and leaves what follows the body in the IO" do
      r, w = track(*IO.pipe)
      w.write("3\r\nabc\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nNEXT")
      w.close
      expect(r.getc).to eq("3") # Ruby reads ahead: the rest sits in its buffer
      r.ungetc("3")
      dst, received = destination(:pipe)
      options = Bytepump::Native::Options.new(upstream_timeout: 5, downstream_timeout: 5, framing: :chunked)
      result = Bytepump::Native.pump(r, dst, options)
      expect(result).to have_attributes(bytes_read: 8, bytes_written: 8, status: :done, body_error: nil)
      expect(received.call).to eq("abchello")
      expect(r.read).to eq("NEXT")
    end
  end

  describe "huge and infinite stall timeouts" do
    [1e10, 1e300, Float::INFINITY, 10**30].each do |timeout|
      it "waits for a source that is merely slow with timeout #{timeout}" do
        src, peer = track(*UNIXSocket.pair)
        helper_thread do
          sleep 0.2
          peer.write("late")
          peer.close
        end
        dst, received = destination(:pipe)
        expect(src.splice_to(dst, timeout)).to eq(4)
        expect(received.call).to eq("late")
      end
    end
  end

  describe "an IO closed by another thread" do
    it "restores the surviving IO's blocking mode when the source is closed during a wait" do
      src, _peer = track(*UNIXSocket.pair)
      dst, = track(*UNIXSocket.pair)
      dst.nonblock = false # Ruby makes sockets nonblocking; a blocking one shows the restore
      pump = helper_thread { src.splice_to(dst) }
      sleep 0.2 # in rb_io_wait on src
      src.close
      expect { pump.join(5) }.to raise_error(IOError)
      expect(dst.nonblock?).to be(false)
    end

    it "stops when the source is closed while bytes flow, and never touches a reused fd number" do
      zero = track(File.open("/dev/zero", "rb"))
      null = track(File.open(File::NULL, "wb"))
      fd = zero.fileno
      path = track(Tempfile.new("bytepump-reused")).path
      File.binwrite(path, "not yours" * 1000)
      pump = helper_thread { zero.splice_to(null, length: 1 << 50) }
      sleep 0.2 # steps run without the GVL, back to back
      zero.close
      # The lowest free fd number is the one just closed: a new file gets it.
      reused = track(File.open(path, "rb"))
      expect { pump.join(10) }.to raise_error(IOError, /closed/)
      expect(reused.fileno).to eq(fd)
      expect(reused.pos).to eq(0)
      expect(reused.read(9)).to eq("not yours")
    end

    it "stops when the progress block closes the destination, restoring the source" do
      src = source(:unix, pattern(1 << 20))
      src.nonblock = false
      sink, peer = track(*UNIXSocket.pair)
      helper_thread { peer.read }
      expect { src.splice_to(sink) { sink.close } }.to raise_error(IOError, /closed/)
      expect(src.nonblock?).to be(false)
    end
  end

  # A transfer known to be at most 64 KiB takes its first step on the IOs' own
  # fds while holding the GVL (no duplicates made); one that must wait moves
  # onto duplicates first.
  describe "the per-call path of a small file" do
    it "finishes in one step, leaks no fd, and still raises when the block closes the destination" do
      file = track(Tempfile.new("bytepump-small"))
      file.write(pattern(4096))
      file.flush
      sink, peer = track(*UNIXSocket.pair)
      received = helper_thread { peer.read }
      fds = open_fds
      100.times do
        file.rewind
        expect(file.to_io.splice_to(sink)).to eq(4096)
      end
      expect(open_fds).to eq(fds)
      file.rewind
      expect { file.to_io.splice_to(sink) { sink.close } }.to raise_error(IOError, /closed/)
      expect(received.join(10)&.value == pattern(4096) * 101).to be(true)
      expect(file.pos).to eq(4096)
    end

    it "waits on duplicates when the destination is full, so a close never reaches a reused fd number" do
      file = track(Tempfile.new("bytepump-small"))
      file.write(pattern(4096))
      file.rewind
      dst, _peer = track(*UNIXSocket.pair)
      dst.setsockopt(Socket::SOL_SOCKET, Socket::SO_SNDBUF, 4096)
      nil while dst.write_nonblock("x" * 4096, exception: false).is_a?(Integer)
      fd = dst.fileno
      path = track(Tempfile.new("bytepump-reused")).path
      pump = helper_thread { file.to_io.splice_to(dst, 10) }
      sleep 0.2 # waiting for the destination
      dst.close
      # New files take the lowest free fd numbers: soon the one just closed.
      reused = Array.new(64) { track(File.open(path, "wb")) }.find { |f| f.fileno == fd }
      expect { pump.join(10) }.to raise_error(IOError, /closed/)
      expect(reused).not_to be_nil
      expect(File.size(path)).to eq(0)
    end
  end

  describe "read-ahead taken from the source and not delivered" do
    # A UNIX socket that takes nothing more: [dst, peer].
    def full_socket
      dst, peer = track(*UNIXSocket.pair)
      nil while dst.write_nonblock("x" * 65_536, exception: false).is_a?(Integer)
      [dst, peer]
    end

    def file_after_getbyte(data)
      src = source(:file, data)
      expect(src.getbyte).to eq(data.getbyte(0)) # Ruby buffered far more than the one byte
      src
    end

    it "goes back to a file source when the destination times out, so its position is exact" do
      data = pattern(100_000)
      src = file_after_getbyte(data)
      dst, = full_socket
      expect(src.splice_to(dst, 0.2)).to eq(:timeout_downstream)
      expect(src.pos).to eq(1)
      expect(src.read == data.byteslice(1..)).to be(true)
    end

    it "goes back to a stream source, whose next read gets it" do
      src, feeder = track(*IO.pipe)
      feeder.write("0123456789")
      expect(src.getc).to eq("0") # the other nine wait in Ruby's buffer
      dst, = full_socket
      expect(Bytepump.pump(src, dst, timeout: 0.2).status).to eq(:timeout_downstream)
      expect(src.read_nonblock(100)).to eq("123456789")
    end

    it "goes back when the transfer raises (the destination closed by another thread)" do
      data = pattern(100_000)
      src = file_after_getbyte(data)
      dst, = full_socket
      closer = helper_thread do
        sleep 0.2
        dst.close
      end
      expect { src.splice_to(dst, 10) }.to raise_error(IOError, /closed/)
      closer.join
      expect(src.pos).to eq(1)
      expect(src.read == data.byteslice(1..)).to be(true)
    end
  end

  describe "the copying path" do
    # Takes at most 3 bytes per #write, as a nonblocking writer may.
    short_writer = Class.new do
      attr_reader :data

      def initialize = @data = +"".b

      def write(str)
        @data << str.byteslice(0, 3)
        [str.bytesize, 3].min
      end
    end

    it "writes the rest after a short #write and reports only what was written" do
      data = pattern(200_000)
      dst = short_writer.new
      progress = 0
      result = Bytepump.pump(StringIO.new(data), dst) { |n| progress += n }
      expect(dst.data == data).to be(true)
      expect(result.bytes_written).to eq(data.bytesize)
      expect(progress).to eq(data.bytesize)
    end

    it "applies the downstream timeout to an IO fed from a source that is not one" do
      dst, peer = track(*UNIXSocket.pair) # nobody reads peer
      data = pattern(16 << 20)
      result = Bytepump.pump(StringIO.new(data), dst, timeout: 0.3)
      expect(result.status).to eq(:timeout_downstream)
      expect(result.strategy).to eq(:copy)
      dst.close
      expect(peer.read.bytesize).to eq(result.bytes_written)
      expect(result.stranded).to be_positive
    end
  end

  describe "an HTTP connection ended by an interrupt" do
    it "closes the socket when Timeout.timeout ends a connect" do
      url, ios = Servers.black_hole
      track(*ios)
      before = open_fds
      expect { Timeout.timeout(0.3) { Bytepump.fetch(url, into: StringIO.new) } }.to raise_error(Timeout::Error)
      expect(settled_fds(before)).to eq(before)
    end

    it "closes the socket when Thread#raise ends a TLS handshake" do
      silent = Servers::Scripted.new { |_, c, _| c.read } # accepts, never answers the handshake
      url = "https://127.0.0.1:#{silent.port}/"
      before = open_fds
      fetcher = helper_thread { Bytepump.fetch(url, into: StringIO.new) }
      sleep 0.3
      fetcher.raise(Interrupt, "stop")
      expect { fetcher.join(5) }.to raise_error(Interrupt, "stop")
      expect(settled_fds(before)).to eq(before)
    ensure
      silent&.stop
    end
  end
end
