# frozen_string_literal: true

module Bytepump
  # The seed gem's IO surface, mixed into IO.
  module IOMethods
    # Splices this IO's bytes into +dst+ (see Bytepump.pump). +timeout+ is a
    # stall timeout in seconds for each side.
    #
    # Returns the Integer bytes written, or :timeout_upstream /
    # :timeout_downstream when that side made no progress for +timeout+.
    #
    # With an Array of IOs every one gets every byte (see Bytepump.tee):
    # returns the Array of bytes each took, or :timeout_upstream; raises
    # TeeError if a destination failed, after the others got everything.
    #
    # +buffer+: up to that many bytes read ahead into kernel pipes while +dst+
    # is slow, so a fast source (an upstream socket) is drained and done early.
    def splice_to(dst, timeout = nil, length: nil, offset: nil, buffer: nil, &block)
      # Two IOs: straight to the native transfer, no Options or Result.
      return Native.splice(self, dst, timeout, length, offset, &block) if dst.is_a?(IO) && !equal?(dst) && !buffer

      if dst.is_a?(Array)
        raise ArgumentError, "splice_to: offset: and buffer: work with one destination only" if offset || buffer

        return Bytepump.splice_to_each(self, dst, timeout, length, &block)
      end

      result = Bytepump.pump(self, dst, timeout: timeout, length: length, offset: offset, buffer: buffer, &block)
      result.timeout? ? result.status : result.bytes_written
    end
    alias spliceTo splice_to

    # Reads an HTTP/1.x response head and not one byte more: the body is left
    # for splice_to. Returns a Bytepump::Response. Raises
    # Bytepump::MalformedResponse (naming what is wrong), HeadTooLarge past
    # +limit+ bytes, TruncatedHead (an EOFError) at EOF, UpstreamTimeout.
    def skip_headers(limit = 64 * 1024, timeout: nil)
      Bytepump.skip_headers(self, limit, timeout: timeout)
    end
    alias skipHeaders skip_headers

    # GETs +url+ and splices the body into this IO; returns the Integer body
    # bytes written. http:// bodies never enter user space; https:// bodies
    # are decrypted by OpenSSL, so they pass through Ruby.
    #
    # timeout: is the default for connect_timeout:, upstream_timeout: and
    # downstream_timeout:. Non-2xx statuses, short bodies, broken framing and
    # timeouts raise (see Bytepump::Error); the block gets bytes written.
    # on_response: is called with the final Bytepump::Response once its status
    # is accepted, before the body moves.
    def splice_from(url:, timeout: 60, headers: {}, max_redirects: 5, **options, &block)
      Bytepump.fetch(url, into: self, timeout: timeout, headers: headers, max_redirects: max_redirects,
                          **options, &block).bytes_written
    end
    alias spliceFrom splice_from
  end
end

IO.include(Bytepump::IOMethods)
