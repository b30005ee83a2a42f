#include "bytepump/pump.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <new>

#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/detail/syscalls.hpp"

namespace bytepump {
namespace {

constexpr std::size_t kDirectChunk = 1 << 20;
// Bounds one sendfile() call, which runs to completion without waiting.
constexpr std::size_t kSendfileChunk = 4 << 20;

using detail::splice_unsupported;
using detail::would_block;

bool ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0 && p.revents != 0;
}

}  // namespace

Pump::Pump(int src_fd, int dst_fd, const Options& options) noexcept
    : src_(src_fd),
      dst_(dst_fd),
      length_(options.length),
      pipe_size_(options.pipe_size),
      step_budget_(std::max<std::size_t>(options.step_budget, 1)),
      prefix_(options.prefix),
      explicit_offset_(options.offset.has_value()),
      crc_(options.crc32.has_value()) {
  if (length_ && prefix_.size() > *length_) prefix_ = prefix_.substr(0, *length_);
  result_.bytes_read = prefix_.size();
  if (crc_) {
    result_.crc32 = *options.crc32;
    checksum(prefix_.data(), prefix_.size());
  }
  if (src_fd < 0 || dst_fd < 0) {
    fail(EBADF, src_fd < 0 ? Side::upstream : Side::downstream);
    return;
  }
  if (src_fd == dst_fd) {
    fail(EINVAL, Side::none);
    return;
  }
  struct stat src_st, dst_st;
  if (::fstat(src_fd, &src_st) != 0) {
    fail(errno, Side::upstream);
    return;
  }
  if (::fstat(dst_fd, &dst_st) != 0) {
    fail(errno, Side::downstream);
    return;
  }
  src_pipe_ = S_ISFIFO(src_st.st_mode);
  dst_pipe_ = S_ISFIFO(dst_st.st_mode);
  if (src_pipe_ && dst_pipe_ && src_st.st_ino == dst_st.st_ino && src_st.st_dev == dst_st.st_dev) {
    fail(EINVAL, Side::none);  // the two ends of one pipe would feed themselves
    return;
  }
  if (S_ISREG(src_st.st_mode)) {
    src_file_ = true;
    src_size_ = static_cast<std::uint64_t>(src_st.st_size);
    stop_at_size_ = options.stop_at_size && src_size_ > 0;
    if (options.offset) {
      pos_ = static_cast<loff_t>(*options.offset);
    } else {
      off_t here = ::lseek(src_fd, 0, SEEK_CUR);
      if (here < 0) {
        fail(errno, Side::upstream);
        return;
      }
      pos_ = here;
    }
    start_pos_ = pos_;
  } else if (options.offset) {
    fail(ESPIPE, Side::upstream);
    return;
  }
  if (!S_ISREG(src_st.st_mode)) src_nb_.prepare(src_fd);
  if (!S_ISREG(dst_st.st_mode)) dst_nb_.prepare(dst_fd);

  if (crc_) {
    // Only bytes resting in a pipe of our own can be tee'd for the checksum.
    bool have_buffer = copy_.reserve(detail::kCopyChunk);
    if (have_buffer) crc_pipe_ = detail::acquire_pipe(pipe_size_);
    if (!have_buffer || !crc_pipe_.valid() || !switch_to_pipe()) fail(errno, Side::none);
  } else if (src_pipe_ || dst_pipe_) {
    mode_ = Mode::direct;
    result_.strategy = Strategy::splice_direct;
  } else if (src_file_) {
    // sendfile() splices through the kernel's own per-thread pipe in one
    // call: measurably faster than two splice() calls for file -> socket.
    mode_ = Mode::sendfile;
    result_.strategy = Strategy::sendfile;
  } else if (options.buffer > 0) {
    buffer_.reset(new (std::nothrow) PipeBuffer(options.buffer, pipe_size_));
    if (!buffer_) {
      fail(ENOMEM, Side::none);
      return;
    }
    buffer_cap_ = options.buffer;
    mode_ = Mode::buffered;
    result_.strategy = Strategy::splice_pipe;
  } else if (!switch_to_pipe()) {
    fail(errno, Side::none);
  }
}

