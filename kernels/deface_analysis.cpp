// The coarse-grid analysis of the defacer: find the head, its face and its
// brain on a ~2 mm world-aligned grid, and mark the cells to alter.
// Everything here is deterministic: per-index functors on the CPU executor,
// exact reductions on it (integer sums, min/max, bit-or, a histogram),
// serial passes, exact integer distances, order-independent selections.
#include "kernels/deface_analysis.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "kernels/deface_kernels.h"
#include "kernels/exec_cpu.h"
#include "kernels/reduce.h"

namespace rapidnii::kernels::deface_detail {

namespace {

using Dims = std::array<int64_t, 3>;
using V3 = std::array<double, 3>;

// Index executor with a grain of one: the coarse work items (lines, slices)
// are few and each is long.
template <class F>
void par(std::size_t n, const F& f) {
  for_each_index(n, f, 1);
}

// Largest connected component (26- or 6-connected); ties go to the component
// found first in linear order.
std::vector<uint8_t> largest_component(const std::vector<uint8_t>& m, const Dims& d, bool c26) {
  const int64_t n = d[0] * d[1] * d[2];
  std::vector<int32_t> label(static_cast<std::size_t>(n), 0);
  std::vector<int64_t> stack;
  int32_t best = 0, next = 0;
  int64_t best_size = 0;
  for (int64_t s = 0; s < n; ++s) {
    if (!m[s] || label[s]) continue;
    ++next;
    int64_t size = 0;
    stack.push_back(s);
    label[s] = next;
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      ++size;
      const int64_t x = i % d[0], y = (i / d[0]) % d[1], z = i / (d[0] * d[1]);
      for (int dz = -1; dz <= 1; ++dz)
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int nz = (dx != 0) + (dy != 0) + (dz != 0);
            if (nz == 0 || (!c26 && nz > 1)) continue;
            const int64_t X = x + dx, Y = y + dy, Z = z + dz;
            if (X < 0 || Y < 0 || Z < 0 || X >= d[0] || Y >= d[1] || Z >= d[2]) continue;
            const int64_t j = X + d[0] * (Y + d[1] * Z);
            if (m[j] && !label[j]) {
              label[j] = next;
              stack.push_back(j);
            }
          }
    }
    if (size > best_size) {
      best_size = size;
      best = next;
    }
  }
  std::vector<uint8_t> out(static_cast<std::size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) out[i] = (best != 0 && label[i] == best) ? 1 : 0;
  return out;
}

// Fill, in every axial (z) slice, the background not 4-connected to the
// slice border. Nostrils and the mouth reach the outside in 3D, so a 3D fill
// would leave them open.
void fill_holes_axial(std::vector<uint8_t>& m, const Dims& d) {
  par(static_cast<std::size_t>(d[2]), [&](std::size_t zi) {
    const int64_t z = static_cast<int64_t>(zi);
    const int64_t nx = d[0], ny = d[1];
    uint8_t* s = m.data() + z * nx * ny;
    std::vector<uint8_t> outside(static_cast<std::size_t>(nx * ny), 0);
    std::vector<int64_t> st;
    auto seed = [&](int64_t i) {
      if (!s[i] && !outside[i]) {
        outside[i] = 1;
        st.push_back(i);
      }
    };
    for (int64_t x = 0; x < nx; ++x) {
      seed(x);
      seed(x + (ny - 1) * nx);
    }
    for (int64_t y = 0; y < ny; ++y) {
      seed(y * nx);
      seed(nx - 1 + y * nx);
    }
    while (!st.empty()) {
      const int64_t i = st.back();
      st.pop_back();
      const int64_t x = i % nx, y = i / nx;
      if (x > 0) seed(i - 1);
      if (x + 1 < nx) seed(i + 1);
      if (y > 0) seed(i - nx);
      if (y + 1 < ny) seed(i + nx);
    }
    for (int64_t i = 0; i < nx * ny; ++i)
      if (!s[i] && !outside[i]) s[i] = 1;
  });
}

