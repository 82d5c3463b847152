// The descriptive attributes of one series, read from one representative
// file. Raw DICOM text: it is PHI and must only ever reach an output through
// the de-identification module (pipeline/deid).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/ge_protocol.h"
#include "io/input_file.h"

namespace rapidnii::io {

struct SeriesMeta {
  std::string specific_character_set;

  // identity: used only to derive pseudonyms and to scrub descriptors
  std::string patient_id, issuer_of_patient_id, other_patient_ids;
  std::string patient_name, other_patient_names, patient_birth_name, patient_mother_birth_name;
  std::string patient_birth_date, patient_age, patient_sex;
  std::string accession_number, study_id, study_uid;
  std::string referring_physician, performing_physician, operators_name, reading_physicians, requesting_physician;
  std::string institution_name, institution_address, department, station_name, device_serial;
  std::string study_date, study_time, series_date, series_time, acquisition_date, acquisition_time,
      acquisition_datetime, content_date;

  // kept (typed / allow-listed) or cleaned
  std::string modality, manufacturer, model, software_versions, receive_coil, body_part;
  std::string series_description, protocol_name;
  std::string sequence_name, pulse_sequence_name, scanning_sequence, sequence_variant, scan_options, image_type,
      mr_acquisition_type, phase_encoding_direction, convolution_kernel;
  std::string burned_in_annotation, recognizable_visual_features;
  std::optional<double> field_strength, imaging_frequency, flip_angle, inversion_time, pixel_bandwidth,
      slice_thickness, spacing_between_slices, echo_time, repetition_time, kvp, percent_phase_fov,
      parallel_reduction;
  std::optional<int> series_number, acquisition_number, echo_number;
  std::vector<double> image_orientation;  // ImageOrientationPatient (6 values), empty if absent
  std::string pet_units, decay_correction;  // PET (0054,1001), (0054,1102): code strings
  // Philips classic images with a private scale slope (2005,100E): the
  // factors of the precise values written, so that users can get back to
  // the displayed ones (FP = (SV*RS + RI) / (RS*SS), DV = SV*RS + RI)
  std::optional<double> philips_rescale_slope, philips_rescale_intercept, philips_scale_slope;

  // Siemens acquisition details (numbers only): the CSA image header's
  // PhaseEncodingDirectionPositive (GE: from RectilinearPhaseEncodeReordering
  // (0018,9034)), BandwidthPerPixelPhaseEncode (0019,1028)
  // and the slice acquisition times of a mosaic, MosaicRefAcqTimes (0019,1029)
  // in ms from the start of the volume (CSA values when the tags are absent).
  std::optional<int> phase_encoding_positive;
  std::optional<double> bandwidth_per_pixel_phase_encode;
  // GE EPI timing: echo spacing (0043,102C) in microseconds, the in-plane
  // ASSET factor (first value of (0043,1083), lines kept per line: 0.5 for
  // R = 2) and the phase-encoding lines of AcquisitionMatrix (0018,1310).
  std::optional<double> ge_echo_spacing_us, ge_asset_factor;
  std::optional<int> acquisition_phase_lines;
  // Philips EPI: WaterFatShift (2001,1022, pixels) and EPI factor (2001,1013).
  std::optional<double> philips_water_fat_shift;
  std::optional<int> philips_epi_factor;
  std::vector<double> mosaic_slice_times_ms;
  // true when a mosaic stored no times and these are the protocol's estimate
  // (io::siemens_protocol_slice_times_ms: slice order, TR, delay in TR)
  bool mosaic_slice_times_from_protocol = false;
  // the same times of the series' second volume (filled by the caller: some
  // multiband versions store wrong times in the first volume only)
  std::vector<double> mosaic_slice_times_ms_second;
  // GE slice timing inputs (numbers and flags only): the Protocol Data Block
  // (0025,101B), PulseSequenceName (0019,109C: "epi", "epiRT", "epi2"...) and
  // the HyperBand factor (first value of (0043,10B6)).
  std::optional<GeProtocol> ge_protocol;
  std::string ge_pulse_sequence;
  int ge_multiband = 1;
};

// Reads the header of `path` (stops before PixelData). Throws
// std::runtime_error with a non-identifying message on failure.
SeriesMeta read_series_meta(const InputFile& in);

}  // namespace rapidnii::io
