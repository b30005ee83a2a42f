// The thin Ruby binding: checks arguments, hands over buffered bytes, drives
// the core's step machines (Pump, ChunkedBody, HeadScanner) with rb_io_wait
// and maps their results to Ruby values. A Ruby exception is a longjmp, so
// every C++ object with a destructor lives on the heap in a Native owned
// through rb_ensure, never in a frame that can unwind.
//
// Only Ruby's public IO functions are used (no field of rb_io_t is read):
// rb_io_descriptor, rb_io_read_pending, IO#readpartial and IO#ungetbyte for
// the read-ahead buffer, rb_io_check_* for the checks (rb_io_closed_p on
// Ruby 3.3+ for the closed check after every step), rb_io_timeout (Ruby
// 3.2+) for an IO's own timeout.
//
// The machines run on duplicates of the IOs' fds. Another thread may close an
// IO while a step runs without the GVL; the duplicate keeps the open file
// description alive, so the step never touches a reused fd number, and the
// flags and file position are still restored through it. After every step
// and every callback into Ruby the IOs are checked, and a closed one ends the
// transfer with Ruby's own IOError. One exception, the per-call fast path: a
// Pump whose whole transfer is known to be small (kSmallTransfer) takes its
// first step on the IOs' own fds while holding the GVL, so no thread can
// close them meanwhile; it moves onto duplicates before Ruby runs again,
// unless that step finished the transfer.
#include <fcntl.h>
#include <poll.h>
#include <ruby.h>
#include <ruby/fiber/scheduler.h>
#include <ruby/io.h>
#include <ruby/thread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "bytepump/body_decoder.hpp"
#include "bytepump/canceller.hpp"
#include "bytepump/chunked.hpp"
#include "bytepump/frames.hpp"
#include "bytepump/head_parser.hpp"
#include "bytepump/head_scanner.hpp"
#include "bytepump/http_body.hpp"
#include "bytepump/http_parser.hpp"
#include "bytepump/pump.hpp"
#include "bytepump/tee.hpp"
#include "extconf.h"

