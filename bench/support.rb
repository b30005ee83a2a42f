# frozen_string_literal: true

require "socket"

# Helpers the demos and benchmarks share: HTTP/1.1 GETs against a local
# server, a process's CPU time from /proc, and medians.
module BenchSupport
  TICK = Float(`getconf CLK_TCK`)

  module_function

  # User + system CPU seconds of the processes +pids+, from /proc/PID/stat.
  def cpu_seconds(*pids)
    pids.flatten.sum do |pid|
      fields = File.read("/proc/#{pid}/stat").split(") ").last.split
      (fields[11].to_i + fields[12].to_i) / TICK
    end
  end

  def median(values) = values.sort[values.size / 2]

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Sends GET +path+ to 127.0.0.1:+port+ and reads the response head, no
  # further. Returns [socket, Content-Length or nil]; raises unless 200.
  def get(port, path)
    socket = TCPSocket.new("127.0.0.1", port)
    socket.write("GET #{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    head = socket.readline("\r\n\r\n")
    raise "GET #{path}: #{head.lines.first.strip}" unless head.start_with?("HTTP/1.1 200")

    [socket, head[/^content-length: *(\d+)/i, 1]&.to_i]
  rescue StandardError
    socket&.close
    raise
  end

  # GET +path+ and discard the body with splice_to into /dev/null (the client
  # costs next to nothing). Returns the body's byte count.
  def discard(port, path)
    socket, = get(port, path)
    File.open(File::NULL, "wb") { |null| socket.splice_to(null, 60) }
  ensure
    socket&.close
  end
end
