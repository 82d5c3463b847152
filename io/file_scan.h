// Recursive input walk: every regular file under a root, any name.
#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

namespace rapidnii::io {

struct ScanResult {
  std::vector<std::filesystem::path> files;  // sorted, deterministic
  uint64_t unreadable_dirs = 0;              // folders that could not be listed
};

// Walks `root` recursively. Directory symlinks are not followed (no loops);
// symlinks to regular files are listed. Never throws for unreadable entries.
ScanResult scan_inputs(const std::filesystem::path& root);

}  // namespace rapidnii::io
