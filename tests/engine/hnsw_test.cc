#include "vexfs/engine/hnsw.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine_test_util.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

HnswParams Params(size_t dim, Metric m) {
  HnswParams p;
  p.dim = dim;
  p.metric = m;
  p.M = 16;
  p.ef_construction = 100;
  p.ef_search = 64;
  p.seed = 7;
  return p;
}

std::unique_ptr<HnswIndex> Build(const HnswParams& p, const std::vector<float>& data) {
  auto r = HnswIndex::Create(p);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::unique_ptr<HnswIndex> idx = std::move(r).value();
  const size_t n = data.size() / p.dim;
  for (size_t i = 0; i < n; ++i) {
    Status s = idx->Add(i, std::span<const float>(&data[i * p.dim], p.dim));
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return idx;
}

double MeanRecall(const HnswIndex& idx, const std::vector<float>& data,
                  const std::vector<float>& queries, const std::vector<uint64_t>& live,
                  size_t k, size_t ef, const IdFilter* filter = nullptr) {
  const size_t dim = idx.dim();
  const size_t nq = queries.size() / dim;
  std::vector<uint64_t> cand = live;
  if (filter != nullptr) std::erase_if(cand, [&](uint64_t id) { return !(*filter)(id); });
  double sum = 0;
  for (size_t i = 0; i < nq; ++i) {
    SearchParams sp;
    sp.k = k;
    sp.effort = ef;
    sp.filter = filter;
    auto r = idx.Search(std::span<const float>(&queries[i * dim], dim), sp);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return 0;
    for (size_t j = 1; j < r->size(); ++j) EXPECT_LE((*r)[j - 1].distance, (*r)[j].distance);
    sum += Overlap(*r, ExactIds<float>(idx.metric(), data, dim, &queries[i * dim], k, cand));
  }
  return sum / double(nq);
}

constexpr size_t kN = 2000;
constexpr size_t kDim = 32;

class HnswMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(HnswMetricTest, RecallAt10AboveFloor) {
  const auto data = Clustered(kN, kDim, 1);
  const auto queries = Clustered(100, kDim, 2);
  auto idx = Build(Params(kDim, GetParam()), data);
  EXPECT_EQ(idx->size(), kN);
  const double recall = MeanRecall(*idx, data, queries, Iota(kN), 10, 100);
  EXPECT_GE(recall, 0.95);
}

INSTANTIATE_TEST_SUITE_P(Metrics, HnswMetricTest, AllMetrics(), MetricName);

TEST(HnswTest, Float16StorageRecall) {
  const auto data = Clustered(kN, kDim, 1);
  const auto queries = Clustered(50, kDim, 2);
  HnswParams p = Params(kDim, Metric::kL2);
  p.element_type = ElementType::kFloat16;
  auto idx = Build(p, data);
  EXPECT_GE(MeanRecall(*idx, data, queries, Iota(kN), 10, 100), 0.9);
  HnswParams p32 = Params(kDim, Metric::kL2);
  auto idx32 = Build(p32, data);
  EXPECT_LT(idx->MemoryBytes(), idx32->MemoryBytes());
  // float16 payloads round-trip too.
  auto blob = idx->Serialize();
  ASSERT_TRUE(blob.ok());
  auto copy = HnswIndex::Deserialize(*blob);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  SearchParams sp;
  auto a = idx->Search(std::span<const float>(queries.data(), kDim), sp);
  auto b = (*copy)->Search(std::span<const float>(queries.data(), kDim), sp);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].id, (*b)[i].id);
}

