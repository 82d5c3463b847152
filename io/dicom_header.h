// Header-only DICOM indexing: the fields needed to group, sort and describe
// a series, read with GDCM up to (not including) PixelData.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>
#include <optional>
#include <string>

#include "io/input_file.h"
#include "io/interned_string.h"

namespace rapidnii::io {

// Why a file was not indexed. Codes are stable: they appear in reports.
enum class SkipReason : uint8_t {
  None = 0,
  EmptyFile,         // zero bytes
  Unreadable,        // cannot be opened (permissions, vanished)
  NotDicom,          // GDCM cannot parse it as DICOM
  NoImage,           // DICOM, but no pixel data / Rows / Columns (SR, DICOMDIR...)
  TruncatedPixels,   // pixel data shorter than Rows*Columns*Frames*BitsAllocated
  Unsupported,       // an image DICOM we cannot convert yet (stated in detail)
  BurnedInRisk,      // may carry burned-in identifying text: not converted by default
  TruncatedHeader,   // the data set ends inside an element
  Malformed,         // impossible VR, length or nesting
  BrokenArchive,     // a .zip/.tar that cannot be read to its end
  ArchiveTooLarge,   // an archive over the in-memory limit
  Duplicate,         // the same SOP instance as another input (a copy): skipped
};
const char* skip_reason_code(SkipReason r);  // e.g. "not_dicom"
const char* skip_reason_text(SkipReason r);  // e.g. "not a DICOM file"

// Why a file may carry identifying text in its pixels (DEID-POLICY P3).
enum class BurnedInRisk : uint8_t {
  None = 0,
  BurnedInAnnotation,     // (0028,0301) BurnedInAnnotation = YES
  SecondaryCapture,       // Secondary Capture SOP classes
  Ultrasound,             // US SOP classes
  NonImageObject,         // SR, encapsulated PDF/CDA, presentation states, key objects
  ModalityAtRisk,         // Modality US, OT, SC, DOC, SR, PR, KO
  ImageTypeAtRisk,        // ImageType has SCREEN SAVE, SECONDARY, REPORT, DEMOGRAPHICDATA, INVALID
  DescriptionAtRisk,      // SeriesDescription names a dose report, screen save, report...
  SecondaryCaptureDevice, // DateOfSecondaryCapture or SecondaryCaptureDevice* present
  DerivedColour,          // RGB image in a derived MR/CT series (screenshots)
};
const char* burned_in_code(BurnedInRisk r);  // e.g. "burned_in_annotation"

struct IndexOptions {
  bool convert_burned_in_risk = false;  // index risky files instead of skipping them
};

struct FrameInfo;

struct SliceHeader {
  // identity of the series (used only for grouping; never written out).
  // What every slice of a series repeats is interned (one pointer each).
  InternedString series_uid;
  InternedString sop_class_uid;
  std::string sop_instance_uid;  // to recognise the same instance stored twice
  InternedString transfer_syntax;
  InternedString modality;     // e.g. "MR"
  InternedString image_type;   // values joined with '\'
  InternedString photometric;  // e.g. "MONOCHROME2"
  InternedString convolution_kernel;  // (0018,1210): two reconstructions of one series are two outputs
  bool mr_3d = false;              // MRAcquisitionType (0018,0023) is 3D (written in dcm2niix's orthogonal orientation)
  int32_t series_number = 0;
  int32_t instance_number = 0;
  int32_t acquisition_number = 0;
  int32_t echo_number = 0;
  int32_t temporal_position = 0;  // TemporalPositionIdentifier (0020,0100)
  double acquisition_time = -1;   // seconds after midnight, -1 unknown
  // PET (PS3.3 C.8.9.4): ImageIndex (0054,1330), type 1, orders a dynamic or
  // gated series by time slice/slot; FrameReferenceTime (0054,1300) in ms.
  int32_t image_index = 0;
  double frame_reference_time = -1;
  double frame_duration = -1;  // ms, ActualFrameDuration (0018,1242)
  // Siemens XA: TimeAfterStart (0021,1104), s: when this slice was acquired
  double time_after_start = -1;

  bool has_orientation = false;
  bool has_position = false;
  std::array<double, 6> iop{1, 0, 0, 0, 1, 0};  // ImageOrientationPatient (LPS)
  std::array<double, 3> ipp{0, 0, 0};           // ImagePositionPatient (LPS, mm)
  std::array<double, 2> pixel_spacing{1, 1};    // row spacing, column spacing
  double slice_thickness = 0;
  double spacing_between_slices = 0;

  uint16_t rows = 0, cols = 0;
  uint16_t bits_allocated = 0, bits_stored = 0, high_bit = 0;
  uint16_t pixel_representation = 0;  // 0 unsigned, 1 signed
  uint16_t samples_per_pixel = 1;
  uint8_t float_pixels = 0;  // 32: FloatPixelData (7FE0,0008) instead of integer PixelData
  int32_t number_of_frames = 1;
  bool has_rescale = false;
  double rescale_slope = 1.0, rescale_intercept = 0.0;

  // physics for the header/sidecar
  double echo_time = 0;        // ms
  double repetition_time = 0;  // ms
  double flip_angle = 0;       // degrees (0018,1314)
  double frame_interval = 0;   // ms between the time points of a legacy multi-frame cine (FrameTime)

  BurnedInRisk burned_in = BurnedInRisk::None;

  // Siemens mosaic: number of tiles (0 when not a mosaic) and the CSA slice
  // normal, whose sign tells the order of the tiles along the normal.
  uint16_t mosaic_images = 0;
  bool has_slice_normal = false;
  std::array<double, 3> slice_normal{0, 0, 0};

