#include "io/file_scan.h"

#include <algorithm>
#include <system_error>

namespace rapidnii::io {

ScanResult scan_inputs(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  ScanResult r;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    r.files.push_back(root);
    return r;
  }
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) {
    r.unreadable_dirs++;
    return r;
  }
  while (it != end) {
    const fs::directory_entry& e = *it;
    std::error_code e1;
    if (e.is_symlink(e1)) {
      // follow links to files only; never descend into linked folders
      if (fs::is_regular_file(e.path(), e1)) r.files.push_back(e.path());
      if (e.is_directory(e1)) it.disable_recursion_pending();
    } else if (e.is_regular_file(e1)) {
      r.files.push_back(e.path());
    } else if (e.is_directory(e1)) {
      // probe readability so that unlistable folders are counted
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
  std::sort(r.files.begin(), r.files.end());
  return r;
}

}  // namespace rapidnii::io
