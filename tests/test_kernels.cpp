// Tests for kernels/: StoredBits and RescaleToFloat on the CPU executor for
// every supported container type, the CPU executor's operations (for each
// index, transform, transform_reduce, histogram) and the reductions of
// reduce.h, device selection, and CUDA-vs-CPU agreement (skipped when no CUDA
// device is available).
#include <gtest/gtest.h>

#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/bits.h"
#include "kernels/device.h"
#include "kernels/exec_cpu.h"
#include "kernels/reduce.h"
#include "kernels/rescale.h"

namespace {

using rapidnii::kernels::cuda_available;
using rapidnii::kernels::Device;
using rapidnii::kernels::normalize_stored_bits;
using rapidnii::kernels::rescale_to_float;
using rapidnii::kernels::StoredBits;

constexpr int width_of(std::size_t bytes) { return 8 * static_cast<int>(bytes); }

// Independent reference: extract the field with 64-bit arithmetic, subtract
// 2^bits_stored for negative signed values, then convert to T (modular).
template <class T>
T reference_value(T raw, int bits_stored, int high_bit, bool is_signed) {
  using U = std::make_unsigned_t<T>;
  const std::uint64_t pattern = static_cast<U>(raw);
  const int low_bit = high_bit + 1 - bits_stored;
  const std::uint64_t field = (pattern >> low_bit) & ((std::uint64_t{1} << bits_stored) - 1);
  std::int64_t value = static_cast<std::int64_t>(field);
  if (is_signed && field >= (std::uint64_t{1} << (bits_stored - 1))) {
    value -= static_cast<std::int64_t>(std::uint64_t{1} << bits_stored);
  }
  return static_cast<T>(value);
}

// Raw test values for a container: every value for 8/16 bits; edge patterns
// plus random values for 32 bits.
template <class T>
std::vector<T> raw_values(std::size_t random_count) {
  using U = std::make_unsigned_t<T>;
  std::vector<T> v;
  if constexpr (sizeof(T) <= 2) {
    for (std::uint32_t x = 0; x <= std::numeric_limits<U>::max(); ++x) {
      v.push_back(static_cast<T>(static_cast<U>(x)));
    }
  } else {
    for (int b = 0; b < 32; ++b) {
      const U one = U{1} << b;
      for (U x : {one, static_cast<U>(one - 1), static_cast<U>(~one), static_cast<U>(~(one - 1))}) {
        v.push_back(static_cast<T>(x));
      }
    }
    std::mt19937 rng(1234);
    std::uniform_int_distribution<U> dist;
    for (std::size_t i = 0; i < random_count; ++i) v.push_back(static_cast<T>(dist(rng)));
  }
  return v;
}

template <class T>
class KernelsTyped : public ::testing::Test {};

using ContainerTypes = ::testing::Types<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t,
                                        std::uint32_t, std::int32_t>;
TYPED_TEST_SUITE(KernelsTyped, ContainerTypes);

// --- StoredBits on the CPU ------------------------------------------------

TEST(StoredBits, DicomExample12BitSigned) {
  // 12 stored bits, high bit 11, signed, junk in the top nibble.
  const StoredBits<std::int16_t> op(12, 11, true);
  EXPECT_EQ(op(static_cast<std::int16_t>(0xF7FF)), 2047);
  EXPECT_EQ(op(static_cast<std::int16_t>(0x0800)), -2048);
  EXPECT_EQ(op(static_cast<std::int16_t>(0xF800)), -2048);
  EXPECT_EQ(op(static_cast<std::int16_t>(0xFFFF)), -1);
  EXPECT_EQ(op(static_cast<std::int16_t>(0x0000)), 0);

  std::vector<std::int16_t> data = {static_cast<std::int16_t>(0xF7FF), 0x0800};
  normalize_stored_bits<std::int16_t>(Device::Cpu, data, 12, 11, true);
  EXPECT_EQ(data[0], 2047);
  EXPECT_EQ(data[1], -2048);

  // The same field read as unsigned (PixelRepresentation 0).
  const StoredBits<std::uint16_t> uop(12, 11, false);
  EXPECT_EQ(uop(0xF7FF), 0x7FF);
  EXPECT_EQ(uop(0x0800), 0x800);
}

TEST(StoredBits, ShiftedField) {
  // bits_stored 12, high_bit 15: the field is the top 12 bits.
  const StoredBits<std::int16_t> op(12, 15, true);
  EXPECT_EQ(op(static_cast<std::int16_t>(0x800F)), -2048);
  EXPECT_EQ(op(static_cast<std::int16_t>(0x7FFF)), 2047);
  const StoredBits<std::uint8_t> op8(4, 5, false);
  EXPECT_EQ(op8(0xFF), 0x0F);
  EXPECT_EQ(op8(0b1101'0100), 0b0101);
}

TEST(StoredBits, Exhaustive16Bit12Stored) {
  for (const bool is_signed : {false, true}) {
    std::vector<std::uint16_t> u = raw_values<std::uint16_t>(0);
    std::vector<std::int16_t> s = raw_values<std::int16_t>(0);
    ASSERT_EQ(u.size(), 65536u);
    const std::vector<std::uint16_t> u0 = u;
    const std::vector<std::int16_t> s0 = s;
    normalize_stored_bits<std::uint16_t>(Device::Cpu, u, 12, 11, is_signed);
    normalize_stored_bits<std::int16_t>(Device::Cpu, s, 12, 11, is_signed);
    for (std::size_t i = 0; i < u.size(); ++i) {
      ASSERT_EQ(u[i], reference_value(u0[i], 12, 11, is_signed)) << "raw " << u0[i];
      ASSERT_EQ(s[i], reference_value(s0[i], 12, 11, is_signed)) << "raw " << s0[i];
    }
  }
}

TYPED_TEST(KernelsTyped, StoredBitsAllFieldsMatchReference) {
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  const std::vector<T> raw = raw_values<T>(2000);
  for (int bits_stored = 1; bits_stored <= width; ++bits_stored) {
    for (int high_bit = bits_stored - 1; high_bit < width; ++high_bit) {
      for (const bool is_signed : {false, true}) {
        std::vector<T> data = raw;
        normalize_stored_bits<T>(Device::Cpu, data, bits_stored, high_bit, is_signed);
        const StoredBits<T> op(bits_stored, high_bit, is_signed);
        for (std::size_t i = 0; i < raw.size(); ++i) {
          const T want = reference_value(raw[i], bits_stored, high_bit, is_signed);
          ASSERT_EQ(data[i], want) << "bits_stored " << bits_stored << " high_bit " << high_bit
                                   << " signed " << is_signed << " raw "
                                   << +static_cast<std::make_unsigned_t<T>>(raw[i]);
          ASSERT_EQ(op(raw[i]), want);
        }
      }
    }
  }
}

TYPED_TEST(KernelsTyped, StoredBitsFullWidthIsNoOp) {
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  const std::vector<T> raw = raw_values<T>(5000);
  for (const bool is_signed : {false, true}) {
    std::vector<T> data = raw;
    normalize_stored_bits<T>(Device::Cpu, data, width, width - 1, is_signed);
    EXPECT_EQ(data, raw);
    const StoredBits<T> op(width, width - 1, is_signed);
    for (const T x : raw) ASSERT_EQ(op(x), x);
  }
}

TYPED_TEST(KernelsTyped, StoredBitsLargeArrayUsesParallelPath) {
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  const int bits_stored = width - 3;
  const int high_bit = width - 2;
  std::vector<T> raw(3 * rapidnii::kernels::kCpuGrain + 17);
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> dist;
  for (T& x : raw) x = static_cast<T>(dist(rng));
  std::vector<T> data = raw;
  normalize_stored_bits<T>(Device::Cpu, data, bits_stored, high_bit, true);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    ASSERT_EQ(data[i], reference_value(raw[i], bits_stored, high_bit, true)) << i;
  }
}

TYPED_TEST(KernelsTyped, StoredBitsRejectsInvalidFields) {
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  std::vector<T> data(4);
  EXPECT_THROW(normalize_stored_bits<T>(Device::Cpu, data, 0, 0, false), std::invalid_argument);
  EXPECT_THROW(normalize_stored_bits<T>(Device::Cpu, data, width + 1, width, false),
               std::invalid_argument);
  EXPECT_THROW(normalize_stored_bits<T>(Device::Cpu, data, 4, 2, false), std::invalid_argument);
  EXPECT_THROW(normalize_stored_bits<T>(Device::Cpu, data, 4, width, false),
               std::invalid_argument);
  EXPECT_NO_THROW(normalize_stored_bits<T>(Device::Cpu, std::span<T>{}, 1, 0, true));
}

// --- RescaleToFloat on the CPU ---------------------------------------------

template <class T>
struct RescaleCase {
  std::vector<T> in;
  std::vector<double> slope, inter;
  std::size_t per_slice = 0;
};

template <class T>
RescaleCase<T> make_rescale_case(std::size_t per_slice, std::size_t n_slices, std::size_t tail,
                                 unsigned seed) {
  RescaleCase<T> c;
  c.per_slice = per_slice;
  const std::size_t n = per_slice * n_slices + tail;  // last slice may be partial
  const std::size_t slices = (n + per_slice - 1) / per_slice;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<long long> vals(std::numeric_limits<T>::min(),
                                                std::numeric_limits<T>::max());
  std::uniform_real_distribution<double> slopes(-3.0, 3.0), inters(-5000.0, 5000.0);
  c.in.resize(n);
  for (T& x : c.in) x = static_cast<T>(vals(rng));
  for (std::size_t s = 0; s < slices; ++s) {
    c.slope.push_back(s == 0 ? 1.0 : slopes(rng));
    c.inter.push_back(s == 0 ? 0.0 : inters(rng));
  }
  return c;
}

template <class T>
std::vector<float> plain_rescale(const RescaleCase<T>& c) {
  std::vector<float> out(c.in.size());
  for (std::size_t i = 0; i < c.in.size(); ++i) {
    const std::size_t s = i / c.per_slice;
    out[i] = static_cast<float>(static_cast<double>(c.in[i]) * c.slope[s] + c.inter[s]);
  }
  return out;
}

TYPED_TEST(KernelsTyped, RescaleMatchesPlainLoop) {
  using T = TypeParam;
  for (const auto& [per_slice, n_slices, tail] :
       {std::tuple<std::size_t, std::size_t, std::size_t>{1000, 7, 0},
        {1000, 7, 333},
        {1, 50, 0},
        {70000, 5, 123}}) {  // > kCpuGrain: the TBB path
    const RescaleCase<T> c = make_rescale_case<T>(per_slice, n_slices, tail, 42);
    std::vector<float> out(c.in.size(), -1.0f);
    rescale_to_float<T>(Device::Cpu, c.in, out, c.slope, c.inter, c.per_slice);
    const std::vector<float> want = plain_rescale(c);
    for (std::size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], want[i]) << "per_slice " << per_slice << " index " << i;
    }
  }
}

