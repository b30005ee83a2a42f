#ifndef BYTEPUMP_DETAIL_DRIVE_HPP_
#define BYTEPUMP_DETAIL_DRIVE_HPP_

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "bytepump/canceller.hpp"
#include "bytepump/pump.hpp"
#include "bytepump/sigpipe.hpp"
#include "bytepump/tee.hpp"

namespace bytepump::detail {

// What a driver does after a step that asked to wait, by the machine's
// stall clock.
struct Plan {
  enum class Kind : std::uint8_t {
    wait,     // wait on the step's fds for at most `left` (nullopt: no limit)
    again,    // step again at once (the clock ended or changed the machine)
    stalled,  // `side` stalled past its timeout; the driver decides
  };
  Kind kind = Kind::wait;
  std::optional<std::chrono::nanoseconds> left;
  Side side = Side::none;
};

// Adds a pollfd; a vector that cannot grow (out of memory) stays as it was
// and the wait is a slice on what it holds.
inline void add_poll(std::vector<pollfd>& fds, int fd, Interest interest) noexcept {
  try {
    fds.push_back({fd, static_cast<short>(interest == Interest::readable ? POLLIN : POLLOUT), 0});
  } catch (...) {
  }
}

// The adapters every driver steps a machine through (the blocking ones
// below and the Ruby binding's): step(), plan() after a step that waits,
// polls() for the fds a wait may end on, progress() a growing count to
// report. One per kind of machine:

// Pump, BodyPump, ChunkedPump, HeadReader and the frame machines: one fd
// per wait (two for a buffered pump) and Pump's stall clock. A stall ends
// the machine through `on_stall`, or is the driver's to handle when null.
template <typename Machine>
struct OneFdPlan {
  Machine* machine = nullptr;
  StallClock clock{std::nullopt, std::nullopt};
  void (*on_stall)(Machine&, Side) = nullptr;
  std::vector<pollfd> fds;

  Step step() noexcept { return machine->step(); }
  Plan plan(const Step& s, Clock::time_point now) noexcept {
    auto left = clock.remaining(machine->result(), s.side, now);
    if (left && left->count() <= 0) {
      if (!on_stall) return {Plan::Kind::stalled, std::nullopt, s.side};
      on_stall(*machine, s.side);
      return {Plan::Kind::again, std::nullopt, s.side};
    }
    return {Plan::Kind::wait, left, s.side};
  }
  std::vector<pollfd>& polls(const Step& s) noexcept {
    fds.clear();
    add_poll(fds, s.fd, s.interest);
    if (s.also_fd >= 0) add_poll(fds, s.also_fd, s.also_interest);
    return fds;
  }
  std::uint64_t progress() const noexcept { return machine->result().bytes_written; }
};

// A Tee: any of its waits may end a wait; TeeClock ends it or drops
// destinations itself. Progress is bytes read.
struct TeePlan {
  Tee* tee = nullptr;
  TeeClock* clock = nullptr;
  std::vector<pollfd> fds;

  Step step() noexcept { return tee->step(); }
  Plan plan(const Step&, Clock::time_point now) noexcept {
    try {
      clock->progress(tee->result(), now);
      auto deadline = clock->check(*tee, now);
      if (tee->result().status != Status::running || (deadline && *deadline <= now)) {
        return {Plan::Kind::again, std::nullopt, Side::none};
      }
      if (!deadline) return {Plan::Kind::wait, std::nullopt, Side::none};
      return {Plan::Kind::wait, *deadline - now, Side::none};
    } catch (...) {
      tee->abort(Status::error, ENOMEM);
      return {Plan::Kind::again, std::nullopt, Side::none};
    }
  }
  std::vector<pollfd>& polls(const Step&) noexcept {
    fds.clear();
    for (const Tee::Wait& w : tee->waits()) add_poll(fds, w.fd, w.interest);
    return fds;
  }
  std::uint64_t progress() const noexcept { return tee->result().bytes_read; }
};

// How a blocking drive ended when the machine did not finish by itself.
enum class DriveEnd : std::uint8_t {
  done,
  timeout_upstream,
  timeout_downstream,
  cancelled,
  poll_failed,  // errno holds why
};

// The Status a Pump-like machine ends with when drive() stopped it early.
inline Status stopped_status(DriveEnd end) noexcept {
  switch (end) {
    case DriveEnd::timeout_upstream:
      return Status::timeout_upstream;
    case DriveEnd::timeout_downstream:
      return Status::timeout_downstream;
    case DriveEnd::poll_failed:
      return Status::error;
    default:
      return Status::cancelled;
  }
}

// The blocking driver: steps the machine behind `a`, waits with ppoll for
// what it asks (and the canceller), until it is done, a side stalls, the
// canceller fires or a poll fails. `progress(delta)` is called between steps.
template <typename Adapter, typename Progress>
DriveEnd drive(Adapter& a, const Canceller* canceller, Progress&& progress) {
  std::uint64_t reported = a.progress();
  for (;;) {
    Step s = a.step();
    std::uint64_t at = a.progress();
    if (at > reported) {
      progress(at - reported);
      reported = at;
    }
    if (s.kind == Step::Kind::done) return DriveEnd::done;
    if (canceller && canceller->cancelled()) return DriveEnd::cancelled;
    if (s.kind == Step::Kind::more) continue;
    Plan p = a.plan(s, Clock::now());
    if (p.kind == Plan::Kind::again) continue;
    if (p.kind == Plan::Kind::stalled) {
      return p.side == Side::upstream ? DriveEnd::timeout_upstream : DriveEnd::timeout_downstream;
    }
    std::vector<pollfd>& fds = a.polls(s);
    if (canceller) add_poll(fds, canceller->fd(), Interest::readable);
    timespec ts;
    timespec* tsp = nullptr;
    if (p.left) {
      ts.tv_sec = static_cast<time_t>(p.left->count() / 1000000000);
      ts.tv_nsec = static_cast<long>(p.left->count() % 1000000000);
      tsp = &ts;
    }
    // Only EFAULT/EINVAL/ENOMEM: nothing a retry fixes.
    if (::ppoll(fds.data(), fds.size(), tsp, nullptr) < 0 && errno != EINTR) {
      return DriveEnd::poll_failed;
    }
  }
}

// drive() for a one-fd machine with Pump's stall clock.
template <typename Machine, typename Progress>
DriveEnd drive(Machine& machine, std::optional<std::chrono::nanoseconds> upstream,
               std::optional<std::chrono::nanoseconds> downstream, const Canceller* canceller,
               Progress&& progress) {
  OneFdPlan<Machine> a;
  a.machine = &machine;
  a.clock = StallClock(upstream, downstream);
  return drive(a, canceller, std::forward<Progress>(progress));
}

// Drives a Pump-like machine to its end under `options` (stall timeouts,
// canceller, progress callback) with SIGPIPE blocked, and ends it with the
// matching status when the drive stopped it early.
template <typename Machine>
void run_to_end(Machine& machine, const DriveOptions& options) {
  SigpipeGuard sigpipe;
  auto end = drive(machine, options.upstream_timeout, options.downstream_timeout, options.canceller,
                   [&](std::uint64_t delta) {
                     if (options.progress) options.progress(delta);
                   });
  if (end != DriveEnd::done) {
    int error = end == DriveEnd::poll_failed ? errno : 0;
    machine.abort(stopped_status(end), error);
  }
}

}  // namespace bytepump::detail

#endif  // BYTEPUMP_DETAIL_DRIVE_HPP_
