# frozen_string_literal: true

# Benchmark (not a test): the cost of one call. A small file is sent into a
# UNIX socket whose far end a forked child drains, CALLS times per round, by
# splice_to, IO.copy_stream and a read/write loop, rounds alternated (ROUNDS,
# default 7). Prints per-call microseconds (median, min-max), Ruby objects
# allocated per call, and the ratios to IO.copy_stream.
#
#   bundle exec rake compile && bundle exec ruby bench/per_call.rb
require "bytepump"
require "socket"
require "tmpdir"

ROUNDS = Integer(ENV.fetch("ROUNDS", "7"))
SIZES = { "4 KiB" => [4096, 10_000], "64 KiB" => [65_536, 20_000] }.freeze

def drain(sock, *parents_ends)
  fork do
    parents_ends.each(&:close)
    buf = String.new(capacity: 1 << 20)
    loop { sock.readpartial(1 << 20, buf) }
  rescue EOFError
    exit!(0)
  end
end

def read_write(src, dst)
  buf = +""
  n = 0
  while src.read(65_536, buf)
    dst.write(buf)
    n += buf.bytesize
  end
  n
end

METHODS = {
  "splice_to" => ->(f, sock) { f.splice_to(sock) },
  "IO.copy_stream" => ->(f, sock) { IO.copy_stream(f, sock) },
  "read/write loop" => ->(f, sock) { read_write(f, sock) }
}.freeze

# [microseconds per call, objects allocated per call] for one round.
def round(method, file, sock, calls, size)
  GC.start
  allocated = GC.stat(:total_allocated_objects)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  calls.times do
    file.rewind
    raise "#{method}: short" unless METHODS.fetch(method).call(file, sock) == size
  end
  elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
  [elapsed * 1e6 / calls, (GC.stat(:total_allocated_objects) - allocated - 1).fdiv(calls)]
end

def median(values) = values.sort[values.size / 2]

Dir.mktmpdir do |dir|
  SIZES.each do |label, (size, calls)|
    path = File.join(dir, "f")
    File.binwrite(path, Random.new(1).bytes(size))
    ours, theirs = UNIXSocket.pair
    child = drain(theirs, ours)
    theirs.close
    results = Hash.new { |h, k| h[k] = [] }
    File.open(path, "rb") do |file|
      ROUNDS.times do |i|
        order = METHODS.keys.rotate(i % METHODS.size)
        order.each { |method| results[method] << round(method, file, ours, calls, size) }
      end
    end
    ours.close
    Process.wait(child)
    base = median(results["IO.copy_stream"].map(&:first))
    puts "#{label} file -> UNIX socket, #{calls} calls x #{ROUNDS} alternated rounds:"
    METHODS.each_key do |method|
      times = results[method].map(&:first)
      objects = median(results[method].map(&:last))
      printf("  %-16s %7.2f us/call (%.2f-%.2f)  %5.2f objects/call  %.2fx copy_stream's time\n",
             method, median(times), times.min, times.max, objects, median(times) / base)
    end
  end
end
