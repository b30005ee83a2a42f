#include "bytepump/frames.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/syscalls.hpp"

namespace bytepump {
namespace {

using detail::would_block;

std::string frame_words(const Frame& f) {
  return "channel " + std::to_string(f.channel) + ", length " + std::to_string(f.length);
}

enum class Moved : std::uint8_t {
  all,                // `left` reached 0 and the pipe is empty
  wait_upstream,      // src has nothing now
  wait_downstream,    // dst takes nothing now
  source_ended,       // src hit EOF first
  failed_upstream,    // errno says why
  failed_downstream,  // errno says why
};

// Up to `len` source bytes into the pipe: by splice, or through fb.in once
// splice refused the source. Bytes now in the pipe, 0 at EOF, -1 with errno.
ssize_t fill_pipe(int src, const detail::Pipe& pipe, std::size_t len, detail::SpliceFallbacks& fb,
                  std::uint32_t& left, Result& r) noexcept {
  if (!fb.src) {
    ssize_t n = detail::splice_retry(src, nullptr, pipe.write_fd, nullptr, len, SPLICE_F_NONBLOCK);
    if (n > 0) {
      left -= static_cast<std::uint32_t>(n);
      r.bytes_read += static_cast<std::uint64_t>(n);
    }
    if (n >= 0 || !detail::splice_unsupported(errno)) return n;
    if (!fb.in.reserve(detail::kCopyChunk)) return -1;
    fb.src = true;
  }
  if (fb.in.pending() == 0 && left > 0) {
    ssize_t n = fb.in.fill(src, std::min<std::size_t>(len, left));
    if (n <= 0) return n;
    left -= static_cast<std::uint32_t>(n);
    r.bytes_read += static_cast<std::uint64_t>(n);
  }
  return fb.in.drain(pipe.write_fd);
}

// Pipe bytes on to dst: by splice, or through fb.out once splice refused
// the destination. Bytes written, or -1 with errno.
ssize_t drain_pipe(int dst, const detail::Pipe& pipe, std::uint64_t& in_pipe,
                   detail::SpliceFallbacks& fb) noexcept {
  if (!fb.dst) {
    ssize_t n = detail::splice_retry(pipe.read_fd, nullptr, dst, nullptr,
                                     static_cast<std::size_t>(in_pipe), SPLICE_F_NONBLOCK);
    if (n > 0) in_pipe -= static_cast<std::uint64_t>(n);
    if (n == 0) errno = EIO;
    if (n > 0 || !detail::splice_unsupported(errno)) return n > 0 ? n : -1;
    if (!fb.out.reserve(detail::kCopyChunk)) return -1;
    fb.dst = true;
  }
  if (fb.out.pending() == 0) {
    ssize_t n = fb.out.fill(pipe.read_fd, static_cast<std::size_t>(in_pipe));
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return -1;
    }
    in_pipe -= static_cast<std::uint64_t>(n);
  }
  ssize_t n = fb.out.drain(dst);
  if (n == 0) errno = EIO;
  return n > 0 ? n : -1;
}

// A payload's bytes, exactly: `left` more from src into `pipe`, and all of
// the pipe into dst, nonblocking, by splice or (for fds splice refuses)
// read and write. The one copy of this loop for the reader and the writer;
// counts go into r.
Moved splice_exactly(int src, int dst, const detail::Pipe& pipe, std::uint32_t& left,
                     std::uint64_t& in_pipe, detail::SpliceFallbacks& fb, Result& r) noexcept {
  for (;;) {
    bool src_ended = false;
    if ((left > 0 || fb.in.pending() > 0) && in_pipe < pipe.capacity) {
      std::size_t len = static_cast<std::size_t>(pipe.capacity - in_pipe);
      if (!fb.src) len = std::min<std::size_t>(len, left);
      ssize_t n = fill_pipe(src, pipe, len, fb, left, r);
      if (n > 0) {
        in_pipe += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n == 0) {
        src_ended = true;
      } else if (!would_block(errno)) {
        return Moved::failed_upstream;
      }
      if (in_pipe == 0 && fb.out.pending() == 0) {
        if (src_ended) return Moved::source_ended;
        if (fb.in.pending() == 0) return Moved::wait_upstream;
      }
    }
    if (in_pipe > 0 || fb.out.pending() > 0) {
      ssize_t n = drain_pipe(dst, pipe, in_pipe, fb);
      if (n > 0) {
        r.bytes_written += static_cast<std::uint64_t>(n);
        continue;
      }
      if (would_block(errno)) return Moved::wait_downstream;
      return Moved::failed_downstream;
    }
    if (left == 0 && fb.in.pending() == 0) return Moved::all;
  }
}

// What a step of the reader or the writer makes of splice_exactly's answer.
struct Outcome {
  bool wait;
  Side side;
  FrameStatus status;
  int error;
};

Outcome outcome(Moved moved) noexcept {
  switch (moved) {
    case Moved::all:
      return {false, Side::none, FrameStatus::frame, 0};
    case Moved::wait_upstream:
      return {true, Side::upstream, FrameStatus::running, 0};
    case Moved::wait_downstream:
      return {true, Side::downstream, FrameStatus::running, 0};
    case Moved::source_ended:
      return {false, Side::none, FrameStatus::truncated, 0};
    case Moved::failed_upstream:
      return {false, Side::upstream, FrameStatus::error, errno};
    default:
      return {false, Side::downstream, FrameStatus::error, errno};
  }
}

}  // namespace

