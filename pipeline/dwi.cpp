#include "pipeline/dwi.h"

#include <cmath>
#include <cstdio>

namespace rapidnii::pipeline {

namespace {

std::string number(double v) {
  if (std::abs(v) < 5e-7) v = 0;  // no "-0" or 1e-17 noise
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Vec3 gradient_to_voxel(const Vec3& lps, const Affine& a) {
  const Vec3 ras{-lps[0], -lps[1], lps[2]};
  Vec3 v{0, 0, 0};
  for (int c = 0; c < 3; ++c) {
    const Vec3 axis{a[0][c], a[1][c], a[2][c]};
    const double len = std::sqrt(dot(axis, axis));
    v[c] = len > 0 ? dot(ras, axis) / len : 0.0;
  }
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                     a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (det > 0) v[0] = -v[0];
  return v;
}

std::string bval_text(const SeriesPlan& p) {
  std::string s;
  for (size_t t = 0; t < p.bvals.size(); ++t) s += (t ? " " : "") + number(p.bvals[t]);
  return s + "\n";
}

std::string bvec_text(const SeriesPlan& p, const Affine& affine) {
  std::string rows[3];
  for (size_t t = 0; t < p.gradients.size(); ++t) {
    // b = 0: the vector is meaningless and kept as stored (dcm2niix does
    // the same); weighted volumes are projected on the voxel axes.
    const Vec3 v = p.bvals[t] > 0 ? gradient_to_voxel(p.gradients[t], affine) : p.gradients[t];
    for (int c = 0; c < 3; ++c) rows[c] += (t ? " " : "") + number(v[c]);
  }
  return rows[0] + "\n" + rows[1] + "\n" + rows[2] + "\n";
}

}  // namespace rapidnii::pipeline
