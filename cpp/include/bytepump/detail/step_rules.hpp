#ifndef BYTEPUMP_DETAIL_STEP_RULES_HPP_
#define BYTEPUMP_DETAIL_STEP_RULES_HPP_

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <memory>

namespace bytepump::detail {

// The rules every step machine shares (Pump, Tee, the frame machines,
// HeadReader, ChunkedPump, PipeEvent): how an fd is prepared for
// nonblocking steps and given back, which errors mean "try again later" or
// "splice can't do this fd", and the read/write path taken then.

// splice() or tee() says the fd kind can't do it (an O_APPEND file, /proc,
// /dev/null, some file systems): fall back to read/write.
inline bool splice_unsupported(int err) noexcept {
  return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == ENOTSUP || err == EXDEV;
}

inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

// One fd a machine switched to O_NONBLOCK for its run (a blocking-mode fd:
// $stdin, a FIFO opened blocking, an inherited socket), and the flags to
// put back. Restoring goes through the fd held now, which may be a dup of
// the one prepared: flags belong to the open file description they share.
class NonblockingFd {
 public:
  // Restores what an earlier prepare() changed, then switches fd to
  // O_NONBLOCK if it is not already (a regular file too: harmless there).
  void prepare(int fd) noexcept;
  // Restores the flags once; later calls do nothing.
  void restore() noexcept;
  // Goes on through another fd for the same open file (a dup).
  void rebind(int fd) noexcept { fd_ = fd; }
  // Drops the fd without touching it (it was closed, its number may be reused).
  void forget() noexcept { fd_ = flags_ = -1; }
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  int flags_ = -1;  // original flags to restore, or -1 if untouched
};

// The size of a read/write fallback's buffer.
constexpr std::size_t kCopyChunk = 256 * 1024;

// The read/write fallback for an fd that splice refuses: bytes pass
// through a user-space buffer, taken by read (or pread at an offset) and
// handed on by write, a short write keeping the rest for the next drain.
class CopyBuffer {
 public:
  // Allocates the buffer once; false (errno ENOMEM) when that fails.
  bool reserve(std::size_t capacity) noexcept;
  bool reserved() const noexcept { return data_ != nullptr; }
  std::size_t capacity() const noexcept { return cap_; }
  // Bytes taken and not yet written.
  std::size_t pending() const noexcept { return len_ - off_; }
  const char* pending_data() const noexcept { return data_.get() + off_; }
  // Reads up to `max` (at most the capacity) into the empty buffer, at
  // `offset` when one is given: the count (0 at EOF), or -1 with errno.
  ssize_t fill(int fd, std::size_t max, const loff_t* offset = nullptr) noexcept;
  // Writes pending bytes to fd: the count, or -1 with errno.
  ssize_t drain(int fd) noexcept;
  // Forgets pending bytes.
  void clear() noexcept { off_ = len_ = 0; }
  // The whole buffer, as scratch space (CRC reads) while nothing is pending.
  char* scratch() noexcept { return data_.get(); }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0;
  std::size_t off_ = 0;
  std::size_t len_ = 0;
};

// A path through one pipe of ours (src -> pipe -> dst) whose ends fall
// back to read/write one by one when splice refuses them: `in` holds what
// was read from the source and not yet written into the pipe, `out` what
// was read from the pipe and not yet written to the destination.
struct SpliceFallbacks {
  bool src = false;
  bool dst = false;
  CopyBuffer in;
  CopyBuffer out;
  std::size_t pending() const noexcept { return in.pending() + out.pending(); }
};

}  // namespace bytepump::detail

#endif  // BYTEPUMP_DETAIL_STEP_RULES_HPP_
