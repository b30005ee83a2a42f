#include "bytepump/fetch.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "bytepump/detail/drive.hpp"

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

Fetch::Fetch(int sock, int dst, std::string request, FetchOptions options) noexcept
    : sock_(sock), dst_(dst), request_(std::move(request)), options_(std::move(options)) {
  progress_.status = Status::running;
}

Fetch::~Fetch() { finish(); }

Step Fetch::end() noexcept {
  phase_ = Phase::ended;
  progress_.status = out_.outcome == FetchResult::Outcome::done ? Status::done : Status::error;
  return Step{};
}

Step Fetch::step() noexcept {
  switch (phase_) {
    case Phase::request:
      return send_request();
    case Phase::head:
      return scan_head();
    case Phase::body:
      return move_body();
    case Phase::ended:
      break;
  }
  return Step{};
}

Step Fetch::send_request() noexcept {
  while (sent_ < request_.size()) {
    ssize_t n = ::send(sock_, request_.data() + sent_, request_.size() - sent_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent_ += static_cast<std::size_t>(n);
      progress_.bytes_read += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Step{Step::Kind::wait, sock_, Interest::writable, Side::upstream};
    }
    out_.error = n < 0 ? errno : EIO;
    out_.body.status = Status::error;
    out_.body.error = out_.error;
    out_.body.error_side = Side::upstream;
    out_.outcome = FetchResult::Outcome::request_failed;
    return end();
  }
  phase_ = Phase::head;
  scanner_.emplace(sock_, options_.limits);
  return scan_head();
}

Step Fetch::scan_head() noexcept {
  Step step = scanner_->step();
  progress_.bytes_read = sent_ + scanner_->consumed();
  if (scanner_->status() == ScanStatus::running) return step;
  return head_ended();
}

// The scanner has ended (by itself or aborted): record the head, and start
// the body if it is one to move.
Step Fetch::head_ended() noexcept {
  ScanStatus status = scanner_->status();
  out_.head_status = status;
  out_.parse_error = scanner_->parse_error();
  out_.head_bytes = scanner_->consumed();
  if (status != ScanStatus::done) {
    out_.outcome = FetchResult::Outcome::head_failed;
    out_.error = scanner_->error();
    return end();
  }
  const http::Response& response = scanner_->response();
  out_.status_code = response.status;
  out_.framing = http::body_framing(response.status, scanner_->headers(), scanner_->num_headers());
  bool accepted = options_.accept ? options_.accept(response)
                                  : response.status >= 200 && response.status <= 299;
  if (!accepted) {
    out_.outcome = FetchResult::Outcome::refused;
    return end();
  }
  Options body_options = options_.transfer;
  body_options.length.reset();
  body_options.offset.reset();
  body_options.prefix = {};
  phase_ = Phase::body;
  body_.emplace(sock_, dst_, out_.framing, body_options);
  return move_body();
}

Step Fetch::move_body() noexcept {
  Step step = body_->step();
  const Result& r = body_->result();
  progress_.bytes_read = sent_ + out_.head_bytes + r.bytes_read;
  progress_.bytes_written = r.bytes_written;
  if (step.kind != Step::Kind::done) return step;
  return body_ended();
}

// The body has ended (by itself or aborted): record the outcome.
Step Fetch::body_ended() noexcept {
  body_->finish();
  out_.body = body_->result();
  out_.body_error = body_->body_error();
  if (out_.parse_error == http::ParseError::none) out_.parse_error = body_->parse_error();
  out_.outcome = out_.body.ok() ? FetchResult::Outcome::done : FetchResult::Outcome::body_failed;
  return end();
}

void Fetch::abort(Status why, int error) noexcept {
  switch (phase_) {
    case Phase::request:
      out_.error = error;
      out_.body.status = why;
      out_.body.error = error;
      out_.body.error_side = why == Status::timeout_upstream ? Side::upstream : Side::none;
      out_.outcome = FetchResult::Outcome::request_failed;
      end();
      break;
    case Phase::head:
      scanner_->abort(why == Status::timeout_upstream || why == Status::timeout_downstream
                          ? ScanStatus::timeout
                      : why == Status::error ? ScanStatus::error
                                             : ScanStatus::cancelled,
                      error);
      head_ended();
      break;
    case Phase::body:
      body_->abort(why, error);
      body_ended();
      break;
    case Phase::ended:
      break;
  }
}

void Fetch::finish() noexcept {
  if (phase_ != Phase::ended) abort(Status::cancelled);
  if (body_) body_->finish();
}

FetchResult fetch(int sock, int dst, std::string_view request, const FetchOptions& options) {
  Fetch machine(sock, dst, std::string(request), options);
  detail::run_to_end(machine, options.transfer);
  machine.finish();
  return machine.outcome();
}

}  // namespace bytepump
