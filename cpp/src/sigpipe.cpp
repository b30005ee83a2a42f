#include "bytepump/sigpipe.hpp"

#include <pthread.h>
#include <time.h>

#include <cerrno>

namespace bytepump {

SigpipeGuard::SigpipeGuard() noexcept {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
  was_blocked_ = sigismember(&old_mask_, SIGPIPE) == 1;
}

SigpipeGuard::~SigpipeGuard() {
  if (!was_pending_) {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
  }
  if (!was_blocked_) pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace bytepump
