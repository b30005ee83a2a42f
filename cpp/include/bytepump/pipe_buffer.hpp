#ifndef BYTEPUMP_PIPE_BUFFER_HPP_
#define BYTEPUMP_PIPE_BUFFER_HPP_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <list>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/export.hpp"

namespace bytepump {

// A byte queue kept in kernel pipes (e4pipe's infinitypipe): a list of
// segments, each owning a pipe from the pool and the count of bytes in it.
// Bytes enter and leave by splice(2), so they never enter user space, and
// move between buffers by re-linking whole segments. The fds given must be
// O_NONBLOCK (PipeEvent makes them so): a call never waits, it says EAGAIN.
// Writing to a closed reader raises SIGPIPE, as Pump::step() does: ignore
// it, or hold a SigpipeGuard. Not thread-safe: one owner at a time.
//
// Pipes come from the pool sized within the per-user pipe quota, and go back
// to it once empty; a buffer that can get no more pipe within the quota
// (or any at all) is full for the moment: ENOBUFS.
class BYTEPUMP_API PipeBuffer {
 public:
  static constexpr std::size_t kDefaultMaxSize = std::size_t{64} << 20;

  // `segment_size` is the pipe size each new segment asks the pool for
  // (best effort: pipe-max-size and the quota apply).
  explicit PipeBuffer(std::size_t max_size = kDefaultMaxSize,
                      std::size_t segment_size = std::size_t{1} << 20) noexcept;
  ~PipeBuffer();
  PipeBuffer(PipeBuffer&& other) noexcept;
  PipeBuffer& operator=(PipeBuffer&& other) noexcept;
  PipeBuffer(const PipeBuffer&) = delete;
  PipeBuffer& operator=(const PipeBuffer&) = delete;

  // Reads up to `max` bytes from `fd` into the tail. Returns the bytes
  // moved; 0 at EOF (or for max 0); -1 with errno: EAGAIN when `fd` had
  // nothing, ENOBUFS when the buffer is at max_size() or out of pipes, or
  // the error splice(2) gave (EINVAL: `fd` can't be spliced from).
  ssize_t splice_in(int fd, std::size_t max) noexcept;
  // Writes up to `max` bytes from the head into `fd`. Returns the bytes
  // moved; 0 when the buffer is empty (or for max 0); -1 with errno: EAGAIN
  // when `fd` took nothing, or the error splice(2) gave (EPIPE...).
  ssize_t splice_out(int fd, std::size_t max) noexcept;
  // Moves up to `max` bytes from the head of `src` to the tail of this
  // buffer (at most what fits under max_size()). Whole segments are
  // re-linked with no syscall; only a head segment that is to be split is
  // spliced, pipe to pipe. Returns the bytes moved; when it is less than
  // asked and `src` still holds bytes, errno says why (ENOBUFS: full).
  std::size_t move_from(PipeBuffer& src, std::size_t max) noexcept;
  // Drops up to `max` bytes from the head. Returns the bytes dropped, or -1
  // with errno when none could be.
  ssize_t discard(std::size_t max) noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t max_size() const noexcept { return max_size_; }
  std::size_t segments() const noexcept { return segments_.size(); }
  // Called once per call that changed size(), with the sizes before and
  // after. Replaces any earlier callback; an empty function removes it.
  void on_length_change(std::function<void(std::size_t before, std::size_t after)> callback);

 private:
  struct Segment {
    detail::Pipe pipe;
    std::size_t bytes = 0;
    bool full = false;  // the pipe took no more (slots run out before bytes)
  };

  // The segment to append to, taking a new pipe if the tail is full; null
  // with errno when none can be had.
  Segment* writable_tail() noexcept;
  // Returns emptied head segments' pipes to the pool.
  void drop_empty_head() noexcept;
  void changed(std::size_t before) noexcept;
  void release_all() noexcept;

  std::list<Segment> segments_;
  std::size_t size_ = 0;
  std::size_t max_size_;
  std::size_t segment_size_;
  std::function<void(std::size_t, std::size_t)> on_length_change_;
};

}  // namespace bytepump

#endif  // BYTEPUMP_PIPE_BUFFER_HPP_
