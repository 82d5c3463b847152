// libFuzzer target over the header indexer: the structural probe, GDCM's
// header parse up to PixelData, the burned-in rules and the field readers.
// Any abort (GDCM's assertions included), crash or sanitizer report fails.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/dicom_header.h"
#include "io/dicom_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    rapidnii::io::quiet_gdcm();
    return true;
  }();
  (void)quiet;
  rapidnii::io::InputFile in;
  in.path = "fuzz";
  in.member = "input";
  in.bytes = std::make_shared<const std::vector<uint8_t>>(data, data + size);
  rapidnii::io::IndexOptions opt;
  opt.convert_burned_in_risk = true;  // reach the deepest parsing
  const auto r = rapidnii::io::index_dicom_file(in, opt);
  if (r.skip == rapidnii::io::SkipReason::None) {
    try {
      (void)rapidnii::io::read_series_meta(in);
    } catch (...) {
    }
  }
  return 0;
}
