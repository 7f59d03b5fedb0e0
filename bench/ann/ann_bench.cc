// vexfs_ann_bench: VexFS's vector indexes against hnswlib and FAISS, in one
// process, on the same data, with the same build parameters.
//
// For every data set: exact ground truth (VexFS FlatIndex, checked by the
// flat indexes' own recall of 1.0), then for every engine: build (timed, RSS
// measured around it), then a sweep of the search parameter; each sweep
// point is one JSON object. Results are rewritten after every engine, so an
// interrupted run keeps what it measured. See README.md.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report.h"
#include "runner.h"
#include "vexfs/engine/dataset.h"
#include "bench/timing.h"
#include "vexfs/engine/distance.h"

namespace vexfs::bench {
namespace {

using nlohmann::json;

// Resident set size from /proc/self/statm (second field, in pages).
size_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void Log(const std::string& s) {
  std::fprintf(stderr, "[ann_bench] %s\n", s.c_str());
  std::fflush(stderr);
}

struct Dataset {
  std::string name;
  std::string metric_text;  // as reported: "ip (unit vectors = cosine)", "l2"
  AnnMetric metric = AnnMetric::kL2;
  engine::FloatMatrix base;
  engine::FloatMatrix queries;
};

// Presets: the original prototype's 10k x 1536, a mid-size 768-d set and a
// 1M x 128 set. Embedding-like: clustered, low intrinsic dimension.
struct Preset {
  const char* name;
  size_t n, dim, clusters, intrinsic;
  float decay;
  bool cosine;
};
constexpr Preset kPresets[] = {
    {"10k", 10000, 1536, 64, 128, 0.98f, true},
    {"100k", 100000, 768, 256, 128, 0.98f, true},
    {"1m", 1000000, 128, 1024, 64, 0.97f, false},
};

// Generator knobs shared by the presets; the command line may override them.
struct Shape {
  size_t clusters = 0;   // 0 = preset's
  size_t intrinsic = 0;  // 0 = preset's
  float decay = 0;  // 0 = preset's
  float noise = 0.05f;
};

Result<Dataset> MakePreset(const Preset& p, size_t nq, uint64_t seed, const Shape& shape) {
  engine::SyntheticOptions o;
  o.dim = p.dim;
  o.num_base = p.n;
  o.num_queries = nq;
  o.num_clusters = shape.clusters ? shape.clusters : p.clusters;
  o.intrinsic_dim = std::min(p.dim, shape.intrinsic ? shape.intrinsic : p.intrinsic);
  o.spectrum_decay = shape.decay > 0 ? shape.decay : p.decay;
  o.noise = shape.noise;
  o.normalize = p.cosine;
  o.seed = seed;
  auto r = engine::GenerateSynthetic(o);
  if (!r.ok()) return r.status();
  Dataset d;
  d.name = fmt::format("{}x{}", p.name, p.dim);
  d.metric = p.cosine ? AnnMetric::kInnerProduct : AnnMetric::kL2;
  d.metric_text = p.cosine ? "ip (unit vectors = cosine)" : "l2";
  d.base = std::move(r->base);
  d.queries = std::move(r->queries);
  return d;
}

Result<engine::FloatMatrix> LoadAny(const std::string& path, size_t max_rows) {
  if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") {
    auto m = engine::LoadNpyFloat(path);
    if (!m.ok() || m->rows <= max_rows) return m;
    m->rows = max_rows;
    m->data.resize(max_rows * m->cols);
    return m;
  }
  return engine::LoadFvecs(path, max_rows);
}

Result<Dataset> LoadFiles(const std::string& base, const std::string& queries,
                          const std::string& metric, size_t max_base, size_t nq) {
  auto b = LoadAny(base, max_base);
  if (!b.ok()) return b.status();
  auto q = LoadAny(queries, nq);
  if (!q.ok()) return q.status();
  if (b->cols != q->cols) return Status::InvalidArgument("base and queries differ in dim");
  Dataset d;
  std::string stem = base.substr(base.find_last_of('/') + 1);
  d.name = fmt::format("{}:{}x{}", stem, b->rows, b->cols);
  if (metric == "l2") {
    d.metric = AnnMetric::kL2;
    d.metric_text = "l2";
  } else {
    d.metric = AnnMetric::kInnerProduct;
    d.metric_text = metric == "ip" ? "ip" : "ip (normalised by the bench = cosine)";
    if (metric == "cosine") {
      for (auto* m : {&*b, &*q}) {
        for (size_t i = 0; i < m->rows; ++i) engine::NormalizeL2(m->data.data() + i * m->cols, m->cols);
      }
    }
  }
  d.base = std::move(*b);
  d.queries = std::move(*q);
  return d;
}

struct Options {
  std::vector<std::string> datasets = {"10k", "100k", "1m"};
  std::string base, queries, metric = "l2";
  size_t max_base = engine::kAllRows;
  size_t nq = 1000;
  size_t k = 10;
  size_t threads = 0;
  std::vector<size_t> ef = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  std::vector<size_t> nprobe = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::vector<std::string> engines = {"vexfs-flat", "vexfs-hnsw-f32", "vexfs-hnsw-f16",
                                      "vexfs-hnsw-i8", "hnswlib", "faiss-flat",
                                      "faiss-hnsw", "faiss-ivf"};
  std::string single_thread_build = "auto";
  size_t search_reps = 2;
  bool interleave = false;
  size_t flat_nq = 0;  // 0 = all queries
  size_t ivf_niter = 10;
  size_t ivf_train_per_list = 64;
  uint64_t seed = 42;
  std::string out = "ann_results.json";
  bool quick = false;
  bool report_only = false;
  Shape shape;
};

struct Job {
  std::string key;  // --engines name
  size_t threads;
  std::unique_ptr<AnnRunner> (*make)(const RunnerConfig&);
};

std::unique_ptr<AnnRunner> MakeVexfsF32(const RunnerConfig& c) {
  return MakeVexfsHnswRunner(c, VexfsStorage::kF32);
}
std::unique_ptr<AnnRunner> MakeVexfsF16(const RunnerConfig& c) {
  return MakeVexfsHnswRunner(c, VexfsStorage::kF16);
}
std::unique_ptr<AnnRunner> MakeVexfsI8(const RunnerConfig& c) {
  return MakeVexfsHnswRunner(c, VexfsStorage::kInt8);
}

class Bench {
 public:
  explicit Bench(const Options& o) : opt_(o) {}

