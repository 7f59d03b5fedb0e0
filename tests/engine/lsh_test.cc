#include "vexfs/engine/lsh.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

#include "engine_test_util.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

LshOptions Opts(size_t dim, Metric m) {
  LshOptions o;
  o.dim = dim;
  o.metric = m;
  o.num_tables = 8;
  o.num_bits = 10;
  o.seed = 5;
  return o;
}

std::unique_ptr<LshIndex> Build(const LshOptions& o, const std::vector<float>& data) {
  auto idx = std::move(LshIndex::Create(o)).value();
  std::vector<uint64_t> ids(data.size() / o.dim);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
  EXPECT_TRUE(idx->AddBatch(ids, data).ok());
  return idx;
}

constexpr size_t kN = 2000, kDim = 32;

TEST(LshTest, IdsListsTheLiveIdsAndSurviveSerialization) {
  const auto data = Clustered(300, kDim, 5);
  auto idx = std::move(LshIndex::Create(Opts(kDim, Metric::kL2))).value();
  ExpectIdsAfterChurnAndRoundTrip(idx.get(), data);
}

class LshMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(LshMetricTest, RecallFloorAndMoreProbesHelp) {
  const auto data = Clustered(kN, kDim, 1);
  const auto queries = Clustered(50, kDim, 2);
  auto idx = Build(Opts(kDim, GetParam()), data);
  if (GetParam() == Metric::kL2) {
    ASSERT_TRUE(idx->Train(data).ok());
  }
  const double low = BatchRecall(*idx, data, queries, 10, 1);
  const double high = BatchRecall(*idx, data, queries, 10, 32);
  RecordProperty("recall_probes1_x1000", int(low * 1000));
  RecordProperty("recall_probes32_x1000", int(high * 1000));
  EXPECT_GE(high, low);
  EXPECT_GE(high, 0.9) << "probes=1 recall " << low;
}

INSTANTIATE_TEST_SUITE_P(Metrics, LshMetricTest, AllMetrics(), MetricName);

TEST(LshTest, CreateRejectsBadOptions) {
  LshOptions o = Opts(0, Metric::kCosine);
  EXPECT_EQ(LshIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kCosine);
  o.num_tables = 0;
  EXPECT_EQ(LshIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kCosine);
  o.num_bits = 33;
  EXPECT_EQ(LshIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, Metric::kCosine);
  o.default_probes = 0;
  EXPECT_EQ(LshIndex::Create(o).status().err(), EINVAL);
  o = Opts(8, static_cast<Metric>(9));
  EXPECT_EQ(LshIndex::Create(o).status().err(), EINVAL);
}

TEST(LshTest, BadInputIsEinval) {
  auto idx = std::move(LshIndex::Create(Opts(4, Metric::kCosine))).value();
  const float ok[4] = {1, 0, 0, 0}, zero[4] = {0, 0, 0, 0}, three[3] = {1, 2, 3};
  const float nan[4] = {std::numeric_limits<float>::quiet_NaN(), 0, 0, 0};
  EXPECT_EQ(idx->Add(1, three).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, nan).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, zero).err(), EINVAL);
  ASSERT_TRUE(idx->Add(1, ok).ok());
  SearchParams sp;
  sp.k = 0;
  EXPECT_EQ(idx->Search(ok, sp).status().err(), EINVAL);
  sp.k = 10001;
  EXPECT_EQ(idx->Search(ok, sp).status().err(), EINVAL);
  EXPECT_EQ(idx->RangeSearch(ok, std::numeric_limits<float>::quiet_NaN(), {}).status().err(),
            EINVAL);
  EXPECT_EQ(idx->SearchBatch(std::span<const float>(three, 3), {}).status().err(), EINVAL);
  EXPECT_EQ(idx->Remove(2).err(), ENOENT);
  // AddBatch is atomic.
  const uint64_t ids[2] = {5, 6};
  const float rows[8] = {1, 1, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(idx->AddBatch(ids, rows).err(), EINVAL);
  EXPECT_FALSE(idx->Contains(5));
}

