#include "pipeline/series.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <tuple>

namespace rapidnii::pipeline {

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

namespace {

Vec3 row_dir(const io::SliceHeader& h) { return {h.iop[0], h.iop[1], h.iop[2]}; }
Vec3 col_dir(const io::SliceHeader& h) { return {h.iop[3], h.iop[4], h.iop[5]}; }
Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
Vec3 scale(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
Vec3 normalized(const Vec3& a) {
  const double n = std::sqrt(dot(a, a));
  return n > 0 ? scale(a, 1.0 / n) : Vec3{0, 0, 1};
}

int mosaic_tiles_per_row(const io::SliceHeader& h) {
  if (h.mosaic_images == 0) return 0;
  return static_cast<int>(std::ceil(std::sqrt(static_cast<double>(h.mosaic_images)) - 1e-9));
}

// Keys that must be equal for two slices to share one output volume.
std::string split_key(const io::SliceHeader& h) {
  std::string k;
  k.reserve(h.series_uid.size() + 96);
  k += h.series_uid;
  k += '|';
  k += std::to_string(h.series_number);
  k += '|';
  k += std::to_string(h.echo_number);
  k += '|';
  k += std::to_string(std::llround(h.echo_time * 1000));  // echoes whose numbers do not tell them apart
  k += '|';
  k += h.image_type;
  k += '|';
  k += h.convolution_kernel;  // CT: a series may hold several reconstructions at the same positions
  k += '|';
  k += h.sop_class_uid;
  k += '|';
  k += std::to_string(h.rows) + 'x' + std::to_string(h.cols);
  k += '|';
  k += std::to_string(h.bits_allocated) + (h.float_pixels ? "f:" : ":") + std::to_string(h.pixel_representation) + ':' +
       std::to_string(h.samples_per_pixel) + ':' + h.photometric;
  k += '|';
  k += std::to_string(h.mosaic_images);
  k += '|';
  k += io::part_name(h.part);
  k += '|';
  k += std::to_string(h.stack);
  if (h.modality == "MR") {
    // other repetition times or flip angles at the same positions (variable
    // flip angle or TR series for T1 mapping) are other images, never one
    // time series (current dcm2niix splits them too; its Debian release
    // 1.0.20220720 stacks them)
    k += '|';
    k += std::to_string(std::llround(h.repetition_time * 1000));
    k += '|';
    k += std::to_string(std::llround(h.flip_angle * 1000));
  }
  return k;
}

bool same_plane_geometry(const io::SliceHeader& a, const io::SliceHeader& b) {
  for (int i = 0; i < 6; ++i)
    // 5e-3 (0.3 degrees): scanners and converters jitter the cosines by up
    // to ~1e-3; a tighter bound splits one stack into interleaved parts
    if (std::abs(a.iop[i] - b.iop[i]) > 5e-3) return false;
  // another pixel spacing is another reconstruction (field of view): never
  // one volume; jitter (1e-4 relative) is not
  for (int i = 0; i < 2; ++i)
    if (std::abs(a.pixel_spacing[i] - b.pixel_spacing[i]) > 2e-3 * std::max(a.pixel_spacing[i], b.pixel_spacing[i]))
      return false;
  return a.has_orientation == b.has_orientation;
}

// Temporal order of slices sharing one position. Philips diffusion comes
// first by its private volume order (dcm2niix): DiffusionOrder when present,
// else BValueNumber then GradientOrientationNumber (instance numbers are
// scrambled there); both are 0 elsewhere.
auto time_key(const io::SliceHeader& h) {
  const int32_t a = h.philips_diffusion_order > 0 ? h.philips_diffusion_order : h.philips_bvalue_number;
  const int32_t b = h.philips_diffusion_order > 0 ? 0 : h.philips_gradient_number;
  // PET: ImageIndex and FrameReferenceTime before the acquisition number and
  // time, which some scanners write once for the whole dynamic series
  return std::make_tuple(a, b, h.temporal_position, h.image_index, h.frame_reference_time, h.acquisition_number,
                         h.acquisition_time, h.instance_number);
}

io::NiftiType stored_type(const io::SliceHeader& h) {
  if (h.samples_per_pixel == 3) return io::NiftiType::RGB24;
  if (h.float_pixels == 32) return io::NiftiType::Float32;
  const bool sign = h.pixel_representation == 1;
  switch (h.bits_allocated) {
    case 8: return sign ? io::NiftiType::Int8 : io::NiftiType::UInt8;
    case 16:
      // Unsigned values of at most 15 bits fit int16, the type dcm2niix writes.
      if (!sign && h.bits_stored >= 16) return io::NiftiType::UInt16;
      return io::NiftiType::Int16;
    default:
      if (!sign && h.bits_stored >= 32) return io::NiftiType::UInt32;
      return io::NiftiType::Int32;
  }
}

// Positions of single-frame slices. Every slice with ImagePositionPatient
// keeps it. When none has one, slices are stacked by InstanceNumber at the
// slice thickness and the geometry is marked unknown. When only some lack
// it, they are placed from their InstanceNumber only if the slices with a
// position lie exactly on one line in InstanceNumber (pos = a + b*n, to
// 0.01 mm); otherwise the series fails rather than guess.
bool place_slices(const std::vector<io::SliceHeader>& headers, const std::vector<uint32_t>& files, const Vec3& normal,
                  std::vector<Vec3>& pos, SeriesPlan& p, std::string& why) {
  size_t missing = 0;
  const io::SliceHeader* lo = nullptr;  // positioned slices with the lowest / highest InstanceNumber
  const io::SliceHeader* hi = nullptr;
  for (size_t i = 0; i < files.size(); ++i) {
    const io::SliceHeader& h = headers[files[i]];
    pos[i] = h.ipp;
    if (!h.has_position) {
      ++missing;
      continue;
    }
    if (!lo || h.instance_number < lo->instance_number) lo = &h;
    if (!hi || h.instance_number > hi->instance_number) hi = &h;
  }
  if (missing == 0) return true;
  if (missing == files.size()) {
    const double th = headers[files.front()].slice_thickness > 0 ? headers[files.front()].slice_thickness : 1.0;
    for (size_t i = 0; i < files.size(); ++i) pos[i] = scale(normal, th * headers[files[i]].instance_number);
    p.position_unknown = true;
    p.warnings.push_back("no image position: slices stacked by InstanceNumber, position unknown (qform/sform code 0, native voxel order)");
    return true;
  }
  const auto fail = [&] {
    why = std::to_string(missing) + " of " + std::to_string(files.size()) +
          " images have no ImagePositionPatient and cannot be placed from their InstanceNumber";
    return false;
  };
  if (lo->instance_number == hi->instance_number) return fail();
  const double span = double(hi->instance_number) - double(lo->instance_number);
  const Vec3 step = scale(add(hi->ipp, scale(lo->ipp, -1)), 1.0 / span);
  const auto line = [&](int32_t n) { return add(lo->ipp, scale(step, double(n) - double(lo->instance_number))); };
  if (!(std::sqrt(dot(step, step)) > 1e-3)) return fail();
  for (uint32_t f : files) {
    const io::SliceHeader& h = headers[f];
    if (!h.has_position) continue;
    const Vec3 d = add(line(h.instance_number), scale(h.ipp, -1));
    if (std::sqrt(dot(d, d)) > 0.01) return fail();
  }
  for (size_t i = 0; i < files.size(); ++i)
    if (!headers[files[i]].has_position) pos[i] = line(headers[files[i]].instance_number);
  p.warnings.push_back("images without ImagePositionPatient placed from their InstanceNumber");
  return true;
}

struct VirtualSlice {
  uint32_t file;
  uint32_t tile;
  Vec3 pos;
  double d;  // position along the slice normal
};

// Plans one group of compatible slices; returns false with a reason.
bool plan_group(const std::vector<io::SliceHeader>& headers, const std::vector<uint32_t>& files, SeriesPlan& p,
                std::string& why) {
  const io::SliceHeader& h0 = headers[files.front()];
  p.first = h0;
  p.n_files = static_cast<uint32_t>(files.size());
  const Vec3 row = row_dir(h0), col = col_dir(h0);
  const Vec3 normal = normalized(cross(row, col));
  const double dx = h0.pixel_spacing[1];  // between columns
  const double dy = h0.pixel_spacing[0];  // between rows
  if (!h0.has_orientation) p.warnings.push_back("no image orientation: identity assumed");

  std::vector<VirtualSlice> vs;
  const int tiles = mosaic_tiles_per_row(h0);
  if (tiles > 0) {
    if (h0.rows % tiles != 0 || h0.cols % tiles != 0) {
      why = "mosaic size is not a multiple of its tile count";
      return false;
    }
    p.mosaic_tiles_per_row = tiles;
    p.nx = h0.cols / tiles;
    p.ny = h0.rows / tiles;
    // Tiles are stored in order along the CSA slice normal, whose sign may
    // be opposite to row x column.
    double dz = h0.spacing_between_slices > 0 ? h0.spacing_between_slices : h0.slice_thickness;
    if (!(dz > 0)) dz = 1;
    Vec3 dir = normal;
    if (h0.has_slice_normal && dot(h0.slice_normal, normal) < 0) dir = scale(normal, -1);
    for (uint32_t f : files) {
      const io::SliceHeader& h = headers[f];
      const Vec3 origin = mosaic_tile_origin(h, p.ny, p.nx);
      for (uint32_t m = 0; m < h.mosaic_images; ++m) {
        const Vec3 pos = add(origin, scale(dir, dz * m));
        // ordered along the CSA normal: voxel k is tile k (dcm2niix's order)
        vs.push_back({f, m, pos, dot(pos, dir)});
      }
    }
  } else {
    p.nx = h0.cols;
    p.ny = h0.rows;
    std::vector<Vec3> pos(files.size());
    if (!place_slices(headers, files, normal, pos, p, why)) return false;
    for (size_t i = 0; i < files.size(); ++i) vs.push_back({files[i], 0, pos[i], dot(pos[i], normal)});
  }

  // Sort by position along the normal, then by time.
  std::sort(vs.begin(), vs.end(), [&](const VirtualSlice& a, const VirtualSlice& b) {
    if (std::abs(a.d - b.d) > 1e-3) return a.d < b.d;
    const auto ka = time_key(headers[a.file]), kb = time_key(headers[b.file]);
    if (ka != kb) return ka < kb;
    return a.file < b.file;
  });
  // Cluster equal positions.
  std::vector<size_t> starts{0};
  for (size_t i = 1; i < vs.size(); ++i)
    if (std::abs(vs[i].d - vs[starts.back()].d) > 1e-3) starts.push_back(i);
  const size_t nz = starts.size();
  size_t nt = vs.size() / nz;
  for (size_t k = 0; k < nz; ++k) {
    const size_t end = k + 1 < nz ? starts[k + 1] : vs.size();
    if (end - starts[k] != nt) {
      why = "missing slices or extra images: positions hold unequal numbers of images";
      return false;
    }
  }
  p.nz = static_cast<int>(nz);
  p.nt = static_cast<int>(nt);
  for (size_t k = 0; k < nz; ++k)
    for (size_t t = 0; t < nt; ++t) {
      const VirtualSlice& v = vs[starts[k] + t];
      p.sources.push_back({v.file, v.tile, static_cast<uint32_t>(k), static_cast<uint32_t>(t)});
    }

  // Slice vector: first to last position of the first volume.
  Vec3 slice_vec;
  if (nz > 1) {
    const Vec3& a = vs[starts.front()].pos;
    const Vec3& b = vs[starts.back()].pos;
    slice_vec = scale(add(b, scale(a, -1)), 1.0 / double(nz - 1));
    // Uneven spacing is reported, never silently averaged away.
    const double mean = (vs[starts.back()].d - vs[starts.front()].d) / double(nz - 1);
    for (size_t k = 1; k < nz; ++k) {
      const double gap = vs[starts[k]].d - vs[starts[k - 1]].d;
      // 0.1 mm: positions written to 0.1 mm (some vendors) are not uneven
      if (std::abs(gap - mean) > std::max(0.1, 0.05 * std::abs(mean))) {
        p.warnings.push_back("uneven slice spacing");
        break;
      }
    }
  } else {
    // one slice: the acquisition's slice spacing, else the thickness (as dcm2niix)
    double dz = h0.spacing_between_slices > 0 ? h0.spacing_between_slices : h0.slice_thickness;
    if (!(dz > 0)) dz = 1;
    slice_vec = scale(normal, dz);
  }
  const Vec3 origin = vs[starts.front()].pos;

  // LPS voxel->world with rows flipped (j = ny-1-r), then LPS -> RAS.
  const Vec3 cx = scale(row, dx);
  const Vec3 cy = scale(col, -dy);
  const Vec3 o = add(origin, scale(col, dy * (p.ny - 1)));
  for (int r = 0; r < 3; ++r) {
    const double sgn = r < 2 ? -1.0 : 1.0;
    p.affine[r] = {sgn * cx[r], sgn * cy[r], sgn * slice_vec[r], sgn * o[r]};
  }

  // Gantry tilt: the slice vector leaves the normal. CT is resampled onto
  // the orthogonal grid of the first slice (as dcm2niix does): slice k is
  // sampled at (i + k*di, j + k*dj) and the affine's slice column becomes the
  // normal component of the slice vector. Other modalities keep the exact
  // sheared affine. Both are reported.
  // A drift across the whole stack below a quarter of a pixel is the rounding
  // of ImagePositionPatient, not a tilt: the slice column keeps the normal
  // component only (voxels untouched, no shear).
  std::string modality = h0.modality;
  for (char& ch : modality) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (nz > 1 && tiles == 0) {
    const double len = std::sqrt(dot(slice_vec, slice_vec));
    const Vec3 in_plane = add(slice_vec, scale(normal, -dot(slice_vec, normal)));
    const double drift = std::sqrt(dot(in_plane, in_plane)) * double(nz - 1);
    const bool sheared = len > 0 && std::abs(dot(slice_vec, normal)) / len < std::cos(0.1 * M_PI / 180.0);
    // the affine's slice column becomes the normal component of the slice vector
    auto keep_normal_component = [&] {
      const Vec3 along = scale(normal, dot(slice_vec, normal));
      for (int r = 0; r < 3; ++r) p.affine[r][2] = (r < 2 ? -1.0 : 1.0) * along[r];
    };
    if (sheared && drift < 0.25 * std::min(dx, dy)) {
      keep_normal_component();
    } else if (sheared) {
      p.gantry_tilt = true;
      if (modality == "CT") {
        p.tilt_resample = true;
        p.tilt_shift = {-dot(slice_vec, row) / dx, dot(slice_vec, col) / dy};
        keep_normal_component();
        p.warnings.push_back("gantry tilt corrected: resampled to an orthogonal grid");
      } else {
        p.warnings.push_back("sheared slice stack (gantry tilt): sheared affine, not resampled");
      }
    }
  }

  // Diffusion: b-value and gradient per volume, from the first slice of
  // each volume; every slice of a volume must agree.
  bool any_diffusion = false, any_weighted = false, ge_pe_assumed = false, mixed = false;
  for (const SliceSource& s : p.sources) any_diffusion |= headers[s.file].has_bvalue;
  if (any_diffusion && nt > 1) {
    p.bvals.assign(nt, 0.0);
    p.gradients.assign(nt, Vec3{0, 0, 0});
    std::vector<char> seen(nt, 0);
    for (const SliceSource& s : p.sources) {
      const io::SliceHeader& h = headers[s.file];
      const double b = h.has_bvalue ? h.bvalue : 0.0;
      const Vec3 g = h.has_gradient ? Vec3{h.gradient[0], h.gradient[1], h.gradient[2]} : Vec3{0, 0, 0};
      ge_pe_assumed |= h.ge_gradient_pe_assumed && h.has_bvalue && h.bvalue > 0;
      if (!seen[s.t]) {
        seen[s.t] = 1;
        p.bvals[s.t] = b;
        p.gradients[s.t] = g;
      } else if (std::abs(p.bvals[s.t] - b) > 1e-3 || std::abs(p.gradients[s.t][0] - g[0]) > 1e-4 ||
                 std::abs(p.gradients[s.t][1] - g[1]) > 1e-4 || std::abs(p.gradients[s.t][2] - g[2]) > 1e-4) {
        mixed = true;
      }
    }
    for (double b : p.bvals) any_weighted |= b > 0;
    p.dwi = any_weighted;
    if (!p.dwi) {
      p.bvals.clear();
      p.gradients.clear();
    }
    // Derived isotropic (trace) volumes: b > 0 without a gradient direction
    // while the other weighted volumes have one (Philips appends one to the
    // acquisition). Not a diffusion-encoded measurement, and it breaks tensor
    // fits: removed, as dcm2niix does, and reported.
    if (p.dwi) {
      auto directionless = [&](size_t t) {
        const Vec3& g = p.gradients[t];
        return p.bvals[t] > 0 && std::abs(g[0]) < 1e-6 && std::abs(g[1]) < 1e-6 && std::abs(g[2]) < 1e-6;
      };
      size_t iso = 0, directed = 0;
      for (size_t t = 0; t < nt; ++t) {
        if (directionless(t)) iso++;
        else if (p.bvals[t] > 0) directed++;
      }
      if (iso > 0 && directed > 0) {
        std::vector<int64_t> new_t(nt, -1);
        std::vector<double> bvals;
        std::vector<Vec3> gradients;
        for (size_t t = 0; t < nt; ++t)
          if (!directionless(t)) {
            new_t[t] = int64_t(bvals.size());
            bvals.push_back(p.bvals[t]);
            gradients.push_back(p.gradients[t]);
          }
        std::vector<SliceSource> kept;
        for (const SliceSource& s : p.sources)
          if (new_t[s.t] >= 0) kept.push_back({s.file, s.tile, s.z, static_cast<uint32_t>(new_t[s.t])});
        p.sources = std::move(kept);
        p.bvals = std::move(bvals);
        p.gradients = std::move(gradients);
        nt -= iso;
        p.nt = static_cast<int>(nt);
        p.warnings.push_back(std::to_string(iso) +
                             " derived isotropic (trace) volume(s) removed: b > 0 without a gradient direction");
      }
    }
    if (p.dwi && mixed) p.warnings.push_back("diffusion values differ between slices of one volume");
    if (p.dwi && ge_pe_assumed)
      p.warnings.push_back("GE diffusion vectors without InPlanePhaseEncodingDirection: COL assumed");
  }

  // PET frame timing, from the first slice of each volume.
  if (nt > 1) {
    std::vector<const io::SliceHeader*> first(nt, nullptr);
    for (const SliceSource& s : p.sources)
      if (s.z == 0) first[s.t] = &headers[s.file];
    bool durations = true, starts = true;
    for (size_t t = 0; t < nt; ++t) {
      durations &= first[t] && first[t]->frame_duration > 0;
      starts &= first[t] && first[t]->acquisition_time >= 0 &&
                (t == 0 || first[t]->acquisition_time > first[t - 1]->acquisition_time);
    }
    if (modality == "PT" && durations)
      for (size_t t = 0; t < nt; ++t) p.frame_durations.push_back(first[t]->frame_duration / 1000.0);
    if (modality == "PT" && starts)
      for (size_t t = 0; t < nt; ++t) p.frame_starts.push_back(first[t]->acquisition_time - first[0]->acquisition_time);
  }

  // Slice times: Siemens XA's TimeAfterStart (0021,1104) of each slice of
  // the second volume (the first may carry bogus times, as dcm2niix notes);
  // UIH's AcquisitionTime of each slice of the first volume (as dcm2niix)
  if (nt > 1 && p.nz > 1 && p.mosaic_tiles_per_row == 0 && !h0.mr_3d) {
    const bool uih = h0.vendor == io::SliceHeader::Vendor::UIH;
    std::vector<double> t1(p.nz, -1);
    for (const SliceSource& s : p.sources)
      if (s.t == (uih ? 0u : 1u) && s.z < t1.size())
        t1[s.z] = uih ? headers[s.file].acquisition_time : headers[s.file].time_after_start;
    if (uih && std::all_of(t1.begin(), t1.end(), [](double x) { return x >= 0; })) {
      const auto [lo, hi] = std::minmax_element(t1.begin(), t1.end());
      if (*hi - *lo > 43200)  // the volume crossed midnight
        for (double& x : t1) x += x < 43200 ? 86400 : 0;
    }
    if (std::all_of(t1.begin(), t1.end(), [](double x) { return x >= 0; })) {
      const double lo = *std::min_element(t1.begin(), t1.end());
      for (double& x : t1) x = std::round((x - lo) * 1e6) / 1e6;  // us: no float noise in the sidecar
      p.slice_times = std::move(t1);
    }
  }

  if (p.nz > 1 && p.mosaic_tiles_per_row == 0) {
    std::vector<int64_t> inst(p.nz, INT64_MIN);
    for (const SliceSource& s : p.sources)
      if (s.t == 0 && s.z < inst.size()) inst[s.z] = headers[s.file].instance_number;
    bool up = inst[0] != INT64_MIN, down = up;
    for (size_t z = 1; z < inst.size(); ++z) {
      up &= inst[z] != INT64_MIN && inst[z] > inst[z - 1];
      down &= inst[z] != INT64_MIN && inst[z] < inst[z - 1];
    }
    p.instance_direction = up ? 1 : down ? -1 : 0;
  }

  // Time step between volumes: a cine's frame time, else the repetition time.
  p.tr_seconds = h0.frame_interval > 0 ? h0.frame_interval / 1000.0
                 : h0.repetition_time > 0 ? h0.repetition_time / 1000.0 : 0.0;

  // GE epi_pepolar: the reversed-polarity images' rows are stored upside
  // down; a series holds one polarity (the reversed ones of a mixed series
  // have a series number of their own).
  size_t reversed = 0;
  for (uint32_t f : files) reversed += headers[f].rows_reversed;
  if (reversed == files.size()) p.rows_reversed = true;
  else if (reversed > 0) p.warnings.push_back("phase-encoding polarity differs between images: rows left as stored");

  // Pixel type and rescale.
  p.out_type = stored_type(h0);
  p.ortho_3d = h0.mr_3d && nz > 1 && nt == 1 && p.out_type != io::NiftiType::RGB24;
  const size_t nslices = nz * nt;
  p.slopes.assign(nslices, 1.0);
  p.inters.assign(nslices, 0.0);
  bool varies = false;
  for (const SliceSource& s : p.sources) {
    const io::SliceHeader& h = headers[s.file];
    const size_t idx = s.z + nz * s.t;
    p.slopes[idx] = h.rescale_slope;
    p.inters[idx] = h.rescale_intercept;
    if (h.rescale_slope != h0.rescale_slope || h.rescale_intercept != h0.rescale_intercept) varies = true;
  }
  if (p.out_type == io::NiftiType::RGB24) {
    p.slopes.clear();  // colour is never rescaled
    p.inters.clear();
    p.scl_slope = 1;
    p.scl_inter = 0;
    return true;
  }
  if (varies) {
    p.rescale_to_float = true;
    p.out_type = io::NiftiType::Float32;
  } else {
    p.scl_slope = h0.rescale_slope;
    p.scl_inter = h0.rescale_intercept;
    p.slopes.clear();
    p.inters.clear();
  }
  return true;
}

}  // namespace

Vec3 slice_normal(const std::array<double, 6>& iop) {
  return normalized(cross({iop[0], iop[1], iop[2]}, {iop[3], iop[4], iop[5]}));
}

Vec3 mosaic_tile_origin(const io::SliceHeader& h, int tile_rows, int tile_cols) {
  const double shift_cols = (h.cols - tile_cols) / 2.0;
  const double shift_rows = (h.rows - tile_rows) / 2.0;
  return add(h.ipp, add(scale(row_dir(h), h.pixel_spacing[1] * shift_cols),
                        scale(col_dir(h), h.pixel_spacing[0] * shift_rows)));
}

namespace {

Plan plan_slices(const std::vector<io::SliceHeader>& headers, const std::vector<bool>& usable);

// One frame of an enhanced object as a classic slice header.
io::SliceHeader frame_header(const io::SliceHeader& h, const io::FrameInfo& f) {
  io::SliceHeader v = h;
  v.frames = nullptr;
  v.has_position = f.has_position;
  v.has_orientation = f.has_orientation;
  v.ipp = f.ipp;
  v.iop = f.iop;
  v.pixel_spacing = f.pixel_spacing;
  v.slice_thickness = f.slice_thickness;
  v.spacing_between_slices = f.spacing_between_slices;
  v.has_rescale = f.has_rescale;
  v.rescale_slope = f.rescale_slope;
  v.rescale_intercept = f.rescale_intercept;
  v.echo_time = f.echo_time;
  v.echo_number = f.echo_number;
  v.stack = f.stack;
  v.temporal_position = f.temporal_position;
  v.instance_number = f.order;
  v.has_bvalue = f.has_bvalue || h.has_bvalue;
  v.bvalue = f.has_bvalue ? f.bvalue : h.bvalue;
  v.has_gradient = f.has_gradient || h.has_gradient;
  v.gradient = f.has_gradient ? f.gradient : h.gradient;
  v.part = f.part;
  v.time_after_start = f.time_after_start;
  return v;
}

}  // namespace

std::vector<uint32_t> find_duplicate_instances(const std::vector<io::SliceHeader>& headers,
                                               const std::vector<bool>& usable) {
  // A copy has the same SOP instance AND the same place in the same series:
  // modified variants keep the UID in another series (the 12-bit validation
  // set does), and those are not duplicates.
  // 16 bytes per file (a hash of the key and the file), not the keys
  // themselves: files whose hashes are equal are compared by their keys, so
  // the result is exact.
  auto key = [&](uint32_t i) {
    const io::SliceHeader& h = headers[i];
    char place[160];
    std::snprintf(place, sizeof place, "|%d|%d|%d|%.4f|%.4f|%.4f", h.instance_number, h.acquisition_number,
                  h.temporal_position, h.ipp[0], h.ipp[1], h.ipp[2]);
    return h.sop_instance_uid + "|" + split_key(h) + place;
  };
  std::vector<std::pair<uint64_t, uint32_t>> hashed;
  for (uint32_t i = 0; i < headers.size(); ++i) {
    if (i >= usable.size() || !usable[i] || headers[i].sop_instance_uid.empty()) continue;
    const std::string k = key(i);
    hashed.emplace_back(XXH3_64bits(k.data(), k.size()), i);
  }
  std::sort(hashed.begin(), hashed.end());
  std::vector<uint32_t> dup;
  for (size_t a = 0; a < hashed.size();) {
    size_t b = a + 1;
    while (b < hashed.size() && hashed[b].first == hashed[a].first) ++b;
    if (b - a > 1) {  // the earliest file of each key is kept, the later ones are copies
      std::vector<std::string> kept;
      for (size_t j = a; j < b; ++j) {
        std::string k = key(hashed[j].second);
        if (std::find(kept.begin(), kept.end(), k) != kept.end())
          dup.push_back(hashed[j].second);
        else
          kept.push_back(std::move(k));
      }
    }
    a = b;
  }
  std::sort(dup.begin(), dup.end());
  return dup;
}

namespace {

// Classic images of one series whose EchoNumbers cannot tell its echo times
// apart (absent, or fewer numbers than times): echo n is the n-th echo time
// (as enhanced objects are numbered), so that the echoes are separate
// outputs named echo-<n> in TE order. In place; nothing changes otherwise.
void number_echoes(std::vector<io::SliceHeader>& headers, const std::vector<bool>& usable) {
  std::map<std::string, std::set<long long>> times;  // series -> echo times (us)
  std::map<std::string, std::set<int32_t>> numbers;  // series -> EchoNumbers
  auto classic = [&](uint32_t i) { return i < usable.size() && usable[i] && !headers[i].frames; };
  for (uint32_t i = 0; i < headers.size(); ++i) {
    if (!classic(i)) continue;
    times[headers[i].series_uid].insert(std::llround(headers[i].echo_time * 1000));
    numbers[headers[i].series_uid].insert(headers[i].echo_number);
  }
  std::set<std::string> renumber;
  for (const auto& [uid, t] : times)
    if (t.size() > 1 && numbers[uid].size() < t.size()) renumber.insert(uid);
  if (renumber.empty()) return;
  for (uint32_t i = 0; i < headers.size(); ++i) {
    io::SliceHeader& h = headers[i];
    if (!classic(i) || !renumber.count(h.series_uid)) continue;
    const auto& t = times[h.series_uid];
    h.echo_number = int32_t(std::distance(t.begin(), t.find(std::llround(h.echo_time * 1000)))) + 1;
  }
}

}  // namespace

Plan plan_series(std::vector<io::SliceHeader> headers, const std::vector<bool>& usable) {
  number_echoes(headers, usable);
  bool any_frames = false;
  for (uint32_t i = 0; i < headers.size(); ++i) any_frames |= i < usable.size() && usable[i] && headers[i].frames;
  if (!any_frames) return plan_slices(headers, usable);
  // Each frame of an enhanced object becomes a virtual slice.
  std::vector<io::SliceHeader> vh;
  std::vector<bool> vu;
  std::vector<uint32_t> vfile, vframe;
  for (uint32_t i = 0; i < headers.size(); ++i) {
    const bool u = i < usable.size() && usable[i];
    if (u && headers[i].frames) {
      const auto& frames = *headers[i].frames;
      for (uint32_t f = 0; f < frames.size(); ++f) {
        vh.push_back(frame_header(headers[i], frames[f]));
        vu.push_back(true);
        vfile.push_back(i);
        vframe.push_back(f);
      }
    } else {
      vh.push_back(std::move(headers[i]));  // ours: classic headers are not read again
      vu.push_back(u);
      vfile.push_back(i);
      vframe.push_back(0);
    }
  }
  Plan plan = plan_slices(vh, vu);
  for (SeriesPlan& p : plan.series) {
    std::set<uint32_t> files;
    for (SliceSource& s : p.sources) {
      const uint32_t file = vfile[s.file];
      if (headers[file].frames) {
        s.tile = vframe[s.file];
        p.frames_per_file[file] = headers[file].number_of_frames;
      }
      s.file = file;
      files.insert(file);
    }
    p.n_files = static_cast<uint32_t>(files.size());
  }
  for (PlanFailure& f : plan.failures) {
    std::set<uint32_t> files;
    for (uint32_t v : f.files) files.insert(vfile[v]);
    f.files.assign(files.begin(), files.end());
  }
  return plan;
}

namespace {

Plan plan_slices(const std::vector<io::SliceHeader>& headers, const std::vector<bool>& usable) {
  Plan plan;
  // 1. exact keys
  std::map<std::string, std::vector<uint32_t>> groups;
  for (uint32_t i = 0; i < headers.size(); ++i)
    if (i < usable.size() && usable[i]) groups[split_key(headers[i])].push_back(i);

  // Series that were split into several outputs get numbered parts.
  std::map<std::string, int> parts_of_series;
  struct Pending {
    std::string uid_sn;
    std::vector<uint32_t> files;
  };
  std::vector<Pending> pending;
  for (auto& [key, files] : groups) {
    // 2. clusters of one orientation and pixel spacing inside each key
    std::vector<std::vector<uint32_t>> clusters;
    for (uint32_t f : files) {
      bool placed = false;
      for (auto& c : clusters)
        if (same_plane_geometry(headers[c.front()], headers[f])) {
          c.push_back(f);
          placed = true;
          break;
        }
      if (!placed) clusters.push_back({f});
    }
    const io::SliceHeader& h = headers[files.front()];
    const std::string uid_sn = h.series_uid + "|" + std::to_string(h.series_number);
    for (auto& c : clusters) {
      pending.push_back({uid_sn, std::move(c)});
      parts_of_series[uid_sn]++;
    }
  }

  std::map<std::string, int> part_counter;
  for (auto& pd : pending) {
    SeriesPlan p;
    std::string why;
    if (!plan_group(headers, pd.files, p, why)) {
      plan.failures.push_back({pd.files, why});
      continue;
    }
    if (parts_of_series[pd.uid_sn] > 1) p.split_index = ++part_counter[pd.uid_sn];
    plan.series.push_back(std::move(p));
  }

  // Deterministic order: series number, then first instance, then split part.
  std::sort(plan.series.begin(), plan.series.end(), [](const SeriesPlan& a, const SeriesPlan& b) {
    return std::make_tuple(a.first.series_number, a.first.series_uid, a.split_index) <
           std::make_tuple(b.first.series_number, b.first.series_uid, b.split_index);
  });

  return plan;
}

}  // namespace

}  // namespace rapidnii::pipeline
