// Reduction operators for transform_reduce on either executor (RAPIDNII_HD;
// see exec_cpu.h and exec_cuda.cuh). Integer +, |, min and max are exact in
// any grouping; so are min and max of floats, because -0.0 orders before +0.0
// here (NaN is for the caller to keep out).
#pragma once
#include <type_traits>

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

}  // namespace rapidnii::kernels
