// NIfTI-1 / NIfTI-2 header construction and atomic .nii.gz writing.
#pragma once
#include "io/atomic_file.h"
#include "io/digest.h"
#include "io/gzip.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace rapidnii::io {

// NIfTI datatype codes (nifti1.h DT_*).
enum class NiftiType : int16_t {
  UInt8 = 2, Int16 = 4, Int32 = 8, Float32 = 16, Float64 = 64,
  RGB24 = 128, Int8 = 256, UInt16 = 512, UInt32 = 768,
};
int nifti_bytes_per_voxel(NiftiType t);

struct NiftiVolume {
  int ndim = 3;                                   // 1..7
  std::array<int64_t, 7> dim{1, 1, 1, 1, 1, 1, 1};  // sizes, x fastest
  std::array<double, 7> pixdim{1, 1, 1, 1, 1, 1, 1}; // voxel sizes (mm), then TR (s)...
  NiftiType datatype = NiftiType::Int16;
  // Voxel (i,j,k) -> RAS+ world (mm): rows of the 3x4 affine (sform). The
  // qform is derived from it (quaternion + qfac); the pixdim[0..2] given
  // above are kept as the column lengths of the affine.
  std::array<std::array<double, 4>, 3> affine{};
  int qform_code = 1;  // NIFTI_XFORM_SCANNER_ANAT
  int sform_code = 1;
  double scl_slope = 1.0;  // written as-is (0 or 1,0 mean "no scaling")
  double scl_inter = 0.0;
  uint8_t xyzt_units = 2 | 8;  // NIFTI_UNITS_MM | NIFTI_UNITS_SEC
  uint8_t dim_info = 0;
  uint8_t slice_code = 0;
  int64_t slice_start = 0, slice_end = 0;
  double slice_duration = 0.0;
  std::string descrip;  // <= 79 chars, truncated otherwise
  std::span<const std::byte> voxels;  // dim product * bytes per voxel
};

// True when any dimension exceeds NIfTI-1's int16 range (32767).
bool needs_nifti2(const NiftiVolume& v);

// Header bytes (348 + 4 extension bytes = 352 for NIfTI-1, 540 + 4 = 544 for
// NIfTI-2), little endian, magic "n+1"/"n+2", no extensions, vox_offset set.
// aux_file, intent_name, db_name, data_type are zero-filled.
std::vector<std::byte> make_nifti_header(const NiftiVolume& v, bool nifti2);

// Quaternion parameters of a 3x3 direction matrix (columns = axis
// directions, possibly scaled): returns {b, c, d, qfac}.
std::array<double, 4> quaternion_from_matrix(const std::array<std::array<double, 3>, 3>& m);

// Writes header + voxels as one gzip stream to `final_path` atomically: the
// bytes go to a temporary file beside it which is fsync'ed and renamed over
// `final_path` only when complete. NIfTI-2 is chosen automatically when
// needed. `level` is the deflate level (libdeflate 1..12). Returns the number
// of bytes written. Throws std::runtime_error on I/O failure (the temporary
// file is removed; the message never contains the path, which may hold patient
// names) and std::invalid_argument for an inconsistent volume (voxel buffer
// size, ndim/dim, datatype) or an invalid level. Missing parent directories are
// created. The temporary file is "." + file name + ".tmp-<pid>-<counter>".
uint64_t write_nifti_gz(const std::filesystem::path& final_path, const NiftiVolume& v, int level = 6);

// How write_nifti_gz compresses.
struct NiftiGzOptions {
  // A policy (choose per volume from a sample of its voxels) or a fixed
  // compressor and level; see io/gzip.h.
  CompressionSetting compression{};
  // Threads compressing this one volume (gzip_compress_parallel): <= 0 = the
  // calling oneTBB arena, 1 = the calling thread only. The bytes written do
  // not depend on it.
  int threads = 0;
  // Deflate block size; 0 = default_block_size(choice).
  size_t block_size = 0;
};

struct NiftiGzResult {
  uint64_t bytes = 0;              // size of the .nii.gz written
  CompressionChoice choice{};      // compressor and level used
  std::string digest;              // io::Digest of the bytes written (for the resume journal)
};

// As above, but the header and voxels are compressed by
// gzip_compress_parallel_to (one gzip member, blocks in parallel, written to
// the temporary file in order as they are done) with the compressor chosen by
// `opt.compression` (resolve_compression over the voxels). The voxel buffer
// is not copied (only the one block that holds the end of the header and the
// start of the voxels is) and the compressed volume is never held whole. Same
// errors, temporary file and atomic rename; the file's bytes do not depend on
// opt.threads.
NiftiGzResult write_nifti_gz(const std::filesystem::path& final_path, const NiftiVolume& v,
                             const NiftiGzOptions& opt);

// The same compressed bytes written into `file` (an AtomicFile for
// `final_path`, which names the output in checks only) and NOT committed:
// the caller commits it (fsync + rename) later, e.g. on an I/O thread, so
// that compressing the next volume never waits for the disk.
NiftiGzResult write_nifti_gz_into(AtomicFile& file, const std::filesystem::path& final_path, const NiftiVolume& v,
                                  const NiftiGzOptions& opt);

// A .nii.gz written a piece of its voxels at a time, for volumes converted a
// few time points at a time within the memory budget. `v` describes the
// volume (v.voxels is ignored); append() the voxels in order, then finish(),
// which checks that exactly the volume's bytes came. The file's bytes are
// those of write_nifti_gz_into with the fixed `choice` and the same block
// size (GzipStream), whatever the pieces. Not committed.
class NiftiGzStreamWriter {
 public:
  NiftiGzStreamWriter(AtomicFile& file, const std::filesystem::path& final_path, const NiftiVolume& v,
                      CompressionChoice choice, int threads = 0, size_t block_size = 0);
  void append(std::span<const std::byte> voxels);
  NiftiGzResult finish();

 private:
  AtomicFile& file_;
  Digest digest_;
  CompressionChoice choice_;
  uint64_t header_bytes_ = 0, voxel_bytes_ = 0;
  GzipStream gz_;
};

}  // namespace rapidnii::io
