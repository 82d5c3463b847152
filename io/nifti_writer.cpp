// NIfTI-1 / NIfTI-2 header construction and atomic .nii.gz writing.
//
// Headers are built by storing each field little endian at its byte offset
// (from nifti1.h / nifti2.h) into a zero-filled buffer; the offset tables
// below are checked for consistency with static_asserts.
#include "io/nifti_writer.h"

#include "io/atomic_file.h"
#include "io/digest.h"

#include "io/gzip.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace rapidnii::io {
namespace {

// ---------------------------------------------------------------- offsets --

// NIfTI-1 header (348 bytes) field offsets.
namespace n1 {
constexpr size_t sizeof_hdr = 0;       // int32
constexpr size_t data_type = 4;        // char[10]
constexpr size_t db_name = 14;         // char[18]
constexpr size_t dim_info = 39;        // uint8
constexpr size_t dim = 40;             // int16[8]
constexpr size_t intent_code = 68;     // int16
constexpr size_t datatype = 70;        // int16
constexpr size_t bitpix = 72;          // int16
constexpr size_t slice_start = 74;     // int16
constexpr size_t pixdim = 76;          // float[8]
constexpr size_t vox_offset = 108;     // float
constexpr size_t scl_slope = 112;      // float
constexpr size_t scl_inter = 116;      // float
constexpr size_t slice_end = 120;      // int16
constexpr size_t slice_code = 122;     // uint8
constexpr size_t xyzt_units = 123;     // uint8
constexpr size_t cal_max = 124;        // float
constexpr size_t cal_min = 128;        // float
constexpr size_t slice_duration = 132; // float
constexpr size_t descrip = 148;        // char[80]
constexpr size_t aux_file = 228;       // char[24]
constexpr size_t qform_code = 252;     // int16
constexpr size_t sform_code = 254;     // int16
constexpr size_t quatern_b = 256;      // float x 6: b c d qoffset_x y z
constexpr size_t srow_x = 280;         // float[4] x 3: srow_x srow_y srow_z
constexpr size_t intent_name = 328;    // char[16]
constexpr size_t magic = 344;          // char[4]
constexpr size_t size = 348;
static_assert(db_name + 18 == 32 && dim + 8 * 2 == 56 && pixdim + 8 * 4 == vox_offset);
static_assert(descrip + 80 == aux_file && aux_file + 24 == qform_code);
static_assert(quatern_b + 6 * 4 == srow_x && srow_x + 12 * 4 == intent_name);
static_assert(intent_name + 16 == magic && magic + 4 == size);
}  // namespace n1

// NIfTI-2 header (540 bytes) field offsets.
namespace n2 {
constexpr size_t sizeof_hdr = 0;       // int32
constexpr size_t magic = 4;            // char[8]
constexpr size_t datatype = 12;        // int16
constexpr size_t bitpix = 14;          // int16
constexpr size_t dim = 16;             // int64[8]
constexpr size_t intent_p1 = 80;       // double x 3
constexpr size_t pixdim = 104;         // double[8]
constexpr size_t vox_offset = 168;     // int64
constexpr size_t scl_slope = 176;      // double
constexpr size_t scl_inter = 184;      // double
constexpr size_t cal_max = 192;        // double
constexpr size_t cal_min = 200;        // double
constexpr size_t slice_duration = 208; // double
constexpr size_t toffset = 216;        // double
constexpr size_t slice_start = 224;    // int64
constexpr size_t slice_end = 232;      // int64
constexpr size_t descrip = 240;        // char[80]
constexpr size_t aux_file = 320;       // char[24]
constexpr size_t qform_code = 344;     // int32
constexpr size_t sform_code = 348;     // int32
constexpr size_t quatern_b = 352;      // double x 6: b c d qoffset_x y z
constexpr size_t srow_x = 400;         // double[4] x 3
constexpr size_t slice_code = 496;     // int32
constexpr size_t xyzt_units = 500;     // int32
constexpr size_t intent_code = 504;    // int32
constexpr size_t intent_name = 508;    // char[16]
constexpr size_t dim_info = 524;       // uint8
constexpr size_t unused_str = 525;     // char[15]
constexpr size_t size = 540;
static_assert(dim + 8 * 8 == intent_p1 && intent_p1 + 3 * 8 == pixdim);
static_assert(pixdim + 8 * 8 == vox_offset && toffset + 8 == slice_start);
static_assert(descrip + 80 == aux_file && aux_file + 24 == qform_code);
static_assert(quatern_b + 6 * 8 == srow_x && srow_x + 12 * 8 == slice_code);
static_assert(intent_name + 16 == dim_info && unused_str + 15 == size);
}  // namespace n2

constexpr size_t kExtensionBytes = 4;  // "extension" flag bytes, all zero

// ---------------------------------------------------------- little endian --

template <class U>
void store_le_uint(std::vector<std::byte>& buf, size_t off, U u) {
  for (size_t i = 0; i < sizeof(U); ++i) buf[off + i] = static_cast<std::byte>((u >> (8 * i)) & 0xff);
}
void put_i16(std::vector<std::byte>& b, size_t off, int64_t v) {
  store_le_uint(b, off, static_cast<uint16_t>(static_cast<int16_t>(v)));
}
void put_i32(std::vector<std::byte>& b, size_t off, int64_t v) {
  store_le_uint(b, off, static_cast<uint32_t>(static_cast<int32_t>(v)));
}
void put_i64(std::vector<std::byte>& b, size_t off, int64_t v) { store_le_uint(b, off, static_cast<uint64_t>(v)); }
void put_u8(std::vector<std::byte>& b, size_t off, unsigned v) { b[off] = static_cast<std::byte>(v & 0xff); }
void put_f32(std::vector<std::byte>& b, size_t off, double v) {
  store_le_uint(b, off, std::bit_cast<uint32_t>(static_cast<float>(v)));
}
void put_f64(std::vector<std::byte>& b, size_t off, double v) { store_le_uint(b, off, std::bit_cast<uint64_t>(v)); }
void put_chars(std::vector<std::byte>& b, size_t off, const char* s, size_t n) {
  std::memcpy(b.data() + off, s, n);
}

// ----------------------------------------------------------------- 3x3 math --

using Mat3 = std::array<std::array<double, 3>, 3>;

double det3(const Mat3& m) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
         m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

// Inverse transpose (cofactor matrix / det); det must be non-zero.
Mat3 inv_transpose(const Mat3& m, double det) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int i1 = (i + 1) % 3, i2 = (i + 2) % 3, j1 = (j + 1) % 3, j2 = (j + 2) % 3;
      c[i][j] = (m[i1][j1] * m[i2][j2] - m[i1][j2] * m[i2][j1]) / det;
    }
  }
  return c;
}

