# frozen_string_literal: true

require "openssl"

# A real Falcon (async-http) runs bench/hijack_app.ru in one process with one
# event loop thread: every request is a fiber, and splice_to / splice_from
# wait through the Fiber scheduler. A pump that blocked the thread would stall
# every other client of the process; these examples would then time out.
RSpec.describe "a Rack app on Falcon streaming with splice_to and splice_from in fibers", :integration do
  before(:all) do
    @dir = Dir.mktmpdir("bytepump-falcon")
    @file = File.join(@dir, "payload.bin")
    File.binwrite(@file, "#{Random.new(52).bytes(8 << 20)}tail")
    @file_sha = OpenSSL::Digest::SHA256.file(@file).hexdigest
    @nginx = Servers::Nginx.new.start
    @object = Random.new(53).bytes((5 << 20) + 777)
    url = @nginx.add("object.bin", @object)
    @log = File.join(@dir, "falcon.log")
    @falcon, @port = Servers.rack(:falcon, File.expand_path("../bench/hijack_app.ru", __dir__),
                                  env: { "BYTEPUMP_DEMO_FILE" => @file, "BYTEPUMP_DEMO_URL" => url }, log: @log)
  end

  after(:all) do
    Servers.stop_process(@falcon) if @falcon
    @nginx&.stop
    FileUtils.rm_rf(@dir)
  end

  # Connects, sends GET +path+, reads the head. Returns [socket, head].
  def request(path, rcvbuf: nil)
    socket = Socket.new(:INET, :STREAM)
    socket.setsockopt(Socket::SOL_SOCKET, Socket::SO_RCVBUF, rcvbuf) if rcvbuf
    socket.connect(Socket.sockaddr_in(@port, "127.0.0.1"))
    socket.write("GET #{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    [socket, socket.readline("\r\n\r\n")]
  rescue StandardError
    socket&.close
    raise
  end

  # GET +path+ to the end of the connection. Returns [head, body bytes, SHA-256].
  def get(path)
    socket, head = request(path)
    [head, *Servers.digest_to_end(socket)]
  ensure
    socket&.close
  end

  def expect_file(head, size, sha)
    expect(head).to start_with("HTTP/1.1 200").and match(/^content-length: #{File.size(@file)}\r$/i)
    expect([size, sha]).to eq([File.size(@file), @file_sha])
  end

  def expect_object(head, size, sha)
    expect(head).to start_with("HTTP/1.1 200")
    expect([size, sha]).to eq([@object.bytesize, OpenSSL::Digest::SHA256.hexdigest(@object)])
  end

  it "streams the file and the edge include to 40 concurrent clients, every byte checked", deadline: 120 do
    logged = File.size(@log)
    paths = %w[/splice /splice_from] * 20
    results = paths.map { |path| helper_thread { get(path) } }.map(&:value)
    paths.zip(results).each do |path, (head, size, sha)|
      path == "/splice" ? expect_file(head, size, sha) : expect_object(head, size, sha)
    end
    expect(File.read(@log)[logged..]).not_to include("hijack_app:")
  end

  it "keeps serving other clients while one client stalls mid-body, then finishes that one exactly" do
    stalled, head = request("/splice", rcvbuf: 4096)
    expect(head).to start_with("HTTP/1.1 200")
    sleep 0.3 # the server's splice_to fills the socket buffers and waits for the stalled client
    others = (%w[/splice_from /splice] * 5).map { |path| helper_thread { [path, get(path)] } }
    others.map(&:value).each do |path, (other_head, size, sha)|
      path == "/splice" ? expect_file(other_head, size, sha) : expect_object(other_head, size, sha)
    end
    body = stalled.read
    expect([body.bytesize, OpenSSL::Digest::SHA256.hexdigest(body)]).to eq([File.size(@file), @file_sha])
  ensure
    stalled&.close
  end

  it "serves Falcon's own streaming routes with the same bytes (the benchmark's comparisons)" do
    expect_file(*get("/falcon_file"))
    expect_object(*get("/async_http"))
    expect_file(*get("/copy_stream"))
    expect_object(*get("/net_http"))
  end

  it "leaves no epoll registration behind on the hijacked sockets it waited on" do
    paths = %w[/splice /splice_from] * 5
    results = paths.map { |path| helper_thread { get(path) } }.map(&:value)
    expect(results.map { |_, size, _| size }).to eq(paths.map { |p|
      p == "/splice" ? File.size(@file) : @object.bytesize
    })
    stale = stale_epoll_registrations(@falcon)
    Timeout.timeout(2) { sleep 0.05 until (stale = stale_epoll_registrations(@falcon)).empty? }
  rescue Timeout::Error
    raise "Falcon's epoll set keeps #{stale.size} registrations of closed fds: #{stale.inspect}"
  end

  it "stays healthy when a client resets mid-stream, and says what happened in its log" do
    socket, = request("/splice", rcvbuf: 4096)
    socket.readpartial(4096)
    socket.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
    socket.close
    Timeout.timeout(10) { sleep 0.05 until File.read(@log).include?("hijack_app: /splice") }
    expect(File.read(@log)).to match(%r{hijack_app: /splice: (Errno::ECONNRESET|Errno::EPIPE|Bytepump::\S+)})
    expect_file(*get("/splice"))
  end
end