// A float16 index stores only vectors that fit float16 (|x| <= 65504)
// and says so; a query stays float32, so any finite one is searched.
TEST(HnswTest, Float16RejectsOverflowingVectorsButNotQueries) {
  HnswParams p = Params(4, Metric::kL2);
  p.element_type = ElementType::kFloat16;
  auto r = HnswIndex::Create(p);
  ASSERT_TRUE(r.ok());
  auto& idx = *r;
  const std::vector<float> fits = {65504.0f, 0, 0, 0}, near = {1, 0, 0, 0};
  ASSERT_TRUE(idx->Add(1, fits).ok());
  ASSERT_TRUE(idx->Add(2, near).ok());
  const std::vector<float> over = {0, 0, 65520.0f, 0}, negative = {0, 0, 0, -1e30f};
  Status s = idx->Add(3, over);
  EXPECT_EQ(s.err(), EINVAL) << s.ToString();
  const std::vector<uint64_t> seven = {7};
  EXPECT_EQ(idx->AddBatch(seven, negative, 1).err(), EINVAL);
  EXPECT_EQ(idx->size(), 2u);
  EXPECT_FALSE(idx->Contains(3));
  SearchParams sp;
  sp.k = 1;
  auto far = idx->Search(std::vector<float>{1e6f, 0, 0, 0}, sp);
  ASSERT_TRUE(far.ok()) << far.status().ToString();
  ASSERT_EQ(far->size(), 1u);
  EXPECT_EQ((*far)[0].id, 1u);
  auto close = idx->Search(std::vector<float>{-1e6f, 0, 0, 0}, sp);
  ASSERT_TRUE(close.ok()) << close.status().ToString();
  EXPECT_EQ((*close)[0].id, 2u);
}

TEST(HnswTest, ConcurrentSearchesMatchSequential) {
  const auto data = Clustered(kN, kDim, 23);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const auto queries = Clustered(40, kDim, 24);
  SearchParams sp;
  std::vector<std::vector<Neighbor>> expect;
  for (size_t q = 0; q < 40; ++q) {
    expect.push_back(idx->Search(std::span<const float>(&queries[q * kDim], kDim), sp).value());
  }
  std::atomic<int> mismatches{0};
  auto worker = [&] {
    for (int rep = 0; rep < 3; ++rep) {
      for (size_t q = 0; q < 40; ++q) {
        auto r = idx->Search(std::span<const float>(&queries[q * kDim], kDim), sp);
        if (!r.ok() || r->size() != expect[q].size()) {
          ++mismatches;
          continue;
        }
        for (size_t i = 0; i < r->size(); ++i) mismatches += ((*r)[i].id != expect[q][i].id);
      }
    }
  };
  std::thread t1(worker), t2(worker);
  t1.join();
  t2.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(HnswTest, ParallelSearchBatchMatchesSearchBatch) {
  const auto data = Clustered(kN, kDim, 23);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const auto queries = Clustered(37, kDim, 25);
  SearchParams sp;
  sp.effort = 32;
  auto one = idx->SearchBatch(queries, sp);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 37u);
  for (size_t threads : {0, 1, 2, 3, 37, 100}) {
    auto many = ParallelSearchBatch(*idx, queries, sp, threads);
    ASSERT_TRUE(many.ok()) << threads;
    ASSERT_EQ(many->size(), one->size()) << threads;
    for (size_t q = 0; q < one->size(); ++q) {
      ASSERT_EQ((*many)[q].size(), (*one)[q].size());
      for (size_t i = 0; i < (*one)[q].size(); ++i) {
        EXPECT_EQ((*many)[q][i].id, (*one)[q][i].id) << threads << " " << q;
        EXPECT_EQ((*many)[q][i].distance, (*one)[q][i].distance);
      }
    }
  }
  EXPECT_EQ(ParallelSearchBatch(*idx, std::span<const float>(queries.data(), kDim + 1), sp, 2).status().err(),
            EINVAL);
  SearchParams bad;
  bad.k = 0;
  EXPECT_EQ(ParallelSearchBatch(*idx, queries, bad, 3).status().err(), EINVAL);
}

TEST(HnswTest, EmptyAndSingle) {
  auto idx = std::move(HnswIndex::Create(Params(4, Metric::kL2))).value();
  const float v[4] = {1, 2, 3, 4};
  SearchParams sp;
  auto r = idx->Search(v, sp);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  ASSERT_TRUE(idx->Add(42, v).ok());
  r = idx->Search(v, sp);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, 42u);
  EXPECT_FLOAT_EQ((*r)[0].distance, 0.0f);
  ASSERT_TRUE(idx->Remove(42).ok());
  r = idx->Search(v, sp);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(idx->size(), 0u);
}

