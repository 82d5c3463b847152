// The last, disk-bound step of every output (fsync, rename, sidecar, journal
// row) runs here, on threads of its own, so that the compute threads go on
// decoding and compressing the next series instead of waiting for the disk.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rapidnii::pipeline {

class Committer {
 public:
  // `threads` I/O threads; submit() waits while `max_pending` jobs are
  // queued (each holds an open temporary file: the bound keeps file
  // descriptors and unsynced data in check).
  explicit Committer(size_t threads, size_t max_pending = 16);
  ~Committer();  // drains, then joins
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Queues a job. Jobs must not throw (they report their own failures);
  // one that does is terminated with std::terminate, as a thread would be.
  void submit(std::function<void()> job);
  // Returns when every job submitted so far has finished.
  void drain();

 private:
  void run();
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  size_t running_ = 0, max_pending_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace rapidnii::pipeline
