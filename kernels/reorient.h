// Reorientation: permute and flip voxel axes so that the stored order matches
// an orientation code (RAS, LAS, LPS), with the affine updated so that every
// voxel keeps its world position. nibabel's as_closest_canonical is the oracle
// for RAS: the same axis codes, affine and data.
//
// The index map is linear: output voxel (o0, o1, o2) of volume t reads input
//   base + o0*step[0] + o1*step[1] + o2*step[2] + t*n_vox
// with step[k] = +-stride_in[perm[k]] (negative when axis k is flipped) and
// base = sum over flipped k of (dims[perm[k]]-1)*stride_in[perm[k]].
// When output axis 0 runs along input lines, both executors copy whole lines
// (forwards or backwards). Otherwise the CPU executor moves 128x128 tiles
// through a per-thread buffer (whole runs read, whole runs written), and the
// CUDA executor runs a 32x32 shared-memory tiled transpose (coalesced reads
// and writes).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kernels/device.h"
#include "kernels/hd.h"

namespace rapidnii::kernels {

// voxel -> RAS mm, rows of a 3x4 matrix (NIfTI sform convention).
using Affine = std::array<std::array<double, 4>, 3>;

// Native: dcm2niix's default voxel order (its row flip; a 3D MR acquisition
// in the nearest orthogonal orientation, see plan_nearest_orthogonal);
// Acquired: the row flip only, never rotated (dcm2niix -x i).
enum class Orient { Native, Acquired, RAS, LAS, LPS };

// "native", "acquired", "RAS", "LAS", "LPS" (case-insensitive); anything else
// throws std::invalid_argument.
Orient parse_orient(std::string_view name);
const char* orient_name(Orient o);

// out axis k is input axis perm[k], reversed when flip[k].
// out_dims[k] = dims[perm[k]]; out_affine maps output voxels to the same world
// positions as the input affine maps the corresponding input voxels.
struct ReorientPlan {
  std::array<int, 3> perm{0, 1, 2};
  std::array<bool, 3> flip{false, false, false};
  std::array<int64_t, 3> out_dims{0, 0, 0};
  Affine out_affine{};
  bool identity() const {
    return perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && !flip[0] && !flip[1] && !flip[2];
  }
};

// Axis assignment as nibabel's io_orientation: the rotation part is made
// orthonormal (polar decomposition, i.e. U*V^T of its SVD, after dividing out
// the column norms); then, for input axes 0, 1, 2 in turn, the world axis with
// the largest |component| is taken and removed from the candidates.
// Throws std::invalid_argument for a singular affine or non-positive dims.
ReorientPlan plan_reorient(const Affine& a, std::array<int64_t, 3> dims, Orient target);

// The axes dcm2niix gives a 3D acquisition by default (its nii_setOrtho):
// none when the rotation part is already diagonal and positive; otherwise
// the flips put at voxel (0,0,0) the corner nearest to the per-coordinate
// minimum of the 8 corners' world positions (the left-posterior-inferior
// end), and the permutation sigma (input axis j -> output axis sigma(j)) is
// the one maximising sum_j flip_j * a[sigma(j)][j] (voxel sizes included),
// the first of the six in dcm2niix's order on a tie. For a volume that is
// not oblique this is RAS, as plan_reorient(RAS).
ReorientPlan plan_nearest_orthogonal(const Affine& a, std::array<int64_t, 3> dims);

// Axis codes of an affine ("RAS", "LPI", ...), as nibabel's aff2axcodes.
std::array<char, 3> axcodes(const Affine& a);

// Linear index map of a plan (see the top of this file).
struct ReorientMap {
  // Plain arrays: the map is also passed by value to CUDA kernels.
  int64_t out_dims[3];
  int64_t step[3];  // signed input stride per output axis
  int64_t base;     // input index of output voxel (0,0,0)
  int64_t n_vox;    // voxels per 3D volume

  RAPIDNII_HD int64_t in_index(int64_t o0, int64_t o1, int64_t o2) const {
    return base + o0 * step[0] + o1 * step[1] + o2 * step[2];
  }
};
ReorientMap make_reorient_map(std::array<int64_t, 3> dims, const ReorientPlan& p);

// Index math of the CUDA tiled transpose (exec_cuda.cu), host-callable so that
// the tests can run it without a GPU. Tile `tile` (of t0 x tq tiles of 32x32
// in the plane of output axes 0 and q) of outer index `outer` (= volume *
// out_dims[r] + position along the third axis r): in phase 1 thread (tx, j)
// reads element load(...) into tile[j][tx]; in phase 2 it writes tile[tx][j]
// to element store(...). -1: outside the volume. Gather reads the native
// input along its fastest axis (q) and writes the reoriented output along
// axis 0; scatter (reorient_back) the other way round. Both phases touch
// consecutive addresses for consecutive tx.
struct ReorientTileIndex {
  static constexpr int kTile = 32;
  ReorientMap m;
  int q, r;
  int64_t t0;
  bool scatter;

  RAPIDNII_HD int64_t index(int64_t tile, int64_t outer, int64_t u0, int64_t uq,
                            bool native) const {
    const int64_t o0 = (tile % t0) * kTile + u0, oq = (tile / t0) * kTile + uq;
    if (o0 >= m.out_dims[0] || oq >= m.out_dims[q]) return -1;
    int64_t o[3];
    o[0] = o0;
    o[q] = oq;
    o[r] = outer % m.out_dims[r];
    const int64_t off = (outer / m.out_dims[r]) * m.n_vox;
    return native ? off + m.in_index(o[0], o[1], o[2])
                  : off + o[0] + m.out_dims[0] * (o[1] + m.out_dims[1] * o[2]);
  }
  // Phase 1: gather reads native (tx along q); scatter reads reoriented (tx along 0).
  RAPIDNII_HD int64_t load(int64_t tile, int64_t outer, int tx, int j) const {
    return scatter ? index(tile, outer, tx, j, false) : index(tile, outer, j, tx, true);
  }
  // Phase 2: gather writes reoriented (tx along 0); scatter writes native (tx along q).
  RAPIDNII_HD int64_t store(int64_t tile, int64_t outer, int tx, int j) const {
    return scatter ? index(tile, outer, j, tx, true) : index(tile, outer, tx, j, false);
  }
};

// out = the input volumes reoriented by the plan. in and out hold nt volumes of
// dims[0]*dims[1]*dims[2] voxels (x fastest) and must not overlap.
// Instantiated for uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float.
template <class T>
void reorient(Device d, std::span<const T> in, std::span<T> out, std::array<int64_t, 3> dims,
              int64_t nt, const ReorientPlan& p);

// The inverse: scatter a reoriented volume back to the input grid
// (out_native[map(o)] = in_reoriented[o]); used for masks.
template <class T>
void reorient_back(Device d, std::span<const T> in_reoriented, std::span<T> out_native,
                   std::array<int64_t, 3> dims, int64_t nt, const ReorientPlan& p);

}  // namespace rapidnii::kernels
