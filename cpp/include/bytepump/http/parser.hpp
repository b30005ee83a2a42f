#ifndef BYTEPUMP_HTTP_PARSER_HPP_
#define BYTEPUMP_HTTP_PARSER_HPP_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bytepump/export.hpp"

// An HTTP/1.x response parser in the shape of picohttpparser: pure functions
// over a caller's buffer, no allocation, no hidden state. Each returns the
// bytes consumed, kIncomplete (-2) when the buffer ends first, or kMalformed
// (-1) with the reason in an out parameter. Outputs are views into the buffer.
namespace bytepump::http {

constexpr long kMalformed = -1;
constexpr long kIncomplete = -2;

enum class ParseError : std::uint8_t {
  none,
  bad_status_line,    // not "HTTP/1.x NNN [reason]"
  bad_version,        // an HTTP version other than 1.0 / 1.1
  bad_status_code,    // not three digits, or below 100
  bad_reason,         // a control character in the reason phrase
  bad_line_ending,    // a CR not followed by LF
  bad_header_name,    // an empty name, a non-token character, or space before ':'
  bad_header_value,   // a control character in a field value
  fold_at_start,      // a continuation line with no field before it
  too_many_headers,   // more fields than the caller's array holds
  bad_chunk_size,     // not hex digits, or too large
  bad_chunk_ext,      // a control character in a chunk extension
  bad_chunk_end,      // chunk data not followed by CRLF
  interim_in_http10,  // a 1xx head labelled HTTP/1.0, which has no 1xx (RFC 9110 section 15.2)
};

BYTEPUMP_API const char* to_string(ParseError error) noexcept;

// A field line. An obsolete folded continuation line (starting with SP or
// HTAB) is returned as its own entry with an empty name: callers fold it into
// the previous value, joined by one space.
struct Header {
  std::string_view name;
  std::string_view value;
};

struct Response {
  int minor_version = -1;  // HTTP/1.minor
  int status = 0;
  std::string_view reason;  // empty when the status line has none
  ParseError error = ParseError::none;
};

// Parses a response head (status line, fields, empty line). `num_headers`
// holds the capacity of `headers` on entry and the count on return.
// `last_len` is the length of a previous incomplete attempt over the same
// buffer: it lets a rescan skip straight to checking for the end of the head.
BYTEPUMP_API long parse_response(const char* buf, std::size_t len, Response& response,
                                 Header* headers, std::size_t& num_headers,
                                 std::size_t last_len = 0) noexcept;

// Parses field lines up to and including the empty line (a chunked trailer).
BYTEPUMP_API long parse_headers(const char* buf, std::size_t len, Header* headers,
                                std::size_t& num_headers, ParseError& error) noexcept;

// Parses a chunk-size line: hex size, optional extensions, CRLF (chunked
// framing takes no bare LF).
BYTEPUMP_API long parse_chunk_size(const char* buf, std::size_t len, std::uint64_t& size,
                                   ParseError& error) noexcept;

// Parses the CRLF that must follow chunk data.
BYTEPUMP_API long parse_chunk_end(const char* buf, std::size_t len, ParseError& error) noexcept;

// How a response body is delimited (RFC 9112 section 6.3, for a GET).
struct Framing {
  enum class Kind : std::uint8_t {
    none,     // 1xx, 204, 304: no body
    length,   // Content-Length bytes
    chunked,  // Transfer-Encoding: chunked
    close,    // until the server closes the connection
    invalid,  // see `error`
  };
  Kind kind = Kind::invalid;
  std::uint64_t length = 0;
  const char* error = nullptr;  // why the framing is invalid
};

BYTEPUMP_API Framing body_framing(int status, const Header* headers,
                                  std::size_t num_headers) noexcept;

// Case-insensitive ASCII comparison, for field names.
BYTEPUMP_API bool equals_ignore_case(std::string_view a, std::string_view b) noexcept;

}  // namespace bytepump::http

#endif  // BYTEPUMP_HTTP_PARSER_HPP_