TEST(HnswTest, UpdateReplacesVector) {
  auto data = Clustered(kN, kDim, 3);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  std::vector<float> far(kDim, 25.0f);
  for (uint64_t id : {uint64_t{5}, uint64_t{77}, uint64_t{1999}}) {
    far[0] = float(id);
    ASSERT_TRUE(idx->Add(id, far).ok());
    std::copy(far.begin(), far.end(), data.begin() + id * kDim);
    SearchParams sp;
    sp.k = 1;
    auto r = idx->Search(far, sp);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].id, id);
    EXPECT_FLOAT_EQ((*r)[0].distance, 0.0f);
  }
  EXPECT_EQ(idx->size(), kN);
  EXPECT_EQ(idx->slot_count(), kN);
  const auto queries = Clustered(50, kDim, 4);
  EXPECT_GE(MeanRecall(*idx, data, queries, Iota(kN), 10, 100), 0.95);
}

TEST(HnswTest, IdsListsTheLiveIdsAndSurviveSerialization) {
  const auto data = Clustered(300, 16, 5);
  auto idx = std::move(HnswIndex::Create(Params(16, Metric::kL2))).value();
  ExpectIdsAfterChurnAndRoundTrip(idx.get(), data);
  // int8 before the quantizer trains: the ids wait in the pending buffer.
  HnswParams p = Params(16, Metric::kL2);
  p.element_type = ElementType::kInt8;
  p.int8_train_size = 1000;
  auto q = std::move(HnswIndex::Create(p)).value();
  EXPECT_EQ(IdSet(*q), ChurnIds(q.get(), data));
}

TEST(HnswTest, RemovedIdsNeverReturned) {
  const auto data = Clustered(kN, kDim, 5);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  std::vector<uint64_t> live;
  for (uint64_t i = 0; i < kN; ++i) {
    if (i % 3 == 0) {
      ASSERT_TRUE(idx->Remove(i).ok());
      EXPECT_FALSE(idx->Contains(i));
    } else {
      live.push_back(i);
    }
  }
  EXPECT_EQ(idx->Remove(0).err(), ENOENT);
  EXPECT_EQ(idx->size(), live.size());
  const auto queries = Clustered(50, kDim, 6);
  for (size_t q = 0; q < 50; ++q) {
    SearchParams sp;
    sp.k = 20;
    auto r = idx->Search(std::span<const float>(&queries[q * kDim], kDim), sp);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 20u);
    for (const Neighbor& n : *r) EXPECT_NE(n.id % 3, 0u) << n.id;
  }
  EXPECT_GE(MeanRecall(*idx, data, queries, live, 10, 100), 0.95);
}

TEST(HnswTest, DeleteReinsertChurnIsBounded) {
  const size_t n = 1500;
  std::vector<float> data = Clustered(n + 5 * 150, kDim, 7);  // row per id ever used
  auto idx = Build(Params(kDim, Metric::kL2), std::vector<float>(data.begin(), data.begin() + n * kDim));
  std::vector<uint64_t> live = Iota(n);
  std::mt19937_64 rng(9);
  uint64_t next_id = n;
  size_t mem_after_first = 0;
  for (int round = 0; round < 5; ++round) {
    std::shuffle(live.begin(), live.end(), rng);
    for (size_t i = 0; i < 150; ++i) {
      ASSERT_TRUE(idx->Remove(live.back()).ok());
      live.pop_back();
    }
    for (size_t i = 0; i < 150; ++i) {
      const uint64_t id = next_id++;
      ASSERT_TRUE(idx->Add(id, std::span<const float>(&data[id * kDim], kDim)).ok());
      live.push_back(id);
    }
    EXPECT_EQ(idx->slot_count(), n);
    EXPECT_EQ(idx->size(), n);
    if (round == 0) mem_after_first = idx->MemoryBytes();
    EXPECT_LE(idx->MemoryBytes(), mem_after_first + 4096);
  }
  std::sort(live.begin(), live.end());
  const auto queries = Clustered(50, kDim, 8);
  EXPECT_GE(MeanRecall(*idx, data, queries, live, 10, 100), 0.93);
}

TEST(HnswTest, FilteredSearchHalfSelective) {
  const auto data = Clustered(kN, kDim, 11);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const IdFilter even = [](uint64_t id) { return id % 2 == 0; };
  const auto queries = Clustered(50, kDim, 12);
  EXPECT_GE(MeanRecall(*idx, data, queries, Iota(kN), 10, 100, &even), 0.95);
  SearchParams sp;
  sp.filter = &even;
  auto r = idx->Search(std::span<const float>(queries.data(), kDim), sp);
  ASSERT_TRUE(r.ok());
  for (const Neighbor& n : *r) EXPECT_EQ(n.id % 2, 0u);
}

