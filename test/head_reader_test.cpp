#include "bytepump/head_reader.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using namespace std::chrono_literals;

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
const std::string kBody = "hello world";

// The scanner reads exactly the head off each fd kind: the body is still
// there, byte for byte, for whoever reads next.
class ScanKinds : public ::testing::TestWithParam<Kind> {};

TEST_P(ScanKinds, ConsumesTheHeadAndNotOneByteMore) {
  Kind kind = GetParam();
  FdPair pair;
  int fd;
  if (kind == Kind::file) {
    fd = temp_file(kHead + kBody);
  } else {
    pair = stream_pair(kind, true);
    fd = pair.ours;
    write_all(pair.peer, kHead + kBody);
    pair.close_peer();
  }
  HeadReader scanner(fd);
  skip_headers(scanner);
  ASSERT_EQ(scanner.status(), ScanStatus::done) << to_string(scanner.status());
  EXPECT_EQ(scanner.response().status, 200);
  EXPECT_EQ(scanner.response().reason, "OK");
  EXPECT_EQ(scanner.num_headers(), 3u);
  EXPECT_EQ(scanner.head(), kHead);
  EXPECT_EQ(scanner.consumed(), kHead.size());
  EXPECT_EQ(read_all(fd), kBody) << "the fd's next bytes are the body";
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0) << "flags restored";
  if (kind == Kind::file) ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ScanKinds,
                         ::testing::Values(Kind::file, Kind::pipe, Kind::unix_socket,
                                           Kind::tcp_socket),
                         [](const auto& info) { return kind_name(info.param); });

// A head that trickles in one byte at a time, body glued to its end.
TEST(HeadReader, HeadArrivingByteByByte) {
  for (Kind kind : {Kind::pipe, Kind::tcp_socket}) {
    FdPair pair = stream_pair(kind, true);
    std::thread writer([&] {
      std::string all = "HTTP/1.1 100 Continue\r\n\r\n" + kHead;
      for (char c : all) {
        write_all(pair.peer, std::string(1, c));
        std::this_thread::sleep_for(50us);
      }
      write_all(pair.peer, kBody);
      pair.close_peer();
    });
    HeadReader scanner(pair.ours);
    skip_headers(scanner);
    writer.join();
    ASSERT_EQ(scanner.status(), ScanStatus::done) << kind_name(kind);
    EXPECT_EQ(scanner.interim_responses(), 1u);
    EXPECT_EQ(scanner.head(), kHead);
    EXPECT_EQ(read_all(pair.ours), kBody);
  }
}

TEST(HeadReader, SkipsInterimResponsesButStopsAt101) {
  FdPair pair = unix_pair();
  write_all(pair.peer,
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 101 Switching\r\n\r\nX");
  HeadReader scanner(pair.ours);
  skip_headers(scanner);
  ASSERT_EQ(scanner.status(), ScanStatus::done);
  EXPECT_EQ(scanner.response().status, 101);
  EXPECT_EQ(scanner.interim_responses(), 1u);
}

TEST(HeadReader, MalformedHeadSaysWhy) {
  FdPair pair = unix_pair();
  write_all(pair.peer, "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n");
  HeadReader scanner(pair.ours);
  skip_headers(scanner);
  EXPECT_EQ(scanner.status(), ScanStatus::malformed);
  EXPECT_EQ(scanner.parse_error(), http::ParseError::bad_header_name);
}

TEST(HeadReader, SizeLimitCountsInterimHeadsToo) {
  FdPair pair = unix_pair();
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
  write_all(pair.peer, big);
  HeadReader scanner(pair.ours, HeadLimits{100, 10});
  skip_headers(scanner);
  EXPECT_EQ(scanner.status(), ScanStatus::too_large);
  EXPECT_EQ(scanner.consumed(), 100u);

  FdPair again = unix_pair();
  std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";  // 25 bytes each
  write_all(again.peer, interim + interim + interim + interim + kHead);
  HeadReader limited(again.ours, HeadLimits{120, 10});
  skip_headers(limited);
  EXPECT_EQ(limited.status(), ScanStatus::too_large);
}

TEST(HeadReader, HeaderCountLimit) {
  FdPair pair = unix_pair();
  write_all(pair.peer, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
  HeadReader scanner(pair.ours, HeadLimits{1024, 2});
  skip_headers(scanner);
  EXPECT_EQ(scanner.status(), ScanStatus::malformed);
  EXPECT_EQ(scanner.parse_error(), http::ParseError::too_many_headers);
}

TEST(HeadReader, EofBeforeTheEndOfTheHead) {
  FdPair pair = pipe_pair(true);
  write_all(pair.peer, "HTTP/1.1 200 OK\r\nX: y\r\n");
  pair.close_peer();
  HeadReader scanner(pair.ours);
  skip_headers(scanner);
  EXPECT_EQ(scanner.status(), ScanStatus::eof);
  EXPECT_EQ(scanner.consumed(), 23u);
}

TEST(HeadReader, StallTimeout) {
  FdPair pair = tcp_pair();
  write_all(pair.peer, "HTTP/1.1 200 OK\r\n");
  HeadReader scanner(pair.ours);
  ScanOptions options;
  options.timeout = 100ms;
  auto t0 = std::chrono::steady_clock::now();
  skip_headers(scanner, options);
  EXPECT_EQ(scanner.status(), ScanStatus::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

TEST(HeadReader, CancelFromAnotherThread) {
  FdPair pair = tcp_pair();
  Canceller canceller;
  HeadReader scanner(pair.ours);
  ScanOptions options;
  options.canceller = &canceller;
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    canceller.cancel();
  });
  skip_headers(scanner, options);
  t.join();
  EXPECT_EQ(scanner.status(), ScanStatus::cancelled);
}

// Bytes a caller read ahead start the head; the scanner takes only its part.
TEST(HeadReader, AbsorbsAReadAheadBuffer) {
  FdPair pair = unix_pair();
  std::string ahead = kHead.substr(0, 20);
  write_all(pair.peer, kHead.substr(20) + kBody);
  pair.close_peer();
  HeadReader scanner(pair.ours);
  EXPECT_EQ(scanner.absorb(ahead.data(), ahead.size()), ahead.size());
  skip_headers(scanner);
  ASSERT_EQ(scanner.status(), ScanStatus::done);
  EXPECT_EQ(scanner.head(), kHead);
  EXPECT_EQ(read_all(pair.ours), kBody);

  FdPair whole = unix_pair();
  std::string all = kHead + "hel";
  HeadReader complete(whole.ours);
  EXPECT_EQ(complete.absorb(all.data(), all.size()), kHead.size());
  EXPECT_EQ(complete.status(), ScanStatus::done);
}

TEST(HeadReader, ClosedFdIsAnError) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  ::close(p[1]);
  HeadReader scanner(p[0]);
  EXPECT_EQ(scanner.status(), ScanStatus::error);
  EXPECT_EQ(scanner.error(), EBADF);
}

}  // namespace
}  // namespace bytepump::test
