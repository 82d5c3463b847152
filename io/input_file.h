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
  std::filesystem::path path;  // the file, or the archive holding the member
  std::string member;          // member name inside the archive; empty for plain files
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // member contents (archives only)

  bool in_archive() const { return bytes != nullptr; }
  // A private description (path, or path!member): for the report in the
  // state folder only, never for the console.
  std::string describe() const { return member.empty() ? path.string() : path.string() + "!" + member; }
  uint64_t size() const;
};

// A seekable input stream over the file or the member bytes.
std::unique_ptr<std::istream> open_input(const InputFile& f);

// Calls fn with the whole content (mmap for files). Returns false when the
// content cannot be read.
bool with_input_bytes(const InputFile& f, const std::function<void(std::span<const uint8_t>)>& fn);

}  // namespace rapidnii::io
