// Internal: the defacing functors shared by the CPU and CUDA executors
// (RAPIDNII_HD). Arithmetic is in double in a fixed order; the CUDA side is
// compiled with --fmad=false so both executors give the same bits.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/hd.h"

namespace rapidnii::kernels::deface_detail {

// ---- Philox-4x32-10 (Salmon et al., SC 2011), counter = voxel index --------
struct Philox {
  static RAPIDNII_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t p = static_cast<uint64_t>(a) * b;
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
  }
  // Returns 4 random 32-bit words for (key, counter).
  static RAPIDNII_HD void draw(uint64_t key, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32),
             c2 = 0x6a09e667u, c3 = 0xbb67ae85u;  // fixed: distinguishes this stream
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      uint32_t hi0, lo0, hi1, lo1;
      mulhilo(0xD2511F53u, c0, hi0, lo0);
      mulhilo(0xCD9E8D57u, c2, hi1, lo1);
      const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
      c0 = n0;
      c1 = n1;
      c2 = n2;
      c3 = n3;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
  }
};

// floor for |x| < 2^62 without a library call (the same bits on both executors).
RAPIDNII_HD inline int64_t floor_i(double x) {
  const int64_t t = static_cast<int64_t>(x);
  return (static_cast<double>(t) > x) ? t - 1 : t;
}
RAPIDNII_HD inline int64_t round_half_up(double x) { return floor_i(x + 0.5); }

// Physical value -> stored value of T: round to nearest, clamp to T's range.
template <class T>
RAPIDNII_HD T to_stored(double phys, double slope, double inter, double lo, double hi) {
  double s = (phys - inter) / slope;
  if constexpr (static_cast<T>(0.5) == 0) {  // integer T
    s = floor(s + 0.5);
  }
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return static_cast<T>(s);
}

// Native grid geometry: voxel -> world (affine rows) and world -> voxel.
struct Geometry {
  double a[3][4];    // voxel -> RAS
  double inv[3][4];  // RAS -> voxel
  int64_t dims[3];
  double origin[3];  // coarse grid
  double h;
  int64_t cdims[3];
};

// ---- Downsample: one coarse cell per index ---------------------------------
// mean and max of the physical values at s^3 sub-points of the cell, each
// taken from the nearest native voxel; inside = at least one sub-point fell in
// the volume.
template <class T>
struct Downsample {
  const T* vol;
  Geometry g;
  double slope, inter;
  int sub;  // sub-points per axis
  float* mean;
  float* maxv;
  uint8_t* inside;

  RAPIDNII_HD void operator()(std::size_t idx) const {
    const int64_t i = static_cast<int64_t>(idx);
    const int64_t cx = i % g.cdims[0], cy = (i / g.cdims[0]) % g.cdims[1],
                  cz = i / (g.cdims[0] * g.cdims[1]);
    double sum = 0, mx = -1e300;
    int64_t n = 0;
    for (int sz = 0; sz < sub; ++sz)
      for (int sy = 0; sy < sub; ++sy)
        for (int sx = 0; sx < sub; ++sx) {
          const double p[3] = {
              g.origin[0] + g.h * (static_cast<double>(cx) + ((sx + 0.5) / sub - 0.5)),
              g.origin[1] + g.h * (static_cast<double>(cy) + ((sy + 0.5) / sub - 0.5)),
              g.origin[2] + g.h * (static_cast<double>(cz) + ((sz + 0.5) / sub - 0.5))};
          int64_t v[3];
          bool ok = true;
          for (int r = 0; r < 3; ++r) {
            const double x = g.inv[r][0] * p[0] + g.inv[r][1] * p[1] + g.inv[r][2] * p[2] +
                             g.inv[r][3];
            v[r] = round_half_up(x);
            if (v[r] < 0 || v[r] >= g.dims[r]) ok = false;
          }
          if (!ok) continue;
          const double val =
              static_cast<double>(vol[v[0] + g.dims[0] * (v[1] + g.dims[1] * v[2])]) * slope +
              inter;
          sum += val;
          if (val > mx) mx = val;
          ++n;
        }
    mean[i] = n ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
    maxv[i] = n ? static_cast<float>(mx) : 0.0f;
    inside[i] = n ? 1 : 0;
  }
};

