// Internal: host-callable entry points implemented in exec_cuda.cu (nvcc).
// This header compiles with a plain C++ compiler; callers reference these
// functions only #if RAPIDNII_HAVE_CUDA. The templates are explicitly
// instantiated in exec_cuda.cu for uint8_t, int8_t, uint16_t, int16_t,
// uint32_t and int32_t.
#pragma once
#include <cstddef>

#include "kernels/bits.h"

namespace rapidnii::kernels::cuda_backend {

// Number of CUDA devices; 0 on any error (no driver, no device).
int device_count() noexcept;

// Host buffers in, host buffers out: each call copies to the current device,
// runs the functor, copies back and synchronises. Throws std::runtime_error on
// any CUDA error. Arguments are assumed already validated by the caller.
template <class T>
void normalize_stored_bits(T* data, std::size_t n, StoredBits<T> op);

// slope/inter hold n_slices = ceil(n / per_slice) entries each.
template <class T>
void rescale_to_float(const T* in, float* out, std::size_t n, const double* slope,
                      const double* inter, std::size_t per_slice);

}  // namespace rapidnii::kernels::cuda_backend
