// AVX2 + FMA kernels for the scalar quantizer's asymmetric distances
// (float32 weights against int8 codes). Compiled for that target via the
// pragma below; only called after the dispatcher verified CPU support.
#include <cstddef>
#include <cstdint>

#include "quantizer_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>
#if defined(__clang__)  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace vexfs::engine::internal {
namespace {

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 codes -> 8 floats.
inline __m256 LoadCodes8(const int8_t* c) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}
// rem in [1, 7]; missing codes are 0.
inline __m256 LoadCodesTail(const int8_t* c, size_t rem) {
  alignas(16) int8_t buf[16] = {};
  for (size_t i = 0; i < rem; ++i) buf[i] = c[i];
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<__m128i*>(buf))));
}
inline __m256i TailMask(size_t rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float L2Sq8(const float* w, const float* s, const int8_t* c, size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), LoadCodes8(c + i), _mm256_loadu_ps(w + i));
    __m256 t1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8), LoadCodes8(c + i + 8),
                                 _mm256_loadu_ps(w + i + 8));
    __m256 t2 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 16), LoadCodes8(c + i + 16),
                                 _mm256_loadu_ps(w + i + 16));
    __m256 t3 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 24), LoadCodes8(c + i + 24),
                                 _mm256_loadu_ps(w + i + 24));
    a0 = _mm256_fmadd_ps(t0, t0, a0);
    a1 = _mm256_fmadd_ps(t1, t1, a1);
    a2 = _mm256_fmadd_ps(t2, t2, a2);
    a3 = _mm256_fmadd_ps(t3, t3, a3);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), LoadCodes8(c + i), _mm256_loadu_ps(w + i));
    a0 = _mm256_fmadd_ps(t, t, a0);
  }
  if (i < d) {
    const __m256i m = TailMask(d - i);
    __m256 t = _mm256_fnmadd_ps(_mm256_maskload_ps(s + i, m), LoadCodesTail(c + i, d - i),
                                _mm256_maskload_ps(w + i, m));
    a1 = _mm256_fmadd_ps(t, t, a1);
  }
  return HSum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

float DotSq8(const float* w, const int8_t* c, size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), LoadCodes8(c + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), LoadCodes8(c + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), LoadCodes8(c + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), LoadCodes8(c + i + 24), a3);
  }
  for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), LoadCodes8(c + i), a0);
  if (i < d) {
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(w + i, TailMask(d - i)), LoadCodesTail(c + i, d - i),
                         a1);
  }
  return HSum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

}  // namespace

const Sq8Kernels kAvx2Sq8Kernels = {SimdLevel::kAvx2, L2Sq8, DotSq8};

}  // namespace vexfs::engine::internal

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86: never selected, alias the scalar kernels.
namespace vexfs::engine::internal {
const Sq8Kernels kAvx2Sq8Kernels = kScalarSq8Kernels;
}
#endif
