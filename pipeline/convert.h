// The convert command: scan -> index -> plan -> decode -> kernels -> write.
#pragma once
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "pipeline/deid.h"

namespace rapidnii::pipeline {

struct ConvertOptions {
  std::filesystem::path input;
  std::filesystem::path output;
  int threads = 0;  // 0: all cores
  int64_t memory_limit_mb = 0;  // in-flight series data; 0: half of the physical memory
  kernels::Device device = kernels::Device::Auto;
  std::string compression = "default";
  std::string orient = "native";  // native | acquired | RAS | LAS | LPS
  std::string deface;             // blur | remove | off; empty: off (remove in the strict profile)  // fast | default | small | 0-12 | libdeflate-N | isal-N

  // de-identification
  deid::Profile profile = deid::Profile::Research;
  bool allow_phi = false;  // required for the limited profile
  std::filesystem::path key_file;   // empty: the key kept in the state folder
  std::filesystem::path state_dir;  // empty: OUT_DIR + ".rapidnii-state" beside OUT_DIR
  bool convert_burned_in_risk = false;
  bool neutral_origin = false;

  // archive scale
  int shard_index = 0;  // K of --shard K/N (1-based); 0: no sharding
  int shard_count = 0;  // N
};

// Parses "K/N" (1 <= K <= N); throws std::invalid_argument otherwise.
std::pair<int, int> parse_shard(const std::string& s);

// Joins the per-shard manifests of OUT_DIR into OUT_DIR/manifest.csv (rows
// sorted, as a single run writes it) and removes them. Returns the row count.
size_t merge_manifests(const std::filesystem::path& out_dir);

// The state folder used for `opt` (outside OUT_DIR): key, report, journal.
std::filesystem::path state_dir_for(const ConvertOptions& opt);

struct ConvertSummary {
  uint64_t files_seen = 0;
  uint64_t slices_indexed = 0;
  std::map<std::string, uint64_t> skipped;  // reason text -> count
  uint64_t series_written = 0;
  std::map<std::string, uint64_t> series_failed;  // reason -> count
  std::map<std::string, uint64_t> warnings;       // warning -> count of series
  uint64_t unreadable_dirs = 0;
  uint64_t archives = 0;          // .zip/.tar read in memory
  uint64_t compressed_files = 0;  // single compressed files (.dcm.gz) read
  uint64_t bytes_in = 0, bytes_out = 0;
  double seconds = 0;
  // wall seconds of each stage, in run order (what the summary prints)
  std::vector<std::pair<std::string, double>> stage_seconds;
  std::string executor;
  std::string key_id;
  bool key_created = false;
  uint64_t descriptors_cleaned = 0;
  uint64_t series_resumed = 0;        // complete and verified from an earlier run
  uint64_t series_headers_reread = 0; // series whose descriptive header was read again at its write (many series)
  uint64_t series_other_shards = 0;   // left to the other shards
  uint64_t temporaries_removed = 0;   // stale temporary files of a killed run
  uint64_t memory_budget = 0;
  std::vector<std::string> outputs;  // relative paths written
  std::map<std::string, uint64_t> compressors;  // chosen compressor -> series
  std::map<std::string, uint64_t> deface;       // deface outcome -> series

  uint64_t files_skipped() const;
  uint64_t failures() const;
  // 0 all converted, 1 something skipped or failed.
  int exit_code() const { return (files_skipped() || failures() || unreadable_dirs) ? 1 : 0; }
  uint64_t series_done() const { return series_written + series_resumed; }
};

// Runs a conversion. Throws std::runtime_error when the run cannot proceed
// (bad arguments, output not writable): the CLI maps that to exit code 2.
ConvertSummary convert(const ConvertOptions& opt);

// The end-of-run summary: counts and reasons only, never a path or a DICOM value.
void print_summary(const ConvertSummary& s, std::ostream& os);

}  // namespace rapidnii::pipeline
