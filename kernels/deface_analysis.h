// Internal: the coarse-grid analysis of the defacer (deface_analysis.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/deface.h"

namespace rapidnii::kernels::deface_detail {

// The downsampled volume (physical values) on the coarse grid.
struct Coarse {
  CoarseGrid grid;
  std::vector<float> mean, maxv;
  std::vector<uint8_t> inside;
};

// Fills m.cells, m.report (head_found, status, method), background, tissue,
// amplitude and landmarks from the coarse volume.
void analyse(const Coarse& c, Contrast contrast, DefaceMask& m);

// Blur field: inside the face region the flattened face (tissue where
// kCellTissue, background elsewhere), the coarse mean outside it; then a
// Gaussian of sigma 8 mm. Returns one float per cell.
std::vector<float> smooth_face(const Coarse& c, const DefaceMask& m);

// Squared exact Euclidean distance (in cells^2) from each cell to the nearest
// cell where object[i] == 0; kInf where there is none.
std::vector<int64_t> edt_sq(const std::vector<uint8_t>& object, const std::array<int64_t, 3>& dims);

}  // namespace rapidnii::kernels::deface_detail