// 3D hole fill (6-connected background not reaching the grid border).
void fill_holes_3d(std::vector<uint8_t>& m, const Dims& d) {
  const int64_t n = d[0] * d[1] * d[2];
  std::vector<uint8_t> outside(static_cast<std::size_t>(n), 0);
  std::vector<int64_t> st;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x = i % d[0], y = (i / d[0]) % d[1], z = i / (d[0] * d[1]);
    const bool border = x == 0 || y == 0 || z == 0 || x == d[0] - 1 || y == d[1] - 1 ||
                        z == d[2] - 1;
    if (border && !m[i] && !outside[i]) {
      outside[i] = 1;
      st.push_back(i);
    }
  }
  const int64_t step[3] = {1, d[0], d[0] * d[1]};
  while (!st.empty()) {
    const int64_t i = st.back();
    st.pop_back();
    const int64_t c[3] = {i % d[0], (i / d[0]) % d[1], i / (d[0] * d[1])};
    for (int a = 0; a < 3; ++a)
      for (int sg = -1; sg <= 1; sg += 2) {
        const int64_t q = c[a] + sg;
        if (q < 0 || q >= d[a]) continue;
        const int64_t j = i + sg * step[a];
        if (!m[j] && !outside[j]) {
          outside[j] = 1;
          st.push_back(j);
        }
      }
  }
  for (int64_t i = 0; i < n; ++i)
    if (!outside[i]) m[i] = 1;
}

double median(std::vector<float> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Otsu's threshold on a 256-bin histogram of sqrt(value) between the 1st and
// 99.5th percentiles (robust to a bright tail and to the mass of air).
double mr_threshold(const Coarse& c) {
  std::vector<float> v;
  for (std::size_t i = 0; i < c.mean.size(); ++i)
    if (c.inside[i]) v.push_back(std::sqrt(std::max(0.0f, c.mean[i])));
  if (v.size() < 16) return 0;
  // Percentiles are order statistics: selecting them gives the values of a
  // full sort. The lower one lies among the elements before the upper one.
  const std::size_t k_lo = v.size() / 100, k_hi = std::min(v.size() - 1, v.size() * 995 / 1000);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k_hi), v.end());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k_lo),
                   v.begin() + static_cast<std::ptrdiff_t>(k_hi));
  const double lo = v[k_lo], hi = v[k_hi];
  if (!(hi > lo)) return lo * lo;
  // ValueBin is this histogram's bin: floor((x - lo) / (hi - lo) * 256), the
  // top value in the last bin, values outside [lo, hi] dropped.
  std::array<std::uint64_t, 256> counts{};
  histogram(v.size(), ValueBin<float>{v.data(), lo, hi, 256}, counts.data(), counts.size());
  std::array<double, 256> hist{};
  for (int b = 0; b < 256; ++b) hist[b] = static_cast<double>(counts[b]);
  double total = 0, sum = 0;
  for (int b = 0; b < 256; ++b) {
    total += hist[b];
    sum += b * hist[b];
  }
  double w0 = 0, s0 = 0, best = -1;
  int tb = 0;
  for (int b = 0; b < 255; ++b) {
    w0 += hist[b];
    s0 += b * hist[b];
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = s0 / w0, m1 = (sum - s0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) {
      best = between;
      tb = b;
    }
  }
  const double t = lo + (tb + 1) * (hi - lo) / 256;
  return t * t;
}