bool Pump::switch_to_pipe() noexcept {
  pipe_ = detail::acquire_pipe(pipe_size_);
  if (!pipe_.valid()) return false;
  mode_ = Mode::through_pipe;
  result_.strategy = Strategy::splice_pipe;
  return true;
}

Pump::~Pump() { finish(); }

bool Pump::reading_done() const noexcept {
  return src_eof_ || (length_ && result_.bytes_read >= *length_) ||
         (stop_at_size_ && static_cast<std::uint64_t>(pos_) >= src_size_);
}

std::size_t Pump::want(std::size_t cap) const noexcept {
  std::uint64_t left = cap;
  if (length_) left = std::min<std::uint64_t>(left, *length_ - result_.bytes_read);
  if (stop_at_size_ && static_cast<std::uint64_t>(pos_) < src_size_) {
    left = std::min<std::uint64_t>(left, src_size_ - static_cast<std::uint64_t>(pos_));
  }
  return static_cast<std::size_t>(left);
}

// SPLICE_F_MORE only when more data is known to follow: it corks the last
// segment of a short response otherwise. Only a regular file is known to have
// its next bytes ready; a stream's next bytes may be long in coming.
bool Pump::more_known_to_follow(std::uint64_t after_this_read) const noexcept {
  if (src_eof_ || !src_file_) return false;
  bool below_length = !length_ || after_this_read < *length_;
  return below_length && static_cast<std::uint64_t>(pos_) < src_size_;
}

Step Pump::wait_for(Side side) const noexcept { return Step::wait_on(side, src_, dst_); }

Step Pump::fail(int err, Side side) noexcept {
  result_.status = Status::error;
  result_.error = err;
  result_.error_side = side;
  finish();
  return Step{};
}

Step Pump::complete() noexcept {
  result_.status = Status::done;
  finish();
  return Step{};
}

void Pump::abort(Status why, int error) noexcept {
  if (result_.status != Status::running) return;
  result_.status = why;
  result_.error = error;
  finish();
}

void Pump::finish() noexcept {
  if (finished_) return;
  finished_ = true;
  if (result_.status == Status::running) result_.status = Status::cancelled;
  // Restore in reverse order: src and dst may share one open file description.
  if (detached_) {
    dst_nb_.forget();
    src_nb_.forget();
  }
  dst_nb_.restore();
  src_nb_.restore();
  // In sendfile mode without an explicit offset the kernel kept the
  // position (see step_sendfile); other modes read at pos_.
  if (!detached_ && src_file_ && !explicit_offset_ && mode_ != Mode::sendfile) {
    std::uint64_t from_fd = result_.bytes_written - prefix_off_;
    ::lseek(src_, static_cast<off_t>(start_pos_ + static_cast<loff_t>(from_fd)), SEEK_SET);
  }
  detail::release_pipe(pipe_, in_pipe_ == 0);
  pipe_ = detail::Pipe{};
  buffer_.reset();  // its pipes go back to the pool, or closed if they hold bytes
  detail::release_pipe(crc_pipe_, crc_ok_);
  crc_pipe_ = detail::Pipe{};
}

void Pump::checksum(const char* data, std::size_t len) noexcept {
  while (len > 0) {
    uInt n = static_cast<uInt>(std::min<std::size_t>(len, 1u << 30));
    result_.crc32 =
        static_cast<std::uint32_t>(::crc32(result_.crc32, reinterpret_cast<const Bytef*>(data), n));
    data += n;
    len -= n;
  }
}

bool Pump::checksum_pipe() noexcept {
  // tee() copies from the head of the pipe, so it only runs once every byte
  // checksummed before has left: what it copies is all new.
  crc_ok_ = false;
  ssize_t n = detail::tee_retry(pipe_.read_fd, crc_pipe_.write_fd,
                                static_cast<std::size_t>(in_pipe_), SPLICE_F_NONBLOCK);
  if (n <= 0) {
    if (n == 0) errno = EIO;
    return false;
  }
  std::size_t left = static_cast<std::size_t>(n);
  while (left > 0) {
    ssize_t r =
        detail::read_retry(crc_pipe_.read_fd, copy_.scratch(), std::min(left, copy_.capacity()));
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return false;
    }
    checksum(copy_.scratch(), static_cast<std::size_t>(r));
    left -= static_cast<std::size_t>(r);
  }
  crc_ready_ = static_cast<std::uint64_t>(n);
  crc_ok_ = true;
  return true;
}