namespace {

using bytepump::Interest;
using bytepump::Side;
using bytepump::Status;
using bytepump::Step;

VALUE mBytepump;
VALUE mNative;

template <typename Machine>
struct Native {
  template <typename... Args>
  Native(std::optional<std::chrono::nanoseconds> up, std::optional<std::chrono::nanoseconds> down,
         Args&&... args)
      : machine(std::forward<Args>(args)...), clock(up, down) {}
  Machine machine;
  bytepump::StallClock clock;
};

// What differs between the machines, for the one drive loop.
void stalled(bytepump::Pump& m, Side side) {
  m.abort(side == Side::upstream ? Status::timeout_upstream : Status::timeout_downstream);
}
void stalled(bytepump::HttpBody& m, Side side) {
  m.abort(side == Side::upstream ? Status::timeout_upstream : Status::timeout_downstream);
}
void stalled(bytepump::HeadScanner& m, Side) { m.abort(bytepump::ScanStatus::timeout); }
void end(bytepump::Pump& m) { m.finish(); }
void end(bytepump::HttpBody& m) { m.finish(); }
void end(bytepump::HeadScanner& m) { m.abort(bytepump::ScanStatus::cancelled); }
// Ruby values built from the machine while it still lives (a head's fields
// are views into the scanner's buffer). May raise: the cleanup still runs.
struct TransferOut;
struct ScanOut;
void finish_body(const bytepump::Pump&, TransferOut&) {}
void finish_body(const bytepump::HttpBody&, TransferOut&) {}
void finish_body(const bytepump::HeadScanner& m, ScanOut& out);

// Everything parsed from Ruby, plain data only.
struct PumpArgs {
  int src_fd;
  int dst_fd;
  bool has_length;
  std::uint64_t length;
  bool has_offset;
  std::uint64_t offset;
  double upstream_timeout;  // seconds; negative means none
  double downstream_timeout;
  std::size_t pipe_size;
  const char* prefix;
  std::size_t prefix_len;
  bool crc;
  std::uint32_t crc_seed;
  bytepump::http::Framing framing;  // of an HTTP body (Options#framing), else unused
  std::size_t buffer;               // read-ahead bytes (Options#buffer), 0: none
};

// Seconds to a stall timeout; negative is none. One too long for the
// nanosecond clock (over ~292 years, or infinite) is none too.
std::optional<std::chrono::nanoseconds> seconds(double s) {
  if (s < 0 || !(s * 1e9 < 9.2e18)) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

bytepump::Options pump_options(const PumpArgs& a) {
  bytepump::Options o;
  if (a.has_length) o.length = a.length;
  if (a.has_offset) o.offset = a.offset;
  o.upstream_timeout = seconds(a.upstream_timeout);
  o.downstream_timeout = seconds(a.downstream_timeout);
  if (a.pipe_size) o.pipe_size = a.pipe_size;
  o.prefix = std::string_view(a.prefix, a.prefix_len);
  if (a.crc) o.crc32 = a.crc_seed;
  o.buffer = a.buffer;
  return o;
}

template <typename Machine>
Native<Machine>* create_native(const PumpArgs& a) noexcept {
  try {
    bytepump::Options o = pump_options(a);
    if constexpr (std::is_same_v<Machine, bytepump::HttpBody>) {
      return new Native<Machine>(o.upstream_timeout, o.downstream_timeout, a.src_fd, a.dst_fd,
                                 a.framing, o);
    } else {
      return new Native<Machine>(o.upstream_timeout, o.downstream_timeout, a.src_fd, a.dst_fd, o);
    }
  } catch (...) {
    return nullptr;
  }
}

// Our own fds for one transfer (see the top of this file); -1 when unused.
struct Dups {
  int src = -1;
  int dst = -1;
  void close_all() noexcept {
    // Don't retry close in case of EINTR!
    if (src >= 0) ::close(src);
    if (dst >= 0) ::close(dst);
    src = dst = -1;
  }
};

// One blocking call's state; `out` is filled by the cleanup before the Native
// is freed.

template <typename Machine, typename Out>
struct Drive {
  Native<Machine>* native;
  Dups* dups;
  VALUE src;
  VALUE dst;  // Qnil for a machine with one fd
  bool yield_progress;
  Out out;
  // Read-ahead bytes the machine took at its start but did not use: the
  // last read_ahead_left of them go back to src first thing.
  VALUE read_ahead = Qnil;
  std::size_t read_ahead_left = 0;
  // A transfer's prefix (read-ahead taken from src): what the machine did
  // not deliver goes back to src when it ends, however it ends.
  VALUE prefix = Qnil;
  // The wake-up fd of the GVL-free waits, made at the first wait (a call
  // that never waits makes none); freed by drive_cleanup.
  bytepump::Canceller* wake = nullptr;
};

template <typename Machine>
struct StepCall {
  Machine* machine;
  Step step;
};

template <typename Machine>
void* step_without_gvl(void* arg) {
  auto* call = static_cast<StepCall<Machine>*>(arg);
  call->step = call->machine->step();
  return nullptr;
}

// Waiting without churn: in a thread with no Fiber scheduler the machine is
// stepped and waited on in one GVL-free region (ppoll on its fd and this
// thread's wake-up fd), so an idle side costs no GVL round trip per wait.
// Interrupts (Thread#raise, kill, Timeout, signals) reach it through the
// unblocking function, which fires the wake-up fd. It comes back to Ruby
// when the machine is done or ran out of step budget, when a side stalled
// for its whole timeout, when bytes moved and a progress block waits for
// them, when woken, and at least every kWaitSlice, so that an IO closed by
// another thread (which wakes no poll on our duplicated fds) is noticed.
constexpr std::chrono::milliseconds kWaitSlice{100};

// A wake-up fd for one call's GVL-free waits, or nullptr if no eventfd
// could be made (the driver then waits in Ruby, with rb_io_wait).
bytepump::Canceller* new_wake() noexcept {
  try {
    return new bytepump::Canceller();
  } catch (...) {
    return nullptr;
  }
}

void wake_up(void* wake) { static_cast<bytepump::Canceller*>(wake)->cancel(); }

template <typename Machine>
struct WaitCall {
  Machine* machine;
  bytepump::StallClock* clock;
  const bytepump::Canceller* wake;
  bool return_on_progress;
  Step step;
  bool stalled = false;
  bool poll_failed = false;  // Ruby waits this time (rb_io_wait)
};

template <typename Machine>
void* step_and_wait_without_gvl(void* arg) {
  auto* c = static_cast<WaitCall<Machine>*>(arg);
  const std::uint64_t written = c->machine->result().bytes_written;
  for (;;) {
    c->step = c->machine->step();
    if (c->step.kind != Step::Kind::wait) return nullptr;
    if (c->return_on_progress && c->machine->result().bytes_written != written) return nullptr;
    if (c->wake->cancelled()) return nullptr;
    auto left = c->clock->remaining(c->machine->result(), c->step.side);
    if (left && left->count() <= 0) {
      c->stalled = true;
      return nullptr;
    }
    std::chrono::nanoseconds wait = kWaitSlice;
    bool slice_ends_first = !left || *left > wait;
    if (!slice_ends_first) wait = *left;
    pollfd fds[3] = {
        {c->step.fd, static_cast<short>(c->step.interest == Interest::readable ? POLLIN : POLLOUT),
         0},
        {c->wake->fd(), POLLIN, 0},
        {c->step.also_fd,
         static_cast<short>(c->step.also_interest == Interest::readable ? POLLIN : POLLOUT), 0}};
    timespec ts{static_cast<time_t>(wait.count() / 1000000000),
                static_cast<long>(wait.count() % 1000000000)};
    int r = ::ppoll(fds, c->step.also_fd >= 0 ? 3 : 2, &ts, nullptr);
    if (r < 0 && errno != EINTR) {
      c->poll_failed = true;
      return nullptr;
    }
    if (r == 0 && slice_ends_first) return nullptr;
  }
}

ID id_readpartial;
ID id_ungetbyte;

VALUE check_byte_readable(VALUE fptr) {
  rb_io_check_byte_readable(reinterpret_cast<rb_io_t*>(fptr));
  return Qnil;
}

// Checks that io is open and readable, and that no characters decoded by an
// encoding conversion wait in it: those can't go out as the bytes they came
// from, so refuse rather than drop or mix them.
void check_readable(VALUE io, rb_io_t* fptr, const char* call) {
  rb_io_check_char_readable(fptr);
  int state = 0;
  rb_protect(check_byte_readable, reinterpret_cast<VALUE>(fptr), &state);
  if (state) {
    rb_set_errinfo(Qnil);
    rb_raise(rb_eIOError,
             "%s: the IO holds characters decoded by its encoding conversion; read them first, "
             "or open it in binary mode",
             call);
  }
}

// Takes up to `max` bytes Ruby already read ahead from io, as IO.copy_stream
// does, through IO#readpartial, which returns buffered bytes without a
// syscall. Returns nil when there are none.
VALUE take_read_ahead(VALUE io, rb_io_t* fptr, std::uint64_t max) {
  VALUE out = Qnil;
  while (max > 0 && rb_io_read_pending(fptr)) {
    long want = static_cast<long>(std::min<std::uint64_t>(max, 64 * 1024));
    VALUE chunk = rb_funcall(io, id_readpartial, 1, LONG2NUM(want));
    long n = RSTRING_LEN(chunk);
    if (n == 0) break;
    if (NIL_P(out)) out = rb_str_buf_new(n);
    rb_str_cat(out, RSTRING_PTR(chunk), n);
    max -= static_cast<std::uint64_t>(n);
  }
  return out;
}

// Puts the last `left` bytes of `taken` back in front of io's read buffer.
void give_back(VALUE io, VALUE taken, std::size_t left) {
  if (left == 0 || NIL_P(taken)) return;
  long len = RSTRING_LEN(taken);
  rb_funcall(io, id_ungetbyte, 1,
             rb_str_subseq(taken, len - static_cast<long>(left), static_cast<long>(left)));
}

// give_back from a cleanup, which may run while an exception propagates: an
// IO closed meanwhile has no buffer to take the bytes, and that is no
// reason to replace the exception on its way.
void give_back_now(VALUE io, VALUE taken, std::size_t left) {
  if (left == 0 || NIL_P(taken)) return;
  VALUE args[3] = {io, taken, SIZET2NUM(left)};
  int state = 0;
  rb_protect(
      [](VALUE a) {
        const VALUE* v = reinterpret_cast<const VALUE*>(a);
        give_back(v[0], v[1], NUM2SIZET(v[2]));
        return Qnil;
      },
      reinterpret_cast<VALUE>(args), &state);
  if (state) rb_set_errinfo(Qnil);
}

// Ruby's own IOError ("closed stream") if io is closed.
void check_open_io(VALUE io) {
#ifdef HAVE_RB_IO_CLOSED_P
  if (RTEST(rb_io_closed_p(io))) rb_raise(rb_eIOError, "closed stream");
#else
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
#endif
}

// Raises Ruby's IOError if another thread (or the progress block) closed
// one of the IOs: the transfer must not go on as if nothing happened.
void check_open(VALUE src, VALUE dst) {
  if (!NIL_P(src)) check_open_io(src);
  if (!NIL_P(dst)) check_open_io(dst);
}

// Ruby's own IOErrors for a closed io or one not opened for writing. Not
// rb_io_mode: rb_io_check_writable also hands back what Ruby read ahead of a
// read-write file (seeks back), so bytes land where its position says.
void check_writable(VALUE io) {
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
  rb_io_check_writable(fptr);
}

// An IO's own IO#timeout (Ruby 3.2+): nil when unset, on Ruby 3.1, and for
// an object that is not an IO.
VALUE own_timeout(VALUE io) {
#ifdef HAVE_RB_IO_TIMEOUT
  if (RB_TYPE_P(io, T_FILE)) return rb_io_timeout(io);
#endif
  static_cast<void>(io);
  return Qnil;
}

// A transfer of at most this many bytes (known up front) takes its first
// step holding the GVL, without duplicating the fds: a step on nonblocking
// fds returns at once, and file I/O of this size blocks the process for
// little longer than the duplicates and closes it saves.
constexpr std::uint64_t kSmallTransfer = 64 * 1024;

int dup_descriptor(VALUE io, const char* call);

// The per-call fast path (see the top of this file). Returns true when the
// first step ended the transfer; otherwise the machine is on duplicates.
template <typename Machine, typename Out>
bool first_step_holding_gvl(Drive<Machine, Out>* d) {
  if constexpr (std::is_same_v<Machine, bytepump::Pump>) {
    if (d->dups->src >= 0) return false;  // already on duplicates
    Machine& machine = d->native->machine;
    auto known = machine.known_remaining();
    if (known && *known <= kSmallTransfer && machine.step().kind == Step::Kind::done) return true;
    d->dups->src = dup_descriptor(d->src, "splice_to: dup(src)");
    d->dups->dst = dup_descriptor(d->dst, "splice_to: dup(dst)");
    machine.rebind(d->dups->src, d->dups->dst);
  }
  return false;
}

ID id_timeout;  // IO#timeout, from Ruby 3.2

// A wait without end goes a slice at a time where rb_io_wait would put an
// end to it or fail: under a Fiber scheduler on an IO without #timeout (Ruby
// 3.1; async 2.x reads io.timeout when a wait has none: NoMethodError), and
// on an IO whose own IO#timeout is set (Ruby 3.2+), which rb_io_wait and
// the scheduler apply to a wait without a timeout. A call that has no end
// (Float::INFINITY) has none; one that takes the IO's timeout passes it.
constexpr double kEndlessWaitSlice = 1.0;

// Every wait of bytepump's, in C and (through Bytepump::Native::Waits) in
// Ruby: rb_io_wait, remembering whether a Fiber scheduler did it.
// io-event (the selector of async and Falcon) drops an fd's epoll
// registration lazily: after the fiber an event resumed yields back to the
// loop. If that fiber closes the IO first and the IO is a duplicate whose
// file stays open elsewhere (Falcon's rack.hijack hands out one), the
// registration outlives the fd number, no epoll_ctl can remove it, and the
// loop spins on it until the other fd is closed. So a call that waited
// through a scheduler gives the loop one turn before it returns (settle).
struct SchedulerWaits {
  bool waited = false;

  // Truthy when ready; false or nil when the timeout (or a slice) ended.
  VALUE wait(VALUE io, int events, VALUE timeout) {
    bool scheduler = rb_fiber_scheduler_current() != Qnil;
    waited = waited || scheduler;
    if (NIL_P(timeout) &&
        ((scheduler && !rb_respond_to(io, id_timeout)) || !NIL_P(own_timeout(io)))) {
      timeout = DBL2NUM(kEndlessWaitSlice);
    }
    return rb_io_wait(io, RB_INT2NUM(events), timeout);
  }

  void settle() {
    if (!waited) return;
    waited = false;
    VALUE scheduler = rb_fiber_scheduler_current();
    if (scheduler != Qnil) rb_fiber_scheduler_kernel_sleep(scheduler, INT2FIX(0));
  }
};

template <typename Machine, typename Out>
VALUE drive_body(VALUE arg) {
  auto* d = reinterpret_cast<Drive<Machine, Out>*>(arg);
  Machine& machine = d->native->machine;
  give_back(d->src, d->read_ahead, d->read_ahead_left);
  std::uint64_t reported = 0;
  if (first_step_holding_gvl(d)) {
    const bytepump::Result& r = machine.result();
    if (d->yield_progress && r.bytes_written > 0) rb_yield(ULL2NUM(r.bytes_written));
    check_open(d->src, d->dst);  // as after any step: a block may have closed one
    finish_body(machine, d->out);
    return Qnil;
  }
  // With a Fiber scheduler every wait goes through it (rb_io_wait).
  const bool blocking_waits = rb_fiber_scheduler_current() == Qnil;
  SchedulerWaits scheduler_waits;
  for (;;) {
    // Not one byte more once an IO is closed; bytes a step moved while
    // another thread closed one are still reported before the IOError.
    check_open(d->src, d->dst);
    Step step;
    bool stalled_out = false;
    bool waited = false;
    bytepump::Canceller* wake = d->wake;
    if (wake) {
      WaitCall<Machine> call{&machine, &d->native->clock, wake, d->yield_progress, Step{}};
      call.step.kind = Step::Kind::more;  // if the call never ran, just go round again
      rb_thread_call_without_gvl(step_and_wait_without_gvl<Machine>, &call, wake_up, wake);
      step = call.step;
      stalled_out = call.stalled;
      waited = !call.poll_failed;
    } else {
      StepCall<Machine> call{&machine, Step{}};
      call.step.kind = Step::Kind::more;
      rb_thread_call_without_gvl(step_without_gvl<Machine>, &call, RUBY_UBF_IO, nullptr);
      step = call.step;
    }
    const bytepump::Result& r = machine.result();
    if (d->yield_progress && r.bytes_written > reported) {
      std::uint64_t delta = r.bytes_written - reported;
      reported = r.bytes_written;
      rb_yield(ULL2NUM(delta));
    }
    check_open(d->src, d->dst);
    if (step.kind == Step::Kind::done) break;
    if (stalled_out) {
      stalled(machine, step.side);
      break;
    }
    if (wake && wake->cancelled()) {
      wake->reset();
      rb_thread_check_ints();  // raises for Thread#raise, kill, Timeout
      continue;
    }
    if (step.kind == Step::Kind::more) {
      // A source and destination that never block must not starve other
      // fibers or threads: give them a turn every step budget.
      VALUE scheduler = rb_fiber_scheduler_current();
      if (scheduler != Qnil) {
        rb_fiber_scheduler_kernel_sleep(scheduler, INT2FIX(0));
      } else {
        rb_thread_check_ints();
      }
      continue;
    }
    // The GVL-free region waited, hands back progress, or its slice ended.
    if (waited) continue;
    // The first wait of a call without a Fiber scheduler, while other
    // threads want the GVL: wait in the GVL-free region from now on. A
    // thread that is alone loses nothing to the GVL round trip of
    // rb_io_wait, and measured faster with it (bench/relay numbers in the
    // README).
    // A wait on two fds (a buffered pump) needs the GVL-free ppoll too.
    if (blocking_waits && !wake && (!rb_thread_alone() || step.also_fd >= 0) &&
        (d->wake = new_wake()) != nullptr) {
      continue;
    }
    auto left = d->native->clock.remaining(r, step.side);
    if (left && left->count() <= 0) {
      stalled(machine, step.side);
      break;
    }
    VALUE io = step.side == Side::upstream ? d->src : d->dst;
    int events = step.interest == Interest::readable ? RUBY_IO_READABLE : RUBY_IO_WRITABLE;
    double wait = left ? left->count() / 1e9 : -1;
    // Two fds to watch through the scheduler: one, a short slice at a time.
    if (step.also_fd >= 0 && (wait < 0 || wait > 0.01)) wait = 0.01;
    scheduler_waits.wait(io, events, wait >= 0 ? DBL2NUM(wait) : Qnil);
  }
  scheduler_waits.settle();
  finish_body(machine, d->out);
  return Qnil;
}

struct TransferOut {
  bytepump::Result result;
  bytepump::BodyError body_error = bytepump::BodyError::none;
  bytepump::http::ParseError parse_error = bytepump::http::ParseError::none;
  std::size_t prefix_left = 0;  // read-ahead bytes the machine did not take
};

void collect(const bytepump::Pump& m, TransferOut& out) {
  out.result = m.result();
  out.prefix_left = m.prefix_left();
}
void collect(const bytepump::HttpBody& m, TransferOut& out) {
  out.result = m.result();
  out.body_error = m.body_error();
  out.parse_error = m.parse_error();
  out.prefix_left = m.prefix_left();
}

template <typename Machine, typename Out>
VALUE drive_cleanup(VALUE arg) {
  auto* d = reinterpret_cast<Drive<Machine, Out>*>(arg);
  // The machine restores flags and positions through the duplicates, which
  // are still the right files even if an IO was closed meanwhile.
  end(d->native->machine);
  collect(d->native->machine, d->out);
  delete d->native;
  d->native = nullptr;
  delete d->wake;
  d->wake = nullptr;
  d->dups->close_all();
  if constexpr (std::is_same_v<Out, TransferOut>)
    give_back_now(d->src, d->prefix, d->out.prefix_left);
  return Qnil;
}

// A duplicate of io's fd, or raises Errno (EMFILE...) naming the call.
int dup_descriptor(VALUE io, const char* call) {
  int fd = ::fcntl(rb_io_descriptor(io), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) rb_sys_fail(call);
  return fd;
}

// Interned once at load: a pump's result then allocates no symbols.
VALUE status_symbols[static_cast<int>(Status::error) + 1];
VALUE side_symbols[static_cast<int>(Side::downstream) + 1];
VALUE strategy_symbols[static_cast<int>(bytepump::Strategy::copy) + 1];
VALUE body_error_symbols[static_cast<int>(bytepump::BodyError::line_too_long) + 1];
VALUE scan_symbols[static_cast<int>(bytepump::ScanStatus::error) + 1];
VALUE framing_symbols[static_cast<int>(bytepump::http::Framing::Kind::invalid) + 1];

// An HTTP body framing from its symbol (:length with `length`, :chunked,
// :close, :none), as Response#framing names it.
bytepump::http::Framing framing_arg(VALUE kind, std::uint64_t length) {
  bytepump::http::Framing f;
  for (std::size_t i = 0; i < sizeof framing_symbols / sizeof framing_symbols[0]; ++i) {
    if (framing_symbols[i] == kind) f.kind = static_cast<bytepump::http::Framing::Kind>(i);
  }
  if (f.kind == bytepump::http::Framing::Kind::invalid) {
    rb_raise(rb_eArgError, "bytepump: unknown body framing %" PRIsVALUE, rb_inspect(kind));
  }
  f.length = length;
  return f;
}

template <typename Enum, std::size_t N>
void intern_all(VALUE (&table)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    table[i] = ID2SYM(rb_intern(bytepump::to_string(static_cast<Enum>(i))));
}

template <typename Enum, std::size_t N>
VALUE symbol(VALUE (&table)[N], Enum value) {
  return table[static_cast<std::size_t>(value)];
}

double timeout_arg(VALUE v) { return NIL_P(v) ? -1.0 : NUM2DBL(v); }

// `a` holds the duplicated fds in `dups`, which this closes in all cases,
// and gives back to src what the machine did not deliver of `prefix`.
template <typename Machine>
TransferOut run_transfer(const PumpArgs& a, Dups& dups, VALUE src, VALUE dst, VALUE prefix) {
  Drive<Machine, TransferOut> d{};
  d.native = create_native<Machine>(a);
  if (!d.native) {
    dups.close_all();
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a pump");
  }
  d.dups = &dups;
  d.src = src;
  d.dst = dst;
  d.prefix = prefix;
  d.yield_progress = rb_block_given_p();
  rb_ensure(drive_body<Machine, TransferOut>, reinterpret_cast<VALUE>(&d),
            drive_cleanup<Machine, TransferOut>, reinterpret_cast<VALUE>(&d));
  return d.out;
}

ID id_result_fields[9];  // @bytes_read ... @parse_error, in Result::FIELDS order
// Native::Options instance variables, in Options::FIELDS order.
enum OptionField {
  opt_upstream_timeout,
  opt_downstream_timeout,
  opt_length,
  opt_offset,
  opt_pipe_size,
  opt_crc32,
  opt_framing,
  opt_buffer,
  opt_count
};
ID id_option_fields[opt_count];

// A Bytepump::Result with its fields set directly: one object per transfer.
VALUE build_result(const bytepump::Result& r, bytepump::BodyError body_error,
                   bytepump::http::ParseError parse_error, bool crc) {
  VALUE cResult = rb_const_get(mBytepump, rb_intern("Result"));
  VALUE result = rb_obj_alloc(cResult);
  VALUE values[9] = {
      ULL2NUM(r.bytes_read),
      ULL2NUM(r.bytes_written),
      symbol(status_symbols, r.status),
      symbol(strategy_symbols, r.strategy),
      r.error_side == Side::none ? Qnil : symbol(side_symbols, r.error_side),
      INT2NUM(r.error),
      crc ? ULONG2NUM(r.crc32) : Qnil,
      body_error == bytepump::BodyError::none ? Qnil : symbol(body_error_symbols, body_error),
      parse_error == bytepump::http::ParseError::none
          ? Qnil
          : rb_str_new_cstr(bytepump::http::to_string(parse_error))};
  for (int i = 0; i < 9; ++i) rb_ivar_set(result, id_result_fields[i], values[i]);
  return rb_obj_freeze(result);
}

// The transfer behind Native.pump and Native.splice, once the arguments are
// plain data in `a` (framing set when `http_body`): checks the IOs, takes
// the read-ahead, runs the machine on duplicated fds, gives back what a body
// did not use.
TransferOut transfer(VALUE src, VALUE dst, PumpArgs& a, bool http_body) {
  Check_Type(src, T_FILE);
  Check_Type(dst, T_FILE);
  rb_io_t* src_fptr;
  GetOpenFile(src, src_fptr);
  check_readable(src, src_fptr, "splice_to");
  VALUE dst_io = rb_io_get_write_io(dst);
  check_writable(dst_io);
  rb_io_flush(dst_io);
  if (rb_io_descriptor(src) == rb_io_descriptor(dst_io)) {
    rb_raise(rb_eArgError, "src and dst are the same file descriptor");
  }

  // Bytes Ruby already read ahead from src go out first (an HTTP body
  // takes what it needs and gives the rest back).
  VALUE prefix = Qnil;
  if (!a.has_offset) {
    std::uint64_t max = a.has_length && !http_body ? a.length : UINT64_MAX;
    prefix = take_read_ahead(src, src_fptr, max);
  }
  if (!NIL_P(prefix)) {
    a.prefix = RSTRING_PTR(prefix);
    a.prefix_len = static_cast<std::size_t>(RSTRING_LEN(prefix));
  }

  // A body machine starts on duplicates; a Pump starts on the IOs' own fds
  // and takes duplicates before it runs without the GVL (drive_body).
  Dups dups;
  a.src_fd = rb_io_descriptor(src);
  a.dst_fd = rb_io_descriptor(dst_io);
  if (http_body) {
    dups.src = dup_descriptor(src, "splice_to: dup(src)");
    a.src_fd = dups.src;
    dups.dst = ::fcntl(a.dst_fd, F_DUPFD_CLOEXEC, 3);
    if (dups.dst < 0) {
      dups.close_all();
      rb_sys_fail("splice_to: dup(dst)");
    }
    a.dst_fd = dups.dst;
  }

  TransferOut out;
  if (http_body) {
    out = run_transfer<bytepump::HttpBody>(a, dups, src, dst_io, prefix);
  } else {
    out = run_transfer<bytepump::Pump>(a, dups, src, dst_io, prefix);
  }
  RB_GC_GUARD(prefix);
  return out;
}

// Bytepump::Native.pump(src, dst, options) { |bytes| } => Bytepump::Result
// options is a Native::Options: upstream_timeout, downstream_timeout, length,
// offset, pipe_size, crc32 (nil, or the CRC to continue from), framing (nil,
// or an HTTP body's: :length (of `length` bytes), :chunked, :close, :none;
// the body is then moved by http::HttpBody, offset unused). Arguments are
// validated by lib/ (Native.check_timeout, Native.check_count); this checks
// only what needs the IO itself.
VALUE Bytepump_Native_pump(VALUE self, VALUE src, VALUE dst, VALUE options) {
  VALUE cOptions = rb_const_get(mNative, rb_intern("Options"));
  if (!rb_obj_is_kind_of(options, cOptions)) {
    rb_raise(rb_eTypeError, "Native.pump: options must be a Bytepump::Native::Options");
  }
  auto option = [options](OptionField f) { return rb_ivar_get(options, id_option_fields[f]); };
  VALUE upstream_timeout = option(opt_upstream_timeout),
        downstream_timeout = option(opt_downstream_timeout), length = option(opt_length),
        offset = option(opt_offset), pipe_size = option(opt_pipe_size), crc32 = option(opt_crc32),
        framing = option(opt_framing), buffer = option(opt_buffer);
  PumpArgs a{};
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.has_offset = !NIL_P(offset);
  a.offset = a.has_offset ? NUM2ULL(offset) : 0;
  a.upstream_timeout = timeout_arg(upstream_timeout);
  a.downstream_timeout = timeout_arg(downstream_timeout);
  a.pipe_size = NIL_P(pipe_size) ? 0 : NUM2SIZET(pipe_size);
  a.crc = !NIL_P(crc32);
  a.crc_seed = a.crc ? static_cast<std::uint32_t>(NUM2ULONG(crc32)) : 0;
  a.buffer = NIL_P(buffer) ? 0 : NUM2SIZET(buffer);
  bool http_body = !NIL_P(framing);
  if (http_body) a.framing = framing_arg(framing, a.length);
  TransferOut out = transfer(src, dst, a, http_body);
  return build_result(out.result, out.body_error, out.parse_error, a.crc);
}

// Native.check_timeout(name, value, io = nil) => the stall timeout to use:
// nil (none) for Float::INFINITY, else value; for nil, a call that gives no
// timeout of its own, io's own IO#timeout (Ruby 3.2+), as Ruby's IO methods
// use it. Raises naming `name` for anything that is not a number of seconds
// >= 0. The one check of every timeout argument.
VALUE check_timeout(VALUE name, VALUE value, VALUE io) {
  if (NIL_P(value)) {
    if (NIL_P(io)) return Qnil;
    value = own_timeout(io);
    if (NIL_P(value)) return Qnil;
  }
  if (RB_FLOAT_TYPE_P(value)) {
    double d = RFLOAT_VALUE(value);
    if (d >= 0) return std::isinf(d) ? Qnil : value;  // NaN fails the comparison
  } else if (FIXNUM_P(value)) {
    if (FIX2LONG(value) >= 0) return value;
  } else if (!rb_obj_is_kind_of(value, rb_cNumeric)) {
    rb_raise(rb_eTypeError, "%" PRIsVALUE " must be Numeric seconds or nil (got %" PRIsVALUE ")",
             name, rb_inspect(value));
  } else if (RTEST(rb_funcall(value, rb_intern("real?"), 0)) &&
             RTEST(rb_funcall(value, rb_intern(">="), 1, INT2FIX(0)))) {
    double d = NUM2DBL(value);
    if (!std::isnan(d)) return std::isinf(d) ? Qnil : value;
  }
  rb_raise(rb_eArgError,
           "%" PRIsVALUE " must be a number of seconds >= 0 or nil (got %" PRIsVALUE ")", name,
           rb_inspect(value));
}

VALUE Bytepump_Native_check_timeout(int argc, VALUE* argv, VALUE self) {
  rb_check_arity(argc, 2, 3);
  return check_timeout(argv[0], argv[1], argc > 2 ? argv[2] : Qnil);
}

// Native.check_count(name, value): nil or an Integer >= 0, else raises
// naming `name`. Returns value.
VALUE Bytepump_Native_check_count(VALUE self, VALUE name, VALUE value) {
  if (NIL_P(value) || (FIXNUM_P(value) && FIX2LONG(value) >= 0)) return value;
  if (!RB_INTEGER_TYPE_P(value)) {
    rb_raise(rb_eTypeError, "%" PRIsVALUE " must be an Integer or nil (got %" PRIsVALUE ")", name,
             rb_inspect(value));
  }
  if (RTEST(rb_funcall(value, '<', 1, INT2FIX(0)))) {
    rb_raise(rb_eArgError, "%" PRIsVALUE " must be >= 0 (got %" PRIsVALUE ")", name, value);
  }
  return value;
}

VALUE sym_timeout;
VALUE sym_downstream_timeout;
VALUE sym_length;
VALUE sym_offset;

// Bytepump::Native.splice(src, dst, timeout, length, offset) { |bytes| } =>
// Integer bytes written, or :timeout_upstream / :timeout_downstream: the fast
// path of IO#splice_to for two IOs. The same checks, transfer and errors as
// Bytepump.pump, without an Options or a Result unless it fails. With no
// timeout given, each side has its IO's own IO#timeout, and running out of
// it raises IO::TimeoutError (Result#error).
VALUE Bytepump_Native_splice(VALUE self, VALUE src, VALUE dst, VALUE timeout, VALUE length,
                             VALUE offset) {
  VALUE up = check_timeout(sym_timeout, timeout, src);
  VALUE down =
      check_timeout(sym_timeout, timeout, RB_TYPE_P(dst, T_FILE) ? rb_io_get_write_io(dst) : Qnil);
  Bytepump_Native_check_count(self, sym_length, length);
  Bytepump_Native_check_count(self, sym_offset, offset);
  PumpArgs a{};
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.has_offset = !NIL_P(offset);
  a.offset = a.has_offset ? NUM2ULL(offset) : 0;
  a.upstream_timeout = timeout_arg(up);
  a.downstream_timeout = timeout_arg(down);
  TransferOut out = transfer(src, dst, a, false);
  bool timed_out = out.result.status == Status::timeout_upstream ||
                   out.result.status == Status::timeout_downstream;
  if (out.result.status == Status::done) return ULL2NUM(out.result.bytes_written);
  if (timed_out && !NIL_P(timeout)) return symbol(status_symbols, out.result.status);
  VALUE result = build_result(out.result, out.body_error, out.parse_error, false);
  rb_exc_raise(rb_funcall(result, rb_intern("error"), 3, src, dst, timed_out ? Qtrue : Qfalse));
}
struct ScanOut {
  bytepump::ScanStatus status = bytepump::ScanStatus::running;
  int error = 0;
  bytepump::http::ParseError parse_error = bytepump::http::ParseError::none;
  std::uint64_t consumed = 0;
  std::size_t interim = 0;
  VALUE head;  // preallocated to the limit: the cleanup must not allocate
  VALUE fields = Qnil;
};

void collect(const bytepump::HeadScanner& m, ScanOut& out) {
  out.status = m.status();
  out.error = m.error();
  out.parse_error = m.parse_error();
  out.consumed = m.consumed();
  out.interim = m.interim_responses();
  std::string_view head = m.head();
  std::memcpy(RSTRING_PTR(out.head), head.data(), head.size());
  rb_str_set_len(out.head, static_cast<long>(head.size()));
}

VALUE head_fields(const bytepump::http::Response& res, const bytepump::http::Header* headers,
                  std::size_t n);

void finish_body(const bytepump::HeadScanner& m, ScanOut& out) {
  if (m.status() == bytepump::ScanStatus::done) {
    out.fields = head_fields(m.response(), m.headers(), m.num_headers());
  }
}

// [minor_version, status, reason, [[name, value], ...], framing, length,
//  framing_error] for a parsed head. An obsolete folded line (a Header with
// no name) joins the value before it with one space; empty parts add none.
VALUE head_fields(const bytepump::http::Response& res, const bytepump::http::Header* headers,
                  std::size_t n) {
  namespace http = bytepump::http;
  http::Framing f = http::body_framing(res.status, headers, n);
  auto slice = [](std::string_view v) { return rb_str_new(v.data(), static_cast<long>(v.size())); };
  VALUE list = rb_ary_new_capa(static_cast<long>(n));
  VALUE last = Qnil;
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view value = headers[i].value;
    if (headers[i].name.empty() && !NIL_P(last)) {
      if (value.empty()) continue;
      if (RSTRING_LEN(last) > 0) rb_str_cat(last, " ", 1);
      rb_str_cat(last, value.data(), static_cast<long>(value.size()));
      continue;
    }
    last = slice(value);
    rb_ary_push(list, rb_assoc_new(slice(headers[i].name), last));
  }
  return rb_ary_new_from_args(7, INT2NUM(res.minor_version), INT2NUM(res.status), slice(res.reason),
                              list, framing_symbols[static_cast<int>(f.kind)], ULL2NUM(f.length),
                              f.error ? rb_str_new_cstr(f.error) : Qnil);
}

// Bytepump::Native.skip_headers(io, limit, max_headers, timeout)
// => [:done, errno, nil, consumed, interim, head, fields] or
//    [status, errno, parse error message or nil, consumed, interim, nil, nil]
VALUE Bytepump_Native_skip_headers(VALUE self, VALUE io, VALUE limit, VALUE max_headers,
                                   VALUE timeout) {
  Check_Type(io, T_FILE);
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
  check_readable(io, fptr, "skip_headers");
  bytepump::HeadLimits limits;
  limits.max_bytes = NUM2SIZET(limit);
  limits.max_headers = NUM2SIZET(max_headers);
  ScanOut out;
  out.head = rb_str_buf_new(static_cast<long>(limits.max_bytes));
  // Bytes Ruby already read ahead start the head; what follows it goes back
  // to the read buffer, where the next read or splice_to takes it first.
  VALUE read_ahead = take_read_ahead(io, fptr, limits.max_bytes);
  Dups dups;
  dups.src = dup_descriptor(io, "skip_headers: dup");
  Drive<bytepump::HeadScanner, ScanOut> d{};
  try {
    d.native = new Native<bytepump::HeadScanner>(seconds(timeout_arg(timeout)), std::nullopt,
                                                 dups.src, limits);
  } catch (...) {
    d.native = nullptr;
  }
  if (!d.native) {
    dups.close_all();
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a head scanner");
  }
  if (!NIL_P(read_ahead)) {
    auto len = static_cast<std::size_t>(RSTRING_LEN(read_ahead));
    d.read_ahead = read_ahead;
    d.read_ahead_left = len - d.native->machine.absorb(RSTRING_PTR(read_ahead), len);
  }
  d.dups = &dups;
  d.src = io;
  d.dst = Qnil;
  d.out = out;
  rb_ensure(drive_body<bytepump::HeadScanner, ScanOut>, reinterpret_cast<VALUE>(&d),
            drive_cleanup<bytepump::HeadScanner, ScanOut>, reinterpret_cast<VALUE>(&d));
  RB_GC_GUARD(read_ahead);
  const ScanOut& o = d.out;
  bool done = o.status == bytepump::ScanStatus::done;
  VALUE parse_error = o.parse_error == bytepump::http::ParseError::none
                          ? Qnil
                          : rb_str_new_cstr(bytepump::http::to_string(o.parse_error));
  VALUE fields = o.fields;
  return rb_ary_new_from_args(7, scan_symbols[static_cast<int>(o.status)], INT2NUM(o.error),
                              parse_error, ULL2NUM(o.consumed), SIZET2NUM(o.interim),
                              done ? o.head : Qnil, fields);
}

// Bytepump::Native.pool_stats => [pooled pipes, bytes they hold (always 0,
// or a dirty pipe was pooled), their capacity, capacity of all pipes
// bytepump holds (in use and pooled: what counts against the pipe quota)].
VALUE Bytepump_Native_pool_stats(VALUE self) {
  return rb_ary_new_from_args(4, SIZET2NUM(bytepump::detail::pooled_pipes()),
                              SIZET2NUM(bytepump::detail::pooled_bytes()),
                              SIZET2NUM(bytepump::detail::pooled_capacity()),
                              SIZET2NUM(bytepump::detail::pipe_bytes_in_use()));
}

template <typename T>
void typed_free(void* p) {
  delete static_cast<T*>(p);
}
template <typename T>
size_t typed_size(const void*) {
  return sizeof(T);
}
template <typename T>
rb_data_type_t typed(const char* name) {
  rb_data_type_t t{};
  t.wrap_struct_name = name;
  t.function.dfree = typed_free<T>;
  t.function.dsize = typed_size<T>;
  t.flags = RUBY_TYPED_FREE_IMMEDIATELY;
  return t;
}

// Bytepump::Native::Waits: SchedulerWaits for the Ruby paths (Copy, Sink,
// the https reader, connecting).
const rb_data_type_t kWaitsType = typed<SchedulerWaits>("Bytepump::Native::Waits");

VALUE Bytepump_Native_Waits_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kWaitsType, new SchedulerWaits());
}

