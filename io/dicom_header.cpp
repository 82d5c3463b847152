#include "io/dicom_header.h"
#include "io/dicom_probe.h"
#include "io/enhanced_frames.h"
#include "io/gdcm_text.h"
#include "io/parser_guard.h"
#include "io/siemens_csa.h"

#include <gdcmAttribute.h>
#include <gdcmDataSet.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmTrace.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>
#include <vector>

namespace rapidnii::io {

const char* skip_reason_code(SkipReason r) {
  switch (r) {
    case SkipReason::None: return "ok";
    case SkipReason::EmptyFile: return "empty_file";
    case SkipReason::Unreadable: return "unreadable";
    case SkipReason::NotDicom: return "not_dicom";
    case SkipReason::NoImage: return "no_image";
    case SkipReason::TruncatedPixels: return "truncated_pixel_data";
    case SkipReason::Unsupported: return "unsupported";
    case SkipReason::BurnedInRisk: return "burned_in_risk";
    case SkipReason::TruncatedHeader: return "truncated_header";
    case SkipReason::Malformed: return "malformed";
    case SkipReason::BrokenArchive: return "broken_archive";
    case SkipReason::ArchiveTooLarge: return "archive_too_large";
    case SkipReason::Duplicate: return "duplicate";
  }
  return "unknown";
}

const char* skip_reason_text(SkipReason r) {
  switch (r) {
    case SkipReason::None: return "ok";
    case SkipReason::EmptyFile: return "empty file";
    case SkipReason::Unreadable: return "cannot be read";
    case SkipReason::NotDicom: return "not a DICOM file";
    case SkipReason::NoImage: return "DICOM without image pixel data";
    case SkipReason::TruncatedPixels: return "truncated pixel data";
    case SkipReason::Unsupported: return "unsupported DICOM image";
    case SkipReason::BurnedInRisk: return "burned-in text risk, not converted";
    case SkipReason::TruncatedHeader: return "truncated DICOM header";
    case SkipReason::Malformed: return "malformed DICOM (impossible VR, length or nesting)";
    case SkipReason::BrokenArchive: return "archive cannot be read to its end";
    case SkipReason::ArchiveTooLarge: return "archive larger than the in-memory limit";
    case SkipReason::Duplicate: return "duplicate of another input (same SOP instance)";
  }
  return "unknown";
}

const char* burned_in_code(BurnedInRisk r) {
  switch (r) {
    case BurnedInRisk::None: return "none";
    case BurnedInRisk::BurnedInAnnotation: return "burned_in_annotation";
    case BurnedInRisk::SecondaryCapture: return "secondary_capture";
    case BurnedInRisk::Ultrasound: return "ultrasound";
    case BurnedInRisk::NonImageObject: return "non_image_object";
    case BurnedInRisk::ModalityAtRisk: return "modality_at_risk";
    case BurnedInRisk::ImageTypeAtRisk: return "image_type_at_risk";
    case BurnedInRisk::DescriptionAtRisk: return "description_at_risk";
    case BurnedInRisk::SecondaryCaptureDevice: return "secondary_capture_device";
    case BurnedInRisk::DerivedColour: return "derived_colour";
  }
  return "unknown";
}

const char* part_name(SliceHeader::Part p) {
  switch (p) {
    case SliceHeader::Part::Magnitude: return "mag";
    case SliceHeader::Part::Phase: return "phase";
    case SliceHeader::Part::Real: return "real";
    case SliceHeader::Part::Imaginary: return "imag";
    case SliceHeader::Part::Unknown: return "";
  }
  return "";
}

void quiet_gdcm() {
  gdcm::Trace::SetDebug(false);
  gdcm::Trace::SetWarning(false);
  gdcm::Trace::SetError(false);
}

namespace {

std::vector<double> element_numbers(const gdcm::DataSet& ds, const gdcm::Tag& t) {
  std::string s = element_text(ds, t);
  if (s.empty()) return {};
  return parse_numbers(s);
}

bool element_number(const gdcm::DataSet& ds, const gdcm::Tag& t, double& out) {
  auto v = element_numbers(ds, t);
  if (v.empty() || !std::isfinite(v[0])) return false;
  out = v[0];
  return true;
}

int32_t element_int(const gdcm::DataSet& ds, const gdcm::Tag& t, int32_t fallback = 0) {
  double v;
  if (!element_number(ds, t, v)) return fallback;
  return static_cast<int32_t>(std::lround(v));
}

// US values (binary). gdcm::Attribute takes care of the byte order.
template <uint16_t G, uint16_t E>
bool us_value(const gdcm::DataSet& ds, uint16_t& out) {
  gdcm::Tag t(G, E);
  if (!ds.FindDataElement(t) || ds.GetDataElement(t).IsEmpty()) return false;
  gdcm::Attribute<G, E> a;
  a.SetFromDataElement(ds.GetDataElement(t));
  out = static_cast<uint16_t>(a.GetValue());
  return true;
}

// hhmmss.frac -> seconds after midnight
double dicom_time_seconds(const std::string& s) {
  if (s.size() < 2) return -1;
  std::string t;
  for (char c : s)
    if (c != ':') t.push_back(c);
  auto digits = [&](size_t at) -> int {
    if (t.size() < at + 2) return 0;
    return (t[at] - '0') * 10 + (t[at + 1] - '0');
  };
  double frac = 0;
  size_t dot = t.find('.');
  if (dot != std::string::npos) frac = std::strtod(t.c_str() + dot, nullptr);
  return digits(0) * 3600.0 + digits(2) * 60.0 + digits(4) + frac;
}

}  // namespace

std::vector<double> element_values(const gdcm::DataSet& ds, const gdcm::Tag& t, size_t width) {
  std::vector<double> out;
  if (!ds.FindDataElement(t)) return out;
  const gdcm::DataElement& de = ds.GetDataElement(t);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || bv->GetLength() == 0) return out;
  const gdcm::VR vr = de.GetVR();
  const bool text = vr == gdcm::VR::DS || vr == gdcm::VR::IS;
  const bool binary = vr == gdcm::VR::FL || vr == gdcm::VR::FD;
  const size_t n = bv->GetLength();
  if (binary || (!text && n % width == 0)) {
    const size_t w = vr == gdcm::VR::FL ? 4 : vr == gdcm::VR::FD ? 8 : width;
    if (n % w != 0) return out;
    for (size_t i = 0; i + w <= n; i += w) {
      double v;
      if (w == 4) {
        float f;
        std::memcpy(&f, bv->GetPointer() + i, 4);
        v = f;
      } else {
        std::memcpy(&v, bv->GetPointer() + i, 8);
      }
      if (!std::isfinite(v)) return {};
      out.push_back(v);
    }
    return out;
  }
  for (double v : parse_numbers(element_text(ds, t))) {
    if (!std::isfinite(v)) return {};
    out.push_back(v);
  }
  return out;
}

