# frozen_string_literal: true

# A Rack app that fully hijacks the client socket and streams the file named
# by BYTEPUMP_DEMO_FILE into it: GET /splice uses IO#splice_to, GET /copy_stream
# uses IO.copy_stream, for comparison. Used by bin/demo and bench/.
require "bytepump"

FILE = ENV.fetch("BYTEPUMP_DEMO_FILE")

run lambda { |env|
  method = env["PATH_INFO"].delete_prefix("/")
  unless %w[splice copy_stream].include?(method) && env["rack.hijack?"]
    next [404, { "content-type" => "text/plain" }, ["try /splice or /copy_stream\n"]]
  end

  socket = env["rack.hijack"].call
  begin
    File.open(FILE, "rb") do |file|
      socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n" \
                   "content-length: #{file.size}\r\nconnection: close\r\n\r\n")
      sent = method == "splice" ? file.splice_to(socket, 60) : IO.copy_stream(file, socket)
      warn "hijack_app: #{method} sent #{sent} of #{file.size} bytes" unless sent == file.size
    end
  ensure
    socket.close
  end
  [200, {}, []]
}
