// The one driving loop of the binding: every machine (Pump, BodyPump,
// HeadReader, the frame machines, Tee) is stepped and waited on here.
//
// Its inputs: an adapter around the machine (below), and the wait policy,
// chosen per call. Without a Fiber scheduler the machine is stepped and
// waited on in one GVL-free region (ppoll on its fds and a wake-up fd), so
// an idle side costs no GVL round trip per wait; interrupts (Thread#raise,
// kill, Timeout, signals) reach it through the unblocking function, which
// fires the wake-up fd. A thread alone waiting on one fd waits with
// rb_io_wait instead until another thread wants the GVL (it measured faster
// so: bench/relay in the README); under a Fiber scheduler every wait goes
// through the scheduler (rb_io_wait).
//
// It returns to Ruby when the machine is done or ran out of step budget,
// when a side stalled, when bytes moved and a progress block waits for
// them, when woken, and at least every kWaitSlice whether or not fds were
// ready; after every return it checks every IO, so a close from another
// thread ends any call within one slice.
#ifndef BYTEPUMP_EXT_DRIVER_HPP_
#define BYTEPUMP_EXT_DRIVER_HPP_

#include <poll.h>
#include <ruby.h>
#include <ruby/fiber/scheduler.h>
#include <ruby/thread.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "binding.hpp"
#include "bytepump/canceller.hpp"
#include "bytepump/detail/drive.hpp"
#include "bytepump/pump.hpp"

namespace bytepump::rb {

constexpr std::chrono::milliseconds kWaitSlice{100};

// Every wait of bytepump's in Ruby, in C and (through Native::Waits) in lib/:
// rb_io_wait, remembering whether a Fiber scheduler did it, so settle() can
// give the scheduler's loop one turn before the call returns (io-event drops
// an fd's epoll registration lazily; see rb_waits.cpp).
struct SchedulerWaits {
  bool waited = false;
  // Truthy when ready; false or nil when the timeout (or a slice) ended.
  VALUE wait(VALUE io, int events, VALUE timeout);
  void settle();
};

using detail::add_poll;
using detail::Plan;

// The core's adapters (detail/drive.hpp), with what the binding adds: the
// IO a Ruby-side wait watches, and the check that every IO is still open.
template <typename Machine>
struct OneFd : detail::OneFdPlan<Machine> {
  VALUE upstream_io = Qnil;
  VALUE downstream_io = Qnil;  // Qnil for a machine with one fd

