// RAPIDNII_HD marks functions that run on both the host and a CUDA device.
// Under nvcc it expands to __host__ __device__; for a plain C++ compiler it is
// empty, so kernel functors compile with g++/clang without the CUDA toolkit.
#pragma once

#if defined(__CUDACC__)
#define RAPIDNII_HD __host__ __device__
#else
#define RAPIDNII_HD
#endif
