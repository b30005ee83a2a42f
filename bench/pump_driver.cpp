// The C++ pump alone, for bench/pump_bench.rb: pumps inherited fds
// argv[1] -> argv[2] and prints "bytes seconds cpu_seconds" of the pump call
// itself, so process start-up is not counted.
#include <sys/resource.h>

#include <bytepump/pump.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SRC_FD DST_FD\n", argv[0]);
    return 2;
  }
  double cpu = cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  bytepump::Result r = bytepump::pump(std::atoi(argv[1]), std::atoi(argv[2]));
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("%llu %.6f %.6f\n", static_cast<unsigned long long>(r.bytes_written), elapsed.count(),
              cpu_seconds() - cpu);
  return r.ok() ? 0 : 1;
}
