// Content digests of the files rapidnii writes, for the resume journal:
// XXH3-128 (libxxhash). The journal only has to recognise an output that is
// complete and unchanged since it was recorded (truncation, a torn write, a
// file replaced by hand), not to resist an attacker who could rewrite the
// journal as easily as the file; XXH3 does that at memory speed, where
// SHA-256 cost about 5% of a fast conversion's CPU time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

struct XXH3_state_s;

namespace rapidnii::io {

// Incremental digest: update() in order, then hex() (32 hex digits,
// prefixed "xxh3-128:" so that a journal row says what it holds).
class Digest {
 public:
  Digest();
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void update(std::span<const uint8_t> bytes);
  std::string hex() const;

 private:
  XXH3_state_s* state_;
};

// The digest of `bytes` / of a text.
std::string digest_hex(std::span<const uint8_t> bytes);
std::string digest_hex(std::string_view text);

// The digest of a file's bytes; empty when it cannot be read.
std::string file_digest(const std::filesystem::path& p);

}  // namespace rapidnii::io
