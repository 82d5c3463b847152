// Tests for kernels/reorient: the plan against world coordinates (every output
// voxel must sit where its input voxel sat), the data against a plain index
// loop, axis codes, the inverse, nibabel's as_closest_canonical as the oracle
// for RAS, and CUDA against the CPU where a GPU is found.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "kernels/reorient.h"

namespace {

namespace k = rapidnii::kernels;
using k::Affine;
using k::Device;
using k::Orient;

// Rotation about x, y, z (degrees), then scaled columns, then an axis
// permutation/flip of the voxel grid: covers axial, sagittal, coronal stored
// order and oblique grids.
Affine make_affine(std::array<double, 3> deg, std::array<double, 3> zoom, std::array<int, 3> perm,
                   std::array<int, 3> sign, std::array<double, 3> t) {
  auto rot = [](int ax, double d) {
    const double r = d * M_PI / 180, c = std::cos(r), s = std::sin(r);
    std::array<std::array<double, 3>, 3> m{};
    const int a = (ax + 1) % 3, b = (ax + 2) % 3;
    m[ax][ax] = 1;
    m[a][a] = c;
    m[a][b] = -s;
    m[b][a] = s;
    m[b][b] = c;
    return m;
  };
  auto mul = [](auto x, auto y) {
    std::array<std::array<double, 3>, 3> m{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int l = 0; l < 3; ++l) m[i][j] += x[i][l] * y[l][j];
    return m;
  };
  auto r = mul(rot(2, deg[2]), mul(rot(1, deg[1]), rot(0, deg[0])));
  Affine a{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) a[i][j] = r[i][perm[j]] * zoom[j] * sign[j];
    a[i][3] = t[i];
  }
  return a;
}

std::array<double, 3> apply(const Affine& a, double i, double j, double kk) {
  std::array<double, 3> w{};
  for (int r = 0; r < 3; ++r) w[r] = a[r][0] * i + a[r][1] * j + a[r][2] * kk + a[r][3];
  return w;
}

struct Case {
  Affine a;
  std::array<int64_t, 3> dims;
};

std::vector<Case> cases() {
  std::vector<Case> cs;
  const std::array<std::array<int, 3>, 6> perms{{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0},
                                                  {2, 0, 1}, {2, 1, 0}}};
  int n = 0;
  for (const auto& p : perms) {
    for (int s = 0; s < 8; ++s) {
      const std::array<int, 3> sign{(s & 1) ? -1 : 1, (s & 2) ? -1 : 1, (s & 4) ? -1 : 1};
      const double tilt = (n % 3 == 0) ? 0.0 : (n % 3 == 1 ? 17.0 : -28.0);
      cs.push_back({make_affine({tilt, 0.5 * tilt, -0.3 * tilt}, {0.9, 1.3, 2.5}, p, sign,
                                {-90.0 + n, 12.5, 40.0 - n}),
                    {37 + n % 5, 29, 23 + n % 3}});
      ++n;
    }
  }
  return cs;
}

TEST(Reorient, ParseOrient) {
  EXPECT_EQ(k::parse_orient("native"), Orient::Native);
  EXPECT_EQ(k::parse_orient("acquired"), Orient::Acquired);
  EXPECT_STREQ(k::orient_name(Orient::Acquired), "acquired");
  EXPECT_EQ(k::parse_orient("RAS"), Orient::RAS);
  EXPECT_EQ(k::parse_orient("las"), Orient::LAS);
  EXPECT_EQ(k::parse_orient("LPS"), Orient::LPS);
  EXPECT_THROW(k::parse_orient("RAI"), std::invalid_argument);
  EXPECT_STREQ(k::orient_name(Orient::LPS), "LPS");
}

