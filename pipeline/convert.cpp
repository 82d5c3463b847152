#include "pipeline/convert.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_for_each.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <cstring>
#include <iomanip>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "io/dicom_header.h"
#include "io/dicom_meta.h"
#include "io/dicom_pixels.h"
#include "io/gzip.h"
#include "io/file_scan.h"
#include "io/nifti_writer.h"
#include "kernels/deface.h"
#include "kernels/rescale.h"
#include "kernels/reorient.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/committer.h"
#include "pipeline/readahead.h"
#include "pipeline/journal.h"
#include "io/digest.h"
#include "pipeline/layout.h"
#include "pipeline/series.h"
#include "pipeline/dwi.h"

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
  std::string compressor;
  std::string nifti_digest;  // of the .nii.gz as written
  uint64_t nifti_bytes = 0;
  std::shared_ptr<io::AtomicFile> file;  // written, not yet synced and renamed
  std::string face_status;  // deface outcome ("face removed", "not a head: ...")
  std::string face_note;    // for the sidecar when the face was altered
};

// Voxel work after decoding, chosen per run.
struct VoxelOptions {
  kernels::Orient orient = kernels::Orient::Native;
  kernels::DefaceMode deface = kernels::DefaceMode::Off;
  uint64_t seed = 0;  // keyed per output: the same input gives the same bytes
};

// The geometry an output ends up with (after --orient; a 3D MR acquisition
// in the nearest orthogonal orientation by default, as dcm2niix).
struct FinalGeometry {
  Affine affine;
  std::array<int64_t, 3> dims;
  kernels::ReorientPlan plan;
};

FinalGeometry final_geometry(const SeriesPlan& p, kernels::Orient orient) {
  FinalGeometry g;
  g.dims = {p.nx, p.ny, p.nz};
  g.affine = p.affine;
  // no scanner position: no world frame to orient to (written with code 0)
  if (p.position_unknown) orient = kernels::Orient::Acquired;
  g.plan = orient == kernels::Orient::Native && p.ortho_3d ? kernels::plan_nearest_orthogonal(p.affine, g.dims)
                                                           : kernels::plan_reorient(p.affine, g.dims, orient);
  if (!g.plan.identity()) {
    g.affine = g.plan.out_affine;
    g.dims = g.plan.out_dims;
  }
  return g;
}

// Defacing (every volume of a 4D series gets the mask of the first) and
// reorientation, on the output voxels (stored integers or float) of time
// points [t0, t0 + nt). The mask is computed from volume 0 (which the first
// call holds) and kept in `mask` for the later calls.
template <class U>
void deface_and_reorient(const SeriesPlan& p, PooledArray<U>& data, int t0, int nt, double slope, double inter,
                         const std::string& modality, const VoxelOptions& vo, kernels::Device device, BufferPool& pool,
                         std::optional<kernels::DefaceMask>& mask, Written& w, io::NiftiVolume& v) {
  const std::array<int64_t, 3> dims{p.nx, p.ny, p.nz};
  const size_t per_volume = size_t(p.nx) * p.ny * p.nz;
  if (vo.deface != kernels::DefaceMode::Off) {
    if constexpr (std::is_same_v<U, uint32_t>) {
      w.face_status = "not defaced: unsupported data type";
    } else {
      const kernels::Contrast contrast = kernels::contrast_from_modality(modality);
      if (!mask) {
        if (t0 != 0) throw std::logic_error("deface: the first volume comes first");
        mask = kernels::deface_mask<U>(device, std::span<const U>(data.data(), per_volume), dims, p.affine, slope,
                                       inter, contrast);
      }
      kernels::DefaceReport rep;
      for (int t = 0; t < nt; ++t) {
        rep = kernels::deface_apply<U>(device, std::span<U>(data.data() + per_volume * t, per_volume), dims,
                                       p.affine, slope, inter, *mask, vo.deface, vo.seed ^ uint64_t(t0 + t));
      }
      w.face_status = rep.status;
      if (rep.altered) w.face_note = rep.method;
    }
  }
  const FinalGeometry g = final_geometry(p, vo.orient);
  if (!g.plan.identity()) {
    PooledArray<U> out(pool, data.size());
    kernels::reorient<U>(device, std::span<const U>(data), std::span<U>(out), dims, nt, g.plan);
    data.swap(out);
  }
  v.affine = g.affine;
  v.dim = {g.dims[0], g.dims[1], g.dims[2], p.nt, 1, 1, 1};
}

// The compression choice samples the first volumes of a series, up to 16 MiB
// of them (at least one; every volume of a smaller series), so that a 4D
// series converted a few time points at a time gets the same choice, and the
// same bytes, as one converted whole.
constexpr uint64_t kChoiceSampleBytes = uint64_t(16) << 20;

// What one series' descriptive header (io::SeriesMeta, its strings included)
// takes in memory, about.
constexpr uint64_t kMetaBytesPerSeries = sizeof(io::SeriesMeta) + 1024;

uint64_t output_bytes_per_volume(const SeriesPlan& p) {
  return uint64_t(p.nx) * p.ny * p.nz * uint64_t(io::nifti_bytes_per_voxel(p.out_type));
}

int sample_time_points(const SeriesPlan& p) {
  const uint64_t per = std::max<uint64_t>(1, output_bytes_per_volume(p));
  return int(std::clamp<uint64_t>((kChoiceSampleBytes + per - 1) / per, 1, uint64_t(std::max(1, p.nt))));
}

