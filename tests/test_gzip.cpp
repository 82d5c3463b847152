// Tests for the parallel single-member gzip (io/gzip.*): round trips for every
// compressor, level and thread count at block-boundary edge cases, identical
// bytes whatever the thread count, exactly one gzip member with no trailing
// data, acceptance by gzip -t, Python's gzip and the JavaScript readers
// (fflate / nifti-reader-js), and the compression policy on CT-like data.
#include "io/gzip.h"
#include "io/nifti_writer.h"
#include "tests/synthetic_ct.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace rapidnii::io;

namespace {

using rapidnii::testdata::ct_volume;
using rapidnii::testdata::next_rand;

using Bytes = std::vector<std::byte>;
using Choice = CompressionChoice;

// ---------------------------------------------------------------- helpers --

// Every compressor and level.
std::vector<Choice> all_choices() {
  std::vector<Choice> v;
  for (int l = 0; l <= 3; ++l) v.push_back({Choice::IsaL, l});
  for (int l = 0; l <= 12; ++l) v.push_back({Choice::Libdeflate, l});
  return v;
}


// Mixed content: runs, repeats of earlier data (long matches across block
// boundaries), text-like bytes and noise, so that every block type (stored,
// fixed, dynamic) and long distances occur.
Bytes mixed_bytes(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  while (i < n) {
    const uint64_t r = next_rand(s);
    const size_t len = std::min<size_t>(n - i, 1 + (r >> 8) % 3000);
    switch (r % 4) {
      case 0:  // run
        std::fill(out.begin() + i, out.begin() + i + len, static_cast<std::byte>(r >> 40));
        break;
      case 1:  // copy from up to 40 KiB back
        if (i > 0) {
          const size_t dist = 1 + (r >> 20) % std::min<size_t>(i, 40000);
          for (size_t k = 0; k < len; ++k) out[i + k] = out[i + k - dist];
          break;
        }
        [[fallthrough]];
      case 2:  // text-like
        for (size_t k = 0; k < len; ++k) out[i + k] = static_cast<std::byte>("etaoin shrdlu\n"[next_rand(s) % 14]);
        break;
      default:  // noise
        for (size_t k = 0; k < len; ++k) out[i + k] = static_cast<std::byte>(next_rand(s));
    }
    i += len;
  }
  return out;
}


struct Inflated {
  bool ok = false;
  std::string error;
  Bytes data;
  size_t trailing = 0;  // input bytes left after the first gzip member
};

// zlib inflate of ONE gzip member; reports any bytes after it.
Inflated zlib_gunzip_one_member(const std::vector<uint8_t>& gz) {
  Inflated r;
  z_stream z{};
  if (inflateInit2(&z, 16 + 15) != Z_OK) {
    r.error = "inflateInit2";
    return r;
  }
  z.next_in = const_cast<Bytef*>(gz.data());
  z.avail_in = static_cast<uInt>(gz.size());
  std::vector<uint8_t> buf(1 << 16);
  int rc;
  do {
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&z, Z_NO_FLUSH);
    const size_t got = buf.size() - z.avail_out;
    for (size_t i = 0; i < got; ++i) r.data.push_back(static_cast<std::byte>(buf[i]));
  } while (rc == Z_OK);
  if (rc == Z_STREAM_END) {
    r.ok = true;
    r.trailing = z.avail_in;
  } else {
    r.error = "inflate returned " + std::to_string(rc) + (z.msg ? std::string(": ") + z.msg : std::string());
  }
  inflateEnd(&z);
  return r;
}

std::vector<uint8_t> gz_of(const Bytes& data, Choice c, int threads, size_t block = 0) {
  const std::span<const std::byte> parts[1] = {data};
  return gzip_compress_parallel(parts, c, threads, block);
}