  void WriteOutputs() const {
    const std::string tmp = opt_.out + ".tmp";
    {
      std::ofstream f(tmp);
      f << points_.dump(2) << "\n";
    }
    std::rename(tmp.c_str(), opt_.out.c_str());
    WriteReports(points_, opt_.out, preamble_);
  }

  static std::string Stem(const std::string& out) {
    return out.size() > 5 && out.substr(out.size() - 5) == ".json" ? out.substr(0, out.size() - 5)
                                                                    : out;
  }
  static void WriteReports(const json& points, const std::string& out,
                           const std::string& preamble) {
    const std::string stem = Stem(out);
    std::ofstream(stem + ".md") << MarkdownReport(points, preamble);
    std::ofstream(stem + ".gp") << GnuplotScript(points, stem + ".png");
  }

  void SetPreamble(const std::string& p) { preamble_ = p; }

  int RunDataset(Dataset& d, size_t build_threads, bool single_thread_builds) {
    const size_t n = d.base.rows, dim = d.base.cols, nq = d.queries.rows;
    Log(fmt::format("{}: n={} dim={} nq={} metric={}", d.name, n, dim, nq, d.metric_text));
    auto t0 = Clock::now();
    auto gt = engine::ComputeGroundTruth(d.base, d.queries, opt_.k,
                                         d.metric == AnnMetric::kL2 ? engine::Metric::kL2
                                                                    : engine::Metric::kInnerProduct,
                                         build_threads);
    if (!gt.ok()) {
      Log("ground truth failed: " + gt.status().ToString());
      return 1;
    }
    Log(fmt::format("ground truth in {:.1f} s", Seconds(t0, Clock::now())));

    RunnerConfig cfg;
    cfg.dim = dim;
    cfg.metric = d.metric;
    cfg.M = 16;
    cfg.ef_construction = 200;
    cfg.nlist = std::max<size_t>(1, static_cast<size_t>(4 * std::sqrt(static_cast<double>(n))));
    cfg.seed = 100;
    cfg.ivf_niter = opt_.ivf_niter;
    cfg.ivf_train_per_list = opt_.ivf_train_per_list;

    std::vector<Job> jobs = {
        {"vexfs-flat", build_threads, MakeVexfsFlatRunner},
        {"faiss-flat", build_threads, MakeFaissFlatRunner},
        {"vexfs-hnsw-f32", build_threads, MakeVexfsF32},
        {"vexfs-hnsw-f16", build_threads, MakeVexfsF16},
        {"vexfs-hnsw-i8", build_threads, MakeVexfsI8},
        {"hnswlib", build_threads, MakeHnswlibRunner},
        {"faiss-hnsw", build_threads, MakeFaissHnswRunner},
        {"faiss-ivf", build_threads, MakeFaissIvfRunner},
    };
    if (single_thread_builds && build_threads > 1) {
      jobs.push_back({"vexfs-hnsw-f32", 1, MakeVexfsF32});
      jobs.push_back({"hnswlib", 1, MakeHnswlibRunner});
    }
    int failures = 0;
    std::vector<Built> kept;  // --interleave: graph indexes swept together below
    for (const Job& job : jobs) {
      if (std::find(opt_.engines.begin(), opt_.engines.end(), job.key) == opt_.engines.end()) {
        continue;
      }
      Built b;
      b.r = job.make(cfg);
      if (!b.r) {
        Log(job.key + ": not compiled in, skipped");
        continue;
      }
      b.threads = job.threads;
      if (!BuildOne(d, b)) {
        ++failures;
        continue;
      }
      if (opt_.interleave && b.r->effort_name() == "ef_search") {
        kept.push_back(std::move(b));
        continue;
      }
      std::vector<Built*> one = {&b};
      Sweep(d, *gt, cfg, one);
      b.r.reset();
      malloc_trim(0);
      WriteOutputs();
    }
    if (!kept.empty()) {
      std::vector<Built*> all;
      for (Built& b : kept) all.push_back(&b);
      Sweep(d, *gt, cfg, all);
      WriteOutputs();
    }
    return failures;
  }