TEST(Rescale, KnownValues) {
  const std::vector<std::int16_t> in = {0, 1, -2, 100, 4, -4};
  const std::vector<double> slope = {2.0, 0.5, -1.0};
  const std::vector<double> inter = {-1024.0, 10.0, 0.25};
  std::vector<float> out(in.size());
  rescale_to_float<std::int16_t>(Device::Cpu, in, out, slope, inter, 2);
  EXPECT_EQ(out, (std::vector<float>{-1024.0f, -1022.0f, 9.0f, 60.0f, -3.75f, 4.25f}));
}

TYPED_TEST(KernelsTyped, RescaleRejectsBadArguments) {
  using T = TypeParam;
  std::vector<T> in(10);
  std::vector<float> out(10), short_out(9);
  const std::vector<double> two = {1.0, 1.0}, one = {1.0};
  EXPECT_THROW(rescale_to_float<T>(Device::Cpu, in, short_out, two, two, 5), std::invalid_argument);
  EXPECT_THROW(rescale_to_float<T>(Device::Cpu, in, out, two, two, 0), std::invalid_argument);
  EXPECT_THROW(rescale_to_float<T>(Device::Cpu, in, out, one, two, 5), std::invalid_argument);
  EXPECT_THROW(rescale_to_float<T>(Device::Cpu, in, out, two, one, 5), std::invalid_argument);
  EXPECT_THROW(rescale_to_float<T>(Device::Cpu, in, out, two, two, 4), std::invalid_argument);
  EXPECT_NO_THROW(rescale_to_float<T>(Device::Cpu, in, out, two, two, 5));
  EXPECT_NO_THROW(rescale_to_float<T>(Device::Cpu, in, out, one, one, 10));
  EXPECT_NO_THROW(
      rescale_to_float<T>(Device::Cpu, std::span<const T>{}, std::span<float>{}, {}, {}, 0));
}

