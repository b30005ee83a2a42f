// A TCP relay on libevent that moves bytes between two sockets through
// PipeEvents: what one side sends is spliced into its PipeEvent's input,
// re-linked into the other's output and spliced out, never copied into user
// space. Half-closes are passed on; at most 4 MiB wait per direction.
//
//   libevent_relay LISTEN_PORT TARGET_PORT   relay 127.0.0.1:LISTEN_PORT to
//                                            127.0.0.1:TARGET_PORT, forever
//   libevent_relay --bench [MiB [ROUNDS]]    relay MiB (default 1024) from a
//                                            producer to a consumer through
//                                            the relay and through a plain
//                                            bytepump::pump, ROUNDS (5)
//                                            alternated, and print both
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bytepump/libevent.hpp>
#include <bytepump/pump.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kMaxQueued = std::size_t{4} << 20;

int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One relayed connection: two PipeEvents wired to each other. It frees
// itself when both directions have ended.
class Connection {
 public:
  Connection(event_base* base, int client, int upstream)
      : a_(std::make_unique<bytepump::LibeventPipeEvent>(
            base, client, bytepump::PipeEvent::close_on_free, kMaxQueued)),
        b_(std::make_unique<bytepump::LibeventPipeEvent>(
            base, upstream, bytepump::PipeEvent::close_on_free, kMaxQueued)) {
    wire(*a_, *b_, a_done_);
    wire(*b_, *a_, b_done_);
    a_->enable(bytepump::PipeEvent::read);
    b_->enable(bytepump::PipeEvent::read);
  }

 private:
  // Bytes read by `from` go to `to`; what did not fit waits in from's input
  // until `to` drains. EOF on `from` half-closes `to` once `to` has sent all.
  void wire(bytepump::PipeEvent& from, bytepump::PipeEvent& to, bool& from_done) {
    bool* eof = &from_done;
    from.set_callbacks(
        [&to](bytepump::PipeEvent& self) { to.output().move_from(self.input(), SIZE_MAX); },
        [this, &to](bytepump::PipeEvent& self) {
          self.output().move_from(to.input(), SIZE_MAX);
          settle();
        },
        [this, eof](bytepump::PipeEvent&, short what) {
          if (what & (bytepump::PipeEvent::error | bytepump::PipeEvent::timeout)) {
            failed_ = true;
          } else {
            *eof = true;
          }
          settle();
        });
  }

  // Passes half-closes on, and frees the connection when it is over.
  void settle() {
    if (a_done_ && !a_shut_ && a_->input().empty() && b_->output().empty()) {
      ::shutdown(b_->fd(), SHUT_WR);
      a_shut_ = true;
    }
    if (b_done_ && !b_shut_ && b_->input().empty() && a_->output().empty()) {
      ::shutdown(a_->fd(), SHUT_WR);
      b_shut_ = true;
    }
    if (failed_ || (a_shut_ && b_shut_)) delete this;
  }

  std::unique_ptr<bytepump::LibeventPipeEvent> a_, b_;
  bool a_done_ = false, b_done_ = false, a_shut_ = false, b_shut_ = false, failed_ = false;
};

struct Listener {
  event_base* base;
  int target_port;
  bool once;  // --bench: stop accepting after one connection
  event* ev = nullptr;
};

void on_accept(evutil_socket_t fd, short, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  int client = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  int upstream = connect_to(l->target_port);
  if (upstream < 0) {
    ::close(client);
    return;
  }
  new Connection(l->base, client, upstream);  // frees itself
  if (l->once) ::event_del(l->ev);
}

// Writes `bytes` zero bytes into fd and closes it; reads fd to EOF and
// checks the count.
void produce(int fd, std::size_t bytes) {
  static char chunk[1 << 16];
  while (bytes > 0) {
    ssize_t n = ::write(fd, chunk, std::min(bytes, sizeof chunk));
    if (n <= 0) break;
    bytes -= static_cast<std::size_t>(n);
  }
  ::close(fd);
}

