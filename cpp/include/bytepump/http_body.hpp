// Deprecated: HttpBody is BodyPump (bytepump/body_pump.hpp), named after its sans-IO partner
// http::BodyDecoder. 0.1 keeps this header and the alias; 0.2 removes them.
#ifndef BYTEPUMP_HTTP_BODY_HPP_
#define BYTEPUMP_HTTP_BODY_HPP_

#include "bytepump/body_pump.hpp"

namespace bytepump {
using HttpBody = BodyPump;
}  // namespace bytepump

#endif  // BYTEPUMP_HTTP_BODY_HPP_
