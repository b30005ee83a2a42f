# frozen_string_literal: true

require "io/nonblock"

# Every machine that moves bytes keeps Pump's promises (issue 16): the same
# cases over splice_to, buffer:, a tee with one and with three destinations,
# a frame's payload written and read, and HTTP bodies (Content-Length and
# chunked). Same outcome, same counts, no leak, for each.
RSpec.describe "sibling machines" do
  # A machine: how its source is framed (+wrap+), how the payload arrives at
  # the destination (+arrives+), and +run+, which moves one payload of +size+
  # bytes from src to dst within +timeout+ ({ up:, down: }) and returns
  # [status, payload bytes delivered to dst]: :done, :timeout_upstream or
  # :timeout_downstream; an error raises.
  machine = Struct.new(:name, :wrap, :arrives, :run, :raw_source)

  def self.pumped(**options)
    lambda do |_ex, src, dst, timeout, _size|
      r = Bytepump.pump(src, dst, upstream_timeout: timeout[:up], downstream_timeout: timeout[:down], **options)
      raise r.error(src, dst) unless r.ok? || r.timeout?

      [r.status, r.bytes_written]
    end
  end

  def self.teed(extra)
    lambda do |ex, src, dst, timeout, _size|
      others = Array.new(extra) do
        r, w = ex.track(*IO.pipe)
        ex.helper_thread { r.read }
        w
      end
      result = Bytepump.tee(src, [dst, *others], upstream_timeout: timeout[:up], downstream_timeout: timeout[:down])
      mine = result.destinations.first
      return [:timeout_downstream, mine.bytes_written] if mine.status == :timeout_downstream
      raise result.error || mine.error unless %i[done timeout_upstream].include?(result.status)

      [result.status, mine.bytes_written]
    end
  end

  # A Frames call as [status, payload bytes]: its timeouts raise, and a
  # write's counts include the 6-byte header.
  def self.framed(header = 0)
    yield
  rescue Bytepump::UpstreamTimeout, Bytepump::DownstreamTimeout => e
    [e.is_a?(Bytepump::UpstreamTimeout) ? :timeout_upstream : :timeout_downstream, [e.bytes_written - header, 0].max]
  end

  def self.http_body(framing)
    lambda do |_ex, src, dst, timeout, size|
      options = Bytepump::Native::Options.new(upstream_timeout: timeout[:up], downstream_timeout: timeout[:down],
                                              length: size, framing: framing)
      r = Bytepump::Native.pump(src, dst, options)
      raise r.error(src, dst) unless r.ok? || r.timeout?

      [r.status, r.bytes_written]
    end
  end

  plain = ->(data) { data }
  chunked = lambda do |data|
    chunks = data.bytes.each_slice(70_000).map { |s| format("%<n>x\r\n%<d>s\r\n", n: s.size, d: s.pack("C*")) }
    "#{chunks.join}0\r\n\r\n"
  end
  framed = ->(data) { [9, data.bytesize].pack("nN") + data }
  frames_timeout = ->(timeout) { [timeout[:up], timeout[:down]].compact.min }
  machines = [
    machine.new("splice_to", plain, plain, pumped, true),
    machine.new("buffer:", plain, plain, pumped(buffer: 4 << 20), true),
    machine.new("tee to one", plain, plain, teed(0), true),
    machine.new("tee to three", plain, plain, teed(2), true),
    machine.new("a frame's payload written", plain, framed, lambda { |_ex, src, dst, timeout, size|
      framed(6) { [:done, Bytepump::Frames.new(dst, timeout: frames_timeout.call(timeout)).write(9, src, length: size) - 6] }
    }, true),
    machine.new("a frame's payload read", framed, plain, lambda { |_ex, src, dst, timeout, _size|
      framed { [:done, Bytepump::Frames.new(src, timeout: frames_timeout.call(timeout)).read { dst }.last] }
    }, false),
    machine.new("an HTTP body by length", plain, plain, http_body(:length), false),
    machine.new("a chunked HTTP body", chunked, plain, http_body(:chunked), false)
  ].freeze

  def feed(io, chunks, pause: 0)
    helper_thread do
      chunks.each_with_index do |chunk, i|
        sleep pause if i.positive?
        io.write(chunk)
      end
    ensure
      io.close
    end
  end

  machines.each do |m|
    describe m.name do
      let(:data) { pattern(3 << 20, 16) }

      it "times out a stalled destination while the source makes progress, counting exactly what it took" do
        src, feeder = track(*UNIXSocket.pair)
        feed(feeder, [m.wrap.call(data)])
        dst, peer = track(*UNIXSocket.pair)
        status, delivered = m.run.call(self, src, dst, { up: 10, down: 0.3 }, data.bytesize)
        expect(status).to eq(:timeout_downstream)
        dst.close
        got = peer.read
        arrives = m.arrives.call(data)
        expect(got.bytesize).to be < arrives.bytesize
        expect(got == arrives.byteslice(0, got.bytesize)).to be(true)
        expect(got.bytesize - (arrives.bytesize - data.bytesize)).to eq(delivered)
      end

      it "goes on after a pause of the source longer than the downstream timeout" do
        if m.name.include?("frame")
          skip "Frames has one timeout for both sides: a pause of the source longer than it is a stall"
        end
        src, feeder = track(*UNIXSocket.pair)
        wrapped = m.wrap.call(data)
        feed(feeder, [wrapped.byteslice(0, 1 << 20), wrapped.byteslice((1 << 20)..)], pause: 0.6)
        dst, peer = track(*UNIXSocket.pair)
        got = helper_thread do
          out = +""
          while (chunk = peer.read(16 << 10))
            out << chunk
            sleep 0.001
          end
          out
        end
        expect(m.run.call(self, src, dst, { up: 10, down: 0.3 }, data.bytesize)).to eq([:done, data.bytesize])
        dst.close
        expect(got.value == m.arrives.call(data)).to be(true)
      end

      it "times out a blocking-mode source that sends nothing, and leaves it blocking" do
        src, feeder = track(*IO.pipe)
        src.nonblock = false
        dst, = track(*UNIXSocket.pair)
        expect(m.run.call(self, src, dst, { up: 0.3, down: 10 }, data.bytesize)).to eq([:timeout_upstream, 0])
        expect(src.nonblock?).to be(false)
        feeder.close
      end

      it "ends with IOError soon after another thread closes the destination under steady traffic" do
        src, feeder = track(*UNIXSocket.pair)
        trickle = helper_thread do
          # The framing before the payload (a frame header, a chunk-size
          # line), then payload bytes, one at a time.
          wrapped = m.wrap.call(data)
          feeder.write(wrapped.byteslice(0, wrapped.index(data.byteslice(0, 64))))
          200.times do
            feeder.write("z")
            sleep 0.02
          end
        rescue IOError, SystemCallError
          nil
        end
        dst, = track(*UNIXSocket.pair)
        closer = helper_thread do
          sleep 0.3
          dst.close
        end
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        expect { m.run.call(self, src, dst, { up: 10, down: 10 }, data.bytesize) }.to raise_error(IOError)
        # The source goes on for 4 s: the close ends the call long before.
        expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 2
        closer.join
        trickle.kill
      end

      it "ends at once on Thread#raise, leaking no fd" do
        pooled = -> { 2 * Bytepump::Native.pool_stats.first }
        before = open_fds - pooled.call
        src, = track(*UNIXSocket.pair)
        dst, = track(*UNIXSocket.pair)
        worker = helper_thread { m.run.call(self, src, dst, { up: nil, down: nil }, data.bytesize) }
        sleep 0.01 until worker.status == "sleep" || !worker.alive?
        sleep 0.1
        worker.raise(Interrupt, "stop")
        expect { worker.join(5) }.to raise_error(Interrupt, "stop")
        close_tracked
        expect(settled_fds(before + pooled.call) - pooled.call).to be <= before
      end

      if m.raw_source
        it "delivers /proc files and /dev/null, and appends to a file opened \"ab\"" do
          log = track(Tempfile.new("bytepump-sibling"))
          log.write("kept\n")
          log.flush
          appended = track(File.open(log.path, "ab"))
          proc_file = track(File.open("/proc/self/cmdline", "rb"))
          expected = File.binread("/proc/self/cmdline")
          expect(m.run.call(self, proc_file, appended, { up: 10, down: 10 }, expected.bytesize))
            .to eq([:done, expected.bytesize])
          expect(File.binread(log.path)).to eq("kept\n#{m.arrives.call(expected)}")
          null = track(File.open(File::NULL, "rb"))
          if m.name.start_with?("a frame")
            expect { m.run.call(self, null, appended, { up: 10, down: 10 }, 1) }.to raise_error(Bytepump::TruncatedFrame)
          else
            expect(m.run.call(self, null, appended, { up: 10, down: 10 }, 0)).to eq([:done, 0])
          end
        end
      end
    end
  end
end
