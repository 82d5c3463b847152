// Small helpers to read DICOM element values as text through GDCM.
#pragma once
#include <gdcmDataSet.h>
#include <gdcmTag.h>

#include <string>
#include <vector>

namespace rapidnii::io {

// Raw value bytes of a top-level element, with DICOM padding (spaces, NULs)
// trimmed at both ends. Empty when absent.
std::string element_text(const gdcm::DataSet& ds, const gdcm::Tag& t);

// Backslash-separated decimal numbers (DS/IS text); NaN for unparsable items.
std::vector<double> parse_numbers(const std::string& s);

}  // namespace rapidnii::io
