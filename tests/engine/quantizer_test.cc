#include "vexfs/engine/quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "vexfs/engine/distance.h"

namespace vexfs::engine {
namespace {

using Mode = ScalarQuantizer::Mode;

std::vector<float> RandomData(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n * d);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) v[i * d + j] = g(rng) * (1.0f + float(j % 5)) + float(j % 3);
  }
  return v;
}

TEST(ScalarQuantizerTest, RejectsBadTrainingInput) {
  std::vector<float> v = {1, 2, 3};
  EXPECT_EQ(ScalarQuantizer::Train(v, 0, Mode::kGlobal).status().err(), EINVAL);
  EXPECT_EQ(ScalarQuantizer::Train(v, 2, Mode::kGlobal).status().err(), EINVAL);
  EXPECT_EQ(ScalarQuantizer::Train({}, 2, Mode::kGlobal).status().err(), EINVAL);
  v[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(ScalarQuantizer::Train(v, 3, Mode::kPerDimension).status().err(), EINVAL);
  const float lo[2] = {1, 0}, hi[2] = {0, 1};
  EXPECT_EQ(ScalarQuantizer::FromRanges(2, lo, hi).status().err(), EINVAL);
}

TEST(ScalarQuantizerTest, RoundTripErrorWithinHalfStep) {
  const size_t d = 37, n = 200;
  std::vector<float> data = RandomData(n, d, 1);
  for (Mode mode : {Mode::kGlobal, Mode::kPerDimension}) {
    auto q = ScalarQuantizer::Train(data, d, mode);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->mode(), mode);
    std::vector<int8_t> codes(n * d);
    q->EncodeBatch(data, codes.data());
    std::vector<float> back(d);
    for (size_t i = 0; i < n; ++i) {
      q->Decode(codes.data() + i * d, back.data());
      for (size_t j = 0; j < d; ++j) {
        ASSERT_LE(std::fabs(back[j] - data[i * d + j]), q->step(j) * 0.5f + 1e-5f) << i << "," << j;
      }
    }
  }
}

TEST(ScalarQuantizerTest, ExtremesAndClamping) {
  const float lo[1] = {-1.0f}, hi[1] = {1.0f};
  auto q = ScalarQuantizer::FromRanges(3, lo, hi);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->mode(), Mode::kGlobal);
  const float x[3] = {-1.0f, 1.0f, 100.0f};
  int8_t c[3];
  q->Encode(x, c);
  EXPECT_EQ(c[0], -128);
  EXPECT_EQ(c[1], 127);
  EXPECT_EQ(c[2], 127);  // clamped
  const float y[3] = {-5.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f};
  q->Encode(y, c);
  EXPECT_EQ(c[0], -128);
  EXPECT_EQ(c[1], -128);
  float back[3];
  q->Decode(c, back);
  EXPECT_NEAR(back[2], 0.0f, q->step(0));
}

TEST(ScalarQuantizerTest, ConstantDimension) {
  std::vector<float> data = {5, 1, 5, 2, 5, 3};  // dim 0 is constant
  auto q = ScalarQuantizer::Train(data, 2, Mode::kPerDimension);
  ASSERT_TRUE(q.ok());
  int8_t c[2];
  float back[2];
  q->Encode(data.data(), c);
  q->Decode(c, back);
  EXPECT_EQ(back[0], 5.0f);
  EXPECT_NEAR(back[1], 1.0f, 1e-6);
}

TEST(ScalarQuantizerTest, ApproxDistancesMatchDecoded) {
  const size_t d = 45, n = 50;
  std::vector<float> data = RandomData(n, d, 2);
  std::vector<float> query = RandomData(1, d, 3);
  const DistanceKernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (Mode mode : {Mode::kGlobal, Mode::kPerDimension}) {
    auto q = ScalarQuantizer::Train(data, d, mode);
    ASSERT_TRUE(q.ok());
    auto pl2 = q->PrepareL2(query.data());
    auto pdot = q->PrepareDot(query.data());
    std::vector<int8_t> code(d);
    std::vector<float> dec(d);
    for (size_t i = 0; i < n; ++i) {
      q->Encode(data.data() + i * d, code.data());
      q->Decode(code.data(), dec.data());
      const float l2 = ref.l2_f32(query.data(), dec.data(), d);
      const float dot = ref.dot_f32(query.data(), dec.data(), d);
      EXPECT_NEAR(q->ApproxL2(pl2, code.data()), l2, 1e-4f * (1 + l2));
      EXPECT_NEAR(q->ApproxDot(pdot, code.data()), dot, 1e-3f * (1 + std::fabs(dot)));
    }
  }
}

