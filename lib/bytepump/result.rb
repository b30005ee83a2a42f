# frozen_string_literal: true

module Bytepump
  # Mixed into the Errno::* exception a failed transfer raises, so callers can
  # `rescue Bytepump::TransferError` and still see the usual Errno class.
  module TransferError
    include Error

    # The Result of the failed transfer: counts, strategy, status :error.
    attr_reader :result

    # @return [Symbol, nil] :upstream or :downstream: the side that failed
    def side = result.failed_side
    # @return [Integer] bytes delivered before the failure
    def bytes_written = result.bytes_written
    # @return [Integer] bytes taken from the source before the failure
    def bytes_read = result.bytes_read

    # The exception for a failed +result+, naming the side, with this module
    # mixed in: the Errno of the failed syscall, or for a side that outlasted
    # its IO's own IO#timeout, IO::TimeoutError (see IOTimeout).
    def self.build(result, src, dst)
      side = result.failed_side
      ends = { upstream: src, downstream: dst }
      where = { upstream: "reading upstream from #{describe(src, 'the source')}",
                downstream: "writing downstream to #{describe(dst, 'the destination')}" }
              .fetch(side) { "pumping #{describe(src, 'the source')} into #{describe(dst, 'the destination')}" }
      counts = "#{result.bytes_written} bytes written (#{result.bytes_read} read)"
      error = if result.timeout?
                IOTimeout.build("bytepump: #{where}", ends[side], side: side, bytes_written: result.bytes_written,
                                                                  counts: counts)
              else
                SystemCallError.new("bytepump: #{where} failed after #{counts}", result.errno)
              end
      error.extend(self)
      error.instance_variable_set(:@result, result)
      error
    end

    # A short description of an end for messages: "TCPSocket(fd 7)", a URL, or +role+.
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
    # The fields, in the order #to_h lists them.
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
    # The statuses #timeout? is true for.
    TIMEOUTS = %i[timeout_upstream timeout_downstream].freeze
    # The side each timeout status is of.
    TIMEOUT_SIDES = { timeout_upstream: :upstream, timeout_downstream: :downstream }.freeze
    def timeout? = TIMEOUTS.include?(status)
    # @return [Symbol, nil] the side that failed (error_side) or stalled
    #   (:upstream for :timeout_upstream, :downstream for :timeout_downstream)
    def failed_side = error_side || TIMEOUT_SIDES[status]
    # @return [Integer] bytes taken from the source but never delivered
    def stranded = bytes_read - bytes_written
    # @return [Hash{Symbol => Object}] every field
    def to_h = FIELDS.to_h { |f| [f, public_send(f)] }
    # For pattern matching: +in {status: :done, bytes_written:}+.
    def deconstruct_keys(_keys) = to_h
    # Results are equal when every field is.
    def ==(other) = other.is_a?(Result) && other.to_h == to_h
    # @return [String]
    def inspect = "#<#{self.class} #{to_h.compact.map { |k, v| "#{k}=#{v.inspect}" }.join(' ')}>"

    # The exception for a transfer that failed (nil when it did not or timed
    # out): the Errno::* of the failed syscall extended with TransferError,
    # naming +src+ and +dst+ when given.
    # +io_timeout+: the timeout that ended it was an IO's own IO#timeout (the
    # call gave none), which raises IO::TimeoutError as Ruby's IO methods do.
    def error(src = nil, dst = nil, io_timeout = false) # rubocop:disable Style/OptionalBooleanParameter
      return if ok? || (timeout? && !io_timeout)
      return TransferError.build(self, src, dst) if timeout? || status == :error

      IOError.new("bytepump: the transfer stopped (#{status}) after #{bytes_written} bytes written")
    end
  end

  # The C++ core, as the extension defines it (bytepump.so). Not a public API:
  # use Bytepump, IO#splice_to and friends.
  # @api private
  module Native
    # The options of Native.pump, read by the binding by name. Validated by
    # the callers in lib/ (Bytepump.pump, Fetch), not here.
    class Options
      # The option names, read by the binding as instance variables.
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
