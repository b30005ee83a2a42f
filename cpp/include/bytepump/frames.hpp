#ifndef BYTEPUMP_FRAMES_HPP_
#define BYTEPUMP_FRAMES_HPP_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "bytepump/detail/pipe_pool.hpp"
#include "bytepump/detail/step_rules.hpp"
#include "bytepump/export.hpp"
#include "bytepump/pump.hpp"

namespace bytepump {

// evloop's Pipe frames, relayed without copying payloads:
//   channel (2 bytes, big-endian) | length (4 bytes, big-endian) | payload
// A length of 0 or over kMaxFrameLength is invalid.
constexpr std::uint32_t kMaxFrameLength = std::uint32_t{64} << 20;
constexpr std::size_t kFrameHeaderSize = 6;

enum class FrameStatus : std::uint8_t {
  running,
  header,          // FrameReader: a valid header was read; route its payload
  frame,           // a whole frame was read and delivered, or written
  eof,             // FrameReader: the source ended cleanly between frames
  invalid_length,  // FrameReader: the header said 0 or over kMaxFrameLength
  truncated,       // the source ended inside a frame
  error,           // a syscall failed: error() and error_side()
};

BYTEPUMP_API const char* to_string(FrameStatus status) noexcept;

struct Frame {
  std::uint16_t channel = 0;
  std::uint32_t length = 0;
};

// Reads frames off a source fd: each 6-byte header exactly (never a byte
// past it), then exactly `length` payload bytes spliced into the fd chosen
// for the frame's channel. A step machine like Pump: step() makes
// nonblocking calls until one would block and says what it waits for; it
// returns done after each frame (one frame per wake-up, for fairness, as the
// seed does), at EOF and on errors, with status() saying which.
//
// Routing: give a Route, or leave it empty and answer each `header` status
// with deliver_to(). An invalid length ends that step with invalid_length
// and the reader resets, as the seed's: the next step reads a new header.
class BYTEPUMP_API FrameReader {
 public:
  // The fd the frame's payload goes to; a negative one discards it. Must
  // not throw.
  using Route = std::function<int(const Frame&)>;

  explicit FrameReader(int src_fd, Route route = {},
                       std::size_t pipe_size = std::size_t{1} << 20) noexcept;
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  Step step() noexcept;
  // After a `header` status: where its payload goes (negative: discarded).
  void deliver_to(int fd) noexcept;
  // Reads from another fd (a dup of the one given, for drivers that hold
  // their own duplicate per call; -1 before closing it): the flags of the
  // fds left (source and route) are restored, the new source's prepared.
  void rebind(int src_fd) noexcept;
  // True when no byte of a frame has been read yet (a driver may stop here
  // and go on later) or after a frame or an invalid header.
  bool between_frames() const noexcept {
    return !in_payload_ && header_len_ == 0 && status_ != FrameStatus::header;
  }

  FrameStatus status() const noexcept { return status_; }
  // The frame of the last header, frame or invalid_length status.
  const Frame& frame() const noexcept { return frame_; }
  int error() const noexcept { return error_; }
  Side error_side() const noexcept { return error_side_; }
  // A sentence for the last invalid_length, truncated or error status,
  // naming the channel and length, e.g. "frame on channel 7 has invalid
  // length 0 (must be 1..67108864)".
  std::string message() const;
  // bytes_read: header and payload bytes taken from the source;
  // bytes_written: payload bytes delivered (discarded ones included).
  const Result& result() const noexcept { return result_; }
  std::uint64_t frames() const noexcept { return frames_; }
  // Ends a read under way with an error (read_frame's timeouts).
  void abort(int err, Side side) noexcept { end(FrameStatus::error, err, side); }
  // Gives its pipe back to the pool (or closes it if it still holds bytes);
  // a later step takes one again. Done by the destructor too.
  void finish() noexcept;

 private:
  Step wait_for(Side side) const noexcept;
  Step end(FrameStatus status, int err = 0, Side side = Side::none) noexcept;

