#include "vexfs/engine/flat_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "engine_test_util.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

std::vector<float> RandomVectors(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n * d);
  for (float& x : v) x = g(rng);
  return v;
}

std::unique_ptr<FlatIndex> MakeIndex(size_t d, Metric m, ElementType e = ElementType::kFloat32) {
  FlatIndexOptions o;
  o.dim = d;
  o.metric = m;
  o.element_type = e;
  auto r = FlatIndex::Create(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

void Fill(FlatIndex* idx, const std::vector<float>& data, uint64_t id_base = 1000) {
  const size_t d = idx->dim();
  for (size_t i = 0; i < data.size() / d; ++i) {
    ASSERT_TRUE(idx->Add(id_base + i, std::span<const float>(data.data() + i * d, d)).ok());
  }
}

// Brute force in double over (possibly decoded) vectors.
std::vector<Neighbor> BruteForce(const std::vector<float>& data, size_t d, const float* query,
                                 Metric m, size_t k, uint64_t id_base = 1000,
                                 const IdFilter* filter = nullptr) {
  std::vector<float> q(query, query + d);
  if (m == Metric::kCosine) NormalizeL2(q.data(), d);
  std::vector<Neighbor> all;
  for (size_t i = 0; i < data.size() / d; ++i) {
    if (filter != nullptr && !(*filter)(id_base + i)) continue;
    std::vector<float> x(data.begin() + i * d, data.begin() + (i + 1) * d);
    if (m == Metric::kCosine) NormalizeL2(x.data(), d);
    double l2 = 0, dot = 0;
    for (size_t j = 0; j < d; ++j) {
      l2 += (double(q[j]) - x[j]) * (double(q[j]) - x[j]);
      dot += double(q[j]) * x[j];
    }
    const double dist = m == Metric::kL2 ? l2 : (m == Metric::kInnerProduct ? -dot : 1 - dot);
    all.push_back({id_base + i, float(dist)});
  }
  std::sort(all.begin(), all.end(), [](const Neighbor& a, const Neighbor& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

std::vector<uint64_t> Ids(const std::vector<Neighbor>& v) {
  std::vector<uint64_t> out;
  for (const Neighbor& n : v) out.push_back(n.id);
  return out;
}

void ExpectSameNeighbors(const std::vector<Neighbor>& got, const std::vector<Neighbor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << "rank " << i;
    EXPECT_NEAR(got[i].distance, want[i].distance, 1e-4 * (1 + std::fabs(want[i].distance)));
  }
}

TEST(FlatIndexTest, IdsListsTheLiveIdsAndSurviveSerialization) {
  const auto data = RandomVectors(300, 16, 5);
  auto idx = MakeIndex(16, Metric::kL2);
  ExpectIdsAfterChurnAndRoundTrip(idx.get(), data);
}

TEST(FlatIndexTest, CreateRejectsBadOptions) {
  FlatIndexOptions o;
  o.dim = 0;
  EXPECT_EQ(FlatIndex::Create(o).status().err(), EINVAL);
  o.dim = 65537;
  EXPECT_EQ(FlatIndex::Create(o).status().err(), EINVAL);
  o.dim = 8;
  o.metric = static_cast<Metric>(9);
  EXPECT_EQ(FlatIndex::Create(o).status().err(), EINVAL);
  o.metric = Metric::kL2;
  o.element_type = static_cast<ElementType>(7);
  EXPECT_EQ(FlatIndex::Create(o).status().err(), EINVAL);
  o.element_type = ElementType::kInt8;
  o.rerank_factor = 0;
  EXPECT_EQ(FlatIndex::Create(o).status().err(), EINVAL);
}

TEST(FlatIndexTest, ExactMatchesBruteForceF32) {
  const size_t d = 19, n = 500;
  std::vector<float> data = RandomVectors(n, d, 1);
  std::vector<float> queries = RandomVectors(20, d, 2);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto idx = MakeIndex(d, m);
    Fill(idx.get(), data);
    EXPECT_EQ(idx->size(), n);
    for (size_t qi = 0; qi < 20; ++qi) {
      const float* q = queries.data() + qi * d;
      auto r = idx->Search(std::span<const float>(q, d), {.k = 10});
      ASSERT_TRUE(r.ok());
      ExpectSameNeighbors(*r, BruteForce(data, d, q, m, 10));
    }
  }
}

TEST(FlatIndexTest, Float16ExactOnStoredVectors) {
  const size_t d = 33, n = 300;
  std::vector<float> data = RandomVectors(n, d, 3);
  std::vector<float> rounded(data.size());
  for (size_t i = 0; i < data.size(); ++i) rounded[i] = HalfToFloat(FloatToHalf(data[i]));
  std::vector<float> queries = RandomVectors(10, d, 4);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct}) {
    auto idx = MakeIndex(d, m, ElementType::kFloat16);
    Fill(idx.get(), data);
    for (size_t qi = 0; qi < 10; ++qi) {
      const float* q = queries.data() + qi * d;
      auto r = idx->Search(std::span<const float>(q, d), {.k = 7});
      ASSERT_TRUE(r.ok());
      ExpectSameNeighbors(*r, BruteForce(rounded, d, q, m, 7));
    }
    auto v = idx->GetVector(1005);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ((*v)[3], rounded[5 * d + 3]);
  }
}

TEST(FlatIndexTest, Int8UntrainedIsExact) {
  const size_t d = 16, n = 100;  // below kAutoTrainSize
  std::vector<float> data = RandomVectors(n, d, 5);
  auto idx = MakeIndex(d, Metric::kL2, ElementType::kInt8);
  Fill(idx.get(), data);
  EXPECT_FALSE(idx->trained());
  std::vector<float> q = RandomVectors(1, d, 6);
  auto r = idx->Search(q, {.k = 10});
  ASSERT_TRUE(r.ok());
  ExpectSameNeighbors(*r, BruteForce(data, d, q.data(), Metric::kL2, 10));
}

TEST(FlatIndexTest, Int8RerankedRecall) {
  const size_t d = 32, n = 2000, nq = 30, k = 10;
  std::vector<float> data = RandomVectors(n, d, 7);
  std::vector<float> queries = RandomVectors(nq, d, 8);
  for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto idx = MakeIndex(d, m, ElementType::kInt8);
    Fill(idx.get(), data);
    EXPECT_TRUE(idx->trained());  // auto-trained at kAutoTrainSize
    size_t hits = 0;
    for (size_t qi = 0; qi < nq; ++qi) {
      const float* q = queries.data() + qi * d;
      auto r = idx->Search(std::span<const float>(q, d), {.k = k});
      ASSERT_TRUE(r.ok());
      std::vector<Neighbor> want = BruteForce(data, d, q, m, k);
      std::set<uint64_t> truth;
      for (const Neighbor& x : want) truth.insert(x.id);
      for (const Neighbor& x : *r) hits += truth.count(x.id);
      // Reported distances are exact float32 distances.
      for (size_t i = 1; i < r->size(); ++i) EXPECT_LE((*r)[i - 1].distance, (*r)[i].distance);
      EXPECT_NEAR((*r)[0].distance, want[0].distance, 1e-4 * (1 + std::fabs(want[0].distance)));
    }
    EXPECT_GE(double(hits) / (nq * k), 0.97) << int(m);
  }
}

