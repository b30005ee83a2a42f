#include "bytepump/pipe_event.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
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

// The smallest loop a PipeEvent needs: poll what watch() asks for, wake at
// its deadline, hand the readiness to handle(). Runs until `done` or 10 s.
void run(const std::vector<PipeEvent*>& events, const std::function<bool()>& done) {
  auto give_up = Clock::now() + 10s;
  while (!done()) {
    ASSERT_LT(Clock::now(), give_up) << "the loop never got there";
    std::vector<pollfd> fds;
    auto wake = Clock::now() + 100ms;
    for (PipeEvent* e : events) {
      PipeEvent::Watch w = e->watch();
      short ev = static_cast<short>((w.readable ? POLLIN : 0) | (w.writable ? POLLOUT : 0));
      fds.push_back({e->fd(), ev, 0});
      if (w.deadline && *w.deadline < wake) wake = *w.deadline;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now());
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait.count())));
    for (std::size_t i = 0; i < events.size(); ++i) {
      short r = fds[i].revents;
      events[i]->handle((r & (POLLIN | POLLHUP | POLLERR)) != 0, (r & (POLLOUT | POLLERR)) != 0);
    }
  }
}

// Queues `data` in `buf` through a pipe.
void queue(PipeBuffer& buf, const std::string& data) {
  FdPair p = test::pipe_pair(true);
  ::fcntl(p.ours, F_SETFL, O_NONBLOCK);
  std::thread writer([&] {
    test::write_all(p.peer, data);
    ::close(p.peer);
    p.peer = -1;
  });
  std::size_t got = 0;
  while (got < data.size()) {
    ssize_t n = buf.splice_in(p.ours, data.size() - got);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  writer.join();
}

TEST(PipeEvent, ReadsIntoItsInputAndCallsTheReadCallback) {
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  EXPECT_EQ(e.enabled(), PipeEvent::write);  // as a new bufferevent
  EXPECT_FALSE(e.watch().readable);
  int reads = 0;
  e.set_callbacks([&](PipeEvent&) { ++reads; }, nullptr, nullptr);
  e.enable(PipeEvent::read);
  EXPECT_TRUE(e.watch().readable);
  EXPECT_FALSE(e.watch().writable);  // nothing to write
  test::write_all(s.peer, "hello");
  run({&e}, [&] { return reads > 0; });
  EXPECT_EQ(e.input().size(), 5u);
  EXPECT_NE(::fcntl(s.ours, F_GETFL) & O_NONBLOCK, 0);
}

TEST(PipeEvent, WritesItsOutputAndCallsTheWriteCallbackAtTheLowWaterMark) {
  const std::string data = pattern(4 << 20);
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  std::vector<std::size_t> left_at_callback;
  e.set_callbacks(
      nullptr, [&](PipeEvent& self) { left_at_callback.push_back(self.output().size()); }, nullptr);
  std::string got;
  std::thread reader([&] { got = test::read_all(s.peer); });
  queue(e.output(), data);
  EXPECT_TRUE(e.watch().writable);
  run({&e}, [&] { return e.output().empty(); });
  ::shutdown(s.ours, SHUT_WR);
  reader.join();
  EXPECT_TRUE(got == data);
  ASSERT_FALSE(left_at_callback.empty());
  for (std::size_t left : left_at_callback) EXPECT_EQ(left, 0u);  // default mark: drained
}

TEST(PipeEvent, EofIsAReadingEventAndEndsReading) {
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) { what = w; });
  e.enable(PipeEvent::read);
  test::write_all(s.peer, "last");
  ::shutdown(s.peer, SHUT_WR);
  run({&e}, [&] { return what != 0; });
  EXPECT_EQ(what, PipeEvent::reading | PipeEvent::eof);
  EXPECT_EQ(e.enabled() & PipeEvent::read, 0);
  EXPECT_FALSE(e.watch().readable);
  EXPECT_EQ(e.input().size(), 4u);  // the bytes before EOF are kept
}

TEST(PipeEvent, AWriteToAClosedPeerIsAWritingErrorWithItsErrno) {
  SigpipeGuard guard;
  FdPair s = test::pipe_pair(false);
  PipeEvent e(s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) { what = w; });
  queue(e.output(), "nobody will read this");
  ::close(s.peer);
  s.peer = -1;
  run({&e}, [&] { return what != 0; });
  EXPECT_EQ(what, PipeEvent::writing | PipeEvent::error);
  EXPECT_EQ(e.last_error(), EPIPE);
  EXPECT_EQ(e.enabled() & PipeEvent::write, 0);
  EXPECT_EQ(e.output().size(), 21u);  // nothing passed off as written
}

