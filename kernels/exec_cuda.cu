// CUDA executor: launches the same index functors the CPU executor runs
// (bits.h, rescale.h) over [0, n) with a grid-stride loop, plus the host entry
// points declared in cuda_backend.h. Kept to one small translation unit because
// each .cu costs ~30 s to compile.
//
// Memory: device buffers come from the device's default stream-ordered pool
// (cudaMallocAsync/cudaFreeAsync) on the per-thread default stream, so calls
// from different host threads overlap. Host buffers are pageable, so the copies
// go through the driver's staging buffers; copying through pinned staging
// buffers (and overlapping copy with compute) is a later optimisation.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "kernels/bits.h"
#include "kernels/cuda_backend.h"
#include "kernels/deface_kernels.h"
#include "kernels/reorient.h"
#include "kernels/rescale.h"

namespace rapidnii::kernels::cuda_backend {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) +
                             " (" + cudaGetErrorString(e) + ")");
  }
}

template <class F>
__global__ void for_each_index_kernel(std::size_t n, F f) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    f(i);
  }
}

// Generic executor: f(i) for every i in [0, n), enqueued on `stream`.
template <class F>
void for_each_index(cudaStream_t stream, std::size_t n, F f) {
  if (n == 0) return;
  constexpr unsigned kBlock = 256;
  constexpr std::size_t kMaxGrid = 8192;  // enough to fill any current GPU
  std::size_t grid = (n + kBlock - 1) / kBlock;
  if (grid > kMaxGrid) grid = kMaxGrid;
  for_each_index_kernel<<<static_cast<unsigned>(grid), kBlock, 0, stream>>>(n, f);
  check(cudaGetLastError(), "kernel launch");
}

// Keep freed pool memory cached between calls instead of returning it to the
// driver at every synchronisation (the default release threshold is 0).
void configure_pool_once() {
  static const bool done = [] {
    int dev = 0;
    cudaMemPool_t pool;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetDefaultMemPool(&pool, dev) == cudaSuccess) {
      std::uint64_t threshold = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
    }
    cudaGetLastError();  // this is best effort: clear any non-sticky error
    return true;
  }();
  (void)done;
}

// Stream-ordered device allocation of n elements of T, freed on the same stream.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(std::size_t n, cudaStream_t stream) : stream_(stream) {
    if (n != 0) {
      check(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n * sizeof(T), stream),
            "cudaMallocAsync");
    }
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

// On an exception, waits for the work already enqueued (copies that may still
// touch host memory, the frees of the buffers) before the host buffers go away.
// Declare it before the DeviceBuffers so it is destroyed after them.
class SyncOnUnwind {
 public:
  explicit SyncOnUnwind(cudaStream_t stream)
      : stream_(stream), uncaught_(std::uncaught_exceptions()) {}
  ~SyncOnUnwind() {
    if (std::uncaught_exceptions() > uncaught_) {
      cudaStreamSynchronize(stream_);
      cudaGetLastError();
    }
  }
  SyncOnUnwind(const SyncOnUnwind&) = delete;
  SyncOnUnwind& operator=(const SyncOnUnwind&) = delete;

 private:
  cudaStream_t stream_;
  int uncaught_;
};

template <class T>
void to_device(T* dst, const T* src, std::size_t n, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, s), "cudaMemcpyAsync H2D");
}

template <class T>
void to_host(T* dst, const T* src, std::size_t n, cudaStream_t s) {
  check(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync D2H");
}

}  // namespace

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
  configure_pool_once();
  const cudaStream_t s = cudaStreamPerThread;
  SyncOnUnwind guard(s);
  DeviceBuffer<T> d_data(n, s);
  to_device(d_data.get(), data, n, s);
  for_each_index(s, n, StoredBitsInPlace<T>{d_data.get(), op});
  to_host(data, d_data.get(), n, s);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

