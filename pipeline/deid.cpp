#include "pipeline/deid.h"

#include "io/hex.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace rapidnii::pipeline::deid {

namespace fs = std::filesystem;

Profile parse_profile(std::string_view s) {
  if (s == "research") return Profile::Research;
  if (s == "strict") return Profile::Strict;
  if (s == "limited") return Profile::Limited;
  throw std::invalid_argument("unknown profile (research, strict, limited)");
}

const char* profile_name(Profile p) {
  switch (p) {
    case Profile::Research: return "research";
    case Profile::Strict: return "strict";
    case Profile::Limited: return "limited";
  }
  return "research";
}

// ---------------------------------------------------------------- keys

namespace {

using io::to_hex;

std::vector<uint8_t> raw_hmac(const std::vector<uint8_t>& key, std::string_view msg) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const uint8_t*>(msg.data()),
            msg.size(), out.data(), &len))
    throw std::runtime_error("HMAC failed");
  out.resize(len);
  return out;
}

Key make_key(std::vector<uint8_t> bytes) {
  if (bytes.size() < 16) throw std::runtime_error("the key must hold at least 16 bytes");
  Key k;
  k.bytes = std::move(bytes);
  auto id = raw_hmac(k.bytes, "key-id");
  k.id = to_hex(id.data(), 4);
  return k;
}

std::vector<uint8_t> read_key_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("the key file cannot be read");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace

Key load_key_file(const fs::path& p) { return make_key(read_key_bytes(p)); }

Key load_or_create_key(const fs::path& state_dir, bool* created) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (!fs::is_directory(state_dir)) throw std::runtime_error("the state folder cannot be created");
  ::chmod(state_dir.c_str(), 0700);
  const fs::path kp = state_dir / "key";
  if (created) *created = false;
  if (fs::exists(kp)) return make_key(read_key_bytes(kp));
  uint8_t raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for a key");
  const std::string text = to_hex(raw, sizeof raw) + "\n";
  // Shards may start together: the first link() wins, the others read its key.
  const fs::path tmp = state_dir / ("key.tmp-" + std::to_string(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) throw std::runtime_error("the key cannot be written to the state folder");
  }
  ::chmod(tmp.c_str(), 0600);
  const bool won = ::link(tmp.c_str(), kp.c_str()) == 0;
  fs::remove(tmp, ec);
  if (created) *created = won;
  return make_key(read_key_bytes(kp));
}

std::vector<uint8_t> Pseudonymizer::hmac(std::string_view domain, std::string_view value) const {
  std::string msg;
  msg.reserve(domain.size() + 1 + value.size());
  msg.append(domain);
  msg.push_back('|');
  msg.append(value);
  return raw_hmac(key_.bytes, msg);
}

uint64_t Pseudonymizer::hmac64(std::string_view domain, std::string_view value) const {
  auto h = hmac(domain, value);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | h[i];
  return v;
}

std::string Pseudonymizer::subject_label(std::string_view issuer, std::string_view patient_id) const {
  std::string v(issuer);
  v.push_back('|');
  v.append(patient_id);
  auto h = hmac("subject", v);
  static const char* alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : h) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5 && out.size() < 10) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
    if (out.size() >= 10) break;
  }
  return out;
}

std::string Pseudonymizer::site_token(std::string_view institution) const {
  auto h = hmac("site", institution);
  return "site-" + to_hex(h.data(), 4);
}

std::string Pseudonymizer::scanner_token(std::string_view model, std::string_view serial,
                                         std::string_view station) const {
  std::string v(model);
  v += "|";
  v += serial;
  v += "|";
  v += station;
  auto h = hmac("scanner", v);
  return "scanner-" + to_hex(h.data(), 4);
}

int64_t Pseudonymizer::date_offset_days(std::string_view subject_label) const {
  return -(kShiftBaseDays + static_cast<int64_t>(hmac64("dateshift", subject_label) % kShiftJitterDays));
}

