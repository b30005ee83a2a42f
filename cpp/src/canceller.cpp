#include "bytepump/canceller.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace bytepump {

Canceller::Canceller() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot create eventfd");
}

Canceller::~Canceller() { ::close(fd_); }

void Canceller::cancel() noexcept {
  cancelled_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  // EAGAIN only when the counter is saturated: it is readable then anyway.
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void Canceller::reset() noexcept {
  std::uint64_t value;
  while (::read(fd_, &value, sizeof value) < 0 && errno == EINTR) {
  }
  cancelled_.store(false, std::memory_order_release);
}

}  // namespace bytepump
