// De-identification units: pseudonyms, dates, age, CLEAN, BIDS layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "pipeline/deid.h"
#include "pipeline/layout.h"

using namespace rapidnii::pipeline;
using namespace rapidnii::pipeline::deid;

namespace {
Key key(const char* s) {
  auto p = std::filesystem::temp_directory_path() / ("rapidnii_key_" + std::to_string(::getpid()) + s);
  std::ofstream(p) << s << "-0123456789abcdef";
  Key k = load_key_file(p);
  std::filesystem::remove(p);
  return k;
}
}  // namespace

TEST(Pseudonyms, KeyedDeterministicAndKeyDependent) {
  Pseudonymizer a(key("one")), a2(key("one")), b(key("two"));
  EXPECT_EQ(a.subject_label("", "PID123"), a2.subject_label("", "PID123"));
  EXPECT_NE(a.subject_label("", "PID123"), b.subject_label("", "PID123"));
  EXPECT_NE(a.subject_label("", "PID123"), a.subject_label("", "PID124"));
  EXPECT_NE(a.subject_label("ISSUER1", "PID123"), a.subject_label("ISSUER2", "PID123"));
  const std::string l = a.subject_label("", "PID123");
  EXPECT_EQ(l.size(), 10u);
  for (char c : l) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << l;
  EXPECT_NE(a.key().id, b.key().id);
  EXPECT_EQ(a.key().id.size(), 8u);
  EXPECT_EQ(a.site_token("General Hospital").rfind("site-", 0), 0u);
  EXPECT_EQ(a.site_token("General Hospital").size(), 13u);
  EXPECT_NE(a.site_token("General Hospital"), b.site_token("General Hospital"));
  const std::string uid = a.uid("1.2.3.4");
  EXPECT_EQ(uid.rfind("2.25.", 0), 0u);
  EXPECT_LE(uid.size(), 64u);
  EXPECT_EQ(uid, a2.uid("1.2.3.4"));
}

TEST(Pseudonyms, ShortKeysAreRefused) {
  auto p = std::filesystem::temp_directory_path() / "rapidnii_short_key";
  std::ofstream(p) << "short";
  EXPECT_THROW(load_key_file(p), std::runtime_error);
  std::filesystem::remove(p);
}

