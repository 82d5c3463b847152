// gzip (RFC 1952) single-member compression on top of libdeflate.
//
// libdeflate compresses one contiguous buffer per call (no streaming). The
// usual call is gzip_compress({header, voxels}): a few hundred header bytes
// followed by a large voxel span. Rather than copying the voxel span into a
// new buffer just to prepend the header, small leading parts are emitted as
// uncompressed deflate "stored" blocks (RFC 1951 section 3.2.4, BFINAL=0),
// and the last part is compressed by libdeflate as the remainder of the same
// deflate stream. A deflate stream is simply a sequence of blocks, each
// starting where the previous one ended; a stored block ends on a byte
// boundary, so libdeflate's output (which starts on a byte boundary) can follow
// it directly. The result is one valid gzip member. When the leading parts are
// large, or the last part is small, the parts are concatenated and compressed
// together instead (better ratio, and the copy is cheap or unavoidable).
#include "io/gzip.h"

#include <libdeflate.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace rapidnii::io {
namespace {

// Leading parts of at most this many bytes in total are stored uncompressed...
constexpr size_t kMaxStoredPrefix = 64 * 1024;
// ...but only when the last part is at least this large (otherwise copying is
// negligible and compressing everything together gives a smaller file).
constexpr size_t kMinBodyForStoredPrefix = 1024 * 1024;
// Maximum payload of one deflate stored block (LEN is 16 bits).
constexpr size_t kMaxStoredBlock = 65535;

constexpr uint8_t kGzipHeader[10] = {
    0x1f, 0x8b,              // ID1 ID2
    0x08,                    // CM = deflate
    0x00,                    // FLG: no FTEXT/FHCRC/FEXTRA/FNAME/FCOMMENT
    0x00, 0x00, 0x00, 0x00,  // MTIME = 0 (no time stamp)
    0x00,                    // XFL
    0xff,                    // OS = unknown
};

struct CompressorDeleter {
  void operator()(libdeflate_compressor* c) const noexcept { libdeflate_free_compressor(c); }
};
using CompressorPtr = std::unique_ptr<libdeflate_compressor, CompressorDeleter>;

// One compressor per thread, re-allocated only when the level changes
// (allocation at high levels costs a few MB and is not free).
libdeflate_compressor* compressor_for_level(int level) {
  thread_local CompressorPtr cached;
  thread_local int cached_level = -1;
  if (!cached || cached_level != level) {
    cached.reset();
    cached_level = -1;
    libdeflate_compressor* c = libdeflate_alloc_compressor(level);
    if (c == nullptr) {
      throw std::invalid_argument("gzip_compress: invalid compression level or out of memory");
    }
    cached.reset(c);
    cached_level = level;
  }
  return cached.get();
}

void put_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

}  // namespace

std::vector<uint8_t> gzip_compress(std::span<const std::span<const std::byte>> parts, int level) {
  libdeflate_compressor* comp = compressor_for_level(level);

  uint64_t total = 0;
  uint32_t crc = 0;
  for (const auto& p : parts) {
    total += p.size();
    // Skip empty parts: libdeflate_crc32(crc, NULL, 0) returns the initial
    // value 0 rather than `crc`, and an empty span may have a null data().
    if (!p.empty()) crc = libdeflate_crc32(crc, p.data(), p.size());
  }

  const size_t nparts = parts.size();
  size_t prefix_bytes = 0;
  for (size_t i = 0; i + 1 < nparts; ++i) prefix_bytes += parts[i].size();
  // With empty leading parts this is trivially true (no stored block emitted).
  const bool stored_prefix =
      nparts >= 2 && (prefix_bytes == 0 || (prefix_bytes <= kMaxStoredPrefix &&
                                            parts[nparts - 1].size() >= kMinBodyForStoredPrefix));

  // The data handed to libdeflate in one call.
  std::span<const std::byte> body;
  std::vector<std::byte> joined;
  if (nparts == 0) {
    body = {};
  } else if (nparts == 1 || stored_prefix) {
    body = parts[nparts - 1];
  } else {
    joined.reserve(static_cast<size_t>(total));
    for (const auto& p : parts) joined.insert(joined.end(), p.begin(), p.end());
    body = joined;
  }

  size_t stored_bytes = 0;  // stored-block headers + payload
  if (stored_prefix) {
    for (size_t i = 0; i + 1 < nparts; ++i) {
      const size_t n = parts[i].size();
      stored_bytes += n + 5 * ((n + kMaxStoredBlock - 1) / kMaxStoredBlock);
    }
  }

  const size_t bound = libdeflate_deflate_compress_bound(comp, body.size());
  std::vector<uint8_t> out(sizeof(kGzipHeader) + stored_bytes + bound + 8);
  std::memcpy(out.data(), kGzipHeader, sizeof(kGzipHeader));
  size_t pos = sizeof(kGzipHeader);

  if (stored_prefix) {
    for (size_t i = 0; i + 1 < nparts; ++i) {
      const auto* src = reinterpret_cast<const uint8_t*>(parts[i].data());
      size_t left = parts[i].size();
      while (left > 0) {
        const size_t n = left < kMaxStoredBlock ? left : kMaxStoredBlock;
        const auto len = static_cast<uint16_t>(n);
        const auto nlen = static_cast<uint16_t>(~len);
        out[pos++] = 0x00;  // BFINAL=0, BTYPE=00 (stored), then pad to byte boundary
        out[pos++] = static_cast<uint8_t>(len);
        out[pos++] = static_cast<uint8_t>(len >> 8);
        out[pos++] = static_cast<uint8_t>(nlen);
        out[pos++] = static_cast<uint8_t>(nlen >> 8);
        std::memcpy(out.data() + pos, src, n);
        pos += n;
        src += n;
        left -= n;
      }
    }
  }

  const size_t csize = libdeflate_deflate_compress(comp, body.data(), body.size(), out.data() + pos,
                                                   out.size() - pos - 8);
  if (csize == 0) {
    // Cannot happen with a buffer of compress_bound bytes.
    throw std::runtime_error("gzip_compress: deflate output exceeded its bound");
  }
  pos += csize;
  put_le32(out.data() + pos, crc);
  put_le32(out.data() + pos + 4, static_cast<uint32_t>(total));  // ISIZE = size mod 2^32
  pos += 8;
  out.resize(pos);
  return out;
}

}  // namespace rapidnii::io