 private:
  // A built index and what its build measured.
  struct Built {
    std::unique_ptr<AnnRunner> r;
    size_t threads = 0;
    double build_s = 0, build_cpu_s = 0, rss_mb = 0;
    size_t engine_bytes = 0;
  };

  bool BuildOne(const Dataset& d, Built& b) {
    AnnRunner& r = *b.r;
    const size_t n = d.base.rows;
    const std::string label = Label(b);
    malloc_trim(0);
    const size_t rss0 = RssBytes();
    std::string error;
    const double cpu0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    const auto t0 = Clock::now();
    const bool ok = r.Build(d.base.data.data(), n, b.threads, &error);
    b.build_s = Seconds(t0, Clock::now());
    b.build_cpu_s = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    const size_t rss1 = RssBytes();
    if (!ok) {
      Log(label + ": build FAILED: " + error);
      return false;
    }
    b.rss_mb = (static_cast<double>(rss1) - static_cast<double>(rss0)) / (1 << 20);
    b.engine_bytes = r.MemoryBytes();
    Log(fmt::format("{}: built in {:.2f} s, {:.1f} CPU s ({:.0f} vectors/s), RSS delta {:.1f} MB, "
                    "{} {:.1f} MB",
                    label, b.build_s, b.build_cpu_s, n / b.build_s, b.rss_mb, r.memory_source(),
                    b.engine_bytes / double(1 << 20)));
    return true;
  }

  static std::string Label(const Built& b) {
    return fmt::format("{} {} ({} threads)", b.r->engine(), b.r->index(), b.threads);
  }

