#ifndef BYTEPUMP_STEP_HPP_
#define BYTEPUMP_STEP_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "bytepump/canceller.hpp"
#include "bytepump/export.hpp"

// The types every step machine shares (Pump, Tee, the frame machines, the
// HTTP fd machines, PipeEvent) and its drivers read: sides, statuses, what a
// step asks for, the counts, the per-side stall clock and what a blocking
// driver takes. The fd rules they share are in detail/step_rules.hpp, the
// drivers' adapters in detail/drive.hpp.
namespace bytepump {

using Clock = std::chrono::steady_clock;

// Which end of a transfer: upstream is the source, downstream the destination.
enum class Side : std::uint8_t { none, upstream, downstream };

enum class Status : std::uint8_t {
  running,
  done,                // source exhausted (EOF or length reached), all bytes written
  timeout_upstream,    // the source made no progress for its stall timeout
  timeout_downstream,  // the destination accepted nothing for its stall timeout
  cancelled,           // a Canceller fired or the driver aborted
  error,               // a syscall failed; see Result::error and error_side
};

enum class Strategy : std::uint8_t {
  splice_direct,  // one side is a pipe: splice straight from src to dst
  sendfile,       // a regular file into a socket or file: sendfile(2), the kernel's own splice
  splice_pipe,    // splice through an intermediate pipe from the pool
  copy,           // read/write through a user-space buffer (splice unsupported)
};

enum class Interest : std::uint8_t { readable, writable };

BYTEPUMP_API const char* to_string(Side side) noexcept;
BYTEPUMP_API const char* to_string(Status status) noexcept;
BYTEPUMP_API const char* to_string(Strategy strategy) noexcept;

struct Result {
  std::uint64_t bytes_read = 0;     // taken from the source (prefix included)
  std::uint64_t bytes_written = 0;  // delivered to the destination
  Status status = Status::running;
  int error = 0;  // errno when status == error
  Side error_side = Side::none;
  Strategy strategy = Strategy::splice_pipe;
  // CRC-32 of the bytes written, when Options::crc32 asked for it.
  std::uint32_t crc32 = 0;

  // Bytes taken from the source but never delivered (left in the pipe or
  // buffer when the transfer ended early).
  std::uint64_t stranded() const noexcept { return bytes_read - bytes_written; }
  bool ok() const noexcept { return status == Status::done; }
};

// What a blocking driver reads (pump(), tee(), read_frame(), write_frame(),
// pump_body(), pump_chunked()): the stall timeouts, progress and cancel.
struct DriveOptions {
  // Stall timeouts: how long a side may make no progress.
  std::optional<std::chrono::nanoseconds> upstream_timeout;
  std::optional<std::chrono::nanoseconds> downstream_timeout;
  // Called with the bytes newly moved (written; a tee: read), between steps.
  std::function<void(std::uint64_t)> progress;
  // Ends the drive promptly from another thread.
  const Canceller* canceller = nullptr;

  // Sets both stall timeouts.
  DriveOptions& timeout(std::chrono::nanoseconds t) {
    upstream_timeout = downstream_timeout = t;
    return *this;
  }
};

// What a step() asks of its driver.
struct Step {
  enum class Kind : std::uint8_t {
    done,  // the transfer ended; see Pump::result()
    wait,  // wait until `fd` is ready for `interest`, then step() again
    more,  // the step budget ran out; step() again right away
  };
  Kind kind = Kind::done;
  int fd = -1;
  Interest interest = Interest::readable;
  Side side = Side::none;
  // A wait may also end when this fd is ready (-1: none): a buffered pump
  // blocked on its destination still drains its source. Drivers that can
  // watch one fd only wait on `fd` for short slices instead.
  int also_fd = -1;
  Interest also_interest = Interest::readable;

  // A wait on `side`: readable on the source `src`, writable on the
  // destination `dst`.
  static Step wait_on(Side side, int src, int dst) noexcept {
    Step s;
    s.kind = Kind::wait;
    s.side = side;
    s.fd = side == Side::upstream ? src : dst;
    s.interest = side == Side::upstream ? Interest::readable : Interest::writable;
    return s;
  }
};

// Tracks per-side stall deadlines for a driver. Call before every wait.
class BYTEPUMP_API StallClock {
 public:
  StallClock(std::optional<std::chrono::nanoseconds> upstream,
             std::optional<std::chrono::nanoseconds> downstream,
             Clock::time_point now = Clock::now()) noexcept;
  // How long the driver may wait on `side` now: nullopt is forever, zero or
  // less means that side has stalled for its whole timeout.
  std::optional<std::chrono::nanoseconds> remaining(const Result& result, Side side,
                                                    Clock::time_point now = Clock::now()) noexcept;

 private:
  std::optional<std::chrono::nanoseconds> upstream_;
  std::optional<std::chrono::nanoseconds> downstream_;
  Side side_ = Side::none;
  Clock::time_point since_;
  std::uint64_t read_ = 0;
  std::uint64_t written_ = 0;
};

}  // namespace bytepump

#endif  // BYTEPUMP_STEP_HPP_
