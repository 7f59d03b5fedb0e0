// AVX-512 F + BW kernels (F16C/FMA are implied on every AVX-512 CPU and are
// checked by the dispatcher anyway). Compiled for that target via the pragma
// below; only called after the dispatcher verified CPU and OS support.
#include <cstddef>
#include <cstdint>

#include "distance_internal.h"

#if defined(__x86_64__)

#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#endif
// GCC 12's _mm512_undefined_*() self-initialise and trip -Wuninitialized when
// inlined (a false positive of the intrinsic headers, not of this code).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#if defined(__clang__)  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#endif

namespace vexfs::engine::internal {
namespace {

inline __mmask16 Mask16(size_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }
inline __mmask32 Mask32(size_t rem) { return static_cast<__mmask32>((1ull << rem) - 1ull); }

inline uint32_t HSumI32(__m512i v) {
  __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(t));
}

inline __m512 LoadHalf16(const uint16_t* x) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}
// rem in [1, 15]; masked-out lanes are +0.
inline __m512 LoadHalfTail(const uint16_t* x, size_t rem) {
  __m512i raw = _mm512_maskz_loadu_epi16(Mask32(rem), x);
  return _mm512_cvtph_ps(_mm512_castsi512_si256(raw));
}

float L2F32(const float* a, const float* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
    s2 = _mm512_fmadd_ps(t2, t2, s2);
    s3 = _mm512_fmadd_ps(t3, t3, s3);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float DotF32(const float* a, const float* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= d; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// Four vectors at once with the very accumulator layout and summation order
// of L2F32/DotF32 above, so each result is bit-identical to theirs.
template <bool kL2>
inline __m512 Term(__m512 q, __m512 x, __m512 s) {
  if constexpr (kL2) {
    const __m512 t = _mm512_sub_ps(q, x);
    return _mm512_fmadd_ps(t, t, s);
  } else {
    return _mm512_fmadd_ps(q, x, s);
  }
}

template <bool kL2>
void F32x4(const float* q, const float* const* x, size_t d, float* out) {
  const float* xs[4] = {x[0], x[1], x[2], x[3]};
  __m512 s[4][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) s[j][u] = _mm512_setzero_ps();
  }
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    const __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
    const __m512 q2 = _mm512_loadu_ps(q + i + 32), q3 = _mm512_loadu_ps(q + i + 48);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      s[j][0] = Term<kL2>(q0, _mm512_loadu_ps(xs[j] + i), s[j][0]);
      s[j][1] = Term<kL2>(q1, _mm512_loadu_ps(xs[j] + i + 16), s[j][1]);
      s[j][2] = Term<kL2>(q2, _mm512_loadu_ps(xs[j] + i + 32), s[j][2]);
      s[j][3] = Term<kL2>(q3, _mm512_loadu_ps(xs[j] + i + 48), s[j][3]);
    }
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 qv = _mm512_loadu_ps(q + i);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) s[j][0] = Term<kL2>(qv, _mm512_loadu_ps(xs[j] + i), s[j][0]);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      s[j][1] = Term<kL2>(qv, _mm512_maskz_loadu_ps(m, xs[j] + i), s[j][1]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(s[j][0], s[j][1]), _mm512_add_ps(s[j][2], s[j][3])));
  }
}

void L2F32x4(const float* q, const float* const* x, size_t d, float* out) {
  F32x4<true>(q, x, d, out);
}
void DotF32x4(const float* q, const float* const* x, size_t d, float* out) {
  F32x4<false>(q, x, d, out);
}

