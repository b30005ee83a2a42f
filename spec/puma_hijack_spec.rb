# frozen_string_literal: true

require "openssl"

# A real Puma running bench/hijack_app.ru (the app bin/demo times): the Rack
# app hijacks the client socket and streams a file into it with splice_to, or
# relays an object from a real nginx with splice_from or Net::HTTP.
RSpec.describe "a Rack app on Puma streaming with splice_to and splice_from", :integration do
  before(:all) do
    @dir = Dir.mktmpdir("bytepump-puma")
    @file = File.join(@dir, "payload.bin")
    File.binwrite(@file, "#{Random.new(42).bytes(8 << 20)}tail")
    @nginx = Servers::Nginx.new.start
    @object = Random.new(43).bytes((6 << 20) + 321)
    url = @nginx.add("object.bin", @object)
    app = File.expand_path("../bench/hijack_app.ru", __dir__)
    @puma, @port = Servers.rack(:puma, app, env: { "BYTEPUMP_DEMO_FILE" => @file, "BYTEPUMP_DEMO_URL" => url },
                                            log: File.join(@dir, "puma.log"))
  end

  after(:all) do
    Servers.stop_process(@puma) if @puma
    @nginx&.stop
    FileUtils.rm_rf(@dir)
  end

  def get(path)
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("GET #{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    response = socket.read
    head, body = response.split("\r\n\r\n", 2)
    [head, body]
  ensure
    socket&.close
  end

  it "delivers the whole file byte for byte, with the Content-Length it announced" do
    head, body = get("/splice")
    expect(head).to start_with("HTTP/1.1 200 OK")
    expect(head[/content-length: (\d+)/, 1].to_i).to eq(File.size(@file))
    expect(OpenSSL::Digest::SHA256.hexdigest(body)).to eq(OpenSSL::Digest::SHA256.hexdigest(File.binread(@file)))
  end

  it "relays the nginx object byte for byte with splice_from, as Net::HTTP#read_body does, and closes" do
    %w[/splice_from /net_http].each do |path|
      head, body = get(path)
      expect(head).to start_with("HTTP/1.1 200 OK").and include("connection: close")
      expect(body.bytesize).to eq(@object.bytesize)
      expect(body == @object).to be(true), "#{path} delivered different bytes"
    end
  end

  it "ends a relay early, and says so in Puma's log, when the object is gone upstream" do
    File.delete(File.join(@nginx.root, "object.bin"))
    _, body = get("/splice_from")
    expect(body).to eq("")
    log = File.join(@dir, "puma.log")
    Timeout.timeout(5) { sleep 0.05 until File.read(log).include?("hijack_app") }
    expect(File.read(log)).to match(%r{/splice_from: Bytepump::\S+: .*404})
  ensure
    File.binwrite(File.join(@nginx.root, "object.bin"), @object)
  end

  it "serves several clients at once" do
    bodies = 3.times.map { Thread.new { get("/splice").last } }.map(&:value)
    expect(bodies.map(&:bytesize)).to all(eq(File.size(@file)))
    expect(bodies.uniq.size).to eq(1)
  end

  it "leaves Puma healthy when a client disconnects mid-stream" do
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("GET /splice HTTP/1.1\r\nHost: localhost\r\n\r\n")
    socket.readpartial(4096)
    socket.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
    socket.close
    _, body = get("/splice")
    expect(body.bytesize).to eq(File.size(@file))
  end
end
