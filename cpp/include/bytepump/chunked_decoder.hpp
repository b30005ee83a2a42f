// Deprecated: the sans-IO decoders live in bytepump/http/; 0.1 keeps this
// forwarding header and 0.2 removes it. Include bytepump/http/chunked_decoder.hpp.
#include "bytepump/http/chunked_decoder.hpp"
