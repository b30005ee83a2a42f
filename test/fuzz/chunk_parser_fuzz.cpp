// The chunk-size line, chunk-end and trailer parsers over arbitrary bytes:
// no read past the input, and what they consume lies within it.
#include "bytepump/http/parser.hpp"
#include "fuzz_util.hpp"

namespace http = bytepump::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytepump::fuzz::Exact in(data, size);
  auto within = [&](long r) {
    return r == http::kIncomplete || r == http::kMalformed ||
           (r > 0 && static_cast<std::size_t>(r) <= in.len);
  };
  http::ParseError error;
  std::uint64_t chunk = 0;
  long r = http::parse_chunk_size(in.data(), in.len, chunk, error);
  FUZZ_CHECK(within(r));
  FUZZ_CHECK(r != http::kMalformed || error != http::ParseError::none);
  r = http::parse_chunk_end(in.data(), in.len, error);
  FUZZ_CHECK(within(r));
  FUZZ_CHECK(r < 0 || r == 2);
  http::Header trailers[64];
  std::size_t n = 64;
  r = http::parse_headers(in.data(), in.len, trailers, n, error);
  FUZZ_CHECK(within(r));
  if (r > 0) FUZZ_CHECK(n <= 64);
  return 0;
}
