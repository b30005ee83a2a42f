# frozen_string_literal: true

# The phases, faults and documented outcomes of spec/fault_matrix_spec.rb.
module FaultMatrix
  CHUNKED_HEAD = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
  DATA = Random.new(77).bytes(1 << 20).freeze

  # What the server sends to get the client into each HTTP phase, and what
  # completes a valid response from there.
  PHASES = {
    head: ["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 5\r\n\r\nhello"],
    body: ["HTTP/1.1 200 OK\r\nContent-Length: #{1 << 20}\r\n\r\n#{DATA[0, 100_000]}", DATA[100_000..]],
    chunk_size: ["#{CHUNKED_HEAD}4000\r\n#{DATA[0, 0x4000]}\r\n40", "00\r\n#{DATA[0, 0x4000]}\r\n0\r\n\r\n"],
    chunk_data: ["#{CHUNKED_HEAD}10000\r\n#{DATA[0, 30_000]}", "#{DATA[30_000, 0x10000 - 30_000]}\r\n0\r\n\r\n"],
    trailer: ["#{CHUNKED_HEAD}5\r\nhello\r\n0\r\nX-Trailer: 1\r\n", "\r\n"]
  }.freeze
  ALL_PHASES = [:connect, *PHASES.keys, :splice_to].freeze

  FAULTS = %i[reset close stall thread_raise thread_kill timeout io_close].freeze
  STALL = 0.3 # the stall timeout of the stall cells
  FAULT_AT = 0.3 # when interrupts and IO#close strike

  # [class (or :symbol result, or Integer for a count), message pattern]
  HTTP = {
    reset: [Errno::ECONNRESET, %r{(GET|reading upstream from) http://}],
    stall: [Bytepump::UpstreamTimeout, /GET .* sent nothing for/],
    thread_raise: [Interrupt, /fault/],
    thread_kill: [:killed],
    timeout: [Timeout::Error],
    io_close: [IOError, /closed/]
  }.freeze
  OUTCOMES = {
    connect: {
      reset: [Errno::ECONNREFUSED],
      close: [Bytepump::TruncatedHead, /0 bytes into the response head/],
      stall: [Bytepump::ConnectTimeout, /timed out after/],
      thread_raise: [Interrupt, /fault/],
      thread_kill: [:killed],
      timeout: [Timeout::Error],
      # The connect never completes, so the closed IO is never reached.
      io_close: [Bytepump::ConnectTimeout, /timed out after/]
    },
    head: HTTP.merge(close: [Bytepump::TruncatedHead, /end of file 27 bytes into the response head/]),
    body: HTTP.merge(close: [Bytepump::ShortBody, /the body ended after 100000 of 1048576 bytes/]),
    chunk_size: HTTP.merge(close: [Bytepump::ShortBody, /before its last chunk/]),
    chunk_data: HTTP.merge(close: [Bytepump::ShortBody, /before its last chunk/]),
    trailer: HTTP.merge(close: [Bytepump::ShortBody, /before its last chunk/]),
    splice_to: {
      reset: [Errno::ECONNRESET, /reading upstream/],
      close: [Integer],
      stall: [:timeout_upstream],
      thread_raise: [Interrupt, /fault/],
      thread_kill: [:killed],
      timeout: [Timeout::Error],
      io_close: [IOError, /closed/]
    }
  }.freeze

  module_function

  # The scripted server's (or the feeding peer's) side of one cell.
  def serve(conn, prefix, rest, fault)
    conn.write(prefix)
    case fault
    when :reset
      sleep 0.05
      conn.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
    when :close then nil
    when :stall then sleep 5
    else
      sleep 1 # the client-side fault strikes meanwhile
      conn.write(rest)
    end
  end

  def label(outcome)
    case outcome
    when nil then "killed"
    when Integer then "Integer"
    when Symbol then ":#{outcome}"
    else outcome.class.name.sub("Bytepump::", "")
    end
  end

  # The matrix as a Markdown table.
  def table(cells)
    rows = ALL_PHASES.map do |phase|
      "| #{phase} | #{FAULTS.map { |fault| cells[[phase, fault]] }.join(' | ')} |"
    end
    ["| phase | #{FAULTS.join(' | ')} |", "|---|#{'---|' * FAULTS.size}", *rows].join("\n")
  end
end