TEST(Pseudonyms, StateKeyIsCreatedOnceWithPrivateModes) {
  auto dir = std::filesystem::temp_directory_path() / ("rapidnii_state_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  bool created = false;
  Key k1 = load_or_create_key(dir, &created);
  EXPECT_TRUE(created);
  Key k2 = load_or_create_key(dir, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(k1.bytes, k2.bytes);
  using std::filesystem::perms;
  EXPECT_EQ(std::filesystem::status(dir / "key").permissions() & perms::all, perms::owner_read | perms::owner_write);
  EXPECT_EQ(std::filesystem::status(dir).permissions() & perms::all, perms::owner_all);
  std::filesystem::remove_all(dir);
}

TEST(Dates, ShiftKeepsIntervalsAndHidesTheYear) {
  Pseudonymizer ps(key("dates"));
  for (const char* label : {"aaaa", "bbbb", "cccc", "dddd"}) {
    const int64_t off = ps.date_offset_days(label);
    EXPECT_LE(off, -kShiftBaseDays);
    EXPECT_GT(off, -(kShiftBaseDays + kShiftJitterDays));
    const Date d1{2061, 12, 31}, d2{2001, 3, 4};
    const Date s1 = civil_from_days(days_from_civil(d1) + off);
    const Date s2 = civil_from_days(days_from_civil(d2) + off);
    EXPECT_LE(s1.y, kLatestShiftedYear);
    EXPECT_EQ(days_from_civil(s1) - days_from_civil(s2), days_from_civil(d1) - days_from_civil(d2));
  }
  EXPECT_NE(ps.date_offset_days("aaaa"), ps.date_offset_days("bbbb"));
}

TEST(Dates, CivilRoundTripAndParsing) {
  for (int64_t z = -200000; z < 200000; z += 997) {
    const Date d = civil_from_days(z);
    EXPECT_EQ(days_from_civil(d), z);
  }
  EXPECT_EQ(days_from_civil({1970, 1, 1}), 0);
  EXPECT_EQ(days_from_civil({2000, 3, 1}) - days_from_civil({2000, 2, 28}), 2);  // leap year
  auto d = parse_date("20170923");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->y, 2017);
  EXPECT_EQ(d->m, 9);
  EXPECT_EQ(d->d, 23);
  EXPECT_TRUE(parse_date("2017.09.23"));
  EXPECT_FALSE(parse_date("2017"));
  EXPECT_FALSE(parse_date("20171323"));
  EXPECT_NEAR(*parse_time_seconds("135003.5"), 13 * 3600 + 50 * 60 + 3.5, 1e-9);
  EXPECT_NEAR(*parse_time_seconds("13:50:03"), 13 * 3600 + 50 * 60 + 3, 1e-9);
  EXPECT_EQ(format_time(13 * 3600 + 50 * 60 + 3.5), "13:50:03.500000");  // zero-padded seconds
}

TEST(Age, DerivedCappedAndInfants) {
  EXPECT_EQ(*derive_age("19800615", "2020-06-14", ""), 39);
  EXPECT_EQ(*derive_age("19800615", "2020-06-15", ""), 40);
  EXPECT_EQ(*derive_age("19200101", "2016-05-05", ""), 90);  // capped
  EXPECT_NEAR(*derive_age("20170301", "2017-09-23", ""), 0.5, 1e-9);
  EXPECT_EQ(*derive_age("", "", "045Y"), 45);
  EXPECT_NEAR(*derive_age("", "", "006M"), 0.5, 1e-9);
  EXPECT_EQ(*derive_age("", "", "095Y"), 90);
  EXPECT_FALSE(derive_age("", "", ""));
}

TEST(Clean, KnownValuesAndPatternsAreRemoved) {
  rapidnii::io::SeriesMeta m;
  m.patient_name = "Müller^Hans=ミュラー^ハンス";
  m.specific_character_set = "ISO_IR 192";
  m.patient_id = "PID998877";
  m.accession_number = "ACC55";
  m.study_date = "20170923";
  m.institution_name = "St Elsewhere Hospital";
  const KnownValues kv = known_values(m);
  auto c = [&](const char* s) { return clean_descriptor(s, "ISO_IR 192", kv); };
  EXPECT_EQ(c("T1 MPRAGE").value, "T1 MPRAGE");
  EXPECT_FALSE(c("T1 MPRAGE").changed);
  auto r = c("t1 mueller HANS pid998877");
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.value, "t1");
  EXPECT_EQ(c("T2 Müller").value, "T2");
  EXPECT_EQ(c("T2 Muller 2017-09-23").value, "T2");
  EXPECT_EQ(c("flair 23.09.2017 10:22:05").value, "flair");
  EXPECT_EQ(c("dwi a@b.org http://x.y/z 1.2.840.10008.1").value, "dwi");
  EXPECT_EQ(c("bold 12345678").value, "bold");
  EXPECT_EQ(c("bold st elsewhere hospital").value, "bold");
  EXPECT_EQ(c("ep2d_bold (rest) +c").value, "ep2d_bold (rest) +c");
  EXPECT_EQ(c("a;b|c<d>").value, "a b c d");  // character allow-list
  EXPECT_LE(c(std::string(200, 'x').c_str()).value.size(), 64u);
}