std::vector<int> integer_values(const gdcm::DataSet& ds, const gdcm::Tag& t, size_t width, bool is_signed) {
  std::vector<int> out;
  if ((width != 2 && width != 4) || !ds.FindDataElement(t)) return out;
  const gdcm::DataElement& de = ds.GetDataElement(t);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || bv->GetLength() == 0) return out;
  if (de.GetVR() == gdcm::VR::IS || de.GetVR() == gdcm::VR::DS) {
    for (double v : parse_numbers(element_text(ds, t)))
      if (std::isfinite(v) && std::abs(v) < 2e9) out.push_back(int(std::lround(v)));
    return out;
  }
  if (bv->GetLength() % width != 0) return out;
  for (size_t i = 0; i + width <= bv->GetLength(); i += width) {
    if (width == 2) {
      uint16_t u;
      std::memcpy(&u, bv->GetPointer() + i, 2);
      out.push_back(is_signed ? int(int16_t(u)) : int(u));
    } else {
      uint32_t u;
      std::memcpy(&u, bv->GetPointer() + i, 4);
      if (!is_signed && u > 0x7fffffffu) return {};
      out.push_back(int(int32_t(u)));
    }
  }
  return out;
}

std::map<std::string, std::vector<std::string>> siemens_image_csa(const gdcm::DataSet& ds) {
  const gdcm::PrivateTag t(0x0029, 0x10, "SIEMENS CSA HEADER");
  if (!ds.FindDataElement(t)) return {};
  const gdcm::ByteValue* bv = ds.GetDataElement(t).GetByteValue();
  if (!bv || bv->GetLength() == 0) return {};
  return parse_siemens_csa(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bv->GetPointer()), bv->GetLength()));
}

