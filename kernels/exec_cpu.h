// CPU executor (oneTBB): the same functors the CUDA executor launches (see
// hd.h and exec_cuda.cuh), over an index range [0, n).
//
//   for_each_index(n, f)                     f(i) for every i
//   transform(n, out, f)                     out[i] = f(i)
//   transform(n, in, out, f)                 out[i] = f(in[i])
//   transform_reduce(n, identity, f, op)     op-fold of f(0), ..., f(n-1)
//   histogram(n, bin, counts, n_bins)        counts[b] = #{i : bin(i) == b}
//
// Functors are called on a const object, concurrently for distinct indices,
// and exactly once per index (so a transform_reduce functor may also write
// element i, as deface's apply pass does). `grain` is the number of indices
// per TBB task, and the size up to which the loop stays serial because
// spawning tasks would cost more than the work; it only tunes the CPU side.
//
// Determinism: transform_reduce splits [0, n) by halving down to `grain`
// (tbb::parallel_deterministic_reduce), so the reduction tree depends on n
// and grain only, never on the thread count or the schedule: the result is
// the same bits on every run. For integer +, |, min and max (and any other
// associative, commutative op on exact values) it equals the serial fold;
// a float sum is rounded along that tree (compare with the CUDA executor
// within a tolerance, see reduce.h). histogram counts are integers summed
// per thread (tbb::combinable): exact.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

namespace rapidnii::kernels {

inline constexpr std::size_t kCpuGrain = std::size_t{1} << 16;

template <class F>
void for_each_index(std::size_t n, F f, std::size_t grain = kCpuGrain) {
  const F& fn = f;
  if (n <= grain) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&fn](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i != r.end(); ++i) fn(i);
                    });
}

// out[i] = f(i).
template <class Out, class F>
void transform(std::size_t n, Out* out, F f, std::size_t grain = kCpuGrain) {
  const F& fn = f;
  for_each_index(n, [out, &fn](std::size_t i) { out[i] = fn(i); }, grain);
}

// out[i] = f(in[i]). in and out may be the same array (in place), but must not
// otherwise overlap.
template <class In, class Out, class F>
void transform(std::size_t n, const In* in, Out* out, F f, std::size_t grain = kCpuGrain) {
  const F& fn = f;
  for_each_index(n, [in, out, &fn](std::size_t i) { out[i] = fn(in[i]); }, grain);
}

// identity op f(0) op f(1) ... op f(n-1), grouped as described at the top;
// identity for n == 0. identity must be op's identity element (0 for +, the
// largest value for min, ...): every task starts from it. op must be
// associative and commutative (the CUDA executor groups differently).
template <class T, class F, class Op>
T transform_reduce(std::size_t n, T identity, F f, Op op, std::size_t grain = kCpuGrain) {
  const F& fn = f;
  const Op& o = op;
  auto body = [&fn, &o](const tbb::blocked_range<std::size_t>& r, T acc) {
    for (std::size_t i = r.begin(); i != r.end(); ++i) acc = o(acc, fn(i));
    return acc;
  };
  if (n <= grain) return body(tbb::blocked_range<std::size_t>(0, n, grain), identity);
  return tbb::parallel_deterministic_reduce(tbb::blocked_range<std::size_t>(0, n, grain),
                                            identity, body,
                                            [&o](const T& a, const T& b) { return o(a, b); });
}

// counts[b] = number of i in [0, n) with bin(i) == b, for b in [0, n_bins).
// bin(i) is converted to int64_t; values outside [0, n_bins) are dropped, not
// counted (a functor that wants them in the end bins clamps them itself).
// counts is overwritten.
template <class F>
void histogram(std::size_t n, F bin, std::uint64_t* counts, std::size_t n_bins,
               std::size_t grain = kCpuGrain) {
  const F& fn = bin;
  std::fill(counts, counts + n_bins, std::uint64_t{0});
  auto count_range = [&fn, n_bins](std::size_t begin, std::size_t end, std::uint64_t* h) {
    for (std::size_t i = begin; i != end; ++i) {
      const auto b = static_cast<std::int64_t>(fn(i));
      if (b >= 0 && static_cast<std::uint64_t>(b) < n_bins) ++h[b];
    }
  };
  if (n <= grain) {
    count_range(0, n, counts);
    return;
  }
  // One private histogram per thread, summed at the end: integer adds, so the
  // counts do not depend on which thread saw which index.
  tbb::combinable<std::vector<std::uint64_t>> local(
      [n_bins] { return std::vector<std::uint64_t>(n_bins, 0); });
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      count_range(r.begin(), r.end(), local.local().data());
                    });
  local.combine_each([counts, n_bins](const std::vector<std::uint64_t>& h) {
    for (std::size_t b = 0; b < n_bins; ++b) counts[b] += h[b];
  });
}

}  // namespace rapidnii::kernels
