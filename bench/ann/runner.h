// The one interface every engine under test implements in the ANN benchmark.
//
// Each engine lives in its own translation unit so that each can be compiled
// with its own flags: hnswlib_runner.cc gets -O3 -march=native (hnswlib's
// best configuration on the bench machine); VexFS code never does. This
// header is plain C++ (no VexFS, hnswlib or faiss types) so that it can be
// shared by all of them.
//
// Lifecycle: construct through a factory, Build() once, then any number of
// SetEffort() + Search() calls. Build() may use `threads` threads; Search()
// must run on the calling thread only (the benchmark measures single-thread
// latency). A runner is not thread-safe.
#ifndef VEXFS_BENCH_ANN_RUNNER_H_
#define VEXFS_BENCH_ANN_RUNNER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vexfs::bench {

enum class AnnMetric { kL2, kInnerProduct };

struct RunnerConfig {
  size_t dim = 0;
  AnnMetric metric = AnnMetric::kL2;
  size_t M = 16;                 // graph indexes
  size_t ef_construction = 200;  // graph indexes
  size_t nlist = 0;              // IVF
  size_t ivf_niter = 10;         // IVF k-means iterations
  size_t ivf_train_per_list = 64;  // IVF: train on min(n, nlist * this) rows
  uint64_t seed = 100;
};

class AnnRunner {
 public:
  virtual ~AnnRunner() = default;

  // "vexfs", "hnswlib", "faiss".
  virtual std::string engine() const = 0;
  // "hnsw-f32", "flat-f32", "ivf-flat", ...
  virtual std::string index() const = 0;
  // "ef_search", "nprobe", or "" for exact indexes (SetEffort is a no-op).
  virtual std::string effort_name() const = 0;

  // Inserts the n x dim row-major `base` with ids 0..n-1. Returns false and
  // sets *error on failure. Must not throw.
  virtual bool Build(const float* base, size_t n, size_t threads, std::string* error) = 0;
  virtual void SetEffort(size_t effort) = 0;
  // Writes the k best ids, best first, into ids[0..k); missing results are
  // written as UINT64_MAX. Must not throw.
  virtual void Search(const float* query, size_t k, uint64_t* ids) = 0;

  // The engine's own memory figure in bytes and what it is, or 0 / "" when
  // the engine has none. "engine" = the index's own accounting API;
  // "computed" = derived by this runner from the index's internal sizes.
  virtual size_t MemoryBytes() const = 0;
  virtual std::string memory_source() const = 0;
};

// Each factory returns null when the engine is not compiled in.
std::unique_ptr<AnnRunner> MakeVexfsFlatRunner(const RunnerConfig& config);
// How VexFS's HnswIndex stores vectors: float32, binary16
// (ElementType::kFloat16) or int8 codes (ElementType::kInt8, quantizer
// trained on the first batch, no re-ranking source).
enum class VexfsStorage { kF32, kF16, kInt8 };
std::unique_ptr<AnnRunner> MakeVexfsHnswRunner(const RunnerConfig& config, VexfsStorage storage);
std::unique_ptr<AnnRunner> MakeHnswlibRunner(const RunnerConfig& config);
std::unique_ptr<AnnRunner> MakeFaissFlatRunner(const RunnerConfig& config);
std::unique_ptr<AnnRunner> MakeFaissHnswRunner(const RunnerConfig& config);
std::unique_ptr<AnnRunner> MakeFaissIvfRunner(const RunnerConfig& config);
// Describes how the engine was built, e.g. "hnswlib 0.6.2 -O3 -march=native".
std::string VexfsBuildInfo();
std::string HnswlibBuildInfo();
std::string FaissBuildInfo();

}  // namespace vexfs::bench

#endif  // VEXFS_BENCH_ANN_RUNNER_H_
