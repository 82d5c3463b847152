// Series grouping, slice sorting and NIfTI geometry on synthetic headers.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <cmath>
#include <numeric>
#include <random>

#include "pipeline/series.h"

using rapidnii::io::SliceHeader;
using rapidnii::pipeline::Affine;
using rapidnii::pipeline::plan_series;
using rapidnii::pipeline::Vec3;

namespace {

SliceHeader slice(std::array<double, 6> iop, Vec3 ipp, int instance = 1) {
  SliceHeader h;
  h.series_uid = "1.2.826.0.1.1";
  h.sop_class_uid = "1.2.840.10008.5.1.4.1.1.4";
  h.modality = "MR";
  h.image_type = "ORIGINAL\\PRIMARY\\M";
  h.photometric = "MONOCHROME2";
  h.series_number = 3;
  h.instance_number = instance;
  h.has_orientation = h.has_position = true;
  h.iop = iop;
  h.ipp = ipp;
  h.pixel_spacing = {0.8, 0.5};  // row spacing, column spacing
  h.slice_thickness = 2;
  h.rows = 6;
  h.cols = 4;
  h.bits_allocated = 16;
  h.bits_stored = 16;
  h.high_bit = 15;
  h.pixel_representation = 1;
  return h;
}

// A stack of n slices starting at `origin`, `step` mm apart along the normal,
// listed in acquisition order `order` (indices into spatial positions).
std::vector<SliceHeader> stack(std::array<double, 6> iop, Vec3 origin, double step, const std::vector<int>& order) {
  const Vec3 n = rapidnii::pipeline::slice_normal(iop);
  std::vector<SliceHeader> out;
  for (size_t a = 0; a < order.size(); ++a) {
    const int k = order[a];
    Vec3 p{origin[0] + n[0] * step * k, origin[1] + n[1] * step * k, origin[2] + n[2] * step * k};
    out.push_back(slice(iop, p, int(a) + 1));
  }
  return out;
}

std::vector<bool> all(size_t n) { return std::vector<bool>(n, true); }

// Instance numbers 1..n in a scrambled order (they carry no order).
std::vector<int> scrambled_instances(size_t n, std::mt19937& rng) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 1);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

Vec3 apply(const Affine& A, double i, double j, double k) {
  Vec3 r;
  for (int a = 0; a < 3; ++a) r[a] = A[a][0] * i + A[a][1] * j + A[a][2] * k + A[a][3];
  return r;
}

// DICOM PS3.3 C.7.6.2.1.1: the LPS position of pixel (row r, column c) of a
// slice is IPP + c * column_spacing * row_direction + r * row_spacing *
// column_direction. NIfTI voxel (i, j, k) must be pixel (ny-1-j, i) of the
// k-th slice along the normal, in RAS (x and y negated).
void expect_affine_matches_dicom(const rapidnii::pipeline::SeriesPlan& p, const std::vector<SliceHeader>& hs) {
  for (const auto& s : p.sources) {
    const SliceHeader& h = hs[s.file];
    for (int i : {0, p.nx - 1})
      for (int j : {0, p.ny - 1}) {
        const int r = p.ny - 1 - j, c = i;
        Vec3 lps;
        for (int a = 0; a < 3; ++a)
          lps[a] = h.ipp[a] + c * h.pixel_spacing[1] * h.iop[a] + r * h.pixel_spacing[0] * h.iop[3 + a];
        const Vec3 ras{-lps[0], -lps[1], lps[2]};
        const Vec3 got = apply(p.affine, i, j, s.z);
        for (int a = 0; a < 3; ++a) EXPECT_NEAR(got[a], ras[a], 1e-6) << "voxel " << i << "," << j << "," << s.z;
      }
  }
}

const std::array<double, 6> kAxial{1, 0, 0, 0, 1, 0};
const std::array<double, 6> kCoronal{1, 0, 0, 0, 0, -1};
const std::array<double, 6> kSagittal{0, 1, 0, 0, 0, -1};

std::array<double, 6> oblique() {
  // rows and columns rotated 20 degrees about x, then 15 about z
  const double a = 20 * M_PI / 180, b = 15 * M_PI / 180;
  Vec3 row{std::cos(b), std::sin(b), 0};
  Vec3 col{-std::sin(b) * std::cos(a), std::cos(b) * std::cos(a), std::sin(a)};
  return {row[0], row[1], row[2], col[0], col[1], col[2]};
}

}  // namespace

