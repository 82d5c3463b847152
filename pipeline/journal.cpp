#include "pipeline/journal.h"

#include "io/hex.h"

#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace rapidnii::pipeline {

namespace {

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw std::runtime_error("journal: " + msg);
  }
}

}  // namespace

Journal::Journal(const std::filesystem::path& state_dir) {
  const auto path = state_dir / "journal.sqlite";
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("the journal cannot be opened in the state folder");
  }
  sqlite3_busy_timeout(db_, 120000);
  exec(db_, "PRAGMA journal_mode=WAL");
  // A row is written after its output is synced and renamed. In WAL mode
  // NORMAL syncs at checkpoints, not at every row: a power loss may lose the
  // last rows (never corrupt the journal), and an output without its row is
  // converted again on resume. FULL cost an fdatasync per output.
  exec(db_, "PRAGMA synchronous=NORMAL");
  exec(db_,
       "CREATE TABLE IF NOT EXISTS output_files (output TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
       "nifti_size INTEGER NOT NULL, nifti_digest TEXT NOT NULL, json_digest TEXT NOT NULL)");
}

Journal::~Journal() {
  if (db_) sqlite3_close(db_);
}

std::optional<JournalRow> Journal::find(const std::string& output) {
  std::lock_guard lk(m_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT fingerprint, nifti_size, nifti_digest, json_digest FROM output_files WHERE output = ?",
                         -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error("journal: cannot query");
  sqlite3_bind_text(st, 1, output.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<JournalRow> row;
  if (sqlite3_step(st) == SQLITE_ROW) {
    JournalRow r;
    r.output = output;
    r.fingerprint = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    r.nifti_size = uint64_t(sqlite3_column_int64(st, 1));
    r.nifti_digest = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
    r.json_digest = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
    row = r;
  }
  sqlite3_finalize(st);
  return row;
}

void Journal::record(const JournalRow& r) {
  std::lock_guard lk(m_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO output_files (output, fingerprint, nifti_size, nifti_digest, json_digest) "
                         "VALUES (?, ?, ?, ?, ?)",
                         -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error("journal: cannot record");
  sqlite3_bind_text(st, 1, r.output.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, r.fingerprint.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, sqlite3_int64(r.nifti_size));
  sqlite3_bind_text(st, 4, r.nifti_digest.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, r.json_digest.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw std::runtime_error("journal: cannot record");
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return io::to_hex(md, n);
}

uint64_t remove_stale_temporaries(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  uint64_t removed = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] != '.') continue;
    const size_t at = name.rfind(".tmp-");
    if (at == std::string::npos) continue;
    const long pid = std::strtol(name.c_str() + at + 5, nullptr, 10);
    // keep the temporaries of live processes (other shards writing now)
    if (pid > 0 && pid != long(::getpid()) && (::kill(pid_t(pid), 0) == 0 || errno == EPERM)) continue;
    std::error_code e2;
    if (fs::remove(it->path(), e2)) removed++;
  }
  return removed;
}

}  // namespace rapidnii::pipeline
