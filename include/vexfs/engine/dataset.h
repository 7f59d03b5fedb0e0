// Vector data sets for tests, benchmarks and tools: readers/writers of the
// common on-disk formats, a deterministic synthetic generator that behaves
// like real embeddings, and exact ground truth.
//
// Formats
//   .fvecs/.ivecs/.bvecs  (TEXMEX): each row is a little-endian int32 `d`
//       followed by d float32 / int32 / uint8 values; every row must have
//       the same d (1..1<<20). bvecs rows load as floats.
//   .npy  versions 1.0, 2.0 and 3.0; C order only; dtypes <f4, <f2, |i1,
//       |u1, <i4 (1-byte types may also be spelled <i1/<u1). A 1-D array
//       loads as ONE row of shape[0] columns; 3+-D arrays are rejected.
// Malformed files fail with Corruption (EUCLEAN), unsupported but well
// formed ones (big-endian, Fortran order, other dtypes) with NotSupported
// (ENOTSUP), open/read/write failures with the errno of the failing call.
// Parsers never read out of bounds and never allocate more than the input
// size justifies.
//
// I/O uses stdio directly: these are tools for data files outside the
// filesystem image, not part of the storage path.
//
// Thread safety: all functions are reentrant; ComputeGroundTruth uses
// worker threads internally.
#ifndef VEXFS_ENGINE_DATASET_H_
#define VEXFS_ENGINE_DATASET_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/status.h"

namespace vexfs::engine {

// Dense row-major matrices. REQUIRES (invariant): data.size() == rows * cols.
struct FloatMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> data;
  std::span<const float> row(size_t i) const { return {data.data() + i * cols, cols}; }
};
struct Int32Matrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<int32_t> data;
  std::span<const int32_t> row(size_t i) const { return {data.data() + i * cols, cols}; }
};

inline constexpr size_t kAllRows = std::numeric_limits<size_t>::max();

// TEXMEX readers; read at most `max_rows` rows (a truncated LAST row is
// still Corruption).
Result<FloatMatrix> LoadFvecs(const std::string& path, size_t max_rows = kAllRows);
Result<Int32Matrix> LoadIvecs(const std::string& path, size_t max_rows = kAllRows);
Result<FloatMatrix> LoadBvecs(const std::string& path, size_t max_rows = kAllRows);
// EINVAL for cols == 0 or cols > INT32_MAX.
Status WriteFvecs(const std::string& path, const FloatMatrix& m);
Status WriteIvecs(const std::string& path, const Int32Matrix& m);

// .npy: the raw array (data bytes little-endian, as in the file).
enum class NpyType : uint8_t { kFloat32, kFloat16, kInt8, kUint8, kInt32 };
struct NpyArray {
  NpyType type = NpyType::kFloat32;
  std::vector<size_t> shape;  // 1 or 2 entries
  std::vector<uint8_t> bytes;
};
// Bytes of one element of type t.
size_t NpyItemSize(NpyType t);
// Parses a whole .npy image held in memory.
Result<NpyArray> ParseNpy(std::span<const uint8_t> file);
Result<NpyArray> LoadNpy(const std::string& path);
// Any supported dtype converted to float32 / int32 (float data must hold
// integral values within int32 range for the int32 loader).
Result<FloatMatrix> NpyToFloat(const NpyArray& a);
Result<Int32Matrix> NpyToInt32(const NpyArray& a);
Result<FloatMatrix> LoadNpyFloat(const std::string& path);
// Writes a version 1.0 file with dtype <f4 / <i4 and shape (rows, cols).
Status WriteNpy(const std::string& path, const FloatMatrix& m);
Status WriteNpy(const std::string& path, const Int32Matrix& m);

// Synthetic embeddings: a Gaussian mixture living near a low-dimensional
// subspace. Each cluster centre is drawn inside a shared `intrinsic_dim`
// subspace with a decaying spectrum; each cluster has its own random
// subspace of the same rank with anisotropic, decaying scales; small
// isotropic noise fills the ambient space. Cluster sizes are skewed
// (weight of cluster c proportional to 1/sqrt(c+1)). Queries come from the
// same mixture (fresh draws, not copies of base rows).
//
// Deterministic: the same options give bit-identical output on a given
// platform (the generator uses its own PRNG and Box-Muller transform, not
// std::*_distribution).
struct SyntheticOptions {
  size_t dim = 128;
  size_t num_base = 10000;
  size_t num_queries = 100;
  size_t num_clusters = 64;
  size_t intrinsic_dim = 16;     // <= dim
  float spectrum_decay = 0.85f;  // scale of latent axis j is decay^j, in (0, 1]
  float cluster_spread = 4.0f;   // spread of centres relative to cluster scale
  float noise = 0.05f;           // isotropic noise std
  bool normalize = false;        // L2-normalise every vector
  uint64_t seed = 42;
};
struct SyntheticDataset {
  FloatMatrix base;
  FloatMatrix queries;
};
// EINVAL for zero sizes, intrinsic_dim > dim or out-of-range parameters.
Result<SyntheticDataset> GenerateSynthetic(const SyntheticOptions& options);

// Exact k nearest base rows (ids are row indexes) of every query, best
// first, computed with FlatIndex::SearchBatch on `num_threads` threads
// (0 = hardware concurrency). EINVAL if k == 0, k > base.rows, k > 10000,
// the column counts differ, or the data holds NaN/Inf.
struct GroundTruth {
  size_t k = 0;
  std::vector<uint64_t> ids;     // queries.rows * k
  std::vector<float> distances;  // queries.rows * k, Neighbor convention
};
Result<GroundTruth> ComputeGroundTruth(const FloatMatrix& base, const FloatMatrix& queries,
                                       size_t k, Metric metric, size_t num_threads = 0);

// Fraction of the true top-k ids found in each result list, averaged over
// queries (result lists may be shorter than k). REQUIRES: results.size() ==
// number of ground-truth rows.
double RecallAtK(const GroundTruth& truth, const std::vector<std::vector<Neighbor>>& results);

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_DATASET_H_
