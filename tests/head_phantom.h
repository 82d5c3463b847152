// Synthetic phantoms for the defacing tests, the benchmark and the rendering
// script: analytic shapes in world millimetres with a label per voxel.
//
// Head (head frame: x right, y anterior, z superior, mm, origin near the
// head's centre): scalp and face soft tissue (a cranial ellipsoid with semi-
// axes 70x88x95 and a jaw/face ellipsoid), skull 7 mm with a skull base and a
// foramen magnum, CSF layer and ventricles, brain, eyeballs (r 11 mm) in
// orbital fat behind eyelids, a nose projecting ~27 mm with nostrils, lips
// with a mouth slit, ears, and optionally a neck running out of the field of
// view. Contrasts: CT (HU, noise 8 HU), MR T1 and T2 (bias field, Rician
// background). Non-head phantoms: an abdomen-like elliptic cylinder with a spine, a
// knee-like cylinder with bones, a uniform box filling the field of view, and
// a featureless ball.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/reorient.h"  // Affine

namespace rapidnii::phantom {

enum Label : uint8_t {
  kAir = 0,
  kTissue,
  kFat,
  kBone,
  kBrain,
  kCsf,
  kEye,
  kEyelid,
  kNose,
  kLips,
  kEar,
  kLabelCount
};

enum class Kind { Head, Abdomen, Knee, Box, Ball };
enum class Contrast { CT, MR, MR_T2 };  // MR: T1-weighted

struct Spec {
  Kind kind = Kind::Head;
  Contrast contrast = Contrast::CT;
  // Head rotation in the world (degrees): pitch about x (nose up > 0), roll
  // about y, yaw about z.
  std::array<double, 3> rot_deg{0, 0, 0};
  bool neck = true;
  std::array<double, 3> voxel{2, 2, 2};  // mm along stored axes 0, 1, 2
  // Stored axis j runs along world axis perm[j] with sign sign[j]:
  // axial {0,1,2}, coronal {0,2,1}, sagittal {1,2,0}; then the whole grid is
  // tilted by grid_tilt_deg about world x (oblique acquisition).
  std::array<int, 3> perm{0, 1, 2};
  std::array<int, 3> sign{1, 1, 1};
  double grid_tilt_deg = 0;
  double fov = 256;  // mm, side of the field-of-view cube (z: see with neck)
  double z_min = 0;  // when non-zero: the field of view starts at this world z (mm)
  std::array<int64_t, 3> dims{0, 0, 0};  // when set: exactly this grid, centred on the field of view
  uint64_t seed = 1;
};

struct Phantom {
  std::array<int64_t, 3> dims{0, 0, 0};
  rapidnii::kernels::Affine affine{};
  std::vector<float> phys;    // physical values (HU for CT)
  std::vector<uint8_t> label;
  std::vector<uint8_t> back;  // 1: head voxel more than 30 mm behind the head's centre
};

Phantom make_phantom(const Spec& s);

// The label of a point in the head frame (exposed for the rendering tool).
uint8_t head_label(double x, double y, double z, bool neck);

// Physical value -> stored value (round, clamp) for slope/intercept.
template <class T>
std::vector<T> to_stored(const std::vector<float>& phys, double slope, double inter);

}  // namespace rapidnii::phantom
