#include "vexfs/engine/serialize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace vexfs::engine {
namespace {

std::vector<uint8_t> SamplePayload() {
  ByteWriter w;
  w.PutU8(0xAB);
  w.PutU16(0x1234);
  w.PutU32(0xDEADBEEF);
  w.PutU64(0x0102030405060708ull);
  w.PutI32(-5);
  w.PutF32(1.5f);
  const float f[3] = {-1.0f, 0.0f, 3.25f};
  w.PutF32Array(f);
  const uint16_t h[2] = {1, 0xFFFF};
  w.PutU16Array(h);
  const uint32_t u[2] = {7, 0x80000000u};
  w.PutU32Array(u);
  const uint64_t q[1] = {~0ull};
  w.PutU64Array(q);
  w.PutBytes("xyz", 3);
  return w.Release();
}

TEST(ByteWriterTest, LittleEndianLayout) {
  ByteWriter w;
  w.PutU32(0x11223344);
  w.PutU16(0xA1B2);
  w.PutF32(1.0f);  // 0x3F800000
  const std::vector<uint8_t> expect = {0x44, 0x33, 0x22, 0x11, 0xB2, 0xA1, 0x00, 0x00, 0x80, 0x3F};
  EXPECT_EQ(w.data(), expect);
}

TEST(ByteReaderTest, RoundTrip) {
  std::vector<uint8_t> p = SamplePayload();
  ByteReader r(p);
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  int32_t e;
  float f;
  ASSERT_TRUE(r.ReadU8(&a).ok());
  ASSERT_TRUE(r.ReadU16(&b).ok());
  ASSERT_TRUE(r.ReadU32(&c).ok());
  ASSERT_TRUE(r.ReadU64(&d).ok());
  ASSERT_TRUE(r.ReadI32(&e).ok());
  ASSERT_TRUE(r.ReadF32(&f).ok());
  EXPECT_EQ(a, 0xAB);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xDEADBEEFu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_EQ(e, -5);
  EXPECT_EQ(f, 1.5f);
  float fa[3];
  uint16_t ha[2];
  uint32_t ua[2];
  uint64_t qa[1];
  char s[3];
  ASSERT_TRUE(r.ReadF32Array(fa, 3).ok());
  ASSERT_TRUE(r.ReadU16Array(ha, 2).ok());
  ASSERT_TRUE(r.ReadU32Array(ua, 2).ok());
  ASSERT_TRUE(r.ReadU64Array(qa, 1).ok());
  ASSERT_TRUE(r.ReadBytes(s, 3).ok());
  EXPECT_EQ(fa[2], 3.25f);
  EXPECT_EQ(ha[1], 0xFFFF);
  EXPECT_EQ(ua[1], 0x80000000u);
  EXPECT_EQ(qa[0], ~0ull);
  EXPECT_EQ(std::string(s, 3), "xyz");
  EXPECT_TRUE(r.ExpectEnd().ok());
}

TEST(ByteReaderTest, ShortReadFailsWithoutAdvancing) {
  const uint8_t buf[3] = {1, 2, 3};
  ByteReader r(buf);
  uint32_t v;
  Status st = r.ReadU32(&v);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_EQ(r.position(), 0u);
  uint16_t h;
  ASSERT_TRUE(r.ReadU16(&h).ok());
  EXPECT_FALSE(r.ExpectEnd().ok());
  EXPECT_TRUE(r.ReadU16(&h).IsCorruption());
}

TEST(ByteReaderTest, CheckAvailableIsOverflowSafe) {
  const uint8_t buf[8] = {};
  ByteReader r(buf);
  EXPECT_TRUE(r.CheckAvailable(2, 4).ok());
  EXPECT_FALSE(r.CheckAvailable(3, 4).ok());
  EXPECT_FALSE(r.CheckAvailable(std::numeric_limits<uint64_t>::max(), 4).ok());
  EXPECT_FALSE(r.CheckAvailable(uint64_t{1} << 62, 8).ok());
  float f[4];
  EXPECT_FALSE(r.ReadF32Array(f, std::numeric_limits<size_t>::max() / 2).ok());
}

TEST(BlobTest, RoundTrip) {
  std::vector<uint8_t> p = SamplePayload();
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kHnsw, 3, p);
  ASSERT_EQ(blob.size(), kBlobHeaderSize + p.size());
  auto v = UnwrapBlob(blob, IndexKind::kHnsw, 3);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->version, 3);
  EXPECT_EQ(v->kind, IndexKind::kHnsw);
  EXPECT_EQ(std::vector<uint8_t>(v->payload.begin(), v->payload.end()), p);
}

TEST(BlobTest, EmptyPayload) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, {});
  auto v = UnwrapBlob(blob, IndexKind::kFlat, 1);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->payload.empty());
}

TEST(BlobTest, BadMagic) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, SamplePayload());
  blob[0] = 'X';
  EXPECT_TRUE(UnwrapBlob(blob, IndexKind::kFlat, 1).status().IsCorruption());
}

TEST(BlobTest, HeaderBitFlip) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, SamplePayload());
  blob[9] ^= 0x01;  // payload length
  EXPECT_TRUE(UnwrapBlob(blob, IndexKind::kFlat, 1).status().IsCorruption());
}

TEST(BlobTest, NewerVersionIsNotSupported) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 2, SamplePayload());
  EXPECT_EQ(UnwrapBlob(blob, IndexKind::kFlat, 1).status().err(), ENOTSUP);
}

TEST(BlobTest, WrongKind) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kLsh, 1, SamplePayload());
  EXPECT_EQ(UnwrapBlob(blob, IndexKind::kFlat, 1).status().err(), EINVAL);
}

TEST(BlobTest, TruncatedEverywhere) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, SamplePayload());
  for (size_t n = 0; n < blob.size(); ++n) {
    std::span<const uint8_t> s(blob.data(), n);
    EXPECT_FALSE(UnwrapBlob(s, IndexKind::kFlat, 1).ok()) << n;
  }
}

TEST(BlobTest, TrailingBytes) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, SamplePayload());
  blob.push_back(0);
  EXPECT_TRUE(UnwrapBlob(blob, IndexKind::kFlat, 1).status().IsCorruption());
}

TEST(BlobTest, PayloadBitFlips) {
  std::vector<uint8_t> blob = WrapBlob(IndexKind::kFlat, 1, SamplePayload());
  for (size_t i = kBlobHeaderSize; i < blob.size(); ++i) {
    blob[i] ^= 0x40;
    EXPECT_TRUE(UnwrapBlob(blob, IndexKind::kFlat, 1).status().IsCorruption()) << i;
    blob[i] ^= 0x40;
  }
}

}  // namespace
}  // namespace vexfs::engine
