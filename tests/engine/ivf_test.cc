#include "vexfs/engine/ivf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "engine_test_util.h"
#include "vexfs/engine/dataset.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

IvfOptions Opts(size_t dim, Metric m) {
  IvfOptions o;
  o.dim = dim;
  o.metric = m;
  o.nlist = 32;
  o.default_nprobe = 4;
  o.seed = 3;
  o.num_threads = 2;
  return o;
}

std::unique_ptr<IvfIndex> Build(const IvfOptions& o, const std::vector<float>& data) {
  auto idx = std::move(IvfIndex::Create(o)).value();
  std::vector<uint64_t> ids(data.size() / o.dim);
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  Status s = idx->AddBatch(ids, data);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return idx;
}

constexpr size_t kN = 3000, kDim = 32;

TEST(IvfTest, IdsListsTheLiveIdsAndSurviveSerialization) {
  const auto data = Clustered(600, kDim, 5);
  auto idx = std::move(IvfIndex::Create(Opts(kDim, Metric::kL2))).value();
  ExpectIdsAfterChurnAndRoundTrip(idx.get(), data);
}

class IvfMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(IvfMetricTest, RecallFloorAtModerateNprobe) {
  // Embedding-like mixture (dataset.h): 64 overlapping clusters near a
  // 12-dimensional subspace, 32 cells, so cells split and mix clusters.
  SyntheticOptions so;
  so.dim = kDim;
  so.num_base = kN;
  so.num_queries = 50;
  so.num_clusters = 64;
  so.intrinsic_dim = 12;
  so.cluster_spread = 2.0f;
  so.seed = 11;
  auto ds = GenerateSynthetic(so);
  ASSERT_TRUE(ds.ok());
  const std::vector<float>& data = ds->base.data;
  const std::vector<float>& queries = ds->queries.data;
  auto idx = Build(Opts(kDim, GetParam()), data);
  ASSERT_TRUE(idx->trained());  // 3000 >= 32 * 32
  EXPECT_EQ(idx->size(), kN);
  const double r1 = BatchRecall(*idx, data, queries, 10, 1);
  const double r8 = BatchRecall(*idx, data, queries, 10, 8);
  const double all = BatchRecall(*idx, data, queries, 10, 32);
  RecordProperty("recall_nprobe1_x1000", int(r1 * 1000));
  RecordProperty("recall_nprobe8_x1000", int(r8 * 1000));
  EXPECT_GE(r8, 0.9);
  EXPECT_GE(r8, r1);
  EXPECT_DOUBLE_EQ(all, 1.0);  // every cell probed: exact
}

INSTANTIATE_TEST_SUITE_P(Metrics, IvfMetricTest, AllMetrics(), MetricName);

TEST(IvfTest, CreateRejectsBadOptions) {
  IvfOptions o = Opts(0, Metric::kL2);
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kL2);
  o.nlist = 0;
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kL2);
  o.default_nprobe = 0;
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kL2);
  o.kmeans_iters = 0;
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kL2);
  o.train_size = 5;  // < nlist
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, static_cast<Metric>(9));
  EXPECT_EQ(IvfIndex::Create(o).status().err(), EINVAL);
  auto idx = IvfIndex::Create(Opts(8, Metric::kL2));
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->options().train_size, 32u * 32u);
}