std::string Pseudonymizer::uid(std::string_view original) const {
  auto h = hmac("uid", original);
  // 128-bit unsigned integer in decimal (at most 39 digits: "2.25." + 39 <= 64)
  std::vector<uint8_t> n(h.begin(), h.begin() + 16);
  std::string digits;
  while (std::any_of(n.begin(), n.end(), [](uint8_t b) { return b != 0; })) {
    uint32_t rem = 0;
    for (auto& b : n) {
      const uint32_t cur = (rem << 8) | b;
      b = static_cast<uint8_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(char('0' + rem));
  }
  if (digits.empty()) digits = "0";
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

// ---------------------------------------------------------------- dates

std::optional<Date> parse_date(std::string_view s) {
  std::string d;
  for (char c : s)
    if (c >= '0' && c <= '9') d.push_back(c);
    else if (c != '.' && c != '-' && c != '/' && c != ' ') return std::nullopt;
  if (d.size() < 8) return std::nullopt;
  Date r{std::stoi(d.substr(0, 4)), std::stoi(d.substr(4, 2)), std::stoi(d.substr(6, 2))};
  if (r.y < 1800 || r.m < 1 || r.m > 12 || r.d < 1 || r.d > 31) return std::nullopt;
  return r;
}

// Howard Hinnant's civil-calendar algorithms (public domain description).
int64_t days_from_civil(const Date& dt) {
  int64_t y = dt.y;
  const unsigned m = dt.m, d = dt.d;
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

Date civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return Date{static_cast<int>(y + (m <= 2)), static_cast<int>(m), static_cast<int>(d)};
}

std::optional<double> parse_time_seconds(std::string_view s) {
  std::string t;
  for (char c : s)
    if (c != ':') t.push_back(c);
  while (!t.empty() && t.back() == ' ') t.pop_back();
  if (t.size() < 2) return std::nullopt;
  for (size_t i = 0; i < std::min<size_t>(t.size(), 6); ++i)
    if (t[i] == '.') break;
    else if (t[i] < '0' || t[i] > '9') return std::nullopt;
  auto two = [&](size_t at) { return t.size() >= at + 2 && t[at] != '.' ? std::stoi(t.substr(at, 2)) : 0; };
  double frac = 0;
  const size_t dot = t.find('.');
  if (dot != std::string::npos) frac = std::strtod(t.c_str() + dot, nullptr);
  const int hh = two(0), mm = dot == std::string::npos || dot > 2 ? two(2) : 0,
            ss = dot == std::string::npos || dot > 4 ? two(4) : 0;
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  return hh * 3600.0 + mm * 60.0 + ss + frac;
}

std::string format_time(double seconds) {
  int64_t us = static_cast<int64_t>(std::llround(seconds * 1e6));
  const int64_t day = 86400LL * 1000000LL;
  us = ((us % day) + day) % day;
  const int64_t h = us / 3600000000LL;
  const int64_t m = (us / 60000000LL) % 60;
  const int64_t s = (us / 1000000LL) % 60;
  const int64_t f = us % 1000000LL;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%06lld", (long long)h, (long long)m, (long long)s,
                (long long)f);
  return buf;
}

std::string format_date(const Date& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.y, d.m, d.d);
  return buf;
}

std::optional<double> derive_age(const std::string& birth, const std::string& scan, const std::string& as) {
  double years = -1;
  auto b = parse_date(birth);
  auto s = parse_date(scan);
  if (b && s) {
    const int64_t days = days_from_civil(*s) - days_from_civil(*b);
    if (days < 0) return std::nullopt;
    int full = s->y - b->y;
    if (s->m < b->m || (s->m == b->m && s->d < b->d)) --full;
    years = full < 2 ? std::floor(days / 365.25 * 10.0) / 10.0 : full;
  } else if (as.size() >= 2) {
    const char unit = as.back();
    const double v = std::strtod(as.c_str(), nullptr);
    if (v < 0) return std::nullopt;
    switch (unit) {
      case 'Y': case 'y': years = v; break;
      case 'M': case 'm': years = v / 12.0; break;
      case 'W': case 'w': years = v * 7 / 365.25; break;
      case 'D': case 'd': years = v / 365.25; break;
      default: return std::nullopt;
    }
    years = years < 2 ? std::floor(years * 10.0) / 10.0 : std::floor(years);
  } else {
    return std::nullopt;
  }
  return std::min(years, 90.0);
}

