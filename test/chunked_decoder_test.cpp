#include "bytepump/http/chunked_decoder.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace bytepump::http {
namespace {

using Kind = ChunkedDecoder::Step::Kind;

struct Outcome {
  bool done = false;
  ChunkedDecoder::Error error = ChunkedDecoder::Error::none;
  ParseError parse_error = ParseError::none;
  std::string body;
  std::string rest;  // input after the body, never consumed
};

// Feeds `wire` in pieces cut at `cuts`, as a caller with its own buffer does.
Outcome decode(const std::string& wire, const std::vector<std::size_t>& cuts = {},
               std::size_t max_line = 16 * 1024) {
  ChunkedDecoder decoder(max_line);
  Outcome out;
  std::string held;
  std::size_t fed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  for (std::size_t end : ends) {
    held += wire.substr(fed, end - fed);
    fed = end;
    for (;;) {
      auto s = decoder.next(held);
      if (s.kind == Kind::data) out.body += std::string(s.data);
      held.erase(0, s.consumed);
      if (s.kind == Kind::need_more) break;
      if (s.kind == Kind::done || s.kind == Kind::error) {
        out.done = s.kind == Kind::done;
        out.error = decoder.error();
        out.parse_error = decoder.parse_error();
        out.rest = held + wire.substr(fed);
        return out;
      }
    }
  }
  out.rest = held;
  return out;
}

TEST(ChunkedDecoder, DecodesChunksExtensionsAndTrailers) {
  auto d = decode("5;a=b\r\nhello\r\n7\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.body, "hello, world");
  EXPECT_EQ(d.rest, "NEXT");
}

TEST(ChunkedDecoder, CountsBodyFramingAndChunks) {
  ChunkedDecoder decoder;
  std::string wire = "3\r\nabc\r\n0\r\n\r\n";
  std::string_view in = wire;
  while (!decoder.done()) in.remove_prefix(decoder.next(in).consumed);
  EXPECT_EQ(decoder.body_bytes(), 3u);
  EXPECT_EQ(decoder.framing_bytes(), wire.size() - 3);
  EXPECT_EQ(decoder.chunks(), 1u);
}

// The decoded body must not depend on where the input was split.
TEST(ChunkedDecoder, EverySplitDecodesTheSame) {
  std::string wire = "a;ext=\"v\"\r\n0123456789\r\n1\r\nx\r\n0\r\nT: v\r\n\r\n";
  for (std::size_t a = 0; a <= wire.size(); ++a) {
    for (std::size_t b = a; b <= wire.size(); b += 3) {
      auto d = decode(wire, {a, b});
      ASSERT_TRUE(d.done) << a << " " << b;
      EXPECT_EQ(d.body, "0123456789x") << a << " " << b;
      EXPECT_EQ(d.rest, "") << a << " " << b;
    }
  }
  std::mt19937 rng(7);
  std::string big;
  std::string body;
  for (int i = 1; i < 200; ++i) {
    std::string chunk(static_cast<std::size_t>(i * 7), static_cast<char>('a' + i % 26));
    char size[32];
    std::snprintf(size, sizeof size, "%x", static_cast<unsigned>(chunk.size()));
    big += std::string(size) + "\r\n" + chunk + "\r\n";
    body += chunk;
  }
  big += "0\r\n\r\n";
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < big.size(); at += 1 + rng() % 97) cuts.push_back(at);
    auto d = decode(big, cuts);
    ASSERT_TRUE(d.done);
    EXPECT_EQ(d.body, body);
  }
}

TEST(ChunkedDecoder, ChunkFramingIsCRLFOnly) {
  auto short_chunk = decode("6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n");
  EXPECT_EQ(short_chunk.error, ChunkedDecoder::Error::malformed);
  EXPECT_EQ(short_chunk.parse_error, ParseError::bad_chunk_end);
  EXPECT_EQ(short_chunk.body, "world\r");
  EXPECT_EQ(decode("3\nabc\r\n0\r\n\r\n").parse_error, ParseError::bad_line_ending);
  EXPECT_EQ(decode("3\r\nabc\n0\r\n\r\n").parse_error, ParseError::bad_chunk_end);
  EXPECT_EQ(decode("3\r\nabc\r\n0\r\nT: 1\n\r\n").parse_error, ParseError::bad_line_ending);
  EXPECT_EQ(decode("3\r\nabc\r\n0\r\n\n").parse_error, ParseError::bad_line_ending);
}

TEST(ChunkedDecoder, MalformedFramingSaysWhy) {
  EXPECT_EQ(decode("zz\r\n").parse_error, ParseError::bad_chunk_size);
  EXPECT_EQ(decode("3\r\nabcX").parse_error, ParseError::bad_chunk_end);
  EXPECT_EQ(decode("0\r\nBad Trailer: x\r\n\r\n").parse_error, ParseError::bad_header_name);
  EXPECT_EQ(decode("5;\x01\r\n").parse_error, ParseError::bad_chunk_ext);
}

TEST(ChunkedDecoder, CutInputNeedsMoreAndIsNotDone) {
  for (const char* wire : {"3\r\nab", "3\r\nabc\r\n", "3\r\nabc\r\n0\r\n", "3\r\nabc\r"}) {
    auto d = decode(wire);
    EXPECT_FALSE(d.done) << wire;
    EXPECT_EQ(d.error, ChunkedDecoder::Error::none) << wire;
  }
}

TEST(ChunkedDecoder, LinesOverTheLimitAreRefused) {
  auto size_line = decode("5;" + std::string(100, 'x'), {}, 64);
  EXPECT_EQ(size_line.error, ChunkedDecoder::Error::line_too_long);
  auto trailer = decode("0\r\nX: " + std::string(100, 'x'), {}, 64);
  EXPECT_EQ(trailer.error, ChunkedDecoder::Error::line_too_long);
  EXPECT_TRUE(decode("5;" + std::string(50, 'x') + "\r\nhello\r\n0\r\n\r\n", {}, 64).done);
  // Found by the fuzzer: handed whole, a complete line over the limit parsed.
  std::string long_line = "5;" + std::string(100, 'x') + "\r\nhello\r\n0\r\n\r\n";
  EXPECT_EQ(decode(long_line, {}, 64).error, ChunkedDecoder::Error::line_too_long);
  EXPECT_EQ(decode(long_line, {10, 70}, 64).error, ChunkedDecoder::Error::line_too_long);
}

TEST(ChunkedDecoder, DataMovedAroundTheDecoderIsSkipped) {
  ChunkedDecoder decoder;
  EXPECT_EQ(decoder.next("4\r\n").kind, Kind::framing);
  EXPECT_EQ(decoder.data_left(), 4u);
  decoder.skip_data(4);  // a driver spliced them
  EXPECT_EQ(decoder.data_left(), 0u);
  EXPECT_EQ(decoder.next("\r\n").kind, Kind::framing);
  EXPECT_EQ(decoder.next("0\r\n").kind, Kind::framing);
  EXPECT_EQ(decoder.next("\r\n").kind, Kind::done);
  EXPECT_EQ(decoder.body_bytes(), 4u);
}

}  // namespace
}  // namespace bytepump::http