// --- executor and device selection ---------------------------------------

TEST(ExecCpu, VisitsEveryIndexOnce) {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, rapidnii::kernels::kCpuGrain,
                              5 * rapidnii::kernels::kCpuGrain + 3}) {
    std::vector<int> hits(n, 0);
    int* p = hits.data();
    rapidnii::kernels::for_each_index(n, [p](std::size_t i) { ++p[i]; });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n " << n << " i " << i;
  }
}

// --- The CPU executor's operations --------------------------------------------

namespace kx = rapidnii::kernels;
using kx::kCpuGrain;

// Around the serial cut-off (n <= grain runs serially) and well above it.
std::vector<std::size_t> executor_sizes() {
  return {0, 1, 7, kCpuGrain - 1, kCpuGrain, kCpuGrain + 1, 5 * kCpuGrain + 3};
}

// Both signs, repeats, and the extremes of int32.
std::vector<std::int32_t> signed_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> dist;
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = dist(rng);
  if (n > 2) {
    v[n / 3] = std::numeric_limits<std::int32_t>::min();
    v[n / 2] = std::numeric_limits<std::int32_t>::max();
  }
  return v;
}

// A float sum's exact value (long double has 64 mantissa bits: the reference
// is far closer than the bound tested) and sum |x|.
std::pair<long double, long double> reference_sum(const std::vector<float>& v) {
  long double s = 0, a = 0;
  for (const float x : v) {
    s += x;
    a += std::fabs(static_cast<long double>(x));
  }
  return {s, a};
}

std::vector<float> wide_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exp(-20, 20);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(mant(rng), exp(rng));
  return v;
}

TEST(ExecCpu, TransformFromIndex) {
  for (const std::size_t n : executor_sizes()) {
    std::vector<std::int64_t> out(n, 99);
    kx::transform(n, out.data(), [](std::size_t i) { return static_cast<std::int64_t>(i) * 3 - 1000; });
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i], static_cast<std::int64_t>(i) * 3 - 1000) << "n " << n << " i " << i;
    }
  }
}

