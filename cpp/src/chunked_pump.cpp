#include "bytepump/chunked_pump.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "bytepump/detail/drive.hpp"
#include "bytepump/detail/syscalls.hpp"

namespace bytepump {

ChunkedPump::ChunkedPump(int src_fd, int dst_fd, const Options& options,
                         std::size_t max_line) noexcept
    : src_(src_fd),
      dst_(dst_fd),
      chunk_options_(options),
      max_line_(max_line ? max_line : 1),
      peeker_(src_fd),
      prefix_(options.prefix),
      decoder_(max_line_) {
  chunk_options_.offset.reset();
  chunk_options_.prefix = {};
  chunk_options_.progress = nullptr;
  result_.crc32 = options.crc32.value_or(0);
  if (src_fd < 0 || dst_fd < 0) {
    fail(Status::error, EBADF, src_fd < 0 ? Side::upstream : Side::downstream);
    return;
  }
  if (peeker_.error() != 0) {
    fail(Status::error, peeker_.error(), Side::upstream);
    return;
  }
  line_.reset(new (std::nothrow) char[max_line_]);
  if (!line_) {
    fail(Status::error, ENOMEM, Side::none);
    return;
  }
  // Once here rather than by every chunk's Pump (a no-op on regular files).
  src_nb_.prepare(src_fd);
  dst_nb_.prepare(dst_fd);
}

ChunkedPump::~ChunkedPump() {
  if (result_.status == Status::running) abort(Status::cancelled);
}

void ChunkedPump::end() noexcept {
  if (chunk_) {
    if (detached_) chunk_->detach();
    chunk_.reset();
  }
  if (detached_) {
    dst_nb_.forget();
    src_nb_.forget();
  }
  dst_nb_.restore();
  src_nb_.restore();
}

Step ChunkedPump::fail(Status status, int error, Side side) noexcept {
  result_.status = status;
  result_.error = error;
  result_.error_side = side;
  end();
  return Step{};
}

Step ChunkedPump::refuse(BodyError why, http::ParseError parse) noexcept {
  body_error_ = why;
  parse_error_ = parse;
  return fail(Status::error, 0, Side::upstream);
}

void ChunkedPump::abort(Status why, int error) noexcept {
  if (result_.status != Status::running) return;
  if (chunk_) {
    chunk_->abort(why, error);
    result_.bytes_read = base_read_ + chunk_->result().bytes_read;
    result_.bytes_written = base_written_ + chunk_->result().bytes_written;
  }
  fail(why, error, Side::none);
}

void ChunkedPump::detach() noexcept { detached_ = true; }

std::optional<Step> ChunkedPump::fill(ssize_t& n) noexcept {
  if (have_ == max_line_) return refuse(BodyError::line_too_long);
  filled_from_prefix_ = prefix_off_ < prefix_.size();
  if (filled_from_prefix_) {
    std::size_t len = std::min(prefix_.size() - prefix_off_, max_line_ - have_);
    std::memcpy(line_.get() + have_, prefix_.data() + prefix_off_, len);
    n = static_cast<ssize_t>(len);
    return std::nullopt;
  }
  n = peeker_.peek(line_.get() + have_, max_line_ - have_);
  if (n > 0) return std::nullopt;
  if (n == 0) return refuse(BodyError::truncated);
  if (detail::would_block(errno)) return Step::wait_on(Side::upstream, src_, dst_);
  return fail(Status::error, errno, Side::upstream);
}

bool ChunkedPump::take(std::size_t n) noexcept {
  if (filled_from_prefix_) {
    prefix_off_ += n;
  } else if (!peeker_.consume(n)) {
    fail(Status::error, errno, Side::upstream);
    return false;
  }
  return true;
}

Step ChunkedPump::step() noexcept {
  while (result_.status == Status::running) {
    if (chunk_) {
      Step s = chunk_->step();
      const Result& r = chunk_->result();
      result_.bytes_read = base_read_ + r.bytes_read;
      result_.bytes_written = base_written_ + r.bytes_written;
      if (s.kind != Step::Kind::done) return s;
      result_.strategy = r.strategy;
      if (r.status != Status::done) return fail(r.status, r.error, r.error_side);
      if (r.bytes_written != chunk_size_) return refuse(BodyError::truncated);
      decoder_.skip_data(chunk_size_);
      result_.crc32 = r.crc32;
      prefix_off_ += chunk_prefix_;
      chunk_prefix_ = 0;
      base_read_ = result_.bytes_read;
      base_written_ = result_.bytes_written;
      chunk_.reset();
      continue;
    }
    if (decoder_.done()) {
      result_.status = Status::done;
      end();
      break;
    }

    ssize_t n = 0;
    if (auto wait = fill(n)) return *wait;
    std::size_t len = have_ + static_cast<std::size_t>(n);
    http::ChunkedDecoder::Step d = decoder_.next({line_.get(), len});
    if (d.kind == http::ChunkedDecoder::Step::Kind::error) {
      return refuse(decoder_.error() == http::ChunkedDecoder::Error::line_too_long
                        ? BodyError::line_too_long
                        : BodyError::malformed,
                    decoder_.parse_error());
    }
    if (d.kind == http::ChunkedDecoder::Step::Kind::need_more) {
      if (!take(static_cast<std::size_t>(n))) break;
      have_ = len;
      continue;
    }
    // Framing (the decoder is never handed chunk data here: a Pump moves it).
    if (!take(d.consumed - have_)) break;
    have_ = 0;
    if (decoder_.data_left() > 0) {
      chunk_size_ = decoder_.data_left();
      chunk_options_.length = chunk_size_;
      // The chunk's first bytes may already be in the prefix.
      chunk_prefix_ = static_cast<std::size_t>(
          std::min<std::uint64_t>(chunk_size_, prefix_.size() - prefix_off_));
      chunk_options_.prefix = prefix_.substr(prefix_off_, chunk_prefix_);
      if (chunk_options_.crc32) chunk_options_.crc32 = result_.crc32;
      chunk_.emplace(src_, dst_, chunk_options_);
    }
  }
  return Step{};
}

void pump_chunked(ChunkedPump& body, const DriveOptions& options) {
  detail::run_to_end(body, options);
}

}  // namespace bytepump
