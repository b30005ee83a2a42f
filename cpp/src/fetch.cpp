#include "bytepump/fetch.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "bytepump/http_body.hpp"
#include "bytepump/sigpipe.hpp"

namespace bytepump {

const char* to_string(FetchResult::Outcome outcome) noexcept {
  switch (outcome) {
    case FetchResult::Outcome::done:
      return "done";
    case FetchResult::Outcome::request_failed:
      return "request_failed";
    case FetchResult::Outcome::head_failed:
      return "head_failed";
    case FetchResult::Outcome::refused:
      return "refused";
    case FetchResult::Outcome::body_failed:
      return "body_failed";
  }
  return "unknown";
}

namespace {

// Writes all of `request`, waiting with poll for at most the upstream stall
// timeout between bytes; Status::done, or why it stopped (errno in `error`).
Status send_request(int sock, std::string_view request, const Options& options, int& error) {
  StallClock clock(options.upstream_timeout, std::nullopt);
  Result progress;
  while (!request.empty()) {
    if (options.canceller && options.canceller->cancelled()) return Status::cancelled;
    ssize_t n = ::send(sock, request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      request.remove_prefix(static_cast<std::size_t>(n));
      progress.bytes_read += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      error = errno;
      return Status::error;
    }
    auto left = clock.remaining(progress, Side::upstream);
    if (left && left->count() <= 0) return Status::timeout_upstream;
    pollfd fds[2] = {{sock, POLLOUT, 0}, {-1, POLLIN, 0}};
    if (options.canceller) fds[1].fd = options.canceller->fd();
    timespec ts;
    if (left) {
      ts.tv_sec = static_cast<time_t>(left->count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left->count() % 1000000000);
    }
    if (::ppoll(fds, 2, left ? &ts : nullptr, nullptr) < 0 && errno != EINTR) {
      error = errno;
      return Status::error;
    }
  }
  return Status::done;
}

}  // namespace

FetchResult fetch(int sock, int dst, std::string_view request, const FetchOptions& options) {
  SigpipeGuard sigpipe;
  FetchResult out;
  const Options& transfer = options.transfer;
  out.body.status = send_request(sock, request, transfer, out.error);
  if (out.body.status != Status::done) {
    out.body.error = out.error;
    out.body.error_side = Side::upstream;
    return out;
  }
  out.body.status = Status::running;

  HeadScanner scanner(sock, options.limits);
  ScanOptions scan;
  scan.limits = options.limits;
  scan.timeout = transfer.upstream_timeout;
  scan.canceller = transfer.canceller;
  skip_headers(scanner, scan);
  out.head_status = scanner.status();
  out.parse_error = scanner.parse_error();
  out.head_bytes = scanner.consumed();
  if (scanner.status() != ScanStatus::done) {
    out.outcome = FetchResult::Outcome::head_failed;
    out.error = scanner.error();
    return out;
  }
  const http::Response& response = scanner.response();
  out.status_code = response.status;
  out.framing = http::body_framing(response.status, scanner.headers(), scanner.num_headers());
  bool accepted =
      options.accept ? options.accept(response) : response.status >= 200 && response.status <= 299;
  if (!accepted) {
    out.outcome = FetchResult::Outcome::refused;
    return out;
  }

  Options body_options = transfer;
  body_options.length.reset();
  body_options.offset.reset();
  body_options.prefix = {};
  HttpBody body(sock, dst, out.framing, body_options);
  pump_body(body, body_options);
  out.body = body.result();
  out.body_error = body.body_error();
  if (out.parse_error == http::ParseError::none) out.parse_error = body.parse_error();
  out.outcome = out.body.ok() ? FetchResult::Outcome::done : FetchResult::Outcome::body_failed;
  return out;
}

}  // namespace bytepump
