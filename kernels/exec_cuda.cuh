// CUDA executor (nvcc only; included by exec_cuda.cu): the CPU executor's
// operations (exec_cpu.h) on a stream, for the same RAPIDNII_HD functors,
// and the host-side machinery that feeds them: device memory from the
// stream-ordered pool and pinned staging buffers with copies overlapped with
// work.
//
//   for_each_index(s, n, f)                  f(i) for every i (grid-stride loop)
//   transform(s, n, out, f)                  out[i] = f(i)       (Thrust, par_nosync)
//   transform(s, n, in, out, f)              out[i] = f(in[i])   (Thrust, par_nosync)
//   transform_reduce_async(s, n, id, f, op, result, partials)
//                                            *result = op-fold of f(i) (CUB BlockReduce)
//   histogram_async(s, n, bin, counts, n_bins)
//                                            counts[b] += #{i : bin(i) == b}
//
// All of them only enqueue work on the stream s and return. Device pointers
// throughout. As on the CPU, f is called exactly once per index, and
// transform_reduce's op must be associative and commutative.
//
// Determinism: transform_reduce has a fixed shape that depends on n only
// (grid = min(ceil(n / 256), 1024) blocks of 256 threads, thread t of block b
// folds indices b*256 + t, + 256*grid, ...; then a block tree, then one block
// folds the block results in the same way), with no atomics: a float sum is
// the same bits on every run and on any device. Integer and min/max results
// are exact, so they equal the CPU executor's. Histogram counts are integer
// atomics: exact.
//
// Staging (class Call): a call borrows a context from a process-wide pool:
// kLanes non-blocking streams, each with an event and two pinned host
// buffers (cudaHostAlloc, grown on demand up to one chunk of kChunkBytes and
// then reused by every later call). Host data moves in chunks: the host
// copies chunk k+1 into one lane's pinned buffer (in parallel pieces with
// TBB) while the DMA engines move the other lanes' chunks, so the copies run
// at pinned speed and the host copy overlaps them. staged_map runs an
// element-wise kernel on each chunk on its lane as well, so that the H2D of
// chunk k+1, the kernel on chunk k and the D2H of chunk k-1 overlap (three
// lanes: one per engine). Kernels that need the whole volume on the device
// (reorient's gather and deface's downsample) use upload / download around
// one kernel instead: only the chunks of each copy overlap one another and
// the host copies, since the kernel can start only when the last chunk is in
// and the first result chunk is ready only when the kernel ends.
#pragma once
#include <cuda_runtime.h>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/transform.h>

namespace rapidnii::kernels::cuda_exec {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) +
                             " (" + cudaGetErrorString(e) + ")");
  }
}

inline constexpr unsigned kBlock = 256;
inline constexpr std::size_t kMaxGrid = 8192;     // enough to fill any current GPU
inline constexpr std::size_t kReduceGrid = 1024;  // block results of one reduction
inline constexpr std::size_t kSharedBins = 8192;  // 32 KiB of per-block bin counters

inline unsigned grid_for(std::size_t n, std::size_t max_grid) {
  const std::size_t g = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(g < 1 ? 1 : (g > max_grid ? max_grid : g));
}

// ---- The executors ---------------------------------------------------------

template <class F>
__global__ void for_each_index_kernel(std::size_t n, F f) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    f(i);
  }
}

template <class F>
void for_each_index(cudaStream_t s, std::size_t n, F f) {
  if (n == 0) return;
  for_each_index_kernel<<<grid_for(n, kMaxGrid), kBlock, 0, s>>>(n, f);
  check(cudaGetLastError(), "for_each_index launch");
}

// out[i] = f(i).
template <class Out, class F>
void transform(cudaStream_t s, std::size_t n, Out* out, F f) {
  if (n == 0) return;
  thrust::transform(thrust::cuda::par_nosync.on(s), thrust::counting_iterator<std::size_t>(0),
                    thrust::counting_iterator<std::size_t>(n), out, f);
}

// out[i] = f(in[i]); in == out is allowed.
template <class In, class Out, class F>
void transform(cudaStream_t s, std::size_t n, const In* in, Out* out, F f) {
  if (n == 0) return;
  thrust::transform(thrust::cuda::par_nosync.on(s), in, in + n, out, f);
}

