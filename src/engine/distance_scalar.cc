// Scalar reference kernels. Float kernels accumulate in double so they are
// the accuracy reference the SIMD variants are tested against; integer
// kernels use wrap-around uint32 arithmetic so every level agrees bit for
// bit even when a sum exceeds int32 (see distance.h).
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

}  // namespace

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
                                        .dot_f16_x4 = Repeat4<uint16_t, DotF16>};

}  // namespace vexfs::engine::internal
