// gzip (RFC 1952) compression through libdeflate.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace rapidnii::io {

// Compresses the concatenation of `parts` into ONE gzip member: header with
// FLG=0, MTIME=0, no file name, OS=255 (so the output is identical for
// identical input and carries no name or time), raw deflate body, CRC-32 and
// ISIZE trailer. `level` is libdeflate's (0..12); an invalid level throws
// std::invalid_argument. Small leading parts (e.g. a NIfTI header) in front of
// a large last part are written as stored deflate blocks so the last part is
// compressed in place without being copied; otherwise the parts are joined.
std::vector<uint8_t> gzip_compress(std::span<const std::span<const std::byte>> parts, int level);

}  // namespace rapidnii::io
