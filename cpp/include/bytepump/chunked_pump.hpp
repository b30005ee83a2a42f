#ifndef BYTEPUMP_CHUNKED_PUMP_HPP_
#define BYTEPUMP_CHUNKED_PUMP_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "bytepump/detail/peek.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/http/body_decoder.hpp"
#include "bytepump/http/chunked_decoder.hpp"
#include "bytepump/http/parser.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// Decodes a Transfer-Encoding: chunked body from src into dst: an fd driver
// over http::ChunkedDecoder. Each framing element is peeked and consumed
// exactly (see detail::Peeker), and each chunk's data is spliced by a Pump
// around the decoder, so it never enters user space; extensions and trailers
// are consumed and dropped.
// Nothing after the final empty line is read. Result counts body bytes only;
// status is error with error 0 when body_error() says why.
class BYTEPUMP_API ChunkedPump {
 public:
  // `options` apply to each chunk's Pump: pipe_size, step_budget, crc32
  // (which then covers the whole body). options.prefix holds bytes a caller
  // already read off src (a read-ahead buffer): they are decoded before any
  // from src and must outlive the body. length and offset are ignored.
  ChunkedPump(int src_fd, int dst_fd, const Options& options = {},
              std::size_t max_line = 16 * 1024) noexcept;
  ~ChunkedPump();
  ChunkedPump(const ChunkedPump&) = delete;
  ChunkedPump& operator=(const ChunkedPump&) = delete;

  Step step() noexcept;
  void abort(Status why, int error = 0) noexcept;
  // See Pump::detach().
  void detach() noexcept;

  const Result& result() const noexcept { return result_; }
  BodyError body_error() const noexcept { return body_error_; }
  http::ParseError parse_error() const noexcept { return parse_error_; }
  std::uint64_t chunks() const noexcept { return decoder_.chunks(); }
  // Chunk-size lines, CRLFs and trailers consumed.
  std::uint64_t framing_bytes() const noexcept { return decoder_.framing_bytes(); }
  // Bytes of options.prefix not decoded (they followed the body).
  std::size_t prefix_left() const noexcept { return prefix_.size() - prefix_off_; }

 private:
  Step refuse(BodyError why, http::ParseError parse = http::ParseError::none) noexcept;
  Step fail(Status status, int error, Side side) noexcept;
  void end() noexcept;
  // Peeks into line_ after the bytes already held; nullopt when it has some.
  std::optional<Step> fill(ssize_t& n) noexcept;
  bool take(std::size_t n) noexcept;

  int src_;
  int dst_;
  Options chunk_options_;
  std::size_t max_line_;
  detail::Peeker peeker_;
  std::string_view prefix_;
  std::size_t prefix_off_ = 0;
  bool filled_from_prefix_ = false;  // where the bytes of the last fill() came from
  std::size_t chunk_prefix_ = 0;     // prefix bytes handed to the running chunk
  std::unique_ptr<char[]> line_;
  std::size_t have_ = 0;
  http::ChunkedDecoder decoder_;
  std::optional<Pump> chunk_;
  std::uint64_t chunk_size_ = 0;
  std::uint64_t base_read_ = 0;
  std::uint64_t base_written_ = 0;
  Result result_;
  BodyError body_error_ = BodyError::none;
  http::ParseError parse_error_ = http::ParseError::none;
  detail::NonblockingFd src_nb_;
  detail::NonblockingFd dst_nb_;
  bool detached_ = false;
};

// Runs a ChunkedPump to the end, waiting with poll(); honours the stall
// timeouts, canceller and progress callback of `options`.
BYTEPUMP_API void pump_chunked(ChunkedPump& body, const DriveOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_CHUNKED_PUMP_HPP_
