# frozen_string_literal: true

module Bytepump
  module HTTP
    # The body through Ruby, for a TLS source or a destination that is not an
    # IO: the same framing, counts, CRC and errors as the splice path, using
    # the same native parsers for chunk lines.
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

        result = Result.new(bytes_read: @written, bytes_written: @written, status: :error, strategy: :copy,
                            error_side: @side).freeze
        raise TransferError.build(e.errno, result, @uri.to_s, @dst), cause: e
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

      def chunked
        loop do
          size = parse(:size)
          break if size.zero?
          raise Fetch.chunked_error(@uri, :truncated, @written) if copy(size) == :eof

          parse(:end)
        end
        parse(:trailer)
      end

      # Consumes one framing element; the chunk size for :size.
      def parse(kind)
        loop do
          parsed = Native.parse_chunk(kind, @reader.buffer)
          raise Fetch.chunked_error(@uri, parsed, @written) if parsed.is_a?(String)

          if parsed
            @reader.take(parsed[0])
            return parsed[1]
          end
          raise Fetch.chunked_error(@uri, :line_too_long, @written) if @reader.buffer.bytesize >= LINE_LIMIT
          raise Fetch.chunked_error(@uri, :truncated, @written) unless @reader.fill
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
