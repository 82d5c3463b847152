#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace rapidnii::io {

namespace {

std::atomic<uint64_t> g_temp_counter{0};

[[noreturn]] void throw_io(const char* what, int err) {
  throw std::runtime_error(std::string(what) + ": " + std::generic_category().message(err));
}

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& final_path, unsigned mode) : final_path_(final_path) {
  const std::string fname = final_path.filename().string();
  if (fname.empty() || fname == "." || fname == "..") throw std::invalid_argument("output path has no file name");
  const std::filesystem::path parent = final_path.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw std::runtime_error("cannot create output directory: " + ec.message());
  }
  const std::string tmp_name = "." + fname + ".tmp-" + std::to_string(static_cast<long long>(::getpid())) + "-" +
                               std::to_string(g_temp_counter.fetch_add(1, std::memory_order_relaxed));
  tmp_path_ = parent.empty() ? std::filesystem::path(tmp_name) : parent / tmp_name;
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd_ < 0) throw_io("cannot create output file", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::write(std::span<const uint8_t> bytes) {
  if (fd_ < 0) throw std::logic_error("AtomicFile: write after commit");
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot write output file", errno);
    }
    if (w == 0) throw_io("cannot write output file", EIO);
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
}

bool sync_folder(const std::filesystem::path& folder) {
  const int dfd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return false;
  const bool ok = ::fsync(dfd) == 0;
  ::close(dfd);
  return ok;
}

void FolderSyncBatch::mark(const std::filesystem::path& folder) {
  std::set<std::filesystem::path> due;
  {
    std::lock_guard lk(m_);
    const auto now = std::chrono::steady_clock::now();
    if (marked_.empty()) oldest_ = now;
    marked_.insert(folder);
    if (now - oldest_ < max_delay_) return;
    due.swap(marked_);
  }
  sync(due);
}

void FolderSyncBatch::flush() {
  std::set<std::filesystem::path> due;
  {
    std::lock_guard lk(m_);
    due.swap(marked_);
  }
  sync(due);
}

void FolderSyncBatch::sync(std::set<std::filesystem::path>& folders) {
  for (const auto& f : folders) (void)sync_folder(f);
  std::lock_guard lk(m_);
  syncs_ += folders.size();
}

uint64_t FolderSyncBatch::folder_syncs() const {
  std::lock_guard lk(m_);
  return syncs_;
}

void AtomicFile::commit(FolderSyncBatch* folders) {
  if (fd_ < 0) throw std::logic_error("AtomicFile: committed twice");
  if (::fsync(fd_) != 0) throw_io("cannot write output file (fsync)", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw_io("cannot write output file (close)", errno);
  std::error_code ec;
  std::filesystem::rename(tmp_path_, final_path_, ec);
  if (ec) throw std::runtime_error("cannot move output file into place: " + ec.message());
  committed_ = true;
  // make the rename itself durable (best effort: the data is already synced)
  if (folders)
    folders->mark(final_path_.parent_path());
  else
    (void)sync_folder(final_path_.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode,
                       FolderSyncBatch* folders) {
  AtomicFile f(path, mode);
  f.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(content.data()), content.size()));
  f.commit(folders);
}

}  // namespace rapidnii::io
