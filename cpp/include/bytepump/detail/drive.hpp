#ifndef BYTEPUMP_DETAIL_DRIVE_HPP_
#define BYTEPUMP_DETAIL_DRIVE_HPP_

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>

#include "bytepump/canceller.hpp"
#include "bytepump/pump.hpp"
#include "bytepump/sigpipe.hpp"

namespace bytepump::detail {

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

// The poll() loop shared by the blocking drivers: steps `machine` (anything
// with step() and result()), waits for what it asks, tracks stall deadlines
// and the canceller. `progress(written_delta)` is called between steps.
template <typename Machine, typename Progress>
DriveEnd drive(Machine& machine, std::optional<std::chrono::nanoseconds> upstream,
               std::optional<std::chrono::nanoseconds> downstream, const Canceller* canceller,
               Progress&& progress) {
  StallClock clock(upstream, downstream);
  std::uint64_t reported = 0;
  for (;;) {
    Step s = machine.step();
    const Result& r = machine.result();
    if (r.bytes_written > reported) {
      std::uint64_t delta = r.bytes_written - reported;
      reported = r.bytes_written;
      progress(delta);
    }
    if (s.kind == Step::Kind::done) return DriveEnd::done;
    if (canceller && canceller->cancelled()) return DriveEnd::cancelled;
    if (s.kind == Step::Kind::more) continue;

    auto left = clock.remaining(r, s.side);
    if (left && left->count() <= 0) {
      return s.side == Side::upstream ? DriveEnd::timeout_upstream : DriveEnd::timeout_downstream;
    }
    pollfd fds[3];
    fds[0] = {s.fd, static_cast<short>(s.interest == Interest::readable ? POLLIN : POLLOUT), 0};
    nfds_t nfds = 1;
    if (s.also_fd >= 0) {
      fds[nfds++] = {s.also_fd,
                     static_cast<short>(s.also_interest == Interest::readable ? POLLIN : POLLOUT),
                     0};
    }
    if (canceller) fds[nfds++] = {canceller->fd(), POLLIN, 0};
    timespec ts;
    timespec* tsp = nullptr;
    if (left) {
      ts.tv_sec = static_cast<time_t>(left->count() / 1000000000);
      ts.tv_nsec = static_cast<long>(left->count() % 1000000000);
      tsp = &ts;
    }
    // Only EFAULT/EINVAL/ENOMEM: nothing a retry fixes.
    if (::ppoll(fds, nfds, tsp, nullptr) < 0 && errno != EINTR) return DriveEnd::poll_failed;
  }
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
