#include "io/file_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <system_error>
#include <thread>

namespace rapidnii::io {

namespace {

// Cheap magic-number test of a file's first bytes: zip, tar, or a
// compressed stream (gzip, bzip2, xz), which may hold a tar or one file.
struct Magic {
  bool may_be_archive = false;
  bool compressed = false;
};

Magic sniff(const std::string& p) {
  unsigned char head[512] = {};
  ssize_t n = 0;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = ::pread(fd, head, sizeof head, 0);
    ::close(fd);
  }
  Magic m;
  m.compressed = (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) || (n >= 3 && std::memcmp(head, "BZh", 3) == 0) ||
                 (n >= 6 && std::memcmp(head, "\xfd" "7zXZ", 5) == 0);
  m.may_be_archive = m.compressed || (n >= 4 && std::memcmp(head, "PK\3\4", 4) == 0) ||
                     (n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0);
  return m;
}

enum class ArchiveRead { NotArchive, Read, Broken, TooLarge };

// The name of the one file a compressed stream holds: its own name without
// the compression suffix (scan.dcm.gz -> scan.dcm).
std::string stream_member_name(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  for (const char* ext : {".gz", ".bz2", ".xz", ".GZ", ".BZ2", ".XZ"}) {
    const size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) return name.substr(0, name.size() - n);
  }
  return name;
}

// `single`: the file is one compressed stream that is not a tar (a
// gzipped DICOM file): read as one member.
ArchiveRead read_archive(const std::filesystem::path& p, uint64_t max_bytes, bool single,
                         std::vector<InputFile>& out) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  if (single) {
    archive_read_support_format_raw(a);
  } else {
    archive_read_support_format_zip(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
  }
  if (archive_read_open_filename(a, p.c_str(), 1 << 16) != ARCHIVE_OK) {
    archive_read_free(a);
    // a compressed stream that cannot be opened as one is cut or corrupt
    return single ? ArchiveRead::Broken : ArchiveRead::NotArchive;
  }
  std::vector<InputFile> members;
  uint64_t total = 0;
  ArchiveRead result = ArchiveRead::Read;
  archive_entry* e = nullptr;
  bool first = true;
  for (;;) {
    const int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      result = first ? ArchiveRead::NotArchive : ArchiveRead::Broken;
      break;
    }
    first = false;
    if (!single && archive_entry_filetype(e) != AE_IFREG) continue;
    // a member's size when the archive gives it (a compressed stream does
    // not: read to its end, within the cap)
    const bool sized = archive_entry_size_is_set(e);
    const la_int64_t size = sized ? archive_entry_size(e) : 0;
    if (sized && (size < 0 || total + uint64_t(size) > max_bytes)) {
      result = ArchiveRead::TooLarge;
      break;
    }
    constexpr size_t kChunk = size_t{1} << 20;
    auto bytes = std::make_shared<std::vector<uint8_t>>(size_t(size));
    size_t done = 0;
    la_ssize_t got = 0;
    for (;;) {
      if (done == bytes->size()) {
        if (sized) break;
        if (total + done > max_bytes) {
          result = ArchiveRead::TooLarge;
          break;
        }
        bytes->resize(done + kChunk);
      }
      got = archive_read_data(a, bytes->data() + done, bytes->size() - done);
      if (got <= 0) break;
      done += size_t(got);
    }
    if (result != ArchiveRead::Read) break;
    if (got < 0 || (sized && done != bytes->size())) {
      result = ArchiveRead::Broken;
      break;
    }
    bytes->resize(done);
    bytes->shrink_to_fit();
    total += bytes->size();
    const char* name = archive_entry_pathname(e);
    members.push_back(InputFile{p, single ? stream_member_name(p) : name ? name : "", std::move(bytes)});
    if (single) break;
  }
  archive_read_free(a);
  if (result == ArchiveRead::Read) {
    for (auto& m : members) out.push_back(std::move(m));
  }
  return result;
}

}  // namespace

bool path_order_less(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] == '/') return true;
    if (b[i] == '/') return false;
    return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

ScanResult scan_inputs(const std::filesystem::path& root, const ScanOptions& opt) {
  namespace fs = std::filesystem;
  ScanResult r;
  std::vector<std::string> paths;  // strings: see InputFile::path
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    paths.push_back(root.native());
  } else {
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) r.unreadable_dirs++;
    while (!ec && it != end) {
      const fs::directory_entry& e = *it;
      std::error_code e1;
      if (e.is_symlink(e1)) {
        // follow links to files only; never descend into linked folders
        if (fs::is_regular_file(e.path(), e1)) paths.push_back(e.path().native());
        if (e.is_directory(e1)) it.disable_recursion_pending();
      } else if (e.is_regular_file(e1)) {
        paths.push_back(e.path().native());
      } else if (e.is_directory(e1)) {
        std::error_code e2;
        fs::directory_iterator probe(e.path(), e2);
        if (e2) r.unreadable_dirs++;
      }
      it.increment(ec);
      if (ec) {
        r.unreadable_dirs++;
        ec.clear();
      }
    }
  }
  // the order std::filesystem::path gives (component by component): a
  // separator sorts before every other character
  std::sort(paths.begin(), paths.end(), path_order_less);
  r.files.reserve(paths.size());
  // The magic numbers of every file: one open and a 512-byte pread each,
  // most of the walk's time on a million files. Waiting on the disk, not
  // computing (an archive whose inodes are not cached: 5.3 s for 100k files
  // with two threads), so on kSniffThreads threads of their own, beyond
  // --threads, that keep that many reads in flight.
  std::vector<Magic> magics(opt.read_archives ? paths.size() : 0);
  {
    constexpr size_t kSniffThreads = 16, kBatch = 64;
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t b; (b = next.fetch_add(kBatch)) < magics.size();)
        for (size_t i = b; i < std::min(magics.size(), b + kBatch); ++i) magics[i] = sniff(paths[i]);
    };
    std::vector<std::thread> pool;
    const size_t n = std::min(kSniffThreads, (magics.size() + kBatch - 1) / kBatch);
    for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    std::string& p = paths[i];
    const Magic magic = opt.read_archives ? magics[i] : Magic{};
    if (magic.may_be_archive) {
      std::vector<InputFile> members;
      ArchiveRead how = read_archive(p, opt.max_archive_bytes, false, members);
      // a compressed stream that holds no tar: one compressed file (.dcm.gz)
      bool single = false;
      if (how == ArchiveRead::NotArchive && magic.compressed) {
        how = read_archive(p, opt.max_archive_bytes, true, members);
        single = true;
      }
      switch (how) {
        case ArchiveRead::Read:
          (single ? r.compressed_files : r.archives)++;
          std::sort(members.begin(), members.end(),
                    [](const InputFile& a, const InputFile& b) { return a.member < b.member; });
          for (auto& m : members) r.files.push_back(std::move(m));
          continue;
        case ArchiveRead::Broken: r.bad_archives.push_back(InputFile{p, "", nullptr}); continue;
        case ArchiveRead::TooLarge: r.large_archives.push_back(InputFile{p, "", nullptr}); continue;
        case ArchiveRead::NotArchive: break;
      }
    }
    r.files.push_back(InputFile{std::move(p), "", nullptr});
  }
  return r;
}

}  // namespace rapidnii::io
