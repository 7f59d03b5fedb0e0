#include "vexfs/engine/distance.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace vexfs::engine {
namespace {

std::vector<size_t> TestDims() {
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 80; ++d) dims.push_back(d);
  for (size_t d : {95,  96,   97,   127,  128,  129,  255,  256,  257,  383,  384,  511,  512, 513,
                   768, 1000, 1023, 1024, 1025, 1536, 2047, 2048, 3071, 4095, 4096, 4097, 8191}) {
    dims.push_back(d);
  }
  return dims;
}

std::vector<SimdLevel> SimdLevels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (KernelsFor(l) != nullptr) out.push_back(l);
  }
  return out;
}

// +1 element so the kernels also see unaligned pointers.
struct Vectors {
  std::vector<float> a, b;
  std::vector<uint16_t> h;
  std::vector<int8_t> i, j;
};

Vectors MakeVectors(size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 2.0f);
  std::uniform_int_distribution<int> u(-128, 127);
  Vectors v;
  v.a.resize(d + 1);
  v.b.resize(d + 1);
  v.h.resize(d + 1);
  v.i.resize(d + 1);
  v.j.resize(d + 1);
  for (size_t k = 0; k <= d; ++k) {
    v.a[k] = n(rng);
    v.b[k] = n(rng);
    v.h[k] = FloatToHalf(n(rng));
    v.i[k] = static_cast<int8_t>(u(rng));
    v.j[k] = static_cast<int8_t>(u(rng));
  }
  return v;
}

// Bound for float32 accumulation against the double reference.
double Tol(double sum_abs) { return 2e-5 * sum_abs + 1e-30; }

TEST(DistanceTest, ScalarAlwaysAvailable) {
  const DistanceKernels* s = KernelsFor(SimdLevel::kScalar);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->level, SimdLevel::kScalar);
}

TEST(DistanceTest, KernelsPicksBestLevel) {
  if (std::getenv("VEXFS_SIMD_LEVEL") != nullptr) GTEST_SKIP() << "level capped by environment";
  SimdLevel best = SimdLevel::kScalar;
  for (SimdLevel l : SimdLevels()) best = l;
  EXPECT_EQ(Kernels().level, best) << SimdLevelName(Kernels().level);
  std::vector<SimdLevel> levels = SimdLevels();
  for (SimdLevel l : levels) EXPECT_EQ(KernelsFor(l)->level, l);
}

TEST(DistanceTest, ScalarReferenceSmallCases) {
  const DistanceKernels& s = *KernelsFor(SimdLevel::kScalar);
  const float a[3] = {1, 2, 3}, b[3] = {4, 6, 3};
  EXPECT_EQ(s.l2_f32(a, b, 3), 25.0f);
  EXPECT_EQ(s.dot_f32(a, b, 3), 25.0f);
  const uint16_t h[3] = {FloatToHalf(4), FloatToHalf(6), FloatToHalf(3)};
  EXPECT_EQ(s.l2_f16(a, h, 3), 25.0f);
  EXPECT_EQ(s.dot_f16(a, h, 3), 25.0f);
  const uint16_t g[3] = {FloatToHalf(1), FloatToHalf(2), FloatToHalf(3)};
  EXPECT_EQ(s.l2_f16_f16(g, h, 3), 25.0f);
  EXPECT_EQ(s.dot_f16_f16(g, h, 3), 25.0f);
  const int8_t i[2] = {-128, 127}, j[2] = {127, -128};
  EXPECT_EQ(s.l2_i8(i, j, 2), 2 * 255 * 255);
  EXPECT_EQ(s.dot_i8(i, j, 2), 2 * -128 * 127);
  EXPECT_EQ(s.l2_f32(a, b, 0), 0.0f);
}

TEST(DistanceTest, F32KernelsMatchScalar) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      Vectors v = MakeVectors(d, static_cast<uint32_t>(d));
      for (size_t off : {0, 1}) {
        const float* a = v.a.data() + off;
        const float* b = v.b.data() + off;
        double sabs = 0;
        for (size_t x = 0; x < d; ++x) sabs += std::fabs(double(a[x]) * b[x]);
        const double r_l2 = ref.l2_f32(a, b, d);
        EXPECT_NEAR(k.l2_f32(a, b, d), r_l2, Tol(r_l2)) << SimdLevelName(level) << " d=" << d;
        EXPECT_NEAR(k.dot_f32(a, b, d), ref.dot_f32(a, b, d), Tol(sabs))
            << SimdLevelName(level) << " d=" << d;
      }
    }
  }
}

