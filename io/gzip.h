// gzip (RFC 1952) compression: single-threaded libdeflate, and parallel
// block compression (ISA-L or libdeflate) joined into ONE gzip member, plus
// the per-volume choice of compressor and level.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rapidnii::io {

// Compresses the concatenation of `parts` into ONE gzip member: header with
// FLG=0, MTIME=0, no file name, OS=255 (so the output is identical for
// identical input and carries no name or time), raw deflate body, CRC-32 and
// ISIZE trailer. `level` is libdeflate's (0..12); an invalid level throws
// std::invalid_argument. Small leading parts (e.g. a NIfTI header) in front of
// a large last part are written as stored deflate blocks so the last part is
// compressed in place without being copied; otherwise the parts are joined.
// Single-threaded, one libdeflate call.
std::vector<uint8_t> gzip_compress(std::span<const std::span<const std::byte>> parts, int level);

// ------------------------------------------------------------ parallel gzip --

// A deflate compressor and its level.
//   IsaL:       levels 0..3 (ISA-L igzip; fastest, largest files)
//   Libdeflate: levels 0..12 (0 = stored only, 12 = slowest, smallest)
struct CompressionChoice {
  enum Engine : uint8_t { IsaL, Libdeflate };
  Engine engine = Libdeflate;
  int level = 6;
  friend bool operator==(const CompressionChoice&, const CompressionChoice&) = default;
};

// "isal-1", "libdeflate-6": for summaries and logs.
std::string to_string(CompressionChoice c);

// The deflate block size used when none is given: 128 KiB for ISA-L (each
// block is primed with the previous 32 KiB as its dictionary; measured on
// CT-like int16 data, 128 KiB blocks are ~1.2% smaller than one ISA-L stream
// and ~2% smaller than 1 MiB blocks, for 6% (levels 1-2) to 16% (level 3)
// more CPU than 1 MiB blocks), 4 MiB for libdeflate (no dictionary: each block
// restarts with an empty window, which costs < 0.01% at this size).
size_t default_block_size(CompressionChoice c);

// Compresses the concatenation of `parts` into ONE gzip member (same header
// and trailer as gzip_compress) on up to `threads` threads:
//  - the input (the logical concatenation of the parts; nothing is copied
//    except a block that straddles two parts) is cut into blocks of
//    `block_size` bytes (0 = default_block_size(choice));
//  - blocks are compressed independently in parallel; every block but the
//    last ends byte-aligned with an empty stored block (00 00 ff ff, as zlib's
//    Z_SYNC_FLUSH / pigz) and has its final-block bit clear; only the last
//    block is final. ISA-L blocks see the previous 32 KiB of input as a
//    preset dictionary. For libdeflate (which always ends its output with a
//    final block) the compressed block is parsed to find its last block
//    header, whose BFINAL bit is cleared, and the sync marker is appended;
//  - the per-block CRC-32s are combined into the one trailer.
// The output depends only on the input bytes, `choice` and `block_size`:
// never on `threads` or on scheduling. threads <= 0: run in the calling oneTBB
// arena (all its threads); threads == 1: on the calling thread only; threads
// > 1: in a oneTBB arena of that many threads. Throws std::invalid_argument
// for an invalid level and std::runtime_error if a compressor fails.
std::vector<uint8_t> gzip_compress_parallel(std::span<const std::span<const std::byte>> parts,
                                            CompressionChoice choice, int threads, size_t block_size = 0);

// Receives the gzip output piece by piece, in order (header, blocks, trailer).
using GzipSink = std::function<void(std::span<const uint8_t>)>;

// As gzip_compress_parallel, but streams the output to `sink` instead of
// returning it: blocks go through a oneTBB pipeline (read in order, compressed
// in parallel, handed to `sink` in order, on one thread at a time), with at
// most 2 x threads blocks in flight, so the compressed volume is never held
// whole. Returns the number of bytes given to `sink`. An exception thrown by
// `sink` stops the compression and propagates.
uint64_t gzip_compress_parallel_to(std::span<const std::span<const std::byte>> parts, CompressionChoice choice,
                                   int threads, size_t block_size, const GzipSink& sink);

// --------------------------------------------------------- choice of level --

// What the user asks for with `--compression`.
//   Fast:    output up to 1.15x the size of gzip -6 (zlib level 6), fastest.
//   Default: output up to 1.02x the size of gzip -6, fastest that meets it.
//   Small:   smallest reasonable (libdeflate level 9), no sampling.
enum class CompressionPolicy { Fast, Default, Small };

// Size bound of a policy relative to zlib level 6 (1.15, 1.02; Small: 0).
double policy_size_bound(CompressionPolicy p);

// `--compression` value: a policy, or an explicit compressor and level.
struct CompressionSetting {
  CompressionPolicy policy = CompressionPolicy::Default;
  std::optional<CompressionChoice> fixed;  // when set, used as is (no sampling)
};

// Parses "fast" | "default" | "small" | "<N>" (libdeflate level 0..12, the
// meaning of the old --level) | "libdeflate-<N>" | "isal-<N>" (0..3).
// Throws std::invalid_argument otherwise.
CompressionSetting parse_compression(std::string_view s);

// Picks, for this volume, the fastest candidate whose output on a sample of
// the data is within the policy's bound of zlib level 6 on the same sample.
// Candidates, fastest first: isal-0 (Fast only), isal-1, isal-2, isal-3,
// libdeflate-1 .. libdeflate-9; if none meets the bound, the smallest of them.
// Sample: the whole volume up to 1 MiB; above, about 1/256 of it (256 KiB to
// 2 MiB) in 32 KiB pieces spread over the volume, each measured in its
// context (zlib and ISA-L primed with the preceding 32 KiB, libdeflate as
// size(context + piece) - size(context)), so that small pieces estimate what
// they cost inside the real stream. A margin of 1% is kept below the bound
// for the difference between the sample and the whole volume. The choice
// depends only on the bytes (sizes, never timings): it is deterministic.
// Cost (CPU, measured on a 2-core machine): the zlib -6 reference dominates;
// 26 ms for a 32 MiB volume (9% of compressing it at libdeflate-2), about 5%
// for volumes of 64 MiB and more, relatively more below 32 MiB (the sample is
// at least 256 KiB): for a series of many small volumes choose once and pass
// the choice as CompressionSetting::fixed for the others.
// `threads` as in gzip_compress_parallel: the reference and the first
// candidates run concurrently when more than one thread is given.
CompressionChoice choose_compression(std::span<const std::byte> voxels, CompressionPolicy p, int threads = 1);

// setting.fixed when set, else choose_compression(voxels, setting.policy).
CompressionChoice resolve_compression(const CompressionSetting& setting, std::span<const std::byte> voxels,
                                      int threads = 1);

// ----------------------------------------------------- building blocks --
// Exposed for tests and benchmarks.

// Raw deflate of `data` by one compressor as ONE complete stream (final
// block set), single-threaded: its size in bytes. Engine "zlib" is not a
// CompressionChoice; use zlib_deflate_size for the gzip -6 reference.
size_t deflate_size(std::span<const std::byte> data, CompressionChoice c);

// Size of zlib's raw deflate output of `data` at `level` (memLevel 8, 32 KiB
// window: what gzip/pigz -N produce, without the 18 bytes of gzip framing).
size_t zlib_deflate_size(std::span<const std::byte> data, int level = 6);

}  // namespace rapidnii::io
