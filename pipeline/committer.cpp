#include "pipeline/committer.h"

#include <algorithm>

namespace rapidnii::pipeline {

Committer::Committer(size_t threads, size_t max_pending) : max_pending_(std::max<size_t>(1, max_pending)) {
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) threads_.emplace_back([this] { run(); });
}

Committer::~Committer() {
  drain();
  {
    std::lock_guard lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Committer::submit(std::function<void()> job) {
  std::unique_lock lk(m_);
  cv_.wait(lk, [&] { return queue_.size() < max_pending_; });
  queue_.push_back(std::move(job));
  lk.unlock();
  cv_.notify_all();
}

void Committer::drain() {
  std::unique_lock lk(m_);
  cv_.wait(lk, [&] { return queue_.empty() && running_ == 0; });
}

void Committer::run() {
  std::unique_lock lk(m_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and nothing left
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lk.unlock();
    cv_.notify_all();  // a submitter may be waiting for room
    job();
    job = nullptr;  // its captures (open files) go before the count drops
    lk.lock();
    --running_;
    cv_.notify_all();
  }
}

}  // namespace rapidnii::pipeline
