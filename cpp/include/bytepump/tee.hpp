#ifndef BYTEPUMP_TEE_HPP_
#define BYTEPUMP_TEE_HPP_

#include <cstdint>
#include <vector>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// One destination of a tee: its fd, what it got, and how it ended.
struct TeeDestination {
  int fd = -1;
  std::uint64_t bytes_written = 0;
  // running while it takes bytes; done when it got every byte; error
  // (`error` holds errno) or timeout_downstream when it failed, after
  // which the others go on without it.
  Status status = Status::running;
  int error = 0;
  bool ok() const noexcept { return status == Status::done; }
};

struct TeeResult {
  std::uint64_t bytes_read = 0;  // taken from the source
  // done when the source ended (or `length` was reached) and every
  // destination still alive got every byte; timeout_upstream, cancelled,
  // or error (error_side upstream: the source failed; downstream: every
  // destination failed).
  Status status = Status::running;
  int error = 0;
  Side error_side = Side::none;
  std::vector<TeeDestination> destinations;
  // True when the transfer and every destination are done.
  bool ok() const noexcept;
};

// A Tee's options, and its blocking driver's (progress: bytes read).
struct TeeOptions : DriveOptions {
  // Stop after this many bytes; unset means until EOF.
  std::optional<std::uint64_t> length;
  // Requested size of the pipes (best effort).
  std::size_t pipe_size = std::size_t{1} << 20;
  // A step() returns Kind::more after moving this many bytes.
  std::size_t step_budget = std::size_t{8} << 20;

  TeeOptions() = default;
  // The fields a Tee reads from a Pump's Options (0.1 took those; this
  // conversion goes in 0.2).
  TeeOptions(const Options& o)  // NOLINT(google-explicit-constructor)
      : DriveOptions(o), length(o.length), pipe_size(o.pipe_size), step_budget(o.step_budget) {}

  TeeOptions& timeout(std::chrono::nanoseconds t) {
    DriveOptions::timeout(t);
    return *this;
  }
};

// One source to several destinations, every destination getting every
// byte. The source is spliced into a pipe; each chunk is copied with tee(2)
// into a pipe of each destination but the last, and spliced from the main
// pipe into the last; each destination's pipe drains at its own pace, so a
// slow one holds back the source by at most one chunk (a pipe) while the
// others go on. A destination that fails or stalls past the downstream
// timeout is dropped with its count and error; the others go on.
//
// A step machine like Pump: step() returns wait with waits() listing the
// fds to poll (any one ready will do), more, or done.
class BYTEPUMP_API Tee {
 public:
  struct Wait {
    int fd;
    Interest interest;
    int destination;  // index into destinations, or -1 for the source
  };

  Tee(int src_fd, const std::vector<int>& dst_fds, const TeeOptions& options = {});
  ~Tee();
  Tee(const Tee&) = delete;
  Tee& operator=(const Tee&) = delete;

  Step step() noexcept;
  const std::vector<Wait>& waits() const noexcept { return waits_; }
  // Drops destination i with `error` (ETIMEDOUT: its stall timeout) and
  // timeout_downstream or error status.
  void drop(std::size_t i, Status status, int error) noexcept;
  // Ends the whole transfer early (source stall, cancel, a failed wait).
  void abort(Status why, int error = 0) noexcept;
  void finish() noexcept;
  const TeeResult& result() const noexcept { return result_; }

 private:
  struct Lane {
    detail::Pipe pipe;         // none for the lane fed straight from the main pipe
    std::uint64_t queued = 0;  // bytes in pipe, not yet written
    bool teed = false;         // holds a copy of the current chunk
    // Splice refused the destination (an O_APPEND file...): bytes go from
    // the pipe through `copy` by read and write.
    bool copying = false;
    detail::CopyBuffer copy;
  };

  bool alive(std::size_t i) const noexcept {
    return result_.destinations[i].status == Status::running;
  }
  bool reading_done() const noexcept;
  Step fail(Status status, int error, Side side) noexcept;
  // Fills the empty main pipe from the source: bytes now in it, 0 at EOF,
  // -1 with errno.
  ssize_t take_chunk(std::size_t want) noexcept;
  // Moves bytes of `held` (in pipe `from`) on to destination i: bytes
  // written, 0 when it would block, -1 with errno.
  ssize_t deliver(std::size_t i, int from, std::uint64_t& held) noexcept;
  std::uint64_t waiting_in(std::size_t i) const noexcept {
    return lanes_[i].queued + lanes_[i].copy.pending();
  }

  int src_;
  std::optional<std::uint64_t> length_;
  std::size_t pipe_size_;
  std::size_t step_budget_;
  detail::Pipe main_;
  std::uint64_t chunk_ = 0;  // bytes of the current chunk still in the main pipe
  bool src_eof_ = false;
  bool src_copying_ = false;     // splice refused the source (/proc, /dev/null...)
  detail::CopyBuffer src_copy_;  // read from the source, not yet in the main pipe
  std::vector<Lane> lanes_;
  std::size_t sink_;  // the lane spliced straight from the main pipe, or none
  std::vector<Wait> waits_;
  TeeResult result_;
  std::vector<detail::NonblockingFd> nb_;  // each destination's
  detail::NonblockingFd src_nb_;
  bool finished_ = false;
};

// The stall clocks of a Tee's drivers: one for the source, one per
// destination, each started when the tee starts waiting on that side (a
// wait in the check before did not include it) and restarted by its
// progress, as a Pump's. Call check() after every step that asked to wait: it ends
// the tee when the source stalled past `upstream`, drops each destination
// waited on that stalled past `downstream`, and returns the nearest
// deadline to wait until (nullopt: none), or now if it ended or dropped
// something (step again at once).
class BYTEPUMP_API TeeClock {
 public:
  TeeClock(std::optional<std::chrono::nanoseconds> upstream,
           std::optional<std::chrono::nanoseconds> downstream, std::size_t destinations,
           Clock::time_point now = Clock::now());
  // A downstream timeout per destination (as the Ruby binding takes each
  // destination's own IO#timeout), in the order of the Tee's destinations.
  TeeClock(std::optional<std::chrono::nanoseconds> upstream,
           std::vector<std::optional<std::chrono::nanoseconds>> downstream,
           Clock::time_point now = Clock::now());
  // Notes progress since the last call: bytes read, and bytes written per
  // destination. Returns the bytes newly read.
  std::uint64_t progress(const TeeResult& result, Clock::time_point now = Clock::now());
  std::optional<Clock::time_point> check(Tee& tee, Clock::time_point now = Clock::now());

 private:
  std::optional<std::chrono::nanoseconds> upstream_;
  std::vector<std::optional<std::chrono::nanoseconds>> downstream_;
  Clock::time_point source_since_;
  std::uint64_t read_ = 0;
  std::vector<Clock::time_point> since_;
  std::vector<std::uint64_t> written_;
  // The check() that last saw a wait on the source, on each destination:
  // one not waited on in the check before starts its clock.
  std::uint64_t checks_ = 1;  // 0 in waited_: not waited in the check before the first
  std::uint64_t source_waited_ = 0;
  std::vector<std::uint64_t> waited_;
};

// Moves src to every destination until EOF or `length`, waiting with ppoll,
// with the stall timeouts, canceller and progress (bytes read) of `options`.
BYTEPUMP_API TeeResult tee(int src_fd, const std::vector<int>& dst_fds,
                           const TeeOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_TEE_HPP_
