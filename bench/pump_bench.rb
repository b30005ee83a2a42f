# frozen_string_literal: true

# Benchmark (not a test): 1 GiB socket->socket (with three kinds of peers on the
# far ends: zero-copy, C read/write, Ruby) and file->socket over loopback.
# For splice_to, IO.copy_stream, a read/write loop and the C++ pump alone it
# prints MB/s, the pump process's CPU seconds and Ruby objects allocated,
# runs alternated, medians of RUNS (default 7) with min-max, and ratios to copy_stream
# and to a plain blocking C splice relay (the limit).
#
#   bundle exec rake compile && bundle exec ruby bench/pump_bench.rb
require "English"
require "bytepump"
require "socket"
require "fileutils"

ROOT = File.expand_path("..", __dir__)
SIZE = Integer(ENV.fetch("BENCH_MB", "1024")) << 20
RUNS = Integer(ENV.fetch("RUNS", "7"))
DIR = File.join(ROOT, "tmp", "bench")
FILE = File.join(DIR, "1g.bin")
WARM_UP_FILE = File.join(DIR, "warm-up.bin")
WARM_UP_SIZE = 8 << 20
DRIVER = File.join(ROOT, "build-bench", "bench", "bytepump_pump_driver")

def build_driver
  system("cmake", "-S", ROOT, "-B", File.join(ROOT, "build-bench"), "-DCMAKE_BUILD_TYPE=Release",
         "-DBYTEPUMP_BENCH=ON", "-DBYTEPUMP_TEST=OFF", out: File::NULL, exception: true)
  system("cmake", "--build", File.join(ROOT, "build-bench"), "-j2", out: File::NULL, exception: true)
end

def write_file(path, size)
  return if File.exist?(path) && File.size(path) == size

  chunk = Random.new(7).bytes(1 << 20)
  File.open(path, "wb") { |f| (size >> 20).times { f.write(chunk) } }
end

def prepare_files
  FileUtils.mkdir_p(DIR)
  write_file(FILE, SIZE)
  write_file(WARM_UP_FILE, WARM_UP_SIZE)
end

def tcp_pair(listener)
  client = TCPSocket.new("127.0.0.1", listener.addr[1])
  [listener.accept, client]
end

# The far ends of the sockets: a consumer drains its socket and exits with
# success only if it got exactly +size+ bytes; a producer sends +size+ bytes.
# Three kinds, each a process of its own: zero-copy (splice_to from /dev/zero
# and into /dev/null), C read/write (pump_driver --produce/--consume, 64 KiB
# blocking read()/write() calls) and Ruby (readpartial/write with a 64 KiB
# String). Forked children close the parent's ends so EOFs arrive; the C peers
# get only their socket (Ruby's fds are close-on-exec).
CHUNK = 1 << 16
PEERS = {
  "zero-copy" => {
    consumer: lambda { |sock, size|
      File.open(File::NULL, "wb") { |null| exit!(sock.splice_to(null) == size ? 0 : 1) }
    },
    producer: lambda { |sock, size|
      File.open("/dev/zero", "rb") { |zero| exit!(zero.splice_to(sock, length: size) == size ? 0 : 1) }
    }
  },
  "C read/write" => {
    consumer: ->(sock, size) { [DRIVER, "--consume", sock.fileno.to_s, size.to_s, { sock => sock }] },
    producer: ->(sock, size) { [DRIVER, "--produce", sock.fileno.to_s, size.to_s, { sock => sock }] }
  },
  "Ruby" => {
    consumer: lambda { |sock, size|
      buffer = String.new(capacity: CHUNK)
      got = 0
      begin
        loop { got += sock.readpartial(CHUNK, buffer).bytesize }
      rescue EOFError
        exit!(got == size ? 0 : 1)
      end
    },
    producer: lambda { |sock, size|
      chunk = "\0" * CHUNK
      (size / CHUNK).times { sock.write(chunk) }
      sock.write(chunk[0, size % CHUNK])
      exit!(0)
    }
  }
}.freeze

# Starts one side (:consumer or :producer) of +peers+ on +sock+; returns its pid.
def peer(peers, side, sock, size, *parents_ends)
  job = PEERS.fetch(peers).fetch(side)
  command = job.call(sock, size) if peers == "C read/write"
  return spawn(*command) if command

  fork do
    parents_ends.each(&:close)
    job.call(sock, size)
  end
end

METHODS = {
  "splice_to" => ->(src, dst) { src.splice_to(dst) },
  "copy_stream" => ->(src, dst) { IO.copy_stream(src, dst) },
  "read/write loop" => lambda { |src, dst|
    buffer = String.new(capacity: 1 << 16)
    total = 0
    begin
      loop do
        src.readpartial(1 << 16, buffer)
        dst.write(buffer)
        total += buffer.bytesize
      end
    rescue EOFError
      total
    end
  },
  "C++ pump" => :driver,
  "C splice relay" => :relay
}.freeze

