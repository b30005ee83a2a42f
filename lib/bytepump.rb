# frozen_string_literal: true

require "bytepump/version"
require "bytepump/bytepump"
require "bytepump/errors"
require "bytepump/result"
require "bytepump/copy"
require "bytepump/fetch"
require "bytepump/http/copy_body"
require "bytepump/frames"
require "bytepump/tee"
require "bytepump/io_methods"

# Zero-copy transfers between file descriptors with Linux splice(2).
#
#   File.open(path) { |f| f.splice_to(socket, 60) { |n| progress(n) } }
#   Bytepump.pump(src, dst, timeout: 5) # => Bytepump::Result
module Bytepump
  class << self
    # Moves bytes from +src+ to +dst+ until EOF or +length+ bytes.
    #
    # +src+ is an IO (or anything with #readpartial / #read), +dst+ an IO, a
    # Tempfile, or anything with #write (StringIO, a zip streamer, a TLS
    # socket). Real IOs on both sides are spliced in the kernel; other
    # objects are copied through Ruby with the same counting, progress and
    # upstream timeout (their own #write can't be timed out from here).
    #
    # Timeouts are stall timeouts in seconds: how long one side may make no
    # progress. A side given none (nil) has its IO's own IO#timeout (Ruby
    # 3.2+), and running out of that raises IO::TimeoutError (see IOTimeout);
    # Float::INFINITY waits forever. The block gets the bytes written since
    # its last call.
    #
    # Returns a Result (status :done, :timeout_upstream or
    # :timeout_downstream). A failing syscall raises its Errno::* exception,
    # extended with Bytepump::TransferError (side, result, counts).
    def pump(src, dst, timeout: nil, upstream_timeout: timeout, downstream_timeout: timeout,
             length: nil, offset: nil, pipe_size: nil, buffer: nil, &block)
      check_timeout(:timeout, timeout) # named as the caller passed it
      check_count(:length, length)
      check_count(:offset, offset)
      check_count(:pipe_size, pipe_size)
      check_count(:buffer, buffer)
      src = unwrap(src)
      dst = unwrap(dst)
      given = { timeout_upstream: upstream_timeout, timeout_downstream: downstream_timeout }
      upstream_timeout = check_timeout(:upstream_timeout, upstream_timeout, src)
      downstream_timeout = check_timeout(:downstream_timeout, downstream_timeout, dst)
      check_ends(src, dst, offset)

      result = if src.is_a?(IO) && dst.is_a?(IO)
                 options = Native::Options.new(upstream_timeout: upstream_timeout,
                                               downstream_timeout: downstream_timeout,
                                               length: length, offset: offset, pipe_size: pipe_size,
                                               buffer: buffer)
                 Native.pump(src, dst, options, &block)
               else
                 Copy.new(src, dst, upstream_timeout, downstream_timeout, length, offset).run(&block)
               end
      error = result.error(src, dst, result.timeout? && given[result.status].nil?)
      raise error if error

      result
    end

    # Reads an HTTP/1.x response head off +io+ and not one byte of the body,
    # which stays in +io+ for a splice_to (see IO#skip_headers). Without a
    # +timeout+, io's own IO#timeout applies (IO::TimeoutError).
    def skip_headers(io, limit = Fetch::HEAD_LIMIT, timeout: nil, max_headers: Fetch::MAX_HEADERS)
      raise TypeError, "skip_headers needs an IO (got #{io.class})" unless io.is_a?(IO)

      check_count(:limit, limit)
      raise ArgumentError, "limit must be > 0" if limit.zero?

      given = timeout
      timeout = check_timeout(:timeout, timeout, io)
      status, errno, parse_error, consumed, interim, head, fields = Native.skip_headers(io, limit, max_headers, timeout)
      case status
      when :done then Response.new(fields, head: head, head_size: consumed, interim_responses: interim)
      when :timeout
        if given.nil?
          raise IOTimeout.build("skip_headers", io, side: :upstream, bytes_written: 0,
                                                    counts: "#{consumed} bytes of the head")
        end

        raise UpstreamTimeout, "skip_headers: nothing arrived for #{timeout}s"
      when :error then raise SystemCallError.new("skip_headers on #{TransferError.describe(io)}", errno)
      else raise head_error(status, "skip_headers", limit: limit, parse_error: parse_error, consumed: consumed)
      end
    end

    # The error for a response head that ended +status+ (:malformed,
    # :too_large, :eof), whichever path read it.
    def head_error(status, where, limit:, parse_error:, consumed:)
      case status
      when :malformed then MalformedResponse.new("#{where}: malformed response head: #{parse_error}")
      when :too_large then HeadTooLarge.new("#{where}: the response head is over #{limit} bytes")
      else TruncatedHead.new("#{where}: end of file #{consumed} bytes into the response head")
      end
    end

    # GETs +url+ and writes the body into +into+ (see IO#splice_from for the
    # options). Returns a FetchResult: bytes_written, the final response head,
    # and with crc32: true the CRC-32 of the body (as zip data descriptors
    # need), computed from a tee(2) copy so the body itself is still spliced.
    def fetch(url, into:, **options, &progress)
      Fetch.new(url, into: into, **options).run(&progress)
    end

    private

    # Tempfile delegates to a real File: splicing that is exactly as safe.
    # Nothing else is unwrapped (a TLS socket's #to_io is the raw socket).
    def unwrap(io)
      defined?(::Tempfile) && io.is_a?(::Tempfile) ? io.__getobj__ : io
    end

    def check_ends(src, dst, offset)
      raise TypeError, "src must be an IO or respond to #readpartial or #read (got #{src.class})" unless readable?(src)
      raise TypeError, "dst must be an IO or respond to #write (got #{dst.class})" unless writable?(dst)
      raise ArgumentError, "src and dst are the same object" if src.equal?(dst)
      raise ArgumentError, "offset: needs an IO source (got #{src.class})" if offset && !src.is_a?(IO)
    end

    def readable?(src) = src.is_a?(IO) || src.respond_to?(:readpartial) || src.respond_to?(:read)
    def writable?(dst) = dst.is_a?(IO) || dst.respond_to?(:write)

    # Returns the timeout to use: nil (none) for Float::INFINITY, and for
    # nil, +io+'s own IO#timeout (nil when it has none).
    def check_timeout(name, value, io = nil) = Native.check_timeout(name, value, io)
    def check_count(name, value) = Native.check_count(name, value)
  end
end
