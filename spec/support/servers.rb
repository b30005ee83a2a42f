# frozen_string_literal: true

require "fileutils"
require "openssl"
require "socket"
require "timeout"
require "tmpdir"

# Real upstream servers for the HTTP specs, the demo and the benchmark.
module Servers
  def self.free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  # TERM, then KILL if the process has not exited within +grace+ seconds;
  # reaps it either way, so stopping a server can never hang a suite.
  def self.stop_process(pid, grace: 10)
    Process.kill("TERM", pid)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + grace
    until Process.waitpid(pid, Process::WNOHANG)
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill("KILL", pid)
        Process.wait(pid)
        break
      end
      sleep 0.02
    end
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def self.wait_for_port(port, host = "127.0.0.1", pid: nil, log: nil)
    Timeout.timeout(30) do
      TCPSocket.new(host, port).close
    rescue Errno::ECONNREFUSED
      raise "server exited: #{log && File.read(log)}" if pid && Process.waitpid(pid, Process::WNOHANG)

      sleep 0.05
      retry
    end
  end

  # Starts a real Rack server in a child process on a free 127.0.0.1 port
  # and waits until it accepts. +server+ is :puma (+threads+ threads) or
  # :falcon (one process, one event loop thread: every request a fiber).
  # Returns [pid, port]; stop it with Servers.stop_process.
  def self.rack(server, app, env: {}, log: File::NULL, threads: 2)
    port = free_port
    argv = case server
           when :puma
             [Gem.bin_path("puma", "puma"), "--bind", "tcp://127.0.0.1:#{port}", "--threads", "#{threads}:#{threads}",
              "--quiet", app]
           when :falcon
             [Gem.bin_path("falcon", "falcon"), "serve", "--bind", "http://127.0.0.1:#{port}", "--threaded",
              "--count", "1", "--config", app]
           else raise ArgumentError, "unknown Rack server #{server.inspect}"
           end
    pid = spawn(env, Gem.ruby, *argv, out: File::NULL, err: log)
    wait_for_port(port, pid: pid, log: log == File::NULL ? nil : log)
    [pid, port]
  end

  # Reads +socket+ to its end. Returns [bytes read, their SHA-256 in hex].
  def self.digest_to_end(socket)
    digest = OpenSSL::Digest.new("SHA256")
    size = 0
    buffer = String.new(capacity: 1 << 20)
    loop { size += digest.update(socket.readpartial(1 << 20, buffer)) && buffer.bytesize }
  rescue EOFError
    [size, digest.hexdigest]
  end

  # A listener whose backlog is full, so a connect to it never completes.
  # Returns [url, ios to close afterwards].
  def self.black_hole
    listener = Socket.new(:INET, :STREAM)
    listener.bind(Addrinfo.tcp("127.0.0.1", 0))
    listener.listen(0)
    address = listener.local_address
    filler = Socket.new(:INET, :STREAM)
    filler.connect_nonblock(address, exception: false)
    filler.wait_writable(2)
    ["http://127.0.0.1:#{address.ip_port}/", [listener, filler]]
  end

  # Debian's nginx, started on 127.0.0.1 with its own prefix, serving files
  # from #root. #proxy_port, when asked for, proxies to another upstream.
  class Nginx
    attr_reader :port, :root, :proxy_port, :pid

    def initialize(proxy_to: nil, workers: 1)
      @dir = Dir.mktmpdir("bytepump-nginx")
      File.chmod(0o755, @dir)
      @root = File.join(@dir, "www")
      Dir.mkdir(@root, 0o755)
      @port = Servers.free_port
      @proxy_port = proxy_to && Servers.free_port
      @proxy_to = proxy_to
      @workers = workers
    end

    def binary
      %w[/usr/sbin/nginx /usr/local/sbin/nginx].find { |p| File.executable?(p) } ||
        raise("nginx is not installed (bin/setup installs it)")
    end

    def start
      conf = File.join(@dir, "nginx.conf")
      File.write(conf, config)
      log = File.join(@dir, "error.log")
      @pid = spawn(binary, "-p", @dir, "-c", conf, "-e", log, out: File::NULL, err: [log, "a"])
      Servers.wait_for_port(@port, pid: @pid, log: log)
      Servers.wait_for_port(@proxy_port, pid: @pid, log: log) if @proxy_port
      self
    end

    def add(name, bytes)
      path = File.join(@root, name)
      File.binwrite(path, bytes)
      File.chmod(0o644, path)
      "http://127.0.0.1:#{@port}/#{name}"
    end

    def stop
      Servers.stop_process(@pid) if @pid
      FileUtils.rm_rf(@dir)
    end

    private

    def config
      user = Process.uid.zero? ? "user root root;" : ""
      <<~CONF
        #{user}
        daemon off;
        master_process on;
        worker_processes #{@workers};
        pid #{@dir}/nginx.pid;
        error_log #{@dir}/error.log warn;
        events { worker_connections 1024; }
        http {
          access_log off;
          client_body_temp_path #{@dir}/client_body;
          proxy_temp_path #{@dir}/proxy;
          fastcgi_temp_path #{@dir}/fastcgi;
          uwsgi_temp_path #{@dir}/uwsgi;
          scgi_temp_path #{@dir}/scgi;
          sendfile on;
          tcp_nopush on;
          default_type application/octet-stream;
          server {
            listen 127.0.0.1:#{@port};
            root #{@root};
          }
          #{proxy_server}
        }
      CONF
    end

    def proxy_server
      return "" unless @proxy_port

      <<~CONF
        server {
          listen 127.0.0.1:#{@proxy_port};
          location / {
            proxy_pass http://127.0.0.1:#{@proxy_to};
            proxy_http_version 1.1;
            proxy_buffering on;
          }
        }
      CONF
    end
  end

  # A small HTTP server whose every response is scripted: the handler gets
  # the request path and the client socket and writes whatever it likes,
  # broken or not. Optionally over TLS with a throwaway CA.
  class Scripted
    attr_reader :port, :requests

    def initialize(tls: false, &handler)
      @handler = handler
      @server = TCPServer.new("127.0.0.1", 0)
      @port = @server.addr[1]
      @requests = Queue.new
      @tls = tls && TLS.new
      @threads = []
      @acceptor = Thread.new { accept_loop }
    end

    def url(path = "/") = "#{@tls ? 'https' : 'http'}://127.0.0.1:#{@port}#{path}"
    def client_context = @tls.client_context

    def stop
      @acceptor.kill
      @threads.each(&:kill)
      ([@acceptor] + @threads).each { |t| t.join(5) }
      @server.close
    end

    private

    def accept_loop
      loop do
        client = @server.accept
        @threads.select!(&:alive?)
        @threads << Thread.new(client) { |c| serve(c) }
      end
    end

    def serve(client)
      conn = @tls ? @tls.accept(client) : client
      head = +""
      head << conn.readpartial(4096) until head.include?("\r\n\r\n")
      @requests << head
      path = head[%r{\AGET (\S+) HTTP/1\.1\r\n}, 1]
      @handler.call(path, conn, head)
    rescue IOError, SystemCallError, OpenSSL::SSL::SSLError
      nil
    ensure
      conn&.close
      client.close unless client.closed?
    end
  end

  # A self-signed CA and a certificate for 127.0.0.1 signed by it.
  class TLS
    def initialize
      @key = OpenSSL::PKey::EC.generate("prime256v1")
      @ca = certificate("CN=bytepump test CA", @key, @key, nil, ca: true)
      @cert = certificate("CN=127.0.0.1", @key, @key, @ca, ca: false)
    end

    def accept(client)
      context = OpenSSL::SSL::SSLContext.new
      context.cert = @cert
      context.key = @key
      ssl = OpenSSL::SSL::SSLSocket.new(client, context)
      ssl.sync_close = true
      ssl.accept
      ssl
    end

    def client_context
      store = OpenSSL::X509::Store.new
      store.add_cert(@ca)
      OpenSSL::SSL::SSLContext.new.tap { |c| c.set_params(cert_store: store) }
    end

    private

    def certificate(subject, key, signer, issuer, ca:) # rubocop:disable Naming/MethodParameterName
      cert = OpenSSL::X509::Certificate.new
      cert.version = 2
      cert.serial = OpenSSL::BN.rand(64)
      cert.subject = OpenSSL::X509::Name.parse(subject)
      cert.issuer = issuer ? issuer.subject : cert.subject
      cert.public_key = key
      cert.not_before = Time.now - 60
      cert.not_after = Time.now + 3600
      ext = OpenSSL::X509::ExtensionFactory.new(issuer || cert, cert)
      cert.add_extension(ext.create_extension("basicConstraints", ca ? "CA:TRUE" : "CA:FALSE", true))
      cert.add_extension(ext.create_extension("subjectAltName", "IP:127.0.0.1")) unless ca
      cert.sign(signer, OpenSSL::Digest.new("SHA256"))
      cert
    end
  end
end
