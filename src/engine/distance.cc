// Runtime dispatch of the distance kernels, metric helpers and the
// float <-> binary16 conversions.
#include "vexfs/engine/distance.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "distance_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace vexfs::engine {
namespace {

bool CpuCanRun(SimdLevel level) {
#if defined(__x86_64__)
  // __builtin_cpu_supports also checks, through XGETBV, that the OS saves the
  // YMM/ZMM state, so a "supported" answer is safe to act on.
  // F16C through CPUID leaf 1 (ECX bit 29): clang's builtin does not know
  // "f16c". AVX2 implies the OS saves YMM, which F16C needs too.
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  switch (level) {
    case SimdLevel::kScalar:
      return true;
    case SimdLevel::kAvx2:
      return avx2;
    case SimdLevel::kAvx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  }
  return false;
#else
  return level == SimdLevel::kScalar;
#endif
}

const DistanceKernels* TableFor(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return &internal::kScalarKernels;
    case SimdLevel::kAvx2:
      return &internal::kAvx2Kernels;
    case SimdLevel::kAvx512:
      return &internal::kAvx512Kernels;
  }
  return nullptr;
}

// VEXFS_SIMD_LEVEL=scalar|avx2|avx512 caps the automatically chosen level
// (for benchmarks and for reproducing bugs on a lesser machine).
SimdLevel MaxLevelFromEnv() {
  const char* e = std::getenv("VEXFS_SIMD_LEVEL");
  if (e == nullptr) return SimdLevel::kAvx512;
  if (std::strcmp(e, "scalar") == 0) return SimdLevel::kScalar;
  if (std::strcmp(e, "avx2") == 0) return SimdLevel::kAvx2;
  return SimdLevel::kAvx512;
}

const DistanceKernels* ChooseBest() {
  const SimdLevel cap = MaxLevelFromEnv();
  for (SimdLevel l : {SimdLevel::kAvx512, SimdLevel::kAvx2}) {
    if (static_cast<uint8_t>(l) <= static_cast<uint8_t>(cap) && CpuCanRun(l)) return TableFor(l);
  }
  return &internal::kScalarKernels;
}

}  // namespace

const DistanceKernels& Kernels() {
  static const DistanceKernels* const best = ChooseBest();
  return *best;
}

const DistanceKernels* KernelsFor(SimdLevel level) {
  return CpuCanRun(level) ? TableFor(level) : nullptr;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
  }
  return "unknown";
}

float MetricDistance(Metric metric, const float* a, const float* b, size_t d) {
  const DistanceKernels& k = Kernels();
  switch (metric) {
    case Metric::kL2:
      return k.l2_f32(a, b, d);
    case Metric::kInnerProduct:
      return -k.dot_f32(a, b, d);
    case Metric::kCosine:
      return 1.0f - k.dot_f32(a, b, d);
  }
  return 0.0f;
}

bool NormalizeL2(float* v, size_t d) {
  // Dispatched: the scalar passes took ~1 us of a 1,536-float query (3% of
  // an HNSW search at ef 16), the AVX-512 ones ~0.3 us.
  const DistanceKernels& k = Kernels();
  const double s = k.sum_sq_f32(v, d);
  if (!(s > 0) || !std::isfinite(s)) return false;
  k.scale_f32(v, d, 1.0 / std::sqrt(s));
  return true;
}

bool AllFinite(const float* v, size_t d) { return Kernels().all_finite_f32(v, d); }

bool FitsFloat16(const float* v, size_t d) {
  uint32_t over = 0;
  for (size_t i = 0; i < d; ++i) over |= static_cast<uint32_t>(std::fabs(v[i]) > kFloat16Max);
  return over == 0;
}

// Round-to-nearest-even conversion after F. Giesen's float_to_half_fast3_rtne;
// NaNs keep their top payload bits and are made quiet, like F16C's VCVTPS2PH.
uint16_t FloatToHalf(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7FFFFFFFu;
  if (u >= 0x7F800000u) {  // inf or nan
    if (u == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7E00u | ((u >> 13) & 0x3FFu));
  }
  if (u >= 0x47800000u) return sign | 0x7C00u;  // >= 65536: overflow to inf
  if (u < 0x38800000u) {                        // below 2^-14: half subnormal or zero
    // Adding 0.5 puts the binary point so that the float's last mantissa bit
    // weighs 2^-24, the half subnormal ulp; the FPU rounds to nearest even.
    const float magic = 0.5f;
    const float r = std::bit_cast<float>(u) + magic;
    return static_cast<uint16_t>(sign |
                                 (std::bit_cast<uint32_t>(r) - std::bit_cast<uint32_t>(magic)));
  }
  const uint32_t mant_odd = (u >> 13) & 1u;
  u += (static_cast<uint32_t>(15 - 127) << 23) + 0xFFFu + mant_odd;  // rebias and round
  return static_cast<uint16_t>(sign | (u >> 13));                    // may carry into inf: correct
}

float HalfToFloat(uint16_t h) { return internal::HalfToFloatInline(h); }

}  // namespace vexfs::engine
