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
    if (!ds.FindDataElement(shared_tag)) return read_legacy_frames(ds, h, why);
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
    if (h.vendor == SliceHeader::Vendor::Siemens && item) fi.time_after_start = siemens_time_after_start(*item);
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
      // Philips: the frame's private scale slope (2005,100E), in its private
      // per-frame sequence (2005,140F), else the top-level one, gives the
      // precise value FP = (PV*RS + RI) / (RS*SS) as for classic images
      if (h.vendor == SliceHeader::Vendor::Philips) {
        auto ss = binary_numbers(first_item(item, gdcm::Tag(0x2005, 0x140f)), gdcm::Tag(0x2005, 0x100e), 4);
        if (ss.empty()) ss = binary_numbers(&ds, gdcm::Tag(0x2005, 0x100e), 4);
        if (ss.size() == 1 && ss[0] != 0) {
          fi.rescale_intercept = fi.rescale_intercept / (fi.rescale_slope * ss[0]);
          fi.rescale_slope = 1.0 / ss[0];
        }
      }
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
    if (!directional(diff ? element_text(*diff, gdcm::Tag(0x0018, 0x9075)) : std::string())) {
      fi.has_gradient = true;  // NONE or ISOTROPIC: no direction, whatever is stored (dcm2niix)
      fi.gradient = {0, 0, 0};
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

namespace {

// The tags Frame Increment Pointer (0028,0009) names (AT, little endian).
std::vector<gdcm::Tag> frame_pointers(const gdcm::DataSet& ds) {
  std::vector<gdcm::Tag> out;
  const gdcm::Tag t(0x0028, 0x0009);
  if (!ds.FindDataElement(t)) return out;
  const gdcm::ByteValue* bv = ds.GetDataElement(t).GetByteValue();
  if (!bv) return out;
  const auto* p = reinterpret_cast<const unsigned char*>(bv->GetPointer());
  for (size_t i = 0; i + 4 <= bv->GetLength(); i += 4)
    out.emplace_back(uint16_t(p[i] | p[i + 1] << 8), uint16_t(p[i + 2] | p[i + 3] << 8));
  return out;
}

// An NM frame index vector (US, VM 1-n, little endian); empty when absent.
std::vector<uint16_t> index_vector(const gdcm::DataSet& ds, const gdcm::Tag& t) {
  std::vector<uint16_t> out;
  if (!ds.FindDataElement(t)) return out;
  const gdcm::ByteValue* bv = ds.GetDataElement(t).GetByteValue();
  if (!bv) return out;
  const auto* p = reinterpret_cast<const unsigned char*>(bv->GetPointer());
  for (size_t i = 0; i + 2 <= bv->GetLength(); i += 2) out.push_back(uint16_t(p[i] | p[i + 1] << 8));
  return out;
}

}  // namespace

bool read_legacy_frames(const gdcm::DataSet& ds, SliceHeader& h, std::string& why) {
  const int32_t n = h.number_of_frames;
  // What indexes the frames (PS3.3 C.7.6.6, C.8.4.8): a slice number, a
  // time index, or something that is not a place in the patient (energy
  // window, detector, rotation, angular view: projections).
  std::vector<uint16_t> slice;
  std::vector<std::vector<uint16_t>> temporal;
  bool cine = false, projection = false;
  for (const gdcm::Tag& t : frame_pointers(ds)) {
    if (t == gdcm::Tag(0x0018, 0x1063) || t == gdcm::Tag(0x0018, 0x1065)) {  // FrameTime, FrameTimeVector
      cine = true;
      continue;
    }
    if (t.GetGroup() != 0x0054) continue;  // not a frame index (e.g. a private or unrelated tag)
    std::vector<uint16_t> v = index_vector(ds, t);
    if (int64_t(v.size()) != n) {
      why = "multi-frame object: a frame index vector does not match the number of frames";
      return false;
    }
    switch (t.GetElement()) {
      case 0x0080: slice = std::move(v); break;  // SliceVector
      case 0x0030:                               // PhaseVector
      case 0x0060:                               // RRIntervalVector
      case 0x0070:                               // TimeSlotVector
      case 0x0100:                               // TimeSliceVector
        temporal.push_back(std::move(v));
        break;
      default:  // EnergyWindowVector, DetectorVector, RotationVector, AngularViewVector
        if (*std::max_element(v.begin(), v.end()) != *std::min_element(v.begin(), v.end())) projection = true;
    }
  }
  // Where the first frame lies: the top level, else (NM) the one item of
  // the Detector Information Sequence (0054,0022), whose position is that
  // of the first frame.
  bool has_ipp = h.has_position, has_iop = h.has_orientation;
  std::array<double, 3> ipp = h.ipp;
  std::array<double, 6> iop = h.iop;
  const gdcm::Tag detectors(0x0054, 0x0022);
  if ((!has_ipp || !has_iop) && ds.FindDataElement(detectors)) {
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(detectors).GetValueAsSQ();
    if (sq && sq->GetNumberOfItems() == 1) {
      const gdcm::DataSet& d = sq->GetItem(1).GetNestedDataSet();
      auto pos = text_numbers(&d, gdcm::Tag(0x0020, 0x0032));
      auto ori = text_numbers(&d, gdcm::Tag(0x0020, 0x0037));
      if (!has_ipp && pos.size() == 3) {
        has_ipp = true;
        ipp = {pos[0], pos[1], pos[2]};
      }
      if (!has_iop && ori.size() == 6) {
        has_iop = true;
        std::copy(ori.begin(), ori.end(), iop.begin());
      }
    }
  }
  const double step = h.spacing_between_slices > 0 ? h.spacing_between_slices : h.slice_thickness;
  // Frames are placed only when their place follows from the standard:
  // slice k at the first frame's position + (k - 1) x spacing along the
  // normal (row x column), or, with no slice index, every frame of a time
  // series at the one position. Anything else (projections, no geometry,
  // no spacing) is stacked in stored order with its position unknown.
  const bool placed = has_ipp && has_iop && !projection &&
                      (!slice.empty() ? step > 0 : (cine || !temporal.empty()));
  std::vector<int32_t> time_rank(n, 0);
  if (!temporal.empty()) {
    std::vector<std::vector<uint16_t>> keys(n);
    for (int32_t f = 0; f < n; ++f)
      for (const auto& v : temporal) keys[f].push_back(v[f]);
    std::vector<std::vector<uint16_t>> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (int32_t f = 0; f < n; ++f)
      time_rank[f] = int32_t(std::lower_bound(sorted.begin(), sorted.end(), keys[f]) - sorted.begin()) + 1;
  } else if (cine && slice.empty()) {
    for (int32_t f = 0; f < n; ++f) time_rank[f] = f + 1;
    // frames equally spaced in time: FrameTime (ms) is the step
    auto ft = text_numbers(&ds, gdcm::Tag(0x0018, 0x1063));
    if (placed && ft.size() == 1 && ft[0] > 0) h.frame_interval = ft[0];
  }
  const double len_r = std::hypot(iop[0], iop[1], iop[2]), len_c = std::hypot(iop[3], iop[4], iop[5]);
  std::array<double, 3> normal{iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5],
                               iop[0] * iop[4] - iop[1] * iop[3]};
  if (len_r > 0 && len_c > 0)
    for (double& x : normal) x /= len_r * len_c;
  auto frames = std::make_shared<std::vector<FrameInfo>>(n);
  for (int32_t f = 0; f < n; ++f) {
    FrameInfo& fi = (*frames)[f];
    fi.has_orientation = has_iop;
    fi.iop = iop;
    fi.has_position = placed;
    if (placed) {
      const double k = slice.empty() ? 0.0 : double(int32_t(slice[f]) - 1);
      for (int a = 0; a < 3; ++a) fi.ipp[a] = ipp[a] + k * step * normal[a];
      fi.temporal_position = time_rank[f];
    }
    fi.pixel_spacing = h.pixel_spacing;
    fi.slice_thickness = h.slice_thickness;
    fi.spacing_between_slices = h.spacing_between_slices;
    fi.has_rescale = h.has_rescale;
    fi.rescale_slope = h.rescale_slope;
    fi.rescale_intercept = h.rescale_intercept;
    fi.echo_time = h.echo_time;
    fi.echo_number = h.echo_number;
    fi.part = h.part;
    fi.order = f + 1;
  }
  h.frames = std::move(frames);
  return true;
}

}  // namespace rapidnii::io
