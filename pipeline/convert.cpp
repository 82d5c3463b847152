#include "pipeline/convert.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_for_each.h>

#include <chrono>
#include <cstring>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <stdexcept>

#include "io/dicom_header.h"
#include "io/dicom_pixels.h"
#include "io/file_scan.h"
#include "io/nifti_writer.h"
#include "kernels/rescale.h"
#include "pipeline/series.h"

namespace rapidnii::pipeline {

namespace fs = std::filesystem;

uint64_t ConvertSummary::files_skipped() const {
  uint64_t n = 0;
  for (auto& [k, v] : skipped) n += v;
  return n;
}
uint64_t ConvertSummary::failures() const {
  uint64_t n = 0;
  for (auto& [k, v] : series_failed) n += v;
  return n;
}

namespace {

bool is_inside(const fs::path& child, const fs::path& parent) {
  auto c = child.begin(), p = parent.begin();
  for (; p != parent.end(); ++p, ++c) {
    if (p->empty()) continue;
    if (c == child.end() || *c != *p) return false;
  }
  return true;
}

struct Written {
  uint64_t bytes = 0;
};

// Decodes, normalises and writes one planned series. Returns false with a
// non-identifying reason.
template <class T>
bool build_and_write(const SeriesPlan& p, const std::vector<fs::path>& paths, const fs::path& out_path,
                     kernels::Device device, int level, Written& w, std::string& why) {
  const size_t slice_vox = size_t(p.nx) * p.ny;
  const size_t nslices = size_t(p.nz) * p.nt;
  std::vector<T> vol(slice_vox * nslices);
  const io::SliceHeader& h0 = p.first;

  // Sources grouped by file: a mosaic file feeds several slices.
  std::map<uint32_t, std::vector<const SliceSource*>> by_file;
  for (const SliceSource& s : p.sources) by_file[s.file].push_back(&s);
  std::vector<std::pair<uint32_t, std::vector<const SliceSource*>>> jobs(by_file.begin(), by_file.end());

  std::mutex m;
  std::string first_error;
  tbb::parallel_for(size_t(0), jobs.size(), [&](size_t j) {
    const auto& [file, srcs] = jobs[j];
    std::vector<T> img(size_t(h0.rows) * h0.cols);
    std::string err;
    if (!io::decode_pixels(paths[file], h0, std::as_writable_bytes(std::span<T>(img)), err)) {
      std::lock_guard lk(m);
      if (first_error.empty()) first_error = err;
      return;
    }
    const int tiles = p.mosaic_tiles_per_row;
    for (const SliceSource* s : srcs) {
      const size_t tile_r0 = tiles ? (s->tile / tiles) * size_t(p.ny) : 0;
      const size_t tile_c0 = tiles ? (s->tile % tiles) * size_t(p.nx) : 0;
      T* dst = vol.data() + slice_vox * (s->z + size_t(p.nz) * s->t);
      for (int r = 0; r < p.ny; ++r) {
        const T* src = img.data() + (tile_r0 + r) * h0.cols + tile_c0;
        // rows stored bottom-up (j = ny-1-r), matching the affine
        std::memcpy(dst + size_t(p.ny - 1 - r) * p.nx, src, sizeof(T) * p.nx);
      }
    }
  });
  if (!first_error.empty()) {
    why = first_error;
    return false;
  }

  kernels::normalize_stored_bits<T>(device, std::span<T>(vol), h0.bits_stored, h0.high_bit,
                                    h0.pixel_representation == 1);

  io::NiftiVolume v;
  v.ndim = p.nt > 1 ? 4 : 3;
  v.dim = {p.nx, p.ny, p.nz, p.nt, 1, 1, 1};
  v.pixdim = {1, 1, 1, p.tr_seconds > 0 ? p.tr_seconds : 1.0, 1, 1, 1};
  v.affine = p.affine;
  v.datatype = p.out_type;
  v.xyzt_units = 2 | 8;
  char descrip[80];
  std::snprintf(descrip, sizeof descrip, "TE=%.4g", h0.echo_time);
  v.descrip = descrip;

  std::vector<float> fvol;
  if (p.rescale_to_float) {
    fvol.resize(vol.size());
    kernels::rescale_to_float<T>(device, std::span<const T>(vol), std::span<float>(fvol), p.slopes, p.inters,
                                 slice_vox);
    v.voxels = std::as_bytes(std::span<const float>(fvol));
    v.scl_slope = 1;
    v.scl_inter = 0;
  } else {
    v.voxels = std::as_bytes(std::span<const T>(vol));
    v.scl_slope = p.scl_slope;
    v.scl_inter = p.scl_inter;
  }
  try {
    w.bytes = io::write_nifti_gz(out_path, v, level);
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  return true;
}

}  // namespace

ConvertSummary convert(const ConvertOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  ConvertSummary sum;
  std::error_code ec;
  if (!fs::exists(opt.input, ec)) throw std::runtime_error("input does not exist");
  const fs::path in_abs = fs::weakly_canonical(opt.input, ec);
  fs::create_directories(opt.output, ec);
  if (!fs::is_directory(opt.output, ec)) throw std::runtime_error("output folder cannot be created");
  const fs::path out_abs = fs::weakly_canonical(opt.output, ec);
  if (is_inside(out_abs, in_abs)) throw std::runtime_error("the output folder must not be inside the input");

  std::unique_ptr<tbb::global_control> limit;
  if (opt.threads > 0)
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, opt.threads);
  const kernels::Device device = kernels::resolve_device(opt.device);
  sum.executor = kernels::device_name(device);
  io::quiet_gdcm();

