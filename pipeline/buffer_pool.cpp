#include "pipeline/buffer_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace rapidnii::pipeline {

namespace {
// Large buffers are sized in 2 MiB steps (so that a cached buffer fits the
// next volumes of similar size) and page aligned. They do not ask for
// transparent huge pages (MADV_HUGEPAGE): on the virtual machines measured,
// freed 2 MiB blocks are handed back to the host, so a fresh huge page costs
// a host fault on first touch: 256 MB touched at 0.4 GB/s against 1.6 GB/s
// with 4 KiB pages (8 GB/s once backed), and a 705 MB benchmark conversion
// ran 6-15% faster without them (bench/RESULTS.md, run 8). Where the system
// enables huge pages for everything, the kernel still uses them.
constexpr size_t kLarge = size_t{2} << 20;
constexpr size_t kPage = 4096;
constexpr size_t kSmallAlign = 64;

size_t rounded(size_t bytes) {
  if (bytes >= kLarge) return (bytes + kLarge - 1) / kLarge * kLarge;
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
  void* p = std::aligned_alloc(capacity >= kLarge ? kPage : kSmallAlign, capacity);
  if (p == nullptr) throw std::bad_alloc();
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
