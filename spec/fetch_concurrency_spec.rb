# frozen_string_literal: true

require "async"
require "zlib"

RSpec.describe "fetches in parallel threads and fibers", :integration do
  before(:all) do
    @nginx = Servers::Nginx.new.start
    @bodies = Array.new(6) { |i| pattern((1 << 20) + i, 30 + i) }
    @urls = @bodies.each_with_index.map { |b, i| @nginx.add("o#{i}.bin", b) }
    # A slow upstream: its body trickles, so overlapping fetches must overlap.
    @load = load = { active: 0, most: 0 }
    lock = Mutex.new
    @slow = Servers::Scripted.new do |_, c, _|
      lock.synchronize { load[:most] = [load[:most], load[:active] += 1].max }
      c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
      5.times do
        c.write("4\r\nslow\r\n")
        sleep 0.1
      end
      c.write("0\r\n\r\n")
    ensure
      lock.synchronize { load[:active] -= 1 }
    end
  end

  after(:all) do
    @nginx.stop
    @slow.stop
  end

  it "runs several fetches in threads, each exact" do
    results = @urls.each_with_index.map do |url, i|
      helper_thread do
        r, w = IO.pipe
        reader = helper_thread { r.binmode.read }
        result = Bytepump.fetch(url, into: w, crc32: true)
        w.close
        [result, reader.value, i]
      ensure
        w&.close
        r&.close
      end
    end.map(&:value)
    results.each do |result, got, i|
      expect(got).to eq(@bodies[i])
      expect(result.crc32).to eq(Zlib.crc32(@bodies[i]))
    end
  end

  it "overlaps slow fetches under the async fiber scheduler" do
    outputs = Async do |task|
      Array.new(4) do
        task.async do
          out = StringIO.new
          Bytepump.fetch(@slow.url("/slow"), into: out)
          out.string
        end
      end.map(&:wait)
    end.wait
    expect(outputs).to all(eq("slow" * 5))
    # The server saw the four requests in flight together: no fiber blocked
    # the others while waiting on its slow body.
    expect(@load[:most]).to eq(4)
  end

  it "splices nginx bodies into client sockets from fibers while another fiber keeps running" do
    ticks = 0
    received = Async do |task|
      ticker = task.async do
        loop do
          ticks += 1
          task.sleep(0.005)
        end
      end
      begin
        @urls.first(3).map do |url|
          task.async do
            client, peer = UNIXSocket.pair
            # A thread drains the client's end (as a browser would), so the
            # fibers only do what a server does.
            reader = helper_thread { peer.read }
            begin
              written = client.splice_from(url: url)
              client.close
              [written, reader.value]
            ensure
              client.close
              peer.close
            end
          end
        end.map(&:wait)
      ensure
        ticker.stop
      end
    end.wait
    # Checked here, outside the fibers: a failed expectation inside one
    # would only end that fiber.
    expect(received.map(&:first)).to eq(@bodies.first(3).map(&:bytesize))
    expect(received.map(&:last)).to eq(@bodies.first(3))
    expect(ticks).to be_positive
  end
end
