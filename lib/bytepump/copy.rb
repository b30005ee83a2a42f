# frozen_string_literal: true

require "io/wait"
require "bytepump/sink"

module Bytepump
  # The path for ends that are not real IOs (StringIO, zip streamers, TLS
  # sockets): bytes pass through Ruby, with the same counts, stall timeouts
  # and progress as the splice path. An IO destination gets the downstream
  # timeout; a #write of another object that blocks is that object's own
  # business: it cannot be timed out from here.
  class Copy
    CHUNK = 64 * 1024

    def initialize(src, dst, upstream_timeout, downstream_timeout, length, offset) # rubocop:disable Metrics/ParameterLists
      @src = src
      @dst = dst
      @sink = Sink.new(dst, downstream_timeout)
      @timeout = upstream_timeout
      @length = length
      @offset = offset
      @read = 0
      @written = 0
    end

    def run(&)
      while (chunk = guarded(:upstream) { next_chunk })
        return finish(:timeout_upstream) if chunk == :timeout

        @read += chunk.bytesize
        return finish(:timeout_downstream) if deliver(chunk, &) == :timeout
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

    # :timeout if the destination stalled past its timeout.
    def deliver(chunk)
      guarded(:downstream) do
        @sink.write(chunk) do |n|
          @written += n
          yield n if block_given?
        end
      end
    end

    # A failing syscall on either side raises its Errno with the counts so far.
    def guarded(side)
      yield
    rescue SystemCallError => e
      raise Result.new(bytes_read: @read, bytes_written: @written, status: :error, errno: e.errno, strategy: :copy,
                       error_side: side).error(@src, @dst), cause: e
    end

    def finish(status)
      Result.new(bytes_read: @read, bytes_written: @written, status: status, strategy: :copy)
    end
  end
end
