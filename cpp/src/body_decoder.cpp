#include "bytepump/http/body_decoder.hpp"

#include <zlib.h>

#include <algorithm>

namespace bytepump {

const char* to_string(BodyError error) noexcept {
  switch (error) {
    case BodyError::none:
      return "none";
    case BodyError::truncated:
      return "truncated";
    case BodyError::malformed:
      return "malformed";
    case BodyError::line_too_long:
      return "line_too_long";
  }
  return "unknown";
}

namespace http {

namespace {

std::optional<std::uint64_t> framing_limit(const Framing& framing) {
  if (framing.kind == Framing::Kind::length) return framing.length;
  return std::nullopt;
}

}  // namespace

BodyDecoder::BodyDecoder(Mode mode, std::optional<std::uint64_t> limit, std::size_t max_line,
                         std::optional<std::uint32_t> crc32) noexcept
    : mode_(mode), limit_(limit), chunked_(max_line), crc_(crc32) {}

BodyDecoder::BodyDecoder(const Framing& framing, std::size_t max_line,
                         std::optional<std::uint32_t> crc32) noexcept
    : BodyDecoder(framing.kind == Framing::Kind::none      ? Mode::none
                  : framing.kind == Framing::Kind::length  ? Mode::length
                  : framing.kind == Framing::Kind::chunked ? Mode::chunked
                  : framing.kind == Framing::Kind::close   ? Mode::until_end
                                                           : Mode::invalid,
                  framing_limit(framing), max_line, crc32) {}

BodyDecoder BodyDecoder::until_end(std::optional<std::uint64_t> limit,
                                   std::optional<std::uint32_t> crc32) noexcept {
  return BodyDecoder(Mode::until_end, limit, 16 * 1024, crc32);
}

std::optional<std::uint64_t> BodyDecoder::expected() const noexcept {
  return mode_ == Mode::length ? limit_ : std::nullopt;
}

BodyDecoder::Step BodyDecoder::fail(BodyError why) noexcept {
  state_ = State::error;
  error_ = why;
  return Step{Step::Kind::error, 0, {}};
}

BodyDecoder::Step BodyDecoder::done_step() noexcept {
  state_ = State::done;
  return Step{Step::Kind::done, 0, {}};
}

// Hands out as much of `in` as the body still takes.
BodyDecoder::Step BodyDecoder::data(std::string_view in) noexcept {
  std::size_t n = in.size();
  if (limit_) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, *limit_ - body_));
  body_ += n;
  if (crc_) {
    // zlib takes uInt lengths: feed it in pieces that fit.
    for (std::size_t off = 0; off < n;) {
      std::size_t piece = std::min<std::size_t>(n - off, 1u << 30);
      crc_ = static_cast<std::uint32_t>(::crc32(
          *crc_, reinterpret_cast<const Bytef*>(in.data() + off), static_cast<uInt>(piece)));
      off += piece;
    }
  }
  return Step{Step::Kind::data, n, in.substr(0, n)};
}

BodyDecoder::Step BodyDecoder::next(std::string_view in) noexcept {
  if (state_ == State::done) return Step{Step::Kind::done, 0, {}};
  if (state_ == State::error) return Step{Step::Kind::error, 0, {}};
  switch (mode_) {
    case Mode::invalid:
      return fail(BodyError::malformed);
    case Mode::none:
      return done_step();
    case Mode::length:
    case Mode::until_end:
      if (limit_ && body_ == *limit_) return done_step();
      if (in.empty()) return Step{Step::Kind::need_more, 0, {}};
      return data(in);
    case Mode::chunked:
      break;
  }
  Step step = chunked_.next(in);
  switch (step.kind) {
    case Step::Kind::data: {
      Step out = data(step.data);
      return out;
    }
    case Step::Kind::done:
      state_ = State::done;
      return step;
    case Step::Kind::error:
      state_ = State::error;
      error_ = chunked_.error() == ChunkedDecoder::Error::line_too_long ? BodyError::line_too_long
                                                                        : BodyError::malformed;
      return step;
    default:
      return step;
  }
}

BodyDecoder::Step BodyDecoder::finish() noexcept {
  if (state_ == State::error) return Step{Step::Kind::error, 0, {}};
  if (state_ == State::done) return Step{Step::Kind::done, 0, {}};
  switch (mode_) {
    case Mode::invalid:
      return fail(BodyError::malformed);
    case Mode::none:
    case Mode::until_end:
      return done_step();
    case Mode::length:
      return body_ == *limit_ ? done_step() : fail(BodyError::truncated);
    case Mode::chunked:
      break;
  }
  return fail(BodyError::truncated);
}

std::size_t BodyDecoder::want(std::size_t cap) const noexcept {
  if (state_ != State::running || mode_ == Mode::none || mode_ == Mode::invalid) return 0;
  if (limit_) return static_cast<std::size_t>(std::min<std::uint64_t>(cap, *limit_ - body_));
  return cap;
}

}  // namespace http
}  // namespace bytepump
