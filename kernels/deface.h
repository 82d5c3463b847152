// Face blurring / removal without an atlas (see ../shared/DEFACE-NOTES.md and
// ARCHITECTURE.md "Defacing").
//
// Two full-resolution passes run on the chosen executor (CPU or CUDA, one
// functor each, in deface_kernels.h): a downsample of the physical values onto
// a world-aligned (RAS) coarse grid of ~2 mm cells (mean and max per cell), and
// the final apply (one read and one write per voxel). Between them, the
// analysis runs on that coarse grid on the CPU executor: head mask, largest
// component, slice-wise hole fill, exact distance transforms (separable, one
// line per task), protrusions and nose tip, face frame, the brain veto (CT: the
// cavity enclosed by bone; MR: the brain-intensity component), the face shell
// and, for blur, the flattened and smoothed face.
//
// A series is analysed once (deface_mask on its first volume) and the mask is
// applied to every volume (deface_apply); deface() does both for one volume.
// Output is deterministic for a given seed: every step is a per-index
// functor or a serial pass, integer distances are exact, and the noise comes
// from Philox-4x32-10 keyed by (seed, voxel index).
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/device.h"
#include "kernels/reorient.h"  // Affine

namespace rapidnii::kernels {

enum class DefaceMode { Off, Blur, Remove };
enum class Contrast { CT, MR };

// "off", "blur", "remove"; anything else throws std::invalid_argument.
DefaceMode parse_deface_mode(std::string_view name);
const char* deface_mode_name(DefaceMode m);
// DICOM Modality -> contrast: "CT" -> CT; anything else -> MR (the histogram
// threshold works for any non-HU image).
Contrast contrast_from_modality(std::string_view modality);

struct DefaceReport {
  bool head_found = false;
  bool altered = false;
  // Short, non-identifying: "face removed", "face blurred", "not a head: ...",
  // "no face found", "refused: ...", "off".
  std::string status;
  uint64_t voxels_changed = 0;
  // For the sidecar: how the face was altered (set when altered).
  std::string method;
};

// World-aligned coarse grid: cell (a,b,c) has its centre at
// origin + h*(a,b,c) in RAS mm.
struct CoarseGrid {
  std::array<int64_t, 3> dims{0, 0, 0};
  std::array<double, 3> origin{0, 0, 0};
  double h = 2.0;
  int64_t cells() const { return dims[0] * dims[1] * dims[2]; }
};

// Per-cell flags of a DefaceMask.
inline constexpr uint8_t kCellAlter = 1;    // inside the face region
inline constexpr uint8_t kCellProtect = 2;  // brain veto: never altered
inline constexpr uint8_t kCellTissue = 4;   // tissue in the flattened face (blur)

// The analysis of one volume, reusable for every volume of the series (same
// grid and affine).
struct DefaceMask {
  DefaceReport report;  // head_found, status; altered/voxels_changed are 0
  Contrast contrast = Contrast::CT;
  std::array<int64_t, 3> dims{0, 0, 0};
  Affine affine{};
  CoarseGrid grid;
  std::vector<uint8_t> cells;  // kCell* flags per coarse cell (empty: nothing to do)
  double background = 0;       // physical value written by remove
  double tissue = 0;           // face tissue level (blur flattening)
  double amplitude = 0;        // blur noise amplitude: |change| >= amplitude/2
  // Landmarks (RAS mm), for tests and reports.
  std::array<double, 3> nose_tip{0, 0, 0};
  std::array<double, 3> cranium_centre{0, 0, 0};
  double brain_volume_ml = 0;
  bool usable() const { return report.head_found && !cells.empty(); }
};

// Analyse one 3D volume (x fastest; physical value = stored*slope + inter).
// Instantiated for int16_t, uint16_t, float (and uint8_t, int8_t, int32_t).
template <class T>
DefaceMask deface_mask(Device d, std::span<const T> vol, std::array<int64_t, 3> dims,
                       const Affine& affine, double slope, double inter, Contrast c);

// Apply a mask to one 3D volume of the same grid (dims and affine equal to
// the mask's, else std::invalid_argument), in place. Blur: every altered voxel
// becomes the flattened face (opened then closed by a 15 mm ball) smoothed by
// a Gaussian (sigma 8 mm) plus Philox noise of magnitude in
// [amplitude/2, amplitude) and random sign; a draw landing within amplitude/2
// of the original takes the other sign, so each altered voxel changes by at
// least amplitude/2 (CT: 100 HU; MR: 10% of face tissue minus background)
// unless the stored type clamps it. Remove: altered voxels become the
// background. Protected (brain) voxels are never written. For a 4D series,
// make the mask from the first volume and apply it to every volume (pass a
// different seed per volume for independent noise).
template <class T>
DefaceReport deface_apply(Device d, std::span<T> vol, std::array<int64_t, 3> dims,
                          const Affine& affine, double slope, double inter, const DefaceMask& m,
                          DefaceMode mode, uint64_t seed);

// deface_mask + deface_apply on one volume.
template <class T>
DefaceReport deface(Device d, std::span<T> vol, std::array<int64_t, 3> dims, const Affine& affine,
                    double slope, double inter, Contrast c, DefaceMode m, uint64_t seed);

}  // namespace rapidnii::kernels
