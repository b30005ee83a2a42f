# frozen_string_literal: true

# A Rack app that fully hijacks the client socket and streams a zip of
# "remote" objects into it: each entry's header comes from the zip library,
# its body is spliced from the upstream URL (add_stored_entry -> splice_from
# -> simulate_write). BYTEPUMP_ZIP_MANIFEST names a JSON file listing
# {"name", "url", "size", "crc32"} objects.
#
#   GET /zip_kit            sizes and CRCs known up front
#   GET /zip_kit?descriptor CRCs computed while splicing (crc32: true) and
#                           written in data descriptors
#   GET /zip_tricks[...]    the same with zip_tricks, the seed README's library
require "json"
require "bytepump"
require "zip_kit"
require "zip_tricks"

manifest = JSON.parse(File.read(ENV.fetch("BYTEPUMP_ZIP_MANIFEST")))

stream_zip = lambda do |socket, streamer, descriptor|
  streamer.open(socket) do |zip|
    manifest.each do |obj|
      if descriptor
        zip.add_stored_entry(filename: obj["name"], use_data_descriptor: true)
        result = Bytepump.fetch(obj["url"], into: socket, timeout: 60, crc32: true)
        zip.simulate_write(result.bytes_written)
        zip.update_last_entry_and_write_data_descriptor(crc32: result.crc32, compressed_size: result.bytes_written,
                                                        uncompressed_size: result.bytes_written)
      else
        zip.add_stored_entry(filename: obj["name"], size: obj["size"], crc32: obj["crc32"])
        zip.simulate_write(socket.splice_from(url: obj["url"], timeout: 60))
      end
    end
  end
end

run(lambda do |env|
  streamer = env["PATH_INFO"] == "/zip_tricks" ? ZipTricks::Streamer : ZipKit::Streamer
  socket = env["rack.hijack"].call
  begin
    socket.write("HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n")
    stream_zip.call(socket, streamer, env["QUERY_STRING"].include?("descriptor"))
  rescue StandardError => e
    warn "zip_app: #{e.class}: #{e.message}"
  ensure
    socket.close
  end
  [200, {}, []]
end)
