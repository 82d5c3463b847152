#include "kernels/reorient.h"
#include "kernels/voxel_types.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#if RAPIDNII_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace rapidnii::kernels {

namespace {

using M3 = std::array<std::array<double, 3>, 3>;

// Index functor over 128x128 output tiles in the plane (out axis 0, out axis q)
// where q is the output axis read from the input's fastest axis; the third
// axis (r) and the volume index are outer. A tile goes through a per-thread buffer:
// 128 input runs read whole, then 128 output runs written whole, so power-of-two
// strides between the runs (a 512x512 slice is 512 KiB) cannot evict lines
// still in use.
template <class T>
struct ReorientTiles {
  const T* in;
  T* out;
  ReorientMap m;
  int q, r;
  int64_t t0, tq;  // tiles along axis 0 and q
  bool scatter;    // false: out[o] = in[map(o)]; true: out[map(o)] = in[o]
  static constexpr int64_t kTile = 128;

  void operator()(std::size_t idx) const {
    int64_t i = static_cast<int64_t>(idx);
    const int64_t b0 = (i % t0) * kTile;
    i /= t0;
    const int64_t bq = (i % tq) * kTile;
    i /= tq;
    const int64_t orr = i % m.out_dims[r];
    const int64_t vol = i / m.out_dims[r];
    const int64_t n0 = std::min(kTile, m.out_dims[0] - b0);
    const int64_t nq = std::min(kTile, m.out_dims[q] - bq);
    const int64_t off = vol * m.n_vox;
    const int64_t so[3] = {1, m.out_dims[0], m.out_dims[0] * m.out_dims[1]};
    // Native ("input" of the map) and reoriented linear index of tile voxel
    // (0, 0), and their steps along out axis 0 and q.
    std::array<int64_t, 3> o{0, 0, 0};
    o[r] = orr;
    o[0] = b0;
    o[q] = bq;
    const int64_t nat0 = off + m.in_index(o[0], o[1], o[2]);
    const int64_t reo0 = off + o[0] + o[1] * so[1] + o[2] * so[2];
    const int64_t nat_s0 = m.step[0], nat_sq = m.step[q];  // |nat_sq| == 1
    const int64_t reo_sq = so[q];
    thread_local std::vector<T> store(kTile * kTile);
    T (*buf)[kTile] = reinterpret_cast<T (*)[kTile]>(store.data());  // [axis 0][q]
    if (!scatter) {
      // Read native runs along q, write reoriented runs along axis 0.
      for (int64_t b = 0; b < n0; ++b) {
        const T* src = in + nat0 + b * nat_s0;
        for (int64_t a = 0; a < nq; ++a) buf[b][a] = src[a * nat_sq];
      }
      for (int64_t a = 0; a < nq; ++a) {
        T* dst = out + reo0 + a * reo_sq;
        for (int64_t b = 0; b < n0; ++b) dst[b] = buf[b][a];
      }
    } else {
      // Read reoriented runs along axis 0, write native runs along q.
      for (int64_t a = 0; a < nq; ++a) {
        const T* src = in + reo0 + a * reo_sq;
        for (int64_t b = 0; b < n0; ++b) buf[b][a] = src[b];
      }
      for (int64_t b = 0; b < n0; ++b) {
        T* dst = out + nat0 + b * nat_s0;
        for (int64_t a = 0; a < nq; ++a) dst[a * nat_sq] = buf[b][a];
      }
    }
  }
};

template <class F>
void parallel_indices(std::size_t n, F f) {
  const F& fn = f;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1),
                    [&fn](const tbb::blocked_range<std::size_t>& rg) {
                      for (std::size_t i = rg.begin(); i != rg.end(); ++i) fn(i);
                    });
}

