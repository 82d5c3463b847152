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

// The numbers of the ASCCONV protocol text ("### ASCCONV BEGIN" ... "###
// ASCCONV END", lines "key = value") that a Siemens CSA series header
// (0029,xx20) holds in MrPhoenixProtocol, for the keys in `wanted` only
// (the text also holds names typed at the console). Hex values (0x4) are
// read as hex; unparsable values and absent keys are left out.
std::map<std::string, double> ascconv_numbers(std::span<const uint8_t> block, const std::vector<std::string>& wanted);

// Slice acquisition times (ms from the start of the volume, slice k as the
// protocol numbers it: sSliceArray.asSlice[k]) estimated from a Siemens
// protocol, as dcm2niix does for mosaics that store none: the slices spread
// evenly over TR minus lDelayTimeInTR, in the order sSliceArray.ucMode names
// (0x1 ascending, 0x2 descending, 0x4 interleaved: with an odd count the
// even-numbered slices first, 0, 2, 4..., with an even count the odd ones
// first, 1, 3, 5...). Empty (no estimate) unless every input is known and
// plain: `slices` >= 2 and equal to sSliceArray.lSize, one concatenation,
// no multiband and no reversed image numbering, 0 <= delay < TR.
std::vector<double> siemens_protocol_slice_times_ms(const std::map<std::string, double>& ascconv, double tr_ms,
                                                    int slices);

}  // namespace rapidnii::io