// The plan keeps every voxel at its world position and gives the wanted codes.
TEST(Reorient, PlanKeepsWorldGridAndGivesTheCode) {
  for (Orient target : {Orient::RAS, Orient::LAS, Orient::LPS, Orient::Native}) {
    for (const Case& c : cases()) {
      const k::ReorientPlan p = k::plan_reorient(c.a, c.dims, target);
      const k::ReorientMap m = k::make_reorient_map(c.dims, p);
      // Every corner and a few inner voxels.
      for (int64_t o2 : {int64_t{0}, p.out_dims[2] / 2, p.out_dims[2] - 1})
        for (int64_t o1 : {int64_t{0}, p.out_dims[1] - 1})
          for (int64_t o0 : {int64_t{0}, int64_t{3}, p.out_dims[0] - 1}) {
            const int64_t in = m.in_index(o0, o1, o2);
            const int64_t i = in % c.dims[0], j = (in / c.dims[0]) % c.dims[1],
                          kk = in / (c.dims[0] * c.dims[1]);
            const auto w_out = apply(p.out_affine, double(o0), double(o1), double(o2));
            const auto w_in = apply(c.a, double(i), double(j), double(kk));
            for (int r = 0; r < 3; ++r) ASSERT_NEAR(w_out[r], w_in[r], 1e-9);
          }
      const auto code = k::axcodes(p.out_affine);
      const std::string got(code.begin(), code.end());
      const std::string want = target == Orient::RAS   ? "RAS"
                               : target == Orient::LAS ? "LAS"
                               : target == Orient::LPS ? "LPS"
                                                       : [&] {
                                                           const auto c0 = k::axcodes(c.a);
                                                           return std::string(c0.begin(), c0.end());
                                                         }();
      EXPECT_EQ(got, want);
    }
  }
}

// dcm2niix's default for 3D acquisitions (nii_setOrtho): every voxel keeps
// its world position; a grid that is not oblique ends up exactly as
// plan_reorient(RAS) puts it, whatever its stored order; an oblique one
// (up to 28 degrees here) ends up with each output axis along +x, +y, +z in
// turn and voxel (0,0,0) at the corner nearest the left-posterior-inferior
// extreme; an already diagonal positive affine is left alone.
TEST(Reorient, NearestOrthogonalAsDcm2niix) {
  int oblique = 0, straight = 0;
  for (const Case& c : cases()) {
    const k::ReorientPlan p = k::plan_nearest_orthogonal(c.a, c.dims);
    const k::ReorientMap m = k::make_reorient_map(c.dims, p);
    for (int64_t o2 : {int64_t{0}, p.out_dims[2] - 1})
      for (int64_t o1 : {int64_t{0}, p.out_dims[1] - 1})
        for (int64_t o0 : {int64_t{0}, p.out_dims[0] - 1}) {
          const int64_t in = m.in_index(o0, o1, o2);
          const int64_t i = in % c.dims[0], j = (in / c.dims[0]) % c.dims[1], kk = in / (c.dims[0] * c.dims[1]);
          const auto w_out = apply(p.out_affine, double(o0), double(o1), double(o2));
          const auto w_in = apply(c.a, double(i), double(j), double(kk));
          for (int r = 0; r < 3; ++r) ASSERT_NEAR(w_out[r], w_in[r], 1e-9);
        }
    bool is_oblique = false;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        if (c.a[i][j] != 0 && std::abs(c.a[i][j]) < 0.8) is_oblique = true;
    if (!is_oblique) {
      ++straight;
      const k::ReorientPlan ras = k::plan_reorient(c.a, c.dims, Orient::RAS);
      EXPECT_EQ(p.perm, ras.perm);
      EXPECT_EQ(p.flip, ras.flip);
      EXPECT_EQ(p.out_dims, ras.out_dims);
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(p.out_affine[i][j], ras.out_affine[i][j]);
    } else {
      ++oblique;
      // output axis k points along +world k (its largest component)
      for (int kx = 0; kx < 3; ++kx) {
        int big = 0;
        for (int i = 1; i < 3; ++i)
          if (std::abs(p.out_affine[i][kx]) > std::abs(p.out_affine[big][kx])) big = i;
        EXPECT_EQ(big, kx);
        EXPECT_GT(p.out_affine[kx][kx], 0);
      }
    }
    // voxel (0,0,0) is the corner nearest the per-coordinate minimum
    std::array<double, 3> lo{1e300, 1e300, 1e300};
    std::vector<std::array<double, 3>> corners;
    for (int b = 0; b < 8; ++b) {
      corners.push_back(apply(c.a, (b & 1) ? double(c.dims[0] - 1) : 0.0, (b & 2) ? double(c.dims[1] - 1) : 0.0,
                              (b & 4) ? double(c.dims[2] - 1) : 0.0));
      for (int r = 0; r < 3; ++r) lo[r] = std::min(lo[r], corners.back()[r]);
    }
    double best = 1e300;
    for (const auto& w : corners) {
      double d = 0;
      for (int r = 0; r < 3; ++r) d += (w[r] - lo[r]) * (w[r] - lo[r]);
      best = std::min(best, d);
    }
    double d0 = 0;
    for (int r = 0; r < 3; ++r) d0 += (p.out_affine[r][3] - lo[r]) * (p.out_affine[r][3] - lo[r]);
    EXPECT_NEAR(d0, best, 1e-6);
  }
  EXPECT_GT(straight, 10);
  EXPECT_GT(oblique, 10);
  // already canonical: untouched
  const Affine diag{{{0.9, 0, 0, -10}, {0, 1.1, 0, 5}, {0, 0, 2, 3}}};
  EXPECT_TRUE(k::plan_nearest_orthogonal(diag, {10, 11, 12}).identity());
  // a sagittal 3D acquisition as the pipeline stores it natively (P, S, R
  // after the row flip): rotated to R, A, S with the slices along i
  const Affine sag{{{0, 0, 1.0, -60}, {-1.0, 0, 0, 120}, {0, 1.0, 0, -80}}};
  const k::ReorientPlan ps = k::plan_nearest_orthogonal(sag, {256, 256, 134});
  EXPECT_EQ(ps.out_dims, (std::array<int64_t, 3>{134, 256, 256}));
  const auto code = k::axcodes(ps.out_affine);
  EXPECT_EQ(std::string(code.begin(), code.end()), "RAS");
  EXPECT_THROW(k::plan_nearest_orthogonal(sag, {0, 1, 1}), std::invalid_argument);
}

