#include "bytepump/fetch.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using namespace std::chrono_literals;
using Outcome = FetchResult::Outcome;

const std::string kRequest = "GET /file HTTP/1.1\r\nHost: example.test\r\n\r\n";

// Reads one request head off `fd` (up to its empty line).
std::string read_request(int fd) {
  std::string got;
  char c;
  while (got.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1) got += c;
  return got;
}

struct Exchange {
  FetchResult result;
  std::string request;  // what the server received
  std::string body;     // what reached dst
  std::string rest;     // what the socket still held after fetch()
};

// A server on the other end of a TCP loopback pair answers `response` to
// the request; fetch() moves the body into a pipe.
Exchange exchange(const std::string& response, FetchOptions options = {}, bool close_after = true) {
  FdPair sock = stream_pair(Kind::tcp_socket, true);
  FdPair dst = pipe_pair(false);
  auto server = std::async(std::launch::async, [&] {
    std::string request = read_request(sock.peer);
    write_all(sock.peer, response);
    if (close_after) end_writing(sock.peer);
    return request;
  });
  auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
  if (!options.transfer.upstream_timeout) options.transfer.timeout(10s);
  Exchange e;
  e.result = fetch(sock.ours, dst.ours, kRequest, options);
  e.request = server.get();
  ::close(dst.ours);
  dst.ours = -1;
  e.body = reader.get();
  if (close_after) e.rest = read_all(sock.ours);
  return e;
}

TEST(Fetch, MovesAContentLengthBodyAndReadsNothingAfterIt) {
  std::string body = pattern(300000, 9);
  auto e = exchange("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body + "NEXT");
  ASSERT_EQ(e.result.outcome, Outcome::done) << to_string(e.result.outcome);
  EXPECT_EQ(e.request, kRequest);
  EXPECT_EQ(e.result.status_code, 200);
  EXPECT_EQ(e.result.framing.kind, http::Framing::Kind::length);
  EXPECT_EQ(e.result.body.bytes_written, body.size());
  EXPECT_EQ(e.body, body);
  EXPECT_EQ(e.rest, "NEXT");
}

TEST(Fetch, SkipsInterimHeadsAndDecodesAChunkedBodyWithItsCrc) {
  FetchOptions options;
  options.transfer.crc32 = 0;
  auto e = exchange(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      options);
  ASSERT_EQ(e.result.outcome, Outcome::done);
  EXPECT_EQ(e.body, "hello world");
  EXPECT_EQ(e.result.body.crc32, 0x0d4a1185u);  // CRC-32 of "hello world"
  EXPECT_GT(e.result.head_bytes, 25u);
}

TEST(Fetch, RefusesANon2xxResponseAndLeavesItsBodyUnread) {
  auto e = exchange("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
  EXPECT_EQ(e.result.outcome, Outcome::refused);
  EXPECT_EQ(e.result.status_code, 404);
  EXPECT_EQ(e.body, "");
  EXPECT_EQ(e.rest, "not found");

  FetchOptions take_all;
  take_all.accept = [](const http::Response&) { return true; };
  auto taken = exchange("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", take_all);
  EXPECT_EQ(taken.result.outcome, Outcome::done);
  EXPECT_EQ(taken.body, "not found");
}

TEST(Fetch, AShortBodyAndABrokenHeadAreFailuresWithTheirReasons) {
  auto short_body = exchange("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  EXPECT_EQ(short_body.result.outcome, Outcome::body_failed);
  EXPECT_EQ(short_body.result.body_error, BodyError::truncated);
  EXPECT_EQ(short_body.result.body.bytes_written, 5u);
  EXPECT_EQ(short_body.body, "hello");

  auto bad_chunk = exchange(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nworld\r\n9\r\n, "
      "spliced\r\n0\r\n\r\n");
  EXPECT_EQ(bad_chunk.result.outcome, Outcome::body_failed);
  EXPECT_EQ(bad_chunk.result.body_error, BodyError::malformed);

  auto head = exchange("HTTP/1.1 200 OK\r\nBad Field: x\r\n\r\n");
  EXPECT_EQ(head.result.outcome, Outcome::head_failed);
  EXPECT_EQ(head.result.head_status, ScanStatus::malformed);
  EXPECT_NE(head.result.parse_error, http::ParseError::none);

  auto cut = exchange("HTTP/1.1 200 OK\r\nContent-Le");
  EXPECT_EQ(cut.result.outcome, Outcome::head_failed);
  EXPECT_EQ(cut.result.head_status, ScanStatus::eof);
}

TEST(Fetch, AServerThatSaysNothingStallsOutAndAClosedOneFailsTheRequest) {
  FetchOptions options;
  options.transfer.timeout(100ms);
  auto silent = exchange("", options, false);
  EXPECT_EQ(silent.result.outcome, Outcome::head_failed);
  EXPECT_EQ(silent.result.head_status, ScanStatus::timeout);

  FdPair sock = stream_pair(Kind::unix_socket, true);
  ::close(sock.peer);
  sock.peer = -1;
  FdPair dst = pipe_pair(false);
  auto r = fetch(sock.ours, dst.ours, kRequest);
  EXPECT_EQ(r.outcome, Outcome::request_failed);
  EXPECT_EQ(r.error, EPIPE);
}

TEST(Fetch, AnEventLoopDrivesTheStepMachineAndSeesEveryPhaseWait) {
  FdPair sock = stream_pair(Kind::unix_socket, true);
  FdPair dst = pipe_pair(false);
  std::string body = pattern(2000000, 5);  // more than the pipes hold: the body waits on dst
  std::thread server([&] {
    read_request(sock.peer);
    std::this_thread::sleep_for(20ms);  // the head waits on the socket first
    write_all(sock.peer, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\n\r\n" + body);
  });
  auto reader = std::async(std::launch::async, [fd = dst.peer] { return read_all(fd); });
  std::uint64_t reported = 0;
  int upstream_waits = 0;
  {
    Fetch machine(sock.ours, dst.ours, kRequest);
    for (;;) {
      Step s = machine.step();
      reported = machine.result().bytes_written;
      if (s.kind == Step::Kind::done) break;
      if (s.kind == Step::Kind::more) continue;
      if (s.side == Side::upstream) ++upstream_waits;
      pollfd p{s.fd, static_cast<short>(s.interest == Interest::readable ? POLLIN : POLLOUT), 0};
      ASSERT_GE(::poll(&p, 1, 10000), 1) << "the machine waits on an fd that never becomes ready";
    }
    EXPECT_EQ(machine.outcome().outcome, FetchResult::Outcome::done);
    EXPECT_EQ(machine.outcome().body.bytes_written, body.size());
  }
  server.join();
  ::close(dst.ours);
  dst.ours = -1;
  EXPECT_EQ(reader.get(), body);
  EXPECT_EQ(reported, body.size());
  EXPECT_GE(upstream_waits, 1);
}

TEST(Fetch, ReportsBodyProgressThroughTheOptions) {
  FetchOptions options;
  std::uint64_t progress = 0;
  options.transfer.progress = [&](std::uint64_t n) { progress += n; };
  auto e = exchange("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nprogres", options);
  EXPECT_EQ(e.result.outcome, FetchResult::Outcome::done);
  EXPECT_EQ(progress, 7u);
}

}  // namespace
}  // namespace bytepump::test