// The four-vector kernels (float32 and float16 storage) must give, bit for
// bit, what the same level's one-vector kernels give (HNSW mixes them), for
// every length and alignment.
TEST(DistanceTest, X4KernelsMatchOneVectorKernels) {
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      Vectors v = MakeVectors(d + 4, static_cast<uint32_t>(d) + 3);
      Vectors w = MakeVectors(d + 4, static_cast<uint32_t>(d) + 5);
      for (size_t off : {0, 1}) {
        const float* q = v.a.data() + off;
        const float* x[4] = {v.b.data() + off, w.a.data() + off + 1, w.b.data() + off + 2,
                             v.b.data() + off + 3};
        const uint16_t* h[4] = {v.h.data() + off, w.h.data() + off + 1, w.h.data() + off + 2,
                                v.h.data() + off + 3};
        float l2[4], dot[4], hl2[4], hdot[4];
        k.l2_f32_x4(q, x, d, l2);
        k.dot_f32_x4(q, x, d, dot);
        k.l2_f16_x4(q, h, d, hl2);
        k.dot_f16_x4(q, h, d, hdot);
        for (int j = 0; j < 4; ++j) {
          EXPECT_EQ(l2[j], k.l2_f32(q, x[j], d)) << SimdLevelName(level) << " d=" << d << " j=" << j;
          EXPECT_EQ(dot[j], k.dot_f32(q, x[j], d)) << SimdLevelName(level) << " d=" << d;
          EXPECT_EQ(hl2[j], k.l2_f16(q, h[j], d)) << SimdLevelName(level) << " d=" << d << " j=" << j;
          EXPECT_EQ(hdot[j], k.dot_f16(q, h[j], d)) << SimdLevelName(level) << " d=" << d;
        }
      }
    }
  }
}

TEST(DistanceTest, F16KernelsMatchScalar) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      Vectors v = MakeVectors(d, static_cast<uint32_t>(d) + 7);
      for (size_t off : {0, 1}) {
        const float* q = v.a.data() + off;
        const uint16_t* x = v.h.data() + off;
        double sabs = 0;
        for (size_t t = 0; t < d; ++t) sabs += std::fabs(double(q[t]) * HalfToFloat(x[t]));
        const double r_l2 = ref.l2_f16(q, x, d);
        EXPECT_NEAR(k.l2_f16(q, x, d), r_l2, Tol(r_l2)) << SimdLevelName(level) << " d=" << d;
        EXPECT_NEAR(k.dot_f16(q, x, d), ref.dot_f16(q, x, d), Tol(sabs))
            << SimdLevelName(level) << " d=" << d;
      }
    }
  }
}

TEST(DistanceTest, F16F16KernelsMatchScalar) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      Vectors v = MakeVectors(d, static_cast<uint32_t>(d) + 11);
      std::vector<uint16_t> g(d + 1);
      for (size_t t = 0; t <= d; ++t) g[t] = FloatToHalf(v.b[t]);
      for (size_t off : {0, 1}) {
        const uint16_t* x = v.h.data() + off;
        const uint16_t* y = g.data() + off;
        double sabs = 0;
        for (size_t t = 0; t < d; ++t)
          sabs += std::fabs(double(HalfToFloat(x[t])) * HalfToFloat(y[t]));
        const double r_l2 = ref.l2_f16_f16(x, y, d);
        EXPECT_NEAR(k.l2_f16_f16(x, y, d), r_l2, Tol(r_l2)) << SimdLevelName(level) << " d=" << d;
        EXPECT_NEAR(k.dot_f16_f16(x, y, d), ref.dot_f16_f16(x, y, d), Tol(sabs))
            << SimdLevelName(level) << " d=" << d;
      }
    }
  }
}

TEST(DistanceTest, I8KernelsMatchScalarExactly) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      Vectors v = MakeVectors(d, static_cast<uint32_t>(d) + 13);
      for (size_t off : {0, 1}) {
        const int8_t* a = v.i.data() + off;
        const int8_t* b = v.j.data() + off;
        EXPECT_EQ(k.l2_i8(a, b, d), ref.l2_i8(a, b, d)) << SimdLevelName(level) << " d=" << d;
        EXPECT_EQ(k.dot_i8(a, b, d), ref.dot_i8(a, b, d)) << SimdLevelName(level) << " d=" << d;
      }
    }
  }
}

