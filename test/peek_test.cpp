#include "bytepump/detail/peek.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/detail/syscalls.hpp"
#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using detail::Peeker;

std::string peek_string(Peeker& p, std::size_t cap = 64) {
  std::string buf(cap, '\0');
  ssize_t n = p.peek(buf.data(), cap);
  return n > 0 ? buf.substr(0, static_cast<std::size_t>(n)) : std::string();
}

TEST(Peeker, RegularFileFollowsThePositionMovedByOthers) {
  int fd = temp_file("0123456789");
  Peeker p(fd);
  ASSERT_EQ(p.error(), 0);
  EXPECT_EQ(peek_string(p), "0123456789");
  ASSERT_TRUE(p.consume(2));
  ASSERT_EQ(::lseek(fd, 5, SEEK_CUR), 7);  // a splice elsewhere took 5 bytes
  EXPECT_EQ(peek_string(p), "789");
  ASSERT_TRUE(p.consume(3));
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 10);
  ::close(fd);
}

TEST(Peeker, PipePeekLeavesTheBytesAndConsumeTakesThem) {
  FdPair src = pipe_pair(true);
  write_all(src.peer, "abcdef");
  Peeker p(src.ours);
  EXPECT_EQ(peek_string(p), "abcdef");
  EXPECT_EQ(peek_string(p), "abcdef");
  ASSERT_TRUE(p.consume(4));
  EXPECT_EQ(peek_string(p), "ef");
}

// A pipe peek tee()s into a scratch pipe and read()s it back: fail the read.
ssize_t failing_read(int, void*, size_t) {
  errno = EIO;
  return -1;
}

TEST(Peeker, AScratchPipeLeftHoldingBytesIsNeverPooled) {
  FdPair src = pipe_pair(true);
  write_all(src.peer, "stranded");
  {
    Peeker p(src.ours);
    detail::Syscalls table = detail::real_syscalls();
    table.read = failing_read;
    detail::set_syscalls(&table);
    char buf[16];
    EXPECT_EQ(p.peek(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EIO);
    detail::set_syscalls(nullptr);
  }
  // Every pooled pipe must be empty, or the next transfer would deliver
  // someone else's bytes.
  EXPECT_EQ(detail::pooled_bytes(), 0u);
}

}  // namespace
}  // namespace bytepump::test
