// Stored-bits normalisation of raw DICOM pixel values (PS3.5 §8.1.1).
//
// A stored pixel occupies `bits_stored` bits of its `bits_allocated`-wide
// container, with its most significant bit at `high_bit`. Bits outside that
// field may hold junk (overlays, vendor flags) and must be discarded. The value
// is two's complement when PixelRepresentation is 1 (`is_signed`).
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/hd.h"

namespace rapidnii::kernels {

// Value functor: raw container value -> pixel value.
//   v = (raw >> (high_bit + 1 - bits_stored)) & ((1 << bits_stored) - 1),
//   sign-extended from bit bits_stored-1 when is_signed.
// The result is returned in T; when is_signed but T is unsigned the result is
// the two's-complement bit pattern of the value in T's width (e.g. -2048 in a
// uint16_t reads 0xF800), so choose a signed T for signed data.
// With bits_stored == 8*sizeof(T) (and so high_bit == 8*sizeof(T)-1) the
// functor is the identity.
// Preconditions (checked by valid() on the host, not in the call operator):
//   1 <= bits_stored <= 8*sizeof(T), bits_stored-1 <= high_bit < 8*sizeof(T).
template <class T>
struct StoredBits {
  static_assert(std::is_integral_v<T> && sizeof(T) <= 4,
                "StoredBits supports 8-, 16- and 32-bit integer containers");
  using U = std::make_unsigned_t<T>;
  static constexpr int kWidth = 8 * static_cast<int>(sizeof(T));

  // All arithmetic is done in 32 unsigned bits, which holds every container.
  std::uint32_t shift = 0;
  std::uint32_t mask = 0xFFFFFFFFu;
  std::uint32_t sign = 0;  // the sign bit of the field, 0 when unsigned

  StoredBits() = default;
  RAPIDNII_HD StoredBits(int bits_stored, int high_bit, bool is_signed)
      : shift(static_cast<std::uint32_t>(high_bit + 1 - bits_stored)),
        mask(0xFFFFFFFFu >> (32 - bits_stored)),
        sign(is_signed ? (std::uint32_t{1} << (bits_stored - 1)) : 0u) {}

  static constexpr bool valid(int bits_stored, int high_bit) {
    return bits_stored >= 1 && bits_stored <= kWidth && high_bit >= bits_stored - 1 &&
           high_bit < kWidth;
  }

  RAPIDNII_HD T operator()(T raw) const {
    std::uint32_t v = (static_cast<std::uint32_t>(static_cast<U>(raw)) >> shift) & mask;
    v = (v ^ sign) - sign;  // sign-extend: no-op when sign == 0
    // Narrowing to U keeps the low bits; U -> T is modular (C++20).
    return static_cast<T>(static_cast<U>(v));
  }
};

}  // namespace rapidnii::kernels