  // Sweeps the search parameter of every index in `set` (all of the same
  // effort kind); with several, each rep times one pass of every index in
  // turn.
  void Sweep(const Dataset& d, const engine::GroundTruth& gt, const RunnerConfig& cfg,
             const std::vector<Built*>& set) {
    const size_t n = d.base.rows, dim = d.base.cols, k = opt_.k;
    const AnnRunner& r0 = *set.front()->r;
    const bool exact = r0.effort_name().empty();
    // Exact scans are slow and their recall is 1 by construction: they may
    // be timed on a prefix of the queries (--flat-nq), once.
    const size_t nq = exact && opt_.flat_nq ? std::min(opt_.flat_nq, d.queries.rows)
                                            : d.queries.rows;
    const size_t reps = exact ? 1 : std::max<size_t>(opt_.search_reps, 1);
    std::vector<size_t> efforts = {0};
    if (r0.effort_name() == "ef_search") efforts = opt_.ef;
    if (r0.effort_name() == "nprobe") {
      efforts.clear();
      for (size_t p : opt_.nprobe) {
        if (p <= cfg.nlist) efforts.push_back(p);
      }
    }
    const size_t m = set.size();
    std::vector<std::vector<uint64_t>> ids(m, std::vector<uint64_t>(nq * k));
    std::vector<double> lat(nq);
    std::vector<std::vector<double>> best_lat(m);
    const size_t train_n = std::min(n, cfg.nlist * cfg.ivf_train_per_list);
    for (size_t effort : efforts) {
      for (Built* b : set) {
        b->r->SetEffort(effort);
        for (size_t i = 0; i < std::min<size_t>(nq, exact ? 10 : 100); ++i) {  // warm-up
          b->r->Search(d.queries.data.data() + i * dim, k, ids[0].data());
        }
      }
      std::vector<double> best_total(m, 0), best_cpu(m, 0);
      for (size_t rep = 0; rep < reps; ++rep) {
        for (size_t x = 0; x < m; ++x) {
          AnnRunner& r = *set[x]->r;
          double total = 0;
          const double c0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
          for (size_t i = 0; i < nq; ++i) {
            const auto a = Clock::now();
            r.Search(d.queries.data.data() + i * dim, k, ids[x].data() + i * k);
            lat[i] = std::chrono::duration<double, std::micro>(Clock::now() - a).count();
            total += lat[i];
          }
          const double cpu = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
          if (rep == 0 || total < best_total[x]) {
            best_total[x] = total;
            best_cpu[x] = cpu;
            best_lat[x] = lat;
          }
        }
      }
      for (size_t x = 0; x < m; ++x) {
        const Built& b = *set[x];
        const AnnRunner& r = *b.r;
        size_t hits = 0;
        for (size_t i = 0; i < nq; ++i) {
          const uint64_t* truth = gt.ids.data() + i * gt.k;
          for (size_t j = 0; j < k; ++j) {
            hits += std::find(truth, truth + gt.k, ids[x][i * k + j]) != truth + gt.k;
          }
        }
        const double recall = static_cast<double>(hits) / static_cast<double>(nq * k);
        std::vector<double> sorted = best_lat[x];
        std::sort(sorted.begin(), sorted.end());
        auto pct = [&](double q) { return sorted[static_cast<size_t>(q * (nq - 1) + 0.5)]; };

        json params = json::object();
        if (r.effort_name() == "ef_search") {
          params = {{"M", cfg.M}, {"ef_construction", cfg.ef_construction}, {"ef_search", effort}};
        } else if (r.effort_name() == "nprobe") {
          params = {{"nlist", cfg.nlist},
                    {"nprobe", effort},
                    {"kmeans_iter", cfg.ivf_niter},
                    {"train_n", train_n}};
        }
        json p = {
            {"engine", r.engine()},
            {"index", r.index()},
            {"dataset", d.name},
            {"n", n},
            {"dim", dim},
            {"metric", d.metric_text},
            {"nq", nq},
            {"k", k},
            {"params", params},
            {"recall_at_10", recall},
            {"qps", nq / (best_total[x] * 1e-6)},
            {"qps_cpu", nq / std::max(best_cpu[x], 1e-9)},
            {"p50_us", pct(0.50)},
            {"p99_us", pct(0.99)},
            {"search_threads", 1},
            {"search_interleaved", m > 1},
            {"threads", b.threads},
            {"build_s", b.build_s},
            {"build_vectors_per_s", n / b.build_s},
            {"build_cpu_s", b.build_cpu_s},
            {"memory_rss_mb", b.rss_mb},
        };
        if (b.engine_bytes > 0) {
          p["memory_engine_mb"] = b.engine_bytes / double(1 << 20);
          p["memory_engine_source"] = r.memory_source();
          p["memory_mb"] = p["memory_engine_mb"];
          p["memory_source"] = r.memory_source();
        } else {
          p["memory_engine_mb"] = nullptr;
          p["memory_mb"] = b.rss_mb;
          p["memory_source"] = "rss_delta";
        }
        Log(fmt::format("  {} {}: recall {:.4f} qps {:.0f} (cpu-time qps {:.0f}) p50 {:.1f} us "
                        "p99 {:.1f} us",
                        Label(b), params.dump(), recall, p["qps"].get<double>(),
                        p["qps_cpu"].get<double>(), pct(0.5), pct(0.99)));
        points_.push_back(std::move(p));
      }
    }
  }