namespace {

// Numbers of a DS/IS element (text whatever the VR says).
std::vector<double> text_values(const gdcm::DataSet& ds, const gdcm::Tag& t) {
  std::vector<double> out;
  for (double v : parse_numbers(element_text(ds, t))) {
    if (!std::isfinite(v)) return {};
    out.push_back(v);
  }
  return out;
}

void read_siemens_mosaic(const gdcm::DataSet& ds, SliceHeader& h) {
  const bool mosaic = h.image_type.find("MOSAIC") != std::string::npos;
  if (!mosaic && h.vendor != SliceHeader::Vendor::Siemens) return;
  if (const auto csa = siemens_image_csa(ds); !csa.empty()) {
    // diffusion (every Siemens image)
    auto b = csa_numbers(csa, "B_value");
    if (!b.empty() && b[0] >= 0) {
      h.has_bvalue = true;
      h.bvalue = b[0];
    }
    auto g = csa_numbers(csa, "DiffusionGradientDirection");
    if (g.size() == 3) {
      h.has_gradient = true;
      h.gradient = {g[0], g[1], g[2]};
    }
    if (!mosaic) return;
    auto n = csa_numbers(csa, "NumberOfImagesInMosaic");
    if (!n.empty() && n[0] >= 1 && n[0] < 65536) h.mosaic_images = static_cast<uint16_t>(n[0]);
    auto sn = csa_numbers(csa, "SliceNormalVector");
    if (sn.size() == 3) {
      h.has_slice_normal = true;
      h.slice_normal = {sn[0], sn[1], sn[2]};
    }
  }
  if (!mosaic) return;
  if (h.mosaic_images == 0) {
    // (0019,xx0A) NumberOfImagesInMosaic in the "SIEMENS MR HEADER" block
    gdcm::PrivateTag pt(0x0019, 0x0a, "SIEMENS MR HEADER");
    if (ds.FindDataElement(pt)) {
      const gdcm::DataElement& de = ds.GetDataElement(pt);
      const gdcm::ByteValue* bv = de.GetByteValue();
      if (bv && bv->GetLength() == 2) {
        uint16_t v;
        std::memcpy(&v, bv->GetPointer(), 2);
        h.mosaic_images = v;
      }
    }
  }
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool has_value(const std::string& multi, const char* v) {
  size_t i = 0;
  const std::string u = upper(multi);
  while (i <= u.size()) {
    size_t j = u.find('\\', i);
    if (j == std::string::npos) j = u.size();
    std::string item = u.substr(i, j - i);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    if (item == v) return true;
    i = j + 1;
  }
  return false;
}

int32_t to_i32(double v) { return static_cast<int32_t>(std::lround(std::clamp(v, -2147483648.0, 2147483647.0))); }

// Diffusion b-value and gradient: the standard attributes first, then the
// vendor places dcm2niix reads (Siemens CSA is read with the mosaic).
void read_diffusion(const gdcm::DataSet& ds, SliceHeader& h) {
  using V = SliceHeader::Vendor;
  auto b = element_values(ds, gdcm::Tag(0x0018, 0x9087), 8);
  if (b.size() == 1 && b[0] >= 0) {
    h.has_bvalue = true;
    h.bvalue = b[0];
  }
  auto g = element_values(ds, gdcm::Tag(0x0018, 0x9089), 8);
  if (g.size() == 3) {
    h.has_gradient = true;
    h.gradient = {g[0], g[1], g[2]};
  }
  if (!directional(element_text(ds, gdcm::Tag(0x0018, 0x9075)))) {
    h.has_gradient = true;  // NONE or ISOTROPIC: no direction, whatever is stored (dcm2niix)
    h.gradient = {0, 0, 0};
  }
  if (h.vendor == V::Philips) {
    if (!h.has_bvalue) {
      auto pb = element_values(ds, gdcm::Tag(0x2001, 0x1003), 4);
      if (pb.size() == 1 && pb[0] >= 0) {
        h.has_bvalue = true;
        h.bvalue = pb[0];
      }
    }
    if (!h.has_gradient) {
      auto x = element_values(ds, gdcm::Tag(0x2005, 0x10b0), 4);
      auto y = element_values(ds, gdcm::Tag(0x2005, 0x10b1), 4);
      auto z = element_values(ds, gdcm::Tag(0x2005, 0x10b2), 4);
      if (x.size() == 1 && y.size() == 1 && z.size() == 1) {
        h.has_gradient = true;
        h.gradient = {x[0], y[0], z[0]};
      }
    }
    auto o = text_values(ds, gdcm::Tag(0x2005, 0x1596));
    if (o.size() == 1) h.philips_diffusion_order = to_i32(o[0]);
    auto bn = text_values(ds, gdcm::Tag(0x2005, 0x1412));
    if (bn.size() == 1) h.philips_bvalue_number = to_i32(bn[0]);
    auto gn = text_values(ds, gdcm::Tag(0x2005, 0x1413));
    if (gn.size() == 1) h.philips_gradient_number = to_i32(gn[0]);
  }
  if (h.vendor == V::GE) {
    if (!h.has_bvalue) {
      auto gb = parse_numbers(element_text(ds, gdcm::Tag(0x0043, 0x1039)));
      if (!gb.empty() && std::isfinite(gb[0]) && gb[0] >= 0) {
        h.has_bvalue = true;
        h.bvalue = gb[0] >= 1e9 ? std::fmod(gb[0], 1e9) : gb[0];  // GE adds 1e9 (dcm2niix)
      }
    }
    if (!h.has_gradient) {
      auto x = parse_numbers(element_text(ds, gdcm::Tag(0x0019, 0x10bb)));
      auto y = parse_numbers(element_text(ds, gdcm::Tag(0x0019, 0x10bc)));
      auto z = parse_numbers(element_text(ds, gdcm::Tag(0x0019, 0x10bd)));
      if (x.size() == 1 && y.size() == 1 && z.size() == 1 && std::isfinite(x[0]) && std::isfinite(y[0]) &&
          std::isfinite(z[0])) {
        // GE's logical frame (frequency, phase, slice) to the patient's
        const std::string pe = upper(element_text(ds, gdcm::Tag(0x0018, 0x1312)));
        h.ge_gradient_pe_assumed = pe != "ROW" && pe != "COL";
        const PatientGradient pg =
            ge_gradient_to_patient(h.has_bvalue ? h.bvalue : 0.0, {x[0], y[0], z[0]}, h.iop, pe == "ROW");
        h.has_gradient = true;
        h.gradient = pg.lps;
        if (h.has_bvalue) h.bvalue = pg.bvalue;
      }
    }
  }
  if (h.vendor == V::UIH) {
    // UIH's private block (creator "Image Private Header", fixed tags as
    // dcm2niix reads them): the actual b-value, and a direction in the
    // image's frame; both take precedence over (0018,9087/9089)
    auto ub = element_values(ds, gdcm::Tag(0x0065, 0x1009), 8);
    if (ub.size() == 1 && std::isfinite(ub[0]) && ub[0] >= 0) {
      h.has_bvalue = true;
      h.bvalue = ub[0];
    }
    auto ug = element_values(ds, gdcm::Tag(0x0065, 0x1037), 8);
    if (ug.size() == 3 && std::isfinite(ug[0]) && std::isfinite(ug[1]) && std::isfinite(ug[2])) {
      h.has_gradient = true;
      h.gradient = image_gradient_to_patient({ug[0], ug[1], ug[2]}, h.iop);
    }
  }
}

// GE's epi_pepolar sequence (PulseSequenceName (0019,109C) holding
// "epi_pepolar") stores its reversed-polarity images with their rows in
// reverse order and nothing else in the header to say so; UserData12
// (0019,10B3) is the mode: 0 all forward, 1 all reversed, 2 reversed then
// forward, 3 forward then reversed, alternating by TemporalPositionIdentifier
// (dcm2niix from v1.0.20210814, which this follows: in modes 2 and 3 the
// reversed volumes become series number + 1000, a series of their own; with
// no temporal position, modes 2 and 3 leave every image as it is).
void read_ge_pepolar(const gdcm::DataSet& ds, SliceHeader& h) {
  gdcm::Tag name_tag(0x0019, 0x109c), mode_tag(0x0019, 0x10b3);
  const gdcm::PrivateTag named(0x0019, 0x9c, "GEMS_ACQU_01");
  if (ds.FindDataElement(named)) {
    name_tag = ds.GetDataElement(named).GetTag();
    mode_tag = gdcm::Tag(0x0019, uint16_t((name_tag.GetElement() & 0xff00) | 0xb3));
  } else if (ds.FindDataElement(gdcm::Tag(0x0019, 0x0010))) {
    return;  // block 0x10 of group 0019 belongs to another creator
  }
  if (upper(element_text(ds, name_tag)).find("EPI_PEPOLAR") == std::string::npos) return;
  const auto mode = parse_numbers(element_text(ds, mode_tag));
  if (mode.size() != 1 || !(mode[0] >= 0 && mode[0] <= 3) || mode[0] != std::floor(mode[0])) return;
  const int m = int(mode[0]);
  const int32_t tp = h.temporal_position;
  const bool reversed = m == 1 || (m == 2 && tp >= 1 && tp % 2 == 1) || (m == 3 && tp >= 2 && tp % 2 == 0);
  if (!reversed) return;
  h.rows_reversed = true;
  if (m >= 2) h.series_number += 1000;
}

// DEID-POLICY P3: series likely to carry burned-in text (rules after CTP's
// BurnedInPixelsFilter and deid's blacklist).
BurnedInRisk burned_in_risk(const gdcm::DataSet& ds, const SliceHeader& h) {
  const std::string sop = h.sop_class_uid;
  if (upper(element_text(ds, gdcm::Tag(0x0028, 0x0301))) == "YES") return BurnedInRisk::BurnedInAnnotation;
  if (sop == "1.2.840.10008.5.1.4.1.1.7" || starts_with(sop, "1.2.840.10008.5.1.4.1.1.7."))
    return BurnedInRisk::SecondaryCapture;
  if (starts_with(sop, "1.2.840.10008.5.1.4.1.1.6.") || starts_with(sop, "1.2.840.10008.5.1.4.1.1.3."))
    return BurnedInRisk::Ultrasound;
  if (starts_with(sop, "1.2.840.10008.5.1.4.1.1.104.") || starts_with(sop, "1.2.840.10008.5.1.4.1.1.88.") ||
      starts_with(sop, "1.2.840.10008.5.1.4.1.1.11."))
    return BurnedInRisk::NonImageObject;
  const std::string mod = upper(h.modality);
  for (const char* m : {"US", "OT", "SC", "DOC", "SR", "PR", "KO"})
    if (mod == m) return BurnedInRisk::ModalityAtRisk;
  for (const char* t : {"SCREEN SAVE", "SECONDARY", "REPORT", "DEMOGRAPHICDATA", "INVALID"})
    if (has_value(h.image_type, t)) return BurnedInRisk::ImageTypeAtRisk;
  const std::string desc = upper(element_text(ds, gdcm::Tag(0x0008, 0x103e)));
  for (const char* d : {"DOSE REPORT", "SCREEN SAVE", "REPORT", "PHOENIXZIPREPORT", "PATIENT PROTOCOL"})
    if (desc.find(d) != std::string::npos) return BurnedInRisk::DescriptionAtRisk;
  // Present with a value: some scanners (Philips) write these empty on
  // every original image, which says nothing about a capture.
  for (uint16_t e : {0x1012, 0x1010, 0x1016, 0x1018, 0x1019})
    if (!element_text(ds, gdcm::Tag(0x0018, e)).empty()) return BurnedInRisk::SecondaryCaptureDevice;
  const std::string pi = upper(h.photometric);
  const bool colour = h.samples_per_pixel > 1 || starts_with(pi, "RGB") || starts_with(pi, "YBR");
  if (colour && (mod == "MR" || mod == "CT") && has_value(h.image_type, "DERIVED")) return BurnedInRisk::DerivedColour;
  return BurnedInRisk::None;
}

bool is_native_transfer_syntax(const std::string& ts) {
  return ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2.2";
}

}  // namespace

std::string element_text(const gdcm::DataSet& ds, const gdcm::Tag& t) {
  if (!ds.FindDataElement(t)) return {};
  const gdcm::DataElement& de = ds.GetDataElement(t);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || bv->GetLength() == 0) return {};
  std::string s(bv->GetPointer(), bv->GetLength());
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\0')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\0')) --e;
  return s.substr(b, e - b);
}