std::optional<Date> scan_date(const io::SeriesMeta& m) {
  if (m.acquisition_datetime.size() >= 8)
    if (auto d = parse_date(m.acquisition_datetime.substr(0, 8))) return d;
  for (const std::string* s : {&m.acquisition_date, &m.series_date, &m.content_date, &m.study_date})
    if (auto d = parse_date(*s)) return d;
  return std::nullopt;
}

// ---------------------------------------------------------------- text

namespace {

// Code point (Latin-1 supplement and Latin Extended-A) to ASCII.
std::string fold_codepoint(uint32_t c, bool umlaut_e) {
  if (c < 0x80) return std::string(1, char(c));
  if (umlaut_e) {
    switch (c) {
      case 0xC4: return "Ae";
      case 0xD6: return "Oe";
      case 0xDC: return "Ue";
      case 0xE4: return "ae";
      case 0xF6: return "oe";
      case 0xFC: return "ue";
    }
  }
  static const char* latin1 =
      // C0..FF
      "AAAAAAACEEEEIIII"  // C0-CF (C6 handled below)
      "DNOOOOO*OUUUUYTs"  // D0-DF
      "aaaaaaaceeeeiiii"  // E0-EF
      "dnooooo/ouuuuyty";  // F0-FF
  if (c == 0xC6) return "AE";
  if (c == 0xE6) return "ae";
  if (c == 0xDF) return "ss";
  if (c == 0xDE) return "Th";
  if (c == 0xFE) return "th";
  if (c == 0xD7 || c == 0xF7) return " ";
  if (c >= 0xC0 && c <= 0xFF) return std::string(1, latin1[c - 0xC0]);
  if (c >= 0x100 && c <= 0x17F) {
    // Latin Extended-A: base letters in order (pairs upper/lower mostly)
    static const char* ext =
        "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiJjJjKkkLlLlLlLlLlNnNnNnnNnOoOoOoOoRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";
    const size_t i = c - 0x100;
    if (i < std::strlen(ext)) {
      if (c == 0x152) return "OE";
      if (c == 0x153) return "oe";
      if (c == 0x132) return "IJ";
      if (c == 0x133) return "ij";
      return std::string(1, ext[i]);
    }
  }
  if (c == 0xA0) return " ";
  return "";  // other scripts: dropped
}

}  // namespace