TEST(LshTest, UpdateRemoveAndSlotReuse) {
  const auto data = Clustered(500, kDim, 3);
  auto idx = Build(Opts(kDim, Metric::kCosine), data);
  EXPECT_EQ(idx->size(), 500u);
  // Replace: the new vector is found, the old one is not.
  std::vector<float> v(kDim, 0.0f);
  v[0] = 1.0f;
  ASSERT_TRUE(idx->Add(10, v).ok());
  SearchParams sp;
  sp.k = 1;
  auto r = idx->Search(v, sp);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, 10u);
  EXPECT_NEAR((*r)[0].distance, 0.0f, 1e-6);
  EXPECT_EQ(idx->size(), 500u);
  // Remove/insert churn reuses slots.
  for (int round = 0; round < 3; ++round) {
    for (uint64_t id = 0; id < 100; ++id) ASSERT_TRUE(idx->Remove(id).ok());
    EXPECT_EQ(idx->size(), 400u);
    for (uint64_t id = 0; id < 100; ++id) {
      ASSERT_TRUE(
          idx->Add(1000 + round * 100 + id, std::span<const float>(&data[id * kDim], kDim)).ok());
    }
    for (uint64_t id = 0; id < 100; ++id) {
      ASSERT_TRUE(idx->Remove(1000 + round * 100 + id).ok());
      ASSERT_TRUE(idx->Add(id, std::span<const float>(&data[id * kDim], kDim)).ok());
    }
  }
  EXPECT_EQ(idx->slot_count(), 500u);
  EXPECT_EQ(idx->size(), 500u);
  sp.k = 500;
  sp.effort = 1024;
  r = idx->Search(std::span<const float>(data.data(), kDim), sp);
  ASSERT_TRUE(r.ok());
  for (const Neighbor& nb : *r) EXPECT_LT(nb.id, 500u);
}

TEST(LshTest, FilteredSearch) {
  const auto data = Clustered(kN, kDim, 4);
  auto idx = Build(Opts(kDim, Metric::kCosine), data);
  IdFilter even = [](uint64_t id) { return id % 2 == 0; };
  SearchParams sp;
  sp.k = 10;
  sp.effort = 32;
  sp.filter = &even;
  const auto queries = Clustered(20, kDim, 5);
  for (size_t q = 0; q < 20; ++q) {
    auto r = idx->Search(std::span<const float>(&queries[q * kDim], kDim), sp);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 10u);
    for (const Neighbor& nb : *r) EXPECT_EQ(nb.id % 2, 0u);
  }
}

TEST(LshTest, RangeSearchIsExactOnCandidates) {
  const auto data = Clustered(kN, kDim, 6);
  auto idx = Build(Opts(kDim, Metric::kCosine), data);
  const float* q = &data[11 * kDim];
  const float radius = 0.05f;
  SearchParams sp;
  sp.effort = 64;
  auto r = idx->RangeSearch(std::span<const float>(q, kDim), radius, sp);
  ASSERT_TRUE(r.ok());
  std::set<uint64_t> truth;
  for (size_t i = 0; i < kN; ++i) {
    if (RefDistance(Metric::kCosine, q, &data[i * kDim], kDim) <= radius) truth.insert(i);
  }
  ASSERT_FALSE(truth.empty());
  size_t hit = 0;
  for (const Neighbor& nb : *r) {
    EXPECT_LE(nb.distance, radius);
    EXPECT_NEAR(nb.distance, RefDistance(Metric::kCosine, q, &data[nb.id * kDim], kDim), 1e-5);
    hit += truth.count(nb.id);
  }
  EXPECT_EQ(hit, r->size());
  EXPECT_GE(double(hit), 0.9 * double(truth.size()));
}

