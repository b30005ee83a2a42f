# frozen_string_literal: true

module Bytepump
  # The seed gem's IO surface, mixed into IO.
  module IOMethods
    # Splices this IO's bytes into +dst+ (see Bytepump.pump). +timeout+ is a
    # stall timeout in seconds for each side.
    #
    # Returns the Integer bytes written, or :timeout_upstream /
    # :timeout_downstream when that side made no progress for +timeout+.
    def splice_to(dst, timeout = nil, length: nil, offset: nil, &block)
      result = Bytepump.pump(self, dst, timeout: timeout, length: length, offset: offset, &block)
      result.timeout? ? result.status : result.bytes_written
    end
    alias spliceTo splice_to
  end
end

IO.include(Bytepump::IOMethods)
