# frozen_string_literal: true

# Soak (not a test): runs many mixed transfers, a share of them with faults
# (peer resets and closes, stalls past the timeout, Thread#raise, Timeout,
# IO#close from another thread, malformed and short HTTP bodies), and prints
# the process's open fds, RSS and pipe-pool state as it goes. Both must stay
# flat: a leak of one fd or one buffer per operation shows at once.
#
#   bundle exec ruby bench/soak.rb            # 100,000 operations
#   BYTEPUMP_SOAK_OPS=20000 bundle exec ruby bench/soak.rb
require "bytepump"
require "socket"
require "stringio"
require "tempfile"
require "timeout"
require_relative "../spec/support/servers"

$stdout.sync = true
OPS = Integer(ENV.fetch("BYTEPUMP_SOAK_OPS", "100000"))
REPORT_EVERY = [OPS / 10, 1].max
FILE_DATA = Random.new(1).bytes(64 << 10)
BODY = Random.new(2).bytes(20_000)

def rss_kib = File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i
def fds = Dir.children("/proc/self/fd").size

# An upstream that answers by path: good, chunked, short, malformed, stall.
# It runs in a child process, so its threads' memory is not counted here.
def start_upstream
  port_reader, port_writer = IO.pipe
  pid = fork do
    port_reader.close
    server = Servers::Scripted.new do |path, conn, _|
      case path
      when "/ok" then conn.write("HTTP/1.1 200 OK\r\nContent-Length: #{BODY.bytesize}\r\n\r\n#{BODY}")
      when "/chunked"
        conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4e20\r\n#{BODY}\r\n0\r\n\r\n")
      when "/short" then conn.write("HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n#{BODY}")
      when "/bad" then conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX")
      when "/stall"
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
        sleep 0.2
      end
    end
    port_writer.puts(server.port)
    port_writer.close
    sleep
  end
  port_writer.close
  port = Integer(port_reader.gets)
  port_reader.close
  [pid, "http://127.0.0.1:#{port}"]
end

UPSTREAM_PID, UPSTREAM = start_upstream
at_exit do
  Process.kill(:KILL, UPSTREAM_PID)
  Process.wait(UPSTREAM_PID)
end

def drained_pair
  ours, peer = UNIXSocket.pair
  reader = Thread.new do
    loop { peer.readpartial(1 << 16) }
  rescue IOError
    nil
  ensure
    peer.close
  end
  [ours, reader]
end

def with_sink
  dst, reader = drained_pair
  yield dst
ensure
  dst.close
  reader.join
end

# Runs splice_to in a thread from a source that sends nothing and strikes
# it (yields the thread and the source) once it waits.
def strike_waiting_pump
  src, peer = UNIXSocket.pair
  with_sink do |dst|
    pump = Thread.new { src.splice_to(dst) }
    pump.report_on_exception = false
    Thread.pass until pump.status == "sleep"
    yield pump, src
    pump.join
  rescue Interrupt, IOError
    nil
  end
ensure
  src.close
  peer.close
end

OPERATIONS = {
  file_to_socket: lambda do
    File.open(FILE_PATH, "rb") { |f| with_sink { |dst| f.splice_to(dst, 5) } }
  end,
  pipe_to_file_with_length: lambda do
    r, w = IO.pipe
    w.write(FILE_DATA[0, 10_000])
    w.close
    OUT.rewind
    r.splice_to(OUT, length: 5000)
    r.close
  end,
  socket_peer_reset: lambda do
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    src = server.accept
    server.close
    client.write(FILE_DATA[0, 4096])
    client.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
    client.close
    with_sink { |dst| src.splice_to(dst, 5) }
  rescue Errno::ECONNRESET
    nil
  ensure
    src&.close
  end,
  stall_timeout: lambda do
    src, peer = UNIXSocket.pair
    with_sink { |dst| src.splice_to(dst, 0.001) }
  ensure
    src.close
    peer.close
  end,
  thread_raise: -> { strike_waiting_pump { |pump, _| pump.raise(Interrupt) } },
  timeout: lambda do
    src, peer = UNIXSocket.pair
    with_sink { |dst| Timeout.timeout(0.001) { src.splice_to(dst) } }
  rescue Timeout::Error
    nil
  ensure
    src.close
    peer.close
  end,
  closed_by_another_thread: -> { strike_waiting_pump { |_, src| src.close } },
  copy_to_stringio: -> { Bytepump.pump(StringIO.new(FILE_DATA), StringIO.new) },
  skip_headers: lambda do
    r, w = IO.pipe
    w.write("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody")
    w.close
    r.skip_headers
    r.close
  end,
  fetch: lambda do
    path = %w[/ok /chunked /short /bad /stall].sample
    with_sink { |dst| Bytepump.fetch("#{UPSTREAM}#{path}", into: dst, timeout: 0.05) }
  rescue Bytepump::Error
    nil
  end
}.freeze
# Connections leave TIME_WAIT sockets behind: keep TCP operations rare
# enough that the ephemeral ports last.
WEIGHTS = { fetch: 1, socket_peer_reset: 1 }.freeze
ONLY = ENV["BYTEPUMP_SOAK_ONLY"]&.split(",")&.map(&:to_sym) # to find which operation grows
PLAN = (ONLY || OPERATIONS.keys).flat_map { |k| [k] * (WEIGHTS[k] || 3) }

tmp = Tempfile.new("bytepump-soak")
tmp.binmode
tmp.write(FILE_DATA)
tmp.flush
FILE_PATH = tmp.path
OUT = Tempfile.new("bytepump-soak-out")

counts = Hash.new(0)
# One round first, so the start figures include what is meant to stay (the
# pipe pool, Ruby's own lazily created threads and buffers).
PLAN.each { |op| OPERATIONS.fetch(op).call }
GC.start
start = { fds: fds, rss: rss_kib, fd_list: Dir.children("/proc/self/fd") }
puts "ops      fds  rss KiB  pooled pipes  pooled bytes"
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
OPS.times do |i|
  op = PLAN[i % PLAN.size]
  OPERATIONS.fetch(op).call
  counts[op] += 1
  next unless ((i + 1) % REPORT_EVERY).zero?

  GC.start
  pipes, held = Bytepump::Native.pool_stats
  puts format("%-8d %-4d %-8d %-13d %d", i + 1, fds, rss_kib, pipes, held)
end
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
GC.start
puts "operations: #{counts.map { |k, v| "#{k} #{v}" }.join(', ')}"
puts format("%d operations in %.1f s; fds %d -> %d; RSS %d -> %d KiB", OPS, elapsed, start[:fds], fds,
            start[:rss], rss_kib)
(Dir.children("/proc/self/fd") - start[:fd_list]).each do |fd|
  puts "fd #{fd} opened since the start: #{File.readlink("/proc/self/fd/#{fd}")}"
rescue SystemCallError
  nil
end
