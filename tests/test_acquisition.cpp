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

namespace {

// An axial classic 2D EPI plan: `nz` slices, 3 volumes, InstanceNumbers
// increasing (direction +1) or decreasing (-1) with z.
SeriesPlan ge_epi(int nz, int direction) {
  SeriesPlan p = axial_mosaic();
  p.mosaic_tiles_per_row = 0;
  p.nz = nz;
  p.nt = 3;
  p.instance_direction = direction;
  p.sources.clear();
  for (uint32_t t = 0; t < 3; ++t)
    for (uint32_t k = 0; k < uint32_t(nz); ++k) p.sources.push_back({t * nz + k, 0, k, t});
  return p;
}

SeriesMeta ge_meta(int slice_order, int mb = 1, const char* sw = "27\\LX\\MR Software release:RX27.0_R02_1831.a") {
  SeriesMeta m;
  m.repetition_time = 2000;
  m.ge_pulse_sequence = "epiRT";
  m.software_versions = sw;
  rapidnii::io::GeProtocol g;
  g.slice_order = slice_order;
  g.multiband = mb;
  m.ge_protocol = g;
  return m;
}

void expect_times(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "slice " << i;
}

}  // namespace

// Values checked against Debian's dcm2niix v1.0.20220720 on synthetic GE
// series (tests/gen_vendor_series.py makes them for e2e_vendor_series).
TEST(Acquisition, GeSliceTimesFromTheProtocol) {
  SeriesPlan p = ge_epi(5, 1);
  expect_times(acquisition_fields(ge_meta(0), p, p.affine).slice_timing, {0, 0.4, 0.8, 1.2, 1.6});
  expect_times(acquisition_fields(ge_meta(1), p, p.affine).slice_timing, {0, 1.2, 0.4, 1.6, 0.8});
  // numbered top-down: the first acquired is the last along z
  p = ge_epi(5, -1);
  expect_times(acquisition_fields(ge_meta(1), p, p.affine).slice_timing, {0.8, 1.6, 0.4, 1.2, 0});
  p = ge_epi(6, 1);
  expect_times(acquisition_fields(ge_meta(1), p, p.affine).slice_timing, {0, 1, 1 / 3.0, 4 / 3.0, 2 / 3.0, 5 / 3.0});
  // HyperBand 2 on 8 slices: 4 excitations, one more before 27 R03
  p = ge_epi(8, 1);
  expect_times(acquisition_fields(ge_meta(1, 2), p, p.affine).slice_timing, {0, 1.2, 0.4, 1.6, 0.8, 0, 1.2, 0.4});
  expect_times(acquisition_fields(ge_meta(1, 2, "27\\LX\\MR Software release:RX27.0_R03_1831.a"), p, p.affine)
                   .slice_timing,
               {0, 1.5, 0.5, 1, 0, 1.5, 0.5, 1});
  // a group delay of 0.5 s: the slices fill 1.5 s of the 2 s TR
  SeriesMeta delayed = ge_meta(1);
  delayed.ge_protocol->group_delay = 0.5;
  p = ge_epi(5, 1);
  expect_times(acquisition_fields(delayed, p, p.affine).slice_timing, {0, 0.9, 0.3, 1.2, 0.6});
  // multi-phase EPI ("epi") too; written in reverse when the output is
  SeriesMeta mph = ge_meta(1);
  mph.ge_pulse_sequence = "epi";
  expect_times(acquisition_fields(mph, p, flip_k(p.affine)).slice_timing, {0.8, 1.6, 0.4, 1.2, 0});
}

TEST(Acquisition, GeSliceTimesOnlyWhenTheProtocolTells) {
  SeriesPlan p = ge_epi(5, 1);
  auto none = [&](const SeriesMeta& m, const SeriesPlan& plan, const char* warning) {
    const auto f = acquisition_fields(m, plan, plan.affine);
    EXPECT_TRUE(f.slice_timing.empty());
    if (warning) {
      ASSERT_EQ(f.warnings.size(), 1u);
      EXPECT_NE(f.warnings[0].find(warning), std::string::npos) << f.warnings[0];
    } else {
      EXPECT_TRUE(f.warnings.empty());
    }
  };
  SeriesMeta m = ge_meta(1);
  m.ge_pulse_sequence = "epi2";  // diffusion: no rule
  none(m, p, nullptr);
  m.ge_pulse_sequence = "fgre";
  none(m, p, nullptr);
  m = ge_meta(1);
  m.ge_protocol->slice_order.reset();
  none(m, p, "SLICEORDER");
  m = ge_meta(1);
  m.ge_protocol->group_delay = 2.5;  // beyond TR
  none(m, p, "group delay");
  m = ge_meta(1);
  m.ge_pulse_sequence = "epi";
  m.ge_protocol->multiphase = m.ge_protocol->variable_delays = true;
  none(m, p, "variable delays");
  none(ge_meta(1, 2, "25\\LX\\MR Software release:DV25.0_R02_1549.b"), ge_epi(8, 1), "HyperBand");
  none(ge_meta(1), ge_epi(5, 0), "numbered");  // instances not in slice order
  SeriesPlan single = ge_epi(5, 1);
  single.nt = 1;  // one volume: nothing (as dcm2niix)
  none(ge_meta(1), single, nullptr);
  SeriesMeta no_protocol = ge_meta(1);
  no_protocol.ge_protocol.reset();
  none(no_protocol, p, nullptr);
}

// Some Siemens multiband versions store wrong times in the first volume
// only; dcm2niix then takes the second volume's (dcm_qa_orientation's two
// multiband series in e2e_real_data are such a case).
TEST(Acquisition, MosaicTimesOfTheSecondVolumeWhenTheFirstAreWrong) {
  SeriesPlan p = axial_mosaic();
  p.nt = 2;
  SeriesMeta m = siemens("COL");
  m.mosaic_slice_times_ms = {0, 2500, 500, 1500};         // beyond TR
  m.mosaic_slice_times_ms_second = {10, 1010, 510, 1510};  // good: minimum subtracted
  EXPECT_EQ(acquisition_fields(m, p, p.affine).slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  m.mosaic_slice_times_ms = {0, 0, 0, 0};  // all equal in the first
  EXPECT_EQ(acquisition_fields(m, p, p.affine).slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  m.mosaic_slice_times_ms = {0, 1000, 500, 1250};  // good, but another range than the second's
  EXPECT_EQ(acquisition_fields(m, p, p.affine).slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  m.mosaic_slice_times_ms = {0, 1000, 500, 1500};  // good and the same range: the first's
  m.mosaic_slice_times_ms_second = {10, 1510, 510, 1010};
  EXPECT_EQ(acquisition_fields(m, p, p.affine).slice_timing, (std::vector<double>{0, 1.0, 0.5, 1.5}));
  m.mosaic_slice_times_ms = {0, 2500, 500, 1500};
  m.mosaic_slice_times_ms_second = {0, 2600, 500, 1500};  // both wrong: nothing, and a warning
  const auto f = acquisition_fields(m, p, p.affine);
  EXPECT_TRUE(f.slice_timing.empty());
  EXPECT_EQ(f.warnings.size(), 1u);
}
