#include "bytepump/frames.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bytepump/sigpipe.hpp"
#include "fd_helpers.hpp"

namespace bytepump {
namespace {

using namespace std::chrono_literals;
using test::FdPair;
using test::pattern;

std::string header(std::uint16_t channel, std::uint32_t length) {
  unsigned char h[6] = {
      static_cast<unsigned char>(channel >> 8), static_cast<unsigned char>(channel),
      static_cast<unsigned char>(length >> 24), static_cast<unsigned char>(length >> 16),
      static_cast<unsigned char>(length >> 8),  static_cast<unsigned char>(length)};
  return std::string(reinterpret_cast<char*>(h), 6);
}

std::string frame(std::uint16_t channel, const std::string& payload) {
  return header(channel, static_cast<std::uint32_t>(payload.size())) + payload;
}

void nonblocking(int fd) { ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0); }

Options deadline() {
  Options o;
  o.timeout(10s);  // a hang is a failure
  return o;
}

// A sink per channel: a socket pair whose far end a thread reads to EOF.
struct Sink {
  FdPair pair = test::unix_pair();
  std::string got;
  std::thread reader{[this] { got = test::read_all(pair.peer); }};
  std::string close() {
    ::shutdown(pair.ours, SHUT_WR);
    reader.join();
    return got;
  }
};

TEST(FrameReader, RoutesEachPayloadToItsChannelExactly) {
  const std::string big = pattern(3 << 20), mid = pattern(100000, 2);
  FdPair src = test::tcp_pair();
  nonblocking(src.ours);
  std::thread writer([&] {
    test::write_all(src.peer, frame(1, "a") + frame(2, mid) + frame(1, big));
    ::shutdown(src.peer, SHUT_WR);
  });
  Sink one, two;
  nonblocking(one.pair.ours);
  nonblocking(two.pair.ours);
  std::vector<Frame> seen;
  FrameReader reader(src.ours, [&](const Frame& f) {
    seen.push_back(f);
    return f.channel == 1 ? one.pair.ours : two.pair.ours;
  });
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::frame) << reader.message();
  EXPECT_EQ(read_frame(reader, deadline()), FrameStatus::eof);
  writer.join();
  EXPECT_EQ(reader.frames(), 3u);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].channel, 2);
  EXPECT_EQ(seen[1].length, mid.size());
  EXPECT_EQ(reader.result().bytes_read, 18 + 1 + mid.size() + big.size());
  EXPECT_EQ(reader.result().bytes_written, 1 + mid.size() + big.size());
  EXPECT_TRUE(one.close() == "a" + big);
  EXPECT_TRUE(two.close() == mid);
}

TEST(FrameReader, ReadsTheHeaderExactlyAndLetsTheCallerRoute) {
  FdPair src = test::pipe_pair(true);
  nonblocking(src.ours);
  test::write_all(src.peer, frame(5, "data") + "rest");
  FrameReader reader(src.ours);
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::header);
  EXPECT_EQ(reader.frame().channel, 5);
  EXPECT_EQ(reader.frame().length, 4u);
  char buf[4];
  ASSERT_EQ(::read(src.ours, buf, 4), 4);  // the payload is untouched: nothing read past the header
  EXPECT_EQ(std::string(buf, 4), "data");
  test::write_all(src.peer, "DATA");
  FdPair dst = test::pipe_pair(false);
  reader.deliver_to(dst.ours);
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::frame);
  ASSERT_EQ(::read(dst.peer, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "rest");  // the next 4 bytes of the stream, as the header said
}

TEST(FrameReader, AnInvalidLengthNamesChannelAndLengthAndTheReaderResets) {
  FdPair src = test::pipe_pair(true);
  nonblocking(src.ours);
  test::write_all(src.peer, header(7, 0) + header(9, kMaxFrameLength + 1) + frame(1, "ok"));
  ::close(src.peer);
  src.peer = -1;
  Sink sink;
  FrameReader reader(src.ours, [&](const Frame&) { return sink.pair.ours; });
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::invalid_length);
  EXPECT_EQ(reader.message(), "frame on channel 7 has invalid length 0 (must be 1..67108864)");
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::invalid_length);
  EXPECT_EQ(reader.message(),
            "frame on channel 9 has invalid length 67108865 (must be 1..67108864)");
  EXPECT_EQ(reader.frame().channel, 9);
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::frame);
  EXPECT_EQ(read_frame(reader, deadline()), FrameStatus::eof);
  EXPECT_EQ(sink.close(), "ok");
}

