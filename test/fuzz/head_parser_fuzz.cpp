// The head parser over arbitrary bytes: no read past the input, results in
// bounds, and the sans-IO HeadParser says the same whether it gets the input
// whole or grown piece by piece.
#include <string>

#include "bytepump/http/head_parser.hpp"
#include "bytepump/http/parser.hpp"
#include "fuzz_util.hpp"

using bytepump::http::HeadParser;

namespace {

struct Outcome {
  HeadParser::Step::Kind kind;
  std::uint64_t consumed;
  std::size_t interim;
  int status;
  std::size_t fields;
};

Outcome run(const std::string& wire, const std::vector<std::size_t>& cuts) {
  HeadParser parser;
  std::string held;
  std::size_t fed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  HeadParser::Step step;
  for (std::size_t end : ends) {
    held += wire.substr(fed, end - fed);
    fed = end;
    for (;;) {
      step = parser.next(held);
      if (step.kind == HeadParser::Step::Kind::interim) {
        FUZZ_CHECK(step.consumed > 0 && step.consumed <= held.size());
        held.erase(0, step.consumed);
        continue;
      }
      break;
    }
    if (step.kind != HeadParser::Step::Kind::need_more) break;
  }
  if (step.kind == HeadParser::Step::Kind::need_more) step = parser.finish(held);
  bool final = step.kind == HeadParser::Step::Kind::final;
  return {step.kind, parser.consumed(), parser.interim_responses(),
          final ? parser.response().status : 0, final ? parser.num_headers() : 0};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytepump::fuzz::Exact in(data, size);
  bytepump::http::Response res;
  bytepump::http::Header headers[100];
  std::size_t n = 100;
  long r = bytepump::http::parse_response(in.data(), in.len, res, headers, n);
  FUZZ_CHECK(r == bytepump::http::kIncomplete || r == bytepump::http::kMalformed ||
             (r > 0 && static_cast<std::size_t>(r) <= in.len));
  if (r > 0) {
    FUZZ_CHECK(n <= 100);
    FUZZ_CHECK(res.status >= 100 && res.status <= 999);
    for (std::size_t i = 0; i < n; ++i) {
      // A folded continuation line has no name (an empty view).
      FUZZ_CHECK(headers[i].name.empty() || headers[i].name.data() >= in.data());
      FUZZ_CHECK(headers[i].value.data() + headers[i].value.size() <= in.data() + in.len);
    }
    bytepump::http::body_framing(res.status, headers, n);
  }

  std::string wire(in.data(), in.len);
  Outcome whole = run(wire, {});
  Outcome split = run(wire, bytepump::fuzz::cuts_for(data, size));
  FUZZ_CHECK(whole.kind == split.kind);
  FUZZ_CHECK(whole.consumed == split.consumed);
  FUZZ_CHECK(whole.interim == split.interim);
  FUZZ_CHECK(whole.status == split.status);
  FUZZ_CHECK(whole.fields == split.fields);
  return 0;
}
