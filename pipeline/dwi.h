// Diffusion gradient tables (.bval/.bvec) in the FSL convention: one line
// of b-values; three lines of vector components in the NIfTI voxel frame of
// the written image, the x component negated when the affine's determinant
// is positive (as FSL and dcm2niix do). Numbers only, never DICOM text.
#pragma once
#include <string>

#include "pipeline/series.h"

namespace rapidnii::pipeline {

// `affine` is the voxel -> RAS affine of the written image (after --orient).
std::string bval_text(const SeriesPlan& p);
std::string bvec_text(const SeriesPlan& p, const Affine& affine);

// One gradient (patient frame, LPS) in the voxel frame of `affine` (FSL).
Vec3 gradient_to_voxel(const Vec3& lps, const Affine& affine);

}  // namespace rapidnii::pipeline