TEST(Reorient, AxcodesOfPlainAffines) {
  const Affine ras{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  const Affine lpi{{{-2, 0, 0, 0}, {0, -2, 0, 0}, {0, 0, -3, 0}}};
  const Affine sag{{{0, 0, 1, 0}, {1, 0, 0, 0}, {0, -1, 0, 0}}};  // x->A, y->I, z->R
  EXPECT_EQ(std::string(k::axcodes(ras).data(), 3), "RAS");
  EXPECT_EQ(std::string(k::axcodes(lpi).data(), 3), "LPI");
  EXPECT_EQ(std::string(k::axcodes(sag).data(), 3), "AIR");
}

// Data against a plain loop over input voxels, for every type and two time
// points, and the inverse brings the input back.
template <class T>
class ReorientTyped : public ::testing::Test {};
using ReorientTypes = ::testing::Types<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t,
                                       std::uint32_t, std::int32_t, float>;
TYPED_TEST_SUITE(ReorientTyped, ReorientTypes);

TYPED_TEST(ReorientTyped, MatchesPlainLoopAndInverts) {
  using T = TypeParam;
  std::mt19937 rng(7);
  for (Orient target : {Orient::RAS, Orient::LPS}) {
    for (const Case& c : cases()) {
      const int64_t nt = 2;
      const int64_t nv = c.dims[0] * c.dims[1] * c.dims[2];
      std::vector<T> in(static_cast<std::size_t>(nv * nt));
      for (auto& v : in) v = static_cast<T>(rng() % 251);
      const auto p = k::plan_reorient(c.a, c.dims, target);
      std::vector<T> out(in.size()), back(in.size());
      k::reorient<T>(Device::Cpu, in, out, c.dims, nt, p);
      // Reference: input voxel (i,j,k) goes to the output voxel whose axis
      // perm-inverse coordinates are i,j,k (flipped where the plan flips).
      std::vector<T> ref(in.size());
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t kk = 0; kk < c.dims[2]; ++kk)
          for (int64_t j = 0; j < c.dims[1]; ++j)
            for (int64_t i = 0; i < c.dims[0]; ++i) {
              const std::array<int64_t, 3> v{i, j, kk};
              std::array<int64_t, 3> o{};
              for (int a = 0; a < 3; ++a) {
                const int64_t x = v[p.perm[a]];
                o[a] = p.flip[a] ? p.out_dims[a] - 1 - x : x;
              }
              ref[t * nv + o[0] + p.out_dims[0] * (o[1] + p.out_dims[1] * o[2])] =
                  in[t * nv + i + c.dims[0] * (j + c.dims[1] * kk)];
            }
      ASSERT_EQ(out, ref);
      k::reorient_back<T>(Device::Cpu, out, back, c.dims, nt, p);
      ASSERT_EQ(back, in);
    }
  }
}

