#include "io/interned_string.h"

#include <array>
#include <functional>
#include <mutex>
#include <unordered_set>

namespace rapidnii::io {

namespace {

// Shards keep the parallel indexer's threads from queueing on one lock.
// Elements of an unordered_set never move (rehashing relinks nodes), so
// their addresses stay valid for the process.
struct Table {
  struct Shard {
    std::mutex m;
    std::unordered_set<std::string> texts;
  };
  std::array<Shard, 16> shards;
};

Table& table() {
  static Table* t = new Table;  // never destroyed: headers may outlive static destruction
  return *t;
}

}  // namespace

const std::string* InternedString::empty_text() noexcept {
  static const std::string* e = new std::string;
  return e;
}

const std::string* InternedString::intern(std::string_view s) {
  if (s.empty()) return empty_text();
  const size_t h = std::hash<std::string_view>{}(s);
  Table::Shard& shard = table().shards[h % 16];
  std::lock_guard lk(shard.m);
  return &*shard.texts.emplace(s).first;
}

}  // namespace rapidnii::io
