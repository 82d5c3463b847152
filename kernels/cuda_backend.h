// Internal: host-callable entry points implemented in exec_cuda.cu (nvcc).
// This header compiles with a plain C++ compiler; callers reference these
// functions only #if RAPIDNII_HAVE_CUDA. The templates are explicitly
// instantiated in exec_cuda.cu for uint8_t, int8_t, uint16_t, int16_t,
// uint32_t and int32_t.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/bits.h"
#include "kernels/deface_kernels.h"
#include "kernels/reduce.h"
#include "kernels/reorient.h"

namespace rapidnii::kernels::cuda_backend {

// Number of CUDA devices; 0 on any error (no driver, no device).
int device_count() noexcept;

// Host buffers in, host buffers out: each call copies to the current device
// (through pinned staging buffers, in chunks, overlapped with the work; see
// exec_cuda.cuh), runs the functor, copies back and synchronises. Throws
// std::runtime_error on any CUDA error. Arguments are assumed already
// validated by the caller. Safe to call from several host threads at once.
template <class T>
void normalize_stored_bits(T* data, std::size_t n, StoredBits<T> op);

// slope/inter hold n_slices = ceil(n / per_slice) entries each.
template <class T>
void rescale_to_float(const T* in, float* out, std::size_t n, const double* slope,
                      const double* inter, std::size_t per_slice);

// Reorientation (reorient.h). q is the output axis fed by the input's fastest
// axis; scatter = the inverse map (reorient_back). Also instantiated for float.
template <class T>
void reorient(const T* in, T* out, const ReorientMap& m, std::int64_t nt, bool scatter, int q);

// Defacing (deface.h): the two full-resolution passes. f holds host pointers
// (f.vol: n_vox voxels; f.mean/maxv/inside: n_cells cells; f.cells, f.smooth:
// n_cells and n_smooth entries, smooth may be empty); the functor is rebuilt
// on device copies. deface_apply returns the number of voxels changed.
// Instantiated for uint8_t, int8_t, uint16_t, int16_t, int32_t, float.
template <class T>
void deface_downsample(const deface_detail::Downsample<T>& f, std::size_t n_vox,
                       std::size_t n_cells);
template <class T>
std::uint64_t deface_apply(const deface_detail::Apply<T>& f, std::size_t n_vox, std::size_t n_cells,
                           std::size_t n_smooth);

// Reductions (reduce.h) over n > 0 host values; instantiated for the six
// integer types and float. `none` is the identity of value_range; bin.v is
// the host buffer of n values and counts holds bin.bins zeroed counters.
template <class T>
MinMax<T> value_range(const T* v, std::size_t n, MinMax<T> none);
template <class T>
SumOf<T> value_sum(const T* v, std::size_t n);
template <class T>
void value_histogram(const ValueBin<T>& bin, std::size_t n, std::uint64_t* counts);

}  // namespace rapidnii::kernels::cuda_backend
