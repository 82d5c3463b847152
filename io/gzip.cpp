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

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
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

// =========================================================== parallel gzip ==
//
// Blocks are compressed independently and joined into one deflate stream the
// way pigz does it: a non-final block is a deflate fragment that ends on a
// byte boundary, so the fragments can be concatenated as bytes.
//  - ISA-L does this natively: end_of_stream = 0 with SYNC_FLUSH ends the
//    fragment with an empty stored block and no final bit; the previous
//    32 KiB are given as a dictionary so matches can reach across blocks.
//  - libdeflate always terminates its output with a final block and has no
//    flush, no streaming and no dictionary (its README: no streaming support;
//    the maintainer declined it). Its output is therefore walked block by
//    block (a deflate parser that decodes the Huffman symbols without
//    producing output) to find the header of its last block and the bit
//    where that block ends; the BFINAL bit is cleared and an empty stored
//    block appended, exactly what Z_SYNC_FLUSH would have written.

namespace {

// --------------------------------------------------------- deflate walker --

// LSB-first bit reader holding 56..63 bits in a register after each refill
// (the branchless refill of libdeflate's decompressor: load 8 bytes, keep the
// whole bytes that fit). The buffer must have >= 16 readable bytes past the
// end of the stream (the caller zero-pads).
struct BitReader {
  const uint8_t* start;
  const uint8_t* in;
  uint64_t buf = 0;
  unsigned cnt = 0;
  explicit BitReader(const uint8_t* p) : start(p), in(p) { refill(); }
  void refill() {
    uint64_t w;
    std::memcpy(&w, in, 8);
    buf |= w << cnt;
    in += (63 - cnt) >> 3;
    cnt |= 56;
  }
  size_t pos() const { return static_cast<size_t>(in - start) * 8 - cnt; }
  void seek(size_t bit) {
    in = start + bit / 8;
    buf = 0;
    cnt = 0;
    refill();
    consume(static_cast<unsigned>(bit % 8));
  }
  uint64_t peek() const { return buf; }
  void consume(unsigned n) {
    buf >>= n;
    cnt -= n;
  }
  // n <= 32 bits; refills first when fewer are held.
  uint32_t bits(unsigned n) {
    if (cnt < n) refill();
    const auto v = static_cast<uint32_t>(buf & ((uint64_t{1} << n) - 1));
    consume(n);
    return v;
  }
};

[[noreturn]] void walk_error() { throw std::runtime_error("gzip: internal error parsing a deflate block"); }

constexpr uint8_t kLenExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                   2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

// Canonical Huffman decoder for walking a deflate stream: only where each
// symbol ends matters, not its value. A table indexed by the next kFastBits
// input bits (codes appear bit-reversed, LSB first) gives, for every code of
// at most kFastBits bits, the bits to skip: the code plus, for a length or
// distance symbol, its extra bits. Longer (rare) codes take the slow path,
// decoded bit by bit from the code-length counts. Tables are small (8 KiB)
// so they stay in L1 and are cheap to rebuild for every block.
struct HuffTable {
  enum Kind { CodeLengths, LitLen, Dist };
  static constexpr unsigned kFastBits = 11;
  // Entry: bits 0-7 bits to skip; flags; symbol in bits 16-31.
  static constexpr uint32_t kMatch = 1u << 8;  // length symbol (LitLen)
  static constexpr uint32_t kEob = 1u << 9;    // end of block (LitLen)
  static constexpr uint32_t kSlow = 1u << 10;  // no fast entry: slow path
  static constexpr uint32_t kBad = 1u << 11;   // symbol that must not occur
  Kind kind = CodeLengths;
  uint32_t fast[1u << kFastBits];
  uint16_t count[16];    // number of codes of each length
  uint16_t symbol[320];  // symbols in canonical order

  uint32_t entry_for(unsigned sym, unsigned len) const {
    uint32_t e = len | sym << 16;
    if (kind == LitLen) {
      if (sym == 256) e |= kEob;
      else if (sym > 285) e |= kBad;
      else if (sym > 256) e = (e + kLenExtra[sym - 257]) | kMatch;
    } else if (kind == Dist) {
      if (sym > 29) e |= kBad;
      else e += kDistExtra[sym];
    }
    return e;
  }

  void build(const uint8_t* lens, unsigned n, Kind k) {
    kind = k;
    std::fill(std::begin(count), std::end(count), uint16_t{0});
    for (unsigned i = 0; i < n; ++i) count[lens[i]]++;
    count[0] = 0;
    uint16_t offs[16];
    offs[1] = 0;
    for (unsigned l = 1; l < 15; ++l) offs[l + 1] = static_cast<uint16_t>(offs[l] + count[l]);
    for (unsigned sym = 0; sym < n; ++sym)
      if (lens[sym]) symbol[offs[lens[sym]]++] = static_cast<uint16_t>(sym);
    std::fill(std::begin(fast), std::end(fast), kSlow);
    unsigned code = 0, idx = 0;
    for (unsigned l = 1; l <= 15; ++l) {
      for (unsigned j = 0; j < count[l]; ++j, ++code, ++idx) {
        if (code >= (1u << l)) walk_error();  // over-subscribed
        if (l > kFastBits) continue;
        unsigned r = 0;
        for (unsigned b = 0; b < l; ++b) r |= ((code >> b) & 1u) << (l - 1 - b);
        const uint32_t e = entry_for(symbol[idx], l);
        for (unsigned f = r; f < (1u << kFastBits); f += 1u << l) fast[f] = e;
      }
      code <<= 1;
    }
  }