TEST(Clean, FoldsCharacterSets) {
  EXPECT_EQ(fold_ascii("M\xfcller", "ISO_IR 100"), "Muller");                 // Latin-1
  EXPECT_EQ(fold_ascii("M\xc3\xbcller", "ISO_IR 192"), "Muller");             // UTF-8
  EXPECT_EQ(fold_ascii("M\xc3\xbcller", "ISO_IR 192", true), "Mueller");
  EXPECT_EQ(fold_ascii("Mu\xcc\x88ller", "ISO_IR 192"), "Muller");            // NFD
  // ISO 2022 IR 87: the JIS X 0208 bytes between the escapes are dropped
  EXPECT_EQ(fold_ascii("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$B#1#2\x1b(B", "\\ISO 2022 IR 87"), "Yamada^Tarou=^");
}

TEST(Bids, Classification) {
  rapidnii::io::SeriesMeta m;
  m.modality = "MR";
  m.protocol_name = "t1_mprage_sag";
  EXPECT_EQ(classify(m, 1).suffix, "T1w");
  m.protocol_name = "t2_tse_tra";
  EXPECT_EQ(classify(m, 1).suffix, "T2w");
  m.protocol_name = "t2_flair";
  EXPECT_EQ(classify(m, 1).suffix, "FLAIR");
  m.protocol_name = "ep2d_bold_rest";
  m.scanning_sequence = "EP";
  EXPECT_EQ(classify(m, 200).suffix, "bold");
  EXPECT_EQ(classify(m, 200).datatype, "func");
  EXPECT_EQ(classify(m, 30, true).datatype, "dwi");  // diffusion with b-values
  EXPECT_EQ(classify(m, 200, false, "phase").datatype, "other");
  EXPECT_EQ(classify(m, 200, false, "mag").suffix, "bold");
  m.protocol_name = "localizer";
  m.scanning_sequence = "GR";
  EXPECT_EQ(classify(m, 1).datatype, "other");
  m.modality = "CT";
  EXPECT_EQ(classify(m, 1).datatype, "other");
  EXPECT_EQ(classify(m, 1).suffix, "ct");
}

TEST(Layout, SessionsAreChronologicalAndCollisionsGetRuns) {
  std::vector<LayoutItem> items(5);
  items[0] = {"subj", "studyB", "2017-09-26|00", 1, "anat", "T1w", "mprage", "", 0, 2, 0};
  items[1] = {"subj", "studyA", "2017-09-23|00", 2, "anat", "T1w", "mprage", "", 0, 2, 0};
  items[2] = {"subj", "studyA", "2017-09-23|00", 2, "anat", "T1w", "mprage", "", 0, 5, 0};
  items[3] = {"subj", "studyA", "2017-09-23|00", 2, "func", "bold", "", "rest", 2, 7, 0};
  items[4] = {"other", "studyC", "2010-01-01|00", 3, "func", "bold", "", "rest", 0, 3, 0};
  auto r = assign_layout(items);
  EXPECT_EQ(r[1].session, 1);
  EXPECT_EQ(r[0].session, 2);
  EXPECT_EQ(r[1].stem, "sub-subj_ses-1_acq-mprage_run-1_T1w");
  EXPECT_EQ(r[2].stem, "sub-subj_ses-1_acq-mprage_run-2_T1w");
  EXPECT_EQ(r[0].stem, "sub-subj_ses-2_acq-mprage_T1w");
  EXPECT_EQ(r[3].stem, "sub-subj_ses-1_task-rest_echo-2_bold");
  EXPECT_EQ(r[3].rel_dir, "sub-subj/ses-1/func");
  EXPECT_EQ(r[4].stem, "sub-other_ses-1_task-rest_bold");
}

TEST(Descrip, GeneratedGrammarOnly) {
  rapidnii::io::SeriesMeta m;
  EXPECT_EQ(nifti_descrip(m), "");
  m.echo_time = 30.0;
  EXPECT_EQ(nifti_descrip(m), "TE=30");
  m.echo_time = 2.46;
  EXPECT_EQ(nifti_descrip(m), "TE=2.46");
}
