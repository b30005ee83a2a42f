#include "bytepump/canceller.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <thread>

namespace bytepump {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(Canceller, CancelMakesTheFdReadableAndResetRearms) {
  Canceller c;
  EXPECT_FALSE(c.cancelled());
  EXPECT_FALSE(readable(c.fd()));
  c.cancel();
  c.cancel();
  EXPECT_TRUE(c.cancelled());
  EXPECT_TRUE(readable(c.fd()));
  c.reset();
  EXPECT_FALSE(c.cancelled());
  EXPECT_FALSE(readable(c.fd()));
}

TEST(Canceller, WakesAPollerInAnotherThread) {
  Canceller c;
  std::thread t([&] { c.cancel(); });
  pollfd p{c.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
  t.join();
}

}  // namespace
}  // namespace bytepump