TEST(FlatIndexTest, ExplicitTrainReencodes) {
  const size_t d = 8;
  auto idx = MakeIndex(d, Metric::kL2, ElementType::kInt8);
  std::vector<float> data = RandomVectors(50, d, 9);
  Fill(idx.get(), data);
  ASSERT_TRUE(idx->Train(data).ok());
  EXPECT_TRUE(idx->trained());
  auto r = idx->Search(std::span<const float>(data.data(), d), {.k = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].id, 1000u);
  EXPECT_EQ((*r)[0].distance, 0.0f);
  EXPECT_EQ(idx->Train(std::vector<float>(5, 1.0f)).err(), EINVAL);
}

TEST(FlatIndexTest, SearchBatchMatchesSearch) {
  const size_t d = 24, n = 1500, nq = 70;
  std::vector<float> data = RandomVectors(n, d, 10);
  std::vector<float> queries = RandomVectors(nq, d, 11);
  for (ElementType e : {ElementType::kFloat32, ElementType::kFloat16, ElementType::kInt8}) {
    FlatIndexOptions o{.dim = d, .metric = Metric::kL2, .element_type = e, .num_threads = 2};
    auto idx = std::move(FlatIndex::Create(o)).value();
    Fill(idx.get(), data);
    IdFilter odd = [](uint64_t id) { return id % 2 == 1; };
    for (const IdFilter* f :
         {static_cast<const IdFilter*>(nullptr), static_cast<const IdFilter*>(&odd)}) {
      SearchParams p{.k = 15, .filter = f};
      auto batch = idx->SearchBatch(queries, p);
      ASSERT_TRUE(batch.ok());
      ASSERT_EQ(batch->size(), nq);
      for (size_t qi = 0; qi < nq; ++qi) {
        auto one = idx->Search(std::span<const float>(queries.data() + qi * d, d), p);
        ASSERT_TRUE(one.ok());
        EXPECT_EQ(Ids((*batch)[qi]), Ids(*one)) << qi;
      }
    }
  }
}

