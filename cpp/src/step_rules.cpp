#include "bytepump/detail/step_rules.hpp"

#include <fcntl.h>

#include <algorithm>
#include <new>

#include "bytepump/detail/syscalls.hpp"

namespace bytepump::detail {

void NonblockingFd::prepare(int fd) noexcept {
  restore();
  fd_ = fd;
  if (fd < 0) return;
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK)) return;
  if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0) flags_ = flags;
}

void NonblockingFd::restore() noexcept {
  if (fd_ >= 0 && flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
  flags_ = -1;
}

bool CopyBuffer::reserve(std::size_t capacity) noexcept {
  if (data_) return true;
  data_.reset(new (std::nothrow) char[capacity]);
  if (!data_) {
    errno = ENOMEM;
    return false;
  }
  cap_ = capacity;
  return true;
}

ssize_t CopyBuffer::fill(int fd, std::size_t max, const loff_t* offset) noexcept {
  off_ = len_ = 0;
  std::size_t want = std::min(max, cap_);
  ssize_t n = offset ? pread_retry(fd, data_.get(), want, static_cast<off_t>(*offset))
                     : read_retry(fd, data_.get(), want);
  if (n > 0) len_ = static_cast<std::size_t>(n);
  return n;
}

ssize_t CopyBuffer::drain(int fd) noexcept {
  ssize_t n = write_retry(fd, data_.get() + off_, len_ - off_);
  if (n > 0) off_ += static_cast<std::size_t>(n);
  return n;
}

}  // namespace bytepump::detail
