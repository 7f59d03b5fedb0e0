// White-box tests of HnswIndex's level-0 arena (src/engine/hnsw_impl.h):
// record geometry, 3-byte link ids, and the re-layout to 4-byte ids that
// EnsureCapacity performs when an index outgrows 2^24 slots (exercised
// directly here: reaching 2^24 slots in a unit test would need gigabytes).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "../../src/engine/hnsw_impl.h"
#include "engine_test_util.h"

namespace vexfs::engine {
namespace {

HnswParams Params(size_t dim, ElementType t) {
  HnswParams p;
  p.dim = dim;
  p.metric = Metric::kL2;
  p.element_type = t;
  p.M = 16;
  p.ef_construction = 64;
  p.seed = 3;
  return p;
}

// Builds an Impl holding rows 0..n-1 of `data` (ids = row numbers).
std::unique_ptr<HnswIndex::Impl> BuildImpl(const HnswParams& p, const std::vector<float>& data) {
  auto m = std::make_unique<HnswIndex::Impl>(p);
  const size_t n = data.size() / p.dim;
  if (p.element_type == ElementType::kInt8) {
    EXPECT_TRUE(m->TrainAndFlush(data, 1).ok());
  }
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = i;
  EXPECT_TRUE(m->AddPreparedBatch(ids.data(), data.data(), n, 2).ok());
  return m;
}

std::vector<std::vector<uint32_t>> AllLinks(const HnswIndex::Impl& m) {
  std::vector<std::vector<uint32_t>> out;
  uint32_t buf[2 * hnsw_internal::kMaxM];
  for (uint32_t i = 0; i < m.count_; ++i) {
    for (int l = 0; l <= m.levels_[i]; ++l) {
      out.emplace_back(buf, buf + m.GetLinks(i, l, buf));
    }
  }
  return out;
}

std::vector<uint32_t> KnnIds(const HnswIndex::Impl& m, const std::vector<float>& queries) {
  std::vector<uint32_t> out;
  std::vector<hnsw_internal::Cand> cands;
  std::vector<float> scratch(2 * m.dim_ + 1);
  for (size_t i = 0; i < queries.size() / m.dim_; ++i) {
    const float* q = m.QueryForm(&queries[i * m.dim_], scratch.data());
    m.Knn(q, 10, 40, nullptr, &cands);
    for (const auto& c : cands) out.push_back(c.id);
  }
  return out;
}

TEST(HnswLayoutTest, RecordGeometry) {
  // float32, dim 128, M 16: the vector, then 4 + 32 * 3 = 100 link bytes
  // and a byte of slack, rounded to 64.
  HnswIndex::Impl f(Params(128, ElementType::kFloat32));
  EXPECT_EQ(f.link_w_, 3u);
  EXPECT_EQ(f.vec_off_, 0u);
  EXPECT_EQ(f.links_off_, 512u);
  EXPECT_EQ(f.rec_bytes_, 640u);
  // int8 records are packed, links first: 100 + 128.
  HnswIndex::Impl q(Params(128, ElementType::kInt8));
  EXPECT_EQ(q.links_off_, 0u);
  EXPECT_EQ(q.vec_off_, 100u);
  EXPECT_EQ(q.rec_bytes_, 228u);
  // A 4-byte load of the last 3-byte id stays inside the record.
  for (const HnswIndex::Impl* m : {&f, &q}) {
    EXPECT_LE(m->links_off_ + 4 + 3 * (m->M0_ - 1) + 4, m->rec_bytes_);
  }
  // ... also for a vector whose size is not a multiple of 64.
  HnswIndex::Impl odd(Params(3, ElementType::kFloat16));
  EXPECT_LE(odd.links_off_ + 4 + 3 * (odd.M0_ - 1) + 4, odd.rec_bytes_);
  ASSERT_TRUE(f.EnsureCapacity(10).ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.VecPtr(1)) % 64, 0u);
}

TEST(HnswLayoutTest, ThreeByteIdsHoldTheFullRange) {
  HnswIndex::Impl m(Params(4, ElementType::kFloat32));
  ASSERT_TRUE(m.EnsureCapacity(3).ok());
  for (uint64_t i = 0; i < 3; ++i) m.NewSlot(i, 0);
  const uint32_t ids[] = {0xFFFFFFu, 0x800000u, 0x123456u, 0u, 0xABCDEFu};
  m.SetLinks(1, 0, ids, 5);
  m.AppendLink(1, 0, 5, 0xFEDCBAu);
  uint32_t out[2 * hnsw_internal::kMaxM];
  ASSERT_EQ(m.GetLinks(1, 0, out), 6u);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(out[j], ids[j]);
  EXPECT_EQ(out[5], 0xFEDCBAu);
  // Neighbouring records are untouched.
  EXPECT_EQ(m.GetLinks(0, 0, out), 0u);
  EXPECT_EQ(m.GetLinks(2, 0, out), 0u);
}

// Visited tags are one byte: every 255th search clears them. Results must
// not change across the wrap.
TEST(HnswLayoutTest, VisitedEpochWrapKeepsResults) {
  const size_t dim = 16;
  const auto data = Clustered(400, dim, 8);
  const auto queries = Clustered(3, dim, 9);
  auto m = BuildImpl(Params(dim, ElementType::kFloat32), data);
  const auto first = KnnIds(*m, queries);
  ASSERT_FALSE(first.empty());
  for (int i = 0; i < 300; ++i) ASSERT_EQ(KnnIds(*m, queries), first) << "round " << i;
}

class HnswWidenTest : public ::testing::TestWithParam<ElementType> {};

TEST_P(HnswWidenTest, WidenLinksKeepsGraphVectorsAndResults) {
  const size_t dim = 24, n = 600;
  const auto data = Clustered(n, dim, 5);
  const auto queries = Clustered(30, dim, 6);
  auto m = BuildImpl(Params(dim, GetParam()), data);
  ASSERT_EQ(m->link_w_, 3u);
  const auto links = AllLinks(*m);
  const auto knn = KnnIds(*m, queries);
  auto vectors = [&] {
    std::vector<uint8_t> v;
    for (uint32_t i = 0; i < m->count_; ++i) {
      v.insert(v.end(), m->VecPtr(i), m->VecPtr(i) + m->vec_used_bytes_);
    }
    return v;
  };
  const auto vecs = vectors();
  const size_t cap = m->capacity_;
  ASSERT_TRUE(m->WidenLinks(cap).ok());
  EXPECT_EQ(m->link_w_, 4u);
  EXPECT_EQ(m->capacity_, cap);
  EXPECT_GE(m->level0_.capacity(), cap * m->rec_bytes_);
  EXPECT_EQ(AllLinks(*m), links);
  EXPECT_EQ(vectors(), vecs);
  EXPECT_EQ(KnnIds(*m, queries), knn);
  // The widened index keeps growing and linking.
  const auto more = Clustered(200, dim, 7);
  std::vector<uint64_t> ids(200);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = n + i;
  ASSERT_TRUE(m->AddPreparedBatch(ids.data(), more.data(), ids.size(), 2).ok());
  EXPECT_EQ(m->link_w_, 4u);
  uint32_t buf[2 * hnsw_internal::kMaxM];
  for (uint32_t i = 0; i < m->count_; ++i) {
    const uint32_t cnt = m->GetLinks(i, 0, buf);
    EXPECT_GT(cnt, 0u);
    for (uint32_t j = 0; j < cnt; ++j) EXPECT_LT(buf[j], m->count_);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, HnswWidenTest,
                         ::testing::Values(ElementType::kFloat32, ElementType::kFloat16,
                                           ElementType::kInt8));

}  // namespace
}  // namespace vexfs::engine