TEST(HnswTest, FilteredSearchFivePercent) {
  const auto data = Clustered(kN, kDim, 13);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const IdFilter f = [](uint64_t id) { return id % 20 == 3; };
  const auto queries = Clustered(50, kDim, 14);
  EXPECT_GE(MeanRecall(*idx, data, queries, Iota(kN), 10, 40, &f), 0.9);
}

TEST(HnswTest, FilteredSearchOnePercent) {
  const auto data = Clustered(kN, kDim, 15);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const IdFilter f = [](uint64_t id) { return id % 100 == 17; };
  const auto queries = Clustered(50, kDim, 16);
  EXPECT_GE(MeanRecall(*idx, data, queries, Iota(kN), 10, 64, &f), 0.95);
  SearchParams sp;
  sp.k = 50;  // more than match
  sp.filter = &f;
  auto r = idx->Search(std::span<const float>(queries.data(), kDim), sp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), kN / 100);
  for (const Neighbor& n : *r) EXPECT_EQ(n.id % 100, 17u);
}

TEST(HnswTest, RangeSearchMatchesBruteForce) {
  const auto data = Clustered(kN, kDim, 17);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  const auto queries = Clustered(20, kDim, 18);
  double sum = 0;
  for (size_t q = 0; q < 20; ++q) {
    const float* qv = &queries[q * kDim];
    std::vector<float> d(kN);
    for (size_t i = 0; i < kN; ++i) d[i] = RefDistance(Metric::kL2, qv, &data[i * kDim], kDim);
    std::vector<float> sorted = d;
    std::sort(sorted.begin(), sorted.end());
    const float radius = sorted[150 + q * 10];  // a few hundred results: forces widening
    std::vector<uint64_t> truth;
    for (size_t i = 0; i < kN; ++i) {
      if (d[i] <= radius) truth.push_back(i);
    }
    SearchParams sp;
    sp.effort = 32;
    auto r = idx->RangeSearch(std::span<const float>(qv, kDim), radius, sp);
    ASSERT_TRUE(r.ok());
    for (const Neighbor& n : *r) EXPECT_LE(n.distance, radius);
    for (size_t j = 1; j < r->size(); ++j) EXPECT_LE((*r)[j - 1].distance, (*r)[j].distance);
    sum += Overlap(*r, truth);
  }
  EXPECT_GE(sum / 20, 0.95);
}

TEST(HnswTest, AddBatchTwoThreads) {
  const auto data = Clustered(3000, kDim, 19);
  auto idx = std::move(HnswIndex::Create(Params(kDim, Metric::kL2))).value();
  const auto ids = Iota(3000);
  ASSERT_TRUE(idx->AddBatch(ids, data, 2).ok());
  EXPECT_EQ(idx->size(), 3000u);
  const auto queries = Clustered(50, kDim, 20);
  EXPECT_GE(MeanRecall(*idx, data, queries, ids, 10, 100), 0.95);
  // A second batch mixing updates and new ids, with a repeated id.
  std::vector<uint64_t> ids2 = {10, 3000, 3001, 10};
  std::vector<float> v2(4 * kDim, 0.5f);
  v2[3 * kDim] = 9.0f;  // the last vector for id 10 wins
  ASSERT_TRUE(idx->AddBatch(ids2, v2, 2).ok());
  EXPECT_EQ(idx->size(), 3002u);
  SearchParams sp;
  sp.k = 1;
  auto r = idx->Search(std::span<const float>(&v2[3 * kDim], kDim), sp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].id, 10u);
}

