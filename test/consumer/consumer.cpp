// Relays a pipe into another pipe with the installed library, the smallest
// real use of bytepump::pump, takes one response body off a socket with
// bytepump::fetch (the README's C++ examples), and queues bytes in a
// bytepump::PipeBuffer.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bytepump/fetch.hpp>
#include <bytepump/frames.hpp>
#include <bytepump/pipe_buffer.hpp>
#include <bytepump/pump.hpp>
#include <bytepump/tee.hpp>
#include <cstdio>
#include <cstring>
#include <string>

int main() {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return 1;
  const std::string message = "consumer says hello";
  if (write(in[1], message.data(), message.size()) != static_cast<ssize_t>(message.size()))
    return 1;
  close(in[1]);
  bytepump::Result r = bytepump::pump(in[0], out[1]);
  close(out[1]);
  char got[64] = {};
  ssize_t n = read(out[0], got, sizeof got);
  if (!r.ok() || r.bytes_written != message.size() || n != static_cast<ssize_t>(message.size()) ||
      std::memcmp(got, message.data(), message.size()) != 0) {
    std::fprintf(stderr, "relay failed: status %s, %llu bytes\n", bytepump::to_string(r.status),
                 static_cast<unsigned long long>(r.bytes_written));
    return 1;
  }
  std::printf("relayed %llu bytes with %s\n", static_cast<unsigned long long>(r.bytes_written),
              bytepump::to_string(r.strategy));

  // The server's answer is already waiting in the socket when the request goes out.
  int sv[2], body[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(body) != 0) return 1;
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  if (write(sv[1], response.data(), response.size()) != static_cast<ssize_t>(response.size()))
    return 1;
  bytepump::FetchOptions g;
  g.transfer.timeout(std::chrono::seconds(30));
  auto f = bytepump::fetch(sv[0], body[1], "GET / HTTP/1.1\r\nHost: origin\r\n\r\n", g);
  close(body[1]);
  char got_body[16] = {};
  n = read(body[0], got_body, sizeof got_body);
  if (f.outcome != bytepump::FetchResult::Outcome::done || n != 5 ||
      std::memcmp(got_body, "hello", 5) != 0) {
    std::fprintf(stderr, "fetch failed: %s\n", bytepump::to_string(f.outcome));
    return 1;
  }
  std::printf("fetched %llu body bytes\n", static_cast<unsigned long long>(f.body.bytes_written));

  int q_in[2], q_out[2];
  if (pipe2(q_in, O_NONBLOCK) != 0 || pipe2(q_out, O_NONBLOCK) != 0) return 1;
  if (write(q_in[1], "queued", 6) != 6) return 1;
  bytepump::PipeBuffer queue, moved;
  if (queue.splice_in(q_in[0], 100) != 6 || moved.move_from(queue, 100) != 6 ||
      moved.splice_out(q_out[1], 100) != 6 || read(q_out[0], got, sizeof got) != 6 ||
      std::memcmp(got, "queued", 6) != 0) {
    std::fprintf(stderr, "PipeBuffer failed\n");
    return 1;
  }
  std::printf("queued 6 bytes through %zu-byte-capped PipeBuffers\n", moved.max_size());

  // A frame over a socket pair, its payload routed into a pipe.
  int link[2], payload[2], sink[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, link) != 0 || pipe(payload) != 0 || pipe(sink) != 0)
    return 1;
  if (write(payload[1], "frame!", 6) != 6) return 1;
  bytepump::FrameWriter fw(link[0]);
  bytepump::FrameReader fr(link[1], [&](const bytepump::Frame&) { return sink[1]; });
  if (!fw.begin(9, 6, payload[0]) || bytepump::write_frame(fw) != bytepump::FrameStatus::frame ||
      bytepump::read_frame(fr) != bytepump::FrameStatus::frame || fr.frame().channel != 9 ||
      read(sink[0], got, sizeof got) != 6 || std::memcmp(got, "frame!", 6) != 0) {
    std::fprintf(stderr, "frames failed\n");
    return 1;
  }
  std::printf("framed 6 bytes on channel %u\n", fr.frame().channel);

  // One source into two pipes.
  int t_src[2], t_a[2], t_b[2];
  if (pipe(t_src) != 0 || pipe(t_a) != 0 || pipe(t_b) != 0) return 1;
  if (write(t_src[1], "both", 4) != 4) return 1;
  close(t_src[1]);
  bytepump::TeeResult t = bytepump::tee(t_src[0], {t_a[1], t_b[1]});
  char a4[4], b4[4];
  if (!t.ok() || read(t_a[0], a4, 4) != 4 || read(t_b[0], b4, 4) != 4 ||
      std::memcmp(a4, "both", 4) != 0 || std::memcmp(b4, "both", 4) != 0) {
    std::fprintf(stderr, "tee failed\n");
    return 1;
  }
  std::printf("teed 4 bytes into 2 pipes\n");
  return 0;
}
