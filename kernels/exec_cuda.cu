// CUDA entry points (cuda_backend.h): the voxel kernels on the CUDA executor
// of exec_cuda.cuh, with host buffers in and out. Kept to one translation
// unit because each .cu costs ~30 s per architecture to compile.
//
// Element-wise kernels (normalize_stored_bits, rescale_to_float, deface's
// apply pass, the reductions) stream the volume through the staging lanes
// with staged_map: the H2D of chunk k+1, the kernel on chunk k and the D2H
// of chunk k-1 overlap, through pinned buffers. Reorientation and deface's
// downsample gather from anywhere in the volume, so they upload it whole
// (chunked, pinned), run one kernel and download the result (chunked,
// pinned): there the copies overlap one another and the host's staging
// copies, not the kernel. Device memory comes from the stream-ordered pool
// (cudaMallocAsync), freed at the end of each call.
//
// Results are bit-identical to the CPU executor: the same functors, compiled
// with --fmad=false, with every index's arithmetic independent of the chunk
// it falls in (functors that need the global index get the chunk's offset).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/bits.h"
#include "kernels/voxel_types.h"
#include "kernels/cuda_backend.h"
#include "kernels/deface_kernels.h"
#include "kernels/exec_cuda.cuh"
#include "kernels/reduce.h"
#include "kernels/reorient.h"
#include "kernels/rescale.h"

