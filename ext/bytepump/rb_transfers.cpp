// Transfers between two IOs: Pump, or BodyPump for an HTTP body's framing.
// Entry points:
//   Native.pump(src, dst, options) { |bytes| } => Bytepump::Result
//   Native.splice(src, dst, timeout, length, offset) { |bytes| }
//     => Integer bytes written, or :timeout_upstream / :timeout_downstream
//   Native.pool_stats => [pooled pipes, bytes they hold, their capacity,
//     capacity of every pipe bytepump holds]
#include <type_traits>

#include "binding.hpp"
#include "bytepump/body_pump.hpp"
#include "driver.hpp"

namespace bytepump::rb {
namespace {

// Everything parsed from Ruby, plain data only (it lives on the stack).
struct Args {
  bool has_length = false;
  std::uint64_t length = 0;
  bool has_offset = false;
  std::uint64_t offset = 0;
  VALUE upstream_timeout = Qnil;  // checked: nil is none
  VALUE downstream_timeout = Qnil;
  std::size_t pipe_size = 0;  // 0: the default
  bool crc = false;
  std::uint32_t crc_seed = 0;
  std::size_t buffer = 0;
  bool http_body = false;
  http::Framing framing;  // of an HTTP body, else unused
};

static_assert(std::is_trivially_destructible_v<Args>);

// What a transfer leaves for its Ruby value: plain data, safe on the stack.
struct Outcome {
  Result result;
  BodyError body_error = BodyError::none;
  http::ParseError parse_error = http::ParseError::none;
};

template <typename Machine>
void stalled(Machine& m, Side side) {
  m.abort(side == Side::upstream ? Status::timeout_upstream : Status::timeout_downstream);
}

// One call's state, on the heap (see binding.hpp).
template <typename Machine>
struct Transfer {
  Options options;
  Fds fds;
  Machine* machine = nullptr;
  OneFd<Machine> adapter{};
  Canceller* wake = nullptr;
  VALUE src = Qnil;
  VALUE dst = Qnil;
  // The read-ahead taken from src: what the machine did not deliver goes
  // back to src when it ends, however it ends.
  VALUE prefix = Qnil;
  bool yield_progress = false;
  Outcome* out = nullptr;
};

// A transfer of at most this many bytes (known up front) takes its first
// step holding the GVL, on the IOs' own fds: a step on nonblocking fds
// returns at once, no thread can close them meanwhile, and file I/O of this
// size blocks the process for little longer than the duplicates it saves.
// It moves onto duplicates before Ruby runs again, unless that step
// finished the transfer. Returns true when it did.
constexpr std::uint64_t kSmallTransfer = 64 * 1024;

bool first_step_holding_gvl(Transfer<Pump>* t) {
  auto known = t->machine->known_remaining();
  if (known && *known <= kSmallTransfer && t->machine->step().kind == Step::Kind::done) {
    return true;
  }
  int src = t->fds.take(t->src);
  int dst = src < 0 ? -1 : t->fds.take(t->dst);
  if (dst < 0) rb_sys_fail(src < 0 ? "splice_to: dup(src)" : "splice_to: dup(dst)");
  t->machine->rebind(src, dst);
  return false;
}

template <typename Machine>
VALUE transfer_body(Transfer<Machine>* t) {
  if constexpr (std::is_same_v<Machine, Pump>) {
    if (first_step_holding_gvl(t)) {
      const Result& r = t->machine->result();
      if (t->yield_progress && r.bytes_written > 0) rb_yield(ULL2NUM(r.bytes_written));
      t->adapter.check_open();  // as after any step: the block may have closed one
      return Qnil;
    }
  }
  drive(t->adapter, t->wake, t->yield_progress);
  return Qnil;
}

template <typename Machine>
VALUE transfer_cleanup(Transfer<Machine>* t) {
  std::size_t prefix_left = 0;
  if (t->machine) {
    // Flags and positions are restored through the duplicates, still the
    // right files even if an IO was closed meanwhile.
    t->machine->finish();
    t->out->result = t->machine->result();
    if constexpr (std::is_same_v<Machine, BodyPump>) {
      t->out->body_error = t->machine->body_error();
      t->out->parse_error = t->machine->parse_error();
    }
    prefix_left = t->machine->prefix_left();
  }
  delete t->machine;
  delete t->wake;
  t->fds.close_all();
  VALUE src = t->src, prefix = t->prefix;
  delete t;
  give_back_now(src, prefix, prefix_left);
  return Qnil;
}

template <typename Machine>
void run(const Args& a, VALUE src, VALUE dst, VALUE prefix, Outcome& out) {
  auto* t = new_state<Transfer<Machine>>("a pump");
  Options& o = t->options;
  if (a.has_length) o.length = a.length;
  if (a.has_offset) o.offset = a.offset;
  o.upstream_timeout = stall_seconds(a.upstream_timeout);
  o.downstream_timeout = stall_seconds(a.downstream_timeout);
  if (a.pipe_size) o.pipe_size = a.pipe_size;
  if (a.crc) o.crc32 = a.crc_seed;
  o.buffer = a.buffer;
  if (!NIL_P(prefix))
    o.prefix = {RSTRING_PTR(prefix), static_cast<std::size_t>(RSTRING_LEN(prefix))};
  t->src = src;
  t->dst = dst;
  t->prefix = prefix;
  t->out = &out;
  t->yield_progress = rb_block_given_p();
  // A body machine starts on duplicates; a Pump on the IOs' own fds, and
  // takes duplicates before it runs without the GVL.
  int src_fd = rb_io_descriptor(src), dst_fd = rb_io_descriptor(dst);
  if constexpr (std::is_same_v<Machine, BodyPump>) {
    src_fd = t->fds.take(src);
    dst_fd = src_fd < 0 ? -1 : t->fds.take(dst);
    if (dst_fd < 0) {
      int err = errno;
      bool src_failed = src_fd < 0;
      transfer_cleanup(t);
      rb_syserr_fail(err, src_failed ? "splice_to: dup(src)" : "splice_to: dup(dst)");
    }
    t->machine = new (std::nothrow) BodyPump(src_fd, dst_fd, a.framing, o);
  } else {
    t->machine = new (std::nothrow) Pump(src_fd, dst_fd, o);
  }
  if (!t->machine) {
    transfer_cleanup(t);
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a pump");
  }
  t->adapter.machine = t->machine;
  t->adapter.clock = StallClock(o.upstream_timeout, o.downstream_timeout);
  t->adapter.upstream_io = src;
  t->adapter.downstream_io = dst;
  t->adapter.on_stall = stalled<Machine>;
  ensure(transfer_body<Machine>, transfer_cleanup<Machine>, t);
}

// The transfer behind Native.pump and Native.splice: checks the IOs, takes
// the read-ahead, runs the machine on duplicated fds.
Outcome transfer(VALUE src, VALUE dst, const Args& a) {
  Check_Type(src, T_FILE);
  Check_Type(dst, T_FILE);
  rb_io_t* src_fptr;
  GetOpenFile(src, src_fptr);
  check_readable(src, src_fptr, "splice_to");
  VALUE dst_io = writable_io(dst, "dst");
  if (rb_io_descriptor(src) == rb_io_descriptor(dst_io)) {
    rb_raise(rb_eArgError, "src and dst are the same file descriptor");
  }
  // Bytes Ruby already read ahead from src go out first (an HTTP body
  // takes what it needs and gives the rest back).
  VALUE prefix = Qnil;
  if (!a.has_offset) {
    std::uint64_t max = a.has_length && !a.http_body ? a.length : UINT64_MAX;
    prefix = take_read_ahead(src, src_fptr, max);
  }
  Outcome out;
  if (a.http_body) {
    run<BodyPump>(a, src, dst_io, prefix, out);
  } else {
    run<Pump>(a, src, dst_io, prefix, out);
  }
  RB_GC_GUARD(prefix);
  return out;
}

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
VALUE sym_length;
VALUE sym_offset;

// Arguments are validated by lib/ (Native.check_timeout, Native.check_count);
// this checks only what needs the IO itself. options is a Native::Options:
// upstream_timeout, downstream_timeout, length, offset, pipe_size, crc32
// (nil, or the CRC to go on from), framing (nil, or an HTTP body's: :length
// of `length` bytes, :chunked, :close, :none; offset unused), buffer.
VALUE Bytepump_Native_pump(VALUE, VALUE src, VALUE dst, VALUE options) {
  VALUE cOptions = rb_const_get(mNative, rb_intern("Options"));
  if (!rb_obj_is_kind_of(options, cOptions)) {
    rb_raise(rb_eTypeError, "Native.pump: options must be a Bytepump::Native::Options");
  }
  auto option = [options](OptionField f) { return rb_ivar_get(options, id_option_fields[f]); };
  VALUE length = option(opt_length), offset = option(opt_offset), pipe_size = option(opt_pipe_size),
        crc32 = option(opt_crc32), framing = option(opt_framing), buffer = option(opt_buffer);
  Args a;
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.has_offset = !NIL_P(offset);
  a.offset = a.has_offset ? NUM2ULL(offset) : 0;
  a.upstream_timeout = option(opt_upstream_timeout);
  a.downstream_timeout = option(opt_downstream_timeout);
  a.pipe_size = NIL_P(pipe_size) ? 0 : NUM2SIZET(pipe_size);
  a.crc = !NIL_P(crc32);
  a.crc_seed = a.crc ? static_cast<std::uint32_t>(NUM2ULONG(crc32)) : 0;
  a.buffer = NIL_P(buffer) ? 0 : NUM2SIZET(buffer);
  a.http_body = !NIL_P(framing);
  if (a.http_body) a.framing = framing_arg(framing, a.length);
  Outcome out = transfer(src, dst, a);
  return build_result(out.result, out.body_error, out.parse_error, a.crc);
}

// The fast path of IO#splice_to for two IOs: the same checks, transfer and
// errors as Bytepump.pump, without an Options or a Result unless it fails.
// With no timeout given, each side has its IO's own IO#timeout, and running
// out of it raises IO::TimeoutError (Result#error).
VALUE Bytepump_Native_splice(VALUE, VALUE src, VALUE dst, VALUE timeout, VALUE length,
                             VALUE offset) {
  VALUE up = check_timeout(sym_timeout, timeout, src);
  VALUE down =
      check_timeout(sym_timeout, timeout, RB_TYPE_P(dst, T_FILE) ? rb_io_get_write_io(dst) : Qnil);
  check_count(sym_length, length);
  check_count(sym_offset, offset);
  Args a;
  a.has_length = !NIL_P(length);
  a.length = a.has_length ? NUM2ULL(length) : 0;
  a.has_offset = !NIL_P(offset);
  a.offset = a.has_offset ? NUM2ULL(offset) : 0;
  a.upstream_timeout = up;
  a.downstream_timeout = down;
  Outcome out = transfer(src, dst, a);
  const Status status = out.result.status;
  bool timed_out = status == Status::timeout_upstream || status == Status::timeout_downstream;
  if (status == Status::done) return ULL2NUM(out.result.bytes_written);
  if (timed_out && !NIL_P(timeout)) return symbol(status_symbols, status);
  VALUE result = build_result(out.result, out.body_error, out.parse_error, false);
  rb_exc_raise(rb_funcall(result, rb_intern("error"), 3, src, dst, timed_out ? Qtrue : Qfalse));
}

// Bytes pooled pipes hold are always 0, or a dirty pipe was pooled.
VALUE Bytepump_Native_pool_stats(VALUE) {
  return rb_ary_new_from_args(
      4, SIZET2NUM(detail::pooled_pipes()), SIZET2NUM(detail::pooled_bytes()),
      SIZET2NUM(detail::pooled_capacity()), SIZET2NUM(detail::pipe_bytes_in_use()));
}

}  // namespace

void init_transfers() {
  static const char* option_fields[opt_count] = {"@upstream_timeout", "@downstream_timeout",
                                                 "@length",           "@offset",
                                                 "@pipe_size",        "@crc32",
                                                 "@framing",          "@buffer"};
  for (int i = 0; i < opt_count; ++i) id_option_fields[i] = rb_intern(option_fields[i]);
  sym_length = ID2SYM(rb_intern("length"));
  sym_offset = ID2SYM(rb_intern("offset"));
  rb_define_module_function(mNative, "pump", RUBY_METHOD_FUNC(Bytepump_Native_pump), 3);
  rb_define_module_function(mNative, "splice", RUBY_METHOD_FUNC(Bytepump_Native_splice), 5);
  rb_define_module_function(mNative, "pool_stats", RUBY_METHOD_FUNC(Bytepump_Native_pool_stats), 0);
}

}  // namespace bytepump::rb
