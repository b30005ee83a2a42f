#include "bytepump/tee.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/syscalls.hpp"
#include "bytepump/sigpipe.hpp"

namespace bytepump {
namespace {

constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

using detail::splice_unsupported;
using detail::would_block;

}  // namespace

bool TeeResult::ok() const noexcept {
  if (status != Status::done) return false;
  for (const TeeDestination& d : destinations) {
    if (!d.ok()) return false;
  }
  return true;
}

Tee::Tee(int src_fd, const std::vector<int>& dst_fds, const TeeOptions& options)
    : src_(src_fd),
      length_(options.length),
      pipe_size_(options.pipe_size),
      step_budget_(std::max<std::size_t>(options.step_budget, 1)),
      lanes_(dst_fds.size()),
      sink_(dst_fds.empty() ? kNone : dst_fds.size() - 1),
      nb_(dst_fds.size()) {
  result_.destinations.resize(dst_fds.size());
  for (std::size_t i = 0; i < dst_fds.size(); ++i) result_.destinations[i].fd = dst_fds[i];
  if (dst_fds.empty() || src_fd < 0) {
    fail(Status::error, dst_fds.empty() ? EINVAL : EBADF,
         dst_fds.empty() ? Side::downstream : Side::upstream);
    return;
  }
  src_nb_.prepare(src_fd);
  for (std::size_t i = 0; i < dst_fds.size(); ++i) nb_[i].prepare(dst_fds[i]);
  main_ = detail::acquire_pipe(pipe_size_);
  if (!main_.valid()) {
    fail(Status::error, errno, Side::none);
    return;
  }
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    if (i == sink_) continue;
    // As big as the main pipe, so a tee of a whole chunk into an empty lane
    // always fits (in bytes and in pipe buffers).
    lanes_[i].pipe = detail::acquire_pipe(main_.capacity);
    if (!lanes_[i].pipe.valid()) {
      fail(Status::error, errno, Side::none);
      return;
    }
    if (lanes_[i].pipe.capacity < main_.capacity) {
      fail(Status::error, ENOBUFS, Side::none);
      return;
    }
  }
}

Tee::~Tee() { finish(); }

void Tee::finish() noexcept {
  if (finished_) return;
  finished_ = true;
  if (result_.status == Status::running) result_.status = Status::cancelled;
  for (std::size_t i = lanes_.size(); i-- > 0;) {
    nb_[i].restore();
    detail::release_pipe(lanes_[i].pipe, lanes_[i].queued == 0);
    lanes_[i].pipe = detail::Pipe{};
  }
  src_nb_.restore();
  detail::release_pipe(main_, chunk_ == 0);
  main_ = detail::Pipe{};
}

Step Tee::fail(Status status, int error, Side side) noexcept {
  result_.status = status;
  result_.error = error;
  result_.error_side = side;
  for (TeeDestination& d : result_.destinations) {
    if (d.status == Status::running) d.status = Status::cancelled;
  }
  finish();
  return Step{};
}

void Tee::abort(Status why, int error) noexcept {
  if (result_.status != Status::running) return;
  fail(why, error, why == Status::timeout_upstream ? Side::upstream : Side::none);
}

void Tee::drop(std::size_t i, Status status, int error) noexcept {
  if (i >= lanes_.size() || !alive(i)) return;
  result_.destinations[i].status = status;
  result_.destinations[i].error = error;
  detail::release_pipe(lanes_[i].pipe, lanes_[i].queued == 0);
  lanes_[i].pipe = detail::Pipe{};
  lanes_[i].queued = 0;
  lanes_[i].copy.clear();
  // The main pipe's chunk then goes to /dev/null once every lane has it.
  if (i == sink_) sink_ = kNone;
}

bool Tee::reading_done() const noexcept {
  return src_eof_ || (length_ && result_.bytes_read >= *length_);
}

ssize_t Tee::take_chunk(std::size_t want) noexcept {
  if (!src_copying_) {
    ssize_t n =
        detail::splice_retry(src_, nullptr, main_.write_fd, nullptr, want, SPLICE_F_NONBLOCK);
    if (n >= 0 || !splice_unsupported(errno)) {
      if (n > 0) result_.bytes_read += static_cast<std::uint64_t>(n);
      return n;
    }
    if (!src_copy_.reserve(std::min(detail::kCopyChunk, main_.capacity))) return -1;
    src_copying_ = true;
  }
  if (src_copy_.pending() == 0) {
    ssize_t n = src_copy_.fill(src_, want);
    if (n <= 0) return n;
    result_.bytes_read += static_cast<std::uint64_t>(n);
  }
  // Into the empty main pipe, which holds what one read can take.
  ssize_t n = src_copy_.drain(main_.write_fd);
  if (n == 0) errno = EIO;
  return n > 0 ? n : -1;
}

