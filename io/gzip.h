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

// A deflate compressor, its level and the size of the blocks it compresses
// in parallel.
//   IsaL:       levels 0..3 (ISA-L igzip; fastest, largest files)
//   Libdeflate: levels 0..12 (0 = stored only, 12 = slowest, smallest)
// block: ISA-L: bytes between two flushes (deflate blocks, each with its
// own Huffman codes; 0 = 128 KiB); libdeflate: bytes per parallel unit
// (0 = 4 MiB). Smaller ISA-L blocks adapt better to the data: they make
// ISA-L meet sizes that otherwise need libdeflate at 2-3 times the cost.
struct CompressionChoice {
  enum Engine : uint8_t { IsaL, Libdeflate };
  Engine engine = Libdeflate;
  int level = 6;
  uint32_t block = 0;
  friend bool operator==(const CompressionChoice&, const CompressionChoice&) = default;
};

// "isal-1", "isal-2/32k", "libdeflate-6": for summaries and logs (the block
// size only when it is not the default); parse_compression reads it back.
std::string to_string(CompressionChoice c);

// The parallel unit of a choice: the bytes each thread compresses at a time.
//  - ISA-L: 512 KiB (kIsalUnit; more when c.block is larger), one stream
//    primed with the 32 KiB before it and ended by a SYNC_FLUSH every
//    isal_flush_interval(c) bytes (c.block, default 128 KiB): each flush
//    closes a deflate block, so those bytes get Huffman codes of their own
//    while the history carries on. Measured on CT and MR volumes: 16-32 KiB
//    flushes are 0.3-3% smaller than 128 KiB ones, and within 0.1% of 16-32
//    KiB blocks each primed with its own 32 KiB dictionary, at 1.4-2.4 times
//    their speed (a dictionary is hashed once per 512 KiB, not per block).
//  - libdeflate: c.block, default 4 MiB (no dictionary: each unit restarts
//    with an empty window, which costs < 0.01% at this size).
inline constexpr size_t kIsalUnit = size_t{512} << 10;
size_t isal_flush_interval(CompressionChoice c);
size_t default_block_size(CompressionChoice c);

// Compresses the concatenation of `parts` into ONE gzip member (same header
// and trailer as gzip_compress) on up to `threads` threads:
//  - the input (the logical concatenation of the parts; nothing is copied
//    except a block that straddles two parts) is cut into blocks of
//    `block_size` bytes (0 = default_block_size(choice), which honours
//    choice.block);
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

// The same gzip member as gzip_compress_parallel_to, for input that arrives
// piece by piece (a 4D series converted a few time points at a time, within
// the memory budget): append() the input in any pieces, then finish(). The
// output bytes are identical to gzip_compress_parallel_to over the
// concatenation of the pieces (same blocks at the same offsets, same
// dictionaries, same final block), whatever the pieces and `threads`. At
// most (2 x threads + 1) blocks plus 32 KiB of input are held (copied), and
// whole blocks are compressed in parallel as soon as input follows them.
class GzipStream {
 public:
  GzipStream(CompressionChoice choice, int threads, size_t block_size, GzipSink sink);
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;
  void append(std::span<const std::byte> data);
  // Compresses what is left as the final block and writes the trailer;
  // returns the bytes given to the sink in all. Nothing may follow.
  uint64_t finish();
  uint64_t input_bytes() const { return consumed_ + (buf_.size() - history_); }

 private:
  void compress_ready(bool final);
  CompressionChoice choice_;
  int threads_;
  size_t block_;
  size_t batch_;  // blocks compressed together
  GzipSink sink_;
  std::vector<std::byte> buf_;  // [history (<= 32 KiB, ISA-L only)][input not yet compressed]
  size_t history_ = 0;
  uint64_t consumed_ = 0;  // input bytes compressed so far
  uint64_t written_ = 0;
  unsigned long crc_ = 0;
  bool finished_ = false;
};

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
// meaning of the old --level) | "libdeflate-<N>" | "isal-<N>" (0..3), the
// last two optionally with a block size: "isal-2/32k" (4k..1024k for ISA-L,
// 64k..64m for libdeflate, in KiB "k" or MiB "m"). Throws
// std::invalid_argument otherwise.
CompressionSetting parse_compression(std::string_view s);

