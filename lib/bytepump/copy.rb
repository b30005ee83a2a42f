# frozen_string_literal: true

require "io/wait"

module Bytepump
  # The path for ends that are not real IOs (StringIO, zip streamers, TLS
  # sockets): bytes pass through Ruby, with the same counts, upstream stall
  # timeout and progress as the splice path. A #write that blocks is the
  # destination's own business: it cannot be timed out from here.
  class Copy
    CHUNK = 64 * 1024

    def initialize(src, dst, upstream_timeout, length, offset)
      @src = src
      @dst = dst
      @timeout = upstream_timeout
      @length = length
      @offset = offset
      @read = 0
      @written = 0
    end

    def run(&block)
      while (chunk = guarded(:upstream) { next_chunk })
        return finish(:timeout_upstream) if chunk == :timeout

        @read += chunk.bytesize
        deliver(chunk)
        yield chunk.bytesize if block
      end
      finish(:done)
    end

    private

    def next_chunk
      want = @length ? [CHUNK, @length - @read].min : CHUNK
      return nil if want.zero?
      return pread(want) if @offset
      return read_io(want) if @src.is_a?(IO)

      @src.respond_to?(:readpartial) ? readpartial(want) : @src.read(want)
    end

    def pread(want)
      @src.pread(want, @offset + @read)
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

        return :timeout unless @src.wait_readable(@timeout)
      end
    end

    def deliver(chunk)
      written = guarded(:downstream) { @dst.write(chunk) }
      @written += written.is_a?(Integer) ? written : chunk.bytesize
    end

    # A failing syscall on either side raises its Errno with the counts so far.
    def guarded(side)
      yield
    rescue SystemCallError => e
      result = Result.new(bytes_read: @read, bytes_written: @written, status: :error,
                          strategy: :copy, error_side: side).freeze
      raise TransferError.build(e.errno, result, @src, @dst), cause: e
    end

    def finish(status)
      Result.new(bytes_read: @read, bytes_written: @written, status: status, strategy: :copy).freeze
    end
  end
end