  VALUE wait_io(const Step& s) const noexcept {
    return s.side == Side::upstream ? upstream_io : downstream_io;
  }
  void check_open() const {
    rb::check_open(upstream_io);
    rb::check_open(downstream_io);
  }
};

// How a drive ended.
struct Driven {
  bool stalled = false;  // Plan::Kind::stalled; the machine still runs
  Side side = Side::none;
};

enum class RoundEnd : std::uint8_t { done, more, wait, stalled, progress, slice, woken, failed };

template <typename Adapter>
struct Round {
  Adapter* adapter;
  const Canceller* wake;  // null: Ruby waits (rb_io_wait)
  bool return_on_progress;
  RoundEnd end = RoundEnd::more;  // if the call never ran, go round again
  Step step;
  Plan plan;
};

template <typename Adapter>
void* round_without_gvl(void* arg) {
  auto* r = static_cast<Round<Adapter>*>(arg);
  Adapter& a = *r->adapter;
  const auto start = Clock::now();
  const std::uint64_t before = a.progress();
  for (;;) {
    r->step = a.step();
    if (r->step.kind == Step::Kind::done) return r->end = RoundEnd::done, nullptr;
    if (r->step.kind == Step::Kind::more) return r->end = RoundEnd::more, nullptr;
    const auto now = Clock::now();
    r->plan = a.plan(r->step, now);
    if (r->plan.kind == Plan::Kind::again) continue;
    if (r->plan.kind == Plan::Kind::stalled) return r->end = RoundEnd::stalled, nullptr;
    if (r->return_on_progress && a.progress() != before) {
      return r->end = RoundEnd::progress, nullptr;
    }
    if (!r->wake) return r->end = RoundEnd::wait, nullptr;
    if (r->wake->cancelled()) return r->end = RoundEnd::woken, nullptr;
    // Back to Ruby every slice, even while bytes flow: it checks the IOs.
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(kWaitSlice - (now - start));
    if (wait.count() <= 0) return r->end = RoundEnd::slice, nullptr;
    if (r->plan.left && *r->plan.left < wait) wait = *r->plan.left;
    std::vector<pollfd>& fds = a.polls(r->step);
    add_poll(fds, r->wake->fd(), Interest::readable);
    timespec ts{static_cast<time_t>(wait.count() / 1000000000),
                static_cast<long>(wait.count() % 1000000000)};
    if (::ppoll(fds.data(), fds.size(), &ts, nullptr) < 0 && errno != EINTR) {
      return r->end = RoundEnd::failed, nullptr;
    }
  }
}

void wake_up(void* wake);
// A wake-up fd for a call's GVL-free waits, or nullptr if none could be made.
Canceller* new_wake() noexcept;

// Drives the machine behind `a` until it is done or a side stalls (see the
// top of this file). `wake` is the call's wake-up fd, made here at need and
// freed by the call's cleanup. With yield_progress, the block gets the
// bytes of each progress (Adapter::progress deltas).
template <typename Adapter>
Driven drive(Adapter& a, Canceller*& wake, bool yield_progress) {
  SchedulerWaits scheduler_waits;
  const bool blocking_waits = rb_fiber_scheduler_current() == Qnil;
  std::uint64_t reported = a.progress();
  Driven out;
  for (;;) {
    // Not one byte more once an IO is closed; bytes that moved meanwhile
    // are still reported before the IOError.
    a.check_open();
    Round<Adapter> round{&a, wake, yield_progress, RoundEnd::more, Step{}, Plan{}};
    rb_thread_call_without_gvl(round_without_gvl<Adapter>, &round, wake ? wake_up : RUBY_UBF_IO,
                               wake);
    std::uint64_t at = a.progress();
    if (yield_progress && at > reported) rb_yield(ULL2NUM(at - reported));
    reported = at;
    a.check_open();
    const Step& step = round.step;
    switch (round.end) {
      case RoundEnd::done:
        scheduler_waits.settle();
        return out;
      case RoundEnd::stalled:
        scheduler_waits.settle();
        out.stalled = true;
        out.side = round.plan.side;
        return out;
      case RoundEnd::woken:
        wake->reset();
        rb_thread_check_ints();  // raises for Thread#raise, kill, Timeout
        continue;
      case RoundEnd::more: {
        // A source and destination that never block must not starve other
        // fibers or threads: give them a turn every step budget.
        VALUE scheduler = rb_fiber_scheduler_current();
        if (scheduler != Qnil) {
          rb_fiber_scheduler_kernel_sleep(scheduler, INT2FIX(0));
        } else {
          rb_thread_check_ints();
        }
        continue;
      }
      case RoundEnd::progress:
      case RoundEnd::slice:
        continue;
      case RoundEnd::wait:
      case RoundEnd::failed:
        break;
    }
    const std::size_t watched = a.polls(step).size();
    // The first wait of a call without a Fiber scheduler while other threads
    // want the GVL, or one on several fds: the GVL-free region waits from now.
    if (round.end == RoundEnd::wait && blocking_waits && !wake &&
        (!rb_thread_alone() || watched > 1) && (wake = new_wake()) != nullptr) {
      continue;
    }
    VALUE io = a.wait_io(step);
    int events = step.interest == Interest::readable ? RUBY_IO_READABLE : RUBY_IO_WRITABLE;
    double seconds = round.plan.left ? round.plan.left->count() / 1e9 : -1;
    // Several fds to watch through the scheduler: the first, a slice at a time.
    if (watched > 1 && (seconds < 0 || seconds > 0.01)) seconds = 0.01;
    scheduler_waits.wait(io, events, seconds >= 0 ? DBL2NUM(seconds) : Qnil);
  }
}

}  // namespace bytepump::rb

#endif  // BYTEPUMP_EXT_DRIVER_HPP_