// Peak bytes one series holds while `nt` of its time points are converted:
// the stored volumes, a float copy, a reoriented copy, defacing masks,
// decode buffers and compressed blocks in flight.
uint64_t estimated_bytes(const SeriesPlan& p, const VoxelOptions& vo, int nt) {
  const uint64_t vox = uint64_t(p.nx) * p.ny * p.nz * uint64_t(nt) * (p.out_type == io::NiftiType::RGB24 ? 3 : 1);
  const uint64_t stored = vox * (p.first.bits_allocated / 8);
  uint64_t out = p.rescale_to_float ? vox * 4 : stored;
  uint64_t total = stored + (p.rescale_to_float ? out : 0);
  if (!final_geometry(p, vo.orient).plan.identity()) total += out;  // the reoriented copy
  if (vo.deface != kernels::DefaceMode::Off) total += uint64_t(p.nx) * p.ny * p.nz * 2;
  const uint64_t threads = std::min<uint64_t>(
      uint64_t(std::max(1, tbb::this_task_arena::max_concurrency())),
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  total += threads * uint64_t(p.first.rows) * p.first.cols * 4;  // decode buffers
  total += 2 * threads * (uint64_t(4) << 20);                      // gzip blocks in flight
  return total;
}

// Time points converted together. A 4D series whose whole footprint exceeds
// the budget streams: its volumes are decoded, processed and compressed
// (GzipStream) a few at a time, the first chunk holding at least the
// choice's sample. RGB and gantry-tilted series (whose fill value is the
// minimum of the whole series) are converted whole.
struct TimeChunks {
  int first = 1, rest = 1;
  bool whole(const SeriesPlan& p) const { return first >= p.nt; }
};

TimeChunks time_chunks(const SeriesPlan& p, const VoxelOptions& vo, uint64_t budget) {
  TimeChunks c{p.nt, p.nt};
  if (p.nt <= 1 || p.tilt_resample || p.out_type == io::NiftiType::RGB24 || estimated_bytes(p, vo, p.nt) <= budget)
    return c;
  const uint64_t one = estimated_bytes(p, vo, 1), per_t = estimated_bytes(p, vo, 2) - one;
  const uint64_t fixed = one - std::min(one, per_t);
  const uint64_t fit = budget > fixed ? (budget - fixed) / std::max<uint64_t>(1, per_t) : 1;
  c.rest = int(std::clamp<uint64_t>(fit, 1, uint64_t(p.nt)));
  c.first = std::max(c.rest, sample_time_points(p));
  return c;
}

// Decodes, normalises and writes one planned series. Returns false with a
// non-identifying reason.
template <class T>
bool build_and_write(const SeriesPlan& p, const std::vector<io::InputFile>& paths, const fs::path& out_path,
                     const std::string& descrip, const std::string& modality, const VoxelOptions& vo,
                     kernels::Device device, const io::CompressionSetting& comp, uint64_t budget, BufferPool& pool,
                     Written& w, std::string& why) {
  const size_t slice_vox = size_t(p.nx) * p.ny;
  const io::SliceHeader& h0 = p.first;
  // RGB (8-bit, 3 samples): assembled as 3 planar volumes per time point
  // (channel c of volume t is volume 3t+c), interleaved to RGB24 at the end.
  const int spp = p.out_type == io::NiftiType::RGB24 ? 3 : 1;
  if constexpr (!std::is_integral_v<T>) {
    if (p.rescale_to_float) {
      why = "rescale varying between slices of float pixel data";
      return false;
    }
  }
  const TimeChunks chunks = time_chunks(p, vo, budget);

  // Decodes the slices of time points [t0, t1) into `vol` (volume t at t - t0).
  auto decode = [&](int t0, int t1, PooledArray<T>& vol) -> bool {
    // Sources grouped by file: a mosaic file feeds several slices.
    std::map<uint32_t, std::vector<const SliceSource*>> by_file;
    for (const SliceSource& s : p.sources)
      if (int(s.t) >= t0 && int(s.t) < t1) by_file[s.file].push_back(&s);
    std::vector<std::pair<uint32_t, std::vector<const SliceSource*>>> jobs(by_file.begin(), by_file.end());
    std::mutex m;
    std::string first_error;
    tbb::parallel_for(size_t(0), jobs.size(), [&](size_t j) {
      const auto& [file, srcs] = jobs[j];
      // an enhanced multi-frame file is decoded once; sources pick frames (tile)
      io::SliceHeader expect = h0;
      const auto nf_it = p.frames_per_file.find(file);
      expect.number_of_frames = nf_it != p.frames_per_file.end() ? nf_it->second : 1;
      const size_t frame_px = size_t(h0.rows) * h0.cols * spp;
      const size_t image_bytes = frame_px * expect.number_of_frames * sizeof(T);
      const int tiles = p.mosaic_tiles_per_row;
      auto slice_at = [&](const SliceSource* s, size_t c) {
        return vol.data() + slice_vox * (s->z + size_t(p.nz) * ((size_t(s->t) - size_t(t0)) * spp + c));
      };
      // rows stored bottom-up (j = ny-1-r), matching the affine; top-down
      // where the images' rows are known to be stored reversed
      auto row_j = [&](int r) { return size_t(p.rows_reversed ? r : p.ny - 1 - r); };
      auto place_rows = [&](const T* frame, const SliceSource* s, size_t tile_r0, size_t tile_c0) {
        T* dst = slice_at(s, 0);
        for (int r = 0; r < p.ny; ++r) {
          const T* src = frame + (tile_r0 + r) * h0.cols + tile_c0;
          std::memcpy(dst + row_j(r) * p.nx, src, sizeof(T) * p.nx);
        }
      };
      std::string err;
      // Native little-endian single-sample images: rows read straight from
      // the file into place (one copy, no decode buffer).
      if (spp == 1 && !tiles && p.nx == int(h0.cols)) {
        thread_local std::vector<io::PixelPiece> pieces;
        pieces.clear();
        const size_t row_bytes = sizeof(T) * size_t(p.nx);
        for (const SliceSource* s : srcs)
          for (int r = 0; r < p.ny; ++r)
            pieces.push_back({(frame_px * s->tile + size_t(r) * h0.cols) * sizeof(T),
                              reinterpret_cast<std::byte*>(slice_at(s, 0) + row_j(r) * p.nx), row_bytes});
        std::sort(pieces.begin(), pieces.end(),
                  [](const io::PixelPiece& a, const io::PixelPiece& b) { return a.offset < b.offset; });
        const io::NativeView nv = io::read_native_pixels(paths[file], expect, image_bytes, pieces, err);
        if (nv == io::NativeView::Applied) return;
        if (nv == io::NativeView::Failed) {
          std::lock_guard lk(m);
          if (first_error.empty()) first_error = err;
          return;
        }
      }
      thread_local std::vector<std::byte> decoded;
      if (decoded.size() < image_bytes) decoded.resize(image_bytes);
      const T* img = reinterpret_cast<const T*>(decoded.data());
      if (!io::decode_pixels(paths[file], expect, std::span<std::byte>(decoded.data(), image_bytes), err)) {
        std::lock_guard lk(m);
        if (first_error.empty()) first_error = err;
        return;
      }
      for (const SliceSource* s : srcs) {
        const size_t tile_r0 = tiles ? (s->tile / tiles) * size_t(p.ny) : 0;
        const size_t tile_c0 = tiles ? (s->tile % tiles) * size_t(p.nx) : 0;
        const T* frame = img + (tiles ? 0 : frame_px * s->tile);
        if (spp == 3) {
          // planar configuration 0: RGBRGB...; 1: RR..GG..BB.. (per frame)
          const bool planar = h0.planar_configuration == 1;
          const size_t plane = size_t(h0.rows) * h0.cols;
          for (int c = 0; c < 3; ++c) {
            T* dst = slice_at(s, size_t(c));
            for (int r = 0; r < p.ny; ++r)
              for (int x = 0; x < p.nx; ++x) {
                const size_t px = size_t(r) * h0.cols + x;
                dst[row_j(r) * p.nx + x] = planar ? frame[c * plane + px] : frame[px * 3 + c];
              }
          }
          continue;
        }
        place_rows(frame, s, tile_r0, tile_c0);
      }
    });
    if (!first_error.empty()) {
      why = first_error;
      return false;
    }
    return true;
  };

  io::NiftiVolume v;
  v.ndim = p.nt > 1 ? 4 : 3;
  v.dim = {p.nx, p.ny, p.nz, p.nt, 1, 1, 1};
  v.pixdim = {1, 1, 1, p.tr_seconds > 0 ? p.tr_seconds : 1.0, 1, 1, 1};
  v.affine = p.affine;
  if (p.position_unknown) v.qform_code = v.sform_code = 0;  // NIFTI_XFORM_UNKNOWN
  v.datatype = p.out_type;
  v.xyzt_units = 2 | 8;
  v.descrip = descrip;
  std::optional<kernels::DefaceMask> mask;

  // Time points [t0, t1): decoded and processed into `vol` or `fvol`; returns
  // their output voxels (empty with `why` set on failure).
  PooledArray<T> vol;
  PooledArray<float> fvol;
  auto convert_chunk = [&](int t0, int t1) -> std::span<const std::byte> {
    const int nt = t1 - t0;
    vol = PooledArray<T>(pool, slice_vox * size_t(p.nz) * size_t(nt) * spp);
    if (!decode(t0, t1, vol)) return {};
    if constexpr (std::is_integral_v<T>)
      kernels::normalize_stored_bits<T>(device, std::span<T>(vol), h0.bits_stored, h0.high_bit,
                                        h0.pixel_representation == 1);

    // CT gantry tilt (never chunked): resample each slice onto the orthogonal
    // grid (bilinear, stored values rounded; outside the slice the volume's
    // minimum).
    if (p.tilt_resample && spp == 1 && !vol.empty()) {
      const size_t nslices = size_t(p.nz) * size_t(nt);
      const T fill = *std::min_element(vol.begin(), vol.end());
      tbb::parallel_for(size_t(0), nslices, [&](size_t sl) {
        const size_t k = sl % size_t(p.nz);
        if (k == 0) return;
        const double di = double(k) * p.tilt_shift[0], dj = double(k) * p.tilt_shift[1];
        T* slice = vol.data() + slice_vox * sl;
        const std::vector<T> src(slice, slice + slice_vox);
        for (int j = 0; j < p.ny; ++j)
          for (int i = 0; i < p.nx; ++i) {
            double x = i + di, y = j + dj;
            if (x < -1e-6 || y < -1e-6 || x > p.nx - 1 + 1e-6 || y > p.ny - 1 + 1e-6) {
              slice[size_t(j) * p.nx + i] = fill;
              continue;
            }
            x = std::clamp(x, 0.0, double(p.nx - 1));
            y = std::clamp(y, 0.0, double(p.ny - 1));
            const int x0 = int(x), y0 = int(y);
            const int x1 = std::min(x0 + 1, p.nx - 1), y1 = std::min(y0 + 1, p.ny - 1);
            const double fx = x - x0, fy = y - y0;
            auto at = [&](int xx, int yy) { return double(src[size_t(yy) * p.nx + xx]); };
            const double val = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) +
                               fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1));
            if constexpr (std::is_integral_v<T>)
              slice[size_t(j) * p.nx + i] = static_cast<T>(std::llround(val));
            else
              slice[size_t(j) * p.nx + i] = static_cast<T>(val);
          }
      });
    }

    if constexpr (!std::is_integral_v<T>) {
      // float pixel data: written as float32 with the series' rescale in scl
      deface_and_reorient<T>(p, vol, t0, nt, p.scl_slope, p.scl_inter, modality, vo, device, pool, mask, w, v);
      v.scl_slope = p.scl_slope;
      v.scl_inter = p.scl_inter;
      return std::as_bytes(std::span<const T>(vol));
    } else if (p.rescale_to_float) {
      fvol = PooledArray<float>(pool, vol.size());
      const size_t first_slice = size_t(t0) * size_t(p.nz);
      kernels::rescale_to_float<T>(device, std::span<const T>(vol), std::span<float>(fvol),
                                   std::span<const double>(p.slopes).subspan(first_slice),
                                   std::span<const double>(p.inters).subspan(first_slice), slice_vox);
      vol.reset();
      deface_and_reorient<float>(p, fvol, t0, nt, 1.0, 0.0, modality, vo, device, pool, mask, w, v);
      v.scl_slope = 1;
      v.scl_inter = 0;
      return std::as_bytes(std::span<const float>(fvol));
    } else if (spp == 3) {
      // RGB (never chunked): the 3 planar volumes per time point are
      // reoriented like a 4D series (never defaced), then interleaved into
      // RGB24 voxels.
      SeriesPlan planar = p;
      planar.nt = p.nt * 3;
      VoxelOptions vrgb = vo;
      vrgb.deface = kernels::DefaceMode::Off;
      deface_and_reorient<T>(planar, vol, 0, planar.nt, 1.0, 0.0, modality, vrgb, device, pool, mask, w, v);
      v.dim[3] = p.nt;
      const size_t per_volume = vol.size() / (size_t(p.nt) * 3);
      PooledArray<T> rgb(pool, vol.size());
      for (size_t t = 0; t < size_t(p.nt); ++t)
        for (size_t c = 0; c < 3; ++c) {
          const T* src = vol.data() + (t * 3 + c) * per_volume;
          T* dst = rgb.data() + t * per_volume * 3 + c;
          for (size_t i = 0; i < per_volume; ++i) dst[i * 3] = src[i];
        }
      vol.swap(rgb);
      v.scl_slope = 1;
      v.scl_inter = 0;
      return std::as_bytes(std::span<const T>(vol));
    } else {
      deface_and_reorient<T>(p, vol, t0, nt, p.scl_slope, p.scl_inter, modality, vo, device, pool, mask, w, v);
      v.scl_slope = p.scl_slope;
      v.scl_inter = p.scl_inter;
      return std::as_bytes(std::span<const T>(vol));
    }
  };

  try {
    const int first_t1 = std::min(p.nt, chunks.first);
    std::span<const std::byte> out = convert_chunk(0, first_t1);
    if (out.empty() && !why.empty()) return false;
    // the choice: from the first volumes (see kChoiceSampleBytes), for the
    // whole series; the sample is spread over the rows of the slices
    const uint64_t per_volume = output_bytes_per_volume(p);
    const uint64_t total = per_volume * uint64_t(p.nt);
    const size_t sample = size_t(std::min<uint64_t>(out.size(), per_volume * uint64_t(sample_time_points(p))));
    const size_t slice_bytes = size_t(v.dim[0]) * size_t(v.dim[1]) * size_t(io::nifti_bytes_per_voxel(v.datatype));
    io::NiftiGzOptions o;
    o.compression.fixed = io::resolve_compression(comp, out.first(sample), 0, slice_bytes, total);
    o.threads = 0;  // the caller's oneTBB arena: blocks of this volume on every free core
    w.file = std::make_shared<io::AtomicFile>(out_path);
    io::NiftiGzResult res;
    if (chunks.whole(p)) {
      v.voxels = out;
      res = io::write_nifti_gz_into(*w.file, out_path, v, o);
    } else {
      // the same bytes as a whole conversion, a chunk of time points at a time
      io::NiftiGzStreamWriter writer(*w.file, out_path, v, *o.compression.fixed, o.threads);
      writer.append(out);
      for (int t0 = first_t1; t0 < p.nt; t0 += chunks.rest) {
        out = convert_chunk(t0, std::min(p.nt, t0 + chunks.rest));
        if (out.empty() && !why.empty()) {
          w.file.reset();  // removes the temporary file
          return false;
        }
        writer.append(out);
      }
      res = writer.finish();
    }
    w.bytes = res.bytes;
    w.nifti_bytes = res.bytes;
    w.nifti_digest = res.digest;
    w.compressor = io::to_string(res.choice);
  } catch (const std::exception& e) {
    w.file.reset();  // removes the temporary file
    why = e.what();
    return false;
  }
  return true;
}

}  // namespace

