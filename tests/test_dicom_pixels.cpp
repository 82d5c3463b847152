// Tests for reading headers and native pixels without mapping the file
// (io/dicom_pixels.*, io/dicom_probe.*, io/input_file.*):
// read_native_pixels (header read with pread, pixels read into place with
// preadv) must give exactly what with_native_pixels (the mapped file) gives,
// for headers inside the first read, between the two reads and beyond both,
// for implicit and explicit VR, archive members, pieces that straddle the
// header read, more pieces than one preadv takes, and truncated files. The
// structure check from a prefix agrees with the whole-file walk wherever it
// decides, and the indexer gives the same answer from a file's first bytes
// as from the whole file (generated files, and the validation data).
#include "io/dicom_header.h"
#include "io/dicom_pixels.h"
#include "io/dicom_probe.h"
#include "io/input_file.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace rapidnii::io;

namespace {

constexpr const char* kExplicitLE = "1.2.840.10008.1.2.1";
constexpr const char* kImplicitLE = "1.2.840.10008.1.2";
constexpr const char* kExplicitBE = "1.2.840.10008.1.2.2";

struct Dicom {
  std::vector<uint8_t> bytes;
  uint64_t pixel_offset = 0;  // where the pixel values start
};

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(uint8_t(v & 0xFF));
  b.push_back(uint8_t(v >> 8));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

// One element in little endian (explicit VR unless `implicit`).
void element(std::vector<uint8_t>& b, uint16_t g, uint16_t e, const char* vr, const std::vector<uint8_t>& value,
             bool implicit, uint32_t declared = UINT32_MAX) {
  const uint32_t len = declared == UINT32_MAX ? uint32_t(value.size()) : declared;
  put16(b, g);
  put16(b, e);
  const std::string v(vr);
  if (implicit) {
    put32(b, len);
  } else if (v == "OB" || v == "OW" || v == "UN" || v == "UT") {
    b.push_back(uint8_t(vr[0]));
    b.push_back(uint8_t(vr[1]));
    put16(b, 0);
    put32(b, len);
  } else {
    b.push_back(uint8_t(vr[0]));
    b.push_back(uint8_t(vr[1]));
    put16(b, uint16_t(len));
  }
  b.insert(b.end(), value.begin(), value.end());
}

std::vector<uint8_t> text(std::string s) {
  if (s.size() % 2) s.push_back('\0');
  return {s.begin(), s.end()};
}

// A DICOM file: preamble, meta group, a private OB of `header_pad` bytes
// before the pixels (to put PixelData where the test wants it), then
// `pixel_bytes` pixel values (a pattern) declared as `declared` bytes.
Dicom make_dicom(const std::string& ts, size_t header_pad, size_t pixel_bytes, uint32_t declared = UINT32_MAX) {
  Dicom d;
  std::vector<uint8_t>& b = d.bytes;
  b.assign(128, 0);
  for (const char c : {'D', 'I', 'C', 'M'}) b.push_back(uint8_t(c));
  element(b, 0x0002, 0x0010, "UI", text(ts), false);
  const bool implicit = ts == kImplicitLE;
  element(b, 0x0008, 0x0060, "CS", text("MR"), implicit);
  std::vector<uint8_t> pad(header_pad & ~size_t(1));
  for (size_t i = 0; i < pad.size(); ++i) pad[i] = uint8_t(i * 7);
  element(b, 0x0029, 0x1010, "OB", pad, implicit);
  element(b, 0x0028, 0x0010, "US", {4, 0}, implicit);
  std::vector<uint8_t> px(pixel_bytes);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i * 131 + i / 977) & 0xFF);
  const size_t before = b.size();
  element(b, 0x7FE0, 0x0010, "OW", px, implicit, declared == UINT32_MAX ? uint32_t(px.size()) : declared);
  d.pixel_offset = before + (implicit ? 8 : 12);
  return d;
}

using rapidnii::testdata::TempDir;

InputFile write_file(const TempDir& dir, const std::vector<uint8_t>& bytes, const std::string& name = "img.dcm") {
  const fs::path p = dir.path() / name;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  InputFile f;
  f.path = p;
  return f;
}