std::vector<double> parse_numbers(const std::string& s) {
  std::vector<double> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find('\\', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    char* end = nullptr;
    double v = std::strtod(item.c_str(), &end);
    if (end != item.c_str() && std::isfinite(v)) out.push_back(v);
    else out.push_back(std::nan(""));
    i = j + 1;
  }
  return out;
}

const gdcm::DataSet* first_item(const gdcm::DataSet* ds, const gdcm::Tag& t) {
  if (!ds || !ds->FindDataElement(t)) return nullptr;
  gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds->GetDataElement(t).GetValueAsSQ();
  if (!sq || sq->GetNumberOfItems() < 1) return nullptr;
  return &sq->GetItem(1).GetNestedDataSet();
}

HeaderRead read_header_gdcm(const InputFile& in, std::span<const uint8_t> header_bytes) {
  const gdcm::Tag pixel_data(0x7fe0, 0x0010);
  HeaderRead h{header_bytes.empty() ? open_input(in) : open_memory_input(header_bytes),
               std::make_unique<gdcm::Reader>()};
  h.reader->SetStream(*h.stream);
  if (h.reader->ReadUpToTag(pixel_data, {gdcm::Tag(0x7fe0, 0x0008), gdcm::Tag(0x7fe0, 0x0009), pixel_data}))
    return h;
  h = {open_input(in), std::make_unique<gdcm::Reader>()};
  h.reader->SetStream(*h.stream);
  if (h.reader->Read()) return h;
  return {};
}

