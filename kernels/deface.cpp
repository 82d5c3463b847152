// Host API of the defacer: the two full-resolution passes on the chosen
// executor, the coarse analysis in deface_analysis.cpp.
#include "kernels/deface.h"
#include "kernels/voxel_types.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/deface_analysis.h"
#include "kernels/deface_kernels.h"
#include "kernels/exec_cpu.h"
#include "kernels/reduce.h"

#if RAPIDNII_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace rapidnii::kernels {

using deface_detail::Coarse;
using deface_detail::Geometry;

DefaceMode parse_deface_mode(std::string_view name) {
  std::string s;
  for (char c : name) s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (s == "off") return DefaceMode::Off;
  if (s == "blur") return DefaceMode::Blur;
  if (s == "remove") return DefaceMode::Remove;
  throw std::invalid_argument("unknown deface mode '" + std::string(name) +
                              "' (expected off, blur or remove)");
}

const char* deface_mode_name(DefaceMode m) {
  switch (m) {
    case DefaceMode::Off:
      return "off";
    case DefaceMode::Blur:
      return "blur";
    case DefaceMode::Remove:
      return "remove";
  }
  return "unknown";
}

Contrast contrast_from_modality(std::string_view modality) {
  return modality == "CT" ? Contrast::CT : Contrast::MR;
}

namespace {

constexpr double kCell = 2.0;      // coarse cell (mm), at least
constexpr double kMaxCell = 3.0;   // ... and at most this unless the field of view is huge
constexpr int64_t kMaxCells = 200;  // per axis (kMaxLine in deface_kernels.h is 512)

// Cells of kCell mm, or the finest voxel spacing up to kMaxCell mm when the
// voxels are coarser, or larger when the field of view needs more than
// kMaxCells cells along an axis.
CoarseGrid make_grid(std::array<int64_t, 3> dims, const Affine& a) {
  double finest = 1e300;
  for (int q = 0; q < 3; ++q)
    finest = std::min(finest, std::sqrt(a[0][q] * a[0][q] + a[1][q] * a[1][q] + a[2][q] * a[2][q]));
  std::array<double, 3> lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int corner = 0; corner < 8; ++corner) {
    const double v[3] = {(corner & 1) ? dims[0] - 0.5 : -0.5, (corner & 2) ? dims[1] - 0.5 : -0.5,
                         (corner & 4) ? dims[2] - 0.5 : -0.5};
    for (int r = 0; r < 3; ++r) {
      const double w = a[r][0] * v[0] + a[r][1] * v[1] + a[r][2] * v[2] + a[r][3];
      lo[r] = std::min(lo[r], w);
      hi[r] = std::max(hi[r], w);
    }
  }
  double ext = 0;
  for (int r = 0; r < 3; ++r) ext = std::max(ext, hi[r] - lo[r]);
  CoarseGrid g;
  g.h = std::max({kCell, std::min(finest, kMaxCell), ext / static_cast<double>(kMaxCells - 1)});
  for (int r = 0; r < 3; ++r) {
    g.dims[r] = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((hi[r] - lo[r]) / g.h)));
    g.origin[r] = lo[r] + 0.5 * g.h;
  }
  return g;
}