std::string fold_ascii(std::string_view raw, std::string_view charset, bool umlaut_e) {
  const std::string cs(charset);
  const bool utf8 = cs.find("ISO_IR 192") != std::string::npos;
  const bool iso2022 = cs.find("2022") != std::string::npos;
  std::string out;
  bool multibyte = false;  // inside an ISO 2022 multi-byte set (e.g. JIS X 0208)
  for (size_t i = 0; i < raw.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(raw[i]);
    if (b == 0x1B) {  // escape sequence: ESC I* F
      size_t j = i + 1;
      std::string seq;
      while (j < raw.size() && static_cast<uint8_t>(raw[j]) >= 0x20 && static_cast<uint8_t>(raw[j]) <= 0x2F)
        seq.push_back(raw[j++]);
      if (j < raw.size()) seq.push_back(raw[j]);
      multibyte = !seq.empty() && seq[0] == '$';
      i = j;
      continue;
    }
    if (iso2022 && multibyte) {
      if (b == '^' || b == '=' || b == '\\') out.push_back(char(b));  // delimiters are single-byte
      continue;
    }
    if (b < 0x80) {
      out.push_back(char(b));
      continue;
    }
    if (utf8) {
      uint32_t cp = 0;
      int extra = 0;
      if ((b & 0xE0) == 0xC0) cp = b & 0x1F, extra = 1;
      else if ((b & 0xF0) == 0xE0) cp = b & 0x0F, extra = 2;
      else if ((b & 0xF8) == 0xF0) cp = b & 0x07, extra = 3;
      else continue;
      if (i + extra >= raw.size()) break;
      bool ok = true;
      for (int k = 1; k <= extra; ++k) {
        const uint8_t cb = static_cast<uint8_t>(raw[i + k]);
        if ((cb & 0xC0) != 0x80) ok = false;
        cp = (cp << 6) | (cb & 0x3F);
      }
      i += extra;
      if (!ok) continue;
      // combining diacritical marks (NFD input) vanish
      if (cp >= 0x300 && cp <= 0x36F) continue;
      out += fold_codepoint(cp, umlaut_e);
    } else if (!iso2022) {
      out += fold_codepoint(b, umlaut_e);  // Latin-1
    }
  }
  return out;
}

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

std::vector<std::string> split_any(const std::string& s, const std::string& seps) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (seps.find(c) != std::string::npos) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

void add_date_layouts(std::vector<std::string>& out, const std::string& da) {
  auto d = parse_date(da);
  if (!d) return;
  char b[8][16];
  std::snprintf(b[0], 16, "%04d%02d%02d", d->y, d->m, d->d);
  std::snprintf(b[1], 16, "%04d-%02d-%02d", d->y, d->m, d->d);
  std::snprintf(b[2], 16, "%04d/%02d/%02d", d->y, d->m, d->d);
  std::snprintf(b[3], 16, "%04d.%02d.%02d", d->y, d->m, d->d);
  std::snprintf(b[4], 16, "%02d/%02d/%04d", d->m, d->d, d->y);
  std::snprintf(b[5], 16, "%02d.%02d.%04d", d->d, d->m, d->y);
  std::snprintf(b[6], 16, "%02d%02d%02d", d->y % 100, d->m, d->d);
  for (auto& s : b)
    if (s[0]) out.emplace_back(s);
}

// Pattern scrub (P4 step 3). Order matters: longer structures first.
const std::vector<std::regex>& patterns() {
  static const std::vector<std::regex> p = [] {
    const auto f = std::regex::ECMAScript | std::regex::icase;
    return std::vector<std::regex>{
        std::regex(R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+)", f),                // e-mail
        std::regex(R"((https?|ftp)://[^\s]+)", f),                              // URL
        std::regex(R"(www\.[^\s]+)", f),                                       // URL
        std::regex(R"(\d+(\.\d+){3,})", f),                                     // UID-like
        std::regex(R"(\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2})", f),                   // dates
        std::regex(R"(\d{1,2}[\-/.]\d{1,2}[\-/.]\d{2,4})", f),
        std::regex(R"(\d{1,2}:\d{2}(:\d{1,2}(\.\d+)?)?)", f),                  // times
        std::regex(R"(\+?\d[\d ()\-]{6,}\d)", f),                              // phone-like
        std::regex(R"(\d{6,})", f),                                             // long digit runs
    };
  }();
  return p;
}

std::string allow_chars(const std::string& s, size_t cap) {
  std::string out;
  bool space = false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ' ||
                    c == '_' || c == '+' || c == '-' || c == '.' || c == '(' || c == ')';
    if (!ok) {
      space = true;  // a removed character separates words
      continue;
    }
    if (c == ' ') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.size() > cap) out.resize(cap);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string scrub(std::string folded, const KnownValues& kv, bool& changed) {
  // known values, case-insensitively, longest first
  std::string low = lower(folded);
  for (const std::string& k : kv.lower) {
    size_t pos;
    while ((pos = low.find(k)) != std::string::npos) {
      folded.replace(pos, k.size(), " ");
      low.replace(pos, k.size(), " ");
      changed = true;
    }
  }
  for (const auto& re : patterns()) {
    std::string next = std::regex_replace(folded, re, " ");
    if (next != folded) {
      changed = true;
      folded.swap(next);
    }
  }
  return folded;
}

}  // namespace

