# frozen_string_literal: true

# The README's Ruby examples in one file, type-checked by steep against sig/
# (bin/type-check). Not meant to be run: the specs do the running.
require "bytepump"
require "bytepump/cli"
require "socket"

socket = TCPSocket.new("127.0.0.1", 8080)

# Copying a file, and sending one into a socket with progress.
File.open("file1.txt") do |f1|
  File.open("file2.txt", "w") do |f2|
    bytes = f1.splice_to(f2)
    warn "copied #{bytes} bytes" if bytes.is_a?(Integer)
  end
end
sent = 0
File.open("file1.txt") { |f| f.spliceTo(socket, 60) { |bytes| sent += bytes } }

# Ruby 3.2+: without a timeout of its own, a call uses each IO's IO#timeout.
socket.timeout = 30
File.open("file1.txt") do |f|
  f.splice_to(socket)
rescue Bytepump::IOTimeout => e # an IO::TimeoutError
  warn "nothing moved #{e.side} for #{e.timeout} s, after #{e.bytes_written} bytes"
end
File.open("file1.txt") { |f| f.splice_to(socket, Float::INFINITY) }

# The full result.
result = Bytepump.pump(File.open("file1.txt"), socket, timeout: 5, length: 1 << 20)
warn "stranded #{result.stranded}" unless result.ok?
warn "took #{result.bytes_written} bytes by #{result.strategy}" if result.status == :done

# An edge include: an object from upstream into the client, read ahead.
begin
  written = socket.splice_from(url: "http://127.0.0.1:9000/object", timeout: 30, buffer: 8 << 20)
  warn "relayed #{written} bytes"
rescue Bytepump::HTTPError => e
  warn "upstream said #{e.status} (#{e.response.reason})"
rescue Bytepump::Timeout => e
  warn "#{e.message}: #{e.bytes_written} bytes went out"
end

# A fetch into a file, with its CRC.
File.open("object.bin", "wb") do |file|
  fetched = Bytepump.fetch("http://127.0.0.1:9000/object", into: file, crc32: true)
  warn "#{fetched.bytes_written} bytes, crc #{fetched.crc32}, status #{fetched.response.status}"
end

# A response head, exactly.
upstream = TCPSocket.new("127.0.0.1", 9000)
upstream.write("GET /object HTTP/1.1\r\nHost: origin\r\n\r\n")
response = upstream.skipHeaders
length = response.content_length
warn "#{response.status} #{response['content-type']} #{length.inspect}"

# One upstream into the client and a cache file at once.
File.open("cache.bin", "wb") do |cache|
  teed = Bytepump.tee(upstream, [socket, cache], timeout: 30)
  teed.failed.each { |d| warn "#{d.status}: #{d.error&.message}" }
  warn "wrote #{teed.bytes_written.sum} bytes in all"
end

# Channels over one socket.
log, out = IO.pipe
frames = Bytepump::Frames.new(socket, timeout: 10)
frames.write(1, "hello")
begin
  while (frame = frames.read(1 => log, 2 => out))
    channel, size = frame
    warn "channel #{channel}: #{size} bytes"
  end
rescue Bytepump::InvalidFrame => e
  warn "bad frame on channel #{e.channel}"
end

# The command line, from Ruby.
status = Bytepump::CLI.new(stdout: $stdout, stderr: $stderr).run(["copy", "file1.txt", "file2.txt"])
warn "exit #{status}"