  // scan
  io::ScanResult scan = io::scan_inputs(opt.input);
  sum.files_seen = scan.files.size();
  sum.unreadable_dirs = scan.unreadable_dirs;

  // index, in parallel
  std::vector<io::IndexResult> idx(scan.files.size());
  tbb::parallel_for(size_t(0), scan.files.size(), [&](size_t i) { idx[i] = io::index_dicom_file(scan.files[i]); });

  std::vector<io::SliceHeader> headers(idx.size());
  std::vector<bool> usable(idx.size(), false);
  for (size_t i = 0; i < idx.size(); ++i) {
    std::error_code e2;
    sum.bytes_in += fs::file_size(scan.files[i], e2);
    if (idx[i].skip == io::SkipReason::None) {
      usable[i] = true;
      sum.slices_indexed++;
      headers[i] = std::move(idx[i].header);
    } else {
      std::string reason = io::skip_reason_text(idx[i].skip);
      if (!idx[i].detail.empty()) reason += " (" + idx[i].detail + ")";
      sum.skipped[reason]++;
    }
  }
  idx.clear();

  // plan
  Plan plan = plan_series(headers, usable);
  for (const PlanFailure& f : plan.failures) sum.series_failed[f.reason]++;

  // decode + kernels + write, series in parallel
  std::mutex m;
  tbb::parallel_for(size_t(0), plan.series.size(), [&](size_t i) {
    const SeriesPlan& p = plan.series[i];
    const fs::path rel = p.name + ".nii.gz";
    Written w;
    std::string why;
    bool ok = false;
    const bool sign = p.first.pixel_representation == 1;
    switch (p.first.bits_allocated) {
      case 8:
        ok = sign ? build_and_write<int8_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why)
                  : build_and_write<uint8_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why);
        break;
      case 16:
        ok = sign ? build_and_write<int16_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why)
                  : build_and_write<uint16_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why);
        break;
      case 32:
        ok = sign ? build_and_write<int32_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why)
                  : build_and_write<uint32_t>(p, scan.files, opt.output / rel, device, opt.compression_level, w, why);
        break;
      default: why = "unsupported bits allocated";
    }
    std::lock_guard lk(m);
    if (ok) {
      sum.series_written++;
      sum.bytes_out += w.bytes;
      sum.outputs.push_back(rel.string());
      for (const auto& wmsg : p.warnings) sum.warnings[wmsg]++;
    } else {
      sum.series_failed[why]++;
    }
  });
  std::sort(sum.outputs.begin(), sum.outputs.end());
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

void print_summary(const ConvertSummary& s, std::ostream& os) {
  os << "rapidnii: " << s.series_written << " series written, " << s.failures() << " failed; " << s.files_seen
     << " files scanned, " << s.slices_indexed << " DICOM images indexed, " << s.files_skipped()
     << " files skipped\n";
  for (const auto& [reason, n] : s.skipped) os << "  skipped " << n << " file(s): " << reason << "\n";
  if (s.unreadable_dirs) os << "  " << s.unreadable_dirs << " folder(s) could not be read\n";
  for (const auto& [reason, n] : s.series_failed) os << "  failed " << n << " series: " << reason << "\n";
  for (const auto& [w, n] : s.warnings) os << "  warning for " << n << " series: " << w << "\n";
  const double mb_in = s.bytes_in / 1e6;
  os << std::fixed << std::setprecision(1) << "  " << mb_in << " MB read, " << s.bytes_out / 1e6 << " MB written in "
     << std::setprecision(2) << s.seconds << " s (" << std::setprecision(1)
     << (s.seconds > 0 ? mb_in / s.seconds : 0.0) << " MB/s input); executor: " << s.executor << "\n";
}

}  // namespace rapidnii::pipeline
