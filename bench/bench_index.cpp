// Header index and pixel decode micro-benchmarks.
//
//   index/<file>          index_dicom_file per file (structural probe + GDCM
//                         header parse up to PixelData): items/s = files/s
//   decode/<ts>           decode_pixels per transfer syntax: bytes/s = decoded
//                         pixel bytes per second
//   index_memory          heap bytes the index holds per file (glibc
//                         mallinfo2 delta over 20000 SliceHeaders + input
//                         records), reported as the counter bytes_per_file
//
// Data: the validation files under RAPIDNII_TEST_DATA (default
// ../shared/data): dcm_qa_ts holds one slice in 9 transfer syntaxes. Without
// them the benchmarks report an error and are skipped.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <filesystem>
#include <string>
#include <vector>

#include "io/dicom_header.h"
#include "io/dicom_pixels.h"

namespace {

namespace fs = std::filesystem;
using rapidnii::io::InputFile;

fs::path data_dir() {
  if (const char* d = std::getenv("RAPIDNII_TEST_DATA")) return d;
  return fs::path("../shared/data");
}

const char* ts_name(const std::string& ts) {
  if (ts == "1.2.840.10008.1.2") return "implicit_le";
  if (ts == "1.2.840.10008.1.2.1") return "explicit_le";
  if (ts == "1.2.840.10008.1.2.2") return "explicit_be";
  if (ts == "1.2.840.10008.1.2.5") return "rle";
  if (ts == "1.2.840.10008.1.2.4.70") return "jpeg_lossless";
  if (ts == "1.2.840.10008.1.2.4.80") return "jpeg_ls_lossless";
  if (ts == "1.2.840.10008.1.2.4.81") return "jpeg_ls_near";
  if (ts == "1.2.840.10008.1.2.4.90") return "jpeg2000_lossless";
  if (ts == "1.2.840.10008.1.2.4.91") return "jpeg2000";
  return "other";
}

void register_all() {
  rapidnii::io::quiet_gdcm();
  const fs::path dir = data_dir() / "dcm_qa_ts" / "In";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    benchmark::RegisterBenchmark("index/no_data", [](benchmark::State& st) {
      st.SkipWithError("validation data not found: set RAPIDNII_TEST_DATA");
    });
    return;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::set<std::string> seen;
  for (const auto& f : files) {
    InputFile in{f, "", nullptr};
    const auto r = rapidnii::io::index_dicom_file(in);
    if (r.skip != rapidnii::io::SkipReason::None) continue;
    const std::string name = ts_name(r.header.transfer_syntax);
    if (!seen.insert(name).second) continue;
    benchmark::RegisterBenchmark(("index/" + name).c_str(), [in](benchmark::State& st) {
      for (auto _ : st) benchmark::DoNotOptimize(rapidnii::io::index_dicom_file(in));
      st.SetItemsProcessed(st.iterations());
    });
    const auto h = r.header;
    benchmark::RegisterBenchmark(("decode/" + name).c_str(), [in, h](benchmark::State& st) {
      std::vector<std::byte> out(size_t(h.rows) * h.cols * (h.bits_allocated / 8));
      std::string why;
      for (auto _ : st) {
        if (!rapidnii::io::decode_pixels(in, h, out, why)) {
          st.SkipWithError("decode failed");
          break;
        }
      }
      st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(out.size()));
    });
    if (name == "explicit_le") {
      benchmark::RegisterBenchmark("index_memory", [in](benchmark::State& st) {
        const auto r0 = rapidnii::io::index_dicom_file(in);
        double per_file = 0;
        for (auto _ : st) {
          constexpr size_t n = 20000;
          const size_t before = mallinfo2().uordblks;
          {
            std::vector<rapidnii::io::SliceHeader> headers(n);
            std::vector<InputFile> inputs(n);
            for (size_t i = 0; i < n; ++i) {
              headers[i] = r0.header;  // every string copied: its own heap
              inputs[i] = InputFile{in.path + std::to_string(i), "", nullptr};
            }
            const size_t after = mallinfo2().uordblks;
            per_file = double(after - before) / n;
            benchmark::DoNotOptimize(headers.data());
          }
        }
        st.counters["bytes_per_file"] = per_file;
      })->Iterations(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
