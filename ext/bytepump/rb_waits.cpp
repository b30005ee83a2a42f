// Waiting on an IO, for the driver (SchedulerWaits in driver.hpp) and for
// the Ruby paths (Copy, Sink, the https reader, connecting). Entry points:
//   Native::Waits#wait(io, events, timeout) => true once io is ready for
//     events (IO::READABLE or IO::WRITABLE), false when timeout seconds
//     passed first; nil waits without end
//   Native::Waits#settle => nil: the Fiber scheduler's loop gets one turn
//     if a wait went through it
#include "binding.hpp"
#include "driver.hpp"

namespace bytepump::rb {
namespace {

ID id_timeout;  // IO#timeout, from Ruby 3.2

// A wait without end goes a slice at a time where rb_io_wait would put an
// end to it or fail: under a Fiber scheduler on an IO without #timeout (Ruby
// 3.1; async 2.x reads io.timeout when a wait has none: NoMethodError), and
// on an IO whose own IO#timeout is set (Ruby 3.2+), which rb_io_wait and
// the scheduler apply to a wait without a timeout. A call that has no end
// (Float::INFINITY) has none; one that takes the IO's timeout passes it.
constexpr double kEndlessWaitSlice = 1.0;

const rb_data_type_t kWaitsType = typed<SchedulerWaits>("Bytepump::Native::Waits");

VALUE Bytepump_Native_Waits_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kWaitsType, new SchedulerWaits());
}

VALUE Bytepump_Native_Waits_wait(VALUE self, VALUE io, VALUE events, VALUE timeout) {
  auto* waits = static_cast<SchedulerWaits*>(rb_check_typeddata(self, &kWaitsType));
  int wanted = NUM2INT(events);
  for (;;) {
    if (RTEST(waits->wait(io, wanted, timeout))) return Qtrue;
    if (!NIL_P(timeout)) return Qfalse;
  }
}

VALUE Bytepump_Native_Waits_settle(VALUE self) {
  static_cast<SchedulerWaits*>(rb_check_typeddata(self, &kWaitsType))->settle();
  return Qnil;
}

}  // namespace

VALUE SchedulerWaits::wait(VALUE io, int events, VALUE timeout) {
  bool scheduler = rb_fiber_scheduler_current() != Qnil;
  waited = waited || scheduler;
  if (NIL_P(timeout) &&
      ((scheduler && !rb_respond_to(io, id_timeout)) || !NIL_P(own_timeout(io)))) {
    timeout = DBL2NUM(kEndlessWaitSlice);
  }
  return rb_io_wait(io, RB_INT2NUM(events), timeout);
}

// io-event (the selector of async and Falcon) drops an fd's epoll
// registration lazily: after the fiber an event resumed yields back to the
// loop. If that fiber closes the IO first and the IO is a duplicate whose
// file stays open elsewhere (Falcon's rack.hijack hands out one), the
// registration outlives the fd number, no epoll_ctl can remove it, and the
// loop spins on it until the other fd is closed. So a call that waited
// through a scheduler gives the loop one turn before it returns.
void SchedulerWaits::settle() {
  if (!waited) return;
  waited = false;
  VALUE scheduler = rb_fiber_scheduler_current();
  if (scheduler != Qnil) rb_fiber_scheduler_kernel_sleep(scheduler, INT2FIX(0));
}

void init_waits() {
  id_timeout = rb_intern("timeout");
  VALUE cWaits = rb_define_class_under(mNative, "Waits", rb_cObject);
  rb_define_alloc_func(cWaits, Bytepump_Native_Waits_alloc);
  rb_define_method(cWaits, "wait", RUBY_METHOD_FUNC(Bytepump_Native_Waits_wait), 3);
  rb_define_method(cWaits, "settle", RUBY_METHOD_FUNC(Bytepump_Native_Waits_settle), 0);
}

}  // namespace bytepump::rb