const char* to_string(FrameStatus status) noexcept {
  switch (status) {
    case FrameStatus::running:
      return "running";
    case FrameStatus::header:
      return "header";
    case FrameStatus::frame:
      return "frame";
    case FrameStatus::eof:
      return "eof";
    case FrameStatus::invalid_length:
      return "invalid_length";
    case FrameStatus::truncated:
      return "truncated";
    default:
      return "error";
  }
}

FrameReader::FrameReader(int src_fd, Route route, std::size_t pipe_size) noexcept
    : src_(src_fd), route_(std::move(route)), pipe_size_(pipe_size) {
  src_nb_.prepare(src_fd);
}

FrameReader::~FrameReader() {
  finish();
  dst_nb_.restore();
  src_nb_.restore();
}

void FrameReader::rebind(int src_fd) noexcept {
  dst_nb_.restore();
  src_ = src_fd;
  src_nb_.prepare(src_fd);
}

void FrameReader::finish() noexcept {
  detail::release_pipe(pipe_, in_pipe_ == 0);
  pipe_ = detail::Pipe{};
}

Step FrameReader::wait_for(Side side) const noexcept { return Step::wait_on(side, src_, dst_); }

Step FrameReader::end(FrameStatus status, int err, Side side) noexcept {
  status_ = status;
  error_ = err;
  error_side_ = side;
  if (status == FrameStatus::invalid_length || status == FrameStatus::frame) {
    in_payload_ = false;  // the next step reads a new header
  }
  dst_nb_.restore();
  if (status == FrameStatus::frame) ++frames_;
  return Step{};
}

void FrameReader::deliver_to(int fd) noexcept {
  if (status_ != FrameStatus::header) return;
  dst_ = fd >= 0 ? fd : detail::dev_null();
  if (fd >= 0) dst_nb_.prepare(fd);
  fallbacks_.dst = false;  // a new route: splice is tried first again
  fallbacks_.out.clear();
  in_payload_ = true;
  left_ = frame_.length;
  status_ = FrameStatus::running;
}

std::string FrameReader::message() const {
  switch (status_) {
    case FrameStatus::invalid_length:
      return "frame on channel " + std::to_string(frame_.channel) + " has invalid length " +
             std::to_string(frame_.length) + " (must be 1.." + std::to_string(kMaxFrameLength) +
             ")";
    case FrameStatus::truncated:
      if (!in_payload_) {
        return "the source ended inside a frame header (" + std::to_string(header_len_) +
               " of 6 bytes)";
      }
      return "the source ended inside the frame (" + frame_words(frame_) + ") with " +
             std::to_string(left_) + " payload bytes missing";
    case FrameStatus::error:
      return std::string(error_side_ == Side::upstream ? "reading" : "delivering") +
             " the frame (" + frame_words(frame_) + ") failed: " + std::strerror(error_);
    default:
      return to_string(status_);
  }
}

