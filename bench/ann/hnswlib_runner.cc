// hnswlib (the Debian libhnswlib-dev headers) behind the AnnRunner interface.
//
// This translation unit, and only this one, is compiled with
// -O3 -march=native (see CMakeLists.txt) so that hnswlib's compile-time SIMD
// selection (__AVX512F__ / __AVX__ / __SSE__) picks the best kernels for the
// bench machine: hnswlib at its best, as its users deploy it.
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <hnswlib/hnswlib.h>

#include "runner.h"

namespace vexfs::bench {
namespace {

class HnswlibRunner final : public AnnRunner {
 public:
  explicit HnswlibRunner(const RunnerConfig& c) : config_(c) {
    if (c.metric == AnnMetric::kL2) {
      space_ = std::make_unique<hnswlib::L2Space>(c.dim);
    } else {
      space_ = std::make_unique<hnswlib::InnerProductSpace>(c.dim);
    }
  }

  std::string engine() const override { return "hnswlib"; }
  std::string index() const override { return "hnsw-f32"; }
  std::string effort_name() const override { return "ef_search"; }

  bool Build(const float* base, size_t n, size_t threads, std::string* error) override {
    try {
      index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
          space_.get(), n, config_.M, config_.ef_construction, config_.seed);
    } catch (const std::exception& e) {
      *error = e.what();
      return false;
    }
    // The same parallel insert loop as hnswlib's Python binding (ParallelFor):
    // each worker claims the next row and calls the thread-safe addPoint().
    std::atomic<size_t> next{0};
    std::mutex error_mu;
    std::string first_error;
    auto worker = [&]() {
      for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        try {
          index_->addPoint(base + i * config_.dim, i);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.empty()) first_error = e.what();
          next.store(n);
        }
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < std::max<size_t>(threads, 1); ++t) pool.emplace_back(worker);
    worker();
    for (std::thread& t : pool) t.join();
    if (!first_error.empty()) {
      *error = first_error;
      return false;
    }
    return true;
  }

  void SetEffort(size_t effort) override { index_->setEf(effort); }

  void Search(const float* query, size_t k, uint64_t* ids) override {
    std::priority_queue<std::pair<float, hnswlib::labeltype>> result;
    try {
      result = index_->searchKnn(query, k);
    } catch (const std::exception&) {
      result = {};
    }
    // The queue pops worst first.
    size_t filled = result.size();
    for (size_t i = filled; i < k; ++i) ids[i] = UINT64_MAX;
    while (!result.empty()) {
      ids[--filled] = result.top().second;
      result.pop();
    }
  }

  // hnswlib has no accounting API; this sums the allocations its
  // constructor and addPoint make: the level-0 arena (links + vector +
  // label per element), the upper-level link lists, the per-element level
  // and lock arrays, the label map and the first visited list.
  size_t MemoryBytes() const override {
    if (!index_) return 0;
    const auto& h = *index_;
    size_t bytes = h.max_elements_ * h.size_data_per_element_;
    bytes += h.max_elements_ * sizeof(void*);  // linkLists_
    for (size_t i = 0; i < h.cur_element_count; ++i) {
      if (h.element_levels_[i] > 0) bytes += h.size_links_per_element_ * h.element_levels_[i];
    }
    bytes += h.element_levels_.capacity() * sizeof(int);
    bytes += h.link_list_locks_.size() * sizeof(std::mutex);
    bytes += h.link_list_update_locks_.size() * sizeof(std::mutex);
    // unordered_map node (next, key, value, cached hash) + bucket pointer.
    bytes += h.label_lookup_.size() * (4 * sizeof(void*)) +
             h.label_lookup_.bucket_count() * sizeof(void*);
    bytes += h.max_elements_ * sizeof(hnswlib::vl_type);  // one visited list
    return bytes;
  }
  std::string memory_source() const override { return "computed"; }

 private:
  RunnerConfig config_;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

}  // namespace

std::unique_ptr<AnnRunner> MakeHnswlibRunner(const RunnerConfig& config) {
  return std::make_unique<HnswlibRunner>(config);
}

std::string HnswlibBuildInfo() {
  std::string simd = "scalar";
#if defined(USE_AVX512)
  simd = "AVX-512";
#elif defined(USE_AVX)
  simd = "AVX";
#elif defined(USE_SSE)
  simd = "SSE";
#endif
  return "hnswlib (Debian libhnswlib-dev) -O3 -march=native, kernels: " + simd;
}

}  // namespace vexfs::bench
