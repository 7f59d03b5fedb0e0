// LshIndex: random-hyperplane locality-sensitive hashing (SimHash, Charikar
// 2002) with query-directed multi-probe (Lv et al. 2007) and exact
// re-ranking. Cheap to build and update; recall is tuned at query time.
//
// Hashing: L tables, each keyed by K sign bits sign(<a_j, x'>) of unit
// Gaussian hyperplanes a_j (all L*K planes are derived from `seed` with the
// engine's own PRNG, so they are identical on every platform and are not
// serialized). x' depends on the metric:
//   kCosine        x normalised (stored normalised; zero vectors -> EINVAL).
//   kInnerProduct  x as given. The sign of <a, x> ignores the norm, so
//                  buckets group by angle; candidates are re-ranked by exact
//                  -dot. Good when norms vary little (MIPS heuristic).
//   kL2            x - center, where center is zero until Train(sample)
//                  sets it to the sample mean (and rehashes). Angle around
//                  a central point only approximates L2 proximity; recall
//                  needs more tables/probes than for cosine. p-stable
//                  (E2LSH) projections are not implemented.
//
// Search: for each table, the home bucket plus the (probes - 1) next
// buckets obtained by flipping the bits with the smallest margins
// |<a_j, x'>| in increasing order of summed margin. probes = effort
// (0 = options.default_probes), at most 2^K; a table with no more non-empty
// buckets than probes gives all of them. Candidates (the union over
// tables) are re-ranked with exact float32 distances, so returned distances
// are exact but a true neighbour is missed when it shares no probed bucket;
// fewer than k results come back when fewer candidates pass the filter.
// RangeSearch reports exact distances of probed candidates within the
// radius (same caveat).
//
// Storage: float32 vectors in dense slots (a removed slot is reused by the
// next new id), per-slot bucket keys, one hash map per table from key to
// slot list. Ids are any uint64_t; Add() of an existing id replaces its
// vector and rehashes it.
//
// Serialized form: a serialize.h blob of kind kLsh, version 1; payload
//   u32 dim | u8 metric | u8 has_center | u16 reserved (0)
//   u32 L | u32 K | u32 default_probes | u64 seed
//   [f32 center[dim] when has_center]
//   u32 n (slots) | u64 id[n] | u8 live[n] (0/1) | f32 vectors[n * dim]
// all little-endian; buckets are rebuilt on load. Removed slots hold zeros.
//
// Thread safety: const methods may run concurrently; Add/Remove/Train
// require exclusive access. A filter must not call back into the index.
#ifndef VEXFS_ENGINE_LSH_H_
#define VEXFS_ENGINE_LSH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/status.h"

namespace vexfs::engine {

struct LshOptions {
  size_t dim = 0;  // 1..65536
  Metric metric = Metric::kCosine;
  size_t num_tables = 8;       // L, 1..64
  size_t num_bits = 12;        // K, 1..32
  size_t default_probes = 16;  // buckets probed per table when effort == 0
  uint64_t seed = 42;
  size_t num_threads = 0;  // SearchBatch workers; 0 = hardware concurrency
};

class LshIndex final : public VectorIndex {
 public:
  static constexpr uint16_t kFormatVersion = 1;
  static constexpr size_t kMaxK = 10000;
  static constexpr size_t kMaxDim = 65536;
  static constexpr size_t kMaxTables = 64;
  static constexpr size_t kMaxBits = 32;

  // EINVAL for out-of-range options or an unknown metric.
  static Result<std::unique_ptr<LshIndex>> Create(const LshOptions& options);
  // Corruption (EUCLEAN) for malformed input, ENOTSUP for a newer version,
  // EINVAL for a blob of another index kind. Never crashes.
  static Result<std::unique_ptr<LshIndex>> Deserialize(std::span<const uint8_t> blob);

  IndexKind kind() const override { return IndexKind::kLsh; }
  size_t dim() const override { return opt_.dim; }
  Metric metric() const override { return opt_.metric; }
  size_t size() const override { return slots_.size(); }
  size_t MemoryBytes() const override;
  const LshOptions& options() const { return opt_; }

  Status Add(uint64_t id, std::span<const float> vec) override;
  // Validates every row first; on error nothing was added.
  Status AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs);
  Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override { return slots_.count(id) != 0; }
  std::vector<uint64_t> Ids() const override;

  // kL2: center := mean of `sample` (n * dim floats), then every stored
  // vector is rehashed. Other metrics: validates and does nothing.
  Status Train(std::span<const float> sample);

  // effort = probes per table (0 = default_probes), clamped to 2^K.
  Result<std::vector<Neighbor>> Search(std::span<const float> query,
                                       const SearchParams& params) const override;
  Result<std::vector<Neighbor>> RangeSearch(std::span<const float> query, float radius,
                                            const SearchParams& params) const override;
  // Queries run on up to num_threads workers.
  Result<std::vector<std::vector<Neighbor>>> SearchBatch(std::span<const float> queries,
                                                         const SearchParams& params) const override;

  Result<std::vector<uint8_t>> Serialize() const override;

  // Slots in use, live and free (for tests: churn must not grow it).
  size_t slot_count() const { return ids_.size(); }

 private:
  explicit LshIndex(const LshOptions& opt);

  Status Prepare(std::span<const float> v, float* out, const char* what) const;
  // Projections of a prepared vector onto every plane (L*K values).
  void Project(const float* v, float* proj) const;
  uint32_t KeyOf(const float* proj, size_t table) const;
  void Insert(uint32_t slot);  // hashes vectors_[slot] into the tables
  void Unhash(uint32_t slot);  // removes slot from its buckets
  void AddPrepared(uint64_t id, const float* v);
  void Rehash();
  // Collects candidate slots for a prepared query (deduplicated).
  void Candidates(const float* q, size_t probes, std::vector<uint32_t>* out) const;
  Result<std::vector<Neighbor>> SearchPrepared(const float* q, const SearchParams& params) const;
  float Distance(const float* q, uint32_t slot) const;

  LshOptions opt_;
  std::vector<float> planes_;                     // L*K unit vectors of dim floats
  std::vector<float> center_;                     // empty or dim floats (kL2 only)
  std::vector<uint64_t> ids_;                     // slot -> id
  std::vector<uint8_t> live_;                     // slot -> 0/1
  std::vector<float> vectors_;                    // slot * dim
  std::vector<uint32_t> keys_;                    // slot * L: bucket key per table
  std::vector<uint32_t> free_;                    // free slots
  std::unordered_map<uint64_t, uint32_t> slots_;  // live id -> slot
  std::vector<std::unordered_map<uint32_t, std::vector<uint32_t>>> tables_;
};

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_LSH_H_
