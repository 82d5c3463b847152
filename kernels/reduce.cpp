#include "kernels/reduce.h"
#include "kernels/voxel_types.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/exec_cpu.h"

#if RAPIDNII_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace rapidnii::kernels {

namespace {

#if !RAPIDNII_HAVE_CUDA
// Only reachable when resolve_device() returned Cuda, which it never does in a
// build without CUDA; kept as a guard.
[[noreturn]] void no_cuda_build() {
  throw std::runtime_error("rapidnii was built without CUDA support");
}
#endif

template <class T>
MinMax<T> no_values() {
  if constexpr (std::is_floating_point_v<T>) {
    return {std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
  } else {
    return {std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest()};
  }
}

}  // namespace

template <class T>
MinMax<T> value_range(Device d, std::span<const T> v) {
  d = resolve_device(d);
  const MinMax<T> none = no_values<T>();
  if (v.empty()) return none;
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    return cuda_backend::value_range<T>(v.data(), v.size(), none);
#else
    no_cuda_build();
#endif
  }
  return transform_reduce(v.size(), none, RangeOf<T>{v.data(), none}, MinMaxOp<T>{});
}

template <class T>
SumOf<T> value_sum(Device d, std::span<const T> v) {
  d = resolve_device(d);
  if (v.empty()) return SumOf<T>{0};
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    return cuda_backend::value_sum<T>(v.data(), v.size());
#else
    no_cuda_build();
#endif
  }
  return transform_reduce(v.size(), SumOf<T>{0}, SumTerm<T>{v.data()}, Plus<SumOf<T>>{});
}

template <class T>
std::vector<std::uint64_t> value_histogram(Device d, std::span<const T> v, double lo, double hi,
                                           std::size_t bins) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo) || bins == 0 ||
      bins > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())) {
    throw std::invalid_argument("value_histogram: need finite lo < hi and at least one bin, got [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "] and " +
                                std::to_string(bins) + " bins");
  }
  d = resolve_device(d);
  std::vector<std::uint64_t> counts(bins, 0);
  if (v.empty()) return counts;
  const ValueBin<T> bin{v.data(), lo, hi, static_cast<std::int64_t>(bins)};
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    cuda_backend::value_histogram<T>(bin, v.size(), counts.data());
    return counts;
#else
    no_cuda_build();
#endif
  }
  histogram(v.size(), bin, counts.data(), bins);
  return counts;
}

#define RAPIDNII_INSTANTIATE(T)                                                              \
  template MinMax<T> value_range<T>(Device, std::span<const T>);                             \
  template SumOf<T> value_sum<T>(Device, std::span<const T>);                                \
  template std::vector<std::uint64_t> value_histogram<T>(Device, std::span<const T>, double, \
                                                         double, std::size_t);
RAPIDNII_FOR_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#undef RAPIDNII_INSTANTIATE

}  // namespace rapidnii::kernels