V3 sub(const V3& a, const V3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
double dot(const V3& a, const V3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
V3 cross(const V3& a, const V3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
V3 unit(const V3& a) {
  const double n = std::sqrt(dot(a, a));
  return {a[0] / n, a[1] / n, a[2] / n};
}

// The defacer's parameters (mm), from DEFACE-NOTES.md's anatomy table.
constexpr double kCtHead = -500;      // HU: head mask
constexpr double kCtBone = 300;       // HU: bone
constexpr double kProtrusion = 15;    // opening radius for protrusions
constexpr double kMinNose = 6;        // least protrusion height of a nose
constexpr double kConeDeg = 50;       // nose within this angle of +y (anterior)
constexpr double kBehindTip = 65;     // face region: this far behind the nose tip
constexpr double kAboveTip = 50;      // ... above (brows)
constexpr double kBelowTip = 85;      // ... below (chin)
constexpr double kLateral = 80;       // ... either side of the midline
constexpr double kShellDepth = 30;    // under the skin
constexpr double kAirBand = 15;       // in front of the skin
constexpr double kBrainMarginMr = 5;  // veto dilation of the MR brain
constexpr double kBrainMarginCt = 3;  // ... of the CT cranial cavity (brain + CSF)
constexpr double kCloseRadius = 15;   // blur: flatten the face shape (open, then close)
constexpr double kMinInradius = 35, kMaxInradius = 110;
constexpr double kMinBrainMl = 400, kMaxBrainMl = 2600;

}  // namespace

std::vector<int64_t> edt_sq(const std::vector<uint8_t>& object, const Dims& d) {
  const int64_t n = d[0] * d[1] * d[2];
  std::vector<int64_t> dist(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) dist[i] = object[i] ? kInf : 0;
  for (int axis = 0; axis < 3; ++axis) {
    const EdtLines f{dist.data(), {d[0], d[1], d[2]}, axis};
    par(static_cast<std::size_t>(n / d[axis]), f);
  }
  return dist;
}

void analyse(const Coarse& c, Contrast contrast, DefaceMask& m) {
  const Dims d = c.grid.dims;
  const int64_t n = c.grid.cells();
  const double h = c.grid.h, h2 = h * h;
  auto world = [&](int64_t i) -> V3 {
    return {c.grid.origin[0] + h * static_cast<double>(i % d[0]),
            c.grid.origin[1] + h * static_cast<double>((i / d[0]) % d[1]),
            c.grid.origin[2] + h * static_cast<double>(i / (d[0] * d[1]))};
  };
  auto r2 = [&](double mm) { return static_cast<int64_t>(std::floor(mm * mm / h2)); };
  m.report = DefaceReport{};
  m.cells.clear();
  auto stop = [&](bool head, const char* why) {
    m.report.head_found = head;
    m.report.status = why;
    m.cells.clear();
  };

  // 1. Head mask, largest 26-connected component, axial hole fill.
  const double thr = contrast == Contrast::CT ? kCtHead : mr_threshold(c);
  std::vector<uint8_t> head(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) head[i] = c.inside[i] && c.mean[i] > thr;
  std::vector<uint8_t> filled = largest_component(head, d, true);
  const auto cells = static_cast<std::size_t>(n);
  const int64_t count = transform_reduce(
      cells, int64_t{0}, [&](std::size_t i) -> int64_t { return filled[i]; }, Plus<int64_t>{});
  if (count * h2 * h / 1000 < 300) return stop(false, "not a head: no large object");
  fill_holes_axial(filled, d);

  // 2. A head ends inside the field of view at the top or the bottom.
  //    Bit 0: a head cell at the top edge of the field of view; bit 1: at the
  //    bottom.
  const int ends = transform_reduce(
      cells, 0,
      [&](std::size_t s) {
        const auto i = static_cast<int64_t>(s);
        if (!filled[i]) return 0;
        const int64_t z = i / (d[0] * d[1]);
        int e = 0;
        if (z + 1 >= d[2] || !c.inside[i + d[0] * d[1]]) e |= 1;
        if (z == 0 || !c.inside[i - d[0] * d[1]]) e |= 2;
        return e;
      },
      BitOr<int>{});
  if (ends == 3) return stop(false, "not a head: extends through the field of view");

  // 3. Depth under the skin and distance in front of it.
  std::vector<uint8_t> tmp(static_cast<std::size_t>(n));
  const std::vector<int64_t> depth2 = edt_sq(filled, d);
  for (int64_t i = 0; i < n; ++i) tmp[i] = !filled[i];
  const std::vector<int64_t> out2 = edt_sq(tmp, d);
  const int64_t maxd2 = transform_reduce(
      cells, int64_t{0}, [&](std::size_t i) { return filled[i] ? depth2[i] : int64_t{0}; },
      Max<int64_t>{});
  const double inradius = maxd2 >= kInf ? 1e9 : std::sqrt(static_cast<double>(maxd2)) * h;
  if (inradius < kMinInradius || inradius > kMaxInradius)
    return stop(false, "not a head: wrong size");

  // 4. Cranium centre: centroid of the deepest part. A float sum, kept serial
  //    so that it rounds as it always has (the landmarks depend on it).
  V3 centre{0, 0, 0};
  {
    const double lim = 0.6 * inradius;
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i)
      if (filled[i] && std::sqrt(static_cast<double>(depth2[i])) * h >= lim) {
        const V3 p = world(i);
        for (int a = 0; a < 3; ++a) centre[a] += p[a];
        ++k;
      }
    for (int a = 0; a < 3; ++a) centre[a] /= static_cast<double>(k);
  }
  m.cranium_centre = centre;

  // 5. Protrusions: the head minus its opening by a ball; the nose tip is the
  //    highest protrusion within the anterior cone.
  for (int64_t i = 0; i < n; ++i) tmp[i] = !(filled[i] && depth2[i] > r2(kProtrusion));
  const std::vector<int64_t> to_eroded2 = edt_sq(tmp, d);
  std::vector<uint8_t> opened(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) opened[i] = filled[i] && to_eroded2[i] <= r2(kProtrusion);
  for (int64_t i = 0; i < n; ++i) tmp[i] = !opened[i];
  const std::vector<int64_t> ph2 = edt_sq(tmp, d);
  //    An argmax: the highest protrusion, the first cell in linear order among
  //    equals (what a serial scan keeping the first maximum finds).
  const double cone = std::cos(kConeDeg * M_PI / 180);
  struct Tip {
    int64_t h2, i;  // squared protrusion height; the cell, -1 for none
  };
  const Tip none{r2(kMinNose) - 1, -1};
  const int64_t tip = transform_reduce(
      cells, none,
      [&](std::size_t s) {
        const auto i = static_cast<int64_t>(s);
        if (!filled[i] || opened[i] || ph2[i] <= none.h2 || ph2[i] >= kInf) return none;
        const V3 dir = sub(world(i), centre);
        const double len = std::sqrt(dot(dir, dir));
        if (len <= 0 || dir[1] < cone * len) return none;
        return Tip{ph2[i], i};
      },
      // A candidate is higher than `none`, so equal heights are two candidates
      // (or two nones).
      [](Tip a, Tip b) {
        if (a.h2 != b.h2) return a.h2 > b.h2 ? a : b;
        return a.i <= b.i ? a : b;
      }).i;
  m.report.head_found = true;
  if (tip < 0) return stop(true, "no face found");
  const V3 tipw = world(tip);
  m.nose_tip = tipw;
  const V3 ax = unit(sub(tipw, centre));
  V3 up{0, 0, 1};
  const double ua = dot(up, ax);
  up = unit({up[0] - ua * ax[0], up[1] - ua * ax[1], up[2] - ua * ax[2]});
  const V3 lat = cross(ax, up);

  // 6. Brain veto.
  std::vector<uint8_t> brain(static_cast<std::size_t>(n), 0);
  if (contrast == Contrast::CT) {
    // The cavity bone encloses: non-bone head cells with bone on both sides
    // along every axis.
    std::vector<uint8_t> bone(static_cast<std::size_t>(n)), dirs(static_cast<std::size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) bone[i] = c.inside[i] && c.maxv[i] > kCtBone;
    const int64_t stride[3] = {1, d[0], d[0] * d[1]};
    for (int a = 0; a < 3; ++a) {
      const int a1 = (a + 1) % 3, a2 = (a + 2) % 3;
      par(static_cast<std::size_t>(n / d[a]), [&](std::size_t li) {
        const int64_t l = static_cast<int64_t>(li);
        const int64_t off = (l % d[a1]) * stride[a1] + (l / d[a1]) * stride[a2];
        bool seen = false;
        for (int64_t q = 0; q < d[a]; ++q) {
          const int64_t i = off + q * stride[a];
          if (bone[i]) seen = true;
          else if (seen) dirs[i] |= static_cast<uint8_t>(1u << (2 * a));
        }
        seen = false;
        for (int64_t q = d[a] - 1; q >= 0; --q) {
          const int64_t i = off + q * stride[a];
          if (bone[i]) seen = true;
          else if (seen) dirs[i] |= static_cast<uint8_t>(2u << (2 * a));
        }
      });
    }
    for (int64_t i = 0; i < n; ++i) brain[i] = filled[i] && !bone[i] && dirs[i] == 63;
    brain = largest_component(brain, d, false);
  } else {
    // Brain intensity from the deepest part; candidates below 8 mm of
    // tissue, opened by 4 mm to cut bridges, largest piece, holes filled.
    std::vector<float> core;
    for (int64_t i = 0; i < n; ++i)
      if (filled[i] && std::sqrt(static_cast<double>(depth2[i])) * h >= 0.6 * inradius)
        core.push_back(c.mean[i]);
    const double med = median(core);
    for (int64_t i = 0; i < n; ++i)
      tmp[i] = filled[i] && depth2[i] >= r2(8) && c.mean[i] >= 0.72 * med &&
               c.mean[i] <= 1.28 * med;
    const std::vector<int64_t> in2 = edt_sq(tmp, d);
    for (int64_t i = 0; i < n; ++i) tmp[i] = !(in2[i] > r2(4));
    const std::vector<int64_t> op2 = edt_sq(tmp, d);
    for (int64_t i = 0; i < n; ++i) brain[i] = op2[i] <= r2(4);
    brain = largest_component(brain, d, false);
    fill_holes_3d(brain, d);
  }
  const int64_t nb = transform_reduce(
      cells, int64_t{0}, [&](std::size_t i) -> int64_t { return brain[i]; }, Plus<int64_t>{});
  m.brain_volume_ml = static_cast<double>(nb) * h2 * h / 1000;
  if (m.brain_volume_ml < kMinBrainMl || m.brain_volume_ml > kMaxBrainMl)
    return stop(true, "refused: brain not found");
  for (int64_t i = 0; i < n; ++i) tmp[i] = !brain[i];
  const std::vector<int64_t> tobrain2 = edt_sq(tmp, d);

  // 7. Blur: the head opened (nose, lips, eyelids gone) and then closed (eye
  //    sockets filled) by a ball: a smooth dome where the face was.
  for (int64_t i = 0; i < n; ++i) tmp[i] = ph2[i] <= r2(kCloseRadius);
  const std::vector<int64_t> cl2 = edt_sq(tmp, d);

  // 8. Cells: the face region (a shell under the facial skin and a band of
  //    air in front of it, inside a box in the face frame), minus the veto.
  m.cells.assign(static_cast<std::size_t>(n), 0);
  const int64_t margin2 = r2(contrast == Contrast::CT ? kBrainMarginCt : kBrainMarginMr);
  int64_t n_alter = 0;
  std::vector<float> face_vals, air_vals;
  for (int64_t i = 0; i < n; ++i) {
    if (!c.inside[i]) continue;
    uint8_t f = 0;
    if (tobrain2[i] <= margin2) f |= kCellProtect;
    if (cl2[i] > r2(kCloseRadius)) f |= kCellTissue;
    const V3 q = sub(world(i), tipw);
    const double s = dot(q, ax), v = dot(q, up), w = dot(q, lat);
    const bool box = s >= -kBehindTip && v <= kAboveTip && v >= -kBelowTip && std::abs(w) <= kLateral;
    const bool shell = filled[i] ? depth2[i] <= r2(kShellDepth) : out2[i] <= r2(kAirBand);
    if (box && shell && !(f & kCellProtect)) {
      f |= kCellAlter;
      ++n_alter;
      if (filled[i]) face_vals.push_back(c.mean[i]);
    }
    if (!filled[i] && out2[i] > r2(10)) air_vals.push_back(c.mean[i]);
    m.cells[i] = f;
  }
  if (n_alter == 0) return stop(true, "no face found");
  m.background = contrast == Contrast::CT ? -1000.0 : median(air_vals);
  m.tissue = median(face_vals);
  m.amplitude = contrast == Contrast::CT ? 200.0 : 0.2 * std::abs(m.tissue - m.background);
  if (m.amplitude <= 0) m.amplitude = 1;
  m.report.status = "face found";
}

std::vector<float> smooth_face(const Coarse& c, const DefaceMask& m) {
  const Dims d = c.grid.dims;
  const int64_t n = c.grid.cells();
  std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t f = m.cells[i];
    if (!c.inside[i]) a[i] = static_cast<float>(m.background);
    else if (f & kCellAlter) a[i] = static_cast<float>((f & kCellTissue) ? m.tissue : m.background);
    else a[i] = c.mean[i];
  }
  const double sigma = 8.0 / c.grid.h;
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (int t = -radius; t <= radius; ++t) sum += w[t + radius] = std::exp(-0.5 * t * t / (sigma * sigma));
  for (double& x : w) x /= sum;
  for (int axis = 0; axis < 3; ++axis) {
    const GaussLines g{a.data(), b.data(), {d[0], d[1], d[2]}, axis, w.data(), radius};
    par(static_cast<std::size_t>(n / d[axis]), g);
    a.swap(b);
  }
  return a;
}

}  // namespace rapidnii::kernels::deface_detail
