// Tests for the conversion pipeline's runtime pieces: the buffer pool
// (reuse within a byte budget), the committer (I/O jobs off the compute
// threads), atomic files with a deferred commit, and output digests.
#include "io/atomic_file.h"
#include "io/digest.h"
#include "io/nifti_writer.h"
#include "pipeline/readahead.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/committer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using rapidnii::pipeline::BufferPool;
using rapidnii::pipeline::Committer;
using rapidnii::pipeline::PooledArray;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("rapidnii_runtime_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> names_in(const fs::path& d) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

// ------------------------------------------------------------ BufferPool --

TEST(BufferPool, ReleasedBufferIsReusedForASimilarSize) {
  BufferPool pool(64 << 20);
  std::byte* first = nullptr;
  {
    PooledArray<int16_t> a(pool, 3'000'000);  // 6 MB
    first = reinterpret_cast<std::byte*>(a.data());
    a[0] = 7;
    a[a.size() - 1] = 9;  // the whole range is usable
  }
  PooledArray<int16_t> b(pool, 2'900'000);  // within a quarter: the same memory
  EXPECT_EQ(reinterpret_cast<std::byte*>(b.data()), first);
  const auto st = pool.stats();
  EXPECT_EQ(st.allocations, 1u);
  EXPECT_EQ(st.reuses, 1u);
}

TEST(BufferPool, TheSmallestCachedBufferThatFitsIsReused) {
  BufferPool pool(256 << 20);
  std::byte *mid = nullptr;
  {
    PooledArray<uint8_t> big(pool, 64 << 20), m(pool, 16 << 20), tiny(pool, 4 << 20);
    mid = reinterpret_cast<std::byte*>(m.data());
  }
  PooledArray<uint8_t> want(pool, 10 << 20);  // 4 MiB is too small, 16 MiB fits best
  EXPECT_EQ(reinterpret_cast<std::byte*>(want.data()), mid);
  EXPECT_EQ(pool.stats().reuses, 1u);
  EXPECT_EQ(pool.stats().leased, uint64_t(16) << 20);  // the capacity counts
}

TEST(BufferPool, LeasedPlusCachedStayWithinTheBudget) {
  const uint64_t budget = 40 << 20;
  BufferPool pool(budget);
  for (int round = 0; round < 20; ++round) {
    // sizes that do not fit each other's buffers: the pool must drop old ones
    PooledArray<uint8_t> a(pool, size_t(4 + (round % 4) * 7) << 20);  // a + b <= 38 MiB
    PooledArray<uint8_t> b(pool, size_t(3 + (round % 3) * 5) << 20);
    const auto st = pool.stats();
    EXPECT_LE(st.leased + st.cached, budget) << "round " << round;
  }
  const auto st = pool.stats();
  EXPECT_EQ(st.leased, 0u);
  EXPECT_LE(st.cached, budget);
}

TEST(BufferPool, RequestLargerThanTheBudgetIsServedAndNotKept) {
  BufferPool pool(8 << 20);
  {
    PooledArray<uint8_t> huge(pool, 32 << 20);
    std::memset(huge.data(), 1, huge.size());
  }
  EXPECT_EQ(pool.stats().cached, 0u);
}

TEST(BufferPool, SwapAndResetGiveBuffersBack) {
  BufferPool pool(64 << 20);
  PooledArray<float> a(pool, 1000), b(pool, 2000);
  a.swap(b);
  EXPECT_EQ(a.size(), 2000u);
  EXPECT_EQ(b.size(), 1000u);
  a.reset();
  b.reset();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(pool.stats().leased, 0u);
  EXPECT_GT(pool.stats().cached, 0u);
}

TEST(BufferPool, ConcurrentLeasesNeverShareMemory) {
  BufferPool pool(512 << 20);
  std::atomic<bool> overlap{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) {
        PooledArray<uint32_t> a(pool, size_t(1 + (k % 4)) << 18);
        const uint32_t tag = uint32_t(t * 1000 + k);
        for (size_t i = 0; i < a.size(); i += 1024) a[i] = tag;
        std::this_thread::yield();
        for (size_t i = 0; i < a.size(); i += 1024)
          if (a[i] != tag) overlap = true;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(pool.stats().leased, 0u);
}

// ------------------------------------------------------------- Committer --

TEST(Committer, RunsEveryJobAndDrainWaitsForThem) {
  std::atomic<int> done{0};
  Committer c(2, 4);
  for (int i = 0; i < 100; ++i)
    c.submit([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      done++;
    });
  c.drain();
  EXPECT_EQ(done.load(), 100);
}

TEST(Committer, JobsRunOffTheSubmittingThread) {
  std::set<std::thread::id> ids;
  std::mutex m;
  {
    Committer c(1);
    for (int i = 0; i < 10; ++i)
      c.submit([&] {
        std::lock_guard lk(m);
        ids.insert(std::this_thread::get_id());
      });
  }  // the destructor drains
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(*ids.begin(), std::this_thread::get_id());
}

TEST(Committer, SubmitWaitsWhileTheQueueIsFull) {
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  Committer c(1, 2);
  c.submit([&] {
    started++;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (started == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  c.submit([] {});
  c.submit([] {});  // queue now full (2 waiting)
  std::atomic<bool> third_in{false};
  std::thread t([&] {
    c.submit([] {});
    third_in = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(third_in.load());
  release = true;
  t.join();
  EXPECT_TRUE(third_in.load());
  c.drain();
}

// ------------------------------------------------------------ AtomicFile --

TEST(AtomicFile, InvisibleUntilCommittedThenComplete) {
  const fs::path d = temp_dir("atomic");
  const fs::path final_path = d / "sub" / "out.bin";
  {
    rapidnii::io::AtomicFile f(final_path);
    f.write(std::vector<uint8_t>(1000, 0xab));
    EXPECT_FALSE(fs::exists(final_path));
    ASSERT_EQ(names_in(d / "sub").size(), 1u);
    EXPECT_NE(names_in(d / "sub")[0].find(".tmp-"), std::string::npos);
    f.write(std::vector<uint8_t>(24, 0xcd));
    EXPECT_EQ(f.bytes_written(), 1024u);
    f.commit();
    EXPECT_TRUE(f.committed());
  }
  EXPECT_EQ(names_in(d / "sub"), std::vector<std::string>{"out.bin"});
  const std::string s = read_all(final_path);
  ASSERT_EQ(s.size(), 1024u);
  EXPECT_EQ(uint8_t(s[999]), 0xab);
  EXPECT_EQ(uint8_t(s[1000]), 0xcd);
  fs::remove_all(d);
}

TEST(AtomicFile, DestroyedUncommittedLeavesNothing) {
  const fs::path d = temp_dir("abandon");
  fs::path final_path = d / "out.bin";
  {
    std::ofstream(final_path) << "old";
    rapidnii::io::AtomicFile f(final_path);
    f.write(std::vector<uint8_t>(100, 1));
  }
  EXPECT_EQ(names_in(d), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(read_all(final_path), "old");  // the previous file is untouched
  fs::remove_all(d);
}

TEST(AtomicFile, WriteAfterCommitAndDoubleCommitThrow) {
  const fs::path d = temp_dir("twice");
  rapidnii::io::AtomicFile f(d / "x");
  f.commit();
  EXPECT_THROW(f.write(std::vector<uint8_t>(1, 0)), std::logic_error);
  EXPECT_THROW(f.commit(), std::logic_error);
  fs::remove_all(d);
}

TEST(FolderSyncBatch, OneSyncPerFolderUntilTheDelayThenEveryFolderOnFlush) {
  const fs::path d = temp_dir("foldersync");
  {
    rapidnii::io::FolderSyncBatch batch(std::chrono::hours(1));  // nothing due before flush
    for (int i = 0; i < 50; ++i)
      rapidnii::io::write_file_atomic(d / (i % 2 ? "a" : "b") / ("f" + std::to_string(i)), "x", 0644, &batch);
    EXPECT_EQ(batch.folder_syncs(), 0u);
    EXPECT_EQ(names_in(d / "a").size(), 25u);  // renamed (visible) before their folders are synced
    EXPECT_EQ(names_in(d / "b").size(), 25u);
    batch.flush();
    EXPECT_EQ(batch.folder_syncs(), 2u);  // two folders, one fsync each
    batch.flush();
    EXPECT_EQ(batch.folder_syncs(), 2u);  // nothing new marked
    rapidnii::io::AtomicFile f(d / "a" / "late");
    f.commit(&batch);
    EXPECT_EQ(batch.folder_syncs(), 2u);
  }  // destroyed: the last mark is synced
  {
    rapidnii::io::FolderSyncBatch now(std::chrono::milliseconds(0));  // every mark is due at once
    rapidnii::io::write_file_atomic(d / "a" / "g1", "y", 0644, &now);
    rapidnii::io::write_file_atomic(d / "a" / "g2", "y", 0644, &now);
    EXPECT_EQ(now.folder_syncs(), 2u);
  }
  EXPECT_TRUE(rapidnii::io::sync_folder(d / "a"));
  EXPECT_FALSE(rapidnii::io::sync_folder(d / "missing"));
  EXPECT_EQ(read_all(d / "a" / "g2"), "y");
  fs::remove_all(d);
}

namespace {

// Polls `pred` for up to 10 s.
template <class F>
bool eventually(F pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace

TEST(ReadAhead, StaysWithinItsWindowOfSeriesAndBytes) {
  const fs::path d = temp_dir("readahead");
  std::vector<rapidnii::pipeline::ReadAhead::Series> series(5);
  std::vector<std::string> paths;
  for (int k = 0; k < 5; ++k) {
    const fs::path f = d / ("f" + std::to_string(k));
    std::ofstream(f) << std::string(1000, char('a' + k));
    paths.push_back(f.string());
  }
  const std::string missing = (d / "missing").string();
  for (int k = 0; k < 5; ++k) {
    series[k].files = {&paths[k], &missing};  // a missing file is passed over
    series[k].bytes = 100;
  }
  {
    // two series ahead at most
    rapidnii::pipeline::ReadAhead ra(series, 1000, 2);
    ASSERT_TRUE(eventually([&] { return ra.hinted() == 2; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(ra.hinted(), 2u);  // not beyond the window
    ra.started();
    ASSERT_TRUE(eventually([&] { return ra.hinted() == 3; }));
    ra.started();
    ra.started();
    ASSERT_TRUE(eventually([&] { return ra.hinted() == 5; }));
  }
  {
    // 150 bytes ahead at most: one series of 100 at a time (the next one is always allowed)
    rapidnii::pipeline::ReadAhead ra(series, 150, 10);
    ASSERT_TRUE(eventually([&] { return ra.hinted() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(ra.hinted(), 1u);
    ra.started();
    ASSERT_TRUE(eventually([&] { return ra.hinted() == 2; }));
  }
  {
    // destroyed while waiting: returns at once
    rapidnii::pipeline::ReadAhead ra(series, 0, 1);
  }
  fs::remove_all(d);
}

TEST(WriteNiftiInto, DeferredCommitGivesTheSameBytesAsADirectWrite) {
  const fs::path d = temp_dir("deferred");
  std::vector<int16_t> vox(64 * 64 * 20);
  for (size_t i = 0; i < vox.size(); ++i) vox[i] = int16_t((i * 37) % 2000 - 1000);
  rapidnii::io::NiftiVolume v;
  v.dim = {64, 64, 20, 1, 1, 1, 1};
  v.affine = {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 2, 0}}};
  v.voxels = std::as_bytes(std::span<const int16_t>(vox));
  rapidnii::io::NiftiGzOptions o;
  o.compression = rapidnii::io::parse_compression("default");
  const auto direct = rapidnii::io::write_nifti_gz(d / "a.nii.gz", v, o);
  rapidnii::io::NiftiGzResult deferred;
  {
    auto f = std::make_shared<rapidnii::io::AtomicFile>(d / "b.nii.gz");
    deferred = rapidnii::io::write_nifti_gz_into(*f, d / "b.nii.gz", v, o);
    EXPECT_FALSE(fs::exists(d / "b.nii.gz"));
    std::thread([f] { f->commit(); }).join();  // committed on another thread
  }
  EXPECT_EQ(read_all(d / "a.nii.gz"), read_all(d / "b.nii.gz"));
  EXPECT_EQ(direct.digest, deferred.digest);
  EXPECT_EQ(direct.bytes, fs::file_size(d / "b.nii.gz"));
  EXPECT_EQ(rapidnii::io::file_digest(d / "b.nii.gz"), deferred.digest);
  fs::remove_all(d);
}

// ---------------------------------------------------------------- Digest --

TEST(Digest, IncrementalEqualsOneShotAndDetectsChanges) {
  std::string text(100000, 'x');
  for (size_t i = 0; i < text.size(); ++i) text[i] = char('a' + (i * 7) % 26);
  rapidnii::io::Digest d;
  d.update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), 12345));
  d.update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()) + 12345, text.size() - 12345));
  const std::string whole = rapidnii::io::digest_hex(text);
  EXPECT_EQ(d.hex(), whole);
  EXPECT_EQ(whole.rfind("xxh3-128:", 0), 0u);
  EXPECT_EQ(whole.size(), 9u + 32u);
  std::string changed = text;
  changed[50000] ^= 1;
  EXPECT_NE(rapidnii::io::digest_hex(changed), whole);
  EXPECT_NE(rapidnii::io::digest_hex(text.substr(0, text.size() - 1)), whole);
  EXPECT_EQ(rapidnii::io::file_digest("/nonexistent/rapidnii/file"), "");
}
