# frozen_string_literal: true

# The edge-include job end to end: a local nginx plays the object store, a
# real Puma runs bench/zip_app.ru, which hijacks the client socket and streams
# a zip of those "remote" objects (entry headers by zip_kit, bodies by
# splice_from). The archive is checked with `unzip -t`.
require "json"
require "zlib"
require "English"
require_relative "support"
require_relative "../spec/support/servers"

SIZES = { "videos/intro.bin" => 48 << 20, "photos/matz.jpg" => 3 << 20, "docs/readme.txt" => 70_000,
          "empty.txt" => 0, "data/big.bin" => 96 << 20 }.freeze

def download(port, path, into)
  socket, = BenchSupport.get(port, path)
  File.open(into, "wb") { |f| IO.copy_stream(socket, f) }
ensure
  socket&.close
end

nginx = Servers::Nginx.new.start
dir = Dir.mktmpdir("bytepump-zip-demo")
begin
  manifest = SIZES.map do |name, size|
    bytes = Random.new(size).bytes(size)
    { name: name, url: nginx.add(name.tr("/", "_"), bytes), size: size, crc32: Zlib.crc32(bytes) }
  end
  File.write(File.join(dir, "manifest.json"), JSON.dump(manifest))
  log = File.join(dir, "puma.log")
  puma, port = Servers.rack(:puma, File.expand_path("zip_app.ru", __dir__),
                            env: { "BYTEPUMP_ZIP_MANIFEST" => File.join(dir, "manifest.json") }, log: log)
  total = SIZES.values.sum
  puts "\nzip of #{SIZES.size} remote objects (#{total >> 20} MiB) from nginx on 127.0.0.1:#{nginx.port}, " \
       "streamed by Puma on 127.0.0.1:#{port}"
  ok = ["/zip_kit", "/zip_kit?descriptor", "/zip_tricks"].all? do |path|
    file = File.join(dir, "archive.zip")
    started = BenchSupport.now
    download(port, path, file)
    seconds = BenchSupport.now - started
    output = IO.popen(["unzip", "-t", file], err: %i[child out], &:read)
    passed = $CHILD_STATUS.success? && output.include?("No errors detected")
    printf("  GET %-20s %9d bytes  %7.1f MB/s  unzip -t: %s\n", path, File.size(file), File.size(file) / seconds / 1e6,
           passed ? "No errors detected" : "FAILED")
    puts output unless passed
    passed
  end
  abort "zip demo: an archive failed unzip -t (#{log})" unless ok
ensure
  Servers.stop_process(puma) if puma
  nginx.stop
  FileUtils.rm_rf(dir)
end