// Live slots that a level-0 traversal from the entry point never reaches,
// read from the serialized form (docs/hnsw_format.md), so the check sees
// exactly the graph that searches walk.
size_t UnreachableLive(const HnswIndex& idx) {
  auto blob = idx.Serialize();
  EXPECT_TRUE(blob.ok());
  if (!blob.ok()) return SIZE_MAX;
  auto view = UnwrapBlob(*blob, IndexKind::kHnsw, 2);
  EXPECT_TRUE(view.ok());
  if (!view.ok()) return SIZE_MAX;
  const std::span<const uint8_t> p = view->payload;
  auto u32 = [&](size_t off) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(p[off + i]) << (8 * i);
    return v;
  };
  const size_t dim = u32(0);
  const size_t elem = p[5] == 0 ? 4 : p[5] == 1 ? 2 : 1;
  const size_t n = u32(28);
  const uint32_t entry = u32(32);
  const size_t deleted_off = 40 + 9 * n;
  size_t off = 40 + 10 * n + n * dim * elem;
  std::vector<std::vector<uint32_t>> links(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t cnt = u32(off);
    for (uint32_t j = 0; j < cnt; ++j) links[i].push_back(u32(off + 4 + 4 * j));
    off += 4 + 4 * size_t{cnt};
  }
  std::vector<uint8_t> seen(n, 0);
  std::vector<uint32_t> todo;
  if (n > 0) {
    seen[entry] = 1;
    todo.push_back(entry);
  }
  while (!todo.empty()) {
    const uint32_t v = todo.back();
    todo.pop_back();
    for (uint32_t w : links[v]) {
      if (!seen[w]) {
        seen[w] = 1;
        todo.push_back(w);
      }
    }
  }
  size_t lost = 0;
  for (size_t i = 0; i < n; ++i) lost += (!seen[i] && p[deleted_off + i] == 0) ? 1 : 0;
  return lost;
}

// Parallel construction must not lose nodes: every live node stays
// reachable from the entry point on level 0, and a search whose beam
// covers the whole index is exact. Several builds, since the interleaving
// differs from run to run.
TEST(HnswTest, AddBatchParallelKeepsEveryNodeReachable) {
  constexpr size_t kRows = 5000, kD = 16;
  const auto data = Clustered(kRows, kD, 23, 64);
  const auto queries = Clustered(20, kD, 24, 64);
  const auto ids = Iota(kRows);
  for (int round = 0; round < 4; ++round) {
    HnswParams p = Params(kD, Metric::kL2);
    // Sparse enough that a lost back-link is not masked by redundancy, dense
    // enough that a single-threaded build keeps every node (at M <= 8 the
    // heuristic's pruning itself strands ~1 node of 5,000, threads or not).
    p.M = 12;
    p.ef_construction = 48;
    p.seed = 100 + round;
    if (round % 2 == 1) p.element_type = ElementType::kFloat16;
    auto idx = std::move(HnswIndex::Create(p)).value();
    ASSERT_TRUE(idx->AddBatch(ids, data, 2).ok());
    ASSERT_EQ(idx->size(), kRows);
    EXPECT_EQ(UnreachableLive(*idx), 0u) << "round " << round;
    if (round == 0) {
      EXPECT_EQ(MeanRecall(*idx, data, queries, ids, 10, kRows), 1.0);
    }
  }
}

TEST(HnswTest, AddBatchRejectsBadRowAtomically) {
  auto idx = std::move(HnswIndex::Create(Params(4, Metric::kL2))).value();
  std::vector<uint64_t> ids = {1, 2, 3};
  std::vector<float> v(12, 1.0f);
  v[9] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(idx->AddBatch(ids, v, 2).err(), EINVAL);
  EXPECT_EQ(idx->size(), 0u);
  EXPECT_EQ(idx->AddBatch(ids, std::span<const float>(v.data(), 11), 1).err(), EINVAL);
}

