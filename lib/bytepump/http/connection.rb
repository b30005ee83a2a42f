# frozen_string_literal: true

require "socket"

module Bytepump
  module HTTP
    # Opens the TCP (and TLS) connection for a URL. Name resolution goes
    # through Addrinfo.getaddrinfo, which releases the GVL and is routed to a
    # Fiber scheduler's address_resolve hook, so neither threads nor fibers
    # are held up; connecting waits through Native::Waits, fiber-aware too.
    module Connection
      module_function

      # Returns a connected Socket, or an OpenSSL::SSL::SSLSocket for https.
      def open(uri, connect_timeout, ssl_context)
        deadline = connect_timeout && (clock + connect_timeout)
        sock = tcp(uri, deadline, connect_timeout)
        return sock unless uri.scheme == "https"

        tls(sock, uri, deadline, connect_timeout, ssl_context)
      end

      # @api private
      # A connected TCP socket to the first address that answers before the deadline.
      def tcp(uri, deadline, connect_timeout)
        addresses = Addrinfo.getaddrinfo(uri.hostname, uri.port, nil, :STREAM)
        last_error = nil
        addresses.each do |address|
          return connect(address, deadline, connect_timeout)
        rescue SystemCallError => e
          last_error = e
        end
        raise last_error || SocketError.new("#{uri.hostname}: no addresses")
      end

      # Every way out but success closes the socket: errors, and also
      # Timeout.timeout, Thread#raise and Thread#kill, which are not
      # StandardErrors.
      def connect(address, deadline, connect_timeout)
        sock = Socket.new(address.afamily, Socket::SOCK_STREAM, 0)
        connected = false
        sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
        waits = Native::Waits.new
        while sock.connect_nonblock(address, exception: false) == :wait_writable
          next if waits.wait(sock, IO::WRITABLE, remaining(deadline))

          raise ConnectTimeout, "connecting to #{address.inspect_sockaddr} timed out after #{connect_timeout}s"
        end
        connected = true
        sock
      ensure
        sock&.close unless connected
      end

      # @api private
      # Wraps +sock+ in TLS, verifying the peer for +uri+; closes it on failure.
      def tls(sock, uri, deadline, connect_timeout, ssl_context)
        require "openssl"
        secured = false
        context = ssl_context || OpenSSL::SSL::SSLContext.new.tap(&:set_params)
        ssl = OpenSSL::SSL::SSLSocket.new(sock, context)
        ssl.sync_close = true
        ssl.hostname = uri.hostname
        handshake(ssl, deadline, connect_timeout)
        ssl.post_connection_check(uri.hostname) if context.verify_mode != OpenSSL::SSL::VERIFY_NONE
        secured = true
        ssl
      ensure
        (ssl || sock).close unless secured
      end

      # @api private
      # The TLS handshake, nonblocking, within the connect deadline.
      def handshake(ssl, deadline, connect_timeout)
        waits = Native::Waits.new
        loop do
          case ssl.connect_nonblock(exception: false)
          when :wait_readable then ready = waits.wait(ssl.to_io, IO::READABLE, remaining(deadline))
          when :wait_writable then ready = waits.wait(ssl.to_io, IO::WRITABLE, remaining(deadline))
          else return
          end
          raise ConnectTimeout, "TLS handshake with #{ssl.hostname} timed out after #{connect_timeout}s" unless ready
        end
      end

      # @api private
      # Seconds left until +deadline+ (nil: none).
      def remaining(deadline)
        deadline && [deadline - clock, 0].max
      end

      # @api private
      # The monotonic clock, in seconds.
      def clock = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Buffered nonblocking reads for the copying path (TLS sources and non-IO
    # destinations), with the upstream stall timeout.
    class Reader
      # Bytes asked for per read.
      CHUNK = 64 * 1024

      attr_reader :buffer

      def initialize(io, timeout)
        @io = io
        @timeout = timeout
        @buffer = +"".b
        @wait = io.is_a?(IO) ? io : io.to_io # only to wait on, never to read from
        @waits = Native::Waits.new
      end

      # Appends what arrives next to #buffer; false at EOF.
      def fill
        loop do
          chunk = @io.read_nonblock(CHUNK, exception: false)
          case chunk
          when nil then return false
          when :wait_readable then wait(@waits.wait(@wait, IO::READABLE, @timeout))
          when :wait_writable then wait(@waits.wait(@wait, IO::WRITABLE, @timeout))
          else
            @buffer << chunk
            return true
          end
        end
      end

      # Removes and returns up to +n+ bytes from the front of the buffer.
      def take(count)
        @buffer.slice!(0, count)
      end

      private

      def wait(ready)
        raise UpstreamTimeout, "the server sent nothing for #{@timeout}s" unless ready
      end
    end
  end
end