TEST(Geometry, AxialAffineHandComputed) {
  auto hs = stack(kAxial, {-100, -120, 30}, 2.0, {0, 1, 2, 3, 4});
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_EQ(p.nx, 4);
  EXPECT_EQ(p.ny, 6);
  EXPECT_EQ(p.nz, 5);
  EXPECT_EQ(p.nt, 1);
  // x: -column spacing (LPS->RAS), y: +row spacing (rows flipped), z: +2.
  const Affine want{{{-0.5, 0, 0, 100}, {0, 0.8, 0, 120 - 0.8 * 5}, {0, 0, 2, 30}}};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(p.affine[r][c], want[r][c], 1e-9) << r << "," << c;
}

TEST(Geometry, EveryOrientationAndSliceOrder) {
  const std::vector<std::vector<int>> orders{
      {0, 1, 2, 3, 4, 5, 6},  // ascending
      {6, 5, 4, 3, 2, 1, 0},  // descending
      {0, 2, 4, 6, 1, 3, 5},  // interleaved
  };
  for (auto iop : {kAxial, kCoronal, kSagittal, oblique()})
    for (const auto& order : orders) {
      auto hs = stack(iop, {-20.5, 33.25, -7}, 3.3, order);
      auto plan = plan_series(hs, all(hs.size()));
      ASSERT_EQ(plan.series.size(), 1u);
      const auto& p = plan.series[0];
      EXPECT_EQ(p.nz, 7);
      expect_affine_matches_dicom(p, hs);
      // slice spacing is the column length of the third affine column
      const double dz = std::sqrt(p.affine[0][2] * p.affine[0][2] + p.affine[1][2] * p.affine[1][2] +
                                  p.affine[2][2] * p.affine[2][2]);
      EXPECT_NEAR(dz, 3.3, 1e-9);
    }
}

TEST(Sorting, ShuffledInputGivesTheSamePlan) {
  auto hs = stack(oblique(), {5, 6, 7}, 1.5, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto ref = plan_series(hs, all(hs.size()));
  std::mt19937 rng(42);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<size_t> perm(hs.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<SliceHeader> shuffled;
    for (size_t i : perm) shuffled.push_back(hs[i]);
    auto plan = plan_series(shuffled, all(shuffled.size()));
    ASSERT_EQ(plan.series.size(), 1u);
    const auto& p = plan.series[0];
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) EXPECT_NEAR(p.affine[r][c], ref.series[0].affine[r][c], 1e-9);
    // slice z of the output is the z-th position along the normal
    const Vec3 n = rapidnii::pipeline::slice_normal(oblique());
    for (const auto& s : p.sources) {
      const auto& h = shuffled[s.file];
      EXPECT_NEAR(rapidnii::pipeline::dot(h.ipp, n) - rapidnii::pipeline::dot({5, 6, 7}, n), 1.5 * s.z, 1e-9);
    }
  }
}

TEST(Sorting, RepeatedPositionsBecomeTimePoints) {
  // 3 positions x 4 volumes, volume given by AcquisitionNumber, input shuffled
  std::vector<SliceHeader> hs;
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < 3; ++k) {
      auto h = slice(kAxial, {0, 0, 4.0 * k}, 100 - (t * 3 + k));  // instance numbers reversed
      h.acquisition_number = t + 1;
      hs.push_back(h);
    }
  std::mt19937 rng(7);
  std::shuffle(hs.begin(), hs.end(), rng);
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_EQ(p.nz, 3);
  EXPECT_EQ(p.nt, 4);
  ASSERT_EQ(p.sources.size(), 12u);
  for (const auto& s : p.sources) {
    EXPECT_EQ(hs[s.file].acquisition_number, int(s.t) + 1);
    EXPECT_NEAR(hs[s.file].ipp[2], 4.0 * s.z, 1e-9);
  }
}