TEST(HnswTest, BadInputIsEinval) {
  EXPECT_EQ(HnswIndex::Create(Params(0, Metric::kL2)).status().err(), EINVAL);
  HnswParams bad_m = Params(4, Metric::kL2);
  bad_m.M = 1;
  EXPECT_EQ(HnswIndex::Create(bad_m).status().err(), EINVAL);
  HnswParams i8 = Params(4, Metric::kL2);
  i8.element_type = ElementType::kInt8;
  i8.int8_train_size = 0;
  EXPECT_EQ(HnswIndex::Create(i8).status().err(), EINVAL);
  HnswParams huge_ef = Params(4, Metric::kL2);
  huge_ef.ef_construction = (size_t{1} << 20) + 1;  // the insert beam is allocated at ef
  EXPECT_EQ(HnswIndex::Create(huge_ef).status().err(), EINVAL);
  huge_ef.ef_construction = 100;
  huge_ef.ef_search = (size_t{1} << 20) + 1;
  EXPECT_EQ(HnswIndex::Create(huge_ef).status().err(), EINVAL);

  auto idx = std::move(HnswIndex::Create(Params(4, Metric::kCosine))).value();
  const float ok[4] = {1, 0, 0, 0};
  const float three[3] = {1, 0, 0};
  const float nan[4] = {1, std::numeric_limits<float>::quiet_NaN(), 0, 0};
  const float inf[4] = {1, std::numeric_limits<float>::infinity(), 0, 0};
  const float zero[4] = {0, 0, 0, 0};
  EXPECT_EQ(idx->Add(1, three).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, nan).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, inf).err(), EINVAL);
  EXPECT_EQ(idx->Add(1, zero).err(), EINVAL);
  EXPECT_EQ(idx->size(), 0u);
  ASSERT_TRUE(idx->Add(1, ok).ok());
  SearchParams sp;
  EXPECT_EQ(idx->Search(three, sp).status().err(), EINVAL);
  EXPECT_EQ(idx->Search(nan, sp).status().err(), EINVAL);
  EXPECT_EQ(idx->Search(inf, sp).status().err(), EINVAL);
  sp.k = 0;
  EXPECT_EQ(idx->Search(ok, sp).status().err(), EINVAL);
  sp.k = 10001;
  EXPECT_EQ(idx->Search(ok, sp).status().err(), EINVAL);
  sp.k = 10000;
  EXPECT_TRUE(idx->Search(ok, sp).ok());
  EXPECT_EQ(idx->RangeSearch(ok, std::numeric_limits<float>::quiet_NaN(), SearchParams{}).status().err(),
            EINVAL);
  EXPECT_EQ(idx->RangeSearch(three, 1.0f, SearchParams{}).status().err(), EINVAL);
}

TEST(HnswTest, MemoryBytesIsHonest) {
  const auto data = Clustered(kN, kDim, 21);
  auto idx = Build(Params(kDim, Metric::kL2), data);
  // Vector, count and 32 three-byte level-0 links, label.
  const size_t floor = kN * (kDim * 4 + 4 + 32 * 3 + 8);
  EXPECT_GE(idx->MemoryBytes(), floor);
  EXPECT_LE(idx->MemoryBytes(), 3 * floor);
}

// ---- serialization -----------------------------------------------------------

class HnswSerializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = Clustered(500, 16, 31);
    idx_ = Build(Params(16, Metric::kL2), data_);
    for (uint64_t id : {uint64_t{3}, uint64_t{99}, uint64_t{250}}) ASSERT_TRUE(idx_->Remove(id).ok());
    auto b = idx_->Serialize();
    ASSERT_TRUE(b.ok());
    blob_ = std::move(b).value();
    auto v = UnwrapBlob(blob_, IndexKind::kHnsw, 1);
    ASSERT_TRUE(v.ok());
    payload_.assign(v->payload.begin(), v->payload.end());
  }
  // Offsets inside the payload (see hnsw_io.cc).
  size_t LabelsOff() const { return 40; }
  size_t Level0Off() const { return 40 + 500 * (8 + 1 + 1) + 500 * 16 * 4; }
  void ExpectCorrupt(const std::vector<uint8_t>& payload) {
    ExpectCorruptPayload<HnswIndex>(IndexKind::kHnsw, 1, payload);
  }

  std::vector<float> data_;
  std::unique_ptr<HnswIndex> idx_;
  std::vector<uint8_t> blob_;
  std::vector<uint8_t> payload_;
};

TEST_F(HnswSerializeTest, RoundTripGivesIdenticalResults) {
  auto r = HnswIndex::Deserialize(blob_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& copy = *r;
  EXPECT_EQ(copy->size(), idx_->size());
  EXPECT_EQ(copy->slot_count(), idx_->slot_count());
  EXPECT_FALSE(copy->Contains(99));
  EXPECT_TRUE(copy->Contains(100));
  const auto queries = Clustered(30, 16, 32);
  for (size_t q = 0; q < 30; ++q) {
    SearchParams sp;
    sp.k = 10;
    std::span<const float> qv(&queries[q * 16], 16);
    auto a = idx_->Search(qv, sp);
    auto b = copy->Search(qv, sp);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].id, (*b)[i].id);
      EXPECT_EQ((*a)[i].distance, (*b)[i].distance);
    }
  }
  auto again = copy->Serialize();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob_);
  // The loaded index keeps working: reuse of a deleted slot.
  ASSERT_TRUE(copy->Add(1000, std::span<const float>(&data_[0], 16)).ok());
  EXPECT_EQ(copy->slot_count(), 500u);
}