// Output axis 0 runs along input lines (step +-1): whole-line copies.
template <class T>
struct ReorientLinesCpu {
  const T* in;
  T* out;
  ReorientMap m;
  bool scatter;
  void operator()(std::size_t idx) const {
    const int64_t l = static_cast<int64_t>(idx);
    const int64_t o1 = l % m.out_dims[1], rest = l / m.out_dims[1];
    const int64_t o2 = rest % m.out_dims[2], vol = rest / m.out_dims[2];
    const int64_t off = vol * m.n_vox;
    int64_t src = off + m.in_index(0, o1, o2);
    const int64_t dst = off + l % (m.out_dims[1] * m.out_dims[2]) * m.out_dims[0];
    const int64_t n = m.out_dims[0], st = m.step[0];
    if (scatter) {
      for (int64_t x = 0; x < n; ++x, src += st) out[src] = in[dst + x];
    } else {
      for (int64_t x = 0; x < n; ++x, src += st) out[dst + x] = in[src];
    }
  }
};

template <class T>
void reorient_cpu(const T* in, T* out, const ReorientMap& m, int64_t nt, bool scatter, int q) {
  if (q == 0) {
    parallel_indices(static_cast<std::size_t>(m.out_dims[1] * m.out_dims[2] * nt),
                     ReorientLinesCpu<T>{in, out, m, scatter});
    return;
  }
  // q: the output axis fed by input axis 0; r: the remaining one.  // axis 0 already runs along input lines: tile (0, 1)
  const int r = 3 - q;
  ReorientTiles<T> f{in, out, m, q, r, 0, 0, scatter};
  f.t0 = (m.out_dims[0] + ReorientTiles<T>::kTile - 1) / ReorientTiles<T>::kTile;
  f.tq = (m.out_dims[q] + ReorientTiles<T>::kTile - 1) / ReorientTiles<T>::kTile;
  const std::size_t n = static_cast<std::size_t>(f.t0 * f.tq * m.out_dims[r] * nt);
  parallel_indices(n, f);
}

