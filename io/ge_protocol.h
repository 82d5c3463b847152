// GE's Protocol Data Block (0025,101B): the acquisition protocol as
// gzip-compressed text lines `KEY "value"`, after a 4-byte little-endian
// length of the compressed bytes. Only the few numbers slice timing needs are
// kept; the rest of the text (which may name the site) is never stored.
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace rapidnii::io {

struct GeProtocol {
  std::optional<int> slice_order;  // SLICEORDER: 0 sequential, otherwise interleaved
  int multiband = 1;               // MBACCEL (HyperBand factor), at least 1
  double group_delay = 0;          // DELACQNOAV, s: pause after the slices within each TR
                                   // (0 when DELACQ is "Minimum")
  bool fmri = false;               // IOPT names the FMRI option
  bool multiphase = false;         // IOPT names MPh (multi-phase)
  bool variable_delays = false;    // IOPT names MPhVar (variable delays between phases)
  bool diffusion = false;          // IOPT names DIFF
};

// Parses the element's bytes. Empty when they are not such a block (wrong
// length, not gzip, corrupt, larger than 4 MiB when inflated, or the XML
// form of newer software, whose layout is not documented).
std::optional<GeProtocol> parse_ge_protocol(std::span<const std::byte> element);

// GE software version from SoftwareVersions (0018,1020), e.g.
// "27\LX\MR Software release:RX27.0_R03_1831.a" -> {27.0, release 3};
// "...MR29.1_EA_2039.g" -> {29.1, 0} (EA: early access).
struct GeSoftwareVersion {
  double major = 0;  // 27.0, 29.1
  int release = 0;
};
std::optional<GeSoftwareVersion> ge_software_version(std::string_view software_versions);

}  // namespace rapidnii::io