TEST_F(HnswSerializeTest, CorruptBadMagic) {
  std::vector<uint8_t> b = blob_;
  b[0] ^= 0xFF;
  EXPECT_FALSE(HnswIndex::Deserialize(b).ok());
}

TEST_F(HnswSerializeTest, CorruptTruncatedAtSeveralOffsets) {
  for (size_t len : {size_t{0}, size_t{10}, size_t{24}, size_t{60}, blob_.size() / 2,
                     blob_.size() - 1}) {
    std::vector<uint8_t> b(blob_.begin(), blob_.begin() + len);
    auto r = HnswIndex::Deserialize(b);
    EXPECT_FALSE(r.ok()) << "len " << len;
  }
}

TEST_F(HnswSerializeTest, CorruptTruncatedPayloadRewrapped) {
  // A consistent container around a short payload: the parser must notice.
  for (size_t len : {size_t{0}, size_t{30}, LabelsOff() + 100, Level0Off() + 2, payload_.size() - 4}) {
    ExpectCorrupt(std::vector<uint8_t>(payload_.begin(), payload_.begin() + len));
  }
}

TEST_F(HnswSerializeTest, CorruptFlippedByte) {
  for (size_t off : {size_t{30}, blob_.size() / 2, blob_.size() - 1}) {
    std::vector<uint8_t> b = blob_;
    b[off] ^= 0x10;
    EXPECT_FALSE(HnswIndex::Deserialize(b).ok()) << off;
  }
}

TEST_F(HnswSerializeTest, CorruptTrailingBytes) {
  std::vector<uint8_t> p = payload_;
  p.push_back(0);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptNeighbourIdOutOfRange) {
  std::vector<uint8_t> p = payload_;
  ASSERT_GT(GetU32At(p, Level0Off()), 0u);
  PutU32At(&p, Level0Off() + 4, 500);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptLinkCountTooLarge) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, Level0Off(), 33);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptEntryPointOutOfRange) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, 32, 500);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptMaxLevelInsane) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, 36, 200);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptNodeLevelAboveMax) {
  std::vector<uint8_t> p = payload_;
  p[LabelsOff() + 500 * 8 + 7] = 40;
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptAllLevelsRaised) {
  // Every node claims the top level: upper lists no longer fit the input.
  std::vector<uint8_t> p = payload_;
  const uint8_t top = p[36];
  for (size_t i = 0; i < 500; ++i) p[LabelsOff() + 500 * 8 + i] = top;
  ExpectCorrupt(p);
}

// Found by fuzz/index_blob_fuzz: a blob's ef_construction of ~2^32 made the
// next insert allocate a 32 GiB beam.
TEST_F(HnswSerializeTest, CorruptEfConstructionHuge) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, 12, 0xFFBFF900u);
  ExpectCorrupt(p);
  p = payload_;
  PutU32At(&p, 16, (1u << 20) + 1);  // ef_search
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptSlotCountHuge) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, 28, 0x7FFFFFF0u);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptDuplicateLiveId) {
  std::vector<uint8_t> p = payload_;
  std::memcpy(&p[LabelsOff() + 8], &p[LabelsOff()], 8);  // slot 1 gets slot 0's id
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptNaNVector) {
  std::vector<uint8_t> p = payload_;
  const size_t voff = LabelsOff() + 500 * 10;
  PutU32At(&p, voff, 0x7FC00000u);
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, CorruptBadParameters) {
  std::vector<uint8_t> p = payload_;
  PutU32At(&p, 8, 1);  // M = 1
  ExpectCorrupt(p);
  p = payload_;
  p[4] = 9;  // metric
  ExpectCorrupt(p);
}

TEST_F(HnswSerializeTest, WrongKindIsRejected) {
  auto blob = WrapBlob(IndexKind::kFlat, 1, payload_);
  EXPECT_FALSE(HnswIndex::Deserialize(blob).ok());
}

}  // namespace
}  // namespace vexfs::engine
