#ifndef BYTEPUMP_HEAD_READER_HPP_
#define BYTEPUMP_HEAD_READER_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "bytepump/canceller.hpp"
#include "bytepump/detail/peek.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/http/head_parser.hpp"
#include "bytepump/http/parser.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// Why a head scan ended.
enum class ScanStatus : std::uint8_t {
  running,
  done,       // a final (non-1xx) head was consumed, and nothing after it
  malformed,  // see HeadReader::parse_error()
  too_large,  // the heads exceeded the size limit
  eof,        // the fd ended before the end of the head
  timeout,    // no bytes for the stall timeout
  cancelled,
  error,  // a syscall failed; see HeadReader::error()
};

BYTEPUMP_API const char* to_string(ScanStatus status) noexcept;

// Reads an HTTP/1.x response head off an fd and not one byte of the body
// (see detail::Peeker): an fd driver over http::HeadParser, which skips
// interim 1xx heads (101 Switching Protocols is final, as it ends HTTP on the
// connection) and enforces the limits. A step machine like Pump: step()
// until Step::Kind::done.
class BYTEPUMP_API HeadReader {
 public:
  explicit HeadReader(int fd, HeadLimits limits = {}) noexcept;
  ~HeadReader();
  HeadReader(const HeadReader&) = delete;
  HeadReader& operator=(const HeadReader&) = delete;

  Step step() noexcept;
  void abort(ScanStatus why, int error = 0) noexcept;
  // Takes bytes a caller already read off the fd (a read-ahead buffer) as the
  // start of the head, before step() reads more. Returns how many it used:
  // the rest came after the head, and stay the caller's.
  std::size_t absorb(const char* data, std::size_t len) noexcept;

  ScanStatus status() const noexcept { return status_; }
  int error() const noexcept { return error_; }
  http::ParseError parse_error() const noexcept { return parser_.parse_error(); }
  // The final head (valid once status() is done): views into head().
  const http::Response& response() const noexcept { return parser_.response(); }
  const http::Header* headers() const noexcept { return parser_.headers(); }
  std::size_t num_headers() const noexcept { return parser_.num_headers(); }
  std::string_view head() const noexcept { return {buf_.get(), head_len_}; }
  // Bytes consumed from the fd, interim heads included.
  std::uint64_t consumed() const noexcept { return consumed_; }
  std::size_t interim_responses() const noexcept { return parser_.interim_responses(); }
  // Progress counts for a driver's StallClock (bytes_read = consumed()).
  const Result& result() const noexcept { return progress_; }

 private:
  void end(ScanStatus why, int error = 0) noexcept;
  // Parses the n bytes just placed after the held ones; returns how many of
  // them belong to heads (the rest must not be consumed).
  std::size_t accept(std::size_t n) noexcept;

  int fd_;
  HeadLimits limits_;
  detail::Peeker peeker_;
  std::unique_ptr<char[]> buf_;
  std::size_t have_ = 0;  // bytes of the current head consumed into buf_
  std::size_t head_len_ = 0;
  http::HeadParser parser_;
  std::uint64_t consumed_ = 0;
  ScanStatus status_ = ScanStatus::running;
  int error_ = 0;
  detail::NonblockingFd nb_;
  Result progress_;
};

struct ScanOptions {
  HeadLimits limits;
  std::optional<std::chrono::nanoseconds> timeout;  // stall timeout
  const Canceller* canceller = nullptr;
};

// Runs a HeadReader to the end, waiting with poll(). The scanner's state is
// the result.
BYTEPUMP_API void skip_headers(HeadReader& scanner, const ScanOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_HEAD_READER_HPP_