// Orthogonal factor of the polar decomposition (closest orthogonal matrix),
// by the Newton iteration X <- (X + X^-T) / 2. Returns false if singular.
bool orthogonalize(Mat3& x) {
  for (int iter = 0; iter < 100; ++iter) {
    const double d = det3(x);
    if (!(std::fabs(d) > 1e-12) || !std::isfinite(d)) return false;
    const Mat3 it = inv_transpose(x, d);
    double change = 0.0;
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        const double nv = 0.5 * (x[i][j] + it[i][j]);
        change = std::max(change, std::fabs(nv - x[i][j]));
        x[i][j] = nv;
      }
    }
    if (change < 1e-15) break;
  }
  return true;
}

// ------------------------------------------------------------------ checks --

void validate_shape(const NiftiVolume& v) {
  if (v.ndim < 1 || v.ndim > 7) throw std::invalid_argument("NIfTI: ndim must be 1..7");
  for (int i = 0; i < v.ndim; ++i) {
    if (v.dim[i] < 1) throw std::invalid_argument("NIfTI: dimensions must be >= 1");
  }
}

int16_t bitpix_of(NiftiType t) {
  return static_cast<int16_t>(t == NiftiType::RGB24 ? 24 : 8 * nifti_bytes_per_voxel(t));
}

}  // namespace

// ------------------------------------------------------------------ public --

int nifti_bytes_per_voxel(NiftiType t) {
  switch (t) {
    case NiftiType::UInt8:
    case NiftiType::Int8: return 1;
    case NiftiType::Int16:
    case NiftiType::UInt16: return 2;
    case NiftiType::RGB24: return 3;
    case NiftiType::Int32:
    case NiftiType::UInt32:
    case NiftiType::Float32: return 4;
    case NiftiType::Float64: return 8;
  }
  throw std::invalid_argument("NIfTI: unknown datatype");
}

bool needs_nifti2(const NiftiVolume& v) {
  const int n = std::clamp(v.ndim, 0, 7);
  for (int i = 0; i < n; ++i) {
    if (v.dim[i] > std::numeric_limits<int16_t>::max()) return true;
  }
  return false;
}