TEST(Sorting, PetTimeSlicesFollowImageIndexThenFrameReferenceTime) {
  // dynamic PET: one AcquisitionTime for the whole series, shuffled instance
  // numbers; ImageIndex (or, without it, FrameReferenceTime) gives the time
  for (bool with_index : {true, false}) {
    std::vector<SliceHeader> hs;
    std::mt19937 rng(11);
    const std::vector<int> instances = scrambled_instances(12, rng);
    for (int t = 0; t < 4; ++t)
      for (int k = 0; k < 3; ++k) {
        auto h = slice(kAxial, {0, 0, 4.0 * k}, instances[size_t(t * 3 + k)]);
        h.modality = "PT";
        h.acquisition_time = 36000;
        if (with_index) h.image_index = t * 3 + k + 1;
        else h.frame_reference_time = 60000.0 * t + 30000;
        hs.push_back(h);
      }
    std::shuffle(hs.begin(), hs.end(), rng);
    auto plan = plan_series(hs, all(hs.size()));
    ASSERT_EQ(plan.series.size(), 1u);
    const auto& p = plan.series[0];
    EXPECT_EQ(p.nt, 4);
    for (const auto& s : p.sources) {
      const auto& h = hs[s.file];
      const int t = with_index ? (h.image_index - 1) / 3 : int(h.frame_reference_time / 60000);
      EXPECT_EQ(int(s.t), t) << (with_index ? "ImageIndex" : "FrameReferenceTime");
    }
  }
}

TEST(Grouping, SplitsIncompatibleSlices) {
  auto base = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2, 3});
  struct Case {
    const char* what;
    std::function<void(SliceHeader&)> change;
  };
  const std::vector<Case> cases{
      {"echo", [](SliceHeader& h) { h.echo_number = 2; }},
      {"orientation", [](SliceHeader& h) { h.iop = kCoronal; }},
      {"size", [](SliceHeader& h) { h.rows = 8; }},
      {"image type", [](SliceHeader& h) { h.image_type = "ORIGINAL\\PRIMARY\\P"; }},
      {"series number", [](SliceHeader& h) { h.series_number = 4; }},
      {"series uid", [](SliceHeader& h) { h.series_uid = "1.2.826.0.1.2"; }},
      {"pixel format", [](SliceHeader& h) { h.pixel_representation = 0; }},
      // two CT reconstructions at the same positions: never one 4D series
      {"reconstruction kernel", [](SliceHeader& h) { h.convolution_kernel = "BONE"; }},
      {"pixel spacing", [](SliceHeader& h) { h.pixel_spacing = {1.2, 1.2}; }},
  };
  for (const auto& c : cases) {
    auto hs = base;
    auto other = base;
    for (auto& h : other) c.change(h);
    hs.insert(hs.end(), other.begin(), other.end());
    auto plan = plan_series(hs, all(hs.size()));
    ASSERT_EQ(plan.series.size(), 2u) << c.what;
    for (const auto& p : plan.series) {
      EXPECT_EQ(p.nz * p.nt, 4) << c.what;
      // no volume mixes the two kinds
      std::set<std::string> kinds;
      for (const auto& s : p.sources) kinds.insert(s.file < base.size() ? "a" : "b");
      EXPECT_EQ(kinds.size(), 1u) << c.what;
    }
  }
}

TEST(Grouping, EchoesWithoutNumbersAreSplitByEchoTime) {
  // no EchoNumbers: the echoes are told apart by their times, numbered by rank
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2});
  auto second = hs;
  for (auto& h : hs) h.echo_time = 10;
  for (auto& h : second) h.echo_time = 4.5;
  hs.insert(hs.end(), second.begin(), second.end());
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 2u);
  std::set<int> numbers;
  for (const auto& p : plan.series) {
    EXPECT_EQ(p.nt, 1);
    EXPECT_EQ(p.nz, 3);
    EXPECT_EQ(p.first.echo_number, p.first.echo_time < 5 ? 1 : 2);
    numbers.insert(p.first.echo_number);
  }
  EXPECT_EQ(numbers.size(), 2u);
  // EchoNumbers that cannot tell the times apart (all 1) are replaced by the
  // TE rank too; numbers that can (2 for 4.5 ms, 1 for 10 ms) are kept
  for (auto& h : hs) h.echo_number = 1;
  plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 2u);
  for (const auto& p : plan.series) EXPECT_EQ(p.first.echo_number, p.first.echo_time < 5 ? 1 : 2);
  for (auto& h : hs) h.echo_number = h.echo_time < 5 ? 2 : 1;
  plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 2u);
  for (const auto& p : plan.series) EXPECT_EQ(p.first.echo_number, p.first.echo_time < 5 ? 2 : 1);
}

