// Kernel micro-benchmarks: GB/s (bytes read + written) and voxels/s for each
// kernel at 256^3 and 512x512x300, on the CPU executor and, when a CUDA device
// is found at start-up, on CUDA (host buffers in and out, copies included).
// The executors' operations alone (transform, transform_reduce, histogram of
// exec_cpu.h) run on the CPU; the reductions of reduce.h on both.
//
//   build/bench/rapidnii_bench_kernels [--benchmark_filter=Deface]
//
// Defacing runs on a CT head phantom (tests/head_phantom.h), see head().
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/deface.h"
#include "kernels/device.h"
#include "kernels/exec_cpu.h"
#include "kernels/reduce.h"
#include "kernels/reorient.h"
#include "kernels/rescale.h"
#include "tests/head_phantom.h"

namespace {

namespace k = rapidnii::kernels;
namespace ph = rapidnii::phantom;

struct Size {
  const char* name;
  std::array<int64_t, 3> dims;
};
constexpr Size kSizes[] = {{"256^3", {256, 256, 256}}, {"512x512x300", {512, 512, 300}}};

int64_t voxels(const Size& s) { return s.dims[0] * s.dims[1] * s.dims[2]; }

const std::vector<int16_t>& random_volume(int64_t n) {
  static std::map<int64_t, std::vector<int16_t>> cache;
  auto& v = cache[n];
  if (v.empty()) {
    v.resize(static_cast<std::size_t>(n));
    std::mt19937 rng(1);
    for (auto& x : v) x = static_cast<int16_t>(static_cast<int>(rng() % 4096) - 1024);
  }
  return v;
}

void set_counters(benchmark::State& st, int64_t n, int64_t bytes_per_voxel) {
  st.SetItemsProcessed(st.iterations() * n);
  st.SetBytesProcessed(st.iterations() * n * bytes_per_voxel);
}

void BM_Rescale(benchmark::State& st, k::Device d, Size s) {
  const int64_t n = voxels(s);
  const auto& in = random_volume(n);
  std::vector<float> out(static_cast<std::size_t>(n));
  const int64_t slices = s.dims[2];
  std::vector<double> slope(static_cast<std::size_t>(slices), 1.5), inter(static_cast<std::size_t>(slices), -1024);
  for (auto _ : st) {
    k::rescale_to_float<int16_t>(d, in, out, slope, inter,
                                 static_cast<std::size_t>(s.dims[0] * s.dims[1]));
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(st, n, 2 + 4);
}

// The CPU executor's operations on an int16 volume, with functors as light as
// the kernels' (the memory traffic is what is measured).
void BM_ExecTransform(benchmark::State& st, Size s) {
  const int64_t n = voxels(s);
  const auto& in = random_volume(n);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : st) {
    k::transform(static_cast<std::size_t>(n), in.data(), out.data(),
                 [](int16_t x) { return static_cast<float>(x) * 1.5f - 1024.0f; });
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(st, n, 2 + 4);
}

void BM_ExecTransformReduce(benchmark::State& st, Size s) {
  const int64_t n = voxels(s);
  const int16_t* v = random_volume(n).data();
  for (auto _ : st) {
    const int64_t sum = k::transform_reduce(
        static_cast<std::size_t>(n), int64_t{0}, [v](std::size_t i) { return int64_t{v[i]}; },
        k::Plus<int64_t>{});
    benchmark::DoNotOptimize(sum);
  }
  set_counters(st, n, 2);
}

void BM_ExecHistogram(benchmark::State& st, Size s) {
  const int64_t n = voxels(s);
  const int16_t* v = random_volume(n).data();
  std::vector<std::uint64_t> counts(4096);
  for (auto _ : st) {
    k::histogram(
        static_cast<std::size_t>(n), [v](std::size_t i) { return v[i] + 1024; }, counts.data(),
        counts.size());
    benchmark::DoNotOptimize(counts.data());
  }
  set_counters(st, n, 2);
}

// reduce.h on the chosen device.
void BM_ValueRange(benchmark::State& st, k::Device d, Size s) {
  const int64_t n = voxels(s);
  const auto& v = random_volume(n);
  for (auto _ : st) {
    const auto r = k::value_range<int16_t>(d, v);
    benchmark::DoNotOptimize(r);
  }
  set_counters(st, n, 2);
}

void BM_ValueSum(benchmark::State& st, k::Device d, Size s) {
  const int64_t n = voxels(s);
  const auto& v = random_volume(n);
  for (auto _ : st) {
    const auto sum = k::value_sum<int16_t>(d, v);
    benchmark::DoNotOptimize(sum);
  }
  set_counters(st, n, 2);
}

void BM_ValueHistogram(benchmark::State& st, k::Device d, Size s) {
  const int64_t n = voxels(s);
  const auto& v = random_volume(n);
  for (auto _ : st) {
    const auto h = k::value_histogram<int16_t>(d, v, -1024, 3071, 256);
    benchmark::DoNotOptimize(h.data());
  }
  set_counters(st, n, 2);
}

// Reorientation: an axial LPS-stored grid -> RAS (x and y flipped: line
// copies), and a sagittal grid -> RAS (x<->z transpose, y flipped: the case
// GPU.md measured at 0.43 TB/s with a naive gather).
void BM_Reorient(benchmark::State& st, k::Device d, Size s, bool transpose) {
  const int64_t n = voxels(s);
  const auto& in = random_volume(n);
  std::vector<int16_t> out(static_cast<std::size_t>(n));
  k::Affine a{};
  if (transpose) {
    a = {{{0, 0, 1, 0}, {0, -1, 0, 0}, {1, 0, 0, 0}}};  // x->S, y->P, z->R
  } else {
    a = {{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}}};  // LPS
  }
  const auto p = k::plan_reorient(a, s.dims, k::Orient::RAS);
  for (auto _ : st) {
    k::reorient<int16_t>(d, in, out, s.dims, 1, p);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(st, n, 2 + 2);
}

struct Head {
  ph::Phantom p;
  std::vector<int16_t> vol;
};

// CT head phantom: 256^3 at 1 mm, 512x512x300 at 0.5x0.5x0.8 mm (a
// 256 x 256 x 240 mm field of view).
const Head& head(const Size& s) {
  static std::map<int64_t, Head> cache;
  Head& h = cache[voxels(s)];
  if (h.vol.empty()) {
    ph::Spec spec;
    spec.contrast = ph::Contrast::CT;
    spec.neck = false;
    spec.fov = 256;
    spec.voxel = s.dims[2] == 256 ? std::array<double, 3>{1, 1, 1} : std::array<double, 3>{0.5, 0.5, 0.8};
    spec.rot_deg = {10, 0, 5};
    spec.dims = s.dims;
    h.p = ph::make_phantom(spec);
    h.vol = ph::to_stored<int16_t>(h.p.phys, 1, 0);
    std::printf("# head phantom %lld x %lld x %lld\n", static_cast<long long>(h.p.dims[0]),
                static_cast<long long>(h.p.dims[1]), static_cast<long long>(h.p.dims[2]));
  }
  return h;
}

void BM_Deface(benchmark::State& st, k::Device d, Size s, k::DefaceMode mode) {
  const Head& h = head(s);
  const int64_t n = static_cast<int64_t>(h.vol.size());
  std::vector<int16_t> v(h.vol.size());
  for (auto _ : st) {
    st.PauseTiming();
    v = h.vol;
    st.ResumeTiming();
    const auto r = k::deface<int16_t>(d, std::span<int16_t>(v), h.p.dims, h.p.affine, 1, 0,
                                      k::Contrast::CT, mode, 1);
    if (!r.altered) st.SkipWithError(("face not altered: " + r.status).c_str());
  }
  // The volume is read twice (analysis, apply) and written once.
  set_counters(st, n, 3 * 2);
}

void BM_DefaceApply(benchmark::State& st, k::Device d, Size s, k::DefaceMode mode) {
  const Head& h = head(s);
  const int64_t n = static_cast<int64_t>(h.vol.size());
  const auto m = k::deface_mask<int16_t>(d, std::span<const int16_t>(h.vol), h.p.dims, h.p.affine,
                                         1, 0, k::Contrast::CT);
  std::vector<int16_t> v(h.vol.size());
  for (auto _ : st) {
    st.PauseTiming();
    v = h.vol;
    st.ResumeTiming();
    k::deface_apply<int16_t>(d, std::span<int16_t>(v), h.p.dims, h.p.affine, 1, 0, m, mode, 1);
  }
  set_counters(st, n, 2 * 2);
}

// The analysis alone (downsample + coarse analysis), once per series.
void BM_DefaceMask(benchmark::State& st, k::Device d, Size s) {
  const Head& h = head(s);
  const int64_t n = static_cast<int64_t>(h.vol.size());
  for (auto _ : st) {
    const auto m = k::deface_mask<int16_t>(d, std::span<const int16_t>(h.vol), h.p.dims,
                                           h.p.affine, 1, 0, k::Contrast::CT);
    if (!m.usable()) st.SkipWithError(("no face: " + m.report.status).c_str());
  }
  set_counters(st, n, 2);
}

void register_all(k::Device d) {
  const std::string dev = k::device_name(d);
  for (const Size& s : kSizes) {
    const std::string sz = s.name;
    benchmark::RegisterBenchmark(("Rescale/int16->float/" + dev + "/" + sz).c_str(), BM_Rescale, d, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("ValueRange/int16/" + dev + "/" + sz).c_str(), BM_ValueRange, d, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("ValueSum/int16/" + dev + "/" + sz).c_str(), BM_ValueSum, d, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("ValueHistogram/int16/256 bins/" + dev + "/" + sz).c_str(), BM_ValueHistogram, d, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("Reorient/LPS->RAS/" + dev + "/" + sz).c_str(), BM_Reorient, d, s, false)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("Reorient/sagittal->RAS/" + dev + "/" + sz).c_str(), BM_Reorient, d, s, true)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("Deface/remove/" + dev + "/" + sz).c_str(), BM_Deface, d, s,
                                 k::DefaceMode::Remove)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
    benchmark::RegisterBenchmark(("Deface/blur/" + dev + "/" + sz).c_str(), BM_Deface, d, s,
                                 k::DefaceMode::Blur)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
    benchmark::RegisterBenchmark(("DefaceMask/" + dev + "/" + sz).c_str(), BM_DefaceMask, d, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("DefaceApplyMask/remove/" + dev + "/" + sz).c_str(), BM_DefaceApply, d, s,
                                 k::DefaceMode::Remove)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
  }
}

}  // namespace

// The executors' operations alone: CPU only (the CUDA executor works on device
// pointers; its host entry points are what register_all measures).
void register_executors() {
  for (const Size& s : kSizes) {
    const std::string sz = s.name;
    benchmark::RegisterBenchmark(("Exec/transform/int16->float/cpu/" + sz).c_str(), BM_ExecTransform, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("Exec/transform_reduce/sum int16/cpu/" + sz).c_str(), BM_ExecTransformReduce, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
    benchmark::RegisterBenchmark(("Exec/histogram/int16 4096 bins/cpu/" + sz).c_str(), BM_ExecHistogram, s)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
  }
}

int main(int argc, char** argv) {
  register_executors();
  register_all(k::Device::Cpu);
  if (k::cuda_available()) {
    register_all(k::Device::Cuda);
  } else {
    std::printf("# no CUDA device: CUDA benchmarks not registered\n");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