TEST(IvfTest, UntrainedSearchIsExactThenAutoTrains) {
  const auto data = Clustered(1100, kDim, 3);
  IvfOptions o = Opts(kDim, Metric::kL2);
  o.train_size = 1000;
  auto idx = std::move(IvfIndex::Create(o)).value();
  for (size_t i = 0; i < 999; ++i) {
    ASSERT_TRUE(idx->Add(i, std::span<const float>(&data[i * kDim], kDim)).ok());
  }
  EXPECT_FALSE(idx->trained());
  EXPECT_TRUE(idx->ListSizes().empty());
  SearchParams sp;
  sp.k = 1;
  auto r = idx->Search(std::span<const float>(&data[5 * kDim], kDim), sp);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, 5u);
  ASSERT_TRUE(idx->Add(999, std::span<const float>(&data[999 * kDim], kDim)).ok());
  EXPECT_TRUE(idx->trained());
  const auto sizes = idx->ListSizes();
  ASSERT_EQ(sizes.size(), 32u);
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), size_t{0}), 1000u);
  // Several cells are used (k-means did split the data).
  EXPECT_GT(std::count_if(sizes.begin(), sizes.end(), [](size_t s) { return s > 0; }), 16);
  for (size_t i = 1000; i < 1100; ++i) {
    ASSERT_TRUE(idx->Add(i, std::span<const float>(&data[i * kDim], kDim)).ok());
  }
  EXPECT_EQ(idx->size(), 1100u);
}

TEST(IvfTest, ExplicitTrainAndRetrain) {
  const auto data = Clustered(2000, kDim, 4);
  auto idx = std::move(IvfIndex::Create(Opts(kDim, Metric::kL2))).value();
  EXPECT_EQ(idx->Train(std::span<const float>(data.data(), 10 * kDim)).err(), EINVAL);  // < nlist
  EXPECT_EQ(idx->Train(std::span<const float>(data.data(), 7)).err(), EINVAL);
  ASSERT_TRUE(idx->Train(std::span<const float>(data.data(), 500 * kDim)).ok());
  EXPECT_TRUE(idx->trained());
  std::vector<uint64_t> ids(2000);
  std::iota(ids.begin(), ids.end(), uint64_t{0});
  ASSERT_TRUE(idx->AddBatch(ids, data).ok());
  const auto queries = Clustered(30, kDim, 5);
  const double before = BatchRecall(*idx, data, queries, 10, 8);
  ASSERT_TRUE(idx->Train(data).ok());  // retrain re-assigns everything
  EXPECT_EQ(idx->size(), 2000u);
  EXPECT_GE(BatchRecall(*idx, data, queries, 10, 8), 0.9);
  EXPECT_GE(before, 0.85);
}

TEST(IvfTest, DeterministicForASeed) {
  const auto data = Clustered(1500, kDim, 6);
  auto a = Build(Opts(kDim, Metric::kL2), data);
  auto b = Build(Opts(kDim, Metric::kL2), data);
  EXPECT_EQ(a->ListSizes(), b->ListSizes());
  EXPECT_EQ(*a->Serialize(), *b->Serialize());
}

TEST(IvfTest, UpdateRemoveAndFilter) {
  const auto data = Clustered(1500, kDim, 7);
  auto idx = Build(Opts(kDim, Metric::kL2), data);
  std::vector<float> far(kDim, 3.0f);
  ASSERT_TRUE(idx->Add(10, far).ok());  // moves id 10 to another cell
  EXPECT_EQ(idx->size(), 1500u);
  SearchParams sp;
  sp.k = 1;
  auto r = idx->Search(far, sp);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, 10u);
  EXPECT_EQ((*r)[0].distance, 0.0f);
  for (uint64_t id = 0; id < 1500; id += 3) ASSERT_TRUE(idx->Remove(id).ok());
  EXPECT_EQ(idx->Remove(0).err(), ENOENT);
  EXPECT_EQ(idx->size(), 1000u);
  const auto sizes = idx->ListSizes();
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), size_t{0}), 1000u);
  sp.k = 1000;
  sp.effort = 32;
  r = idx->Search(std::span<const float>(data.data(), kDim), sp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1000u);
  for (const Neighbor& nb : *r) EXPECT_NE(nb.id % 3, 0u);
  IdFilter odd = [](uint64_t id) { return id % 2 == 1; };
  sp.k = 10;
  sp.effort = 8;
  sp.filter = &odd;
  r = idx->Search(std::span<const float>(data.data(), kDim), sp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 10u);
  for (const Neighbor& nb : *r) EXPECT_EQ(nb.id % 2, 1u);
}

