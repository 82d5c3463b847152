// Deflate throughput and size per compressor, level and thread count.
//
// Data: a generated CT-like int16 volume, 512x512x64 (32 MiB: padding
// outside the field of view, air at -1000 HU with noise, a body of smoothly
// varying soft tissue with noise, bone rim, lungs), or the raw bytes of the
// file named by RAPIDNII_BENCH_FILE (e.g. an uncompressed .nii).
//
// Counters: bytes_per_second = input bytes compressed per wall second;
// ratio = output / input; vs_gzip6 = output / zlib level 6 output of the same
// bytes (the size dcm2niix + pigz would write). Benchmarks:
//   zlib/6                   one zlib stream (gzip -6 / pigz -6 per core)
//   raw/<engine-level>       one stream by that compressor, one thread
//   parallel/<engine-level>/threads:N   gzip_compress_parallel_to (blocks,
//                            ISA-L dictionary, libdeflate block walk, CRC;
//                            the output counted, not kept)
//   choose/<policy>          choose_compression on the whole volume
//                            (RAPIDNII_BENCH_PERIOD: bytes per slice)
#include "io/gzip.h"
#include "tests/synthetic_ct.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using rapidnii::io::CompressionChoice;
using Bytes = std::vector<std::byte>;
using rapidnii::testdata::ct_volume;



const Bytes& data() {
  static const Bytes d = [] {
    if (const char* f = std::getenv("RAPIDNII_BENCH_FILE")) {
      std::ifstream in(f, std::ios::binary | std::ios::ate);
      const auto n = static_cast<std::streamoff>(in.tellg());
      if (in && n > 0) {
        Bytes b(static_cast<size_t>(n));
        in.seekg(0);
        in.read(reinterpret_cast<char*>(b.data()), n);
        if (in) return b;
      }
    }
    return ct_volume(512, 512, 64);
  }();
  return d;
}

double gzip6_size() {
  static const double s = static_cast<double>(rapidnii::io::zlib_deflate_size(data(), 6) + 18);
  return s;
}

void set_counters(benchmark::State& st, double out_bytes) {
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * data().size()));
  st.counters["ratio"] = out_bytes / static_cast<double>(data().size());
  // zlib -6 over the whole input is slow (14 MB/s): RAPIDNII_BENCH_NO_GZIP6
  // leaves it out where only the speed is wanted (run_e2e's timed limits)
  if (std::getenv("RAPIDNII_BENCH_NO_GZIP6") == nullptr) st.counters["vs_gzip6"] = out_bytes / gzip6_size();
}

void bm_zlib(benchmark::State& st) {
  size_t n = 0;
  for (auto _ : st) n = rapidnii::io::zlib_deflate_size(data(), 6) + 18;
  set_counters(st, static_cast<double>(n));
}

void bm_raw(benchmark::State& st, CompressionChoice c) {
  size_t n = 0;
  for (auto _ : st) n = rapidnii::io::deflate_size(data(), c) + 18;
  set_counters(st, static_cast<double>(n));
}

// The compressor alone: the output goes to a sink that only counts it (as
// rapidnii streams it to the file; a returned vector would add its growth
// and fresh pages, which moved this figure by 30% from run to run).
void bm_parallel(benchmark::State& st, CompressionChoice c) {
  const int threads = static_cast<int>(st.range(0));
  const std::span<const std::byte> parts[1] = {data()};
  uint64_t n = 0;
  for (auto _ : st) {
    n = rapidnii::io::gzip_compress_parallel_to(parts, c, threads, 0, [](std::span<const uint8_t> piece) {
      benchmark::DoNotOptimize(piece.data());
    });
  }
  set_counters(st, static_cast<double>(n));
}

// RAPIDNII_BENCH_PERIOD: bytes per slice of the volume (what rapidnii passes
// to the choice for a NIfTI volume), 0 or unset: unknown.
size_t period() {
  const char* s = std::getenv("RAPIDNII_BENCH_PERIOD");
  return s ? static_cast<size_t>(std::strtoull(s, nullptr, 10)) : 0;
}

void bm_choose(benchmark::State& st, rapidnii::io::CompressionPolicy p, int threads) {
  CompressionChoice c;
  for (auto _ : st) c = rapidnii::io::choose_compression(data(), p, threads, period());
  st.SetLabel(rapidnii::io::to_string(c));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * data().size()));
}

}  // namespace

int main(int argc, char** argv) {
  // every engine and level, and every candidate of the policies (ISA-L
  // flushing every 16-64 KiB): the names are to_string(), as rapidnii's
  // summary prints them
  std::vector<CompressionChoice> choices;
  auto add = [&](CompressionChoice c) {
    if (std::find(choices.begin(), choices.end(), c) == choices.end()) choices.push_back(c);
  };
  for (int l = 0; l <= 3; ++l) add({CompressionChoice::IsaL, l, 0});
  for (auto p : {rapidnii::io::CompressionPolicy::Fast, rapidnii::io::CompressionPolicy::Default})
    for (auto c : rapidnii::io::policy_candidates(p)) add(c);
  for (int l = 1; l <= 9; ++l) add({CompressionChoice::Libdeflate, l, 0});

  benchmark::RegisterBenchmark("zlib/6", bm_zlib)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  for (const auto c : choices) {
    benchmark::RegisterBenchmark(("raw/" + rapidnii::io::to_string(c)).c_str(), bm_raw, c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5);
  }
  for (const auto c : choices) {
    benchmark::RegisterBenchmark(("parallel/" + rapidnii::io::to_string(c)).c_str(), bm_parallel, c)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5);
  }
  for (int threads : {1, 2}) {
    for (auto [name, p] : {std::pair{"default", rapidnii::io::CompressionPolicy::Default},
                           std::pair{"fast", rapidnii::io::CompressionPolicy::Fast}}) {
      benchmark::RegisterBenchmark(("choose/" + std::string(name) + "/threads:" + std::to_string(threads)).c_str(),
                                   bm_choose, p, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(0.5);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
