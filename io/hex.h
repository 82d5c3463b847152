// Lower-case hexadecimal of bytes (digests, key IDs, tokens).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rapidnii::io {

inline std::string to_hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

}  // namespace rapidnii::io
