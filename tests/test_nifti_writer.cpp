// Tests for io/gzip.* and io/nifti_writer.*: header layout, quaternion
// round trips, gzip framing, and end-to-end writes read back by nibabel.
#include "io/gzip.h"
#include "io/nifti_writer.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <libdeflate.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace rapidnii::io;

namespace {

using Mat3 = std::array<std::array<double, 3>, 3>;
using Affine = std::array<std::array<double, 4>, 3>;
constexpr double kPi = 3.14159265358979323846;

// ---------------------------------------------------------------- helpers --

template <class U>
U load_le(const std::vector<std::byte>& b, size_t off) {
  U u = 0;
  for (size_t i = 0; i < sizeof(U); ++i) u |= static_cast<U>(std::to_integer<uint8_t>(b.at(off + i))) << (8 * i);
  return u;
}
int16_t rd_i16(const std::vector<std::byte>& b, size_t off) { return static_cast<int16_t>(load_le<uint16_t>(b, off)); }
int32_t rd_i32(const std::vector<std::byte>& b, size_t off) { return static_cast<int32_t>(load_le<uint32_t>(b, off)); }
int64_t rd_i64(const std::vector<std::byte>& b, size_t off) { return static_cast<int64_t>(load_le<uint64_t>(b, off)); }
float rd_f32(const std::vector<std::byte>& b, size_t off) { return std::bit_cast<float>(load_le<uint32_t>(b, off)); }
double rd_f64(const std::vector<std::byte>& b, size_t off) { return std::bit_cast<double>(load_le<uint64_t>(b, off)); }
std::string rd_str(const std::vector<std::byte>& b, size_t off, size_t n) {
  std::string s(n, '\0');
  std::memcpy(s.data(), b.data() + off, n);
  return s;
}
bool all_zero(const std::vector<std::byte>& b, size_t off, size_t n) {
  for (size_t i = off; i < off + n; ++i)
    if (b.at(i) != std::byte{0}) return false;
  return true;
}

Mat3 mul(const Mat3& a, const Mat3& b) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) c[i][j] += a[i][k] * b[k][j];
  return c;
}
Mat3 rot_x(double t) { return {{{1, 0, 0}, {0, std::cos(t), -std::sin(t)}, {0, std::sin(t), std::cos(t)}}}; }
Mat3 rot_y(double t) { return {{{std::cos(t), 0, std::sin(t)}, {0, 1, 0}, {-std::sin(t), 0, std::cos(t)}}}; }
Mat3 rot_z(double t) { return {{{std::cos(t), -std::sin(t), 0}, {std::sin(t), std::cos(t), 0}, {0, 0, 1}}}; }
Mat3 diag(double a, double b, double c) { return {{{a, 0, 0}, {0, b, 0}, {0, 0, c}}}; }
// Rotation by angle t about the (normalised) axis u (Rodrigues).
Mat3 rot_axis(std::array<double, 3> u, double t) {
  const double n = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
  for (auto& x : u) x /= n;
  const double c = std::cos(t), s = std::sin(t), C = 1 - c;
  return {{{c + u[0] * u[0] * C, u[0] * u[1] * C - u[2] * s, u[0] * u[2] * C + u[1] * s},
           {u[1] * u[0] * C + u[2] * s, c + u[1] * u[1] * C, u[1] * u[2] * C - u[0] * s},
           {u[2] * u[0] * C - u[1] * s, u[2] * u[1] * C + u[0] * s, c + u[2] * u[2] * C}}};
}

// The NIfTI qform rotation rebuilt from (b, c, d, qfac), with the third
// column multiplied by qfac (the reader's side of the spec).
Mat3 matrix_from_quaternion(double b, double c, double d, double qfac) {
  double a = 1.0 - (b * b + c * c + d * d);
  a = a > 0.0 ? std::sqrt(a) : 0.0;
  Mat3 r{{{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
          {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
          {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}}};
  for (int i = 0; i < 3; ++i) r[i][2] *= qfac;
  return r;
}

Mat3 normalised_columns(Mat3 m) {
  for (int j = 0; j < 3; ++j) {
    const double n = std::sqrt(m[0][j] * m[0][j] + m[1][j] * m[1][j] + m[2][j] * m[2][j]);
    for (int i = 0; i < 3; ++i) m[i][j] /= n;
  }
  return m;
}

Affine make_affine(const Mat3& rot, std::array<double, 3> vox, std::array<double, 3> t) {
  Affine a{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) a[i][j] = rot[i][j] * vox[j];
    a[i][3] = t[i];
  }
  return a;
}

NiftiVolume basic_volume() {
  NiftiVolume v;
  v.ndim = 3;
  v.dim = {7, 5, 3, 1, 1, 1, 1};
  v.datatype = NiftiType::Int16;
  v.affine = make_affine(mul(rot_z(0.3), rot_x(-0.2)), {0.9, 1.1, 2.5}, {-100.25, 20.5, 33.0});
  return v;
}

std::vector<std::byte> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    // Mix of runs and noise so the data compresses somewhat but not trivially.
    out[i] = static_cast<std::byte>((i / 7) % 3 == 0 ? (i & 0xff) : (x >> 24));
  }
  return out;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& gz, size_t expected_size) {
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  std::vector<uint8_t> out(expected_size + 16);
  size_t actual = 0;
  const auto r = libdeflate_gzip_decompress(d, gz.data(), gz.size(), out.data(), out.size(), &actual);
  libdeflate_free_decompressor(d);
  if (r != LIBDEFLATE_SUCCESS) throw std::runtime_error("gzip decompression failed: " + std::to_string(r));
  out.resize(actual);
  return out;
}

std::vector<uint8_t> gzip_parts(const std::vector<std::vector<std::byte>>& parts, int level = 6) {
  std::vector<std::span<const std::byte>> spans(parts.begin(), parts.end());
  return gzip_compress(spans, level);
}

std::vector<uint8_t> concat_u8(const std::vector<std::vector<std::byte>>& parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts)
    for (auto b : p) out.push_back(std::to_integer<uint8_t>(b));
  return out;
}

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

