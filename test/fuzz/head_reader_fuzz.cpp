// HeadReader over a real socketpair agrees with the sans-IO HeadParser on
// the same bytes, and never takes a byte past the head: what it leaves in the
// socket is exactly the rest of the input.
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "bytepump/head_reader.hpp"
#include "bytepump/http/head_parser.hpp"
#include "fuzz_util.hpp"

using bytepump::HeadReader;
using bytepump::ScanStatus;
using bytepump::http::HeadParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 60000) return 0;  // stays within one socket buffer
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  int buf = 1 << 20;
  ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  std::size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fds[1], data + off, size - off);
    FUZZ_CHECK(n > 0);
    off += static_cast<std::size_t>(n);
  }
  ::shutdown(fds[1], SHUT_WR);

  bytepump::HeadLimits limits{4096, 100};
  HeadReader scanner(fds[0], limits);
  bytepump::ScanOptions options;
  options.limits = limits;
  options.timeout = std::chrono::seconds(5);
  bytepump::skip_headers(scanner, options);

  // The same bytes, whole, through the parser (interim heads dropped).
  HeadParser parser(limits);
  std::string held(reinterpret_cast<const char*>(data), size);
  HeadParser::Step step;
  for (;;) {
    step = parser.next(held);
    if (step.kind != HeadParser::Step::Kind::interim) break;
    held.erase(0, step.consumed);
  }
  if (step.kind == HeadParser::Step::Kind::need_more) step = parser.finish(held);
  switch (step.kind) {
    case HeadParser::Step::Kind::final:
      FUZZ_CHECK(scanner.status() == ScanStatus::done);
      FUZZ_CHECK(scanner.consumed() == parser.consumed());
      break;
    case HeadParser::Step::Kind::need_more:
      FUZZ_CHECK(scanner.status() == ScanStatus::eof);
      break;
    case HeadParser::Step::Kind::malformed:
      FUZZ_CHECK(scanner.status() == ScanStatus::malformed);
      break;
    case HeadParser::Step::Kind::too_large:
      FUZZ_CHECK(scanner.status() == ScanStatus::too_large);
      break;
    default:
      FUZZ_CHECK(false);
  }
  if (scanner.status() == ScanStatus::done) {
    std::string rest;
    char chunk[65536];
    for (;;) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n <= 0) break;
      rest.append(chunk, static_cast<std::size_t>(n));
    }
    FUZZ_CHECK(rest == std::string(reinterpret_cast<const char*>(data) + scanner.consumed(),
                                   size - scanner.consumed()));
  }
  ::close(fds[0]);
  ::close(fds[1]);
  return 0;
}
