// Enhanced (multi-frame) MR/CT/PET objects: the per-frame functional groups
// (PS3.3 C.7.6.16) read into one FrameInfo per frame, the shared groups
// used where a frame has none. Numbers only; nothing here is written out.
#pragma once
#include <gdcmDataSet.h>

#include <string>

#include "io/dicom_header.h"

namespace rapidnii::io {

// Fills h.frames for an object with NumberOfFrames > 1. Returns false with a
// non-identifying reason when the frames cannot be placed in space (shared
// functional groups without per-frame ones, or a frame without
// position/orientation). An object with no functional groups at all is a
// legacy multi-frame image: read_legacy_frames.
bool read_enhanced_frames(const gdcm::DataSet& ds, SliceHeader& h, std::string& why);

// Legacy multi-frame objects (NM, old MR/CT multi-frame, XA/RF cine; PS3.3
// C.7.6.6 and C.8.4.8): the frames are indexed by the attributes Frame
// Increment Pointer (0028,0009) names. A SliceVector (0054,0080) places
// slice k at the first frame's position (top level, else the one item of the
// Detector Information Sequence) + (k - 1) x SpacingBetweenSlices (else
// SliceThickness) along row x column; time indices (Time Slot / Time Slice /
// Phase / R-R Interval Vector, or Frame Time for a cine) give the temporal
// position; frames at one position form a time series. Frames indexed by
// anything else (energy window, detector, rotation, angular view: projections),
// or without the geometry, keep no position: stacked in stored order, their
// position unknown (qform/sform code 0). Returns false with a reason when an
// index vector does not have one value per frame.
bool read_legacy_frames(const gdcm::DataSet& ds, SliceHeader& h, std::string& why);

}  // namespace rapidnii::io
