#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bytepump/http/parser.hpp"

namespace bytepump::http {
namespace {

// Places `data` so that its last byte sits right before an unreadable page:
// any read past the end crashes the test.
class Guarded {
 public:
  explicit Guarded(const std::string& data) {
    page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    pages_ = (data.size() + page_ - 1) / page_ + 1;
    base_ = static_cast<char*>(::mmap(nullptr, pages_ * page_, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base_, MAP_FAILED);
    ::mprotect(base_ + (pages_ - 1) * page_, page_, PROT_NONE);
    data_ = base_ + (pages_ - 1) * page_ - data.size();
    std::memcpy(data_, data.data(), data.size());
  }
  ~Guarded() { ::munmap(base_, pages_ * page_); }
  const char* data() const { return data_; }

 private:
  std::size_t page_, pages_;
  char* base_;
  char* data_;
};

struct Parsed {
  std::unique_ptr<Guarded> input;  // the views point into it
  long r;
  Response res;
  std::vector<Header> headers;
};

Parsed parse(const std::string& raw, std::size_t capacity = 16, std::size_t last_len = 0) {
  Parsed p;
  p.input = std::make_unique<Guarded>(raw);
  p.headers.resize(capacity);
  std::size_t n = capacity;
  p.r = parse_response(p.input->data(), raw.size(), p.res, p.headers.data(), n, last_len);
  p.headers.resize(n);
  return p;
}

TEST(ParseResponse, StatusReasonVersionAndHeaders) {
  std::string raw =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Two:  a b  \r\nx-two: c\r\n\r\nhello";
  auto p = parse(raw);
  ASSERT_EQ(p.r, static_cast<long>(raw.size() - 5));
  EXPECT_EQ(p.res.minor_version, 1);
  EXPECT_EQ(p.res.status, 200);
  EXPECT_EQ(p.res.reason, "OK");
  ASSERT_EQ(p.headers.size(), 3u);
  EXPECT_EQ(p.headers[0].name, "Content-Length");
  EXPECT_EQ(p.headers[0].value, "5");
  EXPECT_EQ(p.headers[1].value, "a b");
  EXPECT_EQ(p.headers[2].name, "x-two");
}

TEST(ParseResponse, BareLineFeedsAndMissingReason) {
  auto p = parse("HTTP/1.0 404\nServer: x\n\n");
  EXPECT_EQ(p.r, 24);
  EXPECT_EQ(p.res.minor_version, 0);
  EXPECT_EQ(p.res.status, 404);
  EXPECT_EQ(p.res.reason, "");
  ASSERT_EQ(p.headers.size(), 1u);
  EXPECT_EQ(p.headers[0].value, "x");
}

TEST(ParseResponse, EmptyReasonAfterSpaceAndEmptyValue) {
  auto p = parse("HTTP/1.1 204 \r\nX-Empty:\r\n\r\n");
  EXPECT_GT(p.r, 0);
  EXPECT_EQ(p.res.status, 204);
  EXPECT_EQ(p.res.reason, "");
  ASSERT_EQ(p.headers.size(), 1u);
  EXPECT_EQ(p.headers[0].value, "");
}

TEST(ParseResponse, FoldedLinesComeBackAsNamelessContinuations) {
  auto p = parse("HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\n\tthree\r\n\r\n");
  ASSERT_GT(p.r, 0);
  ASSERT_EQ(p.headers.size(), 3u);
  EXPECT_EQ(p.headers[0].value, "one");
  EXPECT_TRUE(p.headers[1].name.empty());
  EXPECT_EQ(p.headers[1].value, "two");
  EXPECT_EQ(p.headers[2].value, "three");
}

TEST(ParseResponse, ObsTextIsAllowedInValuesAndReason) {
  auto p = parse("HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nX: caf\xc3\xa9\r\n\r\n");
  ASSERT_GT(p.r, 0);
  EXPECT_EQ(p.res.reason, "\xc3\xa9t\xc3\xa9");
}

struct Bad {
  const char* raw;
  ParseError error;
};

class Malformed : public ::testing::TestWithParam<Bad> {};

TEST_P(Malformed, IsRejectedWithItsReason) {
  auto p = parse(GetParam().raw, 4);
  EXPECT_EQ(p.r, kMalformed);
  EXPECT_EQ(p.res.error, GetParam().error) << to_string(p.res.error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, Malformed,
    ::testing::Values(Bad{"<html>", ParseError::bad_status_line},
                      Bad{"HTTP/2 200 OK\r\n\r\n", ParseError::bad_version},
                      Bad{"HTTP/1.2 200 OK\r\n\r\n", ParseError::bad_version},
                      Bad{"HTTP/1.1  200 OK\r\n\r\n", ParseError::bad_status_code},
                      Bad{"HTTP/1.1 20x OK\r\n\r\n", ParseError::bad_status_code},
                      Bad{"HTTP/1.1 099 OK\r\n\r\n", ParseError::bad_status_code},
                      Bad{"HTTP/1.1 2000 OK\r\n\r\n", ParseError::bad_status_code},
                      Bad{"HTTP/1.1 200 O\x01K\r\n\r\n", ParseError::bad_reason},
                      Bad{"HTTP/1.1 200 OK\rX: y\r\n\r\n", ParseError::bad_line_ending},
                      Bad{"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", ParseError::bad_header_name},
                      Bad{"HTTP/1.1 200 OK\r\n: y\r\n\r\n", ParseError::bad_header_name},
                      Bad{"HTTP/1.1 200 OK\r\nX(y): z\r\n\r\n", ParseError::bad_header_name},
                      Bad{"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", ParseError::bad_header_name},
                      Bad{"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", ParseError::bad_header_value},
                      Bad{"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", ParseError::bad_header_value},
                      Bad{"HTTP/1.1 200 OK\r\n folded\r\n\r\n", ParseError::fold_at_start},
                      Bad{"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
                          ParseError::too_many_headers},
                      Bad{"HTTP/1.1 200 OK\r\nX: y\r\n\rZ", ParseError::bad_line_ending}));

// Every prefix of a valid head is incomplete, never malformed, and never
// reads past its end (the guard page would fault).
TEST(ParseResponse, EveryTruncatedPrefixIsIncomplete) {
  const std::string heads[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Fold: a\r\n b\r\n\r\n",
      "HTTP/1.0 301\nLocation: /x\n\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
  };
  for (const auto& raw : heads) {
    for (std::size_t i = 0; i < raw.size(); ++i) {
      auto p = parse(raw.substr(0, i));
      EXPECT_EQ(p.r, kIncomplete) << "prefix " << i << " of " << raw;
    }
    EXPECT_EQ(parse(raw).r, static_cast<long>(raw.size()));
  }
}

TEST(ParseResponse, LastLenSkipsRescansUntilTheEndArrives) {
  std::string raw = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
  EXPECT_EQ(parse(raw.substr(0, 20), 16, 10).r, kIncomplete);
  EXPECT_EQ(parse(raw, 16, 20).r, static_cast<long>(raw.size()));
  // The end split across attempts is still found.
  EXPECT_EQ(parse(raw, 16, raw.size() - 1).r, static_cast<long>(raw.size()));
}

long chunk_size(const std::string& raw, std::uint64_t& size, ParseError& e) {
  Guarded g(raw);
  return parse_chunk_size(g.data(), raw.size(), size, e);
}

TEST(ParseChunkSize, HexSizesExtensionsAndLineEnds) {
  std::uint64_t size = 0;
  ParseError e;
  EXPECT_EQ(chunk_size("1a\r\n", size, e), 4);
  EXPECT_EQ(size, 26u);
  EXPECT_EQ(chunk_size("FF;name=value;x=\"q\"\r\nrest", size, e), 21);
  EXPECT_EQ(size, 255u);
  EXPECT_EQ(chunk_size("0\n", size, e), kMalformed);  // chunked framing is CRLF only
  EXPECT_EQ(e, ParseError::bad_line_ending);
  EXPECT_EQ(chunk_size("0\r\n", size, e), 3);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(chunk_size("10;ext;a=\"q v\";b=tok\r\n", size, e), 22);
  EXPECT_EQ(size, 16u);
  EXPECT_EQ(chunk_size("ffffffffffffffff\r\n", size, e), 18);
  EXPECT_EQ(size, ~std::uint64_t{0});
}

TEST(ParseChunkSize, RejectsWhatIsNotASize) {
  std::uint64_t size = 0;
  ParseError e;
  EXPECT_EQ(chunk_size("zz\r\n", size, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_chunk_size);
  EXPECT_EQ(chunk_size("\r\n", size, e), kMalformed);
  EXPECT_EQ(chunk_size("-1\r\n", size, e), kMalformed);
  EXPECT_EQ(chunk_size("1 2\r\n", size, e), kMalformed);
  EXPECT_EQ(chunk_size("10000000000000000\r\n", size, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_chunk_size);
  EXPECT_EQ(chunk_size("5;a\x01\r\n", size, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_chunk_ext);
  EXPECT_EQ(chunk_size("5\rx", size, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_line_ending);
}

// No blanks around extensions, no quoted-pairs, no empty names or values:
// what strict parsers (llhttp) refuse, bytepump refuses too.
TEST(ParseChunkSize, ExtensionsAreStrict) {
  std::uint64_t size = 0;
  ParseError e;
  for (const char* bad :
       {"5 \r\n", "5 ;a\r\n", "5; a\r\n", "5;a =b\r\n", "5;a= b\r\n", "5;a=b \r\n", "5;=b\r\n",
        "5;a=\r\n", "5;\r\n", "5;a=\"x\\\"y\"\r\n", "5;a=b c\r\n"}) {
    EXPECT_EQ(chunk_size(bad, size, e), kMalformed) << bad;
  }
  EXPECT_EQ(chunk_size("5;a=\"\"\r\n", size, e), 8);
}

TEST(ParseChunkSize, PrefixesAreIncomplete) {
  const std::string raw = "7f;ext=1\r\n";
  for (std::size_t i = 0; i < raw.size(); ++i) {
    std::uint64_t size = 0;
    ParseError e;
    EXPECT_EQ(chunk_size(raw.substr(0, i), size, e), kIncomplete) << i;
  }
}

TEST(ParseChunkEnd, OnlyALineEnding) {
  ParseError e;
  EXPECT_EQ(parse_chunk_end("\r\n", 2, e), 2);
  EXPECT_EQ(parse_chunk_end("\n", 1, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_chunk_end);
  EXPECT_EQ(parse_chunk_end("\r", 1, e), kIncomplete);
  EXPECT_EQ(parse_chunk_end("x\r\n", 3, e), kMalformed);
  EXPECT_EQ(e, ParseError::bad_chunk_end);
}

TEST(ParseHeaders, TrailerSection) {
  Header h[4];
  std::size_t n = 4;
  ParseError e;
  std::string raw = "Checksum: abc\r\nX: y\r\n\r\nNEXT";
  EXPECT_EQ(parse_headers(raw.data(), raw.size(), h, n, e), static_cast<long>(raw.size() - 4));
  EXPECT_EQ(n, 2u);
  n = 4;
  EXPECT_EQ(parse_headers("\r\n", 2, h, n, e), 2);
  EXPECT_EQ(n, 0u);
}

Framing framing(int status, std::vector<Header> headers) {
  return body_framing(status, headers.data(), headers.size());
}

TEST(BodyFraming, FollowsRfc9112) {
  EXPECT_EQ(framing(204, {{"Content-Length", "5"}}).kind, Framing::Kind::none);
  EXPECT_EQ(framing(304, {}).kind, Framing::Kind::none);
  EXPECT_EQ(framing(100, {}).kind, Framing::Kind::none);
  auto f = framing(200, {{"content-length", " 42 "}});
  EXPECT_EQ(f.kind, Framing::Kind::length);
  EXPECT_EQ(f.length, 42u);
  EXPECT_EQ(framing(200, {{"Transfer-Encoding", "Chunked"}}).kind, Framing::Kind::chunked);
  EXPECT_EQ(framing(200, {}).kind, Framing::Kind::close);
}

TEST(BodyFraming, RefusesAmbiguousFraming) {
  auto why = [](Framing f) { return std::string(f.kind == Framing::Kind::invalid ? f.error : ""); };
  EXPECT_EQ(why(framing(200, {{"Content-Length", "1"}, {"Content-Length", "1"}})),
            "duplicate Content-Length");
  EXPECT_EQ(why(framing(200, {{"Content-Length", "1, 2"}})), "invalid Content-Length");
  EXPECT_EQ(why(framing(200, {{"Content-Length", "-1"}})), "invalid Content-Length");
  EXPECT_EQ(why(framing(200, {{"Content-Length", "99999999999999999999"}})),
            "invalid Content-Length");
  EXPECT_EQ(why(framing(200, {{"Transfer-Encoding", "gzip, chunked"}})),
            "unsupported Transfer-Encoding");
  EXPECT_EQ(why(framing(200, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}})),
            "both Transfer-Encoding and Content-Length");
  EXPECT_EQ(why(framing(200, {{"Content-Length", "3"}, {"", "4"}})), "folded framing header");
}

}  // namespace
}  // namespace bytepump::http
