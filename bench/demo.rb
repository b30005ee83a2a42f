# frozen_string_literal: true

# Driven by bin/demo: the main job, end to end. A local nginx plays the object
# store; bench/hijack_app.ru hijacks the client socket and relays a 1 GiB
# object from nginx into it with IO#splice_from. It runs on a real Puma
# (2 threads), against Net::HTTP#read_body in the same app, then on a real
# Falcon (one event-loop thread, a fiber per request), against Falcon's own
# way: the Async::HTTP response body handed back as the Rack body. Each
# route's download is checked by SHA-256, then ROUNDS alternated downloads
# print MB/s and the server process's CPU seconds per GiB, with the per-round
# ratios so you can see they are stable. After each, the same file from disk:
# splice_to against IO.copy_stream on Puma (a parity line: both are
# sendfile(2)) and against Falcon's file body on Falcon.
#
#   BYTEPUMP_DEMO_MB (default 1024), BYTEPUMP_DEMO_ROUNDS (default 7),
#   BYTEPUMP_DEMO_SERVERS (default puma,falcon)
require "bytepump"
require "openssl"
require "fileutils"
require "timeout"
require_relative "support"
require_relative "../spec/support/servers"

ROOT = File.expand_path("..", __dir__)
SIZE = Integer(ENV.fetch("BYTEPUMP_DEMO_MB", "1024")) << 20
ROUNDS = Integer(ENV.fetch("BYTEPUMP_DEMO_ROUNDS", "7"))
SERVERS = ENV.fetch("BYTEPUMP_DEMO_SERVERS", "puma,falcon").split(",").map(&:to_sym)
DIR = File.join(ROOT, "tmp", "demo")
FILE = File.join(DIR, "object-#{SIZE >> 20}m.bin")
GIB = Float(1 << 30)

# The object, made once and kept in tmp/demo. Returns its SHA-256.
def generate
  FileUtils.mkdir_p(DIR)
  unless File.exist?(FILE) && File.size(FILE) == SIZE
    random = Random.new(2026)
    File.open("#{FILE}.part", "wb") { |f| (SIZE >> 20).times { f.write(random.bytes(1 << 20)) } }
    File.rename("#{FILE}.part", FILE)
  end
  OpenSSL::Digest.new("SHA256").file(FILE).hexdigest
end

# GET +path+ and hash what arrives; aborts unless it is the object, whole.
def verify(port, path, expected)
  socket, = BenchSupport.get(port, path)
  sha = OpenSSL::Digest.new("SHA256")
  buffer = String.new(capacity: 1 << 20)
  got = 0
  loop { got += sha.update(socket.readpartial(1 << 20, buffer)) && buffer.bytesize }
rescue EOFError
  abort "demo failed: GET #{path} delivered #{got} bytes, sha256 #{sha.hexdigest}" unless
    got == SIZE && sha.hexdigest == expected
ensure
  socket&.close
end

# One download into /dev/null. Returns [MB/s, server CPU seconds per GiB].
def timed(port, path, server)
  cpu = BenchSupport.cpu_seconds(server)
  started = BenchSupport.now
  got = BenchSupport.discard(port, path)
  seconds = BenchSupport.now - started
  raise "GET #{path}: #{got} of #{SIZE} bytes" unless got == SIZE

  [SIZE / seconds / 1e6, (BenchSupport.cpu_seconds(server) - cpu) / (SIZE / GIB)]
end

def spread(values) = format("%.2f-%.2f", *values.minmax)

# Alternates the two routes ROUNDS times and prints the figures and ratios
# (ours / theirs) of medians and of each round. +name+ labels the server.
def compare(port, pid, name, ours, theirs)
  rounds = Array.new(ROUNDS) do |i|
    pair = [ours, theirs].rotate(i % 2).to_h { |label, path| [label, timed(port, path, pid)] }
    [pair[ours.first], pair[theirs.first]]
  end
  [ours, theirs].each_with_index do |(label, _), column|
    rates = rounds.map { |r| r[column][0] }
    cpus = rounds.map { |r| r[column][1] }
    printf("  %-22s %7.0f MB/s (%5.0f-%5.0f)   %s CPU %5.2f s/GiB (%s)\n", label, BenchSupport.median(rates),
           *rates.minmax, name, BenchSupport.median(cpus), spread(cpus))
  end
  rate_ratios = rounds.map { |(a, b)| a[0] / b[0] }
  cpu_ratios = rounds.map { |(a, b)| a[1] / b[1] }
  printf("  %s / %s: %.2fx throughput (rounds %s), %.2fx CPU per GiB (rounds %s)\n", ours.first, theirs.first,
         BenchSupport.median(rate_ratios), spread(rate_ratios), BenchSupport.median(cpu_ratios), spread(cpu_ratios))
end

# Runs bench/hijack_app.ru on +server+ (:puma or :falcon), checks every route
# by SHA-256, then times the edge include and the file against the server's
# usual way of doing each.
def demo(server, env, expected)
  name = server.to_s.capitalize
  app = File.join(ROOT, "bench", "hijack_app.ru")
  pid, port = Servers.rack(server, app, env: env, log: File.join(DIR, "#{server}.log"))
  theirs = DIFFERENT[server]
  puts "Edge include: #{name} (127.0.0.1:#{port}, #{WHO[server]}) hijacks the client socket and relays a " \
       "#{SIZE >> 20} MiB object from nginx"
  (%w[/splice_from /splice] + theirs.values_at(:relay, :file).map(&:last)).each { |path| verify(port, path, expected) }
  puts "  every route delivered #{SIZE} bytes, sha256 #{expected[0, 16]}... verified; " \
       "medians (min-max) of #{ROUNDS} alternated rounds:"
  compare(port, pid, name, ["IO#splice_from", "/splice_from"], theirs[:relay])
  puts theirs[:file_note]
  compare(port, pid, name, ["IO#splice_to", "/splice"], theirs[:file])
ensure
  Servers.stop_process(pid) if pid
end

WHO = { puma: "2 threads", falcon: "one event-loop thread, a fiber per request" }.freeze
DIFFERENT = {
  puma: { relay: ["Net::HTTP#read_body", "/net_http"], file: ["IO.copy_stream", "/copy_stream"],
          file_note: "Parity line, not what bytepump is for: the same file from disk, both calls sendfile(2):" },
  falcon: { relay: ["Async::HTTP body", "/async_http"], file: ["Falcon file body", "/falcon_file"],
            file_note: "The same file from disk, against Falcon serving it as a Rack body with #to_path:" }
}.freeze

expected = generate
nginx = Servers::Nginx.new.start
File.symlink(FILE, File.join(nginx.root, "object.bin"))
env = { "BYTEPUMP_DEMO_URL" => "http://127.0.0.1:#{nginx.port}/object.bin", "BYTEPUMP_DEMO_FILE" => FILE }
begin
  puts "The object store: nginx on 127.0.0.1:#{nginx.port} serving #{SIZE >> 20} MiB /object.bin"
  SERVERS.each { |server| demo(server, env, expected) }
ensure
  nginx.stop
end
