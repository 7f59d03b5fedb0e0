// Internal to the vector engine: the pieces FlatIndex, IvfIndex and
// LshIndex share: input validation, bounded top-k heaps, the id -> slot
// table of a loaded index, worker threads, and memory accounting. Not part
// of the public API.
//
// Error messages are built as `prefix + text` so each index keeps its own
// wording ("ivf: ", "lsh: ", "" for flat).
#ifndef VEXFS_ENGINE_INDEX_COMMON_H_
#define VEXFS_ENGINE_INDEX_COMMON_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/status.h"

namespace vexfs::engine::index_internal {

// Result order: distance, then id (deterministic ties).
inline bool NeighborLess(const Neighbor& a, const Neighbor& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

// Keeps the `cap` best items seen in a max-heap (worst on top) under `less`.
// REQUIRES: cap > 0.
template <class T, class Less>
void BoundedPush(std::vector<T>* heap, size_t cap, const T& x, Less less) {
  if (heap->size() < cap) {
    heap->push_back(x);
    std::push_heap(heap->begin(), heap->end(), less);
  } else if (less(x, heap->front())) {
    std::pop_heap(heap->begin(), heap->end(), less);
    heap->back() = x;
    std::push_heap(heap->begin(), heap->end(), less);
  }
}

// splitmix64: the same stream on every platform (std:: distributions are
// implementation-defined).
struct SplitMix64 {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

// EINVAL "<prefix>k must be in [1, 10000]" unless 1 <= k <= max_k.
Status CheckK(size_t k, size_t max_k, const char* prefix);

// EINVAL unless v has `dim` elements, all finite. `what` names the input
// ("vector", "query", "sample row").
Status CheckVector(std::span<const float> v, size_t dim, const char* prefix, const char* what);

// CheckVector, then copies v into out[0, dim) and, for kCosine, normalises
// it (EINVAL "<prefix>zero <what> under the cosine metric" for a zero vector).
// On error `out` holds garbage.
Status PrepareVector(std::span<const float> v, size_t dim, Metric metric, float* out,
                     const char* prefix, const char* what);

// PrepareVector for each of the rows.size() / dim rows of `rows` into
// `out` (resized). REQUIRES: rows.size() % dim == 0.
Status PrepareRows(std::span<const float> rows, size_t dim, Metric metric, std::vector<float>* out,
                   const char* prefix, const char* what);

// EINVAL unless `sample` is a non-empty whole number of dim-float rows.
Status CheckSampleShape(std::span<const float> sample, size_t dim, const char* prefix);

// Worker count for an options field where 0 means hardware concurrency.
inline size_t ResolveThreads(size_t requested) {
  return requested != 0 ? requested : std::max<size_t>(1, std::thread::hardware_concurrency());
}

// Runs `worker` on the calling thread and on up to threads - 1 more; a
// thread that cannot be started is skipped (the caller's thread always
// works, so `worker` must pull its items from a shared counter). Returns
// after every worker has finished.
template <class Fn>
void RunWorkers(size_t threads, const Fn& worker) {
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (std::thread& t : pool) t.join();
}

// Approximate resident bytes of a node-based hash map: one node (value plus
// two pointers) per element and one pointer per bucket.
template <class Map>
size_t HashMapBytes(const Map& m) {
  return m.size() * (sizeof(typename Map::value_type) + 2 * sizeof(void*)) +
         m.bucket_count() * sizeof(void*);
}

// Builds the external id -> slot map of a loaded index from its slot ->
// id table: slot s maps ids[s] when live is null or live[s] != 0.
// Corruption "<prefix>duplicate id N" when a live id repeats.
// REQUIRES: ids.size() < 2^32; `slots` is empty.
Status IndexSlots(std::span<const uint64_t> ids, const uint8_t* live,
                  std::unordered_map<uint64_t, uint32_t>* slots, const char* prefix);

}  // namespace vexfs::engine::index_internal

#endif  // VEXFS_ENGINE_INDEX_COMMON_H_
