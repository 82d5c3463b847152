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

}  // namespace rapidnii::kernels::cuda_backend
