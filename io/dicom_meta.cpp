#include "io/dicom_meta.h"

#include <gdcmPrivateTag.h>
#include <gdcmReader.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "io/dicom_header.h"
#include "io/gdcm_text.h"
#include "io/parser_guard.h"
#include "io/siemens_csa.h"

namespace rapidnii::io {

namespace {

std::optional<double> number(const gdcm::DataSet& ds, uint16_t g, uint16_t e) {
  auto v = parse_numbers(element_text(ds, gdcm::Tag(g, e)));
  if (v.empty() || !std::isfinite(v[0])) return std::nullopt;
  return v[0];
}

std::optional<int> integer(const gdcm::DataSet& ds, uint16_t g, uint16_t e) {
  auto v = number(ds, g, e);
  if (!v) return std::nullopt;
  return static_cast<int>(std::lround(*v));
}

// Numbers of a Siemens "SIEMENS MR HEADER" private element (FD, or DS).
std::vector<double> siemens_doubles(const gdcm::DataSet& ds, uint8_t element) {
  const gdcm::PrivateTag t(0x0019, element, "SIEMENS MR HEADER");
  if (!ds.FindDataElement(t)) return {};
  return element_values(ds, ds.GetDataElement(t).GetTag(), 8);
}

// Echo spacing, ASSET factor and acquired phase lines (GE EPI).
void read_ge_acquisition(const gdcm::DataSet& ds, SeriesMeta& m) {
  if (auto es = integer_values(ds, gdcm::Tag(0x0043, 0x102c), 2, true); es.size() == 1 && es[0] > 0)
    m.ge_echo_spacing_us = es[0];
  if (auto a = parse_numbers(element_text(ds, gdcm::Tag(0x0043, 0x1083))); !a.empty() && a[0] > 0 && a[0] <= 1)
    m.ge_asset_factor = a[0];
  // frequency rows \ frequency columns \ phase rows \ phase columns
  if (auto am = integer_values(ds, gdcm::Tag(0x0018, 0x1310), 2, false); am.size() == 4) {
    const int lines = am[2] > 0 ? am[2] : am[3];
    if (lines > 1) m.acquisition_phase_lines = lines;
  }
}

// A GE private element: under its creator when the file names one, else at
// the usual place when no other creator holds that block.
const gdcm::DataElement* ge_private(const gdcm::DataSet& ds, uint16_t group, uint8_t element, const char* creator) {
  const gdcm::PrivateTag pt(group, element, creator);
  if (ds.FindDataElement(pt)) return &ds.GetDataElement(ds.GetDataElement(pt).GetTag());
  if (ds.FindDataElement(gdcm::Tag(group, 0x0010))) return nullptr;
  const gdcm::Tag t(group, uint16_t(0x1000 | element));
  return ds.FindDataElement(t) ? &ds.GetDataElement(t) : nullptr;
}

// What GE slice timing needs: the protocol block, the sequence name and the
// HyperBand factor.
void read_ge_slice_timing_inputs(const gdcm::DataSet& ds, SeriesMeta& m) {
  if (const gdcm::DataElement* de = ge_private(ds, 0x0025, 0x1b, "GEMS_SERS_01"))
    if (const gdcm::ByteValue* bv = de->GetByteValue(); bv && bv->GetPointer())
      m.ge_protocol = parse_ge_protocol(
          {reinterpret_cast<const std::byte*>(bv->GetPointer()), size_t(bv->GetLength())});
  if (const gdcm::DataElement* de = ge_private(ds, 0x0019, 0x9c, "GEMS_ACQU_01"))
    if (const gdcm::ByteValue* bv = de->GetByteValue(); bv && bv->GetPointer()) {
      std::string name(bv->GetPointer(), bv->GetLength());
      while (!name.empty() && (name.back() == ' ' || name.back() == '\0')) name.pop_back();
      if (name.size() <= 16) m.ge_pulse_sequence = name;
    }
  if (const gdcm::DataElement* de = ge_private(ds, 0x0043, 0xb6, "GEMS_PARM_01"))
    if (const gdcm::ByteValue* bv = de->GetByteValue(); bv && bv->GetPointer()) {
      const auto v = parse_numbers(std::string(bv->GetPointer(), bv->GetLength()));
      if (!v.empty() && v[0] >= 2 && v[0] <= 16 && v[0] == std::floor(v[0])) m.ge_multiband = int(v[0]);
    }
}

// Phase-encoding polarity, phase bandwidth and mosaic slice times (Siemens).
void read_siemens_acquisition(const gdcm::DataSet& ds, SeriesMeta& m) {
  const auto csa = siemens_image_csa(ds);
  if (auto v = csa_numbers(csa, "PhaseEncodingDirectionPositive"); v.size() == 1 && (v[0] == 0 || v[0] == 1))
    m.phase_encoding_positive = int(v[0]);
  auto bw = siemens_doubles(ds, 0x28);
  if (bw.empty()) bw = csa_numbers(csa, "BandwidthPerPixelPhaseEncode");
  if (bw.size() == 1 && bw[0] > 0) m.bandwidth_per_pixel_phase_encode = bw[0];
  // slice times within one volume (ms); the tag's values, else the CSA's
  // (transcoded files have been seen with wrapped-around values in the tag)
  auto plausible = [](const std::vector<double>& v) {
    bool ok = !v.empty();
    for (double x : v) ok &= x >= 0 && x < 1e5;
    return ok;
  };
  auto times = siemens_doubles(ds, 0x29);
  if (!plausible(times))
    if (auto from_csa = csa_numbers(csa, "MosaicRefAcqTimes"); plausible(from_csa) || times.empty()) times = from_csa;
  // a mosaic that stores none (e.g. syngo VB12): the protocol's estimate
  if (times.empty() && m.image_type.find("MOSAIC") != std::string::npos && m.repetition_time)
    if (const auto tiles = csa_numbers(csa, "NumberOfImagesInMosaic"); tiles.size() == 1 && tiles[0] >= 2) {
      const gdcm::PrivateTag st(0x0029, 0x20, "SIEMENS CSA HEADER");
      if (ds.FindDataElement(st))
        if (const gdcm::ByteValue* bv = ds.GetDataElement(st).GetByteValue(); bv && bv->GetPointer()) {
          static const std::vector<std::string> keys = {
              "sSliceArray.ucMode", "sSliceArray.lSize", "sSliceArray.lConc", "sSliceArray.ucImageNumb",
              "sSliceAcceleration.lMultiBandFactor", "lDelayTimeInTR"};
          const auto protocol = ascconv_numbers(
              {reinterpret_cast<const uint8_t*>(bv->GetPointer()), size_t(bv->GetLength())}, keys);
          times = siemens_protocol_slice_times_ms(protocol, *m.repetition_time, int(tiles[0]));
          m.mosaic_slice_times_from_protocol = !times.empty();
        }
    }
  m.mosaic_slice_times_ms = std::move(times);  // checked against TR where used
}

}  // namespace

namespace {

SeriesMeta read_meta(const InputFile& in) {
  const HeaderRead read = read_header_gdcm(in);
  if (!read.reader) throw std::runtime_error("header cannot be read");
  const gdcm::DataSet& ds = read.reader->GetFile().GetDataSet();
  auto t = [&](uint16_t g, uint16_t e) { return element_text(ds, gdcm::Tag(g, e)); };

  SeriesMeta m;
  m.specific_character_set = t(0x0008, 0x0005);
  m.patient_id = t(0x0010, 0x0020);
  m.issuer_of_patient_id = t(0x0010, 0x0021);
  m.other_patient_ids = t(0x0010, 0x1000);
  m.patient_name = t(0x0010, 0x0010);
  m.other_patient_names = t(0x0010, 0x1001);
  m.patient_birth_name = t(0x0010, 0x1005);
  m.patient_mother_birth_name = t(0x0010, 0x1060);
  m.patient_birth_date = t(0x0010, 0x0030);
  m.patient_age = t(0x0010, 0x1010);
  m.patient_sex = t(0x0010, 0x0040);
  m.accession_number = t(0x0008, 0x0050);
  m.study_id = t(0x0020, 0x0010);
  m.study_uid = t(0x0020, 0x000d);
  m.referring_physician = t(0x0008, 0x0090);
  m.performing_physician = t(0x0008, 0x1050);
  m.operators_name = t(0x0008, 0x1070);
  m.reading_physicians = t(0x0008, 0x1060);
  m.requesting_physician = t(0x0032, 0x1032);
  m.institution_name = t(0x0008, 0x0080);
  m.institution_address = t(0x0008, 0x0081);
  m.department = t(0x0008, 0x1040);
  m.station_name = t(0x0008, 0x1010);
  m.device_serial = t(0x0018, 0x1000);
  m.study_date = t(0x0008, 0x0020);
  m.study_time = t(0x0008, 0x0030);
  m.series_date = t(0x0008, 0x0021);
  m.series_time = t(0x0008, 0x0031);
  m.acquisition_date = t(0x0008, 0x0022);
  m.acquisition_time = t(0x0008, 0x0032);
  m.acquisition_datetime = t(0x0008, 0x002a);
  m.content_date = t(0x0008, 0x0023);

  m.modality = t(0x0008, 0x0060);
  m.manufacturer = t(0x0008, 0x0070);
  m.model = t(0x0008, 0x1090);
  m.software_versions = t(0x0018, 0x1020);
  m.receive_coil = t(0x0018, 0x1250);
  m.body_part = t(0x0018, 0x0015);
  m.series_description = t(0x0008, 0x103e);
  m.protocol_name = t(0x0018, 0x1030);
  m.sequence_name = t(0x0018, 0x0024);
  m.pulse_sequence_name = t(0x0018, 0x9005);
  m.scanning_sequence = t(0x0018, 0x0020);
  m.sequence_variant = t(0x0018, 0x0021);
  m.scan_options = t(0x0018, 0x0022);
  m.image_type = t(0x0008, 0x0008);
  m.mr_acquisition_type = t(0x0018, 0x0023);
  m.phase_encoding_direction = t(0x0018, 0x1312);
  m.convolution_kernel = t(0x0018, 0x1210);
  m.burned_in_annotation = t(0x0028, 0x0301);
  m.recognizable_visual_features = t(0x0028, 0x0302);

  m.field_strength = number(ds, 0x0018, 0x0087);
  m.imaging_frequency = number(ds, 0x0018, 0x0084);
  m.flip_angle = number(ds, 0x0018, 0x1314);
  m.inversion_time = number(ds, 0x0018, 0x0082);
  m.pixel_bandwidth = number(ds, 0x0018, 0x0095);
  m.slice_thickness = number(ds, 0x0018, 0x0050);
  m.spacing_between_slices = number(ds, 0x0018, 0x0088);
  m.echo_time = number(ds, 0x0018, 0x0081);
  m.repetition_time = number(ds, 0x0018, 0x0080);
  m.kvp = number(ds, 0x0018, 0x0060);
  m.pet_units = t(0x0054, 0x1001);
  m.decay_correction = t(0x0054, 0x1102);
  m.percent_phase_fov = number(ds, 0x0018, 0x0094);
  m.parallel_reduction = number(ds, 0x0018, 0x9069);
  // Multi-frame (enhanced) objects hold the physics in functional groups
  // (PS3.3 C.8.13.5): those win over top-level values, which that IOD lacks.
  if (ds.FindDataElement(gdcm::Tag(0x5200, 0x9229)) || ds.FindDataElement(gdcm::Tag(0x5200, 0x9230))) {
    auto take = [&](std::optional<double>& into, uint16_t sg, uint16_t se, uint16_t g, uint16_t e) {
      if (const gdcm::DataSet* d = functional_group(ds, gdcm::Tag(sg, se)))
        if (auto v = number(*d, g, e)) into = v;
    };
    take(m.repetition_time, 0x0018, 0x9112, 0x0018, 0x0080);
    take(m.flip_angle, 0x0018, 0x9112, 0x0018, 0x1314);
    take(m.slice_thickness, 0x0028, 0x9110, 0x0018, 0x0050);
    take(m.spacing_between_slices, 0x0028, 0x9110, 0x0018, 0x0088);
    // InPlanePhaseEncodingDirection lives in the MR FOV/Geometry group (C.8.13.5.3)
    if (m.phase_encoding_direction.empty())
      if (const gdcm::DataSet* d = functional_group(ds, gdcm::Tag(0x0018, 0x9125)))
        m.phase_encoding_direction = element_text(*d, gdcm::Tag(0x0018, 0x1312));
    // EffectiveEchoTime (0018,9082, FD: binary) only when shared by every
    // frame: per-frame echoes are split into series of their own.
    if (const gdcm::DataSet* d = first_item(first_item(&ds, gdcm::Tag(0x5200, 0x9229)), gdcm::Tag(0x0018, 0x9114))) {
      const gdcm::Tag te(0x0018, 0x9082);
      if (d->FindDataElement(te))
        if (const gdcm::ByteValue* bv = d->GetDataElement(te).GetByteValue(); bv && bv->GetLength() == 8) {
          double v;
          std::memcpy(&v, bv->GetPointer(), 8);
          if (std::isfinite(v) && v >= 0) m.echo_time = v;
        }
    }
  }
  m.series_number = integer(ds, 0x0020, 0x0011);
  m.acquisition_number = integer(ds, 0x0020, 0x0012);
  m.echo_number = integer(ds, 0x0018, 0x0086);
  if (auto iop = parse_numbers(t(0x0020, 0x0037)); iop.size() == 6) {
    bool finite = true;
    for (double x : iop) finite &= std::isfinite(x);
    if (finite) m.image_orientation = iop;
  }
  using V = SliceHeader::Vendor;
  const V vendor = vendor_of(m.manufacturer);
  if (vendor == V::Siemens) read_siemens_acquisition(ds, m);
  if (vendor == V::GE) {
    // GE's polarity: RectilinearPhaseEncodeReordering (0018,9034), LINEAR
    // (GE "unflipped") or REVERSE_LINEAR ("flipped"), as Debian's dcm2niix
    // reads it; not for 3D acquisitions (two phase-encoded axes)
    std::string reorder = upper(t(0x0018, 0x9034)), acq = upper(m.mr_acquisition_type);
    reorder.erase(std::remove(reorder.begin(), reorder.end(), ' '), reorder.end());
    if (acq.find("3D") == std::string::npos) {
      if (reorder == "LINEAR") m.phase_encoding_positive = 1;
      if (reorder == "REVERSE_LINEAR") m.phase_encoding_positive = 0;
    }
    read_ge_acquisition(ds, m);
    read_ge_slice_timing_inputs(ds, m);
  }
  if (vendor == V::Philips) {
    if (auto w = element_values(ds, gdcm::Tag(0x2001, 0x1022), 4); w.size() == 1 && w[0] > 0)
      m.philips_water_fat_shift = w[0];
    if (auto e = integer_values(ds, gdcm::Tag(0x2001, 0x1013), 4, true); e.size() == 1 && e[0] > 1)
      m.philips_epi_factor = e[0];
    // the same reading of the private scale slope as the indexer's
    if (auto ss = element_values(ds, gdcm::Tag(0x2005, 0x100e), 4); ss.size() == 1 && ss[0] != 0) {
      m.philips_scale_slope = ss[0];
      m.philips_rescale_slope = number(ds, 0x0028, 0x1053).value_or(1.0);
      m.philips_rescale_intercept = number(ds, 0x0028, 0x1052).value_or(0.0);
    }
  }
  return m;
}

}  // namespace

SeriesMeta read_series_meta(const InputFile& in) {
  SeriesMeta m;
  std::string error;
  auto read = [&]() {
    try {
      m = read_meta(in);
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  if (!run_guarded(read)) throw std::runtime_error("header cannot be parsed");
  if (!error.empty()) throw std::runtime_error(error);
  return m;
}

}  // namespace rapidnii::io