# The C++ driver times its own pump() call (or, with +relay+, a plain
# blocking splice relay: the limit): process start-up is not counted.
# Returns [bytes, seconds, CPU seconds].
def run_driver(src, dst, relay: false)
  args = [DRIVER, *("--relay" if relay), src.fileno.to_s, dst.fileno.to_s, { src => src, dst => dst }]
  report = IO.popen(args, &:read)
  raise "C++ #{relay ? 'relay' : 'pump'} failed" unless $CHILD_STATUS.success?

  report.split.map(&:to_f)
end

COUNTS = {} # rubocop:disable Style/MutableConstant -- filled in place: counting must not allocate

def live_objects
  ObjectSpace.count_objects(COUNTS)
  COUNTS[:TOTAL] - COUNTS[:FREE]
end

# Runs a Ruby method in this process. Returns [bytes, seconds, CPU seconds, objects allocated].
def run_ruby(method, src, dst)
  GC.start
  GC.disable # nothing is freed meanwhile, so the growth in live objects is what was allocated
  objects = live_objects
  cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  bytes = METHODS.fetch(method).call(src, dst)
  [bytes, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started,
   Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu,
   live_objects - objects]
ensure
  GC.enable
end

# Returns [MB/s, CPU seconds of the pump process, Ruby objects allocated].
# +kind+ is :file or :socket, +peers+ a key of PEERS.
def measure(kind, peers, method, listener, size = SIZE)
  downstream, far_end = tcp_pair(listener)
  consumer_pid = peer(peers, :consumer, far_end, size, downstream)
  far_end.close
  if kind == :socket
    src, feeder = tcp_pair(listener)
    producer_pid = peer(peers, :producer, feeder, size, src, downstream)
    feeder.close
  else
    src = File.open(size == SIZE ? FILE : WARM_UP_FILE, "rb") # rubocop:disable Style/FileOpen -- closed below
  end

  bytes, elapsed, cpu, objects = case method
                                 when :driver then run_driver(src, downstream)
                                 when :relay then run_driver(src, downstream, relay: true)
                                 else run_ruby(method, src, downstream)
                                 end
  downstream.close
  src.close
  raise "#{method} moved #{bytes.to_i} bytes, expected #{size}" unless bytes.to_i == size

  if producer_pid
    Process.wait(producer_pid)
    raise "#{method}: the #{peers} producer failed" unless $CHILD_STATUS.success?
  end
  Process.wait(consumer_pid)
  raise "#{method}: the #{peers} consumer did not get #{size} bytes" unless $CHILD_STATUS.success?

  [size / elapsed / 1e6, cpu, objects]
end

def median(values)
  values = values.compact.sort
  values.empty? ? nil : values[values.size / 2]
end

build_driver
prepare_files
listener = TCPServer.new("127.0.0.1", 0)
puts "bytepump #{Bytepump::VERSION}: #{SIZE >> 20} MiB per transfer over 127.0.0.1, medians of #{RUNS} alternated runs"
puts "(CPU and objects are the pump process's; the C++ pump is its own process)"

# Socket->socket with each kind of peer, then file->socket (a zero-copy consumer).
# PEERS_ONLY (a comma-separated list of peer kinds, "file" for file->socket) runs a subset.
CASES = [*PEERS.keys.map { |peers| [:socket, peers] }, [:file, "zero-copy"]].select do |kind, peers|
  only = ENV["PEERS_ONLY"]&.split(",")
  only.nil? || only.include?(kind == :file ? "file" : peers)
end.freeze

# One small untimed round first: Ruby's lazy initialisation (first waits,
# method caches) is not the methods' cost.
CASES.product(METHODS.keys) do |(kind, peers), name|
  measure(kind, peers, METHODS[name].is_a?(Symbol) ? METHODS[name] : name, listener, WARM_UP_SIZE)
end

CASES.each do |kind, peers|
  samples = Hash.new { |h, k| h[k] = [] }
  RUNS.times do |round|
    METHODS.keys.rotate(round).each do |name|
      samples[name] << measure(kind, peers, METHODS[name].is_a?(Symbol) ? METHODS[name] : name, listener)
    end
  end
  rows = samples.transform_values { |runs| runs.transpose.map { |column| median(column) } }
  base = rows.fetch("copy_stream")
  puts
  puts "#{kind}->socket, #{peers} peers"
  printf("  %-16s %10s %15s %9s %9s %12s %10s\n", "method", "MB/s", "(min-max)", "CPU s", "objects",
         "x copy MB/s", "x copy CPU")
  rows.each do |name, (rate, cpu, objects)|
    rates = samples[name].map(&:first)
    printf("  %-16s %10.1f %15s %9.3f %9s %12.2f %10.2f\n", name, rate, format("(%.0f-%.0f)", *rates.minmax),
           cpu, objects || "-", rate / base[0], cpu / base[1])
  end
  splice = rows.fetch("splice_to")
  printf("  splice_to / C++ pump throughput: %.2f; / blocking C splice relay (the limit): %.2f; " \
         "CPU / copy_stream's: %.2f\n",
         splice[0] / rows.fetch("C++ pump")[0], splice[0] / rows.fetch("C splice relay")[0], splice[1] / base[1])
end
