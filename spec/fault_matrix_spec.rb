# frozen_string_literal: true

# Every phase of a transfer crossed with every fault (spec/support/
# fault_matrix.rb). For each cell: the documented exception or result, the
# byte count (from the exception, the result, or for interrupts the progress
# block) exactly what the destination received, no fd left open, and no
# pooled pipe holding bytes. BYTEPUMP_PRINT_MATRIX=1 prints the outcomes.
RSpec.describe "fault matrix", :integration do
  cells = {}

  after(:context) { puts "\n#{FaultMatrix.table(cells)}" if ENV["BYTEPUMP_PRINT_MATRIX"] }

  # A destination socket whose peer is drained by a thread: the lambda gives
  # what arrived, once our end is closed.
  def drained_destination
    dst, peer = track(*UNIXSocket.pair)
    buffer = +"".b
    reader = helper_thread do
      loop { buffer << peer.readpartial(1 << 16) }
    rescue IOError # EOFError included
      nil
    end
    [dst, lambda {
      dst.close
      reader.join(10)
      buffer
    }]
  end

  # Runs the block (given the progress counter) under +fault+. Returns
  # [its value or exception, bytes reported to the progress block].
  def under_fault(fault, dst)
    progress = 0
    count = ->(n) { progress += n }
    outcome = case fault
              when :thread_raise, :thread_kill then in_struck_thread(fault) { yield count }
              when :timeout then capture { Timeout.timeout(FaultMatrix::FAULT_AT) { yield count } }
              when :io_close
                helper_thread do
                  sleep FaultMatrix::FAULT_AT
                  dst.close
                end
                capture { yield count }
              else capture { yield count }
              end
    [outcome, progress]
  end

  def in_struck_thread(fault, &)
    worker = helper_thread(&)
    sleep FaultMatrix::FAULT_AT
    fault == :thread_raise ? worker.raise(Interrupt, "fault") : worker.kill
    capture { worker.join(10) ? worker.value : :still_running }
  end

  def capture
    yield
  rescue Exception => e # rubocop:disable Lint/RescueException
    e
  end

  def expect_outcome(expected, outcome, received)
    kind, message = expected
    case kind
    when :killed then expect(outcome).to be_nil # a killed thread has no value
    when Symbol then expect(outcome).to eq(kind)
    when Integer.singleton_class then expect(outcome).to eq(received.bytesize)
    else
      expect(outcome).to be_a(kind)
      expect(outcome.message).to match(message) if message
      expect(outcome.bytes_written).to eq(received.bytesize) if outcome.respond_to?(:bytes_written)
    end
  end

  # Runs one cell: +transfer+ gets the destination and the progress counter.
  def cell(phase, fault, cells, &transfer)
    dst, received = drained_destination
    before = open_fds
    outcome, progress = under_fault(fault, dst) { |count| transfer.call(dst, count) }
    yield_cleanup
    bytes = received.call
    expect_outcome(FaultMatrix::OUTCOMES.fetch(phase).fetch(fault), outcome, bytes)
    expect(progress).to eq(bytes.bytesize)
    expect(settled_fds(before)).to be <= before
    expect(Bytepump::Native.pool_stats[1]).to eq(0) # bytes held by pooled pipes
    cells[[phase, fault]] = "#{FaultMatrix.label(outcome)} (#{bytes.bytesize} B)"
  end

  def yield_cleanup
    @cleanup&.call
  end

  FaultMatrix::FAULTS.each do |fault|
    FaultMatrix::PHASES.each do |phase, (prefix, rest)|
      it "#{phase} × #{fault}" do
        server = Servers::Scripted.new { |_, conn, _| FaultMatrix.serve(conn, prefix, rest, fault) }
        @cleanup = -> { server.stop }
        timeout = fault == :stall ? FaultMatrix::STALL : 5
        cell(phase, fault, cells) do |dst, count|
          Bytepump.fetch(server.url("/#{phase}"), into: dst, timeout: timeout) { |n| count.call(n) }
        end
      ensure
        server&.stop
      end
    end

    it "connect × #{fault}" do
      ios = []
      case fault
      when :reset then url = "http://127.0.0.1:#{Servers.free_port}/" # nothing listens: SYN gets a reset
      when :close
        server = Servers::Scripted.new { nil } # reads the request, then closes
        url = server.url("/")
      else url, ios = Servers.black_hole
      end
      @cleanup = -> { server&.stop }
      connect_timeout = { stall: FaultMatrix::STALL, io_close: 0.6 }.fetch(fault, 5)
      cell(:connect, fault, cells) do |dst, count|
        Bytepump.fetch(url, into: dst, timeout: 5, connect_timeout: connect_timeout) { |n| count.call(n) }
      end
    ensure
      server&.stop
      ios.each(&:close)
    end

    it "splice_to × #{fault}" do
      src, peer = track(*tcp_pair)
      data = FaultMatrix::DATA
      feeder = helper_thread do
        FaultMatrix.serve(peer, data[0, 300_000], data[300_000..], fault)
      ensure
        peer.close
      end
      @cleanup = -> { feeder.kill.join }
      cell(:splice_to, fault, cells) do |dst, count|
        src.splice_to(dst, fault == :stall ? FaultMatrix::STALL : 5) { |n| count.call(n) }
      end
    end
  end
end
