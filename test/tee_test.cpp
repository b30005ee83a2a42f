#include "bytepump/tee.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
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

Options deadline() {
  Options o;
  o.timeout(10s);
  return o;
}

// A stream destination whose far end a thread reads to EOF.
struct Reader {
  FdPair pair;
  std::string got;
  std::thread thread;
  explicit Reader(FdPair p)
      : pair(std::move(p)), thread([this] { got = test::read_all(pair.peer); }) {}
  std::string close() {
    test::end_writing(pair.ours);
    thread.join();
    return got;
  }
};

// A source fed `data` by a thread, then closed.
struct Feeder {
  FdPair pair = test::tcp_pair();
  std::thread thread;
  explicit Feeder(std::string data)
      : thread([this, d = std::move(data)] {
          SigpipeGuard quiet;  // a test may end the source early
          try {
            test::write_all(pair.peer, d);
          } catch (const std::runtime_error&) {
          }
          ::shutdown(pair.peer, SHUT_WR);
        }) {}
  ~Feeder() { thread.join(); }
  // Ends a feeder still writing: closing our end fails its write with
  // EPIPE. (shutdown(SHUT_RDWR) did not always wake a write already
  // blocked: about one run in 30 hung in the join.)
  void stop() {
    // Don't retry close in case of EINTR!
    ::close(pair.ours);
    pair.ours = -1;
  }
};

TEST(Tee, EveryDestinationGetsEveryByte) {
  const std::string data = pattern(8 << 20);
  int fds = test::open_fd_count() - 2 * static_cast<int>(detail::pooled_pipes());
  {
    Feeder src(data);
    Reader pipe_dst(test::pipe_pair(false));
    Reader socket_dst(test::unix_pair());
    int file = test::temp_file();
    TeeResult r = tee(src.pair.ours, {pipe_dst.pair.ours, file, socket_dst.pair.ours}, deadline());
    ASSERT_TRUE(r.ok()) << to_string(r.status) << " " << r.error;
    EXPECT_EQ(r.bytes_read, data.size());
    for (const TeeDestination& d : r.destinations) EXPECT_EQ(d.bytes_written, data.size());
    EXPECT_TRUE(pipe_dst.close() == data);
    EXPECT_TRUE(socket_dst.close() == data);
    EXPECT_TRUE(test::read_file(file) == data);
    ::close(file);
  }
  EXPECT_EQ(detail::pooled_bytes(), 0u);
  EXPECT_EQ(test::open_fd_count(),
            fds + 2 * static_cast<int>(detail::pooled_pipes()) - 2 * 0);  // only pooled pipes stay
}

TEST(Tee, AStalledDestinationIsDroppedWithItsCountAndTheOthersGoOn) {
  const std::string data = pattern(6 << 20);
  Feeder src(data);
  Reader fast(test::unix_pair());
  FdPair stuck = test::unix_pair();  // its peer reads nothing until the end
  Options o = deadline();
  o.downstream_timeout = 200ms;
  TeeResult r = tee(src.pair.ours, {stuck.ours, fast.pair.ours}, o);
  EXPECT_EQ(r.status, Status::done);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.destinations[0].status, Status::timeout_downstream);
  EXPECT_EQ(r.destinations[0].error, ETIMEDOUT);
  EXPECT_LT(r.destinations[0].bytes_written, data.size());
  EXPECT_TRUE(r.destinations[1].ok());
  EXPECT_TRUE(fast.close() == data);
  ::shutdown(stuck.ours, SHUT_WR);
  std::string partial = test::read_all(stuck.peer);
  EXPECT_EQ(partial.size(), r.destinations[0].bytes_written);  // the count is what it got
  EXPECT_TRUE(partial == data.substr(0, partial.size()));
}

TEST(Tee, AFailedLastDestinationIsDroppedAndTheOthersStillGetEverything) {
  const std::string data = pattern(4 << 20);
  Feeder src(data);
  Reader first(test::unix_pair());
  FdPair closing = test::pipe_pair(false);
  std::string before_close;
  std::thread closer([&] {
    char buf[100000];
    ssize_t n = ::read(closing.peer, buf, sizeof buf);
    if (n > 0) before_close.assign(buf, static_cast<std::size_t>(n));
    ::close(closing.peer);
    closing.peer = -1;
  });
  TeeResult r = tee(src.pair.ours, {first.pair.ours, closing.ours}, deadline());
  closer.join();
  EXPECT_EQ(r.status, Status::done);
  EXPECT_EQ(r.destinations[1].status, Status::error);
  EXPECT_EQ(r.destinations[1].error, EPIPE);
  EXPECT_GE(r.destinations[1].bytes_written, before_close.size());
  EXPECT_TRUE(r.destinations[0].ok());
  EXPECT_TRUE(first.close() == data);
}

