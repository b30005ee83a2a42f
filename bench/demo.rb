# frozen_string_literal: true

# Driven by bin/demo: the main job, end to end. A local nginx plays the object
# store; a real Puma runs bench/hijack_app.ru, which hijacks the client socket
# and relays a 1 GiB object from nginx into it with IO#splice_from, or with
# Net::HTTP#read_body for comparison. Each route's download is checked by
# SHA-256, then ROUNDS alternated downloads print MB/s and the Puma process's
# CPU seconds per GiB, with the per-round ratios so you can see they are
# stable. Last, a parity line: the same file from disk by splice_to and by
# IO.copy_stream, which do the same kernel work (sendfile).
#
#   BYTEPUMP_DEMO_MB (default 1024), BYTEPUMP_DEMO_ROUNDS (default 7)
require "bytepump"
require "openssl"
require "fileutils"
require "timeout"
require_relative "support"
require_relative "../spec/support/servers"

ROOT = File.expand_path("..", __dir__)
SIZE = Integer(ENV.fetch("BYTEPUMP_DEMO_MB", "1024")) << 20
ROUNDS = Integer(ENV.fetch("BYTEPUMP_DEMO_ROUNDS", "7"))
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

def start_puma(env)
  port = Servers.free_port
  log = File.join(DIR, "puma.log")
  pid = spawn(env, Gem.ruby, Gem.bin_path("puma", "puma"), "--bind", "tcp://127.0.0.1:#{port}",
              "--threads", "2:2", "--quiet", File.join(ROOT, "bench", "hijack_app.ru"),
              out: File::NULL, err: log)
  Servers.wait_for_port(port, pid: pid, log: log)
  [pid, port]
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

# One download into /dev/null. Returns [MB/s, Puma CPU seconds per GiB].
def timed(port, path, puma)
  cpu = BenchSupport.cpu_seconds(puma)
  started = BenchSupport.now
  got = BenchSupport.discard(port, path)
  seconds = BenchSupport.now - started
  raise "GET #{path}: #{got} of #{SIZE} bytes" unless got == SIZE

  [SIZE / seconds / 1e6, (BenchSupport.cpu_seconds(puma) - cpu) / (SIZE / GIB)]
end

def spread(values) = format("%.2f-%.2f", *values.minmax)

# Alternates the two routes ROUNDS times and prints the figures and ratios
# (ours / theirs) of medians and of each round.
def compare(port, puma, ours, theirs)
  rounds = Array.new(ROUNDS) do |i|
    pair = [ours, theirs].rotate(i % 2).to_h { |name, path| [name, timed(port, path, puma)] }
    [pair[ours.first], pair[theirs.first]]
  end
  [ours, theirs].each_with_index do |(name, _), column|
    rates = rounds.map { |r| r[column][0] }
    cpus = rounds.map { |r| r[column][1] }
    printf("  %-22s %7.0f MB/s (%5.0f-%5.0f)   Puma CPU %5.2f s/GiB (%s)\n", name, BenchSupport.median(rates),
           *rates.minmax, BenchSupport.median(cpus), spread(cpus))
  end
  rate_ratios = rounds.map { |(a, b)| a[0] / b[0] }
  cpu_ratios = rounds.map { |(a, b)| a[1] / b[1] }
  printf("  %s / %s: %.2fx throughput (rounds %s), %.2fx CPU per GiB (rounds %s)\n", ours.first, theirs.first,
         BenchSupport.median(rate_ratios), spread(rate_ratios), BenchSupport.median(cpu_ratios), spread(cpu_ratios))
end

expected = generate
nginx = Servers::Nginx.new.start
File.symlink(FILE, File.join(nginx.root, "object.bin"))
url = "http://127.0.0.1:#{nginx.port}/object.bin"
puma, port = start_puma("BYTEPUMP_DEMO_URL" => url, "BYTEPUMP_DEMO_FILE" => FILE)
begin
  puts "Edge include: Puma (127.0.0.1:#{port}) hijacks the client socket and relays a #{SIZE >> 20} MiB " \
       "object from nginx (#{url})"
  %w[/splice_from /net_http /splice /copy_stream].each { |path| verify(port, path, expected) }
  puts "  every route delivered #{SIZE} bytes, sha256 #{expected[0, 16]}... verified; " \
       "medians (min-max) of #{ROUNDS} alternated rounds:"
  compare(port, puma, ["IO#splice_from", "/splice_from"], ["Net::HTTP#read_body", "/net_http"])
  puts "Parity line, not what bytepump is for: the same file from disk, where both calls are sendfile(2):"
  compare(port, puma, ["IO#splice_to", "/splice"], ["IO.copy_stream", "/copy_stream"])
ensure
  Servers.stop_process(puma)
  nginx.stop
end
