# frozen_string_literal: true

# A relay takes a client connection and streams a 1 GiB body from a local
# nginx into it: with splice_from, with Net::HTTP#read_body writing to the
# socket, and nginx's own proxy_pass. Prints MB/s and the relay's CPU seconds
# (from /proc, for the relay process or the proxy nginx's processes), medians
# of alternated runs, and the ratios.
require "bytepump"
require "net/http"
require_relative "support"
require_relative "../spec/support/servers"

SIZE = Integer(ENV.fetch("BYTEPUMP_RELAY_MB", "1024")) << 20
RUNS = Integer(ENV.fetch("BYTEPUMP_RELAY_RUNS", "3"))
def relay(mode, url)
  server = TCPServer.new("127.0.0.1", 0)
  pid = fork do
    loop do
      client = server.accept
      client.readline("\r\n\r\n")
      client.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
      if mode == :splice
        client.splice_from(url: url)
      else
        Net::HTTP.get_response(URI(url)) { |res| res.read_body { |chunk| client.write(chunk) } }
      end
      client.close
    end
  end
  port = server.addr[1]
  server.close
  [pid, port]
end

def timed_download(port, pids)
  cpu = BenchSupport.cpu_seconds(pids)
  started = BenchSupport.now
  got = BenchSupport.discard(port, "/big.bin")
  raise "short download: #{got} of #{SIZE}" unless got == SIZE

  [SIZE / (BenchSupport.now - started) / 1e6, BenchSupport.cpu_seconds(pids) - cpu]
end

upstream = Servers::Nginx.new.start
upstream.add("big.bin", Random.new(1).bytes(64 << 20) * (SIZE / (64 << 20)))
proxy = Servers::Nginx.new(proxy_to: upstream.port).start
url = "http://127.0.0.1:#{upstream.port}/big.bin"
splice_pid, splice_port = relay(:splice, url)
nethttp_pid, nethttp_port = relay(:nethttp, url)
proxy_pids = [proxy.pid] + `pgrep -P #{proxy.pid}`.split.map(&:to_i) # master and workers
targets = { "splice_from" => [splice_port, [splice_pid]], "Net::HTTP" => [nethttp_port, [nethttp_pid]],
            "nginx proxy_pass" => [proxy.proxy_port, proxy_pids] }
begin
  targets.each_value { |port, pids| timed_download(port, pids) } # warm-up: page cache, pools
  samples = Hash.new { |h, k| h[k] = [] }
  RUNS.times { targets.each { |name, (port, pids)| samples[name] << timed_download(port, pids) } }
  puts "relay of a #{SIZE >> 20} MiB body from nginx on 127.0.0.1, medians of #{RUNS} alternated runs"
  stats = samples.transform_values { |runs| runs.transpose.map { |column| BenchSupport.median(column) } }
  stats.each { |name, (mbs, cpu)| printf("  %-17s %7.0f MB/s  relay CPU %6.3f s\n", name, mbs, cpu) }
  s_mbs, s_cpu = stats["splice_from"]
  n_mbs, n_cpu = stats["Net::HTTP"]
  x_mbs, x_cpu = stats["nginx proxy_pass"]
  printf("  splice_from vs Net::HTTP:        %.2fx throughput, %.2fx CPU (targets >= 1.8x, <= 0.3x)\n",
         s_mbs / n_mbs, s_cpu / n_cpu)
  printf("  splice_from vs nginx proxy_pass: %.2fx throughput, %.2fx CPU (target > 1x)\n", s_mbs / x_mbs, s_cpu / x_cpu)
ensure
  [splice_pid, nethttp_pid].each do |pid|
    Process.kill("TERM", pid)
    Process.wait(pid)
  end
  proxy.stop
  upstream.stop
end