KnownValues known_values(const io::SeriesMeta& m) {
  const std::string& cs = m.specific_character_set;
  std::vector<std::string> v;
  auto add_names = [&](const std::string& pn) {
    for (bool ue : {false, true}) {
      const std::string f = fold_ascii(pn, cs, ue);
      // groups '=', components '^', and words inside components
      for (const auto& comp : split_any(f, "=^\\")) {
        const std::string c = trim(comp);
        if (c.size() >= 2) v.push_back(lower(c));
        for (const auto& w : split_any(c, " ,"))
          if (w.size() >= 2) v.push_back(lower(w));
      }
    }
  };
  for (const std::string* pn : {&m.patient_name, &m.other_patient_names, &m.patient_birth_name,
                                &m.patient_mother_birth_name, &m.referring_physician, &m.performing_physician,
                                &m.operators_name, &m.reading_physicians, &m.requesting_physician})
    add_names(*pn);
  for (const std::string* id : {&m.patient_id, &m.other_patient_ids, &m.accession_number, &m.study_id})
    for (const auto& part : split_any(fold_ascii(*id, cs), "\\"))
      if (trim(part).size() >= 2) v.push_back(lower(trim(part)));
  for (const std::string* inst : {&m.institution_name, &m.institution_address, &m.department, &m.station_name}) {
    const std::string f = trim(fold_ascii(*inst, cs));
    if (f.size() >= 2) v.push_back(lower(f));
  }
  for (const std::string* d : {&m.patient_birth_date, &m.study_date, &m.series_date, &m.acquisition_date,
                               &m.content_date})
    add_date_layouts(v, *d);
  if (m.acquisition_datetime.size() >= 8) add_date_layouts(v, m.acquisition_datetime.substr(0, 8));
  std::sort(v.begin(), v.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return KnownValues{std::move(v)};
}

Cleaned clean_descriptor(std::string_view raw, std::string_view charset, const KnownValues& kv) {
  Cleaned c;
  const std::string folded = fold_ascii(raw, charset);
  const std::string s = scrub(folded, kv, c.changed);
  c.value = allow_chars(s, 64);
  return c;
}

std::string clean_keep(std::string_view raw, std::string_view charset, const KnownValues& kv) {
  bool changed = false;
  return allow_chars(scrub(fold_ascii(raw, charset), kv, changed), 64);
}

std::string bids_label(std::string_view cleaned, size_t max_len) {
  std::string out;
  for (char c : cleaned) {
    if (out.size() >= max_len) break;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out.push_back(c);
  }
  return out;
}

// ---------------------------------------------------------------- BIDS

BidsClass classify(const io::SeriesMeta& m, int n_volumes, bool dwi, std::string_view part) {
  const std::string mod = lower(m.modality);
  const std::string text =
      lower(fold_ascii(m.protocol_name + " " + m.series_description + " " + m.sequence_name + " " +
                           m.pulse_sequence_name,
                       m.specific_character_set));
  const auto itype = split_any(lower(m.image_type), "\\");
  auto has = [&](const char* w) { return text.find(w) != std::string::npos; };
  auto other = [&] { return BidsClass{"other", mod.empty() ? "image" : bids_label(mod)}; };
  if (mod != "mr") return other();
  if (!part.empty() && part != "mag") return other();
  if (dwi && n_volumes > 1) return {"dwi", "dwi"};
  // phase, derived maps and diffusion go to "other" until they carry what BIDS requires
  for (const auto& t : itype)
    if (trim(t) == "p" || trim(t) == "phase") return other();
  if (has("dwi") || has("diff") || has("dti") || has("adc") || has("trace")) return other();
  const bool epi = m.scanning_sequence.find("EP") != std::string::npos || has("epi") || has("ep2d");
  if (n_volumes > 1) {
    if (epi || has("bold") || has("fmri") || has("rest") || has("task")) return {"func", "bold"};
    return other();
  }
  if (has("flair")) return {"anat", "FLAIR"};
  if (has("t2") && !has("t2*") && !has("t2star") && !has("swi")) return {"anat", "T2w"};
  if (has("t1") || has("mprage") || has("spgr") || has("tfl") || has("bravo")) return {"anat", "T1w"};
  if (has("pd")) return {"anat", "PDw"};
  return other();
}

// ---------------------------------------------------------------- sidecar

namespace {

std::string ms_trim(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

nlohmann::json multi_values(const std::string& s) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : split_any(s, "\\")) {
    const std::string t = trim(p);
    if (!t.empty()) a.push_back(t);
  }
  return a;
}

}  // namespace

