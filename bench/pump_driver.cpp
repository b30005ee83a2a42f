// The C++ side of bench/pump_bench.rb. Moves inherited fds argv[1] ->
// argv[2] and prints "bytes seconds cpu_seconds" of the transfer itself, so
// process start-up is not counted:
//   pump_driver SRC DST            bytepump::pump
//   pump_driver --relay SRC DST    the limit: a plain blocking splice(2)
//                                  relay through one 1 MiB pipe, no poll
// and, as the "C read/write" peers on the far ends of the sockets:
//   pump_driver --produce FD BYTES writes BYTES zero bytes, 64 KiB a write()
//   pump_driver --consume FD BYTES reads to EOF, 64 KiB a read(); exits 0
//                                  only if it got exactly BYTES
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bytepump/pump.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Blocking splice src -> pipe -> dst until EOF; bytes moved, or -1.
long long blocking_relay(int src, int dst) {
  for (int fd : {src, dst}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  long long total = 0;
  for (;;) {
    ssize_t in = ::splice(src, nullptr, p[1], nullptr, 1 << 20, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (in == 0) break;
    if (in < 0) return -1;
    while (in > 0) {
      ssize_t out = ::splice(p[0], nullptr, dst, nullptr, static_cast<std::size_t>(in),
                             SPLICE_F_MOVE | SPLICE_F_MORE);
      if (out <= 0) return -1;
      in -= out;
      total += out;
    }
  }
  ::close(p[0]);
  ::close(p[1]);
  return total;
}

// Blocking read/write peers: the kind of program a relay usually talks to.
int produce(int fd, long long bytes) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  static char buffer[1 << 16];
  while (bytes > 0) {
    std::size_t want = bytes < static_cast<long long>(sizeof buffer)
                           ? static_cast<std::size_t>(bytes)
                           : sizeof buffer;
    ssize_t n = ::write(fd, buffer, want);
    if (n <= 0) return 1;
    bytes -= n;
  }
  return 0;
}

int consume(int fd, long long bytes) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  static char buffer[1 << 16];
  long long got = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) return 1;
    if (n == 0) break;
    got += n;
  }
  return got == bytes ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--produce") == 0)
    return produce(std::atoi(argv[2]), std::atoll(argv[3]));
  if (argc == 4 && std::strcmp(argv[1], "--consume") == 0)
    return consume(std::atoi(argv[2]), std::atoll(argv[3]));
  bool relay = argc == 4 && std::strcmp(argv[1], "--relay") == 0;
  if (argc != 3 && !relay) {
    std::fprintf(stderr, "usage: %s [--relay] SRC_FD DST_FD\n", argv[0]);
    return 2;
  }
  int src = std::atoi(argv[argc - 2]);
  int dst = std::atoi(argv[argc - 1]);
  double cpu = cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  long long bytes;
  if (relay) {
    bytes = blocking_relay(src, dst);
  } else {
    bytepump::Result r = bytepump::pump(src, dst);
    bytes = r.ok() ? static_cast<long long>(r.bytes_written) : -1;
  }
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("%lld %.6f %.6f\n", bytes, elapsed.count(), cpu_seconds() - cpu);
  return bytes >= 0 ? 0 : 1;
}