TEST(FrameReader, ASourceEndingInsideAFrameIsTruncatedWithWhatWasDelivered) {
  {
    FdPair src = test::pipe_pair(true);
    test::write_all(src.peer, header(3, 10).substr(0, 3));
    ::close(src.peer);
    src.peer = -1;
    FrameReader reader(src.ours, [](const Frame&) { return -1; });
    EXPECT_EQ(read_frame(reader, deadline()), FrameStatus::truncated);
    EXPECT_EQ(reader.message(), "the source ended inside a frame header (3 of 6 bytes)");
  }
  FdPair src = test::pipe_pair(true);
  test::write_all(src.peer, header(3, 10) + "four");
  ::close(src.peer);
  src.peer = -1;
  Sink sink;
  FrameReader reader(src.ours, [&](const Frame&) { return sink.pair.ours; });
  EXPECT_EQ(read_frame(reader, deadline()), FrameStatus::truncated);
  EXPECT_EQ(
      reader.message(),
      "the source ended inside the frame (channel 3, length 10) with 6 payload bytes missing");
  EXPECT_EQ(reader.result().bytes_written, 4u);
  EXPECT_EQ(sink.close(), "four");
  EXPECT_EQ(read_frame(reader, deadline()), FrameStatus::truncated);  // stays ended
}

TEST(FrameReader, APayloadRoutedNowhereIsDiscardedAndCounted) {
  FdPair src = test::pipe_pair(true);
  test::write_all(src.peer, frame(4, pattern(50000)) + frame(6, "kept"));
  ::close(src.peer);
  src.peer = -1;
  Sink sink;
  FrameReader reader(src.ours,
                     [&](const Frame& f) { return f.channel == 6 ? sink.pair.ours : -1; });
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::frame);
  EXPECT_EQ(reader.result().bytes_written, 50000u);
  ASSERT_EQ(read_frame(reader, deadline()), FrameStatus::frame);
  EXPECT_EQ(sink.close(), "kept");
}

TEST(FrameReader, SaysWhichSideItWaitsForAndTimesOutOnAStall) {
  FdPair src = test::pipe_pair(true);
  nonblocking(src.ours);
  ASSERT_GE(::fcntl(src.peer, F_SETPIPE_SZ, 1 << 20), 1 << 20);
  FdPair dst = test::unix_pair();  // nobody reads
  nonblocking(dst.ours);
  FrameReader reader(src.ours, [&](const Frame&) { return dst.ours; });
  Step s = reader.step();
  ASSERT_EQ(s.kind, Step::Kind::wait);
  EXPECT_EQ(s.side, Side::upstream);
  EXPECT_EQ(s.fd, src.ours);
  // An 8 MiB frame of which 1 MiB is there: more than the unread socket
  // takes, so the reader stalls on the destination with bytes still to read.
  std::string head = frame(2, pattern(8 << 20)).substr(0, 1 << 20);
  test::write_all(src.peer, head);
  Options o;
  o.timeout(200ms);
  EXPECT_EQ(read_frame(reader, o), FrameStatus::error);
  EXPECT_EQ(reader.error(), ETIMEDOUT);
  EXPECT_EQ(reader.error_side(), Side::downstream);
  EXPECT_GT(reader.result().bytes_written, 0u);
  EXPECT_LT(reader.result().bytes_written, head.size() - 6);
}

TEST(FrameWriter, WritesHeaderThenExactlyLengthBytesFromASource) {
  const std::string payload = pattern(2 << 20);
  FdPair src = test::pipe_pair(true);
  std::thread feeder([&] { test::write_all(src.peer, payload + "not this frame's"); });
  Sink out;
  nonblocking(out.pair.ours);
  FrameWriter writer(out.pair.ours);
  ASSERT_TRUE(writer.begin(0x1234, static_cast<std::uint32_t>(payload.size()), src.ours));
  EXPECT_FALSE(writer.begin(1, 1, src.ours));  // never two frames at once
  EXPECT_EQ(errno, EBUSY);
  EXPECT_EQ(write_frame(writer, deadline()), FrameStatus::frame) << writer.message();
  EXPECT_EQ(writer.result().bytes_written, 6 + payload.size());
  EXPECT_FALSE(writer.busy());
  ASSERT_TRUE(writer.begin(2, "hi"));
  EXPECT_EQ(write_frame(writer, deadline()), FrameStatus::frame);
  EXPECT_EQ(writer.frames(), 2u);
  feeder.join();
  std::string got = out.close();
  EXPECT_TRUE(got == header(0x1234, static_cast<std::uint32_t>(payload.size())) + payload +
                         frame(2, "hi"));
  char rest[32] = {};
  EXPECT_EQ(::read(src.ours, rest, sizeof rest), 16);  // the source's next bytes are left alone
}

