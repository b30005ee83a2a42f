#include "bytepump/detail/syscalls.hpp"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace bytepump::detail {
namespace {

ssize_t libc_splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                    unsigned int flags) {
  return ::splice(fd_in, off_in, fd_out, off_out, len, flags);
}

ssize_t libc_tee(int fd_in, int fd_out, size_t len, unsigned int flags) {
  return ::tee(fd_in, fd_out, len, flags);
}

constexpr Syscalls kLibc{libc_splice, ::read, ::pread, ::write, ::sendfile, ::recv, libc_tee};

std::atomic<const Syscalls*> current{&kLibc};

template <typename F>
ssize_t retry(F&& call) noexcept {
  ssize_t n;
  do {
    n = call();
  } while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace

const Syscalls& real_syscalls() noexcept { return kLibc; }

const Syscalls& syscalls() noexcept { return *current.load(std::memory_order_acquire); }

const Syscalls* set_syscalls(const Syscalls* table) noexcept {
  return current.exchange(table ? table : &kLibc, std::memory_order_acq_rel);
}

ssize_t splice_retry(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                     unsigned int flags) noexcept {
  return retry([&] { return syscalls().splice(fd_in, off_in, fd_out, off_out, len, flags); });
}

ssize_t read_retry(int fd, void* buf, size_t count) noexcept {
  return retry([&] { return syscalls().read(fd, buf, count); });
}

ssize_t pread_retry(int fd, void* buf, size_t count, off_t offset) noexcept {
  return retry([&] { return syscalls().pread(fd, buf, count, offset); });
}

ssize_t write_retry(int fd, const void* buf, size_t count) noexcept {
  return retry([&] { return syscalls().write(fd, buf, count); });
}

ssize_t sendfile_retry(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  return retry([&] { return syscalls().sendfile(out_fd, in_fd, offset, count); });
}

ssize_t recv_retry(int fd, void* buf, size_t len, int flags) noexcept {
  return retry([&] { return syscalls().recv(fd, buf, len, flags); });
}

ssize_t tee_retry(int fd_in, int fd_out, size_t len, unsigned int flags) noexcept {
  return retry([&] { return syscalls().tee(fd_in, fd_out, len, flags); });
}

}  // namespace bytepump::detail
