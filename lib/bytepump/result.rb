# frozen_string_literal: true

module Bytepump
  # Mixed into the Errno::* exception a failed transfer raises, so callers can
  # `rescue Bytepump::TransferError` and still see the usual Errno class.
  module TransferError
    include Error

    # The Result of the failed transfer: counts, strategy, status :error.
    attr_reader :result

    def side = result.error_side
    def bytes_written = result.bytes_written
    def bytes_read = result.bytes_read

    def self.build(result, src, dst)
      side = result.error_side
      src = describe(src, "the source")
      dst = describe(dst, "the destination")
      where = { upstream: "reading upstream from #{src}", downstream: "writing downstream to #{dst}" }
              .fetch(side) { "pumping #{src} into #{dst}" }
      message = "bytepump: #{where} failed after #{result.bytes_written} bytes written " \
                "(#{result.bytes_read} read)"
      error = SystemCallError.new(message, result.errno)
      error.extend(self)
      error.instance_variable_set(:@result, result)
      error
    end

    def self.describe(io, role = "the other end")
      return role if io.nil?
      return io if io.is_a?(String) # a URL

      io.is_a?(IO) && !io.closed? ? "#{io.class}(fd #{io.fileno})" : io.class.to_s
    end
  end

  # The outcome of a transfer. Nothing is hidden: bytes taken from the source
  # but never delivered are #stranded. #crc32 is the CRC-32 of the bytes
  # written when the caller asked for it; #errno the failed syscall's errno
  # (status :error); #body_error / #parse_error why a chunked body was refused.
  # Native.pump builds it in C, setting the fields directly.
  class Result
    FIELDS = %i[bytes_read bytes_written status strategy error_side errno crc32 body_error parse_error].freeze
    attr_reader(*FIELDS)

    def initialize(bytes_read:, bytes_written:, status:, strategy:, error_side: nil, errno: 0, crc32: nil,
                   body_error: nil, parse_error: nil)
      @bytes_read = bytes_read
      @bytes_written = bytes_written
      @status = status
      @strategy = strategy
      @error_side = error_side
      @errno = errno
      @crc32 = crc32
      @body_error = body_error
      @parse_error = parse_error
      freeze
    end

    def ok? = status == :done
    TIMEOUTS = %i[timeout_upstream timeout_downstream].freeze
    def timeout? = TIMEOUTS.include?(status)
    def stranded = bytes_read - bytes_written
    def to_h = FIELDS.to_h { |f| [f, public_send(f)] }
    def deconstruct_keys(_keys) = to_h
    def ==(other) = other.is_a?(Result) && other.to_h == to_h
    def inspect = "#<#{self.class} #{to_h.compact.map { |k, v| "#{k}=#{v.inspect}" }.join(' ')}>"

    # The exception for a transfer that failed (nil when it did not or timed
    # out): the Errno::* of the failed syscall extended with TransferError,
    # naming +src+ and +dst+ when given.
    def error(src = nil, dst = nil)
      return if ok? || timeout?
      return TransferError.build(self, src, dst) if status == :error

      IOError.new("bytepump: the transfer stopped (#{status}) after #{bytes_written} bytes written")
    end
  end

  module Native
    # The options of Native.pump, read by the binding by name. Validated by
    # the callers in lib/ (Bytepump.pump, Fetch), not here.
    class Options
      FIELDS = %i[upstream_timeout downstream_timeout length offset pipe_size crc32 framing buffer].freeze
      attr_reader(*FIELDS)

      def initialize(upstream_timeout: nil, downstream_timeout: nil, length: nil, offset: nil, pipe_size: nil,
                     crc32: nil, framing: nil, buffer: nil)
        @upstream_timeout = upstream_timeout
        @downstream_timeout = downstream_timeout
        @length = length
        @offset = offset
        @pipe_size = pipe_size
        @crc32 = crc32
        @framing = framing
        @buffer = buffer
        freeze
      end
    end
  end
end