SliceHeader expect_for(const std::string& ts) {
  SliceHeader h;
  h.transfer_syntax = ts;
  h.bits_allocated = 16;
  return h;
}

// Rows of an image of `rows` x `row_bytes`, flipped (row r to rows-1-r) the
// way the pipeline places them, sorted by offset.
std::vector<PixelPiece> flipped_rows(std::vector<std::byte>& dst, size_t rows, size_t row_bytes) {
  dst.assign(rows * row_bytes, std::byte{0xEE});
  std::vector<PixelPiece> pieces;
  for (size_t r = 0; r < rows; ++r) pieces.push_back({r * row_bytes, dst.data() + (rows - 1 - r) * row_bytes, row_bytes});
  return pieces;
}

// What with_native_pixels gives for the same pieces.
NativeView through_memory(const InputFile& in, const SliceHeader& h, size_t bytes, std::vector<PixelPiece> pieces,
                          std::vector<std::byte>& dst, std::string& why) {
  std::vector<std::byte> mine(dst.size(), std::byte{0xEE});
  for (PixelPiece& p : pieces) p.dst = mine.data() + (p.dst - dst.data());
  const NativeView v = with_native_pixels(
      in, h, bytes,
      [&](std::span<const std::byte> px) {
        for (const PixelPiece& p : pieces) std::memcpy(p.dst, px.data() + p.offset, p.length);
      },
      why);
  dst = std::move(mine);
  return v;
}

// Both readers over one file: same verdict, same bytes, same reason.
void expect_same(const InputFile& in, const std::string& ts, size_t rows, size_t row_bytes,
                 NativeView want, const std::string& want_why = "") {
  const SliceHeader h = expect_for(ts);
  const size_t bytes = rows * row_bytes;
  std::vector<std::byte> a, b;
  std::vector<PixelPiece> pa = flipped_rows(a, rows, row_bytes);
  std::vector<PixelPiece> pb = flipped_rows(b, rows, row_bytes);
  std::string why_a, why_b;
  const NativeView va = read_native_pixels(in, h, bytes, pa, why_a);
  const NativeView vb = through_memory(in, h, bytes, pb, b, why_b);
  EXPECT_EQ(int(va), int(want));
  EXPECT_EQ(int(va), int(vb));
  EXPECT_EQ(why_a, want_why);
  EXPECT_EQ(why_a, why_b);
  if (want == NativeView::Applied) {
    EXPECT_TRUE(a == b) << "pixel bytes differ";
  }
}

}  // namespace

// Headers read in the first pread (16 KiB), in the second (256 KiB) and
// beyond both (the mapped-file path), explicit and implicit VR.
TEST(NativePixels, ReadIntoPlaceEqualsTheMappedFile) {
  for (const char* ts : {kExplicitLE, kImplicitLE})
    for (const size_t pad : {size_t(100), size_t(16 << 10) - 300, size_t(16 << 10), size_t(100 << 10),
                             size_t(256 << 10) + 10, size_t(300 << 10)}) {
      SCOPED_TRACE(std::string(ts) + " header pad " + std::to_string(pad));
      TempDir dir;
      const size_t rows = 64, row_bytes = 2 * 96;
      const Dicom d = make_dicom(ts, pad, rows * row_bytes);
      const InputFile in = write_file(dir, d.bytes);
      expect_same(in, ts, rows, row_bytes, NativeView::Applied);
      // and the values are the file's pixel bytes, rows flipped
      std::vector<std::byte> dst;
      std::vector<PixelPiece> pieces = flipped_rows(dst, rows, row_bytes);
      std::string why;
      ASSERT_EQ(int(read_native_pixels(in, expect_for(ts), rows * row_bytes, pieces, why)), int(NativeView::Applied));
      for (size_t r = 0; r < rows; ++r)
        ASSERT_EQ(0, std::memcmp(dst.data() + (rows - 1 - r) * row_bytes, d.bytes.data() + d.pixel_offset + r * row_bytes,
                                 row_bytes))
            << "row " << r;
    }
}

