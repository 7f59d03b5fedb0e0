// FAISS (the Debian libfaiss-dev static library) behind the AnnRunner
// interface: IndexFlat{L2,IP}, IndexHNSWFlat and IndexIVFFlat.
//
// FAISS parallelises add/train with OpenMP; Build() sets the OpenMP thread
// count to the requested build threads and back to 1 afterwards, so every
// Search() is single-threaded like the other engines'. FAISS reports errors
// with exceptions; none escape this file.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <limits>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/utils/distances.h>
#include <faiss/utils/utils.h>

#include "runner.h"

namespace vexfs::bench {
namespace {

faiss::MetricType ToFaiss(AnnMetric m) {
  return m == AnnMetric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

class FaissRunnerBase : public AnnRunner {
 public:
  explicit FaissRunnerBase(const RunnerConfig& c) : config_(c) {}
  std::string engine() const override { return "faiss"; }

  bool Build(const float* base, size_t n, size_t threads, std::string* error) override {
    omp_set_num_threads(static_cast<int>(std::max<size_t>(threads, 1)));
    bool ok = true;
    try {
      Create();
      TrainAndAdd(base, n);
    } catch (const std::exception& e) {
      *error = e.what();
      ok = false;
    }
    omp_set_num_threads(1);
    return ok;
  }

  void Search(const float* query, size_t k, uint64_t* ids) override {
    labels_.resize(k);
    distances_.resize(k);
    try {
      index_->search(1, query, static_cast<faiss::Index::idx_t>(k), distances_.data(),
                     labels_.data());
    } catch (const std::exception&) {
      std::fill(labels_.begin(), labels_.end(), -1);
    }
    for (size_t i = 0; i < k; ++i) {
      ids[i] = labels_[i] < 0 ? UINT64_MAX : static_cast<uint64_t>(labels_[i]);
    }
  }

 protected:
  virtual void Create() = 0;
  virtual void TrainAndAdd(const float* base, size_t n) {
    index_->add(static_cast<faiss::Index::idx_t>(n), base);
  }

  RunnerConfig config_;
  std::unique_ptr<faiss::Index> index_;
  std::vector<faiss::Index::idx_t> labels_;
  std::vector<float> distances_;
};

class FaissFlatRunner final : public FaissRunnerBase {
 public:
  using FaissRunnerBase::FaissRunnerBase;
  std::string index() const override { return "flat-f32"; }
  std::string effort_name() const override { return ""; }
  void SetEffort(size_t) override {}
  size_t MemoryBytes() const override {
    auto* flat = static_cast<const faiss::IndexFlat*>(index_.get());
    return flat ? flat->codes.capacity() : 0;
  }
  std::string memory_source() const override { return "computed"; }

 private:
  void Create() override {
    index_ = std::make_unique<faiss::IndexFlat>(config_.dim, ToFaiss(config_.metric));
  }
};

class FaissHnswRunner final : public FaissRunnerBase {
 public:
  using FaissRunnerBase::FaissRunnerBase;
  std::string index() const override { return "hnsw-f32"; }
  std::string effort_name() const override { return "ef_search"; }
  void SetEffort(size_t effort) override { hnsw()->hnsw.efSearch = static_cast<int>(effort); }
  // Flat storage codes plus the HNSW arrays (levels, offsets, neighbours).
  size_t MemoryBytes() const override {
    const faiss::IndexHNSWFlat* h = hnsw();
    if (!h) return 0;
    const auto* storage = static_cast<const faiss::IndexFlat*>(h->storage);
    return storage->codes.capacity() + h->hnsw.levels.capacity() * sizeof(int) +
           h->hnsw.offsets.capacity() * sizeof(size_t) +
           h->hnsw.neighbors.capacity() * sizeof(faiss::HNSW::storage_idx_t);
  }
  std::string memory_source() const override { return "computed"; }

 private:
  faiss::IndexHNSWFlat* hnsw() const { return static_cast<faiss::IndexHNSWFlat*>(index_.get()); }
  void Create() override {
    auto h = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(config_.dim),
                                                    static_cast<int>(config_.M),
                                                    ToFaiss(config_.metric));
    h->hnsw.efConstruction = static_cast<int>(config_.ef_construction);
    index_ = std::move(h);
  }
};

class FaissIvfRunner final : public FaissRunnerBase {
 public:
  using FaissRunnerBase::FaissRunnerBase;
  std::string index() const override { return "ivf-flat"; }
  std::string effort_name() const override { return "nprobe"; }
  void SetEffort(size_t effort) override { ivf()->nprobe = std::min(effort, ivf()->nlist); }
  // Centroids plus the inverted lists (codes and 64-bit ids).
  size_t MemoryBytes() const override {
    const faiss::IndexIVFFlat* v = ivf();
    if (!v) return 0;
    size_t bytes = static_cast<const faiss::IndexFlat*>(v->quantizer)->codes.capacity();
    if (auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(v->invlists)) {
      for (size_t i = 0; i < v->nlist; ++i) {
        bytes += lists->codes[i].capacity() + lists->ids[i].capacity() * sizeof(faiss::Index::idx_t);
      }
    }
    return bytes;
  }
  std::string memory_source() const override { return "computed"; }

