#include "io/dicom_probe.h"


#include <cstdint>
#include <cstring>
#include <string>

namespace rapidnii::io {

namespace {

struct Walker {
  const uint8_t* p;
  size_t n;
  bool explicit_vr = true;
  bool big_endian = false;
  size_t float_pos = SIZE_MAX;  // FloatPixelData / DoubleFloatPixelData element, if any
  uint64_t pixel_end = 0;       // where the pixel element must end (0: the end of the walk)
  ProbeResult fail = ProbeResult::Ok;

  uint16_t u16(size_t at) const {
    return big_endian ? uint16_t(p[at] << 8 | p[at + 1]) : uint16_t(p[at] | p[at + 1] << 8);
  }
  uint32_t u32(size_t at) const {
    return big_endian ? (uint32_t(p[at]) << 24 | uint32_t(p[at + 1]) << 16 | uint32_t(p[at + 2]) << 8 | p[at + 3])
                      : (uint32_t(p[at]) | uint32_t(p[at + 1]) << 8 | uint32_t(p[at + 2]) << 16 |
                         uint32_t(p[at + 3]) << 24);
  }
  bool need(size_t at, size_t len, size_t end) {
    if (at > end || len > end - at) {
      fail = end < n ? ProbeResult::Malformed : ProbeResult::Truncated;
      return false;
    }
    return true;
  }

  static bool valid_vr(const char* vr) {
    static const char* vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD",
                                "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
                                "UL", "UN", "UR", "US", "UT", "UV"};
    for (const char* v : vrs)
      if (vr[0] == v[0] && vr[1] == v[1]) return true;
    return false;
  }

  static bool long_vr(const char* vr) {
    static const char* longs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"};
    for (const char* l : longs)
      if (vr[0] == l[0] && vr[1] == l[1]) return true;
    return false;
  }

  // Items of a sequence whose value spans [pos, end) (defined length) or
  // runs until a sequence delimiter (undefined: end is the parent's end).
  bool items(size_t& pos, size_t end, bool undefined, int depth) {
    while (pos < end || undefined) {
      if (!need(pos, 8, end)) return false;
      const uint16_t g = u16(pos), e = u16(pos + 2);
      const uint32_t len = u32(pos + 4);
      pos += 8;
      if (g != 0xFFFE) {
        fail = ProbeResult::Malformed;
        return false;
      }
      if (e == 0xE0DD) return undefined ? true : (fail = ProbeResult::Malformed, false);
      if (e != 0xE000) {
        fail = ProbeResult::Malformed;
        return false;
      }
      if (len == 0xFFFFFFFF) {
        if (!elements(pos, end, true, depth + 1, nullptr)) return false;
      } else {
        if (!need(pos, len, end)) return false;
        size_t ip = pos;
        if (!elements(ip, pos + len, false, depth + 1, nullptr)) return false;
        pos += len;
      }
    }
    return true;
  }