TEST(LshTest, SearchBatchMatchesSearch) {
  const auto data = Clustered(1000, kDim, 7);
  LshOptions o = Opts(kDim, Metric::kInnerProduct);
  o.num_threads = 2;
  auto idx = Build(o, data);
  const auto queries = Clustered(30, kDim, 8);
  SearchParams sp;
  sp.k = 7;
  auto batch = idx->SearchBatch(queries, sp);
  ASSERT_TRUE(batch.ok());
  for (size_t q = 0; q < 30; ++q) {
    auto one = idx->Search(std::span<const float>(&queries[q * kDim], kDim), sp);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(one->size(), (*batch)[q].size());
    for (size_t j = 0; j < one->size(); ++j) EXPECT_EQ((*one)[j].id, (*batch)[q][j].id);
  }
}

TEST(LshTest, EmptyIndex) {
  auto idx = std::move(LshIndex::Create(Opts(4, Metric::kL2))).value();
  const float q[4] = {1, 2, 3, 4};
  auto r = idx->Search(q, SearchParams{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(idx->Train(std::span<const float>(q, 3)).err(), EINVAL);
}

// A caller's effort is a u32 (sq_effort): with 32 bits per key, up to 2^32
// probes per table. The work stays bounded by the data (the probe heap used
// to grow by two entries per probe), and asking for every bucket finds the
// exact neighbours.
TEST(LshTest, HugeEffortTakesEveryBucketInsteadOfProbing) {
  LshOptions o = Opts(kDim, Metric::kL2);
  o.num_bits = 32;
  o.num_tables = 4;
  const auto data = Clustered(500, kDim, 3);
  auto idx = Build(o, data);
  SearchParams sp;
  sp.k = 10;
  sp.effort = std::numeric_limits<uint32_t>::max();
  for (size_t qi = 0; qi < 5; ++qi) {
    const float* q = data.data() + qi * 97 * kDim;
    auto r = idx->Search(std::span<const float>(q, kDim), sp);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<uint64_t> got;
    for (const Neighbor& n : *r) got.push_back(n.id);
    EXPECT_EQ(got, ExactIds(Metric::kL2, data, kDim, q, sp.k)) << "query " << qi;
  }
}

// ---- serialization -----------------------------------------------------------

class LshSerializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = Clustered(300, 8, 9);
    idx_ = Build(Opts(8, Metric::kL2), data_);
    ASSERT_TRUE(idx_->Train(data_).ok());
    ASSERT_TRUE(idx_->Remove(17).ok());
    auto b = idx_->Serialize();
    ASSERT_TRUE(b.ok());
    blob_ = std::move(b).value();
    auto v = UnwrapBlob(blob_, IndexKind::kLsh, 1);
    ASSERT_TRUE(v.ok());
    payload_.assign(v->payload.begin(), v->payload.end());
  }
  // Payload offsets: 28-byte header, center (8 floats), u32 n, ids, live, vectors.
  static constexpr size_t kCenterOff = 28;
  static constexpr size_t kCountOff = 28 + 32;
  static constexpr size_t kIdsOff = kCountOff + 4;
  static constexpr size_t kLiveOff = kIdsOff + 300 * 8;
  static constexpr size_t kVecOff = kLiveOff + 300;
  void ExpectCorrupt(const std::vector<uint8_t>& payload) {
    ExpectCorruptPayload<LshIndex>(IndexKind::kLsh, 1, payload);
  }
  std::vector<float> data_;
  std::unique_ptr<LshIndex> idx_;
  std::vector<uint8_t> blob_, payload_;
};

