// Deprecated: HeadScanner is HeadReader (bytepump/head_reader.hpp), named after its sans-IO partner
// http::HeadParser. 0.1 keeps this header and the alias; 0.2 removes them.
#ifndef BYTEPUMP_HEAD_SCANNER_HPP_
#define BYTEPUMP_HEAD_SCANNER_HPP_

#include "bytepump/head_reader.hpp"

namespace bytepump {
using HeadScanner = HeadReader;
}  // namespace bytepump

#endif  // BYTEPUMP_HEAD_SCANNER_HPP_
