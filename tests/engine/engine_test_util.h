// Shared helpers for the vector engine tests: deterministic clustered data,
// reference distances in double precision, brute-force ground truth and
// recall, and tools to damage serialized blobs (edit a payload, then re-wrap
// it with a valid crc so the parser's semantic checks must catch it).
//
// Header-only; every function is inline and lives in vexfs::engine, so the
// tests (which sit inside vexfs::engine) call them unqualified.
#ifndef VEXFS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
#define VEXFS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vexfs/crc32c.h"
#include "vexfs/engine/index.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {

// ---- data and ground truth ----------------------------------------------------

// Deterministic clustered data: `clusters` centres in [-1, 1]^dim (the same
// centres for every seed, so data and queries share them), points scattered
// around them with sigma 0.2. Row-major n * dim floats.
inline std::vector<float> Clustered(size_t n, size_t dim, uint64_t seed, size_t clusters = 32) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::normal_distribution<float> g(0.0f, 0.2f);
  std::mt19937_64 crng(1234);  // same centres for data and queries
  std::vector<float> centres(clusters * dim);
  for (float& c : centres) c = u(crng);
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng() % clusters;
    for (size_t j = 0; j < dim; ++j) out[i * dim + j] = centres[c * dim + j] + g(rng);
  }
  return out;
}

// Reference distance in double, following Neighbor: squared L2, -dot,
// 1 - cos (cosine normalises both sides here, not the caller).
inline double RefDistance(Metric m, const float* a, const float* b, size_t d) {
  double s = 0, na = 0, nb = 0;
  for (size_t i = 0; i < d; ++i) {
    s += m == Metric::kL2 ? double(a[i] - b[i]) * (a[i] - b[i]) : double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  if (m == Metric::kL2) return s;
  if (m == Metric::kInnerProduct) return -s;
  return 1.0 - s / std::sqrt(na * nb);
}

// Exact k-NN ids (best first, ties by id) among `live` ids, where id i owns
// row i of `data`. `Dist` is the precision distances are ranked in (float
// reproduces rankings of tests that rounded the reference distance).
template <class Dist = double>
std::vector<uint64_t> ExactIds(Metric m, const std::vector<float>& data, size_t dim, const float* q,
                               size_t k, const std::vector<uint64_t>& live) {
  std::vector<std::pair<Dist, uint64_t>> all;
  all.reserve(live.size());
  for (uint64_t id : live)
    all.push_back({static_cast<Dist>(RefDistance(m, q, &data[id * dim], dim)), id});
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + k, all.end());
  std::vector<uint64_t> out;
  for (size_t i = 0; i < k; ++i) out.push_back(all[i].second);
  return out;
}

// 0, 1, ..., n - 1.
inline std::vector<uint64_t> Iota(size_t n) {
  std::vector<uint64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Exact k-NN ids over every row of `data`.
inline std::vector<uint64_t> ExactIds(Metric m, const std::vector<float>& data, size_t dim,
                                      const float* q, size_t k) {
  return ExactIds<double>(m, data, dim, q, k, Iota(data.size() / dim));
}

// Fraction of `truth` found in `got` (1 when truth is empty).
inline double Overlap(const std::vector<Neighbor>& got, const std::vector<uint64_t>& truth) {
  if (truth.empty()) return 1.0;
  std::set<uint64_t> t(truth.begin(), truth.end());
  size_t hit = 0;
  for (const Neighbor& n : got) hit += t.count(n.id);
  return double(hit) / double(truth.size());
}

// Recall@k of idx.SearchBatch(queries) with effort `effort` against exact
// search over `data` (row i is id i); also expects every result list to be
// ordered by distance.
inline double BatchRecall(const VectorIndex& idx, const std::vector<float>& data,
                          const std::vector<float>& queries, size_t k, size_t effort) {
  const size_t d = idx.dim(), nq = queries.size() / d;
  SearchParams sp;
  sp.k = k;
  sp.effort = effort;
  auto res = idx.SearchBatch(queries, sp);
  EXPECT_TRUE(res.ok());
  if (!res.ok()) return 0;
  double hit = 0;
  for (size_t q = 0; q < nq; ++q) {
    const auto truth = ExactIds(idx.metric(), data, d, &queries[q * d], k);
    std::set<uint64_t> t(truth.begin(), truth.end());
    const auto& r = (*res)[q];
    for (size_t j = 0; j < r.size(); ++j) {
      hit += t.count(r[j].id);
      if (j > 0) {
        EXPECT_LE(r[j - 1].distance, r[j].distance);
      }
    }
  }
  return hit / double(nq * k);
}

// Recall@k of one idx.Search() per query, as BatchRecall (order unchecked).
inline double SearchRecall(const VectorIndex& idx, const std::vector<float>& data,
                           const std::vector<float>& queries, size_t k, size_t effort) {
  const size_t d = idx.dim(), nq = queries.size() / d;
  double sum = 0;
  for (size_t q = 0; q < nq; ++q) {
    const float* qv = &queries[q * d];
    const auto truth = ExactIds(idx.metric(), data, d, qv, k);
    std::set<uint64_t> t(truth.begin(), truth.end());
    SearchParams sp;
    sp.k = k;
    sp.effort = effort;
    auto r = idx.Search(std::span<const float>(qv, d), sp);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    for (const Neighbor& nb : *r) sum += t.count(nb.id);
  }
  return sum / double(nq * k);
}

// The three metrics, for TEST_P suites, and their test-name suffixes.
inline auto AllMetrics() {
  return ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine);
}
inline std::string MetricName(const ::testing::TestParamInfo<Metric>& info) {
  switch (info.param) {
    case Metric::kL2:
      return "L2";
    case Metric::kInnerProduct:
      return "InnerProduct";
    default:
      return "Cosine";
  }
}