TEST(FlatIndexTest, FilteredSearch) {
  const size_t d = 10, n = 400;
  std::vector<float> data = RandomVectors(n, d, 12);
  auto idx = MakeIndex(d, Metric::kL2);
  Fill(idx.get(), data);
  IdFilter even = [](uint64_t id) { return id % 2 == 0; };
  std::vector<float> q = RandomVectors(1, d, 13);
  auto r = idx->Search(q, {.k = 20, .filter = &even});
  ASSERT_TRUE(r.ok());
  for (const Neighbor& x : *r) EXPECT_EQ(x.id % 2, 0u);
  ExpectSameNeighbors(*r, BruteForce(data, d, q.data(), Metric::kL2, 20, 1000, &even));
  IdFilter none = [](uint64_t) { return false; };
  auto empty = idx->Search(q, {.k = 5, .filter = &none});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(FlatIndexTest, RangeSearch) {
  const size_t d = 6, n = 300;
  std::vector<float> data = RandomVectors(n, d, 14);
  auto idx = MakeIndex(d, Metric::kL2);
  Fill(idx.get(), data);
  std::vector<float> q = RandomVectors(1, d, 15);
  const float radius = 4.0f;
  auto r = idx->RangeSearch(q, radius, {});
  ASSERT_TRUE(r.ok());
  std::vector<Neighbor> all = BruteForce(data, d, q.data(), Metric::kL2, n);
  std::vector<Neighbor> want;
  for (const Neighbor& x : all) {
    if (x.distance <= radius) want.push_back(x);
  }
  ASSERT_FALSE(want.empty());
  ExpectSameNeighbors(*r, want);
  IdFilter even = [](uint64_t id) { return id % 2 == 0; };
  auto rf = idx->RangeSearch(q, radius, {.filter = &even});
  ASSERT_TRUE(rf.ok());
  for (const Neighbor& x : *rf) EXPECT_EQ(x.id % 2, 0u);
  EXPECT_EQ(idx->RangeSearch(q, std::nanf(""), {}).status().err(), EINVAL);
  auto none = idx->RangeSearch(q, -1.0f, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(FlatIndexTest, RemoveAndReplace) {
  for (ElementType e : {ElementType::kFloat32, ElementType::kFloat16, ElementType::kInt8}) {
    const size_t d = 4;
    auto idx = MakeIndex(d, Metric::kL2, e);
    for (uint64_t id = 0; id < 10; ++id) {
      std::vector<float> v(d, float(id));
      ASSERT_TRUE(idx->Add(id, v).ok());
    }
    if (e == ElementType::kInt8) {
      std::vector<float> sample = {0, 0, 0, 0, 20, 20, 20, 20};
      ASSERT_TRUE(idx->Train(sample).ok());
    }
    EXPECT_EQ(idx->Remove(3).err(), 0);
    EXPECT_EQ(idx->Remove(3).err(), ENOENT);
    EXPECT_FALSE(idx->Contains(3));
    EXPECT_TRUE(idx->Contains(9));  // moved into slot 3
    EXPECT_EQ(idx->size(), 9u);
    std::vector<float> q(d, 3.0f);
    auto r = idx->Search(q, {.k = 3});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Ids(*r), (std::vector<uint64_t>{2, 4, 1}));
    // Replace id 9 with a vector at 3: it becomes the nearest.
    ASSERT_TRUE(idx->Add(9, q).ok());
    EXPECT_EQ(idx->size(), 9u);
    r = idx->Search(q, {.k = 1});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)[0].id, 9u);
    EXPECT_EQ((*r)[0].distance, 0.0f);
    auto v9 = idx->GetVector(9);
    ASSERT_TRUE(v9.ok());
    EXPECT_EQ(*v9, q);
    // Slot reuse: removing all then re-adding works.
    for (uint64_t id = 0; id < 10; ++id) {
      if (id != 3) {
        ASSERT_TRUE(idx->Remove(id).ok()) << id;
      }
    }
    EXPECT_EQ(idx->size(), 0u);
    r = idx->Search(q, {.k = 5});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
    ASSERT_TRUE(idx->Add(42, q).ok());
    r = idx->Search(q, {.k = 5});
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].id, 42u);
  }
}

