#ifndef BYTEPUMP_DETAIL_PIPE_POOL_HPP_
#define BYTEPUMP_DETAIL_PIPE_POOL_HPP_

#include <cstddef>

#include "bytepump/export.hpp"

namespace bytepump::detail {

// An intermediate kernel pipe: both ends O_CLOEXEC|O_NONBLOCK.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  std::size_t capacity = 0;  // bytes, as reported by F_GETPIPE_SZ
  // The fork generation the pipe was made in: one made before a fork is
  // shared with the other process and is never pooled after it.
  unsigned generation = 0;
  bool valid() const noexcept { return read_fd >= 0; }
};

// Hands out a pooled empty pipe of about `size` bytes, or a new one. Resizing
// is best effort (pipe-max-size and per-user pipe limits apply). On failure
// returns an invalid Pipe and sets errno.
BYTEPUMP_API Pipe acquire_pipe(std::size_t size) noexcept;
// Returns a pipe to the pool if `empty` and the pool has room; closes it
// otherwise. A pipe that may still hold bytes must never be pooled, nor one
// made before this process forked (a machine a child frees, by GC say,
// holds a pipe its parent holds too).
BYTEPUMP_API void release_pipe(Pipe pipe, bool empty) noexcept;
// /dev/null opened for writing once per process (O_CLOEXEC): where discarded
// bytes are spliced. -1 if it cannot be opened.
BYTEPUMP_API int dev_null() noexcept;
// Pipes currently pooled (for tests).
BYTEPUMP_API std::size_t pooled_pipes() noexcept;
// Bytes held by pooled pipes: anything but 0 means a pipe that still held
// bytes was pooled, and a later transfer would deliver them (for tests).
BYTEPUMP_API std::size_t pooled_bytes() noexcept;
// Runs fn(arg) while holding the pool's lock (for tests of fork safety).
BYTEPUMP_API void with_pool_locked(void (*fn)(void*), void* arg) noexcept;
// Whether the pool's fork handlers are installed (pthread_atfork).
BYTEPUMP_API bool fork_safe() noexcept;
// Largest pipe size an unprivileged process may request.
BYTEPUMP_API std::size_t pipe_max_size() noexcept;

// The per-user pipe quota this process sizes its pipes within: the soft
// limit (/proc/sys/fs/pipe-user-pages-soft) in bytes for a non-root user;
// SIZE_MAX for root or when there is none. The kernel counts every pipe the
// user has; bytepump counts its own.
BYTEPUMP_API std::size_t pipe_quota() noexcept;
// Capacity of the pipes bytepump holds now: handed out plus pooled.
BYTEPUMP_API std::size_t pipe_bytes_in_use() noexcept;
// Capacity of the pooled (idle) pipes: at most kMaxPooledBytes.
BYTEPUMP_API std::size_t pooled_capacity() noexcept;
constexpr std::size_t kMaxPooledBytes = std::size_t{2} << 20;
constexpr std::size_t kDefaultPipeSize = 65536;  // what a new pipe gets
// The size to ask for when `requested` is wanted, `in_use` bytes of pipes
// are held and `quota` is the budget: never more than a sixteenth of what is
// left, so that many live transfers share the quota instead of the first few
// taking it all; never less than the default size.
BYTEPUMP_API std::size_t pipe_size_for(std::size_t requested, std::size_t in_use,
                                       std::size_t quota) noexcept;

}  // namespace bytepump::detail

#endif  // BYTEPUMP_DETAIL_PIPE_POOL_HPP_