TEST(ExecCpu, TransformFromValueAndInPlace) {
  for (const std::size_t n : executor_sizes()) {
    const std::vector<std::int32_t> in = signed_values(n, 3);
    std::vector<double> out(n, -1.0);
    kx::transform(n, in.data(), out.data(), [](std::int32_t x) { return 0.5 * x; });
    std::vector<std::int32_t> v = in;
    kx::transform(n, v.data(), v.data(), [](std::int32_t x) { return x / 2 - 1; });
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i], 0.5 * in[i]) << "n " << n << " i " << i;
      ASSERT_EQ(v[i], in[i] / 2 - 1) << "n " << n << " i " << i;
    }
  }
}

TEST(ExecCpu, TransformReduceIntegerSumIsExact) {
  for (const std::size_t n : executor_sizes()) {
    const std::vector<std::int32_t> v = signed_values(n, 5);
    std::int64_t want = 0;
    for (const std::int32_t x : v) want += x;
    for (const std::size_t grain : {kCpuGrain, std::size_t{1000}, std::size_t{1}}) {
      const std::int64_t got = kx::transform_reduce(
          n, std::int64_t{0}, [&v](std::size_t i) { return std::int64_t{v[i]}; },
          kx::Plus<std::int64_t>{}, grain);
      ASSERT_EQ(got, want) << "n " << n << " grain " << grain;
    }
  }
  EXPECT_EQ(kx::transform_reduce(0, std::int64_t{0}, [](std::size_t) { return std::int64_t{1}; },
                                 kx::Plus<std::int64_t>{}),
            0);
}

TEST(ExecCpu, TransformReduceMinMaxIsExact) {
  using MM = kx::MinMax<std::int32_t>;
  const MM none{std::numeric_limits<std::int32_t>::max(), std::numeric_limits<std::int32_t>::min()};
  for (const std::size_t n : executor_sizes()) {
    const std::vector<std::int32_t> v = signed_values(n, 9);
    const MM got = kx::transform_reduce(
        n, none, [&v](std::size_t i) { return MM{v[i], v[i]}; }, kx::MinMaxOp<std::int32_t>{});
    if (n == 0) {
      EXPECT_EQ(got.lo, none.lo);
      EXPECT_EQ(got.hi, none.hi);
      continue;
    }
    EXPECT_EQ(got.lo, *std::min_element(v.begin(), v.end())) << "n " << n;
    EXPECT_EQ(got.hi, *std::max_element(v.begin(), v.end())) << "n " << n;
  }
}

TEST(ExecCpu, TransformReduceFloatSumIsDeterministic) {
  const std::vector<float> v = wide_floats(3 * 1000 * 1000 + 17, 11);
  auto sum_with = [&v](int threads) {
    tbb::task_arena arena(threads);
    double s = 0;
    arena.execute([&] {
      s = kx::transform_reduce(v.size(), 0.0, [&v](std::size_t i) { return double{v[i]}; },
                               kx::Plus<double>{});
    });
    return s;
  };
  const double one = sum_with(1);
  for (const int threads : {2, 3, 8}) EXPECT_EQ(sum_with(threads), one) << threads << " threads";
  // Within the tree bound of reduce.h: depth <= grain + log2(n) + 1.
  const auto [exact, abs_sum] = reference_sum(v);
  const long double bound = (kCpuGrain + 64) * std::ldexp(1.0L, -53) * abs_sum;
  EXPECT_LE(std::fabs(static_cast<long double>(one) - exact), bound);
}

TEST(ExecCpu, TransformReduceCallsEachIndexOnce) {
  // The contract deface's apply pass relies on: f(i) may write element i.
  const std::size_t n = 5 * kCpuGrain + 3;
  std::vector<int> hits(n, 0);
  int* p = hits.data();
  const auto total = kx::transform_reduce(
      n, std::uint64_t{0},
      [p](std::size_t i) {
        ++p[i];
        return std::uint64_t{1};
      },
      kx::Plus<std::uint64_t>{}, 16);
  EXPECT_EQ(total, n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << i;
}

TEST(ExecCpu, HistogramCountsAndDropsOutOfRangeBins) {
  constexpr std::size_t kBins = 37;
  // Bins -6 .. 43: the negative ones and those >= kBins are dropped.
  auto bin = [](std::size_t i) { return static_cast<std::int64_t>((i * 2654435761u) % 50) - 6; };
  for (const std::size_t n : executor_sizes()) {
    std::vector<std::uint64_t> want(kBins, 0);
    std::uint64_t in_range = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t b = bin(i);
      if (b >= 0 && b < static_cast<std::int64_t>(kBins)) {
        ++want[static_cast<std::size_t>(b)];
        ++in_range;
      }
    }
    std::vector<std::uint64_t> got(kBins, 12345);  // overwritten, not added to
    kx::histogram(n, bin, got.data(), kBins);
    EXPECT_EQ(got, want) << "n " << n;
    std::uint64_t total = 0;
    for (const std::uint64_t c : got) total += c;
    EXPECT_EQ(total, in_range) << "n " << n;
  }
}