void Pump::detach() noexcept { detached_ = true; }

void Pump::rebind(int src_fd, int dst_fd) noexcept {
  src_ = src_fd;
  dst_ = dst_fd;
  src_nb_.rebind(src_fd);
  dst_nb_.rebind(dst_fd);
}

std::optional<std::uint64_t> Pump::known_remaining() const noexcept {
  if (result_.status != Status::running) return 0;
  std::uint64_t pending =
      (prefix_.size() - prefix_off_) + copy_.pending() + in_pipe_ + (buffer_ ? buffer_->size() : 0);
  std::optional<std::uint64_t> from_src;
  if (length_) from_src = *length_ - std::min(*length_, result_.bytes_read);
  if (stop_at_size_) {
    std::uint64_t at = static_cast<std::uint64_t>(pos_);
    std::uint64_t file_left = at < src_size_ ? src_size_ - at : 0;
    from_src = from_src ? std::min(*from_src, file_left) : file_left;
  }
  if (src_eof_) from_src = 0;
  if (!from_src) return std::nullopt;
  return pending + *from_src;
}

bool Pump::switch_to_copy() noexcept {
  if (!copy_.reserve(detail::kCopyChunk)) return false;
  mode_ = Mode::copy;
  result_.strategy = Strategy::copy;
  return true;
}

Side Pump::direct_error_side(int err) const noexcept {
  if (err == EPIPE) return Side::downstream;
  if (src_pipe_ && !dst_pipe_) return Side::downstream;
  if (dst_pipe_ && !src_pipe_) return Side::upstream;
  return Side::upstream;
}

Side Pump::direct_blocked_side() const noexcept {
  if (src_file_) return Side::downstream;
  return ready(src_, POLLIN) ? Side::downstream : Side::upstream;
}

std::optional<Step> Pump::write_pending(std::uint64_t& moved) noexcept {
  bool from_prefix = prefix_off_ < prefix_.size();
  ssize_t n = from_prefix ? detail::write_retry(dst_, prefix_.data() + prefix_off_,
                                                prefix_.size() - prefix_off_)
                          : copy_.drain(dst_);
  if (n < 0) {
    if (would_block(errno)) return wait_for(Side::downstream);
    return fail(errno, Side::downstream);
  }
  if (from_prefix) prefix_off_ += static_cast<std::size_t>(n);
  result_.bytes_written += static_cast<std::uint64_t>(n);
  moved += static_cast<std::uint64_t>(n);
  return std::nullopt;
}

bool Pump::count_straight(ssize_t n, std::uint64_t& moved) noexcept {
  if (n < 0) return false;
  if (n == 0) src_eof_ = true;
  result_.bytes_read += static_cast<std::uint64_t>(n);
  result_.bytes_written += static_cast<std::uint64_t>(n);
  moved += static_cast<std::uint64_t>(n);
  return true;
}

std::optional<Step> Pump::step_direct(std::uint64_t& moved) noexcept {
  if (reading_done()) return complete();
  std::size_t len = want(kDirectChunk);
  unsigned flags = SPLICE_F_NONBLOCK;
  if (more_known_to_follow(result_.bytes_read + len)) flags |= SPLICE_F_MORE;
  ssize_t n = detail::splice_retry(src_, src_offset(), dst_, nullptr, len, flags);
  if (count_straight(n, moved)) return std::nullopt;
  int err = errno;
  if (would_block(err)) return wait_for(direct_blocked_side());
  if (splice_unsupported(err)) {
    if (!switch_to_copy()) return fail(ENOMEM, Side::none);
    return std::nullopt;
  }
  return fail(err, direct_error_side(err));
}