const gdcm::DataSet* functional_group(const gdcm::DataSet& ds, const gdcm::Tag& t) {
  if (const gdcm::DataSet* d = first_item(first_item(&ds, gdcm::Tag(0x5200, 0x9229)), t)) return d;
  return first_item(first_item(&ds, gdcm::Tag(0x5200, 0x9230)), t);
}

namespace {

// The GDCM part of the indexer (run under the parser guard). Returns true
// when `r` holds the answer.
bool parse_header(const InputFile& in, const IndexOptions& opt, uint64_t size, uint16_t pixel_element,
                  std::span<const uint8_t> header_bytes, IndexResult& r) {
  // (the probe has already vouched for the structure)
  const HeaderRead read = read_header_gdcm(in, header_bytes);
  if (!read.reader) {
    r.skip = SkipReason::NotDicom;
    return true;
  }
  const gdcm::File& file = read.reader->GetFile();
  const gdcm::DataSet& ds = file.GetDataSet();
  SliceHeader& h = r.header;

  h.transfer_syntax = element_text(file.GetHeader(), gdcm::Tag(0x0002, 0x0010));
  if (h.transfer_syntax.empty()) {
    gdcm::TransferSyntax ts = file.GetHeader().GetDataSetTransferSyntax();
    if (const char* s = gdcm::TransferSyntax::GetTSString(ts)) h.transfer_syntax = s;
  }
  h.sop_class_uid = element_text(ds, gdcm::Tag(0x0008, 0x0016));
  h.sop_instance_uid = element_text(ds, gdcm::Tag(0x0008, 0x0018));
  h.series_uid = element_text(ds, gdcm::Tag(0x0020, 0x000e));
  h.modality = element_text(ds, gdcm::Tag(0x0008, 0x0060));
  h.image_type = element_text(ds, gdcm::Tag(0x0008, 0x0008));
  h.convolution_kernel = element_text(ds, gdcm::Tag(0x0018, 0x1210));
  h.mr_3d = element_text(ds, gdcm::Tag(0x0018, 0x0023)) == "3D";
  h.photometric = element_text(ds, gdcm::Tag(0x0028, 0x0004));

  const bool has_rows = us_value<0x0028, 0x0010>(ds, h.rows);
  const bool has_cols = us_value<0x0028, 0x0011>(ds, h.cols);
  us_value<0x0028, 0x0100>(ds, h.bits_allocated);
  us_value<0x0028, 0x0101>(ds, h.bits_stored);
  us_value<0x0028, 0x0102>(ds, h.high_bit);
  us_value<0x0028, 0x0103>(ds, h.pixel_representation);
  if (!us_value<0x0028, 0x0002>(ds, h.samples_per_pixel)) h.samples_per_pixel = 1;
  if (h.bits_stored == 0) h.bits_stored = h.bits_allocated;
  if (h.high_bit == 0 || h.high_bit >= h.bits_allocated) h.high_bit = h.bits_stored - 1;

  // A file that GDCM parsed "successfully" but carries no DICOM image
  // attributes at all (random bytes read as an implicit data set) is not DICOM.
  const bool looks_dicom = !h.sop_class_uid.empty() || !h.series_uid.empty() || !h.modality.empty() ||
                           !h.transfer_syntax.empty();
  if (!looks_dicom) {
    r.skip = SkipReason::NotDicom;
    return true;
  }
  h.burned_in = burned_in_risk(ds, h);
  if (h.burned_in != BurnedInRisk::None && !opt.convert_burned_in_risk) {
    r.skip = SkipReason::BurnedInRisk;
    r.detail = burned_in_code(h.burned_in);
    return true;
  }
  // Where PixelData starts: file meta (its preamble included) plus the
  // encoded length of the data set read so far.
  const gdcm::FileMetaInformation& meta = file.GetHeader();
  const bool explicit_vr = meta.GetDataSetTransferSyntax().IsExplicit();
  uint64_t stop = meta.GetFullLength();
  stop += explicit_vr ? uint64_t(ds.GetLength<gdcm::ExplicitDataElement>())
                      : uint64_t(ds.GetLength<gdcm::ImplicitDataElement>());
  const bool deflated = h.transfer_syntax == "1.2.840.10008.1.2.1.99";  // lengths are of the inflated data
  const bool has_pixels = deflated || stop < size;
  if (!has_rows || !has_cols || h.rows == 0 || h.cols == 0 || h.bits_allocated == 0 || !has_pixels) {
    r.skip = SkipReason::NoImage;
    return true;
  }

  h.series_number = element_int(ds, gdcm::Tag(0x0020, 0x0011));
  h.instance_number = element_int(ds, gdcm::Tag(0x0020, 0x0013));
  h.acquisition_number = element_int(ds, gdcm::Tag(0x0020, 0x0012));
  h.echo_number = element_int(ds, gdcm::Tag(0x0018, 0x0086));
  h.temporal_position = element_int(ds, gdcm::Tag(0x0020, 0x0100));
  h.number_of_frames = element_int(ds, gdcm::Tag(0x0028, 0x0008), 1);
  if (h.number_of_frames < 1) h.number_of_frames = 1;
  h.acquisition_time = dicom_time_seconds(element_text(ds, gdcm::Tag(0x0008, 0x0032)));
  h.image_index = element_int(ds, gdcm::Tag(0x0054, 0x1330));
  element_number(ds, gdcm::Tag(0x0054, 0x1300), h.frame_reference_time);
  element_number(ds, gdcm::Tag(0x0018, 0x1242), h.frame_duration);

  auto iop = element_numbers(ds, gdcm::Tag(0x0020, 0x0037));
  if (iop.size() == 6) {
    h.has_orientation = true;
    for (int i = 0; i < 6; ++i) h.iop[i] = iop[i];
    for (double v : iop)
      if (!std::isfinite(v)) h.has_orientation = false;
  }
  auto ipp = element_numbers(ds, gdcm::Tag(0x0020, 0x0032));
  if (ipp.size() == 3 && std::isfinite(ipp[0]) && std::isfinite(ipp[1]) && std::isfinite(ipp[2])) {
    h.has_position = true;
    h.ipp = {ipp[0], ipp[1], ipp[2]};
  }
  auto ps = element_numbers(ds, gdcm::Tag(0x0028, 0x0030));
  if (ps.size() == 2 && ps[0] > 0 && ps[1] > 0) h.pixel_spacing = {ps[0], ps[1]};
  else if (ps.size() == 1 && ps[0] > 0) h.pixel_spacing = {ps[0], ps[0]};  // malformed single value: isotropic (as dcm2niix)
  element_number(ds, gdcm::Tag(0x0018, 0x0050), h.slice_thickness);
  element_number(ds, gdcm::Tag(0x0018, 0x0088), h.spacing_between_slices);
  double slope = 1, inter = 0;
  const bool hs = element_number(ds, gdcm::Tag(0x0028, 0x1053), slope);
  const bool hi = element_number(ds, gdcm::Tag(0x0028, 0x1052), inter);
  if (hs || hi) {
    h.has_rescale = true;
    h.rescale_slope = (hs && slope != 0) ? slope : 1.0;
    h.rescale_intercept = hi ? inter : 0.0;
  }
  element_number(ds, gdcm::Tag(0x0018, 0x0081), h.echo_time);
  element_number(ds, gdcm::Tag(0x0018, 0x0080), h.repetition_time);
  element_number(ds, gdcm::Tag(0x0018, 0x1314), h.flip_angle);
  h.vendor = vendor_of(element_text(ds, gdcm::Tag(0x0008, 0x0070)));
  const bool little_endian = h.transfer_syntax != "1.2.840.10008.1.2.2";
  if (h.vendor == SliceHeader::Vendor::GE) read_ge_pepolar(ds, h);
  if (h.vendor == SliceHeader::Vendor::Siemens) h.time_after_start = siemens_time_after_start(ds);
  read_siemens_mosaic(ds, h);
  if (little_endian) read_diffusion(ds, h);
  // Philips: the private scale slope gives the "precise" floating value
  // FP = (PV*RS + RI) / (RS*SS), dcm2niix's default.
  if (h.vendor == SliceHeader::Vendor::Philips && little_endian) {
    auto ss = element_values(ds, gdcm::Tag(0x2005, 0x100e), 4);
    if (ss.size() == 1 && std::isfinite(ss[0]) && ss[0] != 0) {
      const double rs = h.rescale_slope, ri = h.rescale_intercept;
      h.rescale_slope = 1.0 / ss[0];
      h.rescale_intercept = ri / (rs * ss[0]);
      h.has_rescale = true;
    }
  }
  // complex part
  {
    using P = SliceHeader::Part;
    const std::string cic = upper(element_text(ds, gdcm::Tag(0x0008, 0x9208)));
    if (cic == "MAGNITUDE") h.part = P::Magnitude;
    else if (cic == "PHASE") h.part = P::Phase;
    else if (cic == "REAL") h.part = P::Real;
    else if (cic == "IMAGINARY") h.part = P::Imaginary;
    else if (has_value(h.image_type, "P") || has_value(h.image_type, "PHASE")) h.part = P::Phase;
    else if (has_value(h.image_type, "R") || has_value(h.image_type, "REAL")) h.part = P::Real;
    else if (has_value(h.image_type, "I") || has_value(h.image_type, "IMAGINARY")) h.part = P::Imaginary;
    else if (has_value(h.image_type, "M") || has_value(h.image_type, "MAGNITUDE")) h.part = P::Magnitude;
    // GE says it in its own image type (0043,102F): 0 magnitude, 1 phase,
    // 2 real, 3 imaginary (one series may hold all four, as dcm2niix splits them)
    if (h.part == P::Unknown && h.vendor == SliceHeader::Vendor::GE) {
      const auto ge = integer_values(ds, gdcm::Tag(0x0043, 0x102f), 2, true);
      if (ge.size() == 1 && ge[0] >= 0 && ge[0] <= 3)
        h.part = ge[0] == 0 ? P::Magnitude : ge[0] == 1 ? P::Phase : ge[0] == 2 ? P::Real : P::Imaginary;
    }
  }
  us_value<0x0028, 0x0006>(ds, h.planar_configuration);

  if (pixel_element == 0x0009) {
    r.skip = SkipReason::Unsupported;
    r.detail = "double float pixel data";
    return true;
  }
  if (pixel_element == 0x0008) {
    // FloatPixelData: IEEE float32 values, no stored-bits masking
    if (h.bits_allocated != 32 || h.samples_per_pixel != 1) {
      r.skip = SkipReason::Unsupported;
      r.detail = "float pixel data other than 32-bit single sample";
      return true;
    }
    h.float_pixels = 32;
    h.bits_stored = 32;
    h.high_bit = 31;
    h.pixel_representation = 1;
  }
  if (h.bits_allocated != 8 && h.bits_allocated != 16 && h.bits_allocated != 32) {
    r.skip = SkipReason::Unsupported;
    r.detail = "bits allocated not 8, 16 or 32";
    return true;
  }
  const bool rgb = h.samples_per_pixel == 3 && h.bits_allocated == 8 && upper(h.photometric) == "RGB";
  if (h.samples_per_pixel != 1 && !rgb) {
    r.skip = SkipReason::Unsupported;
    r.detail = "colour other than 8-bit RGB";
    return true;
  }
  // A Modality LUT (PS3.3 C.11.1) maps stored values to the modality's
  // values; it is not applied, so the stored values would be wrong ones.
  if (ds.FindDataElement(gdcm::Tag(0x0028, 0x3000)) || functional_group(ds, gdcm::Tag(0x0028, 0x3000))) {
    r.skip = SkipReason::Unsupported;
    r.detail = "modality LUT sequence (not applied)";
    return true;
  }
  // Native pixel data must be complete: stop is where PixelData begins.
  // Checked before the frames are read, so that a NumberOfFrames the data
  // cannot hold never sizes anything.
  if (is_native_transfer_syntax(h.transfer_syntax) && !deflated) {
    const uint64_t expect = uint64_t(h.rows) * h.cols * (h.bits_allocated / 8) * h.samples_per_pixel *
                            uint64_t(h.number_of_frames);
    const uint64_t element_header = explicit_vr ? 12 : 8;
    if (stop + element_header > size || size - stop - element_header < expect) {
      r.skip = SkipReason::TruncatedPixels;
      return true;
    }
  }
  // Encapsulated frames take an item of at least 8 bytes each; and no real
  // object holds millions of frames.
  if (h.number_of_frames > 1 &&
      (h.number_of_frames > 4'000'000 || (!is_native_transfer_syntax(h.transfer_syntax) && !deflated &&
                                          uint64_t(h.number_of_frames) * 8 > size))) {
    r.skip = SkipReason::TruncatedPixels;
    return true;
  }
  if (h.number_of_frames > 1) {
    std::string why;
    if (!little_endian || h.mosaic_images > 0 || !read_enhanced_frames(ds, h, why)) {
      r.skip = SkipReason::Unsupported;
      r.detail = why.empty() ? "multi-frame object" : why;
      return true;
    }
  }
  return true;
}

}  // namespace