// Pixels longer than the image (extra frames) are fine; an image that needs
// more than the element holds is "truncated pixel data" on both paths; a file
// cut short inside its pixels is not taken by either native path.
TEST(NativePixels, ShortPixelDataFailsTheSameWay) {
  TempDir dir;
  const size_t rows = 32, row_bytes = 64;
  // element shorter than the image
  const Dicom shorter = make_dicom(kExplicitLE, 200, rows * row_bytes - 64);
  expect_same(write_file(dir, shorter.bytes, "short.dcm"), kExplicitLE, rows, row_bytes, NativeView::Failed,
              "truncated pixel data");
  // element longer than the image
  const Dicom longer = make_dicom(kExplicitLE, 200, rows * row_bytes + 4096);
  expect_same(write_file(dir, longer.bytes, "long.dcm"), kExplicitLE, rows, row_bytes, NativeView::Applied);
  // file cut inside the pixel values: the declared length runs past the end
  Dicom cut = make_dicom(kExplicitLE, 200, rows * row_bytes);
  cut.bytes.resize(cut.bytes.size() - 100);
  expect_same(write_file(dir, cut.bytes, "cut.dcm"), kExplicitLE, rows, row_bytes, NativeView::NotNative);
  // not DICOM at all
  expect_same(write_file(dir, std::vector<uint8_t>(5000, 'x'), "junk.dcm"), kExplicitLE, rows, row_bytes,
              NativeView::NotNative);
  // a missing file
  InputFile gone;
  gone.path = dir.path() / "missing.dcm";
  std::vector<std::byte> dst;
  std::vector<PixelPiece> pieces = flipped_rows(dst, rows, row_bytes);
  std::string why;
  EXPECT_EQ(int(read_native_pixels(gone, expect_for(kExplicitLE), rows * row_bytes, pieces, why)),
            int(NativeView::Failed));
  EXPECT_EQ(why, "pixel data cannot be read");
}

// Big endian goes through decode_pixels (which swaps): NotNative for both.
TEST(NativePixels, BigEndianIsLeftToTheDecoder) {
  TempDir dir;
  const Dicom d = make_dicom(kExplicitBE, 100, 1024);
  expect_same(write_file(dir, d.bytes), kExplicitBE, 16, 64, NativeView::NotNative);
}

// Archive members are copied from the member bytes.
TEST(NativePixels, ArchiveMembersComeFromMemory) {
  const size_t rows = 40, row_bytes = 80;
  const Dicom d = make_dicom(kExplicitLE, 20000, rows * row_bytes);
  InputFile member;
  member.path = "/nonexistent/archive.zip";  // never opened: the bytes are in memory
  member.member = "a/b.dcm";
  member.bytes = std::make_shared<const std::vector<uint8_t>>(d.bytes);
  expect_same(member, kExplicitLE, rows, row_bytes, NativeView::Applied);
}

// Many small contiguous pieces (more than one preadv takes), then pieces with
// gaps between them (several runs), and one that straddles the end of the
// header read.
TEST(NativePixels, ManyPiecesGapsAndStraddlingTheHeaderRead) {
  TempDir dir;
  const size_t piece = 6, contiguous = size_t(IOV_MAX) * 2 + 17, gapped = 300, count = contiguous + gapped;
  const size_t bytes = (contiguous + 2 * gapped) * piece;
  // the pixels start about 1000 bytes before the end of the 16 KiB header read
  const Dicom probe = make_dicom(kExplicitLE, 0, 0);
  const size_t pad = (16 << 10) - 1000 - probe.bytes.size();
  const Dicom d = make_dicom(kExplicitLE, pad, bytes);
  ASSERT_LT(d.pixel_offset, size_t(16 << 10));
  const InputFile in = write_file(dir, d.bytes);
  std::vector<std::byte> dst(count * piece, std::byte{0xEE});
  std::vector<uint64_t> from(count);
  std::vector<PixelPiece> pieces;
  for (size_t i = 0; i < count; ++i) {
    from[i] = i < contiguous ? i * piece : (contiguous + 2 * (i - contiguous)) * piece;
    pieces.push_back({from[i], dst.data() + (count - 1 - i) * piece, piece});
  }
  // one piece that starts inside the header read and ends after it
  std::vector<std::byte> straddle(64);
  const uint64_t straddle_at = (16 << 10) - d.pixel_offset - 20;
  pieces.push_back({straddle_at, straddle.data(), straddle.size()});
  std::sort(pieces.begin(), pieces.end(), [](const PixelPiece& a, const PixelPiece& b) { return a.offset < b.offset; });
  std::string why;
  ASSERT_EQ(int(read_native_pixels(in, expect_for(kExplicitLE), bytes, pieces, why)), int(NativeView::Applied)) << why;
  for (size_t i = 0; i < count; ++i)
    ASSERT_EQ(0, std::memcmp(dst.data() + (count - 1 - i) * piece, d.bytes.data() + d.pixel_offset + from[i], piece))
        << "piece " << i;
  EXPECT_EQ(0, std::memcmp(straddle.data(), d.bytes.data() + d.pixel_offset + straddle_at, straddle.size()));
}