// ---- Apply: one native voxel per index -------------------------------------
// Returns true when the stored value changed.
template <class T>
struct Apply {
  T* vol;
  Geometry g;
  const uint8_t* cells;   // kCell* flags
  const float* smooth;    // blur: smoothed flattened face (physical), else null
  double slope, inter, lo, hi;
  double background;      // remove
  double amplitude;       // blur
  uint64_t seed;
  bool remove;
  int64_t first = 0;      // index of vol[0] in the volume: a chunk's offset on CUDA

  // World position: base (per line) + a[r][0]*x, in this order on both
  // executors so that they round alike.
  RAPIDNII_HD void line_base(int64_t y, int64_t z, double base[3]) const {
    for (int r = 0; r < 3; ++r)
      base[r] = (g.a[r][1] * static_cast<double>(y) + g.a[r][2] * static_cast<double>(z)) + g.a[r][3];
  }

  // Voxel first + idx (vol holds voxels first, first + 1, ...).
  RAPIDNII_HD bool operator()(std::size_t idx) const {
    const int64_t i = first + static_cast<int64_t>(idx);
    const int64_t x = i % g.dims[0], y = (i / g.dims[0]) % g.dims[1],
                  z = i / (g.dims[0] * g.dims[1]);
    double base[3];
    line_base(y, z, base);
    return voxel(i, x, base);
  }

  // CPU: one line (y, z) of voxels; returns the number changed.
  uint64_t line(int64_t l) const {
    const int64_t y = l % g.dims[1], z = l / g.dims[1];
    double base[3];
    line_base(y, z, base);
    uint64_t n = 0;
    const int64_t i0 = l * g.dims[0];
    for (int64_t x = 0; x < g.dims[0]; ++x) n += voxel(i0 + x, x, base) ? 1 : 0;
    return n;
  }

  RAPIDNII_HD bool voxel(int64_t i, int64_t x, const double base[3]) const {
    double c[3];
    for (int r = 0; r < 3; ++r) {
      const double w = base[r] + g.a[r][0] * static_cast<double>(x);
      c[r] = (w - g.origin[r]) / g.h;
    }
    int64_t n[3], f[3];
    for (int r = 0; r < 3; ++r) {
      n[r] = round_half_up(c[r]);
      if (n[r] < 0 || n[r] >= g.cdims[r]) return false;
      f[r] = floor_i(c[r]);
    }
    const uint8_t flag = cells[n[0] + g.cdims[0] * (n[1] + g.cdims[1] * n[2])];
    if (!(flag & 1u)) return false;
    // Brain veto on the 8 cells around the point as well.
    for (int dz = 0; dz < 2; ++dz)
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          const int64_t qx = f[0] + dx, qy = f[1] + dy, qz = f[2] + dz;
          if (qx < 0 || qy < 0 || qz < 0 || qx >= g.cdims[0] || qy >= g.cdims[1] ||
              qz >= g.cdims[2])
            continue;
          if (cells[qx + g.cdims[0] * (qy + g.cdims[1] * qz)] & 2u) return false;
        }
    const T old = vol[i - first];
    double phys;
    if (remove) {
      phys = background;
    } else {
      // Trilinear sample of the smoothed field.
      double acc = 0;
      for (int dz = 0; dz < 2; ++dz)
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) {
            int64_t q[3] = {f[0] + dx, f[1] + dy, f[2] + dz};
            double wgt = 1;
            const int d[3] = {dx, dy, dz};
            for (int r = 0; r < 3; ++r) {
              const double t = c[r] - static_cast<double>(f[r]);
              wgt = wgt * (d[r] ? t : 1.0 - t);
              if (q[r] < 0) q[r] = 0;
              if (q[r] >= g.cdims[r]) q[r] = g.cdims[r] - 1;
            }
            acc = acc + wgt * static_cast<double>(smooth[q[0] + g.cdims[0] * (q[1] + g.cdims[1] * q[2])]);
          }
      uint32_t rnd[4];
      Philox::draw(seed, static_cast<uint64_t>(i), rnd);
      const double u = static_cast<double>(rnd[0]) * (1.0 / 4294967296.0);  // [0,1)
      const double mag = amplitude * (0.5 + 0.5 * u);
      // The sign is random too, except that a draw landing within
      // amplitude/2 of the original takes the other sign: the output then
      // differs from the original by at least amplitude/2 (as |noise| >=
      // amplitude/2), and reveals of the original only that guarantee. (Taking
      // the sign from the original, e.g. "away from it", would print the
      // original surface back into the noise.)
      const double orig = static_cast<double>(old) * slope + inter;
      phys = (rnd[1] & 1u) ? acc + mag : acc - mag;
      const double dv = phys - orig;
      if ((dv < 0 ? -dv : dv) < 0.5 * amplitude) phys = (rnd[1] & 1u) ? acc - mag : acc + mag;
    }
    const T nv = to_stored<T>(phys, slope, inter, lo, hi);
    vol[i - first] = nv;
    return !(nv == old);
  }
};

