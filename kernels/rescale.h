// Modality rescale (slope/intercept) to float, and the host API that runs the
// voxel kernels on the CPU or a CUDA device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/bits.h"
#include "kernels/device.h"
#include "kernels/hd.h"

namespace rapidnii::kernels {

// Value functor for transform(n, out, f): f(i) = float(double(in[i]) *
// slope[s] + inter[s]) with s = (first + i) / per_slice (one slope/intercept
// pair per slice of per_slice voxels). `first` is the index of in[0] in the
// whole volume: 0 on the CPU, the chunk's offset when the CUDA executor streams
// the volume through in chunks. On the device the multiply and add are rounded
// separately (never fused into an FMA) so that the result matches the host
// computation bit for bit.
template <class T>
struct RescaleToFloat {
  const T* in;
  const double* slope;
  const double* inter;
  std::size_t per_slice;
  std::size_t first = 0;

  RAPIDNII_HD float operator()(std::size_t i) const {
    const std::size_t s = (first + i) / per_slice;
    const double v = static_cast<double>(in[i]);
#if defined(__CUDA_ARCH__)
    return static_cast<float>(__dadd_rn(__dmul_rn(v, slope[s]), inter[s]));
#else
    return static_cast<float>(v * slope[s] + inter[s]);
#endif
  }
};

// Host API. Instantiated for uint8_t, int8_t, uint16_t, int16_t, uint32_t,
// int32_t. Device::Auto is resolved with resolve_device(); Device::Cuda throws
// std::runtime_error when CUDA is unavailable, and CUDA failures are reported
// as std::runtime_error. Invalid arguments throw std::invalid_argument.
// (Template arguments are not deduced from containers: pass spans or write
// e.g. rescale_to_float<int16_t>(...).)

// In place: data[i] = StoredBits<T>(bits_stored, high_bit, is_signed)(data[i]).
// Requires 1 <= bits_stored <= 8*sizeof(T) and
// bits_stored-1 <= high_bit < 8*sizeof(T). Full-width fields are a no-op.
template <class T>
void normalize_stored_bits(Device d, std::span<T> data, int bits_stored, int high_bit,
                           bool is_signed);

// out[i] = float(double(in[i]) * slope[i / per_slice] + inter[i / per_slice]).
// Requires out.size() == in.size(), per_slice > 0 (unless in is empty), and at
// least ceil(in.size() / per_slice) entries in both slope and inter.
template <class T>
void rescale_to_float(Device d, std::span<const T> in, std::span<float> out,
                      std::span<const double> slope, std::span<const double> inter,
                      std::size_t per_slice);

}  // namespace rapidnii::kernels