TEST(Grouping, SameSeriesStaysTogetherAndUnusableFilesAreIgnored) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {3, 1, 0, 2});
  std::vector<bool> usable{true, false, true, true};
  auto plan = plan_series(hs, usable);
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_EQ(plan.series[0].sources.size(), 3u);
  for (const auto& s : plan.series[0].sources) EXPECT_NE(s.file, 1u);
}

TEST(Grouping, MissingSliceInA4DSeriesFailsWithAReason) {
  std::vector<SliceHeader> hs;
  for (int t = 0; t < 2; ++t)
    for (int k = 0; k < 3; ++k) {
      auto h = slice(kAxial, {0, 0, 2.0 * k}, t * 3 + k + 1);
      h.acquisition_number = t + 1;
      hs.push_back(h);
    }
  hs.pop_back();
  auto plan = plan_series(hs, all(hs.size()));
  EXPECT_TRUE(plan.series.empty());
  ASSERT_EQ(plan.failures.size(), 1u);
  EXPECT_NE(plan.failures[0].reason.find("unequal numbers of images"), std::string::npos);
}

TEST(Geometry, ImagesWithoutPositionArePlacedFromInstanceNumberOnlyOnALine) {
  const Vec3 n = rapidnii::pipeline::slice_normal(oblique());
  // spatial order = instance order (stack() numbers instances by list order)
  auto hs = stack(oblique(), {3, -7, 11}, 2.5, {0, 1, 2, 3, 4, 5});
  const auto reference = plan_series(hs, all(hs.size()));
  ASSERT_EQ(reference.series.size(), 1u);
  hs[3].has_position = false;
  hs[3].ipp = {0, 0, 0};
  std::swap(hs[1], hs[3]);  // file order does not matter
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_FALSE(p.position_unknown);
  EXPECT_EQ(p.nz, 6);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(p.affine[r][c], reference.series[0].affine[r][c], 1e-9);
  // the file without a position is slice 3 of the stack
  for (const auto& s : p.sources) {
    if (!hs[s.file].has_position) {
      EXPECT_EQ(s.z, 3u);
    }
  }
  EXPECT_NE(std::find(p.warnings.begin(), p.warnings.end(),
                      "images without ImagePositionPatient placed from their InstanceNumber"),
            p.warnings.end());

  // positions not on one line in InstanceNumber: the series fails, nothing is guessed
  auto bent = stack(oblique(), {3, -7, 11}, 2.5, {0, 1, 2, 3, 4, 5});
  for (int a = 0; a < 3; ++a) bent[5].ipp[a] += n[a] * 1.0;  // last gap 3.5 mm
  bent[2].has_position = false;
  plan = plan_series(bent, all(bent.size()));
  EXPECT_TRUE(plan.series.empty());
  ASSERT_EQ(plan.failures.size(), 1u);
  EXPECT_NE(plan.failures[0].reason.find("1 of 6 images have no ImagePositionPatient"), std::string::npos);
}

TEST(Geometry, NoPositionAtAllIsMarkedUnknown) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2, 3});
  for (auto& h : hs) h.has_position = false;
  std::reverse(hs.begin(), hs.end());
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_TRUE(p.position_unknown);
  EXPECT_EQ(p.nz, 4);
  for (const auto& s : p.sources) EXPECT_EQ(s.z, uint32_t(hs[s.file].instance_number - 1));
  ASSERT_FALSE(p.warnings.empty());
  EXPECT_NE(p.warnings[0].find("position unknown"), std::string::npos);
}

TEST(Geometry, OneSliceTakesTheSliceSpacingElseTheThickness) {
  // dcm2niix's choice for a single slice: SpacingBetweenSlices, else SliceThickness
  auto one = [](double thickness, double spacing) {
    auto hs = stack(kAxial, {0, 0, 0}, 2, {0});
    hs[0].slice_thickness = thickness;
    hs[0].spacing_between_slices = spacing;
    auto plan = plan_series(hs, all(1));
    EXPECT_EQ(plan.series.size(), 1u);
    return plan.series.empty() ? 0.0 : std::abs(plan.series[0].affine[2][2]);
  };
  EXPECT_NEAR(one(5, 2), 2, 1e-12);
  EXPECT_NEAR(one(5, 0), 5, 1e-12);
  EXPECT_NEAR(one(0, 0), 1, 1e-12);
}