// Pieces must be sorted and inside the image: a caller's bug, not bad input.
TEST(NativePixels, UnsortedOrOutOfRangePiecesAreRejected) {
  TempDir dir;
  const Dicom d = make_dicom(kExplicitLE, 100, 256);
  const InputFile in = write_file(dir, d.bytes);
  std::vector<std::byte> dst(256);
  std::string why;
  const std::vector<PixelPiece> unsorted{{128, dst.data(), 16}, {0, dst.data() + 16, 16}};
  EXPECT_THROW(read_native_pixels(in, expect_for(kExplicitLE), 256, unsorted, why), std::logic_error);
  const std::vector<PixelPiece> outside{{250, dst.data(), 16}};
  EXPECT_THROW(read_native_pixels(in, expect_for(kExplicitLE), 256, outside, why), std::logic_error);
}

// The prefix walk finds the element the full walk finds, and only when the
// prefix reaches it.
TEST(NativePixels, PrefixWalkAgreesWithTheFullWalk) {
  const Dicom d = make_dicom(kExplicitLE, 5000, 100000);
  const std::span<const uint8_t> all(d.bytes);
  const NativePixels full = find_native_pixels(all);
  ASSERT_TRUE(full.found);
  EXPECT_EQ(full.offset, d.pixel_offset);
  for (const size_t n : {size_t(d.pixel_offset), size_t(d.pixel_offset + 10), size_t(d.bytes.size())}) {
    const NativePixels pre = find_native_pixels_in_prefix(all.first(n), d.bytes.size());
    EXPECT_TRUE(pre.found) << n;
    EXPECT_EQ(pre.offset, full.offset);
    EXPECT_EQ(pre.length, full.length);
  }
  // the prefix ends inside the header
  EXPECT_FALSE(find_native_pixels_in_prefix(all.first(3000), d.bytes.size()).found);
  EXPECT_FALSE(find_native_pixels_in_prefix(all.first(d.pixel_offset - 12), d.bytes.size()).found);
  // the pixels declared longer than the file
  EXPECT_FALSE(find_native_pixels_in_prefix(all.first(d.pixel_offset), d.bytes.size() - 1).found);
  // a file size smaller than the prefix is a caller's error: not found
  EXPECT_FALSE(find_native_pixels_in_prefix(all, d.bytes.size() - 1).found);
}

// ------------------------------------------------- header read from a prefix --

