#include "bytepump/detail/peek.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "bytepump/detail/syscalls.hpp"

namespace bytepump::detail {
namespace {

constexpr std::size_t kScratchPipe = 64 * 1024;

}  // namespace

Peeker::Peeker(int fd) noexcept : fd_(fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    error_ = errno;
    return;
  }
  if (S_ISSOCK(st.st_mode)) {
    kind_ = Kind::socket;
  } else if (S_ISFIFO(st.st_mode)) {
    kind_ = Kind::pipe;
    scratch_ = acquire_pipe(kScratchPipe);
    if (!scratch_.valid()) error_ = errno;
  } else if (S_ISREG(st.st_mode)) {
    kind_ = Kind::file;
    pos_ = ::lseek(fd, 0, SEEK_CUR);
    if (pos_ < 0) error_ = errno;
  }
}

Peeker::~Peeker() { release_pipe(scratch_, true); }

ssize_t Peeker::peek(char* buf, std::size_t cap) noexcept {
  switch (kind_) {
    case Kind::socket:
      return recv_retry(fd_, buf, cap, MSG_PEEK | MSG_DONTWAIT);
    case Kind::pipe: {
      ssize_t n =
          tee_retry(fd_, scratch_.write_fd, std::min(cap, scratch_.capacity), SPLICE_F_NONBLOCK);
      if (n <= 0) return n;
      // The scratch pipe was empty and tee() put n bytes in it: read them all
      // so it is empty again.
      std::size_t got = 0;
      while (got < static_cast<std::size_t>(n)) {
        ssize_t r = read_retry(scratch_.read_fd, buf + got, static_cast<std::size_t>(n) - got);
        if (r <= 0) {
          if (r == 0) errno = EIO;
          return -1;
        }
        got += static_cast<std::size_t>(r);
      }
      return n;
    }
    case Kind::file:
      return pread_retry(fd_, buf, cap, pos_);
    case Kind::other:
      return read_retry(fd_, buf, std::min<std::size_t>(cap, 1));
  }
  return -1;
}

bool Peeker::consume(std::size_t n) noexcept {
  switch (kind_) {
    case Kind::file:
      pos_ += static_cast<off_t>(n);
      return ::lseek(fd_, pos_, SEEK_SET) >= 0;
    case Kind::other:
      return true;  // peek() already took its byte
    default:
      break;
  }
  char discard[4096];
  while (n > 0) {
    ssize_t r = read_retry(fd_, discard, std::min(n, sizeof discard));
    if (r <= 0) {
      // The bytes were peeked, so they are there: anything else is a bug or
      // another reader racing us.
      if (r == 0) errno = EIO;
      return false;
    }
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace bytepump::detail
