// Small files written atomically (temporary name, fsync, rename).
#pragma once
#include <filesystem>
#include <string_view>

namespace rapidnii::io {

// Writes `content` to `path` through a temporary file in the same folder,
// renamed when complete; creates parent folders; `mode` for the new file.
// Throws std::runtime_error without naming the path.
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

}  // namespace rapidnii::io