  // Elements until `end`, an item delimiter (in_item) or PixelData (top level).
  bool elements(size_t& pos, size_t end, bool in_item, int depth, bool* reached_pixels) {
    if (depth > 32) {
      fail = ProbeResult::Malformed;
      return false;
    }
    while (pos < end) {
      if (!need(pos, 8, end)) return false;
      const uint16_t g = u16(pos), e = u16(pos + 2);
      if (g == 0xFFFE) {
        // Group FFFE holds only the item, item delimiter and sequence
        // delimiter tags (PS3.5 7.5), which belong inside sequences: among
        // the elements of a data set only an item delimiter, ending an item
        // of undefined length, may appear. Anything else makes GDCM read on
        // as if it were an item and allocate without bound (a fuzzed 1.2 KB
        // file made it allocate 4.2 GB).
        if (e == 0xE00D && in_item) {
          pos += 8;
          return true;
        }
        fail = ProbeResult::Malformed;
        return false;
      }
      // PixelData, FloatPixelData or DoubleFloatPixelData: the element header
      // must be sound (GDCM trusts it). The float elements come before
      // PixelData and the walk goes on after them (GDCM reads on too).
      if (reached_pixels && g == 0x7FE0 && (e == 0x0010 || e == 0x0008 || e == 0x0009)) {
        size_t header = 8;
        uint32_t len = 0;
        if (explicit_vr) {
          const char vr[2] = {char(p[pos + 4]), char(p[pos + 5])};
          const bool ok_vr = (vr[0] == 'O' && (vr[1] == 'B' || vr[1] == 'W' || vr[1] == 'F' || vr[1] == 'D')) ||
                             (vr[0] == 'U' && vr[1] == 'N');
          if (!ok_vr) {
            fail = ProbeResult::Malformed;
            return false;
          }
          if (!need(pos, 12, end)) return false;
          header = 12;
          len = u32(pos + 8);
        } else {
          len = u32(pos + 4);
        }
        const uint64_t limit = pixel_end ? pixel_end : end;
        if (len != 0xFFFFFFFF && len > limit - (pos + header)) {
          fail = ProbeResult::TruncatedPixels;
          return false;
        }
        if (e == 0x0010) {
          *reached_pixels = true;
          return true;
        }
        if (len == 0xFFFFFFFF) {  // float pixel data is never encapsulated
          fail = ProbeResult::Malformed;
          return false;
        }
        float_pos = pos;
        pos += header + len;
        continue;
      }
      uint32_t len;
      bool sq = false;
      if (explicit_vr) {
        const char vr[2] = {char(p[pos + 4]), char(p[pos + 5])};
        if (!valid_vr(vr)) {
          fail = ProbeResult::Malformed;
          return false;
        }
        sq = vr[0] == 'S' && vr[1] == 'Q';
        if (long_vr(vr)) {
          if (!need(pos, 12, end)) return false;
          len = u32(pos + 8);
          pos += 12;
        } else {
          len = u16(pos + 6);
          pos += 8;
        }
      } else {
        len = u32(pos + 4);
        pos += 8;
      }
      if (len == 0xFFFFFFFF) {
        // undefined length: a sequence (or encapsulated data) of items
        if (!items(pos, end, true, depth)) return false;
        continue;
      }
      if (!need(pos, len, end)) return false;
      if (sq && len > 0) {
        size_t sp = pos;
        if (!items(sp, pos + len, false, depth)) return false;
      }
      pos += len;
    }
    return true;
  }
};

}  // namespace