  int src_;
  detail::NonblockingFd src_nb_;
  detail::NonblockingFd dst_nb_;  // the route of the frame under way
  Route route_;
  std::size_t pipe_size_;
  detail::Pipe pipe_;
  detail::SpliceFallbacks fallbacks_;  // the path of the frame under way
  unsigned char header_[kFrameHeaderSize] = {};
  std::size_t header_len_ = 0;
  bool in_payload_ = false;
  int dst_ = -1;
  std::uint32_t left_ = 0;     // payload bytes still to take from the source
  std::uint64_t in_pipe_ = 0;  // taken, not yet delivered
  Frame frame_;
  FrameStatus status_ = FrameStatus::running;
  int error_ = 0;
  Side error_side_ = Side::none;
  Result result_;
  std::uint64_t frames_ = 0;
};

// Writes frames to a destination fd: the header, then exactly `length`
// payload bytes spliced from a source fd (or written from memory). One frame
// at a time: begin() refuses a second while one is under way, so two frames
// never interleave on the destination. step() returns done when the frame is
// written (status frame) or failed (truncated, error).
class BYTEPUMP_API FrameWriter {
 public:
  explicit FrameWriter(int dst_fd, std::size_t pipe_size = std::size_t{1} << 20) noexcept;
  ~FrameWriter();
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  // Starts a frame of `length` bytes from src_fd. False with errno: EBUSY
  // while a frame is under way, EINVAL for a length of 0 or over the max.
  bool begin(std::uint16_t channel, std::uint32_t length, int src_fd) noexcept;
  // The same with the payload in memory, which must outlive the frame.
  bool begin(std::uint16_t channel, std::string_view payload) noexcept;
  Step step() noexcept;
  bool busy() const noexcept { return busy_; }
  // Writes to another fd (a dup of the one given; -1 before closing it):
  // the flags of the fd left are restored, the new one's prepared.
  void rebind(int dst_fd) noexcept;

  FrameStatus status() const noexcept { return status_; }
  const Frame& frame() const noexcept { return frame_; }
  int error() const noexcept { return error_; }
  Side error_side() const noexcept { return error_side_; }
  std::string message() const;
  // Counts for the frame under way or just ended: bytes_read from the
  // source, bytes_written to the destination (header included).
  const Result& result() const noexcept { return result_; }
  std::uint64_t frames() const noexcept { return frames_; }
  // Ends a frame under way with an error (write_frame's timeouts): the
  // destination may hold a partial frame.
  void abort(int err, Side side) noexcept { end(FrameStatus::error, err, side); }
  void finish() noexcept;

 private:
  bool start(std::uint16_t channel, std::uint32_t length) noexcept;
  Step wait_for(Side side) const noexcept;
  Step end(FrameStatus status, int err = 0, Side side = Side::none) noexcept;

  int dst_;
  detail::NonblockingFd dst_nb_;
  detail::NonblockingFd src_nb_;  // the payload source of the frame under way
  std::size_t pipe_size_;
  detail::Pipe pipe_;
  detail::SpliceFallbacks fallbacks_;  // the path of the frame under way
  unsigned char header_[kFrameHeaderSize] = {};
  std::size_t header_off_ = 0;
  int src_ = -1;
  std::string_view payload_;
  std::uint32_t left_ = 0;     // payload bytes still to take from the source
  std::uint64_t in_pipe_ = 0;  // taken, not yet written
  bool busy_ = false;
  Frame frame_;
  FrameStatus status_ = FrameStatus::running;
  int error_ = 0;
  Side error_side_ = Side::none;
  Result result_;
  std::uint64_t frames_ = 0;
};

// Blocking drivers: step until the reader or writer is done, waiting with
// ppoll under the stall timeouts and canceller of `options`, SIGPIPE blocked
// meanwhile. A stall or cancel ends it
// with status error and ETIMEDOUT or ECANCELED. Returns status().
BYTEPUMP_API FrameStatus read_frame(FrameReader& reader, const DriveOptions& options = {});
BYTEPUMP_API FrameStatus write_frame(FrameWriter& writer, const DriveOptions& options = {});

}  // namespace bytepump

#endif  // BYTEPUMP_FRAMES_HPP_
