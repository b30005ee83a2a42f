#include "bytepump/detail/pipe_pool.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

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

TEST(PipePool, SizesShareTheQuotaAndNeverGoBelowTheDefault) {
  constexpr std::size_t MiB = std::size_t{1} << 20;
  EXPECT_EQ(pipe_size_for(MiB, 0, SIZE_MAX), MiB);             // root: no quota
  EXPECT_EQ(pipe_size_for(MiB, 0, 64 * MiB), MiB);             // plenty left
  EXPECT_EQ(pipe_size_for(MiB, 56 * MiB, 64 * MiB), MiB / 2);  // a sixteenth of 8 MiB
  EXPECT_EQ(pipe_size_for(MiB, 63 * MiB, 64 * MiB), kDefaultPipeSize);
  EXPECT_EQ(pipe_size_for(MiB, 80 * MiB, 64 * MiB), kDefaultPipeSize);  // over it
  EXPECT_EQ(pipe_size_for(4096, 0, 64 * MiB), 4096u);                   // a small ask stays small
  // Many transfers at once: the sizes taper as the quota fills, instead of
  // the first 64 taking all of it.
  std::size_t in_use = 0, big = 0;
  for (int i = 0; i < 1000; ++i) {
    std::size_t size = pipe_size_for(MiB, in_use, 64 * MiB);
    big += size == MiB;
    in_use += size;
  }
  EXPECT_LT(big, 64u);
}

TEST(PipePool, IdlePipesHoldAtMostABoundedShareOfTheQuota) {
  std::vector<Pipe> pipes;
  for (int i = 0; i < 8; ++i) pipes.push_back(acquire_pipe(std::size_t{1} << 20));
  std::size_t held = pipe_bytes_in_use();
  EXPECT_GE(held, pooled_capacity());
  for (const Pipe& p : pipes) release_pipe(p, true);
  EXPECT_LE(pooled_capacity(), kMaxPooledBytes);
  EXPECT_EQ(pipe_bytes_in_use(), pooled_capacity());  // nothing handed out is left counted
  EXPECT_EQ(pooled_bytes(), 0u);
  // What the pool kept is still usable at the size asked for.
  Pipe again = acquire_pipe(std::size_t{1} << 20);
  ASSERT_TRUE(again.valid());
  EXPECT_EQ(static_cast<std::size_t>(::fcntl(again.write_fd, F_GETPIPE_SZ)), again.capacity);
  release_pipe(again, true);
}

TEST(PipePool, AForkedChildNeverSharesThePoolWithItsParent) {
  Pipe parent = acquire_pipe(65536);
  release_pipe(parent, true);
  ASSERT_GE(pooled_pipes(), 1u);
  struct stat theirs;
  ASSERT_EQ(::fstat(parent.read_fd, &theirs), 0);
  pid_t child = ::fork();
  if (child == 0) {
    bool fresh = pooled_pipes() == 0;
    Pipe p = acquire_pipe(65536);
    // A new pipe may reuse the closed copies' fd numbers: compare identities.
    struct stat mine;
    bool distinct = ::fstat(p.read_fd, &mine) == 0 && mine.st_ino != theirs.st_ino;
    ::_exit(fresh && p.valid() && distinct ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(pooled_pipes(), 1u);  // the parent's pool is untouched
}

// A pipe made before the fork and given back in the child (a machine the
// child's GC frees) is the parent's too: the child closes its copy and never
// pools it, so no later transfer in the child shares a pipe with the parent.
TEST(PipePool, APipeMadeBeforeAForkIsNeverPooledAfterIt) {
  Pipe held = acquire_pipe(65536);
  ASSERT_TRUE(held.valid());
  pid_t child = ::fork();
  if (child == 0) {
    release_pipe(held, true);
    bool closed = ::fcntl(held.read_fd, F_GETFD) < 0 && errno == EBADF;
    ::_exit(pooled_pipes() == 0 && closed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::size_t before = pooled_pipes();
  release_pipe(held, true);  // the parent's own pipe still pools
  EXPECT_EQ(pooled_pipes(), before + 1);
}

void hold_briefly(void* locked) {
  static_cast<std::promise<void>*>(locked)->set_value();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

// Another thread holds the pool's lock when this one forks: the child must
// still get pipes (before the fix its copy of the lock stayed locked forever).
TEST(PipePool, AForkWhileAnotherThreadHoldsTheLockLeavesTheChildUsable) {
  ASSERT_TRUE(fork_safe());
  std::promise<void> locked;
  std::thread holder(with_pool_locked, hold_briefly, &locked);
  locked.get_future().wait();
  pid_t child = ::fork();
  if (child == 0) {
    ::alarm(5);  // a deadlocked child dies of SIGALRM instead of hanging the test
    Pipe p = acquire_pipe(65536);
    bool ok = p.valid();
    release_pipe(p, true);
    ::_exit(ok ? 0 : 1);
  }
  holder.join();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "child killed by signal " + std::to_string(WTERMSIG(status))
                              : "child exited " + std::to_string(WEXITSTATUS(status)));
}

}  // namespace
}  // namespace bytepump::detail
