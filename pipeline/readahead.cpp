#include "pipeline/readahead.h"

#include <fcntl.h>
#include <unistd.h>

namespace rapidnii::pipeline {

ReadAhead::ReadAhead(std::vector<Series> series, uint64_t ahead_bytes, size_t ahead_series)
    : series_(std::move(series)), ahead_bytes_(ahead_bytes), ahead_series_(ahead_series) {
  if (!series_.empty()) thread_ = std::thread([this] { run(); });
}

ReadAhead::~ReadAhead() {
  {
    std::lock_guard lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReadAhead::started() {
  {
    std::lock_guard lk(m_);
    ++started_;
  }
  cv_.notify_all();
}

size_t ReadAhead::hinted() const {
  std::lock_guard lk(m_);
  return hinted_;
}

void ReadAhead::run() {
  for (size_t k = 0; k < series_.size(); ++k) {
    {
      // wait until series k is within the window beyond the started ones:
      // at most ahead_series_ series and ahead_bytes_ of input (the first
      // series beyond is always allowed)
      std::unique_lock lk(m_);
      cv_.wait(lk, [&] {
        if (stop_) return true;
        if (k < started_) return true;
        if (k - started_ >= ahead_series_) return false;
        uint64_t bytes = 0;
        for (size_t j = started_; j < k; ++j) bytes += series_[j].bytes;
        return k == started_ || bytes + series_[k].bytes <= ahead_bytes_;
      });
      if (stop_) return;
      if (k < started_) continue;  // already being converted: too late to help
    }
    for (const std::string* f : series_[k].files) {
      {
        std::lock_guard lk(m_);
        if (stop_) return;
      }
      const int fd = ::open(f->c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
      ::close(fd);
    }
    std::lock_guard lk(m_);
    hinted_ = k + 1;
  }
}

}  // namespace rapidnii::pipeline