// wait(io, events, timeout): true once io is ready for events (IO::READABLE
// or IO::WRITABLE), false when timeout seconds passed first; nil waits
// without end.
VALUE Bytepump_Native_Waits_wait(VALUE self, VALUE io, VALUE events, VALUE timeout) {
  auto* waits = static_cast<SchedulerWaits*>(rb_check_typeddata(self, &kWaitsType));
  int wanted = NUM2INT(events);
  for (;;) {
    if (RTEST(waits->wait(io, wanted, timeout))) return Qtrue;
    if (!NIL_P(timeout)) return Qfalse;
  }
}

// settle: gives a Fiber scheduler's loop one turn if a wait went through it.
VALUE Bytepump_Native_Waits_settle(VALUE self) {
  static_cast<SchedulerWaits*>(rb_check_typeddata(self, &kWaitsType))->settle();
  return Qnil;
}

// A source read from its fd alone (frames, tee): an IO, open, readable,
// with no bytes in Ruby's read-ahead buffer, which these paths cannot send.
void check_fd_source(VALUE io, const char* call) {
  Check_Type(io, T_FILE);
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
  check_readable(io, fptr, call);
  if (rb_io_read_pending(fptr)) {
    rb_raise(rb_eIOError,
             "%s: the IO has bytes buffered by Ruby (after gets or read(n)); it is read "
             "from its fd, so read them first or use a fresh IO",
             call);
  }
}