using rapidnii::testdata::TempDir;

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool any_temp_file(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

// ---------------------------------------------------------------- nibabel --

bool nibabel_available() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import nibabel, numpy' >/dev/null 2>&1") == 0;
  return ok;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string fmt17(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

constexpr const char* kNibabelCheck = R"PY(
import sys
import numpy as np
import nibabel as nb
path, cls, shape, dtype, aff, raw, qcode, scode, descrip, zooms = sys.argv[1:11]
shape = tuple(int(x) for x in shape.split(','))
dtype = np.dtype(dtype)
aff = np.array([float(x) for x in aff.split(',')]).reshape(3, 4)
zooms = [float(x) for x in zooms.split(',')]
errs = []
img = nb.load(path)
hdr = img.header
if type(img).__name__ != cls:
    errs.append('class %s != %s' % (type(img).__name__, cls))
if img.shape != shape:
    errs.append('shape %s != %s' % (img.shape, shape))
if img.get_data_dtype() != dtype:
    errs.append('dtype %s != %s' % (img.get_data_dtype(), dtype))
sform, sc = hdr.get_sform(coded=True)
qform, qc = hdr.get_qform(coded=True)
if int(sc) != int(scode) or int(qc) != int(qcode):
    errs.append('codes q=%s s=%s' % (qc, sc))
if sform is None or not np.allclose(sform[:3], aff, atol=1e-4):
    errs.append('sform %s' % sform)
if qform is None or not np.allclose(qform[:3], aff, atol=1e-4):
    errs.append('qform %s' % qform)
if not np.allclose(img.affine[:3], aff, atol=1e-4):
    errs.append('affine %s' % img.affine)
if not np.allclose(hdr.get_zooms(), zooms, atol=1e-5):
    errs.append('zooms %s != %s' % (hdr.get_zooms(), zooms))
if hdr['descrip'].item().decode() != descrip:
    errs.append('descrip %r' % hdr['descrip'].item())
if img.dataobj.offset != (352 if cls == 'Nifti1Image' else 544):
    errs.append('data offset %s' % img.dataobj.offset)
with open(path, 'rb') as f:
    import gzip
    ungz = gzip.decompress(f.read())
disk = (nb.Nifti1Header if cls == 'Nifti1Image' else nb.Nifti2Header).from_fileobj(__import__('io').BytesIO(ungz))
if int(disk['vox_offset']) != (352 if cls == 'Nifti1Image' else 544):
    errs.append('vox_offset %s' % disk['vox_offset'])
if float(disk['pixdim'][0]) not in (1.0, -1.0):
    errs.append('qfac %s' % disk['pixdim'][0])
data = np.asanyarray(img.dataobj.get_unscaled())
expected = np.fromfile(raw, dtype=dtype).reshape(shape, order='F')
if data.dtype != dtype or not np.array_equal(data, expected):
    errs.append('voxel values differ')
print('\n'.join(errs))
sys.exit(1 if errs else 0)
)PY";

struct PyResult {
  int rc;
  std::string output;
};

// Runs the nibabel check on `nii`; the expected voxels are written to a file
// in `scratch` (a directory other than the one being checked for leftovers).
PyResult nibabel_check(const fs::path& nii, const fs::path& scratch, const NiftiVolume& v, const std::string& cls,
                       const std::string& dtype) {
  const fs::path script = scratch / "check.py";
  const fs::path raw = scratch / "expected.raw";
  const fs::path out = scratch / "check.out";
  {
    std::ofstream(script) << kNibabelCheck;
    std::ofstream r(raw, std::ios::binary);
    r.write(reinterpret_cast<const char*>(v.voxels.data()), static_cast<std::streamsize>(v.voxels.size()));
  }
  std::string shape, aff, zooms;
  for (int i = 0; i < v.ndim; ++i) shape += (i ? "," : "") + std::to_string(v.dim[i]);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) aff += (aff.empty() ? "" : ",") + fmt17(v.affine[r][c]);
  for (int i = 0; i < v.ndim; ++i) {
    double z = v.pixdim[i];
    if (i < 3) z = std::sqrt(v.affine[0][i] * v.affine[0][i] + v.affine[1][i] * v.affine[1][i] +
                             v.affine[2][i] * v.affine[2][i]);
    zooms += (i ? "," : "") + fmt17(z);
  }
  const std::string cmd = "/usr/bin/python3 " + shell_quote(script.string()) + " " + shell_quote(nii.string()) + " " +
                          cls + " " + shape + " " + shell_quote(dtype) + " " + aff + " " + shell_quote(raw.string()) + " " +
                          std::to_string(v.qform_code) + " " + std::to_string(v.sform_code) + " " +
                          shell_quote(v.descrip) + " " + zooms + " > " + shell_quote(out.string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  return {rc, ss.str()};
}

// NIfTI-1 offsets used by the layout tests (from nifti1.h).
constexpr size_t N1_DIM = 40, N1_DATATYPE = 70, N1_BITPIX = 72, N1_PIXDIM = 76, N1_VOXOFF = 108,
                 N1_SLOPE = 112, N1_INTER = 116, N1_SLICE_END = 120, N1_SLICE_CODE = 122, N1_XYZT = 123,
                 N1_CALMAX = 124, N1_CALMIN = 128, N1_SLICE_DUR = 132, N1_DESCRIP = 148, N1_AUX = 228,
                 N1_QCODE = 252, N1_SCODE = 254, N1_QUATB = 256, N1_QOFFX = 268, N1_SROWX = 280,
                 N1_INTENT_NAME = 328, N1_MAGIC = 344;
// NIfTI-2 offsets (from nifti2.h).
constexpr size_t N2_MAGIC = 4, N2_DATATYPE = 12, N2_BITPIX = 14, N2_DIM = 16, N2_PIXDIM = 104, N2_VOXOFF = 168,
                 N2_SLOPE = 176, N2_INTER = 184, N2_SLICE_DUR = 208, N2_SLICE_START = 224, N2_SLICE_END = 232,
                 N2_DESCRIP = 240, N2_AUX = 320, N2_QCODE = 344, N2_SCODE = 348, N2_QUATB = 352,
                 N2_QOFFX = 376, N2_SROWX = 400, N2_SLICE_CODE = 496, N2_XYZT = 500, N2_INTENT_CODE = 504,
                 N2_INTENT_NAME = 508, N2_DIM_INFO = 524, N2_UNUSED = 525;

}  // namespace

