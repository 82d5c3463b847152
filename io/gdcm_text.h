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

// Nested data set of the first item of sequence `t` in `ds`, or null.
const gdcm::DataSet* first_item(const gdcm::DataSet* ds, const gdcm::Tag& t);

// A functional-group macro of a multi-frame object (PS3.3 C.7.6.16): the
// first item of sequence `t` in the shared functional groups, else in the
// first frame's; null when neither has it.
const gdcm::DataSet* functional_group(const gdcm::DataSet& ds, const gdcm::Tag& t);

}  // namespace rapidnii::io
