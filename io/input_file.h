// One input: a file on disk, or a member of a .zip/.tar(.gz) archive held
// in memory (archives are read with libarchive, never unpacked to disk).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rapidnii::io {

struct InputFile {
  // The file, or the archive holding the member. A plain string, not a
  // std::filesystem::path: libstdc++'s path keeps a heap list of its
  // components (about 300 bytes for a 5-level path), and an archive of a
  // million files keeps a million of these for the whole run.
  std::string path;
  std::string member;          // member name inside the archive; empty for plain files
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // member contents (archives only)

  bool in_archive() const { return bytes != nullptr; }
  // A private description (path, or path!member): for the report in the
  // state folder only, never for the console.
  std::string describe() const { return member.empty() ? path : path + "!" + member; }
  uint64_t size() const;
};

// A seekable input stream over the file or the member bytes.
std::unique_ptr<std::istream> open_input(const InputFile& f);

// A seekable input stream over bytes that outlive it.
std::unique_ptr<std::istream> open_memory_input(std::span<const uint8_t> bytes);

// The first bytes of a plain file read with pread, not mapped (no page
// faults, no unmap and its TLB shootdown per file), into `buf`: `decide` gets
// the first 16 KiB (the whole file when smaller), then, when it returns
// false, the first 256 KiB, with the file size and the open descriptor (for
// reading on; closed on return). Decided: `decide` returned true; Undecided:
// it did not (the caller reads the whole file instead; archive members are
// always Undecided); Unreadable: the file cannot be opened or read.
enum class PrefixRead { Decided, Undecided, Unreadable };
PrefixRead with_file_prefix(const InputFile& f, std::vector<uint8_t>& buf,
                            const std::function<bool(std::span<const uint8_t> prefix, uint64_t file_size, int fd)>& decide);

// Calls fn with the whole content (mmap for files). Returns false when the
// content cannot be read.
bool with_input_bytes(const InputFile& f, const std::function<void(std::span<const uint8_t>)>& fn);

}  // namespace rapidnii::io