TEST(ExecCpu, HistogramIsTheSameForAnyThreadCount) {
  const std::vector<std::int32_t> v = signed_values(4 * kCpuGrain + 5, 13);
  constexpr std::size_t kBins = 70000;  // more bins than one cache holds
  auto run = [&v](int threads) {
    tbb::task_arena arena(threads);
    std::vector<std::uint64_t> h(kBins);
    arena.execute([&] {
      kx::histogram(
          v.size(), [&v](std::size_t i) { return static_cast<std::int64_t>(v[i] % 80000); },
          h.data(), kBins);
    });
    return h;
  };
  const auto one = run(1);
  EXPECT_EQ(run(8), one);
  EXPECT_GT(std::count_if(one.begin(), one.end(), [](std::uint64_t c) { return c > 0; }), 1000);
  std::vector<std::uint64_t> none;
  kx::histogram(10, [](std::size_t) { return 0; }, none.data(), 0);  // no bins: nothing to count
}

// --- Reductions (reduce.h) on the CPU ---------------------------------------------

template <class T>
class ReduceTyped : public ::testing::Test {};

using ReduceTypes = ::testing::Types<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t,
                                     std::uint32_t, std::int32_t, float>;
TYPED_TEST_SUITE(ReduceTyped, ReduceTypes);

// The whole range of an integer type; floats of both signs over 40 octaves.
template <class T>
std::vector<T> reduce_input(std::size_t n, unsigned seed) {
  if constexpr (std::is_floating_point_v<T>) {
    return wide_floats(n, seed);
  } else {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<long long> dist(std::numeric_limits<T>::min(),
                                                  std::numeric_limits<T>::max());
    std::vector<T> v(n);
    for (T& x : v) x = static_cast<T>(dist(rng));
    return v;
  }
}

std::vector<std::size_t> reduce_sizes() { return {1, 2, 1000, kCpuGrain + 1, 3 * kCpuGrain + 11}; }

TYPED_TEST(ReduceTyped, ValueRangeMatchesMinMaxElement) {
  using T = TypeParam;
  for (const std::size_t n : reduce_sizes()) {
    const std::vector<T> v = reduce_input<T>(n, 21);
    const auto r = kx::value_range<T>(Device::Cpu, v);
    EXPECT_EQ(r.lo, *std::min_element(v.begin(), v.end())) << "n " << n;
    EXPECT_EQ(r.hi, *std::max_element(v.begin(), v.end())) << "n " << n;
  }
  const auto empty = kx::value_range<T>(Device::Cpu, std::span<const T>{});
  EXPECT_GT(empty.lo, empty.hi);
}

TEST(Reduce, ValueRangeSkipsNanAndOrdersZeros) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> v = {nan, 3.0f, -0.0f, 0.0f, nan, -2.0f};
  const auto r = kx::value_range<float>(Device::Cpu, v);
  EXPECT_EQ(r.lo, -2.0f);
  EXPECT_EQ(r.hi, 3.0f);
  // Zeros of both signs, many tasks: -0 is the min and +0 the max whatever the
  // grouping.
  std::vector<float> zeros(3 * kCpuGrain + 1);
  for (std::size_t i = 0; i < zeros.size(); ++i) zeros[i] = (i % 3 == 1) ? -0.0f : 0.0f;
  const auto z = kx::value_range<float>(Device::Cpu, zeros);
  EXPECT_EQ(z.lo, 0.0f);
  EXPECT_TRUE(std::signbit(z.lo));
  EXPECT_FALSE(std::signbit(z.hi));
  const std::vector<float> only_nan(5, nan);
  const auto n = kx::value_range<float>(Device::Cpu, only_nan);
  EXPECT_EQ(n.lo, std::numeric_limits<float>::infinity());
  EXPECT_EQ(n.hi, -std::numeric_limits<float>::infinity());
}

TEST(Reduce, Operators) {
  EXPECT_TRUE(kx::orders_before(-0.0f, 0.0f));
  EXPECT_FALSE(kx::orders_before(0.0f, -0.0f));
  EXPECT_FALSE(kx::orders_before(0.0, 0.0));
  EXPECT_TRUE(kx::orders_before(-1, 0));
  EXPECT_TRUE(std::signbit(kx::Min<float>{}(0.0f, -0.0f)));
  EXPECT_FALSE(std::signbit(kx::Max<double>{}(-0.0, 0.0)));
  EXPECT_EQ(kx::Min<std::int16_t>{}(-3, 2), -3);
  EXPECT_EQ(kx::Max<std::uint8_t>{}(7, 200), 200);
  EXPECT_EQ(kx::BitOr<int>{}(1, 2), 3);
}