// ---- corruption ---------------------------------------------------------------

// Little-endian field access inside a payload or blob.
// The ids an index lists (Ids()) as a set; also checks there are size()
// of them, with no duplicates.
inline std::set<uint64_t> IdSet(const VectorIndex& idx) {
  const std::vector<uint64_t> ids = idx.Ids();
  std::set<uint64_t> out(ids.begin(), ids.end());
  EXPECT_EQ(ids.size(), idx.size());
  EXPECT_EQ(out.size(), ids.size()) << "an id is listed twice";
  return out;
}

// Adds ids 0..n-1 (rows of `data`), removes every third, re-adds id 0
// under a new id (reusing a slot): what Ids() must then list.
inline std::set<uint64_t> ChurnIds(VectorIndex* idx, const std::vector<float>& data) {
  const size_t d = idx->dim(), n = data.size() / d;
  std::set<uint64_t> want;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(idx->Add(i, std::span<const float>(data.data() + i * d, d)).ok());
    want.insert(i);
  }
  for (size_t i = 0; i < n; i += 3) {
    EXPECT_TRUE(idx->Remove(i).ok());
    want.erase(i);
  }
  EXPECT_TRUE(idx->Add(n + 1000, std::span<const float>(data.data(), d)).ok());
  want.insert(n + 1000);
  return want;
}

// ChurnIds on `idx`; Ids() of it and of Index::Deserialize(Serialize()).
template <typename Index>
void ExpectIdsAfterChurnAndRoundTrip(Index* idx, const std::vector<float>& data) {
  const std::set<uint64_t> want = ChurnIds(idx, data);
  EXPECT_EQ(IdSet(*idx), want);
  auto blob = idx->Serialize();
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto copy = Index::Deserialize(*blob);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(IdSet(**copy), want);
}

inline void PutU32At(std::vector<uint8_t>* p, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*p)[off + i] = uint8_t(v >> (8 * i));
}
inline void PutU64At(std::vector<uint8_t>* p, size_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*p)[off + i] = uint8_t(v >> (8 * i));
}
inline uint32_t GetU32At(const std::vector<uint8_t>& p, size_t off) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[off + i]) << (8 * i);
  return v;
}
// Turns the little-endian f32 at `off` into a NaN (exponent all ones, top
// mantissa bit set) by overwriting its two high bytes.
inline void PoisonF32At(std::vector<uint8_t>* p, size_t off) {
  (*p)[off + 2] = 0xC0;
  (*p)[off + 3] = 0x7F;
}

// Recomputes the crc32c of a blob header (bytes 0..19, crc at 20..23) after
// the header was edited.
inline void RefreshHeaderCrc(std::vector<uint8_t>* blob) {
  const uint32_t crc = Crc32c(blob->data(), 20);
  for (int i = 0; i < 4; ++i) (*blob)[20 + i] = uint8_t(crc >> (8 * i));
}

// Re-wraps the payload of `blob`, changed by `edit`, in a fresh container
// of `kind`/`version` with valid checksums, so the semantic checks, not the
// crc, must catch the damage.
template <class Edit>
std::vector<uint8_t> RewrapPayload(const std::vector<uint8_t>& blob, IndexKind kind,
                                   uint16_t version, Edit edit) {
  std::vector<uint8_t> payload(blob.begin() + kBlobHeaderSize, blob.end());
  edit(&payload);
  return WrapBlob(kind, version, payload);
}

// Expects Index::Deserialize to reject `payload` wrapped in a valid
// container of `kind`/`version` with EUCLEAN.
template <class Index>
void ExpectCorruptPayload(IndexKind kind, uint16_t version, const std::vector<uint8_t>& payload) {
  auto r = Index::Deserialize(WrapBlob(kind, version, payload));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EUCLEAN) << r.status().ToString();
}

}  // namespace vexfs::engine

#endif  // VEXFS_TESTS_ENGINE_ENGINE_TEST_UTIL_H_
