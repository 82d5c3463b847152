// Series planning: grouping slices into output volumes, sorting them in
// space and time, and deriving the NIfTI geometry (DICOM LPS -> NIfTI RAS).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/dicom_header.h"
#include "io/nifti_writer.h"

namespace rapidnii::pipeline {

using Vec3 = std::array<double, 3>;
using Affine = std::array<std::array<double, 4>, 3>;  // rows of a 3x4 RAS affine

// Where one output slice comes from: a file, and the tile of a Siemens
// mosaic (0 otherwise), going to slice z of volume t.
struct SliceSource {
  uint32_t file = 0;
  uint32_t tile = 0;
  uint32_t z = 0;
  uint32_t t = 0;
};

struct SeriesPlan {
  // Files (indices into the header array) and where their slices go. A
  // mosaic file feeds nz slices; a classic file feeds one.
  std::vector<SliceSource> sources;
  io::SliceHeader first;  // header of the first slice (pixel format, physics)
  int nx = 0, ny = 0, nz = 0, nt = 1;
  int mosaic_tiles_per_row = 0;  // >0 for a mosaic: tiles per mosaic row
  Affine affine{};               // voxel -> RAS (rows flipped as dcm2niix does)
  double tr_seconds = 0;
  io::NiftiType out_type = io::NiftiType::Int16;
  // One rescale pair for the whole series -> stored integers with
  // scl_slope/scl_inter; otherwise float32 with the rescale applied, using
  // the per-slice pairs (index z + nz*t).
  bool rescale_to_float = false;
  double scl_slope = 1, scl_inter = 0;
  std::vector<double> slopes, inters;
  uint32_t n_files = 0;
  // Diffusion: one b-value and one gradient (patient frame, LPS) per
  // volume, in output order; written as .bval/.bvec (pipeline/dwi).
  bool dwi = false;
  // PET dynamic (nt > 1), per volume, s: ActualFrameDuration, and the start
  // of each frame (its AcquisitionTime) after the first's, when those increase
  std::vector<double> frame_durations, frame_starts;
  // Siemens XA and UIH 2D series of several volumes: when each native slice
  // was acquired within its volume (s, minimum subtracted: XA's
  // TimeAfterStart (0021,1104) of the second volume, UIH's AcquisitionTime of
  // the first); empty when unknown
  std::vector<double> slice_times;
  // +1 when the InstanceNumbers of the first volume's slices increase with
  // z (along the slice normal), -1 when they decrease, 0 otherwise: GE
  // acquires its slices in the order it numbers them
  int instance_direction = 0;
  std::vector<double> bvals;
  std::vector<Vec3> gradients;
  // Enhanced multi-frame inputs: frames in each such file (sources carry
  // the frame index in `tile`); files absent here hold one frame.
  std::map<uint32_t, int32_t> frames_per_file;
  bool gantry_tilt = false;  // slice vector not along the normal
  // No image of the series has ImagePositionPatient: slices stacked by
  // InstanceNumber, and the NIfTI says so (qform/sform code 0, unknown).
  bool position_unknown = false;
  // CT gantry tilt corrected: output slice k (of every volume) samples its
  // input slice at voxel (i + k*tilt_shift[0], j + k*tilt_shift[1])
  // (bilinear; outside the slice: the volume's minimum); the affine is
  // orthogonal. Other sheared stacks keep the sheared affine.
  bool tilt_resample = false;
  // A 3D MR acquisition (MRAcquisitionType 3D) written as one 3D volume of
  // several slices: stored in the nearest orthogonal orientation by default,
  // as dcm2niix does (kernels::plan_nearest_orthogonal; `--orient acquired`
  // keeps the acquired order). Never for RGB, as dcm2niix.
  bool ortho_3d = false;
  // GE epi_pepolar reversed polarity (io::SliceHeader::rows_reversed): rows
  // placed top-down (j = r) instead of bottom-up, under the same affine.
  bool rows_reversed = false;
  std::array<double, 2> tilt_shift{0, 0};
  std::vector<std::string> warnings;  // non-identifying notes (e.g. "uneven slice spacing")
  int split_index = 0;                // >0 when one DICOM series gave several outputs
};

struct PlanFailure {
  std::vector<uint32_t> files;
  std::string reason;  // non-identifying
};

struct Plan {
  std::vector<SeriesPlan> series;
  std::vector<PlanFailure> failures;
};

// Groups and plans all indexed slices. `headers[i]` belongs to file i;
// `usable[i]` false entries are ignored (skipped files). The headers are
// taken by value: a caller that no longer needs them moves them in, and no
// copy of the index is made (echo renumbering and the frames of enhanced
// objects work on it in place).
Plan plan_series(std::vector<io::SliceHeader> headers, const std::vector<bool>& usable);

// Files that repeat an earlier usable file: the same SOP Instance UID in the
// same series at the same place (copies of the same image), which would
// otherwise look like extra time points.
std::vector<uint32_t> find_duplicate_instances(const std::vector<io::SliceHeader>& headers,
                                               const std::vector<bool>& usable);

// Geometry helpers (exposed for tests).
Vec3 cross(const Vec3& a, const Vec3& b);
double dot(const Vec3& a, const Vec3& b);
// Slice normal of an ImageOrientationPatient: row x column.
Vec3 slice_normal(const std::array<double, 6>& iop);
// Position of the first pixel of tile 0 of a Siemens mosaic, from the
// mosaic's ImagePositionPatient (which refers to the whole mosaic image).
Vec3 mosaic_tile_origin(const io::SliceHeader& h, int tile_rows, int tile_cols);

}  // namespace rapidnii::pipeline
