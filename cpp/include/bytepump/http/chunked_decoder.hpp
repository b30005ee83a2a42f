#ifndef BYTEPUMP_HTTP_CHUNKED_DECODER_HPP_
#define BYTEPUMP_HTTP_CHUNKED_DECODER_HPP_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bytepump/export.hpp"
#include "bytepump/http/parser.hpp"

namespace bytepump::http {

// A Transfer-Encoding: chunked decoder that works on bytes handed to it, with
// no fd inside (sans-IO): every path that decodes a chunked body (the splice
// driver ChunkedPump, the https and non-IO copying paths) runs the same
// framing, limits and errors. It keeps no bytes: the caller holds its input
// and hands it again, with more after it, when a step needs more.
class BYTEPUMP_API ChunkedDecoder {
 public:
  enum class Error : std::uint8_t {
    none,
    malformed,      // see parse_error()
    line_too_long,  // a chunk-size line or the trailer section over the limit
  };

  // What one call to next() found at the start of its input.
  struct Step {
    enum class Kind : std::uint8_t {
      need_more,  // the input ends inside a framing element: hand it again with more
      framing,    // `consumed` bytes of framing (size line, CRLF) were taken
      data,       // `data` is body: deliver it (it is the first `consumed` bytes)
      done,       // the last chunk and the trailer section were taken
      error,      // see error() and parse_error()
    };
    Kind kind = Kind::need_more;
    std::size_t consumed = 0;
    std::string_view data;
  };

  explicit ChunkedDecoder(std::size_t max_line = 16 * 1024) noexcept;

  // Decodes the element at the start of `in`: at most one framing element
  // or one run of chunk data.
  Step next(std::string_view in) noexcept;

  // Body bytes of the current chunk not yet decoded (0 outside chunk data).
  // A driver may move them around the decoder (splice) and then call
  // skip_data() with how many it moved.
  std::uint64_t data_left() const noexcept { return data_left_; }
  void skip_data(std::uint64_t n) noexcept;

  bool done() const noexcept { return state_ == State::done; }
  bool failed() const noexcept { return state_ == State::error; }
  Error error() const noexcept { return error_; }
  ParseError parse_error() const noexcept { return parse_error_; }
  std::uint64_t body_bytes() const noexcept { return body_; }
  std::uint64_t framing_bytes() const noexcept { return framing_; }
  std::uint64_t chunks() const noexcept { return chunks_; }

 private:
  enum class State : std::uint8_t { size_line, data, data_end, trailer, done, error };

  Step fail(Error why, ParseError parse = ParseError::none) noexcept;
  Step framing(std::size_t n) noexcept;
  Step incomplete(std::size_t have) noexcept;

  std::size_t max_line_;
  State state_ = State::size_line;
  std::uint64_t data_left_ = 0;
  std::uint64_t body_ = 0;
  std::uint64_t framing_ = 0;
  std::uint64_t chunks_ = 0;
  Error error_ = Error::none;
  ParseError parse_error_ = ParseError::none;
};

BYTEPUMP_API const char* to_string(ChunkedDecoder::Error error) noexcept;

}  // namespace bytepump::http

#endif  // BYTEPUMP_HTTP_CHUNKED_DECODER_HPP_
