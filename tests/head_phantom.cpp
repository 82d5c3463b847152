#include "tests/head_phantom.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace rapidnii::phantom {

namespace {

double sq(double v) { return v * v; }

// (x-c)/a squared sums: <= 1 inside the ellipsoid.
double ell(double x, double y, double z, double cx, double cy, double cz, double ax, double ay,
           double az) {
  return sq((x - cx) / ax) + sq((y - cy) / ay) + sq((z - cz) / az);
}

using M3 = std::array<std::array<double, 3>, 3>;

M3 rot(int axis, double deg) {
  const double r = deg * M_PI / 180, c = std::cos(r), s = std::sin(r);
  M3 m{};
  const int a = (axis + 1) % 3, b = (axis + 2) % 3;
  m[axis][axis] = 1;
  m[a][a] = c;
  m[a][b] = -s;
  m[b][a] = s;
  m[b][b] = c;
  return m;
}

M3 mul(const M3& x, const M3& y) {
  M3 m{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int l = 0; l < 3; ++l) m[i][j] += x[i][l] * y[l][j];
  return m;
}

// splitmix64 -> two uniforms -> one standard normal (Box-Muller).
double normal(uint64_t seed, uint64_t i, uint64_t stream) {
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const uint64_t a = mix(seed * 0x100000001B3ull ^ (i * 4 + stream));
  const uint64_t b = mix(a);
  const double u1 = (static_cast<double>(a >> 11) + 1.0) / 9007199254740993.0;
  const double u2 = static_cast<double>(b >> 11) / 9007199254740992.0;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

struct Values {
  double v[kLabelCount];
};

Values values(Contrast c) {
  Values t{};
  if (c == Contrast::CT) {
    const double hu[kLabelCount] = {-1000, 40, -100, 1000, 35, 5, 10, 40, 40, 45, 40};
    std::copy(hu, hu + kLabelCount, t.v);
  } else if (c == Contrast::MR) {
    const double t1[kLabelCount] = {0, 350, 900, 60, 600, 150, 150, 350, 350, 380, 350};
    std::copy(t1, t1 + kLabelCount, t.v);
  } else {  // T2: CSF and vitreous brightest, fat bright, muscle dark
    const double t2[kLabelCount] = {0, 250, 650, 40, 480, 1000, 1000, 250, 250, 280, 250};
    std::copy(t2, t2 + kLabelCount, t.v);
  }
  return t;
}

uint8_t body_label(Kind k, double x, double y, double z) {
  switch (k) {
    case Kind::Abdomen:
      if (sq(x) + sq(y + 60) <= sq(20)) return kBone;  // spine
      return ell(x, y, 0, 0, 0, 0, 160, 110, 1) <= 1 ? kTissue : kAir;
    case Kind::Knee:
      if (sq(x + 5) + sq(y) <= sq(18)) return kBone;
      return sq(x) + sq(y) <= sq(55) ? kTissue : kAir;
    case Kind::Box:
      return kTissue;
    case Kind::Ball:
      return sq(x) + sq(y) + sq(z - 10) <= sq(80) ? kTissue : kAir;
    case Kind::Head:
      break;
  }
  return kAir;
}

}  // namespace

uint8_t head_label(double x, double y, double z, bool neck) {
  const double ax = std::abs(x);
  const bool cranium = ell(x, y, z, 0, 0, 10, 70, 88, 95) <= 1;
  const bool jaw = ell(x, y, z, 0, 40, -50, 55, 55, 50) <= 1;
  const bool neck_in = neck && z <= -60 && sq(x) + sq(y + 5) <= sq(50);
  const bool nose = ell(x, y, z, 0, 92, -30, 13, 25, 28) <= 1 && y >= 85;
  const bool lips = ell(x, y, z, 0, 90, -70, 24, 10, 9) <= 1;
  const bool ear = ell(ax, y, z, 74, -5, -15, 9, 14, 28) <= 1;
  // Air cut into the face: nostrils and the mouth slit.
  if (nose && z <= -44 && sq(ax - 7) + sq(y - 104) <= sq(4)) return kAir;
  if (lips && std::abs(z + 70) < 1.2 && y > 86 && ax < 22) return kAir;
  // Eyes, eyelids, orbital fat.
  const double de = std::sqrt(sq(ax - 32) + sq(y - 78) + sq(z + 12));
  if (de <= 11) return kEye;
  if (de <= 13.5 && y > 80) return kEyelid;
  if (de <= 15 && y <= 80 && (cranium || jaw)) return kFat;
  if (nose) return kNose;
  if (lips) return kLips;
  // Cranium: cavity (brain, CSF), skull with its base and foramen magnum.
  const double pz = z - 10;
  const bool cavity = ell(x, y, pz, 0, 0, 0, 57, 75, 82) <= 1 && pz > -30;
  if (cavity) {
    if (ell(x, y, pz, 0, -5, 15, 12, 25, 12) <= 1) return kCsf;  // ventricles
    if (ell(x, y, pz, 0, 0, 0, 54, 72, 79) <= 1 && pz > -27) return kBrain;
    return kCsf;
  }
  if (ell(x, y, pz, 0, 0, 0, 64, 82, 89) <= 1 && pz > -40) {
    if (pz < -28 && sq(x) + sq(y + 30) <= sq(15)) return cranium ? kTissue : kAir;  // foramen
    return kBone;
  }
  if (ear && !cranium) return kEar;
  if (cranium || jaw || neck_in) return kTissue;
  return kAir;
}

Phantom make_phantom(const Spec& s) {
  Phantom ph;
  // Field of view (world, axis-aligned) around the head.
  const double half = s.fov / 2;
  std::array<double, 3> lo{-half, 10 - half, -half}, hi{half, 10 + half, half};
  if (s.kind == Kind::Head && s.neck) lo[2] = -170;
  if (s.kind == Kind::Head && !s.neck) lo[2] = -135;
  if (s.z_min != 0) lo[2] = s.z_min;
  if (s.kind == Kind::Abdomen) {
    lo = {-200, -150, -100};
    hi = {200, 150, 100};
  }
  // Grid: stored axis j along world axis perm[j] (sign), tilted about x.
  const M3 tilt = rot(0, s.grid_tilt_deg);
  std::array<double, 3> centre{}, ext{};
  for (int r = 0; r < 3; ++r) {
    centre[r] = 0.5 * (lo[r] + hi[r]);
    ext[r] = hi[r] - lo[r];
  }
  for (int j = 0; j < 3; ++j) {
    double e = ext[s.perm[j]];
    if (s.grid_tilt_deg != 0 && s.perm[j] != 0) e *= 1.1;
    ph.dims[j] = s.dims[j] > 0 ? s.dims[j] : static_cast<int64_t>(std::ceil(e / s.voxel[j]));
  }
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 3; ++j) ph.affine[r][j] = tilt[r][s.perm[j]] * s.sign[j] * s.voxel[j];
  }
  for (int r = 0; r < 3; ++r) {
    double t = centre[r];
    for (int j = 0; j < 3; ++j) t -= ph.affine[r][j] * 0.5 * static_cast<double>(ph.dims[j] - 1);
    ph.affine[r][3] = t;
  }
  // Head rotation: world = R * head.
  const M3 R = mul(rot(2, s.rot_deg[2]), mul(rot(1, s.rot_deg[1]), rot(0, s.rot_deg[0])));
  const int64_t n = ph.dims[0] * ph.dims[1] * ph.dims[2];
  ph.phys.resize(static_cast<std::size_t>(n));
  ph.label.resize(static_cast<std::size_t>(n));
  ph.back.resize(static_cast<std::size_t>(n));
  const Values val = values(s.contrast);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 4096), [&](const tbb::blocked_range<int64_t>& rg) {
    for (int64_t i = rg.begin(); i != rg.end(); ++i) {
      const double v[3] = {static_cast<double>(i % ph.dims[0]),
                           static_cast<double>((i / ph.dims[0]) % ph.dims[1]),
                           static_cast<double>(i / (ph.dims[0] * ph.dims[1]))};
      double p[3];
      for (int r = 0; r < 3; ++r)
        p[r] = ph.affine[r][0] * v[0] + ph.affine[r][1] * v[1] + ph.affine[r][2] * v[2] +
               ph.affine[r][3];
      double q[3];
      for (int r = 0; r < 3; ++r) q[r] = R[0][r] * p[0] + R[1][r] * p[1] + R[2][r] * p[2];
      const uint8_t l =
          s.kind == Kind::Head ? head_label(q[0], q[1], q[2], s.neck) : body_label(s.kind, q[0], q[1], q[2]);
      ph.label[i] = l;
      ph.back[i] = s.kind == Kind::Head && l != kAir && q[1] < -30 && q[2] > -60;
      double x = val.v[l];
      if (s.contrast == Contrast::CT) {
        x += 8 * normal(s.seed, static_cast<uint64_t>(i), 0);
      } else {
        // Smooth multiplicative bias field, Gaussian noise, Rician background.
        const double bias = 1 + 0.08 * std::sin(p[0] / 70) * std::cos(p[1] / 90) + 0.05 * std::sin(p[2] / 60);
        const double n1 = 15 * normal(s.seed, static_cast<uint64_t>(i), 1);
        const double n2 = 15 * normal(s.seed, static_cast<uint64_t>(i), 2);
        x = std::sqrt(sq(x * bias + n1) + sq(n2));
      }
      ph.phys[i] = static_cast<float>(x);
    }
  });
  return ph;
}

template <class T>
std::vector<T> to_stored(const std::vector<float>& phys, double slope, double inter) {
  std::vector<T> out(phys.size());
  for (std::size_t i = 0; i < phys.size(); ++i) {
    double v = (phys[i] - inter) / slope;
    if constexpr (std::is_integral_v<T>) {
      v = std::floor(v + 0.5);
      v = std::clamp(v, static_cast<double>(std::numeric_limits<T>::min()),
                     static_cast<double>(std::numeric_limits<T>::max()));
    }
    out[i] = static_cast<T>(v);
  }
  return out;
}

template std::vector<int16_t> to_stored<int16_t>(const std::vector<float>&, double, double);
template std::vector<uint16_t> to_stored<uint16_t>(const std::vector<float>&, double, double);
template std::vector<float> to_stored<float>(const std::vector<float>&, double, double);

}  // namespace rapidnii::phantom