TEST(FlatIndexTest, BadInputErrors) {
  const size_t d = 4;
  auto idx = MakeIndex(d, Metric::kL2);
  std::vector<float> ok = {1, 2, 3, 4};
  ASSERT_TRUE(idx->Add(1, ok).ok());
  EXPECT_EQ(idx->Add(2, std::vector<float>{1, 2, 3}).err(), EINVAL);
  EXPECT_EQ(idx->Add(2, std::vector<float>{1, 2, 3, 4, 5}).err(), EINVAL);
  EXPECT_EQ(idx->Add(2, std::vector<float>{1, std::nanf(""), 3, 4}).err(), EINVAL);
  EXPECT_EQ(idx->Add(2, std::vector<float>{1, 2, std::numeric_limits<float>::infinity(), 4}).err(),
            EINVAL);
  EXPECT_FALSE(idx->Contains(2));
  EXPECT_EQ(idx->Search(ok, {.k = 0}).status().err(), EINVAL);
  EXPECT_EQ(idx->Search(ok, {.k = 10001}).status().err(), EINVAL);
  EXPECT_TRUE(idx->Search(ok, {.k = 10000}).ok());
  EXPECT_EQ(idx->Search(std::vector<float>{1, 2}, {.k = 1}).status().err(), EINVAL);
  EXPECT_EQ(idx->Search(std::vector<float>{1, 2, 3, -std::numeric_limits<float>::infinity()}, {})
                .status()
                .err(),
            EINVAL);
  EXPECT_EQ(idx->SearchBatch(std::vector<float>{1, 2, 3, 4, 5}, {}).status().err(), EINVAL);
  EXPECT_EQ(idx->SearchBatch(ok, {.k = 0}).status().err(), EINVAL);
  EXPECT_EQ(idx->Remove(99).err(), ENOENT);
  EXPECT_EQ(idx->GetVector(99).status().err(), ENOENT);
  std::vector<uint64_t> ids = {7, 8};
  std::vector<float> two = {1, 2, 3, 4, 1, 2, std::nanf(""), 4};
  EXPECT_EQ(idx->AddBatch(ids, two).err(), EINVAL);
  EXPECT_FALSE(idx->Contains(7));  // nothing added
  auto cos = MakeIndex(d, Metric::kCosine);
  EXPECT_EQ(cos->Add(1, std::vector<float>(d, 0.0f)).err(), EINVAL);
  EXPECT_EQ(cos->Search(std::vector<float>(d, 0.0f), {}).status().err(), EINVAL);
  auto half = MakeIndex(d, Metric::kL2, ElementType::kFloat16);
  EXPECT_EQ(half->Add(1, std::vector<float>{1e6f, 0, 0, 0}).err(), EINVAL);
  const std::vector<uint64_t> pair = {1, 2};
  const std::vector<float> big = {1, 0, 0, 0, 0, 1e6f, 0, 0};
  EXPECT_EQ(half->AddBatch(pair, big).err(), EINVAL);
  EXPECT_FALSE(half->Contains(1));  // nothing added
  // Cosine stores normalised vectors: any finite one fits float16.
  auto half_cos = MakeIndex(d, Metric::kCosine, ElementType::kFloat16);
  EXPECT_TRUE(half_cos->AddBatch(pair, big).ok());
  EXPECT_TRUE(half_cos->Add(3, std::vector<float>{0, 0, 1e6f, 0}).ok());
}

TEST(FlatIndexTest, KLargerThanSizeAndEmpty) {
  auto idx = MakeIndex(3, Metric::kInnerProduct);
  std::vector<float> q = {1, 0, 0};
  auto r = idx->Search(q, {.k = 5});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  ASSERT_TRUE(idx->Add(5, std::vector<float>{2, 0, 0}).ok());
  ASSERT_TRUE(idx->Add(6, std::vector<float>{1, 0, 0}).ok());
  r = idx->Search(q, {.k = 5});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Ids(*r), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ((*r)[0].distance, -2.0f);
  auto batch = idx->SearchBatch({}, {});
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->empty());
  EXPECT_GT(idx->MemoryBytes(), 0u);
}