TEST(Grouping, OrientationJitterKeepsOneStack) {
  // direction cosines jittered by up to 1e-3 (0.06 degrees): one stack, never
  // interleaved parts
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> jitter(-1e-3, 1e-3);
  for (auto& h : hs)
    for (double& c : h.iop) c += jitter(rng);
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_EQ(plan.series[0].nz, 12);
}

TEST(Geometry, RoundedPositionsAreNotAGantryTilt) {
  // an oblique stack whose positions were written to 0.1 mm: the first-to-last
  // vector leaves the normal by ~0.4 degrees, but drifts by less than a
  // quarter pixel in-plane: no tilt, no shear, the normal spacing kept
  const std::array<double, 6> oblique{1, 0, 0, 0, std::cos(0.3), std::sin(0.3)};
  auto hs = stack(oblique, {10, 20, 30}, 2.5, {0, 1, 2});
  for (auto& h : hs) {
    h.modality = "CT";
    for (double& x : h.ipp) x = std::round(x * 10) / 10;
  }
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_FALSE(p.gantry_tilt);
  EXPECT_FALSE(p.tilt_resample);
  EXPECT_TRUE(p.warnings.empty());
  const Vec3 n = rapidnii::pipeline::slice_normal(oblique);
  const Vec3 col{-p.affine[0][2], -p.affine[1][2], p.affine[2][2]};  // RAS -> LPS
  const double along = col[0] * n[0] + col[1] * n[1] + col[2] * n[2];
  const double len = std::sqrt(col[0] * col[0] + col[1] * col[1] + col[2] * col[2]);
  EXPECT_NEAR(along, len, 1e-9);  // parallel to the normal
  EXPECT_NEAR(len, 2.5, 0.05);
}

TEST(Grouping, UnevenSpacingIsReported) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2, 3});
  hs[3].ipp[2] = 9;  // gap 2, 2, 5
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  ASSERT_FALSE(plan.series[0].warnings.empty());
  EXPECT_EQ(plan.series[0].warnings[0], "uneven slice spacing");
}

TEST(Rescale, OnePairKeepsIntegersVaryingPairsGiveFloat) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2});
  for (auto& h : hs) {
    h.has_rescale = true;
    h.rescale_slope = 2.5;
    h.rescale_intercept = -1024;
  }
  auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_FALSE(plan.series[0].rescale_to_float);
  EXPECT_EQ(plan.series[0].out_type, rapidnii::io::NiftiType::Int16);
  EXPECT_DOUBLE_EQ(plan.series[0].scl_slope, 2.5);
  EXPECT_DOUBLE_EQ(plan.series[0].scl_inter, -1024);

  hs[1].rescale_slope = 3.0;  // slice at z=2mm -> output slice 1
  plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_TRUE(p.rescale_to_float);
  EXPECT_EQ(p.out_type, rapidnii::io::NiftiType::Float32);
  ASSERT_EQ(p.slopes.size(), 3u);
  EXPECT_DOUBLE_EQ(p.slopes[0], 2.5);
  EXPECT_DOUBLE_EQ(p.slopes[1], 3.0);
  EXPECT_DOUBLE_EQ(p.inters[1], -1024);
}

TEST(Rescale, TwelveBitUnsignedIsWrittenAsInt16AndSixteenBitAsUint16) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1});
  for (auto& h : hs) {
    h.pixel_representation = 0;
    h.bits_stored = 12;
    h.high_bit = 11;
  }
  EXPECT_EQ(plan_series(hs, all(2)).series[0].out_type, rapidnii::io::NiftiType::Int16);
  for (auto& h : hs) h.bits_stored = 16;
  EXPECT_EQ(plan_series(hs, all(2)).series[0].out_type, rapidnii::io::NiftiType::UInt16);
}

