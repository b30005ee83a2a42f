// Faults injected through the syscall seam: EINTR, EAGAIN, short transfers,
// splice refusing an fd kind, hard failures.
#include "bytepump/detail/syscalls.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "bytepump/pump.hpp"
#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using detail::real_syscalls;
using detail::set_syscalls;
using detail::Syscalls;

struct Faults {
  int eintr_every = 0;            // every Nth call fails with EINTR
  int eagain_every = 0;           // every Nth splice fails with EAGAIN
  std::size_t max_len = 0;        // cap every transfer (short reads/writes)
  int splice_in_errno = 0;        // splice whose fd_out is not `dst` fails
  int splice_out_errno = 0;       // splice into `dst` fails
  int write_errno_after = -1;     // write fails with ENOSPC after N bytes
  int sendfile_errno = EINVAL;    // sendfile fails so (by default: most tests aim at splice)
  long sendfile_errno_after = 0;  // ... once this many bytes were written
  int dst = -1;
  std::atomic<long> calls{0};
  std::atomic<long> eintrs{0};
  std::atomic<long> written{0};
};
Faults* faults = nullptr;

bool inject_eintr() {
  long n = ++faults->calls;
  if (faults->eintr_every && n % faults->eintr_every == 0) {
    ++faults->eintrs;
    errno = EINTR;
    return true;
  }
  return false;
}

std::size_t cap(std::size_t len) {
  return faults->max_len && len > faults->max_len ? faults->max_len : len;
}

ssize_t fault_splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len, unsigned flags) {
  if (inject_eintr()) return -1;
  if (faults->eagain_every && faults->calls % faults->eagain_every == 1) {
    errno = EAGAIN;
    return -1;
  }
  int injected = out == faults->dst ? faults->splice_out_errno : faults->splice_in_errno;
  if (injected) {
    errno = injected;
    return -1;
  }
  return real_syscalls().splice(in, off_in, out, off_out, cap(len), flags);
}

ssize_t fault_read(int fd, void* buf, size_t len) {
  if (inject_eintr()) return -1;
  return real_syscalls().read(fd, buf, cap(len));
}

ssize_t fault_pread(int fd, void* buf, size_t len, off_t off) {
  if (inject_eintr()) return -1;
  return real_syscalls().pread(fd, buf, cap(len), off);
}

ssize_t fault_write(int fd, const void* buf, size_t len) {
  if (inject_eintr()) return -1;
  if (faults->write_errno_after >= 0 && faults->written >= faults->write_errno_after) {
    errno = ENOSPC;
    return -1;
  }
  ssize_t n = real_syscalls().write(fd, buf, cap(len));
  if (n > 0) faults->written += n;
  return n;
}

ssize_t fault_sendfile(int out, int in, off_t* off, size_t len) {
  if (inject_eintr()) return -1;
  if (faults->sendfile_errno && faults->written >= faults->sendfile_errno_after) {
    errno = faults->sendfile_errno;
    return -1;
  }
  ssize_t n = real_syscalls().sendfile(out, in, off, cap(len));
  if (n > 0) faults->written += n;
  return n;
}

constexpr Syscalls kFaulty{fault_splice,   fault_read, fault_pread, fault_write,
                           fault_sendfile, ::recv,     ::tee};

class Seam : public ::testing::Test {
 protected:
  void SetUp() override {
    faults = &f;
    set_syscalls(&kFaulty);
  }
  void TearDown() override {
    set_syscalls(nullptr);
    faults = nullptr;
  }

  // file -> unix socket, the through-pipe strategy.
  std::pair<std::string, Result> run(const std::string& data, Options o = {}) {
    int src = temp_file(data);
    FdPair dst = unix_pair();
    f.dst = dst.ours;
    auto got = std::async(std::launch::async, [peer = dst.peer] { return read_all(peer); });
    Result r = pump(src, dst.ours, o);
    ::shutdown(dst.ours, SHUT_WR);
    ::close(src);
    return {got.get(), r};
  }

  Faults f;
};

TEST_F(Seam, EintrIsRetriedEverywhere) {
  f.eintr_every = 2;
  const std::string data = pattern(2 << 20);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(got == data);
  EXPECT_GT(f.eintrs.load(), 0);
}

