// Sidecar acquisition fields in the written voxel frame (pipeline/acquisition):
// phase-encoding direction, echo spacing, readout time and slice timing under
// reorientation. The dcm2niix agreement on real Siemens data is checked by
// e2e_real_data (tests/compare_sidecars.py); these cover what it cannot.
#include <gtest/gtest.h>

#include "pipeline/acquisition.h"

using rapidnii::io::SeriesMeta;
using rapidnii::pipeline::acquisition_fields;
using rapidnii::pipeline::Affine;
using rapidnii::pipeline::SeriesPlan;

namespace {

// An axial 4-slice mosaic plan: 64 columns x 48 rows per tile, tile k at z = k
// (native affine as series.cpp builds it: LPS -> RAS, rows flipped).
SeriesPlan axial_mosaic() {
  SeriesPlan p;
  p.nx = 64;
  p.ny = 48;
  p.nz = 4;
  p.nt = 1;
  p.mosaic_tiles_per_row = 2;
  p.first.has_orientation = p.first.has_position = true;
  p.first.iop = {1, 0, 0, 0, 1, 0};
  p.affine = {{{-2, 0, 0, 60}, {0, 2, 0, -40}, {0, 0, 3, -10}}};
  for (uint32_t k = 0; k < 4; ++k) p.sources.push_back({0, k, k, 0});
  return p;
}

SeriesMeta siemens(const char* dir) {
  SeriesMeta m;
  m.phase_encoding_direction = dir;
  m.phase_encoding_positive = 1;
  m.bandwidth_per_pixel_phase_encode = 25.0;
  m.repetition_time = 2000;
  m.mosaic_slice_times_ms = {0, 1000, 500, 1500};  // interleaved
  return m;
}

Affine flip_k(Affine a) {
  for (int r = 0; r < 3; ++r) {
    a[r][3] += a[r][2] * 3;
    a[r][2] = -a[r][2];
  }
  return a;
}

Affine swap_ik(Affine a) {
  for (int r = 0; r < 3; ++r) std::swap(a[r][0], a[r][2]);
  return a;
}

}  // namespace

TEST(Acquisition, NativeFrameMatchesDcm2niixConventions) {
  const SeriesPlan p = axial_mosaic();
  auto f = acquisition_fields(siemens("COL"), p, p.affine);
  EXPECT_EQ(f.phase_encoding_direction, "j-");  // +column direction, rows flipped in the output
  EXPECT_TRUE(f.phase_encoding_axis.empty());
  ASSERT_TRUE(f.effective_echo_spacing && f.total_readout_time);
  EXPECT_NEAR(*f.effective_echo_spacing, 1.0 / (25.0 * 48), 1e-12);  // ReconMatrixPE = rows of a tile
  EXPECT_NEAR(*f.total_readout_time, 47.0 / (25.0 * 48), 1e-12);
  EXPECT_EQ(f.slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  EXPECT_TRUE(f.slice_encoding_direction.empty());

  f = acquisition_fields(siemens("ROW"), p, p.affine);
  EXPECT_EQ(f.phase_encoding_direction, "i");
  EXPECT_NEAR(*f.effective_echo_spacing, 1.0 / (25.0 * 64), 1e-12);  // ReconMatrixPE = columns

  SeriesMeta negative = siemens("COL");
  negative.phase_encoding_positive = 0;
  EXPECT_EQ(acquisition_fields(negative, p, p.affine).phase_encoding_direction, "j");

  SeriesMeta other = siemens("COL");
  other.phase_encoding_positive.reset();  // polarity unknown: the axis alone
  f = acquisition_fields(other, p, p.affine);
  EXPECT_TRUE(f.phase_encoding_direction.empty());
  EXPECT_EQ(f.phase_encoding_axis, "j");
}

TEST(Acquisition, ReorientedOutputsCarryTheirOwnAxesAndSliceOrder) {
  const SeriesPlan p = axial_mosaic();
  // slices written in reverse: the times follow them
  auto f = acquisition_fields(siemens("COL"), p, flip_k(p.affine));
  EXPECT_EQ(f.slice_timing, (std::vector<double>{1.5, 0.5, 1.0, 0}));
  EXPECT_TRUE(f.slice_encoding_direction.empty());
  // slice axis moved to i: SliceEncodingDirection says so, phase stays on j
  f = acquisition_fields(siemens("ROW"), p, swap_ik(p.affine));
  EXPECT_EQ(f.slice_encoding_direction, "i");
  EXPECT_EQ(f.slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  EXPECT_EQ(f.phase_encoding_direction, "k");  // the row direction is now the third axis
}

TEST(Acquisition, ImplausibleSliceTimesAreNotWritten) {
  const SeriesPlan p = axial_mosaic();
  SeriesMeta m = siemens("COL");
  m.mosaic_slice_times_ms = {0, 2500, 500, 1500};  // beyond TR (2000 ms)
  auto f = acquisition_fields(m, p, p.affine);
  EXPECT_TRUE(f.slice_timing.empty());
  ASSERT_EQ(f.warnings.size(), 1u);
  EXPECT_NE(f.warnings[0].find("slice times not written"), std::string::npos);
  m.mosaic_slice_times_ms = {0, 1000, 500};  // not one per slice
  f = acquisition_fields(m, p, p.affine);
  EXPECT_TRUE(f.slice_timing.empty());
  SeriesPlan unknown = axial_mosaic();
  unknown.position_unknown = true;  // no world frame: no axis to name
  f = acquisition_fields(siemens("COL"), unknown, unknown.affine);
  EXPECT_TRUE(f.phase_encoding_direction.empty() && f.slice_timing.empty());
}