TYPED_TEST(ReduceTyped, ValueSum) {
  using T = TypeParam;
  for (const std::size_t n : reduce_sizes()) {
    const std::vector<T> v = reduce_input<T>(n, 23);
    const auto got = kx::value_sum<T>(Device::Cpu, v);
    if constexpr (std::is_integral_v<T>) {
      std::int64_t want = 0;
      for (const T x : v) want += x;
      EXPECT_EQ(got, want) << "n " << n;
    } else {
      const auto [exact, abs_sum] = reference_sum(v);
      EXPECT_LE(std::fabs(static_cast<long double>(got) - exact),
                (kCpuGrain + 64) * std::ldexp(1.0L, -53) * abs_sum)
          << "n " << n;
    }
  }
  EXPECT_EQ(kx::value_sum<T>(Device::Cpu, std::span<const T>{}), 0);
}

TYPED_TEST(ReduceTyped, ValueHistogramMatchesLoop) {
  using T = TypeParam;
  // Part of the values fall outside [lo, hi] and are dropped.
  double lo = -500, hi = 500;
  if constexpr (std::is_integral_v<T>) {
    lo = static_cast<double>(std::numeric_limits<T>::min()) + 10;
    hi = static_cast<double>(std::numeric_limits<T>::max()) - 10;
  }
  for (const std::size_t n : reduce_sizes()) {
    const std::vector<T> v = reduce_input<T>(n, 25);
    for (const std::size_t bins : {std::size_t{1}, std::size_t{7}, std::size_t{256}}) {
      std::vector<std::uint64_t> want(bins, 0);
      for (const T x : v) {
        const double d = static_cast<double>(x);
        if (d < lo || d > hi) continue;
        const auto b = static_cast<std::size_t>(std::floor((d - lo) / (hi - lo) * bins));
        ++want[std::min(b, bins - 1)];
      }
      EXPECT_EQ(kx::value_histogram<T>(Device::Cpu, v, lo, hi, bins), want)
          << "n " << n << " bins " << bins;
    }
  }
}

