#ifndef BYTEPUMP_TEST_FUZZ_UTIL_HPP_
#define BYTEPUMP_TEST_FUZZ_UTIL_HPP_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace bytepump::fuzz {

// The input in a heap block of exactly its size: ASan reports any read past
// the end, as picohttpparser's guard page does.
struct Exact {
  Exact(const std::uint8_t* data, std::size_t size) : bytes(new char[size ? size : 1]), len(size) {
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(data[i]);
  }
  std::unique_ptr<char[]> bytes;
  std::size_t len;
  const char* data() const { return bytes.get(); }
};

// Cut points derived from the input itself, so a crash reproduces from the
// input alone.
inline std::vector<std::size_t> cuts_for(const std::uint8_t* data, std::size_t size) {
  std::vector<std::size_t> cuts;
  std::uint32_t x = static_cast<std::uint32_t>(size) * 2654435761u + (size ? data[0] : 0u);
  for (std::size_t at = 0; at < size;) {
    x = x * 1103515245u + 12345u;
    at += 1 + (x >> 16) % 23;
    if (at < size) cuts.push_back(at);
  }
  return cuts;
}

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

}  // namespace bytepump::fuzz

#endif  // BYTEPUMP_TEST_FUZZ_UTIL_HPP_
