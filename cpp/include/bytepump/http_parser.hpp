// Deprecated: the sans-IO decoders live in bytepump/http/; 0.1 keeps this
// forwarding header and 0.2 removes it. Include bytepump/http/parser.hpp.
#include "bytepump/http/parser.hpp"
