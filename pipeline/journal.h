// The resume journal: one SQLite row per output, kept in the private state
// folder (it maps inputs to outputs, so it never goes into OUT_DIR).
#pragma once
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

struct sqlite3;

namespace rapidnii::pipeline {

struct JournalRow {
  std::string output;       // relative path of the .nii.gz
  std::string fingerprint;  // of the inputs and the conversion settings
  uint64_t nifti_size = 0;
  std::string nifti_digest;  // io::Digest of the .nii.gz
  std::string json_digest;   // io::Digest of the sidecar
};

class Journal {
 public:
  // Opens (creating when needed) STATE/journal.sqlite. Several processes
  // (shards) may share it: writes wait for each other.
  explicit Journal(const std::filesystem::path& state_dir);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  std::optional<JournalRow> find(const std::string& output);
  void record(const JournalRow& row);

 private:
  sqlite3* db_ = nullptr;
  std::mutex m_;
};

// Hex SHA-256 of a text (the fingerprint of an output's inputs and settings).
std::string sha256_hex(const std::string& data);

// Removes temporary files (".<name>.tmp-<pid>-<n>") left under `root` by
// processes that no longer run. Returns how many were removed.
uint64_t remove_stale_temporaries(const std::filesystem::path& root);

}  // namespace rapidnii::pipeline