// ================================================================ header ==

TEST(NiftiHeader, Nifti1Layout) {
  NiftiVolume v = basic_volume();
  v.scl_slope = 2.5;
  v.scl_inter = -3.0;
  v.slice_start = 1;
  v.slice_end = 2;
  v.slice_code = 3;
  v.slice_duration = 0.0625;
  v.dim_info = 0x39;
  v.qform_code = 1;
  v.sform_code = 2;
  v.descrip = "hello";
  const auto h = make_nifti_header(v, false);
  ASSERT_EQ(h.size(), 352u);
  EXPECT_EQ(rd_i32(h, 0), 348);
  EXPECT_EQ(rd_str(h, N1_MAGIC, 4), std::string("n+1\0", 4));
  EXPECT_EQ(rd_f32(h, N1_VOXOFF), 352.0f);
  EXPECT_TRUE(all_zero(h, 348, 4)) << "extension bytes";
  EXPECT_EQ(std::to_integer<int>(h[39]), 0x39) << "dim_info";
  const int16_t dims[8] = {3, 7, 5, 3, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rd_i16(h, N1_DIM + 2 * i), dims[i]) << i;
  EXPECT_EQ(rd_i16(h, N1_DATATYPE), 4);
  EXPECT_EQ(rd_i16(h, N1_BITPIX), 16);
  EXPECT_EQ(rd_i16(h, 74), 1) << "slice_start";
  EXPECT_EQ(rd_i16(h, N1_SLICE_END), 2);
  EXPECT_EQ(std::to_integer<int>(h[N1_SLICE_CODE]), 3);
  EXPECT_EQ(std::to_integer<int>(h[N1_XYZT]), 10);
  EXPECT_EQ(rd_f32(h, N1_SLICE_DUR), 0.0625f);
  EXPECT_EQ(rd_f32(h, N1_SLOPE), 2.5f);
  EXPECT_EQ(rd_f32(h, N1_INTER), -3.0f);
  EXPECT_EQ(rd_f32(h, N1_CALMAX), 0.0f);
  EXPECT_EQ(rd_f32(h, N1_CALMIN), 0.0f);
  EXPECT_EQ(rd_i16(h, N1_QCODE), 1);
  EXPECT_EQ(rd_i16(h, N1_SCODE), 2);
  EXPECT_EQ(rd_f32(h, N1_PIXDIM), 1.0f) << "qfac of a proper rotation";
  EXPECT_NEAR(rd_f32(h, N1_PIXDIM + 4), 0.9, 1e-6);
  EXPECT_NEAR(rd_f32(h, N1_PIXDIM + 8), 1.1, 1e-6);
  EXPECT_NEAR(rd_f32(h, N1_PIXDIM + 12), 2.5, 1e-6);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(rd_f32(h, N1_QOFFX + 4 * r), static_cast<float>(v.affine[r][3]));
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(rd_f32(h, N1_SROWX + 16 * r + 4 * c), static_cast<float>(v.affine[r][c])) << r << "," << c;
  }
  const auto q = quaternion_from_matrix({{{v.affine[0][0], v.affine[0][1], v.affine[0][2]},
                                          {v.affine[1][0], v.affine[1][1], v.affine[1][2]},
                                          {v.affine[2][0], v.affine[2][1], v.affine[2][2]}}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rd_f32(h, N1_QUATB + 4 * i), static_cast<float>(q[i]));
  EXPECT_EQ(rd_str(h, N1_DESCRIP, 6), std::string("hello\0", 6));
}

TEST(NiftiHeader, Nifti2Layout) {
  NiftiVolume v = basic_volume();
  v.ndim = 4;
  v.dim = {40000, 3, 2, 5, 1, 1, 1};
  v.pixdim[3] = 2.25;  // TR
  v.datatype = NiftiType::Float32;
  v.slice_start = 3;
  v.slice_end = 40;
  v.slice_code = 5;
  v.slice_duration = 0.125;
  v.dim_info = 0x21;
  v.qform_code = 1;
  v.sform_code = 4;
  v.scl_slope = 0.5;
  v.scl_inter = 7.0;
  ASSERT_TRUE(needs_nifti2(v));
  const auto h = make_nifti_header(v, true);
  ASSERT_EQ(h.size(), 544u);
  EXPECT_EQ(rd_i32(h, 0), 540);
  EXPECT_EQ(rd_str(h, N2_MAGIC, 8), std::string("n+2\0\r\n\032\n", 8));
  EXPECT_EQ(rd_i64(h, N2_VOXOFF), 544);
  EXPECT_TRUE(all_zero(h, 540, 4)) << "extension bytes";
  EXPECT_EQ(rd_i16(h, N2_DATATYPE), 16);
  EXPECT_EQ(rd_i16(h, N2_BITPIX), 32);
  const int64_t dims[8] = {4, 40000, 3, 2, 5, 1, 1, 1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rd_i64(h, N2_DIM + 8 * i), dims[i]) << i;
  EXPECT_EQ(rd_f64(h, N2_PIXDIM), 1.0);
  EXPECT_NEAR(rd_f64(h, N2_PIXDIM + 8), 0.9, 1e-12);
  EXPECT_NEAR(rd_f64(h, N2_PIXDIM + 16), 1.1, 1e-12);
  EXPECT_NEAR(rd_f64(h, N2_PIXDIM + 24), 2.5, 1e-12);
  EXPECT_EQ(rd_f64(h, N2_PIXDIM + 32), 2.25);
  EXPECT_EQ(rd_f64(h, N2_SLOPE), 0.5);
  EXPECT_EQ(rd_f64(h, N2_INTER), 7.0);
  EXPECT_EQ(rd_f64(h, N2_SLICE_DUR), 0.125);
  EXPECT_EQ(rd_i64(h, N2_SLICE_START), 3);
  EXPECT_EQ(rd_i64(h, N2_SLICE_END), 40);
  EXPECT_EQ(rd_i32(h, N2_SLICE_CODE), 5);
  EXPECT_EQ(rd_i32(h, N2_XYZT), 10);
  EXPECT_EQ(rd_i32(h, N2_INTENT_CODE), 0);
  EXPECT_EQ(std::to_integer<int>(h[N2_DIM_INFO]), 0x21);
  EXPECT_EQ(rd_i32(h, N2_QCODE), 1);
  EXPECT_EQ(rd_i32(h, N2_SCODE), 4);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(rd_f64(h, N2_QOFFX + 8 * r), v.affine[r][3]);
    for (int c = 0; c < 4; ++c) EXPECT_EQ(rd_f64(h, N2_SROWX + 32 * r + 8 * c), v.affine[r][c]) << r << "," << c;
  }
  // Quaternion in the header rebuilds the direction matrix.
  const Mat3 rq = matrix_from_quaternion(rd_f64(h, N2_QUATB), rd_f64(h, N2_QUATB + 8), rd_f64(h, N2_QUATB + 16),
                                         rd_f64(h, N2_PIXDIM));
  const Mat3 expected = normalised_columns({{{v.affine[0][0], v.affine[0][1], v.affine[0][2]},
                                             {v.affine[1][0], v.affine[1][1], v.affine[1][2]},
                                             {v.affine[2][0], v.affine[2][1], v.affine[2][2]}}});
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(rq[i][j], expected[i][j], 1e-9);
}

