// Tests for kernels/deface on synthetic phantoms (tests/head_phantom.*):
// every head orientation, voxel grid and contrast must lose >= 99% of its
// face-feature voxels (nose, lips, eyes, eyelids) -- set to background
// (remove) or changed by at least the stated amount (blur: 100 HU on CT, 10%
// of face tissue minus background on MR) -- while no brain, ear or
// back-of-head voxel changes; non-head phantoms stay byte-identical; the output
// is the same for every thread count; CUDA matches the CPU where a GPU is found.
#include <gtest/gtest.h>

#include <tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "kernels/deface.h"
#include "kernels/device.h"
#include "tests/head_phantom.h"

namespace {

namespace k = rapidnii::kernels;
namespace ph = rapidnii::phantom;
using k::Device;

k::Contrast contrast_of(const ph::Spec& s) {  // MR_T2 -> MR
  return s.contrast == ph::Contrast::CT ? k::Contrast::CT : k::Contrast::MR;
}

struct Metrics {
  int64_t features = 0, features_changed = 0;
  int64_t missed[4] = {0, 0, 0, 0};  // nose, lips, eye, eyelid
  int64_t brain = 0, brain_changed = 0;
  int64_t ear = 0, ear_changed = 0;
  int64_t back = 0, back_changed = 0;
  double stated = 0;  // the blur's least change (physical units)
  k::DefaceReport report;
  double seconds = 0;
  double fraction() const {
    return features ? static_cast<double>(features_changed) / static_cast<double>(features) : 0;
  }
};

template <class T>
Metrics run_case(const ph::Spec& s, k::DefaceMode mode, double slope, double inter,
                 uint64_t seed = 42) {
  const ph::Phantom p = ph::make_phantom(s);
  const std::vector<T> before = ph::to_stored<T>(p.phys, slope, inter);
  std::vector<T> after = before;
  const auto t0 = std::chrono::steady_clock::now();
  const k::DefaceMask m = k::deface_mask<T>(Device::Cpu, std::span<const T>(before), p.dims,
                                            p.affine, slope, inter, contrast_of(s));
  Metrics r;
  r.report = k::deface_apply<T>(Device::Cpu, std::span<T>(after), p.dims, p.affine, slope, inter,
                                m, mode, seed);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.stated = m.amplitude / 2;
  std::vector<T> bg = ph::to_stored<T>(std::vector<float>{static_cast<float>(m.background)}, slope,
                                       inter);
  for (std::size_t i = 0; i < before.size(); ++i) {
    const uint8_t l = p.label[i];
    const bool changed = !(before[i] == after[i]);
    const double delta = std::abs((static_cast<double>(after[i]) - static_cast<double>(before[i])) * slope);
    if (l == ph::kNose || l == ph::kLips || l == ph::kEye || l == ph::kEyelid) {
      ++r.features;
      const bool ok = mode == k::DefaceMode::Remove ? after[i] == bg[0]
                                                    : delta >= r.stated * (1 - 1e-9);
      r.features_changed += ok ? 1 : 0;
      if (!ok) ++r.missed[l == ph::kNose ? 0 : l == ph::kLips ? 1 : l == ph::kEye ? 2 : 3];
    }
    if (l == ph::kBrain) {
      ++r.brain;
      r.brain_changed += changed;
    }
    if (l == ph::kEar) {
      ++r.ear;
      r.ear_changed += changed;
    }
    if (p.back[i]) {
      ++r.back;
      r.back_changed += changed;
    }
  }
  return r;
}

void expect_defaced(const Metrics& m, const std::string& name) {
  std::printf("[deface] %-44s %-14s features %6.2f%% of %7lld  brain %lld/%lld  ears %lld/%lld  "
              "back %lld/%lld  changed %llu  %.2f s  missed n/l/e/lid %lld/%lld/%lld/%lld\n",
              name.c_str(), m.report.status.c_str(), 100 * m.fraction(),
              static_cast<long long>(m.features), static_cast<long long>(m.brain_changed),
              static_cast<long long>(m.brain), static_cast<long long>(m.ear_changed),
              static_cast<long long>(m.ear), static_cast<long long>(m.back_changed),
              static_cast<long long>(m.back),
              static_cast<unsigned long long>(m.report.voxels_changed), m.seconds,
              static_cast<long long>(m.missed[0]), static_cast<long long>(m.missed[1]),
              static_cast<long long>(m.missed[2]), static_cast<long long>(m.missed[3]));
  EXPECT_TRUE(m.report.head_found) << name << ": " << m.report.status;
  EXPECT_TRUE(m.report.altered) << name << ": " << m.report.status;
  EXPECT_GT(m.features, 100) << name;
  EXPECT_GE(m.fraction(), 0.99) << name;
  EXPECT_EQ(m.brain_changed, 0) << name;
  EXPECT_GT(m.brain, 0) << name;
  EXPECT_EQ(m.ear_changed, 0) << name;
  EXPECT_EQ(m.back_changed, 0) << name;
}

ph::Spec head(ph::Contrast c, std::array<double, 3> vox = {3, 3, 3}) {
  ph::Spec s;
  s.contrast = c;
  s.voxel = vox;
  return s;
}

// ---- CT --------------------------------------------------------------------

TEST(Deface, CtRemoveAxial2mm) {
  const auto m = run_case<int16_t>(head(ph::Contrast::CT, {2, 2, 2}), k::DefaceMode::Remove, 1, 0);
  expect_defaced(m, "CT remove axial 2mm");
  EXPECT_EQ(m.report.status, "face removed");
  EXPECT_FALSE(m.report.method.empty());
}

TEST(Deface, CtBlurAxial2mm) {
  const auto m = run_case<int16_t>(head(ph::Contrast::CT, {2, 2, 2}), k::DefaceMode::Blur, 1, 0);
  EXPECT_GE(m.stated, 100.0);
  expect_defaced(m, "CT blur axial 2mm");
  EXPECT_EQ(m.report.status, "face blurred");
}

TEST(Deface, CtHeadRotations) {
  const std::array<std::array<double, 3>, 8> rots{{{30, 0, 0},
                                                    {-30, 0, 0},
                                                    {0, 30, 0},
                                                    {0, -30, 0},
                                                    {0, 0, 30},
                                                    {0, 0, -30},
                                                    {20, 15, -20},
                                                    {-25, -20, 25}}};
  int i = 0;
  for (const auto& r : rots) {
    ph::Spec s = head(ph::Contrast::CT);
    s.rot_deg = r;
    s.neck = (i % 2) == 0;
    const auto mode = (i % 3 == 0) ? k::DefaceMode::Blur : k::DefaceMode::Remove;
    char name[96];
    std::snprintf(name, sizeof name, "CT rot (%g,%g,%g) %s %s", r[0], r[1], r[2],
                  s.neck ? "neck" : "no-neck", mode == k::DefaceMode::Blur ? "blur" : "remove");
    expect_defaced(run_case<int16_t>(s, mode, 1, 0), name);
    ++i;
  }
}

TEST(Deface, CtGridOrientations) {
  struct G {
    const char* name;
    std::array<int, 3> perm, sign;
    double tilt;
  };
  const G grids[] = {{"coronal", {0, 2, 1}, {1, 1, -1}, 0},
                     {"sagittal", {1, 2, 0}, {-1, 1, 1}, 0},
                     {"axial LPS flipped", {0, 1, 2}, {-1, -1, 1}, 0},
                     {"axial z flipped", {0, 1, 2}, {1, 1, -1}, 0},
                     {"y-x-z swapped", {1, 0, 2}, {1, -1, 1}, 0},
                     {"oblique 20deg", {0, 1, 2}, {1, 1, 1}, 20}};
  for (const G& g : grids) {
    ph::Spec s = head(ph::Contrast::CT);
    s.perm = g.perm;
    s.sign = g.sign;
    s.grid_tilt_deg = g.tilt;
    s.rot_deg = {10, 0, 5};
    expect_defaced(run_case<int16_t>(s, k::DefaceMode::Remove, 1, 0), std::string("CT grid ") + g.name);
  }
}

TEST(Deface, CtVoxelSizes) {
  // uint16 with the common intercept -1024.
  expect_defaced(run_case<uint16_t>(head(ph::Contrast::CT, {1, 1, 1}), k::DefaceMode::Remove, 1, -1024),
                 "CT 1mm uint16 inter -1024");
  ph::Spec s = head(ph::Contrast::CT, {0.5, 0.5, 3});
  s.fov = 230;
  s.neck = false;
  expect_defaced(run_case<int16_t>(s, k::DefaceMode::Blur, 1, 0), "CT 0.5x0.5x3 anisotropic blur");
  ph::Spec t = head(ph::Contrast::CT, {3, 1.5, 2.5});
  t.perm = {0, 2, 1};
  expect_defaced(run_case<int16_t>(t, k::DefaceMode::Remove, 1, 0), "CT 3x1.5x2.5 coronal");
}

// ---- MR --------------------------------------------------------------------

TEST(Deface, MrRemoveAndBlur) {
  expect_defaced(run_case<uint16_t>(head(ph::Contrast::MR, {2, 2, 2}), k::DefaceMode::Remove, 1, 0),
                 "MR remove 2mm uint16");
  expect_defaced(run_case<float>(head(ph::Contrast::MR, {2, 2, 2}), k::DefaceMode::Blur, 1, 0),
                 "MR blur 2mm float");
  expect_defaced(run_case<int16_t>(head(ph::Contrast::MR, {1, 1, 1.2}), k::DefaceMode::Remove, 1, 0),
                 "MR remove 1x1x1.2 int16");
}

TEST(Deface, MrRotationsAndGrids) {
  const std::array<std::array<double, 3>, 6> rots{
      {{30, 0, 0}, {-30, 0, 0}, {0, 30, 0}, {0, 0, -30}, {15, -25, 20}, {-20, 20, -15}}};
  int i = 0;
  for (const auto& r : rots) {
    ph::Spec s = head(ph::Contrast::MR);
    s.rot_deg = r;
    s.neck = (i % 2) == 1;
    if (i == 1) s.perm = {1, 2, 0};  // sagittal
    if (i == 2) s.perm = {0, 2, 1};  // coronal
    if (i == 3) s.sign = {-1, -1, 1};
    if (i == 4) s.grid_tilt_deg = -15;
    char name[96];
    std::snprintf(name, sizeof name, "MR rot (%g,%g,%g) grid %d", r[0], r[1], r[2], i);
    expect_defaced(run_case<uint16_t>(s, i % 2 ? k::DefaceMode::Blur : k::DefaceMode::Remove, 1, 0),
                   name);
    ++i;
  }
}

TEST(Deface, MrT2) {
  expect_defaced(run_case<uint16_t>(head(ph::Contrast::MR_T2, {2, 2, 2}), k::DefaceMode::Remove, 1, 0),
                 "MR T2 remove 2mm");
  ph::Spec s = head(ph::Contrast::MR_T2);
  s.rot_deg = {-20, 10, 25};
  s.perm = {1, 2, 0};
  expect_defaced(run_case<uint16_t>(s, k::DefaceMode::Blur, 1, 0), "MR T2 blur sagittal rotated");
}

TEST(Deface, FieldOfViewCutsTheFace) {
  // The field of view starts 50 mm below the head's centre: the chin, the
  // mouth and the bottom of the nose are outside; what is there goes.
  ph::Spec s = head(ph::Contrast::CT, {2, 2, 2});
  s.z_min = -50;
  expect_defaced(run_case<int16_t>(s, k::DefaceMode::Remove, 1, 0), "CT FOV from z=-50 (no chin)");
  ph::Spec m = head(ph::Contrast::MR, {2, 2, 2});
  m.z_min = -50;
  m.rot_deg = {15, 0, 0};
  expect_defaced(run_case<uint16_t>(m, k::DefaceMode::Remove, 1, 0), "MR FOV from z=-50 (no chin)");
}

// ---- Non-head phantoms stay byte-identical ---------------------------------

TEST(Deface, NonHeadsUnchanged) {
  for (ph::Contrast c : {ph::Contrast::CT, ph::Contrast::MR}) {
    for (ph::Kind kind : {ph::Kind::Abdomen, ph::Kind::Knee, ph::Kind::Box, ph::Kind::Ball}) {
      ph::Spec s;
      s.kind = kind;
      s.contrast = c;
      s.voxel = {3, 3, 3};
      const ph::Phantom p = ph::make_phantom(s);
      const std::vector<int16_t> before = ph::to_stored<int16_t>(p.phys, 1, 0);
      std::vector<int16_t> after = before;
      const k::DefaceReport r = k::deface<int16_t>(
          Device::Cpu, std::span<int16_t>(after), p.dims, p.affine, 1, 0, contrast_of(s),
          k::DefaceMode::Remove, 1);
      std::printf("[deface] non-head kind %d contrast %s: %s\n", static_cast<int>(kind),
                  c == ph::Contrast::CT ? "CT" : "MR", r.status.c_str());
      EXPECT_FALSE(r.altered) << r.status;
      EXPECT_EQ(r.voxels_changed, 0u);
      EXPECT_EQ(after, before) << "kind " << static_cast<int>(kind);
    }
  }
}

TEST(Deface, NoFaceInFieldOfView) {
  // The field of view stops above the eyes: nothing to deface, nothing changed.
  ph::Spec s = head(ph::Contrast::CT);
  const ph::Phantom full = ph::make_phantom(s);
  // Keep the slices above z = +5 mm (axial grid, z ascending).
  int64_t z0 = 0;
  while (full.affine[2][2] * static_cast<double>(z0) + full.affine[2][3] < 5) ++z0;
  const std::array<int64_t, 3> dims{full.dims[0], full.dims[1], full.dims[2] - z0};
  std::vector<int16_t> vol;
  const std::vector<int16_t> all = ph::to_stored<int16_t>(full.phys, 1, 0);
  vol.assign(all.begin() + z0 * dims[0] * dims[1], all.end());
  k::Affine a = full.affine;
  for (int r = 0; r < 3; ++r) a[r][3] += a[r][2] * static_cast<double>(z0);
  const std::vector<int16_t> before = vol;
  const auto r = k::deface<int16_t>(Device::Cpu, std::span<int16_t>(vol), dims, a, 1, 0,
                                    k::Contrast::CT, k::DefaceMode::Remove, 1);
  std::printf("[deface] field of view above the eyes: %s\n", r.status.c_str());
  EXPECT_FALSE(r.altered);
  EXPECT_EQ(vol, before);
}

TEST(Deface, FaceNotAnteriorIsLeftAlone) {
  // The head turned round (nose posterior in the patient frame: a wrong
  // position at the console): no nose in the anterior cone, nothing changed.
  ph::Spec s = head(ph::Contrast::CT);
  s.rot_deg = {0, 0, 180};
  const ph::Phantom p = ph::make_phantom(s);
  const std::vector<int16_t> before = ph::to_stored<int16_t>(p.phys, 1, 0);
  std::vector<int16_t> v = before;
  const auto r = k::deface<int16_t>(Device::Cpu, std::span<int16_t>(v), p.dims, p.affine, 1, 0,
                                    k::Contrast::CT, k::DefaceMode::Remove, 1);
  std::printf("[deface] head turned 180 degrees: %s\n", r.status.c_str());
  EXPECT_TRUE(r.head_found);
  EXPECT_FALSE(r.altered);
  EXPECT_EQ(v, before);
}

TEST(Deface, SingleSliceLeftAlone) {
  // One axial slice through the face: a 2-D image is never taken for a head.
  const ph::Phantom full = ph::make_phantom(head(ph::Contrast::CT, {2, 2, 2}));
  int64_t z = 0;
  while (full.affine[2][2] * static_cast<double>(z) + full.affine[2][3] < -30) ++z;
  const std::array<int64_t, 3> dims{full.dims[0], full.dims[1], 1};
  const std::vector<int16_t> all = ph::to_stored<int16_t>(full.phys, 1, 0);
  std::vector<int16_t> v(all.begin() + z * dims[0] * dims[1], all.begin() + (z + 1) * dims[0] * dims[1]);
  k::Affine a = full.affine;
  for (int r = 0; r < 3; ++r) a[r][3] += a[r][2] * static_cast<double>(z);
  const std::vector<int16_t> before = v;
  const auto r = k::deface<int16_t>(Device::Cpu, std::span<int16_t>(v), dims, a, 1, 0,
                                    k::Contrast::CT, k::DefaceMode::Remove, 1);
  std::printf("[deface] single slice: %s\n", r.status.c_str());
  EXPECT_FALSE(r.altered);
  EXPECT_EQ(v, before);
}

// ---- Determinism, 4D, API ---------------------------------------------------

TEST(Deface, DeterministicAcrossThreadCountsAndSeeded) {
  ph::Spec s = head(ph::Contrast::CT);
  s.rot_deg = {12, -8, 6};
  const ph::Phantom p = ph::make_phantom(s);
  const std::vector<int16_t> before = ph::to_stored<int16_t>(p.phys, 1, 0);
  auto run = [&](int threads, uint64_t seed) {
    // An arena of its own: 8 threads even on a 2-core machine.
    tbb::task_arena arena(threads);
    std::vector<int16_t> v = before;
    arena.execute([&] {
      k::deface<int16_t>(Device::Cpu, std::span<int16_t>(v), p.dims, p.affine, 1, 0,
                         k::Contrast::CT, k::DefaceMode::Blur, seed);
    });
    return v;
  };
  const auto a = run(1, 5), b = run(8, 5), c = run(3, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, before);
}

TEST(Deface, MaskAppliesToEveryVolumeOfASeries) {
  const ph::Phantom p = ph::make_phantom(head(ph::Contrast::MR));
  const std::vector<uint16_t> v0 = ph::to_stored<uint16_t>(p.phys, 1, 0);
  std::vector<uint16_t> v1 = v0;
  for (auto& x : v1) x = static_cast<uint16_t>(x + 7);  // a second time point
  const auto m = k::deface_mask<uint16_t>(Device::Cpu, std::span<const uint16_t>(v0), p.dims,
                                          p.affine, 1, 0, k::Contrast::MR);
  ASSERT_TRUE(m.usable()) << m.report.status;
  EXPECT_GT(m.brain_volume_ml, 900);
  EXPECT_LT(m.brain_volume_ml, 2000);
  // Blur moves every altered voxel by at least amplitude/2, so the altered
  // positions show: the same in both time points, as in a fresh analysis.
  auto altered = [&](const std::vector<uint16_t>& in, uint64_t seed) {
    std::vector<uint16_t> v = in;
    const auto r = k::deface_apply<uint16_t>(Device::Cpu, std::span<uint16_t>(v), p.dims,
                                             p.affine, 1, 0, m, k::DefaceMode::Blur, seed);
    EXPECT_TRUE(r.altered);
    std::vector<uint8_t> pos(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) pos[i] = v[i] != in[i];
    return pos;
  };
  const auto pos0 = altered(v0, 3), pos1 = altered(v1, 4);
  EXPECT_EQ(pos0, pos1);
  std::vector<uint16_t> fresh = v0;
  k::deface<uint16_t>(Device::Cpu, std::span<uint16_t>(fresh), p.dims, p.affine, 1, 0,
                      k::Contrast::MR, k::DefaceMode::Blur, 3);
  std::vector<uint8_t> pos_fresh(fresh.size());
  for (std::size_t i = 0; i < fresh.size(); ++i) pos_fresh[i] = fresh[i] != v0[i];
  EXPECT_EQ(pos0, pos_fresh);
  std::vector<uint16_t> a = v1;
  // A mask from another grid is refused.
  k::Affine other = p.affine;
  other[0][3] += 1;
  EXPECT_THROW(k::deface_apply<uint16_t>(Device::Cpu, std::span<uint16_t>(a), p.dims, other, 1, 0,
                                         m, k::DefaceMode::Remove, 3),
               std::invalid_argument);
}

TEST(Deface, ParseAndOff) {
  EXPECT_EQ(k::parse_deface_mode("blur"), k::DefaceMode::Blur);
  EXPECT_EQ(k::parse_deface_mode("REMOVE"), k::DefaceMode::Remove);
  EXPECT_EQ(k::parse_deface_mode("off"), k::DefaceMode::Off);
  EXPECT_THROW(k::parse_deface_mode("smudge"), std::invalid_argument);
  EXPECT_EQ(k::contrast_from_modality("CT"), k::Contrast::CT);
  EXPECT_EQ(k::contrast_from_modality("MR"), k::Contrast::MR);
  std::vector<float> v(8, 1.0f);
  const k::Affine a{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  const auto r = k::deface<float>(Device::Cpu, std::span<float>(v), {2, 2, 2}, a, 1, 0,
                                  k::Contrast::CT, k::DefaceMode::Off, 0);
  EXPECT_EQ(r.status, "off");
  EXPECT_FALSE(r.altered);
  EXPECT_THROW(k::deface<float>(Device::Cpu, std::span<float>(v), {2, 2, 3}, a, 1, 0,
                                k::Contrast::CT, k::DefaceMode::Remove, 0),
               std::invalid_argument);
}

TEST(Deface, CudaMatchesCpu) {
  if (!k::cuda_available()) GTEST_SKIP() << "no CUDA device: CUDA defacing not compared";
  for (k::DefaceMode mode : {k::DefaceMode::Remove, k::DefaceMode::Blur}) {
    ph::Spec s = head(ph::Contrast::CT, {2, 2, 2});
    s.rot_deg = {15, 10, -10};
    const ph::Phantom p = ph::make_phantom(s);
    const std::vector<int16_t> before = ph::to_stored<int16_t>(p.phys, 1, 0);
    std::vector<int16_t> a = before, b = before;
    const auto ra = k::deface<int16_t>(Device::Cpu, std::span<int16_t>(a), p.dims, p.affine, 1, 0,
                                       k::Contrast::CT, mode, 9);
    const auto rb = k::deface<int16_t>(Device::Cuda, std::span<int16_t>(b), p.dims, p.affine, 1,
                                       0, k::Contrast::CT, mode, 9);
    EXPECT_EQ(ra.voxels_changed, rb.voxels_changed);
    EXPECT_EQ(a, b);  // integer output, --fmad=false: bit for bit
  }
}

TEST(Deface, CudaMatchesCpuAcrossChunks) {
  if (!k::cuda_available()) GTEST_SKIP() << "no CUDA device: CUDA defacing not compared";
  // 1.5 mm: ~5M voxels, so the CUDA passes stream the volume in several
  // chunks (4 MiB each); MR (the histogram threshold) in two stored types.
  ph::Spec s = head(ph::Contrast::MR, {1.5, 1.5, 1.5});
  s.rot_deg = {-10, 5, 8};
  const ph::Phantom p = ph::make_phantom(s);
  auto compare = [&p](auto tag) {
    using T = decltype(tag);
    const std::vector<T> before = ph::to_stored<T>(p.phys, 1, 0);
    const auto mc = k::deface_mask<T>(Device::Cpu, std::span<const T>(before), p.dims, p.affine, 1,
                                      0, k::Contrast::MR);
    const auto mg = k::deface_mask<T>(Device::Cuda, std::span<const T>(before), p.dims, p.affine,
                                      1, 0, k::Contrast::MR);
    ASSERT_TRUE(mc.usable()) << mc.report.status;
    EXPECT_EQ(mc.cells, mg.cells);  // the downsample is bit-identical
    EXPECT_EQ(mc.nose_tip, mg.nose_tip);
    EXPECT_EQ(mc.background, mg.background);
    for (k::DefaceMode mode : {k::DefaceMode::Remove, k::DefaceMode::Blur}) {
      std::vector<T> a = before, b = before;
      const auto ra = k::deface_apply<T>(Device::Cpu, std::span<T>(a), p.dims, p.affine, 1, 0, mc,
                                         mode, 4);
      const auto rb = k::deface_apply<T>(Device::Cuda, std::span<T>(b), p.dims, p.affine, 1, 0,
                                         mc, mode, 4);
      EXPECT_EQ(ra.voxels_changed, rb.voxels_changed) << k::deface_mode_name(mode);
      EXPECT_GT(ra.voxels_changed, 0u);
      EXPECT_TRUE(a == b) << k::deface_mode_name(mode);
    }
  };
  compare(uint16_t{});
  compare(float{});
}

}  // namespace
