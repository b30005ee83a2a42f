#ifndef BYTEPUMP_FETCH_HPP_
#define BYTEPUMP_FETCH_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bytepump/body_pump.hpp"
#include "bytepump/head_reader.hpp"
#include "bytepump/http/body_decoder.hpp"
#include "bytepump/http/head_parser.hpp"
#include "bytepump/http/parser.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

struct FetchOptions {
  // For the whole exchange: upstream_timeout (the server's stalls, request
  // and head included), downstream_timeout, canceller; for the body:
  // progress, crc32, pipe_size, step_budget. length, offset and prefix are
  // not used.
  Options transfer;
  HeadLimits limits;
  // Whether to move the body of this final response; by default only a
  // 2xx one. A refused response's body is left unread on the socket.
  std::function<bool(const http::Response&)> accept;
};

struct FetchResult {
  enum class Outcome : std::uint8_t {
    done,            // the body was moved whole (see body)
    request_failed,  // writing the request failed or stalled: error / body.status
    head_failed,     // see head_status and parse_error
    refused,         // accept() said no: status_code says what came
    body_failed,     // see body (status, error_side) and body_error
  };
  Outcome outcome = Outcome::request_failed;
  int status_code = 0;  // of the final response, once its head was read
  ScanStatus head_status = ScanStatus::running;
  http::ParseError parse_error = http::ParseError::none;
  http::Framing framing;
  std::uint64_t head_bytes = 0;  // consumed off the socket, interim heads included
  Result body;                   // counts of the body alone
  BodyError body_error = BodyError::none;
  int error = 0;  // errno of a failed request write
};

BYTEPUMP_API const char* to_string(FetchResult::Outcome outcome) noexcept;

// One HTTP/1.x GET over an already connected stream socket, as a step
// machine: writes `request` (the caller's request line, fields and empty
// line), reads the response head off the socket exactly (HeadReader:
// interim heads skipped, limits kept), and if accept() says so moves the
// body into `dst` by its framing (BodyPump: spliced, a short body refused).
// Nothing after the body is read. The socket stays open, and the caller's.
// step() says what it waits for, as Pump::step does; the fetch has ended
// when it returns done: see outcome().
class BYTEPUMP_API Fetch {
 public:
  Fetch(int sock, int dst, std::string request, FetchOptions options = {}) noexcept;
  ~Fetch();
  Fetch(const Fetch&) = delete;
  Fetch& operator=(const Fetch&) = delete;

  Step step() noexcept;
  // Ends a running fetch with `why` (a stall timeout, cancelled, or error
  // with the driver's errno), in whichever phase it is.
  void abort(Status why, int error = 0) noexcept;
  void finish() noexcept;

  const FetchResult& outcome() const noexcept { return out_; }
  // Progress counts for a driver's StallClock and progress callback:
  // bytes_read counts the request sent and everything read off the socket,
  // bytes_written the body delivered.
  const Result& result() const noexcept { return progress_; }

 private:
  enum class Phase : std::uint8_t { request, head, body, ended };

  Step send_request() noexcept;
  Step scan_head() noexcept;
  Step head_ended() noexcept;
  Step move_body() noexcept;
  Step body_ended() noexcept;
  Step end() noexcept;

  int sock_;
  int dst_;
  std::string request_;
  std::size_t sent_ = 0;
  FetchOptions options_;
  Phase phase_ = Phase::request;
  std::optional<HeadReader> scanner_;
  std::optional<BodyPump> body_;
  FetchResult out_;
  Result progress_;
};

// Runs one Fetch to the end, blocking (poll), with the stall timeouts,
// canceller and progress callback of options.transfer.
BYTEPUMP_API FetchResult fetch(int sock, int dst, std::string_view request,
                               const FetchOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_FETCH_HPP_
