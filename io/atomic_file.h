// Files written atomically: bytes go to a temporary file beside the final
// name, which is synced and renamed over it only when complete, so no reader
// (and no crash) ever sees a half-written output.
#pragma once
#include <cstdint>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <span>
#include <string_view>

namespace rapidnii::io {

// The folder fsyncs that make renames durable, shared by many commits: a
// run that writes a million small outputs syncs each folder about once a
// second instead of once per file. A commit given a batch marks its folder;
// mark() syncs every marked folder when the oldest mark is older than
// `max_delay`, and flush() (also on destruction) syncs the rest. Until then
// a power loss may undo a rename whose data is already synced: the resume
// journal's check of each output (size and digest) finds it missing and the
// output is written again. Thread-safe.
class FolderSyncBatch {
 public:
  explicit FolderSyncBatch(std::chrono::milliseconds max_delay = std::chrono::milliseconds(1000))
      : max_delay_(max_delay) {}
  ~FolderSyncBatch() { flush(); }
  FolderSyncBatch(const FolderSyncBatch&) = delete;
  FolderSyncBatch& operator=(const FolderSyncBatch&) = delete;

  void mark(const std::filesystem::path& folder);
  void flush();
  uint64_t folder_syncs() const;  // fsyncs done so far

 private:
  void sync(std::set<std::filesystem::path>& folders);
  std::chrono::milliseconds max_delay_;
  mutable std::mutex m_;
  std::set<std::filesystem::path> marked_;
  std::chrono::steady_clock::time_point oldest_{};
  uint64_t syncs_ = 0;
};

// fsync of one folder (best effort); false when it cannot be opened or synced.
bool sync_folder(const std::filesystem::path& folder);

// One output on its way: created as ".<name>.tmp-<pid>-<n>" in the final
// file's folder (folders created as needed), written in order with write(),
// made durable and visible by commit(): fsync, close, rename over the final
// name, fsync of the folder (best effort; through `folders` when given).
// Destroyed uncommitted (an error,
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
  void commit(FolderSyncBatch* folders = nullptr);
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
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644,
                       FolderSyncBatch* folders = nullptr);

}  // namespace rapidnii::io
