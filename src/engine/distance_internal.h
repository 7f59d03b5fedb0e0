// Internal to the engine: the per-level kernel tables and scalar helpers
// shared by distance*.cc. Not part of the public API.
//
// Each distance_<isa>.cc compiles its kernels under `#pragma GCC target`,
// after all standard headers are included, so no inline library function is
// ever emitted with wider instructions than the baseline.
#ifndef VEXFS_SRC_ENGINE_DISTANCE_INTERNAL_H_
#define VEXFS_SRC_ENGINE_DISTANCE_INTERNAL_H_

#include <bit>
#include <cstdint>

#include "vexfs/engine/distance.h"

namespace vexfs::engine::internal {

// Constant-initialized tables; safe to use during static initialization.
extern const DistanceKernels kScalarKernels;
extern const DistanceKernels kAvx2Kernels;    // AVX2 + FMA + F16C
extern const DistanceKernels kAvx512Kernels;  // AVX-512 F + BW (+ AVX2/FMA/F16C)

// The scalar level's all_finite_f32; the SIMD levels finish their tails
// with it.
bool AllFiniteScalar(const float* v, size_t d);

// A four-vector kernel made of four calls to a one-vector kernel: the
// reference for the x4 entries, and their implementation where no wider
// variant exists.
// T is the stored element: float (float32) or uint16_t (float16).
template <class T, float (*F)(const float*, const T*, size_t)>
void Repeat4(const float* q, const T* const* x, size_t d, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = F(q, x[j], d);
}

// Exact binary16 -> binary32 conversion (every half is representable);
// signalling NaNs come back quiet, matching VCVTPH2PS.
inline float HalfToFloatInline(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    // inf, or nan with its payload kept and made quiet (as F16C does).
    bits = sign | 0x7F800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // 127 - 15 = 112
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half: renormalise. value = mant * 2^-24.
    uint32_t e = 113;  // exponent of 2^-14 in float bias, decremented below
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

}  // namespace vexfs::engine::internal

#endif  // VEXFS_SRC_ENGINE_DISTANCE_INTERNAL_H_