IndexResult index_dicom_file(const InputFile& in, const IndexOptions& opt) {
  IndexResult r;
  uint64_t size = 0;
  uint16_t pixel_element = 0;
  ProbeResult probe = ProbeResult::NotDicom;
  // The structure check from the first bytes of the file, read rather than
  // mapped (the header of most files lies in the first 16 KiB); GDCM then
  // parses the header from those bytes when they hold all of it. Files the
  // first 256 KiB do not decide, and archive members, are walked whole.
  thread_local std::vector<uint8_t> head;
  std::span<const uint8_t> header_bytes;
  const PrefixRead pr = with_file_prefix(in, head, [&](std::span<const uint8_t> prefix, uint64_t file_size, int) {
    size = file_size;
    if (size == 0) return true;
    const PrefixProbe p = probe_dicom_prefix(prefix, file_size);
    if (!p.decided) return false;
    probe = p.result;
    pixel_element = p.px.found ? p.px.element : 0;
    if (p.header_inside) header_bytes = prefix;
    return true;
  });
  if (pr == PrefixRead::Unreadable) {
    r.skip = SkipReason::Unreadable;
    return r;
  }
  if (pr == PrefixRead::Undecided && !with_input_bytes(in, [&](std::span<const uint8_t> b) {
        size = b.size();
        if (size) {
          NativePixels px;
          probe = probe_dicom_bytes(b, px);
          pixel_element = px.found ? px.element : 0;
        }
      })) {
    r.skip = SkipReason::Unreadable;
    return r;
  }
  if (size == 0) {
    r.skip = SkipReason::EmptyFile;
    return r;
  }
  // GDCM aborts on some broken files: check the structure first.
  switch (probe) {
    case ProbeResult::Ok: break;
    case ProbeResult::NotDicom: r.skip = SkipReason::NotDicom; return r;
    case ProbeResult::Truncated: r.skip = SkipReason::TruncatedHeader; return r;
    case ProbeResult::TruncatedPixels: r.skip = SkipReason::TruncatedPixels; return r;
    case ProbeResult::Malformed: r.skip = SkipReason::Malformed; return r;
  }
  bool done = false;
  auto parse = [&]() {
    try {
      done = parse_header(in, opt, size, pixel_element, header_bytes, r);
    } catch (...) {
      r.skip = SkipReason::NotDicom;
      r.header = SliceHeader{};
      done = true;
    }
  };
  if (!run_guarded(parse) || !done) {
    r = IndexResult{};
    r.skip = SkipReason::Malformed;
  }
  return r;
}