namespace {

// A file with a defined-length and an undefined-length sequence before the
// pixels, whose pixels start after `pad` bytes of private data.
std::vector<uint8_t> with_sequences(size_t pad, size_t pixel_bytes) {
  std::vector<uint8_t> b(128, 0);
  for (const char c : {'D', 'I', 'C', 'M'}) b.push_back(uint8_t(c));
  element(b, 0x0002, 0x0010, "UI", text(kExplicitLE), false);
  element(b, 0x0008, 0x0060, "CS", text("MR"), false);
  // (0008,1140) SQ, defined length, one item holding one element
  std::vector<uint8_t> item_value;
  element(item_value, 0x0008, 0x1150, "UI", text("1.2.3"), false);
  std::vector<uint8_t> item;
  put16(item, 0xFFFE), put16(item, 0xE000), put32(item, uint32_t(item_value.size()));
  item.insert(item.end(), item_value.begin(), item_value.end());
  put16(b, 0x0008), put16(b, 0x1140), b.push_back('S'), b.push_back('Q'), put16(b, 0), put32(b, uint32_t(item.size()));
  b.insert(b.end(), item.begin(), item.end());
  // (0008,9215) SQ, undefined length, one undefined-length item
  put16(b, 0x0008), put16(b, 0x9215), b.push_back('S'), b.push_back('Q'), put16(b, 0), put32(b, 0xFFFFFFFF);
  put16(b, 0xFFFE), put16(b, 0xE000), put32(b, 0xFFFFFFFF);
  element(b, 0x0008, 0x0100, "SH", text("CODE"), false);
  put16(b, 0xFFFE), put16(b, 0xE00D), put32(b, 0);
  put16(b, 0xFFFE), put16(b, 0xE0DD), put32(b, 0);
  std::vector<uint8_t> padding(pad & ~size_t(1), 0x5A);
  element(b, 0x0029, 0x1010, "OB", padding, false);
  element(b, 0x0028, 0x0010, "US", {4, 0}, false);
  element(b, 0x7FE0, 0x0010, "OW", std::vector<uint8_t>(pixel_bytes, 0x11), false);
  return b;
}

}  // namespace

// Whatever the prefix and wherever the file ends, a decided prefix walk gives
// the whole-file walk's verdict and pixel element; a prefix holding the
// PixelData element header is always decided.
TEST(PrefixProbe, DecidedPrefixesAgreeWithTheWholeFile) {
  std::vector<std::vector<uint8_t>> files{with_sequences(300, 4096), with_sequences(20000, 4096),
                                          make_dicom(kImplicitLE, 500, 2048).bytes,
                                          make_dicom(kExplicitLE, 0, 64).bytes};
  // a malformed one: an impossible VR (that of the first data set element)
  std::vector<uint8_t> bad = with_sequences(300, 4096);
  bad[132 + 8 + 20 + 4] = 'z';
  files.push_back(bad);
  int decided = 0, compared = 0;
  for (const auto& full : files) {
    for (size_t cut = 0; cut <= full.size(); cut += 1 + cut / 40) {  // the file ends at `cut`
      const std::span<const uint8_t> file(full.data(), cut);
      NativePixels whole_px;
      const ProbeResult whole = probe_dicom_bytes(file, whole_px);
      for (size_t p = 0; p <= cut; p += 1 + p / 16) {
        const PrefixProbe pre = probe_dicom_prefix(file.first(p), cut);
        ++compared;
        if (p == cut) {
          EXPECT_TRUE(pre.decided) << cut;
        }
        if (!pre.decided) continue;
        ++decided;
        ASSERT_EQ(int(pre.result), int(whole)) << "cut " << cut << " prefix " << p;
        ASSERT_EQ(pre.px.found, whole_px.found) << "cut " << cut << " prefix " << p;
        ASSERT_EQ(pre.px.offset, whole_px.offset);
        ASSERT_EQ(pre.px.length, whole_px.length);
        ASSERT_EQ(pre.px.element, whole_px.element);
      }
    }
  }
  EXPECT_GT(decided, 100);
  EXPECT_GT(compared, decided);  // some prefixes were (rightly) undecided
  // the PixelData header inside the prefix decides, and the header is inside
  const std::vector<uint8_t> f = with_sequences(20000, 100000);
  const NativePixels px = find_native_pixels(f);
  ASSERT_TRUE(px.found);
  const PrefixProbe at = probe_dicom_prefix(std::span<const uint8_t>(f).first(px.offset), f.size());
  EXPECT_TRUE(at.decided);
  EXPECT_TRUE(at.header_inside);
  EXPECT_EQ(int(at.result), int(ProbeResult::Ok));
  EXPECT_FALSE(probe_dicom_prefix(std::span<const uint8_t>(f).first(px.offset - 12), f.size()).decided);
  // a PixelData value longer than the file: decided, TruncatedPixels, header not "inside"
  const PrefixProbe longer = probe_dicom_prefix(std::span<const uint8_t>(f).first(px.offset), f.size() - 1);
  EXPECT_TRUE(longer.decided);
  EXPECT_FALSE(longer.header_inside);
  EXPECT_EQ(int(longer.result), int(ProbeResult::TruncatedPixels));
}