TEST(Mosaic, TilesAreUnpackedAlongTheCsaNormal) {
  // 3x3 tiles of 4x6 pixels -> mosaic 18 rows x 12 columns, 8 images
  auto h = slice(kAxial, {-50, -60, 10});
  h.rows = 18;
  h.cols = 12;
  h.mosaic_images = 8;
  h.spacing_between_slices = 3.5;
  h.image_type = "ORIGINAL\\PRIMARY\\M\\ND\\MOSAIC";
  h.has_slice_normal = true;
  h.slice_normal = {0, 0, 1};
  // tile origin: IPP + (12-4)/2 columns * 0.5 mm along x + (18-6)/2 rows * 0.8 mm along y
  const Vec3 o = rapidnii::pipeline::mosaic_tile_origin(h, 6, 4);
  EXPECT_NEAR(o[0], -50 + 4 * 0.5, 1e-12);
  EXPECT_NEAR(o[1], -60 + 6 * 0.8, 1e-12);
  EXPECT_NEAR(o[2], 10, 1e-12);

  std::vector<SliceHeader> hs{h, h};
  hs[1].acquisition_number = 2;
  hs[0].acquisition_number = 1;
  auto plan = plan_series(hs, all(2));
  ASSERT_EQ(plan.series.size(), 1u);
  auto p = plan.series[0];
  EXPECT_EQ(p.nx, 4);
  EXPECT_EQ(p.ny, 6);
  EXPECT_EQ(p.nz, 8);
  EXPECT_EQ(p.nt, 2);
  EXPECT_EQ(p.mosaic_tiles_per_row, 3);
  // tile m is slice z = m along +normal; origin in RAS
  for (const auto& s : p.sources) EXPECT_EQ(s.tile, s.z);
  EXPECT_NEAR(p.affine[2][2], 3.5, 1e-9);
  EXPECT_NEAR(p.affine[2][3], 10, 1e-9);

  // CSA normal opposite to row x column: tile m lies at -m * 3.5 mm; voxel
  // k stays tile k (dcm2niix's order), the slice column points down
  for (auto& x : hs) x.slice_normal = {0, 0, -1};
  plan = plan_series(hs, all(2));
  ASSERT_EQ(plan.series.size(), 1u);
  p = plan.series[0];
  for (const auto& s : p.sources) EXPECT_EQ(s.tile, s.z);
  EXPECT_NEAR(p.affine[2][2], -3.5, 1e-9);
  EXPECT_NEAR(p.affine[2][3], 10, 1e-9);
}

// ---- input coverage (issue 7) ----
#include "io/dicom_header.h"
#include "pipeline/dwi.h"

namespace {

// Independent FSL bvec: project the RAS gradient on the unit voxel axes,
// negate x when the determinant is positive.
Vec3 fsl_expected(const Vec3& lps, const Affine& a) {
  const double ras[3] = {-lps[0], -lps[1], lps[2]};
  Vec3 v{};
  for (int c = 0; c < 3; ++c) {
    double n = 0, d = 0;
    for (int r = 0; r < 3; ++r) {
      n += a[r][c] * a[r][c];
      d += a[r][c] * ras[r];
    }
    v[c] = d / std::sqrt(n);
  }
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (det > 0) v[0] = -v[0];
  return v;
}

}  // namespace

TEST(Diffusion, GradientInVoxelFrameFollowsFslConvention) {
  // LAS-like (det < 0): x kept; RAS-like (det > 0): x negated
  Affine las{{{-2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 3, 0}}};
  Affine ras{{{2, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 3, 0}}};
  const Vec3 g{0.6, 0.0, 0.8};  // LPS: towards patient left and superior
  const Vec3 a = rapidnii::pipeline::gradient_to_voxel(g, las);
  EXPECT_NEAR(a[0], 0.6, 1e-12);  // voxel x points left (RAS -x): +0.6, no flip
  EXPECT_NEAR(a[2], 0.8, 1e-12);
  const Vec3 b = rapidnii::pipeline::gradient_to_voxel(g, ras);
  EXPECT_NEAR(b[0], 0.6, 1e-12);  // voxel x points right: -0.6, then FSL flip
  // oblique plan: against the independent projection
  const auto iop = oblique();
  auto hs = stack(iop, {10, -20, 5}, 2.5, {0, 1, 2});
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const Vec3 g2{0.267, -0.534, 0.802};
  const Vec3 got = rapidnii::pipeline::gradient_to_voxel(g2, plan.series[0].affine);
  const Vec3 want = fsl_expected(g2, plan.series[0].affine);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c], want[c], 1e-12);
}