  // Decodes one code (slow path included) and skips it and its extra bits;
  // returns the table entry of the symbol. At most 15 + 13 bits are read.
  uint32_t decode_skip(BitReader& br) const {
    uint32_t e = fast[br.peek() & ((1u << kFastBits) - 1)];
    if (e & kSlow) e = slow_entry(br.peek());
    if (e & kBad) walk_error();
    br.consume(e & 0xffu);
    return e;
  }
  // Canonical decoding one bit at a time (codes are sent MSB first).
  uint32_t slow_entry(uint64_t bits) const {
    int code = 0, first = 0, index = 0;
    for (unsigned l = 1; l <= 15; ++l) {
      code |= static_cast<int>((bits >> (l - 1)) & 1u);
      const int c = count[l];
      if (code - first < c) return entry_for(symbol[index + code - first], l);
      index += c;
      first = (first + c) << 1;
      code <<= 1;
    }
    walk_error();
  }
};

struct WalkResult {
  size_t final_header_bit;  // position of the BFINAL bit of the last block
  size_t end_bit;           // first bit after the last block
};

// Walks a complete raw deflate stream of `nbytes` bytes (followed by >= 24
// zero bytes) and returns where its final block starts and ends.
WalkResult walk_deflate(const uint8_t* data, size_t nbytes) {
  static const auto fixed = [] {
    auto t = std::make_unique<std::array<HuffTable, 2>>();
    uint8_t l[288];
    for (int i = 0; i < 144; ++i) l[i] = 8;
    for (int i = 144; i < 256; ++i) l[i] = 9;
    for (int i = 256; i < 280; ++i) l[i] = 7;
    for (int i = 280; i < 288; ++i) l[i] = 8;
    (*t)[0].build(l, 288, HuffTable::LitLen);
    uint8_t d[30];
    std::fill(d, d + 30, uint8_t{5});
    (*t)[1].build(d, 30, HuffTable::Dist);
    return t;
  }();
  thread_local const auto tables = std::make_unique<std::array<HuffTable, 3>>();
  HuffTable& dyn_lit = (*tables)[0];
  HuffTable& dyn_dist = (*tables)[1];
  HuffTable& dyn_cl = (*tables)[2];

  const size_t limit = nbytes * 8;
  const uint8_t* const in_limit = data + nbytes + 8;  // refill never reads past +16
  BitReader br(data);
  for (;;) {
    br.refill();
    const size_t header = br.pos();
    if (header + 3 > limit) walk_error();
    const bool final_block = br.bits(1) != 0;
    const unsigned type = br.bits(2);
    if (type == 0) {
      const size_t at = (br.pos() + 7) & ~size_t{7};
      if (at + 32 > limit) walk_error();
      br.seek(at);
      const uint32_t len = br.bits(16);
      const uint32_t nlen = br.bits(16);
      if ((len ^ 0xffffu) != nlen) walk_error();
      if (at + 32 + size_t{len} * 8 > limit) walk_error();
      br.seek(at + 32 + size_t{len} * 8);
    } else if (type == 3) {
      walk_error();
    } else {
      const HuffTable* lit = &(*fixed)[0];
      const HuffTable* dist = &(*fixed)[1];
      if (type == 2) {
        const unsigned hlit = br.bits(5) + 257, hdist = br.bits(5) + 1, hclen = br.bits(4) + 4;
        static constexpr uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
        uint8_t cl[19] = {};
        for (unsigned i = 0; i < hclen; ++i) cl[order[i]] = static_cast<uint8_t>(br.bits(3));
        dyn_cl.build(cl, 19, HuffTable::CodeLengths);
        uint8_t lens[288 + 32] = {};
        unsigned i = 0;
        while (i < hlit + hdist) {
          br.refill();
          if (br.in > in_limit) walk_error();
          const unsigned sym = dyn_cl.decode_skip(br) >> 16;
          unsigned rep = 0;
          uint8_t val = 0;
          if (sym < 16) {
            lens[i++] = static_cast<uint8_t>(sym);
            continue;
          } else if (sym == 16) {
            if (i == 0) walk_error();
            val = lens[i - 1];
            rep = 3 + br.bits(2);
          } else if (sym == 17) {
            rep = 3 + br.bits(3);
          } else {
            rep = 11 + br.bits(7);
          }
          if (i + rep > hlit + hdist) walk_error();
          std::fill(lens + i, lens + i + rep, val);
          i += rep;
        }
        dyn_lit.build(lens, hlit, HuffTable::LitLen);
        dyn_dist.build(lens + hlit, hdist, HuffTable::Dist);
        lit = &dyn_lit;
        dist = &dyn_dist;
      }
      // One symbol per iteration, without a data-dependent branch between
      // literals and matches (those mispredict): the distance table is always
      // looked up and its bits skipped only for a match. After a refill at
      // least 56 bits are held; a symbol takes at most 15 + 5 + 15 + 13 = 48.
      constexpr uint32_t kMask = (1u << HuffTable::kFastBits) - 1;
      for (;;) {
        br.refill();
        if (br.in > in_limit) walk_error();
        const uint32_t e = lit->fast[br.buf & kMask];
        if (e & (HuffTable::kSlow | HuffTable::kEob | HuffTable::kBad)) [[unlikely]] {
          const uint32_t f = lit->decode_skip(br);
          if (f & HuffTable::kEob) break;
          if (f & HuffTable::kMatch) dist->decode_skip(br);
          continue;
        }
        br.consume(e & 0xffu);
        const uint32_t d = dist->fast[br.buf & kMask];
        if ((e & HuffTable::kMatch) && (d & (HuffTable::kSlow | HuffTable::kBad))) [[unlikely]] {
          dist->decode_skip(br);
          continue;
        }
        br.consume((e & HuffTable::kMatch) ? (d & 0xffu) : 0u);
      }
    }
    if (br.pos() > limit) walk_error();
    if (final_block) return {header, br.pos()};
  }
}

// Appends an empty stored block (BFINAL=0) after a stream that ends at bit
// `end_bit` of `out` (whose unused bits are zero): the 3 header bits go into
// the padding of the last byte when they fit, else into a new zero byte; then
// LEN=0000, NLEN=ffff. Returns the new byte length.
size_t append_sync_marker(uint8_t* out, size_t end_bit) {
  size_t n = (end_bit + 7) / 8;
  const unsigned pad = static_cast<unsigned>((8 - end_bit % 8) % 8);
  if (pad < 3) out[n++] = 0x00;
  out[n++] = 0x00;
  out[n++] = 0x00;
  out[n++] = 0xff;
  out[n++] = 0xff;
  return n;
}

// ------------------------------------------------------------ compressors --

struct LibdeflateCache {
  std::array<CompressorPtr, 13> by_level;
  libdeflate_compressor* get(int level) {
    if (level < 0 || level > 12) throw std::invalid_argument("gzip: libdeflate level must be 0..12");
    auto& c = by_level[static_cast<size_t>(level)];
    if (!c) {
      c.reset(libdeflate_alloc_compressor(level));
      if (!c) throw std::invalid_argument("gzip: cannot allocate libdeflate compressor");
    }
    return c.get();
  }
};
LibdeflateCache& libdeflate_cache() {
  thread_local LibdeflateCache cache;
  return cache;
}

struct IsalState {
  isal_zstream stream;
  std::vector<uint8_t> level_buf;
};
IsalState& isal_state() {
  thread_local std::unique_ptr<IsalState> s;
  if (!s) s = std::make_unique<IsalState>();
  return *s;
}

uint32_t isal_level_buf_size(int level) {
  switch (level) {
    case 0: return ISAL_DEF_LVL0_DEFAULT;
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    case 3: return ISAL_DEF_LVL3_DEFAULT;
  }
  throw std::invalid_argument("gzip: ISA-L level must be 0..3");
}

void validate(CompressionChoice c) {
  if (c.engine == CompressionChoice::IsaL) {
    (void)isal_level_buf_size(c.level);
  } else if (c.engine == CompressionChoice::Libdeflate) {
    if (c.level < 0 || c.level > 12) throw std::invalid_argument("gzip: libdeflate level must be 0..12");
  } else {
    throw std::invalid_argument("gzip: unknown compressor");
  }
}

// Compresses one block into `out` (replaced). `final_block`: ends the deflate
// stream; otherwise the output is a byte-aligned fragment without BFINAL.
// `dict`: the input preceding the block (ISA-L only; ignored by libdeflate).
// The compressor writes into a per-thread buffer that is reused (no zeroing,
// no page faults per block); only the compressed bytes are copied out.
void compress_block(std::span<const std::byte> in, std::span<const std::byte> dict, CompressionChoice c,
                    bool final_block, std::vector<uint8_t>& out) {
  thread_local std::vector<uint8_t> buf;
  auto ensure = [](size_t n) {
    if (buf.size() < n) buf.resize(n);
  };
  const auto* src = reinterpret_cast<const uint8_t*>(in.data());
  if (c.engine == CompressionChoice::Libdeflate) {
    libdeflate_compressor* comp = libdeflate_cache().get(c.level);
    const size_t bound = libdeflate_deflate_compress_bound(comp, in.size());
    ensure(bound + 32);
    size_t n = libdeflate_deflate_compress(comp, src, in.size(), buf.data(), bound);
    if (n == 0) throw std::runtime_error("gzip: deflate output exceeded its bound");
    if (!final_block) {
      std::memset(buf.data() + n, 0, 24);  // the walker reads up to 16 bytes ahead
      const WalkResult w = walk_deflate(buf.data(), n);
      if ((w.end_bit + 7) / 8 != n) walk_error();
      buf[w.final_header_bit / 8] &= static_cast<uint8_t>(~(1u << (w.final_header_bit % 8)));
      n = append_sync_marker(buf.data(), w.end_bit);
    }
    out.assign(buf.data(), buf.data() + n);
    return;
  }

  // ISA-L: one stream over the block, primed with the dictionary, ended by
  // a SYNC_FLUSH every `flush` bytes: each flush closes a deflate block, so
  // every `flush` bytes get Huffman codes of their own, while the history
  // carries on (no dictionary to hash again, unlike separate blocks).
  IsalState& st = isal_state();
  const uint32_t lbs = isal_level_buf_size(c.level);
  if (st.level_buf.size() < lbs) st.level_buf.resize(lbs);
  isal_zstream& s = st.stream;
  isal_deflate_init(&s);
  s.level = static_cast<uint32_t>(c.level);
  s.level_buf = lbs ? st.level_buf.data() : nullptr;
  s.level_buf_size = lbs;
  s.gzip_flag = IGZIP_DEFLATE;
  if (!dict.empty()) {
    // ISA-L copies the dictionary into its own history; it does not write it.
    auto* d = const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(dict.data()));
    if (isal_deflate_set_dict(&s, d, static_cast<uint32_t>(dict.size())) != COMP_OK)
      throw std::runtime_error("gzip: ISA-L rejected the dictionary");
  }
  ensure(in.size() + in.size() / 8 + 1024);
  size_t used = 0;
  const size_t flush = isal_flush_interval(c);
  size_t at = 0;
  do {
    const size_t len = std::min(flush, in.size() - at);
    const bool last = at + len == in.size();
    s.next_in = const_cast<uint8_t*>(src + at);
    s.avail_in = static_cast<uint32_t>(len);
    s.end_of_stream = final_block && last ? 1 : 0;
    s.flush = final_block && last ? NO_FLUSH : SYNC_FLUSH;
    for (int iter = 0;; ++iter) {
      if (iter > 10000) throw std::runtime_error("gzip: ISA-L made no progress");
      if (used == buf.size()) buf.resize(buf.size() * 2);
      s.next_out = buf.data() + used;
      s.avail_out = static_cast<uint32_t>(std::min<size_t>(buf.size() - used, UINT32_MAX));
      const uint32_t before = s.avail_out;
      const int rc = isal_deflate(&s);
      if (rc != COMP_OK) throw std::runtime_error("gzip: ISA-L deflate failed (" + std::to_string(rc) + ")");
      used += before - s.avail_out;
      if (s.avail_in != 0 || s.avail_out == 0) continue;
      if (s.end_of_stream ? s.internal_state.state == ZSTATE_END : s.internal_state.state == ZSTATE_NEW_HDR) break;
    }
    at += len;
  } while (at < in.size());
  out.assign(buf.data(), buf.data() + used);
}

