#include "io/input_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <streambuf>

namespace rapidnii::io {

namespace {

// Read-only, seekable stream buffer over bytes that outlive it.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::shared_ptr<const std::vector<uint8_t>> bytes) : bytes_(std::move(bytes)) {
    char* b = const_cast<char*>(reinterpret_cast<const char*>(bytes_->data()));
    setg(b, b, b + bytes_->size());
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
