// Reductions over a buffer of voxel values on the chosen executor (value
// range, sum, value histogram), and the reduction operators and functors
// both executors share (RAPIDNII_HD; see exec_cpu.h and exec_cuda.cuh).
//
// Exactness:
// - value_range and value_histogram are exact on both executors: min/max
//   and integer counts do not depend on the order of the reduction. NaN
//   values are skipped (never the min or max, in no bin); -0.0 orders before
//   +0.0, so even the sign of a zero result is the same on both.
// - value_sum of an integer type is an exact int64 sum (no overflow below
//   2^31 values of 32 bits).
// - value_sum of float is accumulated in double. Each executor is
//   deterministic (the same bits on every run and for any thread count), but
//   the two group the additions differently. Each result is within d*u*S of
//   the exact sum, where S = sum |x|, u = 2^-53 and d is the depth of that
//   executor's summation tree: on the CPU at most kCpuGrain (a serial leaf)
//   + log2(n / kCpuGrain) + 1 (the joins); on CUDA at most 32 per chunk of
//   2^20 floats (4 serial terms per thread, 12 in CUB's block reduction, the
//   same again for the block results) plus one per chunk (the host adds the
//   chunk results in order). So |cpu - cuda| <= 1e-10 * S for any n below
//   2^36, which is what the tests check.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "kernels/device.h"
#include "kernels/hd.h"

namespace rapidnii::kernels {

// ---- Operators ---------------------------------------------------------------

template <class T>
struct Plus {
  RAPIDNII_HD T operator()(T a, T b) const { return a + b; }
};

template <class T>
struct BitOr {
  RAPIDNII_HD T operator()(T a, T b) const { return a | b; }
};

// a orders strictly before b: a < b, or a is -0.0 and b is +0.0 (so that min
// and max are a total order on non-NaN values and their result cannot depend
// on the reduction order). 1/x tells the zeros apart without a library call.
template <class T>
RAPIDNII_HD bool orders_before(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (a == b) return a == T(0) && T(1) / a < T(0) && T(1) / b > T(0);
  }
  return a < b;
}

template <class T>
struct Min {
  RAPIDNII_HD T operator()(T a, T b) const { return orders_before(b, a) ? b : a; }
};

template <class T>
struct Max {
  RAPIDNII_HD T operator()(T a, T b) const { return orders_before(a, b) ? b : a; }
};

// Smallest and largest value; lo > hi (the identity) when there was none.
template <class T>
struct MinMax {
  T lo, hi;
};

template <class T>
struct MinMaxOp {
  RAPIDNII_HD MinMax<T> operator()(MinMax<T> a, MinMax<T> b) const {
    return {Min<T>{}(a.lo, b.lo), Max<T>{}(a.hi, b.hi)};
  }
};

// ---- Functors over a buffer v -------------------------------------------------

// i -> {v[i], v[i]}, or `none` (the identity) for a NaN.
template <class T>
struct RangeOf {
  const T* v;
  MinMax<T> none;
  RAPIDNII_HD MinMax<T> operator()(std::size_t i) const {
    const T x = v[i];
    if constexpr (std::is_floating_point_v<T>) {
      if (x != x) return none;  // NaN
    }
    return {x, x};
  }
};

// The accumulator of value_sum: exact int64 for integers, double for float.
template <class T>
using SumOf = std::conditional_t<std::is_integral_v<T>, std::int64_t, double>;

template <class T>
struct SumTerm {
  const T* v;
  RAPIDNII_HD SumOf<T> operator()(std::size_t i) const { return static_cast<SumOf<T>>(v[i]); }
};

// i -> the bin of v[i] among `bins` equal bins over [lo, hi]:
// floor((x - lo) / (hi - lo) * bins), in double, with x == hi in the last bin;
// -1 (dropped) for x outside [lo, hi] or NaN. Requires hi > lo, bins >= 1.
template <class T>
struct ValueBin {
  const T* v;
  double lo, hi;
  std::int64_t bins;
  RAPIDNII_HD std::int64_t operator()(std::size_t i) const {
    const double x = static_cast<double>(v[i]);
    if (!(x >= lo && x <= hi)) return -1;
    const auto b = static_cast<std::int64_t>((x - lo) / (hi - lo) * static_cast<double>(bins));
    return b < bins ? b : bins - 1;
  }
};

// ---- Host API -------------------------------------------------------------------
// Instantiated for uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t and
// float. Device::Auto is resolved with resolve_device(); Device::Cuda throws
// std::runtime_error when CUDA is unavailable, as do CUDA failures.

// {min, max} of the non-NaN values; {max, lowest} of T (+inf, -inf for float)
// when there are none (empty input, or only NaN).
template <class T>
MinMax<T> value_range(Device d, std::span<const T> v);

// Sum of the values (see the top of this file for float).
template <class T>
SumOf<T> value_sum(Device d, std::span<const T> v);

// counts[b] for b < bins, as ValueBin: values outside [lo, hi] are dropped.
// Throws std::invalid_argument unless lo and hi are finite, hi > lo and
// bins >= 1.
template <class T>
std::vector<std::uint64_t> value_histogram(Device d, std::span<const T> v, double lo, double hi,
                                           std::size_t bins);

}  // namespace rapidnii::kernels
