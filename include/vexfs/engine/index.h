// VectorIndex: the contract every ANN index of the vector engine implements
// (Flat, HNSW, LSH, IVF). The engine depends on nothing above it: no storage,
// no filesystem. The filesystem's vector layer, the server and the Python
// binding all talk to indexes through this interface.
//
// Identifiers: callers use 64-bit external ids (the filesystem uses inode
// numbers); indexes map them to dense 32-bit internal slots.
//
// Thread safety: Search/RangeSearch/SearchBatch may run concurrently with
// each other. Add/Remove/Serialize require exclusive access unless the
// concrete index documents otherwise.
#ifndef VEXFS_ENGINE_INDEX_H_
#define VEXFS_ENGINE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vexfs/status.h"

namespace vexfs::engine {

enum class Metric : uint8_t { kL2 = 0, kInnerProduct = 1, kCosine = 2 };
// Element type used for the index's stored vectors. Queries and inserts are
// always float32; kFloat16 and kInt8 are storage/compute encodings.
enum class ElementType : uint8_t { kFloat32 = 0, kFloat16 = 1, kInt8 = 2 };
enum class IndexKind : uint8_t { kFlat = 0, kHnsw = 1, kLsh = 2, kIvf = 3 };

// One result. Smaller distance is always better: L2 reports squared L2,
// inner product reports -dot, cosine reports 1 - cos.
struct Neighbor {
  uint64_t id;
  float distance;
};

// Predicate on external ids for filtered search. Must be thread-safe and
// cheap; it is called during graph traversal.
using IdFilter = std::function<bool(uint64_t id)>;

struct SearchParams {
  size_t k = 10;
  // Index-specific effort knob: ef_search for HNSW, nprobe for IVF, probes
  // for LSH. 0 means the index default.
  size_t effort = 0;
  const IdFilter* filter = nullptr;  // not owned; may be null
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  virtual IndexKind kind() const = 0;
  virtual size_t dim() const = 0;
  virtual Metric metric() const = 0;
  // Number of live (not removed) vectors.
  virtual size_t size() const = 0;
  // Approximate resident bytes of vectors + structure.
  virtual size_t MemoryBytes() const = 0;

  // Insert or replace the vector for `id`. `vec.size()` must equal dim();
  // NaN/Inf components are rejected with EINVAL.
  virtual Status Add(uint64_t id, std::span<const float> vec) = 0;
  // Remove `id`; ENOENT if absent. Slots are reused by later Adds.
  virtual Status Remove(uint64_t id) = 0;
  virtual bool Contains(uint64_t id) const = 0;
  // Every id the index holds (size() of them), in no particular order.
  virtual std::vector<uint64_t> Ids() const = 0;

  // k nearest neighbours, best first. k must be in [1, 10000].
  virtual Result<std::vector<Neighbor>> Search(std::span<const float> query,
                                               const SearchParams& params) const = 0;
  // All neighbours with distance <= radius, best first.
  virtual Result<std::vector<Neighbor>> RangeSearch(std::span<const float> query, float radius,
                                                    const SearchParams& params) const = 0;
  // `queries` holds nq * dim() floats; one result list per query.
  virtual Result<std::vector<std::vector<Neighbor>>> SearchBatch(
      std::span<const float> queries, const SearchParams& params) const;

  // Versioned, checksummed, little-endian serialization.
  virtual Result<std::vector<uint8_t>> Serialize() const = 0;
};

// index.SearchBatch(queries, params) split over up to `threads` threads:
// min(threads, nq) contiguous runs of queries, each searched with
// SearchBatch on its own thread (the caller's is one of them). The same
// results as SearchBatch; a run no thread can be started for runs on the
// caller's thread. threads 0 or 1: SearchBatch itself.
Result<std::vector<std::vector<Neighbor>>> ParallelSearchBatch(const VectorIndex& index,
                                                               std::span<const float> queries,
                                                               const SearchParams& params, size_t threads);

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_INDEX_H_
