#include "bytepump/detail/pipe_pool.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <vector>

namespace bytepump::detail {
namespace {

constexpr std::size_t kMaxPooled = 64;

std::mutex pool_mutex;
// Capacity of the pipes handed out and not yet released, and of the pooled
// ones (the latter under pool_mutex).
std::atomic<std::size_t> live_capacity{0};
std::size_t pooled_total = 0;
unsigned fork_generation = 0;  // changed by the child only, with pool_mutex held

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
  pooled_total = 0;
  ++fork_generation;
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

std::size_t read_pipe_quota() noexcept {
  if (::geteuid() == 0) return SIZE_MAX;  // CAP_SYS_RESOURCE: the kernel does not hold root to it
  unsigned long long pages = 0;
  if (FILE* f = std::fopen("/proc/sys/fs/pipe-user-pages-soft", "re")) {
    if (std::fscanf(f, "%llu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  if (pages == 0) return SIZE_MAX;
  long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page > 0 ? page : 4096);
}

std::size_t resize(Pipe& p, std::size_t size) noexcept {
  if (size > pipe_max_size()) size = pipe_max_size();
  // EPERM when the per-user pipe page limit is reached: keep the default.
  if (size > 0) ::fcntl(p.write_fd, F_SETPIPE_SZ, static_cast<int>(size));
  int actual = ::fcntl(p.write_fd, F_GETPIPE_SZ);
  return actual > 0 ? static_cast<std::size_t>(actual) : kDefaultPipeSize;
}

}  // namespace

std::size_t pipe_max_size() noexcept {
  static const std::size_t value = read_pipe_max_size();
  return value;
}

std::size_t pipe_quota() noexcept {
  static const std::size_t value = read_pipe_quota();
  return value;
}

std::size_t pipe_size_for(std::size_t requested, std::size_t in_use, std::size_t quota) noexcept {
  if (quota == SIZE_MAX) return requested;
  std::size_t left = quota > in_use ? quota - in_use : 0;
  std::size_t cap = left / 16 > kDefaultPipeSize ? left / 16 : kDefaultPipeSize;
  return requested < cap ? requested : cap;
}

std::size_t pipe_bytes_in_use() noexcept {
  std::lock_guard<std::mutex> lock(pool_mutex);
  return live_capacity.load(std::memory_order_relaxed) + pooled_total;
}

std::size_t pooled_capacity() noexcept {
  std::lock_guard<std::mutex> lock(pool_mutex);
  return pooled_total;
}

int dev_null() noexcept {
  static const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd;
}

Pipe acquire_pipe(std::size_t size) noexcept {
  Pipe p;
  unsigned generation = 0;
  {
    std::lock_guard<std::mutex> lock(pool_mutex);
    size = pipe_size_for(size, live_capacity.load(std::memory_order_relaxed) + pooled_total,
                         pipe_quota());
    generation = fork_generation;
    auto& pipes = pool();
    if (!pipes.empty()) {
      p = pipes.back();
      pipes.pop_back();
      pooled_total -= p.capacity;
    }
  }
  if (p.valid()) {
    if (p.capacity < size && p.capacity < pipe_max_size()) p.capacity = resize(p, size);
  } else {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return Pipe{};
    p = Pipe{fds[0], fds[1], 0, generation};
    p.capacity = resize(p, size);
  }
  live_capacity.fetch_add(p.capacity, std::memory_order_relaxed);
  return p;
}

void release_pipe(Pipe p, bool empty) noexcept {
  if (!p.valid()) return;
  live_capacity.fetch_sub(p.capacity, std::memory_order_relaxed);
  if (empty) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    auto& pipes = pool();
    // One made before a fork is shared with the other process: closed.
    const bool ours = p.generation == fork_generation;
    // Idle pipes hold quota: keep a few, and at most kMaxPooledBytes of them.
    if (ours && pipes.size() < kMaxPooled && pooled_total + p.capacity > kMaxPooledBytes &&
        p.capacity > kDefaultPipeSize) {
      p.capacity = resize(p, kDefaultPipeSize);  // an empty pipe shrinks
    }
    if (ours && pipes.size() < kMaxPooled && pooled_total + p.capacity <= kMaxPooledBytes) {
      try {
        pipes.push_back(p);
        pooled_total += p.capacity;
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