TEST(DistanceTest, I8ExtremesExact) {
  // Worst case magnitudes: every term is (127 - -128)^2 or -128 * -128.
  for (size_t d : {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 4096, 8192}) {
    std::vector<int8_t> lo(d, -128), hi(d, 127);
    const int64_t l2 = int64_t(d) * 255 * 255;
    const int64_t dot = int64_t(d) * 128 * 128;
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      const DistanceKernels* k = KernelsFor(level);
      if (k == nullptr) continue;
      EXPECT_EQ(k->l2_i8(lo.data(), hi.data(), d), l2) << SimdLevelName(level) << " d=" << d;
      EXPECT_EQ(k->dot_i8(lo.data(), lo.data(), d), dot) << SimdLevelName(level) << " d=" << d;
    }
  }
}

TEST(DistanceTest, I8WrapsIdenticallyBeyondInt32) {
  // 40000 * 255^2 > 2^31: every level must agree modulo 2^32.
  const size_t d = 40000;
  std::vector<int8_t> lo(d, -128), hi(d, 127);
  const int32_t want = static_cast<int32_t>(static_cast<uint32_t>(uint64_t(d) * 255 * 255));
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    const DistanceKernels* k = KernelsFor(level);
    if (k == nullptr) continue;
    EXPECT_EQ(k->l2_i8(lo.data(), hi.data(), d), want) << SimdLevelName(level);
  }
}

TEST(DistanceTest, MetricDistanceSigns) {
  float a[4] = {1, 0, 0, 0}, b[4] = {0, 1, 0, 0};
  EXPECT_FLOAT_EQ(MetricDistance(Metric::kL2, a, b, 4), 2.0f);
  EXPECT_FLOAT_EQ(MetricDistance(Metric::kInnerProduct, a, a, 4), -1.0f);
  EXPECT_FLOAT_EQ(MetricDistance(Metric::kCosine, a, b, 4), 1.0f);
  EXPECT_FLOAT_EQ(MetricDistance(Metric::kCosine, a, a, 4), 0.0f);
}

TEST(DistanceTest, NormalizeL2) {
  float v[3] = {3, 0, 4};
  ASSERT_TRUE(NormalizeL2(v, 3));
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[2], 0.8f);
  float z[3] = {0, 0, 0};
  EXPECT_FALSE(NormalizeL2(z, 3));
  float big[2] = {3e38f, 3e38f};  // norm overflows float but not double
  ASSERT_TRUE(NormalizeL2(big, 2));
  EXPECT_NEAR(big[0], std::sqrt(0.5f), 1e-6);
  float inf[2] = {std::numeric_limits<float>::infinity(), 1};
  EXPECT_FALSE(NormalizeL2(inf, 2));
}

// The four running sums and their tail: every length from 1 to 40, against
// one sequential double sum (the two differ at most in the last bits of the
// double, so the floats agree to within an ulp).
TEST(DistanceTest, NormalizeL2MatchesSequentialSum) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (size_t d = 1; d <= 40; ++d) {
    std::vector<float> v(d);
    for (float& x : v) x = u(rng);
    v[d - 1] = 1.5f;  // never all zero
    double s = 0;
    for (float x : v) s += static_cast<double>(x) * x;
    const double inv = 1.0 / std::sqrt(s);
    std::vector<float> got = v;
    ASSERT_TRUE(NormalizeL2(got.data(), d));
    for (size_t i = 0; i < d; ++i) {
      const float want = static_cast<float>(v[i] * inv);
      EXPECT_LE(std::fabs(got[i] - want), std::fabs(want) * 1.2e-7f) << "d=" << d << " i=" << i;
    }
  }
}

TEST(DistanceTest, AllFinite) {
  const float kInf = std::numeric_limits<float>::infinity();
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v(37, 1.0f);
  v[3] = std::numeric_limits<float>::max();
  v[4] = -std::numeric_limits<float>::max();
  v[5] = std::numeric_limits<float>::denorm_min();
  v[6] = -0.0f;
  EXPECT_TRUE(AllFinite(v.data(), v.size()));
  EXPECT_TRUE(AllFinite(v.data(), 0));
  for (float bad : {kInf, -kInf, kNaN, -kNaN}) {
    for (size_t at : {size_t{0}, size_t{17}, size_t{36}}) {  // first, middle, tail
      std::vector<float> w = v;
      w[at] = bad;
      EXPECT_FALSE(AllFinite(w.data(), w.size())) << bad << " at " << at;
      EXPECT_TRUE(AllFinite(w.data(), at)) << "only the elements before " << at;
    }
  }
}

