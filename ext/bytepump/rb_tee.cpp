// One source to several IOs (bytepump::Tee) on duplicates of their fds,
// driven by the one driver; stall clocks and dropping are the core's
// (TeeClock). Entry point:
//   Native.tee(src, dsts, upstream_timeout, downstream_timeout, length) { |bytes read| }
//     => [bytes_read, status, errno, error_side, [[bytes_written, status, errno], ...]]
// A downstream_timeout of nil gives each destination its own IO#timeout.
#include "binding.hpp"
#include "bytepump/tee.hpp"
#include "driver.hpp"

namespace bytepump::rb {
namespace {

VALUE sym_downstream_timeout;

// The core's adapter for a Tee, with what the binding adds.
struct TeeFds : detail::TeePlan {
  VALUE src = Qnil;
  VALUE dsts = Qnil;  // Array of write IOs

  VALUE wait_io(const Step&) const noexcept {
    if (tee->waits().empty()) return src;
    const Tee::Wait& first = tee->waits().front();
    return first.destination < 0 ? src : RARRAY_AREF(dsts, first.destination);
  }
  void check_open() const {
    rb::check_open(src);
    for (long i = 0; i < RARRAY_LEN(dsts); ++i) rb::check_open(RARRAY_AREF(dsts, i));
  }
};

struct TeeCall {
  Fds fds;  // the source's, then each destination's
  TeeFds adapter;
  Canceller* wake = nullptr;
  bool yield_progress = false;
  VALUE* out = nullptr;  // the result, built by the body
};

VALUE tee_result(const TeeResult& r) {
  VALUE per = rb_ary_new_capa(static_cast<long>(r.destinations.size()));
  for (const TeeDestination& d : r.destinations) {
    rb_ary_push(per, rb_ary_new_from_args(3, ULL2NUM(d.bytes_written),
                                          symbol(status_symbols, d.status), INT2NUM(d.error)));
  }
  return rb_ary_new_from_args(
      5, ULL2NUM(r.bytes_read), symbol(status_symbols, r.status), INT2NUM(r.error),
      r.error_side == Side::none ? Qnil : symbol(side_symbols, r.error_side), per);
}

VALUE tee_body(TeeCall* c) {
  drive(c->adapter, c->wake, c->yield_progress);
  c->adapter.tee->finish();
  return tee_result(c->adapter.tee->result());
}

VALUE tee_cleanup(TeeCall* c) {
  delete c->adapter.tee;  // finishes it: flags restored through the duplicates
  delete c->adapter.clock;
  delete c->wake;
  c->fds.close_all();
  delete c;
  return Qnil;
}

VALUE Bytepump_Native_tee(VALUE, VALUE src, VALUE dsts, VALUE upstream_timeout,
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
  // Each destination's stall timeout, checked before anything with a
  // destructor exists: check_timeout may raise.
  VALUE downstream_timeouts = rb_ary_new_capa(n);
  for (long i = 0; i < n; ++i) {
    VALUE t = check_timeout(sym_downstream_timeout, downstream_timeout, RARRAY_AREF(writes, i));
    rb_ary_push(downstream_timeouts, NIL_P(t) ? Qnil : DBL2NUM(NUM2DBL(t)));
  }
  bool has_length = !NIL_P(length);
  std::uint64_t limit = has_length ? NUM2ULL(length) : 0;
  auto up = stall_seconds(upstream_timeout);
  auto* c = new_state<TeeCall>("a tee");
  c->adapter.src = src;
  c->adapter.dsts = writes;
  int err = 0;
  try {
    std::vector<int> dst_fds;
    int src_fd = c->fds.take(src);
    if (src_fd < 0) err = errno;
    for (long i = 0; i < n && !err; ++i) {
      dst_fds.push_back(c->fds.take(RARRAY_AREF(writes, i)));
      if (dst_fds.back() < 0) err = errno;
    }
    if (!err) {
      TeeOptions o;
      if (has_length) o.length = limit;
      c->adapter.tee = new Tee(src_fd, dst_fds, o);
      std::vector<std::optional<std::chrono::nanoseconds>> downstream;
      for (long i = 0; i < n; ++i) {
        downstream.push_back(stall_seconds(RARRAY_AREF(downstream_timeouts, i)));
      }
      c->adapter.clock = new TeeClock(up, std::move(downstream));
      c->adapter.fds.reserve(static_cast<std::size_t>(n) + 2);
    }
  } catch (...) {
    err = ENOMEM;
  }
  if (err) {
    tee_cleanup(c);
    rb_syserr_fail(err, "tee: dup");
  }
  c->yield_progress = rb_block_given_p();
  VALUE out = ensure(tee_body, tee_cleanup, c);
  RB_GC_GUARD(writes);
  RB_GC_GUARD(downstream_timeouts);
  return out;
}

}  // namespace

void init_tee() {
  sym_downstream_timeout = ID2SYM(rb_intern("downstream_timeout"));
  rb_define_module_function(mNative, "tee", RUBY_METHOD_FUNC(Bytepump_Native_tee), 5);
}

}  // namespace bytepump::rb