fs::path state_dir_for(const ConvertOptions& opt) {
  if (!opt.state_dir.empty()) return opt.state_dir;
  fs::path out = opt.output;
  while (!out.empty() && out.filename().empty()) out = out.parent_path();  // trailing '/'
  return fs::path(out.string() + ".rapidnii-state");
}

namespace {

// Moves the affine origin to the centre of the volume (--neutral-origin).
void neutral_origin(SeriesPlan& p) {
  const double c[3] = {(p.nx - 1) / 2.0, (p.ny - 1) / 2.0, (p.nz - 1) / 2.0};
  for (int r = 0; r < 3; ++r) {
    double centre = p.affine[r][3];
    for (int k = 0; k < 3; ++k) centre += p.affine[r][k] * c[k];
    p.affine[r][3] -= centre;
  }
}

// nibabel's aff2axcodes: for each voxel axis the world direction it points to.
std::string orientation_code(const Affine& a) {
  std::string code;
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (std::abs(a[r][c]) > std::abs(a[best][c])) best = r;
    const bool pos = a[best][c] > 0;
    code.push_back(best == 0 ? (pos ? 'R' : 'L') : best == 1 ? (pos ? 'A' : 'P') : (pos ? 'S' : 'I'));
  }
  return code;
}

const char* nifti_type_name(io::NiftiType t) {
  switch (t) {
    case io::NiftiType::UInt8: return "uint8";
    case io::NiftiType::Int8: return "int8";
    case io::NiftiType::Int16: return "int16";
    case io::NiftiType::UInt16: return "uint16";
    case io::NiftiType::Int32: return "int32";
    case io::NiftiType::UInt32: return "uint32";
    case io::NiftiType::Float32: return "float32";
    case io::NiftiType::Float64: return "float64";
    case io::NiftiType::RGB24: return "rgb24";
  }
  return "unknown";
}