// Bytepump::Native::FrameReader and FrameWriter: the frame machines driven
// for Bytepump::Frames, one frame per call. Each call steps on duplicates of
// the IOs' fds (rebound at its start, closed at its end) and waits with
// rb_io_wait; framing, counts and messages are the core's.
struct FrameReaderBox {
  bytepump::FrameReader reader{-1};
  bool broken = false;  // a call stopped inside a frame: the stream is lost
  std::string broken_at;
};

const rb_data_type_t kFrameReaderType = typed<FrameReaderBox>("Bytepump::Native::FrameReader");

VALUE Bytepump_Native_FrameReader_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kFrameReaderType, new FrameReaderBox());
}

FrameReaderBox* get_frame_reader(VALUE self) {
  return static_cast<FrameReaderBox*>(rb_check_typeddata(self, &kFrameReaderType));
}

template <typename Machine>
struct FrameCall {
  Machine* machine;
  VALUE upstream_io;    // where the machine reads
  VALUE downstream_io;  // where it writes (Qnil until a reader's frame is routed)
  int up_dup = -1;
  int down_dup = -1;
  bytepump::StallClock clock;
  bool stalled = false;
  Side stalled_side = Side::none;
};

void close_dup(int& fd) {
  // Don't retry close in case of EINTR!
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Steps until the machine is done, waiting on the IO of the side it names,
// or until a side stalls past its timeout (c->stalled).
template <typename Machine>
void drive_frame_machine(FrameCall<Machine>* c) {
  SchedulerWaits scheduler_waits;
  for (;;) {
    check_open(c->upstream_io, c->downstream_io);
    StepCall<Machine> call{c->machine, Step{}};
    call.step.kind = Step::Kind::more;
    rb_thread_call_without_gvl(step_without_gvl<Machine>, &call, RUBY_UBF_IO, nullptr);
    check_open(c->upstream_io, c->downstream_io);
    Step step = call.step;
    if (step.kind == Step::Kind::done) break;
    if (step.kind == Step::Kind::more) {
      rb_thread_check_ints();
      continue;
    }
    auto left = c->clock.remaining(c->machine->result(), step.side);
    if (left && left->count() <= 0) {
      c->stalled = true;  // the caller ends the machine, or keeps it between frames
      c->stalled_side = step.side;
      break;
    }
    VALUE io = step.side == Side::upstream ? c->upstream_io : c->downstream_io;
    int events = step.interest == Interest::readable ? RUBY_IO_READABLE : RUBY_IO_WRITABLE;
    scheduler_waits.wait(io, events, left ? DBL2NUM(left->count() / 1e9) : Qnil);
  }
  scheduler_waits.settle();
}

VALUE frame_status_symbol(bytepump::FrameStatus status) {
  return ID2SYM(rb_intern(bytepump::to_string(status)));
}

VALUE writable_io(VALUE io, const char* what) {
  if (!RB_TYPE_P(io, T_FILE)) {
    rb_raise(rb_eTypeError, "%s must be an IO (got %" PRIsVALUE ")", what, rb_obj_class(io));
  }
  VALUE w = rb_io_get_write_io(io);
  check_writable(w);
  rb_io_flush(w);
  return w;
}

struct ReaderCall {
  FrameReaderBox* box;
  FrameCall<bytepump::FrameReader> call;
  std::uint64_t written_before;
  VALUE timeout;  // as given: nil takes each IO's own IO#timeout
  std::optional<std::chrono::nanoseconds> upstream_timeout;
};

// A stall timeout as the clocks take it: the call's own, else io's IO#timeout.
std::optional<std::chrono::nanoseconds> stall_timeout(VALUE given, VALUE io) {
  return seconds(timeout_arg(check_timeout(sym_timeout, given, io)));
}

VALUE frame_read_body(VALUE arg) {
  auto* r = reinterpret_cast<ReaderCall*>(arg);
  bytepump::FrameReader& reader = r->box->reader;
  drive_frame_machine(&r->call);
  if (reader.status() == bytepump::FrameStatus::header) {
    const bytepump::Frame& f = reader.frame();
    VALUE dst = rb_yield_values(2, UINT2NUM(f.channel), ULONG2NUM(f.length));
    if (NIL_P(dst)) {
      reader.deliver_to(-1);
    } else {
      if (!RB_TYPE_P(dst, T_FILE)) {
        rb_raise(rb_eTypeError,
                 "the route for channel %u must be an IO or nil (got %" PRIsVALUE ")", f.channel,
                 rb_obj_class(dst));
      }
      r->call.downstream_io = writable_io(dst, "the route");
      r->call.clock = bytepump::StallClock(r->upstream_timeout,
                                           stall_timeout(r->timeout, r->call.downstream_io));
      r->call.down_dup = dup_descriptor(r->call.downstream_io, "Frames#read: dup(route)");
      reader.deliver_to(r->call.down_dup);
    }
    drive_frame_machine(&r->call);
  }
  return Qnil;
}

VALUE frame_read_cleanup(VALUE arg) {
  auto* r = reinterpret_cast<ReaderCall*>(arg);
  bytepump::FrameReader& reader = r->box->reader;
  if (!r->call.stalled && !reader.between_frames() &&
      reader.status() != bytepump::FrameStatus::truncated &&
      reader.status() != bytepump::FrameStatus::error && !r->box->broken) {
    // Stopped inside a frame (an exception, a closed IO): what follows in
    // the stream can no longer be framed.
    r->box->broken = true;
    r->box->broken_at = "channel " + std::to_string(reader.frame().channel) + ", length " +
                        std::to_string(reader.frame().length);
    reader.abort(ECANCELED, Side::none);
  }
  // An idle reader holds no pipe (nor its share of the pipe quota).
  if (reader.between_frames()) reader.finish();
  reader.rebind(-1);
  close_dup(r->call.up_dup);
  close_dup(r->call.down_dup);
  return Qnil;
}

// FrameReader#read(io, timeout) { |channel, length| io or nil } =>
// (timeout nil: io's and the route's own IO#timeout)
//   [status, channel, length, payload bytes delivered, message]
// status: :frame, :eof, :invalid_length, :truncated, :error,
// :timeout_upstream (nothing arrived; the reader is still usable) or
// :broken (a stall or an earlier stop inside a frame). The block routes a
// frame's payload: an IO gets it, nil discards it.
VALUE Bytepump_Native_FrameReader_read(VALUE self, VALUE io, VALUE timeout) {
  FrameReaderBox* box = get_frame_reader(self);
  check_fd_source(io, "Frames#read");
  if (box->broken) {
    rb_raise(rb_eIOError,
             "Frames#read: the frame stream is broken: an earlier read stopped inside a "
             "frame (%s)",
             box->broken_at.c_str());
  }
  auto up = stall_timeout(timeout, io);
  ReaderCall r{box,
               {&box->reader, io, Qnil, -1, -1, bytepump::StallClock(up, std::nullopt)},
               0,
               timeout,
               up};
  r.written_before = box->reader.result().bytes_written;
  r.call.up_dup = dup_descriptor(io, "Frames#read: dup(io)");
  box->reader.rebind(r.call.up_dup);
  rb_ensure(frame_read_body, reinterpret_cast<VALUE>(&r), frame_read_cleanup,
            reinterpret_cast<VALUE>(&r));
  const bytepump::FrameReader& reader = box->reader;
  VALUE status;
  if (r.call.stalled && reader.between_frames()) {
    status = ID2SYM(rb_intern("timeout_upstream"));
  } else if (r.call.stalled) {
    box->reader.abort(ETIMEDOUT, r.call.stalled_side);
    box->broken = true;
    box->broken_at = "channel " + std::to_string(reader.frame().channel) + ", length " +
                     std::to_string(reader.frame().length);
    status = ID2SYM(
        rb_intern(r.call.stalled_side == Side::upstream ? "broken_upstream" : "broken_downstream"));
  } else {
    status = frame_status_symbol(reader.status());
  }
  if (reader.status() == bytepump::FrameStatus::error && !r.call.stalled) box->broken = true;
  std::string message = reader.message();
  VALUE out[5] = {status, UINT2NUM(reader.frame().channel), ULONG2NUM(reader.frame().length),
                  ULL2NUM(reader.result().bytes_written - r.written_before),
                  rb_str_new(message.data(), static_cast<long>(message.size()))};
  return rb_ary_new_from_values(5, out);
}

struct WriterCall {
  bytepump::FrameWriter* writer;
  FrameCall<bytepump::FrameWriter> call;
};

VALUE frame_write_body(VALUE arg) {
  drive_frame_machine(&reinterpret_cast<WriterCall*>(arg)->call);
  return Qnil;
}

VALUE frame_write_cleanup(VALUE arg);

VALUE frame_write_drive(VALUE arg) {
  return rb_ensure(frame_write_body, arg, frame_write_cleanup, arg);
}

VALUE frame_write_cleanup(VALUE arg) {
  auto* w = reinterpret_cast<WriterCall*>(arg);
  if (w->writer->busy()) w->writer->abort(ECANCELED, Side::none);
  w->writer->rebind(-1);  // restores the flags while the duplicate is open
  close_dup(w->call.up_dup);
  close_dup(w->call.down_dup);
  return Qnil;
}

// Native::FrameWriter.write(io, channel, payload, length, timeout) =>
// (timeout nil: io's and the payload IO's own IO#timeout)
//   [status, bytes written (header included), message, errno]
// payload: a String (length unused) or an IO to splice `length` bytes from.
// status: :frame, :truncated, :error, :timeout_upstream, :timeout_downstream.
VALUE Bytepump_Native_FrameWriter_write(VALUE self, VALUE io, VALUE channel, VALUE payload,
                                        VALUE length, VALUE timeout) {
  VALUE dst = writable_io(io, "the frames IO");
  unsigned long ch = NUM2ULONG(channel);
  if (ch > 0xffff) rb_raise(rb_eArgError, "channel must be 0..65535 (got %lu)", ch);
  VALUE frozen = Qnil;
  VALUE src = Qnil;
  std::uint64_t len;
  if (RB_TYPE_P(payload, T_STRING)) {
    frozen = rb_str_new_frozen(payload);
    len = static_cast<std::uint64_t>(RSTRING_LEN(frozen));
  } else {
    src = payload;
    check_fd_source(src, "Frames#write");
    len = NUM2ULL(length);
  }
  if (len == 0 || len > bytepump::kMaxFrameLength) {
    rb_raise(rb_eArgError, "frame length must be 1..%u (got %llu for channel %lu)",
             bytepump::kMaxFrameLength, static_cast<unsigned long long>(len), ch);
  }
  auto up = stall_timeout(timeout, src);
  auto down = stall_timeout(timeout, dst);
  auto* writer = new (std::nothrow) bytepump::FrameWriter(-1);
  if (!writer) rb_raise(rb_eNoMemError, "bytepump: cannot allocate a frame writer");
  WriterCall w{writer, {writer, src, dst, -1, -1, bytepump::StallClock(up, down)}};
  int err = 0;
  w.call.down_dup = ::fcntl(rb_io_descriptor(dst), F_DUPFD_CLOEXEC, 3);
  if (w.call.down_dup < 0) err = errno;
  if (!err && !NIL_P(src)) {
    w.call.up_dup = ::fcntl(rb_io_descriptor(src), F_DUPFD_CLOEXEC, 3);
    if (w.call.up_dup < 0) err = errno;
  }
  if (!err) {
    writer->rebind(w.call.down_dup);
    bool begun =
        NIL_P(src)
            ? writer->begin(static_cast<std::uint16_t>(ch),
                            std::string_view(RSTRING_PTR(frozen), static_cast<std::size_t>(len)))
            : writer->begin(static_cast<std::uint16_t>(ch), static_cast<std::uint32_t>(len),
                            w.call.up_dup);
    if (!begun) err = errno;
  }
  if (err) {
    writer->rebind(-1);
    close_dup(w.call.up_dup);
    close_dup(w.call.down_dup);
    delete writer;
    rb_syserr_fail(err, "Frames#write: dup");
  }
  // The writer is freed here, after an exception too, then it goes on.
  int state = 0;
  rb_protect(frame_write_drive, reinterpret_cast<VALUE>(&w), &state);
  RB_GC_GUARD(frozen);
  VALUE status;
  if (w.call.stalled) {
    status = ID2SYM(rb_intern(w.call.stalled_side == Side::upstream ? "timeout_upstream"
                                                                    : "timeout_downstream"));
  } else {
    status = frame_status_symbol(writer->status());
  }
  std::string message = writer->message();
  VALUE out[4] = {status, ULL2NUM(writer->result().bytes_written),
                  rb_str_new(message.data(), static_cast<long>(message.size())),
                  INT2NUM(writer->error())};
  delete writer;
  if (state) rb_jump_tag(state);
  return rb_ary_new_from_values(4, out);
}

// Bytepump::Native.tee: one source to several IOs (bytepump::Tee) on
// duplicates of their fds. Without a Fiber scheduler it waits for any of
// the fds in a GVL-free ppoll with a wake-up fd (interrupts come through the
// unblocking function); with one, on the first fd through the scheduler, a
// slice at a time. Stall clocks and dropping are the core's (TeeClock).
struct TeeCall {
  VALUE src;
  VALUE dsts;             // Array of write IOs
  std::vector<int> dups;  // the source's, then each destination's
  bytepump::Tee* tee = nullptr;
  bytepump::TeeClock* clock = nullptr;
  bytepump::Canceller* wake = nullptr;
  bool yield_progress = false;
};

void check_tee_open(TeeCall* c) {
  check_open(c->src, Qnil);
  for (long i = 0; i < RARRAY_LEN(c->dsts); ++i) check_open(RARRAY_AREF(c->dsts, i), Qnil);
}

struct TeeWait {
  std::vector<pollfd>* fds;
  std::chrono::nanoseconds wait;
};

void* tee_poll_without_gvl(void* arg) {
  auto* w = static_cast<TeeWait*>(arg);
  timespec ts{static_cast<time_t>(w->wait.count() / 1000000000),
              static_cast<long>(w->wait.count() % 1000000000)};
  ::ppoll(w->fds->data(), w->fds->size(), &ts, nullptr);
  return nullptr;
}

VALUE tee_body(VALUE arg) {
  auto* c = reinterpret_cast<TeeCall*>(arg);
  bytepump::Tee& tee = *c->tee;
  std::vector<pollfd> fds;
  SchedulerWaits scheduler_waits;
  for (;;) {
    check_tee_open(c);
    StepCall<bytepump::Tee> call{&tee, Step{}};
    call.step.kind = Step::Kind::more;
    rb_thread_call_without_gvl(step_without_gvl<bytepump::Tee>, &call, RUBY_UBF_IO, nullptr);
    auto now = bytepump::Clock::now();
    std::uint64_t fresh = c->clock->progress(tee.result(), now);
    if (c->yield_progress && fresh > 0) rb_yield(ULL2NUM(fresh));
    check_tee_open(c);
    if (call.step.kind == Step::Kind::done) break;
    if (call.step.kind == Step::Kind::more) {
      rb_thread_check_ints();
      continue;
    }
    auto deadline = c->clock->check(tee, now);
    if (tee.result().status != Status::running) break;
    if (deadline && *deadline <= now) continue;
    std::chrono::nanoseconds wait = kWaitSlice;
    if (deadline && *deadline - now < wait) wait = *deadline - now;
    VALUE scheduler = rb_fiber_scheduler_current();
    if (scheduler != Qnil || !c->wake) {
      const bytepump::Tee::Wait& first = tee.waits().front();
      VALUE io = first.destination < 0 ? c->src : RARRAY_AREF(c->dsts, first.destination);
      int events = first.interest == Interest::readable ? RUBY_IO_READABLE : RUBY_IO_WRITABLE;
      // With several fds to watch, one is waited on a slice at a time.
      double slice = tee.waits().size() > 1 ? 0.01 : wait.count() / 1e9;
      scheduler_waits.wait(io, events, DBL2NUM(std::min(slice, wait.count() / 1e9)));
      continue;
    }
    fds.clear();
    for (const bytepump::Tee::Wait& w : tee.waits()) {
      fds.push_back(
          {w.fd, static_cast<short>(w.interest == Interest::readable ? POLLIN : POLLOUT), 0});
    }
    fds.push_back({c->wake->fd(), POLLIN, 0});
    TeeWait tw{&fds, wait};
    rb_thread_call_without_gvl(tee_poll_without_gvl, &tw, wake_up, c->wake);
    if (c->wake->cancelled()) {
      c->wake->reset();
      rb_thread_check_ints();  // raises for Thread#raise, kill, Timeout
    }
  }
  scheduler_waits.settle();
  return Qnil;
}

VALUE tee_cleanup(VALUE arg) {
  auto* c = reinterpret_cast<TeeCall*>(arg);
  if (c->tee) c->tee->finish();  // restores flags through the duplicates
  for (int fd : c->dups) {
    // Don't retry close in case of EINTR!
    if (fd >= 0) ::close(fd);
  }
  c->dups.clear();
  return Qnil;
}

void free_tee_call(TeeCall* c) {
  delete c->tee;
  delete c->clock;
  delete c->wake;
  delete c;
}

// Native.tee(src, dsts, upstream_timeout, downstream_timeout, length) { |bytes read| }
//   => [bytes_read, status, errno, error_side, [[bytes_written, status, errno], ...]]
// A downstream_timeout of nil gives each destination its own IO#timeout.
VALUE Bytepump_Native_tee(VALUE self, VALUE src, VALUE dsts, VALUE upstream_timeout,
                          VALUE downstream_timeout, VALUE length) {
  check_fd_source(src, "tee");
  Check_Type(dsts, T_ARRAY);
  long n = RARRAY_LEN(dsts);
  if (n == 0) rb_raise(rb_eArgError, "tee: no destination");
  VALUE writes = rb_ary_new_capa(n);
  for (long i = 0; i < n; ++i) {
    VALUE d = RARRAY_AREF(dsts, i);
    if (!RB_TYPE_P(d, T_FILE)) {
      rb_raise(rb_eTypeError, "tee: destination %ld must be an IO (got %" PRIsVALUE ")", i,
               rb_obj_class(d));
    }
    VALUE w = writable_io(d, "a tee destination");
    int fd = rb_io_descriptor(w);
    if (fd == rb_io_descriptor(src)) {
      rb_raise(rb_eArgError, "tee: destination %ld is the source's file descriptor", i);
    }
    for (long j = 0; j < i; ++j) {
      if (rb_io_descriptor(RARRAY_AREF(writes, j)) == fd) {
        rb_raise(rb_eArgError, "tee: destinations %ld and %ld are the same file descriptor", j, i);
      }
    }
    rb_ary_push(writes, w);
  }
  PumpArgs a{};
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.upstream_timeout = timeout_arg(upstream_timeout);
  a.downstream_timeout = -1;  // the clock has each destination's
  // Each destination's stall timeout, as Floats (negative: none), before
  // anything with a destructor exists: check_timeout may raise.
  VALUE downstream_timeouts = rb_ary_new_capa(n);
  for (long i = 0; i < n; ++i) {
    VALUE t = check_timeout(sym_downstream_timeout, downstream_timeout, RARRAY_AREF(writes, i));
    rb_ary_push(downstream_timeouts, DBL2NUM(timeout_arg(t)));
  }
  auto* c = new (std::nothrow) TeeCall{src, writes, {}, nullptr, nullptr, nullptr, false};
  if (!c) rb_raise(rb_eNoMemError, "bytepump: cannot allocate a tee");
  int err = 0;
  try {
    c->dups.push_back(::fcntl(rb_io_descriptor(src), F_DUPFD_CLOEXEC, 3));
    for (long i = 0; i < n; ++i) {
      c->dups.push_back(::fcntl(rb_io_descriptor(RARRAY_AREF(writes, i)), F_DUPFD_CLOEXEC, 3));
    }
    for (int fd : c->dups) {
      if (fd < 0 && !err) err = errno;
    }
    if (!err) {
      bytepump::Options o = pump_options(a);
      std::vector<int> dst_fds(c->dups.begin() + 1, c->dups.end());
      c->tee = new bytepump::Tee(c->dups[0], dst_fds, o);
      std::vector<std::optional<std::chrono::nanoseconds>> downstream;
      for (long i = 0; i < n; ++i) {
        downstream.push_back(seconds(RFLOAT_VALUE(RARRAY_AREF(downstream_timeouts, i))));
      }
      c->clock = new bytepump::TeeClock(o.upstream_timeout, std::move(downstream));
      if (rb_fiber_scheduler_current() == Qnil) c->wake = new_wake();
    }
  } catch (...) {
    err = ENOMEM;
  }
  if (err) {
    tee_cleanup(reinterpret_cast<VALUE>(c));
    free_tee_call(c);
    rb_syserr_fail(err, "tee: dup");
  }
  c->yield_progress = rb_block_given_p();
  int state = 0;
  rb_protect([](VALUE arg) { return rb_ensure(tee_body, arg, tee_cleanup, arg); },
             reinterpret_cast<VALUE>(c), &state);
  const bytepump::TeeResult& r = c->tee->result();
  VALUE per = rb_ary_new_capa(n);
  for (const bytepump::TeeDestination& d : r.destinations) {
    rb_ary_push(per, rb_ary_new_from_args(3, ULL2NUM(d.bytes_written),
                                          symbol(status_symbols, d.status), INT2NUM(d.error)));
  }
  VALUE out = rb_ary_new_from_args(
      5, ULL2NUM(r.bytes_read), symbol(status_symbols, r.status), INT2NUM(r.error),
      r.error_side == Side::none ? Qnil : symbol(side_symbols, r.error_side), per);
  free_tee_call(c);
  RB_GC_GUARD(writes);
  RB_GC_GUARD(downstream_timeouts);
  if (state) rb_jump_tag(state);
  return out;
}

// Bytepump::Native::BodyDecoder: http::BodyDecoder for the paths where the
// body passes through Ruby (https, ends that are not IOs), plus the count of
// bytes the destination took: framing, limits, counts, CRC and errors are
// those of the splice path; Ruby only reads, writes and waits.
struct BodyDecoderBox {
  bytepump::http::BodyDecoder decoder;
  std::uint64_t written = 0;
};

const rb_data_type_t kDecoderType = typed<BodyDecoderBox>("Bytepump::Native::BodyDecoder");
const rb_data_type_t kHeadParserType =
    typed<bytepump::http::HeadParser>("Bytepump::Native::HeadParser");

VALUE step_kind_symbols[static_cast<int>(bytepump::http::BodyDecoder::Step::Kind::error) + 1];

VALUE Bytepump_Native_BodyDecoder_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kDecoderType, nullptr);
}

