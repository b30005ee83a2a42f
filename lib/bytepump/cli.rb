# frozen_string_literal: true

require "optparse"
require "socket"
require "bytepump"

module Bytepump
  # The command line (exe/bytepump):
  #
  #   bytepump copy SRC DST                           files, or - for stdin/stdout
  #   bytepump fetch URL [-o FILE]                    the body to FILE, or stdout
  #   bytepump relay --listen HOST:PORT --to HOST:PORT
  #
  # each with --timeout SECONDS (stall timeout per side) and --length BYTES.
  # On a terminal it draws a progress bar on stderr (bytes, rate, ETA when the
  # size is known), at most ~10 times a second; off one it is quiet unless
  # --progress. An error prints one line and exits 1; a file being written
  # is a temporary one, renamed only when every byte is in.
  class CLI
    # What an unknown command or a missing argument prints.
    USAGE = <<~TEXT
      usage: bytepump copy SRC DST [options]          (SRC or DST may be - for stdin/stdout)
             bytepump fetch URL [-o FILE] [options]   (stdout without -o)
             bytepump relay --listen HOST:PORT --to HOST:PORT [options]
    TEXT

    # Ends a usage error's one line.
    SEE_HELP = " (bytepump --help shows the usage)"

    # A failure worth one line on stderr and exit status 1.
    class Failure < StandardError; end

    # +stdin+, +stdout+, +stderr+: the IOs to use (the process's by default).
    def initialize(stdin: $stdin, stdout: $stdout, stderr: $stderr)
      @stdin = stdin
      @stdout = stdout
      @stderr = stderr
    end

    # Runs the command in +argv+; returns the exit status.
    def run(argv)
      options = parse(argv.dup)
      command = options.delete(:command)
      send(:"run_#{command}", options)
      0
    rescue Failure, OptionParser::ParseError, ArgumentError, TypeError, IOError, SystemCallError,
           SocketError => e
      @stderr.puts "bytepump: #{e.message}"
      1
    rescue Interrupt
      @stderr.puts "bytepump: interrupted"
      130
    end

    private

    def parse(argv)
      options = { timeout: nil, length: nil, progress: nil }
      rest = option_parser(options).parse(argv)
      command = rest.shift
      raise Failure, "no command#{SEE_HELP}" unless command
      raise Failure, "unknown command #{command.inspect}#{SEE_HELP}" unless %w[copy fetch relay].include?(command)
      raise Failure, "--length must be >= 0" if options[:length]&.negative?

      options.merge(command: command, args: rest)
    end

    def option_parser(options)
      OptionParser.new do |o|
        o.banner = USAGE
        o.on("--timeout SECONDS", Float, "stall timeout for each side (default: none)") { |v| options[:timeout] = v }
        o.on("--length BYTES", Integer, "stop after this many bytes") { |v| options[:length] = v }
        o.on("-o", "--output FILE", "fetch: write the body to FILE") { |v| options[:output] = v }
        o.on("--listen HOST:PORT", "relay: where to accept connections") { |v| options[:listen] = v }
        o.on("--to HOST:PORT", "relay: where to connect each one") { |v| options[:to] = v }
        o.on("--[no-]progress", "draw the progress bar even off a terminal (or never)") { |v| options[:progress] = v }
        o.on("-h", "--help") do
          @stdout.puts o
          exit 0
        end
      end
    end

    def run_copy(options)
      src_path, dst_path = options[:args]
      raise Failure, "copy needs SRC and DST#{SEE_HELP}" unless src_path && dst_path && options[:args].size == 2

      with_source(src_path) do |src|
        into(dst_path) do |dst|
          with_bar("copy", copy_total(src, options[:length]), options) do |bar|
            Bytepump.pump(src, dst, timeout: options[:timeout], length: options[:length], &advance(bar))
          end
        end
      end
    end

    # The bytes a copy will move when that is known: the rest of a regular
    # file, capped by --length; else --length; else nil.
    def copy_total(src, length)
      return length unless src.is_a?(File) && File.file?(src)

      [src.size - src.pos, length].compact.min
    end

    def run_fetch(options)
      url = options[:args].first
      raise Failure, "fetch needs a URL#{SEE_HELP}" unless url && options[:args].size == 1
      raise Failure, "fetch: --length is not supported (a body is fetched whole)" if options[:length]

      into(options[:output] || "-") do |dst|
        with_bar("fetch", nil, options) do |bar|
          sized = ->(response) { size(bar, response.content_length) }
          Bytepump.fetch(url, into: dst, timeout: options[:timeout], on_response: sized, &advance(bar))
        end
      end
    end

    # Gives the bar (if any) its total, once one is known.
    def size(bar, total)
      return unless bar && total

      bar.total = total
      bar.format = BAR_FORMATS.fetch(true)
    end

    def run_relay(options)
      listen = host_port(options[:listen], "--listen")
      to = host_port(options[:to], "--to")
      server = TCPServer.new(*listen)
      @stderr.puts "bytepump: relaying #{options[:listen]} -> #{options[:to]}"
      loop do
        client = server.accept
        Thread.new(client) { |c| relay_one(c, to, options) }
      end
    ensure
      server&.close
    end

    def relay_one(client, to, options)
      upstream = TCPSocket.new(*to)
      both = [[client, upstream], [upstream, client]].map do |from, into|
        Thread.new do
          from.splice_to(into, options[:timeout], length: options[:length])
          into.close_write
        rescue IOError, SystemCallError
          nil
        end
      end
      both.each(&:join)
    rescue SystemCallError, SocketError => e
      @stderr.puts "bytepump: relay to #{options[:to]}: #{e.message}"
    ensure
      upstream&.close
      client.close
    end

    def host_port(value, flag)
      raise Failure, "relay needs #{flag} HOST:PORT" unless value

      host, _, port = value.rpartition(":")
      raise Failure, "#{flag}: #{value.inspect} is not HOST:PORT" if host.empty? || port !~ /\A\d+\z/

      [host.delete_prefix("[").delete_suffix("]"), Integer(port)]
    end

    def with_source(path, &)
      return yield(@stdin) if path == "-"

      File.open(path, "rb", &)
    rescue Errno::ENOENT, Errno::EACCES, Errno::EISDIR => e
      raise Failure, "#{path}: #{e.message.sub(/ @ .*/, '')}"
    end

    # Yields the destination: stdout for "-", else a temporary file beside
    # +path+, renamed to it only when the block returns.
    def into(path, &)
      return yield(@stdout) if path == "-"

      temp = File.join(File.dirname(path), ".#{File.basename(path)}.bytepump-#{Process.pid}")
      File.open(temp, "wb", &)
      File.rename(temp, path)
    rescue Errno::ENOENT, Errno::EACCES, Errno::EISDIR => e
      raise Failure, "#{path}: #{e.message.sub(/ @ .*/, '')}"
    ensure
      File.unlink(temp) if temp && File.exist?(temp)
    end

    # Yields the progress bar (nil when there is none), and checks the
    # outcome of the transfer the block returns.
    def with_bar(title, total, options)
      bar = progress_bar(title, total, options)
      outcome = yield(bar)
      bar&.finish
      check(outcome)
    ensure
      bar&.stop unless bar&.finished?
    end

    # A progress block that advances +bar+ by n bytes (a no-op without one).
    def advance(bar) = bar ? ->(n) { bar.progress += n } : ->(_n) {}

    # The bar's format, by whether the total is known.
    BAR_FORMATS = { true => "%t %c/%C bytes |%B| %p%% %r MB/s %e", false => "%t %c bytes %r MB/s" }.freeze
    private_constant :BAR_FORMATS

    def progress_bar(title, total, options)
      show = options[:progress].nil? ? @stderr.tty? : options[:progress]
      return unless show

      require "ruby-progressbar"
      ProgressBar.create(title: title, total: total, output: @stderr, format: BAR_FORMATS.fetch(!total.nil?),
                         throttle_rate: 0.1, rate_scale: ->(rate) { (rate / 1e6).round(1) })
    end

    def check(outcome)
      return outcome unless outcome.is_a?(Result) && outcome.timeout?

      side = outcome.status == :timeout_upstream ? "source sent" : "destination took"
      raise Failure, "timed out: the #{side} nothing for the stall timeout (#{outcome.bytes_written} bytes written)"
    end
  end
end
