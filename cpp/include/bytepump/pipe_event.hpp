#ifndef BYTEPUMP_PIPE_EVENT_HPP_
#define BYTEPUMP_PIPE_EVENT_HPP_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/pipe_buffer.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// e4pipe's pipeevent, a libevent bufferevent look-alike: an fd with an
// input() and an output() PipeBuffer. Enabled for reading, it splices what
// the fd has into input() and calls the read callback; enabled for writing,
// it splices output() into the fd and calls the write callback once output
// has drained to its low-water mark. EOF, errors and timeouts go to the
// event callback with libevent's BEV_EVENT_* codes, and end that direction.
//
// The core is loop-agnostic, like Pump::step(): watch() says what to wait
// for and until when, handle() is told what happened. bytepump/libevent.hpp
// drives it from a real event_base. Writing to a closed reader raises
// SIGPIPE: ignore it or hold a SigpipeGuard, as for Pump::step().
class BYTEPUMP_API PipeEvent {
 public:
  // Event codes for the event callback: the values of BEV_EVENT_*.
  static constexpr short reading = 0x01;
  static constexpr short writing = 0x02;
  static constexpr short eof = 0x10;
  static constexpr short error = 0x20;
  static constexpr short timeout = 0x40;
  // Directions for enable() and disable(): libevent's EV_READ and EV_WRITE.
  static constexpr short read = 0x02;
  static constexpr short write = 0x04;
  // Option: the fd is closed with the PipeEvent (BEV_OPT_CLOSE_ON_FREE).
  static constexpr int close_on_free = 0x01;

  using DataCallback = std::function<void(PipeEvent&)>;
  using EventCallback = std::function<void(PipeEvent&, short what)>;

  // Switches fd to O_NONBLOCK. Writing starts enabled, reading disabled, as
  // for a new bufferevent. `max_size` bounds each of the two buffers.
  explicit PipeEvent(int fd, int options = 0, std::size_t max_size = PipeBuffer::kDefaultMaxSize);
  virtual ~PipeEvent();
  PipeEvent(const PipeEvent&) = delete;
  PipeEvent& operator=(const PipeEvent&) = delete;

  int fd() const noexcept { return fd_; }
  // Use them freely, but leave their length callbacks alone: they are how
  // the PipeEvent notices bytes queued or taken outside its own callbacks.
  PipeBuffer& input() noexcept { return input_; }
  PipeBuffer& output() noexcept { return output_; }

  // Any of them may be empty. A callback may destroy the PipeEvent, as its
  // last act: the callback object (and what it captured) goes with it.
  void set_callbacks(DataCallback read_cb, DataCallback write_cb, EventCallback event_cb);
  void enable(short what) noexcept;
  void disable(short what) noexcept;
  short enabled() const noexcept { return enabled_; }
  // As bufferevent_setwatermark: for `read`, the read callback waits for
  // `low` input bytes and reading pauses at `high` (0: no mark); for
  // `write`, the write callback fires once output is down to `low`.
  void set_watermark(short what, std::size_t low, std::size_t high) noexcept;
  // How long an enabled direction may wait with no progress before the
  // event callback gets reading|timeout or writing|timeout; nullopt: none.
  void set_timeouts(std::optional<std::chrono::nanoseconds> read_timeout,
                    std::optional<std::chrono::nanoseconds> write_timeout) noexcept;
  // errno of the last `error` event, 0 if none.
  int last_error() const noexcept { return error_; }

  struct Watch {
    bool readable = false;
    bool writable = false;
    std::optional<Clock::time_point> deadline;  // call handle() then, ready or not
  };
  // What the fd should be watched for now.
  Watch watch() const noexcept;
  // Moves bytes for the readiness a loop saw (or none, at a deadline) and
  // runs the callbacks. Returns false if a callback destroyed the PipeEvent.
  bool handle(bool readable, bool writable, Clock::time_point now = Clock::now());

 protected:
  // Called when watch() may have changed outside handle(): enable, disable,
  // new timeouts or watermarks, output() growing from empty. For loop
  // adapters; it must not destroy the PipeEvent.
  virtual void watch_changed() noexcept {}

 private:
  std::size_t read_cap() const noexcept;  // input size at which reading pauses
  bool reading_active() const noexcept;
  bool writing_active() const noexcept;
  // Runs the event callback with `what`; false if it destroyed us.
  bool report(short what, const std::shared_ptr<bool>& alive);

  int fd_;
  detail::NonblockingFd nb_;
  int options_;
  PipeBuffer input_;
  PipeBuffer output_;
  DataCallback read_cb_;
  DataCallback write_cb_;
  EventCallback event_cb_;
  short enabled_ = write;
  bool eof_ = false;
  int error_ = 0;
  std::size_t read_low_ = 0;
  std::size_t read_high_ = 0;
  std::size_t write_low_ = 0;
  std::optional<std::chrono::nanoseconds> read_timeout_;
  std::optional<std::chrono::nanoseconds> write_timeout_;
  Clock::time_point read_since_;   // reading enabled, or last bytes in
  Clock::time_point write_since_;  // output became non-empty, or last bytes out
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bytepump

#endif  // BYTEPUMP_PIPE_EVENT_HPP_