template <class T, class F, class Op>
__global__ void reduce_blocks_kernel(std::size_t n, T identity, F f, Op op, T* block_results) {
  using BlockReduce = cub::BlockReduce<T, kBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  T acc = identity;
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    acc = op(acc, f(i));
  }
  const T block = BlockReduce(temp).Reduce(acc, op);
  if (threadIdx.x == 0) block_results[blockIdx.x] = block;
}

template <class T, class Op>
__global__ void reduce_final_kernel(const T* block_results, unsigned count, T identity, Op op,
                                    T* result) {
  using BlockReduce = cub::BlockReduce<T, kBlock>;
  __shared__ typename BlockReduce::TempStorage temp;
  T acc = identity;
  for (unsigned j = threadIdx.x; j < count; j += blockDim.x) acc = op(acc, block_results[j]);
  const T all = BlockReduce(temp).Reduce(acc, op);
  if (threadIdx.x == 0) *result = all;
}

// *result = identity op f(0) op ... op f(n-1), grouped as described at the
// top; `partials` is scratch of kReduceGrid elements, free until the stream
// has run the reduction.
template <class T, class F, class Op>
void transform_reduce_async(cudaStream_t s, std::size_t n, T identity, F f, Op op, T* result,
                            T* partials) {
  static_assert(std::is_trivially_copyable_v<T>, "reduced values go through shared memory");
  unsigned blocks = 0;
  if (n != 0) {
    blocks = grid_for(n, kReduceGrid);
    reduce_blocks_kernel<T, F, Op><<<blocks, kBlock, 0, s>>>(n, identity, f, op, partials);
    check(cudaGetLastError(), "reduce launch");
  }
  reduce_final_kernel<T, Op><<<1, kBlock, 0, s>>>(partials, blocks, identity, op, result);
  check(cudaGetLastError(), "reduce launch");
}

// Bin counts in shared memory when they fit (one global atomic per bin and
// block at the end), else global atomics. `privatized` is the same for the
// whole grid, so the barriers are reached by every thread.
template <class F>
__global__ void histogram_kernel(std::size_t n, F bin, unsigned long long* counts,
                                 std::size_t n_bins, bool privatized) {
  extern __shared__ unsigned int local[];
  if (privatized) {
    for (std::size_t b = threadIdx.x; b < n_bins; b += blockDim.x) local[b] = 0;
    __syncthreads();
  }
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const auto b = static_cast<long long>(bin(i));
    if (b < 0 || static_cast<unsigned long long>(b) >= n_bins) continue;  // dropped
    if (privatized) {
      atomicAdd(&local[b], 1u);
    } else {
      atomicAdd(&counts[b], 1ull);
    }
  }
  if (privatized) {
    __syncthreads();
    for (std::size_t b = threadIdx.x; b < n_bins; b += blockDim.x) {
      if (local[b] != 0) atomicAdd(&counts[b], static_cast<unsigned long long>(local[b]));
    }
  }
}

// counts[b] += number of i in [0, n) with bin(i) == b (converted to a signed
// 64-bit value); other bins are dropped. counts is not cleared here, so that
// the chunks of one volume add into one histogram.
template <class F>
void histogram_async(cudaStream_t s, std::size_t n, F bin, std::uint64_t* counts,
                     std::size_t n_bins) {
  static_assert(sizeof(std::uint64_t) == sizeof(unsigned long long));
  if (n == 0 || n_bins == 0) return;
  // A block sees at most n indices: its 32-bit counters cannot overflow.
  const bool privatized = n_bins <= kSharedBins && n <= 0xFFFFFFFFu;
  const std::size_t shared = privatized ? n_bins * sizeof(unsigned int) : 0;
  histogram_kernel<<<grid_for(n, kMaxGrid), kBlock, shared, s>>>(
      n, bin, reinterpret_cast<unsigned long long*>(counts), n_bins, privatized);
  check(cudaGetLastError(), "histogram launch");
}

// ---- Device memory and staging ------------------------------------------------

