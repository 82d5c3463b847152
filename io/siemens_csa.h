// A bounds-checked reader of Siemens CSA headers (private (0029,xx10)).
// GDCM's CSAHeader aborts on malformed blocks (found by the fuzzer), so
// rapidnii reads the few numbers it needs itself. Nothing read here is ever
// written out as text.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace rapidnii::io {

// Element name -> its items (text, trailing NULs and spaces removed).
// Malformed or truncated blocks give the elements read so far.
std::map<std::string, std::vector<std::string>> parse_siemens_csa(std::span<const uint8_t> block);

// The items of element `name` read as numbers (unparsable items left out).
std::vector<double> csa_numbers(const std::map<std::string, std::vector<std::string>>& csa, const std::string& name);

}  // namespace rapidnii::io