std::size_t consume(int fd) {
  static char chunk[1 << 16];
  std::size_t got = 0;
  for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) got += static_cast<std::size_t>(n);
  ::close(fd);
  return got;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Producer -> relay -> consumer, timed. Returns MB/s, or -1 if bytes were lost.
double bench_libevent(std::size_t bytes) {
  int target = listen_on(0);
  int front = listen_on(0);
  event_base* base = ::event_base_new();
  Listener l{base, port_of(target), true};
  l.ev = ::event_new(base, front, EV_READ | EV_PERSIST, on_accept, &l);
  ::event_add(l.ev, nullptr);
  std::size_t got = 0;
  auto start = std::chrono::steady_clock::now();
  std::thread consumer([&] { got = consume(::accept4(target, nullptr, nullptr, SOCK_CLOEXEC)); });
  std::thread producer([&] { produce(connect_to(port_of(front)), bytes); });
  ::event_base_dispatch(base);  // returns when the connection freed itself
  producer.join();
  consumer.join();
  double elapsed = seconds_since(start);
  ::event_free(l.ev);
  ::event_base_free(base);
  ::close(target);
  ::close(front);
  return got == bytes ? static_cast<double>(bytes) / elapsed / 1e6 : -1;
}

// The same traffic through bytepump::pump between the two sockets.
double bench_pump(std::size_t bytes) {
  int target = listen_on(0);
  int front = listen_on(0);
  std::size_t got = 0;
  auto start = std::chrono::steady_clock::now();
  std::thread consumer([&] { got = consume(::accept4(target, nullptr, nullptr, SOCK_CLOEXEC)); });
  std::thread producer([&] { produce(connect_to(port_of(front)), bytes); });
  int client = ::accept4(front, nullptr, nullptr, SOCK_CLOEXEC);
  int upstream = connect_to(port_of(target));
  bytepump::Result r = bytepump::pump(client, upstream);
  ::close(upstream);
  ::close(client);
  producer.join();
  consumer.join();
  double elapsed = seconds_since(start);
  ::close(target);
  ::close(front);
  return r.ok() && got == bytes ? static_cast<double>(bytes) / elapsed / 1e6 : -1;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && std::strcmp(argv[1], "--bench") == 0) {
    std::size_t mib = argc >= 3 ? std::strtoull(argv[2], nullptr, 10) : 1024;
    int rounds = argc >= 4 ? std::atoi(argv[3]) : 5;
    std::size_t bytes = mib << 20;
    std::vector<double> relay, pump;
    for (int i = 0; i < rounds; ++i) {  // alternated, so noise hits both alike
      if (i % 2) relay.push_back(bench_libevent(bytes));
      pump.push_back(bench_pump(bytes));
      if (i % 2 == 0) relay.push_back(bench_libevent(bytes));
    }
    std::sort(relay.begin(), relay.end());
    std::sort(pump.begin(), pump.end());
    if (relay.front() < 0 || pump.front() < 0) {
      std::fprintf(stderr, "bytes were lost\n");
      return 1;
    }
    double r = relay[relay.size() / 2], p = pump[pump.size() / 2];
    std::printf(
        "%zu MiB over 127.0.0.1, medians of %d alternated rounds: libevent PipeEvent relay %.0f "
        "MB/s "
        "(%.0f-%.0f), bytepump::pump %.0f MB/s (%.0f-%.0f): %.2fx\n",
        mib, rounds, r, relay.front(), relay.back(), p, pump.front(), pump.back(), r / p);
    return 0;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT | --bench [MiB]\n", argv[0]);
    return 2;
  }
  int front = listen_on(std::atoi(argv[1]));
  event_base* base = ::event_base_new();
  Listener l{base, std::atoi(argv[2]), false};
  l.ev = ::event_new(base, front, EV_READ | EV_PERSIST, on_accept, &l);
  ::event_add(l.ev, nullptr);
  std::printf("relaying 127.0.0.1:%d -> 127.0.0.1:%d\n", port_of(front), l.target_port);
  std::fflush(stdout);
  return ::event_base_dispatch(base) == 0 ? 0 : 1;
}
