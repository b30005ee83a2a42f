// Deprecated: ChunkedBody is ChunkedPump (bytepump/chunked_pump.hpp), named after its sans-IO
// partner http::ChunkedDecoder. 0.1 keeps this header and the alias; 0.2 removes them.
#ifndef BYTEPUMP_CHUNKED_HPP_
#define BYTEPUMP_CHUNKED_HPP_

#include "bytepump/chunked_pump.hpp"

namespace bytepump {
using ChunkedBody = ChunkedPump;
}  // namespace bytepump

#endif  // BYTEPUMP_CHUNKED_HPP_