std::array<double, 4> quaternion_from_matrix(const Mat3& m) {
  // Normalise the columns; a zero (or non-finite) column becomes the
  // corresponding unit axis, as in the reference nifti1_io implementation.
  Mat3 r = m;
  for (int j = 0; j < 3; ++j) {
    const double len = std::sqrt(r[0][j] * r[0][j] + r[1][j] * r[1][j] + r[2][j] * r[2][j]);
    if (len > 0.0 && std::isfinite(len)) {
      for (int i = 0; i < 3; ++i) r[i][j] /= len;
    } else {
      for (int i = 0; i < 3; ++i) r[i][j] = (i == j) ? 1.0 : 0.0;
    }
  }
  // Columns of DICOM-derived matrices are orthogonal up to rounding; make the
  // matrix exactly orthogonal so the quaternion below is well defined.
  if (!orthogonalize(r)) return {0.0, 0.0, 0.0, 1.0};  // degenerate: identity

  double qfac = 1.0;
  if (det3(r) < 0.0) {
    qfac = -1.0;
    for (int i = 0; i < 3; ++i) r[i][2] = -r[i][2];
  }

  // Rotation -> unit quaternion (a, b, c, d), choosing the largest of
  // 4a^2, 4b^2, 4c^2, 4d^2 as the pivot so the divisions are well conditioned
  // also when a ~ 0 (rotations by ~180 degrees).
  const double tr = r[0][0] + r[1][1] + r[2][2];
  const double pa = 1.0 + tr;                            // 4 a^2
  const double pb = 1.0 + r[0][0] - r[1][1] - r[2][2];  // 4 b^2
  const double pc = 1.0 - r[0][0] + r[1][1] - r[2][2];  // 4 c^2
  const double pd = 1.0 - r[0][0] - r[1][1] + r[2][2];  // 4 d^2
  double a, b, c, d;
  if (pa >= pb && pa >= pc && pa >= pd) {
    a = 0.5 * std::sqrt(pa);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else if (pb >= pc && pb >= pd) {
    b = 0.5 * std::sqrt(pb);
    a = 0.25 * (r[2][1] - r[1][2]) / b;
    c = 0.25 * (r[0][1] + r[1][0]) / b;
    d = 0.25 * (r[0][2] + r[2][0]) / b;
  } else if (pc >= pd) {
    c = 0.5 * std::sqrt(pc);
    a = 0.25 * (r[0][2] - r[2][0]) / c;
    b = 0.25 * (r[0][1] + r[1][0]) / c;
    d = 0.25 * (r[1][2] + r[2][1]) / c;
  } else {
    d = 0.5 * std::sqrt(pd);
    a = 0.25 * (r[1][0] - r[0][1]) / d;
    b = 0.25 * (r[0][2] + r[2][0]) / d;
    c = 0.25 * (r[1][2] + r[2][1]) / d;
  }
  if (a < 0.0) {
    a = -a;
    b = -b;
    c = -c;
    d = -d;
  }
  const double norm = std::sqrt(a * a + b * b + c * c + d * d);
  return {b / norm, c / norm, d / norm, qfac};
}

std::vector<std::byte> make_nifti_header(const NiftiVolume& v, bool nifti2) {
  validate_shape(v);
  if (!nifti2 && needs_nifti2(v)) throw std::invalid_argument("NIfTI-1: dimension exceeds 32767");
  const auto bpv = nifti_bytes_per_voxel(v.datatype);  // validates datatype
  (void)bpv;

  // Affine 3x3 part, its column lengths (voxel sizes) and quaternion.
  Mat3 m{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) m[i][j] = v.affine[i][j];
  std::array<double, 8> pixdim{};
  for (int j = 0; j < 3; ++j) pixdim[j + 1] = std::sqrt(m[0][j] * m[0][j] + m[1][j] * m[1][j] + m[2][j] * m[2][j]);
  for (int k = 3; k < 7; ++k) pixdim[k + 1] = v.pixdim[k];
  const auto q = quaternion_from_matrix(m);
  pixdim[0] = q[3];
  const double quat[6] = {q[0], q[1], q[2], v.affine[0][3], v.affine[1][3], v.affine[2][3]};

  std::array<int64_t, 8> dim{};
  dim[0] = v.ndim;
  for (int i = 0; i < 7; ++i) dim[i + 1] = (i < v.ndim) ? v.dim[i] : 1;

  char descrip[80] = {};
  std::memcpy(descrip, v.descrip.data(), std::min<size_t>(v.descrip.size(), 79));

  std::vector<std::byte> h;
  if (!nifti2) {
    if (v.slice_start < 0 || v.slice_start > 32767 || v.slice_end < 0 || v.slice_end > 32767)
      throw std::invalid_argument("NIfTI-1: slice_start/slice_end out of range");
    h.assign(n1::size + kExtensionBytes, std::byte{0});
    put_i32(h, n1::sizeof_hdr, 348);
    put_u8(h, n1::dim_info, v.dim_info);
    for (int i = 0; i < 8; ++i) put_i16(h, n1::dim + 2 * i, dim[i]);
    put_i16(h, n1::datatype, static_cast<int16_t>(v.datatype));
    put_i16(h, n1::bitpix, bitpix_of(v.datatype));
    put_i16(h, n1::slice_start, v.slice_start);
    for (int i = 0; i < 8; ++i) put_f32(h, n1::pixdim + 4 * i, pixdim[i]);
    put_f32(h, n1::vox_offset, static_cast<double>(n1::size + kExtensionBytes));
    put_f32(h, n1::scl_slope, v.scl_slope);
    put_f32(h, n1::scl_inter, v.scl_inter);
    put_i16(h, n1::slice_end, v.slice_end);
    put_u8(h, n1::slice_code, v.slice_code);
    put_u8(h, n1::xyzt_units, v.xyzt_units);
    put_f32(h, n1::cal_max, 0.0);
    put_f32(h, n1::cal_min, 0.0);
    put_f32(h, n1::slice_duration, v.slice_duration);
    put_chars(h, n1::descrip, descrip, 80);
    put_i16(h, n1::qform_code, v.qform_code);
    put_i16(h, n1::sform_code, v.sform_code);
    for (int i = 0; i < 6; ++i) put_f32(h, n1::quatern_b + 4 * i, quat[i]);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) put_f32(h, n1::srow_x + 16 * r + 4 * c, v.affine[r][c]);
    put_chars(h, n1::magic, "n+1\0", 4);
  } else {
    h.assign(n2::size + kExtensionBytes, std::byte{0});
    put_i32(h, n2::sizeof_hdr, 540);
    put_chars(h, n2::magic, "n+2\0\r\n\032\n", 8);
    put_i16(h, n2::datatype, static_cast<int16_t>(v.datatype));
    put_i16(h, n2::bitpix, bitpix_of(v.datatype));
    for (int i = 0; i < 8; ++i) put_i64(h, n2::dim + 8 * i, dim[i]);
    for (int i = 0; i < 8; ++i) put_f64(h, n2::pixdim + 8 * i, pixdim[i]);
    put_i64(h, n2::vox_offset, static_cast<int64_t>(n2::size + kExtensionBytes));
    put_f64(h, n2::scl_slope, v.scl_slope);
    put_f64(h, n2::scl_inter, v.scl_inter);
    put_f64(h, n2::cal_max, 0.0);
    put_f64(h, n2::cal_min, 0.0);
    put_f64(h, n2::slice_duration, v.slice_duration);
    put_i64(h, n2::slice_start, v.slice_start);
    put_i64(h, n2::slice_end, v.slice_end);
    put_chars(h, n2::descrip, descrip, 80);
    put_i32(h, n2::qform_code, v.qform_code);
    put_i32(h, n2::sform_code, v.sform_code);
    for (int i = 0; i < 6; ++i) put_f64(h, n2::quatern_b + 8 * i, quat[i]);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) put_f64(h, n2::srow_x + 32 * r + 8 * c, v.affine[r][c]);
    put_i32(h, n2::slice_code, v.slice_code);
    put_i32(h, n2::xyzt_units, v.xyzt_units);
    put_u8(h, n2::dim_info, v.dim_info);
  }
  return h;
}