 private:
  faiss::IndexIVFFlat* ivf() const { return static_cast<faiss::IndexIVFFlat*>(index_.get()); }
  void Create() override {
    auto quantizer = std::make_unique<faiss::IndexFlat>(config_.dim, ToFaiss(config_.metric));
    auto v = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), config_.dim, config_.nlist,
                                                   ToFaiss(config_.metric));
    v->own_fields = true;  // the IVF index now deletes the quantizer
    (void)quantizer.release();
    // 10 k-means iterations by default (the library default is 25),
    // spherical k-means for inner product.
    v->cp.niter = static_cast<int>(config_.ivf_niter);
    v->cp.spherical = config_.metric == AnnMetric::kInnerProduct;
    v->cp.seed = static_cast<int>(config_.seed);
    v->verbose = false;
    index_ = std::move(v);
  }
  void TrainAndAdd(const float* base, size_t n) override {
    // At most ivf_train_per_list (64) training points per centroid: faiss
    // would subsample to 256 per centroid anyway, and the Debian build makes
    // k-means on the full 1M set take far too long.
    const size_t train_n = std::min(n, config_.nlist * config_.ivf_train_per_list);
    // The Debian build links the reference BLAS (about 1 GFLOP/s here), so
    // k-means and list assignment use faiss' own SIMD scan (OpenMP over
    // the points) instead of sgemm: several times faster on this machine.
    const int saved = faiss::distance_compute_blas_threshold;
    faiss::distance_compute_blas_threshold = std::numeric_limits<int>::max();
    try {
      index_->train(static_cast<faiss::Index::idx_t>(train_n), base);
      index_->add(static_cast<faiss::Index::idx_t>(n), base);
    } catch (...) {
      faiss::distance_compute_blas_threshold = saved;
      throw;
    }
    faiss::distance_compute_blas_threshold = saved;
  }
};

}  // namespace

std::unique_ptr<AnnRunner> MakeFaissFlatRunner(const RunnerConfig& config) {
  return std::make_unique<FaissFlatRunner>(config);
}
std::unique_ptr<AnnRunner> MakeFaissHnswRunner(const RunnerConfig& config) {
  return std::make_unique<FaissHnswRunner>(config);
}
std::unique_ptr<AnnRunner> MakeFaissIvfRunner(const RunnerConfig& config) {
  return std::make_unique<FaissIvfRunner>(config);
}
std::string FaissBuildInfo() {
  return "faiss " + std::to_string(FAISS_VERSION_MAJOR) + "." +
         std::to_string(FAISS_VERSION_MINOR) + "." + std::to_string(FAISS_VERSION_PATCH) +
         " (Debian libfaiss-dev, compile options: " + faiss::get_compile_options() + ")";
}

}  // namespace vexfs::bench
