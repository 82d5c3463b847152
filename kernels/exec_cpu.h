// CPU executor: runs an index functor f(i) for every i in [0, n) with oneTBB.
// The functor is the same one the CUDA executor launches (see hd.h); it must be
// callable as `f(std::size_t)` on a const object and safe to run concurrently
// for distinct indices.
#pragma once
#include <cstddef>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace rapidnii::kernels {

// Indices per TBB task; also the size below which the loop stays serial
// because spawning tasks would cost more than the work.
inline constexpr std::size_t kCpuGrain = std::size_t{1} << 16;

template <class F>
void for_each_index(std::size_t n, F f) {
  const F& fn = f;
  if (n <= kCpuGrain) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, kCpuGrain),
                    [&fn](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i != r.end(); ++i) fn(i);
                    });
}

}  // namespace rapidnii::kernels