TEST(Reduce, ValueHistogramEdges) {
  // Bins of width 2 over [0, 10]; 10 (== hi) is in the last bin; -1 and 11
  // are dropped.
  const std::vector<std::int16_t> v = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  EXPECT_EQ(kx::value_histogram<std::int16_t>(Device::Cpu, v, 0, 10, 5),
            (std::vector<std::uint64_t>{2, 2, 2, 2, 3}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> f = {nan, 0.25f, 0.75f, nan, 1.0f};
  EXPECT_EQ(kx::value_histogram<float>(Device::Cpu, f, 0, 1, 2),
            (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(kx::value_histogram<float>(Device::Cpu, std::span<const float>{}, 0, 1, 3),
            (std::vector<std::uint64_t>{0, 0, 0}));
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& [lo, hi, bins] : {std::tuple<double, double, std::size_t>{1, 1, 4},
                                     {2, 1, 4},
                                     {0, 1, 0},
                                     {std::nan(""), 1, 4},
                                     {0, inf, 4}}) {
    EXPECT_THROW(kx::value_histogram<std::int16_t>(Device::Cpu, v, lo, hi, bins),
                 std::invalid_argument)
        << lo << " " << hi << " " << bins;
  }
}

TEST(Device, ParseAndName) {
  using rapidnii::kernels::device_name;
  using rapidnii::kernels::parse_device;
  EXPECT_EQ(parse_device("auto"), Device::Auto);
  EXPECT_EQ(parse_device("cpu"), Device::Cpu);
  EXPECT_EQ(parse_device("cuda"), Device::Cuda);
  for (const Device d : {Device::Auto, Device::Cpu, Device::Cuda}) {
    EXPECT_EQ(parse_device(device_name(d)), d);
  }
  EXPECT_STREQ(device_name(Device::Cuda), "cuda");
  for (const char* bad : {"", "gpu", "CPU", "cuda ", "cpu0"}) {
    EXPECT_THROW(parse_device(bad), std::invalid_argument) << "'" << bad << "'";
  }
}

TEST(Device, Resolve) {
  using rapidnii::kernels::resolve_device;
  EXPECT_EQ(resolve_device(Device::Cpu), Device::Cpu);
  const bool have = cuda_available();
  EXPECT_EQ(resolve_device(Device::Auto), have ? Device::Cuda : Device::Cpu);
  if (have) {
    EXPECT_EQ(resolve_device(Device::Cuda), Device::Cuda);
  } else {
    EXPECT_THROW(resolve_device(Device::Cuda), std::runtime_error);
    std::vector<std::int16_t> data(8);
    EXPECT_THROW(normalize_stored_bits<std::int16_t>(Device::Cuda, data, 12, 11, true),
                 std::runtime_error);
    std::vector<float> out(8);
    const std::vector<double> one = {1.0};
    EXPECT_THROW(rescale_to_float<std::int16_t>(Device::Cuda, data, out, one, one, 8),
                 std::runtime_error);
  }
}

TEST(Device, CudaAvailableIsStableAcrossThreads) {
  const bool first = cuda_available();
  std::vector<std::thread> threads;
  std::vector<char> seen(8, 2);
  for (std::size_t t = 0; t < seen.size(); ++t) {
    threads.emplace_back([&seen, t] { seen[t] = cuda_available() ? 1 : 0; });
  }
  for (std::thread& th : threads) th.join();
  for (const char s : seen) EXPECT_EQ(s, first ? 1 : 0);
}

TEST(Device, ReductionsNeedCudaWhenForced) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  const std::vector<std::int16_t> v(8, 1);
  EXPECT_THROW(kx::value_range<std::int16_t>(Device::Cuda, v), std::runtime_error);
  EXPECT_THROW(kx::value_sum<std::int16_t>(Device::Cuda, v), std::runtime_error);
  EXPECT_THROW(kx::value_histogram<std::int16_t>(Device::Cuda, v, 0, 1, 2), std::runtime_error);
}

TYPED_TEST(KernelsTyped, AutoMatchesCpu) {
  // Auto runs on whichever executor is available and must agree with the CPU.
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  std::vector<T> a = raw_values<T>(100000);
  std::vector<T> b = a;
  normalize_stored_bits<T>(Device::Cpu, a, width - 1, width - 1, true);
  normalize_stored_bits<T>(Device::Auto, b, width - 1, width - 1, true);
  EXPECT_EQ(a, b);
}

// --- CUDA vs CPU ------------------------------------------------------------

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

TYPED_TEST(KernelsTyped, CudaStoredBitsMatchesCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  const std::vector<T> raw = raw_values<T>(1 << 18);
  for (int bits_stored = 1; bits_stored <= width; ++bits_stored) {
    for (int high_bit = bits_stored - 1; high_bit < width; ++high_bit) {
      for (const bool is_signed : {false, true}) {
        std::vector<T> cpu = raw, gpu = raw;
        normalize_stored_bits<T>(Device::Cpu, cpu, bits_stored, high_bit, is_signed);
        normalize_stored_bits<T>(Device::Cuda, gpu, bits_stored, high_bit, is_signed);
        ASSERT_EQ(cpu, gpu) << "bits_stored " << bits_stored << " high_bit " << high_bit
                            << " signed " << is_signed;
      }
    }
  }
}

TYPED_TEST(KernelsTyped, CudaRescaleMatchesCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  for (const auto& [per_slice, n_slices, tail] :
       {std::tuple<std::size_t, std::size_t, std::size_t>{1, 3, 0},
        {1000, 7, 333},
        {512 * 512, 40, 1000}}) {
    const RescaleCase<T> c = make_rescale_case<T>(per_slice, n_slices, tail, 99);
    std::vector<float> cpu(c.in.size()), gpu(c.in.size(), -1.0f);
    rescale_to_float<T>(Device::Cpu, c.in, cpu, c.slope, c.inter, c.per_slice);
    rescale_to_float<T>(Device::Cuda, c.in, gpu, c.slope, c.inter, c.per_slice);
    // The device never fuses the multiply-add, so results should be identical;
    // allow 4 ulp in case the host compiler contracts to an FMA.
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      ASSERT_FLOAT_EQ(gpu[i], cpu[i]) << "per_slice " << per_slice << " index " << i;
    }
  }
}

// The CUDA executor streams host buffers through in chunks of 4 MiB (1M to 4M
// elements): sizes on either side of one and several chunks, with a partial
// last chunk.
std::vector<std::size_t> chunk_sizes() {
  const std::size_t m = std::size_t{1} << 20;
  return {1, 1000, m - 1, m, m + 1, 2 * m + 1, 4 * m + 3, 12 * m + 7};
}

TYPED_TEST(KernelsTyped, CudaChunkBoundariesMatchCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  constexpr int width = width_of(sizeof(T));
  for (const std::size_t n : chunk_sizes()) {
    std::vector<T> raw(n);
    std::mt19937 rng(static_cast<unsigned>(n));
    for (T& x : raw) x = static_cast<T>(rng());
    std::vector<T> cpu = raw, gpu = raw;
    normalize_stored_bits<T>(Device::Cpu, cpu, width - 3, width - 2, true);
    normalize_stored_bits<T>(Device::Cuda, gpu, width - 3, width - 2, true);
    ASSERT_EQ(cpu, gpu) << "n " << n;
    // Slices that do not line up with the chunks.
    const std::size_t per_slice = 512 * 512 + 3;
    const std::size_t slices = (n + per_slice - 1) / per_slice;
    std::vector<double> slope(slices), inter(slices);
    for (std::size_t s = 0; s < slices; ++s) {
      slope[s] = 0.25 + 0.37 * static_cast<double>(s);
      inter[s] = -1024.5 + 3.0 * static_cast<double>(s);
    }
    std::vector<float> fc(n), fg(n, -1.0f);
    rescale_to_float<T>(Device::Cpu, raw, fc, slope, inter, per_slice);
    rescale_to_float<T>(Device::Cuda, raw, fg, slope, inter, per_slice);
    // Bit for bit: no FMA on either side.
    ASSERT_EQ(0, std::memcmp(fc.data(), fg.data(), n * sizeof(float))) << "n " << n;
  }
}

// Floats compared bit for bit (so that -0 and +0 differ).
template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

TYPED_TEST(ReduceTyped, CudaValueRangeMatchesCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  for (const std::size_t n : chunk_sizes()) {
    std::vector<T> v = reduce_input<T>(n, 31);
    if constexpr (std::is_floating_point_v<T>) {
      // NaNs and zeros of both signs as well.
      for (std::size_t i = 0; i < n; i += 997) v[i] = std::numeric_limits<T>::quiet_NaN();
      for (std::size_t i = 1; i < n; i += 1009) v[i] = (i % 2) ? -0.0f : 0.0f;
    }
    const auto cpu = kx::value_range<T>(Device::Cpu, v);
    const auto gpu = kx::value_range<T>(Device::Cuda, v);
    EXPECT_TRUE(same_bits(cpu.lo, gpu.lo)) << "n " << n << ": " << +cpu.lo << " vs " << +gpu.lo;
    EXPECT_TRUE(same_bits(cpu.hi, gpu.hi)) << "n " << n << ": " << +cpu.hi << " vs " << +gpu.hi;
  }
}

TYPED_TEST(ReduceTyped, CudaValueSumMatchesCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  for (const std::size_t n : chunk_sizes()) {
    const std::vector<T> v = reduce_input<T>(n, 33);
    const auto cpu = kx::value_sum<T>(Device::Cpu, v);
    const auto gpu = kx::value_sum<T>(Device::Cuda, v);
    if constexpr (std::is_integral_v<T>) {
      EXPECT_EQ(cpu, gpu) << "n " << n;
    } else {
      // The stated tolerance (reduce.h): 1e-10 of sum |x|.
      const auto abs_sum = reference_sum(v).second;
      EXPECT_LE(std::fabs(static_cast<long double>(cpu) - gpu), 1e-10L * abs_sum) << "n " << n;
      EXPECT_EQ(gpu, kx::value_sum<T>(Device::Cuda, v)) << "n " << n << ": not run-to-run stable";
    }
  }
}

TYPED_TEST(ReduceTyped, CudaValueHistogramMatchesCpu) {
  REQUIRE_CUDA();
  using T = TypeParam;
  double lo = -500, hi = 500;
  if constexpr (std::is_integral_v<T>) {
    lo = static_cast<double>(std::numeric_limits<T>::min()) + 10;
    hi = static_cast<double>(std::numeric_limits<T>::max()) - 10;
  }
  for (const std::size_t n : chunk_sizes()) {
    const std::vector<T> v = reduce_input<T>(n, 35);
    // 256 bins: per-block shared counters; 20000: global atomics.
    for (const std::size_t bins : {std::size_t{1}, std::size_t{256}, std::size_t{20000}}) {
      EXPECT_EQ(kx::value_histogram<T>(Device::Cpu, v, lo, hi, bins),
                kx::value_histogram<T>(Device::Cuda, v, lo, hi, bins))
          << "n " << n << " bins " << bins;
    }
  }
}

TEST(Cuda, EmptyInputs) {
  REQUIRE_CUDA();
  EXPECT_NO_THROW(normalize_stored_bits<std::int16_t>(Device::Cuda, {}, 12, 11, true));
  EXPECT_NO_THROW(rescale_to_float<std::int16_t>(Device::Cuda, {}, {}, {}, {}, 0));
  const auto r = kx::value_range<std::int16_t>(Device::Cuda, {});
  EXPECT_GT(r.lo, r.hi);
  EXPECT_EQ(kx::value_sum<std::int16_t>(Device::Cuda, {}), 0);
  EXPECT_EQ(kx::value_histogram<std::int16_t>(Device::Cuda, {}, 0, 1, 2),
            (std::vector<std::uint64_t>{0, 0}));
}

TEST(Cuda, ConcurrentCallsFromHostThreads) {
  REQUIRE_CUDA();
  const RescaleCase<std::int16_t> c = make_rescale_case<std::int16_t>(4096, 64, 0, 5);
  const std::vector<float> want = plain_rescale(c);
  std::vector<std::vector<float>> outs(4, std::vector<float>(c.in.size()));
  std::vector<std::thread> threads;
  for (auto& out : outs) {
    threads.emplace_back([&c, &out] {
      for (int rep = 0; rep < 5; ++rep) {
        rescale_to_float<std::int16_t>(Device::Cuda, c.in, out, c.slope, c.inter, c.per_slice);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (const auto& out : outs) {
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_FLOAT_EQ(out[i], want[i]) << i;
  }
}

}  // namespace
