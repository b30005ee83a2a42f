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
require "bytepump"
require "net/http"

FILE = ENV.fetch("BYTEPUMP_DEMO_FILE", nil)
URL = ENV.fetch("BYTEPUMP_DEMO_URL", nil)
ROUTES = { "/splice" => FILE, "/copy_stream" => FILE, "/splice_from" => URL, "/net_http" => URL }.freeze

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

run lambda { |env|
  path = env["PATH_INFO"]
  unless ROUTES[path] && env["rack.hijack?"]
    routes = ROUTES.select { |_, source| source }.keys.join(" or ")
    next [404, { "content-type" => "text/plain" }, ["try #{routes}\n"]]
  end

  socket = env["rack.hijack"].call
  begin
    %w[/splice /copy_stream].include?(path) ? send_file(socket, path) : relay(socket, path)
  rescue StandardError => e
    warn "hijack_app: #{path}: #{e.class}: #{e.message}"
  ensure
    socket.close
  end
  [200, {}, []]
}
