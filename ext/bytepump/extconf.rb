# frozen_string_literal: true

require "mkmf"

# The C++ core lives in cpp/ at the gem's root and is compiled into the extension.
core = File.expand_path("../../cpp", __dir__)
abort "bytepump: cannot find the C++ core at #{core}" unless File.directory?(core)

$CFLAGS << " -D_GNU_SOURCE"
abort "bytepump needs Linux splice(2)" unless have_func("splice", "fcntl.h")
# The binding uses only Ruby's public IO functions (no rb_io_t fields), so
# it builds where rb_io_t is opaque (Ruby 3.4 and later) too.
abort "bytepump needs Ruby >= 3.1 (rb_io_descriptor)" unless have_func("rb_io_descriptor", "ruby/io.h")
# Newer Rubies' IO functions, used where they exist (the 3.1 path where not):
# IO#timeout (3.2), whether an IO is closed without rb_io_t (3.3).
%w[rb_io_timeout rb_io_closed_p].each { |f| have_func(f, "ruby/io.h") }
abort "bytepump needs zlib (zlib1g-dev)" unless have_library("z", "crc32", "zlib.h")

# The binding's files (ext/bytepump/*.cpp) and the core's (cpp/src/*.cpp);
# the binding's are named so no two objects share a name.
binding_srcs = Dir[File.join(__dir__, "*.cpp")].map { |f| File.basename(f) }
core_srcs = Dir[File.join(core, "src", "*.cpp")].map { |f| File.basename(f) }
both = binding_srcs & core_srcs
abort "bytepump: #{both.join(', ')} in both ext/ and cpp/src/" unless both.empty?
$srcs = (binding_srcs + core_srcs).sort
$VPATH << File.join(core, "src")
$INCFLAGS << " -I#{File.join(core, 'include')}"
$CXXFLAGS << " -std=c++17 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter"
# bin/test, on every Ruby it tests: a deprecated Ruby C API fails the build,
# so the binding moves to its replacement before a Ruby removes it.
$CXXFLAGS << " -Werror=deprecated-declarations -Werror=deprecated" if ENV["BYTEPUMP_DEPRECATIONS_AS_ERRORS"]

create_header
create_makefile("bytepump/bytepump")
# Every object depends on the core's headers and the binding's: a class whose
# layout changed must not be compiled into one object and not the other
# (rake compile rebuilds only what changed).
headers = Dir[File.join(core, "include", "**", "*.hpp")] + Dir[File.join(__dir__, "*.hpp")]
File.open("Makefile", "a") { |m| m.puts "\n$(OBJS): #{headers.join(' ')}" }
