# frozen_string_literal: true

require "zlib"

RSpec.describe "IO#splice_from and Bytepump.fetch", :integration do
  before(:all) do
    @nginx = Servers::Nginx.new.start
    @objects = { "empty.bin" => "", "one.bin" => "x", "small.bin" => pattern(70_000, 3),
                 "big.bin" => pattern(12 << 20, 4) }
    @urls = @objects.to_h { |name, bytes| [name, @nginx.add(name, bytes)] }
  end

  after(:all) { @nginx.stop }

  after do
    close_tracked
    @upstream&.stop
  end

  def upstream(tls: false, &handler)
    @upstream = Servers::Scripted.new(tls: tls, &handler)
  end

  # A destination of +kind+ and a lambda that returns what reached it.
  def destination_for(kind)
    case kind
    when :stringio
      io = StringIO.new(+"".b)
      [io, -> { io.string }]
    when :file
      file = track(Tempfile.create("bytepump-dst"))
      [file, lambda {
        file.flush
        File.binread(file.path)
      }]
    else
      ours, peer = track(*stream_pair(kind, reading: false))
      reader = helper_thread { peer.binmode.read }
      [ours, lambda {
        ours.close
        reader.value
      }]
    end
  end

  describe "from nginx (Content-Length bodies)" do
    %i[pipe unix tcp file stringio].each do |kind|
      it "delivers every object byte for byte into a #{kind}, with exact counts, progress and CRC" do
        @objects.each do |name, bytes|
          dst, received = destination_for(kind)
          progress = 0
          result = Bytepump.fetch(@urls[name], into: dst, crc32: true) { |n| progress += n }
          expect(received.call).to eq(bytes), name
          expect(result.bytes_written).to eq(bytes.bytesize)
          expect(progress).to eq(bytes.bytesize)
          expect(result.crc32).to eq(Zlib.crc32(bytes))
          expect(result.response.content_length).to eq(bytes.bytesize)
          expect(result.strategy).to eq(kind == :stringio ? :copy : :splice_pipe) unless bytes.empty?
        end
      end
    end

    it "splices into a Tempfile through its File, not the copying path" do
      tempfile = Tempfile.new("bytepump-fetch")
      result = Bytepump.fetch(@urls["big.bin"], into: tempfile)
      expect(result.strategy).to eq(:splice_pipe)
      expect(result.bytes_written).to eq(12 << 20)
      tempfile.rewind
      expect(tempfile.read.b == @objects["big.bin"]).to be(true)
    ensure
      tempfile&.close!
    end

    it "returns the Integer byte count from splice_from / spliceFrom" do
      dst, received = destination_for(:pipe)
      expect(dst.spliceFrom(url: @urls["small.bin"], timeout: 10)).to eq(70_000)
      expect(received.call).to eq(@objects["small.bin"])
    end

    it "raises HTTPError for a 404 and writes nothing" do
      dst, received = destination_for(:unix)
      expect { dst.splice_from(url: "#{@urls['one.bin']}.missing") }
        .to raise_error(Bytepump::HTTPError,
                        %r{GET http://127\.0\.0\.1:\d+/one\.bin\.missing returned 404 Not Found}) { |e|
          expect(e.status).to eq(404)
          expect(e.response.headers["server"]).to start_with("nginx")
        }
      expect(received.call).to eq("")
    end

    it "reaches localhost by name" do
      dst, received = destination_for(:pipe)
      dst.splice_from(url: @urls["small.bin"].sub("127.0.0.1", "localhost"))
      expect(received.call).to eq(@objects["small.bin"])
    end

    it "reaches an IPv6 literal and sends it bracketed in Host" do
      server = TCPServer.new("::1", 0)
      port = server.addr[1]
      helper_thread do
        client = server.accept
        host = client.readpartial(4096)[/^Host: (.*)\r$/, 1]
        client.write("HTTP/1.1 200 OK\r\nContent-Length: #{host.bytesize}\r\n\r\n#{host}")
        client.close
      end
      dst, received = destination_for(:unix)
      expect(dst.splice_from(url: "http://[::1]:#{port}/v6")).to eq("[::1]:#{port}".bytesize)
      expect(received.call).to eq("[::1]:#{port}")
    ensure
      server&.close
    end
  end

  describe "body framing from a scripted server" do
    def chunked(body, size, ext: "")
      chunks = body.bytes.each_slice(size).map { |s| "#{s.size.to_s(16)}#{ext}\r\n#{s.pack('C*')}\r\n" }
      "#{chunks.join}0\r\n"
    end

    %i[pipe tcp stringio].each do |kind|
      it "decodes chunked bodies (extensions, trailers) into a #{kind}" do
        body = pattern(300_000, 9)
        upstream do |_, c, _|
          c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
          c.write(chunked(body, 10_007, ext: ";a=b"))
          c.write("Trailer-X: 1\r\n\r\n")
        end
        dst, received = destination_for(kind)
        result = Bytepump.fetch(@upstream.url("/c"), into: dst, crc32: true)
        expect(received.call).to eq(body)
        expect(result.bytes_written).to eq(body.bytesize)
        expect(result.crc32).to eq(Zlib.crc32(body))
        expect(result.response).to be_chunked
      end
    end

    it "reads close-delimited bodies, skips 1xx and gives 204 no body" do
      upstream do |path, c, _|
        case path
        when "/close" then c.write("HTTP/1.0 200 OK\r\n\r\nuntil close")
        when "/interim" then c.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        else c.write("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
        end
      end
      expect(Bytepump.fetch(@upstream.url("/close"), into: StringIO.new).bytes_written).to eq(11)
      dst, received = destination_for(:pipe)
      expect(dst.splice_from(url: @upstream.url("/interim"))).to eq(2)
      expect(received.call).to eq("ok")
      expect(Bytepump.fetch(@upstream.url("/none"), into: StringIO.new).bytes_written).to eq(0)
    end

    it "sends Host, User-Agent, Connection: close and the caller's headers" do
      upstream { |_, c, _| c.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }
      Bytepump.fetch(@upstream.url("/h?q=1"), into: StringIO.new, headers: { "X-Token" => "abc" })
      request = @upstream.requests.pop
      expect(request).to start_with("GET /h?q=1 HTTP/1.1\r\nHost: 127.0.0.1:#{@upstream.port}\r\n")
      expect(request).to include("User-Agent: bytepump/#{Bytepump::VERSION}\r\n", "Connection: close\r\n",
                                 "X-Token: abc\r\n", "Accept-Encoding: identity\r\n")
    end
  end

  describe "redirects" do
    it "follows 301/302/303/307/308, relative and absolute, up to the limit" do
      upstream do |path, c, _|
        n = path[%r{/r(\d)}, 1].to_i
        codes = [301, 302, 303, 307, 308]
        if n < codes.size
          c.write("HTTP/1.1 #{codes[n]} Moved\r\nLocation: /r#{n + 1}\r\nContent-Length: 3\r\n\r\nnot")
        else
          c.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        end
      end
      dst, received = destination_for(:pipe)
      expect(dst.splice_from(url: @upstream.url("/r0"))).to eq(4)
      expect(received.call).to eq("done")
      expect { Bytepump.fetch(@upstream.url("/r0"), into: StringIO.new, max_redirects: 4) }
        .to raise_error(Bytepump::RedirectError, /more than 4 redirects/)
    end

    it "calls on_response once, with the final response, before the first body byte" do
      upstream do |path, c, _|
        if path == "/moved"
          c.write("HTTP/1.1 302 Found\r\nLocation: /object\r\nContent-Length: 0\r\n\r\n")
        else
          c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Kind: final\r\n\r\nhello")
        end
      end
      seen = []
      on_response = ->(r) { seen << [r.status, r["x-kind"], r.content_length] }
      dst, received = destination_for(:pipe)
      result = Bytepump.fetch(@upstream.url("/moved"), into: dst, on_response: on_response) { |n| seen << n }
      expect(received.call).to eq("hello")
      expect(seen).to eq([[200, "final", 5], 5])
      expect(result.bytes_written).to eq(5)
      expect { Bytepump.fetch(@upstream.url("/object"), into: StringIO.new, on_response: 5) }
        .to raise_error(TypeError, "on_response: must respond to #call (got Integer)")
    end

    it "stops a redirect loop and drops credentials on a cross-origin hop" do
      upstream { |_, c, _| c.write("HTTP/1.1 302 Found\r\nLocation: #{@upstream.url('/loop')}\r\n\r\n") }
      expect { Bytepump.fetch(@upstream.url("/loop"), into: StringIO.new) }
        .to raise_error(Bytepump::RedirectError) { |e| expect(e.redirects).to eq(5) }
      expect(@upstream.requests.size).to eq(6)

      cross = Servers::Scripted.new { |_, c, _| c.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz") }
      redirector = Servers::Scripted.new { |_, c, _| c.write("HTTP/1.1 307 T\r\nLocation: #{cross.url('/z')}\r\n\r\n") }
      Bytepump.fetch(redirector.url("/a"), into: StringIO.new, headers: { "Authorization" => "secret" })
      expect(redirector.requests.pop).to include("Authorization: secret")
      expect(cross.requests.pop).not_to include("Authorization")
    ensure
      cross&.stop
      redirector&.stop
    end

    it "refuses a redirect to another scheme" do
      upstream { |_, c, _| c.write("HTTP/1.1 302 Found\r\nLocation: ftp://x/y\r\n\r\n") }
      expect { Bytepump.fetch(@upstream.url("/"), into: StringIO.new) }
        .to raise_error(Bytepump::MalformedResponse, /scheme must be http or https/)
    end
  end

  describe "misbehaving servers" do
    %i[pipe stringio].each do |kind|
      context "into a #{kind}" do
        it "raises ShortBody with the bytes written when the body is shorter than Content-Length" do
          upstream { |_, c, _| c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n#{'a' * 60}") }
          dst, received = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/short"), into: dst) }
            .to raise_error(Bytepump::ShortBody, /ended after 60 of 100 bytes/) { |e|
              expect(e).to be_a(EOFError)
              expect(e.bytes_written).to eq(60)
              expect(e.expected).to eq(100)
            }
          expect(received.call).to eq("a" * 60)
        end

        it "raises ShortBody when a chunked body is cut before its last chunk" do
          upstream { |_, c, _| c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc") }
          dst, = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/cut"), into: dst) }
            .to raise_error(Bytepump::ShortBody, /before its last chunk, after 8 bytes/) { |e|
              expect(e.bytes_written).to eq(8)
            }
        end

        it "raises MalformedResponse for a bad chunk size" do
          upstream { |_, c, _| c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nxyz\r\n") }
          dst, = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/bad"), into: dst) }
            .to raise_error(Bytepump::MalformedResponse,
                            /malformed chunked body \(malformed chunk size\) after 3 bytes/) { |e|
              expect(e.bytes_written).to eq(3)
            }
        end

        it "refuses a chunk one byte short instead of shifting the framing (CRLF only after chunk data)" do
          body = "6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n" # 6 promised, "world" sent
          upstream { |_, c, _| c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n#{body}") }
          dst, received = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/short-chunk"), into: dst) }
            .to raise_error(Bytepump::MalformedResponse, /chunk data not followed by CRLF.* after 6 bytes/) { |e|
              expect(e.bytes_written).to eq(6)
            }
          expect(received.call).to eq("world\r")
        end

        it "raises UpstreamTimeout when the server stalls mid-body" do
          upstream do |_, c, _|
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            sleep 5
          end
          dst, = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/stall"), into: dst, timeout: 0.3) }
            .to raise_error(Bytepump::UpstreamTimeout, /after 3 bytes/) { |e| expect(e.bytes_written).to eq(3) }
        end

        it "raises ECONNRESET with the count when the server resets mid-body" do
          upstream do |_, c, _|
            c.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n#{'r' * 1000}")
            sleep 0.1
            c.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
          end
          dst, = destination_for(kind)
          expect { Bytepump.fetch(@upstream.url("/reset"), into: dst) }
            .to raise_error(Errno::ECONNRESET) { |e|
              expect(e).to be_a(Bytepump::Error)
              expect(e.bytes_written).to eq(1000)
            }
        end
      end
    end

    it "raises HeadTooLarge for an oversized head and HTTPError for 404 and 500" do
      upstream do |path, c, _|
        case path
        when "/huge" then c.write("HTTP/1.1 200 OK\r\nX: #{'h' * 70_000}\r\n\r\n")
        when "/404" then c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
        else c.write("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
        end
      end
      dst, received = destination_for(:pipe)
      expect { dst.splice_from(url: @upstream.url("/huge")) }.to raise_error(Bytepump::HeadTooLarge)
      expect { dst.splice_from(url: @upstream.url("/404")) }.to raise_error(Bytepump::HTTPError, /404 Not Found/)
      expect { dst.splice_from(url: @upstream.url("/500")) }
        .to raise_error(Bytepump::HTTPError, /500 Internal Server Error/) { |e| expect(e.bytes_written).to eq(0) }
      expect(received.call).to eq("")
    end

    it "refuses duplicate or conflicting framing headers" do
      upstream do |path, c, _|
        extra = path == "/dup" ? "Content-Length: 3\r\n" : "Transfer-Encoding: chunked\r\n"
        c.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n#{extra}\r\nabc")
      end
      expect { Bytepump.fetch(@upstream.url("/dup"), into: StringIO.new) }
        .to raise_error(Bytepump::MalformedResponse, /duplicate Content-Length/)
      expect { Bytepump.fetch(@upstream.url("/both"), into: StringIO.new) }
        .to raise_error(Bytepump::MalformedResponse, /both Transfer-Encoding and Content-Length/)
    end

    it "raises DownstreamTimeout when the destination stops reading" do
      ours, _peer = track(*unix_pair_nonreading)
      expect { ours.splice_from(url: @urls["big.bin"], timeout: 0.3) }
        .to raise_error(Bytepump::DownstreamTimeout) { |e| expect(e.bytes_written).to be_positive }
    end

    def unix_pair_nonreading = UNIXSocket.pair

    it "raises ConnectTimeout for a listener that never accepts and ECONNREFUSED for none" do
      listener = Socket.new(:INET, :STREAM)
      listener.bind(Addrinfo.tcp("127.0.0.1", 0))
      listener.listen(0)
      port = listener.local_address.ip_port
      fillers = Array.new(4) do
        s = Socket.new(:INET, :STREAM)
        s.connect_nonblock(Addrinfo.tcp("127.0.0.1", port), exception: false)
        s
      end
      expect { Bytepump.fetch("http://127.0.0.1:#{port}/", into: StringIO.new, connect_timeout: 0.3) }
        .to raise_error(Bytepump::ConnectTimeout, /timed out after 0.3s/)
      port = Servers.free_port
      expect { Bytepump.fetch("http://127.0.0.1:#{port}/", into: StringIO.new) }.to raise_error(Errno::ECONNREFUSED)
    ensure
      fillers&.each(&:close)
      listener&.close
    end
  end

  describe "https (copying through OpenSSL)" do
    it "gives the same bytes, counts, CRC and errors" do
      body = pattern(200_000, 11)
      upstream(tls: true) do |path, c, _|
        if path == "/short"
          c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        else
          c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n#{body.size.to_s(16)}\r\n#{body}\r\n0\r\n\r\n")
        end
      end
      context = @upstream.client_context
      dst, received = destination_for(:pipe)
      result = Bytepump.fetch(@upstream.url("/a"), into: dst, crc32: true, ssl_context: context)
      expect(received.call).to eq(body)
      expect([result.bytes_written, result.crc32, result.strategy]).to eq([body.size, Zlib.crc32(body), :copy])
      expect { Bytepump.fetch(@upstream.url("/short"), into: StringIO.new, ssl_context: context) }
        .to raise_error(Bytepump::ShortBody) { |e| expect(e.bytes_written).to eq(3) }
      expect { Bytepump.fetch(@upstream.url("/a"), into: StringIO.new) }
        .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    end
  end

  describe "response heads over https (the same native parser as skip_headers)" do
    heads = {
      "/interim" => "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n" \
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "/malformed" => "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
      "/huge" => "HTTP/1.1 200 OK\r\nX: #{'h' * 2000}\r\n\r\n",
      "/cut" => "HTTP/1.1 200 OK\r\nContent-Le",
      "/cut-malformed" => "HTTP/1.1 200 OK\r\nX: y\r\n\rZ", # never a head, however it arrives
      "/stall" => "HTTP/1.1 200 OK\r\n"
    }

    before do
      upstream(tls: true) do |path, c, _|
        c.write(heads.fetch(path))
        sleep 1 if path == "/stall"
      end
    end

    def fetch_tls(path)
      Bytepump.fetch(@upstream.url(path), into: StringIO.new, ssl_context: @upstream.client_context,
                                          head_limit: 1024)
    end

    it "names the URL when the server stalls in the head, as the http path does" do
      url = @upstream.url("/stall")
      expect do
        Bytepump.fetch(url, into: StringIO.new, ssl_context: @upstream.client_context, timeout: 0.3)
      end.to raise_error(Bytepump::UpstreamTimeout, "GET #{url}: the server sent nothing for 0.3s in the response head")
    end

    it "skips interim heads and counts them" do
      result = fetch_tls("/interim")
      expect([result.bytes_written, result.response.status, result.response.interim_responses]).to eq([2, 200, 2])
      expect(result.response.head_size).to eq(heads["/interim"].bytesize - 2)
    end

    it "raises the errors skip_headers raises" do
      expect { fetch_tls("/malformed") }
        .to raise_error(Bytepump::MalformedResponse, /malformed response head: malformed header name/)
      expect { fetch_tls("/huge") }.to raise_error(Bytepump::HeadTooLarge, /over 1024 bytes/)
      expect do
        fetch_tls("/cut")
      end.to raise_error(Bytepump::TruncatedHead, /end of file 27 bytes into the response head/)
      expect { fetch_tls("/cut-malformed") }.to raise_error(Bytepump::MalformedResponse, /CR not followed by LF/)
    end
  end

  describe "argument validation, before anything is sent" do
    it "rejects bad URLs with ArgumentError" do
      {
        "ftp://example.com/x" => /scheme must be http or https/,
        "http:///path" => /has no host/,
        "http://exa mple.com/" => /contains " "/,
        "http://example.com/a\r\nX: y" => /contains "\\r"/,
        "http://example.com/\u00e9" => /non-ASCII/,
        "http://user:pw@example.com/" => /credentials/,
        "not a url" => /contains " "/
      }.each do |url, message|
        expect { StringIO.new.then { |s| Bytepump.fetch(url, into: s) } }.to raise_error(ArgumentError, message), url
      end
      expect { $stdout.splice_from(url: 42) }.to raise_error(ArgumentError, /must be a String or URI/)
    end

    it "rejects header injection and reserved headers" do
      expect { Bytepump.fetch("http://127.0.0.1:1/", into: StringIO.new, headers: { "X" => "a\r\nInjected: 1" }) }
        .to raise_error(ArgumentError, /control character/)
      expect { Bytepump.fetch("http://127.0.0.1:1/", into: StringIO.new, headers: { "Bad Name" => "x" }) }
        .to raise_error(ArgumentError, /not a valid header name/)
      expect { Bytepump.fetch("http://127.0.0.1:1/", into: StringIO.new, headers: { "Host" => "x" }) }
        .to raise_error(ArgumentError, /Host is set by bytepump/)
      expect do
        Bytepump.fetch("http://127.0.0.1:1/", into: Object.new)
      end.to raise_error(TypeError, /into: must be an IO/)
    end
  end
end