// The candidates of a policy, fastest first (the order in which
// choose_compression tries them). Measured with one thread on CT and MR
// volumes of the benchmark archive (CPU MB/s; size against zlib -6):
//   isal-1        290-380  1.05-1.06    isal-2        300-370  1.02-1.03
//   isal-3        285-330  1.015-1.026  isal-3/64k    270-315  1.011-1.022
//   isal-3/32k    240-275  1.006-1.015  isal-3/16k    195-250  1.004-1.020
//   libdeflate-1  145-175  1.008-1.017  libdeflate-2   80-100  0.986-1.002
//   libdeflate-4..9 20-90  0.985-1.000
// (isal-0, 320-420 MB/s at 1.18-1.25, is never a candidate: it would pass
// only on a sample that misrepresents its volume.)
std::vector<CompressionChoice> policy_candidates(CompressionPolicy p);

// Typical single-thread speed of a compressor in MB/s (the table above;
// zlib -6: kZlibSpeed). Only relative values matter: choose_compression
// weighs the cost of a larger sample against the time a faster candidate
// would save, with these constants rather than timings, so that its choice
// stays a function of the bytes alone.
double typical_speed(CompressionChoice c);
inline constexpr double kZlibSpeed = 14;

// Picks, for this volume, the fastest candidate whose size on a sample of
// the volume, plus a margin, is within the policy's bound of zlib level 6
// on the same sample.
//  - Sample: pieces of 128 KiB (volumes of 64 MiB and more, and Fast) or
//    64 KiB, each compressed exactly as it is inside the real stream: zlib
//    primed with the 32 KiB before the piece (gzip -6 is one continuous
//    stream); ISA-L primed the same way and flushed every
//    isal_flush_interval bytes; libdeflate (4 MiB units, no dictionary) as
//    size(32 KiB before + piece) - size(32 KiB before). A piece judges an
//    ISA-L candidate only when it holds at least two of its flush intervals
//    (a 32 KiB piece makes 128 KiB blocks look up to 2% better than they
//    are): with 64 KiB pieces only the candidates flushing every 32 KiB or
//    less are tried.
//  - Pieces: 4 (Fast: 1, 2 from 256 MiB), placed by a two-dimensional
//    low-discrepancy sequence over (slice, position within the slice) when
//    `period` (bytes per slice) is given, so that they cover the rows of the
//    slices (a head in the middle rows, air in the others: two compressors'
//    ratios differ by 5% between them); over the volume otherwise. A
//    candidate that passes on its estimate but not with the margin gets a
//    larger sample (doubling, up to 1 MiB of pieces, 2 MiB from 256 MiB)
//    when that is worth it: the fastest candidate that passes with the
//    margin on the first sample is found first, and a faster one that
//    waits gets more pieces only when the time it would save on the whole
//    volume exceeds the cost of sampling the new pieces, both from
//    typical_speed (so growth is kept against libdeflate, 1.4-3x slower
//    than ISA-L, and skipped between two ISA-L variants 5-15% apart).
//  - Margin: 0.8% for 4 pieces, 0.6% for 8, 0.45% for 16; Fast 3% (its
//    bound is loose).
//    Measured on the 17 benchmark volumes, four pieces misjudge the whole
//    volume by -1.2..+1.3% at worst, typically +-0.4%: the margin makes a
//    size above the bound unlikely, not impossible.
//  - Below 1 MiB nothing is sampled (it would cost more than the best
//    choice saves): Default takes libdeflate-6 (0.985-0.995x zlib -6 on
//    every volume measured), Fast libdeflate-1.
//  - Reference: zlib -6; Fast takes libdeflate-4 instead (0.99-1.01x zlib
//    -6's size on the benchmark volumes, 3-4 times cheaper; its 3% margin
//    covers the difference).
// If no candidate passes, the one with the smallest estimate. Cost: the
// zlib -6 reference (14 MB/s) dominates: 19 ms (64 KiB pieces) to 37 ms
// (128 KiB) per volume for four pieces. The choice
// depends only on the bytes (sizes, never timings): it is deterministic and
// independent of `threads` (as in gzip_compress_parallel; the pieces are
// compressed in parallel).
// `period`: bytes per slice (0: unknown), for spreading the pieces over the
// rows of the slices. `applies_to`: the bytes the choice will compress when
// `voxels` is only a part of them (the first volumes of a large 4D series;
// 0: voxels.size()); it weighs what a larger sample could save.
CompressionChoice choose_compression(std::span<const std::byte> voxels, CompressionPolicy p, int threads = 1,
                                     size_t period = 0, uint64_t applies_to = 0);

// setting.fixed when set, else choose_compression(voxels, setting.policy).
CompressionChoice resolve_compression(const CompressionSetting& setting, std::span<const std::byte> voxels,
                                      int threads = 1, size_t period = 0, uint64_t applies_to = 0);

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
