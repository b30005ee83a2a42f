# frozen_string_literal: true

# buffer: — read-ahead into kernel pipes for a slow client. The upstream is
# a real TCP server in a thread; the client a UNIX socket nobody reads yet.
RSpec.describe "read-ahead for slow clients (buffer:)", deadline: 120 do
  # More than every kernel buffer on the way can hold without read-ahead:
  # the upstream's send buffer (tcp_wmem max 4 MiB), our receive buffer
  # (tcp_rmem max 32 MiB), a 1 MiB pipe and the client socket's buffer.
  let(:body_size) { 48 << 20 }

  def start_upstream(body)
    server = track(TCPServer.new("127.0.0.1", 0))
    thread = helper_thread do
      peer = server.accept
      peer.readline("\r\n\r\n")
      peer.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n", body)
      peer.close
      :finished
    end
    ["http://127.0.0.1:#{server.addr[1]}/object", thread]
  end

  let(:body) { pattern(body_size, 9) }

  it "lets the upstream finish while the client has read nothing, then delivers every byte" do
    url, upstream = start_upstream(body)
    client, far_end = track(*UNIXSocket.pair)
    relay = helper_thread { client.splice_from(url: url, buffer: 64 << 20, timeout: 60) }
    expect(upstream.join(30)&.value).to eq(:finished) # while far_end has read nothing
    far_end.binmode
    got = far_end.read(body_size)
    expect(relay.value).to eq(body_size)
    expect(got == body).to be(true)
    expect(Bytepump::Native.pool_stats[1]).to eq(0) # no pipe went back to the pool with bytes in it
  end

  it "without it, the upstream cannot finish before the client reads" do
    url, upstream = start_upstream(body)
    client, far_end = track(*UNIXSocket.pair)
    relay = helper_thread { client.splice_from(url: url, timeout: 60) }
    expect(upstream.join(1)).to be_nil
    far_end.binmode
    got = far_end.read(body_size)
    expect(relay.value).to eq(body_size)
    expect(upstream.join(10)&.value).to eq(:finished)
    expect(got == body).to be(true)
  end

  it "raises Errno::EMFILE when no pipe can be had, as without buffer:, instead of spinning to a timeout" do
    src, feeder = track(*UNIXSocket.pair)
    dst, = track(*UNIXSocket.pair)
    feeder.write("waiting")
    report_r, report_w = track(*IO.pipe)
    # Out of fds in a child, so nothing else in this process runs short
    # (and a forked child starts with no pooled pipe).
    pid = fork do
      report_r.close
      Process.setrlimit(:NOFILE, Dir.children("/proc/self/fd").size + 16)
      fillers = []
      fillers << File.open(File::NULL) while true # rubocop:disable Style/InfiniteLoop
    rescue Errno::EMFILE
      fillers.pop(2).each(&:close) # room for the call's two duplicates, not for a pipe
      outcomes = [{ buffer: 1 << 20 }, {}].map do |options|
        src.splice_to(dst, 3, **options).inspect
      rescue SystemCallError => e
        e.class.name
      end
      report_w.write(outcomes.join(","))
      exit!(0)
    end
    report_w.close
    expect(report_r.read).to eq("Errno::EMFILE,Errno::EMFILE")
    Process.wait(pid)
  ensure
    stop_child(pid) if pid
  end

  it "works for splice_to between two sockets, counting exactly, and refuses it with several destinations" do
    src, feeder = track(*UNIXSocket.pair)
    data = pattern(6 << 20, 4)
    fed = helper_thread do
      feeder.write(data)
      feeder.close
      :fed
    end
    dst, far_end = track(*UNIXSocket.pair)
    relay = helper_thread { src.splice_to(dst, 30, buffer: 16 << 20) }
    expect(fed.join(30)&.value).to eq(:fed) # the source was drained while nobody read dst
    far_end.binmode
    expect(far_end.read(data.bytesize) == data).to be(true)
    expect(relay.value).to eq(data.bytesize)
    expect do
      src.splice_to([dst], buffer: 1)
    end.to raise_error(ArgumentError, /offset: and buffer: work with one destination only/)
  end
end
