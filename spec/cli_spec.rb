# frozen_string_literal: true

require "open3"
require "shellwords"

# exe/bytepump, run as a user would, in a child process.
RSpec.describe "the bytepump command", :integration do
  root = File.expand_path("..", __dir__)
  let(:exe) do
    [Gem.ruby, "-I", File.join(root, "lib"), "-I", File.join(root, "tmp/x86_64-linux-gnu/stage/lib"),
     File.join(root, "exe/bytepump")]
  end

  def bytepump(*args, stdin_data: "")
    Open3.capture3(*exe, *args.map(&:to_s), stdin_data: stdin_data, binmode: true)
  end

  let(:dir) { Dir.mktmpdir("bytepump-cli").tap { |d| (@dirs ||= []) << d } }
  after { (@dirs || []).each { |d| FileUtils.rm_rf(d) } }

  def file(name, data)
    File.join(dir, name).tap { |path| File.binwrite(path, data) }
  end

  it "copies a file, quietly off a terminal, and stops at --length" do
    data = pattern(3 << 20)
    src = file("src.bin", data)
    out, err, status = bytepump("copy", src, File.join(dir, "whole.bin"))
    expect([out, err, status.exitstatus]).to eq(["", "", 0])
    expect(File.binread(File.join(dir, "whole.bin")) == data).to be(true)
    _, _, status = bytepump("copy", src, File.join(dir, "part.bin"), "--length", 1000)
    expect(status.exitstatus).to eq(0)
    expect(File.binread(File.join(dir, "part.bin")) == data[0, 1000]).to be(true)
    expect(Dir.children(dir).sort).to eq(%w[part.bin src.bin whole.bin]) # no temporary left
  end

  it "copies stdin to stdout with -" do
    out, err, status = bytepump("copy", "-", "-", stdin_data: "through the pipes")
    expect([out, err, status.exitstatus]).to eq(["through the pipes", "", 0])
  end

  it "prints one line and exits 1 for bad input, naming what was wrong" do
    [
      [%w[copy /no/such/file x], "bytepump: /no/such/file: No such file or directory\n"],
      [%w[launch], "bytepump: unknown command \"launch\" (bytepump --help shows the usage)\n"],
      [%w[copy only-one], "bytepump: copy needs SRC and DST (bytepump --help shows the usage)\n"],
      [%w[copy a b --length -3], "bytepump: --length must be >= 0\n"],
      [%w[relay --listen nowhere --to 127.0.0.1:1], "bytepump: --listen: \"nowhere\" is not HOST:PORT\n"]
    ].each do |args, message|
      _, err, status = bytepump(*args)
      expect(status.exitstatus).to eq(1), args.inspect
      expect(err).to match(message)
    end
  end

  it "leaves no file that looks complete when a copy times out" do
    reader, writer = IO.pipe # a source that sends 5 bytes, then nothing
    writer.write("early")
    dst = File.join(dir, "never.bin")
    pid = spawn(*exe, "copy", "-", dst, "--timeout", "0.3", in: reader, err: File.join(dir, "err.txt"))
    reader.close
    _, status = Process.wait2(pid)
    writer.close
    expect(status.exitstatus).to eq(1)
    expect(File.read(File.join(dir, "err.txt")))
      .to eq("bytepump: timed out: the source sent nothing for the stall timeout (5 bytes written)\n")
    expect(Dir.children(dir)).to eq(["err.txt"])
  end

  describe "fetch", :integration do
    before(:all) do
      @nginx = Servers::Nginx.new.start
      @body = Random.new(5).bytes((2 << 20) + 17)
      @url = @nginx.add("object.bin", @body)
    end

    after(:all) { @nginx&.stop }

    it "writes the body to -o FILE, or to stdout" do
      path = File.join(dir, "object.bin")
      _, err, status = bytepump("fetch", @url, "-o", path, "--timeout", 10)
      expect([err, status.exitstatus]).to eq(["", 0])
      expect(File.binread(path) == @body).to be(true)
      out, _, status = bytepump("fetch", @url)
      expect(status.exitstatus).to eq(0)
      expect(out == @body).to be(true)
    end

    it "sizes the bar from Content-Length on a terminal, so it shows the total and an ETA" do
      command = [*exe, "fetch", @url, "-o", File.join(dir, "object.bin")].shelljoin
      screen, status = Open3.capture2("script", "-qec", command, File::NULL, binmode: true)
      expect(status.exitstatus).to eq(0)
      lines = screen.split(/[\r\n]+/).reject(&:empty?)
      expect(lines.last).to match(%r{\Afetch #{@body.bytesize}/#{@body.bytesize} bytes \|=+\| 100% [\d.]+ MB/s Time: })
      expect(File.binread(File.join(dir, "object.bin")) == @body).to be(true)
    end

    it "fails with one line and no output file for a 404" do
      path = File.join(dir, "missing.bin")
      _, err, status = bytepump("fetch", @url.sub("object.bin", "missing.bin"), "-o", path)
      expect(status.exitstatus).to eq(1)
      expect(err).to match(%r{\Abytepump: GET http://127\.0\.0\.1:\d+/missing\.bin returned 404 Not Found\n\z})
      expect(Dir.children(dir)).to be_empty
    end
  end

  it "relays TCP connections both ways" do
    echo = track(TCPServer.new("127.0.0.1", 0))
    helper_thread do # every connection, the readiness probe's too
      loop do
        conn = echo.accept
        conn.write(conn.read.upcase)
        conn.close
      end
    end
    port = Servers.free_port
    pid = spawn(*exe, "relay", "--listen", "127.0.0.1:#{port}", "--to", "127.0.0.1:#{echo.addr[1]}",
                err: File.join(dir, "relay.txt"))
    begin
      Servers.wait_for_port(port, pid: pid, log: File.join(dir, "relay.txt"))
      client = track(TCPSocket.new("127.0.0.1", port))
      client.write("shout this")
      client.close_write
      expect(client.read).to eq("SHOUT THIS")
    ensure
      Servers.stop_process(pid)
    end
  end

  it "draws a progress bar on a terminal (a real pseudo-terminal from script(1))" do
    src = file("src.bin", pattern(20 << 20))
    dst = File.join(dir, "dst.bin")
    command = [*exe, "copy", src, dst].shelljoin
    screen, status = Open3.capture2("script", "-qec", command, File::NULL, binmode: true)
    expect(status.exitstatus).to eq(0)
    final = screen.split(/[\r\n]+/).reject(&:empty?).last
    expect(final).to match(%r{\Acopy 20971520/20971520 bytes \|=+\| 100% [\d.]+ MB/s Time: \d\d:\d\d:\d\d\s*\z})
    expect(File.size(dst)).to eq(20 << 20)
  end
end
