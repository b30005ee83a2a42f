// The frame machines driven for Bytepump::Frames, one frame per call, on
// duplicates of the IOs' fds taken at the call's start and closed at its
// end; framing, counts and messages are the core's. Entry points:
//   Native::FrameReader#read(io, timeout) { |channel, length| io or nil }
//     => [status, channel, length, payload bytes delivered, message]
//     status: :frame, :eof, :invalid_length, :truncated, :error,
//     :timeout_upstream (nothing arrived; the reader is still usable),
//     :broken_upstream / :broken_downstream (a stall inside a frame)
//   Native::FrameWriter.write(io, channel, payload, length, timeout)
//     => [status, bytes written (header included), message, errno]
//     status: :frame, :truncated, :error, :timeout_upstream, :timeout_downstream
// A timeout of nil takes each IO's own IO#timeout.
#include <string>

#include "binding.hpp"
#include "bytepump/frames.hpp"
#include "driver.hpp"

namespace bytepump::rb {
namespace {

VALUE frame_status_symbol(FrameStatus status) { return ID2SYM(rb_intern(to_string(status))); }

// A reader lives as long as its Frames; a call stopped inside a frame
// leaves the stream unframeable, and says where.
struct FrameReaderBox {
  FrameReader reader{-1};
  bool broken = false;
  std::string broken_at;
  void break_here() {
    broken = true;
    broken_at = "channel " + std::to_string(reader.frame().channel) + ", length " +
                std::to_string(reader.frame().length);
  }
};

const rb_data_type_t kFrameReaderType = typed<FrameReaderBox>("Bytepump::Native::FrameReader");

VALUE Bytepump_Native_FrameReader_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kFrameReaderType, new FrameReaderBox());
}

struct ReadCall {
  FrameReaderBox* box = nullptr;
  Fds fds;
  OneFd<FrameReader> adapter{};
  Canceller* wake = nullptr;
  VALUE timeout = Qnil;  // as given: nil takes each IO's own IO#timeout
  std::optional<std::chrono::nanoseconds> upstream_timeout;
  std::uint64_t written_before = 0;
  bool stalled = false;
  std::string message;
};

VALUE frame_read_body(ReadCall* c) {
  FrameReader& reader = c->box->reader;
  Driven d = drive(c->adapter, c->wake, false);
  if (!d.stalled && reader.status() == FrameStatus::header) {
    const Frame& f = reader.frame();
    VALUE route = rb_yield_values(2, UINT2NUM(f.channel), ULONG2NUM(f.length));
    if (NIL_P(route)) {
      reader.deliver_to(-1);
    } else {
      if (!RB_TYPE_P(route, T_FILE)) {
        rb_raise(rb_eTypeError,
                 "the route for channel %u must be an IO or nil (got %" PRIsVALUE ")", f.channel,
                 rb_obj_class(route));
      }
      VALUE down = writable_io(route, "the route");
      c->adapter.downstream_io = down;
      c->adapter.clock = StallClock(c->upstream_timeout, stall_timeout(c->timeout, down));
      int fd = c->fds.take(down);
      if (fd < 0) rb_sys_fail("Frames#read: dup(route)");
      reader.deliver_to(fd);
    }
    d = drive(c->adapter, c->wake, false);
  }
  c->stalled = d.stalled;
  VALUE status;
  if (d.stalled && reader.between_frames()) {
    status = ID2SYM(rb_intern("timeout_upstream"));
  } else if (d.stalled) {
    reader.abort(ETIMEDOUT, d.side);
    c->box->break_here();
    status = ID2SYM(rb_intern(d.side == Side::upstream ? "broken_upstream" : "broken_downstream"));
  } else {
    status = frame_status_symbol(reader.status());
    if (reader.status() == FrameStatus::error) c->box->broken = true;
  }
  c->message = reader.message();
  VALUE out[5] = {status, UINT2NUM(reader.frame().channel), ULONG2NUM(reader.frame().length),
                  ULL2NUM(reader.result().bytes_written - c->written_before),
                  rb_str_new(c->message.data(), static_cast<long>(c->message.size()))};
  return rb_ary_new_from_values(5, out);
}

VALUE frame_read_cleanup(ReadCall* c) {
  FrameReader& reader = c->box->reader;
  if (!c->stalled && !reader.between_frames() && reader.status() != FrameStatus::truncated &&
      reader.status() != FrameStatus::error && !c->box->broken) {
    // Stopped inside a frame (an exception, a closed IO): what follows in
    // the stream can no longer be framed.
    c->box->break_here();
    reader.abort(ECANCELED, Side::none);
  }
  // An idle reader holds no pipe (nor its share of the pipe quota).
  if (reader.between_frames()) reader.finish();
  reader.rebind(-1);  // flags restored while the duplicates are open
  c->fds.close_all();
  delete c->wake;
  delete c;
  return Qnil;
}