// The logical concatenation of the parts, read by byte ranges without copying
// where a range lies inside one part.
class Concat {
 public:
  explicit Concat(std::span<const std::span<const std::byte>> parts) : parts_(parts) {
    starts_.reserve(parts.size() + 1);
    uint64_t t = 0;
    for (const auto& p : parts) {
      starts_.push_back(t);
      t += p.size();
    }
    starts_.push_back(t);
    total_ = t;
  }
  uint64_t size() const { return total_; }
  // [begin, end) as one span: a view into a part, or copied into `scratch`.
  std::span<const std::byte> range(uint64_t begin, uint64_t end, std::vector<std::byte>& scratch) const {
    if (begin == end) return {};
    // Part holding `begin`: the last part starting at or before it that is non-empty.
    size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end() - 1, begin) - starts_.begin()) - 1;
    while (parts_[i].size() == 0 || starts_[i] + parts_[i].size() <= begin) ++i;
    if (end <= starts_[i] + parts_[i].size()) {
      return parts_[i].subspan(static_cast<size_t>(begin - starts_[i]), static_cast<size_t>(end - begin));
    }
    scratch.resize(static_cast<size_t>(end - begin));
    size_t w = 0;
    uint64_t at = begin;
    while (at < end) {
      const uint64_t off = at - starts_[i];
      const uint64_t take = std::min<uint64_t>(parts_[i].size() - off, end - at);
      if (take != 0) std::memcpy(scratch.data() + w, parts_[i].data() + off, static_cast<size_t>(take));
      w += static_cast<size_t>(take);
      at += take;
      ++i;
    }
    return scratch;
  }

 private:
  std::span<const std::span<const std::byte>> parts_;
  std::vector<uint64_t> starts_;
  uint64_t total_ = 0;
};

