// Siemens protocol text (ASCCONV) and the slice times estimated from it
// for mosaics that store none (io/siemens_csa).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/siemens_csa.h"

using rapidnii::io::ascconv_numbers;
using rapidnii::io::siemens_protocol_slice_times_ms;

namespace {

std::map<std::string, double> parse(const std::string& text, const std::vector<std::string>& keys) {
  return ascconv_numbers({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, keys);
}

const std::vector<std::string> kKeys = {"sSliceArray.ucMode", "sSliceArray.lSize", "lDelayTimeInTR",
                                        "sSliceArray.lConc", "tProtocolName"};

}  // namespace

TEST(Ascconv, ReadsWantedNumbersBetweenTheMarkersOnly) {
  const std::string text =
      std::string("SV10\0\0\0\0junk sSliceArray.lSize = 99\n", 35) +
      "### ASCCONV BEGIN object=MrProtDataImpl@MrProtocolData ###\n"
      "ulVersion                                = 0x14b44b6\n"
      "tProtocolName                            = \"DOE^JOHN\"\n"
      "sSliceArray.lSize                        = 35\r\n"
      "sSliceArray.ucMode                       = 0x4\n"
      "lDelayTimeInTR                           = 10000   # a comment\n"
      "sSliceArray.lConc                        = 1x\n"
      "### ASCCONV END ###\n"
      "lDelayTimeInTR = 5\n";
  const auto a = parse(text, kKeys);
  EXPECT_EQ(a.at("sSliceArray.lSize"), 35);      // not the 99 before BEGIN
  EXPECT_EQ(a.at("sSliceArray.ucMode"), 4);      // hex
  EXPECT_EQ(a.at("lDelayTimeInTR"), 10000);      // comment dropped; not the 5 after END
  EXPECT_FALSE(a.count("sSliceArray.lConc"));    // unparsable
  EXPECT_FALSE(a.count("tProtocolName"));        // text, never kept
  EXPECT_FALSE(a.count("ulVersion"));            // not wanted
  EXPECT_TRUE(parse("no protocol here", kKeys).empty());
  EXPECT_TRUE(parse("", kKeys).empty());
  // no END marker: read to the end of the block
  EXPECT_EQ(parse("### ASCCONV BEGIN ###\nsSliceArray.lSize = 12", kKeys).at("sSliceArray.lSize"), 12);
}

TEST(SiemensProtocolTimes, OrdersAsTheProtocolSays) {
  std::map<std::string, double> a{{"sSliceArray.lSize", 5}, {"sSliceArray.ucMode", 1}, {"lDelayTimeInTR", 0}};
  EXPECT_EQ(siemens_protocol_slice_times_ms(a, 1000, 5), (std::vector<double>{0, 200, 400, 600, 800}));
  a["sSliceArray.ucMode"] = 2;  // descending
  EXPECT_EQ(siemens_protocol_slice_times_ms(a, 1000, 5), (std::vector<double>{800, 600, 400, 200, 0}));
  a["sSliceArray.ucMode"] = 4;  // interleaved, odd count: 0, 2, 4, then 1, 3
  EXPECT_EQ(siemens_protocol_slice_times_ms(a, 1000, 5), (std::vector<double>{0, 600, 200, 800, 400}));
  a["sSliceArray.lSize"] = 4;  // interleaved, even count: 1, 3, then 0, 2
  EXPECT_EQ(siemens_protocol_slice_times_ms(a, 1000, 4), (std::vector<double>{500, 0, 750, 250}));
  // the delay in TR (us) shortens the spread: (TR - delay) / slices
  a["lDelayTimeInTR"] = 200000;
  EXPECT_EQ(siemens_protocol_slice_times_ms(a, 1000, 4), (std::vector<double>{400, 0, 600, 200}));
}

TEST(SiemensProtocolTimes, NoEstimateUnlessEveryInputIsPlain) {
  const std::map<std::string, double> ok{{"sSliceArray.lSize", 4}, {"sSliceArray.ucMode", 1}};
  ASSERT_EQ(siemens_protocol_slice_times_ms(ok, 1000, 4).size(), 4u);
  auto with = [&](const char* k, double v) {
    auto a = ok;
    a[k] = v;
    return siemens_protocol_slice_times_ms(a, 1000, 4);
  };
  EXPECT_TRUE(siemens_protocol_slice_times_ms(ok, 1000, 5).empty());  // tiles differ from lSize
  EXPECT_TRUE(siemens_protocol_slice_times_ms(ok, 0, 4).empty());     // no TR
  EXPECT_TRUE(siemens_protocol_slice_times_ms({{"sSliceArray.lSize", 1}, {"sSliceArray.ucMode", 1}}, 1000, 1).empty());
  EXPECT_TRUE(with("sSliceArray.ucMode", 8).empty());                  // unknown order
  EXPECT_TRUE(with("sSliceAcceleration.lMultiBandFactor", 2).empty()); // multiband: slices share times
  EXPECT_TRUE(with("sSliceArray.lConc", 2).empty());                   // concatenations
  EXPECT_TRUE(with("sSliceArray.ucImageNumb", 1).empty());             // reversed numbering
  EXPECT_TRUE(with("lDelayTimeInTR", 1000000).empty());                // delay = TR
  EXPECT_TRUE(with("lDelayTimeInTR", -5).empty());
  EXPECT_FALSE(with("sSliceAcceleration.lMultiBandFactor", 1).empty());
  auto no_mode = ok;
  no_mode.erase("sSliceArray.ucMode");
  EXPECT_TRUE(siemens_protocol_slice_times_ms(no_mode, 1000, 4).empty());
}
