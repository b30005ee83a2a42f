// The sans-IO chunked decoder: the decoded body and the outcome must not
// depend on where the input was split, and the counts must add up.
#include <zlib.h>

#include <string>

#include "bytepump/http/body_decoder.hpp"
#include "bytepump/http/chunked_decoder.hpp"
#include "fuzz_util.hpp"

using bytepump::BodyError;
using bytepump::http::BodyDecoder;
using bytepump::http::ChunkedDecoder;

namespace {

struct Outcome {
  bool done = false;
  bool failed = false;
  std::string body;
  std::uint64_t consumed = 0;
  bool operator==(const Outcome& o) const {
    return done == o.done && failed == o.failed && body == o.body && consumed == o.consumed;
  }
};

Outcome run(const std::string& wire, const std::vector<std::size_t>& cuts) {
  ChunkedDecoder decoder(1024);
  Outcome out;
  std::string held;
  std::size_t fed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  for (std::size_t end : ends) {
    held += wire.substr(fed, end - fed);
    fed = end;
    for (;;) {
      auto s = decoder.next(held);
      FUZZ_CHECK(s.consumed <= held.size());
      if (s.kind == ChunkedDecoder::Step::Kind::data) {
        FUZZ_CHECK(s.consumed > 0 && s.data.size() == s.consumed);
        out.body.append(s.data);
      }
      out.consumed += s.consumed;
      held.erase(0, s.consumed);
      if (s.kind == ChunkedDecoder::Step::Kind::need_more) break;
      if (s.kind == ChunkedDecoder::Step::Kind::done ||
          s.kind == ChunkedDecoder::Step::Kind::error) {
        out.done = decoder.done();
        out.failed = decoder.failed();
        FUZZ_CHECK(decoder.body_bytes() == out.body.size());
        FUZZ_CHECK(decoder.body_bytes() + decoder.framing_bytes() == out.consumed);
        return out;
      }
    }
  }
  FUZZ_CHECK(decoder.body_bytes() == out.body.size());
  return out;
}

// The same input through BodyDecoder (the copying paths' decoder): the same
// body and verdict, its CRC that of the body, and an input that ends before
// the body did is truncated.
void check_body_decoder(const std::string& wire, const Outcome& expected) {
  bytepump::http::Framing framing;
  framing.kind = bytepump::http::Framing::Kind::chunked;
  BodyDecoder decoder(framing, 1024, 0);
  std::string body;
  std::string_view rest = wire;
  BodyDecoder::Step s;
  for (;;) {
    s = decoder.next(rest);
    if (s.kind == BodyDecoder::Step::Kind::data) body.append(s.data);
    rest.remove_prefix(s.consumed);
    if (s.kind == BodyDecoder::Step::Kind::need_more) s = decoder.finish();
    if (s.kind == BodyDecoder::Step::Kind::done || s.kind == BodyDecoder::Step::Kind::error) break;
  }
  FUZZ_CHECK(body == expected.body);
  FUZZ_CHECK(decoder.done() == expected.done);
  FUZZ_CHECK(decoder.body_bytes() == body.size());
  if (!expected.done && !expected.failed) FUZZ_CHECK(decoder.error() == BodyError::truncated);
  if (expected.failed) FUZZ_CHECK(decoder.error() != BodyError::none);
  auto crc =
      ::crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  FUZZ_CHECK(decoder.crc32() == static_cast<std::uint32_t>(crc));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string wire(reinterpret_cast<const char*>(data), size);
  Outcome whole = run(wire, {});
  Outcome split = run(wire, bytepump::fuzz::cuts_for(data, size));
  Outcome bytewise = run(wire, [&] {
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < size && i < 512; ++i) every.push_back(i);
    return every;
  }());
  FUZZ_CHECK(whole == split);
  check_body_decoder(wire, whole);
  if (size < 512) FUZZ_CHECK(whole == bytewise);
  return 0;
}
