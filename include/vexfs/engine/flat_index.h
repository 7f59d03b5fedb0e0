// FlatIndex: exact (brute-force) vector search; the reference every ANN
// index is measured against, and the right choice below ~100k vectors.
//
// Storage per element type:
//   kFloat32  vectors stored as float32; results are exact.
//   kFloat16  vectors stored only as binary16; results are exact with
//             respect to the stored (rounded) vectors.
//   kInt8     full-precision float32 vectors are kept ALONGSIDE int8 codes of
//             a ScalarQuantizer (per-dimension ranges). Search() and
//             SearchBatch() scan the codes, keep the best k * rerank_factor
//             candidates and re-rank them with the float32 vectors, so
//             returned distances are always exact float32 distances (recall
//             can miss only when a true neighbour falls outside the
//             candidate list). RangeSearch() is exact (float32 scan). Until
//             the quantizer is trained (explicitly with Train(), or
//             automatically once kAutoTrainSize vectors are present) every
//             search is an exact float32 scan.
//
// Metrics: kCosine normalises vectors on insert and queries on search, so
// zero vectors are rejected (EINVAL) for that metric. Distances follow
// Neighbor: squared L2, -dot, 1 - cos. Results are ordered by (distance,
// id), so ties are deterministic.
//
// Ids: any uint64_t. Add() replaces an existing id in place. Remove() moves
// the last slot into the freed one, so slots stay dense (at most 2^32 - 1).
//
// Serialized form: a serialize.h blob of kind kFlat, version 1, payload
//   u32 dim | u8 metric | u8 element_type | u8 has_quantizer | u8 reserved(0)
//   u32 rerank_factor | u64 count | u64 ids[count]
//   vectors: count*dim f32 (kFloat32, kInt8) or u16 (kFloat16)
//   [ScalarQuantizer::Serialize block when has_quantizer]
// all little-endian. int8 codes are rebuilt on load.
//
// Thread safety: as VectorIndex: const methods may run concurrently;
// Add/Remove/Train require exclusive access.
#ifndef VEXFS_ENGINE_FLAT_INDEX_H_
#define VEXFS_ENGINE_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/engine/quantizer.h"
#include "vexfs/status.h"

namespace vexfs::engine {

struct FlatIndexOptions {
  size_t dim = 0;  // 1..65536
  Metric metric = Metric::kL2;
  ElementType element_type = ElementType::kFloat32;
  // kInt8 only: candidates re-ranked per result (1..1000).
  size_t rerank_factor = 8;
  // SearchBatch worker threads; 0 = hardware concurrency.
  size_t num_threads = 0;
};

class FlatIndex final : public VectorIndex {
 public:
  static constexpr uint16_t kFormatVersion = 1;
  static constexpr size_t kMaxK = 10000;
  static constexpr size_t kMaxDim = 65536;
  // kInt8: the quantizer trains itself on all vectors when the index first
  // reaches this size (unless Train() was called before).
  static constexpr size_t kAutoTrainSize = 1024;

  // EINVAL for dim out of range, an unknown metric/element type or a bad
  // rerank_factor.
  static Result<std::unique_ptr<FlatIndex>> Create(const FlatIndexOptions& options);
  // Rebuilds an index from Serialize() output. Corruption (EUCLEAN) for
  // malformed or damaged input, ENOTSUP for a newer format version, EINVAL
  // for a blob of another index kind. Never crashes on hostile input.
  static Result<std::unique_ptr<FlatIndex>> Deserialize(std::span<const uint8_t> blob);

  IndexKind kind() const override { return IndexKind::kFlat; }
  size_t dim() const override { return opt_.dim; }
  Metric metric() const override { return opt_.metric; }
  ElementType element_type() const { return opt_.element_type; }
  size_t size() const override { return ids_.size(); }
  size_t MemoryBytes() const override;

  Status Add(uint64_t id, std::span<const float> vec) override;
  // Adds ids.size() vectors (vecs holds ids.size() * dim floats). Validates
  // everything first: on error nothing was added.
  Status AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs);
  Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override;
  std::vector<uint64_t> Ids() const override;
  // The stored vector of `id` (decoded for kFloat16; normalised for
  // kCosine). ENOENT if absent.
  Result<std::vector<float>> GetVector(uint64_t id) const;

  // kInt8: trains the quantizer on `sample` (n * dim floats) and re-encodes
  // all stored vectors. Other element types: validates and does nothing.
  Status Train(std::span<const float> sample);
  bool trained() const { return quantizer_.has_value(); }

  Result<std::vector<Neighbor>> Search(std::span<const float> query,
                                       const SearchParams& params) const override;
  // params.k is ignored; params.filter applies. radius must not be NaN.
  Result<std::vector<Neighbor>> RangeSearch(std::span<const float> query, float radius,
                                            const SearchParams& params) const override;
  // Cache-blocked: each block of stored vectors is scored against a block
  // of queries while it is hot in cache; query blocks run on worker threads.
  Result<std::vector<std::vector<Neighbor>>> SearchBatch(std::span<const float> queries,
                                                         const SearchParams& params) const override;

  Result<std::vector<uint8_t>> Serialize() const override;

 private:
  explicit FlatIndex(const FlatIndexOptions& opt) : opt_(opt) {}

  Status CheckVector(std::span<const float> v, const char* what) const;
  // Validates and, for cosine, normalises a query into `out`.
  Status PrepareQuery(std::span<const float> q, std::vector<float>* out) const;
  void StoreSlot(uint32_t slot, const float* v);  // v already normalised
  void EncodeAll();
  void MaybeAutoTrain();
  // Scores slots [begin, end) for each query of a block into per-query
  // heaps; `allowed` (null = all) has one filter verdict per slot.
  struct Scan;
  void ScanBlock(Scan* scans, size_t nq, size_t begin, size_t end, const uint8_t* allowed) const;
  void SearchBlock(const float* queries, size_t nq, const SearchParams& params,
                   std::vector<Neighbor>* out) const;
  float ExactDistance(const float* q, uint32_t slot) const;

  FlatIndexOptions opt_;
  std::vector<uint64_t> ids_;                     // slot -> external id
  std::unordered_map<uint64_t, uint32_t> slots_;  // external id -> slot
  std::vector<float> f32_;                        // kFloat32, kInt8: size() * dim
  std::vector<uint16_t> f16_;                     // kFloat16: size() * dim
  std::vector<int8_t> codes_;                     // kInt8 once trained: size() * dim
  std::optional<ScalarQuantizer> quantizer_;
};

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_FLAT_INDEX_H_