TEST(FlatIndexTest, AddBatch) {
  const size_t d = 5, n = 40;
  std::vector<float> data = RandomVectors(n, d, 16);
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = 1000 + i;
  auto idx = MakeIndex(d, Metric::kL2);
  ASSERT_TRUE(idx->AddBatch(ids, data).ok());
  EXPECT_EQ(idx->size(), n);
  auto r = idx->Search(std::span<const float>(data.data() + 7 * d, d), {.k = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].id, 1007u);
}

// ---- Serialization ----

std::vector<uint8_t> SerializedSample(ElementType e = ElementType::kFloat32, Metric m = Metric::kL2,
                                      size_t n = 30) {
  auto idx = MakeIndex(5, m, e);
  Fill(idx.get(), RandomVectors(n, 5, 17));
  if (e == ElementType::kInt8) {
    EXPECT_TRUE(idx->Train(RandomVectors(n, 5, 17)).ok());
  }
  auto blob = idx->Serialize();
  EXPECT_TRUE(blob.ok());
  return std::move(blob).value();
}

TEST(FlatIndexSerializeTest, RoundTripAllTypes) {
  const size_t d = 12, n = 1100;  // int8 crosses kAutoTrainSize
  std::vector<float> data = RandomVectors(n, d, 18);
  std::vector<float> queries = RandomVectors(10, d, 19);
  for (ElementType e : {ElementType::kFloat32, ElementType::kFloat16, ElementType::kInt8}) {
    for (Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
      auto idx = MakeIndex(d, m, e);
      Fill(idx.get(), data);
      ASSERT_TRUE(idx->Remove(1003).ok());  // exercise a moved slot
      auto blob = idx->Serialize();
      ASSERT_TRUE(blob.ok());
      auto back = FlatIndex::Deserialize(*blob);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      FlatIndex& b = **back;
      EXPECT_EQ(b.size(), idx->size());
      EXPECT_EQ(b.dim(), d);
      EXPECT_EQ(b.metric(), m);
      EXPECT_EQ(b.element_type(), e);
      EXPECT_EQ(b.trained(), idx->trained());
      EXPECT_FALSE(b.Contains(1003));
      auto r1 = idx->SearchBatch(queries, {.k = 10});
      auto r2 = b.SearchBatch(queries, {.k = 10});
      ASSERT_TRUE(r1.ok() && r2.ok());
      for (size_t i = 0; i < r1->size(); ++i) {
        ASSERT_EQ((*r1)[i].size(), (*r2)[i].size());
        for (size_t j = 0; j < (*r1)[i].size(); ++j) {
          EXPECT_EQ((*r1)[i][j].id, (*r2)[i][j].id);
          EXPECT_EQ((*r1)[i][j].distance, (*r2)[i][j].distance);
        }
      }
      // Serialization is deterministic.
      auto blob2 = b.Serialize();
      ASSERT_TRUE(blob2.ok());
      EXPECT_EQ(*blob, *blob2);
    }
  }
}

TEST(FlatIndexSerializeTest, EmptyIndexRoundTrip) {
  auto idx = MakeIndex(3, Metric::kCosine);
  auto blob = idx->Serialize();
  ASSERT_TRUE(blob.ok());
  auto back = FlatIndex::Deserialize(*blob);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)->size(), 0u);
}

std::vector<uint8_t> Rewrap(const std::vector<uint8_t>& blob,
                            void (*edit)(std::vector<uint8_t>* payload)) {
  return RewrapPayload(blob, IndexKind::kFlat, FlatIndex::kFormatVersion, edit);
}