float L2F16(const float* q, const uint16_t* x, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), LoadHalf16(x + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), LoadHalf16(x + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_sub_ps(_mm512_loadu_ps(q + i), LoadHalf16(x + i));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    __m512 t =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(Mask16(d - i), q + i), LoadHalfTail(x + i, d - i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float DotF16(const float* q, const uint16_t* x, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadHalf16(x + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LoadHalf16(x + i + 16), s1);
  }
  for (; i + 16 <= d; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LoadHalf16(x + i), s0);
  }
  if (i < d) {
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(Mask16(d - i), q + i), LoadHalfTail(x + i, d - i),
                         s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

// Four float16 vectors at once, with the accumulators and summation order
// of L2F16/DotF16 above (bit-identical results).
template <bool kL2>
void F16x4(const float* q, const uint16_t* const* x, size_t d, float* out) {
  const uint16_t* xs[4] = {x[0], x[1], x[2], x[3]};
  __m512 s[4][2];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) s[j][0] = s[j][1] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      s[j][0] = Term<kL2>(q0, LoadHalf16(xs[j] + i), s[j][0]);
      s[j][1] = Term<kL2>(q1, LoadHalf16(xs[j] + i + 16), s[j][1]);
    }
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 qv = _mm512_loadu_ps(q + i);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) s[j][0] = Term<kL2>(qv, LoadHalf16(xs[j] + i), s[j][0]);
  }
  if (i < d) {
    const __m512 qv = _mm512_maskz_loadu_ps(Mask16(d - i), q + i);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) s[j][1] = Term<kL2>(qv, LoadHalfTail(xs[j] + i, d - i), s[j][1]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) out[j] = _mm512_reduce_add_ps(_mm512_add_ps(s[j][0], s[j][1]));
}

void L2F16x4(const float* q, const uint16_t* const* x, size_t d, float* out) {
  F16x4<true>(q, x, d, out);
}
void DotF16x4(const float* q, const uint16_t* const* x, size_t d, float* out) {
  F16x4<false>(q, x, d, out);
}

float L2F16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m512 t0 = _mm512_sub_ps(LoadHalf16(a + i), LoadHalf16(b + i));
    __m512 t1 = _mm512_sub_ps(LoadHalf16(a + i + 16), LoadHalf16(b + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_sub_ps(LoadHalf16(a + i), LoadHalf16(b + i));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    __m512 t = _mm512_sub_ps(LoadHalfTail(a + i, d - i), LoadHalfTail(b + i, d - i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float DotF16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(LoadHalf16(a + i), LoadHalf16(b + i), s0);
    s1 = _mm512_fmadd_ps(LoadHalf16(a + i + 16), LoadHalf16(b + i + 16), s1);
  }
  for (; i + 16 <= d; i += 16) {
    s0 = _mm512_fmadd_ps(LoadHalf16(a + i), LoadHalf16(b + i), s0);
  }
  if (i < d) {
    s1 = _mm512_fmadd_ps(LoadHalfTail(a + i, d - i), LoadHalfTail(b + i, d - i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

inline __m512i LoadI8x32(const int8_t* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// rem in [1, 31]; masked-out bytes are 0.
inline __m512i LoadI8Tail(const int8_t* p, size_t rem) {
  const __mmask64 m = static_cast<__mmask64>((1ull << rem) - 1ull);
  return _mm512_cvtepi8_epi16(_mm512_castsi512_si256(_mm512_maskz_loadu_epi8(m, p)));
}

int32_t L2I8(const int8_t* a, const int8_t* b, size_t d) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512i t0 = _mm512_sub_epi16(LoadI8x32(a + i), LoadI8x32(b + i));
    __m512i t1 = _mm512_sub_epi16(LoadI8x32(a + i + 32), LoadI8x32(b + i + 32));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(t0, t0));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(t1, t1));
  }
  for (; i + 32 <= d; i += 32) {
    __m512i t = _mm512_sub_epi16(LoadI8x32(a + i), LoadI8x32(b + i));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(t, t));
  }
  if (i < d) {
    __m512i t = _mm512_sub_epi16(LoadI8Tail(a + i, d - i), LoadI8Tail(b + i, d - i));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(t, t));
  }
  return static_cast<int32_t>(HSumI32(_mm512_add_epi32(s0, s1)));
}

int32_t DotI8(const int8_t* a, const int8_t* b, size_t d) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(LoadI8x32(a + i), LoadI8x32(b + i)));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(LoadI8x32(a + i + 32), LoadI8x32(b + i + 32)));
  }
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(LoadI8x32(a + i), LoadI8x32(b + i)));
  }
  if (i < d) {
    s1 =
        _mm512_add_epi32(s1, _mm512_madd_epi16(LoadI8Tail(a + i, d - i), LoadI8Tail(b + i, d - i)));
  }
  return static_cast<int32_t>(HSumI32(_mm512_add_epi32(s0, s1)));
}

