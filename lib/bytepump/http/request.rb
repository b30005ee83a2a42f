# frozen_string_literal: true

require "uri"

module Bytepump
  # HTTP/1.1 for Bytepump.fetch: URL and header checks, connections, and
  # the paths where a body passes through Ruby (https, non-IO destinations).
  module HTTP
    # Validates a URL and the caller's headers, and builds the request head,
    # before a byte reaches the network.
    module Request
      # Set by bytepump itself: framing and connection management are ours.
      RESERVED = %w[host connection content-length transfer-encoding te upgrade].freeze
      # An RFC 9110 token: what a header field name may be.
      TOKEN = /\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\z/
      # Credentials that must not follow a redirect to another origin.
      CREDENTIALS = %w[authorization cookie proxy-authorization].freeze

      module_function

      # Returns a URI::HTTP(S) with a host, or raises ArgumentError naming
      # what is wrong.
      def parse_url(url)
        unless url.is_a?(String) || url.is_a?(URI)
          raise ArgumentError,
                "url: must be a String or URI (got #{url.class})"
        end

        text = url.to_s
        if (bad = text.match(/[\x00-\x20\x7f]/))
          raise ArgumentError, "url: contains #{bad[0].inspect} at #{bad.begin(0)}; percent-encode it (#{text.inspect})"
        end
        unless text.ascii_only?
          raise ArgumentError,
                "url: contains non-ASCII characters; percent-encode them (#{text.inspect})"
        end

        uri = begin
          URI.parse(text)
        rescue URI::InvalidURIError => e
          raise ArgumentError, "url: #{e.message}"
        end
        check_uri(uri, text)
        uri
      end

      def check_uri(uri, text)
        unless %w[http https].include?(uri.scheme&.downcase)
          raise ArgumentError, "url: scheme must be http or https (got #{uri.scheme.inspect} in #{text.inspect})"
        end
        raise ArgumentError, "url: has no host (#{text.inspect})" if uri.host.nil? || uri.host.empty?
        if uri.userinfo
          raise ArgumentError,
                "url: credentials in the URL are not supported; pass an Authorization header"
        end
        raise ArgumentError, "url: port #{uri.port} is out of range" unless (1..65_535).cover?(uri.port)
      end

      # Caller headers as [[name, value]], or ArgumentError.
      def check_headers(headers)
        raise ArgumentError, "headers: must be a Hash (got #{headers.class})" unless headers.is_a?(Hash)

        headers.map do |name, value|
          name = name.to_s
          value = value.to_s
          raise ArgumentError, "headers: #{name.inspect} is not a valid header name" unless name.match?(TOKEN)
          if RESERVED.include?(name.downcase)
            raise ArgumentError,
                  "headers: #{name} is set by bytepump and can't be overridden"
          end
          if value.match?(/[\x00-\x08\x0a-\x1f\x7f]/)
            raise ArgumentError, "headers: the value of #{name} contains a control character (CR, LF or NUL)"
          end

          [name, value]
        end
      end

      # The request head for a GET of +uri+ with the caller's +headers+.
      # @return [String]
      def build(uri, headers)
        host = uri.host # IPv6 literals keep their brackets here
        host = "#{host}:#{uri.port}" if uri.port != uri.default_port
        lines = ["GET #{uri.request_uri} HTTP/1.1", "Host: #{host}"]
        names = headers.map { |n, _| n.downcase }
        lines << "User-Agent: bytepump/#{VERSION}" unless names.include?("user-agent")
        # A body compressed in transit would be spliced compressed.
        lines << "Accept-Encoding: identity" unless names.include?("accept-encoding")
        lines << "Connection: close"
        headers.each { |n, v| lines << "#{n}: #{v}" }
        "#{lines.join("\r\n")}\r\n\r\n"
      end

      # Where a redirect goes, validated like the original URL.
      def redirect_target(from, location)
        target = begin
          from.merge(location)
        rescue URI::Error => e
          raise MalformedResponse, "redirect from #{from} has an invalid Location #{location.inspect}: #{e.message}"
        end
        parse_url(target.to_s)
      rescue ArgumentError => e
        raise MalformedResponse, "redirect from #{from} to #{location.inspect} refused: #{e.message}"
      end

      def same_origin?(one, other)
        one.scheme == other.scheme && one.host.casecmp?(other.host) && one.port == other.port
      end
    end
  end
end
