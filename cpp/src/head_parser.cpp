#include "bytepump/http/head_parser.hpp"

#include <new>

namespace bytepump::http {

HeadParser::HeadParser(HeadLimits limits) noexcept
    : limits_(limits),
      headers_(new (std::nothrow) Header[limits.max_headers ? limits.max_headers : 1]) {}

HeadParser::Step HeadParser::next(std::string_view head) noexcept {
  Step s;
  if (finished_ || !headers_) {
    if (!headers_) response_.error = ParseError::too_many_headers;
    s.kind = Step::Kind::malformed;
    return s;
  }
  // Only what is left under the limit may belong to heads.
  std::uint64_t room = limits_.max_bytes > consumed_ ? limits_.max_bytes - consumed_ : 0;
  std::size_t len = head.size() < room ? head.size() : static_cast<std::size_t>(room);
  if (last_len_ > len) last_len_ = 0;
  // At the limit, a full parse: malformed bytes say so before the size does.
  long r = parse(head.substr(0, len), len >= room ? 0 : last_len_);
  if (r == kMalformed) {
    finished_ = true;
    s.kind = Step::Kind::malformed;
    return s;
  }
  if (r == kIncomplete) {
    last_len_ = len;
    if (len >= room) {
      finished_ = true;
      s.kind = Step::Kind::too_large;
    }
    return s;
  }
  bool informational = response_.status >= 100 && response_.status < 200;
  if (informational && response_.minor_version == 0) {
    // HTTP/1.0 has no 1xx: whatever follows it can't be framed with any
    // confidence (llhttp takes the connection as ended there).
    response_.error = ParseError::interim_in_http10;
    finished_ = true;
    s.kind = Step::Kind::malformed;
    return s;
  }
  s.consumed = static_cast<std::size_t>(r);
  consumed_ += s.consumed;
  last_len_ = 0;
  if (informational && response_.status != 101) {
    ++interim_;
    s.kind = Step::Kind::interim;
  } else {
    finished_ = true;
    s.kind = Step::Kind::final;
  }
  return s;
}

HeadParser::Step HeadParser::finish(std::string_view head) noexcept {
  if (!finished_) last_len_ = 0;
  Step s = next(head);
  if (s.kind == Step::Kind::need_more) finished_ = true;
  return s;
}

long HeadParser::parse(std::string_view head, std::size_t last_len) noexcept {
  num_headers_ = limits_.max_headers;
  return parse_response(head.data(), head.size(), response_, headers_.get(), num_headers_,
                        last_len);
}

}  // namespace bytepump::http