std::optional<Step> Pump::step_sendfile(std::uint64_t& moved) noexcept {
  if (reading_done()) return complete();
  // Without an explicit offset, sendfile moves the file position itself, to
  // just after the bytes it sent: finish() then has nothing to seek.
  off_t offset = static_cast<off_t>(pos_);
  ssize_t n = detail::sendfile_retry(dst_, src_, explicit_offset_ ? &offset : nullptr,
                                     want(kSendfileChunk));
  if (n > 0) pos_ += n;
  if (count_straight(n, moved)) return std::nullopt;
  int err = errno;
  if (would_block(err)) return wait_for(Side::downstream);
  if (splice_unsupported(err)) {
    // sendfile moved nothing: splice through a pipe of our own instead.
    if (!switch_to_pipe() && !switch_to_copy()) return fail(ENOMEM, Side::none);
    return std::nullopt;
  }
  // sendfile can't say which side failed: only a read error is the file's.
  return fail(err, err == EIO ? Side::upstream : Side::downstream);
}

std::optional<Step> Pump::step_through_pipe(std::uint64_t& moved) noexcept {
  if (!pipe_.valid()) {
    // Given back while the source was idle (below): take one again.
    pipe_ = detail::acquire_pipe(pipe_size_);
    if (!pipe_.valid()) return fail(errno, Side::none);
  }
  if (!reading_done() && !src_blocked_ && !copy_pending_ && in_pipe_ < pipe_.capacity) {
    std::size_t len = want(static_cast<std::size_t>(pipe_.capacity - in_pipe_));
    ssize_t n =
        detail::splice_retry(src_, src_offset(), pipe_.write_fd, nullptr, len, SPLICE_F_NONBLOCK);
    if (n > 0) {
      result_.bytes_read += static_cast<std::uint64_t>(n);
      in_pipe_ += static_cast<std::uint64_t>(n);
      return std::nullopt;
    }
    if (n == 0) {
      src_eof_ = true;
      return std::nullopt;
    }
    int err = errno;
    if (would_block(err)) {
      // With bytes in the pipe this may just mean the pipe is full.
      if (in_pipe_ == 0) {
        // Nothing in flight: the pipe (and its share of the per-user pipe
        // quota) goes back to the pool while the source is idle, so many
        // waiting transfers hold few pipes.
        if (!crc_) {
          detail::release_pipe(pipe_, true);
          pipe_ = detail::Pipe{};
        }
        return wait_for(Side::upstream);
      }
      src_blocked_ = true;
    } else if (splice_unsupported(err)) {
      copy_pending_ = true;  // deliver what the pipe holds first
    } else {
      return fail(err, Side::upstream);
    }
  }
  if (in_pipe_ > 0) {
    if (crc_ && crc_ready_ == 0 && !checksum_pipe()) return fail(errno, Side::none);
    unsigned flags = SPLICE_F_NONBLOCK;
    if (more_known_to_follow(result_.bytes_read)) flags |= SPLICE_F_MORE;
    std::uint64_t len = crc_ ? crc_ready_ : in_pipe_;
    ssize_t n = detail::splice_retry(pipe_.read_fd, nullptr, dst_, nullptr,
                                     static_cast<std::size_t>(len), flags);
    if (n > 0) {
      in_pipe_ -= static_cast<std::uint64_t>(n);
      if (crc_) crc_ready_ -= static_cast<std::uint64_t>(n);
      result_.bytes_written += static_cast<std::uint64_t>(n);
      moved += static_cast<std::uint64_t>(n);
      src_blocked_ = false;
      return std::nullopt;
    }
    int err = n == 0 ? EIO : errno;
    if (would_block(err)) {
      src_blocked_ = false;
      return wait_for(Side::downstream);
    }
    if (splice_unsupported(err)) {
      if (!switch_to_copy()) return fail(ENOMEM, Side::none);
      return std::nullopt;
    }
    return fail(err, Side::downstream);
  }
  if (copy_pending_) {
    if (!switch_to_copy()) return fail(ENOMEM, Side::none);
    return std::nullopt;
  }
  if (reading_done()) return complete();
  src_blocked_ = false;
  return wait_for(Side::upstream);
}

