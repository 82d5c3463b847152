#include "pipeline/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace rapidnii::pipeline {

namespace {
// Large buffers are aligned to and sized in 2 MiB (a transparent huge page
// where the kernel offers them: one page fault instead of 512).
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kSmallAlign = 64;

size_t rounded(size_t bytes) {
  if (bytes >= kHuge) return (bytes + kHuge - 1) / kHuge * kHuge;
  return std::max<size_t>(kSmallAlign, (bytes + kSmallAlign - 1) / kSmallAlign * kSmallAlign);
}
}  // namespace

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = std::exchange(o.pool_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    capacity_ = std::exchange(o.capacity_, 0);
  }
  return *this;
}

void PooledBuffer::reset() {
  if (data_ != nullptr && pool_ != nullptr) pool_->release(data_, capacity_);
  pool_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
}

std::byte* BufferPool::allocate(size_t capacity) {
  const size_t align = capacity >= kHuge ? kHuge : kSmallAlign;
  void* p = std::aligned_alloc(align, capacity);
  if (p == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (capacity >= kHuge) (void)::madvise(p, capacity, MADV_HUGEPAGE);
#endif
  return static_cast<std::byte*>(p);
}

void BufferPool::deallocate(std::byte* p, size_t) { std::free(p); }

BufferPool::~BufferPool() {
  for (auto& [cap, p] : free_) deallocate(p, cap);
}

PooledBuffer BufferPool::acquire(size_t bytes) {
  PooledBuffer b;
  if (bytes == 0) return b;
  const size_t want = rounded(bytes);
  std::vector<std::pair<size_t, std::byte*>> to_free;
  {
    std::lock_guard lk(m_);
    // the smallest cached buffer that fits (its capacity is what counts
    // against the budget, so a larger one wastes nothing the budget does not
    // see, and memory already touched costs nothing to touch again)
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      const size_t cap = free_[i].first;
      if (cap >= want && (best == free_.size() || cap < free_[best].first)) best = i;
    }
    if (best != free_.size()) {
      b.pool_ = this;
      b.capacity_ = free_[best].first;
      b.data_ = free_[best].second;
      free_.erase(free_.begin() + std::ptrdiff_t(best));
      stats_.cached -= b.capacity_;
      stats_.leased += b.capacity_;
      stats_.reuses++;
      return b;
    }
    // make room: drop cached buffers (largest first) until the new one fits
    std::sort(free_.begin(), free_.end());
    while (!free_.empty() && stats_.leased + stats_.cached + want > budget_) {
      to_free.push_back(free_.back());
      stats_.cached -= free_.back().first;
      free_.pop_back();
    }
    stats_.leased += want;
    stats_.allocations++;
  }
  for (auto& [cap, p] : to_free) deallocate(p, cap);
  try {
    b.data_ = allocate(want);
  } catch (...) {
    std::lock_guard lk(m_);
    stats_.leased -= want;
    throw;
  }
  b.pool_ = this;
  b.capacity_ = want;
  return b;
}

void BufferPool::release(std::byte* p, size_t capacity) {
  {
    std::lock_guard lk(m_);
    stats_.leased -= capacity;
    if (stats_.leased + stats_.cached + capacity <= budget_) {
      free_.emplace_back(capacity, p);
      stats_.cached += capacity;
      return;
    }
  }
  deallocate(p, capacity);
}

BufferPool::Stats BufferPool::stats() const {
  std::lock_guard lk(m_);
  return stats_;
}

}  // namespace rapidnii::pipeline