TEST(Diffusion, PhilipsVolumesOrderedByPrivateNumbersNotInstance) {
  // 3 positions x 4 volumes; instance numbers scrambled; order by
  // (BValueNumber, GradientOrientationNumber)
  const int bn[4] = {1, 2, 2, 3}, gn[4] = {1, 2, 1, 1};
  const double bv[4] = {0, 1000, 1000, 0.5};
  std::vector<SliceHeader> hs;
  std::mt19937 rng(7);
  const std::vector<int> inst = scrambled_instances(12, rng);
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < 3; ++k) {
      SliceHeader h = slice(kAxial, {0, 0, 2.0 * k}, inst[t * 3 + k]);
      h.vendor = SliceHeader::Vendor::Philips;
      h.has_bvalue = true;
      h.bvalue = bv[t];
      h.has_gradient = true;
      h.gradient = {double(t), 1, 0};
      h.philips_bvalue_number = bn[t];
      h.philips_gradient_number = gn[t];
      hs.push_back(h);
    }
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  ASSERT_TRUE(p.dwi);
  ASSERT_EQ(p.nt, 4);
  // expected order of acquisitions t: (1,1)=0, (2,1)=2, (2,2)=1, (3,1)=3
  const int want[4] = {0, 2, 1, 3};
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(p.bvals[t], bv[want[t]]);
    EXPECT_EQ(p.gradients[t][0], double(want[t]));
  }
  for (const auto& s : p.sources) EXPECT_EQ(s.file / 3, uint32_t(want[s.t])) << "slice z " << s.z;
  EXPECT_EQ(rapidnii::pipeline::bval_text(p), "0 1000 1000 0.5\n");
}

TEST(Diffusion, NoGradientTableWithoutWeightedVolumes) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 0, 1});
  hs[2].acquisition_number = hs[3].acquisition_number = 2;
  for (auto& h : hs) h.has_bvalue = true;  // b = 0 everywhere
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_EQ(plan.series[0].nt, 2);
  EXPECT_FALSE(plan.series[0].dwi);
}

TEST(Grouping, ComplexPartsAndStacksAreSeparateOutputs) {
  auto mag = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2});
  auto pha = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2});
  for (auto& h : mag) h.part = SliceHeader::Part::Magnitude;
  for (auto& h : pha) h.part = SliceHeader::Part::Phase;
  std::vector<SliceHeader> hs = mag;
  hs.insert(hs.end(), pha.begin(), pha.end());
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 2u);
  EXPECT_EQ(plan.series[0].nt, 1);
  EXPECT_EQ(plan.series[1].nt, 1);
  EXPECT_NE(plan.series[0].first.part, plan.series[1].first.part);
}