ssize_t Tee::deliver(std::size_t i, int from, std::uint64_t& held) noexcept {
  Lane& lane = lanes_[i];
  int fd = result_.destinations[i].fd;
  if (!lane.copying) {
    ssize_t n = detail::splice_retry(from, nullptr, fd, nullptr, static_cast<std::size_t>(held),
                                     SPLICE_F_NONBLOCK);
    if (n > 0) {
      held -= static_cast<std::uint64_t>(n);
      return n;
    }
    if (n == 0) errno = EIO;
    if (n == 0 || !splice_unsupported(errno)) return n < 0 && would_block(errno) ? 0 : -1;
    if (!lane.copy.reserve(std::min(detail::kCopyChunk, main_.capacity))) return -1;
    lane.copying = true;
  }
  if (lane.copy.pending() == 0) {
    ssize_t n = lane.copy.fill(from, static_cast<std::size_t>(held));
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return -1;
    }
    held -= static_cast<std::uint64_t>(n);
  }
  ssize_t n = lane.copy.drain(fd);
  if (n > 0) return n;
  if (n == 0) errno = EIO;
  return n < 0 && would_block(errno) ? 0 : -1;
}

Step Tee::step() noexcept {
  if (result_.status != Status::running) return Step{};
  std::uint64_t moved = 0;
  for (;;) {
    if (moved >= step_budget_) {
      Step s;
      s.kind = Step::Kind::more;
      return s;
    }
    bool progress = false;
    if (chunk_ == 0 && (!reading_done() || src_copy_.pending() > 0)) {
      std::size_t want = std::min(main_.capacity, src_copying_ ? src_copy_.capacity() : SIZE_MAX);
      if (length_)
        want =
            static_cast<std::size_t>(std::min<std::uint64_t>(want, *length_ - result_.bytes_read));
      ssize_t n = take_chunk(want);
      if (n > 0) {
        chunk_ = static_cast<std::uint64_t>(n);
        for (Lane& lane : lanes_) lane.teed = false;
        progress = true;
      } else if (n == 0) {
        src_eof_ = true;
        progress = true;
      } else if (!would_block(errno)) {
        return fail(Status::error, errno, Side::upstream);
      }
    }
    bool all_teed = true;
    for (std::size_t i = 0; chunk_ > 0 && i < lanes_.size(); ++i) {
      if (i == sink_ || !alive(i) || lanes_[i].teed) continue;
      if (lanes_[i].queued > 0) {
        all_teed = false;  // the lane drains the last chunk first
        continue;
      }
      ssize_t n = detail::tee_retry(main_.read_fd, lanes_[i].pipe.write_fd,
                                    static_cast<std::size_t>(chunk_), SPLICE_F_NONBLOCK);
      if (n == static_cast<ssize_t>(chunk_)) {
        lanes_[i].teed = true;
        lanes_[i].queued = chunk_;
        progress = true;
      } else if (n > 0) {
        lanes_[i].queued = static_cast<std::uint64_t>(n);  // released dirty by drop
        drop(i, Status::error, EIO);  // a partial copy can't be completed: tee restarts at the head
      } else if (!would_block(errno)) {
        drop(i, Status::error, errno);
      } else {
        all_teed = false;
      }
    }
    // The chunk leaves the main pipe only once every lane holds its copy
    // (into the sink's buffer when splice refused the sink).
    bool sink_copy_pending = sink_ != kNone && lanes_[sink_].copy.pending() > 0;
    if ((chunk_ > 0 && all_teed) || sink_copy_pending) {
      ssize_t n;
      if (sink_ != kNone) {
        std::uint64_t held = all_teed ? chunk_ : 0;
        n = deliver(sink_, main_.read_fd, held);
        if (all_teed) chunk_ = held;
        if (n > 0) result_.destinations[sink_].bytes_written += static_cast<std::uint64_t>(n);
      } else {
        // Every destination dropped its share: the chunk goes nowhere.
        n = detail::splice_retry(main_.read_fd, nullptr, detail::dev_null(), nullptr,
                                 static_cast<std::size_t>(chunk_), SPLICE_F_NONBLOCK);
        if (n <= 0) return fail(Status::error, n == 0 ? EIO : errno, Side::none);
        chunk_ -= static_cast<std::uint64_t>(n);
        n = 0;  // delivered to no destination
        progress = true;
      }
      if (n > 0) {
        moved += static_cast<std::uint64_t>(n);
        progress = true;
      } else if (n < 0) {
        drop(sink_, Status::error, errno);
        progress = true;
      }
    }
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      if (i == sink_ || !alive(i) || waiting_in(i) == 0) continue;
      ssize_t n = deliver(i, lanes_[i].pipe.read_fd, lanes_[i].queued);
      if (n > 0) {
        result_.destinations[i].bytes_written += static_cast<std::uint64_t>(n);
        moved += static_cast<std::uint64_t>(n);
        progress = true;
      } else if (n < 0) {
        drop(i, Status::error, errno);
        progress = true;
      }
    }
    bool any_alive = false;
    bool all_drained = chunk_ == 0 && src_copy_.pending() == 0;
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      if (!alive(i)) continue;
      any_alive = true;
      if (waiting_in(i) > 0) all_drained = false;
    }
    if (!any_alive) {
      int last = result_.destinations.empty() ? EINVAL : result_.destinations.back().error;
      return fail(Status::error, last, Side::downstream);  // every destination failed
    }
    if (reading_done() && all_drained) {
      for (TeeDestination& d : result_.destinations) {
        if (d.status == Status::running) d.status = Status::done;
      }
      result_.status = Status::done;
      finish();
      return Step{};
    }
    if (progress) continue;
    waits_.clear();
    if (chunk_ == 0 && !reading_done()) waits_.push_back({src_, Interest::readable, -1});
    if (sink_ != kNone && ((chunk_ > 0 && all_teed) || lanes_[sink_].copy.pending() > 0)) {
      waits_.push_back(
          {result_.destinations[sink_].fd, Interest::writable, static_cast<int>(sink_)});
    }
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      if (i != sink_ && alive(i) && waiting_in(i) > 0) {
        waits_.push_back({result_.destinations[i].fd, Interest::writable, static_cast<int>(i)});
      }
    }
    Step s;
    s.kind = Step::Kind::wait;
    if (!waits_.empty()) {
      s.fd = waits_.front().fd;
      s.interest = waits_.front().interest;
      s.side = waits_.front().destination < 0 ? Side::upstream : Side::downstream;
    }
    return s;
  }
}