  // Vendor, for vendor-specific reading only (never written out).
  enum class Vendor : uint8_t { Other, Siemens, GE, Philips, UIH };
  Vendor vendor = Vendor::Other;

  // Diffusion: b-value (s/mm^2) and gradient direction in the patient frame
  // (LPS), from (0018,9087)/(0018,9089) or the vendor places dcm2niix reads
  // (vectors GE and UIH store in the image's frame turned into LPS).
  bool has_bvalue = false;
  double bvalue = 0;
  bool has_gradient = false;
  std::array<double, 3> gradient{0, 0, 0};
  // GE vectors without InPlanePhaseEncodingDirection (0018,1312): COL assumed
  bool ge_gradient_pe_assumed = false;
  // GE epi_pepolar, reversed polarity: rows stored in reverse order (the
  // header does not say so); written the other way up (dcm2niix).
  bool rows_reversed = false;
  // Philips volume order: DiffusionOrder (2005,1596), else BValueNumber
  // (2005,1412) then GradientOrientationNumber (2005,1413); 0 when absent.
  int32_t philips_diffusion_order = 0;
  int32_t philips_bvalue_number = 0;
  int32_t philips_gradient_number = 0;

  // Complex part from ImageType / ComplexImageComponent (0008,9208).
  enum class Part : uint8_t { Unknown, Magnitude, Phase, Real, Imaginary };
  Part part = Part::Unknown;
  uint16_t planar_configuration = 0;  // RGB: 0 interleaved, 1 planes

  // Enhanced (multi-frame) objects: one entry per frame, from the per-frame
  // functional groups with the shared groups as fallback; null otherwise.
  // pipeline/series turns each frame into a virtual slice.
  std::shared_ptr<const std::vector<FrameInfo>> frames;
  int32_t stack = 0;  // StackID (0020,9056), numbered by first appearance in the file
};

// What varies per frame of an enhanced object.
struct FrameInfo {
  bool has_position = false, has_orientation = false;
  std::array<double, 3> ipp{0, 0, 0};
  std::array<double, 6> iop{1, 0, 0, 0, 1, 0};
  std::array<double, 2> pixel_spacing{1, 1};
  double slice_thickness = 0, spacing_between_slices = 0;
  bool has_rescale = false;
  double rescale_slope = 1, rescale_intercept = 0;
  double echo_time = 0;
  int32_t echo_number = 0;        // rank of the effective echo time when echoes differ
  int32_t stack = 0;              // StackID, numbered by first appearance
  int32_t temporal_position = 0;  // TemporalPositionIndex (0020,9128)
  int32_t order = 0;              // rank of DimensionIndexValues (then frame number)
  double time_after_start = -1;   // Siemens XA (0021,1104) in the frame's items, s
  bool has_bvalue = false, has_gradient = false;
  double bvalue = 0;
  std::array<double, 3> gradient{0, 0, 0};
  SliceHeader::Part part = SliceHeader::Part::Unknown;
};
const char* part_name(SliceHeader::Part p);  // "mag", "phase", "real", "imag", "" (BIDS part- labels)

struct IndexResult {
  SkipReason skip = SkipReason::None;
  std::string detail;  // non-identifying detail (e.g. "multi-frame"), never a DICOM value
  SliceHeader header;
};

// Reads the header of one file (stops before PixelData). Never throws.
IndexResult index_dicom_file(const InputFile& in, const IndexOptions& opt = {});

// The vendor a Manufacturer (0008,0070) value names (case-insensitive).
SliceHeader::Vendor vendor_of(const std::string& manufacturer);

// GE's diffusion direction (0019,10BB-BD) and b-value (0043,1039) as a
// b-value and a patient-frame (LPS) direction. GE states the direction in
// its logical frame (frequency, phase, slice), not the patient's; dcm2niix
// (geCorrectBvecs, after its issue 970) turns it into FSL's bvec by sign
// flips that depend on the slice plane (the axis nearest the slice normal)
// and, for phase encoding along the rows (`phase_along_rows`: (0018,1312)
// ROW), a swap of the in-plane axes. That bvec is, for dcm2niix's output
// frame (rows flipped, slices along the normal), (v.row, -v.col, v.normal)
// of a patient-frame v: v is returned, so that every --orient follows. A
// vector of length 0.03..0.97 scales the b-value (GE's multi-shell
// encoding): b * |g|^2 rounded to a multiple of 5 (at least 5), the vector
// scaled by sqrt(b / that). b = 0 or a zero vector: a zero vector.
// DiffusionDirectionality (0018,9075): false for NONE and ISOTROPIC (b = 0,
// or a derived trace image: no direction, whatever vector is stored); true
// for DIRECTIONAL, BMATRIX and when absent.
bool directional(const std::string& directionality);

struct PatientGradient {
  double bvalue = 0;
  std::array<double, 3> lps{0, 0, 0};
};
PatientGradient ge_gradient_to_patient(double bvalue, const std::array<double, 3>& g,
                                       const std::array<double, 6>& iop, bool phase_along_rows);

// A direction given in the image's frame (along the row, the column and the
// slice normal, as UIH's (0065,1037), which dcm2niix writes as the bvec
// (u0, -u1, u2)), in the patient frame (LPS).
std::array<double, 3> image_gradient_to_patient(const std::array<double, 3>& u, const std::array<double, 6>& iop);

// Silences GDCM's own warning/error printing (it may print DICOM values).
void quiet_gdcm();

}  // namespace rapidnii::io