TEST(FlatIndexSerializeTest, EmptyInput) {
  EXPECT_TRUE(FlatIndex::Deserialize({}).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, BadMagic) {
  std::vector<uint8_t> b = SerializedSample();
  b[1] ^= 0xFF;
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, NewerVersion) {
  std::vector<uint8_t> b = SerializedSample();
  b[4] = FlatIndex::kFormatVersion + 1;
  RefreshHeaderCrc(&b);
  EXPECT_EQ(FlatIndex::Deserialize(b).status().err(), ENOTSUP);
}

TEST(FlatIndexSerializeTest, ZeroVersion) {
  std::vector<uint8_t> b = SerializedSample();
  b[4] = 0;
  b[5] = 0;
  RefreshHeaderCrc(&b);
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, VersionChangedWithoutCrc) {
  std::vector<uint8_t> b = SerializedSample();
  b[4] = 2;
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, WrongKind) {
  std::vector<uint8_t> b = SerializedSample();
  b[6] = static_cast<uint8_t>(IndexKind::kHnsw);
  RefreshHeaderCrc(&b);
  EXPECT_EQ(FlatIndex::Deserialize(b).status().err(), EINVAL);
}

TEST(FlatIndexSerializeTest, TruncatedInHeader) {
  std::vector<uint8_t> b = SerializedSample();
  EXPECT_TRUE(FlatIndex::Deserialize(std::span(b.data(), 10)).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, TruncatedAfterHeader) {
  std::vector<uint8_t> b = SerializedSample();
  EXPECT_TRUE(FlatIndex::Deserialize(std::span(b.data(), kBlobHeaderSize)).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, TruncatedInIds) {
  std::vector<uint8_t> b = SerializedSample();
  EXPECT_TRUE(
      FlatIndex::Deserialize(std::span(b.data(), kBlobHeaderSize + 30)).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, TruncatedInVectors) {
  std::vector<uint8_t> b = SerializedSample();
  EXPECT_TRUE(FlatIndex::Deserialize(std::span(b.data(), b.size() - 3)).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, TruncatedAtEveryLength) {
  std::vector<uint8_t> b = SerializedSample(ElementType::kInt8, Metric::kL2, 4);
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_FALSE(FlatIndex::Deserialize(std::span(b.data(), n)).ok()) << n;
  }
}

TEST(FlatIndexSerializeTest, TruncatedWithConsistentHeader) {
  // A blob cut short whose header was rewritten to match: the payload crc
  // then catches it.
  std::vector<uint8_t> b = SerializedSample();
  b.resize(b.size() - 8);
  PutU64At(&b, 8, b.size() - kBlobHeaderSize);
  RefreshHeaderCrc(&b);
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, FlippedPayloadByte) {
  std::vector<uint8_t> b = SerializedSample();
  b[kBlobHeaderSize + 40] ^= 0x10;
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, FlippedLastByte) {
  std::vector<uint8_t> b = SerializedSample(ElementType::kFloat16);
  b.back() ^= 0x01;
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, FlippedHeaderCrc) {
  std::vector<uint8_t> b = SerializedSample();
  b[22] ^= 0x80;
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, WrongLengthField) {
  std::vector<uint8_t> b = SerializedSample();
  PutU64At(&b, 8, b.size() - kBlobHeaderSize + 1);
  RefreshHeaderCrc(&b);
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  PutU64At(&b, 8, ~0ull);
  RefreshHeaderCrc(&b);
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, TrailingGarbage) {
  std::vector<uint8_t> b = SerializedSample();
  b.push_back(0);
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedHugeCount) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { PutU64At(p, 12, 1ull << 40); });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { PutU64At(p, 12, 31); });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedSmallerCountLeavesTrailingBytes) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { PutU64At(p, 12, 29); });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedBadDim) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[0] = 0; });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[3] = 0x7F; });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedBadEnums) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[4] = 3; });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[5] = 9; });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[6] = 1; });  // f32 + quantizer
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[7] = 1; });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
  b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { (*p)[8] = 0; });  // rerank 0
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedDuplicateIds) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) { PutU64At(p, 28, 1000); });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedNaNVector) {
  auto b = Rewrap(SerializedSample(), [](std::vector<uint8_t>* p) {
    const size_t off = 20 + 30 * 8 + 4 * 7;  // header, ids, then vector floats
    (*p)[off + 0] = 0x00;
    (*p)[off + 1] = 0x00;
    PoisonF32At(p, off);
  });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, CraftedQuantizerGarbage) {
  auto b = Rewrap(SerializedSample(ElementType::kInt8),
                  [](std::vector<uint8_t>* p) { p->resize(p->size() - 5); });
  EXPECT_TRUE(FlatIndex::Deserialize(b).status().IsCorruption());
}

TEST(FlatIndexSerializeTest, EveryPayloadByteFlipDetected) {
  std::vector<uint8_t> b = SerializedSample(ElementType::kFloat16, Metric::kCosine, 3);
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] ^= 0x04;
    EXPECT_FALSE(FlatIndex::Deserialize(b).ok()) << i;
    b[i] ^= 0x04;
  }
  EXPECT_TRUE(FlatIndex::Deserialize(b).ok());
}

}  // namespace
}  // namespace vexfs::engine
