// A structural pre-check of a DICOM file, run before GDCM sees it.
//
// Debian's GDCM is built with assertions: some truncated or malformed files
// make it abort the whole process. This walker checks that every element up
// to PixelData (sequences and items included) lies inside the file and is
// well formed, so that such files are reported and skipped instead.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace rapidnii::io {

enum class ProbeResult : uint8_t {
  Ok,         // structure sound up to PixelData (or the end)
  NotDicom,   // no DICM preamble and no recognisable data set
  Truncated,  // an element runs past the end of the file
  TruncatedPixels,  // the PixelData element runs past the end of the file
  Malformed,  // impossible VR, length or nesting
};

ProbeResult probe_dicom_bytes(std::span<const uint8_t> bytes);

// Where the PixelData value lies, for a structurally sound file in a native
// (uncompressed, not deflated) transfer syntax: the decoder then copies the
// bytes straight from the file, without a full parse.
struct NativePixels {
  bool found = false;
  uint16_t element = 0;  // 0x0010 PixelData, 0x0008 FloatPixelData, 0x0009 DoubleFloatPixelData
  bool big_endian = false;
  uint64_t offset = 0, length = 0;
};
NativePixels find_native_pixels(std::span<const uint8_t> bytes);
// The same from the first bytes of a file of `file_size` bytes, for reading
// the pixels without mapping the file: the PixelData value may run past the
// prefix (up to the end of the file). Not found when anything before it lies
// outside the prefix, or when the pixels are FloatPixelData /
// DoubleFloatPixelData (the full walk decides those).
NativePixels find_native_pixels_in_prefix(std::span<const uint8_t> prefix, uint64_t file_size);
// The walk over the first bytes of a file of `file_size` bytes (the
// PixelData length checked against file_size), for checking a file without
// mapping it. `decided`: result and px are what the walk over the whole file
// gives (the prefix is the whole file, it reaches the PixelData element
// header, the PixelData value is longer than the file, or the data set is
// deflated); `header_inside`: everything before
// PixelData lies in the prefix (a parser may read the header from it alone).
struct PrefixProbe {
  bool decided = false, header_inside = false;
  ProbeResult result = ProbeResult::NotDicom;
  NativePixels px;
};
PrefixProbe probe_dicom_prefix(std::span<const uint8_t> prefix, uint64_t file_size);
// Both at once (one walk): the structure check and the pixel element.
ProbeResult probe_dicom_bytes(std::span<const uint8_t> bytes, NativePixels& px);

}  // namespace rapidnii::io
