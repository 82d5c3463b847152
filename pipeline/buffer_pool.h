// Reusable memory for the volumes of the conversion pipeline.
//
// Every series needs buffers the size of its volume (the stored voxels, a
// float or reoriented copy). Allocating them afresh costs more than it
// seems: the kernel maps and zeroes every page on first touch and unmaps it
// on free (with a TLB shootdown on every core of the process); measured on
// the 2-core benchmark machine, that was about 10% of a fast conversion's CPU
// time, and on a virtual machine whose host reclaims freed memory, first
// touches cost far more (1.4 s per GB of volumes on the benchmark VM). The
// pool hands out uninitialised buffers and keeps the released ones for the
// next series, within a byte budget (the run's --memory-limit), so the peak
// memory stays what the scheduler planned for.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace rapidnii::pipeline {

class BufferPool;

// A buffer leased from a pool (or owned, for an empty pool pointer): given
// back when destroyed. Uninitialised.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(PooledBuffer&& o) noexcept { *this = std::move(o); }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  ~PooledBuffer() { reset(); }
  std::byte* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  void reset();

 private:
  friend class BufferPool;
  BufferPool* pool_ = nullptr;
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
};

class BufferPool {
 public:
  // Leased + cached bytes are kept within `budget` (a request larger than
  // the budget is still served, from a fresh allocation).
  explicit BufferPool(uint64_t budget) : budget_(budget) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // At least `bytes` bytes: the smallest cached buffer that holds them, else
  // a new one (after freeing cached buffers, largest first, until the budget
  // allows it).
  PooledBuffer acquire(size_t bytes);

  struct Stats {
    uint64_t leased = 0, cached = 0, allocations = 0, reuses = 0;
  };
  Stats stats() const;

 private:
  friend class PooledBuffer;
  void release(std::byte* p, size_t capacity);
  static std::byte* allocate(size_t capacity);
  static void deallocate(std::byte* p, size_t capacity);

  mutable std::mutex m_;
  uint64_t budget_;
  Stats stats_;
  std::vector<std::pair<size_t, std::byte*>> free_;  // capacity, memory
};

// A typed, fixed-size array in a pooled buffer (the pipeline's std::vector
// replacement for volumes: no zero-filling, memory reused between series).
template <class T>
class PooledArray {
 public:
  PooledArray() = default;
  PooledArray(BufferPool& pool, size_t n) : buf_(pool.acquire(n * sizeof(T))), n_(n) {}
  T* data() const { return reinterpret_cast<T*>(buf_.data()); }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T* begin() const { return data(); }
  T* end() const { return data() + n_; }
  T& operator[](size_t i) const { return data()[i]; }
  operator std::span<T>() const { return {data(), n_}; }
  operator std::span<const T>() const { return {data(), n_}; }
  void swap(PooledArray& o) noexcept {
    std::swap(buf_, o.buf_);
    std::swap(n_, o.n_);
  }
  void reset() {
    buf_.reset();
    n_ = 0;
  }

 private:
  PooledBuffer buf_;
  size_t n_ = 0;
};

}  // namespace rapidnii::pipeline
