// Distance kernels of the vector engine.
//
// One scalar reference implementation plus AVX2+FMA and AVX-512 variants,
// each compiled in its own translation unit with its own target flags
// (never -march=native, never -ffast-math). The best level the CPU supports
// is chosen once, at first use; tests and benchmarks may ask for a specific
// level with KernelsFor().
//
// Conventions: `d` is the number of elements (1..65536). Pointers need no
// particular alignment. Results are plain (non-negated) values: L2 kernels
// return the squared Euclidean distance, dot kernels return the dot product.
// float16 is IEEE 754 binary16 stored as uint16_t; int8 vectors are the
// codes of a scalar quantizer (see quantizer.h).
//
// Thread safety: all functions are pure and thread-safe.
#ifndef VEXFS_ENGINE_DISTANCE_H_
#define VEXFS_ENGINE_DISTANCE_H_

#include <cstddef>
#include <cstdint>

#include "vexfs/engine/index.h"

namespace vexfs::engine {

enum class SimdLevel : uint8_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct DistanceKernels {
  SimdLevel level;
  float (*l2_f32)(const float* a, const float* b, size_t d);
  float (*dot_f32)(const float* a, const float* b, size_t d);
  // Query in float32 against a stored float16 vector.
  float (*l2_f16)(const float* q, const uint16_t* x, size_t d);
  float (*dot_f16)(const float* q, const uint16_t* x, size_t d);
  // Stored float16 against stored float16 (graph construction compares
  // stored nodes with each other).
  float (*l2_f16_f16)(const uint16_t* a, const uint16_t* b, size_t d);
  float (*dot_f16_f16)(const uint16_t* a, const uint16_t* b, size_t d);
  // int8 codes against int8 codes (exact integer arithmetic).
  int32_t (*l2_i8)(const int8_t* a, const int8_t* b, size_t d);
  int32_t (*dot_i8)(const int8_t* a, const int8_t* b, size_t d);
  // One query against four float32 vectors: out[j] = l2_f32(q, x[j], d)
  // (dot_f32 likewise), bit for bit. Streaming four vectors at once keeps
  // more memory loads in flight when the vectors are not in cache.
  void (*l2_f32_x4)(const float* q, const float* const* x, size_t d, float* out);
  void (*dot_f32_x4)(const float* q, const float* const* x, size_t d, float* out);
  // The same for a float32 query against four stored float16 vectors:
  // out[j] = l2_f16(q, x[j], d) (dot_f16 likewise), bit for bit.
  void (*l2_f16_x4)(const float* q, const uint16_t* const* x, size_t d, float* out);
  void (*dot_f16_x4)(const float* q, const uint16_t* const* x, size_t d, float* out);
  // NormalizeL2's two passes. sum_sq_f32: the sum of v[i]^2 in double
  // (every square is exact in double; the levels add them in different
  // orders, so sums agree to rounding, ~1e-15 relative, not bit for bit).
  // scale_f32: v[i] = float(double(v[i]) * s), one rounding per element:
  // bit for bit the same at every level.
  double (*sum_sq_f32)(const float* v, size_t d);
  void (*scale_f32)(float* v, size_t d, double s);
  // AllFinite: no element is NaN or infinite.
  bool (*all_finite_f32)(const float* v, size_t d);
};

// Kernels for the best level this CPU supports; chosen once, thread-safe.
const DistanceKernels& Kernels();
// Kernels for `level`, or nullptr when the CPU (or OS) cannot run it.
const DistanceKernels* KernelsFor(SimdLevel level);
const char* SimdLevelName(SimdLevel level);

// Distance under `metric` where smaller is better (see Neighbor).
// REQUIRES: for kCosine both vectors are already L2-normalised.
float MetricDistance(Metric metric, const float* a, const float* b, size_t d);

// Normalise `v` in place to unit L2 norm; returns false for a zero vector
// (or one whose squared norm is not finite).
bool NormalizeL2(float* v, size_t d);

// True when no element of v[0, d) is NaN or infinite. Tests the bits
// without an early exit, so the loop vectorises: on a 1,536-float query it
// is ~10x faster than std::isfinite per element with a return.
bool AllFinite(const float* v, size_t d);

// float <-> IEEE binary16 conversion (round to nearest even).
// kFloat16Max is the largest finite binary16: a float16 index stores only
// values with |x| <= kFloat16Max.
inline constexpr float kFloat16Max = 65504.0f;
// True if every |v[i]| <= kFloat16Max (NaN counts as fitting: callers
// refuse NaN with AllFinite). Without early exit, so that it vectorises.
bool FitsFloat16(const float* v, size_t d);
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_DISTANCE_H_
