// The C++ pump alone, for bench/pump_bench.rb: pumps inherited fds
// argv[1] -> argv[2] and prints the bytes written.
#include <bytepump/pump.hpp>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SRC_FD DST_FD\n", argv[0]);
    return 2;
  }
  bytepump::Result r = bytepump::pump(std::atoi(argv[1]), std::atoi(argv[2]));
  std::printf("%llu\n", static_cast<unsigned long long>(r.bytes_written));
  return r.ok() ? 0 : 1;
}