// Keep freed pool memory cached between calls instead of returning it to the
// driver at every synchronisation (the default release threshold is 0).
inline void configure_pool_once() {
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

inline constexpr int kLanes = 3;
// One chunk of the larger of a kernel's input and output elements: large
// enough that a copy runs at full speed (~80 us at 50 GB/s), small enough that
// three lanes of pinned buffers stay at 24 MiB per context.
inline constexpr std::size_t kChunkBytes = std::size_t{4} << 20;

inline std::size_t chunk_elems(std::size_t elem_bytes) { return kChunkBytes / elem_bytes; }

// Elements per chunk of a staged_map with inputs of in_bytes and outputs of
// out_bytes each (0: no output), and the number of chunks of n elements.
inline std::size_t map_chunk(std::size_t in_bytes, std::size_t out_bytes) {
  return chunk_elems(std::max(in_bytes, out_bytes));
}
inline std::size_t chunks_of(std::size_t n, std::size_t chunk) { return (n + chunk - 1) / chunk; }

// Page-locked host memory, grown on demand and never shrunk. Only grown while
// its lane is idle (at the start of a staged copy, after the lane's previous
// DMA has completed).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void reserve(std::size_t bytes) {
    if (bytes <= cap_) return;
    if (ptr_ != nullptr) {
      check(cudaFreeHost(ptr_), "cudaFreeHost");
      ptr_ = nullptr;
      cap_ = 0;
    }
    check(cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault), "cudaHostAlloc");
    cap_ = bytes;
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  std::size_t cap_ = 0;
};

// One stream with its pinned buffers. `done` is recorded after every chunk
// enqueued on the lane: the host waits on it before it reuses a buffer.
struct Lane {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  PinnedBuffer up, down;
};

struct StagingContext {
  Lane lanes[kLanes];
  cudaEvent_t fence = nullptr;

  StagingContext() {
    for (Lane& l : lanes) {
      check(cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cudaEventCreateWithFlags(&l.done, cudaEventDisableTiming), "cudaEventCreate");
    }
    check(cudaEventCreateWithFlags(&fence, cudaEventDisableTiming), "cudaEventCreate");
  }
  StagingContext(const StagingContext&) = delete;
  StagingContext& operator=(const StagingContext&) = delete;
};

// Contexts are made on demand (one per concurrent caller at most) and kept for
// the life of the process; the pool itself is never destroyed, so no CUDA call
// runs during static destruction (the driver releases everything at exit).
// All contexts belong to the device current when they were made (rapidnii
// uses device 0).
class StagingPool {
 public:
  static StagingPool& get() {
    static StagingPool* pool = new StagingPool;
    return *pool;
  }
  StagingContext* acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        StagingContext* c = free_.back();
        free_.pop_back();
        return c;
      }
    }
    return new StagingContext;
  }
  void release(StagingContext* c) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(c);
  }

 private:
  std::mutex mutex_;
  std::vector<StagingContext*> free_;
};

// Host memcpy into or out of a pinned buffer, in 1 MiB pieces on TBB threads:
// one core alone copies slower than the DMA engine moves the chunk.
inline void stage_copy(void* dst, const void* src, std::size_t bytes) {
  constexpr std::size_t kPiece = std::size_t{1} << 20;
  if (bytes <= kPiece) {
    std::memcpy(dst, src, bytes);
    return;
  }
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, (bytes + kPiece - 1) / kPiece, 1),
                    [=](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t p = r.begin(); p != r.end(); ++p) {
                        const std::size_t off = p * kPiece;
                        std::memcpy(d + off, s + off, std::min(kPiece, bytes - off));
                      }
                    });
}