uint32_t crc32_of(std::span<const std::byte> s) {
  return s.empty() ? 0u : libdeflate_crc32(0, s.data(), s.size());
}

// Runs f() in the calling arena (threads <= 0) or in an arena of `threads`.
template <class F>
void in_arena(int threads, F&& f) {
  if (threads <= 0) {
    f();
  } else {
    tbb::task_arena arena(threads);
    arena.execute(f);
  }
}

// One compressed block on its way to the sink.
struct BlockSlot {
  std::vector<uint8_t> out;
  uint32_t crc = 0;
  uint64_t len = 0;
};

}  // namespace

namespace {
// What CompressionChoice::block means when it is 0.
size_t engine_block_size(CompressionChoice::Engine e) {
  return e == CompressionChoice::IsaL ? size_t{128} << 10 : size_t{4} << 20;
}
}  // namespace

size_t isal_flush_interval(CompressionChoice c) {
  return c.block != 0 ? c.block : engine_block_size(CompressionChoice::IsaL);
}

std::string to_string(CompressionChoice c) {
  std::string s = (c.engine == CompressionChoice::IsaL ? "isal-" : "libdeflate-") + std::to_string(c.level);
  if (c.block != 0 && c.block != engine_block_size(c.engine)) {
    if (c.block % (1u << 20) == 0) s += "/" + std::to_string(c.block >> 20) + "m";
    else if (c.block % 1024 == 0) s += "/" + std::to_string(c.block >> 10) + "k";
    else s += "/" + std::to_string(c.block);
  }
  return s;
}

size_t default_block_size(CompressionChoice c) {
  if (c.engine == CompressionChoice::IsaL) return std::max<size_t>(kIsalUnit, isal_flush_interval(c));
  return c.block != 0 ? c.block : engine_block_size(c.engine);
}