// NormalizeL2's kernels at every level against the scalar ones: the sum of
// squares to ~1e-16 relative (the order of additions differs), the scaling
// bit for bit, and the finiteness test exactly, with a NaN or an infinity at
// the first, a middle and the last element, so the vector body and every
// tail length see one.
TEST(DistanceTest, NormKernelsMatchScalar) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  const float kInf = std::numeric_limits<float>::infinity();
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (SimdLevel level : SimdLevels()) {
    const DistanceKernels& k = *KernelsFor(level);
    for (size_t d : TestDims()) {
      const Vectors v = MakeVectors(d, static_cast<uint32_t>(d) + 11);
      const float* a = v.a.data() + 1;  // unaligned
      const double want = ref.sum_sq_f32(a, d);
      EXPECT_NEAR(k.sum_sq_f32(a, d), want, want * 1e-14) << SimdLevelName(level) << " d=" << d;
      std::vector<float> x(v.a), y(v.a);
      ref.scale_f32(x.data() + 1, d, 0.37);
      k.scale_f32(y.data() + 1, d, 0.37);
      for (size_t i = 0; i <= d; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(x[i]), std::bit_cast<uint32_t>(y[i]))
            << SimdLevelName(level) << " d=" << d << " i=" << i;
      }
      EXPECT_TRUE(k.all_finite_f32(a, d));
      for (float bad : {kInf, -kInf, kNaN}) {
        for (size_t at : {size_t{0}, d / 2, d - 1}) {
          std::vector<float> w(v.a);
          w[1 + at] = bad;
          EXPECT_FALSE(k.all_finite_f32(w.data() + 1, d)) << SimdLevelName(level) << " d=" << d << " at " << at;
          EXPECT_EQ(k.all_finite_f32(w.data() + 1, at), true) << SimdLevelName(level) << " d=" << d;
        }
      }
    }
  }
}

// NormalizeL2 goes through Kernels(): at the best level it gives what the
// scalar passes give, to within an ulp.
TEST(DistanceTest, NormalizeL2AtBestLevelMatchesScalar) {
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t d : TestDims()) {
    Vectors v = MakeVectors(d, static_cast<uint32_t>(d) + 5);
    std::vector<float> want(v.a.begin(), v.a.begin() + d);
    ref.scale_f32(want.data(), d, 1.0 / std::sqrt(ref.sum_sq_f32(want.data(), d)));
    ASSERT_TRUE(NormalizeL2(v.a.data(), d));
    for (size_t i = 0; i < d; ++i) {
      EXPECT_LE(std::fabs(v.a[i] - want[i]), std::fabs(want[i]) * 1.2e-7f) << "d=" << d << " i=" << i;
    }
  }
}

TEST(HalfTest, FloatToHalfEdgeCases) {
  const float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);  // max finite
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7BFF);  // below the halfway point
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // tie rounds to even = inf
  EXPECT_EQ(FloatToHalf(1e6f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-1e6f), 0xFC00);
  EXPECT_EQ(FloatToHalf(kInf), 0x7C00);
  EXPECT_EQ(FloatToHalf(-kInf), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // min normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // min subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie to even -> 0
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 ulp: tie to even -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(5.0f, -25)), 0x0002);     // 2.5 ulp: tie to even -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.0f, -24)), 0x03FF);  // max subnormal
  EXPECT_EQ(FloatToHalf(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(FloatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie to even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie to even (up)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  const uint16_t snan = FloatToHalf(std::numeric_limits<float>::signaling_NaN());
  EXPECT_EQ(snan & 0x7E00, 0x7E00);  // quietened
}

TEST(HalfTest, HalfToFloatEdgeCases) {
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7C00)));
  EXPECT_TRUE(std::isinf(HalfToFloat(0xFC00)) && HalfToFloat(0xFC00) < 0);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7C01)));
}

TEST(HalfTest, AllHalvesRoundTrip) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), h) << h;
    }
  }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t HwFloatToHalf(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float HwHalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

TEST(HalfTest, MatchesF16cHardware) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C";
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float a = HalfToFloat(static_cast<uint16_t>(h));
    const float b = HwHalfToFloat(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << h;
  }
  std::mt19937 rng(42);
  // Random bit patterns cover every exponent, nan payloads and subnormals.
  for (int n = 0; n < 2000000; ++n) {
    const uint32_t bits = static_cast<uint32_t>(rng());
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToHalf(f), HwFloatToHalf(f)) << std::hex << bits;
  }
  // Dense sweep around the half range boundaries.
  for (uint32_t bits = 0x33000000u - 4096; bits < 0x38800000u + 4096; bits += 97) {
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToHalf(f), HwFloatToHalf(f)) << std::hex << bits;
  }
  for (uint32_t bits = 0x477FE000u - 65536; bits < 0x47800000u + 65536; ++bits) {
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToHalf(f), HwFloatToHalf(f)) << std::hex << bits;
  }
}
#endif

}  // namespace
}  // namespace vexfs::engine