template <class T>
void rescale_to_float(const T* in, float* out, std::size_t n, const double* slope,
                      const double* inter, std::size_t per_slice) {
  if (n == 0) return;
  configure_pool_once();
  const std::size_t n_slices = (n - 1) / per_slice + 1;
  const cudaStream_t s = cudaStreamPerThread;
  SyncOnUnwind guard(s);
  DeviceBuffer<T> d_in(n, s);
  DeviceBuffer<float> d_out(n, s);
  DeviceBuffer<double> d_slope(n_slices, s);
  DeviceBuffer<double> d_inter(n_slices, s);
  to_device(d_in.get(), in, n, s);
  to_device(d_slope.get(), slope, n_slices, s);
  to_device(d_inter.get(), inter, n_slices, s);
  for_each_index(s, n, RescaleToFloat<T>{d_in.get(), d_out.get(), d_slope.get(), d_inter.get(),
                                         per_slice});
  to_host(out, d_out.get(), n, s);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

#define RAPIDNII_INSTANTIATE(T)                                                           \
  template void normalize_stored_bits<T>(T*, std::size_t, StoredBits<T>);                 \
  template void rescale_to_float<T>(const T*, float*, std::size_t, const double*,          \
                                    const double*, std::size_t);
RAPIDNII_INSTANTIATE(std::uint8_t)
RAPIDNII_INSTANTIATE(std::int8_t)
RAPIDNII_INSTANTIATE(std::uint16_t)
RAPIDNII_INSTANTIATE(std::int16_t)
RAPIDNII_INSTANTIATE(std::uint32_t)
RAPIDNII_INSTANTIATE(std::int32_t)
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
    for_each_index(s, n, ReorientLines<T, Scatter>{in, out, m});
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
  configure_pool_once();
  const cudaStream_t s = cudaStreamPerThread;
  SyncOnUnwind guard(s);
  DeviceBuffer<T> d_in(n, s);
  DeviceBuffer<T> d_out(n, s);
  to_device(d_in.get(), in, n, s);
  if (scatter) {
    reorient_launch<T, true>(d_in.get(), d_out.get(), m, nt, q, s);
  } else {
    reorient_launch<T, false>(d_in.get(), d_out.get(), m, nt, q, s);
  }
  to_host(out, d_out.get(), n, s);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

#define RAPIDNII_INSTANTIATE_REORIENT(T) \
  template void reorient<T>(const T*, T*, const ReorientMap&, std::int64_t, bool, int);
RAPIDNII_INSTANTIATE_REORIENT(std::uint8_t)
RAPIDNII_INSTANTIATE_REORIENT(std::int8_t)
RAPIDNII_INSTANTIATE_REORIENT(std::uint16_t)
RAPIDNII_INSTANTIATE_REORIENT(std::int16_t)
RAPIDNII_INSTANTIATE_REORIENT(std::uint32_t)
RAPIDNII_INSTANTIATE_REORIENT(std::int32_t)
RAPIDNII_INSTANTIATE_REORIENT(float)
#undef RAPIDNII_INSTANTIATE_REORIENT

// --- Defacing: the full-resolution passes ------------------------------------
namespace {

// Runs f(i) for every i and counts the true results (block sums, one atomic
// per block: an integer, so the count does not depend on the schedule).
template <class F>
__global__ void count_if_kernel(std::size_t n, F f, unsigned long long* count) {
  __shared__ unsigned int block_sum;
  if (threadIdx.x == 0) block_sum = 0;
  __syncthreads();
  unsigned int mine = 0;
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    if (f(i)) ++mine;
  }
  if (mine) atomicAdd(&block_sum, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_sum) atomicAdd(count, static_cast<unsigned long long>(block_sum));
}

}  // namespace

template <class T>
void deface_downsample(const deface_detail::Downsample<T>& f, std::size_t n_vox,
                       std::size_t n_cells) {
  if (n_cells == 0) return;
  configure_pool_once();
  const cudaStream_t s = cudaStreamPerThread;
  SyncOnUnwind guard(s);
  DeviceBuffer<T> d_vol(n_vox, s);
  DeviceBuffer<float> d_mean(n_cells, s), d_max(n_cells, s);
  DeviceBuffer<std::uint8_t> d_inside(n_cells, s);
  to_device(d_vol.get(), f.vol, n_vox, s);
  deface_detail::Downsample<T> g = f;
  g.vol = d_vol.get();
  g.mean = d_mean.get();
  g.maxv = d_max.get();
  g.inside = d_inside.get();
  for_each_index(s, n_cells, g);
  to_host(f.mean, d_mean.get(), n_cells, s);
  to_host(f.maxv, d_max.get(), n_cells, s);
  to_host(f.inside, d_inside.get(), n_cells, s);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

template <class T>
std::uint64_t deface_apply(const deface_detail::Apply<T>& f, std::size_t n_vox, std::size_t n_cells,
                           std::size_t n_smooth) {
  if (n_vox == 0) return 0;
  configure_pool_once();
  const cudaStream_t s = cudaStreamPerThread;
  SyncOnUnwind guard(s);
  DeviceBuffer<T> d_vol(n_vox, s);
  DeviceBuffer<std::uint8_t> d_cells(n_cells, s);
  DeviceBuffer<float> d_smooth(n_smooth, s);
  DeviceBuffer<unsigned long long> d_count(1, s);
  to_device(d_vol.get(), f.vol, n_vox, s);
  to_device(d_cells.get(), f.cells, n_cells, s);
  if (n_smooth) to_device(d_smooth.get(), f.smooth, n_smooth, s);
  check(cudaMemsetAsync(d_count.get(), 0, sizeof(unsigned long long), s), "cudaMemsetAsync");
  deface_detail::Apply<T> g = f;
  g.vol = d_vol.get();
  g.cells = d_cells.get();
  g.smooth = n_smooth ? d_smooth.get() : nullptr;
  constexpr unsigned kBlock = 256;
  std::size_t grid = (n_vox + kBlock - 1) / kBlock;
  if (grid > 8192) grid = 8192;
  count_if_kernel<<<static_cast<unsigned>(grid), kBlock, 0, s>>>(n_vox, g, d_count.get());
  check(cudaGetLastError(), "deface apply launch");
  unsigned long long count = 0;
  to_host(f.vol, d_vol.get(), n_vox, s);
  to_host(&count, d_count.get(), 1, s);
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  return count;
}

#define RAPIDNII_INSTANTIATE_DEFACE(T)                                                       \
  template void deface_downsample<T>(const deface_detail::Downsample<T>&, std::size_t,       \
                                     std::size_t);                                          \
  template std::uint64_t deface_apply<T>(const deface_detail::Apply<T>&, std::size_t,        \
                                         std::size_t, std::size_t);
RAPIDNII_INSTANTIATE_DEFACE(std::uint8_t)
RAPIDNII_INSTANTIATE_DEFACE(std::int8_t)
RAPIDNII_INSTANTIATE_DEFACE(std::uint16_t)
RAPIDNII_INSTANTIATE_DEFACE(std::int16_t)
RAPIDNII_INSTANTIATE_DEFACE(std::int32_t)
RAPIDNII_INSTANTIATE_DEFACE(float)
#undef RAPIDNII_INSTANTIATE_DEFACE

}  // namespace rapidnii::kernels::cuda_backend
