#include "bytepump/http/parser.hpp"

namespace bytepump::http {
namespace {

constexpr int kMaxChunkSizeDigits = 16;  // 64 bits of hex

// RFC 9110 tchar.
bool is_token(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return c != 0 &&
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// VCHAR, SP, HTAB or obs-text: what a field value or reason phrase may hold.
bool is_text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// A cursor over [p, end): every read checks the bound first.
struct Cursor {
  const char* p;
  const char* end;
  bool at_end() const { return p == end; }
  unsigned char peek() const { return static_cast<unsigned char>(*p); }
};

// Consumes exactly CRLF, as chunked framing needs: a bare LF accepted after
// chunk data would let a chunk one byte short shift the framing and corrupt
// the body. 1 on success, 0 incomplete, -1 otherwise.
int crlf(Cursor& c) {
  if (c.at_end()) return 0;
  if (c.peek() != '\r') return -1;
  ++c.p;
  if (c.at_end()) return 0;
  if (c.peek() != '\n') return -1;
  ++c.p;
  return 1;
}

// Consumes CRLF or LF (a head's line end). 1 on success, 0 incomplete, -1
// for a lone CR or any other byte.
int line_end(Cursor& c) {
  if (!c.at_end() && c.peek() == '\n') {
    ++c.p;
    return 1;
  }
  return crlf(c);
}

// A token of one or more tchars: 1, 0 at the end of input, -1 if empty.
int token(Cursor& c) {
  const char* start = c.p;
  while (!c.at_end() && is_token(c.peek())) ++c.p;
  if (c.at_end()) return 0;
  return c.p == start ? -1 : 1;
}

// One chunk extension after its ';': name [ "=" value ]. 1 when the cursor
// is left at the byte after it, 0 incomplete, -1 malformed.
int chunk_ext(Cursor& c) {
  int r = token(c);
  if (r <= 0) return r;
  if (c.peek() != '=') return 1;
  ++c.p;
  if (c.at_end()) return 0;
  if (c.peek() != '"') return token(c);
  ++c.p;
  for (;;) {
    if (c.at_end()) return 0;
    unsigned char ch = c.peek();
    ++c.p;
    if (ch == '"') return c.at_end() ? 0 : 1;
    // qdtext: HTAB, SP, VCHAR except '"' and '\\', obs-text.
    if (ch == '\\' || !is_text(ch)) return -1;
  }
}

// Advances over text bytes; stops at CR, LF or the end. False on a control
// character.
bool skip_text(Cursor& c) {
  while (!c.at_end()) {
    unsigned char ch = c.peek();
    if (ch == '\r' || ch == '\n') return true;
    if (!is_text(ch)) return false;
    ++c.p;
  }
  return true;
}

std::string_view trim_trailing_ows(const char* from, const char* to) {
  while (to > from && is_ows(static_cast<unsigned char>(to[-1]))) --to;
  return {from, static_cast<std::size_t>(to - from)};
}

long malformed(ParseError& out, ParseError why) {
  out = why;
  return kMalformed;
}

// Parses field lines until the empty line. Returns 1 done, 0 incomplete,
// -1 malformed (with `error` set). A head's lines may end in a bare LF (RFC
// 9112 lets a recipient accept it); `crlf_only` takes none (trailers).
int fields(Cursor& c, Header* headers, std::size_t capacity, std::size_t& count, ParseError& error,
           bool crlf_only = false) {
  auto end_of_line = crlf_only ? crlf : line_end;
  count = 0;
  for (;;) {
    if (c.at_end()) return 0;
    unsigned char first = c.peek();
    if (first == '\r' || first == '\n') {
      int r = end_of_line(c);
      if (r < 0) error = ParseError::bad_line_ending;
      return r;
    }
    if (count == capacity) {
      error = ParseError::too_many_headers;
      return -1;
    }
    Header& h = headers[count];
    if (is_ows(first)) {
      if (count == 0) {
        error = ParseError::fold_at_start;
        return -1;
      }
      while (!c.at_end() && is_ows(c.peek())) ++c.p;
      h.name = {};
    } else {
      const char* name = c.p;
      while (!c.at_end() && is_token(c.peek())) ++c.p;
      if (c.at_end()) return 0;
      if (c.p == name || c.peek() != ':') {
        error = ParseError::bad_header_name;
        return -1;
      }
      h.name = {name, static_cast<std::size_t>(c.p - name)};
      ++c.p;
      while (!c.at_end() && is_ows(c.peek())) ++c.p;
    }
    const char* value = c.p;
    if (!skip_text(c)) {
      error = ParseError::bad_header_value;
      return -1;
    }
    if (c.at_end()) return 0;
    h.value = trim_trailing_ows(value, c.p);
    int r = end_of_line(c);
    if (r <= 0) {
      if (r < 0) error = ParseError::bad_line_ending;
      return r;
    }
    ++count;
  }
}

// True if the buffer holds an empty line (the end of a head) at or after
// `from`: a cheap check before a full rescan.
bool has_head_end(const char* buf, std::size_t len, std::size_t from) {
  for (std::size_t i = from; i < len; ++i) {
    if (buf[i] != '\n') continue;
    if (i + 1 < len && buf[i + 1] == '\n') return true;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return true;
  }
  return false;
}

}  // namespace

const char* to_string(ParseError error) noexcept {
  switch (error) {
    case ParseError::none:
      return "no error";
    case ParseError::bad_status_line:
      return "malformed status line";
    case ParseError::bad_version:
      return "unsupported HTTP version";
    case ParseError::bad_status_code:
      return "malformed status code";
    case ParseError::bad_reason:
      return "control character in reason phrase";
    case ParseError::bad_line_ending:
      return "CR not followed by LF";
    case ParseError::bad_header_name:
      return "malformed header name";
    case ParseError::bad_header_value:
      return "control character in header value";
    case ParseError::fold_at_start:
      return "continuation line before any header";
    case ParseError::too_many_headers:
      return "too many headers";
    case ParseError::bad_chunk_size:
      return "malformed chunk size";
    case ParseError::bad_chunk_ext:
      return "malformed chunk extension";
    case ParseError::bad_chunk_end:
      return "chunk data not followed by CRLF";
    case ParseError::interim_in_http10:
      return "1xx response labelled HTTP/1.0";
  }
  return "unknown error";
}

long parse_response(const char* buf, std::size_t len, Response& response, Header* headers,
                    std::size_t& num_headers, std::size_t last_len) noexcept {
  std::size_t capacity = num_headers;
  num_headers = 0;
  response = Response{};
  // An earlier attempt got this far without errors: only a new end of head
  // can change the answer.
  if (last_len != 0 && !has_head_end(buf, len, last_len < 3 ? 0 : last_len - 3)) {
    return kIncomplete;
  }
  Cursor c{buf, buf + len};
  static constexpr std::string_view kPrefix = "HTTP/1.";
  for (char expected : kPrefix) {
    if (c.at_end()) return kIncomplete;
    if (c.peek() != static_cast<unsigned char>(expected)) {
      // "HTTP/2" and the like are versions; anything else is not HTTP.
      bool version = c.p - buf >= 5;
      return malformed(response.error,
                       version ? ParseError::bad_version : ParseError::bad_status_line);
    }
    ++c.p;
  }
  if (c.at_end()) return kIncomplete;
  if (c.peek() != '0' && c.peek() != '1') return malformed(response.error, ParseError::bad_version);
  response.minor_version = c.peek() - '0';
  ++c.p;
  if (c.at_end()) return kIncomplete;
  if (c.peek() != ' ') return malformed(response.error, ParseError::bad_version);
  ++c.p;
  int status = 0;
  for (int i = 0; i < 3; ++i) {
    if (c.at_end()) return kIncomplete;
    unsigned char d = c.peek();
    if (d < '0' || d > '9') return malformed(response.error, ParseError::bad_status_code);
    status = status * 10 + (d - '0');
    ++c.p;
  }
  if (status < 100) return malformed(response.error, ParseError::bad_status_code);
  response.status = status;
  if (c.at_end()) return kIncomplete;
  if (c.peek() == ' ') {
    ++c.p;
    const char* reason = c.p;
    if (!skip_text(c)) return malformed(response.error, ParseError::bad_reason);
    if (c.at_end()) return kIncomplete;
    response.reason = trim_trailing_ows(reason, c.p);
  } else if (c.peek() != '\r' && c.peek() != '\n') {
    return malformed(response.error, ParseError::bad_status_code);
  }
  int r = line_end(c);
  if (r == 0) return kIncomplete;
  if (r < 0) return malformed(response.error, ParseError::bad_line_ending);
  r = fields(c, headers, capacity, num_headers, response.error);
  if (r == 0) return kIncomplete;
  if (r < 0) return kMalformed;
  return static_cast<long>(c.p - buf);
}

long parse_headers(const char* buf, std::size_t len, Header* headers, std::size_t& num_headers,
                   ParseError& error) noexcept {
  std::size_t capacity = num_headers;
  error = ParseError::none;
  Cursor c{buf, buf + len};
  int r = fields(c, headers, capacity, num_headers, error, true);
  if (r == 0) return kIncomplete;
  if (r < 0) return kMalformed;
  return static_cast<long>(c.p - buf);
}

long parse_chunk_size(const char* buf, std::size_t len, std::uint64_t& size,
                      ParseError& error) noexcept {
  error = ParseError::none;
  Cursor c{buf, buf + len};
  std::uint64_t value = 0;
  int digits = 0;
  while (!c.at_end()) {
    int v = hex_value(c.peek());
    if (v < 0) break;
    if (++digits > kMaxChunkSizeDigits) return malformed(error, ParseError::bad_chunk_size);
    value = value << 4 | static_cast<std::uint64_t>(v);
    ++c.p;
  }
  if (c.at_end()) return kIncomplete;
  if (digits == 0) return malformed(error, ParseError::bad_chunk_size);
  if (c.peek() == '\n') return malformed(error, ParseError::bad_line_ending);
  if (c.peek() != ';' && c.peek() != '\r') return malformed(error, ParseError::bad_chunk_size);
  // Extensions are checked and dropped: *( ";" token [ "=" ( token /
  // quoted-string ) ] ), without the optional blanks RFC 9112 allows around
  // them and without quoted-pairs, as strict parsers (llhttp) refuse both.
  while (c.peek() == ';') {
    ++c.p;
    int r = chunk_ext(c);
    if (r == 0) return kIncomplete;
    if (r < 0) return malformed(error, ParseError::bad_chunk_ext);
  }
  if (c.peek() != '\r') return malformed(error, ParseError::bad_chunk_ext);
  int r = crlf(c);
  if (r == 0) return kIncomplete;
  if (r < 0) return malformed(error, ParseError::bad_line_ending);
  size = value;
  return static_cast<long>(c.p - buf);
}

long parse_chunk_end(const char* buf, std::size_t len, ParseError& error) noexcept {
  error = ParseError::none;
  Cursor c{buf, buf + len};
  int r = crlf(c);
  if (r == 0) return kIncomplete;
  if (r < 0) return malformed(error, ParseError::bad_chunk_end);
  return static_cast<long>(c.p - buf);
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x |= 0x20;
    if (y >= 'A' && y <= 'Z') y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

namespace {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_ows(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Framing invalid(const char* why) {
  Framing f;
  f.error = why;
  return f;
}

}  // namespace

Framing body_framing(int status, const Header* headers, std::size_t num_headers) noexcept {
  Framing f;
  if ((status >= 100 && status < 200) || status == 204 || status == 304) {
    f.kind = Framing::Kind::none;
    return f;
  }
  bool have_length = false;
  bool chunked = false;
  bool have_coding = false;
  const Header* last_named = nullptr;
  for (std::size_t i = 0; i < num_headers; ++i) {
    const Header& h = headers[i];
    if (h.name.empty()) {
      // A folded continuation of a framing field is too ambiguous to trust.
      if (last_named && (equals_ignore_case(last_named->name, "content-length") ||
                         equals_ignore_case(last_named->name, "transfer-encoding"))) {
        return invalid("folded framing header");
      }
      continue;
    }
    last_named = &h;
    if (equals_ignore_case(h.name, "content-length")) {
      if (have_length) return invalid("duplicate Content-Length");
      have_length = true;
      std::string_view v = trim_ows(h.value);
      if (v.empty() || v.size() > 19) return invalid("invalid Content-Length");
      std::uint64_t n = 0;
      for (char ch : v) {
        if (ch < '0' || ch > '9') return invalid("invalid Content-Length");
        n = n * 10 + static_cast<std::uint64_t>(ch - '0');
      }
      f.length = n;
    } else if (equals_ignore_case(h.name, "transfer-encoding")) {
      std::string_view rest = h.value;
      while (!rest.empty()) {
        std::size_t comma = rest.find(',');
        std::string_view coding = trim_ows(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (coding.empty()) continue;
        // Only chunked can be undone without decompressing, and it must be last.
        if (!equals_ignore_case(coding, "chunked")) return invalid("unsupported Transfer-Encoding");
        if (chunked) return invalid("chunked applied twice");
        chunked = true;
        have_coding = true;
      }
    }
  }
  if (have_coding) {
    // Transfer-Encoding overrides Content-Length, but a server sending both
    // is either broken or smuggling: refuse it.
    if (have_length) return invalid("both Transfer-Encoding and Content-Length");
    f.kind = Framing::Kind::chunked;
    return f;
  }
  f.kind = have_length ? Framing::Kind::length : Framing::Kind::close;
  return f;
}

}  // namespace bytepump::http