constexpr const char* kManifestHeader =
    "subject,session,series_number,modality,datatype,suffix,shape,voxel_size_mm,data_type,orientation,path\n";

std::string manifest_row(const SeriesPlan& p, const FinalGeometry& g, const deid::SeriesContext& c,
                         const LayoutResult& l, const std::string& modality, const std::string& rel) {
  char vox[96];
  double v[3];
  const Affine& a = g.affine;
  for (int k = 0; k < 3; ++k) v[k] = std::sqrt(a[0][k] * a[0][k] + a[1][k] * a[1][k] + a[2][k] * a[2][k]);
  std::snprintf(vox, sizeof vox, "%.4gx%.4gx%.4g", v[0], v[1], v[2]);
  std::string shape = std::to_string(g.dims[0]) + "x" + std::to_string(g.dims[1]) + "x" + std::to_string(g.dims[2]);
  if (p.nt > 1) shape += "x" + std::to_string(p.nt);
  std::string mod;
  for (char ch : modality)
    if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) mod.push_back(ch);
  return c.subject + "," + std::to_string(l.session) + "," + std::to_string(p.first.series_number) + "," + mod +
         "," + c.bids.datatype + "," + c.bids.suffix + "," + shape + "," + vox + "," + nifti_type_name(p.out_type) +
         "," + orientation_code(g.affine) + "," + rel + "\n";
}

std::string manifest_text(std::vector<std::string> rows) {
  std::sort(rows.begin(), rows.end(), [](const std::string& a, const std::string& b) {
    return a.substr(a.rfind(',') + 1) < b.substr(b.rfind(',') + 1);  // by path
  });
  std::string out = kManifestHeader;
  for (const auto& r : rows) out += r;
  return out;
}

std::string shard_suffix(const ConvertOptions& opt) {
  if (opt.shard_count <= 0) return "";
  return ".shard-" + std::to_string(opt.shard_index) + "-of-" + std::to_string(opt.shard_count);
}

// The files a series reads, each once, in index order (a mosaic or
// multi-frame file feeds several slices).
std::set<uint32_t> series_files(const SeriesPlan& p) {
  std::set<uint32_t> ids;
  for (const SliceSource& s : p.sources) ids.insert(s.file);
  return ids;
}

// What makes an output: its inputs (name, size, time) and the settings.
std::string fingerprint(const SeriesPlan& p, const std::vector<io::InputFile>& files, const ConvertOptions& opt,
                        const std::string& key_id, const std::string& rel) {
  const std::set<uint32_t> ids = series_files(p);
  std::string f = std::string(RAPIDNII_VERSION_STRING) + "|" + key_id + "|" + deid::profile_name(opt.profile) + "|" +
                  opt.compression + "|" + opt.orient + "|" + opt.deface + "|" + std::to_string(opt.neutral_origin) + "|" +
                  std::to_string(opt.convert_burned_in_risk) + "|" + rel + "|ortho3d:" + std::to_string(p.ortho_3d) +
                  (p.rows_reversed ? "|rows-reversed" : "");
  for (uint32_t id : ids) {
    const io::InputFile& in = files[id];
    std::error_code ec;
    const auto t = fs::last_write_time(in.path, ec);
    f += "|" + in.describe() + ":" + std::to_string(in.size()) + ":" +
         std::to_string(ec ? 0 : t.time_since_epoch().count());
  }
  return sha256_hex(f);
}

// Default budget: half of the physical memory.
uint64_t default_memory_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return uint64_t(4) << 30;
  return uint64_t(pages) * uint64_t(page) / 2;
}

// Progress on stderr: a bar redrawn in place on a terminal, a plain line
// every 10% otherwise. Counts, rates and times only.
class Progress {
 public:
  Progress(uint64_t series, uint64_t slices)
      : series_(series), slices_(slices), tty_(::isatty(STDERR_FILENO) == 1), t0_(std::chrono::steady_clock::now()) {}
  void add(uint64_t slices, uint64_t bytes) {
    std::lock_guard lk(m_);
    done_series_++;
    done_slices_ += slices;
    bytes_ += bytes;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double frac = series_ ? double(done_series_) / double(series_) : 1.0;
    const int decile = int(frac * 10);
    if (!tty_ && decile == last_decile_ && done_series_ != series_) return;
    last_decile_ = decile;
    const double mbs = el > 0 ? bytes_ / 1e6 / el : 0;
    const double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    char line[200];
    std::snprintf(line, sizeof line, "series %llu/%llu, slices %llu/%llu, %.1f MB/s, ETA %d:%02d",
                  (unsigned long long)done_series_, (unsigned long long)series_,
                  (unsigned long long)done_slices_, (unsigned long long)slices_, mbs, int(eta) / 60, int(eta) % 60);
    if (tty_) {
      const int width = 24, fill = int(frac * width);
      std::fprintf(stderr, "\r[%.*s%*s] %s", fill, "########################", width - fill, "", line);
    } else {
      std::fprintf(stderr, "rapidnii: %s\n", line);
    }
    std::fflush(stderr);
  }
  void finish() {
    if (tty_ && done_series_) std::fprintf(stderr, "\n");
  }

 private:
  std::mutex m_;
  uint64_t series_, slices_, done_series_ = 0, done_slices_ = 0, bytes_ = 0;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

std::string dataset_description(const ConvertOptions& opt) {
  nlohmann::json j;
  j["Name"] = "rapidnii conversion";
  j["BIDSVersion"] = "1.9.0";
  j["DatasetType"] = "raw";
  j["GeneratedBy"] = nlohmann::json::array(
      {{{"Name", "rapidnii"},
        {"Version", RAPIDNII_VERSION_STRING},
        {"Description", std::string("DICOM to NIfTI, de-identification profile ") + deid::profile_name(opt.profile)}}});
  return j.dump(2) + "\n";
}

}  // namespace

