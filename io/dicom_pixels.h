// Pixel data decoding through GDCM (every transfer syntax GDCM handles).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "io/dicom_header.h"

namespace rapidnii::io {

// Decodes the pixel data of one image (all expect.number_of_frames frames,
// one after the other) into `out`, which must hold
// frames*rows*cols*samples*(bits_allocated/8) bytes: raw stored values in
// native byte order (BitsStored masking and sign extension are left to the
// kernels). Returns false with a non-identifying reason on failure.
bool decode_pixels(const InputFile& in, const SliceHeader& expect, std::span<std::byte> out,
                   std::string& why);

// The pixel bytes of a native little-endian image where they lie in the
// input (memory-mapped; nothing copied), for callers that copy them straight
// into place (rows flipped into the volume). `bytes` is what the image must
// hold (frames x rows x cols x samples x bytes per sample).
//   Applied:   fn was called with exactly `bytes` bytes of pixel data;
//   NotNative: nothing done: the image must go through decode_pixels
//              (compressed or big-endian transfer syntax, pixel data the
//              structural walk did not find);
//   Failed:    the image is unusable (`why`: truncated pixel data, unreadable).
enum class NativeView { Applied, NotNative, Failed };
NativeView with_native_pixels(const InputFile& in, const SliceHeader& expect, size_t bytes,
                              const std::function<void(std::span<const std::byte>)>& fn, std::string& why);

// `length` bytes at `offset` within the pixel data of an image, to `dst`.
struct PixelPiece {
  uint64_t offset = 0;
  std::byte* dst = nullptr;
  size_t length = 0;
};

// The native little-endian pixel data of an image read straight into place:
// each piece (sorted by offset, inside the first `bytes` bytes) copied to its
// destination. A plain file is not mapped: its first bytes are read to find
// the pixel element, and the pieces after them go straight from the file
// into place with preadv (one copy, in the kernel; no page faults, no unmap
// and its TLB shootdown per file). Archive members, and files whose pixel
// element the first 256 KiB do not reach, are copied from memory
// (with_native_pixels). The same results as with_native_pixels.
NativeView read_native_pixels(const InputFile& in, const SliceHeader& expect, size_t bytes,
                              std::span<const PixelPiece> pieces, std::string& why);

}  // namespace rapidnii::io
