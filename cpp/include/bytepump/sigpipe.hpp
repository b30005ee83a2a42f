#ifndef BYTEPUMP_SIGPIPE_HPP_
#define BYTEPUMP_SIGPIPE_HPP_

#include <signal.h>

#include "bytepump/export.hpp"

namespace bytepump {

// Blocks SIGPIPE in the calling thread for its lifetime, so writing to a
// closed reader fails with EPIPE instead of killing the process. A SIGPIPE
// raised meanwhile is consumed, unless one was already pending before.
// pump() uses it; wrap your own step() loop in one if SIGPIPE is not ignored.
class BYTEPUMP_API SigpipeGuard {
 public:
  SigpipeGuard() noexcept;
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_mask_;
  bool was_pending_ = false;
  bool was_blocked_ = false;
};

}  // namespace bytepump

#endif  // BYTEPUMP_SIGPIPE_HPP_