std::string nifti_descrip(const io::SeriesMeta& m) {
  if (!m.echo_time || !(*m.echo_time >= 0)) return "";
  return "TE=" + ms_trim(*m.echo_time);
}

nlohmann::json make_sidecar(const io::SeriesMeta& m, const SeriesContext& c, const Pseudonymizer& ps,
                            bool* descriptor_changed) {
  using nlohmann::json;
  json j = json::object();
  const std::string& cs = m.specific_character_set;
  const KnownValues kv = known_values(m);
  const bool strict = c.profile == Profile::Strict;
  const bool limited = c.profile == Profile::Limited;
  if (descriptor_changed) *descriptor_changed = false;

  auto keep_text = [&](const char* key, const std::string& v) {
    if (v.empty()) return;
    const std::string s = limited ? allow_chars(fold_ascii(v, cs), 64) : clean_keep(v, cs, kv);
    if (!s.empty()) j[key] = s;
  };
  auto keep_list = [&](const char* key, const std::string& v) {
    if (v.empty()) return;
    json a = json::array();
    for (const auto& item : multi_values(v)) {
      const std::string s = clean_keep(item.get<std::string>(), cs, kv);
      if (!s.empty()) a.push_back(s);
    }
    if (!a.empty()) j[key] = a;
  };
  auto num = [&](const char* key, const std::optional<double>& v, double scale = 1.0) {
    if (v && std::isfinite(*v)) j[key] = *v * scale;
  };

  // scanner (KEEP) and physics (KEEP)
  keep_text("Modality", m.modality);
  keep_text("Manufacturer", m.manufacturer);
  keep_text("ManufacturersModelName", m.model);
  keep_text("SoftwareVersions", m.software_versions);
  keep_text("ReceiveCoilName", m.receive_coil);
  keep_text("BodyPartExamined", m.body_part);
  num("MagneticFieldStrength", m.field_strength);
  num("ImagingFrequency", m.imaging_frequency);
  keep_text("SequenceName", m.sequence_name);
  keep_text("PulseSequenceName", m.pulse_sequence_name);
  keep_list("ScanningSequence", m.scanning_sequence);
  keep_list("SequenceVariant", m.sequence_variant);
  keep_list("ScanOptions", m.scan_options);
  keep_list("ImageType", m.image_type);
  keep_text("MRAcquisitionType", m.mr_acquisition_type);
  keep_text("InPlanePhaseEncodingDirectionDICOM", m.phase_encoding_direction);
  keep_text("ConvolutionKernel", m.convolution_kernel);
  num("EchoTime", m.echo_time, 1e-3);
  num("RepetitionTime", m.repetition_time, 1e-3);
  num("InversionTime", m.inversion_time, 1e-3);
  num("FlipAngle", m.flip_angle);
  num("PixelBandwidth", m.pixel_bandwidth);
  num("SliceThickness", m.slice_thickness);
  num("SpacingBetweenSlices", m.spacing_between_slices);
  num("PercentPhaseFOV", m.percent_phase_fov);
  num("ParallelReductionFactorInPlane", m.parallel_reduction);
  num("KVP", m.kvp);
  // phase encoding and slice timing in the output voxel frame (pipeline/acquisition)
  const AcquisitionFields& acq = c.acquisition;
  if (!acq.phase_encoding_direction.empty()) j["PhaseEncodingDirection"] = acq.phase_encoding_direction;
  if (!acq.phase_encoding_axis.empty()) j["PhaseEncodingAxis"] = acq.phase_encoding_axis;
  num("BandwidthPerPixelPhaseEncode", m.bandwidth_per_pixel_phase_encode);
  num("EffectiveEchoSpacing", acq.effective_echo_spacing);
  num("TotalReadoutTime", acq.total_readout_time);
  num("EstimatedEffectiveEchoSpacing", acq.estimated_effective_echo_spacing);
  num("EstimatedTotalReadoutTime", acq.estimated_total_readout_time);
  if (!acq.slice_timing.empty()) j["SliceTiming"] = acq.slice_timing;
  if (acq.multiband_factor > 1) j["MultibandAccelerationFactor"] = acq.multiband_factor;
  if (!acq.slice_encoding_direction.empty()) j["SliceEncodingDirection"] = acq.slice_encoding_direction;
  if (m.image_orientation.size() == 6) j["ImageOrientationPatientDICOM"] = m.image_orientation;
  // PET: code strings (letters, digits, underscore only) and frame timing
  auto code = [&](const char* key, const std::string& v) {
    const std::string s = trim(v);
    if (!s.empty() && s.size() <= 16 &&
        std::all_of(s.begin(), s.end(), [](char ch) { return std::isupper((unsigned char)ch) || std::isdigit((unsigned char)ch) || ch == '_'; }))
      j[key] = s;
  };
  if (m.philips_scale_slope) {
    num("PhilipsRescaleSlope", m.philips_rescale_slope);
    num("PhilipsRescaleIntercept", m.philips_rescale_intercept);
    num("PhilipsScaleSlope", m.philips_scale_slope);
    j["UsePhilipsFloatNotDisplayScaling"] = 1;
  }
  code("Units", m.pet_units);
  code("DecayCorrection", m.decay_correction);
  if (!acq.frame_duration.empty()) j["FrameDuration"] = acq.frame_duration;
  if (!acq.frame_times_start.empty()) j["FrameTimesStart"] = acq.frame_times_start;
  if (m.series_number) j["SeriesNumber"] = *m.series_number;
  if (m.acquisition_number) j["AcquisitionNumber"] = *m.acquisition_number;
  if (m.echo_number) j["EchoNumber"] = *m.echo_number;
  if (c.bids.suffix == "bold") j["TaskName"] = c.task;

  // descriptors (CLEAN; strict: the BIDS guess)
  if (strict) {
    j["SeriesDescription"] = c.bids.suffix;
    j["ProtocolName"] = c.bids.suffix;
  } else {
    for (auto [key, v] : {std::pair{"SeriesDescription", &m.series_description},
                          std::pair{"ProtocolName", &m.protocol_name}}) {
      if (v->empty()) continue;
      if (limited) {
        j[key] = allow_chars(fold_ascii(*v, cs), 64);
        continue;
      }
      Cleaned cl = clean_descriptor(*v, cs, kv);
      if (cl.changed && descriptor_changed) *descriptor_changed = true;
      if (!cl.value.empty()) j[key] = cl.value;
    }
  }

  // patient characteristics (research: derived age, sex)
  if (!strict) {
    const auto sd = scan_date(m);
    if (auto age = derive_age(m.patient_birth_date, sd ? format_date(*sd) : "", m.patient_age)) j["PatientAge"] = *age;
    const std::string sex = trim(m.patient_sex);
    if (sex == "M" || sex == "F" || sex == "O") j["PatientSex"] = sex;
  }

  // site and scanner identity (research: keyed tokens; limited: verbatim)
  if (limited) {
    keep_text("InstitutionName", m.institution_name);
    keep_text("StationName", m.station_name);
    keep_text("DeviceSerialNumber", m.device_serial);
  } else if (!strict) {
    if (!m.institution_name.empty()) j["InstitutionName"] = ps.site_token(m.institution_name);
    if (!m.station_name.empty() || !m.device_serial.empty()) {
      const std::string tok = ps.scanner_token(m.model, m.device_serial, m.station_name);
      j["StationName"] = tok;
      j["DeviceSerialNumber"] = tok;
    }
  }

  // dates and times
  bool shifted = false;
  if (!strict) {
    std::optional<Date> d;
    std::optional<double> t;
    if (m.acquisition_datetime.size() >= 8) {
      d = parse_date(m.acquisition_datetime.substr(0, 8));
      if (m.acquisition_datetime.size() > 8) t = parse_time_seconds(m.acquisition_datetime.substr(8));
    }
    if (!d) d = scan_date(m);
    if (!t) t = parse_time_seconds(m.acquisition_time);
    if (d) {
      Date out = *d;
      if (!limited || !c.retain_full_dates) out = civil_from_days(days_from_civil(*d) + c.date_offset_days);
      if (limited || out.y <= kLatestShiftedYear) {
        j["AcquisitionDateTime"] = format_date(out) + "T" + format_time(t.value_or(0.0));
        shifted = !limited;
      }
    }
    if (t) j["AcquisitionTime"] = format_time(*t);
  }

  // burned-in markers and recognisable features (enums only)
  const std::string bia = trim(m.burned_in_annotation);
  if (bia == "YES" || bia == "NO") j["BurnedInAnnotation"] = bia;
  const std::string rvf = trim(m.recognizable_visual_features);
  if (rvf == "YES" || rvf == "NO") j["RecognizableVisualFeatures"] = rvf;
  if (c.burned_in_override) j["BurnedInTextRisk"] = c.burned_in_code;
  if (!c.face_note.empty()) j["FaceAltered"] = c.face_note;
  if (!c.complex_part.empty()) j["ComplexPart"] = c.complex_part;
  if (c.tilt_corrected) j["GantryTiltCorrected"] = true;

  // provenance
  j["ConversionSoftware"] = "rapidnii";
  j["ConversionSoftwareVersion"] = RAPIDNII_VERSION_STRING;
  j["DeidentificationMethod"] = std::string("rapidnii ") + RAPIDNII_VERSION_STRING + " profile " +
                                profile_name(c.profile) + (limited ? " (identity retained)" : "");
  json codes = json::array();
  if (!limited) {
    codes.push_back({{"CodeValue", "113100"}, {"CodingSchemeDesignator", "DCM"},
                     {"CodeMeaning", "Basic Application Confidentiality Profile"}});
    if (!strict) {
      codes.push_back(
          {{"CodeValue", "113105"}, {"CodingSchemeDesignator", "DCM"}, {"CodeMeaning", "Clean Descriptors Option"}});
      codes.push_back({{"CodeValue", "113108"}, {"CodingSchemeDesignator", "DCM"},
                       {"CodeMeaning", "Retain Patient Characteristics Option"}});
      if (shifted)
        codes.push_back({{"CodeValue", "113107"}, {"CodingSchemeDesignator", "DCM"},
                         {"CodeMeaning", "Retain Longitudinal Temporal Information Modified Dates Option"}});
    }
    if (!c.face_note.empty())
      codes.push_back({{"CodeValue", "113102"}, {"CodingSchemeDesignator", "DCM"},
                       {"CodeMeaning", "Clean Recognizable Visual Features Option"}});
    j["DeidentificationMethodCodeSequence"] = codes;
  } else {
    j["ContainsPHI"] = true;
  }
  return j;
}

}  // namespace rapidnii::pipeline::deid
