#include "bytepump/pipe_event.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "bytepump/detail/syscalls.hpp"

namespace bytepump {

PipeEvent::PipeEvent(int fd, int options, std::size_t max_size)
    : fd_(fd),
      options_(options),
      input_(max_size),
      output_(max_size),
      read_since_(Clock::now()),
      write_since_(read_since_) {
  nb_.prepare(fd);
  // Bytes queued while the output was empty start its write stall clock and
  // may need the loop to watch for writability.
  output_.on_length_change([this](std::size_t before, std::size_t after) {
    if (before == 0 && after > 0) {
      write_since_ = Clock::now();
      watch_changed();
    }
  });
  // Input taken from a full buffer (by another PipeEvent's callback, say)
  // lets reading go on, and its stall clock starts again then, as a
  // bufferevent's read timeout does when reading is unsuspended.
  input_.on_length_change([this](std::size_t before, std::size_t after) {
    std::size_t cap = read_cap();
    if (before >= cap && after < cap) {
      read_since_ = Clock::now();
      watch_changed();
    }
  });
}

std::size_t PipeEvent::read_cap() const noexcept {
  return read_high_ ? std::min(read_high_, input_.max_size()) : input_.max_size();
}

PipeEvent::~PipeEvent() {
  *alive_ = false;
  // Don't retry close in case of EINTR!
  if ((options_ & close_on_free) && fd_ >= 0) {
    ::close(fd_);
  } else {
    nb_.restore();  // the caller keeps the fd as it was
  }
}

void PipeEvent::set_callbacks(DataCallback read_cb, DataCallback write_cb, EventCallback event_cb) {
  read_cb_ = std::move(read_cb);
  write_cb_ = std::move(write_cb);
  event_cb_ = std::move(event_cb);
}

void PipeEvent::enable(short what) noexcept {
  Clock::time_point now = Clock::now();
  if ((what & read) && !(enabled_ & read)) read_since_ = now;
  if ((what & write) && !(enabled_ & write)) write_since_ = now;
  enabled_ = static_cast<short>(enabled_ | (what & (read | write)));
  watch_changed();
}

void PipeEvent::disable(short what) noexcept {
  enabled_ = static_cast<short>(enabled_ & ~what);
  watch_changed();
}

void PipeEvent::set_watermark(short what, std::size_t low, std::size_t high) noexcept {
  if (what & read) {
    bool was_reading = reading_active();
    read_low_ = low;
    read_high_ = high;
    if (!was_reading && reading_active()) read_since_ = Clock::now();  // a raised mark resumes it
  }
  if (what & write) write_low_ = low;
  watch_changed();
}

void PipeEvent::set_timeouts(std::optional<std::chrono::nanoseconds> read_timeout,
                             std::optional<std::chrono::nanoseconds> write_timeout) noexcept {
  read_timeout_ = read_timeout;
  write_timeout_ = write_timeout;
  watch_changed();
}

bool PipeEvent::reading_active() const noexcept {
  return (enabled_ & read) && !eof_ && input_.size() < read_cap();
}

bool PipeEvent::writing_active() const noexcept { return (enabled_ & write) && !output_.empty(); }

PipeEvent::Watch PipeEvent::watch() const noexcept {
  Watch w;
  w.readable = reading_active();
  w.writable = writing_active();
  if (w.readable && read_timeout_) w.deadline = read_since_ + *read_timeout_;
  if (w.writable && write_timeout_) {
    Clock::time_point d = write_since_ + *write_timeout_;
    if (!w.deadline || d < *w.deadline) w.deadline = d;
  }
  return w;
}

bool PipeEvent::report(short what, const std::shared_ptr<bool>& alive) {
  if (event_cb_) event_cb_(*this, what);
  return *alive;
}

bool PipeEvent::handle(bool readable, bool writable, Clock::time_point now) {
  std::shared_ptr<bool> alive = alive_;  // outlives us if a callback frees us
  if (readable && reading_active()) {
    ssize_t n = input_.splice_in(fd_, read_cap() - input_.size());
    if (n > 0) {
      read_since_ = now;
      if (input_.size() >= read_low_ && read_cb_) {
        read_cb_(*this);
        if (!*alive) return false;
      }
    } else if (n == 0) {
      eof_ = true;
      enabled_ = static_cast<short>(enabled_ & ~read);
      if (!report(reading | eof, alive)) return false;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
      error_ = errno;
      enabled_ = static_cast<short>(enabled_ & ~read);
      if (!report(reading | error, alive)) return false;
    }
  }
  if (writable && writing_active()) {
    ssize_t n = output_.splice_out(fd_, output_.size());
    if (n > 0) {
      write_since_ = now;
      if (output_.size() <= write_low_ && write_cb_) {
        write_cb_(*this);
        if (!*alive) return false;
      }
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      error_ = errno;
      enabled_ = static_cast<short>(enabled_ & ~write);
      if (!report(writing | error, alive)) return false;
    }
  }
  // A direction that made no progress for its whole timeout ends, as a
  // bufferevent's does.
  if (reading_active() && read_timeout_ && now - read_since_ >= *read_timeout_) {
    enabled_ = static_cast<short>(enabled_ & ~read);
    if (!report(reading | timeout, alive)) return false;
  }
  if (writing_active() && write_timeout_ && now - write_since_ >= *write_timeout_) {
    enabled_ = static_cast<short>(enabled_ & ~write);
    if (!report(writing | timeout, alive)) return false;
  }
  return true;
}

}  // namespace bytepump
