#ifndef BYTEPUMP_HTTP_BODY_DECODER_HPP_
#define BYTEPUMP_HTTP_BODY_DECODER_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "bytepump/export.hpp"
#include "bytepump/http/chunked_decoder.hpp"
#include "bytepump/http/parser.hpp"

namespace bytepump {

// Why a response body was refused, beyond what Result says.
enum class BodyError : std::uint8_t {
  none,
  truncated,      // the source ended before the body did (Content-Length or last chunk)
  malformed,      // the chunked framing is broken: see parse_error()
  line_too_long,  // a chunk-size or trailer section over the line limit
};

BYTEPUMP_API const char* to_string(BodyError error) noexcept;

namespace http {

// Frames a body from bytes handed to it, with no fd inside (sans-IO),
// whatever delimits it: Content-Length, chunked (through ChunkedDecoder), or
// the end of the input, optionally capped at a number of bytes (a plain copy
// of `length:` bytes). It counts the body bytes it hands out, optionally
// checksums them, and says when the input ended too soon. The copying paths
// (https, ends that are not IOs) run on it; the splice paths frame with the
// same rules through BodyPump and Pump.
class BYTEPUMP_API BodyDecoder {
 public:
  using Step = ChunkedDecoder::Step;

  // A response body delimited by `framing` (Framing::Kind::invalid is
  // refused by the first next() as malformed).
  explicit BodyDecoder(const Framing& framing, std::size_t max_line = 16 * 1024,
                       std::optional<std::uint32_t> crc32 = std::nullopt) noexcept;
  // Bytes until the input ends, at most `limit` of them: a short input is
  // not an error.
  static BodyDecoder until_end(std::optional<std::uint64_t> limit,
                               std::optional<std::uint32_t> crc32 = std::nullopt) noexcept;

  // Decodes the element at the start of `in` (see ChunkedDecoder::next):
  // data steps hand out body bytes, done means nothing more belongs to the
  // body, need_more that more input is wanted (an empty `in` asks for it).
  Step next(std::string_view in) noexcept;
  // The input ended after everything handed to next(): done if the body was
  // complete (or ends with its input), else error truncated.
  Step finish() noexcept;
  // How many bytes are worth reading next, at most `cap`: never past a
  // known end of the body, so a source is not read beyond it. 0 once done.
  std::size_t want(std::size_t cap) const noexcept;

  bool done() const noexcept { return state_ == State::done; }
  BodyError error() const noexcept { return error_; }
  ParseError parse_error() const noexcept { return chunked_.parse_error(); }
  // Body bytes handed out by data steps.
  std::uint64_t body_bytes() const noexcept { return body_; }
  // The Content-Length, when the framing has one.
  std::optional<std::uint64_t> expected() const noexcept;
  // CRC-32 of the body bytes handed out, when asked for.
  std::optional<std::uint32_t> crc32() const noexcept { return crc_; }

 private:
  enum class Mode : std::uint8_t { none, length, chunked, until_end, invalid };
  enum class State : std::uint8_t { running, done, error };

  BodyDecoder(Mode mode, std::optional<std::uint64_t> limit, std::size_t max_line,
              std::optional<std::uint32_t> crc32) noexcept;
  Step data(std::string_view in) noexcept;
  Step fail(BodyError why) noexcept;
  Step done_step() noexcept;

  Mode mode_;
  State state_ = State::running;
  std::optional<std::uint64_t> limit_;  // length: the Content-Length; until_end: the cap
  ChunkedDecoder chunked_;
  std::uint64_t body_ = 0;
  std::optional<std::uint32_t> crc_;
  BodyError error_ = BodyError::none;
};

}  // namespace http
}  // namespace bytepump

#endif  // BYTEPUMP_HTTP_BODY_DECODER_HPP_
