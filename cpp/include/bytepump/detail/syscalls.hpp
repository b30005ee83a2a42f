#ifndef BYTEPUMP_DETAIL_SYSCALLS_HPP_
#define BYTEPUMP_DETAIL_SYSCALLS_HPP_

#include <sys/types.h>

#include <cstddef>

#include "bytepump/export.hpp"

namespace bytepump::detail {

// The syscall seam: every data-moving syscall of the core goes through this
// table, so tests can inject EINTR, EAGAIN, short transfers and failures.
struct Syscalls {
  ssize_t (*splice)(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                    unsigned int flags);
  ssize_t (*read)(int fd, void* buf, size_t count);
  ssize_t (*pread)(int fd, void* buf, size_t count, off_t offset);
  ssize_t (*write)(int fd, const void* buf, size_t count);
  ssize_t (*sendfile)(int out_fd, int in_fd, off_t* offset, size_t count);
  ssize_t (*recv)(int fd, void* buf, size_t len, int flags);
  ssize_t (*tee)(int fd_in, int fd_out, size_t len, unsigned int flags);
};

// The libc implementations.
BYTEPUMP_API const Syscalls& real_syscalls() noexcept;
// The table in use (process-wide).
BYTEPUMP_API const Syscalls& syscalls() noexcept;
// Installs a table (nullptr restores libc) and returns the previous one.
// Tests only: not meant to be switched while transfers run.
BYTEPUMP_API const Syscalls* set_syscalls(const Syscalls* table) noexcept;

// Wrappers that retry EINTR; they return -1 with errno set on failure.
ssize_t splice_retry(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                     unsigned int flags) noexcept;
ssize_t read_retry(int fd, void* buf, size_t count) noexcept;
ssize_t pread_retry(int fd, void* buf, size_t count, off_t offset) noexcept;
ssize_t write_retry(int fd, const void* buf, size_t count) noexcept;
ssize_t sendfile_retry(int out_fd, int in_fd, off_t* offset, size_t count) noexcept;
ssize_t recv_retry(int fd, void* buf, size_t len, int flags) noexcept;
ssize_t tee_retry(int fd_in, int fd_out, size_t len, unsigned int flags) noexcept;

}  // namespace bytepump::detail

#endif  // BYTEPUMP_DETAIL_SYSCALLS_HPP_
