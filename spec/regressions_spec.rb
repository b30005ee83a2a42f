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
      raw = Bytepump::Native.pump(r, dst, 5, 5, nil, nil, nil, nil, true)
      expect(raw.first(3)).to eq([8, 8, :done])
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
end