VALUE Bytepump_Native_FrameReader_read(VALUE self, VALUE io, VALUE timeout) {
  auto* box = static_cast<FrameReaderBox*>(rb_check_typeddata(self, &kFrameReaderType));
  check_fd_source(io, "Frames#read");
  if (box->broken) {
    rb_raise(rb_eIOError,
             "Frames#read: the frame stream is broken: an earlier read stopped inside a "
             "frame (%s)",
             box->broken_at.c_str());
  }
  auto up = stall_timeout(timeout, io);
  auto* c = new_state<ReadCall>("a frame read");
  c->box = box;
  c->timeout = timeout;
  c->upstream_timeout = up;
  c->written_before = box->reader.result().bytes_written;
  c->adapter.machine = &box->reader;
  c->adapter.clock = StallClock(up, std::nullopt);
  c->adapter.upstream_io = io;
  c->adapter.downstream_io = Qnil;
  int fd = c->fds.take(io);
  if (fd < 0) {
    int err = errno;
    frame_read_cleanup(c);
    rb_syserr_fail(err, "Frames#read: dup(io)");
  }
  box->reader.rebind(fd);
  return ensure(frame_read_body, frame_read_cleanup, c);
}

struct WriteCall {
  Fds fds;
  FrameWriter* writer = nullptr;
  OneFd<FrameWriter> adapter{};
  Canceller* wake = nullptr;
  std::string message;
};

VALUE frame_write_body(WriteCall* c) {
  FrameWriter& writer = *c->writer;
  Driven d = drive(c->adapter, c->wake, false);
  VALUE status;
  if (d.stalled) {
    writer.abort(ECANCELED, Side::none);
    status =
        ID2SYM(rb_intern(d.side == Side::upstream ? "timeout_upstream" : "timeout_downstream"));
  } else {
    status = frame_status_symbol(writer.status());
  }
  c->message = writer.message();
  VALUE out[4] = {status, ULL2NUM(writer.result().bytes_written),
                  rb_str_new(c->message.data(), static_cast<long>(c->message.size())),
                  INT2NUM(writer.error())};
  return rb_ary_new_from_values(4, out);
}

VALUE frame_write_cleanup(WriteCall* c) {
  if (c->writer) {
    if (c->writer->busy()) c->writer->abort(ECANCELED, Side::none);
    c->writer->rebind(-1);  // flags restored while the duplicates are open
  }
  delete c->writer;
  c->fds.close_all();
  delete c->wake;
  delete c;
  return Qnil;
}

// payload: a String (length unused) or an IO to splice `length` bytes from.
VALUE Bytepump_Native_FrameWriter_write(VALUE, VALUE io, VALUE channel, VALUE payload, VALUE length,
                                        VALUE timeout) {
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
  if (len == 0 || len > kMaxFrameLength) {
    rb_raise(rb_eArgError, "frame length must be 1..%u (got %llu for channel %lu)", kMaxFrameLength,
             static_cast<unsigned long long>(len), ch);
  }
  auto up = stall_timeout(timeout, src);
  auto down = stall_timeout(timeout, dst);
  auto* c = new_state<WriteCall>("a frame writer");
  int err = 0;
  int dst_fd = c->fds.take(dst);
  int src_fd = -1;
  if (dst_fd < 0) err = errno;
  if (!err && !NIL_P(src) && (src_fd = c->fds.take(src)) < 0) err = errno;
  if (!err && !(c->writer = new (std::nothrow) FrameWriter(dst_fd))) err = ENOMEM;
  if (!err) {
    auto ch16 = static_cast<std::uint16_t>(ch);
    bool begun =
        NIL_P(src) ? c->writer->begin(
                         ch16, std::string_view(RSTRING_PTR(frozen), static_cast<std::size_t>(len)))
                   : c->writer->begin(ch16, static_cast<std::uint32_t>(len), src_fd);
    if (!begun) err = errno;
  }
  if (err) {
    frame_write_cleanup(c);
    rb_syserr_fail(err, "Frames#write: dup");
  }
  c->adapter.machine = c->writer;
  c->adapter.clock = StallClock(up, down);
  c->adapter.upstream_io = src;
  c->adapter.downstream_io = dst;
  VALUE out = ensure(frame_write_body, frame_write_cleanup, c);
  RB_GC_GUARD(frozen);
  return out;
}

}  // namespace

void init_frames() {
  VALUE cFrameReader = rb_define_class_under(mNative, "FrameReader", rb_cObject);
  rb_define_alloc_func(cFrameReader, Bytepump_Native_FrameReader_alloc);
  rb_define_method(cFrameReader, "read", RUBY_METHOD_FUNC(Bytepump_Native_FrameReader_read), 2);
  VALUE cFrameWriter = rb_define_class_under(mNative, "FrameWriter", rb_cObject);
  rb_define_module_function(cFrameWriter, "write",
                            RUBY_METHOD_FUNC(Bytepump_Native_FrameWriter_write), 5);
}

}  // namespace bytepump::rb
