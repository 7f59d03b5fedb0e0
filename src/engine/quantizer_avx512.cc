// AVX-512 F + BW kernels for the scalar quantizer's asymmetric distances
// (float32 weights against int8 codes). Compiled for that target via the
// pragma below; only called after the dispatcher verified CPU support.
#include <cstddef>
#include <cstdint>

#include "quantizer_internal.h"

#if defined(__x86_64__)

#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma")
#endif
// GCC 12's _mm512_undefined_*() self-initialise and trip -Wuninitialized when
// inlined (a false positive of the intrinsic headers, not of this code).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#if defined(__clang__)  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma"))), apply_to = function)
#endif

namespace vexfs::engine::internal {
namespace {

inline __mmask16 Mask16(size_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }

// 16 codes -> 16 floats.
inline __m512 LoadCodes16(const int8_t* c) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
}
// rem in [1, 15]; masked-out codes are 0 (and never read).
inline __m512 LoadCodesTail(const int8_t* c, size_t rem) {
  const __mmask64 m = static_cast<__mmask64>((1ull << rem) - 1ull);
  const __m512i raw = _mm512_maskz_loadu_epi8(m, c);
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_castsi512_si128(raw)));
}

float L2Sq8(const float* w, const float* s, const int8_t* c, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 t0 =
        _mm512_fnmadd_ps(_mm512_loadu_ps(s + i), LoadCodes16(c + i), _mm512_loadu_ps(w + i));
    __m512 t1 = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i + 16), LoadCodes16(c + i + 16),
                                 _mm512_loadu_ps(w + i + 16));
    __m512 t2 = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i + 32), LoadCodes16(c + i + 32),
                                 _mm512_loadu_ps(w + i + 32));
    __m512 t3 = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i + 48), LoadCodes16(c + i + 48),
                                 _mm512_loadu_ps(w + i + 48));
    a0 = _mm512_fmadd_ps(t0, t0, a0);
    a1 = _mm512_fmadd_ps(t1, t1, a1);
    a2 = _mm512_fmadd_ps(t2, t2, a2);
    a3 = _mm512_fmadd_ps(t3, t3, a3);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i), LoadCodes16(c + i), _mm512_loadu_ps(w + i));
    a0 = _mm512_fmadd_ps(t, t, a0);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    __m512 t = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, s + i), LoadCodesTail(c + i, d - i),
                                _mm512_maskz_loadu_ps(m, w + i));
    a1 = _mm512_fmadd_ps(t, t, a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float DotSq8(const float* w, const int8_t* c, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), LoadCodes16(c + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), LoadCodes16(c + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), LoadCodes16(c + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), LoadCodes16(c + i + 48), a3);
  }
  for (; i + 16 <= d; i += 16) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), LoadCodes16(c + i), a0);
  }
  if (i < d) {
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(Mask16(d - i), w + i), LoadCodesTail(c + i, d - i),
                         a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

}  // namespace

const Sq8Kernels kAvx512Sq8Kernels = {SimdLevel::kAvx512, L2Sq8, DotSq8};

}  // namespace vexfs::engine::internal

#pragma GCC diagnostic pop
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: never selected, alias the scalar kernels.
namespace vexfs::engine::internal {
const Sq8Kernels kAvx512Sq8Kernels = kScalarSq8Kernels;
}
#endif
