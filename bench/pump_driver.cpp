// The C++ side of bench/pump_bench.rb. Moves inherited fds argv[1] ->
// argv[2] and prints "bytes seconds cpu_seconds" of the transfer itself, so
// process start-up is not counted:
//   pump_driver SRC DST            bytepump::pump
//   pump_driver --relay SRC DST    the limit: a plain blocking splice(2)
//                                  relay through one 1 MiB pipe, no poll
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

}  // namespace

int main(int argc, char** argv) {
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