// ------------------------------------------------------------------ output --

namespace {

// Bytes of the volume's voxels (dimensions x datatype), overflow checked.
uint64_t voxel_bytes_of(const NiftiVolume& v) {
  validate_shape(v);
  uint64_t nvox = 1;
  for (int i = 0; i < v.ndim; ++i) {
    const auto d = static_cast<uint64_t>(v.dim[i]);
    if (nvox > std::numeric_limits<uint64_t>::max() / d) throw std::invalid_argument("NIfTI: volume too large");
    nvox *= d;
  }
  const auto bpv = static_cast<uint64_t>(nifti_bytes_per_voxel(v.datatype));
  if (nvox > std::numeric_limits<uint64_t>::max() / bpv) throw std::invalid_argument("NIfTI: volume too large");
  return nvox * bpv;
}

// Checks the volume (without its voxel buffer) and the output name; returns
// the header bytes.
std::vector<std::byte> checked_header_only(const std::filesystem::path& final_path, const NiftiVolume& v) {
  voxel_bytes_of(v);
  const std::string fname = final_path.filename().string();
  if (fname.empty() || fname == "." || fname == "..") {
    throw std::invalid_argument("NIfTI: output path has no file name");
  }
  return make_nifti_header(v, needs_nifti2(v));
}

// As above, and the voxel buffer must hold exactly the volume.
std::vector<std::byte> checked_header(const std::filesystem::path& final_path, const NiftiVolume& v) {
  if (voxel_bytes_of(v) != v.voxels.size())
    throw std::invalid_argument("NIfTI: voxel buffer size does not match dimensions and datatype");
  return checked_header_only(final_path, v);
}

}  // namespace

