#ifndef BYTEPUMP_DETAIL_PEEK_HPP_
#define BYTEPUMP_DETAIL_PEEK_HPP_

#include <sys/types.h>

#include <cstddef>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/export.hpp"

namespace bytepump::detail {

// Looks at an fd's next bytes without taking them, so a parser can consume
// exactly what it accepts and leave the rest for a splice: recv(MSG_PEEK) on
// sockets, tee(2) into a scratch pipe on pipes, pread() at the file position
// on regular files.
// Other fds (terminals, devices) are read one byte at a time, which never
// takes a byte too many.
class BYTEPUMP_API Peeker {
 public:
  explicit Peeker(int fd) noexcept;
  ~Peeker();
  Peeker(const Peeker&) = delete;
  Peeker& operator=(const Peeker&) = delete;

  // errno if the fd could not be inspected, else 0.
  int error() const noexcept { return error_; }
  // Copies up to `cap` of the next bytes into `buf`: > 0 bytes, 0 at EOF,
  // -1 with errno (EAGAIN: wait until the fd is readable).
  ssize_t peek(char* buf, std::size_t cap) noexcept;
  // Takes `n` bytes of what the last peek() returned. False with errno.
  bool consume(std::size_t n) noexcept;

 private:
  enum class Kind : unsigned char { socket, pipe, file, other };
  int fd_;
  Kind kind_ = Kind::other;
  int error_ = 0;
  Pipe scratch_;
  bool scratch_empty_ = true;
};

}  // namespace bytepump::detail

#endif  // BYTEPUMP_DETAIL_PEEK_HPP_
