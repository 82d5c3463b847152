#include "io/enhanced_frames.h"
#include "io/gdcm_text.h"

#include <gdcmItem.h>
#include <gdcmSequenceOfItems.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <vector>

namespace rapidnii::io {

namespace {

// Text numbers (DS/IS); empty when absent or unparsable.
std::vector<double> text_numbers(const gdcm::DataSet* ds, const gdcm::Tag& t) {
  if (!ds) return {};
  std::vector<double> v = parse_numbers(element_text(*ds, t));
  for (double x : v)
    if (!std::isfinite(x)) return {};
  return v;
}

// Binary little-endian values of width 8 (FD) or 4 (FL/UL); text when the VR says DS/IS.
std::vector<double> binary_numbers(const gdcm::DataSet* ds, const gdcm::Tag& t, size_t width, bool is_int = false) {
  std::vector<double> out;
  if (!ds || !ds->FindDataElement(t)) return out;
  const gdcm::DataElement& de = ds->GetDataElement(t);
  if (de.GetVR() == gdcm::VR::DS || de.GetVR() == gdcm::VR::IS) return text_numbers(ds, t);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || bv->GetLength() % width != 0) return out;
  for (size_t i = 0; i + width <= bv->GetLength(); i += width) {
    double v;
    if (width == 8) {
      std::memcpy(&v, bv->GetPointer() + i, 8);
    } else if (is_int) {
      uint32_t u;
      std::memcpy(&u, bv->GetPointer() + i, 4);
      v = u;
    } else {
      float f;
      std::memcpy(&f, bv->GetPointer() + i, 4);
      v = f;
    }
    if (!std::isfinite(v)) return {};
    out.push_back(v);
  }
  return out;
}

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

SliceHeader::Part part_of(const gdcm::DataSet* frame_type) {
  using P = SliceHeader::Part;
  if (!frame_type) return P::Unknown;
  const std::string c = upper(element_text(*frame_type, gdcm::Tag(0x0008, 0x9208)));
  if (c == "MAGNITUDE") return P::Magnitude;
  if (c == "PHASE") return P::Phase;
  if (c == "REAL") return P::Real;
  if (c == "IMAGINARY") return P::Imaginary;
  return P::Unknown;
}

}  // namespace

