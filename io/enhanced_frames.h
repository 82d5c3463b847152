// Enhanced (multi-frame) MR/CT/PET objects: the per-frame functional groups
// (PS3.3 C.7.6.16) read into one FrameInfo per frame, the shared groups
// used where a frame has none. Numbers only; nothing here is written out.
#pragma once
#include <gdcmDataSet.h>

#include <string>

#include "io/dicom_header.h"

namespace rapidnii::io {

// Fills h.frames for an object with NumberOfFrames > 1. Returns false with a
// non-identifying reason when the frames cannot be placed in space (no
// functional groups, or a frame without position/orientation).
bool read_enhanced_frames(const gdcm::DataSet& ds, SliceHeader& h, std::string& why);

}  // namespace rapidnii::io
