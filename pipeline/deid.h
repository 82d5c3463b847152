// De-identification: the one sanitiser between DICOM and every output
// (../shared/DEID-POLICY.md). Keyed pseudonyms, date shifts, descriptor
// cleaning, BIDS classification and the allow-listed sidecar.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/dicom_meta.h"
#include "pipeline/acquisition.h"

namespace rapidnii::pipeline::deid {

enum class Profile { Research, Strict, Limited };
Profile parse_profile(std::string_view s);  // "research" | "strict" | "limited"
const char* profile_name(Profile p);

// ---- keys and pseudonyms (P5) ----
struct Key {
  std::vector<uint8_t> bytes;
  std::string id;  // HMAC(key, "key-id") as 8 hex characters: safe to record
};
// The key file's bytes (trailing whitespace ignored); at least 16 bytes.
Key load_key_file(const std::filesystem::path& p);
// Reads STATE/key, or creates it once (32 random bytes, hex, mode 0600, the
// folder 0700) so that resumed and repeated runs agree.
Key load_or_create_key(const std::filesystem::path& state_dir, bool* created = nullptr);

class Pseudonymizer {
 public:
  explicit Pseudonymizer(Key key) : key_(std::move(key)) {}
  const Key& key() const { return key_; }
  std::vector<uint8_t> hmac(std::string_view domain, std::string_view value) const;
  // base32 (lower case) of HMAC("subject|" issuer "|" id), 10 characters
  std::string subject_label(std::string_view issuer, std::string_view patient_id) const;
  std::string site_token(std::string_view institution) const;  // "site-xxxxxxxx"
  std::string scanner_token(std::string_view model, std::string_view serial, std::string_view station) const;
  // Negative whole days: BASE + HMAC mod JITTER, per subject label.
  int64_t date_offset_days(std::string_view subject_label) const;
  std::string uid(std::string_view original) const;  // "2.25.<decimal>"
  uint64_t hmac64(std::string_view domain, std::string_view value) const;

 private:
  Key key_;
};

constexpr int64_t kShiftBaseDays = 50000;  // ~137 years: dates up to 2061 land at or before 1925
constexpr int64_t kShiftJitterDays = 3653;  // ~10 years: the year is hidden
constexpr int kLatestShiftedYear = 1925;

// ---- dates and times ----
struct Date {
  int y = 0, m = 0, d = 0;
};
std::optional<Date> parse_date(std::string_view da);  // YYYYMMDD, YYYY.MM.DD, YYYY-MM-DD
int64_t days_from_civil(const Date& d);
Date civil_from_days(int64_t z);
std::optional<double> parse_time_seconds(std::string_view tm);  // HHMMSS.frac or HH:MM:SS
std::string format_time(double seconds);                       // "hh:mm:ss.ffffff"
std::string format_date(const Date& d);                        // "YYYY-MM-DD"

// PatientAge (P1): integer years, one decimal below 2 years, capped at 90;
// from the real birth and scan dates, else from the AS value.
std::optional<double> derive_age(const std::string& birth_date, const std::string& scan_date,
                                 const std::string& age_string);

// ---- descriptors (P4 CLEAN) ----
// Decodes per SpecificCharacterSet and folds to ASCII (diacritics removed,
// ß -> ss, other scripts dropped). `umlaut_e`: ä/ö/ü -> ae/oe/ue instead.
std::string fold_ascii(std::string_view raw, std::string_view charset, bool umlaut_e = false);

struct KnownValues {
  std::vector<std::string> lower;  // folded, lower case, >= 2 characters
};
KnownValues known_values(const io::SeriesMeta& m);

struct Cleaned {
  std::string value;
  bool changed = false;  // the known-value or pattern scrub removed something
};
Cleaned clean_descriptor(std::string_view raw, std::string_view charset, const KnownValues& kv);

// Allow-list for typed text fields we keep (sequence names...): no scrub of
// known values is needed for them but the pattern scrub and the character
// allow-list still apply.
std::string clean_keep(std::string_view raw, std::string_view charset, const KnownValues& kv);

// ---- BIDS classification ----
struct BidsClass {
  std::string datatype;  // "anat", "func", or "other" (listed in .bidsignore)
  std::string suffix;    // "T1w", "T2w", "FLAIR", "PDw", "bold", or the modality in lower case
};
// `dwi`: the series carries diffusion b-values (written as .bval/.bvec);
// `part`: "", "mag", "phase", "real" or "imag".
BidsClass classify(const io::SeriesMeta& m, int n_volumes, bool dwi = false, std::string_view part = "");

// ---- per-series context and sidecar (P1) ----
struct SeriesContext {
  Profile profile = Profile::Research;
  std::string subject;  // label
  int session = 1;
  int64_t date_offset_days = 0;
  BidsClass bids;
  std::string task;          // for func
  bool burned_in_override = false;
  std::string burned_in_code;
  std::string face_note;     // set by defacing, empty otherwise
  std::string complex_part;  // "mag", "phase", "real", "imag" or empty
  bool tilt_corrected = false;
  bool retain_full_dates = false;  // limited profile
  AcquisitionFields acquisition;   // in the output voxel frame (numbers and axis letters)
};

// The sidecar: only allow-listed keys, typed values. `descriptor_changed`
// is set when CLEAN altered a descriptor.
nlohmann::json make_sidecar(const io::SeriesMeta& m, const SeriesContext& c, const Pseudonymizer& ps,
                            bool* descriptor_changed);

// The generated NIfTI descrip: TE=<ms> only (grammar
// ^(TE=[0-9.]+)?(;phase=[01])?(;mb=[0-9]+)?$).
std::string nifti_descrip(const io::SeriesMeta& m);

// Alphanumeric BIDS label from a cleaned descriptor (may be empty).
std::string bids_label(std::string_view cleaned, size_t max_len = 32);

// The shifted acquisition date (study/series date fallback) or nullopt.
std::optional<Date> scan_date(const io::SeriesMeta& m);

}  // namespace rapidnii::pipeline::deid
