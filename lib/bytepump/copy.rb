# frozen_string_literal: true

require "bytepump/sink"

module Bytepump
  # The path for ends that are not real IOs (StringIO, zip streamers, TLS
  # sockets): bytes pass through Ruby, with the same counts, stall timeouts
  # and progress as the splice path. The native BodyDecoder (a plain copy:
  # until the source ends, at most +length+ bytes) says how much to read and
  # counts what was read and written; Ruby reads, writes and waits. An IO
  # destination gets the downstream timeout; a #write of another object that
  # blocks is that object's own business: it cannot be timed out from here.
  class Copy
    # Bytes read from the source per call.
    CHUNK = 64 * 1024

    def initialize(src, dst, upstream_timeout, downstream_timeout, length, offset) # rubocop:disable Metrics/ParameterLists
      @src = src
      @dst = dst
      @waits = Native::Waits.new
      @sink = Sink.new(dst, downstream_timeout, @waits)
      @timeout = upstream_timeout
      @offset = offset
      @decoder = Native::BodyDecoder.new(:close, length, 0, nil)
    end

    # Moves the bytes; returns a Result. The block gets bytes written.
    def run(&)
      loop do
        want = @decoder.want(CHUNK)
        break if want.zero?

        chunk = guarded(:upstream) { read(want) }
        break if chunk.nil? || chunk.empty?
        return finish(:timeout_upstream) if chunk == :timeout

        # A data step: all of the chunk, unless a #read ignored +want+.
        _, taken = @decoder.next(chunk)
        chunk = chunk.byteslice(0, taken) if taken < chunk.bytesize
        return finish(:timeout_downstream) if deliver(chunk, &) == :timeout
      end
      finish(:done)
    end

    private

    def read(want)
      return pread(want) if @offset
      return read_io(want) if @src.is_a?(IO)

      @src.respond_to?(:readpartial) ? readpartial(want) : @src.read(want)
    end

    def pread(want)
      @src.pread(want, @offset + @decoder.bytes_read)
    rescue EOFError
      nil
    end

    def readpartial(want)
      @src.readpartial(want)
    rescue EOFError
      nil
    end

    def read_io(want)
      loop do
        chunk = @src.read_nonblock(want, exception: false)
        return chunk unless chunk == :wait_readable

        return :timeout unless @waits.wait(@src, IO::READABLE, @timeout)
      end
    end

    # :timeout if the destination stalled past its timeout.
    def deliver(chunk)
      guarded(:downstream) do
        @sink.write(chunk) do |n|
          @decoder.wrote(n)
          yield n if block_given?
        end
      end
    end

    # A failing syscall on either side raises its Errno with the counts so far.
    def guarded(side)
      yield
    rescue SystemCallError => e
      raise @decoder.result(:error, side, e.errno).error(@src, @dst), cause: e
    end

    def finish(status)
      @waits.settle
      @decoder.result(status, nil, 0)
    end
  end
end