// ---- Exact squared Euclidean distance, one line per index ------------------
// Felzenszwalb & Huttenlocher's lower envelope on integer squared distances
// (in cells; the coarse grid is isotropic). d holds f on entry (0 at the
// feature, kInf elsewhere) and the squared distance on exit.
inline constexpr int64_t kInf = int64_t{1} << 50;
inline constexpr int kMaxLine = 512;

struct EdtLines {
  int64_t* d;
  int64_t dims[3];
  int axis;

  RAPIDNII_HD void operator()(std::size_t idx) const {
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    const int64_t stride[3] = {1, dims[0], dims[0] * dims[1]};
    const int64_t l = static_cast<int64_t>(idx);
    const int64_t u = l % dims[a1], w = l / dims[a1];
    int64_t* line = d + u * stride[a1] + w * stride[a2];
    const int64_t st = stride[axis];
    const int n = static_cast<int>(dims[axis]);
    int64_t f[kMaxLine];
    int v[kMaxLine];
    double z[kMaxLine + 1];
    for (int q = 0; q < n; ++q) f[q] = line[q * st];
    int k = -1;
    for (int q = 0; q < n; ++q) {
      if (f[q] >= kInf) continue;
      if (k < 0) {
        k = 0;
        v[0] = q;
        z[0] = -1e300;
        z[1] = 1e300;
        continue;
      }
      double s;
      for (;;) {
        const int p = v[k];
        s = (static_cast<double>(f[q] + static_cast<int64_t>(q) * q) -
             static_cast<double>(f[p] + static_cast<int64_t>(p) * p)) /
            (2.0 * static_cast<double>(q - p));
        if (s <= z[k] && k > 0) {
          --k;
        } else {
          break;
        }
      }
      if (s <= z[k]) {  // k == 0 and the new parabola covers it: replace
        v[0] = q;
        z[0] = -1e300;
        z[1] = 1e300;
        continue;
      }
      ++k;
      v[k] = q;
      z[k] = s;
      z[k + 1] = 1e300;
    }
    if (k < 0) return;  // no feature on this line: stays kInf
    int j = 0;
    for (int q = 0; q < n; ++q) {
      while (z[j + 1] < static_cast<double>(q)) ++j;
      const int64_t dq = q - v[j];
      line[q * st] = dq * dq + f[v[j]];
    }
  }
};

// ---- Gaussian along one axis, one line per index (replicated edges) --------
struct GaussLines {
  const float* in;
  float* out;
  int64_t dims[3];
  int axis;
  const double* w;  // 2*radius+1 weights summing to 1
  int radius;

  RAPIDNII_HD void operator()(std::size_t idx) const {
    const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
    const int64_t stride[3] = {1, dims[0], dims[0] * dims[1]};
    const int64_t l = static_cast<int64_t>(idx);
    const int64_t off = (l % dims[a1]) * stride[a1] + (l / dims[a1]) * stride[a2];
    const int64_t st = stride[axis];
    const int64_t n = dims[axis];
    for (int64_t q = 0; q < n; ++q) {
      double acc = 0;
      for (int t = -radius; t <= radius; ++t) {
        int64_t p = q + t;
        if (p < 0) p = 0;
        if (p >= n) p = n - 1;
        acc = acc + w[t + radius] * static_cast<double>(in[off + p * st]);
      }
      out[off + q * st] = static_cast<float>(acc);
    }
  }
};

}  // namespace rapidnii::kernels::deface_detail
