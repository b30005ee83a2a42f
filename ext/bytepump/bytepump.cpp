// The extension's hub: Bytepump::Native and each file's entry points.
// binding.hpp says what the files share, driver.hpp how every machine is
// driven; each rb_*.cpp file opens with its entry points and what they return.
#include "binding.hpp"

extern "C" __attribute__((visibility("default"))) void Init_bytepump() {
  namespace rb = bytepump::rb;
  rb::mBytepump = rb_define_module("Bytepump");
  rb::mNative = rb_define_module_under(rb::mBytepump, "Native");
  rb::init_io();
  rb::init_transfers();
  rb::init_heads();
  rb::init_tee();
  rb::init_frames();
  rb::init_decoders();
  rb::init_waits();
}
