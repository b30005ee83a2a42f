# frozen_string_literal: true

require "zlib"

# One body core for every path: the same response through the splice path
# (http:// into a pipe: BodyPump), the copying path (http:// into a StringIO:
# BodyDecoder) and the TLS path (https:// into a pipe: BodyDecoder over the
# bytes OpenSSL hands Ruby) must give the same bytes, the same count, the same
# CRC, and the same exception with the same message.
RSpec.describe "every fetch path", :integration do
  body = "0123456789" * 7_000
  responses = {
    "/length" => "HTTP/1.1 200 OK\r\nContent-Length: #{body.size}\r\n\r\n#{body}",
    "/close" => "HTTP/1.1 200 OK\r\n\r\n#{body}",
    "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" \
                  "#{(body.size - 5).to_s(16)};ext=1\r\n#{body[0...-5]}\r\n5\r\n#{body[-5..]}\r\n0\r\nT: x\r\n\r\n",
    "/short" => "HTTP/1.1 200 OK\r\nContent-Length: #{body.size + 10}\r\n\r\n#{body}",
    "/cut-chunk" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n#{body.size.to_s(16)}\r\n#{body[0, 100]}",
    "/bare-lf" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n",
    "/long-line" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;#{'a' * 20_000}\r\nhello\r\n0\r\n\r\n",
    "/bad-size" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
  }

  before(:all) do
    @servers = [false, true].to_h do |tls|
      [tls, Servers::Scripted.new(tls: tls) { |path, c, _| c.write(responses.fetch(path)) }]
    end
  end

  after(:all) { @servers&.each_value(&:stop) }
  after { close_tracked }

  # [bytes received, count, CRC, strategy or exception class, message] for
  # one path; the URL is left out of messages (it differs by scheme and port).
  def outcome(path, tls:, into:)
    server = @servers.fetch(tls)
    dst, received = if into == :stringio
                      io = StringIO.new(+"".b)
                      [io, -> { io.string }]
                    else
                      ours, peer = track(*IO.pipe.reverse)
                      reader = helper_thread { peer.binmode.read }
                      [ours, lambda {
                        ours.close
                        reader.value
                      }]
                    end
    options = { into: dst, crc32: true, timeout: 10 }
    options[:ssl_context] = server.client_context if tls
    begin
      r = Bytepump.fetch(server.url(path), **options)
      [received.call, r.bytes_written, r.crc32, :ok]
    rescue Bytepump::Error => e
      [received.call, e.bytes_written, nil, e.class, e.message.sub(/\AGET \S+: /, "")]
    end
  end

  responses.each_key do |path|
    it "#{path}: the splice, copying and TLS paths agree" do
      splice = outcome(path, tls: false, into: :pipe)
      copy = outcome(path, tls: false, into: :stringio)
      tls = outcome(path, tls: true, into: :pipe)
      expect(copy[1..]).to eq(splice[1..])
      expect(tls[1..]).to eq(splice[1..])
      expect(copy[0] == splice[0] && tls[0] == splice[0]).to be(true), "the received bytes differ"
      expect(splice[1]).to eq(splice[0].bytesize) # the count is what arrived
      expect(splice[2]).to eq(Zlib.crc32(body)) if splice[3] == :ok
    end
  end
end
