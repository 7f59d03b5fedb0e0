// Scalar reference kernels. Float kernels accumulate in double so they are
// the accuracy reference the SIMD variants are tested against; integer
// kernels use wrap-around uint32 arithmetic so every level agrees bit for
// bit even when a sum exceeds int32 (see distance.h).
#include <cstring>

#include "distance_internal.h"

namespace vexfs::engine::internal {
namespace {

float L2F32(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) {
    const double t = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += t * t;
  }
  return static_cast<float>(s);
}

float DotF32(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(s);
}

float L2F16(const float* q, const uint16_t* x, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) {
    const double t = static_cast<double>(q[i]) - static_cast<double>(HalfToFloatInline(x[i]));
    s += t * t;
  }
  return static_cast<float>(s);
}

float DotF16(const float* q, const uint16_t* x, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) {
    s += static_cast<double>(q[i]) * static_cast<double>(HalfToFloatInline(x[i]));
  }
  return static_cast<float>(s);
}

float L2F16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) {
    const double t =
        static_cast<double>(HalfToFloatInline(a[i])) - static_cast<double>(HalfToFloatInline(b[i]));
    s += t * t;
  }
  return static_cast<float>(s);
}

float DotF16F16(const uint16_t* a, const uint16_t* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) {
    s +=
        static_cast<double>(HalfToFloatInline(a[i])) * static_cast<double>(HalfToFloatInline(b[i]));
  }
  return static_cast<float>(s);
}

int32_t L2I8(const int8_t* a, const int8_t* b, size_t d) {
  uint32_t s = 0;
  for (size_t i = 0; i < d; ++i) {
    const int32_t t = static_cast<int32_t>(a[i]) - static_cast<int32_t>(b[i]);
    s += static_cast<uint32_t>(t * t);
  }
  return static_cast<int32_t>(s);
}

int32_t DotI8(const int8_t* a, const int8_t* b, size_t d) {
  uint32_t s = 0;
  for (size_t i = 0; i < d; ++i) {
    s += static_cast<uint32_t>(static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]));
  }
  return static_cast<int32_t>(s);
}

// Four running sums: one would chain every addition on the one before.
double SumSqF32(const float* v, size_t d) {
  double s4[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    for (size_t j = 0; j < 4; ++j) s4[j] += static_cast<double>(v[i + j]) * static_cast<double>(v[i + j]);
  }
  for (; i < d; ++i) s4[0] += static_cast<double>(v[i]) * static_cast<double>(v[i]);
  return (s4[0] + s4[1]) + (s4[2] + s4[3]);
}

void ScaleF32(float* v, size_t d, double s) {
  for (size_t i = 0; i < d; ++i) v[i] = static_cast<float>(static_cast<double>(v[i]) * s);
}

}  // namespace

// On the bits, without early exit, so that the loop vectorises.
bool AllFiniteScalar(const float* v, size_t d) {
  uint32_t bad = 0;
  for (size_t i = 0; i < d; ++i) {
    uint32_t u;
    std::memcpy(&u, v + i, sizeof u);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);  // exponent all ones
  }
  return bad == 0;
}

const DistanceKernels kScalarKernels = {.level = SimdLevel::kScalar,
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
                                        .all_finite_f32 = AllFiniteScalar};

}  // namespace vexfs::engine::internal
