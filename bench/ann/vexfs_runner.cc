// VexFS's own indexes (FlatIndex, HnswIndex) behind the AnnRunner interface.
// Compiled with the project's normal flags: VexFS picks its SIMD kernels at
// run time (distance.h), never with -march=native.
#include <algorithm>
#include <numeric>

#include "runner.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/flat_index.h"
#include "vexfs/engine/hnsw.h"

namespace vexfs::bench {
namespace {

using engine::ElementType;
using engine::Metric;

Metric ToVexfs(AnnMetric m) { return m == AnnMetric::kL2 ? Metric::kL2 : Metric::kInnerProduct; }

class VexfsRunnerBase : public AnnRunner {
 public:
  explicit VexfsRunnerBase(const RunnerConfig& c) : config_(c) {}
  std::string engine() const override { return "vexfs"; }

  void Search(const float* query, size_t k, uint64_t* ids) override {
    engine::SearchParams p;
    p.k = k;
    p.effort = effort_;
    auto r = index_->Search({query, config_.dim}, p);
    size_t i = 0;
    if (r.ok()) {
      for (const engine::Neighbor& nb : *r) ids[i++] = nb.id;
    }
    for (; i < k; ++i) ids[i] = UINT64_MAX;
  }
  size_t MemoryBytes() const override { return index_ ? index_->MemoryBytes() : 0; }
  std::string memory_source() const override { return "engine"; }
  void SetEffort(size_t effort) override { effort_ = effort; }

 protected:
  static std::vector<uint64_t> Ids(size_t n) {
    std::vector<uint64_t> ids(n);
    std::iota(ids.begin(), ids.end(), uint64_t{0});
    return ids;
  }

  RunnerConfig config_;
  std::unique_ptr<engine::VectorIndex> index_;
  size_t effort_ = 0;
};

class VexfsFlatRunner final : public VexfsRunnerBase {
 public:
  using VexfsRunnerBase::VexfsRunnerBase;
  std::string index() const override { return "flat-f32"; }
  std::string effort_name() const override { return ""; }

  bool Build(const float* base, size_t n, size_t threads, std::string* error) override {
    engine::FlatIndexOptions o;
    o.dim = config_.dim;
    o.metric = ToVexfs(config_.metric);
    o.num_threads = threads;
    auto created = engine::FlatIndex::Create(o);
    if (!created.ok()) {
      *error = created.status().ToString();
      return false;
    }
    std::unique_ptr<engine::FlatIndex> flat = std::move(*created);
    const std::vector<uint64_t> ids = Ids(n);
    Status st = flat->AddBatch(ids, {base, n * config_.dim});
    if (!st.ok()) {
      *error = st.ToString();
      return false;
    }
    index_ = std::move(flat);
    return true;
  }
};

class VexfsHnswRunner final : public VexfsRunnerBase {
 public:
  VexfsHnswRunner(const RunnerConfig& c, VexfsStorage s) : VexfsRunnerBase(c), storage_(s) {}
  std::string index() const override {
    return storage_ == VexfsStorage::kF16    ? "hnsw-f16"
           : storage_ == VexfsStorage::kInt8 ? "hnsw-i8"
                                             : "hnsw-f32";
  }
  std::string effort_name() const override { return "ef_search"; }

  bool Build(const float* base, size_t n, size_t threads, std::string* error) override {
    engine::HnswParams p;
    p.dim = config_.dim;
    p.metric = ToVexfs(config_.metric);
    p.element_type = storage_ == VexfsStorage::kF16    ? ElementType::kFloat16
                     : storage_ == VexfsStorage::kInt8 ? ElementType::kInt8
                                                       : ElementType::kFloat32;
    p.M = config_.M;
    p.ef_construction = config_.ef_construction;
    p.max_elements = n;
    p.seed = config_.seed;
    auto created = engine::HnswIndex::Create(p);
    if (!created.ok()) {
      *error = created.status().ToString();
      return false;
    }
    std::unique_ptr<engine::HnswIndex> hnsw = std::move(*created);
    if (storage_ == VexfsStorage::kInt8) {
      // Train the quantizer explicitly (part of the build time) on up to
      // 64k rows, so the batch below goes straight into the graph.
      const size_t rows = std::min<size_t>(n, 65536);
      Status st = hnsw->Train({base, rows * config_.dim});
      if (!st.ok()) {
        *error = st.ToString();
        return false;
      }
    }
    const std::vector<uint64_t> ids = Ids(n);
    Status st = hnsw->AddBatch(ids, {base, n * config_.dim}, threads);
    if (!st.ok()) {
      *error = st.ToString();
      return false;
    }
    index_ = std::move(hnsw);
    return true;
  }

 private:
  VexfsStorage storage_;
};

}  // namespace

std::unique_ptr<AnnRunner> MakeVexfsFlatRunner(const RunnerConfig& config) {
  return std::make_unique<VexfsFlatRunner>(config);
}
std::unique_ptr<AnnRunner> MakeVexfsHnswRunner(const RunnerConfig& config, VexfsStorage storage) {
  return std::make_unique<VexfsHnswRunner>(config, storage);
}
std::string VexfsBuildInfo() {
  return std::string("vexfs engine, project flags, run-time kernels: ") +
         engine::SimdLevelName(engine::Kernels().level);
}

}  // namespace vexfs::bench