uint64_t gzip_compress_parallel_to(std::span<const std::span<const std::byte>> parts, CompressionChoice choice,
                                   int threads, size_t block_size, const GzipSink& sink) {
  validate(choice);
  if (block_size == 0) block_size = default_block_size(choice);
  // ISA-L counts input in 32 bits; keep blocks far below that.
  block_size = std::min<size_t>(block_size, size_t{1} << 30);
  const Concat in(parts);
  const uint64_t total = in.size();
  const size_t nblocks = total == 0 ? 1 : static_cast<size_t>((total + block_size - 1) / block_size);
  constexpr size_t kDict = 32 * 1024;

  auto compress = [&](size_t b, BlockSlot& slot) {
    thread_local std::vector<std::byte> scratch, dict_scratch;
    const uint64_t begin = uint64_t{b} * block_size;
    const uint64_t end = std::min<uint64_t>(begin + block_size, total);
    const auto data = in.range(begin, end, scratch);
    std::span<const std::byte> dict;
    if (choice.engine == CompressionChoice::IsaL && begin > 0) {
      dict = in.range(begin - std::min<uint64_t>(begin, kDict), begin, dict_scratch);
    }
    compress_block(data, dict, choice, b + 1 == nblocks, slot.out);
    slot.crc = crc32_of(data);
    slot.len = end - begin;
  };
  uint64_t written = 0;
  uLong crc = 0;
  size_t next_out = 0;
  auto emit = [&](BlockSlot& slot) {
    sink(slot.out);
    written += slot.out.size();
    crc = next_out == 0 ? slot.crc : crc32_combine(crc, slot.crc, static_cast<z_off_t>(slot.len));
    ++next_out;
  };

  sink(std::span<const uint8_t>(kGzipHeader, sizeof(kGzipHeader)));
  written += sizeof(kGzipHeader);
  if (threads == 1 || nblocks == 1) {
    BlockSlot slot;
    for (size_t b = 0; b < nblocks; ++b) {
      compress(b, slot);
      emit(slot);
    }
  } else {
    // Blocks enter in order, are compressed in parallel and leave in order;
    // at most `ntokens` are in flight, so block b can use slot b % ntokens
    // (block b - ntokens has left) and memory stays bounded whatever the
    // volume size. Slots keep their capacity from block to block.
    in_arena(threads, [&] {
      const size_t ntokens = 2 * static_cast<size_t>(tbb::this_task_arena::max_concurrency());
      std::vector<BlockSlot> slots(ntokens);
      size_t next_in = 0;
      tbb::parallel_pipeline(
          ntokens,
          tbb::make_filter<void, size_t>(tbb::filter_mode::serial_in_order,
                                         [&](tbb::flow_control& fc) -> size_t {
                                           if (next_in == nblocks) {
                                             fc.stop();
                                             return 0;
                                           }
                                           return next_in++;
                                         }) &
              tbb::make_filter<size_t, size_t>(tbb::filter_mode::parallel,
                                               [&](size_t b) {
                                                 compress(b, slots[b % ntokens]);
                                                 return b;
                                               }) &
              tbb::make_filter<size_t, void>(tbb::filter_mode::serial_in_order,
                                             [&](size_t b) { emit(slots[b % ntokens]); }));
    });
  }
  uint8_t trailer[8];
  put_le32(trailer, static_cast<uint32_t>(crc));
  put_le32(trailer + 4, static_cast<uint32_t>(total));  // ISIZE = size mod 2^32
  sink(std::span<const uint8_t>(trailer, 8));
  return written + 8;
}

std::vector<uint8_t> gzip_compress_parallel(std::span<const std::span<const std::byte>> parts,
                                            CompressionChoice choice, int threads, size_t block_size) {
  std::vector<uint8_t> gz;
  uint64_t total = 0;
  for (const auto& p : parts) total += p.size();
  gz.reserve(static_cast<size_t>(total / 2) + 64);
  gzip_compress_parallel_to(parts, choice, threads, block_size,
                            [&](std::span<const uint8_t> piece) { gz.insert(gz.end(), piece.begin(), piece.end()); });
  return gz;
}

GzipStream::GzipStream(CompressionChoice choice, int threads, size_t block_size, GzipSink sink)
    : choice_(choice), threads_(threads), sink_(std::move(sink)) {
  validate(choice_);
  block_ = block_size == 0 ? default_block_size(choice_) : block_size;
  block_ = std::min<size_t>(block_, size_t{1} << 30);  // as gzip_compress_parallel_to
  const int conc = threads > 0 ? threads : tbb::this_task_arena::max_concurrency();
  batch_ = 2 * static_cast<size_t>(std::max(1, conc));
  sink_(std::span<const uint8_t>(kGzipHeader, sizeof(kGzipHeader)));
  written_ = sizeof(kGzipHeader);
}

