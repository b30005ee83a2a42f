# frozen_string_literal: true

module Bytepump
  module HTTP
    # Response header fields in order, repeated fields kept, looked up
    # without regard to case. The native parser has joined obsolete folded
    # lines to the field they continue.
    class Headers
      include Enumerable

      def initialize(pairs)
        @pairs = pairs.map { |name, value| [name.freeze, value.freeze].freeze }.freeze
      end

      # All values of +name+, joined with ", " (nil when absent).
      def [](name)
        values = fetch_all(name)
        values.empty? ? nil : values.join(", ")
      end

      # Every value of +name+ in order (Set-Cookie and friends).
      def fetch_all(name)
        key = name.to_s.downcase
        @pairs.filter_map { |n, v| v if n.downcase == key }
      end

      def key?(name) = !fetch_all(name).empty?
      alias include? key?

      # Yields each [name, value] pair in the order received.
      def each(&) = @pairs.each(&)
      # @return [Integer] the number of fields
      def size = @pairs.size
      # @return [Array<Array(String, String)>] the [name, value] pairs
      def to_a = @pairs
      # @return [Hash{String => String}] each name (as first received) to its joined value
      def to_h = @pairs.map(&:first).uniq(&:downcase).to_h { |n| [n, self[n]] }
      # @return [String]
      def inspect = "#<#{self.class} #{@pairs.inspect}>"
    end
  end

  # A parsed HTTP/1.x response head, as returned by IO#skip_headers and held
  # by a FetchResult.
  class Response
    attr_reader :status, :reason, :http_version, :headers, :head, :head_size, :interim_responses,
                :framing

    # +fields+ is what the native parser returns for a complete head.
    def initialize(fields, head:, head_size:, interim_responses:)
      minor, @status, reason, pairs, @framing, length, @framing_error = fields
      @http_version = "1.#{minor}"
      @reason = reason.freeze
      @headers = HTTP::Headers.new(pairs)
      @length = length
      @head = head.freeze
      @head_size = head_size
      @interim_responses = interim_responses
      freeze
    end

    # The Content-Length, or nil when the body is chunked, close-delimited or
    # absent.
    def content_length = framing == :length ? @length : nil
    def chunked? = framing == :chunked
    def success? = (200..299).cover?(status)
    def redirect? = [301, 302, 303, 307, 308].include?(status)
    # The value of header field +name+ (case-insensitive), or nil.
    def [](name) = headers[name]

    # Why the body's framing can't be trusted, or nil when it can.
    def framing_error
      @framing_error && "#{@framing_error} (#{framing_headers})"
    end

    # @return [String]
    def inspect = "#<#{self.class} HTTP/#{http_version} #{status} #{reason.inspect}>"

    private

    def framing_headers
      headers.select { |n, _| %w[content-length transfer-encoding].include?(n.downcase) }
             .map { |n, v| "#{n}: #{v}" }.join("; ")
    end
  end
end