TEST_F(Seam, SpuriousEagainOnlyCausesAWait) {
  f.eagain_every = 3;
  const std::string data = pattern(1 << 20);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(got == data);
}

TEST_F(Seam, ShortTransfersAddUpExactly) {
  f.max_len = 1000;
  const std::string data = pattern(300001);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.bytes_written, data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(Seam, SpliceUnsupportedFallsBackToCopy) {
  f.splice_in_errno = EINVAL;
  f.max_len = 7777;
  const std::string data = pattern(500000);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.strategy, Strategy::copy);
  EXPECT_EQ(r.bytes_written, data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(Seam, OutSpliceRefusedAfterBytesReachedThePipeLosesNothing) {
  f.splice_out_errno = EOPNOTSUPP;
  const std::string data = pattern(3 << 20);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.strategy, Strategy::copy);
  EXPECT_EQ(r.bytes_read, data.size());
  EXPECT_EQ(r.bytes_written, data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(Seam, ENOSYSFromADirectSpliceFallsBackToCopy) {
  f.splice_in_errno = ENOSYS;
  f.splice_out_errno = ENOSYS;
  const std::string data = pattern(100000);
  FdPair src = pipe_pair(true);
  int dst = temp_file();
  std::thread writer([&] {
    write_all(src.peer, data);
    src.close_peer();
  });
  Result r = pump(src.ours, dst);
  writer.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.strategy, Strategy::copy);
  EXPECT_EQ(read_file(dst), data);
  ::close(dst);
}

TEST_F(Seam, SendfileSurvivesEintrAndShortTransfers) {
  f.sendfile_errno = 0;
  f.eintr_every = 3;
  f.max_len = 10000;
  const std::string data = pattern(1 << 20);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.strategy, Strategy::sendfile);
  EXPECT_EQ(r.bytes_written, data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GT(f.eintrs.load(), 0);
}

TEST_F(Seam, SendfileRefusedFallsBackToSpliceThroughAPipe) {
  const std::string data = pattern(1 << 20);
  auto [got, r] = run(data);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.strategy, Strategy::splice_pipe);
  EXPECT_TRUE(got == data);
}

TEST_F(Seam, SendfileFailureMidwayKeepsExactCountsAndTheFilePosition) {
  f.sendfile_errno = ECONNRESET;
  f.sendfile_errno_after = 200000;
  f.max_len = 65536;
  const std::string data = pattern(1 << 20);
  int src = temp_file(data);
  FdPair dst = unix_pair();
  auto got = std::async(std::launch::async, [peer = dst.peer] { return read_all(peer); });
  Result r = pump(src, dst.ours);
  ::shutdown(dst.ours, SHUT_WR);
  std::string received = got.get();
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, ECONNRESET);
  EXPECT_EQ(r.error_side, Side::downstream);
  EXPECT_EQ(r.bytes_written, received.size());
  EXPECT_EQ(r.stranded(), 0u);
  EXPECT_EQ(::lseek(src, 0, SEEK_CUR), static_cast<off_t>(received.size()));
  EXPECT_TRUE(received == data.substr(0, received.size()));
  ::close(src);
}

TEST_F(Seam, HardReadFailureIsUpstreamWithTheCount) {
  f.splice_in_errno = EIO;
  auto [got, r] = run(pattern(1000));
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EIO);
  EXPECT_EQ(r.error_side, Side::upstream);
  EXPECT_EQ(r.bytes_written, 0u);
}

TEST_F(Seam, WriteFailureInCopyModeIsDownstreamWithExactCounts) {
  f.splice_in_errno = EINVAL;
  f.write_errno_after = 100000;
  const std::string data = pattern(1 << 20);
  auto [got, r] = run(data);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, ENOSPC);
  EXPECT_EQ(r.error_side, Side::downstream);
  EXPECT_EQ(r.bytes_written, got.size());
  EXPECT_GE(r.bytes_written, 100000u);
  EXPECT_TRUE(got == data.substr(0, got.size()));
  EXPECT_EQ(r.stranded(), r.bytes_read - got.size());
}

}  // namespace
}  // namespace bytepump::test
