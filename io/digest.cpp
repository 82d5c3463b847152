#include "io/digest.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <new>
#include <vector>

#include "io/hex.h"

namespace rapidnii::io {

Digest::Digest() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_128bits_reset(state_);
}

Digest::~Digest() { XXH3_freeState(state_); }

void Digest::update(std::span<const uint8_t> bytes) {
  if (!bytes.empty()) XXH3_128bits_update(state_, bytes.data(), bytes.size());
}

std::string Digest::hex() const {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state_));
  return "xxh3-128:" + to_hex(c.digest, sizeof c.digest);
}

std::string digest_hex(std::span<const uint8_t> bytes) {
  Digest d;
  d.update(bytes);
  return d.hex();
}

std::string digest_hex(std::string_view text) {
  return digest_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string file_digest(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  Digest d;
  std::vector<uint8_t> buf(size_t{1} << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return {};
    }
    if (n == 0) break;
    d.update(std::span<const uint8_t>(buf.data(), size_t(n)));
  }
  ::close(fd);
  return d.hex();
}

}  // namespace rapidnii::io
