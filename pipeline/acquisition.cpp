#include "pipeline/acquisition.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace rapidnii::pipeline {

namespace {

// The output axis nearest to `v` (RAS) and the sign of v along it; -1 when
// no axis is within 45 degrees of it.
std::pair<int, int> nearest_axis(const Affine& a, const Vec3& v) {
  const double lv = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  int best = -1, sign = 1;
  double best_cos = std::sqrt(0.5);
  for (int c = 0; c < 3; ++c) {
    const double d = a[0][c] * v[0] + a[1][c] * v[1] + a[2][c] * v[2];
    const double lc = std::sqrt(a[0][c] * a[0][c] + a[1][c] * a[1][c] + a[2][c] * a[2][c]);
    if (!(lc > 0) || !(lv > 0)) continue;
    const double cosine = std::abs(d) / (lc * lv);
    if (cosine > best_cos) {
      best_cos = cosine;
      best = c;
      sign = d >= 0 ? 1 : -1;
    }
  }
  return {best, sign};
}

const char* const kAxis[] = {"i", "j", "k"};

// A mosaic's slice times (ms): the first volume's, unless they are all
// equal, beyond TR or span another range than the second volume's, and the
// second volume's are good (some multiband versions store wrong times in
// the first volume: dcm2niix takes the second's then, its minimum
// subtracted).
std::vector<double> mosaic_times(const io::SeriesMeta& m) {
  const std::vector<double>& t0 = m.mosaic_slice_times_ms;
  const std::vector<double>& t1 = m.mosaic_slice_times_ms_second;
  if (t1.size() != t0.size() || t0.empty() || !m.repetition_time) return t0;
  const double tr = *m.repetition_time;
  const auto [lo0, hi0] = std::minmax_element(t0.begin(), t0.end());
  const auto [lo1, hi1] = std::minmax_element(t1.begin(), t1.end());
  const bool same_range = std::abs((*hi0 - *lo0) - (*hi1 - *lo1)) <= 1e-5 * std::max(1.0, *hi0 - *lo0);
  if (*hi0 > *lo0 && *hi0 <= tr && same_range) return t0;
  if (!(*lo1 < *hi1 && *hi1 < tr && *lo1 >= 0)) return t0;
  std::vector<double> shifted;
  for (double x : t1) shifted.push_back(x - *lo1);
  return shifted;
}

// GE 2D EPI of several volumes (its images carry no slice times): estimated
// from the protocol as dcm2niix does. fMRI (PulseSequenceName epiRT, or
// IOPT FMRI) and multi-phase EPI (epi, or IOPT MPh; not with variable
// delays) only. The TR less the group delay is divided among the
// excitations, ceil(slices / HyperBand factor), one more when that is even
// under HyperBand before software 27 R03; sequential (SLICEORDER 0) or
// interleaved (even excitations first, then odd; from 27 R03 with HyperBand
// and an even count, the last and third-last swapped); slice k is acquired
// with excitation k mod excitations, in the order GE numbers its slices.
// Without SLICEORDER nothing is written (dcm2niix assumes interleaved).
// Empty, with the reason in `why` when it is worth saying, when the protocol
// does not tell.
std::vector<double> ge_slice_times(const io::SeriesMeta& m, const SeriesPlan& p, std::string& why) {
  if (!m.ge_protocol || p.nz < 2 || p.nt < 2 || p.mosaic_tiles_per_row > 0 || p.first.mr_3d) return {};
  const io::GeProtocol& g = *m.ge_protocol;
  std::string seq = m.ge_pulse_sequence;
  for (char& c : seq) c = char(std::tolower(static_cast<unsigned char>(c)));
  const bool rt = seq == "epirt" || g.fmri, multiphase = seq == "epi" || g.multiphase;
  if (!rt && !multiphase) return {};  // diffusion (epi2) and non-EPI: no rule
  if (!rt && g.variable_delays) {
    why = "GE multi-phase EPI with variable delays";
    return {};
  }
  if (!g.slice_order) {
    why = "GE protocol without SLICEORDER";
    return {};
  }
  if (p.instance_direction == 0) {
    why = "GE slices not numbered in slice order";
    return {};
  }
  if (!m.repetition_time || !(*m.repetition_time > 0)) return {};
  // the slices fill the TR less its group delay (DELACQNOAV, s: a pause
  // after the slices, as in sparse fMRI)
  const double tr = *m.repetition_time / 1000.0, delay = g.group_delay;
  if (!(delay >= 0 && delay < tr)) {
    why = "GE group delay not within the repetition time";
    return {};
  }
  const int mb = std::max(m.ge_multiband, g.multiband);
  bool r3 = false;  // software 27 R03 and later number HyperBand excitations differently
  if (mb > 1) {
    const auto v = io::ge_software_version(m.software_versions);
    if (!v || v->major < 26 - 1e-6) {
      why = "GE HyperBand before software 26";
      return {};
    }
    r3 = v->major > 27.05 || (v->major > 26.95 && v->release >= 3);
  }
  int excitations = (p.nz + mb - 1) / mb;
  if (mb > 1 && !r3 && excitations % 2 == 0) ++excitations;
  const double step = (tr - delay) / excitations;
  std::vector<double> st(excitations);
  const bool interleaved = *g.slice_order != 0;
  const int odd_start = (excitations + 1) / 2;  // the odd excitations follow the even ones
  for (int i = 0; i < excitations; ++i) st[i] = step * (!interleaved ? i : i % 2 == 0 ? i / 2 : odd_start + i / 2);
  if (mb > 1 && r3 && interleaved && excitations > 2 && excitations % 2 == 0)
    std::swap(st[excitations - 1], st[excitations - 3]);
  std::vector<double> native(p.nz);
  for (int z = 0; z < p.nz; ++z) {
    const int rank = p.instance_direction > 0 ? z : p.nz - 1 - z;  // the order GE acquired them in
    native[z] = std::round(st[rank % excitations] * 1e6) / 1e6;
  }
  return native;
}

}  // namespace

