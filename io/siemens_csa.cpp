#include "io/siemens_csa.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

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

std::map<std::string, double> ascconv_numbers(std::span<const uint8_t> block, const std::vector<std::string>& wanted) {
  std::map<std::string, double> out;
  const std::string_view text(reinterpret_cast<const char*>(block.data()), block.size());
  const size_t begin = text.find("### ASCCONV BEGIN");
  if (begin == std::string_view::npos) return out;
  size_t end = text.find("### ASCCONV END", begin);
  if (end == std::string_view::npos) end = text.size();
  size_t pos = text.find('\n', begin);
  while (pos != std::string_view::npos && pos < end) {
    size_t next = text.find('\n', pos + 1);
    if (next == std::string_view::npos || next > end) next = end;
    std::string_view line = text.substr(pos + 1, next - pos - 1);
    pos = next < end ? next : std::string_view::npos;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
      return v;
    };
    const std::string key(trim(line.substr(0, eq)));
    if (std::find(wanted.begin(), wanted.end(), key) == wanted.end()) continue;
    std::string value(trim(line.substr(eq + 1)));
    if (const size_t hash = value.find('#'); hash != std::string::npos) value = std::string(trim(value.substr(0, hash)));
    if (value.empty() || value.size() > 32) continue;
    char* stop = nullptr;
    const bool hex = value.size() > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X');
    const double v = hex ? double(std::strtoll(value.c_str() + 2, &stop, 16)) : std::strtod(value.c_str(), &stop);
    if (stop == value.c_str() || *stop != '\0' || !std::isfinite(v)) continue;
    out[key] = v;
  }
  return out;
}

std::vector<double> siemens_protocol_slice_times_ms(const std::map<std::string, double>& a, double tr_ms, int slices) {
  auto get = [&](const char* k, double fallback) {
    const auto it = a.find(k);
    return it == a.end() ? fallback : it->second;
  };
  const double mode = get("sSliceArray.ucMode", 0), size = get("sSliceArray.lSize", 0);
  const double conc = get("sSliceArray.lConc", 1), mb = get("sSliceAcceleration.lMultiBandFactor", 1);
  const double reversed = get("sSliceArray.ucImageNumb", 0), delay_us = get("lDelayTimeInTR", 0);
  if (slices < 2 || size != double(slices) || conc != 1 || mb > 1 || reversed != 0) return {};
  if (!(tr_ms > 0) || delay_us < 0 || delay_us / 1000 >= tr_ms) return {};
  const double step = (tr_ms - delay_us / 1000) / slices;
  std::vector<int> order;  // slices in acquisition order
  if (mode == 1) {
    for (int k = 0; k < slices; ++k) order.push_back(k);
  } else if (mode == 2) {
    for (int k = slices - 1; k >= 0; --k) order.push_back(k);
  } else if (mode == 4) {
    const int first = slices % 2 ? 0 : 1;
    for (int k = first; k < slices; k += 2) order.push_back(k);
    for (int k = 1 - first; k < slices; k += 2) order.push_back(k);
  } else {
    return {};
  }
  std::vector<double> t(size_t(slices), 0);
  for (size_t i = 0; i < order.size(); ++i) t[size_t(order[i])] = double(i) * step;
  return t;
}

}  // namespace rapidnii::io
