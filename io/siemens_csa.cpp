#include "io/siemens_csa.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace rapidnii::io {

namespace {

bool read_i32(std::span<const uint8_t> b, size_t& pos, int32_t& v) {
  if (pos + 4 > b.size()) return false;
  std::memcpy(&v, b.data() + pos, 4);  // CSA is little endian, as is every host we build for
  pos += 4;
  return true;
}

}  // namespace

std::map<std::string, std::vector<std::string>> parse_siemens_csa(std::span<const uint8_t> b) {
  std::map<std::string, std::vector<std::string>> out;
  size_t pos = 0;
  const bool csa2 = b.size() >= 4 && std::memcmp(b.data(), "SV10", 4) == 0;
  if (csa2) pos = 8;
  int32_t n_tags = 0, unused = 0;
  if (!read_i32(b, pos, n_tags) || !read_i32(b, pos, unused)) return out;
  if (n_tags < 1 || n_tags > 1024) return out;
  for (int32_t t = 0; t < n_tags; ++t) {
    if (pos + 64 > b.size()) return out;
    const char* name_p = reinterpret_cast<const char*>(b.data() + pos);
    const std::string name(name_p, strnlen(name_p, 64));
    pos += 64;
    int32_t vm = 0, syngodt = 0, n_items = 0, xx = 0;
    if (!read_i32(b, pos, vm)) return out;
    if (pos + 4 > b.size()) return out;
    pos += 4;  // VR
    if (!read_i32(b, pos, syngodt) || !read_i32(b, pos, n_items) || !read_i32(b, pos, xx)) return out;
    if (n_items < 0 || n_items > 4096) return out;
    std::vector<std::string> items;
    for (int32_t i = 0; i < n_items; ++i) {
      int32_t x[4];
      for (auto& v : x)
        if (!read_i32(b, pos, v)) return out;
      const int32_t len = x[1];
      if (len < 0 || size_t(len) > b.size() - pos) return out;
      std::string s(reinterpret_cast<const char*>(b.data() + pos), size_t(len));
      while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
      if (!s.empty()) items.push_back(std::move(s));
      pos += (size_t(len) + 3) & ~size_t(3);
      if (pos > b.size()) return out;
    }
    out[name] = std::move(items);
  }
  return out;
}

std::vector<double> csa_numbers(const std::map<std::string, std::vector<std::string>>& csa, const std::string& name) {
  std::vector<double> v;
  if (auto it = csa.find(name); it != csa.end())
    for (const auto& item : it->second) {
      char* end = nullptr;
      const double x = std::strtod(item.c_str(), &end);
      if (end != item.c_str() && std::isfinite(x)) v.push_back(x);
    }
  return v;
}

}  // namespace rapidnii::io
