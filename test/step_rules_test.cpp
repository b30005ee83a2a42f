#include "bytepump/detail/step_rules.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "fd_helpers.hpp"

namespace bytepump::detail {
namespace {

TEST(NonblockingFd, SetsONonblockForTheRunAndRestoresThroughADup) {
  test::FdPair p = test::pipe_pair(true);
  ASSERT_EQ(::fcntl(p.ours, F_GETFL) & O_NONBLOCK, 0);
  NonblockingFd nb;
  nb.prepare(p.ours);
  EXPECT_NE(::fcntl(p.ours, F_GETFL) & O_NONBLOCK, 0);
  int dup = ::fcntl(p.ours, F_DUPFD_CLOEXEC, 3);
  nb.rebind(dup);
  nb.restore();
  EXPECT_EQ(::fcntl(p.ours, F_GETFL) & O_NONBLOCK, 0);  // one open file description
  nb.restore();                                         // once only
  ::close(dup);
}

TEST(NonblockingFd, LeavesAnFdThatWasNonblockingAlone) {
  test::FdPair p = test::pipe_pair(true);
  ASSERT_EQ(::fcntl(p.ours, F_SETFL, ::fcntl(p.ours, F_GETFL) | O_NONBLOCK), 0);
  {
    NonblockingFd nb;
    nb.prepare(p.ours);
    nb.restore();
  }
  EXPECT_NE(::fcntl(p.ours, F_GETFL) & O_NONBLOCK, 0);
}

TEST(CopyBuffer, FillsOnceAndDrainsAcrossShortWrites) {
  test::FdPair src = test::pipe_pair(true);
  test::write_all(src.peer, "hello world");
  CopyBuffer b;
  ASSERT_TRUE(b.reserve(5));
  EXPECT_EQ(b.fill(src.ours, 100), 5);  // at most the capacity
  EXPECT_EQ(b.pending(), 5u);
  int file = test::temp_file();
  EXPECT_EQ(b.drain(file), 5);
  EXPECT_EQ(b.pending(), 0u);
  int at = test::temp_file("0123456789");
  loff_t offset = 6;
  EXPECT_EQ(b.fill(at, 10, &offset), 4);
  EXPECT_EQ(std::string(b.pending_data(), b.pending()), "6789");
  ::close(at);
  EXPECT_EQ(test::read_file(file), "hello");
  ::close(file);
}

}  // namespace
}  // namespace bytepump::detail
