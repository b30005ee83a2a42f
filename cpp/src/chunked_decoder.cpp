#include "bytepump/http/chunked_decoder.hpp"

#include <algorithm>

namespace bytepump::http {
namespace {

constexpr std::size_t kMaxTrailers = 64;

}  // namespace

const char* to_string(ChunkedDecoder::Error error) noexcept {
  switch (error) {
    case ChunkedDecoder::Error::none:
      return "none";
    case ChunkedDecoder::Error::malformed:
      return "malformed";
    case ChunkedDecoder::Error::line_too_long:
      return "line_too_long";
  }
  return "unknown";
}

ChunkedDecoder::ChunkedDecoder(std::size_t max_line) noexcept
    : max_line_(max_line ? max_line : 1) {}

ChunkedDecoder::Step ChunkedDecoder::fail(Error why, ParseError parse) noexcept {
  state_ = State::error;
  error_ = why;
  parse_error_ = parse;
  Step s;
  s.kind = Step::Kind::error;
  return s;
}

ChunkedDecoder::Step ChunkedDecoder::framing(std::size_t n) noexcept {
  framing_ += n;
  Step s;
  s.kind = state_ == State::done ? Step::Kind::done : Step::Kind::framing;
  s.consumed = n;
  return s;
}

// The element is not complete in `have` bytes: fine below the line limit.
ChunkedDecoder::Step ChunkedDecoder::incomplete(std::size_t have) noexcept {
  if (have >= max_line_) return fail(Error::line_too_long);
  return Step{};
}

void ChunkedDecoder::skip_data(std::uint64_t n) noexcept {
  if (state_ != State::data) return;
  n = std::min(n, data_left_);
  data_left_ -= n;
  body_ += n;
  if (data_left_ == 0) state_ = State::data_end;
}

ChunkedDecoder::Step ChunkedDecoder::next(std::string_view all) noexcept {
  // A framing element is parsed within the line limit only, so a long line
  // is refused however the bytes arrive (whole, it would otherwise parse).
  std::string_view in = state_ == State::data ? all : all.substr(0, max_line_);
  ParseError error = ParseError::none;
  long r = 0;
  switch (state_) {
    case State::done: {
      Step s;
      s.kind = Step::Kind::done;
      return s;
    }
    case State::error: {
      Step s;
      s.kind = Step::Kind::error;
      return s;
    }
    case State::data: {
      if (in.empty()) return Step{};
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), data_left_));
      skip_data(n);
      Step s;
      s.kind = Step::Kind::data;
      s.consumed = n;
      s.data = in.substr(0, n);
      return s;
    }
    case State::size_line: {
      std::uint64_t size = 0;
      r = parse_chunk_size(in.data(), in.size(), size, error);
      if (r == kIncomplete) return incomplete(in.size());
      if (r == kMalformed) return fail(Error::malformed, error);
      if (size == 0) {
        state_ = State::trailer;
      } else {
        ++chunks_;
        data_left_ = size;
        state_ = State::data;
      }
      return framing(static_cast<std::size_t>(r));
    }
    case State::data_end:
      r = parse_chunk_end(in.data(), in.size(), error);
      if (r == kIncomplete) return Step{};
      if (r == kMalformed) return fail(Error::malformed, error);
      state_ = State::size_line;
      return framing(static_cast<std::size_t>(r));
    case State::trailer: {
      Header trailers[kMaxTrailers];
      std::size_t count = kMaxTrailers;
      r = parse_headers(in.data(), in.size(), trailers, count, error);
      if (r == kIncomplete) return incomplete(in.size());
      if (r == kMalformed) return fail(Error::malformed, error);
      state_ = State::done;
      return framing(static_cast<std::size_t>(r));
    }
  }
  return Step{};
}

}  // namespace bytepump::http