BodyDecoderBox* get_decoder(VALUE self) {
  auto* box = static_cast<BodyDecoderBox*>(rb_check_typeddata(self, &kDecoderType));
  if (!box) rb_raise(rb_eRuntimeError, "bytepump: BodyDecoder not initialized");
  return box;
}

// BodyDecoder.new(framing, length, max_line, crc32): framing as
// Response#framing names it (:length of `length` bytes, :chunked, :none), or
// :close: until the input ends, at most `length` bytes when one is given
// (a plain copy). crc32: nil, or the CRC to go on from.
VALUE Bytepump_Native_BodyDecoder_initialize(VALUE self, VALUE framing, VALUE length,
                                             VALUE max_line, VALUE crc32) {
  std::optional<std::uint64_t> limit;
  if (!NIL_P(length)) limit = NUM2ULL(length);
  std::optional<std::uint32_t> crc;
  if (!NIL_P(crc32)) crc = static_cast<std::uint32_t>(NUM2ULONG(crc32));
  bytepump::http::Framing f = framing_arg(framing, limit.value_or(0));
  if (f.kind == bytepump::http::Framing::Kind::length && !limit) {
    rb_raise(rb_eArgError, "bytepump: a :length body needs its length");
  }
  std::size_t line = NUM2SIZET(max_line);
  auto* box =
      new (std::nothrow) BodyDecoderBox{f.kind == bytepump::http::Framing::Kind::close
                                            ? bytepump::http::BodyDecoder::until_end(limit, crc)
                                            : bytepump::http::BodyDecoder(f, line, crc),
                                        0};
  if (!box) rb_raise(rb_eNoMemError, "bytepump: cannot allocate a body decoder");
  delete static_cast<BodyDecoderBox*>(DATA_PTR(self));
  DATA_PTR(self) = box;
  return self;
}

