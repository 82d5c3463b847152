// Files written atomically: bytes go to a temporary file beside the final
// name, which is synced and renamed over it only when complete, so no reader
// (and no crash) ever sees a half-written output.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

namespace rapidnii::io {

// One output on its way: created as ".<name>.tmp-<pid>-<n>" in the final
// file's folder (folders created as needed), written in order with write(),
// made durable and visible by commit(): fsync, close, rename over the final
// name, fsync of the folder (best effort). Destroyed uncommitted (an error,
// an exception), it removes the temporary file. Errors throw
// std::runtime_error without naming the path (paths may hold patient names).
// write() and commit() may run on different threads, one at a time.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& final_path, unsigned mode = 0644);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const uint8_t> bytes);
  void commit();
  bool committed() const { return committed_; }
  uint64_t bytes_written() const { return written_; }

 private:
  std::filesystem::path final_path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
};

// Writes `content` to `path` atomically (an AtomicFile written and
// committed at once), with `mode` for the new file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

}  // namespace rapidnii::io
