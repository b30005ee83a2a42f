# frozen_string_literal: true

# Bytepump.tee: one source into several IOs, and its TeeResult.
module Bytepump
  # The outcome of Bytepump.tee: what was read from the source, how the tee
  # ended, and one Destination per IO, in the order given.
  class TeeResult
    # One destination of a tee: the IO, the bytes it took, and how it ended:
    # :done (every byte), :error (#errno says why, e.g. EPIPE) or
    # :timeout_downstream (it took nothing for the downstream timeout). A
    # failed destination is dropped and the others go on.
    #
    # +io_timeout+ is true when the timeout that dropped it was the IO's own
    # IO#timeout (the tee was given none): its error is an IO::TimeoutError.
    Destination = Struct.new(:io, :bytes_written, :status, :errno, :io_timeout) do
      def ok? = status == :done

      # The exception for a failed destination (nil if it is fine).
      def error
        case status
        when :done then nil
        when :timeout_downstream
          if io_timeout
            return IOTimeout.build("tee: writing to #{TransferError.describe(io)}", io,
                                   side: :downstream, bytes_written: bytes_written)
          end

          DownstreamTimeout.new("tee: #{TransferError.describe(io)} took nothing for the downstream timeout " \
                                "after #{bytes_written} bytes", bytes_written: bytes_written)
        else
          SystemCallError.new("tee: writing to #{TransferError.describe(io)} failed after #{bytes_written} bytes",
                              errno)
        end
      end
    end

    # status: :done (the source ended, or length was reached, and every
    # destination still in the tee got every byte), :timeout_upstream, or
    # :error with error_side :upstream (the source failed: #errno) or
    # :downstream (every destination failed).
    attr_reader :bytes_read, :status, :errno, :error_side, :destinations

    def initialize(bytes_read, status, errno, error_side, destinations)
      @bytes_read = bytes_read
      @status = status
      @errno = errno
      @error_side = error_side
      @destinations = destinations.freeze
      freeze
    end

    # True when the tee and every destination are done.
    def ok? = status == :done && destinations.all?(&:ok?)
    # @return [Array<Integer>] the bytes each destination took, in order
    def bytes_written = destinations.map(&:bytes_written)
    # @return [Array<Destination>] the destinations that were dropped
    def failed = destinations.reject(&:ok?)
  end

  # Raised by IO#splice_to with an Array when a destination failed: the
  # others went on to the end. #result is the whole TeeResult.
  class TeeError < IOError
    include Error

    attr_reader :result

    def initialize(result)
      @result = result
      lines = result.failed.map { |d| d.error&.message || "#{d.status} after #{d.bytes_written} bytes" }
      super("#{result.failed.size} of #{result.destinations.size} tee destinations failed: #{lines.join('; ')}")
    end
  end

  class << self
    # Moves +src+ (an IO) into every IO of +dsts+: each gets every byte.
    # tee(2) copies each chunk into a pipe per destination but the last and
    # splice(2) moves it into the last, so the bytes never enter Ruby. Each
    # destination drains at its own pace; the slowest holds the source back
    # by at most one pipe. A destination that fails, or takes nothing for
    # +downstream_timeout+ seconds, is dropped with its count and error, and
    # the others go on. The block gets the bytes newly read from +src+.
    # Without timeouts of its own, the source and each destination have
    # their IO's own IO#timeout (Ruby 3.2+): the source running out of it
    # raises IO::TimeoutError, a destination is dropped with one.
    # Returns a TeeResult; raises the Errno of a failing source.
    def tee(src, dsts, timeout: nil, upstream_timeout: timeout, downstream_timeout: timeout, length: nil, &block)
      check_timeout(:timeout, timeout)
      check_timeout(:downstream_timeout, downstream_timeout) # Native.tee takes each destination's when nil
      check_count(:length, length)
      raise TypeError, "tee: src must be an IO (got #{src.class})" unless src.is_a?(IO)
      raise TypeError, "tee: dsts must be an Array of IOs (got #{dsts.class})" unless dsts.is_a?(Array)

      up = check_timeout(:upstream_timeout, upstream_timeout, src)
      # A Tempfile is its File, as for splice_to.
      read, status, errno, side, per = Native.tee(src, dsts.map { |d| unwrap(d) }, up, downstream_timeout, length,
                                                  &block)
      result = TeeResult.new(read, status, errno, side, tee_destinations(dsts, per, downstream_timeout))
      error = source_error(src, result, upstream_timeout)
      raise error if error

      result
    end

    # The exception for a tee that ended on its source: a failed read, or a
    # stall past the source's own IO#timeout (+given+: the upstream timeout
    # the call was given). nil otherwise.
    def source_error(src, result, given)
      from = "tee: reading from #{TransferError.describe(src)}"
      if result.status == :error && result.error_side == :upstream
        SystemCallError.new("#{from} failed after #{result.bytes_read} bytes", result.errno)
      elsif result.status == :timeout_upstream && given.nil?
        IOTimeout.build(from, src, side: :upstream, bytes_written: result.bytes_written.min,
                                   counts: "#{result.bytes_read} bytes read")
      end
    end
    private :source_error

    # The Destinations of Native.tee's per-destination outcomes, for the
    # objects as given; +given+ is the downstream timeout the call was given.
    def tee_destinations(dsts, per, given)
      per.each_with_index.map do |(written, status, errno), i|
        TeeResult::Destination.new(dsts[i], written, status, errno, status == :timeout_downstream && given.nil?)
      end
    end
    private :tee_destinations

    # IO#splice_to with an Array of destinations.
    def splice_to_each(src, dsts, timeout, length, &)
      result = tee(src, dsts, timeout: timeout, length: length, &)
      return result.status if result.status == :timeout_upstream
      raise TeeError, result unless result.ok?

      result.bytes_written
    end
  end
end
