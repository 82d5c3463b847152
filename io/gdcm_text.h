// Small helpers to read DICOM element values as text through GDCM.
#pragma once
#include <gdcmDataSet.h>
#include <gdcmReader.h>
#include <gdcmTag.h>

#include <istream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/input_file.h"

namespace rapidnii::io {

// Raw value bytes of a top-level element, with DICOM padding (spaces, NULs)
// trimmed at both ends. Empty when absent.
std::string element_text(const gdcm::DataSet& ds, const gdcm::Tag& t);

// ASCII upper case (DICOM code strings; no locale).
inline std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

// Backslash-separated decimal numbers (DS/IS text); NaN for unparsable items.
std::vector<double> parse_numbers(const std::string& s);

// Nested data set of the first item of sequence `t` in `ds`, or null.
const gdcm::DataSet* first_item(const gdcm::DataSet* ds, const gdcm::Tag& t);

// A functional-group macro of a multi-frame object (PS3.3 C.7.6.16): the
// first item of sequence `t` in the shared functional groups, else in the
// first frame's; null when neither has it.
const gdcm::DataSet* functional_group(const gdcm::DataSet& ds, const gdcm::Tag& t);

// Numbers of an element that may be binary (FL/FD, `width` 4 or 8 bytes,
// private tags in implicit VR included) or text (DS/IS). Little endian only;
// empty when absent or not finite.
std::vector<double> element_values(const gdcm::DataSet& ds, const gdcm::Tag& t, size_t width);

// Values of a binary integer element of `width` bytes (2: SS/US, 4: SL/UL;
// `is_signed` for SS/SL; private ones in implicit VR are raw bytes), or of a
// text one (IS/DS). Little endian only; empty when absent (or a UL value
// beyond the int range).
std::vector<int> integer_values(const gdcm::DataSet& ds, const gdcm::Tag& t, size_t width, bool is_signed);

// Siemens XA's TimeAfterStart (0021,1104) in `ds` or, for a per-frame
// functional group item, in the sequences it holds (s; -1 when absent).
double siemens_time_after_start(const gdcm::DataSet& ds);

// The parsed Siemens CSA image header (0029,xx10 of "SIEMENS CSA HEADER");
// empty when absent.
std::map<std::string, std::vector<std::string>> siemens_image_csa(const gdcm::DataSet& ds);

// A file's header read by GDCM up to PixelData (the values of FloatPixelData
// and DoubleFloatPixelData, which come before it, skipped too). GDCM's
// partial read fails on some deflated files that it reads whole: those are
// read again, whole, by a fresh reader. Null when neither read works.
// `header_bytes`, when not empty, are the file's first bytes holding every
// element before PixelData (PrefixProbe::header_inside; they must outlive
// the result): the partial read parses them instead of reading the file.
struct HeaderRead {
  std::unique_ptr<std::istream> stream;
  std::unique_ptr<gdcm::Reader> reader;
};
HeaderRead read_header_gdcm(const InputFile& in, std::span<const uint8_t> header_bytes = {});

}  // namespace rapidnii::io
