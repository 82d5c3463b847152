// Pixel data decoding through GDCM (every transfer syntax GDCM handles).
#pragma once
#include <cstddef>
#include <filesystem>
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

}  // namespace rapidnii::io
