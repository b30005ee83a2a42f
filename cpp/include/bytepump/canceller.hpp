#ifndef BYTEPUMP_CANCELLER_HPP_
#define BYTEPUMP_CANCELLER_HPP_

#include <atomic>

#include "bytepump/export.hpp"

namespace bytepump {

// Lets another thread end a blocking pump() promptly: cancel() makes fd()
// readable, and the driver polls it next to the transfer's own fd.
class BYTEPUMP_API Canceller {
 public:
  // Throws std::system_error when no eventfd can be created.
  Canceller();
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;

  // Safe to call from any thread, any number of times.
  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }
  // Re-arms the canceller for another pump.
  void reset() noexcept;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace bytepump

#endif  // BYTEPUMP_CANCELLER_HPP_
