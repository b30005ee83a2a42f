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

    def self.build(errno, result, src, dst)
      side = result.error_side
      where = { upstream: "reading upstream from #{describe(src)}",
                downstream: "writing downstream to #{describe(dst)}" }
              .fetch(side) { "pumping #{describe(src)} into #{describe(dst)}" }
      message = "bytepump: #{where} failed after #{result.bytes_written} bytes written " \
                "(#{result.bytes_read} read)"
      error = SystemCallError.new(message, errno)
      error.extend(self)
      error.instance_variable_set(:@result, result)
      error
    end

    def self.describe(io)
      return io if io.is_a?(String) # a URL

      io.is_a?(IO) && !io.closed? ? "#{io.class}(fd #{io.fileno})" : io.class.to_s
    end
  end

  # The outcome of a transfer. Nothing is hidden: bytes taken from the source
  # but never delivered are #stranded.
  # #crc32 is the CRC-32 of the bytes written when the caller asked for it.
  Result = Struct.new(:bytes_read, :bytes_written, :status, :strategy, :error_side, :error, :crc32,
                      keyword_init: true) do
    def self.from_native(raw, src, dst)
      bytes_read, bytes_written, status, errno, side, strategy, crc32 = raw
      result = new(bytes_read: bytes_read, bytes_written: bytes_written, status: status,
                   strategy: strategy, error_side: side == :none ? nil : side, crc32: crc32)
      result.error = error_for(errno, result, src, dst)
      result.freeze
    end

    def self.error_for(errno, result, src, dst)
      return if result.ok? || result.timeout?
      return TransferError.build(errno, result, src, dst) if result.status == :error

      IOError.new("bytepump: the transfer stopped (#{result.status}) after #{result.bytes_written} bytes written")
    end

    def ok? = status == :done
    def timeout? = %i[timeout_upstream timeout_downstream].include?(status)
    def stranded = bytes_read - bytes_written
  end
end
