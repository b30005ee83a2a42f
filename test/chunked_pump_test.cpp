#include "bytepump/chunked_pump.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using namespace std::chrono_literals;

std::string encode(const std::string& body, std::size_t chunk, const std::string& ext = "") {
  std::string out;
  char size[32];
  for (std::size_t off = 0; off < body.size(); off += chunk) {
    std::size_t n = std::min(chunk, body.size() - off);
    std::snprintf(size, sizeof size, "%zx", n);
    out += size + ext + "\r\n" + body.substr(off, n) + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::uint32_t zlib_crc(const std::string& s) {
  return static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

struct Decoded {
  Result result;
  BodyError body_error;
  http::ParseError parse_error;
  std::string out;
  std::string rest;  // what the source still held afterwards
};

// Feeds `wire` from a thread (in pieces of `piece` bytes) into a `kind`
// source and decodes it into a pipe.
Decoded decode(Kind kind, const std::string& wire, std::size_t piece = 0, Options options = {},
               bool close_after = true) {
  FdPair src = stream_pair(kind, true);
  FdPair dst = pipe_pair(false);
  std::thread writer([&] {
    if (piece == 0) {
      write_all(src.peer, wire);
    } else {
      for (std::size_t off = 0; off < wire.size(); off += piece) {
        write_all(src.peer, wire.substr(off, piece));
        std::this_thread::sleep_for(20us);
      }
    }
    if (close_after) end_writing(src.peer);
  });
  auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
  ChunkedPump body(src.ours, dst.ours, options);
  pump_chunked(body, options);
  writer.join();
  ::close(dst.ours);
  dst.ours = -1;
  Decoded d{body.result(), body.body_error(), body.parse_error(), reader.get(), {}};
  if (close_after) d.rest = read_all(src.ours);
  return d;
}

class ChunkedKinds : public ::testing::TestWithParam<Kind> {};

TEST_P(ChunkedKinds, DecodesExactlyAndLeavesWhatFollows) {
  std::string body = pattern(300000, 7);
  Options options;
  options.crc32 = 0;
  auto d = decode(GetParam(), encode(body, 65536, ";name=val") + "NEXT", 0, options);
  ASSERT_EQ(d.result.status, Status::done) << to_string(d.result.status) << d.result.error;
  EXPECT_EQ(d.out, body);
  EXPECT_EQ(d.result.bytes_written, body.size());
  EXPECT_EQ(d.result.crc32, zlib_crc(body));
  EXPECT_EQ(d.rest, "NEXT");
}

INSTANTIATE_TEST_SUITE_P(StreamKinds, ChunkedKinds,
                         ::testing::Values(Kind::pipe, Kind::unix_socket, Kind::tcp_socket),
                         [](const auto& info) { return kind_name(info.param); });

// Each chunk's Pump moves the file position; the framing reads must follow it.
TEST(ChunkedPump, DecodesFromARegularFileAndLeavesItsPositionAfterTheBody) {
  for (std::size_t chunk : {5u, 3u, 65536u}) {
    std::string body = chunk == 65536 ? pattern(200000, 9) : std::string("helloabc");
    int src = temp_file(encode(body, chunk, ";x=y") + "NEXT");
    FdPair dst = pipe_pair(false);
    auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
    Options options;
    options.crc32 = 0;
    ChunkedPump decoder(src, dst.ours, options);
    pump_chunked(decoder, options);
    ::close(dst.ours);
    dst.ours = -1;
    ASSERT_EQ(decoder.result().status, Status::done)
        << chunk << " " << http::to_string(decoder.parse_error());
    EXPECT_EQ(reader.get(), body);
    EXPECT_EQ(decoder.result().bytes_written, body.size());
    EXPECT_EQ(decoder.result().crc32, zlib_crc(body));
    char rest[8] = {};
    EXPECT_EQ(::read(src, rest, sizeof rest), 4);
    EXPECT_STREQ(rest, "NEXT");
    ::close(src);
  }
}

// Bytes a caller already read off the source (Ruby's read-ahead buffer) are
// the body's first bytes: at every split point, nothing lost or repeated.
TEST(ChunkedPump, DecodesAPrefixBeforeTheSourceAtEverySplit) {
  std::string body = "hello, chunked world";
  std::string wire = encode(body, 6, ";k=v") + "NEXT";
  for (std::size_t split = 0; split <= wire.size(); ++split) {
    std::string prefix = wire.substr(0, split);
    FdPair src = unix_pair();
    FdPair dst = pipe_pair(false);
    write_all(src.peer, wire.substr(split));
    end_writing(src.peer);
    auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
    Options options;
    options.prefix = prefix;
    options.crc32 = 0;
    ChunkedPump decoder(src.ours, dst.ours, options);
    pump_chunked(decoder, options);
    ::close(dst.ours);
    dst.ours = -1;
    ASSERT_EQ(decoder.result().status, Status::done) << split;
    EXPECT_EQ(reader.get(), body) << split;
    EXPECT_EQ(decoder.result().bytes_written, body.size()) << split;
    EXPECT_EQ(decoder.result().crc32, zlib_crc(body)) << split;
    std::size_t after = wire.size() - 4;  // where "NEXT" starts
    EXPECT_EQ(decoder.prefix_left(), split > after ? split - after : 0) << split;
    EXPECT_EQ(read_all(src.ours), wire.substr(std::max(split, after))) << split;
  }
}

TEST(ChunkedPump, FramingSplitAcrossEveryBoundary) {
  std::string body = pattern(5000, 3);
  std::string wire = encode(body, 777, ";e");
  wire.insert(wire.size() - 2, "Trailer-A: x\r\nTrailer-B: y\r\n");
  for (std::size_t piece : {1u, 3u, 7u}) {
    Options options;
    options.crc32 = 0;
    auto d = decode(Kind::tcp_socket, wire, piece, options);
    ASSERT_EQ(d.result.status, Status::done) << piece;
    EXPECT_EQ(d.out, body);
    EXPECT_EQ(d.result.crc32, zlib_crc(body));
  }
}

// After chunk data exactly CRLF: with a bare LF accepted, a chunk one byte
// short (5 bytes of "world" under a size of 6) shifted the framing and delivered
// "world\r, spliced" as if all were well.
TEST(ChunkedPump, ChunkFramingIsCRLFOnly) {
  auto short_chunk = decode(Kind::unix_socket, "6\r\nworld\r\n9\r\n, spliced\r\n0\r\n\r\n");
  EXPECT_EQ(short_chunk.result.status, Status::error);
  EXPECT_EQ(short_chunk.body_error, BodyError::malformed);
  EXPECT_EQ(short_chunk.parse_error, http::ParseError::bad_chunk_end);
  EXPECT_EQ(short_chunk.out, "world\r");
  auto bare = decode(Kind::unix_socket, "3\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(bare.body_error, BodyError::malformed);
  EXPECT_EQ(bare.parse_error, http::ParseError::bad_line_ending);
  EXPECT_EQ(bare.out, "");
  auto empty = decode(Kind::unix_socket, "0\r\n\r\n");
  EXPECT_EQ(empty.result.status, Status::done);
  EXPECT_EQ(empty.out, "");
}

TEST(ChunkedPump, CutMidChunkIsTruncatedWithTheBytesCounted) {
  auto d = decode(Kind::tcp_socket, "a\r\n0123456789\r\n10\r\nabcdef");
  EXPECT_EQ(d.result.status, Status::error);
  EXPECT_EQ(d.body_error, BodyError::truncated);
  EXPECT_EQ(d.result.bytes_written, 16u);
  EXPECT_EQ(d.out, "0123456789abcdef");
}

TEST(ChunkedPump, CutBeforeTheLastChunkIsTruncated) {
  for (Kind kind : {Kind::unix_socket, Kind::pipe}) {
    for (const char* wire :
         {"3\r\nabc\r\n", "3\r\nabc\r\n0\r\n", "3\r\nabc", "3\r\nabc\r", "5\r\nabc"}) {
      auto d = decode(kind, wire);
      EXPECT_EQ(d.body_error, BodyError::truncated) << wire << " from " << kind_name(kind);
      EXPECT_EQ(d.result.bytes_written, 3u) << wire << " from " << kind_name(kind);
    }
  }
}

TEST(ChunkedPump, MalformedFramingSaysWhy) {
  auto d = decode(Kind::unix_socket, "3\r\nabc\r\nzz\r\n");
  EXPECT_EQ(d.body_error, BodyError::malformed);
  EXPECT_EQ(d.parse_error, http::ParseError::bad_chunk_size);
  EXPECT_EQ(d.out, "abc");
  auto no_crlf = decode(Kind::unix_socket, "3\r\nabcX0\r\n\r\n");
  EXPECT_EQ(no_crlf.parse_error, http::ParseError::bad_chunk_end);
  auto bad_trailer = decode(Kind::unix_socket, "0\r\nBad Trailer: x\r\n\r\n");
  EXPECT_EQ(bad_trailer.parse_error, http::ParseError::bad_header_name);
}

TEST(ChunkedPump, EndlessSizeLineHitsTheLineLimit) {
  FdPair src = unix_pair();
  FdPair dst = pipe_pair(false);
  write_all(src.peer, "5;" + std::string(5000, 'x'));
  ChunkedPump body(src.ours, dst.ours, {}, 1024);
  pump_chunked(body);
  EXPECT_EQ(body.body_error(), BodyError::line_too_long);
}

TEST(ChunkedPump, StallTimeoutMidBody) {
  Options options;
  options.upstream_timeout = 100ms;
  auto d = decode(Kind::tcp_socket, "5\r\nab", 0, options, false);
  EXPECT_EQ(d.result.status, Status::timeout_upstream);
  EXPECT_EQ(d.result.bytes_written, 2u);
}

TEST(ChunkedPump, ClosedReaderIsADownstreamError) {
  FdPair src = unix_pair();
  FdPair dst = pipe_pair(false);
  dst.close_peer();
  write_all(src.peer, "3\r\nabc\r\n0\r\n\r\n");
  ChunkedPump body(src.ours, dst.ours);
  pump_chunked(body);
  EXPECT_EQ(body.result().status, Status::error);
  EXPECT_EQ(body.result().error, EPIPE);
  EXPECT_EQ(body.result().error_side, Side::downstream);
}

}  // namespace
}  // namespace bytepump::test