TEST(NiftiHeader, DescripTruncatedTo79AndNulPadded) {
  NiftiVolume v = basic_volume();
  v.descrip = std::string(100, 'x');
  for (bool n2 : {false, true}) {
    const auto h = make_nifti_header(v, n2);
    const size_t off = n2 ? N2_DESCRIP : N1_DESCRIP;
    EXPECT_EQ(rd_str(h, off, 79), std::string(79, 'x'));
    EXPECT_EQ(h[off + 79], std::byte{0}) << "descrip must stay NUL terminated";
  }
  v.descrip = "abc";
  for (bool n2 : {false, true}) {
    const auto h = make_nifti_header(v, n2);
    const size_t off = n2 ? N2_DESCRIP : N1_DESCRIP;
    EXPECT_EQ(rd_str(h, off, 3), "abc");
    EXPECT_TRUE(all_zero(h, off + 3, 77));
  }
  v.descrip = std::string(79, 'y');  // exactly fits
  const auto h = make_nifti_header(v, false);
  EXPECT_EQ(rd_str(h, N1_DESCRIP, 79), std::string(79, 'y'));
  EXPECT_EQ(h[N1_DESCRIP + 79], std::byte{0});
}

TEST(NiftiHeader, UnusedFieldsAreZero) {
  NiftiVolume v = basic_volume();
  v.descrip = std::string(200, 'z');  // must not spill into aux_file
  const auto h1 = make_nifti_header(v, false);
  EXPECT_TRUE(all_zero(h1, 4, 10)) << "data_type";
  EXPECT_TRUE(all_zero(h1, 14, 18)) << "db_name";
  EXPECT_TRUE(all_zero(h1, 32, 7)) << "extents, session_error, regular";
  EXPECT_TRUE(all_zero(h1, 56, 14)) << "intent_p1..3, intent_code";
  EXPECT_TRUE(all_zero(h1, 136, 12)) << "toffset, glmax, glmin";
  EXPECT_TRUE(all_zero(h1, N1_AUX, 24)) << "aux_file";
  EXPECT_TRUE(all_zero(h1, N1_INTENT_NAME, 16)) << "intent_name";
  EXPECT_TRUE(all_zero(h1, 348, 4)) << "extension";

  const auto h2 = make_nifti_header(v, true);
  EXPECT_TRUE(all_zero(h2, 80, 24)) << "intent_p1..3";
  EXPECT_TRUE(all_zero(h2, 192, 16)) << "cal_max, cal_min";
  EXPECT_TRUE(all_zero(h2, 216, 8)) << "toffset";
  EXPECT_TRUE(all_zero(h2, N2_AUX, 24)) << "aux_file";
  EXPECT_TRUE(all_zero(h2, N2_INTENT_CODE, 4)) << "intent_code";
  EXPECT_TRUE(all_zero(h2, N2_INTENT_NAME, 16)) << "intent_name";
  EXPECT_TRUE(all_zero(h2, N2_UNUSED, 15)) << "unused_str";
  EXPECT_TRUE(all_zero(h2, 540, 4)) << "extension";
}

TEST(NiftiHeader, PixdimFromAffineColumnsNotFromInput) {
  NiftiVolume v = basic_volume();
  v.ndim = 4;
  v.dim = {4, 4, 4, 6, 1, 1, 1};
  v.pixdim = {99, 99, 99, 1.5, 0, 0, 0};  // [0..2] must be ignored
  v.affine = make_affine(mul(rot_y(0.4), rot_z(1.2)), {0.5, 0.75, 3.0}, {1, 2, 3});
  for (bool n2 : {false, true}) {
    const auto h = make_nifti_header(v, n2);
    auto pd = [&](int i) { return n2 ? rd_f64(h, N2_PIXDIM + 8 * i) : rd_f32(h, N1_PIXDIM + 4 * i); };
    EXPECT_NEAR(pd(1), 0.5, 1e-6);
    EXPECT_NEAR(pd(2), 0.75, 1e-6);
    EXPECT_NEAR(pd(3), 3.0, 1e-6);
    EXPECT_NEAR(pd(4), 1.5, 1e-6);
  }
  // A left-handed affine (the usual case for DICOM LPS -> RAS) gives qfac -1.
  v.affine = make_affine(diag(-1, 1, 1), {0.5, 0.75, 3.0}, {1, 2, 3});
  const auto h = make_nifti_header(v, false);
  EXPECT_EQ(rd_f32(h, N1_PIXDIM), -1.0f);
  EXPECT_NEAR(rd_f32(h, N1_PIXDIM + 4), 0.5, 1e-6);
}

