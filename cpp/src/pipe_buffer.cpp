#include "bytepump/pipe_buffer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <new>
#include <utility>

#include "bytepump/detail/syscalls.hpp"

namespace bytepump {
namespace {

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Whether a pipe can take more: a pipe holds a fixed number of buffers, and
// small splices fill them before its byte capacity is reached.
bool pipe_writable(int write_fd) noexcept {
  pollfd p{write_fd, POLLOUT, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLOUT) != 0;
}

}  // namespace

PipeBuffer::PipeBuffer(std::size_t max_size, std::size_t segment_size) noexcept
    : max_size_(max_size), segment_size_(segment_size) {}

PipeBuffer::~PipeBuffer() { release_all(); }

PipeBuffer::PipeBuffer(PipeBuffer&& other) noexcept
    : segments_(std::move(other.segments_)),
      size_(std::exchange(other.size_, 0)),
      max_size_(other.max_size_),
      segment_size_(other.segment_size_),
      on_length_change_(std::move(other.on_length_change_)) {
  other.segments_.clear();
}

PipeBuffer& PipeBuffer::operator=(PipeBuffer&& other) noexcept {
  if (this != &other) {
    release_all();
    segments_ = std::move(other.segments_);
    other.segments_.clear();
    size_ = std::exchange(other.size_, 0);
    max_size_ = other.max_size_;
    segment_size_ = other.segment_size_;
    on_length_change_ = std::move(other.on_length_change_);
  }
  return *this;
}

void PipeBuffer::release_all() noexcept {
  // A pipe still holding bytes is closed, never pooled.
  for (Segment& s : segments_) detail::release_pipe(s.pipe, s.bytes == 0);
  segments_.clear();
  size_ = 0;
}

void PipeBuffer::on_length_change(std::function<void(std::size_t, std::size_t)> callback) {
  on_length_change_ = std::move(callback);
}

void PipeBuffer::changed(std::size_t before) noexcept {
  if (before != size_ && on_length_change_) on_length_change_(before, size_);
}

PipeBuffer::Segment* PipeBuffer::writable_tail() noexcept {
  if (!segments_.empty()) {
    Segment& tail = segments_.back();
    if (!tail.full && tail.bytes < tail.pipe.capacity) return &tail;
  }
  std::size_t quota = detail::pipe_quota();
  if (quota != SIZE_MAX && detail::pipe_bytes_in_use() + detail::kDefaultPipeSize > quota) {
    errno = ENOBUFS;  // another pipe would go past the per-user quota
    return nullptr;
  }
  detail::Pipe pipe = detail::acquire_pipe(segment_size_);
  if (!pipe.valid()) {
    if (errno == EMFILE || errno == ENFILE) errno = ENOBUFS;
    return nullptr;
  }
  try {
    segments_.push_back(Segment{pipe, 0, false});
  } catch (...) {
    detail::release_pipe(pipe, true);
    errno = ENOMEM;
    return nullptr;
  }
  return &segments_.back();
}

void PipeBuffer::drop_empty_head() noexcept {
  while (!segments_.empty() && segments_.front().bytes == 0) {
    detail::release_pipe(segments_.front().pipe, true);
    segments_.pop_front();
  }
}

ssize_t PipeBuffer::splice_in(int fd, std::size_t max) noexcept {
  if (max == 0) return 0;
  if (size_ >= max_size_) {
    errno = ENOBUFS;
    return -1;
  }
  const std::size_t before = size_;
  const std::size_t want = std::min(max, max_size_ - size_);
  std::size_t moved = 0;
  int err = 0;
  while (moved < want) {
    Segment* tail = writable_tail();
    if (!tail) {
      err = errno;
      break;
    }
    std::size_t len = std::min(want - moved, tail->pipe.capacity - tail->bytes);
    ssize_t n =
        detail::splice_retry(fd, nullptr, tail->pipe.write_fd, nullptr, len, SPLICE_F_NONBLOCK);
    if (n > 0) {
      tail->bytes += static_cast<std::size_t>(n);
      moved += static_cast<std::size_t>(n);
      size_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) break;  // EOF
    err = errno;
    if (would_block(err) && !pipe_writable(tail->pipe.write_fd)) {
      tail->full = true;  // the pipe, not fd, pushed back: go on in a new segment
      continue;
    }
    break;
  }
  // A segment taken for bytes that never came goes back to the pool.
  if (!segments_.empty() && segments_.back().bytes == 0) {
    detail::release_pipe(segments_.back().pipe, true);
    segments_.pop_back();
  }
  changed(before);
  if (moved > 0 || err == 0) return static_cast<ssize_t>(moved);
  errno = err;
  return -1;
}

ssize_t PipeBuffer::splice_out(int fd, std::size_t max) noexcept {
  const std::size_t before = size_;
  std::size_t moved = 0;
  int err = 0;
  while (moved < max && !segments_.empty()) {
    Segment& head = segments_.front();
    std::size_t len = std::min(max - moved, head.bytes);
    ssize_t n =
        detail::splice_retry(head.pipe.read_fd, nullptr, fd, nullptr, len, SPLICE_F_NONBLOCK);
    if (n <= 0) {
      err = n == 0 ? EIO : errno;  // a pipe with bytes in it is never at EOF
      break;
    }
    head.bytes -= static_cast<std::size_t>(n);
    moved += static_cast<std::size_t>(n);
    size_ -= static_cast<std::size_t>(n);
    head.full = false;
    drop_empty_head();
  }
  changed(before);
  if (moved > 0 || err == 0) return static_cast<ssize_t>(moved);
  errno = err;
  return -1;
}

std::size_t PipeBuffer::move_from(PipeBuffer& src, std::size_t max) noexcept {
  if (&src == this) return 0;
  const std::size_t before = size_;
  const std::size_t src_before = src.size_;
  const std::size_t limit = std::min(max, max_size_ > size_ ? max_size_ - size_ : 0);
  std::size_t moved = 0;
  int err = 0;
  while (moved < limit && !src.segments_.empty()) {
    Segment& head = src.segments_.front();
    if (head.bytes <= limit - moved) {
      // The whole segment: re-link it, no byte touched.
      std::size_t bytes = head.bytes;
      segments_.splice(segments_.end(), src.segments_, src.segments_.begin());
      moved += bytes;
      size_ += bytes;
      src.size_ -= bytes;
      continue;
    }
    // Split the head segment: splice its first bytes, pipe to pipe.
    Segment* tail = writable_tail();
    if (!tail) {
      err = errno;
      break;
    }
    std::size_t len = std::min({limit - moved, head.bytes, tail->pipe.capacity - tail->bytes});
    ssize_t n = detail::splice_retry(head.pipe.read_fd, nullptr, tail->pipe.write_fd, nullptr, len,
                                     SPLICE_F_NONBLOCK);
    if (n > 0) {
      head.bytes -= static_cast<std::size_t>(n);
      tail->bytes += static_cast<std::size_t>(n);
      moved += static_cast<std::size_t>(n);
      size_ += static_cast<std::size_t>(n);
      src.size_ -= static_cast<std::size_t>(n);
      src.drop_empty_head();
      continue;
    }
    err = n == 0 ? EIO : errno;
    if (would_block(err)) {
      tail->full = true;  // our pipe took no more: go on in a new segment
      continue;
    }
    break;
  }
  if (!segments_.empty() && segments_.back().bytes == 0) {
    detail::release_pipe(segments_.back().pipe, true);
    segments_.pop_back();
  }
  src.changed(src_before);
  changed(before);
  if (moved < max && !src.empty()) {
    if (size_ >= max_size_) err = ENOBUFS;  // full, also when this call filled it
    if (err != 0) errno = err;
  }
  return moved;
}

ssize_t PipeBuffer::discard(std::size_t max) noexcept {
  const std::size_t before = size_;
  std::size_t dropped = 0;
  int err = 0;
  while (dropped < max && !segments_.empty()) {
    Segment& head = segments_.front();
    std::size_t len = std::min(max - dropped, head.bytes);
    ssize_t n = detail::dev_null() >= 0
                    ? detail::splice_retry(head.pipe.read_fd, nullptr, detail::dev_null(), nullptr,
                                           len, SPLICE_F_NONBLOCK)
                    : -1;
    if (n <= 0) {
      if (len < head.bytes) {
        err = n == 0 ? EIO : errno;
        break;
      }
      // A whole segment can still go: its pipe is closed with its bytes.
      detail::release_pipe(head.pipe, false);
      n = static_cast<ssize_t>(head.bytes);
      head.pipe = detail::Pipe{};
    }
    head.bytes -= static_cast<std::size_t>(n);
    dropped += static_cast<std::size_t>(n);
    size_ -= static_cast<std::size_t>(n);
    head.full = false;
    if (!head.pipe.valid()) segments_.pop_front();
    drop_empty_head();
  }
  changed(before);
  if (dropped > 0 || err == 0) return static_cast<ssize_t>(dropped);
  errno = err;
  return -1;
}

}  // namespace bytepump
