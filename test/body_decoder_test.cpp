#include "bytepump/http/body_decoder.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace bytepump::http {
namespace {

using Kind = BodyDecoder::Step::Kind;

Framing framing(Framing::Kind kind, std::uint64_t length = 0) {
  Framing f;
  f.kind = kind;
  f.length = length;
  return f;
}

struct Decoded {
  std::string body;
  Kind end = Kind::need_more;  // the last step: done or error
  std::size_t left = 0;        // input bytes not taken
};

// Hands `wire` to the decoder in pieces of `piece` bytes, the way a reader
// that fills a buffer does, then says the input ended.
Decoded decode(BodyDecoder& decoder, const std::string& wire, std::size_t piece) {
  Decoded d;
  std::string held;
  std::size_t off = 0;
  for (;;) {
    BodyDecoder::Step step = decoder.next(held);
    if (step.kind == Kind::data) d.body.append(step.data);
    if (step.kind == Kind::data || step.kind == Kind::framing) {
      held.erase(0, step.consumed);
      continue;
    }
    if (step.kind == Kind::done || step.kind == Kind::error) {
      held.erase(0, step.consumed);
      d.end = step.kind;
      break;
    }
    if (off == wire.size()) {
      d.end = decoder.finish().kind;
      break;
    }
    held += wire.substr(off, piece);
    off = std::min(wire.size(), off + piece);
  }
  d.left = held.size() + (wire.size() - off);
  return d;
}

std::uint32_t zlib_crc(const std::string& s) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

TEST(BodyDecoder, ContentLengthTakesExactlyThatManyBytesAtEverySplit) {
  const std::string wire = "hello worldNEXT";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    BodyDecoder decoder(framing(Framing::Kind::length, 11), 16 * 1024, 0);
    auto d = decode(decoder, wire, piece);
    EXPECT_EQ(d.end, Kind::done) << piece;
    EXPECT_EQ(d.body, "hello world") << piece;
    EXPECT_EQ(d.left, 4u) << piece;
    EXPECT_EQ(decoder.body_bytes(), 11u);
    EXPECT_EQ(decoder.crc32(), zlib_crc("hello world"));
    EXPECT_EQ(decoder.want(100), 0u);
  }
}

TEST(BodyDecoder, ContentLengthEndingEarlyIsTruncated) {
  BodyDecoder decoder(framing(Framing::Kind::length, 11));
  EXPECT_EQ(decoder.want(64), 11u);
  auto d = decode(decoder, "hello", 2);
  EXPECT_EQ(d.end, Kind::error);
  EXPECT_EQ(decoder.error(), BodyError::truncated);
  EXPECT_EQ(decoder.body_bytes(), 5u);
  EXPECT_EQ(decoder.expected(), 11u);
}

TEST(BodyDecoder, ChunkedDecodesThroughTheChunkedDecoder) {
  const std::string wire = "5\r\nhello\r\n6;a=b\r\n world\r\n0\r\nT: 1\r\n\r\nNEXT";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    BodyDecoder decoder(framing(Framing::Kind::chunked), 16 * 1024, 0);
    auto d = decode(decoder, wire, piece);
    EXPECT_EQ(d.end, Kind::done) << piece;
    EXPECT_EQ(d.body, "hello world") << piece;
    EXPECT_EQ(d.left, 4u) << piece;
    EXPECT_EQ(decoder.crc32(), zlib_crc("hello world"));
  }
}

TEST(BodyDecoder, ChunkedErrorsAreNamed) {
  BodyDecoder cut(framing(Framing::Kind::chunked));
  EXPECT_EQ(decode(cut, "5\r\nhel", 3).end, Kind::error);
  EXPECT_EQ(cut.error(), BodyError::truncated);
  EXPECT_EQ(cut.body_bytes(), 3u);

  BodyDecoder bare_lf(framing(Framing::Kind::chunked));
  EXPECT_EQ(decode(bare_lf, "6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n", 64).end, Kind::error);
  EXPECT_EQ(bare_lf.error(), BodyError::malformed);
  EXPECT_NE(bare_lf.parse_error(), ParseError::none);

  BodyDecoder long_line(framing(Framing::Kind::chunked), 8);
  EXPECT_EQ(decode(long_line, "5;aaaaaaaaaaaaa=b\r\nhello\r\n0\r\n\r\n", 4).end, Kind::error);
  EXPECT_EQ(long_line.error(), BodyError::line_too_long);
}

TEST(BodyDecoder, CloseDelimitedTakesEverythingUntilTheEnd) {
  BodyDecoder decoder(framing(Framing::Kind::close));
  auto d = decode(decoder, "all of it", 4);
  EXPECT_EQ(d.end, Kind::done);
  EXPECT_EQ(d.body, "all of it");
  EXPECT_FALSE(decoder.expected());
  EXPECT_EQ(decoder.want(4096), 0u);  // done: nothing more is read
}

TEST(BodyDecoder, NoBodyAndInvalidFraming) {
  BodyDecoder none(framing(Framing::Kind::none));
  auto d = decode(none, "stray", 5);
  EXPECT_EQ(d.end, Kind::done);
  EXPECT_EQ(d.left, 5u);
  EXPECT_EQ(none.want(10), 0u);

  BodyDecoder invalid(framing(Framing::Kind::invalid));
  EXPECT_EQ(invalid.next("x").kind, Kind::error);
  EXPECT_EQ(invalid.error(), BodyError::malformed);
}

TEST(BodyDecoder, UntilEndWithALimitStopsThereAndAShortInputIsFine) {
  BodyDecoder capped = BodyDecoder::until_end(4);
  EXPECT_EQ(capped.want(64 * 1024), 4u);
  auto d = decode(capped, "abcdefgh", 3);
  EXPECT_EQ(d.end, Kind::done);
  EXPECT_EQ(d.body, "abcd");
  EXPECT_EQ(d.left, 4u);

  BodyDecoder short_input = BodyDecoder::until_end(100);
  auto s = decode(short_input, "abc", 2);
  EXPECT_EQ(s.end, Kind::done);
  EXPECT_EQ(s.body, "abc");
  EXPECT_EQ(short_input.error(), BodyError::none);

  BodyDecoder zero = BodyDecoder::until_end(0);
  EXPECT_EQ(zero.next("abc").kind, Kind::done);
}

TEST(BodyDecoder, CrcGoesOnFromASeed) {
  BodyDecoder decoder = BodyDecoder::until_end(std::nullopt, zlib_crc("hello "));
  decode(decoder, "world", 2);
  EXPECT_EQ(decoder.crc32(), zlib_crc("hello world"));
  BodyDecoder without = BodyDecoder::until_end(std::nullopt);
  EXPECT_FALSE(without.crc32());
}

}  // namespace
}  // namespace bytepump::http
