#include "bytepump/head_reader.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/syscalls.hpp"

namespace bytepump {

const char* to_string(ScanStatus status) noexcept {
  switch (status) {
    case ScanStatus::running:
      return "running";
    case ScanStatus::done:
      return "done";
    case ScanStatus::malformed:
      return "malformed";
    case ScanStatus::too_large:
      return "too_large";
    case ScanStatus::eof:
      return "eof";
    case ScanStatus::timeout:
      return "timeout";
    case ScanStatus::cancelled:
      return "cancelled";
    case ScanStatus::error:
      return "error";
  }
  return "unknown";
}

HeadReader::HeadReader(int fd, HeadLimits limits) noexcept
    : fd_(fd), limits_(limits), peeker_(fd), parser_(limits) {
  if (peeker_.error() != 0) {
    end(ScanStatus::error, peeker_.error());
    return;
  }
  buf_.reset(new (std::nothrow) char[limits_.max_bytes ? limits_.max_bytes : 1]);
  if (!buf_) {
    end(ScanStatus::error, ENOMEM);
    return;
  }
  if (!parser_.ok()) {
    end(ScanStatus::error, ENOMEM);
    return;
  }
  nb_.prepare(fd);
}

HeadReader::~HeadReader() {
  if (status_ == ScanStatus::running) end(ScanStatus::cancelled);
}

void HeadReader::end(ScanStatus why, int error) noexcept {
  if (status_ != ScanStatus::running) return;
  status_ = why;
  error_ = error;
  progress_.status = why == ScanStatus::done ? Status::done : Status::error;
  progress_.error = error;
  nb_.restore();
}

void HeadReader::abort(ScanStatus why, int error) noexcept { end(why, error); }

std::size_t HeadReader::accept(std::size_t n) noexcept {
  std::size_t len = have_ + n;
  auto step = parser_.next({buf_.get(), len});
  using Kind = http::HeadParser::Step::Kind;
  if (step.kind == Kind::malformed) {
    end(ScanStatus::malformed);
    return 0;
  }
  // Bytes of an unfinished head are the head's, up to the limit too.
  bool unfinished = step.kind == Kind::need_more || step.kind == Kind::too_large;
  std::size_t take = unfinished ? n : step.consumed - have_;
  consumed_ += take;
  progress_.bytes_read = consumed_;
  if (step.kind == Kind::too_large) {
    end(ScanStatus::too_large);
  } else if (step.kind == Kind::need_more) {
    have_ = len;
  } else if (step.kind == Kind::interim) {
    have_ = 0;
  } else {
    head_len_ = step.consumed;
    end(ScanStatus::done);
  }
  return take;
}

std::size_t HeadReader::absorb(const char* data, std::size_t len) noexcept {
  std::size_t used = 0;
  while (status_ == ScanStatus::running && used < len) {
    std::size_t room = limits_.max_bytes - static_cast<std::size_t>(consumed_);
    if (room == 0) {
      end(ScanStatus::too_large);
      break;
    }
    std::size_t n = std::min(room, len - used);
    std::memcpy(buf_.get() + have_, data + used, n);
    used += accept(n);
  }
  return used;
}

Step HeadReader::step() noexcept {
  while (status_ == ScanStatus::running) {
    // Everything consumed so far belongs to a head, so the space left under
    // the limit is all a peek may look at.
    std::size_t room = limits_.max_bytes - static_cast<std::size_t>(consumed_);
    if (room == 0) {
      end(ScanStatus::too_large);
      break;
    }
    ssize_t n = peeker_.peek(buf_.get() + have_, room);
    if (n < 0) {
      if (detail::would_block(errno)) return Step::wait_on(Side::upstream, fd_, -1);
      end(ScanStatus::error, errno);
      break;
    }
    if (n == 0) {
      // Bytes that can never become a head are malformed, however they came.
      auto last = parser_.finish({buf_.get(), have_});
      end(last.kind == http::HeadParser::Step::Kind::malformed ? ScanStatus::malformed
                                                               : ScanStatus::eof);
      break;
    }
    std::size_t take = accept(static_cast<std::size_t>(n));
    if (take > 0 && !peeker_.consume(take)) end(ScanStatus::error, errno);
  }
  return Step{};
}

void skip_headers(HeadReader& scanner, const ScanOptions& options) {
  auto end = detail::drive(scanner, options.timeout, std::nullopt, options.canceller,
                           [](std::uint64_t) {});
  switch (end) {
    case detail::DriveEnd::done:
      break;
    case detail::DriveEnd::timeout_upstream:
    case detail::DriveEnd::timeout_downstream:
      scanner.abort(ScanStatus::timeout);
      break;
    case detail::DriveEnd::cancelled:
      scanner.abort(ScanStatus::cancelled);
      break;
    case detail::DriveEnd::poll_failed:
      scanner.abort(ScanStatus::error, errno);
      break;
  }
}

}  // namespace bytepump
