// The input walk's order and the interned header strings (io/file_scan,
// io/interned_string): what lets an index of a million files stay small.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/file_scan.h"
#include "io/interned_string.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using rapidnii::io::InternedString;

TEST(PathOrder, SameAsFilesystemPathCompare) {
  // names where a separator and characters below '/' ('-', '.', ' ') meet
  std::mt19937 rng(7);
  const std::string alphabet = "ab-./ _Z0\x7f\xc3";
  std::vector<std::string> paths;
  for (int i = 0; i < 4000; ++i) {
    std::string p = "/r";
    const int parts = 1 + int(rng() % 4);
    for (int k = 0; k < parts; ++k) {
      p += '/';
      const int len = 1 + int(rng() % 4);
      for (int c = 0; c < len; ++c) {
        char ch = alphabet[rng() % alphabet.size()];
        if (ch == '/') ch = 'a';  // one component: no separator inside
        p += ch;
      }
    }
    paths.push_back(p);
  }
  paths.push_back("/r/a");
  paths.push_back("/r/a/b");
  paths.push_back("/r/a-b");
  paths.push_back("/r/a.b/c");
  std::vector<std::string> by_string = paths, by_path = paths;
  std::sort(by_string.begin(), by_string.end(), rapidnii::io::path_order_less);
  std::sort(by_path.begin(), by_path.end(), [](const std::string& a, const std::string& b) { return fs::path(a) < fs::path(b); });
  EXPECT_EQ(by_string, by_path);
  // the cases a plain string sort gets wrong
  EXPECT_TRUE(rapidnii::io::path_order_less("/r/a/b", "/r/a-b"));
  EXPECT_FALSE(std::string("/r/a/b") < std::string("/r/a-b"));
  EXPECT_TRUE(rapidnii::io::path_order_less("/r/a", "/r/a/b"));
  EXPECT_FALSE(rapidnii::io::path_order_less("/r/a", "/r/a"));
}

TEST(PathOrder, ScanListsFilesInPathOrder) {
  rapidnii::testdata::TempDir dir;
  for (const char* rel : {"a-b/x", "a/b/y", "a/c", "a.b/z", "a b/w"}) {
    const fs::path p = dir.path() / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "not dicom";
  }
  const auto scan = rapidnii::io::scan_inputs(dir.path());
  std::vector<fs::path> got;
  for (const auto& f : scan.files) got.push_back(fs::path(f.path));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  // "a" and its folder first (a string sort puts "a b/" and "a-b/" first)
  EXPECT_EQ(got[0].lexically_relative(dir.path()), fs::path("a/b/y"));
  EXPECT_EQ(got[1].lexically_relative(dir.path()), fs::path("a/c"));
  EXPECT_EQ(got[2].lexically_relative(dir.path()), fs::path("a b/w"));
}

TEST(InternedString, EqualTextsShareOneCopy) {
  const std::string uid = "1.2.826.0.1.3680043.2.1125.1.98765432101234567890";
  InternedString a(uid), b(std::string_view(uid).substr(0));
  InternedString c("1.2.3");
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_TRUE(a == std::string_view(uid));
  EXPECT_EQ(a.str(), uid);
  InternedString e;
  EXPECT_TRUE(e.empty());
  EXPECT_TRUE(e == InternedString(""));
  e = "MR";
  EXPECT_TRUE(e == "MR");
  EXPECT_EQ(e + "|x", "MR|x");
  EXPECT_EQ(std::string("x|") + e, "x|MR");
  // ordering is by text, not by address
  InternedString lo("1.2.10"), hi("1.2.9");
  EXPECT_TRUE(lo < hi);
  EXPECT_FALSE(hi < lo);
  std::set<InternedString> s{hi, lo, InternedString("1.2.10")};
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.begin()->str(), "1.2.10");
}

TEST(InternedString, ThreadsInterningTheSameTextsAgree) {
  constexpr int kThreads = 8, kTexts = 2000;
  std::vector<std::vector<const std::string*>> seen(kThreads, std::vector<const std::string*>(kTexts));
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kTexts; ++i) {
        const int k = (i * 7 + t * 13) % kTexts;  // each thread in its own order
        seen[t][k] = &InternedString("series." + std::to_string(k)).str();
      }
    });
  for (auto& th : ts) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
  std::set<const std::string*> distinct(seen[0].begin(), seen[0].end());
  EXPECT_EQ(distinct.size(), size_t(kTexts));
  EXPECT_EQ(*seen[0][42], "series.42");
}