TEST(FrameWriter, RefusesInvalidLengthsAndReportsAShortSource) {
  FdPair dst = test::unix_pair();
  FrameWriter writer(dst.ours);
  EXPECT_FALSE(writer.begin(1, 0, 0));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_FALSE(writer.begin(1, kMaxFrameLength + 1, 0));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_FALSE(writer.begin(1, std::string_view()));
  FdPair src = test::pipe_pair(true);
  test::write_all(src.peer, pattern(40));
  ::close(src.peer);
  src.peer = -1;
  ASSERT_TRUE(writer.begin(8, 100, src.ours));
  EXPECT_EQ(write_frame(writer, deadline()), FrameStatus::truncated);
  EXPECT_EQ(writer.message(),
            "the payload source ended 60 bytes short of the frame (channel 8, length 100); the "
            "destination holds a partial frame");
  EXPECT_EQ(writer.result().bytes_written, 46u);
}

// A blocking-mode fd ($stdin, a FIFO opened blocking, an inherited socket):
// each machine makes it nonblocking for its run, so a stall ends within the
// timeout instead of blocking in read or write, and gives its flags back.
// A watchdog unblocks a machine that blocks anyway, so a failure is no hang.
TEST(Frames, BlockingModeFdsStallWithinTheirTimeoutAndKeepTheirFlags) {
  FdPair src = test::pipe_pair(true);  // nothing is ever written
  FdPair dst = test::unix_pair();      // nobody reads
  ASSERT_EQ(::fcntl(src.ours, F_GETFL) & O_NONBLOCK, 0);
  ASSERT_EQ(::fcntl(dst.ours, F_GETFL) & O_NONBLOCK, 0);
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 100 && !finished; ++i) std::this_thread::sleep_for(50ms);
    if (!finished) {
      ::shutdown(dst.peer, SHUT_RDWR);
      ::close(src.peer);
      src.peer = -1;
    }
  });
  Options o;
  o.timeout(200ms);
  {
    FrameReader reader(src.ours, [&](const Frame&) { return dst.ours; });
    EXPECT_EQ(read_frame(reader, o), FrameStatus::error);
    EXPECT_EQ(reader.error(), ETIMEDOUT);
    EXPECT_EQ(reader.error_side(), Side::upstream);
  }
  EXPECT_EQ(::fcntl(src.ours, F_GETFL) & O_NONBLOCK, 0);
  {
    const std::string payload = pattern(16 << 20);  // more than the socket buffers hold
    FrameWriter writer(dst.ours);
    ASSERT_TRUE(writer.begin(3, payload));
    EXPECT_EQ(write_frame(writer, o), FrameStatus::error);
    EXPECT_EQ(writer.error(), ETIMEDOUT);
    EXPECT_EQ(writer.error_side(), Side::downstream);
    EXPECT_GT(writer.result().bytes_written, 0u);
    EXPECT_LT(writer.result().bytes_written, payload.size());
  }
  EXPECT_EQ(::fcntl(dst.ours, F_GETFL) & O_NONBLOCK, 0);
  finished = true;
  watchdog.join();
}

// A writer and a reader on two ends of one socket pair: channels multiplexed.
TEST(Frames, WriterAndReaderRoundTripManyFramesOverASocketPair) {
  FdPair link = test::unix_pair();
  nonblocking(link.ours);
  nonblocking(link.peer);
  std::map<std::uint16_t, std::string> sent;
  std::thread producer([&] {
    FrameWriter writer(link.ours);
    std::vector<std::string> payloads;
    for (std::uint16_t i = 0; i < 200; ++i) payloads.push_back(pattern(1 + i * 997, i + 1));
    for (std::uint16_t i = 0; i < 200; ++i) {
      std::uint16_t channel = i % 3;
      ASSERT_TRUE(writer.begin(channel, payloads[i]));
      ASSERT_EQ(write_frame(writer, deadline()), FrameStatus::frame);
      sent[channel] += payloads[i];
    }
    ::shutdown(link.ours, SHUT_WR);
  });
  Sink sinks[3];
  FrameReader reader(link.peer, [&](const Frame& f) { return sinks[f.channel].pair.ours; });
  FrameStatus st;
  while ((st = read_frame(reader, deadline())) == FrameStatus::frame) {
  }
  EXPECT_EQ(st, FrameStatus::eof);
  producer.join();
  EXPECT_EQ(reader.frames(), 200u);
  for (std::uint16_t c = 0; c < 3; ++c) EXPECT_TRUE(sinks[c].close() == sent[c]) << c;
}

}  // namespace
}  // namespace bytepump
