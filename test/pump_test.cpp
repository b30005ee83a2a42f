#include "bytepump/pump.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include "bytepump/canceller.hpp"
#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/pipe_pool.hpp"
#include "fd_helpers.hpp"

namespace bytepump::test {
namespace {

using namespace std::chrono_literals;

class PumpPairs : public ::testing::TestWithParam<std::tuple<Kind, Kind, std::size_t>> {};

// Runs one transfer of `data` from a `src_kind` fd to a `dst_kind` fd and
// returns what arrived and the result.
std::pair<std::string, Result> transfer(Kind src_kind, Kind dst_kind, const std::string& data,
                                        Options options = {}) {
  int src_fd = -1;
  FdPair src_pair, dst_pair;
  std::thread writer;
  if (src_kind == Kind::file) {
    src_fd = temp_file(data);
  } else {
    src_pair = stream_pair(src_kind, true);
    src_fd = src_pair.ours;
    writer = std::thread([&] {
      write_all(src_pair.peer, data);
      src_pair.close_peer();
    });
  }
  int dst_fd = -1;
  std::future<std::string> received;
  if (dst_kind == Kind::file) {
    dst_fd = temp_file();
  } else {
    dst_pair = stream_pair(dst_kind, false);
    dst_fd = dst_pair.ours;
    received = std::async(std::launch::async, [peer = dst_pair.peer] { return read_all(peer); });
  }
  Result r = pump(src_fd, dst_fd, options);
  if (writer.joinable()) writer.join();
  std::string got;
  if (dst_kind == Kind::file) {
    got = read_file(dst_fd);
    ::close(dst_fd);
  } else {
    if (dst_kind == Kind::pipe) {
      ::close(dst_pair.ours);
      dst_pair.ours = -1;
    } else {
      ::shutdown(dst_pair.ours, SHUT_WR);
    }
    got = received.get();
  }
  if (src_kind == Kind::file) ::close(src_fd);
  return {got, r};
}

TEST_P(PumpPairs, DeliversEveryByteWithExactCounts) {
  auto [src_kind, dst_kind, size] = GetParam();
  const std::string data = pattern(size, static_cast<std::uint32_t>(size));
  auto [got, r] = transfer(src_kind, dst_kind, data);
  ASSERT_EQ(r.status, Status::done) << to_string(r.status) << " errno " << r.error;
  EXPECT_EQ(r.bytes_read, size);
  EXPECT_EQ(r.bytes_written, size);
  EXPECT_EQ(r.stranded(), 0u);
  EXPECT_TRUE(got == data) << "content differs; got " << got.size() << " bytes";
  Strategy expected = Strategy::splice_pipe;
  if (src_kind == Kind::pipe || dst_kind == Kind::pipe) {
    expected = Strategy::splice_direct;
  } else if (src_kind == Kind::file) {
    expected = Strategy::sendfile;
  }
  EXPECT_EQ(r.strategy, expected);
}

// The checksum comes from a tee(2) copy; the bytes still go by splice.
TEST_P(PumpPairs, Crc32OfWhatWasDelivered) {
  auto [src_kind, dst_kind, size] = GetParam();
  const std::string data = pattern(size, static_cast<std::uint32_t>(size) + 5);
  Options options;
  options.crc32 = 0;
  options.prefix = "prefix";
  auto [got, r] = transfer(src_kind, dst_kind, data, options);
  ASSERT_EQ(r.status, Status::done) << to_string(r.status) << " errno " << r.error;
  EXPECT_EQ(got, "prefix" + data);
  auto expected =
      ::crc32(0, reinterpret_cast<const Bytef*>(got.data()), static_cast<uInt>(got.size()));
  EXPECT_EQ(r.crc32, static_cast<std::uint32_t>(expected));
  EXPECT_TRUE(r.strategy == Strategy::splice_pipe || r.strategy == Strategy::copy);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, PumpPairs,
                         ::testing::Combine(::testing::Values(Kind::file, Kind::pipe,
                                                              Kind::unix_socket, Kind::tcp_socket),
                                            ::testing::Values(Kind::file, Kind::pipe,
                                                              Kind::unix_socket, Kind::tcp_socket),
                                            ::testing::Values(0u, 1u, 65535u, 3703701u)),
                         [](const auto& info) {
                           return std::string(kind_name(std::get<0>(info.param))) + "_to_" +
                                  kind_name(std::get<1>(info.param)) + "_" +
                                  std::to_string(std::get<2>(info.param));
                         });

TEST(Pump, FileSourcePositionEndsAfterLastByteDelivered) {
  const std::string data = pattern(100000);
  int src = temp_file(data);
  ::lseek(src, 1000, SEEK_SET);
  int dst = temp_file();
  Options o;
  o.length = 5000;
  Result r = pump(src, dst, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.bytes_written, 5000u);
  EXPECT_EQ(::lseek(src, 0, SEEK_CUR), 6000);
  EXPECT_EQ(::lseek(dst, 0, SEEK_CUR), 5000);
  EXPECT_EQ(read_file(dst), data.substr(1000, 5000));
  ::close(src);
  ::close(dst);
}

TEST(Pump, AFileIsReadUpToItsSizeAtTheStartUnlessToldToFollowIt) {
  for (bool stop_at_size : {true, false}) {
    int src = temp_file("first");
    FdPair dst = pipe_pair(false);
    Options o;
    o.stop_at_size = stop_at_size;
    Pump p(src, dst.ours, o);
    // The file grows after the transfer started.
    ASSERT_EQ(::pwrite(src, "+more", 5, 5), 5);
    while (p.step().kind != Step::Kind::done) {
    }
    p.finish();
    ASSERT_TRUE(p.result().ok());
    ::close(dst.ours);
    dst.ours = -1;
    EXPECT_EQ(read_all(dst.peer), stop_at_size ? "first" : "first+more") << stop_at_size;
    EXPECT_EQ(::lseek(src, 0, SEEK_CUR), stop_at_size ? 5 : 10);
    ::close(src);
  }
}

TEST(Pump, AFileThatReportsSizeZeroIsReadToItsEnd) {
  int src = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(src, 0);
  struct stat st;
  ASSERT_EQ(::fstat(src, &st), 0);
  ASSERT_EQ(st.st_size, 0);
  int dst = temp_file();
  Result r = pump(src, dst);
  ASSERT_TRUE(r.ok()) << to_string(r.status) << r.error;
  EXPECT_GT(r.bytes_written, 0u);
  EXPECT_NE(read_file(dst).find("Name:"), std::string::npos);
  ::close(src);
  ::close(dst);
}

TEST(Pump, KnowsWhatIsLeftOnlyWhenALengthOrAFileSizeSaysSo) {
  const std::string data = pattern(10000);
  int file = temp_file(data);
  ::lseek(file, 1000, SEEK_SET);
  FdPair sink = unix_pair();
  {
    Options o;
    o.prefix = "abc";
    Pump p(file, sink.ours, o);
    EXPECT_EQ(p.known_remaining(), 9003u);  // the prefix, then the file from its position
  }
  {
    Options o;
    o.length = 500;
    Pump p(file, sink.ours, o);
    EXPECT_EQ(p.known_remaining(), 500u);
    ASSERT_EQ(p.step().kind, Step::Kind::done);
    EXPECT_EQ(p.known_remaining(), 0u);
  }
  {
    Options o;
    o.stop_at_size = false;  // a growing file: its end is unknown
    Pump p(file, sink.ours, o);
    EXPECT_EQ(p.known_remaining(), std::nullopt);
  }
  FdPair stream = unix_pair();
  {
    Pump p(stream.ours, sink.ours);
    EXPECT_EQ(p.known_remaining(), std::nullopt);
  }
  {
    Options o;
    o.length = 7;
    Pump p(stream.ours, sink.ours, o);
    EXPECT_EQ(p.known_remaining(), 7u);
  }
  ::close(file);
}

// The Ruby binding's per-call path: start on borrowed fds, move onto
// duplicates when the transfer has to wait, close the borrowed ones.
TEST(Pump, RebindToDuplicatesMidTransferChangesNothingElse) {
  const std::string data = pattern(300000);
  int file = temp_file(data);
  FdPair dst = unix_pair();
  int small = 4096;
  ::setsockopt(dst.ours, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ASSERT_EQ(::fcntl(dst.ours, F_SETFL, ::fcntl(dst.ours, F_GETFL) & ~O_NONBLOCK), 0);
  Pump p(file, dst.ours);
  Step s = p.step();
  ASSERT_EQ(s.kind, Step::Kind::wait);  // nobody reads yet
  EXPECT_EQ(s.side, Side::downstream);
  int file_dup = ::fcntl(file, F_DUPFD_CLOEXEC, 3);
  int dst_dup = ::fcntl(dst.ours, F_DUPFD_CLOEXEC, 3);
  p.rebind(file_dup, dst_dup);
  ::close(file);
  ::close(dst.ours);
  dst.ours = dst_dup;
  std::string got;
  std::thread reader([&] { got = read_all(dst.peer); });
  for (;;) {
    s = p.step();
    if (s.kind == Step::Kind::done) break;
    ASSERT_EQ(s.fd, s.side == Side::upstream ? file_dup : dst_dup);
    pollfd pfd{s.fd, static_cast<short>(s.interest == Interest::readable ? POLLIN : POLLOUT), 0};
    ::poll(&pfd, 1, 1000);
  }
  p.finish();
  EXPECT_TRUE(p.result().ok());
  EXPECT_EQ(p.result().bytes_written, data.size());
  EXPECT_EQ(::lseek(file_dup, 0, SEEK_CUR), static_cast<off_t>(data.size()));
  EXPECT_EQ(::fcntl(dst_dup, F_GETFL) & O_NONBLOCK, 0);  // restored through the duplicate
  ::shutdown(dst.ours, SHUT_WR);
  reader.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  ::close(file_dup);
}

// buffer: with no pipe to be had (out of fds) fails with EMFILE, as a pump
// without buffer: does; it spun on a readable source until its timeout.
TEST(Pump, ABufferedPumpWithNoPipeToBeHadFailsWithEmfile) {
  FdPair src = unix_pair();
  FdPair dst = unix_pair();
  write_all(src.peer, "bytes waiting");
  std::vector<detail::Pipe> held;  // the pool's pipes, so a new one needs fds
  while (detail::pooled_pipes() > 0) held.push_back(detail::acquire_pipe(0));
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit tight = before;
  tight.rlim_cur = static_cast<rlim_t>(test::open_fd_count() + 64);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> fillers;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
  Options o;
  o.buffer = 1 << 20;
  o.timeout(std::chrono::seconds(2));
  Result r = pump(src.ours, dst.ours, o);
  for (int fd : fillers) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &before);
  for (detail::Pipe& p : held) detail::release_pipe(p, true);
  EXPECT_EQ(r.status, Status::error) << to_string(r.status);
  EXPECT_EQ(r.error, EMFILE);
  EXPECT_EQ(r.bytes_read, 0u);
}

// Read-ahead: a fast source is drained into a PipeBuffer while the
// destination takes nothing; the wait then watches both fds.
TEST(Pump, ABufferedPumpDrainsTheSourceWhileTheDestinationIsSlow) {
  const std::string data = pattern(8 << 20);
  FdPair src = unix_pair();
  FdPair dst = unix_pair();  // read only at the end
  Options o;
  o.buffer = 16 << 20;
  o.timeout(std::chrono::seconds(30));
  Pump p(src.ours, dst.ours, o);
  auto step_and_wait = [&] {
    Step s = p.step();
    EXPECT_EQ(s.kind, Step::Kind::wait);
    pollfd fds[2] = {
        {s.fd, static_cast<short>(s.interest == Interest::readable ? POLLIN : POLLOUT), 0},
        {s.also_fd, POLLIN, 0}};
    ::poll(fds, s.also_fd >= 0 ? 2 : 1, 100);
    return s;
  };
  // 4 MiB, far more than the destination socket holds, then the source is
  // idle: the pump waits for the destination and for more from the source.
  std::promise<void> go, fed;
  std::thread feeder([&, started = go.get_future()] {
    write_all(src.peer, data.substr(0, 4 << 20));
    started.wait();
    write_all(src.peer, data.substr(4 << 20));
    ::shutdown(src.peer, SHUT_WR);
    fed.set_value();
  });
  Step s;
  auto give_up = Clock::now() + std::chrono::seconds(10);
  do {
    s = step_and_wait();
  } while (!(s.side == Side::downstream && s.also_fd == src.ours) && Clock::now() < give_up);
  EXPECT_EQ(s.side, Side::downstream);
  EXPECT_EQ(s.also_fd, src.ours);
  // The rest: the source is drained while nobody reads the destination.
  go.set_value();
  auto done_feeding = fed.get_future();
  while (done_feeding.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         Clock::now() < give_up) {
    step_and_wait();
  }
  EXPECT_EQ(done_feeding.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  std::string got;
  std::thread reader([&] { got = read_all(dst.peer); });
  detail::run_to_end(p, o);
  ::shutdown(dst.ours, SHUT_WR);
  reader.join();
  feeder.join();
  EXPECT_TRUE(p.result().ok());
  EXPECT_EQ(p.result().bytes_written, data.size());
  EXPECT_TRUE(got == data);
}

TEST(Pump, AWaitOnAnIdleSourceHoldsNoPipe) {
  FdPair src = stream_pair(Kind::unix_socket, true);
  FdPair dst = stream_pair(Kind::unix_socket, false);
  auto handed_out = [] { return detail::pipe_bytes_in_use() - detail::pooled_capacity(); };
  std::size_t before = handed_out();
  Pump p(src.ours, dst.ours);
  write_all(src.peer, "first");
  Step s = p.step();
  ASSERT_EQ(s.kind, Step::Kind::wait);
  EXPECT_EQ(s.side, Side::upstream);
  EXPECT_EQ(p.result().bytes_written, 5u);
  EXPECT_EQ(handed_out(), before);  // the pipe went back while nothing is in flight
  write_all(src.peer, "second");
  end_writing(src.peer);
  while (p.step().kind != Step::Kind::done) {
  }
  p.finish();
  EXPECT_TRUE(p.result().ok());
  EXPECT_EQ(p.result().bytes_written, 11u);
  EXPECT_EQ(handed_out(), before);
  ::close(dst.ours);
  dst.ours = -1;
  EXPECT_EQ(read_all(dst.peer), "firstsecond");
}

TEST(Pump, ExplicitOffsetLeavesFilePositionAlone) {
  const std::string data = pattern(10000);
  int src = temp_file(data);
  ::lseek(src, 7, SEEK_SET);
  int dst = temp_file();
  Options o;
  o.offset = 2500;
  Result r = pump(src, dst, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.bytes_written, 7500u);
  EXPECT_EQ(::lseek(src, 0, SEEK_CUR), 7);
  EXPECT_EQ(read_file(dst), data.substr(2500));
  ::close(src);
  ::close(dst);
}

TEST(Pump, LengthZeroWithinAndPastEof) {
  const std::string data = pattern(4096);
  for (std::uint64_t length : {0ull, 1ull, 4000ull, 4096ull, 100000ull}) {
    Options o;
    o.length = length;
    auto [got, r] = transfer(Kind::file, Kind::tcp_socket, data, o);
    std::uint64_t expected = std::min<std::uint64_t>(length, data.size());
    ASSERT_TRUE(r.ok()) << length;
    EXPECT_EQ(r.bytes_written, expected) << length;
    EXPECT_EQ(got, data.substr(0, expected)) << length;
  }
}

TEST(Pump, LengthLimitsAStreamSourceAndLeavesTheRestUnread) {
  FdPair src = unix_pair();
  write_all(src.peer, "hello world");
  int dst = temp_file();
  Options o;
  o.length = 5;
  Result r = pump(src.ours, dst, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(read_file(dst), "hello");
  char rest[16] = {};
  EXPECT_EQ(::read(src.ours, rest, sizeof rest), 6);
  EXPECT_STREQ(rest, " world");
  ::close(dst);
}

TEST(Pump, OffsetOnAStreamIsAnUpstreamError) {
  FdPair src = pipe_pair(true);
  int dst = temp_file();
  Options o;
  o.offset = 1;
  Result r = pump(src.ours, dst, o);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, ESPIPE);
  EXPECT_EQ(r.error_side, Side::upstream);
  ::close(dst);
}

TEST(Pump, PrefixGoesFirstAndCountsAgainstLength) {
  const std::string data = pattern(50000);
  Options o;
  o.prefix = "PREFIX:";
  auto [got, r] = transfer(Kind::file, Kind::unix_socket, data, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.bytes_written, data.size() + 7);
  EXPECT_EQ(got, "PREFIX:" + data);

  Options limited;
  limited.prefix = "PREFIX:";
  limited.length = 10;
  auto [got2, r2] = transfer(Kind::file, Kind::pipe, data, limited);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(got2, "PREFIX:" + data.substr(0, 3));

  Options short_limit;
  short_limit.prefix = "PREFIX:";
  short_limit.length = 3;
  auto [got3, r3] = transfer(Kind::file, Kind::pipe, data, short_limit);
  EXPECT_EQ(got3, "PRE");
  EXPECT_EQ(r3.bytes_read, 3u);
}

TEST(Pump, PrefixDoesNotMoveTheFilePositionBack) {
  const std::string data = pattern(3000);
  int src = temp_file(data);
  ::lseek(src, 1000, SEEK_SET);  // as if a caller buffered bytes 0..999
  int dst = temp_file();
  std::string prefix = data.substr(0, 1000);
  Options o;
  o.prefix = prefix;
  Result r = pump(src, dst, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(read_file(dst), data);
  EXPECT_EQ(::lseek(src, 0, SEEK_CUR), 3000);
  ::close(src);
  ::close(dst);
}

TEST(Pump, RestoresTheCallersBlockingFlags) {
  FdPair src = unix_pair();
  FdPair dst = tcp_pair();
  int nonblocking = ::fcntl(dst.ours, F_GETFL) | O_NONBLOCK;
  ::fcntl(dst.ours, F_SETFL, nonblocking);
  int blocking = ::fcntl(src.ours, F_GETFL) & ~O_NONBLOCK;
  ::fcntl(src.ours, F_SETFL, blocking);
  write_all(src.peer, "abc");
  src.close_peer();
  Result r = pump(src.ours, dst.ours);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(::fcntl(src.ours, F_GETFL), blocking);
  EXPECT_EQ(::fcntl(dst.ours, F_GETFL), nonblocking);
}

TEST(Pump, AppendOnlyDestinationFallsBackToCopyAndAppends) {
  char path[] = "/tmp/bytepump-append-XXXXXX";
  int fd = ::mkstemp(path);
  write_all(fd, "existing;");
  ::close(fd);
  int dst = ::open(path, O_RDWR | O_APPEND | O_CLOEXEC);
  ::unlink(path);
  const std::string data = pattern(300000);
  int src = temp_file(data);
  Result r = pump(src, dst);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.strategy, Strategy::copy);
  EXPECT_EQ(r.bytes_written, data.size());
  EXPECT_EQ(read_file(dst), "existing;" + data);
  ::close(src);
  ::close(dst);
}

TEST(Pump, DevZeroToDevNullWithALength) {
  int src = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  int dst = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  Options o;
  o.length = 50'000'000;
  std::uint64_t reported = 0;
  o.progress = [&](std::uint64_t n) { reported += n; };
  Result r = pump(src, dst, o);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.bytes_written, 50'000'000u);
  EXPECT_EQ(reported, 50'000'000u);
  ::close(src);
  ::close(dst);
}

TEST(Pump, StepReturnsMoreWhenItsBudgetRunsOut) {
  int src = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  int dst = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  Options o;
  o.length = 4u << 20;
  o.step_budget = 1u << 20;
  {
    Pump p(src, dst, o);
    int mores = 0;
    for (;;) {
      Step s = p.step();
      if (s.kind == Step::Kind::done) break;
      ASSERT_EQ(s.kind, Step::Kind::more);  // neither end ever blocks
      ++mores;
    }
    EXPECT_TRUE(p.result().ok());
    EXPECT_EQ(p.result().bytes_written, 4u << 20);
    EXPECT_GE(mores, 3);
  }
  ::close(src);
  ::close(dst);
}

TEST(Pump, StepSaysWhichSideItWaitsFor) {
  FdPair src = tcp_pair();
  FdPair dst = tcp_pair();
  Pump p(src.ours, dst.ours);
  Step s = p.step();
  ASSERT_EQ(s.kind, Step::Kind::wait);
  EXPECT_EQ(s.side, Side::upstream);
  EXPECT_EQ(s.fd, src.ours);
  EXPECT_EQ(s.interest, Interest::readable);

  // Fill the destination until it pushes back.
  int small = 4096;
  ::setsockopt(dst.ours, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(dst.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::thread writer([&] {
    std::string chunk = pattern(65536);
    while (::send(src.peer, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
    }
  });
  for (;;) {
    s = p.step();
    if (s.kind == Step::Kind::wait && s.side == Side::downstream) break;
    ASSERT_NE(s.kind, Step::Kind::done);
    if (s.kind == Step::Kind::wait) {
      pollfd pfd{s.fd, POLLIN, 0};
      ::poll(&pfd, 1, 1000);
    }
  }
  EXPECT_EQ(s.fd, dst.ours);
  EXPECT_EQ(s.interest, Interest::writable);
  p.abort(Status::cancelled);
  ::shutdown(src.peer, SHUT_RDWR);  // ends the writer's send with EPIPE
  writer.join();
}

// The event-loop use: one thread, one epoll set, several pumps stepped only
// when the fd each asked for is ready.
TEST(Pump, SeveralPumpsShareOneEpollLoop) {
  constexpr int kPumps = 3;
  const std::string data = pattern(2 << 20);
  std::vector<FdPair> srcs, dsts;
  std::vector<std::thread> peers;
  std::vector<std::future<std::string>> received;
  std::vector<std::unique_ptr<Pump>> pumps;
  for (int i = 0; i < kPumps; ++i) {
    srcs.push_back(i % 2 ? tcp_pair() : unix_pair());
    dsts.push_back(i % 2 ? unix_pair() : tcp_pair());
    pumps.push_back(std::make_unique<Pump>(srcs[i].ours, dsts[i].ours));
  }
  for (int i = 0; i < kPumps; ++i) {
    peers.emplace_back([&, i] {
      write_all(srcs[i].peer, data);
      srcs[i].close_peer();
    });
    received.push_back(
        std::async(std::launch::async, [peer = dsts[i].peer] { return read_all(peer); }));
  }
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  int running = kPumps;
  auto step = [&](int i) {
    for (;;) {
      Step s = pumps[i]->step();
      if (s.kind == Step::Kind::more) continue;
      if (s.kind == Step::Kind::done) {
        --running;
        return;
      }
      epoll_event ev{};
      ev.events = (s.interest == Interest::readable ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT;
      ev.data.u32 = static_cast<std::uint32_t>(i);
      // The fd may already be in the set from an earlier wait: modify, else add.
      if (::epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev) != 0) ::epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
      return;
    }
  };
  for (int i = 0; i < kPumps; ++i) step(i);
  while (running > 0) {
    epoll_event events[kPumps];
    int n = ::epoll_wait(ep, events, kPumps, 5000);
    ASSERT_GT(n, 0) << "no pump became ready";
    for (int k = 0; k < n; ++k) step(static_cast<int>(events[k].data.u32));
  }
  ::close(ep);
  for (auto& t : peers) t.join();
  for (int i = 0; i < kPumps; ++i) {
    EXPECT_TRUE(pumps[i]->result().ok());
    EXPECT_EQ(pumps[i]->result().bytes_written, data.size());
    ::shutdown(dsts[i].ours, SHUT_WR);
    EXPECT_TRUE(received[i].get() == data);
  }
}

TEST(Pump, UpstreamStallTimesOutWithTheCountSoFar) {
  FdPair src = tcp_pair();
  FdPair dst = unix_pair();
  write_all(src.peer, "partial");
  Options o;
  o.upstream_timeout = 80ms;
  auto start = Clock::now();
  Result r = pump(src.ours, dst.ours, o);
  auto took = Clock::now() - start;
  EXPECT_EQ(r.status, Status::timeout_upstream);
  EXPECT_EQ(r.bytes_written, 7u);
  EXPECT_GE(took, 80ms);
  EXPECT_LT(took, 5s);
  char got[8] = {};
  EXPECT_EQ(::read(dst.peer, got, sizeof got), 7);
}

TEST(Pump, DownstreamStallTimesOutAndShowsStrandedBytes) {
  FdPair src = tcp_pair();
  FdPair dst = tcp_pair();  // nobody reads dst.peer
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string chunk = pattern(65536);
    while (!stop) {
      if (::send(src.peer, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    }
  });
  std::size_t pooled_before = detail::pooled_pipes();
  Options o;
  o.downstream_timeout = 100ms;
  o.upstream_timeout = 10s;
  Result r = pump(src.ours, dst.ours, o);
  EXPECT_EQ(r.status, Status::timeout_downstream);
  EXPECT_GT(r.bytes_written, 0u);
  EXPECT_GE(r.bytes_read, r.bytes_written);
  EXPECT_EQ(r.stranded(), r.bytes_read - r.bytes_written);
  if (r.stranded() > 0) {
    EXPECT_LE(detail::pooled_pipes(), pooled_before);
  }
  stop = true;
  ::shutdown(src.peer, SHUT_RDWR);
  writer.join();
}

TEST(Pump, CancellerEndsABlockedPumpPromptly) {
  FdPair src = unix_pair();
  FdPair dst = unix_pair();
  Canceller c;
  Options o;
  o.canceller = &c;
  auto start = Clock::now();
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    c.cancel();
  });
  Result r = pump(src.ours, dst.ours, o);
  t.join();
  EXPECT_EQ(r.status, Status::cancelled);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(Pump, ClosedReaderIsEpipeNotADeadProcess) {
  const std::string data = pattern(200000);
  int src = temp_file(data);
  FdPair dst = pipe_pair(false);
  dst.close_peer();
  Result r = pump(src, dst.ours);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EPIPE);
  EXPECT_EQ(r.error_side, Side::downstream);
  EXPECT_EQ(r.bytes_written, 0u);
  EXPECT_EQ(::lseek(src, 0, SEEK_CUR), 0);
  ::close(src);
}

TEST(Pump, PeerResetMidTransferReportsTheDownstreamErrorAndCount) {
  FdPair src = unix_pair();
  FdPair dst = tcp_pair();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string chunk = pattern(65536);
    while (!stop) {
      if (::send(src.peer, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    }
  });
  std::thread resetter([&] {
    char buf[65536];
    std::size_t got = 0;
    while (got < 1 << 20) {
      ssize_t n = ::read(dst.peer, buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    linger l{1, 0};
    ::setsockopt(dst.peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(dst.peer);
  });
  Result r = pump(src.ours, dst.ours);
  resetter.join();
  dst.peer = -1;
  EXPECT_EQ(r.status, Status::error);
  EXPECT_TRUE(r.error == ECONNRESET || r.error == EPIPE) << r.error;
  EXPECT_EQ(r.error_side, Side::downstream);
  EXPECT_GE(r.bytes_written, 1u << 20);
  stop = true;
  ::shutdown(src.peer, SHUT_RDWR);
  writer.join();
}

TEST(Pump, BadDescriptorsAreErrorsOnTheirSide) {
  Result r = pump(-1, 1);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EBADF);
  EXPECT_EQ(r.error_side, Side::upstream);
  int fd = temp_file();
  Result same = pump(fd, fd);
  EXPECT_EQ(same.error, EINVAL);
  ::close(fd);
}

TEST(Pump, TheTwoEndsOfOnePipeAreRefused) {
  FdPair p = pipe_pair(true);
  write_all(p.peer, "loop");
  Result r = pump(p.ours, p.peer);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_EQ(r.error_side, Side::none);
}

TEST(Pump, WriteOnlySourceIsAnUpstreamError) {
  int src = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  int dst = temp_file();
  Result r = pump(src, dst);
  EXPECT_EQ(r.status, Status::error);
  EXPECT_EQ(r.error, EBADF);
  EXPECT_EQ(r.error_side, Side::upstream);
  ::close(src);
  ::close(dst);
}

TEST(Pump, CleanTransfersReuseTheirPipeAndLeakNoFds) {
  const std::string data = pattern(10000);
  transfer(Kind::unix_socket, Kind::tcp_socket, data);  // warm the pool
  int before = open_fd_count();
  for (int i = 0; i < 300; ++i) {
    auto [got, r] = transfer(Kind::unix_socket, Kind::unix_socket, data);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.strategy, Strategy::splice_pipe);
    ASSERT_EQ(got, data);
  }
  EXPECT_EQ(open_fd_count(), before);
  EXPECT_GE(detail::pooled_pipes(), 1u);
}

TEST(Pump, ProgressExceptionPropagatesAndCleansUp) {
  const std::string data = pattern(3 << 20);
  int src = temp_file(data);
  FdPair dst = unix_pair();
  std::thread reader([&] { read_all(dst.peer); });
  int flags = ::fcntl(dst.ours, F_GETFL);
  Options o;
  o.progress = [](std::uint64_t) { throw std::runtime_error("stop"); };
  EXPECT_THROW(pump(src, dst.ours, o), std::runtime_error);
  EXPECT_EQ(::fcntl(dst.ours, F_GETFL), flags);
  ::shutdown(dst.ours, SHUT_WR);
  reader.join();
  ::close(src);
}

TEST(StallClock, CountsFromTheFirstWaitWithoutProgress) {
  auto t0 = Clock::now();
  StallClock clock(100ms, 200ms, t0);
  Result r;
  EXPECT_EQ(*clock.remaining(r, Side::upstream, t0 + 30ms), 100ms);
  EXPECT_EQ(*clock.remaining(r, Side::upstream, t0 + 90ms), 40ms);
  r.bytes_read = 10;  // upstream progress restarts its clock
  EXPECT_EQ(*clock.remaining(r, Side::upstream, t0 + 150ms), 100ms);
  EXPECT_EQ(*clock.remaining(r, Side::upstream, t0 + 260ms), -10ms);
  // Switching sides starts the other side's stall afresh.
  EXPECT_EQ(*clock.remaining(r, Side::downstream, t0 + 300ms), 200ms);
  StallClock unlimited(std::nullopt, std::nullopt, t0);
  EXPECT_FALSE(unlimited.remaining(r, Side::downstream, t0 + 1h).has_value());
}

}  // namespace
}  // namespace bytepump::test