TEST(NiftiHeader, DimsBeyondNdimAreOne) {
  NiftiVolume v = basic_volume();
  v.ndim = 2;
  v.dim = {10, 20, 99, 99, 99, 99, 99};
  const auto h = make_nifti_header(v, false);
  EXPECT_EQ(rd_i16(h, N1_DIM), 2);
  EXPECT_EQ(rd_i16(h, N1_DIM + 2), 10);
  EXPECT_EQ(rd_i16(h, N1_DIM + 4), 20);
  for (int i = 3; i < 8; ++i) EXPECT_EQ(rd_i16(h, N1_DIM + 2 * i), 1) << i;
  EXPECT_FALSE(needs_nifti2(v));
  v.dim[2] = 40000;  // beyond ndim: irrelevant
  EXPECT_FALSE(needs_nifti2(v));
}

TEST(NiftiHeader, Nifti2Selection) {
  NiftiVolume v = basic_volume();
  v.dim = {32767, 1, 1, 1, 1, 1, 1};
  EXPECT_FALSE(needs_nifti2(v));
  v.dim = {1, 32768, 1, 1, 1, 1, 1};
  EXPECT_TRUE(needs_nifti2(v));
  EXPECT_THROW(make_nifti_header(v, false), std::invalid_argument);
  EXPECT_NO_THROW(make_nifti_header(v, true));
  v.ndim = 5;
  v.dim = {2, 2, 2, 2, 70000, 1, 1};
  EXPECT_TRUE(needs_nifti2(v));
  v.ndim = 0;
  EXPECT_THROW(make_nifti_header(v, true), std::invalid_argument);
}

TEST(NiftiTypes, BytesPerVoxelAndBitpix) {
  struct Case {
    NiftiType t;
    int bytes, bitpix;
  };
  const Case cases[] = {{NiftiType::UInt8, 1, 8},     {NiftiType::Int8, 1, 8},      {NiftiType::Int16, 2, 16},
                        {NiftiType::UInt16, 2, 16},   {NiftiType::Int32, 4, 32},    {NiftiType::UInt32, 4, 32},
                        {NiftiType::Float32, 4, 32},  {NiftiType::Float64, 8, 64},  {NiftiType::RGB24, 3, 24}};
  for (const auto& c : cases) {
    EXPECT_EQ(nifti_bytes_per_voxel(c.t), c.bytes) << static_cast<int>(c.t);
    NiftiVolume v = basic_volume();
    v.datatype = c.t;
    const auto h1 = make_nifti_header(v, false);
    EXPECT_EQ(rd_i16(h1, N1_DATATYPE), static_cast<int16_t>(c.t));
    EXPECT_EQ(rd_i16(h1, N1_BITPIX), c.bitpix);
    const auto h2 = make_nifti_header(v, true);
    EXPECT_EQ(rd_i16(h2, N2_DATATYPE), static_cast<int16_t>(c.t));
    EXPECT_EQ(rd_i16(h2, N2_BITPIX), c.bitpix);
  }
}

// ============================================================ quaternion ==

namespace {
void expect_quaternion_round_trip(const Mat3& m, const std::string& name) {
  const auto q = quaternion_from_matrix(m);
  for (double x : q) ASSERT_TRUE(std::isfinite(x)) << name;
  const double bcd2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2];
  EXPECT_LE(bcd2, 1.0 + 1e-12) << name << ": (b,c,d) must define a real a >= 0";
  EXPECT_TRUE(q[3] == 1.0 || q[3] == -1.0) << name;
  const Mat3 r = matrix_from_quaternion(q[0], q[1], q[2], q[3]);
  const Mat3 expected = normalised_columns(m);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(r[i][j], expected[i][j], 1e-6) << name << " [" << i << "][" << j << "]";
}
}  // namespace

TEST(Quaternion, RoundTripSpecialAndObliqueMatrices) {
  const double d90 = kPi / 2;
  const std::vector<std::pair<std::string, Mat3>> cases = {
      {"identity", diag(1, 1, 1)},
      {"flip x (det -1)", diag(-1, 1, 1)},
      {"flip y (det -1)", diag(1, -1, 1)},
      {"flip z (det -1)", diag(1, 1, -1)},
      {"flip xyz (det -1)", diag(-1, -1, -1)},
      {"LPS->RAS 180deg about z (a=0)", diag(-1, -1, 1)},
      {"180deg about x (a=0)", diag(1, -1, -1)},
      {"180deg about y (a=0)", diag(-1, 1, -1)},
      {"90deg about x", rot_x(d90)},
      {"90deg about y", rot_y(d90)},
      {"-90deg about z", rot_z(-d90)},
      {"sagittal-like permutation", {{{0, 0, -1}, {1, 0, 0}, {0, -1, 0}}}},
      {"coronal-like permutation det -1", {{{1, 0, 0}, {0, 0, 1}, {0, -1, 0}}}},
      {"oblique", mul(rot_z(0.5), mul(rot_y(-0.35), rot_x(0.2)))},
      {"oblique with flip", mul(mul(rot_z(0.5), rot_x(0.7)), diag(1, -1, 1))},
      {"180deg about oblique axis (a=0)", rot_axis({1, 2, 3}, kPi)},
      {"180deg about oblique axis 2 (a=0)", rot_axis({-0.3, 0.1, 0.9}, kPi)},
      {"nearly 180deg (a~0)", rot_axis({0.2, -1, 0.4}, kPi - 1e-7)},
      {"nearly 180deg with flip", mul(rot_axis({1, 1, 0}, kPi - 1e-9), diag(1, 1, -1))},
      {"scaled columns", mul(rot_axis({1, -2, 0.5}, 2.0), diag(0.5, 2.0, 3.3))},
      {"scaled, flipped LPS", mul(diag(-1, -1, 1), diag(0.9375, 0.9375, 4.0))},
  };
  for (const auto& [name, m] : cases) expect_quaternion_round_trip(m, name);
}

