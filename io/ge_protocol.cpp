#include "io/ge_protocol.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace rapidnii::io {

namespace {

constexpr size_t kMaxText = size_t{4} << 20;

// gzip -> text, at most kMaxText bytes; empty on any error.
std::string inflate_gzip(std::span<const std::byte> gz) {
  z_stream s{};
  if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) return {};
  std::string out;
  std::vector<char> buf(64 << 10);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(gz.data()));
  s.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    s.next_out = reinterpret_cast<Bytef*>(buf.data());
    s.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&s, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf.data(), buf.size() - s.avail_out);
    if (out.size() > kMaxText) rc = Z_MEM_ERROR;
    else if (rc == Z_OK && s.avail_in == 0 && s.avail_out != 0) rc = Z_DATA_ERROR;  // truncated
  }
  inflateEnd(&s);
  return rc == Z_STREAM_END ? out : std::string{};
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}

template <class T>
std::optional<T> to_number(std::string_view v) {
  T x{};
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return x;
}

}  // namespace

std::optional<GeProtocol> parse_ge_protocol(std::span<const std::byte> element) {
  if (element.size() < 4 + 18) return std::nullopt;  // length + the smallest gzip member
  uint32_t len = 0;
  std::memcpy(&len, element.data(), 4);  // little-endian on every host we build for
  const auto gz = element.subspan(4);
  if (len < 18 || len > gz.size()) return std::nullopt;
  if (gz[0] != std::byte{0x1f} || gz[1] != std::byte{0x8b} || gz[2] != std::byte{8}) return std::nullopt;
  const std::string text = inflate_gzip(gz.first(len));
  if (text.empty() || text.starts_with("<?")) return std::nullopt;
  GeProtocol p;
  bool minimum_delay = false;
  std::string_view rest(text);
  while (!rest.empty()) {
    const size_t eol = rest.find_first_of("\r\n");
    std::string_view line = trim(rest.substr(0, eol));
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
    const size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, sp);
    std::string_view value = trim(line.substr(sp));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    value = trim(value);
    if (key == "SLICEORDER") {
      p.slice_order = to_number<int>(value);
    } else if (key == "MBACCEL") {
      if (auto v = to_number<int>(value); v && *v > 1 && *v <= 16) p.multiband = *v;
    } else if (key == "DELACQNOAV") {
      if (auto v = to_number<double>(value)) p.group_delay = *v;
    } else if (key == "DELACQ") {
      minimum_delay = value == "Minimum";
    } else if (key == "IOPT") {
      // options separated by commas, e.g. "FC, EPI, FMRI, MPh"
      std::string up(value);
      for (char& c : up) c = char(std::toupper(static_cast<unsigned char>(c)));
      p.fmri = up.find("FMRI") != std::string::npos;
      p.multiphase = up.find("MPH") != std::string::npos;
      p.variable_delays = up.find("MPHVAR") != std::string::npos;
      p.diffusion = up.find("DIFF") != std::string::npos;
    }
  }
  if (minimum_delay) p.group_delay = 0;
  return p;
}

std::optional<GeSoftwareVersion> ge_software_version(std::string_view sw) {
  std::string_view v = sw;
  if (size_t i = sw.find("SIGNA_LX1"); i != std::string_view::npos) {
    v = sw.substr(i + 9);
  } else if (size_t j = sw.find("MR Software release"); j != std::string_view::npos) {
    v = sw.substr(j + 19);
  } else if (size_t k = sw.rfind('\\'); k != std::string_view::npos) {
    v = sw.substr(k + 1);
  }
  while (!v.empty() && (v.front() == ':' || v.front() == '.' || std::isspace(static_cast<unsigned char>(v.front()))))
    v.remove_prefix(1);
  // two letters, major.minor, '_', then R<n> or EA
  if (v.size() < 5 || !std::isalpha(static_cast<unsigned char>(v[0])) ||
      !std::isalpha(static_cast<unsigned char>(v[1])))
    return std::nullopt;
  v.remove_prefix(2);
  const size_t us = v.find('_');
  const std::string_view num = v.substr(0, us);
  const size_t dot = num.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto maj = to_number<int>(num.substr(0, dot));
  const auto min = to_number<int>(num.substr(dot + 1));
  if (!maj || !min || *min < 0 || *min > 9) return std::nullopt;
  GeSoftwareVersion r{*maj + 0.1 * *min, 0};
  if (us != std::string_view::npos) {
    std::string_view tag = v.substr(us + 1);
    if (!tag.empty() && tag[0] == 'R') {
      size_t n = 1;
      while (n < tag.size() && std::isdigit(static_cast<unsigned char>(tag[n]))) ++n;
      if (auto rel = to_number<int>(tag.substr(1, n - 1))) r.release = *rel;
    }
  }
  return r;
}

}  // namespace rapidnii::io