TEST(Enhanced, FramesBecomeVirtualSlicesSplitByEcho) {
  // one file, 2 echoes x 2 volumes x 3 positions, frames stored shuffled
  SliceHeader h = slice(kCoronal, {0, 0, 0});
  h.number_of_frames = 12;
  auto frames = std::make_shared<std::vector<rapidnii::io::FrameInfo>>();
  std::vector<int> perm(12);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(3));
  const Vec3 n = rapidnii::pipeline::slice_normal(kCoronal);
  for (int f = 0; f < 12; ++f) {
    const int q = perm[f], e = q / 6, t = (q / 3) % 2, k = q % 3;
    rapidnii::io::FrameInfo fi;
    fi.has_position = fi.has_orientation = true;
    fi.iop = kCoronal;
    fi.ipp = {n[0] * 4.0 * k, n[1] * 4.0 * k, n[2] * 4.0 * k};
    fi.pixel_spacing = {0.8, 0.5};
    fi.slice_thickness = 4;
    fi.echo_time = e ? 30 : 10;
    fi.echo_number = e + 1;
    fi.temporal_position = t + 1;
    fi.order = q + 1;
    fi.rescale_slope = 1 + f;  // per frame: float output
    fi.has_rescale = true;
    frames->push_back(fi);
  }
  h.frames = frames;
  std::vector<SliceHeader> hs{slice(kAxial, {0, 0, 0}), h};  // file 0: unrelated single slice
  hs[0].series_uid = "other";
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 3u);
  int checked = 0;
  for (const auto& p : plan.series) {
    if (p.first.series_uid == "other") continue;
    EXPECT_EQ(p.nz, 3);
    EXPECT_EQ(p.nt, 2);
    EXPECT_TRUE(p.rescale_to_float);
    EXPECT_EQ(p.frames_per_file.at(1), 12);
    for (const auto& s : p.sources) {
      EXPECT_EQ(s.file, 1u);
      const int q = perm[s.tile];
      EXPECT_EQ(q / 6 + 1, p.first.echo_number);
      EXPECT_EQ(int(s.z), q % 3);
      EXPECT_EQ(int(s.t), (q / 3) % 2);
      EXPECT_EQ(p.slopes[s.z + 3 * s.t], 1.0 + s.tile);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(Geometry, GantryTiltKeepsTheShearedSliceVectorAndIsReported) {
  std::vector<SliceHeader> hs;
  const double tilt = 20 * M_PI / 180;
  for (int k = 0; k < 4; ++k) hs.push_back(slice(kAxial, {0, 5 * std::tan(tilt) * k, 5.0 * k}, k + 1));
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_TRUE(p.gantry_tilt);
  expect_affine_matches_dicom(p, hs);
  EXPECT_NEAR(p.affine[1][2], -5 * std::tan(tilt), 1e-9);  // RAS y of the slice vector
  EXPECT_FALSE(p.warnings.empty());
  // an untilted stack is not flagged
  auto straight = stack(kAxial, {0, 0, 0}, 5, {0, 1, 2, 3});
  EXPECT_FALSE(plan_series(straight, all(4)).series[0].gantry_tilt);
}

TEST(Geometry, CtGantryTiltIsResampledToAnOrthogonalGrid) {
  std::vector<SliceHeader> hs;
  const double tilt = 15 * M_PI / 180;
  for (int k = 0; k < 4; ++k) {
    hs.push_back(slice(kAxial, {0, 5 * std::tan(tilt) * k, 5.0 * k}, k + 1));
    hs.back().modality = "CT";
  }
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  const auto& p = plan.series[0];
  EXPECT_TRUE(p.tilt_resample);
  // per slice: no column shift; rows: 5*tan(15)/0.8 in j (rows stored bottom-up)
  EXPECT_NEAR(p.tilt_shift[0], 0, 1e-12);
  EXPECT_NEAR(p.tilt_shift[1], 5 * std::tan(tilt) / 0.8, 1e-9);
  EXPECT_NEAR(p.affine[0][2], 0, 1e-9);
  EXPECT_NEAR(p.affine[1][2], 0, 1e-9);
  EXPECT_NEAR(p.affine[2][2], 5, 1e-9);
}

TEST(Rescale, RgbIsWrittenAsRgb24WithoutRescale) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1});
  for (auto& h : hs) {
    h.samples_per_pixel = 3;
    h.bits_allocated = h.bits_stored = 8;
    h.high_bit = 7;
    h.pixel_representation = 0;
    h.photometric = "RGB";
  }
  const auto plan = plan_series(hs, all(hs.size()));
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_EQ(plan.series[0].out_type, rapidnii::io::NiftiType::RGB24);
  EXPECT_FALSE(plan.series[0].rescale_to_float);
}

TEST(Grouping, DuplicateInstancesAreFoundNotStacked) {
  auto hs = stack(kAxial, {0, 0, 0}, 2, {0, 1, 2});
  for (size_t i = 0; i < hs.size(); ++i) hs[i].sop_instance_uid = "2.25." + std::to_string(100 + i);
  hs.push_back(hs[1]);  // the same image twice
  std::vector<bool> usable(hs.size(), true);
  auto dup = rapidnii::pipeline::find_duplicate_instances(hs, usable);
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup[0], 3u);
  usable[3] = false;
  auto plan = plan_series(hs, usable);
  ASSERT_EQ(plan.series.size(), 1u);
  EXPECT_EQ(plan.series[0].nz, 3);
  EXPECT_EQ(plan.series[0].nt, 1);
  // the same UID in another series (a modified variant) is no duplicate
  hs[3].series_number = 9;
  EXPECT_TRUE(rapidnii::pipeline::find_duplicate_instances(hs, std::vector<bool>(hs.size(), true)).empty());
  // without a UID nothing is called a duplicate
  hs[3].series_number = hs[1].series_number;
  hs[3].sop_instance_uid.clear();
  EXPECT_TRUE(rapidnii::pipeline::find_duplicate_instances(hs, std::vector<bool>(hs.size(), true)).empty());
}
