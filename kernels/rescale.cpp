#include "kernels/rescale.h"
#include "kernels/voxel_types.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/exec_cpu.h"

#if RAPIDNII_HAVE_CUDA
#include "kernels/cuda_backend.h"
#endif

namespace rapidnii::kernels {

#if !RAPIDNII_HAVE_CUDA
namespace {

// Only reachable when resolve_device() returned Cuda, which it never does in a
// build without CUDA; kept as a guard.
[[noreturn]] void no_cuda_build() {
  throw std::runtime_error("rapidnii was built without CUDA support");
}

}  // namespace
#endif

template <class T>
void normalize_stored_bits(Device d, std::span<T> data, int bits_stored, int high_bit,
                           bool is_signed) {
  if (!StoredBits<T>::valid(bits_stored, high_bit)) {
    throw std::invalid_argument(
        "normalize_stored_bits: invalid BitsStored " + std::to_string(bits_stored) +
        " / HighBit " + std::to_string(high_bit) + " for a " +
        std::to_string(StoredBits<T>::kWidth) + "-bit container");
  }
  d = resolve_device(d);  // throws for an unavailable Cuda even with no work
  // A full-width field (high_bit is then width-1) is the identity.
  if (data.empty() || bits_stored == StoredBits<T>::kWidth) return;
  const StoredBits<T> op(bits_stored, high_bit, is_signed);
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    cuda_backend::normalize_stored_bits<T>(data.data(), data.size(), op);
    return;
#else
    no_cuda_build();
#endif
  }
  transform(data.size(), data.data(), data.data(), op);
}

template <class T>
void rescale_to_float(Device d, std::span<const T> in, std::span<float> out,
                      std::span<const double> slope, std::span<const double> inter,
                      std::size_t per_slice) {
  if (out.size() != in.size()) {
    throw std::invalid_argument("rescale_to_float: output has " + std::to_string(out.size()) +
                                " elements, input " + std::to_string(in.size()));
  }
  d = resolve_device(d);
  const std::size_t n = in.size();
  if (n == 0) return;
  if (per_slice == 0) throw std::invalid_argument("rescale_to_float: per_slice is 0");
  const std::size_t n_slices = (n - 1) / per_slice + 1;
  if (slope.size() < n_slices || inter.size() < n_slices) {
    throw std::invalid_argument("rescale_to_float: " + std::to_string(n_slices) +
                                " slices need as many slopes and intercepts, got " +
                                std::to_string(slope.size()) + " and " +
                                std::to_string(inter.size()));
  }
  if (d == Device::Cuda) {
#if RAPIDNII_HAVE_CUDA
    cuda_backend::rescale_to_float<T>(in.data(), out.data(), n, slope.data(), inter.data(),
                                      per_slice);
    return;
#else
    no_cuda_build();
#endif
  }
  transform(n, out.data(), RescaleToFloat<T>{in.data(), slope.data(), inter.data(), per_slice, 0});
}

#define RAPIDNII_INSTANTIATE(T)                                                              \
  template void normalize_stored_bits<T>(Device, std::span<T>, int, int, bool);              \
  template void rescale_to_float<T>(Device, std::span<const T>, std::span<float>,            \
                                    std::span<const double>, std::span<const double>,        \
                                    std::size_t);
RAPIDNII_FOR_INTEGER_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#undef RAPIDNII_INSTANTIATE

}  // namespace rapidnii::kernels
