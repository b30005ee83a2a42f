// The thin Ruby binding: checks arguments, hands over buffered bytes, drives
// Pump::step() with rb_io_wait and maps the Result to Ruby values. A Ruby
// exception is a longjmp, so every C++ object with a destructor lives on the
// heap in a Native owned through rb_ensure, never in a frame that can unwind.
#include <ruby.h>
#include <ruby/fiber/scheduler.h>
#include <ruby/io.h>
#include <ruby/thread.h>

#include <chrono>
#include <cstdint>

#include "bytepump/pump.hpp"
#include "extconf.h"

namespace {

using bytepump::Interest;
using bytepump::Side;
using bytepump::Status;
using bytepump::Step;

VALUE mBytepump;
VALUE mNative;

struct Native {
  Native(int src, int dst, const bytepump::Options& o)
      : pump(src, dst, o), clock(o.upstream_timeout, o.downstream_timeout) {}
  bytepump::Pump pump;
  bytepump::StallClock clock;
};

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
};

std::optional<std::chrono::nanoseconds> seconds(double s) {
  if (s < 0) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

Native* create_native(const PumpArgs& a) noexcept {
  try {
    bytepump::Options o;
    if (a.has_length) o.length = a.length;
    if (a.has_offset) o.offset = a.offset;
    o.upstream_timeout = seconds(a.upstream_timeout);
    o.downstream_timeout = seconds(a.downstream_timeout);
    if (a.pipe_size) o.pipe_size = a.pipe_size;
    o.prefix = std::string_view(a.prefix, a.prefix_len);
    return new Native(a.src_fd, a.dst_fd, o);
  } catch (...) {
    return nullptr;
  }
}

struct Drive {
  Native* native;
  VALUE src;
  VALUE dst;
  bool yield_progress;
  bytepump::Result result;  // copied out before the Native is freed
};

struct StepCall {
  bytepump::Pump* pump;
  Step step;
};

void* step_without_gvl(void* arg) {
  auto* call = static_cast<StepCall*>(arg);
  call->step = call->pump->step();
  return nullptr;
}

VALUE drive_body(VALUE arg) {
  auto* d = reinterpret_cast<Drive*>(arg);
  bytepump::Pump& pump = d->native->pump;
  std::uint64_t reported = 0;
  for (;;) {
    StepCall call{&pump, Step{}};
    call.step.kind = Step::Kind::more;  // if the step never ran, just go round again
    rb_thread_call_without_gvl(step_without_gvl, &call, RUBY_UBF_IO, nullptr);
    const bytepump::Result& r = pump.result();
    if (d->yield_progress && r.bytes_written > reported) {
      std::uint64_t delta = r.bytes_written - reported;
      reported = r.bytes_written;
      rb_yield(ULL2NUM(delta));
    }
    if (call.step.kind == Step::Kind::done) break;
    if (call.step.kind == Step::Kind::more) {
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
    auto left = d->native->clock.remaining(r, call.step.side);
    if (left && left->count() <= 0) {
      pump.abort(call.step.side == Side::upstream ? Status::timeout_upstream
                                                  : Status::timeout_downstream);
      break;
    }
    VALUE io = call.step.side == Side::upstream ? d->src : d->dst;
    int events = call.step.interest == Interest::readable ? RUBY_IO_READABLE : RUBY_IO_WRITABLE;
    rb_io_wait(io, RB_INT2NUM(events), left ? DBL2NUM(left->count() / 1e9) : Qnil);
  }
  return Qnil;
}

bool io_open(VALUE io) {
  rb_io_t* fptr = RFILE(io)->fptr;
  return fptr && fptr->fd >= 0;
}

VALUE drive_cleanup(VALUE arg) {
  auto* d = reinterpret_cast<Drive*>(arg);
  // Closed by another thread meanwhile: its fd number may already be reused.
  if (!io_open(d->src) || !io_open(d->dst)) d->native->pump.detach();
  d->native->pump.finish();
  d->result = d->native->pump.result();
  delete d->native;
  d->native = nullptr;
  return Qnil;
}

int descriptor(VALUE io, rb_io_t* fptr) {
#ifdef HAVE_RB_IO_DESCRIPTOR
  (void)fptr;
  return rb_io_descriptor(io);
#else
  (void)io;
  return fptr->fd;
#endif
}

// Interned once at load: a pump's result then allocates no symbols.
VALUE status_symbols[static_cast<int>(Status::error) + 1];
VALUE side_symbols[static_cast<int>(Side::downstream) + 1];
VALUE strategy_symbols[static_cast<int>(bytepump::Strategy::copy) + 1];

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

// Bytepump::Native.pump(src, dst, upstream_timeout, downstream_timeout,
//                       length, offset, pipe_size) { |bytes| }
// => [bytes_read, bytes_written, status, errno, error_side, strategy]
// Arguments are validated by lib/bytepump.rb; this checks only what needs
// the IO internals.
VALUE Bytepump_Native_pump(VALUE self, VALUE src, VALUE dst, VALUE upstream_timeout,
                           VALUE downstream_timeout, VALUE length, VALUE offset, VALUE pipe_size) {
  Check_Type(src, T_FILE);
  Check_Type(dst, T_FILE);
  rb_io_t* src_fptr;
  GetOpenFile(src, src_fptr);
  rb_io_check_char_readable(src_fptr);
  VALUE dst_io = rb_io_get_write_io(dst);
  rb_io_t* dst_fptr;
  GetOpenFile(dst_io, dst_fptr);
  rb_io_check_writable(dst_fptr);
  rb_io_flush(dst_io);

  PumpArgs a{};
  a.src_fd = descriptor(src, src_fptr);
  a.dst_fd = descriptor(dst_io, dst_fptr);
  if (a.src_fd == a.dst_fd) rb_raise(rb_eArgError, "src and dst are the same file descriptor");
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.has_offset = !NIL_P(offset);
  a.offset = a.has_offset ? NUM2ULL(offset) : 0;
  a.upstream_timeout = timeout_arg(upstream_timeout);
  a.downstream_timeout = timeout_arg(downstream_timeout);
  a.pipe_size = NIL_P(pipe_size) ? 0 : NUM2SIZET(pipe_size);

  // Characters decoded by an encoding conversion can't go out as the bytes
  // they came from: refuse rather than drop or mix them.
  if (src_fptr->readconv && src_fptr->cbuf.len > 0) {
    rb_raise(rb_eIOError,
             "bytepump: src holds %d bytes decoded by its encoding conversion; read them "
             "first, or open src in binary mode",
             src_fptr->cbuf.len);
  }
  // Bytes Ruby already read ahead from src go out first, as IO.copy_stream does.
  VALUE prefix = Qnil;
  if (!a.has_offset && src_fptr->rbuf.len > 0) {
    long n = src_fptr->rbuf.len;
    if (a.has_length && a.length < static_cast<std::uint64_t>(n)) n = static_cast<long>(a.length);
    prefix = rb_str_new(src_fptr->rbuf.ptr + src_fptr->rbuf.off, n);
    src_fptr->rbuf.off += static_cast<int>(n);
    src_fptr->rbuf.len -= static_cast<int>(n);
    a.prefix = RSTRING_PTR(prefix);
    a.prefix_len = static_cast<std::size_t>(n);
  }

  Drive d{};
  d.native = create_native(a);
  if (!d.native) rb_raise(rb_eNoMemError, "bytepump: cannot allocate a pump");
  d.src = src;
  d.dst = dst_io;
  d.yield_progress = rb_block_given_p();
  rb_ensure(drive_body, reinterpret_cast<VALUE>(&d), drive_cleanup, reinterpret_cast<VALUE>(&d));
  RB_GC_GUARD(prefix);

  const bytepump::Result& r = d.result;
  return rb_ary_new_from_args(
      6, ULL2NUM(r.bytes_read), ULL2NUM(r.bytes_written), symbol(status_symbols, r.status),
      INT2NUM(r.error), symbol(side_symbols, r.error_side), symbol(strategy_symbols, r.strategy));
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void Init_bytepump() {
  intern_all<Status>(status_symbols);
  intern_all<Side>(side_symbols);
  intern_all<bytepump::Strategy>(strategy_symbols);
  mBytepump = rb_define_module("Bytepump");
  mNative = rb_define_module_under(mBytepump, "Native");
  rb_define_module_function(mNative, "pump", RUBY_METHOD_FUNC(Bytepump_Native_pump), 7);
}