  Options opt_;
  json points_ = json::array();
  std::string preamble_;
};

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int Main(int argc, char** argv) {
  // A fixed mmap threshold (which disables glibc's dynamic one) sends every
  // large index array to mmap, so freeing an index returns its pages and
  // the next build's RSS delta starts from a clean baseline.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  Options o;
  std::string datasets = "10k,100k,1m", engines, ef, nprobe;
  CLI::App app{"vexfs_ann_bench: VexFS FlatIndex/HnswIndex vs hnswlib and FAISS (see bench/ann/README.md)"};
  app.add_option("--datasets", datasets, "comma list of presets: 10k (10000x1536, cosine), "
                                         "100k (100000x768, cosine), 1m (1000000x128, l2)");
  app.add_flag("--quick", o.quick, "10k preset only, short ef/nprobe sweeps");
  app.add_option("--base", o.base, "base vectors (.fvecs or .npy); replaces the presets");
  app.add_option("--queries", o.queries, "query vectors (.fvecs or .npy), with --base");
  app.add_option("--metric", o.metric, "metric for --base: l2, ip or cosine")
      ->check(CLI::IsMember({"l2", "ip", "cosine"}));
  app.add_option("--max-base", o.max_base, "use at most this many base rows");
  app.add_option("--nq", o.nq, "number of queries")->check(CLI::Range(1, 1000000));
  app.add_option("--threads", o.threads, "build threads for every engine (0 = all cores)");
  app.add_option("--ef", ef, "comma list of ef_search values");
  app.add_option("--nprobe", nprobe, "comma list of IVF nprobe values");
  app.add_option("--engines", engines,
                 "comma list among vexfs-flat,vexfs-hnsw-f32,vexfs-hnsw-f16,vexfs-hnsw-i8,hnswlib,faiss-flat,"
                 "faiss-hnsw,faiss-ivf (default all)");
  app.add_option("--single-thread-build", o.single_thread_build,
                 "also build VexFS hnsw-f32 and hnswlib with 1 thread: auto (10k preset only), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--search-reps", o.search_reps, "timed passes per point; the fastest is kept");
  app.add_flag("--interleave", o.interleave,
               "build every graph index first, then alternate their timed passes at each "
               "ef (load from other work then hits every engine alike; needs the memory "
               "of all indexes at once)");
  app.add_option("--flat-nq", o.flat_nq, "time exact (flat) indexes on this many queries (0 = all)");
  app.add_option("--ivf-niter", o.ivf_niter, "IVF k-means iterations")->check(CLI::Range(1, 100));
  app.add_option("--ivf-train-per-list", o.ivf_train_per_list,
                 "IVF trains on min(n, nlist * this) rows")
      ->check(CLI::Range(1, 256));
  app.add_option("--seed", o.seed, "synthetic data seed");
  app.add_option("--clusters", o.shape.clusters, "synthetic: number of clusters (0 = preset)");
  app.add_option("--intrinsic-dim", o.shape.intrinsic, "synthetic: latent rank (0 = preset)");
  app.add_option("--decay", o.shape.decay, "synthetic: spectrum decay per latent axis (0 = preset)");
  app.add_option("--noise", o.shape.noise, "synthetic: isotropic noise std");
  app.add_option("--out", o.out, "JSON output; FILE.md and FILE.gp are written beside it");
  app.add_flag("--report-only", o.report_only, "only regenerate FILE.md/FILE.gp from --out");
  CLI11_PARSE(app, argc, argv);

  if (o.report_only) {
    std::ifstream f(o.out);
    json points = json::parse(f, nullptr, false);
    if (!points.is_array()) {
      Log("cannot parse " + o.out);
      return 1;
    }
    Bench::WriteReports(points, o.out, "");
    return 0;
  }
  o.datasets = Split(datasets);
  if (!engines.empty()) o.engines = Split(engines);
  if (o.quick) {
    o.datasets = {"10k"};
    o.ef = {10, 16, 32, 64, 128, 256};
    o.nprobe = {1, 4, 8, 16, 32, 64};
    if (o.flat_nq == 0) o.flat_nq = 200;
    if (app.count("--ivf-niter") == 0) o.ivf_niter = 5;
  }
  if (!ef.empty()) {
    o.ef.clear();
    for (const auto& s : Split(ef)) o.ef.push_back(std::stoul(s));
  }
  if (!nprobe.empty()) {
    o.nprobe.clear();
    for (const auto& s : Split(nprobe)) o.nprobe.push_back(std::stoul(s));
  }
  const size_t threads =
      o.threads ? o.threads : std::max<unsigned>(1, std::thread::hardware_concurrency());

  Bench bench(o);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  bench.SetPreamble(fmt::format(
      "- run: {} on {} ({}, {} hardware threads); build threads for every engine: {}\n"
      "- {}\n- {}\n- {}\n",
      when, host, CpuModel(), std::thread::hardware_concurrency(), threads, VexfsBuildInfo(),
      HnswlibBuildInfo(), FaissBuildInfo()));
  Log(VexfsBuildInfo());
  Log(HnswlibBuildInfo());
  Log(FaissBuildInfo());

  int failures = 0;
  if (!o.base.empty()) {
    if (o.queries.empty()) {
      Log("--base needs --queries");
      return 2;
    }
    auto d = LoadFiles(o.base, o.queries, o.metric, o.max_base, o.nq);
    if (!d.ok()) {
      Log("load failed: " + d.status().ToString());
      return 1;
    }
    failures += bench.RunDataset(*d, threads, o.single_thread_build == "on");
  } else {
    for (const std::string& name : o.datasets) {
      auto preset = std::find_if(std::begin(kPresets), std::end(kPresets),
                                 [&](const Preset& p) { return name == p.name; });
      if (preset == std::end(kPresets)) {
        Log("unknown data set " + name);
        return 2;
      }
      const auto t0 = Clock::now();
      auto d = MakePreset(*preset, o.nq, o.seed, o.shape);
      if (!d.ok()) {
        Log("generate failed: " + d.status().ToString());
        return 1;
      }
      Log(fmt::format("generated {} in {:.1f} s", d->name, Seconds(t0, Clock::now())));
      const bool st = o.single_thread_build == "on" ||
                      (o.single_thread_build == "auto" && name == "10k");
      failures += bench.RunDataset(*d, threads, st);
    }
  }
  bench.WriteOutputs();
  Log(fmt::format("wrote {} and {}.md / .gp", o.out, Bench::Stem(o.out)));
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace vexfs::bench

int main(int argc, char** argv) { return vexfs::bench::Main(argc, argv); }
