#include "bytepump/step.hpp"

namespace bytepump {

const char* to_string(Side side) noexcept {
  switch (side) {
    case Side::upstream:
      return "upstream";
    case Side::downstream:
      return "downstream";
    default:
      return "none";
  }
}

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::running:
      return "running";
    case Status::done:
      return "done";
    case Status::timeout_upstream:
      return "timeout_upstream";
    case Status::timeout_downstream:
      return "timeout_downstream";
    case Status::cancelled:
      return "cancelled";
    default:
      return "error";
  }
}

const char* to_string(Strategy strategy) noexcept {
  switch (strategy) {
    case Strategy::splice_direct:
      return "splice_direct";
    case Strategy::sendfile:
      return "sendfile";
    case Strategy::splice_pipe:
      return "splice_pipe";
    default:
      return "copy";
  }
}

StallClock::StallClock(std::optional<std::chrono::nanoseconds> upstream,
                       std::optional<std::chrono::nanoseconds> downstream,
                       Clock::time_point now) noexcept
    : upstream_(upstream), downstream_(downstream), since_(now) {}

std::optional<std::chrono::nanoseconds> StallClock::remaining(const Result& result, Side side,
                                                              Clock::time_point now) noexcept {
  bool progressed =
      side == Side::upstream ? result.bytes_read != read_ : result.bytes_written != written_;
  // A side's stall starts when the driver begins waiting on it with nothing
  // new from it since the last wait.
  if (side != side_ || progressed) since_ = now;
  side_ = side;
  read_ = result.bytes_read;
  written_ = result.bytes_written;
  const auto& limit = side == Side::upstream ? upstream_ : downstream_;
  if (!limit) return std::nullopt;
  return *limit - std::chrono::duration_cast<std::chrono::nanoseconds>(now - since_);
}

}  // namespace bytepump