TEST(Quaternion, RoundTripManyRotations) {
  uint32_t x = 42;
  auto rnd = [&] {
    x = x * 1664525u + 1013904223u;
    return (x >> 8) / double(1u << 24);
  };
  for (int n = 0; n < 2000; ++n) {
    const std::array<double, 3> axis{rnd() - 0.5, rnd() - 0.5, rnd() - 0.5};
    // Include a dense set of angles close to pi.
    const double angle = (n % 2) ? rnd() * 2 * kPi : kPi - 1e-3 * rnd();
    Mat3 m = rot_axis(axis, angle);
    if (n % 3 == 0) m = mul(m, diag(1, 1, -1));
    if (n % 5 == 0) m = mul(m, diag(0.5 + rnd(), 0.5 + rnd(), 1 + 4 * rnd()));
    expect_quaternion_round_trip(m, "random #" + std::to_string(n));
    if (HasFailure()) break;
  }
}

TEST(Quaternion, KnownValues) {
  auto q = quaternion_from_matrix(rot_z(kPi / 2));
  EXPECT_NEAR(q[0], 0.0, 1e-12);
  EXPECT_NEAR(q[1], 0.0, 1e-12);
  EXPECT_NEAR(q[2], std::sqrt(0.5), 1e-12);
  EXPECT_EQ(q[3], 1.0);
  q = quaternion_from_matrix(diag(-1, -1, 1));  // 180 deg about z: a = 0, d = +-1
  EXPECT_NEAR(q[0], 0.0, 1e-12);
  EXPECT_NEAR(q[1], 0.0, 1e-12);
  EXPECT_NEAR(std::fabs(q[2]), 1.0, 1e-12);
  EXPECT_EQ(q[3], 1.0);
  q = quaternion_from_matrix(diag(2, 3, -4));  // identity rotation with qfac -1
  EXPECT_NEAR(q[0], 0.0, 1e-12);
  EXPECT_NEAR(q[1], 0.0, 1e-12);
  EXPECT_NEAR(q[2], 0.0, 1e-12);
  EXPECT_EQ(q[3], -1.0);
}

TEST(Quaternion, NearlyOrthogonalInputIsOrthogonalised) {
  // Slightly non-orthogonal columns, as from rounded DICOM direction cosines.
  Mat3 m = mul(rot_z(0.3), rot_x(0.1));
  m[0][1] += 2e-6;
  m[2][0] -= 1e-6;
  const auto q = quaternion_from_matrix(m);
  const Mat3 r = matrix_from_quaternion(q[0], q[1], q[2], q[3]);
  const Mat3 e = normalised_columns(m);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(r[i][j], e[i][j], 1e-5);
}

TEST(Quaternion, DegenerateInputStaysFinite) {
  for (const Mat3& m : {Mat3{}, Mat3{{{1, 0, 0}, {1, 0, 0}, {0, 0, 1}}},
                        Mat3{{{NAN, 0, 0}, {0, 1, 0}, {0, 0, 1}}}}) {
    const auto q = quaternion_from_matrix(m);
    for (double x : q) EXPECT_TRUE(std::isfinite(x));
    EXPECT_TRUE(q[3] == 1.0 || q[3] == -1.0);
  }
}

// ================================================================== gzip ==

TEST(Gzip, HeaderAndTrailerBytes) {
  const std::vector<std::vector<std::byte>> parts = {pattern_bytes(1000, 1)};
  const auto gz = gzip_parts(parts);
  ASSERT_GE(gz.size(), 18u);
  const uint8_t expected_header[10] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(gz[i], expected_header[i]) << "header byte " << i;
  EXPECT_EQ(gz[3] & 0x08, 0) << "FNAME flag must not be set";
  const auto raw = concat_u8(parts);
  const uint32_t crc = libdeflate_crc32(0, raw.data(), raw.size());
  const size_t t = gz.size() - 8;
  const uint32_t got_crc = gz[t] | (gz[t + 1] << 8) | (gz[t + 2] << 16) | (uint32_t(gz[t + 3]) << 24);
  const uint32_t got_size = gz[t + 4] | (gz[t + 5] << 8) | (gz[t + 6] << 16) | (uint32_t(gz[t + 7]) << 24);
  EXPECT_EQ(got_crc, crc);
  EXPECT_EQ(got_size, 1000u);
}

TEST(Gzip, RoundTripSinglePart) {
  for (int level : {0, 1, 6, 12}) {
    const std::vector<std::vector<std::byte>> parts = {pattern_bytes(200000, 7)};
    const auto gz = gzip_parts(parts, level);
    EXPECT_EQ(gunzip(gz, 200000), concat_u8(parts)) << "level " << level;
  }
}

TEST(Gzip, RoundTripEmpty) {
  EXPECT_TRUE(gunzip(gzip_compress({}, 6), 0).empty());
  const std::vector<std::vector<std::byte>> parts = {{}, {}};
  EXPECT_TRUE(gunzip(gzip_parts(parts), 0).empty());
}

TEST(Gzip, RoundTripMultipleSmallParts) {
  const std::vector<std::vector<std::byte>> parts = {pattern_bytes(352, 1), {}, pattern_bytes(5000, 2),
                                                     pattern_bytes(1, 3), pattern_bytes(70000, 4)};
  const auto expected = concat_u8(parts);
  EXPECT_EQ(gunzip(gzip_parts(parts), expected.size()), expected);
}

TEST(Gzip, RoundTripHeaderPlusLargeBody) {
  // Small header in front of a large body (the NIfTI case).
  const std::vector<std::vector<std::byte>> parts = {pattern_bytes(352, 5), pattern_bytes(3 << 20, 6)};
  const auto expected = concat_u8(parts);
  const auto gz = gzip_parts(parts);
  EXPECT_LT(gz.size(), expected.size());
  EXPECT_EQ(gunzip(gz, expected.size()), expected);
}

