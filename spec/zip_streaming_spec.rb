# frozen_string_literal: true

require "json"
require "zlib"
require "zip"
require "English"

# Puma runs bench/zip_app.ru, which hijacks the client socket and streams a
# zip whose entry bodies are spliced from a real nginx.
RSpec.describe "a zip of remote objects streamed by Puma with splice_from", :integration do
  before(:all) do
    @nginx = Servers::Nginx.new.start
    @objects = { "a.bin" => pattern(3 << 20, 21), "empty.txt" => "", "b/c.txt" => "hello zip\n" * 1000,
                 "d.bin" => pattern(777_777, 22) }
    @dir = Dir.mktmpdir("bytepump-zip")
    manifest = @objects.map do |name, bytes|
      { name: name, url: @nginx.add(name.tr("/", "_"), bytes), size: bytes.bytesize, crc32: Zlib.crc32(bytes) }
    end
    File.write(File.join(@dir, "manifest.json"), JSON.dump(manifest))
    manifest_env = { "BYTEPUMP_ZIP_MANIFEST" => File.join(@dir, "manifest.json") }
    @puma, @port = Servers.rack(:puma, File.expand_path("../bench/zip_app.ru", __dir__),
                                threads: 4, env: manifest_env, log: File.join(@dir, "puma.log"))
  end

  after(:all) do
    Servers.stop_process(@puma) if @puma
    @nginx.stop
    puts File.read(File.join(@dir, "puma.log")) if ENV["BYTEPUMP_DEBUG"]
    FileUtils.rm_rf(@dir)
  end

  def download(path)
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("GET #{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    head, body = socket.read.split("\r\n\r\n", 2)
    expect(head).to start_with("HTTP/1.1 200 OK")
    file = File.join(@dir, "#{path.gsub(/\W/, '_')}.zip")
    File.binwrite(file, body)
    file
  ensure
    socket&.close
  end

  def expect_valid_zip(file)
    output = IO.popen(["unzip", "-t", file], err: %i[child out], &:read)
    expect($CHILD_STATUS).to be_success, output
    expect(output).to include("No errors detected")
    read_back = {}
    Zip::File.open(file) { |zip| zip.each { |entry| read_back[entry.name] = entry.get_input_stream.read.b } }
    expect(read_back.keys).to eq(@objects.keys)
    @objects.each { |name, bytes| expect(read_back[name]).to eq(bytes.b), name }
  end

  %w[/zip_kit /zip_tricks /zip_kit?descriptor /zip_tricks?descriptor].each do |path|
    it "serves a valid archive from GET #{path} (unzip -t, rubyzip byte for byte)" do
      expect_valid_zip(download(path))
    end
  end

  it "serves several archives at once" do
    files = Array.new(3) { |i| Thread.new { download("/zip_kit?n=#{i}") } }.map(&:value)
    files.each { |f| expect_valid_zip(f) }
  end
end