std::pair<int, int> parse_shard(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("--shard takes K/N, e.g. 2/8");
  int k = 0, n = 0;
  try {
    k = std::stoi(s.substr(0, slash));
    n = std::stoi(s.substr(slash + 1));
  } catch (...) {
    throw std::invalid_argument("--shard takes K/N, e.g. 2/8");
  }
  if (n < 1 || k < 1 || k > n) throw std::invalid_argument("--shard K/N needs 1 <= K <= N");
  return {k, n};
}

size_t merge_manifests(const fs::path& out_dir) {
  std::vector<std::string> rows;
  std::vector<fs::path> parts;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("manifest.shard-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".csv") {
      parts.push_back(e.path());
      std::ifstream f(e.path());
      std::string line;
      std::getline(f, line);  // header
      while (std::getline(f, line))
        if (!line.empty()) rows.push_back(line + "\n");
    }
  }
  if (parts.empty()) throw std::runtime_error("no shard manifests in the output folder");
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  io::write_file_atomic(out_dir / "manifest.csv", manifest_text(rows));
  for (const auto& p : parts) fs::remove(p, ec);
  return rows.size();
}

ConvertSummary convert(const ConvertOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  ConvertSummary sum;
  std::error_code ec;
  if (opt.profile == deid::Profile::Limited && !opt.allow_phi)
    throw std::runtime_error("the limited profile keeps identity: it needs --allow-phi");
  if (!fs::exists(opt.input, ec)) throw std::runtime_error("input does not exist");
  const fs::path in_abs = fs::weakly_canonical(opt.input, ec);
  const fs::path out_abs = fs::weakly_canonical(opt.output, ec);
  if (is_inside(out_abs, in_abs)) throw std::runtime_error("the output folder must not be inside the input");
  const fs::path state = state_dir_for(opt);
  const fs::path state_abs = fs::weakly_canonical(state, ec);
  if (is_inside(state_abs, out_abs)) throw std::runtime_error("the state folder must be outside the output folder");
  if (is_inside(state_abs, in_abs)) throw std::runtime_error("the state folder must not be inside the input");
  fs::create_directories(opt.output, ec);
  if (!fs::is_directory(opt.output, ec)) throw std::runtime_error("output folder cannot be created");

  // the key: given, or kept in the private state folder
  deid::Key key = opt.key_file.empty() ? deid::load_or_create_key(state, &sum.key_created)
                                        : deid::load_key_file(opt.key_file);
  if (!opt.key_file.empty()) {
    fs::create_directories(state, ec);
    ::chmod(state.c_str(), 0700);
  }
  sum.key_id = key.id;
  const deid::Pseudonymizer ps(std::move(key));
  const io::CompressionSetting compression = io::parse_compression(opt.compression);
  VoxelOptions voxel_options;
  voxel_options.orient = kernels::parse_orient(opt.orient);
  // defacing: off by default, face removal in the strict profile
  voxel_options.deface = kernels::parse_deface_mode(
      opt.deface.empty() ? (opt.profile == deid::Profile::Strict ? "remove" : "off") : opt.deface);
  Journal journal(state);
  sum.temporaries_removed = remove_stale_temporaries(opt.output);

  std::unique_ptr<tbb::global_control> limit;
  if (opt.threads > 0)
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, opt.threads);
  const kernels::Device device = kernels::resolve_device(opt.device);
  sum.executor = kernels::device_name(device);
  io::quiet_gdcm();

  auto stage_start = std::chrono::steady_clock::now();
  auto stage_done = [&](const char* name) {
    const auto now = std::chrono::steady_clock::now();
    sum.stage_seconds.emplace_back(name, std::chrono::duration<double>(now - stage_start).count());
    stage_start = now;
  };
  stage_done("setup");

  // scan
  io::ScanResult scan = io::scan_inputs(opt.input);
  stage_done("scan");
  sum.files_seen = scan.files.size();
  sum.unreadable_dirs = scan.unreadable_dirs;
  sum.archives = scan.archives;
  sum.compressed_files = scan.compressed_files;

  // index, in parallel
  io::IndexOptions iopt;
  iopt.convert_burned_in_risk = opt.convert_burned_in_risk;
  // Each header goes straight to its place: no second array of results
  // (an archive of a million files holds only `headers`; the reasons of the
  // skipped files, with their details, are few).
  const size_t nfiles = scan.files.size();
  std::vector<io::SliceHeader> headers(nfiles);
  std::vector<io::SkipReason> skip(nfiles, io::SkipReason::None);
  std::mutex detail_mutex;
  std::vector<std::pair<uint32_t, std::string>> details;  // (file, detail) of skipped files
  tbb::parallel_for(size_t(0), nfiles, [&](size_t i) {
    io::IndexResult r = io::index_dicom_file(scan.files[i], iopt);
    skip[i] = r.skip;
    if (r.skip == io::SkipReason::None) {
      headers[i] = std::move(r.header);
    } else if (!r.detail.empty()) {
      std::lock_guard lk(detail_mutex);
      details.emplace_back(uint32_t(i), std::move(r.detail));
    }
  });
  std::sort(details.begin(), details.end());
  stage_done("index");

  nlohmann::json report;
  report["profile"] = deid::profile_name(opt.profile);
  report["key_id"] = sum.key_id;
  report["skipped"] = nlohmann::json::array();
  report["failed"] = nlohmann::json::array();
  report["outputs"] = nlohmann::json::array();

  std::vector<bool> usable(nfiles, false);
  for (const auto& [list, reason] : {std::pair{&scan.bad_archives, io::SkipReason::BrokenArchive},
                                     std::pair{&scan.large_archives, io::SkipReason::ArchiveTooLarge}})
    for (const io::InputFile& a : *list) {
      sum.skipped[io::skip_reason_text(reason)]++;
      report["skipped"].push_back({{"input", a.describe()}, {"reason", io::skip_reason_code(reason)}, {"detail", ""}});
    }
  auto next_detail = details.begin();
  for (size_t i = 0; i < nfiles; ++i) {
    sum.bytes_in += scan.files[i].size();
    if (skip[i] == io::SkipReason::None) {
      usable[i] = true;
      sum.slices_indexed++;
    } else {
      std::string detail;
      if (next_detail != details.end() && next_detail->first == i) detail = std::move((next_detail++)->second);
      std::string reason = io::skip_reason_text(skip[i]);
      if (!detail.empty()) reason += " (" + detail + ")";
      sum.skipped[reason]++;
      report["skipped"].push_back({{"input", scan.files[i].describe()},
                                   {"reason", io::skip_reason_code(skip[i])},
                                   {"detail", detail}});
    }
  }
  std::vector<io::SkipReason>().swap(skip);
  std::vector<std::pair<uint32_t, std::string>>().swap(details);

  // copies of the same instance (e.g. an archive holding a folder twice)
  for (uint32_t d : find_duplicate_instances(headers, usable)) {
    usable[d] = false;
    sum.slices_indexed--;
    sum.skipped[io::skip_reason_text(io::SkipReason::Duplicate)]++;
    report["skipped"].push_back({{"input", scan.files[d].describe()},
                                 {"reason", io::skip_reason_code(io::SkipReason::Duplicate)},
                                 {"detail", ""}});
  }

  // plan
  // the plan holds what the conversion needs (each series' first header and
  // where its slices go): the index is moved in and freed with the planning,
  // not kept while the volumes are in flight
  Plan plan = plan_series(std::move(headers), usable);
  auto report_failure = [&](const std::vector<uint32_t>& files, const std::string& why) {
    nlohmann::json inputs = nlohmann::json::array();
    for (uint32_t f : files) inputs.push_back(scan.files[f].describe());
    report["failed"].push_back({{"inputs", inputs}, {"reason", why}});
  };
  for (const PlanFailure& f : plan.failures) {
    sum.series_failed[f.reason]++;
    report_failure(f.files, f.reason);
  }

  // descriptive attributes of every series, from its first file
  const size_t ns = plan.series.size();
  const uint64_t budget = opt.memory_limit_mb > 0 ? uint64_t(opt.memory_limit_mb) << 20 : default_memory_budget();
  // `second_volume`: also a mosaic's slice times of its second volume (see
  // acquisition; the sidecar context needs them, the sidecar itself not)
  auto read_meta = [&](size_t i, bool second_volume) {
    const SeriesPlan& sp = plan.series[i];
    io::SeriesMeta meta = io::read_series_meta(scan.files[sp.sources.front().file]);
    if (second_volume && sp.mosaic_tiles_per_row > 0 && sp.nt > 1 && !meta.mosaic_slice_times_ms.empty())
      for (const SliceSource& s : sp.sources)
        if (s.t == 1) {
          meta.mosaic_slice_times_ms_second = io::read_series_meta(scan.files[s.file]).mosaic_slice_times_ms;
          break;
        }
    return meta;
  };
  // Kept for the whole run while they take at most 1/64 of the budget;
  // beyond (an archive of a great many small series), read in blocks for the
  // layout, then again when each series is written: a header parse per
  // series in exchange for ~3 KB of memory per series. Same bytes either way.
  const bool keep_metas = uint64_t(ns) * kMetaBytesPerSeries <= budget / 64;
  if (!keep_metas) sum.series_headers_reread = ns;
  std::vector<io::SeriesMeta> metas(keep_metas ? ns : 0);
  std::vector<char> meta_ok(ns, 0);
  std::vector<std::string> descrips(ns), modalities(ns);
  // subjects, sessions, BIDS names
  std::map<std::string, std::set<int>> echoes_of_series;  // multi-echo series get echo-<n>
  for (const auto& p : plan.series) echoes_of_series[p.first.series_uid].insert(p.first.echo_number);
  std::vector<LayoutItem> items(ns);
  std::vector<deid::SeriesContext> ctx(ns);
  constexpr size_t kMetaBlock = 1024;
  std::vector<io::SeriesMeta> block;
  for (size_t i = 0; i < ns; ++i) {
    if (i % kMetaBlock == 0) {  // the next block's headers, in parallel
      block.assign(std::min(kMetaBlock, ns - i), io::SeriesMeta{});
      tbb::parallel_for(size_t(0), block.size(), [&](size_t k) {
        try {
          block[k] = read_meta(i + k, true);
          meta_ok[i + k] = 1;
        } catch (...) {
        }
      });
    }
    io::SeriesMeta& m = block[i % kMetaBlock];
    const SeriesPlan& p = plan.series[i];
    descrips[i] = deid::nifti_descrip(m);
    modalities[i] = m.modality;
    deid::SeriesContext& c = ctx[i];
    c.profile = opt.profile;
    c.retain_full_dates = opt.profile == deid::Profile::Limited;
    c.subject = m.patient_id.empty() ? ps.subject_label("study", m.study_uid)
                                     : ps.subject_label(m.issuer_of_patient_id, m.patient_id);
    c.date_offset_days = ps.date_offset_days(c.subject);
    c.bids = deid::classify(m, p.nt, p.dwi, io::part_name(p.first.part));
    c.complex_part = io::part_name(p.first.part);
    c.tilt_corrected = p.tilt_resample;
    // sidecar fields in the written voxel frame; their warnings join the
    // series' own (sidecar, report, summary)
    c.acquisition = acquisition_fields(m, p, final_geometry(p, voxel_options.orient).affine);
    for (const std::string& w : c.acquisition.warnings) plan.series[i].warnings.push_back(w);
    c.burned_in_override = p.first.burned_in != io::BurnedInRisk::None;
    c.burned_in_code = io::burned_in_code(p.first.burned_in);
    LayoutItem& it = items[i];
    it.subject = c.subject;
    it.study_key = m.study_uid.empty() ? "date|" + m.study_date : m.study_uid;
    auto sd = deid::parse_date(m.study_date);
    if (!sd) sd = deid::scan_date(m);
    it.study_sort = (sd ? deid::format_date(*sd) : std::string("9999")) + "|" +
                    deid::format_time(deid::parse_time_seconds(m.study_time).value_or(0));
    it.study_tiebreak = ps.hmac64("study", it.study_key);
    it.datatype = c.bids.datatype;
    it.suffix = c.bids.suffix;
    if (opt.profile != deid::Profile::Strict) {
      const deid::KnownValues kv = deid::known_values(m);
      const std::string desc = !m.protocol_name.empty() ? m.protocol_name : m.series_description;
      const std::string label = deid::bids_label(deid::clean_descriptor(desc, m.specific_character_set, kv).value);
      if (c.bids.suffix == "bold") {
        c.task = label.empty() ? "unknown" : label;
        it.task = c.task;
      } else {
        it.acq = label;
      }
    } else if (c.bids.suffix == "bold") {
      c.task = "unknown";
      it.task = c.task;
    }
    // echo-<n> for the echoes of one series: BOLD, and outside BIDS (other/);
    // anat suffixes such as T1w take no echo entity (they get run-<k>)
    if ((c.bids.suffix == "bold" || c.bids.datatype == "other") && echoes_of_series[p.first.series_uid].size() > 1)
      it.echo = std::max(1, p.first.echo_number);
    it.order = p.first.series_number;
    it.split = p.split_index;
    if (keep_metas) metas[i] = std::move(m);
  }
  std::vector<io::SeriesMeta>().swap(block);
  const std::vector<LayoutResult> layout = assign_layout(items);

  if (opt.profile == deid::Profile::Limited)
    std::cerr << "rapidnii: WARNING: profile 'limited' keeps identity (dates, site, device, descriptors); every "
                 "sidecar is marked ContainsPHI\n";
  bool any_burned_in = false;
  for (const auto& c : ctx) any_burned_in |= c.burned_in_override;
  if (any_burned_in)
    std::cerr << "rapidnii: WARNING: --convert-burned-in-risk: series that may show identifying text in their "
                 "pixels were converted; their sidecars carry BurnedInTextRisk\n";

  // sharding: a keyed partition by subject, so a patient's sessions stay together
  std::vector<char> selected(ns, 1);
  if (opt.shard_count > 0)
    for (size_t i = 0; i < ns; ++i) {
      selected[i] = ps.hmac64("shard", ctx[i].subject) % uint64_t(opt.shard_count) == uint64_t(opt.shard_index - 1);
      if (!selected[i]) sum.series_other_shards++;
    }

  stage_done("plan");

  // decode + kernels + write, series in parallel
  sum.memory_budget = budget;
  const size_t concurrency =
      std::min<size_t>(size_t(tbb::this_task_arena::max_concurrency()),
                       tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  std::mutex m;
  std::vector<std::string> manifest_rows;
  uint64_t slices_to_do = 0;  // images of this shard's series (a multi-frame file counts its frames)
  for (size_t i = 0; i < ns; ++i)
    if (selected[i]) slices_to_do += plan.series[i].sources.size();
  Progress progress(ns - sum.series_other_shards, slices_to_do);
  BufferPool pool(budget);
  // the folder fsyncs of the renames, shared (about one per folder a second)
  io::FolderSyncBatch folder_syncs;
  // fsync, rename, sidecar and journal row of finished volumes, off the compute threads
  Committer committer(concurrency > 1 ? 2 : 1);

  // The end of a series, written or not: summary, report, progress.
  auto finish_series = [&](size_t i, const std::string& rel, const std::string& row, const Written& w, bool ok,
                           bool cleaned, const std::string& why) {
    const SeriesPlan& p = plan.series[i];
    {
      std::lock_guard lk(m);
      if (ok) {
        sum.series_written++;
        sum.bytes_out += w.bytes;
        sum.outputs.push_back(rel);
        manifest_rows.push_back(row);
        sum.compressors[w.compressor]++;
        if (!w.face_status.empty()) sum.deface[w.face_status]++;
        if (cleaned) sum.descriptors_cleaned++;
        for (const auto& wmsg : p.warnings) sum.warnings[wmsg]++;
        nlohmann::json inputs = nlohmann::json::array();
        for (uint32_t f : series_files(p)) inputs.push_back(scan.files[f].describe());
        nlohmann::json entry = {{"output", rel}, {"inputs", inputs}};
        if (!p.warnings.empty()) entry["warnings"] = p.warnings;
        report["outputs"].push_back(std::move(entry));
      } else {
        sum.series_failed[why]++;
        std::vector<uint32_t> files;
        for (const auto& s : p.sources) files.push_back(s.file);
        report_failure(files, why);
      }
    }
    progress.add(p.sources.size(), uint64_t(p.nx) * p.ny * p.nz * p.nt * (p.first.bits_allocated / 8));
  };

  // Makes a written volume durable and visible, then its sidecar, gradient
  // table and journal row (on a committer thread).
  auto commit_series = [&](size_t i, const fs::path& rel, const fs::path& rel_json, const std::string& fp,
                           const std::string& row, const Written& w, const VoxelOptions& vo) {
    const SeriesPlan& p = plan.series[i];
    bool cleaned = false;
    std::string why;
    try {
      w.file->commit(&folder_syncs);
      deid::SeriesContext c = ctx[i];
      c.face_note = w.face_note;
      std::optional<io::SeriesMeta> again;  // read again: see keep_metas
      if (!keep_metas) again = read_meta(i, false);
      nlohmann::json side = deid::make_sidecar(keep_metas ? metas[i] : *again, c, ps, &cleaned);
      if (!p.warnings.empty()) side["ConversionWarnings"] = p.warnings;
      const std::string side_text = side.dump(2) + "\n";
      io::write_file_atomic(opt.output / rel_json, side_text, 0644, &folder_syncs);
      uint64_t extra = side_text.size();
      if (p.dwi) {  // gradient table beside the volume, in its final voxel frame (numbers only)
        const fs::path stem = fs::path(layout[i].rel_dir) / layout[i].stem;
        const std::string bv = bval_text(p), bc = bvec_text(p, final_geometry(p, vo.orient).affine);
        io::write_file_atomic(opt.output / (stem.string() + ".bval"), bv, 0644, &folder_syncs);
        io::write_file_atomic(opt.output / (stem.string() + ".bvec"), bc, 0644, &folder_syncs);
        extra += bv.size() + bc.size();
      }
      JournalRow jr;
      jr.output = rel.string();
      jr.fingerprint = fp;
      jr.nifti_size = w.nifti_bytes;
      jr.nifti_digest = w.nifti_digest;
      jr.json_digest = io::digest_hex(side_text);
      journal.record(jr);
      Written done = w;
      done.bytes += extra;
      finish_series(i, rel.string(), row, done, true, cleaned, why);
      return;
    } catch (const std::exception& e) {
      why = e.what();
    }
    std::error_code e4;
    if (w.file->committed()) fs::remove(opt.output / rel, e4);
    finish_series(i, rel.string(), row, w, false, cleaned, why);
  };

  auto process = [&](size_t i) {
    SeriesPlan& p = plan.series[i];
    if (!meta_ok[i]) {
      {
        std::lock_guard lk(m);
        sum.series_failed["header cannot be read"]++;
      }
      progress.add(p.sources.size(), 0);
      return;
    }
    if (opt.neutral_origin) neutral_origin(p);
    const fs::path rel = fs::path(layout[i].rel_dir) / (layout[i].stem + ".nii.gz");
    const fs::path rel_json = fs::path(layout[i].rel_dir) / (layout[i].stem + ".json");
    const std::string fp = fingerprint(p, scan.files, opt, sum.key_id, rel.string());
    const std::string row =
        manifest_row(p, final_geometry(p, voxel_options.orient), ctx[i], layout[i], modalities[i], rel.string());
    // resume: an output complete and verified in an earlier run is kept
    if (auto done = journal.find(rel.string()); done && done->fingerprint == fp) {
      std::error_code e3;
      const fs::path nii = opt.output / rel, js = opt.output / rel_json;
      if (fs::file_size(nii, e3) == done->nifti_size && !e3 && io::file_digest(nii) == done->nifti_digest &&
          io::file_digest(js) == done->json_digest) {
        {
          std::lock_guard lk(m);
          sum.series_resumed++;
          sum.outputs.push_back(rel.string());
          manifest_rows.push_back(row);
        }
        progress.add(p.sources.size(), 0);
        return;
      }
    }
    const std::string& descrip = descrips[i];
    auto w = std::make_shared<Written>();
    std::string why;
    bool ok = false;
    const bool sign = p.first.pixel_representation == 1;
    const fs::path out_path = opt.output / rel;
    const io::CompressionSetting& lvl = compression;
    VoxelOptions vo = voxel_options;
    vo.seed = ps.hmac64("deface", rel.string());
    const std::string& mod = modalities[i];
    const auto& files = scan.files;
    switch (p.first.bits_allocated) {
      case 8:
        ok = sign ? build_and_write<int8_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why)
                  : build_and_write<uint8_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why);
        break;
      case 16:
        ok = sign ? build_and_write<int16_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why)
                  : build_and_write<uint16_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why);
        break;
      case 32:
        if (p.first.float_pixels == 32) {
          ok = build_and_write<float>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why);
          break;
        }
        ok = sign ? build_and_write<int32_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why)
                  : build_and_write<uint32_t>(p, files, out_path, descrip, mod, vo, device, lvl, budget, pool, *w, why);
        break;
      default: why = "unsupported bits allocated";
    }
    if (!ok) {
      w->file.reset();
      finish_series(i, rel.string(), row, *w, false, false, why);
      return;
    }
    committer.submit([&commit_series, i, rel, rel_json, fp, row, w, vo] { commit_series(i, rel, rel_json, fp, row, *w, vo); });
  };

  // Series run concurrently while their estimated memory fits the budget (a
  // series larger than the budget runs alone), at most two per thread: a
  // thread waiting inside one series' parallel loop steals the next admitted
  // series, so without the cap a run starts many series at once, each with
  // fresh (faulted, zeroed) buffers instead of reused ones (8 fresh buffers
  // against 3 on the 17-series benchmark archive); two per thread keep the
  // cores busy on small series whose own work is mostly serial. Each finished series admits
  // the next ones from its own task, so no thread ever blocks waiting for
  // memory; the disk work of finished series overlaps the decoding and
  // compression of the next (committer).
  // Largest first: the tail of the run is short series filling the cores,
  // and the first buffers are the largest, so later series reuse them (a
  // fresh page costs a fault and zeroing). Outputs do not depend on the order.
  std::vector<size_t> order;
  std::vector<uint64_t> need(ns, 0);  // estimated footprint, within the budget
  for (size_t i = 0; i < ns; ++i)
    if (selected[i]) {
      order.push_back(i);
      need[i] = std::min(
          estimated_bytes(plan.series[i], voxel_options, time_chunks(plan.series[i], voxel_options, budget).first),
          budget);
    }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return need[a] > need[b]; });
  // Read-ahead of the next series' files while these are converted (cold
  // archives). Files whose pixels the indexer's 16 KiB prefix did not
  // already bring in only: series of single small images are left alone
  // (an extra open per file would cost more than it saves).
  std::unique_ptr<ReadAhead> readahead;
  {
    std::vector<ReadAhead::Series> ra(order.size());
    bool any = false;
    for (size_t k = 0; k < order.size(); ++k) {
      const SeriesPlan& p = plan.series[order[k]];
      const uint64_t bytes = output_bytes_per_volume(p) * uint64_t(std::max(1, p.nt));
      if (bytes < uint64_t(std::max<uint32_t>(1, p.n_files)) * (uint64_t(64) << 10)) continue;
      for (uint32_t f : series_files(p))
        if (!scan.files[f].in_archive()) ra[k].files.push_back(&scan.files[f].path);
      ra[k].bytes = bytes;
      any |= !ra[k].files.empty();
    }
    if (any)
      readahead = std::make_unique<ReadAhead>(std::move(ra), std::min<uint64_t>(budget / 2, uint64_t(1) << 30),
                                              4 * concurrency);
  }
  auto start_series = [&](size_t i) {
    if (readahead) readahead->started();
    process(i);
  };
  if (concurrency <= 1) {
    for (size_t i : order) start_series(i);  // one thread: nothing to overlap
  } else {
    std::mutex bm;
    uint64_t in_flight = 0;
    size_t next = 0, running = 0;
    const size_t max_running = 2 * concurrency;
    tbb::task_group tg;
    std::function<void()> admit;  // called with bm held
    admit = [&] {
      while (next < order.size()) {
        const size_t i = order[next];
        if (in_flight != 0 && in_flight + need[i] > budget) return;
        if (running >= max_running) return;
        ++running;
        in_flight += need[i];
        ++next;
        tg.run([&, i] {
          start_series(i);
          std::lock_guard lk(bm);
          in_flight -= need[i];
          --running;
          admit();
        });
      }
    };
    {
      std::lock_guard lk(bm);
      admit();
    }
    tg.wait();
  }
  committer.drain();
  folder_syncs.flush();
  progress.finish();
  stage_done("convert");
  std::sort(sum.outputs.begin(), sum.outputs.end());

  // dataset-level files
  io::write_file_atomic(opt.output / "dataset_description.json", dataset_description(opt));
  io::write_file_atomic(opt.output / ".bidsignore", "other/\nmanifest*.csv\n");
  io::write_file_atomic(opt.output / "README",
                        std::string("Converted from DICOM by rapidnii ") + RAPIDNII_VERSION_STRING +
                            " with de-identification profile '" + deid::profile_name(opt.profile) +
                            "'. Series without a BIDS equivalent are under sub-*/ses-*/other/.\n");
  // the dataset manifest: what a data loader reads (no identifying data)
  io::write_file_atomic(opt.output / ("manifest" + shard_suffix(opt) + ".csv"), manifest_text(manifest_rows));
  // the private run report: input paths live only here, outside OUT_DIR
  try {
    auto sort_by = [](nlohmann::json& a, const char* k) {
      std::sort(a.begin(), a.end(), [k](const nlohmann::json& x, const nlohmann::json& y) {
        return x[k].dump() < y[k].dump();
      });
    };
    sort_by(report["outputs"], "output");
    sort_by(report["failed"], "inputs");
    io::write_file_atomic(state / ("report" + shard_suffix(opt) + ".json"), report.dump(2) + "\n", 0600);
  } catch (...) {
  }
  stage_done("finish");
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