// Thirty-two floats an iteration into four double accumulators.
double SumSqF32(const float* v, size_t d) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512d x0 = _mm512_cvtps_pd(_mm256_loadu_ps(v + i));
    const __m512d x1 = _mm512_cvtps_pd(_mm256_loadu_ps(v + i + 8));
    const __m512d x2 = _mm512_cvtps_pd(_mm256_loadu_ps(v + i + 16));
    const __m512d x3 = _mm512_cvtps_pd(_mm256_loadu_ps(v + i + 24));
    a0 = _mm512_fmadd_pd(x0, x0, a0);
    a1 = _mm512_fmadd_pd(x1, x1, a1);
    a2 = _mm512_fmadd_pd(x2, x2, a2);
    a3 = _mm512_fmadd_pd(x3, x3, a3);
  }
  for (; i + 8 <= d; i += 8) {
    const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(v + i));
    a0 = _mm512_fmadd_pd(x, x, a0);
  }
  if (i < d) {  // masked-out lanes are +0
    const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(Mask16(d - i), v + i)));
    a1 = _mm512_fmadd_pd(x, x, a1);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

void ScaleF32(float* v, size_t d, double s) {
  const __m512d f = _mm512_set1_pd(s);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    _mm256_storeu_ps(v + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(v + i)), f)));
  }
  if (i < d) {
    // Without AVX-512 VL: 512-bit masked load and store, lanes [d - i, 16) untouched.
    const __mmask16 m = Mask16(d - i);
    const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(m, v + i)));
    _mm512_mask_storeu_ps(v + i, m, _mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_mul_pd(x, f))));
  }
}

bool AllFiniteF32(const float* v, size_t d) {
  const __m512i exp = _mm512_set1_epi32(0x7f800000);
  __mmask16 bad = 0;
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m512i x = _mm512_loadu_si512(v + i);
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(x, exp), exp);
  }
  if (i < d) {  // masked-out lanes are 0, which is finite
    const __m512i x = _mm512_maskz_loadu_epi32(Mask16(d - i), v + i);
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(x, exp), exp);
  }
  return bad == 0;
}

}  // namespace

const DistanceKernels kAvx512Kernels = {.level = SimdLevel::kAvx512,
                                        .l2_f32 = L2F32,
                                        .dot_f32 = DotF32,
                                        .l2_f16 = L2F16,
                                        .dot_f16 = DotF16,
                                        .l2_f16_f16 = L2F16F16,
                                        .dot_f16_f16 = DotF16F16,
                                        .l2_i8 = L2I8,
                                        .dot_i8 = DotI8,
                                        .l2_f32_x4 = L2F32x4,
                                        .dot_f32_x4 = DotF32x4,
                                        .l2_f16_x4 = L2F16x4,
                                        .dot_f16_x4 = DotF16x4,
                                        .sum_sq_f32 = SumSqF32,
                                        .scale_f32 = ScaleF32,
                                        .all_finite_f32 = AllFiniteF32};

}  // namespace vexfs::engine::internal

#pragma GCC diagnostic pop
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: never selected.
namespace vexfs::engine::internal {
const DistanceKernels kAvx512Kernels = kScalarKernels;
}
#endif