TEST(IvfTest, RangeSearchAllCellsIsExact) {
  const auto data = Clustered(1500, kDim, 8);
  auto idx = Build(Opts(kDim, Metric::kL2), data);
  const float* q = &data[3 * kDim];
  SearchParams sp;
  sp.effort = 32;
  auto r = idx->RangeSearch(std::span<const float>(q, kDim), 1.0f, sp);
  ASSERT_TRUE(r.ok());
  size_t want = 0;
  for (size_t i = 0; i < 1500; ++i)
    want += RefDistance(Metric::kL2, q, &data[i * kDim], kDim) <= 1.0;
  EXPECT_EQ(r->size(), want);
  for (const Neighbor& nb : *r) EXPECT_LE(nb.distance, 1.0f);
}

TEST(IvfTest, BadInputIsEinval) {
  auto idx = std::move(IvfIndex::Create(Opts(4, Metric::kCosine))).value();
  const float ok[4] = {1, 0, 0, 0}, zero[4] = {0, 0, 0, 0}, three[3] = {1, 2, 3};
  const float inf[4] = {std::numeric_limits<float>::infinity(), 0, 0, 0};
  EXPECT_EQ(idx->Add(1, three).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, inf).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, zero).err(), EINVAL);
  ASSERT_TRUE(idx->Add(1, ok).ok());
  SearchParams sp;
  sp.k = 0;
  EXPECT_EQ(idx->Search(ok, sp).status().err(), EINVAL);
  EXPECT_EQ(idx->RangeSearch(ok, std::numeric_limits<float>::quiet_NaN(), {}).status().err(),
            EINVAL);
  EXPECT_EQ(idx->SearchBatch(std::span<const float>(three, 3), {}).status().err(), EINVAL);
  const uint64_t ids[2] = {5, 6};
  const float rows[8] = {1, 1, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(idx->AddBatch(ids, rows).err(), EINVAL);
  EXPECT_FALSE(idx->Contains(5));
}

// ---- serialization -----------------------------------------------------------

class IvfSerializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = Clustered(300, 4, 9);
    IvfOptions o = Opts(4, Metric::kL2);
    o.nlist = 4;
    o.train_size = 100;
    idx_ = Build(o, data_);
    ASSERT_TRUE(idx_->trained());
    ASSERT_TRUE(idx_->Remove(42).ok());
    auto b = idx_->Serialize();
    ASSERT_TRUE(b.ok());
    blob_ = std::move(b).value();
    auto v = UnwrapBlob(blob_, IndexKind::kIvf, 1);
    ASSERT_TRUE(v.ok());
    payload_.assign(v->payload.begin(), v->payload.end());
  }
  // 32-byte header, 4*4 centroids, then lists.
  static constexpr size_t kCentOff = 32;
  static constexpr size_t kList0 = 32 + 64;
  void ExpectCorrupt(const std::vector<uint8_t>& payload) {
    ExpectCorruptPayload<IvfIndex>(IndexKind::kIvf, 1, payload);
  }
  uint32_t List0Count() const { return GetU32At(payload_, kList0); }
  std::vector<float> data_;
  std::unique_ptr<IvfIndex> idx_;
  std::vector<uint8_t> blob_, payload_;
};