AcquisitionFields acquisition_fields(const io::SeriesMeta& m, const SeriesPlan& p, const Affine& out_affine) {
  AcquisitionFields f;
  std::string dir = m.phase_encoding_direction;
  for (char& ch : dir) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  const bool col = dir == "COL" || dir == "COLUMN", row = dir == "ROW";
  if ((col || row) && p.first.has_orientation && !p.position_unknown) {
    const auto& iop = p.first.iop;
    // LPS direction of the phase axis in the stored image, then RAS
    Vec3 pe = col ? Vec3{iop[3], iop[4], iop[5]} : Vec3{iop[0], iop[1], iop[2]};
    // GE epi_pepolar's reversed images, written the right way up, have the
    // opposite polarity in the written frame (dcm2niix)
    const bool positive = m.phase_encoding_positive && (*m.phase_encoding_positive != 0) != p.rows_reversed;
    if (m.phase_encoding_positive && !positive)
      for (double& x : pe) x = -x;
    const Vec3 ras{-pe[0], -pe[1], pe[2]};
    const auto [axis, sign] = nearest_axis(out_affine, ras);
    if (axis >= 0) {
      if (m.phase_encoding_positive)
        f.phase_encoding_direction = std::string(kAxis[axis]) + (sign < 0 ? "-" : "");
      else
        f.phase_encoding_axis = kAxis[axis];
    }
    // voxels along the phase axis of the reconstructed image (a mosaic tile)
    const int recon_pe = col ? p.ny : p.nx;
    if (m.bandwidth_per_pixel_phase_encode && recon_pe > 1) {
      const double ees = 1.0 / (*m.bandwidth_per_pixel_phase_encode * recon_pe);
      f.effective_echo_spacing = ees;
      f.total_readout_time = ees * (recon_pe - 1);
    } else if (m.ge_echo_spacing_us && m.ge_asset_factor && m.acquisition_phase_lines && recon_pe > 1) {
      // GE (as Debian's dcm2niix): the lines read are the acquired phase
      // lines times the ASSET factor, rounded up to an even number; the
      // readout spans one echo spacing between consecutive lines, and the
      // effective spacing spreads it over the reconstructed lines
      const int read = 2 * int(std::ceil(*m.acquisition_phase_lines * *m.ge_asset_factor / 2 - 1e-9));
      if (read > 1) {
        f.total_readout_time = *m.ge_echo_spacing_us * 1e-6 * (read - 1);
        f.effective_echo_spacing = *f.total_readout_time / (recon_pe - 1);
      }
    }
    if (m.philips_water_fat_shift && m.philips_epi_factor && m.imaging_frequency && *m.imaging_frequency > 0 &&
        recon_pe > 1) {
      // Philips states the readout only as the fat-water shift in pixels:
      // fat and water are 3.4 ppm apart, so the phase-direction bandwidth per
      // pixel is 3.4e-6 x frequency / shift; dcm2niix's estimate
      const double etl = *m.philips_epi_factor;
      const double readout = *m.philips_water_fat_shift / (3.4 * *m.imaging_frequency) * etl / (etl + 1);
      f.estimated_total_readout_time = readout;
      f.estimated_effective_echo_spacing = readout / (recon_pe - 1);
    }
  }
  if (m.ge_protocol || m.ge_multiband > 1)
    f.multiband_factor = std::max(m.ge_multiband, m.ge_protocol ? m.ge_protocol->multiband : 1);
  f.frame_duration = p.frame_durations;
  f.frame_times_start = p.frame_starts;
  // slice timing, per native slice (s): tile t of every mosaic was acquired
  // at times[t]; Siemens XA gives each slice's time (series planning)
  std::vector<double> native;
  bool complete = false;
  const char* source = "";
  if (p.mosaic_tiles_per_row > 0 && !m.mosaic_slice_times_ms.empty()) {
    const std::vector<double> times = mosaic_times(m);
    native.assign(p.nz, -1);
    for (const SliceSource& s : p.sources)
      if (s.t == 0 && s.z < native.size() && s.tile < times.size()) native[s.z] = times[s.tile] / 1000.0;
    complete = times.size() == size_t(p.nz);
    source = m.mosaic_slice_times_from_protocol ? "the Siemens protocol" : "MosaicRefAcqTimes";
  } else if (p.slice_times.size() == size_t(p.nz) && p.nz > 1) {
    native = p.slice_times;
    // all at once (3D, or every slice in one multiband shot): nothing to say
    const auto [lo, hi] = std::minmax_element(native.begin(), native.end());
    complete = *hi > *lo;
    source = "TimeAfterStart";
  } else if (std::string why; m.ge_protocol) {
    native = ge_slice_times(m, p, why);
    complete = !native.empty();
    source = "the GE protocol";
    if (!why.empty()) f.warnings.push_back("slice times not written: " + why);
  }
  if (!native.empty() && p.nz > 1 && !p.position_unknown) {
    for (double x : native) complete &= x >= 0;
    bool within_tr = true;
    const double tr = m.repetition_time && *m.repetition_time > 0 ? *m.repetition_time : 1e5;
    if (p.mosaic_tiles_per_row > 0)
      for (double x : mosaic_times(m)) within_tr &= x >= 0 && x < tr;  // ms
    else
      for (double x : native) within_tr &= x * 1000 <= tr;
    if (complete && !within_tr) {
      f.warnings.push_back(std::string("slice times not written: ") + source + " beyond the repetition time");
      complete = false;
    }
    const Vec3 slice_dir{p.affine[0][2], p.affine[1][2], p.affine[2][2]};
    const auto [axis, sign] = nearest_axis(out_affine, slice_dir);
    if (complete && axis >= 0) {
      const double first = *std::min_element(native.begin(), native.end());
      const auto together = std::count_if(native.begin(), native.end(), [&](double x) { return x - first < 5e-4; });
      if (together > 1 && f.multiband_factor == 1) f.multiband_factor = int(together);
      f.slice_timing = native;
      if (sign < 0) std::reverse(f.slice_timing.begin(), f.slice_timing.end());
      if (axis != 2) f.slice_encoding_direction = kAxis[axis];
    }
  }
  return f;
}

}  // namespace rapidnii::pipeline
