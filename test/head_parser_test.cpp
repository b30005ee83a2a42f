#include "bytepump/http/head_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace bytepump::http {
namespace {

using Kind = HeadParser::Step::Kind;

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n";
const std::string kInterim = "HTTP/1.1 100 Continue\r\n\r\n";

// Hands `wire` to the parser one byte more each time, as a caller that reads
// byte by byte would; returns the last step and the bytes left after it.
HeadParser::Step feed(HeadParser& parser, const std::string& wire, std::string& rest) {
  std::string held;
  HeadParser::Step step;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    held += wire[i];
    step = parser.next(held);
    if (step.kind == Kind::interim) {
      held.erase(0, step.consumed);
      continue;
    }
    if (step.kind != Kind::need_more) {
      rest = held.substr(step.kind == Kind::final ? step.consumed : 0) + wire.substr(i + 1);
      return step;
    }
  }
  rest = held;
  return step;
}

TEST(HeadParser, FinalHeadWithFieldsAtEverySplit) {
  HeadParser whole;
  const std::string wire = kHead + "hello";  // the fields are views into it
  auto step = whole.next(wire);
  ASSERT_EQ(step.kind, Kind::final);
  EXPECT_EQ(step.consumed, kHead.size());
  EXPECT_EQ(whole.response().status, 200);
  ASSERT_EQ(whole.num_headers(), 2u);
  EXPECT_EQ(whole.headers()[1].name, "X-A");
  HeadParser bytewise;
  std::string rest;
  EXPECT_EQ(feed(bytewise, wire, rest).kind, Kind::final);
  EXPECT_EQ(rest, "hello");
  EXPECT_EQ(bytewise.consumed(), kHead.size());
}

TEST(HeadParser, SkipsInterimHeadsButNot101) {
  HeadParser parser;
  std::string rest;
  auto step = feed(parser, kInterim + kInterim + kHead + "body", rest);
  EXPECT_EQ(step.kind, Kind::final);
  EXPECT_EQ(parser.interim_responses(), 2u);
  EXPECT_EQ(parser.consumed(), 2 * kInterim.size() + kHead.size());
  EXPECT_EQ(rest, "body");
  HeadParser upgrade;
  EXPECT_EQ(upgrade.next("HTTP/1.1 101 Switching Protocols\r\n\r\n").kind, Kind::final);
}

TEST(HeadParser, A1xxHeadInHttp10IsMalformed) {
  // HTTP/1.0 has no 1xx; llhttp ends the message there, so bytepump refuses
  // rather than read a body after it (found by the llhttp differential).
  for (const char* wire : {"HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody",
                           "HTTP/1.0 101 Switching Protocols\r\n\r\n", "HTTP/1.0 103\r\n\r\n"}) {
    HeadParser parser;
    std::string rest;
    EXPECT_EQ(feed(parser, wire, rest).kind, Kind::malformed) << wire;
    EXPECT_EQ(parser.parse_error(), ParseError::interim_in_http10) << wire;
  }
  HeadParser http10;
  EXPECT_EQ(http10.next("HTTP/1.0 200 OK\r\n\r\n").kind, Kind::final);
}

TEST(HeadParser, SizeLimitCoversInterimHeads) {
  HeadParser parser(HeadLimits{2 * 25 + 20, 10});
  std::string rest;
  EXPECT_EQ(feed(parser, kInterim + kInterim + kHead, rest).kind, Kind::too_large);
  HeadParser exact(HeadLimits{kHead.size(), 10});
  EXPECT_EQ(exact.next(kHead).kind, Kind::final);
  HeadParser one_short(HeadLimits{kHead.size() - 1, 10});
  EXPECT_EQ(one_short.next(kHead).kind, Kind::too_large);
}

TEST(HeadParser, MalformedAndTooManyFields) {
  HeadParser bad;
  EXPECT_EQ(bad.next("HTTP/2 200 OK\r\n\r\n").kind, Kind::malformed);
  EXPECT_EQ(bad.parse_error(), ParseError::bad_version);
  EXPECT_EQ(bad.next(kHead).kind, Kind::malformed);  // it stays ended
  HeadParser few(HeadLimits{1024, 1});
  EXPECT_EQ(few.next(kHead).kind, Kind::malformed);
  EXPECT_EQ(few.parse_error(), ParseError::too_many_headers);
}

// next() only looks for the end of a head it has seen part of; finish() at EOF
// makes the answer the same however the bytes came.
TEST(HeadParser, AtEofMalformedBytesAreMalformedWhateverTheSplit) {
  std::string wire = "HTTP/1.1 200 OK\r\nX: y\r\n\rZ";
  HeadParser whole;
  EXPECT_EQ(whole.next(wire).kind, Kind::malformed);
  HeadParser split;
  EXPECT_EQ(split.next(wire.substr(0, wire.size() - 1)).kind, Kind::need_more);
  EXPECT_EQ(split.next(wire).kind, Kind::need_more);
  EXPECT_EQ(split.finish(wire).kind, Kind::malformed);
  EXPECT_EQ(split.parse_error(), ParseError::bad_line_ending);
  HeadParser cut;
  EXPECT_EQ(cut.next("HTTP/1.1 200 OK\r\nX:").kind, Kind::need_more);
  EXPECT_EQ(cut.finish("HTTP/1.1 200 OK\r\nX:").kind, Kind::need_more);  // truncated, not malformed
}

}  // namespace
}  // namespace bytepump::http
