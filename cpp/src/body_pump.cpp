#include "bytepump/body_pump.hpp"

#include "bytepump/detail/drive.hpp"

namespace bytepump {

Options BodyPump::pump_options(const http::Framing& framing, Options options) noexcept {
  options.offset.reset();
  options.length.reset();
  if (framing.kind == http::Framing::Kind::length) options.length = framing.length;
  if (framing.kind == http::Framing::Kind::none) options.length = 0;
  return options;
}

BodyPump::BodyPump(int src_fd, int dst_fd, const http::Framing& framing, const Options& options,
                   std::size_t max_line) noexcept
    : framing_(framing) {
  switch (framing.kind) {
    case http::Framing::Kind::chunked:
      chunked_.emplace(src_fd, dst_fd, options, max_line);
      result_ = chunked_->result();
      break;
    case http::Framing::Kind::invalid:
      result_.status = Status::error;
      result_.error_side = Side::upstream;
      body_error_ = BodyError::malformed;
      break;
    default: {
      Options o = pump_options(framing, options);
      if (o.length && o.prefix.size() > *o.length) {
        prefix_beyond_ = o.prefix.size() - static_cast<std::size_t>(*o.length);
      }
      pump_.emplace(src_fd, dst_fd, o);
      result_ = pump_->result();
      break;
    }
  }
}

// Takes the machine's result, and refuses a Content-Length body whose
// source ended before it did.
void BodyPump::settle() noexcept {
  if (chunked_) {
    result_ = chunked_->result();
    body_error_ = chunked_->body_error();
    return;
  }
  if (!pump_) return;
  result_ = pump_->result();
  if (framing_.kind == http::Framing::Kind::length && result_.status == Status::done &&
      result_.bytes_written < framing_.length) {
    result_.status = Status::error;
    result_.error = 0;
    result_.error_side = Side::upstream;
    body_error_ = BodyError::truncated;
  }
}

Step BodyPump::step() noexcept {
  Step step;
  if (chunked_) {
    step = chunked_->step();
  } else if (pump_) {
    step = pump_->step();
  }
  settle();
  return step;
}

void BodyPump::abort(Status why, int error) noexcept {
  if (chunked_) chunked_->abort(why, error);
  if (pump_) pump_->abort(why, error);
  settle();
}

void BodyPump::finish() noexcept {
  if (chunked_) chunked_->abort(Status::cancelled);
  if (pump_) pump_->finish();
  settle();
}

void BodyPump::detach() noexcept {
  if (chunked_) chunked_->detach();
  if (pump_) pump_->detach();
  settle();
}

http::ParseError BodyPump::parse_error() const noexcept {
  return chunked_ ? chunked_->parse_error() : http::ParseError::none;
}

std::size_t BodyPump::prefix_left() const noexcept {
  return chunked_ ? chunked_->prefix_left() : prefix_beyond_;
}

void pump_body(BodyPump& body, const DriveOptions& options) {
  detail::run_to_end(body, options);
  body.finish();
}

}  // namespace bytepump
