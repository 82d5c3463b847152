#include "io/input_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <streambuf>

namespace rapidnii::io {

namespace {

// Read-only, seekable stream buffer over bytes that outlive it (kept alive
// by `bytes` when given).
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::shared_ptr<const std::vector<uint8_t>> bytes) : bytes_(std::move(bytes)) {
    char* b = const_cast<char*>(reinterpret_cast<const char*>(bytes_->data()));
    setg(b, b, b + bytes_->size());
  }
  explicit MemoryBuffer(std::span<const uint8_t> view) {
    char* b = const_cast<char*>(reinterpret_cast<const char*>(view.data()));
    setg(b, b, b + view.size());
  }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    off_type base = dir == std::ios_base::beg ? 0 : dir == std::ios_base::cur ? gptr() - eback() : egptr() - eback();
    return seekpos(base + off, std::ios_base::in);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
    if (pos < 0 || pos > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + pos, egptr());
    return pos;
  }

 private:
  std::shared_ptr<const std::vector<uint8_t>> bytes_;
};

class MemoryStream : public std::istream {
 public:
  explicit MemoryStream(std::shared_ptr<const std::vector<uint8_t>> bytes)
      : std::istream(nullptr), buf_(std::move(bytes)) {
    rdbuf(&buf_);
  }
  explicit MemoryStream(std::span<const uint8_t> view) : std::istream(nullptr), buf_(view) { rdbuf(&buf_); }

 private:
  MemoryBuffer buf_;
};

}  // namespace

uint64_t InputFile::size() const {
  if (bytes) return bytes->size();
  std::error_code ec;
  const auto s = std::filesystem::file_size(path, ec);
  return ec ? 0 : s;
}

std::unique_ptr<std::istream> open_input(const InputFile& f) {
  if (f.bytes) return std::make_unique<MemoryStream>(f.bytes);
  return std::make_unique<std::ifstream>(f.path, std::ios::binary);
}

std::unique_ptr<std::istream> open_memory_input(std::span<const uint8_t> bytes) {
  return std::make_unique<MemoryStream>(bytes);
}

namespace {

// Reads exactly `n` bytes at `offset` of `fd`; false on an error or an early end.
bool pread_exact(int fd, void* dst, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= size_t(r), offset += uint64_t(r);
  }
  return true;
}

}  // namespace

PrefixRead with_file_prefix(const InputFile& f, std::vector<uint8_t>& buf,
                            const std::function<bool(std::span<const uint8_t>, uint64_t, int)>& decide) {
  if (f.in_archive()) return PrefixRead::Undecided;
  const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PrefixRead::Unreadable;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return PrefixRead::Unreadable;
  const uint64_t size = uint64_t(st.st_size);
  // 16 KiB hold most headers (a Siemens CSA header included), 256 KiB nearly all
  size_t have = 0;
  for (const size_t want : {size_t(16) << 10, size_t(256) << 10}) {
    const size_t n = size_t(std::min<uint64_t>(want, size));
    if (buf.size() < n) buf.resize(n);
    if (n > have && !pread_exact(fd, buf.data() + have, n - have, have)) return PrefixRead::Unreadable;
    have = n;
    if (decide(std::span<const uint8_t>(buf.data(), n), size, fd)) return PrefixRead::Decided;
    if (n == size) break;
  }
  return PrefixRead::Undecided;
}

bool with_input_bytes(const InputFile& f, const std::function<void(std::span<const uint8_t>)>& fn) {
  if (f.bytes) {
    fn(std::span<const uint8_t>(f.bytes->data(), f.bytes->size()));
    return true;
  }
  const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return false;
  }
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    fn({});
    return true;
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return false;
  fn(std::span<const uint8_t>(static_cast<const uint8_t*>(map), size));
  ::munmap(map, size);
  return true;
}

}  // namespace rapidnii::io
