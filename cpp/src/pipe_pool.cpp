#include "bytepump/detail/pipe_pool.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <vector>

namespace bytepump::detail {
namespace {

constexpr std::size_t kMaxPooled = 8;

std::mutex pool_mutex;

void close_pipe(const Pipe& p) noexcept {
  // Don't retry close in case of EINTR!
  if (p.read_fd >= 0) ::close(p.read_fd);
  if (p.write_fd >= 0) ::close(p.write_fd);
}

// Call with pool_mutex held.
std::vector<Pipe>& pool() {
  static auto* pipes = new std::vector<Pipe>();  // never destroyed: safe at exit
  return *pipes;
}

// fork() while another thread holds pool_mutex would leave the child's copy
// locked forever, so the forking thread takes it first. The child also closes
// its copies of the pooled pipes: they are shared with the parent, and using
// one from both processes would mix their bytes.
void before_fork() noexcept { pool_mutex.lock(); }
void after_fork_in_parent() noexcept { pool_mutex.unlock(); }
void after_fork_in_child() noexcept {
  for (const Pipe& p : pool()) close_pipe(p);
  pool().clear();
  pool_mutex.unlock();
}

const bool fork_handlers_installed =
    ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) == 0;

std::size_t read_pipe_max_size() noexcept {
  std::size_t value = 1 << 20;
  if (FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "re")) {
    unsigned long long v = 0;
    if (std::fscanf(f, "%llu", &v) == 1 && v > 0) value = static_cast<std::size_t>(v);
    std::fclose(f);
  }
  return value;
}

std::size_t resize(Pipe& p, std::size_t size) noexcept {
  if (size > pipe_max_size()) size = pipe_max_size();
  // EPERM when the per-user pipe page limit is reached: keep the default.
  if (size > 0) ::fcntl(p.write_fd, F_SETPIPE_SZ, static_cast<int>(size));
  int actual = ::fcntl(p.write_fd, F_GETPIPE_SZ);
  return actual > 0 ? static_cast<std::size_t>(actual) : 65536;
}

}  // namespace

std::size_t pipe_max_size() noexcept {
  static const std::size_t value = read_pipe_max_size();
  return value;
}

Pipe acquire_pipe(std::size_t size) noexcept {
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto& pipes = pool();
    if (!pipes.empty()) {
      Pipe p = pipes.back();
      pipes.pop_back();
      if (p.capacity < size && p.capacity < pipe_max_size()) p.capacity = resize(p, size);
      return p;
    }
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return Pipe{};
  Pipe p{fds[0], fds[1], 0};
  p.capacity = resize(p, size);
  return p;
}

void release_pipe(Pipe p, bool empty) noexcept {
  if (!p.valid()) return;
  if (empty) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto& pipes = pool();
    if (pipes.size() < kMaxPooled) {
      try {
        pipes.push_back(p);
        return;
      } catch (...) {
        // Out of memory: fall through and close.
      }
    }
  }
  close_pipe(p);
}

void with_pool_locked(void (*fn)(void*), void* arg) noexcept {
  std::lock_guard<std::mutex> lock(pool_mutex);
  fn(arg);
}

bool fork_safe() noexcept { return fork_handlers_installed; }

std::size_t pooled_bytes() noexcept {
  std::lock_guard<std::mutex> lock(pool_mutex);
  std::size_t total = 0;
  for (const Pipe& p : pool()) {
    int held = 0;
    if (::ioctl(p.read_fd, FIONREAD, &held) == 0 && held > 0)
      total += static_cast<std::size_t>(held);
  }
  return total;
}

std::size_t pooled_pipes() noexcept {
  std::lock_guard<std::mutex> lock(pool_mutex);
  return pool().size();
}

}  // namespace bytepump::detail