Geometry make_geometry(std::array<int64_t, 3> dims, const Affine& a, const CoarseGrid& g) {
  Geometry geo{};
  for (int r = 0; r < 3; ++r)
    for (int q = 0; q < 4; ++q) geo.a[r][q] = a[r][q];
  const double(&m)[3][4] = geo.a;
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  if (!(std::abs(det) > 1e-12)) throw std::invalid_argument("deface: singular affine");
  double inv[3][3];
  inv[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
  inv[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
  inv[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
  inv[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
  inv[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
  inv[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
  inv[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
  inv[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
  inv[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
  for (int r = 0; r < 3; ++r) {
    for (int q = 0; q < 3; ++q) geo.inv[r][q] = inv[r][q];
    geo.inv[r][3] = -(inv[r][0] * m[0][3] + inv[r][1] * m[1][3] + inv[r][2] * m[2][3]);
    geo.dims[r] = dims[r];
    geo.origin[r] = g.origin[r];
    geo.cdims[r] = g.dims[r];
  }
  geo.h = g.h;
  return geo;
}

template <class T>
void check(std::size_t size, std::array<int64_t, 3> dims, double slope, const char* what) {
  if (dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0)
    throw std::invalid_argument(std::string(what) + ": non-positive dimension");
  if (size != static_cast<std::size_t>(dims[0] * dims[1] * dims[2]))
    throw std::invalid_argument(std::string(what) + ": volume size does not match dims");
  if (!(slope != 0) || !std::isfinite(slope))
    throw std::invalid_argument(std::string(what) + ": slope must be finite and non-zero");
}

template <class T>
Coarse downsample(Device d, const T* vol, std::array<int64_t, 3> dims, const Affine& a,
                  double slope, double inter) {
  Coarse c;
  c.grid = make_grid(dims, a);
  const Geometry geo = make_geometry(dims, a, c.grid);
  // Sub-points per axis: about as many samples as voxels in a cell (1..4).
  double vox_volume = 1;
  for (int q = 0; q < 3; ++q)
    vox_volume *= std::sqrt(a[0][q] * a[0][q] + a[1][q] * a[1][q] + a[2][q] * a[2][q]);
  const int sub = std::clamp(static_cast<int>(std::lround(c.grid.h / std::cbrt(vox_volume))), 1, 4);
  const auto n = static_cast<std::size_t>(c.grid.cells());
  c.mean.resize(n);
  c.maxv.resize(n);
  c.inside.resize(n);
  const deface_detail::Downsample<T> f{vol,           geo,           slope,          inter, sub,
                                       c.mean.data(), c.maxv.data(), c.inside.data()};
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    cuda_backend::deface_downsample<T>(f, static_cast<std::size_t>(dims[0] * dims[1] * dims[2]),
                                       n);
    return c;
#endif
  }
  for_each_index(n, f, 1024);  // a cell reads up to 64 voxels: small tasks
  return c;
}

template <class T>
std::pair<double, double> limits() {
  if constexpr (std::is_integral_v<T>) {
    return {static_cast<double>(std::numeric_limits<T>::min()),
            static_cast<double>(std::numeric_limits<T>::max())};
  } else {
    return {-static_cast<double>(FLT_MAX), static_cast<double>(FLT_MAX)};
  }
}

std::string method_text(DefaceMode mode) {
  std::string s = "rapidnii-deface-1 (no atlas): face found from the head's own geometry "
                  "(nose tip, cranium); ";
  if (mode == DefaceMode::Remove) {
    s += "voxels within 30 mm under the facial skin (nose, lips, eyes, cheeks, chin) and a "
         "15 mm band of air in front of it replaced by background";
  } else {
    s += "voxels within 30 mm under the facial skin (nose, lips, eyes, cheeks, chin) and a "
         "15 mm band of air in front of it replaced by the flattened face smoothed with a "
         "Gaussian (sigma 8 mm) plus random noise";
  }
  s += "; brain and a 5 mm margin never altered; ears and back of head untouched";
  return s;
}

}  // namespace

// Downsample and analyse: the mask, and the coarse grid it came from.
template <class T>
DefaceMask analyse_volume(Device d, const T* vol, std::array<int64_t, 3> dims, const Affine& affine, double slope,
                          double inter, Contrast c, Coarse& coarse) {
  DefaceMask m;
  m.contrast = c;
  m.dims = dims;
  m.affine = affine;
  coarse = downsample(d, vol, dims, affine, slope, inter);
  m.grid = coarse.grid;
  deface_detail::analyse(coarse, c, m);
  return m;
}

template <class T>
DefaceMask deface_mask(Device d, std::span<const T> vol, std::array<int64_t, 3> dims,
                       const Affine& affine, double slope, double inter, Contrast c) {
  check<T>(vol.size(), dims, slope, "deface_mask");
  d = resolve_device(d);
  Coarse coarse;
  return analyse_volume(d, vol.data(), dims, affine, slope, inter, c, coarse);
}

namespace {

// The apply pass; for blur, `coarse` is this volume's downsample when the
// caller already has it (deface() on one volume), else it is computed.
template <class T>
DefaceReport apply_impl(Device d, std::span<T> vol, std::array<int64_t, 3> dims,
                        const Affine& affine, double slope, double inter, const DefaceMask& m,
                        DefaceMode mode, uint64_t seed, const Coarse* coarse) {
  DefaceReport r = m.report;
  r.altered = false;
  r.voxels_changed = 0;
  if (mode == DefaceMode::Off) {
    r.status = "off";
    return r;
  }
  if (!m.usable()) return r;
  const Geometry geo = make_geometry(dims, affine, m.grid);
  std::vector<float> smooth;
  if (mode == DefaceMode::Blur) {
    if (coarse != nullptr) {
      smooth = deface_detail::smooth_face(*coarse, m);
    } else {
      const Coarse c = downsample(d, vol.data(), dims, affine, slope, inter);
      smooth = deface_detail::smooth_face(c, m);
    }
  }
  const auto [lo, hi] = limits<T>();
  const deface_detail::Apply<T> f{vol.data(),   geo,   m.cells.data(), smooth.data(),
                                  slope,        inter, lo,             hi,
                                  m.background, m.amplitude, seed,   mode == DefaceMode::Remove,
                                  0};
  const auto n = static_cast<std::size_t>(dims[0] * dims[1] * dims[2]);
  uint64_t changed = 0;
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    changed = cuda_backend::deface_apply<T>(f, n, m.cells.size(), smooth.size());
#endif
  } else {
    // One line per index (the line's world base is computed once), 16 lines
    // per task; the count is an integer sum, exact in any order.
    const auto lines = static_cast<std::size_t>(dims[1] * dims[2]);
    changed = transform_reduce(
        lines, uint64_t{0}, [&f](std::size_t l) { return f.line(static_cast<int64_t>(l)); },
        Plus<uint64_t>{}, 16);
  }
  r.voxels_changed = changed;
  r.altered = changed > 0;
  r.status = mode == DefaceMode::Remove ? "face removed" : "face blurred";
  r.method = method_text(mode);
  return r;
}

}  // namespace

template <class T>
DefaceReport deface_apply(Device d, std::span<T> vol, std::array<int64_t, 3> dims,
                          const Affine& affine, double slope, double inter, const DefaceMask& m,
                          DefaceMode mode, uint64_t seed) {
  check<T>(vol.size(), dims, slope, "deface_apply");
  if (dims != m.dims || affine != m.affine)
    throw std::invalid_argument("deface_apply: the mask was made for another grid");
  return apply_impl<T>(resolve_device(d), vol, dims, affine, slope, inter, m, mode, seed, nullptr);
}

template <class T>
DefaceReport deface(Device d, std::span<T> vol, std::array<int64_t, 3> dims, const Affine& affine,
                    double slope, double inter, Contrast c, DefaceMode mode, uint64_t seed) {
  check<T>(vol.size(), dims, slope, "deface");
  if (mode == DefaceMode::Off) {
    DefaceReport r;
    r.status = "off";
    return r;
  }
  d = resolve_device(d);
  Coarse coarse;
  const DefaceMask m = analyse_volume(d, vol.data(), dims, affine, slope, inter, c, coarse);
  return apply_impl<T>(d, vol, dims, affine, slope, inter, m, mode, seed, &coarse);
}

#define RAPIDNII_INSTANTIATE(T)                                                                  \
  template DefaceMask deface_mask<T>(Device, std::span<const T>, std::array<int64_t, 3>,         \
                                     const Affine&, double, double, Contrast);                   \
  template DefaceReport deface_apply<T>(Device, std::span<T>, std::array<int64_t, 3>,            \
                                        const Affine&, double, double, const DefaceMask&,        \
                                        DefaceMode, uint64_t);                                   \
  template DefaceReport deface<T>(Device, std::span<T>, std::array<int64_t, 3>, const Affine&,   \
                                  double, double, Contrast, DefaceMode, uint64_t);
RAPIDNII_FOR_DEFACE_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#undef RAPIDNII_INSTANTIATE

}  // namespace rapidnii::kernels