namespace {

using V3 = std::array<double, 3>;

V3 unit3(const V3& v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return n > 0 ? V3{v[0] / n, v[1] / n, v[2] / n} : V3{0, 0, 0};
}

// The row, column and slice normal directions of an orientation (unit).
std::array<V3, 3> image_axes(const std::array<double, 6>& iop) {
  const V3 r = unit3({iop[0], iop[1], iop[2]}), c = unit3({iop[3], iop[4], iop[5]});
  const V3 n = unit3({r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]});
  return {r, c, n};
}

// The patient-frame vector whose FSL bvec in dcm2niix's output frame (rows
// flipped, slices along the normal) is `bvec`: (v.r, -v.c, v.n) = bvec.
V3 from_dcm2niix_bvec(const V3& bvec, const std::array<double, 6>& iop) {
  const auto [r, c, n] = image_axes(iop);
  V3 v{};
  for (int i = 0; i < 3; ++i) v[i] = bvec[0] * r[i] - bvec[1] * c[i] + bvec[2] * n[i];
  return v;
}

}  // namespace

double siemens_time_after_start(const gdcm::DataSet& ds) {
  // the first occurrence, depth first (XA puts it in a private sequence of
  // each per-frame item, the classic files at the top level)
  std::function<double(const gdcm::DataSet&, int)> find = [&](const gdcm::DataSet& d, int depth) -> double {
    const auto v = parse_numbers(element_text(d, gdcm::Tag(0x0021, 0x1104)));
    if (v.size() == 1 && std::isfinite(v[0]) && v[0] >= 0) return v[0];
    if (depth == 0) return -1;
    for (auto it = d.Begin(); it != d.End(); ++it) {
      const gdcm::DataElement& de = *it;
      const gdcm::Tag& t = de.GetTag();
      if (t.GetGroup() != 0x0021 || !t.IsPrivate()) continue;  // Siemens' private sequences of group 0021
      if (de.IsEmpty()) continue;
      // a value already parsed as a sequence (bytes are never re-parsed)
      const auto* sq = dynamic_cast<const gdcm::SequenceOfItems*>(&de.GetValue());
      if (!sq) continue;
      for (size_t i = 1; i <= sq->GetNumberOfItems(); ++i) {
        const double r = find(sq->GetItem(i).GetNestedDataSet(), depth - 1);
        if (r >= 0) return r;
      }
    }
    return -1;
  };
  return find(ds, 2);
}