TeeClock::TeeClock(std::optional<std::chrono::nanoseconds> upstream,
                   std::optional<std::chrono::nanoseconds> downstream, std::size_t destinations,
                   Clock::time_point now)
    : TeeClock(upstream,
               std::vector<std::optional<std::chrono::nanoseconds>>(destinations, downstream),
               now) {}

TeeClock::TeeClock(std::optional<std::chrono::nanoseconds> upstream,
                   std::vector<std::optional<std::chrono::nanoseconds>> downstream,
                   Clock::time_point now)
    : upstream_(upstream),
      downstream_(std::move(downstream)),
      source_since_(now),
      since_(downstream_.size(), now),
      written_(downstream_.size(), 0),
      waited_(downstream_.size(), 0) {}

std::uint64_t TeeClock::progress(const TeeResult& r, Clock::time_point now) {
  std::uint64_t fresh = r.bytes_read - read_;
  if (fresh > 0) {
    read_ = r.bytes_read;
    source_since_ = now;
  }
  for (std::size_t i = 0; i < written_.size() && i < r.destinations.size(); ++i) {
    if (r.destinations[i].bytes_written != written_[i]) {
      written_[i] = r.destinations[i].bytes_written;
      since_[i] = now;
    }
  }
  return fresh;
}

std::optional<Clock::time_point> TeeClock::check(Tee& tee, Clock::time_point now) {
  std::optional<Clock::time_point> deadline;
  bool ended = false;
  const std::uint64_t check = ++checks_;
  for (const Tee::Wait& w : tee.waits()) {
    std::uint64_t& waited =
        w.destination < 0 ? source_waited_ : waited_[static_cast<std::size_t>(w.destination)];
    if (waited + 1 != check) {
      (w.destination < 0 ? source_since_ : since_[static_cast<std::size_t>(w.destination)]) = now;
    }
    waited = check;
    const auto& limit =
        w.destination < 0 ? upstream_ : downstream_[static_cast<std::size_t>(w.destination)];
    if (!limit) continue;
    Clock::time_point d =
        (w.destination < 0 ? source_since_ : since_[static_cast<std::size_t>(w.destination)]) +
        *limit;
    if (d > now) {
      if (!deadline || d < *deadline) deadline = d;
      continue;
    }
    ended = true;
    if (w.destination < 0) {
      tee.abort(Status::timeout_upstream);
      break;  // waits() is no more
    }
    tee.drop(static_cast<std::size_t>(w.destination), Status::timeout_downstream, ETIMEDOUT);
  }
  if (ended) return now;
  return deadline;
}

TeeResult tee(int src_fd, const std::vector<int>& dst_fds, const TeeOptions& options) {
  SigpipeGuard sigpipe;
  Tee t(src_fd, dst_fds, options);
  TeeClock clock(options.upstream_timeout, options.downstream_timeout, dst_fds.size());
  detail::TeePlan plan;
  plan.tee = &t;
  plan.clock = &clock;
  auto end = detail::drive(plan, options.canceller, [&](std::uint64_t read) {
    if (options.progress) options.progress(read);
  });
  if (end == detail::DriveEnd::cancelled) t.abort(Status::cancelled);
  if (end == detail::DriveEnd::poll_failed) t.abort(Status::error, errno);
  return t.result();
}

}  // namespace bytepump
