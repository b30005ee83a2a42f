# frozen_string_literal: true

# A Rack app that fully hijacks the client socket and streams into it. Used by
# bin/demo (bench/demo.rb) and spec/puma_hijack_spec.rb.
#
#   GET /splice_from   the edge include: relays the object at BYTEPUMP_DEMO_URL
#                      with IO#splice_from (the bytes never enter Ruby)
#   GET /net_http      the same relay with Net::HTTP#read_body writing each
#                      chunk to the socket, for comparison
#   GET /splice        the file BYTEPUMP_DEMO_FILE with IO#splice_to
#   GET /copy_stream   the same file with IO.copy_stream, for comparison
#
# The relays answer without a Content-Length and close the connection at the
# end; the file routes announce the file's size.
#
# Under Falcon (async-http) every request runs in a fiber and the hijacking
# routes above wait through the Fiber scheduler; two more routes show how a
# Falcon app streams without bytepump, for comparison (not hijacked):
#
#   GET /falcon_file   the file as a Rack body with #to_path (Falcon reads and
#                      writes it in chunks)
#   GET /async_http    the object fetched with Async::HTTP::Internet, its body
#                      handed to Falcon as the response body
require "bytepump"
require "net/http"

FILE = ENV.fetch("BYTEPUMP_DEMO_FILE", nil)
URL = ENV.fetch("BYTEPUMP_DEMO_URL", nil)
ROUTES = { "/splice" => FILE, "/copy_stream" => FILE, "/splice_from" => URL, "/net_http" => URL }.freeze
FALCON_ROUTES = { "/falcon_file" => FILE, "/async_http" => URL }.freeze

def relay(socket, via)
  socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n")
  return socket.splice_from(url: URL, timeout: 60) if via == "/splice_from"

  uri = URI(URL)
  Net::HTTP.start(uri.host, uri.port, read_timeout: 60, write_timeout: 60) do |http|
    http.request_get(uri.request_uri) do |response|
      raise "upstream answered #{response.code}" unless response.is_a?(Net::HTTPOK)

      sent = 0
      response.read_body { |chunk| sent += socket.write(chunk) }
      sent
    end
  end
end

def send_file(socket, via)
  File.open(FILE, "rb") do |file|
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n" \
                 "content-length: #{file.size}\r\nconnection: close\r\n\r\n")
    sent = via == "/splice" ? file.splice_to(socket, 60) : IO.copy_stream(file, socket)
    warn "hijack_app: #{via} sent #{sent} of #{file.size} bytes" unless sent == file.size
  end
end

# A file body Falcon recognises by #to_path and streams itself.
FileBody = Struct.new(:to_path) do
  def each = File.open(to_path, "rb") { |f| yield f.read(1 << 16) until f.eof? }
end

def falcon(path)
  if path == "/falcon_file"
    return [200, { "content-type" => "application/octet-stream", "content-length" => File.size(FILE).to_s },
            FileBody.new(FILE)]
  end

  require "async/http/internet"
  response = Async::HTTP::Internet.new.get(URL)
  [response.status, { "content-type" => "application/octet-stream" }, response.body]
end

run lambda { |env|
  path = env["PATH_INFO"]
  next falcon(path) if FALCON_ROUTES[path] && defined?(Falcon)

  unless ROUTES[path] && env["rack.hijack?"]
    routes = ROUTES.merge(defined?(Falcon) ? FALCON_ROUTES : {}).select { |_, source| source }.keys.join(" or ")
    next [404, { "content-type" => "text/plain" }, ["try #{routes}\n"]]
  end

  socket = env["rack.hijack"].call
  begin
    %w[/splice /copy_stream].include?(path) ? send_file(socket, path) : relay(socket, path)
  rescue StandardError => e
    warn "hijack_app: #{path}: #{e.class}: #{e.message}"
  ensure
    # Under Falcon the hijacked socket is a duplicate and the server's own fd
    # stays open until it is collected: shut down writing, so the client sees
    # the end now. And give the event loop one turn before closing after
    # Ruby's own waits (copy_stream, Net::HTTP's writes): io-event drops an
    # epoll registration only then, and one left on a closed duplicate spins
    # the loop. bytepump's calls give that turn themselves.
    sleep(0) if Fiber.scheduler && %w[/copy_stream /net_http].include?(path)
    begin
      socket.close_write
    rescue IOError, SystemCallError
      nil # the client is gone already
    end
    socket.close
  end
  [200, {}, []]
}
