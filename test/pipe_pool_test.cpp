#include "bytepump/detail/pipe_pool.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

namespace bytepump::detail {
namespace {

TEST(PipePool, PipesAreNonblockingCloexecAndSizedWithinTheLimit) {
  Pipe p = acquire_pipe(1 << 20);
  ASSERT_TRUE(p.valid());
  EXPECT_TRUE(::fcntl(p.read_fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(p.write_fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(p.read_fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_GE(p.capacity, 4096u);
  EXPECT_LE(p.capacity, std::max<std::size_t>(pipe_max_size(), 65536));
  release_pipe(p, true);
}

TEST(PipePool, EmptyPipesAreReusedAndDirtyOnesClosed) {
  Pipe a = acquire_pipe(65536);
  release_pipe(a, true);
  std::size_t pooled = pooled_pipes();
  Pipe b = acquire_pipe(65536);
  EXPECT_EQ(b.read_fd, a.read_fd);
  EXPECT_EQ(pooled_pipes(), pooled - 1);
  ASSERT_EQ(::write(b.write_fd, "x", 1), 1);
  release_pipe(b, false);
  EXPECT_EQ(pooled_pipes(), pooled - 1);
  EXPECT_LT(::fcntl(b.read_fd, F_GETFD), 0);  // closed
}

}  // namespace
}  // namespace bytepump::detail
