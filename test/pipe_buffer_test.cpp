#include "bytepump/pipe_buffer.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/detail/syscalls.hpp"
#include "bytepump/sigpipe.hpp"
#include "fd_helpers.hpp"

namespace bytepump {
namespace {

using test::FdPair;
using test::pattern;

// PipeBuffer's calls are nonblocking on nonblocking fds.
void nonblocking(int fd) { ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0); }

// Drains `buf` into a fresh socket pair and returns what came out.
std::string take_all(PipeBuffer& buf) {
  FdPair out = test::unix_pair();
  nonblocking(out.ours);
  std::string got;
  std::thread reader([&] { got = test::read_all(out.peer); });
  while (!buf.empty()) {
    ssize_t n = buf.splice_out(out.ours, buf.size());
    if (n < 0 && errno != EAGAIN) break;
    if (n < 0) {
      pollfd p{out.ours, POLLOUT, 0};
      ::poll(&p, 1, 1000);
    }
  }
  ::shutdown(out.ours, SHUT_WR);
  reader.join();
  return got;
}

// Fills `buf` from `data` through a UNIX socket, written by a thread.
void fill(PipeBuffer& buf, const std::string& data) {
  FdPair in = test::unix_pair();
  nonblocking(in.ours);
  std::thread writer([&] {
    test::write_all(in.peer, data);
    ::shutdown(in.peer, SHUT_WR);
  });
  for (;;) {
    ssize_t n = buf.splice_in(in.ours, data.size());
    if (n == 0) break;
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      pollfd p{in.ours, POLLIN, 0};
      ::poll(&p, 1, 1000);
    }
  }
  writer.join();
}

struct Counting {
  static std::atomic<int> splices;
  static ssize_t splice(int a, loff_t* b, int c, loff_t* d, size_t e, unsigned f) {
    ++splices;
    return detail::real_syscalls().splice(a, b, c, d, e, f);
  }
};
std::atomic<int> Counting::splices{0};

TEST(PipeBuffer, BytesGoThroughSeveralSegmentsInOrder) {
  const std::string data = pattern(3 << 20);
  {
    PipeBuffer buf(PipeBuffer::kDefaultMaxSize, 65536);
    fill(buf, data);
    EXPECT_EQ(buf.size(), data.size());
    EXPECT_GE(buf.segments(), 3u);
    std::string got = take_all(buf);
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
    EXPECT_EQ(buf.segments(), 0u);  // emptied pipes went back to the pool
  }
  EXPECT_EQ(detail::pooled_bytes(), 0u);
}

