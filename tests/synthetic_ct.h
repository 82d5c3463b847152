// Generated test data shared by the io tests and benchmarks: a xorshift
// generator and a CT-like int16 volume, so both measure the same content.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rapidnii::testdata {

using Bytes = std::vector<std::byte>;

inline uint64_t next_rand(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// CT-like int16 volume (little endian): a padding value outside the circular
// field of view, air at -1000 HU with noise inside it, an elliptical body of
// smoothly varying soft tissue with noise, a bone rim and two lungs.
inline Bytes ct_volume(int nx, int ny, int nz, uint64_t seed = 1) {
  Bytes out(static_cast<size_t>(nx) * ny * nz * 2);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  auto gauss = [&] {  // approx N(0,1): sum of 4 uniforms, centred and scaled
    double t = 0;
    for (int k = 0; k < 4; ++k) t += static_cast<double>(next_rand(s) >> 11) * 0x1.0p-53;
    return (t - 2.0) * 1.7320508;
  };
  size_t at = 0;
  for (int z = 0; z < nz; ++z) {
    const double zf = nz > 1 ? static_cast<double>(z) / (nz - 1) : 0.5;
    const double a = nx * (0.30 + 0.08 * std::sin(3.0 * zf)), b = ny * (0.24 + 0.05 * std::cos(2.0 * zf));
    for (int y = 0; y < ny; ++y) {
      for (int x = 0; x < nx; ++x) {
        const double dx = x - nx / 2.0, dy = y - ny / 2.0;
        double v;
        if (dx * dx + dy * dy > 0.24 * nx * nx) {
          v = -1024;  // outside the reconstructed field of view
        } else {
          const double rr = (dx * dx) / (a * a) + (dy * dy) / (b * b);
          if (rr > 1.0) {
            v = -1000 + 5 * gauss();
          } else if (rr > 0.86) {
            v = 700 + 250 * std::sin(0.05 * x + 0.07 * y) + 30 * gauss();
          } else {
            const double lx = std::fabs(dx) - 0.45 * a, ly = dy;
            if ((lx * lx) / (0.3 * a * 0.3 * a) + (ly * ly) / (0.6 * b * 0.6 * b) < 1.0) {
              v = -850 + 40 * std::sin(0.2 * x) * std::cos(0.15 * y) + 15 * gauss();
            } else {
              v = 40 + 25 * std::sin(0.031 * x + zf) * std::cos(0.027 * y) + 10 * std::sin(0.11 * x) + 12 * gauss();
            }
          }
        }
        const auto u = static_cast<uint16_t>(static_cast<int16_t>(std::lround(v)));
        out[at++] = static_cast<std::byte>(u & 0xff);
        out[at++] = static_cast<std::byte>(u >> 8);
      }
    }
  }
  return out;
}

}  // namespace rapidnii::testdata
