// Tests for the native pixel readers (io/dicom_pixels.*, io/dicom_probe.*):
// read_native_pixels (header read with pread, pixels read into place with
// preadv) must give exactly what with_native_pixels (the mapped file) gives,
// for headers inside the first read, between the two reads and beyond both,
// for implicit and explicit VR, archive members, pieces that straddle the
// header read, more pieces than one preadv takes, and truncated files.
#include "io/dicom_pixels.h"
#include "io/dicom_probe.h"
#include "io/input_file.h"
#include "io/dicom_header.h"

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
  b.insert(b.end(), {'D', 'I', 'C', 'M'});
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

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("rapidnii_pixels_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

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
