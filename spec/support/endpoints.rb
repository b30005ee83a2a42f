# frozen_string_literal: true

# Real fds of every kind for specs: each source is fed (and then closed) by a
# peer thread, each stream destination drained by one.
module Endpoints
  SOURCE_KINDS = %i[file pipe unix tcp].freeze
  DEST_KINDS = %i[file pipe unix tcp tempfile stringio].freeze

  def pattern(size, seed = 1)
    Random.new(seed).bytes(size)
  end

  def tcp_pair
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    accepted = server.accept
    server.close
    [accepted, client]
  end

  # [ours, peer]: ours is the end a pump reads (reading: true) or writes.
  def stream_pair(kind, reading:)
    case kind
    when :pipe
      r, w = IO.pipe
      reading ? [r, w] : [w, r]
    when :unix then UNIXSocket.pair
    when :tcp then tcp_pair
    else raise ArgumentError, kind.to_s
    end
  end

  def track(*ios)
    (@tracked ||= []).concat(ios)
    ios.size == 1 ? ios.first : ios
  end

  def close_tracked
    (@tracked || []).each { |io| io.close unless io.closed? }
  end

  # Returns an IO whose remaining content is +data+.
  def source(kind, data)
    if kind == :file
      file = track(Tempfile.new("bytepump-src"))
      file.binmode
      file.write(data)
      file.flush
      return track(File.open(file.path, "rb"))
    end
    ours, peer = track(*stream_pair(kind, reading: true))
    helper_thread do
      peer.write(data)
    ensure
      peer.close
    end
    ours
  end

  # Returns [dst, reader] where reader.call gives what arrived once the
  # pump is done (it closes our write end first).
  def destination(kind)
    case kind
    when :file
      path = track(Tempfile.new("bytepump-dst")).path
      dst = track(File.open(path, "wb"))
      [dst, lambda {
        dst.close
        File.binread(path)
      }]
    when :tempfile
      dst = Tempfile.new("bytepump-tmp")
      dst.binmode
      (@tempfiles ||= []) << dst
      [dst, lambda {
        dst.flush
        dst.rewind
        dst.read
      }]
    when :stringio
      dst = StringIO.new(+"".b)
      [dst, -> { dst.string }]
    else
      ours, peer = track(*stream_pair(kind, reading: false))
      reader = helper_thread { peer.binmode.read }
      [ours, lambda {
        kind == :pipe ? ours.close : ours.close_write
        reader.value.b
      }]
    end
  end

  # Peers left blocked by a failed example end when our side closes.
  # A thread that writes into +io+ until it fails (the other side closed).
  def endless_feeder(io)
    helper_thread do
      chunk = "f" * 65_536
      loop { io.write(chunk) }
    rescue IOError, SystemCallError
      nil
    end
  end

  def open_fds
    Dir.children("/proc/self/fd").size
  end

  # Waits (up to 5 s) for in-process peers to close their ends, then returns
  # the fd count: at most +expected+ when nothing leaked.
  def settled_fds(expected)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    sleep 0.01 while open_fds > expected && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    open_fds
  end
end

RSpec.configure do |config|
  config.after do
    close_tracked
    join_peers
    (@tempfiles || []).each(&:close!)
  end
end
