#ifndef BYTEPUMP_BODY_PUMP_HPP_
#define BYTEPUMP_BODY_PUMP_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "bytepump/chunked_pump.hpp"
#include "bytepump/export.hpp"
#include "bytepump/http/body_decoder.hpp"
#include "bytepump/http/parser.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// Moves one HTTP response body from src into dst by its framing, spliced:
// exactly Content-Length bytes (a source that ends first is
// BodyError::truncated), a chunked body through ChunkedPump, everything
// until EOF for a close-delimited one, nothing for a body-less response.
// The same rules as http::BodyDecoder, over fds. An fd driver like Pump:
// step(), and a failed body ends with status error, error 0, and
// body_error() saying why.
class BYTEPUMP_API BodyPump {
 public:
  // `options` are those of Pump (length and offset are set from the
  // framing); options.prefix holds bytes already read off src (decoded
  // first; prefix_left() says how many followed the body).
  BodyPump(int src_fd, int dst_fd, const http::Framing& framing, const Options& options = {},
           std::size_t max_line = 16 * 1024) noexcept;
  BodyPump(const BodyPump&) = delete;
  BodyPump& operator=(const BodyPump&) = delete;

  Step step() noexcept;
  void abort(Status why, int error = 0) noexcept;
  // Ends the transfer: a finished body's fds are restored, a running one
  // is cancelled.
  void finish() noexcept;
  // See Pump::detach().
  void detach() noexcept;

  const Result& result() const noexcept { return result_; }
  BodyError body_error() const noexcept { return body_error_; }
  http::ParseError parse_error() const noexcept;
  std::size_t prefix_left() const noexcept;
  const http::Framing& framing() const noexcept { return framing_; }

 private:
  static Options pump_options(const http::Framing& framing, Options options) noexcept;
  void settle() noexcept;

  http::Framing framing_;
  std::optional<Pump> pump_;
  std::optional<ChunkedPump> chunked_;
  Result result_;
  BodyError body_error_ = BodyError::none;
  std::size_t prefix_beyond_ = 0;  // prefix bytes past a Content-Length body
};

// Runs an BodyPump to the end, waiting with poll(); honours the stall
// timeouts, canceller and progress callback of `options`.
BYTEPUMP_API void pump_body(BodyPump& body, const DriveOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_BODY_PUMP_HPP_