uint64_t write_nifti_gz(const std::filesystem::path& final_path, const NiftiVolume& v, int level) {
  const std::vector<std::byte> header = checked_header(final_path, v);
  const std::span<const std::byte> parts[2] = {header, v.voxels};
  const std::vector<uint8_t> gz = gzip_compress(parts, level);
  AtomicFile f(final_path);
  f.write(gz);
  f.commit();
  return gz.size();
}

namespace {

// The compressed header + voxels into `file` (not committed).
NiftiGzResult compress_into(AtomicFile& file, std::span<const std::byte> header, const NiftiVolume& v,
                            const NiftiGzOptions& opt) {
  NiftiGzResult r;
  // the sample of the compression choice is spread over the rows of the slices
  const size_t slice_bytes = size_t(v.dim[0]) * size_t(v.dim[1]) * size_t(nifti_bytes_per_voxel(v.datatype));
  r.choice = resolve_compression(opt.compression, v.voxels, opt.threads, slice_bytes);
  const std::span<const std::byte> parts[2] = {header, v.voxels};
  // The compressed blocks are written to the temporary file as they leave
  // the pipeline, in order: the compressed volume is never held whole. They
  // are digested as they are written, so the journal never reads them back.
  Digest digest;
  r.bytes = gzip_compress_parallel_to(parts, r.choice, opt.threads, opt.block_size, [&](std::span<const uint8_t> b) {
    digest.update(b);
    file.write(b);
  });
  r.digest = digest.hex();
  return r;
}

}  // namespace

NiftiGzResult write_nifti_gz_into(AtomicFile& file, const std::filesystem::path& final_path, const NiftiVolume& v,
                                  const NiftiGzOptions& opt) {
  return compress_into(file, checked_header(final_path, v), v, opt);
}

NiftiGzResult write_nifti_gz(const std::filesystem::path& final_path, const NiftiVolume& v,
                             const NiftiGzOptions& opt) {
  const std::vector<std::byte> header = checked_header(final_path, v);  // before any file exists
  AtomicFile f(final_path);
  NiftiGzResult r = compress_into(f, header, v, opt);
  f.commit();
  return r;
}

NiftiGzStreamWriter::NiftiGzStreamWriter(AtomicFile& file, const std::filesystem::path& final_path,
                                         const NiftiVolume& v, CompressionChoice choice, int threads,
                                         size_t block_size)
    : file_(file),
      choice_(choice),
      gz_(choice, threads, block_size, [this](std::span<const uint8_t> b) {
        digest_.update(b);
        file_.write(b);
      }) {
  const std::vector<std::byte> header = checked_header_only(final_path, v);
  voxel_bytes_ = voxel_bytes_of(v);
  header_bytes_ = header.size();
  gz_.append(header);
}

void NiftiGzStreamWriter::append(std::span<const std::byte> voxels) {
  if (gz_.input_bytes() + voxels.size() > header_bytes_ + voxel_bytes_)
    throw std::invalid_argument("NIfTI: more voxel bytes than the volume holds");
  gz_.append(voxels);
}

NiftiGzResult NiftiGzStreamWriter::finish() {
  if (gz_.input_bytes() != header_bytes_ + voxel_bytes_)
    throw std::invalid_argument("NIfTI: voxel bytes missing at the end of the volume");
  NiftiGzResult r;
  r.bytes = gz_.finish();
  r.choice = choice_;
  r.digest = digest_.hex();
  return r;
}

}  // namespace rapidnii::io