std::optional<Step> Pump::step_buffered(std::uint64_t& moved) noexcept {
  bool src_idle = false;
  if (!reading_done() && buffer_->size() < buffer_cap_) {
    ssize_t n = buffer_->splice_in(src_, want(buffer_cap_ - buffer_->size()));
    if (n > 0) {
      result_.bytes_read += static_cast<std::uint64_t>(n);
      return std::nullopt;
    }
    if (n == 0) {
      src_eof_ = true;
      return std::nullopt;
    }
    int err = errno;
    if (would_block(err)) {
      src_idle = true;
    } else if (splice_unsupported(err) && buffer_->empty()) {
      if (!switch_to_copy()) return fail(ENOMEM, Side::none);
      return std::nullopt;
    } else if (err == ENOBUFS && buffer_->empty()) {
      // Not one pipe to be had (out of fds, or of the pipe quota), so
      // nothing in flight to wait for: go on without read-ahead, through
      // one pipe, and fail as a pump without buffer: does if none opens.
      buffer_.reset();
      if (!switch_to_pipe()) return fail(errno, Side::none);
      return std::nullopt;
    } else if (err != ENOBUFS) {  // out of pipes within the quota: full for now
      return fail(err, Side::upstream);
    }
  }
  if (!buffer_->empty()) {
    ssize_t n = buffer_->splice_out(dst_, buffer_->size());
    if (n > 0) {
      result_.bytes_written += static_cast<std::uint64_t>(n);
      moved += static_cast<std::uint64_t>(n);
      return std::nullopt;
    }
    if (n < 0 && would_block(errno)) {
      Step s = wait_for(Side::downstream);
      if (src_idle) {
        s.also_fd = src_;  // keep draining the source while the destination is slow
        s.also_interest = Interest::readable;
      }
      return s;
    }
    return fail(n == 0 ? EIO : errno, Side::downstream);
  }
  if (reading_done()) return complete();
  return wait_for(Side::upstream);
}

std::optional<Step> Pump::step_copy() noexcept {
  if (in_pipe_ > 0) {
    // Bytes a failed splice left in the pipe go out before any new ones.
    ssize_t n =
        copy_.fill(pipe_.read_fd,
                   static_cast<std::size_t>(std::min<std::uint64_t>(copy_.capacity(), in_pipe_)));
    if (n <= 0) return fail(n == 0 ? EIO : errno, Side::none);
    in_pipe_ -= static_cast<std::uint64_t>(n);
    if (crc_) {
      std::size_t seen = static_cast<std::size_t>(
          std::min<std::uint64_t>(crc_ready_, static_cast<std::uint64_t>(n)));
      crc_ready_ -= seen;
      checksum(copy_.pending_data() + seen, copy_.pending() - seen);
    }
    return std::nullopt;
  }
  if (reading_done()) return complete();
  ssize_t n = copy_.fill(src_, want(copy_.capacity()), src_file_ ? &pos_ : nullptr);
  if (n > 0) {
    if (src_file_) pos_ += n;
    result_.bytes_read += static_cast<std::uint64_t>(n);
    if (crc_) checksum(copy_.pending_data(), copy_.pending());
    return std::nullopt;
  }
  if (n == 0) {
    src_eof_ = true;
    return std::nullopt;
  }
  if (would_block(errno)) return wait_for(Side::upstream);
  return fail(errno, Side::upstream);
}

Step Pump::step() noexcept {
  std::uint64_t moved = 0;
  while (result_.status == Status::running) {
    if (moved >= step_budget_) {
      Step s;
      s.kind = Step::Kind::more;
      return s;
    }
    std::optional<Step> next;
    if (prefix_off_ < prefix_.size() || copy_.pending() > 0) {
      next = write_pending(moved);
    } else if (mode_ == Mode::direct) {
      next = step_direct(moved);
    } else if (mode_ == Mode::sendfile) {
      next = step_sendfile(moved);
    } else if (mode_ == Mode::through_pipe) {
      next = step_through_pipe(moved);
    } else if (mode_ == Mode::buffered) {
      next = step_buffered(moved);
    } else {
      next = step_copy();
    }
    if (next) return *next;
  }
  return Step{};
}

Result pump(int src_fd, int dst_fd, const Options& options) {
  Pump p(src_fd, dst_fd, options);
  detail::run_to_end(p, options);
  return p.result();
}

}  // namespace bytepump