namespace {

// How far an Ok walk got: to the PixelData element header (the result
// depends on nothing after it), or only to a deflated data set's start.
enum class Reach { Elsewhere, PixelData, Deflated };

// `file_size` (0: b.size()) bounds the PixelData value.
ProbeResult probe_core(std::span<const uint8_t> b, NativePixels* px, uint64_t file_size = 0,
                       Reach* reach = nullptr) {
  if (reach) *reach = Reach::Elsewhere;
  Walker w{b.data(), b.size()};
  w.pixel_end = file_size;
  size_t pos = 0;
  std::string ts;
  if (b.size() >= 132 && std::memcmp(b.data() + 128, "DICM", 4) == 0) {
    pos = 132;
    // PS3.10: a DICM preamble is followed by the file meta group (0002)
    if (b.size() < 140 || w.u16(132) != 0x0002) return ProbeResult::Malformed;
    // file meta: explicit VR little endian, group 0002
    while (pos + 8 <= b.size() && w.u16(pos) == 0x0002) {
      const uint16_t e = w.u16(pos + 2);
      const char vr[2] = {char(b[pos + 4]), char(b[pos + 5])};
      if (!Walker::valid_vr(vr)) return ProbeResult::Malformed;
      uint32_t len;
      if (Walker::long_vr(vr)) {
        if (pos + 12 > b.size()) return ProbeResult::Truncated;
        len = w.u32(pos + 8);
        pos += 12;
      } else {
        len = w.u16(pos + 6);
        pos += 8;
      }
      if (len == 0xFFFFFFFF) return ProbeResult::Malformed;
      if (len > b.size() - pos) return ProbeResult::Truncated;
      if (e == 0x0010) {
        ts.assign(reinterpret_cast<const char*>(b.data() + pos), len);
        while (!ts.empty() && (ts.back() == '\0' || ts.back() == ' ')) ts.pop_back();
      }
      pos += len;
    }
    if (pos + 8 > b.size() && pos != b.size()) return ProbeResult::Truncated;
  } else {
    // no preamble: accept a data set that starts with a plausible element
    if (b.size() < 8) return ProbeResult::NotDicom;
    const uint16_t g = w.u16(0);
    if (g != 0x0002 && g != 0x0008) return ProbeResult::NotDicom;
    const bool explicit_guess = b[4] >= 'A' && b[4] <= 'Z' && b[5] >= 'A' && b[5] <= 'Z';
    ts = explicit_guess ? "1.2.840.10008.1.2.1" : "1.2.840.10008.1.2";
  }
  if (ts == "1.2.840.10008.1.2.1.99") {  // deflated: GDCM inflates it
    if (reach) *reach = Reach::Deflated;
    return ProbeResult::Ok;
  }
  w.explicit_vr = ts != "1.2.840.10008.1.2";
  w.big_endian = ts == "1.2.840.10008.1.2.2";
  bool pixels = false;
  if (!w.elements(pos, b.size(), false, 0, &pixels)) return w.fail;
  if (reach && pixels) *reach = Reach::PixelData;
  if (!pixels && w.float_pos != SIZE_MAX) {
    pos = w.float_pos;  // float pixel data and no PixelData
    pixels = true;
  }
  if (px && pixels && (ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2.2")) {
    // pos is at the pixel element (checked by the walker)
    const size_t header = w.explicit_vr ? 12 : 8;
    const uint32_t len = w.explicit_vr ? w.u32(pos + 8) : w.u32(pos + 4);
    if (len != 0xFFFFFFFF) {
      px->found = true;
      px->element = w.u16(pos + 2);
      px->big_endian = w.big_endian;
      px->offset = pos + header;
      px->length = len;
    }
  }
  return ProbeResult::Ok;
}

}  // namespace

ProbeResult probe_dicom_bytes(std::span<const uint8_t> b) { return probe_core(b, nullptr); }

ProbeResult probe_dicom_bytes(std::span<const uint8_t> b, NativePixels& px) { return probe_core(b, &px); }

NativePixels find_native_pixels(std::span<const uint8_t> b) {
  NativePixels px;
  if (probe_core(b, &px) != ProbeResult::Ok) px.found = false;
  return px;
}

PrefixProbe probe_dicom_prefix(std::span<const uint8_t> prefix, uint64_t file_size) {
  PrefixProbe r;
  if (file_size < prefix.size()) return r;  // not a prefix of that file: undecided
  if (file_size == prefix.size()) {
    r.result = probe_core(prefix, &r.px);
    r.decided = r.header_inside = true;
    return r;
  }
  Reach reach = Reach::Elsewhere;
  r.result = probe_core(prefix, &r.px, file_size, &reach);
  // a PixelData value longer than the file fails the same way in both walks
  r.decided = (r.result == ProbeResult::Ok && reach != Reach::Elsewhere) || r.result == ProbeResult::TruncatedPixels;
  r.header_inside = r.decided && reach == Reach::PixelData;
  if (!r.decided) r.px = NativePixels{};
  return r;
}

NativePixels find_native_pixels_in_prefix(std::span<const uint8_t> prefix, uint64_t file_size) {
  PrefixProbe p = probe_dicom_prefix(prefix, file_size);
  if (!p.decided || p.result != ProbeResult::Ok || p.px.element != 0x0010) p.px.found = false;
  return p.px;
}

}  // namespace rapidnii::io