TEST_F(IvfSerializeTest, RoundTripGivesIdenticalResults) {
  auto r = IvfIndex::Deserialize(blob_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->size(), 299u);
  EXPECT_EQ((*r)->ListSizes(), idx_->ListSizes());
  SearchParams sp;
  sp.k = 5;
  for (size_t q = 0; q < 20; ++q) {
    auto a = idx_->Search(std::span<const float>(&data_[q * 4], 4), sp);
    auto b = (*r)->Search(std::span<const float>(&data_[q * 4], 4), sp);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t j = 0; j < a->size(); ++j) EXPECT_EQ((*a)[j].id, (*b)[j].id);
  }
  EXPECT_EQ(*(*r)->Serialize(), blob_);
}
TEST_F(IvfSerializeTest, UntrainedRoundTrip) {
  auto idx = Build(Opts(4, Metric::kCosine), Clustered(50, 4, 10));
  ASSERT_FALSE(idx->trained());
  auto b = idx->Serialize();
  ASSERT_TRUE(b.ok());
  auto r = IvfIndex::Deserialize(*b);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE((*r)->trained());
  EXPECT_EQ((*r)->size(), 50u);
}
TEST_F(IvfSerializeTest, EmptyInput) {
  EXPECT_EQ(IvfIndex::Deserialize({}).status().err(), EUCLEAN);
}
TEST_F(IvfSerializeTest, BadMagic) {
  blob_[1] ^= 1;
  EXPECT_EQ(IvfIndex::Deserialize(blob_).status().err(), EUCLEAN);
}
TEST_F(IvfSerializeTest, NewerVersion) {
  EXPECT_EQ(IvfIndex::Deserialize(WrapBlob(IndexKind::kIvf, 2, payload_)).status().err(), ENOTSUP);
}
TEST_F(IvfSerializeTest, WrongKind) {
  EXPECT_EQ(IvfIndex::Deserialize(WrapBlob(IndexKind::kLsh, 1, payload_)).status().err(), EINVAL);
}
TEST_F(IvfSerializeTest, FlippedPayloadByte) {
  blob_[kBlobHeaderSize + 50] ^= 0x04;
  EXPECT_EQ(IvfIndex::Deserialize(blob_).status().err(), EUCLEAN);
}
TEST_F(IvfSerializeTest, TruncatedBlob) {
  for (size_t len : {size_t{0}, size_t{7}, kBlobHeaderSize, blob_.size() - 1}) {
    std::vector<uint8_t> b(blob_.begin(), blob_.begin() + len);
    EXPECT_EQ(IvfIndex::Deserialize(b).status().err(), EUCLEAN) << len;
  }
}
TEST_F(IvfSerializeTest, TruncatedPayloadRewrapped) {
  for (size_t len : {size_t{2}, size_t{31}, kCentOff + 10, kList0 + 2, payload_.size() - 1}) {
    ExpectCorrupt(std::vector<uint8_t>(payload_.begin(), payload_.begin() + len));
  }
}
TEST_F(IvfSerializeTest, TrailingBytes) {
  payload_.push_back(1);
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, BadDim) {
  for (int i = 0; i < 4; ++i) payload_[i] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, UnknownMetric) {
  payload_[4] = 3;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, BadTrainedFlag) {
  payload_[5] = 2;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, TrainedFlagCleared) {
  payload_[5] = 0;  // centroids are then read as lists
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, ReservedNotZero) {
  payload_[7] = 1;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, ZeroNlist) {
  for (int i = 0; i < 4; ++i) payload_[8 + i] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, HugeNlist) {
  payload_[8 + 3] = 0x7F;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, TrainSizeBelowNlist) {
  for (int i = 0; i < 4; ++i) payload_[16 + i] = 0;
  payload_[16] = 3;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, ZeroIters) {
  for (int i = 0; i < 4; ++i) payload_[20 + i] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, NaNCentroid) {
  PoisonF32At(&payload_, kCentOff);
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, HugeListCount) {
  payload_[kList0 + 3] = 0x40;
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, DuplicateId) {
  ASSERT_GE(List0Count(), 2u);
  for (int i = 0; i < 8; ++i) payload_[kList0 + 4 + 8 + i] = payload_[kList0 + 4 + i];
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, NaNVector) {
  const size_t off = kList0 + 4 + 8 * List0Count();
  PoisonF32At(&payload_, off);
  ExpectCorrupt(payload_);
}
TEST_F(IvfSerializeTest, EveryByteFlipDetected) {
  for (size_t i = 0; i < blob_.size(); i += 61) {
    std::vector<uint8_t> b = blob_;
    b[i] ^= 0x80;
    EXPECT_FALSE(IvfIndex::Deserialize(b).ok()) << i;
  }
}

}  // namespace
}  // namespace vexfs::engine
