// http::BodyDecoder for the paths where the body passes through Ruby
// (https, ends that are not IOs), plus the count of bytes the destination
// took: framing, limits, counts, CRC and errors are those of the splice
// path; Ruby only reads, writes and waits. Entry points:
//   Native::BodyDecoder.new(framing, length, max_line, crc32)
//     framing as Response#framing names it (:length of `length` bytes,
//     :chunked, :none), or :close: until the input ends, at most `length`
//     bytes when one is given; crc32: nil, or the CRC to go on from
//   #next(buffer) => [kind, consumed]: :need_more, :framing, :data (the
//     first `consumed` bytes of buffer are body), :done or :error
//   #finish => :done, or :error when the input ended before the body
//   #want(cap) => bytes to read next (0: the body is complete)
//   #wrote(n) => self: the destination took n more of the body bytes
//   #bytes_read, #bytes_written => Integer
//   #error => nil, :truncated, :malformed or :line_too_long
//   #parse_error => String or nil
//   #result(status, side, errno) => a Bytepump::Result (strategy :copy)
#include "binding.hpp"

namespace bytepump::rb {
namespace {

struct BodyDecoderBox {
  http::BodyDecoder decoder;
  std::uint64_t written = 0;
};

const rb_data_type_t kDecoderType = typed<BodyDecoderBox>("Bytepump::Native::BodyDecoder");

VALUE step_kind_symbols[static_cast<int>(http::BodyDecoder::Step::Kind::error) + 1];

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
  http::Framing f = framing_arg(framing, limit.value_or(0));
  if (f.kind == http::Framing::Kind::length && !limit) {
    rb_raise(rb_eArgError, "bytepump: a :length body needs its length");
  }
  std::size_t line = NUM2SIZET(max_line);
  auto* box = new (std::nothrow)
      BodyDecoderBox{f.kind == http::Framing::Kind::close ? http::BodyDecoder::until_end(limit, crc)
                                                          : http::BodyDecoder(f, line, crc),
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
  return error == BodyError::none ? Qnil : symbol(body_error_symbols, error);
}

// decoder.parse_error => what broke the chunked framing (a message), or nil.
VALUE Bytepump_Native_BodyDecoder_parse_error(VALUE self) {
  auto error = get_decoder(self)->decoder.parse_error();
  return error == http::ParseError::none ? Qnil : rb_str_new_cstr(http::to_string(error));
}

// decoder.result(status, side, errno) => a Bytepump::Result of this copy
// (strategy :copy): bytes decoded as read, bytes taken as written.
VALUE Bytepump_Native_BodyDecoder_result(VALUE self, VALUE status, VALUE side, VALUE errno_value) {
  auto* box = get_decoder(self);
  Result r;
  r.bytes_read = box->decoder.body_bytes();
  r.bytes_written = box->written;
  r.strategy = Strategy::copy;
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

}  // namespace

void init_decoders() {
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
}

}  // namespace bytepump::rb
