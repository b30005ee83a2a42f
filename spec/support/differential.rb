# frozen_string_literal: true

require "llhttp"

# Runs one raw HTTP response through llhttp (the parser Node.js uses, strict
# by default) and reports what a client would take from it: the final
# (non-1xx) message's status, fields and the body bytes llhttp delivered,
# and whether that message completed.
module Differential
  Outcome = Struct.new(:complete, :status, :headers, :body, :error, keyword_init: true)

  # Collects llhttp's callbacks for the final message.
  class Collector < LLHttp::Delegate
    attr_accessor :parser
    attr_reader :messages

    def initialize
      super
      @messages = []
    end

    def on_message_begin
      @last_slot = nil
      @messages << { fields: [], body: +"".b, complete: false }
    end

    def on_header_field(field) = append(0, field)
    def on_header_value(value) = append(1, value)
    def on_headers_complete = current[:status] = parser.status_code
    def on_body(body) = current[:body] << body.b
    def on_message_complete = current[:complete] = true

    def current = @messages.last

    private

    # Fields and values may arrive in pieces; an empty value in none.
    # Trailer fields (after the head) are not the head's: bytepump drops them.
    def append(slot, bytes)
      return if current[:status]

      fields = current[:fields]
      fields << [+"".b, +"".b] if slot.zero? && @last_slot != 0
      @last_slot = slot
      fields.last[slot] << bytes.b
    end
  end

  module_function

  def llhttp(raw)
    collector = Collector.new
    parser = LLHttp::Parser.new(collector, type: :response)
    collector.parser = parser
    error = nil
    begin
      parser << raw
      parser.finish
    rescue LLHttp::Error => e
      error = e.message
    end
    final = collector.messages.find { |m| (m[:status] && !(100..199).cover?(m[:status])) || m[:status] == 101 }
    return Outcome.new(complete: false, body: "".b, error: error || "no final message") unless final

    Outcome.new(complete: final[:complete], status: final[:status], headers: final[:fields],
                body: final[:body], error: error)
  end

  # +raw+ with the expected differences written away: the head (its first
  # +head_size+ bytes) as strict HTTP/1.1, CRLF line ends and obsolete folds
  # unfolded, which bytepump reads as RFC 9112 lets a recipient, and no
  # trailing whitespace in field values (RFC 9110 OWS, SP or HTAB; this
  # llhttp refuses an HTAB after a Content-Length's digits); and the
  # body's chunk extensions dropped, which this llhttp refuses after a token
  # value (";a=b;c=d") where RFC 9112 allows them. What bytepump accepted
  # must parse the same in llhttp once written so.
  # Where bytepump's parser ends the heads of +raw+ (0 if it finds none),
  # and the body's framing.
  def head(raw)
    parser = Bytepump::Native::HeadParser.new(64 * 1024, 100)
    rest = raw.b
    loop do
      kind, consumed, fields = parser.next(rest)
      return [parser.consumed, fields[4]] if kind == :final
      return [0, nil] unless kind == :interim

      rest = rest[consumed..]
    end
  end

  def without_expected_differences(raw)
    size, framing = head(raw)
    head = raw.b[0, size].gsub(/(?<!\r)\n/, "\r\n").gsub(/\r\n[ \t]+/, " ").gsub(/[ \t]+\r\n/, "\r\n")
    body = raw.b[size..]
    body = body.gsub(/(\A|\r\n)(\h+);[^\r\n]*\r\n/, "\\1\\2\r\n") if framing == :chunked
    head + body
  end
end
