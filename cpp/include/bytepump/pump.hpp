#ifndef BYTEPUMP_PUMP_HPP_
#define BYTEPUMP_PUMP_HPP_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "bytepump/canceller.hpp"
#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/pipe_buffer.hpp"
#include "bytepump/step.hpp"

namespace bytepump {

// A Pump's options, and its blocking driver's.
struct Options : DriveOptions {
  // Stop after this many bytes (prefix included); unset means until EOF.
  std::optional<std::uint64_t> length;
  // Read a regular-file source from this offset, leaving its position alone.
  // Without it a regular file is read from its current position, which ends
  // right after the last byte delivered.
  std::optional<std::uint64_t> offset;
  // Requested size of the intermediate pipe (best effort).
  std::size_t pipe_size = std::size_t{1} << 20;
  // Bytes delivered before any from the source (e.g. data a caller already
  // buffered from it). Counted as read. Must outlive the transfer.
  std::string_view prefix;
  // A step() returns Kind::more after moving this many bytes, so drivers get
  // to report progress and handle interrupts on endless fast sources.
  std::size_t step_budget = std::size_t{8} << 20;
  // Computes the CRC-32 of the bytes delivered into Result::crc32, going on
  // from this value (0 starts afresh). The destination still gets the bytes
  // by splice; the checksum reads a tee(2) copy of the pipe.
  std::optional<std::uint32_t> crc32;
  // Read-ahead for a slow destination: up to this many bytes taken from the
  // source wait in a PipeBuffer (kernel pipes, within the pipe quota) while
  // the destination is slow, so a fast source is drained and done early.
  // 0: one pipe, as usual. Used between two streams (no pipe on either
  // side, no regular-file source) without crc32.
  std::size_t buffer = 0;
  // A regular-file source is read up to the size it had when the transfer
  // started, as IO.copy_stream does: no call is spent finding EOF, and bytes
  // appended meanwhile are not sent. false reads it until EOF (a growing
  // file). A file that reports size 0 (/proc) is always read until EOF.
  bool stop_at_size = true;

  // Sets both stall timeouts.
  Options& timeout(std::chrono::nanoseconds t) {
    DriveOptions::timeout(t);
    return *this;
  }
};

// The transfer step machine. step() makes nonblocking syscalls until one
// would block, then says what it waits for. It never sleeps or polls for long;
// drivers (pump(), the Ruby binding, an event loop) do the waiting.
//
// While it runs, socket, pipe and device fds are switched to O_NONBLOCK;
// finish() (also run by the destructor) restores the flags, moves a
// regular-file source's position right after the last byte delivered and
// returns the pipe to the pool, or closes it if it still holds bytes.
class BYTEPUMP_API Pump {
 public:
  Pump(int src_fd, int dst_fd, const Options& options = {}) noexcept;
  ~Pump();
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  Step step() noexcept;
  // Ends a running transfer with `why`: a timeout, cancelled, or error with
  // the driver's own errno (a failed wait).
  void abort(Status why, int error = 0) noexcept;
  void finish() noexcept;
  // Forget the fds without touching them again (no flag restore, no seek):
  // for drivers that learn the fds were closed, and their numbers possibly
  // reused, while the pump ran.
  void detach() noexcept;
  // Moves the pump onto other fds for the same open files (dup(2)s of the
  // ones it was given): flags and file positions are shared between
  // duplicates, so nothing else changes. For drivers that start on borrowed
  // fds and take their own copies only when the transfer outlasts a step.
  void rebind(int src_fd, int dst_fd) noexcept;
  // The bytes still to deliver when that is known up front (a `length`, or
  // a regular file read up to its size; a pending prefix included), else
  // nullopt. EOF may still come sooner.
  std::optional<std::uint64_t> known_remaining() const noexcept;
  const Result& result() const noexcept { return result_; }
  // Prefix bytes (Options::prefix) not delivered: a caller that took them
  // from its own read buffer puts them back there when the pump ends early.
  std::size_t prefix_left() const noexcept { return prefix_.size() - prefix_off_; }

 private:
  enum class Mode : std::uint8_t { direct, sendfile, through_pipe, buffered, copy };

  bool reading_done() const noexcept;
  std::size_t want(std::size_t cap) const noexcept;
  bool more_known_to_follow(std::uint64_t after_this_read) const noexcept;
  loff_t* src_offset() noexcept { return src_file_ ? &pos_ : nullptr; }
  Step wait_for(Side side) const noexcept;
  Step fail(int err, Side side) noexcept;
  Step complete() noexcept;
  bool switch_to_copy() noexcept;
  bool switch_to_pipe() noexcept;
  Side direct_error_side(int err) const noexcept;
  // Counts a call that moved bytes straight from src to dst (no pipe or
  // buffer between); a zero count is EOF. False if the call failed.
  bool count_straight(ssize_t n, std::uint64_t& moved) noexcept;
  Side direct_blocked_side() const noexcept;

  // Each returns a Step to hand to the driver, or nullopt to keep going.
  std::optional<Step> write_pending(std::uint64_t& moved) noexcept;
  std::optional<Step> step_direct(std::uint64_t& moved) noexcept;
  std::optional<Step> step_sendfile(std::uint64_t& moved) noexcept;
  std::optional<Step> step_through_pipe(std::uint64_t& moved) noexcept;
  std::optional<Step> step_buffered(std::uint64_t& moved) noexcept;
  std::optional<Step> step_copy() noexcept;
  // Checksums the pipe's bytes from a tee(2) copy; false with errno.
  bool checksum_pipe() noexcept;
  void checksum(const char* data, std::size_t len) noexcept;

  int src_;
  int dst_;
  Mode mode_ = Mode::through_pipe;
  Result result_;
  std::optional<std::uint64_t> length_;
  std::size_t pipe_size_;
  std::size_t step_budget_;
  std::string_view prefix_;
  std::size_t prefix_off_ = 0;

  bool src_file_ = false;  // regular file: read by offset
  bool src_pipe_ = false;
  bool dst_pipe_ = false;
  bool explicit_offset_ = false;
  loff_t pos_ = 0;  // next source offset to read (regular files)
  loff_t start_pos_ = 0;
  std::uint64_t src_size_ = 0;
  bool stop_at_size_ = false;  // the end of a regular-file source is src_size_
  bool src_eof_ = false;

  detail::Pipe pipe_;
  std::uint64_t in_pipe_ = 0;
  std::unique_ptr<PipeBuffer> buffer_;  // Mode::buffered
  std::size_t buffer_cap_ = 0;
  bool src_blocked_ = false;  // the last splice into the pipe said EAGAIN
  bool copy_pending_ = false;

  bool crc_ = false;
  detail::Pipe crc_pipe_;        // receives the tee(2) copies
  std::uint64_t crc_ready_ = 0;  // bytes at the pipe's head already checksummed
  bool crc_ok_ = true;           // crc_pipe_ is empty

  detail::CopyBuffer copy_;  // Mode::copy, and scratch space for the CRC

  detail::NonblockingFd src_nb_;
  detail::NonblockingFd dst_nb_;
  bool finished_ = false;
  bool detached_ = false;
};

// Moves bytes from src_fd to dst_fd until EOF, `length`, a stall timeout, a
// cancel or an error, waiting with poll(). Never throws for transfer errors:
// they are in the Result. The progress callback may throw; the pump is then
// cleaned up and the exception propagates.
BYTEPUMP_API Result pump(int src_fd, int dst_fd, const Options& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_PUMP_HPP_
