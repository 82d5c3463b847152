// The voxel types the kernels are instantiated for, as X-macros, so that
// each kernel file names the list instead of repeating it:
//   #define RAPIDNII_INSTANTIATE(T) template void f<T>(...);
//   RAPIDNII_FOR_VOXEL_TYPES(RAPIDNII_INSTANTIATE)
#pragma once
#include <cstdint>

// The stored DICOM integers (8, 16, 32 bits, signed and unsigned).
#define RAPIDNII_FOR_INTEGER_VOXEL_TYPES(X) \
  X(std::uint8_t)                           \
  X(std::int8_t)                            \
  X(std::uint16_t)                          \
  X(std::int16_t)                           \
  X(std::uint32_t)                          \
  X(std::int32_t)

// ... and float32 (rescaled or float pixel data).
#define RAPIDNII_FOR_VOXEL_TYPES(X) RAPIDNII_FOR_INTEGER_VOXEL_TYPES(X) X(float)

// Defacing: every type but uint32 (see deface.h).
#define RAPIDNII_FOR_DEFACE_VOXEL_TYPES(X) \
  X(std::uint8_t)                          \
  X(std::int8_t)                           \
  X(std::uint16_t)                         \
  X(std::int16_t)                          \
  X(std::int32_t)                          \
  X(float)