SliceHeader::Vendor vendor_of(const std::string& manufacturer) {
  using V = SliceHeader::Vendor;
  const std::string maker = upper(manufacturer);
  if (maker.find("SIEMENS") != std::string::npos) return V::Siemens;
  if (maker.find("PHILIPS") != std::string::npos) return V::Philips;
  if (maker.find("GE ") == 0 || maker.find("GE MEDICAL") != std::string::npos || maker == "GE" ||
      maker.find("GENERAL ELECTRIC") != std::string::npos)
    return V::GE;
  if (maker.find("UIH") == 0 || maker.find("UNITED IMAGING") != std::string::npos) return V::UIH;
  return V::Other;
}

bool directional(const std::string& directionality) {
  std::string d = upper(directionality);
  d.erase(std::remove_if(d.begin(), d.end(), [](char ch) { return ch == ' ' || ch == '\0'; }), d.end());
  return d.empty() || d == "DIRECTIONAL" || d == "BMATRIX";
}

PatientGradient ge_gradient_to_patient(double bvalue, const V3& g, const std::array<double, 6>& iop,
                                       bool phase_along_rows) {
  PatientGradient out;
  out.bvalue = bvalue;
  double len = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
  if (!(bvalue > 1e-6) || !(len > 1e-6)) return out;  // b = 0: no direction
  V3 v = g;
  if (len > 0.03 && len < 0.97) {
    // GE encodes lower shells by the vector's length: b scales with |g|^2
    const double scaled = bvalue * len * len;
    const double b = scaled > 0 && scaled < 5 ? 5.0 : std::floor((scaled + 2.5) / 5) * 5;
    const double k = b > 0 ? std::sqrt(bvalue / b) : 0.0;
    for (double& x : v) x *= k;
    out.bvalue = b;
  }
  // the plane: the patient axis nearest the slice normal
  const V3 n = image_axes(iop)[2];
  const int plane = std::abs(n[0]) >= std::abs(n[1]) && std::abs(n[0]) >= std::abs(n[2]) ? 0
                    : std::abs(n[1]) >= std::abs(n[2])                                   ? 1
                                                                                         : 2;
  // dcm2niix's steps: plane flips (sagittal x and y, coronal y and z, axial
  // z), y negated, rows swizzled for ROW phase encoding, all negated
  if (plane == 0) v[0] = -v[0], v[1] = -v[1];
  if (plane == 1) v[1] = -v[1], v[2] = -v[2];
  if (plane == 2) v[2] = -v[2];
  v[1] = -v[1];
  if (phase_along_rows) v = V3{-v[1], v[0], v[2]};
  for (double& x : v) x = -x;
  out.lps = from_dcm2niix_bvec(v, iop);
  return out;
}

V3 image_gradient_to_patient(const V3& u, const std::array<double, 6>& iop) {
  return from_dcm2niix_bvec({u[0], -u[1], u[2]}, iop);
}

}  // namespace rapidnii::io
