// Read-ahead of the inputs of the series about to be converted: the kernel
// is asked (posix_fadvise WILLNEED) to read their files into the page cache
// while the series before them are decoded and compressed, so that a run
// whose archive is not cached (an overnight conversion) waits less on the
// disk. One thread of its own; it keeps at most `ahead_bytes` of input and
// `ahead_series` series beyond the series started so far. Page cache only:
// nothing is read into this process, and a hint never changes an output.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rapidnii::pipeline {

class ReadAhead {
 public:
  struct Series {
    // plain files (archive members are in memory already), pointing into
    // paths that outlive the ReadAhead (the run's input list: no copies)
    std::vector<const std::string*> files;
    uint64_t bytes = 0;
  };
  // `series` in the order they will be started.
  ReadAhead(std::vector<Series> series, uint64_t ahead_bytes, size_t ahead_series);
  ~ReadAhead();  // stops at once
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The conversion has started one more series (in the order given).
  void started();
  // Series whose files were hinted so far (for tests).
  size_t hinted() const;

 private:
  void run();
  std::vector<Series> series_;
  uint64_t ahead_bytes_;
  size_t ahead_series_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  size_t started_ = 0, hinted_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rapidnii::pipeline