bool read_enhanced_frames(const gdcm::DataSet& ds, SliceHeader& h, std::string& why) {
  const int32_t n = h.number_of_frames;
  const gdcm::Tag per_frame_tag(0x5200, 0x9230), shared_tag(0x5200, 0x9229);
  if (!ds.FindDataElement(per_frame_tag)) {
    why = "multi-frame object without per-frame functional groups";
    return false;
  }
  gdcm::SmartPointer<gdcm::SequenceOfItems> per_frame = ds.GetDataElement(per_frame_tag).GetValueAsSQ();
  if (!per_frame || int64_t(per_frame->GetNumberOfItems()) != n) {
    why = "multi-frame object: per-frame functional groups do not match the number of frames";
    return false;
  }
  const gdcm::DataSet* shared = first_item(&ds, shared_tag);
  // Enhanced MR keeps TR in the MR Timing and Related Parameters group
  // (C.8.13.5.2); a top-level RepetitionTime is not part of that IOD.
  auto tr = text_numbers(functional_group(ds, gdcm::Tag(0x0018, 0x9112)), gdcm::Tag(0x0018, 0x0080));
  if (tr.size() == 1 && tr[0] > 0) h.repetition_time = tr[0];
  auto frames = std::make_shared<std::vector<FrameInfo>>(n);
  std::vector<std::vector<double>> dim_index(n);
  std::map<std::string, int32_t> stacks;
  const bool is_int = true;
  for (int32_t f = 0; f < n; ++f) {
    const gdcm::DataSet* item = &per_frame->GetItem(f + 1).GetNestedDataSet();
    // a functional group macro: the frame's own, else the shared one
    auto group = [&](uint16_t g, uint16_t e) {
      const gdcm::DataSet* d = first_item(item, gdcm::Tag(g, e));
      return d ? d : first_item(shared, gdcm::Tag(g, e));
    };
    FrameInfo& fi = (*frames)[f];
    auto pos = text_numbers(group(0x0020, 0x9113), gdcm::Tag(0x0020, 0x0032));
    if (pos.size() == 3) {
      fi.has_position = true;
      fi.ipp = {pos[0], pos[1], pos[2]};
    }
    auto ori = text_numbers(group(0x0020, 0x9116), gdcm::Tag(0x0020, 0x0037));
    if (ori.size() == 6) {
      fi.has_orientation = true;
      std::copy(ori.begin(), ori.end(), fi.iop.begin());
    } else if (h.has_orientation) {
      fi.has_orientation = true;
      fi.iop = h.iop;
    }
    if (!fi.has_position || !fi.has_orientation) {
      why = "multi-frame object: a frame has no position or orientation";
      return false;
    }
    const gdcm::DataSet* measures = group(0x0028, 0x9110);
    auto ps = text_numbers(measures, gdcm::Tag(0x0028, 0x0030));
    fi.pixel_spacing = ps.size() == 2 && ps[0] > 0 && ps[1] > 0 ? std::array<double, 2>{ps[0], ps[1]} : h.pixel_spacing;
    auto th = text_numbers(measures, gdcm::Tag(0x0018, 0x0050));
    fi.slice_thickness = th.size() == 1 ? th[0] : h.slice_thickness;
    auto sb = text_numbers(measures, gdcm::Tag(0x0018, 0x0088));
    fi.spacing_between_slices = sb.size() == 1 ? sb[0] : h.spacing_between_slices;
    const gdcm::DataSet* pvt = group(0x0028, 0x9145);
    auto slope = text_numbers(pvt, gdcm::Tag(0x0028, 0x1053));
    auto inter = text_numbers(pvt, gdcm::Tag(0x0028, 0x1052));
    if (!slope.empty() || !inter.empty()) {
      fi.has_rescale = true;
      fi.rescale_slope = !slope.empty() && slope[0] != 0 ? slope[0] : 1.0;
      fi.rescale_intercept = !inter.empty() ? inter[0] : 0.0;
    } else {
      fi.has_rescale = h.has_rescale;
      fi.rescale_slope = h.rescale_slope;
      fi.rescale_intercept = h.rescale_intercept;
    }
    auto te = binary_numbers(group(0x0018, 0x9114), gdcm::Tag(0x0018, 0x9082), 8);
    fi.echo_time = te.size() == 1 ? te[0] : h.echo_time;
    const gdcm::DataSet* content = group(0x0020, 0x9111);
    if (content) {
      const std::string sid = element_text(*content, gdcm::Tag(0x0020, 0x9056));
      auto [it, fresh] = stacks.emplace(sid, int32_t(stacks.size()) + 1);
      fi.stack = sid.empty() ? 0 : it->second;
      auto tp = binary_numbers(content, gdcm::Tag(0x0020, 0x9128), 4, is_int);
      if (tp.size() == 1) fi.temporal_position = int32_t(std::clamp(tp[0], 0.0, 2147483647.0));
      dim_index[f] = binary_numbers(content, gdcm::Tag(0x0020, 0x9157), 4, is_int);
    }
    const gdcm::DataSet* diff = group(0x0018, 0x9117);
    auto b = binary_numbers(diff, gdcm::Tag(0x0018, 0x9087), 8);
    if (b.size() == 1 && b[0] >= 0) {
      fi.has_bvalue = true;
      fi.bvalue = b[0];
    }
    auto g = binary_numbers(first_item(diff, gdcm::Tag(0x0018, 0x9076)), gdcm::Tag(0x0018, 0x9089), 8);
    if (g.size() == 3) {
      fi.has_gradient = true;
      fi.gradient = {g[0], g[1], g[2]};
    }
    const gdcm::DataSet* ft = group(0x0018, 0x9226);  // MR image frame type
    if (!ft) ft = group(0x0018, 0x9329);              // CT image frame type
    fi.part = part_of(ft);
    if (fi.part == SliceHeader::Part::Unknown) fi.part = h.part;
  }
  // echoes: numbered by effective echo time when they differ
  std::vector<double> tes;
  for (const FrameInfo& fi : *frames) tes.push_back(fi.echo_time);
  std::sort(tes.begin(), tes.end());
  tes.erase(std::unique(tes.begin(), tes.end(), [](double a, double b) { return std::abs(a - b) < 1e-4; }), tes.end());
  for (FrameInfo& fi : *frames) {
    fi.echo_number = h.echo_number;
    if (tes.size() > 1)
      for (size_t e = 0; e < tes.size(); ++e)
        if (std::abs(tes[e] - fi.echo_time) < 1e-4) fi.echo_number = int32_t(e) + 1;
  }
  // volume order: DimensionIndexValues (lexicographic), then frame number
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return dim_index[a] < dim_index[b]; });
  for (int32_t r = 0; r < n; ++r) (*frames)[idx[r]].order = r + 1;
  h.frames = std::move(frames);
  return true;
}

}  // namespace rapidnii::io
