// The 0.1 names kept for one release (0.2 removes them): the old header
// paths still compile and name the same types.
#include <gtest/gtest.h>

#include <type_traits>

#include "bytepump/body_decoder.hpp"
#include "bytepump/chunked.hpp"
#include "bytepump/chunked_decoder.hpp"
#include "bytepump/head_parser.hpp"
#include "bytepump/head_scanner.hpp"
#include "bytepump/http_body.hpp"
#include "bytepump/http_parser.hpp"
#include "bytepump/tee.hpp"

namespace bytepump {
namespace {

TEST(DeprecatedNames, AreAliasesOfTheNewOnes) {
  EXPECT_TRUE((std::is_same_v<HeadScanner, HeadReader>));
  EXPECT_TRUE((std::is_same_v<HttpBody, BodyPump>));
  EXPECT_TRUE((std::is_same_v<ChunkedBody, ChunkedPump>));
  TeeOptions t = Options{};  // a Tee took a Pump's Options in 0.1
  EXPECT_EQ(t.pipe_size, Options{}.pipe_size);
  const char head[] = "HTTP/1.1 200 OK\r\n\r\n";
  http::Response res;
  http::Header headers[4];
  std::size_t n = 4;
  EXPECT_EQ(http::parse_response(head, sizeof head - 1, res, headers, n), 19);
  EXPECT_EQ(res.status, 200);
}

}  // namespace
}  // namespace bytepump