void GzipStream::append(std::span<const std::byte> data) {
  if (finished_) throw std::logic_error("gzip: append after finish");
  // in slices, so that at most batch_ + 1 blocks are ever held
  const size_t most = (batch_ + 1) * block_;
  while (!data.empty()) {
    const size_t pending = buf_.size() - history_;
    const size_t take = std::min(data.size(), most - std::min(most, pending) + 1);
    buf_.insert(buf_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    data = data.subspan(take);
    // a block is compressed only once input follows it (it is then not the last)
    if (buf_.size() - history_ > batch_ * block_) compress_ready(false);
  }
}

// Compresses the whole blocks of buf_ that input follows (all of them, the
// last one final, when `final`), in parallel, and hands them to the sink in
// order; keeps the 32 KiB before the rest as history (ISA-L).
void GzipStream::compress_ready(bool final) {
  const size_t pending = buf_.size() - history_;
  size_t nblocks = final ? std::max<size_t>(1, (pending + block_ - 1) / block_) : (pending - 1) / block_;
  if (nblocks == 0) return;
  constexpr size_t kDict = 32 * 1024;
  const bool isal = choice_.engine == CompressionChoice::IsaL;
  std::vector<BlockSlot> slots(nblocks);
  auto compress = [&](size_t b) {
    const size_t begin = history_ + b * block_;
    const size_t end = std::min(begin + block_, buf_.size());
    const std::span<const std::byte> data(buf_.data() + begin, end - begin);
    std::span<const std::byte> dict;
    // history: the 32 KiB of the stream before the block (fewer at its start)
    if (isal) {
      const size_t d = static_cast<size_t>(std::min<uint64_t>(kDict, consumed_ + b * block_));
      dict = std::span<const std::byte>(buf_.data() + begin - d, d);
    }
    compress_block(data, dict, choice_, final && b + 1 == nblocks, slots[b].out);
    slots[b].crc = crc32_of(data);
    slots[b].len = end - begin;
  };
  if (threads_ == 1 || nblocks == 1) {
    for (size_t b = 0; b < nblocks; ++b) compress(b);
  } else {
    in_arena(threads_, [&] { tbb::parallel_for(size_t(0), nblocks, compress); });
  }
  for (BlockSlot& slot : slots) {
    sink_(slot.out);
    written_ += slot.out.size();
    crc_ = consumed_ == 0 ? slot.crc : crc32_combine(crc_, slot.crc, static_cast<z_off_t>(slot.len));
    consumed_ += slot.len;
  }
  // keep the history of what is left
  const size_t done_end = std::min(history_ + nblocks * block_, buf_.size());
  const size_t keep_from = isal ? done_end - std::min<size_t>(kDict, done_end) : done_end;
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(keep_from));
  history_ = done_end - keep_from;
}

uint64_t GzipStream::finish() {
  if (finished_) throw std::logic_error("gzip: finish called twice");
  compress_ready(true);
  finished_ = true;
  uint8_t trailer[8];
  put_le32(trailer, static_cast<uint32_t>(crc_));
  put_le32(trailer + 4, static_cast<uint32_t>(consumed_));  // ISIZE = size mod 2^32
  sink_(std::span<const uint8_t>(trailer, 8));
  written_ += 8;
  return written_;
}

// ------------------------------------------------------- choice of level --

size_t deflate_size(std::span<const std::byte> data, CompressionChoice c) {
  validate(c);
  thread_local std::vector<uint8_t> out;
  compress_block(data, {}, c, true, out);
  return out.size();
}

namespace {

// zlib raw deflate size of `data`, optionally primed with `dict` (the input
// that precedes it), as a continuous stream would have it.
size_t zlib_size_with_dict(std::span<const std::byte> data, std::span<const std::byte> dict, int level) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::invalid_argument("gzip: invalid zlib level");
  if (!dict.empty() &&
      deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict.data()), static_cast<uInt>(dict.size())) != Z_OK) {
    deflateEnd(&z);
    throw std::runtime_error("gzip: zlib rejected the dictionary");
  }
  thread_local std::vector<uint8_t> out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())));
  z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t n = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: zlib deflate failed");
  return n;
}

}  // namespace

size_t zlib_deflate_size(std::span<const std::byte> data, int level) { return zlib_size_with_dict(data, {}, level); }

double policy_size_bound(CompressionPolicy p) {
  switch (p) {
    case CompressionPolicy::Fast: return 1.15;
    case CompressionPolicy::Default: return 1.02;
    case CompressionPolicy::Small: return 0.0;
  }
  return 0.0;
}

CompressionSetting parse_compression(std::string_view s) {
  CompressionSetting r;
  const char* usage =
      "--compression: expected fast, default, small, 0-12, libdeflate-0..12 or isal-0..3, optionally with a block "
      "size (isal-2/32k)";
  auto parse_int = [&](std::string_view num, int max) {
    int v = -1;
    const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (num.empty() || ec != std::errc() || p != num.data() + num.size() || v < 0 || v > max)
      throw std::invalid_argument(usage);
    return v;
  };
  // "<level>[/<n>k|<n>m]" for an engine whose blocks may be min..max bytes
  auto parse_choice = [&](std::string_view rest, CompressionChoice::Engine e, int max_level, size_t min_block,
                          size_t max_block) {
    CompressionChoice c{e, 0, 0};
    const size_t slash = rest.find('/');
    c.level = parse_int(rest.substr(0, slash), max_level);
    if (slash != std::string_view::npos) {
      std::string_view b = rest.substr(slash + 1);
      if (b.size() < 2) throw std::invalid_argument(usage);
      const char unit = b.back();
      const size_t mult = unit == 'k' ? 1024 : unit == 'm' ? size_t{1} << 20 : 0;
      if (mult == 0) throw std::invalid_argument(usage);
      const size_t bytes = size_t(parse_int(b.substr(0, b.size() - 1), 1 << 20)) * mult;
      if (bytes < min_block || bytes > max_block) throw std::invalid_argument(usage);
      c.block = static_cast<uint32_t>(bytes == engine_block_size(e) ? 0 : bytes);
    }
    return c;
  };
  if (s == "fast") {
    r.policy = CompressionPolicy::Fast;
  } else if (s == "default") {
    r.policy = CompressionPolicy::Default;
  } else if (s == "small") {
    r.policy = CompressionPolicy::Small;
  } else if (s.starts_with("isal-")) {
    r.fixed = parse_choice(s.substr(5), CompressionChoice::IsaL, 3, 4 << 10, 1 << 20);
  } else if (s.starts_with("libdeflate-")) {
    r.fixed = parse_choice(s.substr(11), CompressionChoice::Libdeflate, 12, 64 << 10, 64 << 20);
  } else {
    r.fixed = CompressionChoice{CompressionChoice::Libdeflate, parse_int(s, 12), 0};
  }
  return r;
}