TEST(PipeEvent, AnIdleReaderTimesOut) {
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) { what = w; });
  e.set_timeouts(50ms, std::nullopt);
  auto start = Clock::now();
  e.enable(PipeEvent::read);
  ASSERT_TRUE(e.watch().deadline.has_value());
  run({&e}, [&] { return what != 0; });
  EXPECT_EQ(what, PipeEvent::reading | PipeEvent::timeout);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(e.enabled() & PipeEvent::read, 0);
}

TEST(PipeEvent, AWriterWhosePeerReadsNothingTimesOut) {
  FdPair s = test::unix_pair();  // nobody reads the peer
  PipeEvent e(s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) { what = w; });
  e.set_timeouts(std::nullopt, 80ms);
  queue(e.output(), pattern(4 << 20));
  run({&e}, [&] { return what != 0; });
  EXPECT_EQ(what, PipeEvent::writing | PipeEvent::timeout);
  EXPECT_GT(e.output().size(), 0u);
}

TEST(PipeEvent, TheHighWaterMarkPausesReadingUntilInputIsTaken) {
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  e.set_watermark(PipeEvent::read, 0, 1000);
  e.enable(PipeEvent::read);
  std::thread writer([&] { test::write_all(s.peer, pattern(5000)); });
  run({&e}, [&] { return e.input().size() >= 1000; });
  EXPECT_EQ(e.input().size(), 1000u);
  EXPECT_FALSE(e.watch().readable);
  e.input().discard(1000);
  EXPECT_TRUE(e.watch().readable);
  run({&e}, [&] { return e.input().size() >= 1000; });
  writer.join();
}

TEST(PipeEvent, TheReadTimeoutRestartsWhenReadingResumesAfterTheHighWaterMark) {
  FdPair s = test::unix_pair();
  PipeEvent e(s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) { what = w; });
  e.set_watermark(PipeEvent::read, 0, 1000);
  e.set_timeouts(100ms, std::nullopt);
  e.enable(PipeEvent::read);
  test::write_all(s.peer, pattern(1000));
  run({&e}, [&] { return e.input().size() >= 1000; });
  std::this_thread::sleep_for(200ms);  // paused at the mark, longer than the timeout
  e.input().discard(1000);             // the consumer drains: reading resumes now
  ASSERT_TRUE(e.watch().readable);
  ASSERT_TRUE(e.watch().deadline.has_value());
  EXPECT_GT(*e.watch().deadline, Clock::now() + 50ms);
  EXPECT_TRUE(e.handle(false, false));
  EXPECT_EQ(what, 0) << "timed out as soon as reading resumed";
  auto resumed = Clock::now();
  run({&e}, [&] { return what != 0; });  // and an idle peer still times it out
  EXPECT_EQ(what, PipeEvent::reading | PipeEvent::timeout);
  EXPECT_GE(Clock::now() - resumed, 90ms);
}

TEST(PipeEvent, ACallbackMayDestroyItsPipeEvent) {
  FdPair s = test::unix_pair();
  auto e = std::make_unique<PipeEvent>(::dup(s.ours), PipeEvent::close_on_free);
  int fd = e->fd();
  e->set_callbacks([&](PipeEvent&) { e.reset(); }, nullptr, nullptr);
  e->enable(PipeEvent::read);
  test::write_all(s.peer, "x");
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_FALSE(e->handle(true, false));
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // close_on_free closed the duplicate
}

TEST(PipeEvent, WithoutCloseOnFreeTheFdStaysOpen) {
  FdPair s = test::unix_pair();
  { PipeEvent e(s.ours); }
  EXPECT_NE(::fcntl(s.ours, F_GETFD), -1);
}

// The e4pipe use: bytes from one fd to another through two PipeEvents,
// moving segments from one's input to the other's output.
TEST(PipeEvent, RelaysBetweenTwoSocketsByMovingSegments) {
  const std::string data = pattern(8 << 20);
  FdPair a = test::tcp_pair();
  FdPair b = test::tcp_pair();
  PipeEvent from(a.ours);
  PipeEvent to(b.ours);
  bool ended = false;
  from.set_callbacks([&](PipeEvent& self) { to.output().move_from(self.input(), SIZE_MAX); },
                     nullptr, [&](PipeEvent&, short w) { ended = (w & PipeEvent::eof) != 0; });
  from.enable(PipeEvent::read);
  std::thread writer([&] {
    test::write_all(a.peer, data);
    ::shutdown(a.peer, SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(b.peer); });
  run({&from, &to}, [&] { return ended && from.input().empty() && to.output().empty(); });
  ::shutdown(b.ours, SHUT_WR);
  writer.join();
  reader.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

}  // namespace
}  // namespace bytepump
