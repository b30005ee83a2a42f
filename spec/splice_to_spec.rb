# frozen_string_literal: true

RSpec.shared_examples "a transfer that loses nothing" do |src_kind, dst_kind|
  [0, 1, 65_535, 3_703_701].each do |size|
    it "delivers #{size} bytes exactly, reports them as progress and returns the count" do
      data = pattern(size, size)
      src = source(src_kind, data)
      dst, received = destination(dst_kind)
      progress = []
      count = src.splice_to(dst) { |n| progress << n }
      expect(count).to eq(size)
      expect(progress.sum).to eq(size)
      expect(progress).to all(be_positive)
      got = received.call
      expect(got.bytesize).to eq(size)
      expect(got == data).to be(true)
    end
  end
end

RSpec.describe "IO#splice_to" do
  Endpoints::SOURCE_KINDS.product(Endpoints::DEST_KINDS).each do |src_kind, dst_kind|
    context "from a #{src_kind} to a #{dst_kind}" do
      it_behaves_like "a transfer that loses nothing", src_kind, dst_kind
    end
  end

  it "counts past 4 GiB: a sparse file to /dev/null", :slow do
    file = Tempfile.new("bytepump-sparse")
    size = (4 << 30) + 12_345
    file.truncate(size)
    File.open(file.path, "rb") do |src|
      File.open(File::NULL, "wb") do |null|
        reported = 0
        expect(src.splice_to(null) { |n| reported += n }).to eq(size)
        expect(reported).to eq(size)
        expect(src.pos).to eq(size)
      end
    end
  ensure
    file&.close!
  end

  it "keeps the seed's camelCase name" do
    src = source(:file, "seed")
    dst, received = destination(:pipe)
    expect(src.spliceTo(dst, 60)).to eq(4)
    expect(received.call).to eq("seed")
  end

  describe "length and offset" do
    let(:data) { pattern(10_000) }

    it "copies nothing for length 0" do
      src = source(:file, data)
      dst, received = destination(:unix)
      expect(src.splice_to(dst, length: 0)).to eq(0)
      expect(received.call).to eq("")
      expect(src.pos).to eq(0)
    end

    it "stops at the length and leaves the file position after the last byte delivered" do
      src = source(:file, data)
      src.seek(100)
      dst, received = destination(:tcp)
      expect(src.splice_to(dst, length: 4000)).to eq(4000)
      expect(received.call).to eq(data[100, 4000])
      expect(src.pos).to eq(4100)
      expect(src.read(10)).to eq(data[4100, 10])
    end

    it "stops at EOF when the length is past it" do
      src = source(:file, data)
      dst, received = destination(:pipe)
      expect(src.splice_to(dst, length: 1_000_000)).to eq(10_000)
      expect(received.call).to eq(data)
    end

    it "reads from an offset without moving the file position" do
      src = source(:file, data)
      src.seek(7)
      dst, received = destination(:file)
      expect(src.splice_to(dst, offset: 9000)).to eq(1000)
      expect(src.pos).to eq(7)
      expect(received.call).to eq(data[9000..])
    end

    it "combines offset and length" do
      src = source(:file, data)
      dst, received = destination(:stringio)
      expect(src.splice_to(dst, offset: 10, length: 20)).to eq(20)
      expect(received.call).to eq(data[10, 20])
    end

    it "refuses an offset on a stream with a message naming it" do
      src = source(:pipe, "abc")
      dst, = destination(:file)
      expect { src.splice_to(dst, offset: 1) }
        .to raise_error(Errno::ESPIPE, /reading upstream from IO\(fd \d+\) failed after 0 bytes/)
    end

    it "names the side when an offset meets a stream on the copy path too" do
      src = source(:pipe, "abc")
      expect { src.splice_to(StringIO.new, offset: 1) }
        .to raise_error(Errno::ESPIPE, /reading upstream from IO\(fd \d+\) failed after 0 bytes/)
    end

    it "limits a stream and leaves the rest unread" do
      src = source(:unix, "hello world")
      dst, received = destination(:file)
      expect(src.splice_to(dst, length: 5)).to eq(5)
      expect(received.call).to eq("hello")
      expect(src.read).to eq(" world")
    end
  end

  describe "Ruby-side buffers" do
    it "delivers bytes already buffered by gets first, and counts them" do
      src = source(:file, "line one\nline two\nrest of the file")
      expect(src.gets).to eq("line one\n")
      dst, received = destination(:unix)
      expect(src.splice_to(dst)).to eq(25)
      expect(received.call).to eq("line two\nrest of the file")
      expect(src.pos).to eq(34)
    end

    it "delivers bytes buffered by getc and read(n) from a socket" do
      data = pattern(200_000)
      src = source(:tcp, data)
      first = src.getc.b + src.read(10)
      dst, received = destination(:pipe)
      count = src.splice_to(dst)
      expect(first.bytesize + count).to eq(data.bytesize)
      expect(first + received.call == data).to be(true)
    end

    it "respects length when the buffer holds more" do
      src = source(:file, "abcdefghij")
      src.getc
      dst, received = destination(:file)
      expect(src.splice_to(dst, length: 3)).to eq(3)
      expect(received.call).to eq("bcd")
      expect(src.read).to eq("efghij")
    end

    it "delivers the raw bytes left behind by an encoding-converting reader" do
      path = track(Tempfile.new("latin1")).path
      File.binwrite(path, "caf\xE9\nau lait\n".b)
      src = track(File.open(path, "r:iso-8859-1:utf-8"))
      expect(src.gets).to eq("café\n")
      dst, received = destination(:file)
      expect(src.splice_to(dst)).to eq(8)
      expect(received.call).to eq("au lait\n")
    end

    it "refuses characters pushed back into an encoding conversion instead of dropping them" do
      path = track(Tempfile.new("latin1")).path
      File.binwrite(path, "caf\xE9 au lait".b)
      src = track(File.open(path, "r:iso-8859-1:utf-8"))
      src.ungetc("é")
      dst, = destination(:file)
      expect { src.splice_to(dst) }.to raise_error(IOError, /decoded by its encoding conversion/)
    end

    it "flushes the destination's unflushed writes first" do
      src = source(:file, "body")
      dst, received = destination(:file)
      dst.sync = false
      dst.write("head:")
      expect(src.splice_to(dst)).to eq(4)
      expect(received.call).to eq("head:body")
    end

    it "writes a read-write file destination at its position, not past what Ruby read ahead" do
      path = track(Tempfile.new("bytepump-rw")).path
      File.binwrite(path, "0123456789")
      dst = track(File.open(path, "r+b"))
      expect(dst.read(2)).to eq("01") # Ruby read the whole file ahead
      expect(source(:file, "AB").splice_to(dst)).to eq(2)
      expect(dst.pos).to eq(4)
      expect(File.binread(path)).to eq("01AB456789")
    end

    it "appends to an O_APPEND file and leaves the position at its end" do
      path = track(Tempfile.new("bytepump-append")).path
      File.binwrite(path, "existing;")
      dst = track(File.open(path, "ab"))
      src = source(:file, "appended")
      expect(src.splice_to(dst)).to eq(8)
      expect(File.binread(path)).to eq("existing;appended")
      expect(dst.pos).to eq(17)
    end
  end

  describe "fd flags" do
    it "leaves O_NONBLOCK as the caller had it on each end" do
      require "io/nonblock"
      src = source(:unix, "x" * 100_000)
      dst, received = destination(:tcp)
      src.nonblock = false
      dst.nonblock = true
      expect(src.splice_to(dst)).to eq(100_000)
      expect(src.nonblock?).to be(false)
      expect(dst.nonblock?).to be(true)
      received.call
    end
  end

  describe "bad input" do
    it "raises IOError for a closed source" do
      src = source(:file, "x")
      src.close
      dst, = destination(:file)
      expect { src.splice_to(dst) }.to raise_error(IOError, "closed stream")
    end

    it "raises IOError for a closed destination" do
      src = source(:file, "x")
      dst, = destination(:pipe)
      dst.close
      expect { src.splice_to(dst) }.to raise_error(IOError, "closed stream")
    end

    it "raises IOError for a read-only destination" do
      src = source(:file, "x")
      path = track(Tempfile.new("ro")).path
      dst = track(File.open(path, "rb"))
      expect { src.splice_to(dst) }.to raise_error(IOError, "not opened for writing")
    end

    it "raises IOError for a write-only source" do
      r, w = track(*IO.pipe)
      expect { w.splice_to(File.open(File::NULL, "w")) }.to raise_error(IOError, "not opened for reading")
      r.close
    end

    it "raises TypeError naming a destination without #write" do
      src = source(:file, "x")
      expect { src.splice_to(42) }.to raise_error(TypeError, "dst must be an IO or respond to #write (got Integer)")
    end

    it "raises for timeouts, lengths and offsets of the wrong kind, naming the argument" do
      src = source(:file, "x")
      dst, = destination(:file)
      expect do
        src.splice_to(dst, "5")
      end.to raise_error(TypeError, 'timeout must be Numeric seconds or nil (got "5")')
      expect do
        src.splice_to(dst, -1)
      end.to raise_error(ArgumentError, "timeout must be a number of seconds >= 0 or nil (got -1)")
      expect { src.splice_to(dst, Float::NAN) }.to raise_error(ArgumentError, /\Atimeout .* \(got NaN\)/)
      expect { src.splice_to(StringIO.new, "5") }.to raise_error(TypeError, /\Atimeout must be Numeric/)
      expect { Bytepump.pump(src, dst, downstream_timeout: -2) }
        .to raise_error(ArgumentError, /\Adownstream_timeout must be .* \(got -2\)/)
      expect { src.splice_to(dst, length: -1) }.to raise_error(ArgumentError, "length must be >= 0 (got -1)")
      expect { src.splice_to(dst, length: 1.5) }.to raise_error(TypeError, "length must be an Integer or nil (got 1.5)")
      expect { src.splice_to(dst, offset: "0") }.to raise_error(TypeError, /offset must be an Integer/)
    end

    it "refuses to splice a pipe's read end into its own write end" do
      r, w = track(*IO.pipe)
      w.write("loop")
      expect do
        r.splice_to(w)
      end.to raise_error(Errno::EINVAL, /pumping IO\(fd \d+\) into IO\(fd \d+\) failed after 0 bytes/)
    end

    it "refuses to splice an IO into itself" do
      r, w = track(*IO.pipe)
      expect { r.splice_to(r) }.to raise_error(ArgumentError, "src and dst are the same object")
      w.close
    end
  end

  describe "the call itself" do
    it "allocates no Ruby object for a transfer between two IOs" do
      src = source(:file, pattern(4096))
      dst, peer = track(*UNIXSocket.pair)
      src.splice_to(dst) # warm up: method caches, the pipe pool
      peer.readpartial(8192)
      GC.disable
      before = GC.stat(:total_allocated_objects)
      20.times do
        src.rewind
        src.splice_to(dst)
      end
      allocated = GC.stat(:total_allocated_objects) - before
      expect(allocated).to be <= 20
      expect(peer.read_nonblock(200_000).bytesize).to eq(20 * 4096)
    ensure
      GC.enable
    end
  end

  describe "objects that are not IOs" do
    it "writes through #write and never splices through #to_io (a TLS socket's raw fd)" do
      raw, peer = track(*UNIXSocket.pair)
      tls_like = Class.new do
        attr_reader :written

        def initialize(raw)
          (@raw = raw
           @written = +"".b)
        end

        def to_io = raise("to_io must not be used: it would bypass encryption")

        def write(data)
          (@written << data
           data.bytesize)
        end
      end.new(raw)
      src = source(:file, pattern(150_000))
      expect(src.splice_to(tls_like)).to eq(150_000)
      expect(tls_like.written == pattern(150_000)).to be(true)
      peer.close
    end

    it "counts bytes for writers that return self, like zip streamers' <<" do
      sink = Class.new do
        attr_reader :size

        def initialize = @size = 0

        def write(data)
          (@size += data.bytesize
           self)
        end
      end.new
      src = source(:pipe, pattern(70_000))
      expect(src.splice_to(sink)).to eq(70_000)
      expect(sink.size).to eq(70_000)
    end
  end
end