TEST(Tee, EveryDestinationFailingEndsTheTeeWithADownstreamError) {
  Feeder src(pattern(4 << 20));
  FdPair a = test::pipe_pair(false), b = test::pipe_pair(false);
  ::close(a.peer);
  a.peer = -1;
  ::close(b.peer);
  b.peer = -1;
  TeeResult r = tee(src.pair.ours, {a.ours, b.ours}, deadline());
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error_side, Side::downstream);
  EXPECT_EQ(r.error, EPIPE);
  src.stop();
}

TEST(Tee, StopsAtLengthAndLeavesTheRestUnread) {
  FdPair src = test::pipe_pair(true);
  test::write_all(src.peer, "0123456789");
  Reader a(test::unix_pair()), b(test::unix_pair());
  Options o = deadline();
  o.length = 4;
  TeeResult r = tee(src.ours, {a.pair.ours, b.pair.ours}, o);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(a.close(), "0123");
  EXPECT_EQ(b.close(), "0123");
  char rest[16];
  EXPECT_EQ(::read(src.ours, rest, sizeof rest), 6);
}

TEST(Tee, AnIdleSourceTimesOut) {
  FdPair src = test::unix_pair();
  Reader a(test::unix_pair()), b(test::unix_pair());
  Options o;
  o.upstream_timeout = 100ms;
  TeeResult r = tee(src.ours, {a.pair.ours, b.pair.ours}, o);
  EXPECT_EQ(r.status, Status::timeout_upstream);
  EXPECT_EQ(r.bytes_read, 0u);
  a.close();
  b.close();
}