M3 inverse3(const M3& a) {
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                     a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (!(std::abs(det) > 1e-300)) throw std::invalid_argument("singular affine");
  M3 r;
  r[0][0] = (a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det;
  r[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det;
  r[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det;
  r[1][0] = (a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det;
  r[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det;
  r[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det;
  r[2][0] = (a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det;
  r[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det;
  r[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det;
  return r;
}

// Closest orthogonal matrix (polar factor U*V^T of the SVD), by Newton's
// iteration R <- (R + R^-T)/2, which converges quadratically for any
// non-singular start.
M3 polar(M3 r) {
  for (int it = 0; it < 100; ++it) {
    const M3 inv = inverse3(r);
    M3 next;
    double change = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        next[i][j] = 0.5 * (r[i][j] + inv[j][i]);
        change = std::max(change, std::abs(next[i][j] - r[i][j]));
      }
    r = next;
    if (change < 1e-15) break;
  }
  return r;
}

// For each input axis: (world axis, sign), as nibabel's io_orientation.
std::array<std::pair<int, int>, 3> io_orientation(const Affine& a) {
  M3 rs;
  for (int j = 0; j < 3; ++j) {
    double z = 0;
    for (int i = 0; i < 3; ++i) z += a[i][j] * a[i][j];
    z = std::sqrt(z);
    if (z == 0) throw std::invalid_argument("plan_reorient: affine has a zero column");
    for (int i = 0; i < 3; ++i) rs[i][j] = a[i][j] / z;
  }
  M3 r = polar(rs);
  std::array<std::pair<int, int>, 3> out{};
  for (int in_ax = 0; in_ax < 3; ++in_ax) {
    int best = 0;
    for (int i = 1; i < 3; ++i)
      if (std::abs(r[i][in_ax]) > std::abs(r[best][in_ax])) best = i;
    out[in_ax] = {best, r[best][in_ax] < 0 ? -1 : 1};
    for (int j = 0; j < 3; ++j) r[best][j] = 0;
  }
  return out;
}

}  // namespace

Orient parse_orient(std::string_view name) {
  std::string s;
  for (char c : name) s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (s == "NATIVE") return Orient::Native;
  if (s == "ACQUIRED") return Orient::Acquired;
  if (s == "RAS") return Orient::RAS;
  if (s == "LAS") return Orient::LAS;
  if (s == "LPS") return Orient::LPS;
  throw std::invalid_argument("unknown orientation '" + std::string(name) +
                              "' (expected native, acquired, RAS, LAS or LPS)");
}

const char* orient_name(Orient o) {
  switch (o) {
    case Orient::Native:
      return "native";
    case Orient::Acquired:
      return "acquired";
    case Orient::RAS:
      return "RAS";
    case Orient::LAS:
      return "LAS";
    case Orient::LPS:
      return "LPS";
  }
  return "unknown";
}

std::array<char, 3> axcodes(const Affine& a) {
  static const char pos[3] = {'R', 'A', 'S'}, neg[3] = {'L', 'P', 'I'};
  const auto o = io_orientation(a);
  std::array<char, 3> c{};
  for (int k = 0; k < 3; ++k) c[k] = o[k].second > 0 ? pos[o[k].first] : neg[o[k].first];
  return c;
}

namespace {

// out_dims and out_affine of a plan whose perm and flip are set.
void set_output_grid(ReorientPlan& p, const Affine& a, std::array<int64_t, 3> dims) {
  for (int k = 0; k < 3; ++k) {
    const int src = p.perm[k];
    p.out_dims[k] = dims[src];
    for (int i = 0; i < 3; ++i) p.out_affine[i][k] = p.flip[k] ? -a[i][src] : a[i][src];
  }
  for (int i = 0; i < 3; ++i) {
    double t = a[i][3];
    for (int k = 0; k < 3; ++k)
      if (p.flip[k]) t += a[i][p.perm[k]] * static_cast<double>(dims[p.perm[k]] - 1);
    p.out_affine[i][3] = t;
  }
}

void check_dims(std::array<int64_t, 3> dims) {
  for (int k = 0; k < 3; ++k)
    if (dims[k] <= 0) throw std::invalid_argument("plan_reorient: non-positive dimension");
}

}  // namespace

ReorientPlan plan_reorient(const Affine& a, std::array<int64_t, 3> dims, Orient target) {
  check_dims(dims);
  ReorientPlan p;
  p.out_dims = dims;
  p.out_affine = a;
  if (target == Orient::Native || target == Orient::Acquired) return p;
  // Desired sign of each world axis along the stored axis of the same number.
  std::array<int, 3> want{1, 1, 1};
  if (target == Orient::LAS) want = {-1, 1, 1};
  if (target == Orient::LPS) want = {-1, -1, 1};
  const auto o = io_orientation(a);
  for (int in_ax = 0; in_ax < 3; ++in_ax) {
    const int w = o[in_ax].first;
    p.perm[w] = in_ax;
    p.flip[w] = o[in_ax].second != want[w];
  }
  set_output_grid(p, a, dims);
  return p;
}

ReorientPlan plan_nearest_orthogonal(const Affine& a, std::array<int64_t, 3> dims) {
  check_dims(dims);
  ReorientPlan p;
  p.out_dims = dims;
  p.out_affine = a;
  bool canonical = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (i == j ? a[i][j] <= 0 : a[i][j] != 0) canonical = false;
  if (canonical) return p;
  // The corners (bit k of c: far end of axis k) in world space, their
  // per-coordinate minimum, and the corner nearest to it.
  std::array<std::array<double, 3>, 8> corner{};
  std::array<double, 3> lo{};
  for (int c = 0; c < 8; ++c) {
    for (int i = 0; i < 3; ++i) {
      double w = a[i][3];
      for (int k = 0; k < 3; ++k)
        if (c >> k & 1) w += a[i][k] * static_cast<double>(dims[k] - 1);
      corner[c][i] = w;
      lo[i] = c == 0 ? w : std::min(lo[i], w);
    }
  }
  int nearest = 0;
  double best_d = 0;
  for (int c = 0; c < 8; ++c) {
    double d = 0;
    for (int i = 0; i < 3; ++i) d += (corner[c][i] - lo[i]) * (corner[c][i] - lo[i]);
    if (c == 0 || d < best_d) best_d = d, nearest = c;
  }
  std::array<int, 3> f{};
  for (int k = 0; k < 3; ++k) f[k] = (nearest >> k & 1) ? -1 : 1;
  // sigma[j]: the output axis of input axis j, in dcm2niix's order
  static constexpr int kSigma[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  int best = -1;
  double best_r = 0;
  for (int s = 0; s < 6; ++s) {
    double r = 0;
    for (int j = 0; j < 3; ++j) r += f[j] * a[kSigma[s][j]][j];
    if (r > best_r) best_r = r, best = s;
  }
  if (best < 0) return p;  // no permutation aligns positively (a degenerate affine): as acquired
  for (int j = 0; j < 3; ++j) {
    p.perm[kSigma[best][j]] = j;
    p.flip[kSigma[best][j]] = f[j] < 0;
  }
  set_output_grid(p, a, dims);
  return p;
}

ReorientMap make_reorient_map(std::array<int64_t, 3> dims, const ReorientPlan& p) {
  const std::array<int64_t, 3> stride{1, dims[0], dims[0] * dims[1]};
  ReorientMap m{};
  m.n_vox = dims[0] * dims[1] * dims[2];
  m.base = 0;
  for (int k = 0; k < 3; ++k) {
    const int src = p.perm[k];
    m.out_dims[k] = dims[src];
    m.step[k] = p.flip[k] ? -stride[src] : stride[src];
    if (p.flip[k]) m.base += (dims[src] - 1) * stride[src];
  }
  return m;
}

namespace {

template <class T>
void check_args(std::size_t in_size, std::size_t out_size, std::array<int64_t, 3> dims, int64_t nt,
                const ReorientPlan& p, const char* what) {
  if (nt < 0 || dims[0] < 0 || dims[1] < 0 || dims[2] < 0)
    throw std::invalid_argument(std::string(what) + ": negative size");
  std::array<bool, 3> seen{false, false, false};
  for (int k = 0; k < 3; ++k) {
    if (p.perm[k] < 0 || p.perm[k] > 2 || seen[p.perm[k]])
      throw std::invalid_argument(std::string(what) + ": perm is not a permutation");
    seen[p.perm[k]] = true;
    if (p.out_dims[k] != dims[p.perm[k]])
      throw std::invalid_argument(std::string(what) + ": plan made for other dimensions");
  }
  const auto n = static_cast<std::size_t>(dims[0] * dims[1] * dims[2] * nt);
  if (in_size != n || out_size != n)
    throw std::invalid_argument(std::string(what) + ": buffers hold " + std::to_string(in_size) +
                                " and " + std::to_string(out_size) + " voxels, expected " +
                                std::to_string(n));
}

template <class T>
void run(Device d, const T* in, T* out, std::array<int64_t, 3> dims, int64_t nt,
         const ReorientPlan& p, bool scatter) {
  d = resolve_device(d);
  const auto n = static_cast<std::size_t>(dims[0] * dims[1] * dims[2] * nt);
  if (n == 0) return;
  const ReorientMap m = make_reorient_map(dims, p);
  int q = 0;
  for (int k = 0; k < 3; ++k)
    if (p.perm[k] == 0) q = k;
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    cuda_backend::reorient<T>(in, out, m, nt, scatter, q);
    return;
#else
    throw std::runtime_error("rapidnii was built without CUDA support");
#endif
  }
  reorient_cpu(in, out, m, nt, scatter, q);
}

}  // namespace

template <class T>
void reorient(Device d, std::span<const T> in, std::span<T> out, std::array<int64_t, 3> dims,
              int64_t nt, const ReorientPlan& p) {
  check_args<T>(in.size(), out.size(), dims, nt, p, "reorient");
  run(d, in.data(), out.data(), dims, nt, p, false);
}

template <class T>
void reorient_back(Device d, std::span<const T> in_reoriented, std::span<T> out_native,
                   std::array<int64_t, 3> dims, int64_t nt, const ReorientPlan& p) {
  check_args<T>(in_reoriented.size(), out_native.size(), dims, nt, p, "reorient_back");
  run(d, in_reoriented.data(), out_native.data(), dims, nt, p, true);
}

#define RAPIDNII_INSTANTIATE(T)                                                                \
  template void reorient<T>(Device, std::span<const T>, std::span<T>, std::array<int64_t, 3>, \
                            int64_t, const ReorientPlan&);                                     \
  template void reorient_back<T>(Device, std::span<const T>, std::span<T>,                     \
                                 std::array<int64_t, 3>, int64_t, const ReorientPlan&);
RAPIDNII_FOR_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#undef RAPIDNII_INSTANTIATE

}  // namespace rapidnii::kernels
