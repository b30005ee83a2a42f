# frozen_string_literal: true

RSpec.describe "IO#skip_headers" do
  after { close_tracked }

  let(:head) { "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Rep: 1\r\nx-rep: 2\r\nX-Fold: a\r\n  b\r\n\r\n" }
  let(:body) { "hello world" }

  def source(kind, bytes)
    if kind == :file
      file = track(Tempfile.create("bytepump-head"))
      file.write(bytes)
      file.rewind
      return file
    end
    ours, peer = track(*stream_pair(kind, reading: true))
    peer.write(bytes)
    peer.close
    ours
  end

  %i[file pipe unix tcp].each do |kind|
    it "consumes exactly the head from a #{kind} and leaves the body for splice_to" do
      io = source(kind, head + body)
      response = io.skip_headers
      expect(response.status).to eq(200)
      expect(response.head).to eq(head)
      expect(response.head_size).to eq(head.bytesize)
      out = StringIO.new
      expect(io.splice_to(out)).to eq(body.bytesize)
      expect(out.string).to eq(body)
    end
  end

  it "returns a response with case-insensitive, repeated and folded fields" do
    response = source(:unix, head + body).skipHeaders
    expect(response.reason).to eq("OK")
    expect(response.http_version).to eq("1.1")
    expect(response.headers["x-rep"]).to eq("1, 2")
    expect(response.headers.fetch_all("X-REP")).to eq(%w[1 2])
    expect(response.headers["x-fold"]).to eq("a b")
    expect(response["CONTENT-LENGTH"]).to eq("11")
    expect(response.content_length).to eq(11)
    expect(response).not_to be_chunked
    expect(response.headers.to_a.map(&:first)).to eq(%w[Content-Length X-Rep x-rep X-Fold])
  end

  it "skips 1xx interim responses and reports a chunked body" do
    io = source(:tcp, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n" \
                      "HTTP/1.0 200\nTransfer-Encoding: chunked\n\n3\r\nabc")
    response = io.skip_headers
    expect(response.interim_responses).to eq(2)
    expect(response.http_version).to eq("1.0")
    expect(response.reason).to eq("")
    expect(response).to be_chunked
    expect(response.content_length).to be_nil
    expect(io.read).to eq("3\r\nabc")
  end

  it "takes the head's start from bytes Ruby already buffered and leaves the rest buffered" do
    io = source(:unix, head + body)
    expect(io.gets).to eq("HTTP/1.1 200 OK\r\n")
    io.ungetc("HTTP/1.1 200 OK\r\n")
    response = io.skip_headers
    expect(response.headers["content-length"]).to eq("11")
    expect(io.read).to eq(body)
  end

  it "raises MalformedResponse naming what was wrong" do
    expect { source(:unix, "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n").skip_headers }
      .to raise_error(Bytepump::MalformedResponse, /malformed header name/)
    expect { source(:unix, "<html>not http</html>").skip_headers }
      .to raise_error(Bytepump::MalformedResponse, /malformed status line/)
    expect { source(:unix, "HTTP/2 200\r\n\r\n").skip_headers }
      .to raise_error(IOError, /unsupported HTTP version/)
  end

  it "raises HeadTooLarge past the limit, without reading past it" do
    io = source(:unix, "HTTP/1.1 200 OK\r\nX: #{'a' * 500}\r\n\r\n")
    expect { io.skip_headers(100) }.to raise_error(Bytepump::HeadTooLarge, /over 100 bytes/)
    expect(io.read.bytesize).to eq(17 + 3 + 500 + 4 - 100)
  end

  it "raises an EOFError when the stream ends inside the head" do
    expect { source(:pipe, "HTTP/1.1 200 OK\r\nX: y\r\n").skip_headers }
      .to raise_error(EOFError, /23 bytes into the response head/) { |e| expect(e).to be_a(Bytepump::Error) }
  end

  it "times out a silent server" do
    ours, peer = track(*tcp_pair)
    peer.write("HTTP/1.1 200 OK\r\n")
    expect { ours.skip_headers(timeout: 0.2) }.to raise_error(Bytepump::UpstreamTimeout)
  end

  it "calls bytes that can never be a head malformed, however they arrive" do
    io, peer = track(*UNIXSocket.pair)
    helper_thread do
      peer.write("HTTP/1.1 200 OK\r\nX: y\r\n\r")
      sleep 0.1 # the scanner has seen a partial head: it now only looks for its end
      peer.write("Z")
      peer.close
    end
    expect { io.skip_headers }.to raise_error(Bytepump::MalformedResponse, /CR not followed by LF/)
  end

  it "rejects bad limits" do
    io = source(:unix, head)
    expect { io.skip_headers(0) }.to raise_error(ArgumentError, /limit must be > 0/)
    expect { io.skip_headers("big") }.to raise_error(TypeError, /limit must be an Integer/)
  end

  it "runs the seed README's edge include: request, skipHeaders, splice_to" do
    upstream = Servers::Scripted.new { |_, c, _| c.write("HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n\r\n#{'j' * 50_000}") }
    client, peer = track(*unix_pair_for_spec)
    s2 = track(TCPSocket.new("127.0.0.1", upstream.port))
    s2 << "GET /matz.jpg HTTP/1.1\r\nHost: x\r\n\r\n"
    s2.skipHeaders
    reader = helper_thread { peer.read }
    expect(s2.splice_to(client, 60)).to eq(50_000)
    client.close
    expect(reader.value).to eq("j" * 50_000)
  ensure
    upstream&.stop
  end

  def unix_pair_for_spec = UNIXSocket.pair
end