Step FrameReader::step() noexcept {
  if (status_ == FrameStatus::header) return Step{};  // waiting for deliver_to()
  if (status_ == FrameStatus::eof || status_ == FrameStatus::truncated ||
      status_ == FrameStatus::error) {
    return Step{};
  }
  status_ = FrameStatus::running;
  if (!in_payload_) {
    // The header, exactly: never read a byte of what follows it.
    while (header_len_ < kFrameHeaderSize) {
      ssize_t n = detail::read_retry(src_, header_ + header_len_, kFrameHeaderSize - header_len_);
      if (n > 0) {
        header_len_ += static_cast<std::size_t>(n);
        result_.bytes_read += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n == 0) return end(header_len_ == 0 ? FrameStatus::eof : FrameStatus::truncated);
      if (would_block(errno)) return wait_for(Side::upstream);
      return end(FrameStatus::error, errno, Side::upstream);
    }
    header_len_ = 0;
    frame_.channel = static_cast<std::uint16_t>((header_[0] << 8) | header_[1]);
    frame_.length = (std::uint32_t{header_[2]} << 24) | (std::uint32_t{header_[3]} << 16) |
                    (std::uint32_t{header_[4]} << 8) | std::uint32_t{header_[5]};
    if (frame_.length == 0 || frame_.length > kMaxFrameLength) {
      return end(FrameStatus::invalid_length);
    }
    status_ = FrameStatus::header;
    if (!route_) return Step{};
    deliver_to(route_(frame_));
  }
  if (!pipe_.valid()) {
    pipe_ = detail::acquire_pipe(pipe_size_);
    if (!pipe_.valid()) return end(FrameStatus::error, errno, Side::none);
  }
  Outcome o = outcome(splice_exactly(src_, dst_, pipe_, left_, in_pipe_, fallbacks_, result_));
  return o.wait ? wait_for(o.side) : end(o.status, o.error, o.side);
}

FrameWriter::FrameWriter(int dst_fd, std::size_t pipe_size) noexcept
    : dst_(dst_fd), pipe_size_(pipe_size) {
  dst_nb_.prepare(dst_fd);
}

FrameWriter::~FrameWriter() {
  finish();
  src_nb_.restore();
  dst_nb_.restore();
}

void FrameWriter::rebind(int dst_fd) noexcept {
  dst_ = dst_fd;
  dst_nb_.prepare(dst_fd);
}

void FrameWriter::finish() noexcept {
  detail::release_pipe(pipe_, in_pipe_ == 0);
  pipe_ = detail::Pipe{};
  in_pipe_ = 0;
}

bool FrameWriter::start(std::uint16_t channel, std::uint32_t length) noexcept {
  if (busy_) {
    errno = EBUSY;
    return false;
  }
  if (length == 0 || length > kMaxFrameLength) {
    errno = EINVAL;
    return false;
  }
  frame_ = Frame{channel, length};
  header_[0] = static_cast<unsigned char>(channel >> 8);
  header_[1] = static_cast<unsigned char>(channel);
  header_[2] = static_cast<unsigned char>(length >> 24);
  header_[3] = static_cast<unsigned char>(length >> 16);
  header_[4] = static_cast<unsigned char>(length >> 8);
  header_[5] = static_cast<unsigned char>(length);
  header_off_ = 0;
  left_ = length;
  result_ = Result{};
  status_ = FrameStatus::running;
  error_ = 0;
  error_side_ = Side::none;
  busy_ = true;
  return true;
}

bool FrameWriter::begin(std::uint16_t channel, std::uint32_t length, int src_fd) noexcept {
  if (!start(channel, length)) return false;
  src_ = src_fd;
  src_nb_.prepare(src_fd);
  fallbacks_.src = false;  // a new source: splice is tried first again
  fallbacks_.in.clear();
  payload_ = {};
  return true;
}