TEST(TeeClock, EachDestinationHasItsOwnDownstreamTimeout) {
  Feeder src(pattern(8 << 20));
  FdPair a = test::unix_pair(), b = test::unix_pair();  // nobody reads either
  Tee t(src.pair.ours, {a.ours, b.ours}, Options{});
  const Clock::time_point start = Clock::now();
  TeeClock clock(std::nullopt, {100ms, std::nullopt}, start);
  // Step (with no time passing for the clock) until both destinations are full.
  bool full = false;
  for (int i = 0; i < 10000 && !full; ++i) {
    Step s = t.step();
    clock.progress(t.result(), start);
    ASSERT_NE(s.kind, Step::Kind::done);
    full = s.kind == Step::Kind::wait && t.waits().size() == 2 && t.waits()[0].destination >= 0 &&
           t.waits()[1].destination >= 0;
    if (s.kind == Step::Kind::wait && !full) {
      std::vector<pollfd> fds;
      for (const Tee::Wait& w : t.waits()) fds.push_back({w.fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 10);
    }
  }
  ASSERT_TRUE(full);
  clock.check(t, start);  // starts waiting on both
  EXPECT_TRUE(clock.check(t, start + 150ms).has_value());
  EXPECT_EQ(t.result().destinations[0].status, Status::timeout_downstream);
  EXPECT_EQ(t.result().destinations[1].status, Status::running);
  ASSERT_EQ(t.step().kind, Step::Kind::wait);            // on the one left, still full
  EXPECT_FALSE(clock.check(t, start + 1h).has_value());  // which waits without end
  EXPECT_EQ(t.result().destinations[1].status, Status::running);
  t.finish();
  src.stop();
}

// Steps `t` (no time passing for `clock`) until it waits on exactly what
// `waits_on` accepts; false if it never does.
template <typename Accept>
bool step_until_waiting(Tee& t, TeeClock& clock, Clock::time_point at, Accept waits_on) {
  for (int i = 0; i < 10000; ++i) {
    Step s = t.step();
    clock.progress(t.result(), at);
    if (s.kind == Step::Kind::done) return false;
    if (s.kind != Step::Kind::wait) continue;
    if (waits_on(t.waits())) return true;
    std::vector<pollfd> fds;
    for (const Tee::Wait& w : t.waits()) {
      fds.push_back(
          {w.fd, static_cast<short>(w.interest == Interest::readable ? POLLIN : POLLOUT), 0});
    }
    ::poll(fds.data(), fds.size(), 10);
  }
  return false;
}

// Pump's rule: a side's clock starts when the machine starts waiting on it.
TEST(TeeClock, TheSourcesClockStartsWhenTheTeeStartsWaitingOnIt) {
  FdPair src = test::unix_pair();
  Reader dst(test::unix_pair());
  test::write_all(src.peer, "a hundred bytes or so, then nothing for a while");
  Tee t(src.ours, {dst.pair.ours}, Options{});
  const Clock::time_point start = Clock::now();
  TeeClock clock(100ms, std::nullopt, 1, start);
  ASSERT_TRUE(step_until_waiting(t, clock, start, [](const std::vector<Tee::Wait>& w) {
    return w.size() == 1 && w[0].destination < 0;
  }));
  // The first wait on the source, long after its last bytes (the tee was
  // busy elsewhere): its clock starts now, it has not stalled yet.
  auto deadline = clock.check(t, start + 10s);
  EXPECT_EQ(t.result().status, Status::running);
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(*deadline, start + 10s + 100ms);
  clock.check(t, start + 10s + 150ms);  // still waiting: now it has
  EXPECT_EQ(t.result().status, Status::timeout_upstream);
  t.finish();
  dst.close();
}

TEST(TeeClock, ADestinationsClockStartsWhenTheTeeStartsWaitingOnIt) {
  Feeder src(pattern(8 << 20));
  FdPair dst = test::unix_pair();  // nobody reads it
  Tee t(src.pair.ours, {dst.ours}, Options{});
  const Clock::time_point start = Clock::now();
  TeeClock clock(std::nullopt, 100ms, 1, start);
  ASSERT_TRUE(step_until_waiting(t, clock, start, [](const std::vector<Tee::Wait>& w) {
    return w.size() == 1 && w[0].destination == 0;
  }));
  // The first EAGAIN on it after the source paused for 10 s: not a stall yet.
  auto deadline = clock.check(t, start + 10s);
  EXPECT_EQ(t.result().destinations[0].status, Status::running);
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(*deadline, start + 10s + 100ms);
  clock.check(t, start + 10s + 150ms);
  EXPECT_EQ(t.result().destinations[0].status, Status::timeout_downstream);
  t.finish();
  src.stop();
}

// An O_APPEND file refuses splice (EINVAL): the tee writes it through the
// read/write fallback, as a Pump does, in the last place (fed from the main
// pipe) and in a lane (fed from its own pipe), appending after what it held.
TEST(Tee, AnAppendOnlyDestinationGetsEveryByteByReadAndWrite) {
  const std::string data = pattern(3 << 20);
  for (bool last : {true, false}) {
    SCOPED_TRACE(last ? "the last destination" : "a lane");
    int file = test::temp_file("kept\n");
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", file);
    int append = ::open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(append, 0);
    Feeder src(data);
    Reader socket_dst(test::unix_pair());
    std::vector<int> dsts = last ? std::vector<int>{socket_dst.pair.ours, append}
                                 : std::vector<int>{append, socket_dst.pair.ours};
    TeeResult r = tee(src.pair.ours, dsts, deadline());
    ASSERT_TRUE(r.ok()) << to_string(r.status) << " " << r.error << " "
                        << to_string(r.destinations[last ? 1 : 0].status) << " "
                        << r.destinations[last ? 1 : 0].error;
    for (const TeeDestination& d : r.destinations) EXPECT_EQ(d.bytes_written, data.size());
    EXPECT_TRUE(socket_dst.close() == data);
    EXPECT_TRUE(test::read_file(file) == "kept\n" + data);
    ::close(append);
    ::close(file);
  }
  EXPECT_EQ(detail::pooled_bytes(), 0u);
}

// /proc files and /dev/null refuse splice as a source: read, then written
// into the main pipe, every byte counted.
TEST(Tee, ProcFilesAndDevNullAreReadByTheFallback) {
  int version = ::open("/proc/version", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(version, 0);
  const std::string expected = test::read_all(version);
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(::lseek(version, 0, SEEK_SET), 0);
  Reader a(test::pipe_pair(false));
  Reader b(test::unix_pair());
  TeeResult r = tee(version, {a.pair.ours, b.pair.ours}, deadline());
  ASSERT_TRUE(r.ok()) << to_string(r.status) << " " << r.error;
  EXPECT_EQ(r.bytes_read, expected.size());
  EXPECT_EQ(a.close(), expected);
  EXPECT_EQ(b.close(), expected);
  ::close(version);

  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null, 0);
  Reader c(test::pipe_pair(false));
  Reader d(test::unix_pair());
  r = tee(null, {c.pair.ours, d.pair.ours}, deadline());
  ASSERT_TRUE(r.ok()) << to_string(r.status) << " " << r.error;
  EXPECT_EQ(r.bytes_read, 0u);
  EXPECT_EQ(c.close(), "");
  EXPECT_EQ(d.close(), "");
  ::close(null);
}

// A Tee reads TeeOptions; a Pump's Options still converts (0.1 only), with
// every field a Tee reads.
TEST(TeeOptions, HoldWhatATeeReadsAndConvertFromAPumpsOptions) {
  Options o;
  o.timeout(3s);
  o.length = 5;
  o.pipe_size = 1 << 16;
  o.step_budget = 1 << 12;
  TeeOptions t = o;
  EXPECT_EQ(t.upstream_timeout, std::chrono::nanoseconds(3s));
  EXPECT_EQ(t.downstream_timeout, std::chrono::nanoseconds(3s));
  EXPECT_EQ(t.length, std::optional<std::uint64_t>(5));
  EXPECT_EQ(t.pipe_size, std::size_t{1} << 16);
  EXPECT_EQ(t.step_budget, std::size_t{1} << 12);
  Feeder src(pattern(100));
  Reader dst(test::unix_pair());
  TeeResult r = tee(src.pair.ours, {dst.pair.ours}, TeeOptions().timeout(10s));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(dst.close(), pattern(100));
}

TEST(Tee, NoDestinationIsAnError) {
  FdPair src = test::unix_pair();
  TeeResult r = tee(src.ours, {});
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EINVAL);
}

}  // namespace
}  // namespace bytepump