// decoder.next(buffer) => [kind, consumed]: kind is :need_more, :framing,
// :data (the first `consumed` bytes of buffer are body), :done or :error.
VALUE Bytepump_Native_BodyDecoder_next(VALUE self, VALUE buffer) {
  StringValue(buffer);
  auto step = get_decoder(self)->decoder.next(
      {RSTRING_PTR(buffer), static_cast<std::size_t>(RSTRING_LEN(buffer))});
  RB_GC_GUARD(buffer);
  return rb_assoc_new(step_kind_symbols[static_cast<int>(step.kind)], SIZET2NUM(step.consumed));
}

// decoder.finish => :done, or :error when the input ended before the body.
VALUE Bytepump_Native_BodyDecoder_finish(VALUE self) {
  return step_kind_symbols[static_cast<int>(get_decoder(self)->decoder.finish().kind)];
}

// decoder.want(cap) => how many bytes to read next (0: the body is complete).
VALUE Bytepump_Native_BodyDecoder_want(VALUE self, VALUE cap) {
  return SIZET2NUM(get_decoder(self)->decoder.want(NUM2SIZET(cap)));
}

// decoder.wrote(n): the destination took n more of the body bytes handed out.
VALUE Bytepump_Native_BodyDecoder_wrote(VALUE self, VALUE n) {
  auto* box = get_decoder(self);
  std::uint64_t count = NUM2ULL(n);
  if (count > box->decoder.body_bytes() - box->written) {
    rb_raise(rb_eArgError,
             "bytepump: %llu bytes written, but only %llu decoded bytes were not written yet",
             static_cast<unsigned long long>(count),
             static_cast<unsigned long long>(box->decoder.body_bytes() - box->written));
  }
  box->written += count;
  return self;
}

