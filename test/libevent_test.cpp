#include "bytepump/libevent.hpp"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "fd_helpers.hpp"

namespace bytepump {
namespace {

using namespace std::chrono_literals;
using test::FdPair;
using test::pattern;

static_assert(PipeEvent::reading == BEV_EVENT_READING);
static_assert(PipeEvent::writing == BEV_EVENT_WRITING);
static_assert(PipeEvent::eof == BEV_EVENT_EOF);
static_assert(PipeEvent::error == BEV_EVENT_ERROR);
static_assert(PipeEvent::timeout == BEV_EVENT_TIMEOUT);
static_assert(PipeEvent::read == EV_READ);
static_assert(PipeEvent::write == EV_WRITE);
static_assert(PipeEvent::close_on_free == BEV_OPT_CLOSE_ON_FREE);

struct Base {
  event_base* base = ::event_base_new();
  ~Base() { ::event_base_free(base); }
  // Runs the loop until nothing is pending or 10 s pass.
  void dispatch() {
    event* guard = ::event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void* b) {
          ::event_base_loopbreak(static_cast<event_base*>(b));
        },
        base);
    timeval ten{10, 0};
    ::event_add(guard, &ten);
    ::event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    bool timed_out = !::event_pending(guard, EV_TIMEOUT, nullptr);
    ::event_free(guard);
    ASSERT_FALSE(timed_out) << "the event loop ran for 10 s";
  }
  void stop() { ::event_base_loopbreak(base); }
};

TEST(Libevent, RelaysEightMebibytesBetweenTwoSocketsOnAnEventBase) {
  const std::string data = pattern(8 << 20);
  Base loop;
  FdPair a = test::tcp_pair();
  FdPair b = test::tcp_pair();
  // Small buffers: the relay must hold back the fast side, not queue it all.
  LibeventPipeEvent from(loop.base, a.ours, 0, 1 << 20);
  LibeventPipeEvent to(loop.base, b.ours, 0, 1 << 20);
  bool source_done = false;
  auto finish_if_done = [&] {
    if (source_done && from.input().empty() && to.output().empty()) {
      ::shutdown(to.fd(), SHUT_WR);
      loop.stop();
    }
  };
  from.set_callbacks([&](PipeEvent& self) { to.output().move_from(self.input(), SIZE_MAX); },
                     nullptr,
                     [&](PipeEvent&, short what) {
                       ASSERT_EQ(what, PipeEvent::reading | PipeEvent::eof);
                       source_done = true;
                       finish_if_done();
                     });
  to.set_callbacks(
      nullptr,
      [&](PipeEvent& self) {
        self.output().move_from(from.input(), SIZE_MAX);  // what waited for room
        finish_if_done();
      },
      nullptr);
  from.enable(PipeEvent::read);
  std::thread writer([&] {
    test::write_all(a.peer, data);
    ::shutdown(a.peer, SHUT_WR);
  });
  std::string got;
  std::thread reader([&] { got = test::read_all(b.peer); });
  loop.dispatch();
  writer.join();
  reader.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(Libevent, TheEventBaseTimerEndsAnIdleReader) {
  Base loop;
  FdPair s = test::unix_pair();
  LibeventPipeEvent e(loop.base, s.ours);
  short what = 0;
  e.set_callbacks(nullptr, nullptr, [&](PipeEvent&, short w) {
    what = w;
    loop.stop();
  });
  e.set_timeouts(50ms, std::nullopt);
  auto start = Clock::now();
  e.enable(PipeEvent::read);
  loop.dispatch();
  EXPECT_EQ(what, PipeEvent::reading | PipeEvent::timeout);
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(Libevent, BytesQueuedFromAnotherEventAreWritten) {
  Base loop;
  FdPair s = test::unix_pair();
  LibeventPipeEvent e(loop.base, s.ours);
  FdPair source = test::pipe_pair(true);
  test::write_all(source.peer, "queued later");
  e.set_callbacks(
      nullptr, [&](PipeEvent&) { loop.stop(); }, nullptr);
  // A timer, not the PipeEvent, queues the bytes: the adapter must notice.
  struct Ctx {
    LibeventPipeEvent* e;
    int fd;
  } ctx{&e, source.ours};
  event* later = ::event_new(
      loop.base, -1, 0,
      [](evutil_socket_t, short, void* arg) {
        auto* c = static_cast<Ctx*>(arg);
        c->e->output().splice_in(c->fd, 100);
      },
      &ctx);
  timeval soon{0, 20000};
  ::event_add(later, &soon);
  loop.dispatch();
  ::event_free(later);
  char buf[32] = {};
  EXPECT_EQ(::read(s.peer, buf, sizeof buf), 12);
  EXPECT_STREQ(buf, "queued later");
}

TEST(Libevent, ACallbackMayFreeItsPipeEvent) {
  Base loop;
  FdPair s = test::unix_pair();
  auto e = std::make_unique<LibeventPipeEvent>(loop.base, s.ours);
  e->set_callbacks(
      [&](PipeEvent&) {
        loop.stop();
        e.reset();  // last: the lambda itself goes with the PipeEvent
      },
      nullptr, nullptr);
  e->enable(PipeEvent::read);
  test::write_all(s.peer, "x");
  loop.dispatch();
  EXPECT_EQ(e, nullptr);
}

}  // namespace
}  // namespace bytepump