TEST(PipeBuffer, EagainWhenTheSourceIsEmptyAndZeroAtEof) {
  PipeBuffer buf;
  FdPair in = test::unix_pair();
  nonblocking(in.ours);
  EXPECT_EQ(buf.splice_in(in.ours, 1000), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(buf.segments(), 0u);  // the pipe taken for it went back
  test::write_all(in.peer, "hello");
  EXPECT_EQ(buf.splice_in(in.ours, 1000), 5);
  ::shutdown(in.peer, SHUT_WR);
  EXPECT_EQ(buf.splice_in(in.ours, 1000), 0);
  EXPECT_EQ(buf.splice_in(in.ours, 0), 0);
  EXPECT_EQ(take_all(buf), "hello");
}

TEST(PipeBuffer, StopsAtItsMaximumSizeWithEnobufs) {
  const std::string data = pattern(300000);
  PipeBuffer buf(100000, 65536);
  FdPair in = test::unix_pair();
  nonblocking(in.ours);
  std::thread writer([&] { test::write_all(in.peer, data); });
  std::size_t got = 0;
  while (got < 100000) {
    ssize_t n = buf.splice_in(in.ours, data.size());
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      continue;
    }
    got += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(got, 100000u);
  EXPECT_EQ(buf.splice_in(in.ours, 1), -1);
  EXPECT_EQ(errno, ENOBUFS);
  EXPECT_EQ(buf.max_size(), 100000u);
  EXPECT_TRUE(take_all(buf) == data.substr(0, 100000));
  ASSERT_EQ(::fcntl(in.ours, F_SETFL, ::fcntl(in.ours, F_GETFL) & ~O_NONBLOCK), 0);
  std::string rest;
  std::thread drain([&] { rest = test::read_all(in.ours); });
  writer.join();
  ::shutdown(in.peer, SHUT_WR);
  drain.join();
  EXPECT_EQ(rest.size(), 200000u);
}

TEST(PipeBuffer, ManySmallArrivalsFillPipeSlotsBeforeBytesAndGoOnInNewSegments) {
  PipeBuffer buf(PipeBuffer::kDefaultMaxSize, 65536);
  FdPair in = test::unix_pair();
  nonblocking(in.ours);
  std::string sent;
  for (int i = 0; i < 100; ++i) {
    std::string piece = pattern(10, static_cast<std::uint32_t>(i + 1));
    ASSERT_EQ(::send(in.peer, piece.data(), piece.size(), 0), 10);
    sent += piece;
  }
  // A UNIX stream socket splices one buffer per message: 16 fill a 64 KiB pipe.
  EXPECT_EQ(buf.splice_in(in.ours, 1 << 20), 1000);
  EXPECT_GE(buf.segments(), 2u);
  EXPECT_EQ(take_all(buf), sent);
}

TEST(PipeBuffer, SpliceOutSaysEagainWhenTheDestinationIsFull) {
  const std::string data = pattern(1 << 20);
  PipeBuffer buf;
  fill(buf, data);
  FdPair out = test::unix_pair();  // nobody reads
  nonblocking(out.ours);
  std::size_t out_total = 0;
  for (;;) {
    ssize_t n = buf.splice_out(out.ours, data.size());
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    out_total += static_cast<std::size_t>(n);
  }
  EXPECT_GT(out_total, 0u);
  EXPECT_EQ(buf.size(), data.size() - out_total);
  std::string first;
  std::thread reader([&] { first = test::read_all(out.peer); });
  ::shutdown(out.ours, SHUT_WR);
  reader.join();
  EXPECT_EQ(first.size(), out_total);
  EXPECT_TRUE(first + take_all(buf) == data);
}

TEST(PipeBuffer, SpliceOutOfAnEmptyBufferIsZeroAndAClosedReaderIsEpipe) {
  SigpipeGuard guard;  // as for Pump::step(): the caller handles SIGPIPE
  PipeBuffer buf;
  FdPair out = test::pipe_pair(false);
  EXPECT_EQ(buf.splice_out(out.ours, 100), 0);
  fill(buf, "abc");
  ::close(out.peer);
  out.peer = -1;
  EXPECT_EQ(buf.splice_out(out.ours, 100), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(buf.size(), 3u);  // nothing lost
}

TEST(PipeBuffer, MoveFromRelinksWholeSegmentsWithoutASyscall) {
  const std::string data = pattern(200000);
  PipeBuffer a(PipeBuffer::kDefaultMaxSize, 65536);
  PipeBuffer b;
  fill(a, data);
  std::size_t segments = a.segments();
  ASSERT_GE(segments, 2u);
  detail::Syscalls table = detail::real_syscalls();
  table.splice = Counting::splice;
  Counting::splices = 0;
  detail::set_syscalls(&table);
  std::size_t moved = b.move_from(a, data.size());
  detail::set_syscalls(nullptr);
  EXPECT_EQ(moved, data.size());
  EXPECT_EQ(Counting::splices.load(), 0);
  EXPECT_EQ(b.segments(), segments);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.segments(), 0u);
  EXPECT_TRUE(take_all(b) == data);
}

TEST(PipeBuffer, MoveFromSplitsOnlyTheHeadSegmentAndKeepsTheOrder) {
  const std::string data = pattern(150000);
  PipeBuffer a(PipeBuffer::kDefaultMaxSize, 65536);
  PipeBuffer b;
  fill(b, "before:");
  fill(a, data);
  detail::Syscalls table = detail::real_syscalls();
  table.splice = Counting::splice;
  Counting::splices = 0;
  detail::set_syscalls(&table);
  std::size_t moved = b.move_from(a, 1000);
  detail::set_syscalls(nullptr);
  EXPECT_EQ(moved, 1000u);
  EXPECT_EQ(Counting::splices.load(), 1);  // one pipe-to-pipe splice
  EXPECT_EQ(a.size(), data.size() - 1000);
  EXPECT_EQ(b.size(), 1007u);
  // The rest: what is left of the split segment, then whole ones.
  EXPECT_EQ(b.move_from(a, SIZE_MAX), data.size() - 1000);
  EXPECT_TRUE(take_all(b) == "before:" + data);
}

TEST(PipeBuffer, MoveFromStopsAtTheDestinationsMaximum) {
  PipeBuffer a;
  PipeBuffer b(5000);
  fill(a, pattern(8000));
  errno = 0;
  EXPECT_EQ(b.move_from(a, SIZE_MAX), 5000u);
  EXPECT_EQ(errno, ENOBUFS);  // the call that filled it says so, as the header promises
  errno = 0;
  EXPECT_EQ(b.move_from(a, SIZE_MAX), 0u);
  EXPECT_EQ(errno, ENOBUFS);
  EXPECT_EQ(a.size(), 3000u);
  EXPECT_EQ(b.move_from(b, 10), 0u);
  EXPECT_TRUE(take_all(b) + take_all(a) == pattern(8000));
}

TEST(PipeBuffer, DiscardDropsExactlyTheHeadBytes) {
  const std::string data = pattern(200000);
  {
    PipeBuffer buf(PipeBuffer::kDefaultMaxSize, 65536);
    fill(buf, data);
    EXPECT_EQ(buf.discard(70000), 70000);
    EXPECT_EQ(buf.size(), 130000u);
    EXPECT_EQ(buf.discard(0), 0);
    EXPECT_TRUE(take_all(buf) == data.substr(70000));
    EXPECT_EQ(buf.discard(10), 0);  // empty
  }
  EXPECT_EQ(detail::pooled_bytes(), 0u);
}

TEST(PipeBuffer, ReportsEveryLengthChangeOncePerCall) {
  PipeBuffer a;
  PipeBuffer b;
  std::vector<std::pair<std::size_t, std::size_t>> seen_a, seen_b;
  a.on_length_change(
      [&](std::size_t before, std::size_t after) { seen_a.emplace_back(before, after); });
  b.on_length_change(
      [&](std::size_t before, std::size_t after) { seen_b.emplace_back(before, after); });
  fill(a, "0123456789");
  a.discard(2);
  b.move_from(a, 5);
  FdPair in = test::unix_pair();
  nonblocking(in.ours);
  a.splice_in(in.ours, 10);  // EAGAIN: no change, no call
  using P = std::pair<std::size_t, std::size_t>;
  EXPECT_EQ(seen_a, (std::vector<P>{{0, 10}, {10, 8}, {8, 3}}));
  EXPECT_EQ(seen_b, (std::vector<P>{{0, 5}}));
  EXPECT_EQ(take_all(b), "23456");
}

TEST(PipeBuffer, FreeingReturnsEmptyPipesAndClosesFullOnesLeakingNoFd) {
  int fds = test::open_fd_count();
  int pooled = static_cast<int>(detail::pooled_pipes());
  {
    PipeBuffer buf(PipeBuffer::kDefaultMaxSize, 65536);
    fill(buf, pattern(300000));
    PipeBuffer moved_to(std::move(buf));
    EXPECT_EQ(buf.size(), 0u);  // NOLINT(bugprone-use-after-move): a moved-from buffer is empty
    EXPECT_EQ(moved_to.size(), 300000u);
  }
  EXPECT_EQ(detail::pooled_bytes(), 0u);
  EXPECT_EQ(test::open_fd_count(), fds + 2 * (static_cast<int>(detail::pooled_pipes()) - pooled));
  EXPECT_LE(detail::pooled_capacity(), detail::kMaxPooledBytes);
}

}  // namespace
}  // namespace bytepump