// decoder.bytes_read => body bytes handed out by data steps.
VALUE Bytepump_Native_BodyDecoder_bytes_read(VALUE self) {
  return ULL2NUM(get_decoder(self)->decoder.body_bytes());
}

VALUE Bytepump_Native_BodyDecoder_bytes_written(VALUE self) {
  return ULL2NUM(get_decoder(self)->written);
}

// decoder.error => nil, :truncated, :malformed or :line_too_long.
VALUE Bytepump_Native_BodyDecoder_error(VALUE self) {
  auto error = get_decoder(self)->decoder.error();
  return error == bytepump::BodyError::none ? Qnil : symbol(body_error_symbols, error);
}

// decoder.parse_error => what broke the chunked framing (a message), or nil.
VALUE Bytepump_Native_BodyDecoder_parse_error(VALUE self) {
  auto error = get_decoder(self)->decoder.parse_error();
  return error == bytepump::http::ParseError::none
             ? Qnil
             : rb_str_new_cstr(bytepump::http::to_string(error));
}

// decoder.result(status, side, errno) => a Bytepump::Result of this copy
// (strategy :copy): bytes decoded as read, bytes taken as written.
VALUE Bytepump_Native_BodyDecoder_result(VALUE self, VALUE status, VALUE side, VALUE errno_value) {
  auto* box = get_decoder(self);
  bytepump::Result r;
  r.bytes_read = box->decoder.body_bytes();
  r.bytes_written = box->written;
  r.strategy = bytepump::Strategy::copy;
  r.status = Status::error;
  for (std::size_t i = 0; i < sizeof status_symbols / sizeof status_symbols[0]; ++i) {
    if (status_symbols[i] == status) r.status = static_cast<Status>(i);
  }
  if (r.status == Status::error && status != symbol(status_symbols, Status::error)) {
    rb_raise(rb_eArgError, "bytepump: unknown status %" PRIsVALUE, rb_inspect(status));
  }
  r.error_side = side == symbol(side_symbols, Side::upstream)     ? Side::upstream
                 : side == symbol(side_symbols, Side::downstream) ? Side::downstream
                                                                  : Side::none;
  r.error = NUM2INT(errno_value);
  auto crc = box->decoder.crc32();
  r.crc32 = crc.value_or(0);
  return build_result(r, box->decoder.error(), box->decoder.parse_error(), crc.has_value());
}

