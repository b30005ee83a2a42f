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
# Last, CLIENTS clients at once on Falcon, each relayed SIZE / CLIENTS bytes.
#
#   BYTEPUMP_DEMO_MB (default 1024), BYTEPUMP_DEMO_ROUNDS (default 7),
#   BYTEPUMP_DEMO_SERVERS (default puma,falcon), BYTEPUMP_DEMO_CLIENTS (default 16)
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
CLIENTS = Integer(ENV.fetch("BYTEPUMP_DEMO_CLIENTS", "16"))
DIR = File.join(ROOT, "tmp", "demo")
GIB = Float(1 << 30)

# An object nginx serves: its file, size in bytes and SHA-256.
Obj = Struct.new(:path, :bytes, :sha256)

# The object of +size+ bytes, made once and kept in tmp/demo.
def generate(size)
  FileUtils.mkdir_p(DIR)
  path = File.join(DIR, "object-#{size >> 20}m.bin")
  unless File.exist?(path) && File.size(path) == size
    random = Random.new(2026)
    File.open("#{path}.part", "wb") { |f| (size >> 20).times { f.write(random.bytes(1 << 20)) } }
    File.rename("#{path}.part", path)
  end
  Obj.new(path, size, OpenSSL::Digest.new("SHA256").file(path).hexdigest)
end

# GET +path+ and hash what arrives; aborts unless it is +object+, whole.
def verify(port, path, object)
  socket, = BenchSupport.get(port, path)
  got, sha = Servers.digest_to_end(socket)
  return if got == object.bytes && sha == object.sha256

  abort "demo failed: GET #{path} delivered #{got} bytes, sha256 #{sha}"
ensure
  socket&.close
end

# +clients+ downloads of +size+ bytes at once, each into /dev/null. Returns
# [MB/s all together, server CPU seconds per GiB].
def timed(port, path, server, size, clients)
  cpu = BenchSupport.cpu_seconds(server)
  started = BenchSupport.now
  counts = Array.new(clients) { Thread.new { BenchSupport.discard(port, path) } }.map(&:value)
  seconds = BenchSupport.now - started
  raise "GET #{path}: #{counts.inspect} bytes, not #{size} each" unless counts.all?(size)

  total = size * clients
  [total / seconds / 1e6, (BenchSupport.cpu_seconds(server) - cpu) / (total / GIB)]
end

def spread(values) = format("%.2f-%.2f", *values.minmax)

# Alternates the two routes ROUNDS times and prints the figures and ratios
# (ours / theirs) of medians and of each round. +name+ labels the server.
def compare(port, pid, name, ours, theirs, size: SIZE, clients: 1)
  rounds = Array.new(ROUNDS) do |i|
    pair = [ours, theirs].rotate(i % 2).to_h { |label, path| [label, timed(port, path, pid, size, clients)] }
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
def demo(server, env, object)
  name = server.to_s.capitalize
  pid, port = Servers.rack(server, APP, env: env, log: File.join(DIR, "#{server}.log"))
  theirs = DIFFERENT[server]
  puts "Edge include: #{name} (127.0.0.1:#{port}, #{WHO[server]}) hijacks the client socket and relays a " \
       "#{SIZE >> 20} MiB object from nginx"
  (%w[/splice_from /splice] + theirs.values_at(:relay, :file).map(&:last)).each { |path| verify(port, path, object) }
  puts "  every route delivered #{SIZE} bytes, sha256 #{object.sha256[0, 16]}... verified; " \
       "medians (min-max) of #{ROUNDS} alternated rounds:"
  compare(port, pid, name, ["IO#splice_from", "/splice_from"], theirs[:relay])
  puts theirs[:file_note]
  compare(port, pid, name, ["IO#splice_to", "/splice"], theirs[:file])
ensure
  Servers.stop_process(pid) if pid
end

# CLIENTS clients at once on one Falcon, each relayed an object of
# SIZE / CLIENTS bytes: the same bytes per round as one client above.
def many_clients(nginx)
  object = generate([SIZE / CLIENTS, 1 << 20].max)
  File.symlink(object.path, File.join(nginx.root, "small.bin"))
  env = { "BYTEPUMP_DEMO_URL" => "http://127.0.0.1:#{nginx.port}/small.bin" }
  pid, port = Servers.rack(:falcon, APP, env: env, log: File.join(DIR, "falcon-many.log"))
  relay = DIFFERENT[:falcon][:relay]
  puts "#{CLIENTS} clients at once on Falcon, each relayed a #{object.bytes >> 20} MiB object (sha256 " \
       "#{object.sha256[0, 16]}... verified), all bytes counted; MB/s of all together:"
  ["/splice_from", relay.last].each { |path| verify(port, path, object) }
  compare(port, pid, "Falcon", ["IO#splice_from", "/splice_from"], relay, size: object.bytes, clients: CLIENTS)
ensure
  Servers.stop_process(pid) if pid
end

APP = File.join(ROOT, "bench", "hijack_app.ru")
WHO = { puma: "2 threads", falcon: "one event-loop thread, a fiber per request" }.freeze
DIFFERENT = {
  puma: { relay: ["Net::HTTP#read_body", "/net_http"], file: ["IO.copy_stream", "/copy_stream"],
          file_note: "Parity line, not what bytepump is for: the same file from disk, both calls sendfile(2):" },
  falcon: { relay: ["Async::HTTP body", "/async_http"], file: ["Falcon file body", "/falcon_file"],
            file_note: "The same file from disk, against Falcon serving it as a Rack body with #to_path:" }
}.freeze

object = generate(SIZE)
nginx = Servers::Nginx.new.start
File.symlink(object.path, File.join(nginx.root, "object.bin"))
env = { "BYTEPUMP_DEMO_URL" => "http://127.0.0.1:#{nginx.port}/object.bin", "BYTEPUMP_DEMO_FILE" => object.path }
begin
  puts "The object store: nginx on 127.0.0.1:#{nginx.port} serving #{SIZE >> 20} MiB /object.bin"
  SERVERS.each { |server| demo(server, env, object) }
  many_clients(nginx) if SERVERS.include?(:falcon) && CLIENTS > 1
ensure
  nginx.stop
end