namespace rapidnii::kernels::cuda_backend {

using cuda_exec::Call;
using cuda_exec::Chunk;
using cuda_exec::check;
using cuda_exec::kLanes;
using cuda_exec::kReduceGrid;

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

template <class T>
void normalize_stored_bits(T* data, std::size_t n, StoredBits<T> op) {
  if (n == 0) return;
  Call call;
  cuda_exec::staged_map(call, data, data, n, [op](const Chunk<T, T>& c) {
    cuda_exec::transform(c.stream, c.count, c.in, c.out, op);
  });
}

template <class T>
void rescale_to_float(const T* in, float* out, std::size_t n, const double* slope,
                      const double* inter, std::size_t per_slice) {
  if (n == 0) return;
  const std::size_t n_slices = (n - 1) / per_slice + 1;
  Call call;
  const double* d_slope = cuda_exec::to_device(call, slope, n_slices);
  const double* d_inter = cuda_exec::to_device(call, inter, n_slices);
  cuda_exec::staged_map(call, in, out, n, [=](const Chunk<T, float>& c) {
    cuda_exec::transform(c.stream, c.count, c.out,
                         RescaleToFloat<T>{c.in, d_slope, d_inter, per_slice, c.first});
  });
}

#define RAPIDNII_INSTANTIATE(T)                                                           \
  template void normalize_stored_bits<T>(T*, std::size_t, StoredBits<T>);                 \
  template void rescale_to_float<T>(const T*, float*, std::size_t, const double*,          \
                                    const double*, std::size_t);
RAPIDNII_FOR_INTEGER_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#undef RAPIDNII_INSTANTIATE

// --- Reorientation ---------------------------------------------------------
namespace {

constexpr int kTile = 32;
constexpr int kRows = 8;

// Tiled transpose over the plane (out axis 0, out axis q): a 32x32 tile goes
// through shared memory so that the input is read along its fastest axis and
// the output written along its fastest axis, both coalesced. The index math
// is ReorientTileIndex (reorient.h), which the tests also run on the host.
template <class T>
__global__ void reorient_tile_kernel(const T* __restrict__ in, T* __restrict__ out,
                                     ReorientTileIndex ti, std::int64_t n_outer) {
  __shared__ T tile[kTile][kTile + 1];
  const std::int64_t tile_id = blockIdx.x;
  const int tx = static_cast<int>(threadIdx.x);
  for (std::int64_t outer = blockIdx.y; outer < n_outer; outer += gridDim.y) {
    for (int j = threadIdx.y; j < kTile; j += kRows) {
      const std::int64_t src = ti.load(tile_id, outer, tx, j);
      if (src >= 0) tile[j][tx] = in[src];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < kTile; j += kRows) {
      const std::int64_t dst = ti.store(tile_id, outer, tx, j);
      if (dst >= 0) out[dst] = tile[tx][j];
    }
    __syncthreads();
  }
}

// Output axis 0 already runs along input lines (step +-1): a line copy.
template <class T, bool Scatter>
struct ReorientLines {
  const T* in;
  T* out;
  ReorientMap m;
  __device__ void operator()(std::size_t idx) const {
    const std::int64_t i = static_cast<std::int64_t>(idx);
    const std::int64_t o0 = i % m.out_dims[0];
    const std::int64_t rest = i / m.out_dims[0];
    const std::int64_t o1 = rest % m.out_dims[1];
    const std::int64_t rest2 = rest / m.out_dims[1];
    const std::int64_t o2 = rest2 % m.out_dims[2];
    const std::int64_t off = (rest2 / m.out_dims[2]) * m.n_vox;
    const std::int64_t src = off + m.in_index(o0, o1, o2);
    if (Scatter) {
      out[src] = in[i];
    } else {
      out[i] = in[src];
    }
  }
};

template <class T, bool Scatter>
void reorient_launch(const T* in, T* out, const ReorientMap& m, std::int64_t nt, int q,
                     cudaStream_t s) {
  const std::size_t n = static_cast<std::size_t>(m.n_vox * nt);
  if (q == 0) {
    cuda_exec::for_each_index(s, n, ReorientLines<T, Scatter>{in, out, m});
    return;
  }
  const int r = 3 - q;
  const std::int64_t t0 = (m.out_dims[0] + kTile - 1) / kTile;
  const std::int64_t tq = (m.out_dims[q] + kTile - 1) / kTile;
  const std::int64_t n_outer = m.out_dims[r] * nt;
  const ReorientTileIndex ti{m, q, r, t0, Scatter};
  const dim3 grid(static_cast<unsigned>(t0 * tq),
                  static_cast<unsigned>(n_outer < 65535 ? n_outer : 65535));
  reorient_tile_kernel<T><<<grid, dim3(kTile, kRows), 0, s>>>(in, out, ti, n_outer);
  check(cudaGetLastError(), "reorient kernel launch");
}

}  // namespace

template <class T>
void reorient(const T* in, T* out, const ReorientMap& m, std::int64_t nt, bool scatter, int q) {
  const std::size_t n = static_cast<std::size_t>(m.n_vox * nt);
  if (n == 0) return;
  // The gather (or scatter) reads from anywhere in the volume: all of it is
  // on the device before the kernel starts.
  Call call;
  T* d_in = call.alloc<T>(n);
  T* d_out = call.alloc<T>(n);
  cuda_exec::upload(call, d_in, in, n);
  if (scatter) {
    reorient_launch<T, true>(d_in, d_out, m, nt, q, call.main());
  } else {
    reorient_launch<T, false>(d_in, d_out, m, nt, q, call.main());
  }
  cuda_exec::download(call, out, d_out, n);
}

#define RAPIDNII_INSTANTIATE_REORIENT(T) \
  template void reorient<T>(const T*, T*, const ReorientMap&, std::int64_t, bool, int);
RAPIDNII_FOR_VOXEL_TYPES(RAPIDNII_INSTANTIATE_REORIENT)
#undef RAPIDNII_INSTANTIATE_REORIENT

// --- Defacing: the full-resolution passes ------------------------------------
namespace {

// 1 for an index whose functor returns true (a voxel the apply pass changed).
template <class F>
struct CountTrue {
  F f;
  RAPIDNII_HD unsigned long long operator()(std::size_t i) const { return f(i) ? 1ull : 0ull; }
};

}  // namespace

template <class T>
void deface_downsample(const deface_detail::Downsample<T>& f, std::size_t n_vox,
                       std::size_t n_cells) {
  if (n_cells == 0) return;
  // A cell samples voxels anywhere in its footprint: the volume goes up whole.
  Call call;
  T* d_vol = call.alloc<T>(n_vox);
  deface_detail::Downsample<T> g = f;
  g.vol = d_vol;
  g.mean = call.alloc<float>(n_cells);
  g.maxv = call.alloc<float>(n_cells);
  g.inside = call.alloc<std::uint8_t>(n_cells);
  cuda_exec::upload(call, d_vol, f.vol, n_vox);
  cuda_exec::for_each_index(call.main(), n_cells, g);
  cuda_exec::download(call, f.mean, g.mean, n_cells);
  cuda_exec::download(call, f.maxv, g.maxv, n_cells);
  cuda_exec::download(call, f.inside, g.inside, n_cells);
}

template <class T>
std::uint64_t deface_apply(const deface_detail::Apply<T>& f, std::size_t n_vox, std::size_t n_cells,
                           std::size_t n_smooth) {
  if (n_vox == 0) return 0;
  // Voxel i reads and writes only vol[i] (and the coarse arrays, which go up
  // first): element-wise, so the volume streams through in chunks, each
  // chunk's changed voxels counted into its own slot.
  Call call;
  deface_detail::Apply<T> g = f;
  g.cells = cuda_exec::to_device(call, f.cells, n_cells);
  g.smooth = n_smooth ? cuda_exec::to_device(call, f.smooth, n_smooth) : nullptr;
  const std::size_t n_chunks =
      cuda_exec::chunks_of(n_vox, cuda_exec::map_chunk(sizeof(T), sizeof(T)));
  unsigned long long* d_counts = call.alloc<unsigned long long>(n_chunks);
  unsigned long long* d_partials = call.alloc<unsigned long long>(kLanes * kReduceGrid);
  cuda_exec::staged_map(call, f.vol, f.vol, n_vox, [&](const Chunk<T, T>& c) {
    deface_detail::Apply<T> h = g;
    h.vol = c.out;  // == c.in: in place
    h.first = static_cast<std::int64_t>(c.first);
    cuda_exec::transform_reduce_async(c.stream, c.count, 0ull, CountTrue<deface_detail::Apply<T>>{h},
                                      Plus<unsigned long long>{}, d_counts + c.index,
                                      d_partials + c.lane * kReduceGrid);
  });
  std::vector<unsigned long long> counts(n_chunks);
  cuda_exec::download(call, counts.data(), d_counts, n_chunks);
  std::uint64_t total = 0;
  for (const unsigned long long k : counts) total += k;
  return total;
}

#define RAPIDNII_INSTANTIATE_DEFACE(T)                                                       \
  template void deface_downsample<T>(const deface_detail::Downsample<T>&, std::size_t,       \
                                     std::size_t);                                          \
  template std::uint64_t deface_apply<T>(const deface_detail::Apply<T>&, std::size_t,        \
                                         std::size_t, std::size_t);
RAPIDNII_FOR_DEFACE_VOXEL_TYPES(RAPIDNII_INSTANTIATE_DEFACE)
#undef RAPIDNII_INSTANTIATE_DEFACE

// --- Reductions ----------------------------------------------------------------
// Each chunk is reduced on its lane as soon as it is in (one result slot per
// chunk); the host folds the chunk results in chunk order, so the grouping
// depends on n only.
namespace {

template <class T, class Acc, class MakeF, class Op>
Acc reduce_values(const T* v, std::size_t n, Acc identity, MakeF make_f, Op op) {
  Call call;
  const std::size_t n_chunks = cuda_exec::chunks_of(n, cuda_exec::map_chunk(sizeof(T), 0));
  Acc* d_results = call.alloc<Acc>(n_chunks);
  Acc* d_partials = call.alloc<Acc>(kLanes * kReduceGrid);
  cuda_exec::staged_map(call, v, static_cast<std::uint8_t*>(nullptr), n,
                        [&](const Chunk<T, std::uint8_t>& c) {
                          cuda_exec::transform_reduce_async(
                              c.stream, c.count, identity, make_f(c.in), op,
                              d_results + c.index, d_partials + c.lane * kReduceGrid);
                        });
  std::vector<Acc> results(n_chunks);
  cuda_exec::download(call, results.data(), d_results, n_chunks);
  Acc acc = identity;
  for (const Acc& r : results) acc = op(acc, r);
  return acc;
}

}  // namespace

template <class T>
MinMax<T> value_range(const T* v, std::size_t n, MinMax<T> none) {
  return reduce_values<T>(v, n, none, [none](const T* chunk) { return RangeOf<T>{chunk, none}; },
                          MinMaxOp<T>{});
}

template <class T>
SumOf<T> value_sum(const T* v, std::size_t n) {
  return reduce_values<T>(v, n, SumOf<T>{0}, [](const T* chunk) { return SumTerm<T>{chunk}; },
                          Plus<SumOf<T>>{});
}

template <class T>
void value_histogram(const ValueBin<T>& bin, std::size_t n, std::uint64_t* counts) {
  const auto bins = static_cast<std::size_t>(bin.bins);
  Call call;
  std::uint64_t* d_counts = call.alloc<std::uint64_t>(bins);
  check(cudaMemsetAsync(d_counts, 0, bins * sizeof(std::uint64_t), call.main()),
        "cudaMemsetAsync");
  // Every chunk adds into the one histogram (integer atomics: exact).
  cuda_exec::staged_map(call, bin.v, static_cast<std::uint8_t*>(nullptr), n,
                        [&](const Chunk<T, std::uint8_t>& c) {
                          ValueBin<T> b = bin;
                          b.v = c.in;
                          cuda_exec::histogram_async(c.stream, c.count, b, d_counts, bins);
                        });
  cuda_exec::download(call, counts, d_counts, bins);
}

#define RAPIDNII_INSTANTIATE_REDUCE(T)                                                \
  template MinMax<T> value_range<T>(const T*, std::size_t, MinMax<T>);                \
  template SumOf<T> value_sum<T>(const T*, std::size_t);                              \
  template void value_histogram<T>(const ValueBin<T>&, std::size_t, std::uint64_t*);
RAPIDNII_FOR_VOXEL_TYPES(RAPIDNII_INSTANTIATE_REDUCE)
#undef RAPIDNII_INSTANTIATE_REDUCE

}  // namespace rapidnii::kernels::cuda_backend
