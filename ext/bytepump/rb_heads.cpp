// HTTP response heads: scanned off an IO's fd (HeadReader, driven like any
// machine), or parsed from bytes Ruby read (HeadParser, for the https path,
// with the very limits and errors of skip_headers). Entry points:
//   Native.skip_headers(io, limit, max_headers, timeout)
//     => [:done, errno, nil, consumed, interim, head, fields] or
//        [status, errno, parse error message or nil, consumed, interim, nil, nil]
//   Native::HeadParser.new(limit, max_headers)
//   HeadParser#next(buffer), #finish(buffer) => [kind, consumed, fields or nil]
//   HeadParser#consumed, #interim_responses => Integer; #error => String or nil
// fields: [minor_version, status, reason, [[name, value], ...], framing,
// length, framing_error] (head_fields in rb_io.cpp).
#include "binding.hpp"
#include "bytepump/head_reader.hpp"
#include "bytepump/http/head_parser.hpp"
#include "driver.hpp"

namespace bytepump::rb {
namespace {

VALUE scan_symbols[static_cast<int>(ScanStatus::error) + 1];
VALUE head_step_symbols[static_cast<int>(http::HeadParser::Step::Kind::too_large) + 1];

// What a scan leaves for its Ruby value: plain data, safe on the stack.
struct ScanOut {
  ScanStatus status = ScanStatus::running;
  int error = 0;
  http::ParseError parse_error = http::ParseError::none;
  std::uint64_t consumed = 0;
  std::size_t interim = 0;
  VALUE head = Qnil;  // preallocated to the limit: the cleanup must not allocate
};

struct Scan {
  Fds fds;
  HeadReader* scanner = nullptr;
  OneFd<HeadReader> adapter{};
  Canceller* wake = nullptr;
  VALUE io = Qnil;
  // Read-ahead the scanner did not take: the last `read_ahead_left` bytes
  // of it go back to io first thing.
  VALUE read_ahead = Qnil;
  std::size_t read_ahead_left = 0;
  ScanOut* out = nullptr;
};

void scan_stalled(HeadReader& m, Side) { m.abort(ScanStatus::timeout); }

// Returns the head's fields (views into the scanner's buffer are made
// Ruby strings while it lives), or nil.
VALUE scan_body(Scan* s) {
  give_back(s->io, s->read_ahead, s->read_ahead_left);
  drive(s->adapter, s->wake, false);
  const HeadReader& m = *s->scanner;
  if (m.status() != ScanStatus::done) return Qnil;
  return head_fields(m.response(), m.headers(), m.num_headers());
}

VALUE scan_cleanup(Scan* s) {
  if (s->scanner) {
    HeadReader& m = *s->scanner;
    if (m.status() == ScanStatus::running) m.abort(ScanStatus::cancelled);
    ScanOut& out = *s->out;
    out.status = m.status();
    out.error = m.error();
    out.parse_error = m.parse_error();
    out.consumed = m.consumed();
    out.interim = m.interim_responses();
    std::string_view head = m.head();
    MEMCPY(RSTRING_PTR(out.head), head.data(), char, head.size());
    rb_str_set_len(out.head, static_cast<long>(head.size()));
  }
  delete s->scanner;
  delete s->wake;
  s->fds.close_all();
  delete s;
  return Qnil;
}

VALUE Bytepump_Native_skip_headers(VALUE, VALUE io, VALUE limit, VALUE max_headers, VALUE timeout) {
  Check_Type(io, T_FILE);
  rb_io_t* fptr;
  GetOpenFile(io, fptr);
  check_readable(io, fptr, "skip_headers");
  HeadLimits limits;
  limits.max_bytes = NUM2SIZET(limit);
  limits.max_headers = NUM2SIZET(max_headers);
  auto up = stall_seconds(timeout);
  ScanOut out;
  out.head = rb_str_buf_new(static_cast<long>(limits.max_bytes));
  // Bytes Ruby already read ahead start the head; what follows it goes back
  // to the read buffer, where the next read or splice_to takes it first.
  VALUE read_ahead = take_read_ahead(io, fptr, limits.max_bytes);
  auto* s = new_state<Scan>("a head scanner");
  s->io = io;
  s->out = &out;
  int fd = s->fds.take(io);
  if (fd < 0) {
    int err = errno;
    scan_cleanup(s);
    rb_syserr_fail(err, "skip_headers: dup");
  }
  s->scanner = new (std::nothrow) HeadReader(fd, limits);
  if (!s->scanner) {
    scan_cleanup(s);
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a head scanner");
  }
  if (!NIL_P(read_ahead)) {
    auto len = static_cast<std::size_t>(RSTRING_LEN(read_ahead));
    s->read_ahead = read_ahead;
    s->read_ahead_left = len - s->scanner->absorb(RSTRING_PTR(read_ahead), len);
  }
  s->adapter.machine = s->scanner;
  s->adapter.clock = StallClock(up, std::nullopt);
  s->adapter.upstream_io = io;
  s->adapter.downstream_io = Qnil;
  s->adapter.on_stall = scan_stalled;
  VALUE fields = ensure(scan_body, scan_cleanup, s);
  RB_GC_GUARD(read_ahead);
  bool done = out.status == ScanStatus::done;
  return rb_ary_new_from_args(7, scan_symbols[static_cast<int>(out.status)], INT2NUM(out.error),
                              parse_error_message(out.parse_error), ULL2NUM(out.consumed),
                              SIZET2NUM(out.interim), done ? out.head : Qnil, done ? fields : Qnil);
}

const rb_data_type_t kHeadParserType = typed<http::HeadParser>("Bytepump::Native::HeadParser");

VALUE Bytepump_Native_HeadParser_alloc(VALUE klass) {
  return TypedData_Wrap_Struct(klass, &kHeadParserType, nullptr);
}

http::HeadParser* get_head_parser(VALUE self) {
  auto* parser = static_cast<http::HeadParser*>(rb_check_typeddata(self, &kHeadParserType));
  if (!parser) rb_raise(rb_eArgError, "Bytepump::Native::HeadParser: not initialized");
  return parser;
}

VALUE Bytepump_Native_HeadParser_initialize(VALUE self, VALUE limit, VALUE max_headers) {
  HeadLimits limits;
  limits.max_bytes = NUM2SIZET(limit);
  limits.max_headers = NUM2SIZET(max_headers);
  auto* parser = new (std::nothrow) http::HeadParser(limits);
  if (!parser || !parser->ok()) {
    delete parser;
    rb_raise(rb_eNoMemError, "bytepump: cannot allocate a head parser");
  }
  delete static_cast<http::HeadParser*>(DATA_PTR(self));
  DATA_PTR(self) = parser;
  return self;
}

// kind: :need_more, :interim (drop `consumed` bytes and go on), :final (the
// head is the first `consumed` bytes), :malformed or :too_large. At the end
// of the input (finish), :need_more means a truncated head.
VALUE head_step(VALUE self, VALUE buffer, bool at_eof) {
  StringValue(buffer);
  auto* parser = get_head_parser(self);
  std::string_view head{RSTRING_PTR(buffer), static_cast<std::size_t>(RSTRING_LEN(buffer))};
  auto step = at_eof ? parser->finish(head) : parser->next(head);
  VALUE fields = step.kind == http::HeadParser::Step::Kind::final
                     ? head_fields(parser->response(), parser->headers(), parser->num_headers())
                     : Qnil;
  RB_GC_GUARD(buffer);
  return rb_ary_new_from_args(3, head_step_symbols[static_cast<int>(step.kind)],
                              SIZET2NUM(step.consumed), fields);
}

VALUE Bytepump_Native_HeadParser_next(VALUE self, VALUE buffer) {
  return head_step(self, buffer, false);
}

VALUE Bytepump_Native_HeadParser_finish(VALUE self, VALUE buffer) {
  return head_step(self, buffer, true);
}

VALUE Bytepump_Native_HeadParser_consumed(VALUE self) {
  return ULL2NUM(get_head_parser(self)->consumed());
}

VALUE Bytepump_Native_HeadParser_interim_responses(VALUE self) {
  return SIZET2NUM(get_head_parser(self)->interim_responses());
}

VALUE Bytepump_Native_HeadParser_error(VALUE self) {
  return parse_error_message(get_head_parser(self)->parse_error());
}

}  // namespace

void init_heads() {
  intern_all<ScanStatus>(scan_symbols);
  static const char* head_step_names[] = {"need_more", "interim", "final", "malformed",
                                          "too_large"};
  for (int i = 0; i < 5; ++i) head_step_symbols[i] = ID2SYM(rb_intern(head_step_names[i]));
  rb_define_module_function(mNative, "skip_headers", RUBY_METHOD_FUNC(Bytepump_Native_skip_headers),
                            4);
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
}

}  // namespace bytepump::rb
