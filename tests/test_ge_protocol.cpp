// GE's Protocol Data Block (io/ge_protocol): the few numbers slice timing
// needs, from gzip text behind a 4-byte length; anything else is refused.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/ge_protocol.h"

using rapidnii::io::ge_software_version;
using rapidnii::io::parse_ge_protocol;

namespace {

std::vector<std::byte> gzip_text(const std::string& text) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::byte> out(deflateBound(&s, text.size()) + 32);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  s.avail_in = uInt(text.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// The element as GE stores it: little-endian length, then the gzip member.
std::vector<std::byte> block(const std::string& text) {
  const auto gz = gzip_text(text);
  std::vector<std::byte> b(4 + gz.size());
  const uint32_t n = uint32_t(gz.size());
  std::memcpy(b.data(), &n, 4);
  std::memcpy(b.data() + 4, gz.data(), gz.size());
  if (b.size() % 2) b.push_back(std::byte{0});  // OB values have even length
  return b;
}

}  // namespace

TEST(GeProtocol, ReadsSliceOrderHyperBandDelayAndOptions) {
  const auto p = parse_ge_protocol(block(
      "ENTRY \"1\"\nPSEQ \"EPI\"\nIOPT \"FC, EPI, FMRI, MPh\"\nSLICEORDER \"1\"\r\nMBACCEL \"3\"\nDELACQNOAV \"0.25\"\n"));
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->slice_order);
  EXPECT_EQ(*p->slice_order, 1);
  EXPECT_EQ(p->multiband, 3);
  EXPECT_DOUBLE_EQ(p->group_delay, 0.25);
  EXPECT_TRUE(p->fmri && p->multiphase);
  EXPECT_FALSE(p->variable_delays || p->diffusion);

  const auto q = parse_ge_protocol(block("IOPT \"MPhVar\"\nDELACQ \"Minimum\"\nDELACQNOAV \"0.4\"\nMBACCEL \"1\"\n"));
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->slice_order);  // absent: unknown, not sequential
  EXPECT_EQ(q->multiband, 1);
  EXPECT_EQ(q->group_delay, 0);  // "Minimum": no delay, whatever DELACQNOAV says
  EXPECT_TRUE(q->multiphase && q->variable_delays);
}

TEST(GeProtocol, RefusesWhatIsNotSuchABlock) {
  EXPECT_FALSE(parse_ge_protocol({}));
  auto b = block("SLICEORDER \"0\"\n");
  EXPECT_TRUE(parse_ge_protocol(b));
  auto wrong_length = b;
  const uint32_t big = uint32_t(b.size());  // longer than the bytes after it
  std::memcpy(wrong_length.data(), &big, 4);
  EXPECT_FALSE(parse_ge_protocol(wrong_length));
  auto corrupt = b;
  corrupt[14] ^= std::byte{0x5a};  // inside the deflate data: a bad stream or a CRC mismatch
  EXPECT_FALSE(parse_ge_protocol(corrupt));
  auto truncated = b;
  const uint32_t shorter = uint32_t(b.size() - 4 - 8);
  std::memcpy(truncated.data(), &shorter, 4);  // the member without its trailer
  EXPECT_FALSE(parse_ge_protocol(truncated));
  auto not_gzip = b;
  not_gzip[4] = std::byte{0};
  EXPECT_FALSE(parse_ge_protocol(not_gzip));
  EXPECT_FALSE(parse_ge_protocol(block("<?xml version=\"1.0\"?><Protocol/>")));  // newer layout: not read
  EXPECT_FALSE(parse_ge_protocol(block(std::string(5 << 20, ' '))));              // beyond 4 MiB inflated
}

TEST(GeProtocol, SoftwareVersion) {
  auto v = ge_software_version("27\\LX\\MR Software release:RX27.0_R03_1831.a");
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->major, 27.0);
  EXPECT_EQ(v->release, 3);
  v = ge_software_version("28\\LX\\MR29.1_EA_2039.g");
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->major, 29.1);
  EXPECT_EQ(v->release, 0);
  v = ge_software_version("25\\LX\\MR Software release:DV25.0_R02_1549.b");
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->major, 25.0);
  EXPECT_EQ(v->release, 2);
  v = ge_software_version("SIGNA_LX1.MR30.0_R01_2023.a");  // hypothetical form, same grammar
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->major, 30.0);
  EXPECT_FALSE(ge_software_version("27"));
  EXPECT_FALSE(ge_software_version("syngo MR XA30"));
}
