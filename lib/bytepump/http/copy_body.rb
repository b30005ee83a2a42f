# frozen_string_literal: true

module Bytepump
  module HTTP
    # The body through Ruby, for a TLS source or a destination that is not an
    # IO. The native BodyDecoder does the framing (Content-Length, chunked,
    # until close), the counting, the CRC and the errors, exactly as for a
    # spliced body; Ruby only reads, writes and waits.
    class CopyBody
      # The longest chunk-size or trailer line accepted.
      LINE_LIMIT = 16 * 1024

      def initialize(reader, dst, response, timeouts, crc32, uri) # rubocop:disable Metrics/ParameterLists
        @reader = reader
        @dst = dst
        @response = response
        @down_timeout = timeouts[:downstream_timeout]
        @waits = Native::Waits.new
        @sink = Sink.new(dst, @down_timeout, @waits)
        @uri = uri
        @decoder = Native::BodyDecoder.new(response.framing, response.content_length, LINE_LIMIT,
                                           crc32 ? 0 : nil)
        @side = :upstream
      end

      # Moves the body; returns a FetchResult. The block gets bytes written.
      def run(&progress)
        @progress = progress
        ended = decode
        @waits.settle
        result = @decoder.result(ended, ended == :error ? :upstream : nil, 0)
        raise Fetch.body_error(@uri, result, @response) if result.body_error

        FetchResult.new(bytes_written: result.bytes_written, crc32: result.crc32, strategy: :copy)
      rescue UpstreamTimeout => e
        written = @decoder.bytes_written
        raise UpstreamTimeout.new("GET #{@uri}: #{e.message}, after #{written} bytes", bytes_written: written)
      rescue SystemCallError => e
        raise if e.is_a?(TransferError)

        raise @decoder.result(:error, @side, e.errno).error(@uri.to_s, @dst), cause: e
      end

      private

      # :done, or :error when the decoder refused the body.
      def decode
        loop do
          kind, consumed = @decoder.next(@reader.buffer)
          case kind
          when :data then deliver(@reader.take(consumed))
          when :framing then @reader.take(consumed)
          when :done
            @reader.take(consumed)
            return :done
          when :error then return :error
          else return @decoder.finish unless @reader.fill
          end
        end
      end

      def deliver(data)
        @side = :downstream
        delivered = @sink.write(data) do |n|
          @decoder.wrote(n)
          @progress&.call(n)
        end
        if delivered == :timeout
          written = @decoder.bytes_written
          raise DownstreamTimeout.new("GET #{@uri}: the destination accepted nothing for #{@down_timeout}s, " \
                                      "after #{written} bytes", bytes_written: written)
        end
        @side = :upstream
      end
    end
  end
end
