// Acquisition fields of the BIDS sidecar that depend on the output voxel
// frame: phase-encoding direction, echo spacing and readout time, slice
// timing. Numbers and axis letters only (nothing identifying).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/dicom_meta.h"
#include "pipeline/series.h"

namespace rapidnii::pipeline {

struct AcquisitionFields {
  // "i", "j-", ...: the output voxel axis along which the phase was encoded,
  // with its polarity (Siemens); PhaseEncodingAxis when the polarity is unknown.
  std::string phase_encoding_direction, phase_encoding_axis;
  std::optional<double> effective_echo_spacing, total_readout_time;  // s
  // Philips EPI: estimated from the water-fat shift (dcm2niix's
  // EstimatedEffectiveEchoSpacing / EstimatedTotalReadoutTime)
  std::optional<double> estimated_effective_echo_spacing, estimated_total_readout_time;  // s
  std::vector<double> slice_timing;                                  // s, one per slice along slice_encoding_direction
  std::string slice_encoding_direction;                              // empty when "k" (the BIDS default)
  // slices excited at once: GE's HyperBand factor, else how many slices
  // share the earliest slice time; 1 when unknown or single-band
  int multiband_factor = 1;
  std::vector<std::string> warnings;                                 // e.g. slice times not written
  std::vector<double> frame_times_start, frame_duration;             // PET dynamic, s (BIDS-PET)
};

// From the series' representative header `m`, its plan `p` (native voxel
// grid, p.affine) and the affine the output is written with (after
// --orient, RAS). As dcm2niix computes them:
//  - the phase axis is the column direction for InPlanePhaseEncodingDirection
//    COL and the row direction for ROW, positive along it when Siemens'
//    PhaseEncodingDirectionPositive is 1; it is named by the output axis
//    nearest to it (none when no axis is within 45 degrees, or the series has
//    no known position);
//  - EffectiveEchoSpacing = 1 / (BandwidthPerPixelPhaseEncode x ReconMatrixPE),
//    ReconMatrixPE the number of voxels along the phase axis (of a mosaic
//    tile); TotalReadoutTime = EffectiveEchoSpacing x (ReconMatrixPE - 1);
//  - GE: TotalReadoutTime = echo spacing (0043,102C) x (lines read - 1),
//    lines read = AcquisitionMatrix's phase lines x ASSET factor (0043,1083)
//    rounded up to an even number; EffectiveEchoSpacing = that /
//    (ReconMatrixPE - 1);
//  - Philips EPI (estimates): readout = WaterFatShift / (3.4 ppm x imaging
//    frequency) x EPI factor / (EPI factor + 1), EstimatedEffectiveEchoSpacing
//    = that / (ReconMatrixPE - 1);
//  - SliceTiming from a Siemens mosaic's MosaicRefAcqTimes, or from Siemens
//    XA's per-slice TimeAfterStart (SeriesPlan::slice_times), in the order of
//    the output slices along the output axis of the acquisition's slices;
//    not written (a warning says so) when a time is not within the
//    repetition time: some Siemens multiband versions store wrong times, and
//    dcm2niix's reconstruction of them from the protocol is not reproduced.
//    GE 2D EPI of several volumes: estimated from the Protocol Data Block
//    as dcm2niix does (acquisition.cpp, ge_slice_times).
//  - MultibandAccelerationFactor: GE's HyperBand factor ((0043,10B6) or the
//    protocol's MBACCEL), else the number of slices at the earliest written
//    slice time when more than one (the count dcm2niix falls back on).
//  - PET dynamic: FrameDuration from ActualFrameDuration, FrameTimesStart
//    from each frame's AcquisitionTime after the first's (only when they
//    increase: scanners that write one time for the series give none).
AcquisitionFields acquisition_fields(const io::SeriesMeta& m, const SeriesPlan& p, const Affine& out_affine);

}  // namespace rapidnii::pipeline
