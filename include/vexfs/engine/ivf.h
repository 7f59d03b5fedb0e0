// IvfIndex: inverted-file index (IVF-Flat). A k-means coarse quantizer
// splits the space into `nlist` cells; each vector lives, as float32, in
// the inverted list of its nearest centroid; a query scans the `nprobe`
// lists whose centroids are nearest and ranks their vectors exactly.
//
// Training: explicitly with Train(sample), or automatically once the index
// holds `train_size` vectors (default 32 * nlist). k-means: k-means++
// seeding on at most 256 * nlist sample rows (deterministic subsample),
// then `kmeans_iters` Lloyd iterations whose assignment step runs on
// num_threads workers; an emptied cell is re-seeded with the row farthest
// from its centroid. Everything is seeded by `seed`. Until training,
// vectors wait in one unclustered list and every search is an exact scan.
//
// Metrics: kCosine normalises vectors on insert and queries on search (zero
// vectors -> EINVAL; centroids are renormalised, i.e. spherical k-means).
// Vectors are assigned to cells by L2 distance to the centroids for every
// metric (compact cells); queries probe the cells with the smallest L2
// distance, or for kInnerProduct the largest <q, centroid>. Inner-product
// recall still depends on norms varying little within a cell. Distances follow Neighbor and are
// exact; a true neighbour is missed only when its cell is not probed. RangeSearch reports the
// probed vectors within the radius (same caveat).
//
// Storage is float32 only (ElementType kInt8/kFloat16 are not offered).
// Ids are any uint64_t; Add() of an existing id replaces it (re-assigning
// its cell); Remove() moves the last entry of the cell into the hole, so
// lists stay dense and freed space is reused.
//
// Serialized form: a serialize.h blob of kind kIvf, version 1; payload
//   u32 dim | u8 metric | u8 trained | u16 reserved (0)
//   u32 nlist | u32 default_nprobe | u32 train_size | u32 kmeans_iters
//   u64 seed
//   [f32 centroids[nlist * dim] when trained]
//   lists (nlist when trained, else 1): u32 count | u64 id[count] |
//                                       f32 vectors[count * dim]
// all little-endian. Every id is unique across lists; every value finite.
//
// Thread safety: const methods may run concurrently; Add/Remove/Train
// require exclusive access. A filter must not call back into the index.
#ifndef VEXFS_ENGINE_IVF_H_
#define VEXFS_ENGINE_IVF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/status.h"

namespace vexfs::engine {

struct IvfOptions {
  size_t dim = 0;  // 1..65536
  Metric metric = Metric::kL2;
  size_t nlist = 64;          // cells, 1..65536
  size_t default_nprobe = 8;  // cells probed when effort == 0
  size_t train_size = 0;      // auto-train threshold; 0 = 32 * nlist
  size_t kmeans_iters = 10;   // Lloyd iterations, 1..100
  uint64_t seed = 1234;
  size_t num_threads = 0;  // k-means and SearchBatch workers; 0 = hardware
};

class IvfIndex final : public VectorIndex {
 public:
  static constexpr uint16_t kFormatVersion = 1;
  static constexpr size_t kMaxK = 10000;
  static constexpr size_t kMaxDim = 65536;
  static constexpr size_t kMaxList = 65536;

  // EINVAL for out-of-range options or an unknown metric.
  static Result<std::unique_ptr<IvfIndex>> Create(const IvfOptions& options);
  // Corruption (EUCLEAN) for malformed input, ENOTSUP for a newer version,
  // EINVAL for a blob of another index kind. Never crashes.
  static Result<std::unique_ptr<IvfIndex>> Deserialize(std::span<const uint8_t> blob);

  IndexKind kind() const override { return IndexKind::kIvf; }
  size_t dim() const override { return opt_.dim; }
  Metric metric() const override { return opt_.metric; }
  size_t size() const override { return where_.size(); }
  size_t MemoryBytes() const override;
  const IvfOptions& options() const { return opt_; }

  Status Add(uint64_t id, std::span<const float> vec) override;
  // Validates every row first; on error nothing was added.
  Status AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs);
  Status Remove(uint64_t id) override;
  bool Contains(uint64_t id) const override { return where_.count(id) != 0; }
  std::vector<uint64_t> Ids() const override;

  // Trains the coarse quantizer on `sample` (n * dim floats, n >= nlist)
  // and (re)assigns every stored vector. May be called again to retrain.
  Status Train(std::span<const float> sample);
  bool trained() const { return !centroids_.empty(); }
  // Number of vectors in each cell (empty before training).
  std::vector<size_t> ListSizes() const;

  // effort = nprobe (0 = default_nprobe), clamped to nlist.
  Result<std::vector<Neighbor>> Search(std::span<const float> query,
                                       const SearchParams& params) const override;
  Result<std::vector<Neighbor>> RangeSearch(std::span<const float> query, float radius,
                                            const SearchParams& params) const override;
  // Queries run on up to num_threads workers.
  Result<std::vector<std::vector<Neighbor>>> SearchBatch(std::span<const float> queries,
                                                         const SearchParams& params) const override;

  Result<std::vector<uint8_t>> Serialize() const override;

 private:
  explicit IvfIndex(const IvfOptions& opt) : opt_(opt), lists_(1) {}

  struct List {
    std::vector<uint64_t> ids;
    std::vector<float> vecs;  // ids.size() * dim
  };
  struct Loc {
    uint32_t list;
    uint32_t pos;
  };

  Status Prepare(std::span<const float> v, float* out, const char* what) const;
  size_t Threads() const;
  uint32_t NearestCentroid(const float* v) const;
  void Append(uint32_t list, uint64_t id, const float* v);
  void Erase(Loc loc);
  void AddPrepared(uint64_t id, const float* v);
  Status TrainPrepared(std::vector<float> sample);
  // Lists to scan for a prepared query, best first.
  void Probe(const float* q, size_t nprobe, std::vector<uint32_t>* out) const;
  std::vector<Neighbor> SearchPrepared(const float* q, const SearchParams& params) const;

  IvfOptions opt_;
  std::vector<float> centroids_;  // nlist * dim once trained
  std::vector<List> lists_;       // nlist once trained, else 1 (unclustered)
  std::unordered_map<uint64_t, Loc> where_;
};

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_IVF_H_