TEST_F(LshSerializeTest, RoundTripGivesIdenticalResults) {
  ASSERT_EQ(payload_.size(), kVecOff + 300 * 8 * 4);
  auto r = LshIndex::Deserialize(blob_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->size(), 299u);
  EXPECT_FALSE((*r)->Contains(17));
  SearchParams sp;
  sp.k = 5;
  for (size_t q = 0; q < 20; ++q) {
    auto a = idx_->Search(std::span<const float>(&data_[q * 8], 8), sp);
    auto b = (*r)->Search(std::span<const float>(&data_[q * 8], 8), sp);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t j = 0; j < a->size(); ++j) EXPECT_EQ((*a)[j].id, (*b)[j].id);
  }
  auto again = (*r)->Serialize();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob_);
  // The freed slot is reused after loading.
  ASSERT_TRUE((*r)->Add(5000, std::span<const float>(data_.data(), 8)).ok());
  EXPECT_EQ((*r)->slot_count(), 300u);
}
TEST_F(LshSerializeTest, EmptyInput) {
  EXPECT_EQ(LshIndex::Deserialize({}).status().err(), EUCLEAN);
}
TEST_F(LshSerializeTest, BadMagic) {
  blob_[0] ^= 1;
  EXPECT_EQ(LshIndex::Deserialize(blob_).status().err(), EUCLEAN);
}
TEST_F(LshSerializeTest, NewerVersion) {
  EXPECT_EQ(LshIndex::Deserialize(WrapBlob(IndexKind::kLsh, 2, payload_)).status().err(), ENOTSUP);
}
TEST_F(LshSerializeTest, WrongKind) {
  EXPECT_EQ(LshIndex::Deserialize(WrapBlob(IndexKind::kIvf, 1, payload_)).status().err(), EINVAL);
}
TEST_F(LshSerializeTest, FlippedPayloadByte) {
  blob_[kBlobHeaderSize + 100] ^= 0x10;
  EXPECT_EQ(LshIndex::Deserialize(blob_).status().err(), EUCLEAN);
}
TEST_F(LshSerializeTest, TruncatedBlob) {
  for (size_t len : {size_t{0}, size_t{10}, kBlobHeaderSize, blob_.size() - 1}) {
    std::vector<uint8_t> b(blob_.begin(), blob_.begin() + len);
    EXPECT_EQ(LshIndex::Deserialize(b).status().err(), EUCLEAN) << len;
  }
}
TEST_F(LshSerializeTest, TruncatedPayloadRewrapped) {
  for (size_t len : {size_t{3}, size_t{27}, kCountOff + 2, kLiveOff, payload_.size() - 4}) {
    ExpectCorrupt(std::vector<uint8_t>(payload_.begin(), payload_.begin() + len));
  }
}
TEST_F(LshSerializeTest, TrailingBytes) {
  payload_.push_back(0);
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, BadDim) {
  payload_[0] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, UnknownMetric) {
  payload_[4] = 7;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, CenterFlagOnCosine) {
  payload_[4] = static_cast<uint8_t>(Metric::kCosine);
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, ReservedNotZero) {
  payload_[6] = 1;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, ZeroTables) {
  for (int i = 0; i < 4; ++i) payload_[8 + i] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, TooManyBits) {
  payload_[12] = 33;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, ZeroProbes) {
  for (int i = 0; i < 4; ++i) payload_[16 + i] = 0;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, NaNCenter) {
  PoisonF32At(&payload_, kCenterOff);
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, HugeCount) {
  payload_[kCountOff + 3] = 0x7F;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, BadLiveFlag) {
  payload_[kLiveOff + 3] = 2;
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, DuplicateLiveId) {
  for (int i = 0; i < 8; ++i) payload_[kIdsOff + 8 + i] = payload_[kIdsOff + i];
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, NaNVector) {
  PoisonF32At(&payload_, kVecOff);
  ExpectCorrupt(payload_);
}
TEST_F(LshSerializeTest, EveryPayloadByteFlipDetectedByCrc) {
  for (size_t i = 0; i < blob_.size(); i += 97) {
    std::vector<uint8_t> b = blob_;
    b[i] ^= 0x01;
    EXPECT_FALSE(LshIndex::Deserialize(b).ok()) << i;
  }
}

}  // namespace
}  // namespace vexfs::engine
