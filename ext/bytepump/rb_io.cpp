// What every entry point shares (declared in binding.hpp): symbols, the
// timeout and count checks, IO checks, read-ahead, fds, and Ruby values
// built from core results. Entry points defined here:
//   Native.check_timeout(name, value, io = nil) => value, or nil for none
//   Native.check_count(name, value) => value
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "binding.hpp"
#include "bytepump/canceller.hpp"
#include "driver.hpp"

namespace bytepump::rb {

VALUE mBytepump;
VALUE mNative;
VALUE status_symbols[static_cast<int>(Status::error) + 1];
VALUE side_symbols[static_cast<int>(Side::downstream) + 1];
VALUE body_error_symbols[static_cast<int>(BodyError::line_too_long) + 1];
VALUE framing_symbols[static_cast<int>(http::Framing::Kind::invalid) + 1];
VALUE sym_timeout;

namespace {

VALUE strategy_symbols[static_cast<int>(Strategy::copy) + 1];
ID id_readpartial;
ID id_ungetbyte;
ID id_result_fields[9];  // @bytes_read ... @parse_error, in Result::FIELDS order

VALUE check_byte_readable(VALUE fptr) {
  rb_io_check_byte_readable(reinterpret_cast<rb_io_t*>(fptr));
  return Qnil;
}

VALUE Bytepump_Native_check_timeout(int argc, VALUE* argv, VALUE) {
  rb_check_arity(argc, 2, 3);
  return check_timeout(argv[0], argv[1], argc > 2 ? argv[2] : Qnil);
}

VALUE Bytepump_Native_check_count(VALUE, VALUE name, VALUE value) {
  return check_count(name, value);
}

}  // namespace

http::Framing framing_arg(VALUE kind, std::uint64_t length) {
  http::Framing f;
  for (std::size_t i = 0; i < sizeof framing_symbols / sizeof framing_symbols[0]; ++i) {
    if (framing_symbols[i] == kind) f.kind = static_cast<http::Framing::Kind>(i);
  }
  if (f.kind == http::Framing::Kind::invalid) {
    rb_raise(rb_eArgError, "bytepump: unknown body framing %" PRIsVALUE, rb_inspect(kind));
  }
  f.length = length;
  return f;
}

VALUE parse_error_message(http::ParseError error) {
  return error == http::ParseError::none ? Qnil : rb_str_new_cstr(http::to_string(error));
}

VALUE own_timeout(VALUE io) {
#ifdef HAVE_RB_IO_TIMEOUT
  if (RB_TYPE_P(io, T_FILE)) return rb_io_timeout(io);
#endif
  static_cast<void>(io);
  return Qnil;
}

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

// One too long for the nanosecond clock (over ~292 years) is none too.
std::optional<std::chrono::nanoseconds> stall_seconds(VALUE checked) {
  if (NIL_P(checked)) return std::nullopt;
  double s = NUM2DBL(checked);
  if (s < 0 || !(s * 1e9 < 9.2e18)) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

std::optional<std::chrono::nanoseconds> stall_timeout(VALUE given, VALUE io) {
  return stall_seconds(check_timeout(sym_timeout, given, io));
}

VALUE check_count(VALUE name, VALUE value) {
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

// Characters decoded by an encoding conversion can't go out as the bytes
// they came from: refuse rather than drop or mix them.
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
  static_cast<void>(io);
}

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

void check_open(VALUE io) {
  if (NIL_P(io)) return;
#ifdef HAVE_RB_IO_CLOSED_P
  if (RTEST(rb_io_closed_p(io))) rb_raise(rb_eIOError, "closed stream");
#else
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
#endif
}

// Not rb_io_mode: rb_io_check_writable also hands back what Ruby read ahead
// of a read-write file (seeks back), so bytes land where its position says.
VALUE writable_io(VALUE io, const char* what) {
  if (!RB_TYPE_P(io, T_FILE)) {
    rb_raise(rb_eTypeError, "%s must be an IO (got %" PRIsVALUE ")", what, rb_obj_class(io));
  }
  VALUE w = rb_io_get_write_io(io);
  rb_io_t* fptr;
  GetOpenFile(w, fptr);
  rb_io_check_writable(fptr);
  rb_io_flush(w);
  return w;
}

// IO#readpartial returns buffered bytes without a syscall.
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

void give_back(VALUE io, VALUE taken, std::size_t left) {
  if (left == 0 || NIL_P(taken)) return;
  long len = RSTRING_LEN(taken);
  rb_funcall(io, id_ungetbyte, 1,
             rb_str_subseq(taken, len - static_cast<long>(left), static_cast<long>(left)));
}

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

int Fds::take(VALUE io) noexcept {
  int fd = ::fcntl(rb_io_descriptor(io), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return -1;
  try {
    fds.push_back(fd);
  } catch (...) {
    // Don't retry close in case of EINTR!
    ::close(fd);
    errno = ENOMEM;
    return -1;
  }
  return fd;
}

void Fds::close_all() noexcept {
  // Don't retry close in case of EINTR!
  for (int fd : fds) ::close(fd);
  fds.clear();
}

VALUE build_result(const Result& r, BodyError body_error, http::ParseError parse_error, bool crc) {
  VALUE cResult = rb_const_get(mBytepump, rb_intern("Result"));
  VALUE result = rb_obj_alloc(cResult);
  VALUE values[9] = {ULL2NUM(r.bytes_read),
                     ULL2NUM(r.bytes_written),
                     symbol(status_symbols, r.status),
                     symbol(strategy_symbols, r.strategy),
                     r.error_side == Side::none ? Qnil : symbol(side_symbols, r.error_side),
                     INT2NUM(r.error),
                     crc ? ULONG2NUM(r.crc32) : Qnil,
                     body_error == BodyError::none ? Qnil : symbol(body_error_symbols, body_error),
                     parse_error_message(parse_error)};
  for (int i = 0; i < 9; ++i) rb_ivar_set(result, id_result_fields[i], values[i]);
  return rb_obj_freeze(result);
}

// An obsolete folded line (a Header with no name) joins the value before it
// with one space; empty parts add none.
VALUE head_fields(const http::Response& res, const http::Header* headers, std::size_t n) {
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

void wake_up(void* wake) { static_cast<Canceller*>(wake)->cancel(); }

Canceller* new_wake() noexcept {
  try {
    return new Canceller();
  } catch (...) {
    return nullptr;
  }
}

void init_io() {
  intern_all<Status>(status_symbols);
  intern_all<Side>(side_symbols);
  intern_all<Strategy>(strategy_symbols);
  intern_all<BodyError>(body_error_symbols);
  static const char* framing_names[] = {"none", "length", "chunked", "close", "invalid"};
  for (int i = 0; i < 5; ++i) framing_symbols[i] = ID2SYM(rb_intern(framing_names[i]));
  sym_timeout = ID2SYM(rb_intern("timeout"));
  id_readpartial = rb_intern("readpartial");
  id_ungetbyte = rb_intern("ungetbyte");
  static const char* result_fields[] = {"@bytes_read", "@bytes_written", "@status",
                                        "@strategy",   "@error_side",    "@errno",
                                        "@crc32",      "@body_error",    "@parse_error"};
  for (int i = 0; i < 9; ++i) id_result_fields[i] = rb_intern(result_fields[i]);
  rb_define_module_function(mNative, "check_timeout",
                            RUBY_METHOD_FUNC(Bytepump_Native_check_timeout), -1);
  rb_define_module_function(mNative, "check_count", RUBY_METHOD_FUNC(Bytepump_Native_check_count),
                            2);
}

}  // namespace bytepump::rb
