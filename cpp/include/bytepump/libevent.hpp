#ifndef BYTEPUMP_LIBEVENT_HPP_
#define BYTEPUMP_LIBEVENT_HPP_

// The libevent adapter (CMake target bytepump::libevent, which links
// libevent's event_core): a PipeEvent on a real event_base, as e4pipe's
// pipeevent_socket_new(base, fd, options).
#include <event2/event.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "bytepump/pipe_event.hpp"

namespace bytepump {

// Registers the fd with `base` for what watch() asks, and a timer for its
// deadline; each callback from the loop goes to handle(). Everything else
// (callbacks, buffers, enable/disable, watermarks, timeouts) is PipeEvent's.
// Free it before its event_base. A callback may free it.
class LibeventPipeEvent final : public PipeEvent {
 public:
  // Throws std::system_error if libevent cannot make its events.
  LibeventPipeEvent(event_base* base, int fd, int options = 0,
                    std::size_t max_size = PipeBuffer::kDefaultMaxSize)
      : PipeEvent(fd, options, max_size) {
    read_ = ::event_new(base, fd, EV_READ | EV_PERSIST, &LibeventPipeEvent::ready, this);
    write_ = ::event_new(base, fd, EV_WRITE | EV_PERSIST, &LibeventPipeEvent::ready, this);
    timer_ = ::event_new(base, -1, 0, &LibeventPipeEvent::ready, this);
    if (!read_ || !write_ || !timer_) {
      free_events();
      throw std::system_error(ENOMEM, std::generic_category(), "bytepump: event_new");
    }
    sync();
  }
  ~LibeventPipeEvent() override { free_events(); }

  event_base* base() const noexcept { return ::event_get_base(read_); }

 private:
  static void ready(evutil_socket_t, short what, void* arg) {
    auto* self = static_cast<LibeventPipeEvent*>(arg);
    if (self->handle((what & EV_READ) != 0, (what & EV_WRITE) != 0)) self->sync();
  }

  void watch_changed() noexcept override { sync(); }

  void sync() noexcept {
    if (!timer_) return;
    Watch w = watch();
    if (w.readable) {
      ::event_add(read_, nullptr);
    } else {
      ::event_del(read_);
    }
    if (w.writable) {
      ::event_add(write_, nullptr);
    } else {
      ::event_del(write_);
    }
    if (w.deadline) {
      auto left = std::max(std::chrono::nanoseconds::zero(), *w.deadline - Clock::now());
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
      timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
      ::event_add(timer_, &tv);
    } else {
      ::event_del(timer_);
    }
  }

  void free_events() noexcept {
    for (event* e : {read_, write_, timer_}) {
      if (e) ::event_free(e);
    }
    read_ = write_ = timer_ = nullptr;
  }

  event* read_ = nullptr;
  event* write_ = nullptr;
  event* timer_ = nullptr;
};

}  // namespace bytepump

#endif  // BYTEPUMP_LIBEVENT_HPP_