// One host entry point's use of a staging context: its lanes, and the device
// memory it allocates (from the stream-ordered pool, on lane 0). On the way
// out, normal or by an exception, lane 0 waits for every lane, the memory is
// freed on lane 0 and the host waits for all lanes, so that the context goes
// back to the pool idle and no copy can still touch a host buffer.
class Call {
 public:
  Call() : ctx_(StagingPool::get().acquire()) { configure_pool_once(); }
  ~Call() {
    for (int l = 1; l < kLanes; ++l) {
      cudaEventRecord(ctx_->lanes[l].done, ctx_->lanes[l].stream);
      cudaStreamWaitEvent(ctx_->lanes[0].stream, ctx_->lanes[l].done, 0);
    }
    for (void* p : allocs_) cudaFreeAsync(p, ctx_->lanes[0].stream);
    for (Lane& l : ctx_->lanes) cudaStreamSynchronize(l.stream);
    cudaGetLastError();  // the errors that mattered were thrown already
    StagingPool::get().release(ctx_);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Lane& lane(int l) { return ctx_->lanes[l]; }
  cudaStream_t main() const { return ctx_->lanes[0].stream; }

  // n elements of T, ordered on lane 0: other lanes may use them after fence().
  template <class T>
  T* alloc(std::size_t n) {
    if (n == 0) return nullptr;
    void* p = nullptr;
    allocs_.reserve(allocs_.size() + 1);  // so that the push_back cannot throw
    check(cudaMallocAsync(&p, n * sizeof(T), main()), "cudaMallocAsync");
    allocs_.push_back(p);
    return static_cast<T*>(p);
  }

  // Every lane waits for the work enqueued so far on lane 0.
  void fence() {
    check(cudaEventRecord(ctx_->fence, main()), "cudaEventRecord");
    for (int l = 1; l < kLanes; ++l) {
      check(cudaStreamWaitEvent(ctx_->lanes[l].stream, ctx_->fence, 0), "cudaStreamWaitEvent");
    }
  }
  // Lane 0 waits for the work enqueued so far on every lane.
  void join() {
    for (int l = 1; l < kLanes; ++l) {
      check(cudaEventRecord(ctx_->lanes[l].done, ctx_->lanes[l].stream), "cudaEventRecord");
      check(cudaStreamWaitEvent(main(), ctx_->lanes[l].done, 0), "cudaStreamWaitEvent");
    }
  }

 private:
  StagingContext* ctx_;
  std::vector<void*> allocs_;
};

// A chunk's part of a staged_map, handed to its launch function.
template <class In, class Out>
struct Chunk {
  cudaStream_t stream;
  int lane;
  std::size_t index;  // chunk number
  std::size_t first;  // offset of the chunk in the whole buffer
  std::size_t count;
  const In* in;       // device: the chunk's input
  Out* out;           // device: its output (== in when In == Out: in place)
};

namespace detail {

// Chunk c of the host range waits in lane c % kLanes's `down` buffer until
// the lane comes round again (or the end); then it is copied out.
template <class T>
struct Pending {
  T* host = nullptr;
  std::size_t count = 0;
};

template <class T>
void finish(Lane& l, Pending<T>& p) {
  if (p.host == nullptr) return;
  check(cudaEventSynchronize(l.done), "cudaEventSynchronize");
  stage_copy(p.host, l.down.get(), p.count * sizeof(T));
  p.host = nullptr;
}

}  // namespace detail

// n elements from host src to device dst (allocated by this call), through
// the pinned buffers in chunks. Lane 0 waits for the copies (join).
template <class T>
void upload(Call& call, T* dst, const T* src, std::size_t n) {
  if (n == 0) return;
  const std::size_t chunk = chunk_elems(sizeof(T));
  call.fence();  // dst was allocated on lane 0
  for (std::size_t c = 0, first = 0; first < n; ++c, first += chunk) {
    Lane& l = call.lane(static_cast<int>(c % kLanes));
    const std::size_t count = std::min(chunk, n - first);
    check(cudaEventSynchronize(l.done), "cudaEventSynchronize");  // its buffer is free
    l.up.reserve(std::min(chunk, n) * sizeof(T));
    stage_copy(l.up.get(), src + first, count * sizeof(T));
    check(cudaMemcpyAsync(dst + first, l.up.get(), count * sizeof(T), cudaMemcpyHostToDevice,
                          l.stream),
          "cudaMemcpyAsync H2D");
    check(cudaEventRecord(l.done, l.stream), "cudaEventRecord");
  }
  call.join();
}

// n elements from device src to host dst, once the work enqueued so far on
// lane 0 is done; returns when dst holds them.
template <class T>
void download(Call& call, T* dst, const T* src, std::size_t n) {
  if (n == 0) return;
  const std::size_t chunk = chunk_elems(sizeof(T));
  call.fence();
  detail::Pending<T> pending[kLanes];
  for (std::size_t c = 0, first = 0; first < n; ++c, first += chunk) {
    const int li = static_cast<int>(c % kLanes);
    Lane& l = call.lane(li);
    const std::size_t count = std::min(chunk, n - first);
    detail::finish(l, pending[li]);
    check(cudaEventSynchronize(l.done), "cudaEventSynchronize");
    l.down.reserve(std::min(chunk, n) * sizeof(T));
    check(cudaMemcpyAsync(l.down.get(), src + first, count * sizeof(T), cudaMemcpyDeviceToHost,
                          l.stream),
          "cudaMemcpyAsync D2H");
    check(cudaEventRecord(l.done, l.stream), "cudaEventRecord");
    pending[li] = {dst + first, count};
  }
  for (int li = 0; li < kLanes; ++li) detail::finish(call.lane(li), pending[li]);
}

// Element-wise work on a host buffer: for each chunk, on its lane, H2D, then
// launch(Chunk) (which enqueues kernels on chunk.stream and may read only the
// chunk's elements), then, when out is not null, D2H into out. in == out (in
// place on the host) is allowed. Returns when every chunk is done and out
// holds the results. With In == Out the kernel works in place on the device
// (chunk.out == chunk.in); with out == nullptr nothing comes back (a
// reduction writes its own results).
template <class In, class Out, class Launch>
void staged_map(Call& call, const In* in, Out* out, std::size_t n, Launch launch) {
  if (n == 0) return;
  constexpr bool kInPlace = std::is_same_v<In, Out>;
  const bool back = out != nullptr;
  const std::size_t chunk = map_chunk(sizeof(In), back ? sizeof(Out) : 0);
  const std::size_t per_lane = std::min(chunk, n);
  In* d_in[kLanes];
  Out* d_out[kLanes];
  for (int li = 0; li < kLanes; ++li) {
    d_in[li] = call.alloc<In>(per_lane);
    if constexpr (kInPlace) {
      d_out[li] = d_in[li];
    } else {
      d_out[li] = back ? call.alloc<Out>(per_lane) : nullptr;
    }
  }
  call.fence();
  detail::Pending<Out> pending[kLanes];
  for (std::size_t c = 0, first = 0; first < n; ++c, first += chunk) {
    const int li = static_cast<int>(c % kLanes);
    Lane& l = call.lane(li);
    const std::size_t count = std::min(chunk, n - first);
    // The lane's previous chunk: its result out of the pinned buffer, and
    // both buffers free again.
    detail::finish(l, pending[li]);
    check(cudaEventSynchronize(l.done), "cudaEventSynchronize");
    l.up.reserve(per_lane * sizeof(In));
    stage_copy(l.up.get(), in + first, count * sizeof(In));
    check(cudaMemcpyAsync(d_in[li], l.up.get(), count * sizeof(In), cudaMemcpyHostToDevice,
                          l.stream),
          "cudaMemcpyAsync H2D");
    launch(Chunk<In, Out>{l.stream, li, c, first, count, d_in[li], d_out[li]});
    if (back) {
      l.down.reserve(per_lane * sizeof(Out));
      check(cudaMemcpyAsync(l.down.get(), d_out[li], count * sizeof(Out),
                            cudaMemcpyDeviceToHost, l.stream),
            "cudaMemcpyAsync D2H");
      pending[li] = {out + first, count};
    }
    check(cudaEventRecord(l.done, l.stream), "cudaEventRecord");
  }
  for (int li = 0; li < kLanes; ++li) {
    detail::finish(call.lane(li), pending[li]);
    check(cudaEventSynchronize(call.lane(li).done), "cudaEventSynchronize");
  }
}

// Small host arrays (per-slice parameters, coarse cells): one pageable copy on
// lane 0; the driver copies the source before the call returns.
template <class T>
T* to_device(Call& call, const T* src, std::size_t n) {
  T* d = call.alloc<T>(n);
  if (n != 0) {
    check(cudaMemcpyAsync(d, src, n * sizeof(T), cudaMemcpyHostToDevice, call.main()),
          "cudaMemcpyAsync H2D");
  }
  return d;
}

}  // namespace rapidnii::kernels::cuda_exec