bool FrameWriter::begin(std::uint16_t channel, std::string_view payload) noexcept {
  if (payload.size() > kMaxFrameLength) {
    errno = EINVAL;
    return false;
  }
  if (!start(channel, static_cast<std::uint32_t>(payload.size()))) return false;
  src_ = -1;
  payload_ = payload;
  return true;
}

Step FrameWriter::wait_for(Side side) const noexcept { return Step::wait_on(side, src_, dst_); }

Step FrameWriter::end(FrameStatus status, int err, Side side) noexcept {
  status_ = status;
  error_ = err;
  error_side_ = side;
  busy_ = false;
  src_nb_.restore();
  if (status == FrameStatus::frame) ++frames_;
  return Step{};
}

std::string FrameWriter::message() const {
  switch (status_) {
    case FrameStatus::truncated:
      return "the payload source ended " + std::to_string(left_) + " bytes short of the frame (" +
             frame_words(frame_) + "); the destination holds a partial frame";
    case FrameStatus::error:
      return std::string(error_side_ == Side::upstream ? "reading" : "writing") + " the frame (" +
             frame_words(frame_) + ") failed: " + std::strerror(error_);
    default:
      return to_string(status_);
  }
}

Step FrameWriter::step() noexcept {
  if (!busy_) return Step{};
  while (header_off_ < kFrameHeaderSize) {
    ssize_t n = detail::write_retry(dst_, header_ + header_off_, kFrameHeaderSize - header_off_);
    if (n < 0) {
      if (would_block(errno)) return wait_for(Side::downstream);
      return end(FrameStatus::error, errno, Side::downstream);
    }
    header_off_ += static_cast<std::size_t>(n);
    result_.bytes_written += static_cast<std::uint64_t>(n);
  }
  if (src_ < 0) {
    while (left_ > 0) {
      std::size_t off = payload_.size() - left_;
      ssize_t n = detail::write_retry(dst_, payload_.data() + off, left_);
      if (n < 0) {
        if (would_block(errno)) return wait_for(Side::downstream);
        return end(FrameStatus::error, errno, Side::downstream);
      }
      left_ -= static_cast<std::uint32_t>(n);
      result_.bytes_read += static_cast<std::uint64_t>(n);
      result_.bytes_written += static_cast<std::uint64_t>(n);
    }
    return end(FrameStatus::frame);
  }
  if (!pipe_.valid()) {
    pipe_ = detail::acquire_pipe(pipe_size_);
    if (!pipe_.valid()) return end(FrameStatus::error, errno, Side::none);
  }
  Outcome o = outcome(splice_exactly(src_, dst_, pipe_, left_, in_pipe_, fallbacks_, result_));
  return o.wait ? wait_for(o.side) : end(o.status, o.error, o.side);
}

namespace {

template <typename Machine>
FrameStatus drive_frame(Machine& m, const DriveOptions& options) {
  SigpipeGuard sigpipe;
  auto how = detail::drive(m, options.upstream_timeout, options.downstream_timeout,
                           options.canceller, [](std::uint64_t) {});
  switch (how) {
    case detail::DriveEnd::done:
      break;
    case detail::DriveEnd::timeout_upstream:
      m.abort(ETIMEDOUT, Side::upstream);
      break;
    case detail::DriveEnd::timeout_downstream:
      m.abort(ETIMEDOUT, Side::downstream);
      break;
    case detail::DriveEnd::cancelled:
      m.abort(ECANCELED, Side::none);
      break;
    default:
      m.abort(errno, Side::none);
  }
  return m.status();
}

}  // namespace

FrameStatus read_frame(FrameReader& reader, const DriveOptions& options) {
  return drive_frame(reader, options);
}

FrameStatus write_frame(FrameWriter& writer, const DriveOptions& options) {
  return drive_frame(writer, options);
}

}  // namespace bytepump
