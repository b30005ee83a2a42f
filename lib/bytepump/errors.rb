# frozen_string_literal: true

module Bytepump
  # Every error bytepump raises on its own account includes this module, so
  # `rescue Bytepump::Error` catches them all. Each is also an IOError (or its
  # EOFError subclass) or an Errno::* exception where one fits.
  module Error; end

  # Errors raised after some body bytes may already be in the destination.
  module PartialWrite
    # Body bytes delivered to the destination before the error.
    attr_reader :bytes_written

    # @param message [String, nil]
    # @param bytes_written [Integer] body bytes delivered before the error
    def initialize(message = nil, bytes_written: 0)
      super(message)
      @bytes_written = bytes_written
    end
  end

  # The response head is not HTTP/1.x, or the body's framing is broken
  # (conflicting Content-Length, a bad chunk size): the message says which.
  # #bytes_written counts the body bytes delivered before the break.
  class MalformedResponse < IOError
    include Error
    include PartialWrite
  end

  # The response head (interim 1xx heads included) is longer than the limit.
  class HeadTooLarge < IOError
    include Error
  end

  # The connection ended before the end of the response head.
  class TruncatedHead < EOFError
    include Error
  end

  # A non-2xx final status. Nothing was written to the destination.
  class HTTPError < IOError
    include Error

    attr_reader :url, :response

    def initialize(message, url:, response:)
      super(message)
      @url = url
      @response = response
    end

    # @return [Integer] the response status, e.g. 404
    def status = response.status
    # @return [Integer] always 0: nothing was written for a refused status
    def bytes_written = 0
  end

  # More redirects than max_redirects allows (or a redirect without Location).
  class RedirectError < IOError
    include Error

    attr_reader :url, :redirects

    def initialize(message, url:, redirects:)
      super(message)
      @url = url
      @redirects = redirects
    end
  end

  # The body ended before its Content-Length, or a chunked body before its
  # last chunk. #expected is the Content-Length (nil for chunked).
  class ShortBody < EOFError
    include Error
    include PartialWrite

    attr_reader :expected

    def initialize(message, bytes_written: 0, expected: nil)
      super(message, bytes_written: bytes_written)
      @expected = expected
    end
  end

  # A timeout; the subclass says which one.
  class Timeout < IOError
    include Error
    include PartialWrite
  end

  # Mixed into the IO::TimeoutError (Ruby 3.2+) raised when a side made no
  # progress for its IO's own IO#timeout. A call given no timeout of its own
  # waits on each IO as long as that IO's #timeout allows, and runs out of it
  # as Ruby's IO methods do; a timeout given to the call still returns
  # :timeout_upstream / :timeout_downstream or raises UpstreamTimeout /
  # DownstreamTimeout.
  module IOTimeout
    include Error

    # @return [Symbol] :upstream or :downstream: the side that made no progress
    attr_reader :side
    # @return [Integer] bytes delivered before the timeout
    attr_reader :bytes_written
    # @return [Numeric, nil] the IO#timeout that ran out, in seconds
    attr_reader :timeout

    # An IO::TimeoutError with this module, its message +where+, then what ran out and +counts+.
    def self.build(where, io, side:, bytes_written:, counts: "#{bytes_written} bytes written")
      timeout = io.timeout if io.respond_to?(:timeout)
      span = timeout ? "for #{timeout} s (its IO#timeout)" : "within its IO#timeout"
      error = IO::TimeoutError.new("#{where} timed out: nothing moved #{span} after #{counts}")
      error.extend(self)
      error.instance_variable_set(:@side, side)
      error.instance_variable_set(:@bytes_written, bytes_written)
      error.instance_variable_set(:@timeout, timeout)
      error
    end
  end

  # No TCP (or TLS) connection within connect_timeout.
  class ConnectTimeout < Timeout; end
  # The server sent nothing for upstream_timeout (head or body).
  class UpstreamTimeout < Timeout; end
  # The destination accepted nothing for downstream_timeout.
  class DownstreamTimeout < Timeout; end

  # A frame header with a length of 0 or over Frames::MAX_LENGTH. The
  # reader has reset: the next Frames#read reads a new header.
  class InvalidFrame < IOError
    include Error

    attr_reader :channel, :length

    def initialize(message, channel:, length:)
      super(message)
      @channel = channel
      @length = length
    end
  end

  # The frame stream ended inside a frame. #bytes_written counts the payload
  # bytes of that frame delivered before the end.
  class TruncatedFrame < EOFError
    include Error
    include PartialWrite
  end
end
