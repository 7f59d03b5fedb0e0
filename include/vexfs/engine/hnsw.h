// HnswIndex: hierarchical navigable small world graph (Malkov & Yashunin),
// the vector engine's main approximate index.
//
// Layout (hnswlib-style level-0 arena, faiss-style sparse upper levels):
//   * level 0: one arena of fixed-stride records indexed by internal id,
//     each holding the node's link count, its 2*M neighbour ids and its
//     vector (float records 64-byte aligned, int8 records packed), so a
//     neighbour's links and vector share a run of cache lines. Neighbour
//     ids take 3 bytes while the index has at most 2^24 slots and 4 bytes
//     above (the arena is re-laid once when it grows past 2^24). Arenas of
//     4 MiB and more ask for transparent huge pages (madvise).
//   * upper levels: a separate sparse structure (u32 ids), allocated only
//     for the ~1/M of nodes whose level is > 0;
//   * internal ids are dense u32 slots; external ids are u64 (hash map +
//     slot -> id vector).
// The serialized form (docs/hnsw_format.md) is independent of this layout.
//
// Semantics:
//   * Add(id, v) inserts, or replaces the vector of an existing id (the
//     node's links are repaired, like hnswlib's updatePoint).
//   * Remove(id) marks the slot deleted: it stays traversable but is never
//     returned. A later Add of a new id reuses a deleted slot (and repairs
//     links), so delete/insert churn does not grow the index.
//   * Cosine vectors are L2-normalised on insert and on query and compared
//     with a dot product; a zero vector is rejected (EINVAL) under cosine.
//   * Filtered search: nodes rejected by the filter are traversed but not
//     returned; a very selective filter (estimated < 2% of live vectors, or
//     fewer matches than ~2*ef) is answered exactly by a scan of the
//     matching vectors instead.
//   * RangeSearch widens ef until the ef-th candidate lies outside the
//     radius (falling back to an exact scan when ef reaches the size).
//
// int8 storage (ElementType::kInt8)
// ---------------------------------
// Nodes hold only the int8 codes of a per-dimension ScalarQuantizer
// (quantizer.h); float32 originals are NOT kept in RAM. Graph construction
// and traversal use asymmetric distances (float32 query against codes).
//   * Training: the quantizer is trained explicitly with Train(sample), or
//     automatically on the first `int8_train_size` vectors. Until then the
//     added vectors wait, as float32, in a pending buffer that searches
//     scan exactly; training encodes them and links them into the graph.
//     Vectors outside the trained ranges are clamped per dimension.
//   * Re-ranking: with a VectorSource set (SetVectorSource), Search fetches
//     the originals of the whole final beam (max(ef, k) candidates) and
//     returns the best k by exact float32 distance. Without a source, the
//     returned distances are those to the decoded codes (approximate).
//     RangeSearch selects candidates by approximate distance and, with a
//     source, reports (and filters by) the exact one.
//   * Memory per node (M links, d dims, bytes, live slots, <= 2^24 slots):
//        record             4 + 2M*3 link bytes + d codes, rounded up to 4
//        id + level + flag  8 + 1 + 1, upper-list offset 4, lock 1
//        upper links        (M + 1) * 4 / (M - 1) on average (4.5 at M=16)
//        id map             4 / load factor (5.7..11.4)
//     e.g. d=128, M=16: 228-byte records, ~256 B per node in all, against
//     hnswlib at float32 with ~757 B (its level-0 record of
//     d*4 + (4 + 2M*4) + 8 bytes, plus its per-node mutex, level-list
//     pointer, level and label hash map), i.e. ~0.34x; d=384: ~0.29x.
//     MemoryBytes() counts all of the above plus the quantizer tables and
//     the pending buffer; it never counts the VectorSource's storage.
//
// Limits: dim in [1, 65536]; M in [2, 128]; at most 2^31 - 1 slots.
//
// Thread safety: Search, RangeSearch, SearchBatch, Contains, size,
// MemoryBytes and Serialize may run concurrently with each other. Add,
// Remove and AddBatch require exclusive access (AddBatch parallelises
// internally with per-node spin locks on the link lists). Search scratch
// (visited tags) is per thread and not counted in MemoryBytes(). A filter
// must not call back into the same index (the per-thread scratch is not
// re-entrant).
#ifndef VEXFS_ENGINE_HNSW_H_
#define VEXFS_ENGINE_HNSW_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/engine/vector_source.h"
#include "vexfs/status.h"

