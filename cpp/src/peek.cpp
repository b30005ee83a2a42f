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
  }
}

Peeker::~Peeker() { release_pipe(scratch_, scratch_empty_); }

ssize_t Peeker::peek(char* buf, std::size_t cap) noexcept {
  switch (kind_) {
    case Kind::socket:
      return recv_retry(fd_, buf, cap, MSG_PEEK | MSG_DONTWAIT);
    case Kind::pipe: {
      if (!scratch_empty_) {
        errno = EIO;  // an earlier peek failed halfway: its bytes would mix in
        return -1;
      }
      ssize_t n =
          tee_retry(fd_, scratch_.write_fd, std::min(cap, scratch_.capacity), SPLICE_F_NONBLOCK);
      if (n <= 0) return n;
      // The scratch pipe was empty and tee() put n bytes in it: read them all
      // so it is empty again. Until then it must not go back to the pool.
      scratch_empty_ = false;
      std::size_t got = 0;
      while (got < static_cast<std::size_t>(n)) {
        ssize_t r = read_retry(scratch_.read_fd, buf + got, static_cast<std::size_t>(n) - got);
        if (r <= 0) {
          if (r == 0) errno = EIO;
          return -1;
        }
        got += static_cast<std::size_t>(r);
      }
      scratch_empty_ = true;
      return n;
    }
    case Kind::file: {
      // The file position, not a copy of it: a Pump between two peeks moves it.
      off_t pos = ::lseek(fd_, 0, SEEK_CUR);
      if (pos < 0) return -1;
      return pread_retry(fd_, buf, cap, pos);
    }
    case Kind::other:
      return read_retry(fd_, buf, std::min<std::size_t>(cap, 1));
  }
  return -1;
}

bool Peeker::consume(std::size_t n) noexcept {
  switch (kind_) {
    case Kind::file:
      return ::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) >= 0;
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
