#ifndef BYTEPUMP_FETCH_HPP_
#define BYTEPUMP_FETCH_HPP_

#include <cstdint>
#include <functional>
#include <string_view>

#include "bytepump/body_decoder.hpp"
#include "bytepump/head_parser.hpp"
#include "bytepump/head_scanner.hpp"
#include "bytepump/http_parser.hpp"
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

// One HTTP/1.x GET over an already connected stream socket, blocking (poll):
// writes `request` (the caller's request line, fields and empty line), reads
// the response head off the socket exactly (HeadScanner: interim heads
// skipped, limits kept), and if accept() says so moves the body into `dst`
// by its framing (HttpBody: spliced, a short body refused). Nothing after
// the body is read. The socket stays open, and the caller's.
BYTEPUMP_API FetchResult fetch(int sock, int dst, std::string_view request,
                               const FetchOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_FETCH_HPP_
