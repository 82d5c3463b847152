// Writes a CT head phantom before and after defacing (remove and blur) as raw
// little-endian int16 volumes, for scripts/render_deface.py:
//   rapidnii_deface_demo OUT_DIR
// OUT_DIR/dims.txt ("nx ny nz" then the affine rows), before.raw, remove.raw,
// blur.raw, and report.txt (the defacer's status lines).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "kernels/deface.h"
#include "tests/head_phantom.h"

namespace k = rapidnii::kernels;
namespace ph = rapidnii::phantom;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  ph::Spec s;
  s.contrast = ph::Contrast::CT;
  s.voxel = {1, 1, 1};
  s.neck = true;
  s.rot_deg = {8, 0, 0};
  const ph::Phantom p = ph::make_phantom(s);
  const std::vector<int16_t> before = ph::to_stored<int16_t>(p.phys, 1, 0);
  auto write = [&](const std::string& name, const std::vector<int16_t>& v) {
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 2));
  };
  write("before.raw", before);
  std::ofstream rep(dir + "/report.txt");
  for (k::DefaceMode mode : {k::DefaceMode::Remove, k::DefaceMode::Blur}) {
    std::vector<int16_t> v = before;
    const auto r = k::deface<int16_t>(k::Device::Auto, std::span<int16_t>(v), p.dims, p.affine, 1,
                                      0, k::Contrast::CT, mode, 1);
    rep << k::deface_mode_name(mode) << ": " << r.status << ", " << r.voxels_changed
        << " voxels changed\n";
    write(std::string(k::deface_mode_name(mode)) + ".raw", v);
  }
  std::ofstream d(dir + "/dims.txt");
  d << p.dims[0] << ' ' << p.dims[1] << ' ' << p.dims[2] << '\n';
  for (const auto& row : p.affine) d << row[0] << ' ' << row[1] << ' ' << row[2] << ' ' << row[3] << '\n';
  return 0;
}
