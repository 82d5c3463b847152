// Recursive input walk: every regular file under a root, any name; .zip and
// .tar(.gz/.bz2/.xz) archives are read in memory as if they were folders, and
// a single compressed file (scan.dcm.gz, .bz2, .xz) as the one file it holds.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/input_file.h"

namespace rapidnii::io {

struct ScanOptions {
  bool read_archives = true;
  uint64_t max_archive_bytes = uint64_t(4) << 30;  // uncompressed members of one archive
};

struct ScanResult {
  std::vector<InputFile> files;  // sorted, deterministic
  uint64_t unreadable_dirs = 0;  // folders that could not be listed
  uint64_t archives = 0;         // archives (.zip, .tar...) read
  uint64_t compressed_files = 0; // single compressed files (.dcm.gz...) read
  std::vector<InputFile> bad_archives;     // archives that could not be read whole
  std::vector<InputFile> large_archives;   // archives over max_archive_bytes (not read)
};

// The order of std::filesystem::path's compare (component by component) on
// paths as strings: a separator sorts before every other character. Exact
// for the paths the walk produces (no repeated or trailing separators).
bool path_order_less(const std::string& a, const std::string& b);

// Walks `root` recursively. Directory symlinks are not followed (no loops);
// symlinks to regular files are listed. Never throws for unreadable entries.
ScanResult scan_inputs(const std::filesystem::path& root, const ScanOptions& opt = {});

}  // namespace rapidnii::io