namespace {
// " (2 archives, 5 compressed files read)", or nothing
std::string read_from(const ConvertSummary& s) {
  std::string r;
  if (s.archives) r = std::to_string(s.archives) + " archive" + (s.archives == 1 ? "" : "s");
  if (s.compressed_files)
    r += (r.empty() ? "" : ", ") + std::to_string(s.compressed_files) + " compressed file" +
         (s.compressed_files == 1 ? "" : "s");
  return r.empty() ? r : " (" + r + " read)";
}
}  // namespace

void print_summary(const ConvertSummary& s, std::ostream& os) {
  os << "rapidnii: " << s.series_written << " series written, " << s.failures() << " failed; " << s.files_seen
     << " files scanned" << read_from(s)
     << ", " << s.slices_indexed << " DICOM images indexed, " << s.files_skipped()
     << " files skipped\n";
  for (const auto& [reason, n] : s.skipped) os << "  skipped " << n << " file(s): " << reason << "\n";
  if (s.unreadable_dirs) os << "  " << s.unreadable_dirs << " folder(s) could not be read\n";
  for (const auto& [reason, n] : s.series_failed) os << "  failed " << n << " series: " << reason << "\n";
  for (const auto& [w, n] : s.warnings) os << "  warning for " << n << " series: " << w << "\n";
  if (s.descriptors_cleaned) os << "  descriptors cleaned in " << s.descriptors_cleaned << " series\n";
  if (s.series_headers_reread)
    os << "  descriptive headers read again when written, for " << s.series_headers_reread
       << " series (kept, they would take more than 1/64 of the memory budget)\n";
  if (s.series_resumed) os << "  " << s.series_resumed << " series already complete from an earlier run (verified)\n";
  if (s.temporaries_removed) os << "  " << s.temporaries_removed << " stale temporary file(s) removed\n";
  if (s.series_other_shards) os << "  " << s.series_other_shards << " series left to other shards\n";
  os << "  memory budget " << (s.memory_budget >> 20) << " MiB\n";
  os << "  key " << s.key_id << (s.key_created ? " (new, kept in the state folder)" : "") << "\n";
  const double mb_in = s.bytes_in / 1e6;
  os << std::fixed << std::setprecision(1) << "  " << mb_in << " MB read, " << s.bytes_out / 1e6 << " MB written in "
     << std::setprecision(2) << s.seconds << " s (" << std::setprecision(1)
     << (s.seconds > 0 ? mb_in / s.seconds : 0.0) << " MB/s input); executor: " << s.executor << "\n";
  if (!s.stage_seconds.empty()) {
    os << "  time:";
    const char* sep = " ";
    for (const auto& [stage, sec] : s.stage_seconds) {
      os << sep << stage << " " << std::setprecision(2) << sec << " s";
      sep = ", ";
    }
    os << "\n";
  }
  for (const auto& [status, n] : s.deface) os << "  deface: " << status << " in " << n << " series\n";
  if (!s.compressors.empty()) {
    os << "  gzip:";
    for (const auto& [c, n] : s.compressors) os << " " << c << " x" << n;
    os << "\n";
  }
}

}  // namespace rapidnii::pipeline