TEST(Gzip, RoundTripLeadingPartsAtBlockLimits) {
  // Leading parts totalling exactly 64 KiB (more than one 65535-byte stored
  // block) and several of them, before a large body; also an empty leading
  // part before a large body, and leading parts too large to store.
  const std::vector<std::vector<std::vector<std::byte>>> cases = {
      {pattern_bytes(65536, 1), pattern_bytes(1 << 20, 2)},
      {pattern_bytes(65535, 3), pattern_bytes(1, 4), pattern_bytes(1 << 20, 5)},
      {pattern_bytes(100, 6), pattern_bytes(200, 7), pattern_bytes(3, 8), pattern_bytes((1 << 20) + 17, 9)},
      {{}, pattern_bytes(1 << 20, 10)},
      {pattern_bytes(65537, 11), pattern_bytes(1 << 20, 12)},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto expected = concat_u8(cases[i]);
    EXPECT_EQ(gunzip(gzip_parts(cases[i]), expected.size()), expected) << "case " << i;
  }
}

TEST(Gzip, Deterministic) {
  const std::vector<std::vector<std::byte>> parts = {pattern_bytes(352, 1), pattern_bytes(2 << 20, 2)};
  const auto a = gzip_parts(parts);
  const auto b = gzip_parts(parts);
  EXPECT_EQ(a, b);
  // Same bytes when compressed on another thread (fresh compressor).
  std::vector<uint8_t> c;
  std::thread([&] { c = gzip_parts(parts); }).join();
  EXPECT_EQ(a, c);
  // Switching levels in between does not change the result.
  (void)gzip_parts(parts, 1);
  EXPECT_EQ(gzip_parts(parts), a);
}

TEST(Gzip, InvalidLevelThrows) {
  const std::vector<std::vector<std::byte>> parts = {pattern_bytes(10, 1)};
  EXPECT_THROW(gzip_parts(parts, 13), std::invalid_argument);
  EXPECT_THROW(gzip_parts(parts, -1), std::invalid_argument);
  EXPECT_NO_THROW(gzip_parts(parts, 6));
}

// ================================================================ writing ==

