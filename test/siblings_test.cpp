// Every machine that moves bytes keeps Pump's promises (issue 16): the same
// cases over Pump, Pump with `buffer`, Tee to one and to three, a frame's
// payload written and read, and HTTP bodies by length and chunked, each
// driven by its blocking driver. Same outcome, same counts, for each.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bytepump/body_pump.hpp"
#include "bytepump/frames.hpp"
#include "bytepump/pump.hpp"
#include "bytepump/sigpipe.hpp"
#include "bytepump/tee.hpp"
#include "fd_helpers.hpp"

namespace bytepump {
namespace {

using namespace std::chrono_literals;
using test::FdPair;
using test::pattern;

// How a drive ended, and the payload bytes the destination got.
struct Outcome {
  Status status;
  std::uint64_t delivered;
};

std::string frame_header(std::size_t size) {
  unsigned char h[6] = {0,
                        9,
                        static_cast<unsigned char>(size >> 24),
                        static_cast<unsigned char>(size >> 16),
                        static_cast<unsigned char>(size >> 8),
                        static_cast<unsigned char>(size)};
  return std::string(reinterpret_cast<char*>(h), 6);
}

std::string chunked(const std::string& data) {
  std::string out;
  for (std::size_t at = 0; at < data.size(); at += 70000) {
    std::string part = data.substr(at, 70000);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

// A frame machine's status as a Pump's: a stall is a timeout of its side.
Status frame_status(FrameStatus s, int error, Side side) {
  if (s == FrameStatus::frame) return Status::done;
  if (s == FrameStatus::error && error == ETIMEDOUT) {
    return side == Side::upstream ? Status::timeout_upstream : Status::timeout_downstream;
  }
  return Status::error;
}

struct Machine {
  const char* name;
  std::function<std::string(const std::string&)> wrap;     // what the source carries
  std::function<std::string(const std::string&)> arrives;  // what the destination gets
  std::function<Outcome(int src, int dst, const Options& o, std::size_t size)> run;
  bool raw_source;  // reads any source (not a framed or HTTP body)
};

std::string same(const std::string& s) { return s; }

Outcome run_tee(int src, int dst, const Options& o, std::size_t extra) {
  std::vector<int> dsts{dst};
  std::vector<FdPair> others;
  std::vector<std::thread> readers;
  for (std::size_t i = 0; i < extra; ++i) {
    others.push_back(test::pipe_pair(false));
    readers.emplace_back([peer = others.back().peer] { test::read_all(peer); });
    dsts.push_back(others.back().ours);
  }
  TeeResult r = tee(src, dsts, o);
  for (FdPair& p : others) test::end_writing(p.ours);
  for (std::thread& t : readers) t.join();
  const TeeDestination& mine = r.destinations.front();
  if (mine.status == Status::timeout_downstream) return {mine.status, mine.bytes_written};
  return {r.status, mine.bytes_written};
}

Outcome run_body(int src, int dst, const Options& o, http::Framing::Kind kind, std::size_t size) {
  http::Framing f;
  f.kind = kind;
  f.length = size;
  BodyPump body(src, dst, f, o);
  pump_body(body, o);
  return {body.result().status, body.result().bytes_written};
}

const std::vector<Machine>& machines() {
  static const std::vector<Machine> all{
      {"Pump", same, same,
       [](int src, int dst, const Options& o, std::size_t) {
         Result r = pump(src, dst, o);
         return Outcome{r.status, r.bytes_written};
       },
       true},
      {"PumpBuffer", same, same,
       [](int src, int dst, const Options& o, std::size_t) {
         Options b = o;
         b.buffer = 4 << 20;
         Result r = pump(src, dst, b);
         return Outcome{r.status, r.bytes_written};
       },
       true},
      {"TeeToOne", same, same,
       [](int src, int dst, const Options& o, std::size_t) { return run_tee(src, dst, o, 0); },
       true},
      {"TeeToThree", same, same,
       [](int src, int dst, const Options& o, std::size_t) { return run_tee(src, dst, o, 2); },
       true},
      {"FrameWritten", same, [](const std::string& d) { return frame_header(d.size()) + d; },
       [](int src, int dst, const Options& o, std::size_t size) {
         FrameWriter writer(dst);
         if (!writer.begin(9, static_cast<std::uint32_t>(size), src))
           return Outcome{Status::error, 0};
         FrameStatus s = write_frame(writer, o);
         std::uint64_t written = writer.result().bytes_written;
         return Outcome{frame_status(s, writer.error(), writer.error_side()),
                        written > 6 ? written - 6 : 0};
       },
       true},
      {"FrameRead", [](const std::string& d) { return frame_header(d.size()) + d; }, same,
       [](int src, int dst, const Options& o, std::size_t) {
         FrameReader reader(src, [dst](const Frame&) { return dst; });
         FrameStatus s = read_frame(reader, o);
         return Outcome{frame_status(s, reader.error(), reader.error_side()),
                        reader.result().bytes_written};
       },
       false},
      {"HttpBodyByLength", same, same,
       [](int src, int dst, const Options& o, std::size_t size) {
         return run_body(src, dst, o, http::Framing::Kind::length, size);
       },
       false},
      {"HttpBodyChunked", chunked, same,
       [](int src, int dst, const Options& o, std::size_t size) {
         return run_body(src, dst, o, http::Framing::Kind::chunked, size);
       },
       false},
  };
  return all;
}

class Siblings : public ::testing::TestWithParam<std::size_t> {
 protected:
  const Machine& m() const { return machines()[GetParam()]; }
  SigpipeGuard quiet_;
};

// Writes chunks into a socket pair's far end, `pause` apart, then closes it.
struct Feeder {
  FdPair pair = test::unix_pair();
  std::thread thread;
  Feeder(std::vector<std::string> chunks, std::chrono::milliseconds pause)
      : thread([this, chunks = std::move(chunks), pause] {
          try {
            for (std::size_t i = 0; i < chunks.size(); ++i) {
              if (i > 0) std::this_thread::sleep_for(pause);
              test::write_all(pair.peer, chunks[i]);
            }
          } catch (const std::runtime_error&) {
          }
          ::shutdown(pair.peer, SHUT_WR);
        }) {}
  ~Feeder() {
    ::shutdown(pair.ours, SHUT_RDWR);
    thread.join();
  }
};

TEST_P(Siblings, AStalledDestinationTimesOutWithExactCounts) {
  const std::string data = pattern(3 << 20, 16);
  Feeder src({m().wrap(data)}, 0ms);
  FdPair dst = test::unix_pair();  // nobody reads until the end
  Options o;
  o.upstream_timeout = 10s;
  o.downstream_timeout = 300ms;
  Outcome out = m().run(src.pair.ours, dst.ours, o, data.size());
  EXPECT_EQ(out.status, Status::timeout_downstream) << to_string(out.status);
  test::end_writing(dst.ours);
  std::string got = test::read_all(dst.peer);
  std::string arrives = m().arrives(data);
  ASSERT_LT(got.size(), arrives.size());
  EXPECT_TRUE(got == arrives.substr(0, got.size()));
  EXPECT_EQ(got.size() - (arrives.size() - data.size()), out.delivered);
}

TEST_P(Siblings, APauseOfTheSourceLongerThanTheDownstreamTimeoutIsNoStall) {
  if (std::string(m().name).rfind("Frame", 0) == 0) {
    GTEST_SKIP() << "the frame drivers have one timeout for both sides";
  }
  const std::string data = pattern(3 << 20, 16), wrapped = m().wrap(data);
  Feeder src({wrapped.substr(0, 1 << 20), wrapped.substr(1 << 20)}, 600ms);
  FdPair dst = test::unix_pair();
  std::string got;
  std::thread reader([&] {
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(dst.peer, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(1ms);
    }
  });
  Options o;
  o.upstream_timeout = 10s;
  o.downstream_timeout = 300ms;
  Outcome out = m().run(src.pair.ours, dst.ours, o, data.size());
  test::end_writing(dst.ours);
  reader.join();
  EXPECT_EQ(out.status, Status::done) << to_string(out.status);
  EXPECT_EQ(out.delivered, data.size());
  EXPECT_TRUE(got == m().arrives(data));
}

TEST_P(Siblings, ABlockingModeSourceStallsWithinItsTimeoutAndStaysBlocking) {
  FdPair src = test::pipe_pair(true);  // blocking, nothing written
  FdPair dst = test::unix_pair();
  Options o;
  o.upstream_timeout = 300ms;
  o.downstream_timeout = 10s;
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {  // a machine that blocks anyway fails, not hangs
    for (int i = 0; i < 100 && !finished; ++i) std::this_thread::sleep_for(50ms);
    if (!finished) test::end_writing(src.peer);
  });
  Outcome out = m().run(src.ours, dst.ours, o, 1000);
  finished = true;
  watchdog.join();
  EXPECT_EQ(out.status, Status::timeout_upstream) << to_string(out.status);
  EXPECT_EQ(out.delivered, 0u);
  EXPECT_EQ(::fcntl(src.ours, F_GETFL) & O_NONBLOCK, 0);
}

TEST_P(Siblings, ProcFilesAndDevNullAreReadAndAnAppendOnlyFileWritten) {
  if (!m().raw_source) GTEST_SKIP() << "reads a framed or HTTP body source";
  int version = ::open("/proc/version", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(version, 0);
  const std::string expected = test::read_all(version);
  ASSERT_EQ(::lseek(version, 0, SEEK_SET), 0);
  int file = test::temp_file("kept\n");
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", file);
  int append = ::open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(append, 0);
  Options o;
  o.timeout(10s);
  Outcome out = m().run(version, append, o, expected.size());
  EXPECT_EQ(out.status, Status::done) << to_string(out.status);
  EXPECT_EQ(out.delivered, expected.size());
  EXPECT_EQ(test::read_file(file), "kept\n" + m().arrives(expected));
  ::close(version);
  if (std::string(m().name).rfind("Frame", 0) != 0) {
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    out = m().run(null, append, o, 0);
    EXPECT_EQ(out.status, Status::done) << to_string(out.status);
    EXPECT_EQ(out.delivered, 0u);
    ::close(null);
  }
  ::close(append);
  ::close(file);
}

INSTANTIATE_TEST_SUITE_P(EveryMachine, Siblings, ::testing::Range<std::size_t>(0, 8),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return std::string(machines()[info.param].name);
                         });

}  // namespace
}  // namespace bytepump
