# frozen_string_literal: true

module Bytepump
  module HTTP
    # The body through Ruby, for a TLS source or a destination that is not an
    # IO: the same framing, counts, CRC and errors as the splice path, with
    # the same native chunked decoder.
    class CopyBody
      LINE_LIMIT = 16 * 1024

      def initialize(reader, dst, response, timeouts, crc32, uri) # rubocop:disable Metrics/ParameterLists
        @reader = reader
        @dst = dst
        @response = response
        @down_timeout = timeouts[:downstream_timeout]
        @sink = Sink.new(dst, @down_timeout)
        @crc = crc32 ? 0 : nil
        @uri = uri
        @written = 0
        @side = :upstream
      end

      def run(&progress)
        @progress = progress
        case @response.framing
        when :length then copy(@response.content_length)
        when :chunked then chunked
        else copy(nil)
        end
        Fetch.check_end(@uri, :done, @written, @response)
        FetchResult.new(bytes_written: @written, crc32: @crc, strategy: :copy)
      rescue UpstreamTimeout => e
        raise UpstreamTimeout.new("GET #{@uri}: #{e.message}, after #{@written} bytes", bytes_written: @written)
      rescue SystemCallError => e
        raise if e.is_a?(TransferError)

        raise Result.new(bytes_read: @written, bytes_written: @written, status: :error, errno: e.errno,
                         strategy: :copy, error_side: @side).error(@uri.to_s, @dst), cause: e
      end

      private

      # Copies +left+ bytes (nil: until EOF); false if EOF came first.
      def copy(left)
        while left.nil? || left.positive?
          return left.nil? if @reader.buffer.empty? && !@reader.fill

          data = @reader.take(left || @reader.buffer.bytesize)
          left -= data.bytesize if left
          deliver(data)
        end
        :done
      end

      # The native decoder does the framing, limits and errors, exactly as for
      # a spliced body; Ruby only fills the buffer and delivers the data.
      def chunked
        decoder = Native::ChunkedDecoder.new(LINE_LIMIT)
        loop do
          kind, consumed = decoder.next(@reader.buffer)
          case kind
          when :data then deliver(@reader.take(consumed))
          when :framing then @reader.take(consumed)
          when :done then return @reader.take(consumed)
          when :error then raise Fetch.chunked_error(@uri, decoder.error, @written)
          else raise Fetch.chunked_error(@uri, :truncated, @written) unless @reader.fill
          end
        end
      end

      def deliver(data)
        @crc = Zlib.crc32(data, @crc) if @crc
        @side = :downstream
        delivered = @sink.write(data) do |n|
          @written += n
          @progress&.call(n)
        end
        if delivered == :timeout
          raise DownstreamTimeout.new("GET #{@uri}: the destination accepted nothing for #{@down_timeout}s, " \
                                      "after #{@written} bytes", bytes_written: @written)
        end
        @side = :upstream
      end
    end
  end
end