namespace vexfs::engine {

struct HnswParams {
  size_t dim = 0;
  Metric metric = Metric::kL2;
  // kFloat32, kFloat16 (float32 query against float16 storage) and kInt8
  // (codes only, see above).
  ElementType element_type = ElementType::kFloat32;
  size_t M = 16;                 // links per node on levels > 0; 2*M on level 0
  size_t ef_construction = 200;  // beam width while inserting (1..1<<20)
  size_t ef_search = 64;         // default beam when SearchParams.effort == 0 (1..1<<20)
  size_t max_elements = 0;       // capacity hint; the index grows past it
  uint64_t seed = 100;           // level generator seed
  // kInt8: vectors buffered before the quantizer trains itself on them
  // (1..1<<20). Ignored for other element types.
  size_t int8_train_size = 1024;
};

class HnswIndex final : public VectorIndex {
 public:
  // Validates `params` (EINVAL on dim 0 / too large, bad M, ef 0, bad
  // int8_train_size).
  static Result<std::unique_ptr<HnswIndex>> Create(const HnswParams& params);
  // Parses a blob produced by Serialize(). Corrupted or truncated input
  // yields Corruption (EUCLEAN) or NotSupported (newer version); never a
  // crash. Every link, level, count and id is validated.
  static Result<std::unique_ptr<HnswIndex>> Deserialize(std::span<const uint8_t> blob);

  ~HnswIndex() override;
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  IndexKind kind() const override { return IndexKind::kHnsw; }
  size_t dim() const override;
  Metric metric() const override;
  size_t size() const override;
  size_t MemoryBytes() const override;

  Status Add(uint64_t id, std::span<const float> vec) override;
  Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override;
  std::vector<uint64_t> Ids() const override;

  // Inserts (or replaces) `ids.size()` vectors; `vecs` holds ids.size()*dim()
  // floats. All input is validated before anything is inserted, so a bad
  // vector leaves the index unchanged. New ids are linked by `threads`
  // workers (0 or 1 = the calling thread only). If an id repeats in the
  // batch, its last vector wins.
  Status AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs, size_t threads);

  // effort = ef_search (0 = params().ef_search); the beam is max(ef, k).
  Result<std::vector<Neighbor>> Search(std::span<const float> query,
                                       const SearchParams& params) const override;
  Result<std::vector<Neighbor>> RangeSearch(std::span<const float> query, float radius,
                                            const SearchParams& params) const override;

  Result<std::vector<uint8_t>> Serialize() const override;

  // kInt8: trains the quantizer on `sample` (n * dim floats, normalised
  // first under cosine) and links every pending vector into the graph.
  // EINVAL for a bad sample or if the quantizer is already trained (codes
  // cannot be re-encoded without the originals); other element types:
  // validates and does nothing. Requires exclusive access.
  Status Train(std::span<const float> sample);
  // True once kInt8 codes exist (always true for other element types).
  bool trained() const;
  // kInt8: originals for re-ranking; nullptr (the default) disables it.
  // Not owned: it must outlive the index or be reset first. Not
  // serialized. Requires exclusive access.
  void SetVectorSource(const VectorSource* source);

  const HnswParams& params() const;
  // Internal slots in use, live + deleted (for tests: churn must not grow it).
  size_t slot_count() const;

  class Impl;  // internal (hnsw_impl.h)

 private:
  explicit HnswIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_HNSW_H_