namespace {

// The indexer's answer for a plain file (read from its first bytes) against
// the same bytes as an archive member (walked and parsed whole).
void expect_same_index(const fs::path& p) {
  SCOPED_TRACE(p.string());
  std::ifstream s(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
  InputFile plain;
  plain.path = p;
  InputFile member;
  member.path = p;
  member.member = "m.dcm";
  member.bytes = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  const IndexResult a = index_dicom_file(plain), b = index_dicom_file(member);
  EXPECT_EQ(int(a.skip), int(b.skip));
  EXPECT_EQ(a.detail, b.detail);
  const SliceHeader &x = a.header, &y = b.header;
  EXPECT_EQ(x.series_uid, y.series_uid);
  EXPECT_EQ(x.sop_instance_uid, y.sop_instance_uid);
  EXPECT_EQ(x.transfer_syntax, y.transfer_syntax);
  EXPECT_EQ(x.modality, y.modality);
  EXPECT_EQ(x.image_type, y.image_type);
  EXPECT_EQ(x.instance_number, y.instance_number);
  EXPECT_EQ(x.rows, y.rows);
  EXPECT_EQ(x.cols, y.cols);
  EXPECT_EQ(x.bits_allocated, y.bits_allocated);
  EXPECT_EQ(x.bits_stored, y.bits_stored);
  EXPECT_EQ(x.float_pixels, y.float_pixels);
  EXPECT_EQ(x.number_of_frames, y.number_of_frames);
  EXPECT_EQ(x.ipp, y.ipp);
  EXPECT_EQ(x.iop, y.iop);
  EXPECT_EQ(x.pixel_spacing, y.pixel_spacing);
  EXPECT_EQ(x.rescale_slope, y.rescale_slope);
  EXPECT_EQ(x.rescale_intercept, y.rescale_intercept);
  EXPECT_EQ(x.echo_time, y.echo_time);
  EXPECT_EQ(x.acquisition_time, y.acquisition_time);
  EXPECT_EQ(x.mosaic_images, y.mosaic_images);
  EXPECT_EQ(x.slice_normal, y.slice_normal);
  EXPECT_EQ(int(x.vendor), int(y.vendor));
  EXPECT_EQ(x.bvalue, y.bvalue);
  EXPECT_EQ(x.gradient, y.gradient);
  EXPECT_EQ(x.frames ? x.frames->size() : 0, y.frames ? y.frames->size() : 0);
}

}  // namespace

// Generated files: headers inside the first read, inside the second, beyond
// both; pixels cut short; not DICOM; empty.
TEST(PrefixProbe, IndexFromThePrefixEqualsTheWholeFile) {
  TempDir dir;
  int i = 0;
  auto put = [&](const std::vector<uint8_t>& b) {
    const InputFile f = write_file(dir, b, "f" + std::to_string(i++) + ".dcm");
    expect_same_index(f.path);
  };
  for (const size_t pad : {size_t(100), size_t(40000), size_t(300000)}) {
    put(with_sequences(pad, 8192));
    put(make_dicom(kImplicitLE, pad, 8192).bytes);
    std::vector<uint8_t> cut = with_sequences(pad, 8192);
    cut.resize(cut.size() - 100);
    put(cut);
  }
  put(std::vector<uint8_t>(3000, 'x'));
  put({});
}

// The validation data (every transfer syntax of dcm_qa_ts among them), when
// RAPIDNII_TEST_DATA points at it.
TEST(PrefixProbe, IndexFromThePrefixEqualsTheWholeFileOnRealData) {
  const char* root = std::getenv("RAPIDNII_TEST_DATA");
  if (root == nullptr || !fs::is_directory(root))
    GTEST_SKIP() << "RAPIDNII_TEST_DATA is not set to the validation data; skipping";
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().string().find("/In/") != std::string::npos) {
      expect_same_index(e.path());
      ++n;
    }
  EXPECT_GT(n, 100u);
}
