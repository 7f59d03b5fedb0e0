// VectorSource: where an index that keeps only compressed vectors in RAM
// (HnswIndex with ElementType::kInt8) fetches the full-precision originals
// for re-ranking. The filesystem implements it over the vector extents on
// disk; tests implement it over an in-memory array.
//
// Thread safety: Fetch() is called concurrently from every searching
// thread and must be thread-safe. It must not call back into the index.
#ifndef VEXFS_ENGINE_VECTOR_SOURCE_H_
#define VEXFS_ENGINE_VECTOR_SOURCE_H_

#include <cstdint>
#include <span>

#include "vexfs/status.h"

namespace vexfs::engine {

class VectorSource {
 public:
  virtual ~VectorSource() = default;
  // Copies the float32 vector last added under `id` (exactly as passed to
  // Add: the index normalises it itself for the cosine metric) into `out`,
  // which holds dim() floats. A failed Status is returned to the caller of
  // the search unchanged.
  [[nodiscard]] virtual Status Fetch(uint64_t id, std::span<float> out) const = 0;
};

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_VECTOR_SOURCE_H_
