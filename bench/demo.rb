# frozen_string_literal: true

# Driven by bin/demo. Starts Puma on 127.0.0.1 with bench/hijack_app.ru,
# downloads /splice and /copy_stream, checks each SHA-256 and prints MB/s.
require "bytepump"
require "openssl"
require "fileutils"
require "socket"
require "timeout"

ROOT = File.expand_path("..", __dir__)
SIZE = Integer(ENV.fetch("BYTEPUMP_DEMO_MB", "256")) << 20
DIR = File.join(ROOT, "tmp", "demo")
FILE = File.join(DIR, "payload.bin")

def generate
  FileUtils.mkdir_p(DIR)
  return if File.exist?(FILE) && File.size(FILE) == SIZE

  random = Random.new(2026)
  File.open(FILE, "wb") { |f| (SIZE >> 20).times { f.write(random.bytes(1 << 20)) } }
end

def free_port
  server = TCPServer.new("127.0.0.1", 0)
  server.addr[1]
ensure
  server&.close
end

def start_puma(port)
  pid = spawn({ "BYTEPUMP_DEMO_FILE" => FILE },
              "bundle", "exec", "puma", "--bind", "tcp://127.0.0.1:#{port}", "--threads", "2:2",
              "--quiet", File.join(ROOT, "bench", "hijack_app.ru"),
              out: File::NULL, err: File.join(DIR, "puma.log"))
  Timeout.timeout(30) do
    TCPSocket.new("127.0.0.1", port).close
  rescue Errno::ECONNREFUSED
    sleep 0.1
    retry
  end
  pid
end

def request(port, path)
  socket = TCPSocket.new("127.0.0.1", port)
  socket.write("GET #{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
  head = +""
  head << socket.readpartial(1) until head.end_with?("\r\n\r\n")
  raise "bad response: #{head.lines.first}" unless head.start_with?("HTTP/1.1 200")

  [socket, head[/content-length: (\d+)/i, 1].to_i]
end

# GET path and hash the body; returns [body bytes, sha256 hex].
def verified_download(port, path)
  socket, length = request(port, path)
  sha = OpenSSL::Digest.new("SHA256")
  buffer = String.new(capacity: 1 << 20)
  got = 0
  while got < length
    socket.readpartial(1 << 20, buffer)
    got += buffer.bytesize
    sha << buffer
  end
  [got, sha.hexdigest]
ensure
  socket&.close
end

# GET path into /dev/null with splice_to, so the client is not what is timed.
# Returns MB/s.
def timed_download(port, path)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  socket, length = request(port, path)
  got = File.open(File::NULL, "wb") { |null| socket.splice_to(null, 60) }
  raise "#{path}: got #{got} of #{length} bytes" unless got == length

  got / (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) / 1e6
ensure
  socket&.close
end

generate
expected = OpenSSL::Digest.new("SHA256")
File.open(FILE, "rb") { |f| expected << f.read(1 << 22) until f.eof? }
expected = expected.hexdigest
port = free_port
pid = start_puma(port)
puts "Puma on 127.0.0.1:#{port} streams #{SIZE >> 20} MiB (sha256 #{expected[0, 16]}...) from a hijacked socket"
PATHS = %w[/splice /copy_stream].freeze
ROUNDS = 7
begin
  PATHS.each do |path|
    bytes, sha = verified_download(port, path)
    abort "demo failed: #{path} delivered #{bytes} bytes with sha256 #{sha}" unless bytes == SIZE && sha == expected
  end
  # Alternate the two apps so machine noise hits both alike.
  samples = PATHS.to_h { |path| [path, []] }
  ROUNDS.times { PATHS.each { |path| samples[path] << timed_download(port, path) } }
  rates = samples.transform_values { |runs| runs.sort[ROUNDS / 2] }
  PATHS.each do |path|
    printf("  %-13s %d bytes, sha256 verified, %8.1f MB/s (median of %d alternated downloads)\n",
           path, SIZE, rates[path], ROUNDS)
  end
  printf("splice_to / IO.copy_stream throughput: %.2fx\n", rates["/splice"] / rates["/copy_stream"])
ensure
  Process.kill("TERM", pid)
  Process.wait(pid)
end
