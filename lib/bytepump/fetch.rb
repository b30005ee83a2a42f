# frozen_string_literal: true

require "zlib"
require "bytepump/http/response"
require "bytepump/http/request"
require "bytepump/http/connection"

module Bytepump
  # What Bytepump.fetch did: body bytes written, the final response head, the
  # CRC-32 of the body when asked for, the URL the body came from and how it
  # got there (:splice_pipe, :splice_direct for a zero-copy path, :copy when
  # bytes passed through Ruby).
  FetchResult = Struct.new(:bytes_written, :response, :crc32, :url, :redirects, :strategy,
                           keyword_init: true)

  # One GET, redirects followed, body into an IO or a #write-able object.
  class Fetch
    # Raises for a stall timeout of the spliced body.
    def self.check_timeout(uri, status, written)
      case status
      when :timeout_upstream
        raise UpstreamTimeout.new("GET #{uri}: the server sent nothing for the stall timeout, after " \
                                  "#{written} bytes", bytes_written: written)
      when :timeout_downstream
        raise DownstreamTimeout.new("GET #{uri}: the destination accepted nothing for the stall timeout, " \
                                    "after #{written} bytes", bytes_written: written)
      end
    end

    # The exception for a body the native decoder refused (result.body_error:
    # :truncated is a ShortBody, broken chunked framing a MalformedResponse).
    def self.body_error(uri, result, response)
      written = result.bytes_written
      at = "after #{written} bytes"
      case result.body_error
      when :truncated
        expected = response.content_length
        if expected
          return ShortBody.new("GET #{uri}: the body ended after #{written} of #{expected} bytes",
                               bytes_written: written, expected: expected)
        end

        ShortBody.new("GET #{uri}: the chunked body ended before its last chunk, #{at}", bytes_written: written)
      when :line_too_long
        MalformedResponse.new("GET #{uri}: a chunk-size or trailer line is too long, #{at}", bytes_written: written)
      else
        MalformedResponse.new("GET #{uri}: malformed chunked body (#{result.parse_error}) #{at}",
                              bytes_written: written)
      end
    end

    # The default limit of a response head, in bytes.
    HEAD_LIMIT = 64 * 1024
    # The most header fields a response head may have.
    MAX_HEADERS = 100

    def initialize(url, into:, timeout: 60, connect_timeout: timeout, upstream_timeout: timeout,
                   downstream_timeout: timeout, headers: {}, max_redirects: 5, crc32: false,
                   head_limit: HEAD_LIMIT, ssl_context: nil, buffer: nil, on_response: nil)
      @uri = HTTP::Request.parse_url(url)
      @headers = HTTP::Request.check_headers(headers)
      @into = Bytepump.send(:unwrap, into) # a Tempfile's File is spliced like any File
      @timeouts = { connect_timeout: connect_timeout, upstream_timeout: upstream_timeout,
                    downstream_timeout: downstream_timeout }
      @timeouts = @timeouts.to_h { |name, value| [name, Bytepump.send(:check_timeout, name, value)] }
      Bytepump.send(:check_count, :max_redirects, max_redirects)
      Bytepump.send(:check_count, :head_limit, head_limit)
      raise ArgumentError, "head_limit: must be > 0" if head_limit.zero?

      @buffer = Bytepump.send(:check_count, :buffer, buffer)
      raise TypeError, "into: must be an IO or respond to #write (got #{into.class})" unless Bytepump.send(:writable?,
                                                                                                           into)

      @max_redirects = max_redirects
      @crc32 = crc32 ? true : false
      @head_limit = head_limit
      @ssl_context = ssl_context
      raise TypeError, "on_response: must respond to #call (got #{on_response.class})" unless
        on_response.nil? || on_response.respond_to?(:call)

      @on_response = on_response
    end

    # Connects, sends the request, follows redirects and moves the body.
    # @return [FetchResult]
    def run(&progress)
      redirects = 0
      uri = @uri
      headers = @headers
      loop do
        outcome = get(uri, headers, &progress)
        return outcome.tap { |r| r.redirects = redirects } if outcome.is_a?(FetchResult)

        redirects += 1
        next_uri = outcome
        if redirects > @max_redirects
          raise RedirectError.new("GET #{@uri}: more than #{@max_redirects} redirects (last to #{next_uri})",
                                  url: next_uri.to_s, redirects: redirects - 1)
        end
        unless HTTP::Request.same_origin?(uri, next_uri)
          headers = headers.reject do |n, _|
            HTTP::Request::CREDENTIALS.include?(n.downcase)
          end
        end
        uri = next_uri
      end
    end

    private

    # A FetchResult, or the URI a redirect points to.
    def get(uri, headers, &)
      sock = HTTP::Connection.open(uri, @timeouts[:connect_timeout], @ssl_context)
      begin
        sock.write(HTTP::Request.build(uri, headers))
        reader = sock.is_a?(IO) ? nil : HTTP::Reader.new(sock, @timeouts[:upstream_timeout])
        response = response_head(uri, sock, reader)
        return redirect(uri, response) if response.redirect?

        check_status(uri, response)
        @on_response&.call(response)
        transfer(uri, sock, reader, response, &)
      ensure
        sock.close
      end
    end

    # The final response head, off the socket (http) or through OpenSSL.
    def response_head(uri, sock, reader)
      reader ? read_head(uri, reader) : scan_head(uri, sock)
    rescue UpstreamTimeout
      raise UpstreamTimeout, "GET #{uri}: the server sent nothing for #{@timeouts[:upstream_timeout]}s " \
                             "in the response head"
    end

    def scan_head(uri, sock)
      Bytepump.skip_headers(sock, @head_limit, timeout: @timeouts[:upstream_timeout], max_headers: MAX_HEADERS)
    rescue SystemCallError => e
      raise e.class, "GET #{uri}: reading the response head: #{e.message.sub(/\A.*? - /, '')}"
    end

    # The head of an https response, through the same native parser (limits,
    # interim responses, errors) as skip_headers.
    def read_head(uri, reader)
      parser = Native::HeadParser.new(@head_limit, MAX_HEADERS)
      at_eof = false
      loop do
        kind, consumed, fields = at_eof ? parser.finish(reader.buffer) : parser.next(reader.buffer)
        case kind
        when :interim then next reader.take(consumed)
        when :final
          return Response.new(fields, head: reader.take(consumed), head_size: parser.consumed,
                                      interim_responses: parser.interim_responses)
        when :need_more
          next if !at_eof && reader.fill
          # At EOF the parser says once more whether what came is malformed.
          next at_eof = true unless at_eof
        end
        raise Bytepump.head_error(kind == :need_more ? :eof : kind, "GET #{uri}",
                                  limit: @head_limit, parse_error: parser.error,
                                  consumed: parser.consumed + reader.buffer.bytesize)
      end
    end

    def redirect(uri, response)
      location = response["location"]
      unless location
        raise RedirectError.new("GET #{uri}: #{response.status} without a Location header", url: uri.to_s,
                                                                                            redirects: 0)
      end
      HTTP::Request.redirect_target(uri, location)
    end

    def check_status(uri, response)
      unless response.success?
        raise HTTPError.new("GET #{uri} returned #{response.status} #{response.reason}".rstrip,
                            url: uri.to_s, response: response)
      end
      return unless response.framing == :invalid

      raise MalformedResponse, "GET #{uri}: #{response.framing_error}"
    end

    def transfer(uri, sock, reader, response, &)
      result = if response.framing == :none
                 FetchResult.new(bytes_written: 0, crc32: @crc32 ? 0 : nil, strategy: :none)
               elsif reader.nil? && @into.is_a?(IO)
                 splice_body(uri, sock, response, &)
               else
                 HTTP::CopyBody.new(reader || HTTP::Reader.new(sock, @timeouts[:upstream_timeout]), @into,
                                    response, @timeouts, @crc32, uri).run(&)
               end
      result.response = response
      result.url = uri.to_s
      result
    end

    def splice_body(uri, sock, response, &)
      options = Native::Options.new(**@timeouts.slice(:upstream_timeout, :downstream_timeout),
                                    length: response.content_length, crc32: @crc32 ? 0 : nil,
                                    framing: response.framing, buffer: @buffer)
      result = Native.pump(sock, @into, options, &)
      raise Fetch.body_error(uri, result, response) if result.body_error

      error = result.error(uri.to_s, @into)
      raise error if error

      Fetch.check_timeout(uri, result.status, result.bytes_written)
      FetchResult.new(bytes_written: result.bytes_written, crc32: result.crc32, strategy: result.strategy)
    end
  end
end