TEST(ScalarQuantizerTest, GlobalCodesWithIntegerKernel) {
  const size_t d = 64;
  std::vector<float> data = RandomData(2, d, 4);
  auto q = ScalarQuantizer::Train(data, d, Mode::kGlobal);
  ASSERT_TRUE(q.ok());
  std::vector<int8_t> a(d), b(d);
  q->Encode(data.data(), a.data());
  q->Encode(data.data() + d, b.data());
  std::vector<float> da(d), db(d);
  q->Decode(a.data(), da.data());
  q->Decode(b.data(), db.data());
  const float want = KernelsFor(SimdLevel::kScalar)->l2_f32(da.data(), db.data(), d);
  const float got = q->step(0) * q->step(0) * float(Kernels().l2_i8(a.data(), b.data(), d));
  EXPECT_NEAR(got, want, 1e-4f * want);
}

TEST(ScalarQuantizerTest, SerializeRoundTrip) {
  const size_t d = 9;
  std::vector<float> data = RandomData(20, d, 5);
  for (Mode mode : {Mode::kGlobal, Mode::kPerDimension}) {
    auto q = ScalarQuantizer::Train(data, d, mode);
    ASSERT_TRUE(q.ok());
    ByteWriter w;
    q->Serialize(&w);
    std::vector<uint8_t> bytes = w.Release();
    ByteReader r(bytes);
    auto q2 = ScalarQuantizer::Deserialize(&r);
    ASSERT_TRUE(q2.ok()) << q2.status().ToString();
    EXPECT_TRUE(r.ExpectEnd().ok());
    EXPECT_EQ(q2->mode(), mode);
    std::vector<int8_t> c1(d), c2(d);
    for (size_t i = 0; i < 20; ++i) {
      q->Encode(data.data() + i * d, c1.data());
      q2->Encode(data.data() + i * d, c2.data());
      EXPECT_EQ(c1, c2);
    }
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      ByteReader rr(std::span<const uint8_t>(bytes.data(), cut));
      EXPECT_FALSE(ScalarQuantizer::Deserialize(&rr).ok()) << cut;
    }
    bytes[4] = 7;  // unknown mode
    ByteReader bad(bytes);
    EXPECT_TRUE(ScalarQuantizer::Deserialize(&bad).status().IsCorruption());
  }
}

TEST(F16VectorTest, EncodeDecode) {
  std::vector<float> v = {0.0f, 1.0f, -2.5f, 65504.0f, 1e-3f, 3.14159f};
  std::vector<uint16_t> h(v.size());
  EncodeF16(v, h.data());
  std::vector<float> back(v.size());
  DecodeF16(h, back.data());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_NEAR(back[i], v[i], std::fabs(v[i]) * (1.0f / 2048) + 1e-7f) << i;
  }
}

}  // namespace
}  // namespace vexfs::engine

namespace vexfs::engine {
namespace {

// Every SIMD level of the asymmetric kernels against the scalar reference,
// over dimensions that exercise every unroll and tail path.
TEST(Sq8KernelTest, SimdMatchesScalar) {
  const Sq8Kernels& ref = *QuantKernelsFor(SimdLevel::kScalar);
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::uniform_int_distribution<int> u(-128, 127);
  std::vector<size_t> dims;
  for (size_t d = 1; d <= 70; ++d) dims.push_back(d);
  for (size_t d : {95, 96, 127, 128, 129, 255, 256, 384, 511, 768, 1000, 1536, 4097}) {
    dims.push_back(d);
  }
  size_t levels_tested = 0;
  for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    const Sq8Kernels* k = QuantKernelsFor(level);
    if (k == nullptr) continue;
    ++levels_tested;
    EXPECT_EQ(k->level, level);
    for (size_t d : dims) {
      // +1 so the kernels also see unaligned pointers.
      std::vector<float> w(d + 1), s(d + 1);
      std::vector<int8_t> c(d + 1);
      for (size_t i = 0; i <= d; ++i) {
        w[i] = n(rng);
        s[i] = 0.01f + 0.02f * std::fabs(n(rng));
        c[i] = static_cast<int8_t>(u(rng));
      }
      double l2_mag = 0, dot_mag = 0;
      for (size_t i = 1; i <= d; ++i) {
        const double t = double(w[i]) - double(s[i]) * c[i];
        l2_mag += t * t;
        dot_mag += std::fabs(double(w[i]) * c[i]);
      }
      const float want_l2 = ref.l2(w.data() + 1, s.data() + 1, c.data() + 1, d);
      const float want_dot = ref.dot(w.data() + 1, c.data() + 1, d);
      EXPECT_NEAR(k->l2(w.data() + 1, s.data() + 1, c.data() + 1, d), want_l2,
                  1e-5 * (1 + l2_mag))
          << SimdLevelName(level) << " d=" << d;
      EXPECT_NEAR(k->dot(w.data() + 1, c.data() + 1, d), want_dot, 1e-5 * (1 + dot_mag))
          << SimdLevelName(level) << " d=" << d;
    }
  }
  if (levels_tested == 0) GTEST_SKIP() << "no SIMD level on this CPU";
}

TEST(Sq8KernelTest, DispatchMatchesDistanceLevel) {
  EXPECT_EQ(QuantKernels().level, Kernels().level);
  EXPECT_NE(QuantKernelsFor(SimdLevel::kScalar), nullptr);
}

}  // namespace
}  // namespace vexfs::engine