// Bytepump::Native::HeadParser: http::HeadParser for the https path, so a
// head read through OpenSSL gets the very limits and errors of skip_headers.
VALUE head_step_symbols[static_cast<int>(bytepump::http::HeadParser::Step::Kind::too_large) + 1];

VALUE Bytepump_Native_HeadParser_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kHeadParserType, nullptr);
}

bytepump::http::HeadParser* get_head_parser(VALUE self) {
  auto* parser =
      static_cast<bytepump::http::HeadParser*>(rb_check_typeddata(self, &kHeadParserType));
  if (!parser) rb_raise(rb_eArgError, "Bytepump::Native::HeadParser: not initialized");
  return parser;
}

// HeadParser.new(limit, max_headers)
VALUE Bytepump_Native_HeadParser_initialize(VALUE self, VALUE limit, VALUE max_headers) {
  bytepump::HeadLimits limits;
  limits.max_bytes = NUM2SIZET(limit);
  limits.max_headers = NUM2SIZET(max_headers);
  auto* parser = new (std::nothrow) bytepump::http::HeadParser(limits);
  if (!parser || !parser->ok()) {
    delete parser;
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a head parser");
  }
  delete static_cast<bytepump::http::HeadParser*>(DATA_PTR(self));
  DATA_PTR(self) = parser;
  return self;
}

// parser.next(buffer) => [kind, consumed, fields or nil]: kind is :need_more,
// :interim (drop `consumed` bytes and go on), :final (the head is the first
// `consumed` bytes; fields as for skip_headers), :malformed or :too_large.
VALUE head_step(VALUE self, VALUE buffer, bool at_eof) {
  StringValue(buffer);
  auto* parser = get_head_parser(self);
  std::string_view head{RSTRING_PTR(buffer), static_cast<std::size_t>(RSTRING_LEN(buffer))};
  auto step = at_eof ? parser->finish(head) : parser->next(head);
  VALUE fields = step.kind == bytepump::http::HeadParser::Step::Kind::final
                     ? head_fields(parser->response(), parser->headers(), parser->num_headers())
                     : Qnil;
  RB_GC_GUARD(buffer);
  return rb_ary_new_from_args(3, head_step_symbols[static_cast<int>(step.kind)],
                              SIZET2NUM(step.consumed), fields);
}

VALUE Bytepump_Native_HeadParser_next(VALUE self, VALUE buffer) {
  return head_step(self, buffer, false);
}

// parser.finish(buffer): the input ended after buffer (see
// http::HeadParser::finish); :need_more then means a truncated head.
VALUE Bytepump_Native_HeadParser_finish(VALUE self, VALUE buffer) {
  return head_step(self, buffer, true);
}

VALUE Bytepump_Native_HeadParser_consumed(VALUE self) {
  return ULL2NUM(get_head_parser(self)->consumed());
}

VALUE Bytepump_Native_HeadParser_interim_responses(VALUE self) {
  return SIZET2NUM(get_head_parser(self)->interim_responses());
}

// parser.error => the parse error's message, or nil.
VALUE Bytepump_Native_HeadParser_error(VALUE self) {
  auto error = get_head_parser(self)->parse_error();
  return error == bytepump::http::ParseError::none
             ? Qnil
             : rb_str_new_cstr(bytepump::http::to_string(error));
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void Init_bytepump() {
  intern_all<Status>(status_symbols);
  intern_all<Side>(side_symbols);
  intern_all<bytepump::Strategy>(strategy_symbols);
  intern_all<bytepump::BodyError>(body_error_symbols);
  intern_all<bytepump::ScanStatus>(scan_symbols);
  static const char* framing_names[] = {"none", "length", "chunked", "close", "invalid"};
  for (int i = 0; i < 5; ++i) framing_symbols[i] = ID2SYM(rb_intern(framing_names[i]));
  mBytepump = rb_define_module("Bytepump");
  mNative = rb_define_module_under(mBytepump, "Native");
  id_readpartial = rb_intern("readpartial");
  id_timeout = rb_intern("timeout");
  id_ungetbyte = rb_intern("ungetbyte");
  rb_define_module_function(mNative, "pump", RUBY_METHOD_FUNC(Bytepump_Native_pump), 3);
  rb_define_module_function(mNative, "splice", RUBY_METHOD_FUNC(Bytepump_Native_splice), 5);
  rb_define_module_function(mNative, "check_timeout",
                            RUBY_METHOD_FUNC(Bytepump_Native_check_timeout), -1);
  rb_define_module_function(mNative, "check_count", RUBY_METHOD_FUNC(Bytepump_Native_check_count),
                            2);
  sym_timeout = ID2SYM(rb_intern("timeout"));
  sym_downstream_timeout = ID2SYM(rb_intern("downstream_timeout"));
  sym_length = ID2SYM(rb_intern("length"));
  sym_offset = ID2SYM(rb_intern("offset"));
  static const char* result_fields[] = {"@bytes_read", "@bytes_written", "@status",
                                        "@strategy",   "@error_side",    "@errno",
                                        "@crc32",      "@body_error",    "@parse_error"};
  for (int i = 0; i < 9; ++i) id_result_fields[i] = rb_intern(result_fields[i]);
  static const char* option_fields[opt_count] = {"@upstream_timeout", "@downstream_timeout",
                                                 "@length",           "@offset",
                                                 "@pipe_size",        "@crc32",
                                                 "@framing",          "@buffer"};
  for (int i = 0; i < opt_count; ++i) id_option_fields[i] = rb_intern(option_fields[i]);
  rb_define_module_function(mNative, "skip_headers", RUBY_METHOD_FUNC(Bytepump_Native_skip_headers),
                            4);
  static const char* step_names[] = {"need_more", "framing", "data", "done", "error"};
  for (int i = 0; i < 5; ++i) step_kind_symbols[i] = ID2SYM(rb_intern(step_names[i]));
  VALUE cDecoder = rb_define_class_under(mNative, "BodyDecoder", rb_cObject);
  rb_define_alloc_func(cDecoder, Bytepump_Native_BodyDecoder_alloc);
  rb_define_method(cDecoder, "initialize", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_initialize),
                   4);
  rb_define_method(cDecoder, "next", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_next), 1);
  rb_define_method(cDecoder, "finish", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_finish), 0);
  rb_define_method(cDecoder, "want", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_want), 1);
  rb_define_method(cDecoder, "wrote", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_wrote), 1);
  rb_define_method(cDecoder, "bytes_read", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_bytes_read),
                   0);
  rb_define_method(cDecoder, "bytes_written",
                   RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_bytes_written), 0);
  rb_define_method(cDecoder, "error", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_error), 0);
  rb_define_method(cDecoder, "parse_error",
                   RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_parse_error), 0);
  rb_define_method(cDecoder, "result", RUBY_METHOD_FUNC(Bytepump_Native_BodyDecoder_result), 3);
  static const char* head_step_names[] = {"need_more", "interim", "final", "malformed",
                                          "too_large"};
  for (int i = 0; i < 5; ++i) head_step_symbols[i] = ID2SYM(rb_intern(head_step_names[i]));
  VALUE cHeadParser = rb_define_class_under(mNative, "HeadParser", rb_cObject);
  rb_define_alloc_func(cHeadParser, Bytepump_Native_HeadParser_alloc);
  rb_define_method(cHeadParser, "initialize",
                   RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_initialize), 2);
  rb_define_method(cHeadParser, "next", RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_next), 1);
  rb_define_method(cHeadParser, "finish", RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_finish), 1);
  rb_define_method(cHeadParser, "consumed", RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_consumed),
                   0);
  rb_define_method(cHeadParser, "interim_responses",
                   RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_interim_responses), 0);
  rb_define_method(cHeadParser, "error", RUBY_METHOD_FUNC(Bytepump_Native_HeadParser_error), 0);
  rb_define_module_function(mNative, "pool_stats", RUBY_METHOD_FUNC(Bytepump_Native_pool_stats), 0);
  rb_define_module_function(mNative, "tee", RUBY_METHOD_FUNC(Bytepump_Native_tee), 5);
  VALUE cWaits = rb_define_class_under(mNative, "Waits", rb_cObject);
  rb_define_alloc_func(cWaits, Bytepump_Native_Waits_alloc);
  rb_define_method(cWaits, "wait", RUBY_METHOD_FUNC(Bytepump_Native_Waits_wait), 3);
  rb_define_method(cWaits, "settle", RUBY_METHOD_FUNC(Bytepump_Native_Waits_settle), 0);
  VALUE cFrameReader = rb_define_class_under(mNative, "FrameReader", rb_cObject);
  rb_define_alloc_func(cFrameReader, Bytepump_Native_FrameReader_alloc);
  rb_define_method(cFrameReader, "read", RUBY_METHOD_FUNC(Bytepump_Native_FrameReader_read), 2);
  VALUE cFrameWriter = rb_define_class_under(mNative, "FrameWriter", rb_cObject);
  rb_define_module_function(cFrameWriter, "write",
                            RUBY_METHOD_FUNC(Bytepump_Native_FrameWriter_write), 5);
}