TEST(Reorient, RejectsBadArguments) {
  const Affine a{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  const auto p = k::plan_reorient(a, {4, 3, 2}, Orient::RAS);
  std::vector<float> in(24), out(23);
  EXPECT_THROW(k::reorient<float>(Device::Cpu, in, out, {4, 3, 2}, 1, p), std::invalid_argument);
  EXPECT_THROW(k::plan_reorient(a, {0, 3, 2}, Orient::RAS), std::invalid_argument);
  const Affine sing{{{1, 0, 0, 0}, {1, 0, 0, 0}, {0, 0, 1, 0}}};
  EXPECT_THROW(k::plan_reorient(sing, {4, 3, 2}, Orient::RAS), std::invalid_argument);
}

// nibabel's as_closest_canonical is the oracle for RAS.
TEST(Reorient, MatchesNibabelClosestCanonical) {
  namespace fs = std::filesystem;
  if (std::system(RAPIDNII_PYTHON " -c 'import nibabel, numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "nibabel/numpy not importable by " RAPIDNII_PYTHON;
  }
  const fs::path dir = fs::temp_directory_path() /
                       ("rapidnii_reorient_" + std::to_string(::testing::UnitTest::GetInstance()
                                                                  ->random_seed()) +
                        "_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path script = dir / "oracle.py";
  {
    std::ofstream s(script);
    s << "import sys, numpy as np, nibabel as nib\n"
         "for d in sys.argv[1:]:\n"
         "    dims = [int(x) for x in open(d + '/dims.txt').read().split()]\n"
         "    aff = np.eye(4); aff[:3] = np.loadtxt(d + '/aff.txt').reshape(3, 4)\n"
         "    data = np.fromfile(d + '/in.raw', dtype='<i2').reshape(dims[::-1]).transpose(2, 1, 0)\n"
         "    img = nib.as_closest_canonical(nib.Nifti1Image(data, aff))\n"
         "    c = np.asarray(img.dataobj)\n"
         "    open(d + '/out_dims.txt', 'w').write(' '.join(str(x) for x in c.shape))\n"
         "    np.savetxt(d + '/out_aff.txt', img.affine[:3].reshape(-1), fmt='%.17g')\n"
         "    np.ascontiguousarray(c.transpose(2, 1, 0)).astype('<i2').tofile(d + '/out.raw')\n";
  }
  // Every case in its own folder, one python run for all of them.
  std::mt19937 rng(11);
  const auto cs = cases();
  std::vector<std::size_t> picked;
  std::vector<std::vector<std::int16_t>> inputs;
  std::string cmd = std::string(RAPIDNII_PYTHON) + " " + script.string();
  for (std::size_t ci = 0; ci < cs.size(); ci += 3) {
    const Case& c = cs[ci];
    const int64_t nv = c.dims[0] * c.dims[1] * c.dims[2];
    std::vector<std::int16_t> in(static_cast<std::size_t>(nv));
    for (auto& v : in) v = static_cast<std::int16_t>(static_cast<int>(rng() % 60000) - 30000);
    const fs::path cd = dir / std::to_string(ci);
    fs::create_directories(cd);
    std::ofstream(cd / "dims.txt") << c.dims[0] << ' ' << c.dims[1] << ' ' << c.dims[2];
    std::ofstream af(cd / "aff.txt");
    af.precision(17);
    for (int r = 0; r < 3; ++r)
      for (int q = 0; q < 4; ++q) af << c.a[r][q] << '\n';
    std::ofstream(cd / "in.raw", std::ios::binary)
        .write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(nv * 2));
    cmd += " " + cd.string();
    picked.push_back(ci);
    inputs.push_back(std::move(in));
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  int checked = 0;
  for (std::size_t pi = 0; pi < picked.size(); ++pi) {
    const std::size_t ci = picked[pi];
    const Case& c = cs[ci];
    const fs::path cd = dir / std::to_string(ci);
    const auto& in = inputs[pi];
    const int64_t nv = static_cast<int64_t>(in.size());
    const auto p = k::plan_reorient(c.a, c.dims, Orient::RAS);
    std::vector<std::int16_t> out(in.size()), want(in.size());
    k::reorient<std::int16_t>(Device::Cpu, in, out, c.dims, 1, p);
    std::array<int64_t, 3> od{};
    std::ifstream(cd / "out_dims.txt") >> od[0] >> od[1] >> od[2];
    EXPECT_EQ(od, p.out_dims) << "case " << ci;
    std::ifstream oa(cd / "out_aff.txt");
    for (int r = 0; r < 3; ++r)
      for (int q = 0; q < 4; ++q) {
        double v = 0;
        oa >> v;
        EXPECT_NEAR(p.out_affine[r][q], v, 1e-9) << "case " << ci << " [" << r << "][" << q << "]";
      }
    std::ifstream(cd / "out.raw", std::ios::binary)
        .read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(nv * 2));
    EXPECT_EQ(out, want) << "case " << ci;
    ++checked;
  }
  fs::remove_all(dir);
  EXPECT_EQ(checked, 16);
}

// The CUDA tiled transpose's index math (ReorientTileIndex), run on the host:
// phase 1 of every thread of a block, then phase 2, as the kernel does around
// __syncthreads. Must give what the CPU executor gives, for both directions.
TEST(Reorient, CudaTileIndexMathOnHost) {
  constexpr int kT = k::ReorientTileIndex::kTile;
  std::mt19937 rng(5);
  int tiled = 0;
  for (Orient target : {Orient::RAS, Orient::LPS}) {
    for (const Case& c : cases()) {
      const auto p = k::plan_reorient(c.a, c.dims, target);
      int q = 0;
      for (int a = 0; a < 3; ++a)
        if (p.perm[a] == 0) q = a;
      if (q == 0) continue;  // the line-copy path, no tiles
      ++tiled;
      const int64_t nt = 2;
      std::vector<int32_t> in(static_cast<std::size_t>(c.dims[0] * c.dims[1] * c.dims[2] * nt));
      for (auto& v : in) v = static_cast<int32_t>(rng());
      const auto m = k::make_reorient_map(c.dims, p);
      const int r = 3 - q;
      const int64_t t0 = (m.out_dims[0] + kT - 1) / kT, tq = (m.out_dims[q] + kT - 1) / kT;
      for (bool scatter : {false, true}) {
        std::vector<int32_t> want(in.size()), got(in.size(), -7);
        if (scatter) {
          k::reorient_back<int32_t>(Device::Cpu, in, want, c.dims, nt, p);
        } else {
          k::reorient<int32_t>(Device::Cpu, in, want, c.dims, nt, p);
        }
        const k::ReorientTileIndex ti{m, q, r, t0, scatter};
        for (int64_t outer = 0; outer < m.out_dims[r] * nt; ++outer)
          for (int64_t tile = 0; tile < t0 * tq; ++tile) {
            int32_t buf[kT][kT + 1];
            for (int j = 0; j < kT; ++j)
              for (int tx = 0; tx < kT; ++tx) {
                const int64_t src = ti.load(tile, outer, tx, j);
                if (src >= 0) buf[j][tx] = in[static_cast<std::size_t>(src)];
              }
            for (int j = 0; j < kT; ++j)
              for (int tx = 0; tx < kT; ++tx) {
                const int64_t dst = ti.store(tile, outer, tx, j);
                if (dst >= 0) got[static_cast<std::size_t>(dst)] = buf[tx][j];
              }
          }
        ASSERT_EQ(got, want) << (scatter ? "scatter" : "gather");
      }
    }
  }
  EXPECT_GT(tiled, 40);
}

TEST(Reorient, CudaMatchesCpu) {
  if (!k::cuda_available()) GTEST_SKIP() << "no CUDA device: CUDA reorientation not compared";
  std::mt19937 rng(3);
  for (Orient target : {Orient::RAS, Orient::LPS}) {
    for (const Case& c : cases()) {
      const int64_t nt = 3;
      std::vector<float> in(static_cast<std::size_t>(c.dims[0] * c.dims[1] * c.dims[2] * nt));
      for (auto& v : in) v = static_cast<float>(rng());
      const auto p = k::plan_reorient(c.a, c.dims, target);
      std::vector<float> a(in.size()), b(in.size()), ab(in.size()), bb(in.size());
      k::reorient<float>(Device::Cpu, in, a, c.dims, nt, p);
      k::reorient<float>(Device::Cuda, in, b, c.dims, nt, p);
      ASSERT_EQ(a, b);
      k::reorient_back<float>(Device::Cpu, a, ab, c.dims, nt, p);
      k::reorient_back<float>(Device::Cuda, a, bb, c.dims, nt, p);
      ASSERT_EQ(ab, bb);
    }
  }
}

}  // namespace
