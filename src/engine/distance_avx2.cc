// AVX2 + FMA + F16C kernels. Compiled for that target via the pragma below;
// only called after Kernels()/KernelsFor() verified CPU and OS support.
#include <cstddef>
#include <cstdint>

#include "distance_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#include <immintrin.h>
#if defined(__clang__)  // clang ignores GCC target pragmas
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#endif

namespace vexfs::engine::internal {
namespace {

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline uint32_t HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(s));
}

// Lanes [0, rem) set, for rem in [1, 7].
inline __m256i TailMask(size_t rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Loads 8 halves as floats; for the tail, copies into a zeroed buffer.
inline __m256 LoadHalf8(const uint16_t* x) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
inline __m256 LoadHalfTail(const uint16_t* x, size_t rem) {
  alignas(16) uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < rem; ++i) buf[i] = x[i];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
}

float L2F32(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
    s2 = _mm256_fmadd_ps(t2, t2, s2);
    s3 = _mm256_fmadd_ps(t3, t3, s3);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __m256i m = TailMask(d - i);
    __m256 t = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return HSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float DotF32(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= d; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  if (i < d) {
    const __m256i m = TailMask(d - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return HSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float L2F16(const float* q, const uint16_t* x, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LoadHalf8(x + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), LoadHalf8(x + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_sub_ps(_mm256_loadu_ps(q + i), LoadHalf8(x + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __m256i m = TailMask(d - i);
    __m256 t = _mm256_sub_ps(_mm256_maskload_ps(q + i, m), LoadHalfTail(x + i, d - i));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return HSum(_mm256_add_ps(s0, s1));
}

float DotF16(const float* q, const uint16_t* x, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(x + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LoadHalf8(x + i + 8), s1);
  }
  for (; i + 8 <= d; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(x + i), s0);
  }
  if (i < d) {
    const __m256i m = TailMask(d - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), LoadHalfTail(x + i, d - i), s1);
  }
  return HSum(_mm256_add_ps(s0, s1));
}

float L2F16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 t0 = _mm256_sub_ps(LoadHalf8(a + i), LoadHalf8(b + i));
    __m256 t1 = _mm256_sub_ps(LoadHalf8(a + i + 8), LoadHalf8(b + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_sub_ps(LoadHalf8(a + i), LoadHalf8(b + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    __m256 t = _mm256_sub_ps(LoadHalfTail(a + i, d - i), LoadHalfTail(b + i, d - i));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return HSum(_mm256_add_ps(s0, s1));
}

float DotF16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(LoadHalf8(a + i), LoadHalf8(b + i), s0);
    s1 = _mm256_fmadd_ps(LoadHalf8(a + i + 8), LoadHalf8(b + i + 8), s1);
  }
  for (; i + 8 <= d; i += 8) {
    s0 = _mm256_fmadd_ps(LoadHalf8(a + i), LoadHalf8(b + i), s0);
  }
  if (i < d) {
    s1 = _mm256_fmadd_ps(LoadHalfTail(a + i, d - i), LoadHalfTail(b + i, d - i), s1);
  }
  return HSum(_mm256_add_ps(s0, s1));
}

inline __m256i LoadI8x16(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i LoadI8Tail(const int8_t* p, size_t rem) {
  alignas(16) int8_t buf[16] = {};
  for (size_t i = 0; i < rem; ++i) buf[i] = p[i];
  return _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
}

int32_t L2I8(const int8_t* a, const int8_t* b, size_t d) {
  // int16 differences lie in [-255, 255]; madd of two squares fits int32.
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256i t0 = _mm256_sub_epi16(LoadI8x16(a + i), LoadI8x16(b + i));
    __m256i t1 = _mm256_sub_epi16(LoadI8x16(a + i + 16), LoadI8x16(b + i + 16));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(t0, t0));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(t1, t1));
  }
  for (; i + 16 <= d; i += 16) {
    __m256i t = _mm256_sub_epi16(LoadI8x16(a + i), LoadI8x16(b + i));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(t, t));
  }
  if (i < d) {
    __m256i t = _mm256_sub_epi16(LoadI8Tail(a + i, d - i), LoadI8Tail(b + i, d - i));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(t, t));
  }
  return static_cast<int32_t>(HSumI32(_mm256_add_epi32(s0, s1)));
}

int32_t DotI8(const int8_t* a, const int8_t* b, size_t d) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(LoadI8x16(a + i), LoadI8x16(b + i)));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(LoadI8x16(a + i + 16), LoadI8x16(b + i + 16)));
  }
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(LoadI8x16(a + i), LoadI8x16(b + i)));
  }
  if (i < d) {
    s1 =
        _mm256_add_epi32(s1, _mm256_madd_epi16(LoadI8Tail(a + i, d - i), LoadI8Tail(b + i, d - i)));
  }
  return static_cast<int32_t>(HSumI32(_mm256_add_epi32(s0, s1)));
}

// Sixteen floats an iteration into four double accumulators.
double SumSqF32(const float* v, size_t d) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(v + i));
    const __m256d x1 = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 4));
    const __m256d x2 = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 8));
    const __m256d x3 = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 12));
    a0 = _mm256_fmadd_pd(x0, x0, a0);
    a1 = _mm256_fmadd_pd(x1, x1, a1);
    a2 = _mm256_fmadd_pd(x2, x2, a2);
    a3 = _mm256_fmadd_pd(x3, x3, a3);
  }
  for (; i + 4 <= d; i += 4) {
    const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(v + i));
    a0 = _mm256_fmadd_pd(x, x, a0);
  }
  const __m256d a = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  for (; i < d; ++i) s += static_cast<double>(v[i]) * static_cast<double>(v[i]);
  return s;
}

void ScaleF32(float* v, size_t d, double s) {
  const __m256d f = _mm256_set1_pd(s);
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    _mm_storeu_ps(v + i, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(v + i)), f)));
  }
  for (; i < d; ++i) v[i] = static_cast<float>(static_cast<double>(v[i]) * s);
}

bool AllFiniteF32(const float* v, size_t d) {
  const __m256i exp = _mm256_set1_epi32(0x7f800000);
  __m256i bad = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i));
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(x, exp), exp));
  }
  return _mm256_testz_si256(bad, bad) && AllFiniteScalar(v + i, d - i);
}

}  // namespace

const DistanceKernels kAvx2Kernels = {.level = SimdLevel::kAvx2,
                                      .l2_f32 = L2F32,
                                      .dot_f32 = DotF32,
                                      .l2_f16 = L2F16,
                                      .dot_f16 = DotF16,
                                      .l2_f16_f16 = L2F16F16,
                                      .dot_f16_f16 = DotF16F16,
                                      .l2_i8 = L2I8,
                                      .dot_i8 = DotI8,
                                      .l2_f32_x4 = Repeat4<float, L2F32>,
                                      .dot_f32_x4 = Repeat4<float, DotF32>,
                                      .l2_f16_x4 = Repeat4<uint16_t, L2F16>,
                                      .dot_f16_x4 = Repeat4<uint16_t, DotF16>,
                                      .sum_sq_f32 = SumSqF32,
                                      .scale_f32 = ScaleF32,
                                      .all_finite_f32 = AllFiniteF32};

}  // namespace vexfs::engine::internal

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86: never selected, alias the scalar kernels.
namespace vexfs::engine::internal {
const DistanceKernels kAvx2Kernels = kScalarKernels;
}
#endif
