#include "bytepump/body_pump.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using namespace std::chrono_literals;

http::Framing framing(http::Framing::Kind kind, std::uint64_t length = 0) {
  http::Framing f;
  f.kind = kind;
  f.length = length;
  return f;
}

struct Moved {
  Result result;
  BodyError body_error;
  std::size_t prefix_left;
  std::string out;
  std::string rest;  // what the source still held afterwards
};

// Writes `wire` into a `kind` source, closes it, and moves the body framed by
// `f` into a pipe.
Moved move(Kind kind, const std::string& wire, const http::Framing& f, Options options = {}) {
  FdPair src = stream_pair(kind, true);
  FdPair dst = pipe_pair(false);
  std::thread writer([&] {
    write_all(src.peer, wire);
    end_writing(src.peer);
  });
  auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
  options.upstream_timeout = options.downstream_timeout = 10s;
  BodyPump body(src.ours, dst.ours, f, options);
  pump_body(body, options);
  writer.join();
  ::close(dst.ours);
  dst.ours = -1;
  Moved m{body.result(), body.body_error(), body.prefix_left(), reader.get(), read_all(src.ours)};
  return m;
}

class HttpBodyKinds : public ::testing::TestWithParam<Kind> {};

TEST_P(HttpBodyKinds, ContentLengthBodyStopsAtItsEnd) {
  std::string body = pattern(200000, 3);
  auto m = move(GetParam(), body + "NEXT", framing(http::Framing::Kind::length, body.size()));
  ASSERT_EQ(m.result.status, Status::done) << to_string(m.result.status);
  EXPECT_EQ(m.body_error, BodyError::none);
  EXPECT_EQ(m.out, body);
  EXPECT_EQ(m.rest, "NEXT");
}

TEST_P(HttpBodyKinds, ContentLengthBodyEndingEarlyIsTruncatedWithEveryByteCounted) {
  std::string body = pattern(70000, 4);
  auto m = move(GetParam(), body, framing(http::Framing::Kind::length, body.size() + 10));
  EXPECT_EQ(m.result.status, Status::error);
  EXPECT_EQ(m.result.error, 0);
  EXPECT_EQ(m.result.error_side, Side::upstream);
  EXPECT_EQ(m.body_error, BodyError::truncated);
  EXPECT_EQ(m.result.bytes_written, body.size());
  EXPECT_EQ(m.out, body);
}

TEST_P(HttpBodyKinds, ChunkedAndCloseDelimitedBodies) {
  auto chunked =
      move(GetParam(), "5\r\nhello\r\n0\r\n\r\nNEXT", framing(http::Framing::Kind::chunked));
  EXPECT_EQ(chunked.result.status, Status::done);
  EXPECT_EQ(chunked.out, "hello");
  EXPECT_EQ(chunked.rest, "NEXT");
  auto cut = move(GetParam(), "5\r\nhel", framing(http::Framing::Kind::chunked));
  EXPECT_EQ(cut.body_error, BodyError::truncated)
      << to_string(cut.result.status) << cut.result.error << to_string(cut.result.error_side);
  EXPECT_EQ(cut.result.bytes_written, 3u);
  auto close = move(GetParam(), "until the end", framing(http::Framing::Kind::close));
  EXPECT_EQ(close.result.status, Status::done);
  EXPECT_EQ(close.out, "until the end");
}

INSTANTIATE_TEST_SUITE_P(Sources, HttpBodyKinds,
                         ::testing::Values(Kind::pipe, Kind::unix_socket, Kind::tcp_socket),
                         [](const auto& info) { return std::string(kind_name(info.param)); });

TEST(BodyPump, APrefixLongerThanTheBodyLeavesTheRestToTheCaller) {
  std::string prefix = "helloNEXT";
  Options options;
  options.prefix = prefix;
  auto m = move(Kind::pipe, "", framing(http::Framing::Kind::length, 5), options);
  EXPECT_EQ(m.result.status, Status::done);
  EXPECT_EQ(m.out, "hello");
  EXPECT_EQ(m.prefix_left, 4u);
}

TEST(BodyPump, NoBodyMovesNothingAndInvalidFramingIsRefused) {
  auto none = move(Kind::pipe, "stray", framing(http::Framing::Kind::none));
  EXPECT_EQ(none.result.status, Status::done);
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.rest, "stray");
  auto invalid = move(Kind::pipe, "stray", framing(http::Framing::Kind::invalid));
  EXPECT_EQ(invalid.result.status, Status::error);
  EXPECT_EQ(invalid.body_error, BodyError::malformed);
  EXPECT_EQ(invalid.rest, "stray");
}

}  // namespace
}  // namespace bytepump::test
