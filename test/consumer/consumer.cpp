// Relays a pipe into another pipe with the installed library: the smallest
// real use of bytepump::pump.
#include <unistd.h>

#include <bytepump/pump.hpp>
#include <cstdio>
#include <cstring>
#include <string>

int main() {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return 1;
  const std::string message = "consumer says hello";
  if (write(in[1], message.data(), message.size()) != static_cast<ssize_t>(message.size()))
    return 1;
  close(in[1]);
  bytepump::Result r = bytepump::pump(in[0], out[1]);
  close(out[1]);
  char got[64] = {};
  ssize_t n = read(out[0], got, sizeof got);
  if (!r.ok() || r.bytes_written != message.size() || n != static_cast<ssize_t>(message.size()) ||
      std::memcmp(got, message.data(), message.size()) != 0) {
    std::fprintf(stderr, "relay failed: status %s, %llu bytes\n", bytepump::to_string(r.status),
                 static_cast<unsigned long long>(r.bytes_written));
    return 1;
  }
  std::printf("relayed %llu bytes with %s\n", static_cast<unsigned long long>(r.bytes_written),
              bytepump::to_string(r.strategy));
  return 0;
}
