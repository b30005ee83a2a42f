#ifndef BYTEPUMP_HTTP_HEAD_PARSER_HPP_
#define BYTEPUMP_HTTP_HEAD_PARSER_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "bytepump/export.hpp"
#include "bytepump/http/parser.hpp"

namespace bytepump {

struct HeadLimits {
  std::size_t max_bytes = 64 * 1024;  // all heads together, 1xx interim ones included
  std::size_t max_headers = 100;      // fields in one head
};

namespace http {

// Reads a response's heads from bytes handed to it, with no fd inside
// (sans-IO): interim 1xx heads are skipped (101 Switching Protocols is
// final), the size and field limits enforced. The fd driver HeadReader and
// the https path both run on it. It keeps no bytes: the caller holds the
// current head from its first byte and hands it again, with more after it,
// after need_more.
class BYTEPUMP_API HeadParser {
 public:
  struct Step {
    enum class Kind : std::uint8_t {
      need_more,  // the head is not complete: hand it again with more bytes
      interim,    // a 1xx head of `consumed` bytes was read: drop them, go on
      final,      // the final head is the first `consumed` bytes: see response()
      malformed,  // see parse_error()
      too_large,  // the heads together exceed max_bytes
    };
    Kind kind = Kind::need_more;
    std::size_t consumed = 0;
  };

  explicit HeadParser(HeadLimits limits = {}) noexcept;

  Step next(std::string_view head) noexcept;
  // The input ended after `head` (EOF): malformed if those bytes already are,
  // else need_more, which the caller reports as a truncated head. next()
  // only looks for the end of a head it has seen part of before; this makes
  // the answer independent of how the bytes arrived.
  Step finish(std::string_view head) noexcept;

  // False if the header array could not be allocated (next() then says
  // malformed, too_many_headers).
  bool ok() const noexcept { return headers_ != nullptr; }
  // The final head, once next() said final: views into the bytes it was handed.
  const Response& response() const noexcept { return response_; }
  const Header* headers() const noexcept { return headers_.get(); }
  std::size_t num_headers() const noexcept { return num_headers_; }
  ParseError parse_error() const noexcept { return response_.error; }
  // Bytes of all heads taken so far (interim heads and the final one).
  std::uint64_t consumed() const noexcept { return consumed_; }
  std::size_t interim_responses() const noexcept { return interim_; }
  const HeadLimits& limits() const noexcept { return limits_; }

 private:
  long parse(std::string_view head, std::size_t last_len) noexcept;

  HeadLimits limits_;
  std::unique_ptr<Header[]> headers_;
  std::size_t num_headers_ = 0;
  std::size_t last_len_ = 0;  // a rescan resumes looking for the end here
  Response response_;
  std::uint64_t consumed_ = 0;
  std::size_t interim_ = 0;
  bool finished_ = false;
};

}  // namespace http
}  // namespace bytepump

#endif  // BYTEPUMP_HTTP_HEAD_PARSER_HPP_