// The round trip, single member and no trailing data; as a gtest assertion.
::testing::AssertionResult decodes_to(const std::vector<uint8_t>& gz, const Bytes& expected) {
  if (gz.size() < 18) return ::testing::AssertionFailure() << "output shorter than a gzip member";
  const uint8_t header[10] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff};
  if (std::memcmp(gz.data(), header, 10) != 0) return ::testing::AssertionFailure() << "unexpected gzip header";
  const Inflated r = zlib_gunzip_one_member(gz);
  if (!r.ok) return ::testing::AssertionFailure() << "zlib: " << r.error;
  if (r.trailing != 0) return ::testing::AssertionFailure() << r.trailing << " bytes after the first member";
  if (r.data != expected)
    return ::testing::AssertionFailure() << "content differs (" << r.data.size() << " vs " << expected.size()
                                         << " bytes)";
  return ::testing::AssertionSuccess();
}

using rapidnii::testdata::TempDir;

void write_bytes(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

bool have_command(const std::string& probe) { return std::system((probe + " >/dev/null 2>&1").c_str()) == 0; }

int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// =============================================================== framing ==

TEST(ParallelGzip, RoundTripEveryLevelThreadCountAndBlockEdge) {
  constexpr size_t kBlock = 16 * 1024;
  const size_t sizes[] = {0, 1, kBlock - 1, kBlock, kBlock + 1, 3 * kBlock + 7};
  for (size_t n : sizes) {
    const Bytes data = mixed_bytes(n, n + 3);
    for (const Choice c : all_choices()) {
      std::vector<uint8_t> first;
      for (int threads = 1; threads <= 8; ++threads) {
        const auto gz = gz_of(data, c, threads, kBlock);
        ASSERT_TRUE(decodes_to(gz, data)) << to_string(c) << " n=" << n << " threads=" << threads;
        if (threads == 1) {
          first = gz;
        } else {
          ASSERT_EQ(gz, first) << to_string(c) << " n=" << n << ": bytes differ with " << threads << " threads";
        }
      }
    }
  }
}

TEST(ParallelGzip, TrailerHoldsCombinedCrcAndSize) {
  const Bytes data = mixed_bytes(300000, 11);
  for (const Choice c : {Choice{Choice::IsaL, 1}, Choice{Choice::Libdeflate, 6}}) {
    const auto gz = gz_of(data, c, 4, 20000);
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    const size_t t = gz.size() - 8;
    const uint32_t got_crc = gz[t] | (gz[t + 1] << 8) | (gz[t + 2] << 16) | (uint32_t(gz[t + 3]) << 24);
    const uint32_t got_size = gz[t + 4] | (gz[t + 5] << 8) | (gz[t + 6] << 16) | (uint32_t(gz[t + 7]) << 24);
    EXPECT_EQ(got_crc, static_cast<uint32_t>(crc)) << to_string(c);
    EXPECT_EQ(got_size, data.size()) << to_string(c);
  }
}

TEST(ParallelGzip, DefaultBlockSizeLargeInputAllThreadModes) {
  // Several default-size blocks (4 MiB libdeflate, 1 MiB ISA-L), threads in
  // the calling arena (0), serial (1) and a dedicated arena (3).
  const Bytes data = mixed_bytes((9 << 20) + 12345, 5);
  for (const Choice c : {Choice{Choice::IsaL, 3}, Choice{Choice::Libdeflate, 2}}) {
    const auto ref = gz_of(data, c, 1);
    EXPECT_TRUE(decodes_to(ref, data)) << to_string(c);
    EXPECT_EQ(gz_of(data, c, 0), ref) << to_string(c);
    EXPECT_EQ(gz_of(data, c, 3), ref) << to_string(c);
  }
}

TEST(ParallelGzip, PartsAreJoinedWhereverBlocksFall) {
  // A NIfTI-like header part, empty parts and a body; blocks straddle parts.
  const Bytes a = mixed_bytes(352, 1), b = mixed_bytes(70000, 2), c = mixed_bytes(1, 3), d = mixed_bytes(100000, 4);
  const Bytes empty;
  const std::span<const std::byte> parts[] = {empty, a, empty, b, c, empty, d};
  Bytes joined;
  for (const auto& p : parts) joined.insert(joined.end(), p.begin(), p.end());
  for (const Choice ch : {Choice{Choice::IsaL, 2}, Choice{Choice::Libdeflate, 4}}) {
    for (size_t block : {size_t{100}, size_t{352}, size_t{4096}, size_t{65536}, size_t{0}}) {
      const auto gz = gzip_compress_parallel(parts, ch, 3, block);
      EXPECT_TRUE(decodes_to(gz, joined)) << to_string(ch) << " block " << block;
      EXPECT_EQ(gz, gz_of(joined, ch, 1, block)) << to_string(ch) << " block " << block;
    }
  }
  const std::span<const std::byte> none[] = {empty, empty};
  EXPECT_TRUE(decodes_to(gzip_compress_parallel(none, {Choice::IsaL, 1}, 2), Bytes{}));
  EXPECT_TRUE(decodes_to(gzip_compress_parallel({}, {Choice::Libdeflate, 1}, 2), Bytes{}));
}

TEST(ParallelGzip, StreamGivesTheOneShotBytesWhateverThePieces) {
  // GzipStream (input piece by piece: a 4D series a few time points at a
  // time) must write exactly gzip_compress_parallel's member.
  uint64_t rs = 77;
  for (size_t n : {size_t{0}, size_t{1}, size_t{5000}, size_t{65536}, size_t{300001}, size_t{(3 << 20) + 17}}) {
    const Bytes data = mixed_bytes(n, n + 9);
    for (const Choice ch : {Choice{Choice::IsaL, 1}, Choice{Choice::IsaL, 3, 32 << 10}, Choice{Choice::Libdeflate, 6}}) {
      for (size_t block : {size_t{4096}, size_t{65536}, size_t{0}}) {
        const auto want = gz_of(data, ch, 1, block);
        for (int threads : {1, 3}) {
          // pieces: one, then random sizes from 1 byte to ~1.5 blocks
          for (int mode = 0; mode < 2; ++mode) {
            std::vector<uint8_t> got;
            GzipStream gs(ch, threads, block, [&](std::span<const uint8_t> b) { got.insert(got.end(), b.begin(), b.end()); });
            size_t at = 0;
            while (at < n) {
              const size_t step = mode == 0 ? n : 1 + next_rand(rs) % (block == 0 ? 800000 : block * 3 / 2);
              const size_t len = std::min(step, n - at);
              gs.append(std::span<const std::byte>(data.data() + at, len));
              at += len;
            }
            EXPECT_EQ(gs.input_bytes(), n);
            const uint64_t total = gs.finish();
            EXPECT_EQ(total, got.size());
            ASSERT_EQ(got, want) << to_string(ch) << " n=" << n << " block=" << block << " threads=" << threads
                                 << " mode=" << mode;
          }
        }
      }
    }
  }
  GzipStream gs({Choice::IsaL, 1}, 1, 0, [](std::span<const uint8_t>) {});
  gs.finish();
  EXPECT_THROW(gs.append(Bytes(3)), std::logic_error);
  EXPECT_THROW(gs.finish(), std::logic_error);
}

TEST(ParallelGzip, IncompressibleAndConstantData) {
  // Noise makes libdeflate emit stored blocks; zeros give long matches and
  // tiny fixed/dynamic blocks: the block walker must handle every kind.
  Bytes noise(200000);
  uint64_t s = 99;
  for (auto& b : noise) b = static_cast<std::byte>(next_rand(s));
  const Bytes zeros(200000, std::byte{0});
  for (const Choice c : all_choices()) {
    EXPECT_TRUE(decodes_to(gz_of(noise, c, 2, 30000), noise)) << to_string(c);
    EXPECT_TRUE(decodes_to(gz_of(zeros, c, 2, 30000), zeros)) << to_string(c);
  }
}

TEST(ParallelGzip, IsalDictionaryKeepsSizeNearOneStream) {
  // With the previous 32 KiB as dictionary, 64 KiB ISA-L blocks cost little
  // more than one stream; libdeflate blocks restart with an empty window.
  const Bytes data = ct_volume(256, 256, 8);
  const size_t one = deflate_size(data, {Choice::IsaL, 3});
  const size_t blocks = gz_of(data, {Choice::IsaL, 3}, 2, 64 * 1024).size() - 18;
  EXPECT_LT(static_cast<double>(blocks), 1.01 * static_cast<double>(one)) << blocks << " vs " << one;
}

TEST(ParallelGzip, InvalidLevelsThrow) {
  const Bytes data = mixed_bytes(10, 1);
  EXPECT_THROW(gz_of(data, {Choice::IsaL, 4}, 1), std::invalid_argument);
  EXPECT_THROW(gz_of(data, {Choice::IsaL, -1}, 1), std::invalid_argument);
  EXPECT_THROW(gz_of(data, {Choice::Libdeflate, 13}, 1), std::invalid_argument);
}

// ============================================================ other readers ==

// A ~3 MB parallel gzip of CT-like data split into many blocks, and the raw bytes.
struct ReaderCase {
  Bytes raw;
  std::vector<uint8_t> gz;
};
std::vector<ReaderCase> reader_cases() {
  const Bytes raw = ct_volume(256, 256, 24);
  return {{raw, gz_of(raw, {Choice::IsaL, 1}, 4, 256 * 1024)},
          {raw, gz_of(raw, {Choice::Libdeflate, 3}, 4, 256 * 1024)}};
}

TEST(ParallelGzipReaders, GzipDashTAccepts) {
  if (!have_command("gzip --version")) GTEST_SKIP() << "gzip not found; skipping gzip -t";
  TempDir dir;
  int i = 0;
  for (const auto& rc : reader_cases()) {
    const fs::path f = dir.path() / ("t" + std::to_string(i++) + ".gz");
    write_bytes(f, rc.gz.data(), rc.gz.size());
    EXPECT_EQ(run("gzip -t '" + f.string() + "'"), 0) << "gzip -t rejected case " << i;
  }
}

TEST(ParallelGzipReaders, PythonGzipReadsEverything) {
  if (!have_command("/usr/bin/python3 -c 'import gzip'")) GTEST_SKIP() << "/usr/bin/python3 missing; skipping";
  TempDir dir;
  int i = 0;
  for (const auto& rc : reader_cases()) {
    const fs::path f = dir.path() / ("p" + std::to_string(i) + ".gz"), raw = dir.path() / ("p" + std::to_string(i) + ".raw");
    ++i;
    write_bytes(f, rc.gz.data(), rc.gz.size());
    write_bytes(raw, rc.raw.data(), rc.raw.size());
    const std::string py =
        "import gzip,sys; d=gzip.open(sys.argv[1]).read(); r=open(sys.argv[2],'rb').read(); sys.exit(0 if d==r else 1)";
    EXPECT_EQ(run("/usr/bin/python3 -c \"" + py + "\" '" + f.string() + "' '" + raw.string() + "'"), 0)
        << "Python gzip returned other bytes, case " << i;
  }
}

fs::path js_dir() { return fs::path(RAPIDNII_SOURCE_DIR) / "tests" / "js"; }
bool js_readers_installed() {
  return fs::exists(js_dir() / "node_modules" / "fflate") && fs::exists(js_dir() / "node_modules" / "nifti-reader-js") &&
         have_command("node --version");
}
#define SKIP_WITHOUT_JS_READERS()                                                                      \
  if (!js_readers_installed())                                                                         \
  GTEST_SKIP() << "node or tests/js/node_modules missing (run: npm ci --prefix tests/js); skipping the " \
                  "fflate / nifti-reader-js check"

TEST(ParallelGzipReaders, FflateAndNiftiReaderJsReadEverything) {
  SKIP_WITHOUT_JS_READERS();
  TempDir dir;
  int i = 0;
  for (const auto& rc : reader_cases()) {
    const fs::path f = dir.path() / ("j" + std::to_string(i) + ".gz"), raw = dir.path() / ("j" + std::to_string(i) + ".raw");
    ++i;
    write_bytes(f, rc.gz.data(), rc.gz.size());
    write_bytes(raw, rc.raw.data(), rc.raw.size());
    EXPECT_EQ(run("node '" + (js_dir() / "check_gz.mjs").string() + "' '" + f.string() + "' '" + raw.string() + "'"), 0)
        << "a JavaScript reader returned other bytes, case " << i;
  }
}

TEST(ParallelGzipReaders, JsCheckCatchesMultiMemberFiles) {
  // Control: two concatenated members are valid gzip, but fflate stops after
  // the first. The check must fail on them, or it proves nothing.
  SKIP_WITHOUT_JS_READERS();
  TempDir dir;
  const Bytes a = mixed_bytes(5000, 1), b = mixed_bytes(7000, 2);
  auto gz = gz_of(a, {Choice::Libdeflate, 6}, 1);
  const auto gz2 = gz_of(b, {Choice::Libdeflate, 6}, 1);
  gz.insert(gz.end(), gz2.begin(), gz2.end());
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  write_bytes(dir.path() / "m.gz", gz.data(), gz.size());
  write_bytes(dir.path() / "m.raw", ab.data(), ab.size());
  EXPECT_NE(run("node '" + (js_dir() / "check_gz.mjs").string() + "' '" + (dir.path() / "m.gz").string() + "' '" +
                (dir.path() / "m.raw").string() + "' >/dev/null 2>&1"),
            0);
}

TEST(ParallelGzipReaders, NiftiWrittenInParallelOpensInNiftiReaderJs) {
  SKIP_WITHOUT_JS_READERS();
  TempDir dir;
  const Bytes vox = ct_volume(128, 128, 40);
  NiftiVolume v;
  v.dim = {128, 128, 40, 1, 1, 1, 1};
  v.affine = {{{0.7, 0, 0, -45}, {0, 0.7, 0, -40}, {0, 0, 2.5, 10}}};
  v.voxels = vox;
  NiftiGzOptions opt;
  opt.threads = 4;
  opt.block_size = 100000;
  for (const char* comp : {"isal-2", "libdeflate-5"}) {
    opt.compression = parse_compression(comp);
    const fs::path nii = dir.path() / (std::string(comp) + ".nii.gz");
    const auto r = write_nifti_gz(nii, v, opt);
    EXPECT_EQ(r.choice, *opt.compression.fixed);
    const auto header = make_nifti_header(v, false);
    Bytes raw = header;
    raw.insert(raw.end(), vox.begin(), vox.end());
    write_bytes(dir.path() / "raw", raw.data(), raw.size());
    EXPECT_EQ(run("node '" + (js_dir() / "check_gz.mjs").string() + "' '" + nii.string() + "' '" +
                  (dir.path() / "raw").string() + "' nifti"),
              0)
        << comp;
  }
}

// ================================================================= policy ==

TEST(CompressionPolicy, ParseValues) {
  EXPECT_EQ(parse_compression("fast").policy, CompressionPolicy::Fast);
  EXPECT_FALSE(parse_compression("fast").fixed);
  EXPECT_EQ(parse_compression("default").policy, CompressionPolicy::Default);
  EXPECT_EQ(parse_compression("small").policy, CompressionPolicy::Small);
  EXPECT_EQ(parse_compression("6").fixed, (Choice{Choice::Libdeflate, 6}));
  EXPECT_EQ(parse_compression("12").fixed, (Choice{Choice::Libdeflate, 12}));
  EXPECT_EQ(parse_compression("libdeflate-0").fixed, (Choice{Choice::Libdeflate, 0}));
  EXPECT_EQ(parse_compression("isal-3").fixed, (Choice{Choice::IsaL, 3}));
  for (const char* bad : {"", "13", "-1", "isal-4", "isal-", "libdeflate-x", "Fast", "6 ", "zstd"})
    EXPECT_THROW(parse_compression(bad), std::invalid_argument) << bad;
  EXPECT_EQ(to_string({Choice::IsaL, 1}), "isal-1");
  EXPECT_EQ(to_string({Choice::Libdeflate, 9}), "libdeflate-9");
  // block sizes: written only when not the engine's default, read back
  EXPECT_EQ(parse_compression("isal-2/32k").fixed, (Choice{Choice::IsaL, 2, 32 << 10}));
  EXPECT_EQ(parse_compression("isal-2/128k").fixed, (Choice{Choice::IsaL, 2, 0}));
  EXPECT_EQ(parse_compression("libdeflate-4/1m").fixed, (Choice{Choice::Libdeflate, 4, 1 << 20}));
  EXPECT_EQ(to_string({Choice::IsaL, 3, 16 << 10}), "isal-3/16k");
  EXPECT_EQ(to_string({Choice::Libdeflate, 2, 1 << 20}), "libdeflate-2/1m");
  EXPECT_EQ(to_string({Choice::IsaL, 2, 128 << 10}), "isal-2");
  for (const auto& c : policy_candidates(CompressionPolicy::Default))
    EXPECT_EQ(parse_compression(to_string(c)).fixed, c) << to_string(c);
  for (const char* bad : {"isal-2/", "isal-2/32", "isal-2/2k", "isal-2/2m", "libdeflate-2/32k", "isal-2/32x", "isal-2/k"})
    EXPECT_THROW(parse_compression(bad), std::invalid_argument) << bad;
  // ISA-L: the block is the flush interval inside 512 KiB parallel units
  EXPECT_EQ(isal_flush_interval({Choice::IsaL, 2, 32 << 10}), size_t{32} << 10);
  EXPECT_EQ(isal_flush_interval({Choice::IsaL, 2, 0}), size_t{128} << 10);
  EXPECT_EQ(default_block_size({Choice::IsaL, 2, 32 << 10}), kIsalUnit);
  EXPECT_EQ(default_block_size({Choice::Libdeflate, 2, 1 << 20}), size_t{1} << 20);
}

TEST(CompressionPolicy, SmallBlocksAreOneValidMemberAndSmallerForIsaL) {
  const Bytes vol = ct_volume(256, 256, 24, 4);
  const std::span<const std::byte> parts[1] = {vol};
  const auto big = gzip_compress_parallel(parts, Choice{Choice::IsaL, 2, 0}, 2);
  const auto small = gzip_compress_parallel(parts, Choice{Choice::IsaL, 2, 16 << 10}, 2);
  EXPECT_TRUE(decodes_to(small, vol));
  EXPECT_EQ(small, gzip_compress_parallel(parts, Choice{Choice::IsaL, 2, 16 << 10}, 1)) << "threads change the bytes";
  // flushing every 16 KiB inside 512 KiB units costs at most a little more
  // than 16 KiB units each primed with its own dictionary (and is faster)
  const auto units = gzip_compress_parallel(parts, Choice{Choice::IsaL, 2, 0}, 2, 16 << 10);
  EXPECT_TRUE(decodes_to(units, vol));
  EXPECT_LE(double(small.size()), 1.005 * double(units.size()));
  EXPECT_LT(small.size(), big.size()) << "ISA-L's per-block Huffman codes should adapt better in small blocks";
}

// Whole-volume size of the policy's choice against zlib -6 of the same bytes.
void expect_policy_bound(const Bytes& vol, CompressionPolicy p, const char* what) {
  const Choice c = choose_compression(vol, p, 2);
  EXPECT_EQ(choose_compression(vol, p, 1), c) << "the choice must not depend on threads";
  const double ours = static_cast<double>(gz_of(vol, c, 2).size());
  const double ref = static_cast<double>(zlib_deflate_size(vol, 6) + 18);
  const double bound = policy_size_bound(p);
  EXPECT_LE(ours, bound * ref) << what << ": " << to_string(c) << " gives " << ours / ref << "x gzip -6";
  std::printf("[ info ] %s: %s -> %.4fx gzip -6 (ratio %.3f)\n", what, to_string(c).c_str(), ours / ref,
              ours / static_cast<double>(vol.size()));
}

TEST(CompressionPolicy, DefaultAndFastMeetTheirBoundOnCtLikeVolumes) {
  for (uint64_t seed : {1, 2}) {
    const Bytes vol = ct_volume(256, 256, 48, seed);
    expect_policy_bound(vol, CompressionPolicy::Default, "CT-like 256x256x48 default");
    expect_policy_bound(vol, CompressionPolicy::Fast, "CT-like 256x256x48 fast");
  }
  // 512 KiB slices: sample pieces must not all fall on the same rows.
  const Bytes big = ct_volume(512, 512, 24, 3);
  expect_policy_bound(big, CompressionPolicy::Default, "CT-like 512x512x24 default");
  expect_policy_bound(big, CompressionPolicy::Fast, "CT-like 512x512x24 fast");
}

TEST(CompressionPolicy, DefaultMeetsItsBoundOnOtherContent) {
  // MR-like (smooth, low noise, mostly dark), mixed bytes and pure noise.
  Bytes mr(256 * 256 * 24 * 2);
  uint64_t s = 5;
  for (size_t i = 0; i < mr.size() / 2; ++i) {
    const int x = static_cast<int>(i % 256), y = static_cast<int>(i / 256 % 256);
    const double r2 = (x - 128.0) * (x - 128.0) + (y - 128.0) * (y - 128.0);
    double v = r2 < 90.0 * 90.0 ? 300 + 120 * std::sin(0.05 * x) * std::cos(0.04 * y) : 0;
    v += static_cast<double>(next_rand(s) % 9);
    const auto u = static_cast<uint16_t>(v);
    mr[2 * i] = static_cast<std::byte>(u & 0xff);
    mr[2 * i + 1] = static_cast<std::byte>(u >> 8);
  }
  expect_policy_bound(mr, CompressionPolicy::Default, "MR-like default");
  expect_policy_bound(mixed_bytes(3 << 20, 8), CompressionPolicy::Default, "mixed default");

  // Heterogeneous along the volume (as a 4D series or a scan with a mostly
  // empty end): constant padding, CT-like slabs, MR-like slabs and noise.
  Bytes het;
  const Bytes ct = ct_volume(256, 256, 12, 3);
  for (int rep = 0; rep < 2; ++rep) {
    het.insert(het.end(), 1 << 20, std::byte{0});
    het.insert(het.end(), ct.begin(), ct.end());
    het.insert(het.end(), mr.begin(), mr.begin() + (1 << 20));
    Bytes noise(256 * 1024);
    for (auto& b : noise) b = static_cast<std::byte>(next_rand(s) & 0x3f);
    het.insert(het.end(), noise.begin(), noise.end());
  }
  expect_policy_bound(het, CompressionPolicy::Default, "heterogeneous default");
  expect_policy_bound(het, CompressionPolicy::Fast, "heterogeneous fast");
}

TEST(CompressionPolicy, CandidatesAreTriedFastestFirst) {
  // choose_compression tries candidates in this order and weighs a larger
  // sample for a faster one against the time it would save over the
  // slower choice: that needs the candidates in order of speed
  for (auto p : {CompressionPolicy::Fast, CompressionPolicy::Default}) {
    const auto cands = policy_candidates(p);
    for (size_t i = 1; i < cands.size(); ++i)
      EXPECT_LE(typical_speed(cands[i]), typical_speed(cands[i - 1])) << to_string(cands[i]);
  }
  EXPECT_GT(typical_speed({Choice::IsaL, 3, 0}), typical_speed({Choice::IsaL, 3, 16 << 10}));
  EXPECT_GT(typical_speed({Choice::Libdeflate, 1, 0}), 10 * kZlibSpeed / 2);
}

TEST(CompressionPolicy, SmallAndTinyInputs) {
  EXPECT_EQ(choose_compression({}, CompressionPolicy::Small), (Choice{Choice::Libdeflate, 9}));
  // Empty and tiny buffers still give a valid choice.
  const Choice c0 = choose_compression({}, CompressionPolicy::Default);
  EXPECT_TRUE(decodes_to(gz_of({}, c0, 1), {}));
  const Bytes one = mixed_bytes(1, 1);
  const Choice c1 = choose_compression(one, CompressionPolicy::Default);
  EXPECT_TRUE(decodes_to(gz_of(one, c1, 1), one));
}

TEST(CompressionPolicy, ResolveUsesTheFixedChoice) {
  const Bytes vol = ct_volume(64, 64, 4);
  EXPECT_EQ(resolve_compression(parse_compression("isal-0"), vol), (Choice{Choice::IsaL, 0}));
  EXPECT_EQ(resolve_compression(parse_compression("small"), vol), (Choice{Choice::Libdeflate, 9}));
  CompressionSetting bad;
  bad.fixed = Choice{Choice::IsaL, 7};
  EXPECT_THROW(resolve_compression(bad, vol), std::invalid_argument);
}

// ========================================================== NIfTI writer ==

TEST(WriteNiftiParallel, SameFileWhateverTheThreadCountAndReadableByZlib) {
  TempDir dir;
  const Bytes vox = ct_volume(96, 80, 30);
  NiftiVolume v;
  v.dim = {96, 80, 30, 1, 1, 1, 1};
  v.affine = {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}}};
  v.voxels = vox;
  Bytes expected = make_nifti_header(v, false);
  expected.insert(expected.end(), vox.begin(), vox.end());
  std::vector<uint8_t> first;
  for (int threads : {1, 2, 5, 0}) {
    NiftiGzOptions opt;
    opt.threads = threads;
    opt.block_size = 50000;
    const fs::path f = dir.path() / ("v" + std::to_string(threads) + ".nii.gz");
    const auto r = write_nifti_gz(f, v, opt);
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(gz.size(), r.bytes);
    EXPECT_TRUE(decodes_to(gz, expected)) << threads;
    if (first.empty()) {
      first = gz;
    } else {
      EXPECT_EQ(gz, first) << "threads " << threads;
    }
  }
  // nibabel (Python's gzip underneath) reads the same voxels back.
  if (have_command("/usr/bin/python3 -c 'import nibabel, numpy'")) {
    write_bytes(dir.path() / "vox.raw", vox.data(), vox.size());
    const std::string py =
        "import sys, nibabel as nib, numpy as np; a = np.asanyarray(nib.load(sys.argv[1]).dataobj); "
        "r = np.fromfile(sys.argv[2], dtype='<i2').reshape((96, 80, 30), order='F'); "
        "sys.exit(0 if a.dtype == np.int16 and a.shape == r.shape and (a == r).all() else 1)";
    EXPECT_EQ(run("/usr/bin/python3 -c \"" + py + "\" '" + (dir.path() / "v1.nii.gz").string() + "' '" +
                  (dir.path() / "vox.raw").string() + "'"),
              0)
        << "nibabel read other voxels";
  } else {
    std::printf("[ info ] /usr/bin/python3 cannot import nibabel; nibabel check not run\n");
  }
  // Bad volumes are still rejected.
  v.dim[2] = 31;
  EXPECT_THROW(write_nifti_gz(dir.path() / "bad.nii.gz", v, NiftiGzOptions{}), std::invalid_argument);
}

}  // namespace
