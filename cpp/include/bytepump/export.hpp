#ifndef BYTEPUMP_EXPORT_HPP_
#define BYTEPUMP_EXPORT_HPP_

// Symbols are hidden by default; the public API is marked with BYTEPUMP_API.
#if defined(__GNUC__)
#define BYTEPUMP_API __attribute__((visibility("default")))
#else
#define BYTEPUMP_API
#endif

#endif  // BYTEPUMP_EXPORT_HPP_
