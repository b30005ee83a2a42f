# frozen_string_literal: true

# Benchmark (not a test): N (default 1,000) socket->socket transfers at once
# in one process, one thread each, by splice_to and by IO.copy_stream. A
# forked child feeds every source PER bytes and checks every destination got
# them. Prints wall and CPU seconds, the peak of open fds and of the pipe
# capacity bytepump held (what counts against the per-user pipe quota), for
# ROUNDS alternated rounds. Run it as a non-root user to meet the quota:
#
#   bundle exec rake compile
#   setpriv --reuid=nobody --regid=nogroup --clear-groups \
#     ruby -Ilib -Itmp/x86_64-linux-gnu/stage/lib bench/thousand.rb
require "bytepump"
require "socket"

N = Integer(ENV.fetch("N", "1000"))
PER = Integer(ENV.fetch("PER_KB", "1024")) << 10
ROUNDS = Integer(ENV.fetch("ROUNDS", "3"))

CHUNK = ("x" * 65_536).freeze

def write_some(ready, left)
  ready.each do |s|
    n = s.write_nonblock(CHUNK.byteslice(0, [CHUNK.bytesize, left[s]].min), exception: false)
    next if n == :wait_writable

    left[s] -= n
    next unless left[s].zero?

    left.delete(s)
    s.close
  end
end

def read_some(ready, got)
  ready.each do |s|
    data = s.read_nonblock(1 << 20, exception: false)
    got[s] += data.bytesize if data.is_a?(String)
  end
end

# A child that writes PER bytes into every source and exits 0 only if every
# sink received PER bytes.
def feed_and_check(sources, sinks)
  fork do
    left = sources.to_h { |s| [s, PER] }
    got = sinks.to_h { |s| [s, 0] }
    until left.empty? && got.values.all?(PER)
      ready_r, ready_w = IO.select(got.reject { |_, n| n == PER }.keys, left.keys, nil, 30)
      exit!(2) unless ready_r || ready_w
      write_some(ready_w || [], left)
      read_some(ready_r || [], got)
    end
    exit!(0)
  end
end

def round(method)
  ins = Array.new(N) { UNIXSocket.pair }
  outs = Array.new(N) { UNIXSocket.pair }
  child = feed_and_check(ins.map(&:last), outs.map(&:last))
  (ins + outs).each { |pair| pair.last.close } # the child's ends
  peak_fds = peak_held = 0
  sampler = Thread.new do
    loop do
      peak_fds = [peak_fds, Dir.children("/proc/self/fd").size].max
      peak_held = [peak_held, Bytepump::Native.pool_stats[3]].max
      sleep 0.01
    end
  end
  wall = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  threads = ins.zip(outs).map do |(a, _), (c, _)|
    Thread.new do
      n = method == :splice_to ? a.splice_to(c) : IO.copy_stream(a, c)
      c.close
      a.close
      n
    end
  end
  counts = threads.map(&:value)
  wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - wall
  cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu
  sampler.kill.join
  Process.wait(child)
  raise "#{method}: a destination did not get every byte" unless Process.last_status.success?
  raise "#{method}: short count" unless counts.all?(PER)

  [wall, cpu, peak_fds, peak_held]
end

soft = File.read("/proc/sys/fs/pipe-user-pages-soft").to_i * 4
puts "#{N} socket->socket transfers of #{PER >> 10} KiB at once, uid #{Process.euid}, " \
     "pipe quota #{Process.euid.zero? ? 'none (root)' : "#{soft} KiB (soft)"}"
results = Hash.new { |h, k| h[k] = [] }
ROUNDS.times do |i|
  %i[splice_to copy_stream].rotate(i % 2).each { |m| results[m] << round(m) }
end
results.each do |method, rs|
  wall, cpu, fds, held = rs.transpose.map { |v| v.sort[v.size / 2] }
  printf("  %-12s wall %.2f s  cpu %.2f s  peak fds %d  peak pipe capacity held %.1f MiB\n",
         method, wall, cpu, fds, held / 1_048_576.0)
end
s = results[:splice_to].transpose
c = results[:copy_stream].transpose
med = ->(v) { v.sort[v.size / 2] }
printf("  splice_to / copy_stream: wall %.2fx, cpu %.2fx\n", med[s[0]] / med[c[0]], med[s[1]] / med[c[1]])