std::vector<CompressionChoice> policy_candidates(CompressionPolicy p) {
  using C = CompressionChoice;
  constexpr uint32_t k16 = 16 << 10, k32 = 32 << 10, k64 = 64 << 10;
  switch (p) {
    case CompressionPolicy::Fast:
      // isal-0 (1.18-1.25x zlib -6 on every volume measured) is left out: it
      // would pass only on a sample that misrepresents its volume
      return {{C::IsaL, 1, 0}, {C::IsaL, 2, 0}, {C::IsaL, 3, 0}, {C::Libdeflate, 1, 0},
              {C::Libdeflate, 2, 0}, {C::Libdeflate, 4, 0}, {C::Libdeflate, 6, 0}};
    case CompressionPolicy::Default:
      return {{C::IsaL, 1, 0},       {C::IsaL, 2, 0},       {C::IsaL, 3, 0},       {C::IsaL, 3, k64},
              {C::IsaL, 3, k32},     {C::IsaL, 3, k16},     {C::Libdeflate, 1, 0}, {C::Libdeflate, 2, 0},
              {C::Libdeflate, 4, 0}, {C::Libdeflate, 6, 0}, {C::Libdeflate, 9, 0}};
    case CompressionPolicy::Small: return {{C::Libdeflate, 9, 0}};
  }
  return {};
}

double typical_speed(CompressionChoice c) {
  if (c.engine == CompressionChoice::IsaL) {
    static constexpr double isal[4] = {360, 330, 325, 305};
    const double s = isal[std::clamp(c.level, 0, 3)];
    const size_t f = isal_flush_interval(c);
    // smaller flush intervals: a Huffman table built per flush
    return f >= (size_t{128} << 10) ? s : f >= (size_t{64} << 10) ? s * 0.95 : f >= (size_t{32} << 10) ? s * 0.84 : s * 0.72;
  }
  static constexpr double ld[13] = {2000, 160, 90, 70, 60, 50, 40, 35, 25, 20, 8, 5, 3};
  return ld[std::clamp(c.level, 0, 12)];
}

namespace {

// One sample piece: `data`, preceded in the volume by `context` (32 KiB or
// less at the start of the volume).
struct Piece {
  std::span<const std::byte> context, data;
};

// Size of a piece compressed by `c` as it would be inside the real stream.
size_t piece_size(const Piece& pc, CompressionChoice c) {
  thread_local std::vector<uint8_t> out;
  if (c.engine == CompressionChoice::IsaL) {
    // a stretch of a parallel unit: primed with the 32 KiB before it,
    // flushed every isal_flush_interval bytes, as in the real stream
    compress_block(pc.data, pc.context, c, false, out);
    return out.size();
  }
  if (pc.context.empty()) return deflate_size(pc.data, c);
  // context and data are adjacent in the volume
  const std::span<const std::byte> both(pc.context.data(), pc.context.size() + pc.data.size());
  const size_t with = deflate_size(both, c), alone = deflate_size(pc.context, c);
  return with > alone ? with - alone : 0;
}

}  // namespace

