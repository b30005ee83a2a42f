#include "bytepump/sigpipe.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace bytepump {
namespace {

TEST(SigpipeGuard, WriteToAClosedPipeIsEpipeAndTheSignalIsConsumed) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  {
    SigpipeGuard guard;
    EXPECT_EQ(::write(p[1], "x", 1), -1);
    EXPECT_EQ(errno, EPIPE);
  }
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  EXPECT_EQ(sigismember(&mask, SIGPIPE), 0);
  ::close(p[1]);
}

}  // namespace
}  // namespace bytepump
