// What the files of the Ruby binding share: the modules, interned symbols,
// argument checks, IO checks and read-ahead, the TypedData helper and the
// fds each call owns. The one driving loop is in driver.hpp.
//
// The binding is thin: it checks arguments, hands buffered bytes over,
// drives the core's step machines and maps their results to Ruby values.
// One cleanup idiom everywhere: a Ruby exception is a longjmp, so a call's
// C++ state (machines, clocks, vectors, strings) lives on the heap in one
// struct, released by the rb_ensure cleanup; no object with a destructor is
// live in a frame across a call that can raise.
//
// Only Ruby's public IO functions are used (no field of rb_io_t is read):
// rb_io_descriptor, rb_io_read_pending, IO#readpartial and IO#ungetbyte for
// the read-ahead buffer, rb_io_check_* for the checks (rb_io_closed_p on
// Ruby 3.3+ for the closed check after every step), rb_io_timeout (Ruby
// 3.2+) for an IO's own timeout.
//
// The machines run on duplicates of the IOs' fds (Fds). Another thread may
// close an IO while a step runs without the GVL; the duplicate keeps the
// open file description alive, so the step never touches a reused fd
// number, and the flags and file position are still restored through it.
// After every return to Ruby the IOs are checked, and a closed one ends the
// call with Ruby's own IOError.
#ifndef BYTEPUMP_EXT_BINDING_HPP_
#define BYTEPUMP_EXT_BINDING_HPP_

#include <ruby.h>
#include <ruby/io.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "bytepump/head_reader.hpp"
#include "bytepump/http/body_decoder.hpp"
#include "bytepump/http/parser.hpp"
#include "bytepump/pump.hpp"
#include "extconf.h"

namespace bytepump::rb {

extern VALUE mBytepump;
extern VALUE mNative;

// Each file's entry points, defined at load by Init_bytepump.
void init_io();
void init_transfers();
void init_heads();
void init_tee();
void init_frames();
void init_decoders();
void init_waits();

// Symbols interned once at load: a result allocates none.
extern VALUE status_symbols[static_cast<int>(Status::error) + 1];
extern VALUE side_symbols[static_cast<int>(Side::downstream) + 1];
extern VALUE body_error_symbols[static_cast<int>(BodyError::line_too_long) + 1];
extern VALUE framing_symbols[static_cast<int>(http::Framing::Kind::invalid) + 1];
extern VALUE sym_timeout;

template <typename Enum, std::size_t N>
void intern_all(VALUE (&table)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    table[i] = ID2SYM(rb_intern(bytepump::to_string(static_cast<Enum>(i))));
}

template <typename Enum, std::size_t N>
VALUE symbol(VALUE (&table)[N], Enum value) {
  return table[static_cast<std::size_t>(value)];
}

// An HTTP body framing from its symbol (:length with `length`, :chunked,
// :close, :none), as Response#framing names it; raises for another.
http::Framing framing_arg(VALUE kind, std::uint64_t length);
// A parse error's message, or nil.
VALUE parse_error_message(http::ParseError error);

// Timeouts. check_timeout(name, value, io): nil (none) for
// Float::INFINITY, else value; for nil, io's own IO#timeout (Ruby 3.2+), as
// Ruby's IO methods use it. Raises naming `name` for anything that is not a
// number of seconds >= 0. The one check of every timeout argument.
VALUE check_timeout(VALUE name, VALUE value, VALUE io);
// An IO's own IO#timeout: nil when unset, on Ruby 3.1, and for a non-IO.
VALUE own_timeout(VALUE io);
// A checked timeout (nil: none) as the stall clocks take it.
std::optional<std::chrono::nanoseconds> stall_seconds(VALUE checked);
// The stall timeout of one side: the call's own (`given`), else io's.
std::optional<std::chrono::nanoseconds> stall_timeout(VALUE given, VALUE io);
// nil or an Integer >= 0, else raises naming `name`. Returns value.
VALUE check_count(VALUE name, VALUE value);

// IO checks, each raising Ruby's own error.
// Open and readable, no characters of an encoding conversion waiting.
void check_readable(VALUE io, rb_io_t* fptr, const char* call);
// An IO read from its fd alone (frames, tee): no bytes in Ruby's buffer.
void check_fd_source(VALUE io, const char* call);
// IOError ("closed stream") for a closed io; nil is skipped.
void check_open(VALUE io);
// The write IO of `io` (an IO, else TypeError naming `what`), open for
// writing, its buffer flushed.
VALUE writable_io(VALUE io, const char* what);

// Read-ahead: up to `max` bytes Ruby already read from io (nil: none), as
// IO.copy_stream takes them; give_back puts the last `left` bytes of
// `taken` back in front of io's buffer; give_back_now does so from a
// cleanup, where a closed IO is no reason to replace an exception.
VALUE take_read_ahead(VALUE io, rb_io_t* fptr, std::uint64_t max);
void give_back(VALUE io, VALUE taken, std::size_t left);
void give_back_now(VALUE io, VALUE taken, std::size_t left);

// The duplicated fds one call owns: the one way to take and close them.
struct Fds {
  std::vector<int> fds;
  // A new duplicate of io's fd, or -1 with errno.
  int take(VALUE io) noexcept;
  void close_all() noexcept;
};

// A Bytepump::Result with its fields set directly: one object per transfer.
VALUE build_result(const Result& r, BodyError body_error, http::ParseError parse_error, bool crc);
// [minor_version, status, reason, [[name, value], ...], framing, length,
//  framing_error] for a parsed head.
VALUE head_fields(const http::Response& res, const http::Header* headers, std::size_t n);

// TypedData for a C++ object owned by a Ruby object.
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

// rb_ensure for a heap-held call state: body(state) then cleanup(state),
// whatever happens; returns what the body returned.
template <typename State>
struct Ensured {
  VALUE (*body)(State*);
  VALUE (*cleanup)(State*);
  State* state;
};
template <typename State>
VALUE ensure(VALUE (*body)(State*), VALUE (*cleanup)(State*), State* state) {
  Ensured<State> e{body, cleanup, state};
  return rb_ensure(
      [](VALUE v) {
        auto* e = reinterpret_cast<Ensured<State>*>(v);
        return e->body(e->state);
      },
      reinterpret_cast<VALUE>(&e),
      [](VALUE v) {
        auto* e = reinterpret_cast<Ensured<State>*>(v);
        return e->cleanup(e->state);
      },
      reinterpret_cast<VALUE>(&e));
}

// Allocates a call state or raises NoMemoryError naming it.
template <typename State>
State* new_state(const char* what) {
  State* s = nullptr;
  try {
    s = new State();
  } catch (...) {
    s = nullptr;
  }
  if (!s) rb_raise(rb_eNoMemError, "bytepump: cannot allocate %s", what);
  return s;
}

}  // namespace bytepump::rb

#endif  // BYTEPUMP_EXT_BINDING_HPP_