namespace {
template <class T>
std::vector<std::byte> to_bytes(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Decompresses the written file and checks it is exactly header + voxels.
void expect_file_contents(const fs::path& p, const NiftiVolume& v, uint64_t written) {
  const auto gz = read_file(p);
  EXPECT_EQ(gz.size(), written);
  const auto header = make_nifti_header(v, needs_nifti2(v));
  const auto raw = gunzip(gz, header.size() + v.voxels.size());
  ASSERT_EQ(raw.size(), header.size() + v.voxels.size());
  EXPECT_EQ(0, std::memcmp(raw.data(), header.data(), header.size()));
  EXPECT_EQ(0, std::memcmp(raw.data() + header.size(), v.voxels.data(), v.voxels.size()));
}
}  // namespace

TEST(WriteNifti, Nifti1EndToEndWithNibabel) {
  TempDir out, scratch;
  NiftiVolume v = basic_volume();
  // Over 1 MiB of voxels: the header goes in a stored deflate block in front
  // of the compressed voxels (see gzip.cpp), so nibabel reads that layout too.
  v.dim = {128, 96, 45, 1, 1, 1, 1};
  std::vector<int16_t> vox(128 * 96 * 45);
  for (size_t i = 0; i < vox.size(); ++i) vox[i] = static_cast<int16_t>((i * 7919) % 65536 - 32768);
  const auto bytes = to_bytes(vox);
  v.voxels = bytes;
  v.descrip = "rapidnii_test_TE=12";
  v.qform_code = 1;
  v.sform_code = 1;
  const fs::path nii = out.path() / "series_1.nii.gz";
  const uint64_t written = write_nifti_gz(nii, v);
  EXPECT_EQ(list_dir(out.path()), std::vector<std::string>{"series_1.nii.gz"}) << "no temporary file may remain";
  expect_file_contents(nii, v, written);

  if (!nibabel_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import nibabel; skipping the nibabel check";
  const auto r = nibabel_check(nii, scratch.path(), v, "Nifti1Image", "<i2");
  EXPECT_EQ(r.rc, 0) << r.output;
}

TEST(WriteNifti, Nifti1Float32FourDimensionalLeftHandedWithNibabel) {
  TempDir out, scratch;
  NiftiVolume v;
  v.ndim = 4;
  v.dim = {16, 12, 5, 3, 1, 1, 1};
  v.pixdim = {1, 1, 1, 2.5, 1, 1, 1};
  v.datatype = NiftiType::Float32;
  // LPS->RAS style left-handed oblique affine: qfac = -1.
  v.affine = make_affine(mul(mul(diag(-1, -1, 1), mul(rot_x(0.25), rot_y(-0.1))), diag(1, 1, -1)),
                         {2.0, 2.0, 3.5}, {90.5, -120.25, 40.0});
  v.qform_code = 1;
  v.sform_code = 2;
  v.descrip = "fmri";
  std::vector<float> vox(16 * 12 * 5 * 3);
  for (size_t i = 0; i < vox.size(); ++i) vox[i] = static_cast<float>(std::sin(0.01 * i) * 1000.0);
  const auto bytes = to_bytes(vox);
  v.voxels = bytes;
  const fs::path nii = out.path() / "bold.nii.gz";
  const uint64_t written = write_nifti_gz(nii, v, 1);
  EXPECT_EQ(list_dir(out.path()), std::vector<std::string>{"bold.nii.gz"});
  expect_file_contents(nii, v, written);

  if (!nibabel_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import nibabel; skipping the nibabel check";
  const auto r = nibabel_check(nii, scratch.path(), v, "Nifti1Image", "<f4");
  EXPECT_EQ(r.rc, 0) << r.output;
}

TEST(WriteNifti, Nifti2EndToEndWithNibabel) {
  TempDir out, scratch;
  NiftiVolume v;
  v.ndim = 3;
  v.dim = {40000, 1, 1, 1, 1, 1, 1};
  v.datatype = NiftiType::Int16;
  v.affine = make_affine(diag(-1, 1, 1), {0.25, 1.0, 1.0}, {5000.0, -2.0, 7.5});
  v.descrip = "long";
  std::vector<int16_t> vox(40000);
  for (size_t i = 0; i < vox.size(); ++i) vox[i] = static_cast<int16_t>(i % 3000 - 1500);
  const auto bytes = to_bytes(vox);
  v.voxels = bytes;
  ASSERT_TRUE(needs_nifti2(v));
  const fs::path nii = out.path() / "wide.nii.gz";
  const uint64_t written = write_nifti_gz(nii, v);
  EXPECT_EQ(list_dir(out.path()), std::vector<std::string>{"wide.nii.gz"});
  expect_file_contents(nii, v, written);
  const auto raw = gunzip(read_file(nii), 544 + bytes.size());
  EXPECT_EQ(raw[0] | (raw[1] << 8), 540) << "NIfTI-2 sizeof_hdr";

  if (!nibabel_available()) GTEST_SKIP() << "/usr/bin/python3 cannot import nibabel; skipping the nibabel check";
  const auto r = nibabel_check(nii, scratch.path(), v, "Nifti2Image", "<i2");
  EXPECT_EQ(r.rc, 0) << r.output;
}

TEST(WriteNifti, CreatesParentDirectoriesAndOverwrites) {
  TempDir out;
  NiftiVolume v = basic_volume();
  std::vector<uint8_t> a(7 * 5 * 3 * 2, 1), b(7 * 5 * 3 * 2, 2);
  const auto ab = to_bytes(a), bb = to_bytes(b);
  const fs::path nii = out.path() / "sub" / "ses-1" / "anat" / "t1.nii.gz";
  v.voxels = ab;
  write_nifti_gz(nii, v);
  ASSERT_TRUE(fs::is_regular_file(nii));
  v.voxels = bb;
  const uint64_t written = write_nifti_gz(nii, v);  // replaces the first file
  expect_file_contents(nii, v, written);
  EXPECT_EQ(list_dir(nii.parent_path()), std::vector<std::string>{"t1.nii.gz"});
}

TEST(WriteNifti, RejectsVoxelSizeMismatch) {
  TempDir out;
  NiftiVolume v = basic_volume();
  std::vector<std::byte> short_buf(7 * 5 * 3 * 2 - 1);
  v.voxels = short_buf;
  EXPECT_THROW(write_nifti_gz(out.path() / "x.nii.gz", v), std::invalid_argument);
  EXPECT_TRUE(list_dir(out.path()).empty());
}

TEST(WriteNifti, ConcurrentWritersLeaveNoTemporaries) {
  TempDir out;
  NiftiVolume v = basic_volume();
  const auto bytes = pattern_bytes(7 * 5 * 3 * 2, 3);
  v.voxels = bytes;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        try {
          // Two threads share each name to exercise concurrent renames.
          write_nifti_gz(out.path() / ("f" + std::to_string((t % 2) * 5 + i) + ".nii.gz"), v);
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(list_dir(out.path()).size(), 10u);
  EXPECT_FALSE(any_temp_file(out.path()));
  for (const auto& name : list_dir(out.path())) expect_file_contents(out.path() / name, v, read_file(out.path() / name).size());
}

namespace {
// The error message must not reveal the path (it may contain patient names).
void expect_failure_without_path(const fs::path& target, const NiftiVolume& v) {
  try {
    write_nifti_gz(target, v);
    ADD_FAILURE() << "write_nifti_gz did not throw";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_FALSE(msg.empty());
    EXPECT_EQ(msg.find("DOE"), std::string::npos) << msg;
    EXPECT_EQ(msg.find(target.filename().string()), std::string::npos) << msg;
    EXPECT_EQ(msg.find(fs::temp_directory_path().string()), std::string::npos) << msg;
  }
}
}  // namespace

TEST(WriteNifti, ParentIsAFileThrowsWithoutPathAndLeavesNothing) {
  TempDir out;
  NiftiVolume v = basic_volume();
  const auto bytes = pattern_bytes(7 * 5 * 3 * 2, 4);
  v.voxels = bytes;
  const fs::path blocker = out.path() / "DOE^JOHN";
  std::ofstream(blocker) << "not a directory";
  expect_failure_without_path(blocker / "t1_DOE.nii.gz", v);
  expect_failure_without_path(blocker / "deeper" / "t1_DOE.nii.gz", v);
  EXPECT_EQ(list_dir(out.path()), std::vector<std::string>{"DOE^JOHN"});
}

TEST(WriteNifti, RenameFailureRemovesTemporary) {
  // The final path is an existing non-empty directory: the temporary file is
  // written completely, the rename fails, and the temporary must be removed.
  TempDir out;
  NiftiVolume v = basic_volume();
  const auto bytes = pattern_bytes(7 * 5 * 3 * 2, 5);
  v.voxels = bytes;
  const fs::path target = out.path() / "DOE_JANE.nii.gz";
  fs::create_directories(target);
  std::ofstream(target / "keep") << "x";
  expect_failure_without_path(target, v);
  EXPECT_EQ(list_dir(out.path()), std::vector<std::string>{"DOE_JANE.nii.gz"});
  EXPECT_FALSE(any_temp_file(out.path()));
  EXPECT_TRUE(fs::is_regular_file(target / "keep"));
}

TEST(WriteNifti, UncreatableFileThrows) {
  // Files cannot be created in /proc, even by root.
  NiftiVolume v = basic_volume();
  const auto bytes = pattern_bytes(7 * 5 * 3 * 2, 6);
  v.voxels = bytes;
  if (!fs::is_directory("/proc/self")) GTEST_SKIP() << "no /proc on this system";
  expect_failure_without_path("/proc/self/DOE_rapidnii.nii.gz", v);
  EXPECT_FALSE(fs::exists("/proc/self/DOE_rapidnii.nii.gz"));
}

TEST(WriteNifti, ReadOnlyDirectoryThrowsAndLeavesNoTemporary) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permission bits are not enforced";
  TempDir out;
  NiftiVolume v = basic_volume();
  const auto bytes = pattern_bytes(7 * 5 * 3 * 2, 7);
  v.voxels = bytes;
  const fs::path ro = out.path() / "ro";
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  expect_failure_without_path(ro / "DOE.nii.gz", v);
  fs::permissions(ro, fs::perms::owner_all);
  EXPECT_TRUE(list_dir(ro).empty());
}