CompressionChoice choose_compression(std::span<const std::byte> voxels, CompressionPolicy p, int threads,
                                     size_t period, uint64_t applies_to) {
  using C = CompressionChoice;
  if (p == CompressionPolicy::Small) return {C::Libdeflate, 9, 0};
  const bool fast = p == CompressionPolicy::Fast;
  const size_t n = voxels.size();
  const double total = static_cast<double>(applies_to > n ? applies_to : n);
  // Below 1 MiB sampling would cost more than the best choice could save.
  if (n < (size_t{1} << 20)) return fast ? C{C::Libdeflate, 1, 0} : C{C::Libdeflate, 6, 0};
  // Volumes of 64 MiB and more (applies_to; and Fast): 128 KiB pieces, which judge
  // every candidate. Below, 64 KiB pieces (half the cost), which judge only
  // ISA-L candidates that flush at most every 32 KiB, and libdeflate: the
  // others are left out.
  constexpr size_t kContext = 32 * 1024;
  const bool large = fast || total >= double(size_t{64} << 20);
  const size_t kPiece = large ? 128 * 1024 : 64 * 1024;
  // Pieces to start with, and how far a sample may grow for a candidate
  // that passes on its estimate but not with the margin (the margin shrinks
  // with more pieces: 0.8% for 4, 0.6% for 8, 0.45% for 16).
  const size_t count = fast ? (n < (size_t{256} << 20) ? 1 : 2) : 4;
  // at most 1 MiB of pieces below 256 MiB (zlib -6 on it: 75 ms), 2 MiB above
  const size_t most =
      fast ? count : (total < double(size_t{32} << 20) || (large && total < double(size_t{256} << 20))) ? 8 : 16;
  auto margin_for = [&](size_t k) { return fast ? 0.03 : k < 8 ? 0.008 : k < 16 ? 0.006 : 0.0045; };

  // Pieces follow a two-dimensional low-discrepancy (R2) sequence over
  // (slice, position within the slice), so that few pieces already cover
  // both the length of the volume and the rows of its slices (a head fills
  // the middle rows of a slice and air the others, and the ratios of two
  // compressors differ by 5% between them); the first k pieces of a larger
  // sample are those of a smaller one. Without a period: over the volume.
  const size_t span = n - kContext - kPiece;
  const size_t per = period >= kPiece && period <= span ? period : 0;
  std::vector<Piece> pieces;
  auto add_pieces = [&](size_t to) {
    for (size_t i = pieces.size(); i < to; ++i) {
      constexpr double g = 1.32471795724474602596;  // the plastic number
      const double u = std::fmod(0.5 + static_cast<double>(i) / g, 1.0);
      const double w = std::fmod(0.5 + static_cast<double>(i) / (g * g), 1.0);
      size_t off = kContext + static_cast<size_t>(static_cast<double>(span) * u);
      if (per != 0) {
        const size_t periods = span / per;
        off = kContext + std::min(periods - 1, static_cast<size_t>(u * static_cast<double>(periods))) * per +
              static_cast<size_t>(w * static_cast<double>(per - kPiece));
      }
      pieces.push_back({voxels.subspan(off - kContext, kContext), voxels.subspan(off, kPiece)});
    }
  };

  // Sizes of pieces [sizes.size(), pieces.size()) for one compressor, in
  // parallel over the pieces (each size is exact: nothing depends on threads).
  auto extend = [&](std::vector<size_t>& sizes, auto&& size_fn) {
    const size_t from = sizes.size(), to = pieces.size();
    sizes.resize(to);
    auto body = [&](size_t i) { sizes[i] = size_fn(pieces[i]); };
    if (threads == 1 || to - from < 2) {
      for (size_t i = from; i < to; ++i) body(i);
    } else {
      in_arena(threads, [&] { tbb::parallel_for(from, to, body); });
    }
  };
  auto sum = [](const std::vector<size_t>& v) {
    size_t t = 0;
    for (size_t x : v) t += x;
    return static_cast<double>(std::max<size_t>(t, 1));
  };
  // The reference: zlib -6 primed as in the continuous stream. Fast (whose
  // bound is loose) takes libdeflate-4 instead, 3-4 times cheaper and
  // 0.99-1.01x zlib -6's size on the benchmark volumes (an error far inside
  // Fast's 3% margin).
  auto ref_fn = [fast](const Piece& pc) {
    return fast ? piece_size(pc, C{C::Libdeflate, 4, 0}) : zlib_size_with_dict(pc.data, pc.context, 6);
  };
  std::vector<size_t> ref;
  add_pieces(count);
  extend(ref, ref_fn);
  const double bound = policy_size_bound(p);
  C best{C::Libdeflate, 9, 0};
  double best_ratio = std::numeric_limits<double>::infinity();
  std::vector<C> cands;
  for (const C& cand : policy_candidates(p))
    if (cand.engine != C::IsaL || large || isal_flush_interval(cand) <= kPiece / 2) cands.push_back(cand);
  // Sizes of each candidate on the pieces so far.
  std::vector<std::vector<size_t>> sizes(cands.size());
  auto ratio_of = [&](size_t ci) {
    extend(sizes[ci], [&](const Piece& pc) { return piece_size(pc, cands[ci]); });
    return sum(sizes[ci]) / sum(ref);
  };
  auto passes = [&](double ratio) { return ratio + margin_for(pieces.size()) <= bound; };
  // 1. On the first sample, the fastest candidate that passes with the
  //    margin. Faster ones that pass on their estimate alone wait.
  std::vector<size_t> pending;
  size_t chosen = cands.size();
  for (size_t ci = 0; ci < cands.size() && chosen == cands.size(); ++ci) {
    const double ratio = ratio_of(ci);
    if (ratio < best_ratio) {
      best = cands[ci];
      best_ratio = ratio;
    }
    if (passes(ratio)) chosen = ci;
    else if (ratio <= bound) pending.push_back(ci);
  }
  // 2. A larger sample sharpens the estimate, so a waiting candidate may
  //    still be taken. Growing costs the reference (zlib -6, the dearest
  //    part of the choice) on the new pieces; it pays only when the choice
  //    of step 1 would compress the whole volume much more slowly (ISA-L
  //    against libdeflate: on 18 MB, 30-100 ms saved for 20 ms of
  //    sampling), not between two ISA-L variants 5-15% apart (on 78 MB, 13
  //    ms saved for 39 ms). Typical speeds, not timings, so that the choice
  //    stays a function of the bytes. (Only Default grows: Fast's sample
  //    is fixed, so the reference here is zlib -6.)
  const double alt_speed = typical_speed(chosen < cands.size() ? cands[chosen] : best);
  auto worth_growing = [&](size_t ci) {
    const double mb = 1e-6;
    const double saved = total * mb * (1 / alt_speed - 1 / typical_speed(cands[ci]));
    const size_t more = std::min(most, 2 * pieces.size()) - pieces.size();
    const double spent = static_cast<double>(more * kPiece) * mb * (1 / kZlibSpeed + 1 / typical_speed(cands[ci]));
    return saved > spent;
  };
  for (size_t ci : pending) {
    for (;;) {
      const double ratio = ratio_of(ci);  // on the pieces so far
      if (passes(ratio)) return cands[ci];
      if (ratio > bound || pieces.size() >= most || !worth_growing(ci)) break;
      add_pieces(std::min(most, 2 * pieces.size()));
      extend(ref, ref_fn);
    }
  }
  return chosen < cands.size() ? cands[chosen] : best;
}

CompressionChoice resolve_compression(const CompressionSetting& setting, std::span<const std::byte> voxels,
                                      int threads, size_t period, uint64_t applies_to) {
  if (setting.fixed) {
    validate(*setting.fixed);
    return *setting.fixed;
  }
  return choose_compression(voxels, setting.policy, threads, period, applies_to);
}

}  // namespace rapidnii::io
