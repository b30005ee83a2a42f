#ifndef BYTEPUMP_TEST_FD_HELPERS_HPP_
#define BYTEPUMP_TEST_FD_HELPERS_HPP_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace bytepump::test {

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::to_string(errno));
}

// A connected pair: first is the end the pump uses, second the peer's.
struct FdPair {
  int ours = -1;
  int peer = -1;
  FdPair() = default;
  FdPair(int a, int b) : ours(a), peer(b) {}
  FdPair(FdPair&& o) noexcept : ours(std::exchange(o.ours, -1)), peer(std::exchange(o.peer, -1)) {}
  FdPair& operator=(FdPair&& o) noexcept {
    std::swap(ours, o.ours);
    std::swap(peer, o.peer);
    return *this;
  }
  ~FdPair() {
    if (ours >= 0) ::close(ours);
    if (peer >= 0) ::close(peer);
  }
  void close_peer() {
    if (peer >= 0) ::close(peer);
    peer = -1;
  }
};

enum class Kind { file, pipe, unix_socket, tcp_socket };

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::file:
      return "file";
    case Kind::pipe:
      return "pipe";
    case Kind::unix_socket:
      return "unix";
    default:
      return "tcp";
  }
}

inline std::string pattern(std::size_t n, std::uint32_t seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

inline int temp_file(const std::string& content = {}) {
  char path[] = "/tmp/bytepump-test-XXXXXX";
  int fd = ::mkstemp(path);
  check(fd >= 0, "mkstemp");
  ::unlink(path);
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    check(n > 0, "write temp file");
    off += static_cast<std::size_t>(n);
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

inline std::string read_file(int fd) {
  std::string out;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    check(n >= 0, "pread");
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
}

inline FdPair tcp_pair() {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(listener >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "bind");
  check(::listen(listener, 1) == 0, "listen");
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
  int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  check(server >= 0, "accept");
  ::close(listener);
  return FdPair(server, client);
}

inline FdPair unix_pair() {
  int sv[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  return FdPair(sv[0], sv[1]);
}

// For a source: ours is the read end. For a destination: ours is the write end.
inline FdPair pipe_pair(bool ours_reads) {
  int p[2];
  check(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
  return ours_reads ? FdPair(p[0], p[1]) : FdPair(p[1], p[0]);
}

inline FdPair stream_pair(Kind k, bool ours_reads) {
  switch (k) {
    case Kind::pipe:
      return pipe_pair(ours_reads);
    case Kind::unix_socket:
      return unix_pair();
    default:
      return tcp_pair();
  }
}

inline void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    check(n > 0, "write_all");
    off += static_cast<std::size_t>(n);
  }
}

inline std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    check(n >= 0, "read_all");
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Ends the write direction of a stream end so the reader sees EOF.
// Ends the writing side: a socket is shut down, anything else (a pipe) is
// closed and `fd` set to -1, so its owner does not close the number again
// (by then it may be a pooled pipe of the library under test).
inline void end_writing(int& fd) {
  if (::shutdown(fd, SHUT_WR) == 0) return;
  ::close(fd);
  fd = -1;
}

inline int open_fd_count() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) ++n;
  return n;
}

}  // namespace bytepump::test

#endif  // BYTEPUMP_TEST_FD_HELPERS_HPP_
