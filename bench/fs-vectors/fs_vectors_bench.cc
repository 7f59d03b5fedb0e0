// vexfs_fs_vectors_bench: the original prototype's scenario (10,000 files
// with 1,536-dim vectors, 1,000 queries, k = 10) through a mounted VexFS,
// beside VexFS's engine in-process on the same data in the same run.
//
//   1. data: engine::GenerateSynthetic (bench/ann's "10k" preset shape),
//      cosine, exact ground truth with FlatIndex;
//   2. in-process: HnswIndex built with 1 and T threads (AddBatch), then a
//      single-thread search sweep over ef;
//   3. through the mount (--mount DIR), one fresh collection per insert
//      path: files created and given their vectors (setxattr, ioctl PUT or
//      an external import command), made durable (syncfs + fsync), then
//      the collection is polled until nothing is pending, then the same
//      single-thread search sweep through VEXFS_IOC_SEARCH.
// Output: FILE.json (array, one object per (path, ef)) and FILE.md. See
// README.md. The mount is set up and torn down by run.sh.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <semaphore>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mount_client.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"
#include "vexfs/engine/dataset.h"
#include "bench/timing.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/hnsw.h"
#include "vexfs/block_device.h"
#include "vexfs/filesystem.h"

namespace vexfs::bench {
namespace {

using nlohmann::json;

// CPU time of another process (all its threads, user + system), from its
// CPU-time clock (nanoseconds; /proc/PID/stat counts 10 ms ticks, as much as
// a tenth of one search pass), or -1 if it cannot be read.
double ProcessCpuSeconds(pid_t pid) {
  clockid_t clock;
  if (pid <= 0 || clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double LoadAverage() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

// CPU seconds of this process plus its waited-for children (vexctl).
double SelfAndChildrenCpuSeconds() {
  double t = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage ru{};
    getrusage(who, &ru);
    t += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  }
  return t;
}

void Log(const std::string& s) {
  std::fprintf(stderr, "[fs-vectors %s] %s\n", fmt::format("{:%T}", fmt::localtime(std::time(nullptr))).c_str(),
               s.c_str());
  std::fflush(stderr);
}

std::vector<size_t> ParseList(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(std::stoul(item));
  }
  return out;
}

std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Options {
  size_t n = 10000;
  size_t nq = 1000;
  size_t dim = 1536;
  size_t k = 10;
  size_t threads = 0;  // 0 = hardware concurrency
  size_t M = 16;
  size_t ef_construction = 200;
  // The element type of every index, collections and in-process: "f32"
  // (the default) or "f16" (float32 queries against float16 storage).
  std::string type = "f32";
  std::vector<size_t> ef = {10, 16, 24, 32, 48, 64, 96, 128};
  size_t reps = 5;
  // Passes of each side in the direct same-index pairs after the remount:
  // a pass of 1,000 queries lasts under 0.1 s, and only a few cells are
  // measured there, so more passes are cheap and steady the fastest.
  size_t direct_reps = 15;
  size_t batch = 64;  // staged queries per VEXFS_IOC_SEARCH in the batch sweep; <= 1: none
  size_t qfile_batch = 64;  // queries per binary request on the query file; 0: none
  // Also query-file requests of this many queries (capped at nq): by
  // default all of them in one request, the most a client can amortise the
  // round trips over; 0: none.
  size_t qfile_big_batch = 1000;
  bool qfile_pipeline = false;  // also the query file with the next request written ahead
  size_t qfile_threads = 0;     // > 1: also query-file batches with qq_threads = this
  bool qfile_at_write = false;  // also query-file batches with VEXFS_QUERY_AT_WRITE
  uint64_t seed = 42;
  std::string mount;
  std::string image;  // the mounted image: after the sweeps, unmount and search its indexes in-process
  // After the same-index phase: a shell command that mounts `image` at
  // `mount` again (returning once it is started), the file it writes the
  // daemon's pid to, and the ef values of the direct same-index pairs
  // (empty: per path, the goals table's ef, the smallest whose query-file
  // batches reached recall@10 >= 0.95).
  std::string remount_cmd;
  std::string remount_pidfile;
  std::vector<size_t> direct_ef;
  std::vector<std::string> paths = {"xattr", "xattr-mt", "import"};
  std::string import_cmd;    // template with {dir} {npy} {names} {threads}; empty = driver import
  std::string import_label;  // e.g. "vexctl import"
  std::string scratch = "/tmp";  // where --import-cmd's input file is written
  pid_t daemon_pid = 0;
  double index_timeout_s = 600;
  std::string out;
  std::string note;
  bool quick = false;
};

// One timed single-thread query pass set: the fastest of `reps` passes.
struct SearchPoint {
  size_t ef = 0;
  double recall = 0, qps = 0, qps_cpu = 0, p50_us = 0, p99_us = 0;
  bool cpu_includes_daemon = false;
  size_t id_mismatches = 0;  // hits whose path and inode disagree
  size_t short_results = 0;  // queries with fewer than k hits
};

struct SearchResult {
  int err = 0;
  std::string what;
  SearchPoint point;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

// `query(i, count, out)` answers queries i..i+count-1 into out[0..count)
// (row ids, best first; each list starts empty) and returns 0 or an errno.
// Calls cover `batch` queries (the last one fewer); latency is per call.
// `daemon` (0 = none): a process whose CPU time is added to the pass's.
// The fastest of `reps` passes counts; `warm_up` first runs >= 100 queries.
// Sends batch (first, count) ahead of its QueryFn call (pipelined mode).
using SendFn = std::function<int(size_t first, size_t count)>;

// With `send`, one pass runs on two threads: a sender thread calls
// send(i, min(batch, nq - i)) for i = 0, batch, ... below `end`, at most
// `depth` batches ahead of the calling thread, which calls call(i) for each
// (receives the answer of the same count). Returns 0 or the first errno;
// *what names the failing call and *send_cpu gets the sender thread's CPU
// seconds.
template <typename CallFn>
int PipelinedPass(size_t end, size_t nq, size_t batch, size_t depth, const SendFn& send, CallFn call,
                  std::vector<double>* lat, double* send_cpu, std::string* what) {
  const size_t begin = 0;
  std::counting_semaphore<1024> free_slots(static_cast<std::ptrdiff_t>(depth));
  std::counting_semaphore<1 << 20> sent(0);
  std::atomic<bool> stop{false};
  std::atomic<int> send_err{0};
  std::atomic<size_t> send_at{0};
  std::thread sender([&] {
    const double c0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    for (size_t i = begin; i < end; i += batch) {
      free_slots.acquire();
      if (stop.load()) break;
      if (int e = send(i, std::min(batch, nq - i))) {
        send_at = i;
        send_err = e;
        sent.release();
        break;
      }
      sent.release();
    }
    *send_cpu = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0;
  });
  int err = 0;
  for (size_t i = begin; i < end; i += batch) {
    const auto a = Clock::now();
    sent.acquire();
    if (send_err.load() != 0 && send_at.load() == i) {
      err = send_err;
      *what = fmt::format("sending query {}", i);
      break;
    }
    if (int e = call(i)) {
      err = e;
      *what = fmt::format("query {}", i);
      break;
    }
    if (lat != nullptr) lat->push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    free_slots.release();
  }
  stop = true;
  free_slots.release(static_cast<std::ptrdiff_t>(depth));
  sender.join();
  return err;
}

template <typename QueryFn>
SearchResult SweepPoint(const Options& o, const engine::FloatMatrix& queries,
                        const engine::GroundTruth& gt, size_t ef, size_t batch, pid_t daemon,
                        size_t reps, bool warm_up, QueryFn query, const SendFn& send = nullptr,
                        size_t depth = 0, bool process_cpu = false) {
  const clockid_t cpu_clock = process_cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID;
  SearchResult res;
  SearchPoint& p = res.point;
  p.ef = ef;
  const size_t nq = queries.rows;
  std::vector<std::vector<uint64_t>> ids(nq);
  auto call = [&](size_t i) {
    const size_t count = std::min(batch, nq - i);
    for (size_t j = i; j < i + count; ++j) ids[j].clear();
    return query(i, count, ids.data() + i);
  };
  const size_t warm = warm_up ? std::min<size_t>(nq, std::max<size_t>(100, batch)) : 0;
  if (send) {
    double unused;
    if (int e = PipelinedPass(warm, nq, batch, depth, send, call, nullptr, &unused, &res.what)) {
      res.err = e;
      res.what = "warm-up: " + res.what;
      return res;
    }
  } else {
    for (size_t i = 0; i < warm; i += batch) {
      if (int e = call(i)) {
        res.err = e;
        res.what = "warm-up query";
        return res;
      }
    }
  }
  std::vector<double> lat, best_lat;
  double best_total = 0, best_cpu = 0;
  for (size_t rep = 0; rep < reps; ++rep) {
    lat.clear();
    const double c0 = CpuSeconds(cpu_clock);
    const double d0 = ProcessCpuSeconds(daemon);
    const auto t0 = Clock::now();
    double send_cpu = 0;
    if (send) {
      if (int e = PipelinedPass(nq, nq, batch, depth, send, call, &lat, &send_cpu, &res.what)) {
        res.err = e;
        return res;
      }
    } else {
      for (size_t i = 0; i < nq; i += batch) {
        const auto a = Clock::now();
        if (int e = call(i)) {
          res.err = e;
          res.what = fmt::format("query {}", i);
          return res;
        }
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
      }
    }
    const double total = Seconds(t0, Clock::now());
    double cpu = CpuSeconds(cpu_clock) - c0 + send_cpu;
    const double d1 = ProcessCpuSeconds(daemon);
    p.cpu_includes_daemon = d0 >= 0 && d1 >= 0;
    if (p.cpu_includes_daemon) cpu += d1 - d0;
    if (rep == 0 || total < best_total) {
      best_total = total;
      best_cpu = cpu;
      best_lat = lat;
    }
  }
  size_t hits = 0;
  for (size_t i = 0; i < nq; ++i) {
    const uint64_t* truth = gt.ids.data() + i * gt.k;
    if (ids[i].size() < o.k) ++p.short_results;
    for (size_t j = 0; j < std::min(ids[i].size(), o.k); ++j) {
      hits += std::find(truth, truth + o.k, ids[i][j]) != truth + o.k;
    }
  }
  p.recall = static_cast<double>(hits) / static_cast<double>(nq * o.k);
  p.qps = static_cast<double>(nq) / best_total;
  p.qps_cpu = static_cast<double>(nq) / std::max(best_cpu, 1e-9);
  p.p50_us = Percentile(best_lat, 0.50);
  p.p99_us = Percentile(best_lat, 0.99);
  return res;
}

// The faster of two measurements of the same thing (recall is the same).
void KeepFaster(SearchResult* best, const SearchResult& r, bool first) {
  if (first || r.err || r.point.qps > best->point.qps) *best = r;
}

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  int Run() {
    threads_ = o_.threads ? o_.threads : std::max(1u, std::thread::hardware_concurrency());
    if (!MakeData()) return 1;
    if (!InProcess()) return 1;
    int status = 0;
    if (!o_.mount.empty()) {
      for (const std::string& path : o_.paths) {
        if (!ThroughMount(path)) status = 1;
        Write();
      }
      if (status == 0 && !o_.image.empty() && !SameIndex()) status = 1;
      if (status == 0 && !o_.remount_cmd.empty() && !Direct()) status = 1;
    }
    Write();
    return status;
  }

 private:
  bool MakeData() {
    engine::SyntheticOptions s;  // bench/ann's "10k" preset shape
    s.dim = o_.dim;
    s.num_base = o_.n;
    s.num_queries = o_.nq;
    s.num_clusters = 64;
    s.intrinsic_dim = std::min<size_t>(o_.dim, 128);
    s.spectrum_decay = 0.98f;
    s.noise = 0.05f;
    s.normalize = true;
    s.seed = o_.seed;
    const auto t0 = Clock::now();
    auto d = engine::GenerateSynthetic(s);
    if (!d.ok()) {
      Log("GenerateSynthetic: " + d.status().ToString());
      return false;
    }
    data_ = std::move(*d);
    auto gt = engine::ComputeGroundTruth(data_.base, data_.queries, o_.k, engine::Metric::kCosine);
    if (!gt.ok()) {
      Log("ComputeGroundTruth: " + gt.status().ToString());
      return false;
    }
    gt_ = std::move(*gt);
    Log(fmt::format("data: {} x {} base, {} queries, cosine, exact top-{} in {:.1f} s "
                    "(distance kernels: {})",
                    o_.n, o_.dim, o_.nq, o_.k, Seconds(t0, Clock::now()),
                    engine::SimdLevelName(engine::Kernels().level)));
    return true;
  }

  // `cpu_seconds` (optional): process CPU time spent in AddBatch.
  Result<std::unique_ptr<engine::HnswIndex>> Build(size_t threads, double* seconds,
                                                   double* cpu_seconds = nullptr) {
    engine::HnswParams p;
    p.dim = o_.dim;
    p.metric = engine::Metric::kCosine;
    p.M = o_.M;
    p.ef_construction = o_.ef_construction;
    p.element_type = o_.type == "f16" ? engine::ElementType::kFloat16 : engine::ElementType::kFloat32;
    p.max_elements = o_.n;
    auto idx = engine::HnswIndex::Create(p);
    if (!idx.ok()) return idx.status();
    std::vector<uint64_t> ids(o_.n);
    for (size_t i = 0; i < o_.n; ++i) ids[i] = i;
    const double c0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    const auto t0 = Clock::now();
    Status st = (*idx)->AddBatch(ids, data_.base.data, threads);
    *seconds = Seconds(t0, Clock::now());
    if (cpu_seconds) *cpu_seconds = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (!st.ok()) return st;
    return idx;
  }

  // Single-thread search at `ef` for SweepPoint, of the in-process
  // T-thread build, or of `index` whose ids `rows` maps to data rows
  // (unknown ids become UINT64_MAX).
  // Batches of queries through engine::ParallelSearchBatch on `threads`
  // threads, on the T-thread build.
  auto InProcessBatch(size_t ef, size_t threads) const {
    return [this, ef, threads](size_t i, size_t count, std::vector<uint64_t>* out) {
      engine::SearchParams sp;
      sp.k = o_.k;
      sp.effort = ef;
      auto res = engine::ParallelSearchBatch(
          *index_, std::span<const float>(data_.queries.data.data() + i * o_.dim, count * o_.dim), sp, threads);
      if (!res.ok()) return res.status().err();
      for (size_t c = 0; c < count; ++c) {
        for (const engine::Neighbor& x : (*res)[c]) out[c].push_back(x.id);
      }
      return 0;
    };
  }

  auto InProcessQuery(size_t ef, const engine::HnswIndex* index = nullptr,
                      const std::unordered_map<uint64_t, uint64_t>* rows = nullptr) const {
    return [this, ef, index, rows](size_t i, size_t, std::vector<uint64_t>* out) {
      engine::SearchParams sp;
      sp.k = o_.k;
      sp.effort = ef;
      auto nb = (index ? index : index_.get())->Search(data_.queries.row(i), sp);
      if (!nb.ok()) return nb.status().err();
      for (const engine::Neighbor& x : *nb) {
        if (!rows) {
          out->push_back(x.id);
          continue;
        }
        auto it = rows->find(x.id);
        out->push_back(it == rows->end() ? UINT64_MAX : it->second);
      }
      return 0;
    };
  }

  bool InProcess() {
    double s1 = 0, st = 0;
    const double load = LoadAverage();
    {
      auto one = Build(1, &s1);
      if (!one.ok()) {
        Log("HnswIndex build (1 thread): " + one.status().ToString());
        return false;
      }
    }
    auto idx = Build(threads_, &st);
    if (!idx.ok()) {
      Log(fmt::format("HnswIndex build ({} threads): {}", threads_, idx.status().ToString()));
      return false;
    }
    index_ = std::move(*idx);
    build_1t_per_s_ = o_.n / s1;
    build_per_s_ = o_.n / st;
    Log(fmt::format("in-process: HnswIndex M={} ef_construction={}: {:.0f} vectors/s with 1 "
                    "thread, {:.0f} with {} threads; {:.1f} MB",
                    o_.M, o_.ef_construction, build_1t_per_s_, build_per_s_, threads_,
                    index_->MemoryBytes() / double(1 << 20)));
    for (size_t ef : o_.ef) {
      SearchResult r = SweepPoint(o_, data_.queries, gt_, ef, 1, 0, o_.reps, true, InProcessQuery(ef));
      if (r.err) {
        Log(fmt::format("in-process search: {}: errno {}", r.what, r.err));
        return false;
      }
      json row = Row("in-process", fmt::format("HnswIndex::AddBatch, {} threads", threads_));
      row["insert_threads"] = threads_;
      row["insert_per_s"] = build_per_s_;
      row["insert_s"] = st;
      row["durable"] = false;
      row["engine_build_1t_per_s"] = build_1t_per_s_;
      row["index_memory_mb"] = index_->MemoryBytes() / double(1 << 20);
      row["load_avg_1m"] = load;
      AddSearch(&row, r.point, nullptr);
      rows_.push_back(std::move(row));
    }
    Write();
    return true;
  }

  json Row(const std::string& path, const std::string& method) const {
    return json{
        {"engine", "vexfs"},
        {"path", path},
        {"method", method},
        {"n", o_.n},
        {"dim", o_.dim},
        {"nq", o_.nq},
        {"k", o_.k},
        {"metric", "cosine"},
        {"threads", threads_},
        {"params", {{"M", o_.M}, {"ef_construction", o_.ef_construction}}},
        {"element_type", o_.type},
        {"ef", nullptr},
        {"insert_per_s", nullptr},
        {"qps", nullptr},
        {"p50_us", nullptr},
        {"p99_us", nullptr},
        {"recall_at_10", nullptr},
    };
  }

  // `paired`: the in-process measurement at the same ef, taken alternately
  // with this one (null for in-process rows).
  void AddSearch(json* row, const SearchPoint& p, const SearchPoint* paired) const {
    (*row)["ef"] = p.ef;
    (*row)["params"]["ef_search"] = p.ef;
    (*row)["recall_at_10"] = p.recall;
    (*row)["qps"] = p.qps;
    (*row)["qps_cpu"] = p.qps_cpu;
    (*row)["qps_cpu_includes_daemon"] = p.cpu_includes_daemon;
    (*row)["p50_us"] = p.p50_us;
    (*row)["p99_us"] = p.p99_us;
    (*row)["search_threads"] = 1;
    (*row)["short_results"] = p.short_results;
    if (paired) {
      (*row)["in_process_qps_paired"] = paired->qps;
      (*row)["in_process_qps_cpu_paired"] = paired->qps_cpu;
      (*row)["in_process_recall_paired"] = paired->recall;
      (*row)["qps_vs_in_process"] = p.qps / paired->qps;
      (*row)["qps_cpu_vs_in_process"] = p.qps_cpu / paired->qps_cpu;
    }
    Log(fmt::format("  {} ef={}: recall@{} {:.4f}, {:.0f} qps ({:.0f} per CPU-s{}), p50 {:.1f} us, "
                    "p99 {:.1f} us{}",
                    (*row)["path"].get<std::string>(), p.ef, o_.k, p.recall, p.qps, p.qps_cpu,
                    p.cpu_includes_daemon ? " incl. daemon" : "", p.p50_us, p.p99_us,
                    p.short_results ? fmt::format(", {} short result lists", p.short_results)
                                    : std::string()));
    if (paired) {
      Log(fmt::format("    in-process, alternating with it: {:.0f} qps ({:.0f} per CPU-s): "
                      "ratio {:.2f} (CPU {:.2f})",
                      paired->qps, paired->qps_cpu, p.qps / paired->qps,
                      p.qps_cpu / paired->qps_cpu));
    }
  }

  // Runs an external bulk import command (vexctl import) on `dir`: the base
  // matrix goes to a .npy file and the file names (MountDir::FileName, row
  // order) to a text file, neither timed. Returns 0 or an errno.
  int RunImport(const std::string& dir, double* seconds) {
    const std::string npy = o_.scratch + "/fs-vectors-import.npy";
    const std::string names = o_.scratch + "/fs-vectors-import.names";
    if (Status st = engine::WriteNpy(npy, data_.base); !st.ok()) {
      Log("writing " + npy + ": " + st.ToString());
      return st.err();
    }
    {
      std::ofstream f(names);
      for (size_t i = 0; i < o_.n; ++i) f << MountDir::FileName(i) << "\n";
      if (!f.flush()) {
        Log("writing " + names + " failed");
        return EIO;
      }
    }
    std::string cmd = o_.import_cmd;
    auto subst = [&](const std::string& key, const std::string& value) {
      for (size_t at; (at = cmd.find(key)) != std::string::npos;) cmd.replace(at, key.size(), value);
    };
    subst("{dir}", dir);
    subst("{npy}", npy);
    subst("{names}", names);
    subst("{threads}", std::to_string(threads_));
    Log("import: " + cmd);
    const auto t0 = Clock::now();
    const int rc = std::system(cmd.c_str());
    *seconds = Seconds(t0, Clock::now());
    unlink(npy.c_str());
    unlink(names.c_str());
    if (rc != 0) {
      Log(fmt::format("import command failed (wait status {})", rc));
      return EIO;
    }
    return 0;
  }

  bool ThroughMount(const std::string& path) {
    const double load = LoadAverage();
    const std::string dir = o_.mount + "/" + path;
    std::unique_ptr<MountDir> md;
    if (int e = MountDir::Create(dir, &md)) {
      Log(fmt::format("{}: mkdir/open {}: {}", path, dir, std::strerror(e)));
      return false;
    }
    CollectionSpec spec;
    spec.dim = static_cast<uint32_t>(o_.dim);
    spec.metric = VEXFS_METRIC_COSINE;
    spec.M = static_cast<uint16_t>(o_.M);
    spec.ef_construction = static_cast<uint16_t>(o_.ef_construction);
    spec.element_type = o_.type == "f16" ? VEXFS_ELEM_F16 : VEXFS_ELEM_F32;
    const int ce = md->CreateCollection(spec);
    const bool collection = ce == 0;
    if (!collection) {
      Log(fmt::format("{}: VEXFS_IOC_COLL_CREATE: {}; the vector layer is not in this mount, so "
                      "only the plain xattr stores are measured (no search)",
                      path, std::strerror(ce)));
    }

    // The engine's build rate with the same threads, measured just before
    // the insert so that both run under the same machine load.
    const size_t threads = path == "xattr" ? 1 : threads_;
    double build_s = 0, build_cpu_s = 0;
    if (auto b = Build(threads, &build_s, &build_cpu_s); !b.ok()) {
      Log("HnswIndex build: " + b.status().ToString());
      return false;
    }
    const double build_paired = o_.n / build_s;
    Log(fmt::format("{}: engine build just before, {} thread{}: {:.0f} vectors/s", path, threads,
                    threads == 1 ? "" : "s", build_paired));

    std::string method;
    StoreResult store;
    const double cpu0 = SelfAndChildrenCpuSeconds(), daemon0 = ProcessCpuSeconds(o_.daemon_pid);
    if (path == "xattr" || path == "xattr-mt" || path == "put-mt" ||
        (path == "import" && o_.import_cmd.empty())) {
      const bool put = path == "put-mt";
      method = fmt::format("create + {} + close, {} thread{}, then syncfs + fsync(dir)",
                           put ? "VEXFS_IOC_PUT" : "fsetxattr(user.vexfs.vector)", threads,
                           threads == 1 ? "" : "s");
      if (path == "import") method = "driver (no vexctl import): " + method;
      store = md->StoreVectors(data_.base, threads,
                               put ? StoreMethod::kIoctlPut : StoreMethod::kSetxattr);
    } else if (path == "import") {
      method = (o_.import_label.empty() ? o_.import_cmd : o_.import_label) +
               ", then syncfs + fsync(dir)";
      store.err = RunImport(dir, &store.seconds);
      if (store.err == 0) store.err = SyncDir(md->fd(), &store.sync_seconds);
      store.what = "import";
    } else {
      Log("unknown path " + path);
      return false;
    }
    const auto durable_at = Clock::now();
    const double daemon1 = ProcessCpuSeconds(o_.daemon_pid);
    const double insert_cpu_s = SelfAndChildrenCpuSeconds() - cpu0 +
                                (daemon0 >= 0 && daemon1 >= 0 ? daemon1 - daemon0 : 0);
    if (store.err) {
      Log(fmt::format("{}: {}: {}", path, store.what, std::strerror(store.err)));
      return false;
    }
    const double insert_s = store.seconds + store.sync_seconds;
    const double insert_per_s = o_.n / insert_s;
    Log(fmt::format("{}: {} files stored in {:.2f} s + {:.3f} s sync: {:.0f} durable inserts/s ({})",
                    path, o_.n, store.seconds, store.sync_seconds, insert_per_s, method));

    json base = Row(path, method);
    base["insert_threads"] = threads;
    base["insert_per_s"] = insert_per_s;
    base["insert_s"] = insert_s;
    base["sync_s"] = store.sync_seconds;
    base["durable"] = true;
    base["collection"] = collection;
    base["load_avg_1m"] = load;
    base["engine_build_per_s_paired"] = build_paired;
    base["engine_build_per_cpu_s_paired"] = o_.n / build_cpu_s;
    // Client, vexctl and daemon; the daemon's background indexer runs
    // during the insert too, so this includes part of the index build.
    base["insert_cpu_s"] = insert_cpu_s;
    base["insert_per_cpu_s"] = o_.n / insert_cpu_s;
    base["engine_build_threads_paired"] = threads;
    base["insert_vs_engine_build"] = insert_per_s / build_paired;
    if (!collection) {
      rows_.push_back(base);
      return true;
    }

    // Searchable at once: the count must already be complete.
    CollectionState cs;
    if (int e = md->Info(&cs)) {
      Log(fmt::format("{}: VEXFS_IOC_COLL_INFO: {}", path, std::strerror(e)));
      return false;
    }
    base["count_at_durable"] = cs.count;
    base["pending_at_durable"] = cs.pending;
    Log(fmt::format("{}: collection holds {} vectors, {} indexed, {} pending", path, cs.count,
                    cs.indexed, cs.pending));
    for (;;) {
      if (int e = md->Info(&cs)) {
        Log(fmt::format("{}: VEXFS_IOC_COLL_INFO: {}", path, std::strerror(e)));
        return false;
      }
      if (cs.pending == 0 && cs.state == VEXFS_COLL_STATE_READY) break;
      if (Seconds(durable_at, Clock::now()) > o_.index_timeout_s) {
        Log(fmt::format("{}: still {} pending after {:.0f} s; searching anyway", path, cs.pending,
                        o_.index_timeout_s));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double to_indexed = Seconds(durable_at, Clock::now());
    base["time_to_indexed_s"] = to_indexed;
    base["index_memory_mb"] = cs.memory_bytes / double(1 << 20);
    base["count"] = cs.count;
    base["indexed"] = cs.indexed;
    base["pending"] = cs.pending;
    Log(fmt::format("{}: fully indexed {:.2f} s after the sync ({} indexed, {:.1f} MB)", path,
                    to_indexed, cs.indexed, cs.memory_bytes / double(1 << 20)));

    // The bare cost of one ioctl round trip through FUSE, for scale: the
    // median of 2,000 VEXFS_IOC_COLL_INFO calls (104 bytes each way).
    {
      std::vector<double> us;
      for (int i = 0; i < 2000; ++i) {
        const auto a = Clock::now();
        if (int e = md->Info(&cs)) {
          Log(fmt::format("{}: VEXFS_IOC_COLL_INFO: {}", path, std::strerror(e)));
          return false;
        }
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
      }
      base["coll_info_p50_us"] = Percentile(us, 0.5);
      Log(fmt::format("{}: VEXFS_IOC_COLL_INFO round trip: p50 {:.1f} us", path,
                      Percentile(us, 0.5)));
    }

    std::unordered_map<uint64_t, uint64_t> row_of_ino;
    for (size_t i = 0; i < store.ino.size(); ++i) {
      if (store.ino[i]) row_of_ino[store.ino[i]] = i;
    }
    if (row_of_ino.size() < o_.n) {  // files made by an import command: ask the mount
      for (size_t i = 0; i < o_.n; ++i) {
        struct stat st {};
        if (fstatat(md->fd(), MountDir::FileName(i).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          row_of_ino[st.st_ino] = i;
        }
      }
    }
    row_of_ino_[path] = row_of_ino;
    // Per query (the requirement's mode), then, with --batch, staged batches.
    bool ok = MountSweep(path, *md, base, row_of_ino, 1, false);
    if (ok && o_.batch > 1) ok = MountSweep(path, *md, base, row_of_ino, o_.batch, false);
    if (ok && o_.qfile_batch > 0) ok = MountSweep(path, *md, base, row_of_ino, o_.qfile_batch, true);
    if (ok && BigBatch() > 0) ok = MountSweep(path, *md, base, row_of_ino, BigBatch(), true);
    if (ok && o_.qfile_batch > 0 && o_.qfile_at_write) {
      md->SetQueryFlags(VEXFS_QUERY_AT_WRITE);
      ok = MountSweep(path, *md, base, row_of_ino, o_.qfile_batch, true, false, 1, true);
      md->SetQueryFlags(0);
    }
    if (ok && o_.qfile_batch > 0 && o_.qfile_pipeline) {
      ok = MountSweep(path, *md, base, row_of_ino, o_.qfile_batch, true, true);
    }
    if (ok && o_.qfile_batch > 0 && o_.qfile_threads > 1) {
      ok = MountSweep(path, *md, base, row_of_ino, o_.qfile_batch, true, false, o_.qfile_threads);
    }
    return ok;
  }

  // With `same` (the index the daemon persisted, loaded in-process): the
  // direct same-index pairs of Direct(), at the ef values `efs`; the
  // in-process passes search `same`, and the results go into the sweep's
  // existing row of that path and ef instead of a new row.
  bool MountSweep(const std::string& path, MountDir& md, const json& base,
                  const std::unordered_map<uint64_t, uint64_t>& row_of_ino, size_t batch, bool query_file,
                  bool pipelined = false, size_t threads = 1, bool at_write = false,
                  const engine::HnswIndex* same = nullptr, const std::vector<size_t>* efs = nullptr) {
    std::vector<std::vector<uint64_t>> inos(batch);
    std::vector<std::vector<std::string>> names(batch);
    size_t mismatches = 0, unknown = 0;
    const uint32_t dim = static_cast<uint32_t>(o_.dim), k = static_cast<uint32_t>(o_.k);
    for (size_t ef : efs ? *efs : o_.ef) {
      mismatches = unknown = 0;
      auto query = [&](size_t i, size_t count, std::vector<uint64_t>* out) {
        for (size_t j = 0; j < count; ++j) {
          inos[j].clear();
          names[j].clear();
        }
        const float* q = data_.queries.data.data() + i * o_.dim;
        const uint32_t e32 = static_cast<uint32_t>(ef);
        const uint32_t n32 = static_cast<uint32_t>(count);
        const int slot = static_cast<int>((i / batch) % MountDir::kQuerySlots);
        if (int e = pipelined    ? md.QueryFileReceive(slot, n32, k, &inos, &names)
                    : query_file ? md.QueryFileBatch(q, n32, dim, k, e32, &inos, &names, nullptr,
                                                     static_cast<uint32_t>(threads > 1 ? threads : 0))
                    : batch == 1 ? md.Search(q, dim, k, e32, &inos[0], &names[0])
                                 : md.SearchBatch(q, n32, dim, k, e32, &inos, &names)) {
          return e;
        }
        for (size_t c = 0; c < count; ++c) {
          for (size_t j = 0; j < inos[c].size(); ++j) {
            const std::string& name = names[c][j];
            const int64_t by_name = MountDir::RowOf(std::string_view(name).substr(name.rfind('/') + 1));
            auto it = row_of_ino.find(inos[c][j]);
            const int64_t by_ino = it == row_of_ino.end() ? -1 : int64_t(it->second);
            if (by_name >= 0 && by_ino >= 0 && by_name != by_ino) ++mismatches;
            const int64_t row = by_name >= 0 ? by_name : by_ino;
            if (row < 0) ++unknown;
            out[c].push_back(row < 0 ? UINT64_MAX : uint64_t(row));
          }
        }
        return 0;
      };
      // Pipelined: batch i goes out on one query-file descriptor while the
      // answer of batch i - 1 is read on the other (MountDir::QueryFileSend).
      SendFn send;
      if (pipelined) {
        send = [&, ef](size_t i, size_t count) {
          const int slot = static_cast<int>((i / batch) % MountDir::kQuerySlots);
          return md.QueryFileSend(slot, data_.queries.data.data() + i * o_.dim, static_cast<uint32_t>(count),
                                  dim, k, static_cast<uint32_t>(ef));
        };
      }
      // Alternate single passes, mount and in-process, so that the ratio
      // compares passes taken under the same load; keep each side's fastest.
      SearchResult r, in;
      const size_t reps = same ? o_.direct_reps : o_.reps;
      for (size_t rep = 0; rep < reps && !r.err && !in.err; ++rep) {
        if (same) {
          KeepFaster(&in,
                     SweepPoint(o_, data_.queries, gt_, ef, 1, 0, 1, rep == 0, InProcessQuery(ef, same, &row_of_ino)),
                     rep == 0);
        } else if (threads > 1) {  // the engine's batch search on as many threads
          KeepFaster(&in,
                     SweepPoint(o_, data_.queries, gt_, ef, batch, 0, 1, rep == 0,
                                InProcessBatch(ef, threads), nullptr, 0, true),
                     rep == 0);
        } else {
          KeepFaster(&in, SweepPoint(o_, data_.queries, gt_, ef, 1, 0, 1, rep == 0, InProcessQuery(ef)),
                     rep == 0);
        }
        KeepFaster(&r,
                   SweepPoint(o_, data_.queries, gt_, ef, batch, o_.daemon_pid, 1, rep == 0, query, send,
                              MountDir::kQuerySlots, threads > 1),
                   rep == 0);
      }
      if (in.err) {
        Log(fmt::format("in-process search: {}: errno {}", in.what, in.err));
        return false;
      }
      if (r.err) {
        Log(fmt::format("{}: {} {}: {}", path,
                        query_file   ? "query file"
                        : batch == 1 ? "VEXFS_IOC_SEARCH"
                                     : "VEXFS_IOC_STAGE/SEARCH/RESULTS",
                        r.what, std::strerror(r.err)));
        if (batch == 1 && !query_file) rows_.push_back(base);
        return false;
      }
      json row = base;
      if (threads > 1) {
        row["path"] = fmt::format("{}, batch {}, query file, {} threads", path, batch, threads);
        row["search_mode"] = fmt::format(
            "batch of {} queries per binary request on .vexfs-query with qq_threads = {} (the daemon "
            "splits each batch over {} threads); in-process: engine::ParallelSearchBatch of the same "
            "batches on {} threads; CPU is the whole driver process's (+ the daemon's)",
            batch, threads, threads, threads);
        row["search_threads"] = threads;
      } else if (pipelined) {
        row["path"] = fmt::format("{}, batch {}, query file, pipelined", path, batch);
        row["search_mode"] = fmt::format(
            "batch of {} queries per binary request on .vexfs-query, two descriptors: a second client "
            "thread writes the next request while the first reads this one's answer (the daemon searches "
            "at the read, one batch at a time); latency is the wait for each answer",
            batch);
      } else if (query_file && at_write) {
        row["path"] = fmt::format("{}, batch {}, query file, at write", path, batch);
        row["search_mode"] = fmt::format(
            "batch of {} queries per binary request on .vexfs-query with VEXFS_QUERY_AT_WRITE (one write, "
            "one read; the daemon searches as soon as the write arrives, the read waits for the answer)",
            batch);
      } else if (query_file) {
        row["path"] = fmt::format("{}, batch {}, query file", path, batch);
        row["search_mode"] =
            fmt::format("batch of {} queries per binary request on .vexfs-query (one write, one read)", batch);
      } else if (batch > 1) {
        row["path"] = fmt::format("{}, batch {}", path, batch);
        row["search_mode"] = fmt::format("batch of {} staged queries per VEXFS_IOC_SEARCH", batch);
      } else {
        row["search_mode"] = "one query per VEXFS_IOC_SEARCH";
      }
      if (same) {
        AddDirect(row["path"], ef, r.point, in.point);
        continue;
      }
      AddSearch(&row, r.point, &in.point);
      row["search_batch"] = batch;
      if (batch > 1 || query_file) {  // latencies are per call, i.e. per batch
        row["batch_p50_us"] = row["p50_us"];
        row["batch_p99_us"] = row["p99_us"];
        row["p50_us"] = nullptr;
        row["p99_us"] = nullptr;
      }
      row["id_mismatches"] = mismatches;
      row["unknown_hits"] = unknown;
      if (mismatches || unknown) {
        Log(fmt::format("  {} hits whose path and inode disagree, {} unknown", mismatches,
                        unknown));
      }
      rows_.push_back(std::move(row));
    }
    return true;
  }

  // Waits up to `seconds` for process `pid` to exit (a zombie counts).
  static bool WaitExit(pid_t pid, double seconds) {
    const auto t0 = Clock::now();
    while (Seconds(t0, Clock::now()) < seconds) {
      std::ifstream f(fmt::format("/proc/{}/stat", pid));
      std::string line;
      if (!std::getline(f, line)) return true;
      const size_t rp = line.rfind(')');
      if (rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z') return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // The requirement compares the mount with the in-process engine on the
  // same index. The index the daemon built differs from the driver's own
  // T-thread build (insertion order, threads), so after the mount sweeps
  // the driver unmounts, opens the image with the library (read-only),
  // loads each collection's persisted index -- the one the mount searched
  // -- and times it in-process, alternating with the T-thread build. Each
  // mount row then gets qps_vs_same_index = (mount / T-build, alternating)
  // x (T-build / same index, alternating): both factors are taken under
  // like load, though minutes apart.
  bool SameIndex() {
    Log("unmounting " + o_.mount + " to search the indexes the daemon persisted, in-process");
    if (std::system(("fusermount3 -u '" + o_.mount + "'").c_str()) != 0) {
      Log("fusermount3 -u " + o_.mount + " failed");
      return false;
    }
    if (o_.daemon_pid > 0 && !WaitExit(o_.daemon_pid, 300)) {
      Log("vexfs-fuse did not exit within 300 s of the unmount");
      return false;
    }
    OpenOptions oo;
    oo.read_only = true;
    auto dev = OpenBlockDevice(o_.image, oo);
    if (!dev.ok()) {
      Log("opening " + o_.image + ": " + dev.status().ToString());
      return false;
    }
    MountOptions mo;
    mo.read_only = true;
    mo.commit_interval_ms = 0;
    auto fs = Filesystem::Mount(std::move(*dev), mo);
    if (!fs.ok()) {
      Log("mounting " + o_.image + " in-process: " + fs.status().ToString());
      return false;
    }
    bool ok = true;
    for (const auto& [path, row_of_ino] : row_of_ino_) {
      auto attr = (*fs)->Lookup(Filesystem::kRootIno, path, Cred::Root());
      Result<std::vector<uint8_t>> blob =
          attr.ok() ? (*fs)->LoadIndexBlob(attr->ino) : Result<std::vector<uint8_t>>(attr.status());
      auto idx = blob.ok() ? engine::HnswIndex::Deserialize(*blob)
                           : Result<std::unique_ptr<engine::HnswIndex>>(blob.status());
      if (!idx.ok()) {
        Log(fmt::format("{}: the persisted index: {}", path, idx.status().ToString()));
        ok = false;
        continue;
      }
      Log(fmt::format("{}: persisted index of {} vectors, {:.1f} MB", path, (*idx)->size(),
                      (*idx)->MemoryBytes() / double(1 << 20)));
      const engine::HnswIndex& same = **idx;
      const auto& rows = row_of_ino;
      for (size_t ef : o_.ef) {
        auto query = InProcessQuery(ef, &same, &rows);
        SearchResult sr, tr;
        for (size_t rep = 0; rep < o_.reps && !sr.err && !tr.err; ++rep) {
          KeepFaster(&tr, SweepPoint(o_, data_.queries, gt_, ef, 1, 0, 1, rep == 0, InProcessQuery(ef)),
                     rep == 0);
          KeepFaster(&sr, SweepPoint(o_, data_.queries, gt_, ef, 1, 0, 1, rep == 0, query), rep == 0);
        }
        if (sr.err || tr.err) {
          Log(fmt::format("{}: in-process search of the persisted index failed", path));
          ok = false;
          break;
        }
        const double t_vs_same = tr.point.qps / sr.point.qps;
        Log(fmt::format("  {} ef={}: its own index in-process: recall@{} {:.4f}, {:.0f} qps, p50 {:.1f} "
                        "us; T-thread build alternating with it: {:.0f} qps (x{:.2f})",
                        path, ef, o_.k, sr.point.recall, sr.point.qps, sr.point.p50_us, tr.point.qps,
                        t_vs_same));
        for (json& row : rows_) {
          const std::string rp = row["path"];
          if ((rp != path && rp.rfind(path + ", batch", 0) != 0) || row["ef"] != ef ||
              !row.contains("qps_vs_in_process")) {
            continue;
          }
          row["same_index_qps"] = sr.point.qps;
          row["same_index_recall"] = sr.point.recall;
          row["same_index_p50_us"] = sr.point.p50_us;
          row["t_build_vs_same_index_qps"] = t_vs_same;
          row["qps_vs_same_index"] = row["qps_vs_in_process"].get<double>() * t_vs_same;
        }
      }
      same_[path] = std::move(*idx);  // for Direct()
    }
    if (Status st = (*fs)->Unmount(); !st.ok()) Log("in-process unmount: " + st.ToString());
    return ok;
  }

  // The same-index ratio without the chain through the T-thread build: the
  // volume is mounted again (--remount-cmd), and each path's query-file
  // batches (at the read, and at the write with --qfile-at-write) alternate
  // pass by pass with searches of the very index the daemon loads, held
  // in-process since SameIndex(). Both sides then search the same graph
  // under the same load; only the memory they were given differs.
  bool Direct() {
    Log("mounting the volume again for direct same-index pairs: " + o_.remount_cmd);
    if (std::system(o_.remount_cmd.c_str()) != 0) {
      Log("the remount command failed");
      return false;
    }
    const std::string up = o_.mount + "/..";
    bool mounted = false;
    for (int i = 0; i < 200 && !mounted; ++i) {
      struct stat a {}, b {};
      mounted = stat(o_.mount.c_str(), &a) == 0 && stat(up.c_str(), &b) == 0 && a.st_dev != b.st_dev;
      if (!mounted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!mounted) {
      Log(o_.mount + " is not mounted 10 s after the remount command");
      return false;
    }
    o_.daemon_pid = 0;  // the old daemon is gone; count the new one's CPU if its pid is known
    if (!o_.remount_pidfile.empty()) {
      for (int i = 0; i < 100 && o_.daemon_pid <= 0; ++i) {
        std::ifstream(o_.remount_pidfile) >> o_.daemon_pid;
        if (o_.daemon_pid <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    bool ok = true;
    for (const auto& [path, same] : same_) {
      std::unique_ptr<MountDir> md;
      if (int e = MountDir::Open(o_.mount + "/" + path, &md)) {
        Log(fmt::format("{}: open after the remount: {}", path, std::strerror(e)));
        ok = false;
        continue;
      }
      CollectionState cs;
      const auto t0 = Clock::now();
      while (md->Info(&cs) == 0 && (cs.pending != 0 || cs.state != VEXFS_COLL_STATE_READY) &&
             Seconds(t0, Clock::now()) < o_.index_timeout_s) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      Log(fmt::format("{}: after the remount: {} vectors, {} indexed, {} pending", path, cs.count,
                      cs.indexed, cs.pending));
      const json none;
      const auto& rows = row_of_ino_.at(path);
      std::vector<size_t> efs = o_.direct_ef;
      if (efs.empty()) {
        const json* goal = GoalRow(fmt::format("{}, batch {}, query file", path, o_.qfile_batch));
        efs.push_back(goal ? (*goal)["ef"].get<size_t>() : o_.ef.back());  // never reached: the largest swept
      }
      if (o_.qfile_batch > 0) {
        ok = MountSweep(path, *md, none, rows, o_.qfile_batch, true, false, 1, false, same.get(), &efs) && ok;
      }
      if (BigBatch() > 0) {
        ok = MountSweep(path, *md, none, rows, BigBatch(), true, false, 1, false, same.get(), &efs) && ok;
      }
      if (o_.qfile_batch > 0 && o_.qfile_at_write) {
        md->SetQueryFlags(VEXFS_QUERY_AT_WRITE);
        ok = MountSweep(path, *md, none, rows, o_.qfile_batch, true, false, 1, true, same.get(), &efs) && ok;
        md->SetQueryFlags(0);
      }
    }
    return ok;
  }

  // Direct()'s result for one row: the mount's passes against the same
  // index's, alternating.
  void AddDirect(const std::string& path, size_t ef, const SearchPoint& mount, const SearchPoint& same) {
    for (json& row : rows_) {
      if (row["path"] != path || row["ef"] != ef) continue;
      row["direct_mount_qps"] = mount.qps;
      row["direct_mount_recall"] = mount.recall;
      row["direct_same_index_qps"] = same.qps;
      row["direct_same_index_recall"] = same.recall;
      row["qps_vs_same_index_direct"] = mount.qps / same.qps;
      row["qps_cpu_vs_same_index_direct"] = mount.qps_cpu / same.qps_cpu;
    }
    Log(fmt::format("  {} ef={} after the remount: {:.0f} qps (recall@{} {:.4f}), its own index "
                    "in-process alternating with it: {:.0f} qps: ratio {:.2f} (CPU {:.2f})",
                    path, ef, mount.qps, o_.k, mount.recall, same.qps, mount.qps / same.qps,
                    mount.qps_cpu / same.qps_cpu));
  }

  void Write() const {
    if (o_.out.empty()) return;
    std::ofstream(o_.out) << rows_.dump(2) << "\n";
    std::string md = o_.out;
    if (md.size() > 5 && md.substr(md.size() - 5) == ".json") md.resize(md.size() - 5);
    std::ofstream(md + ".md") << Markdown();
  }

  static std::string Num(const json& v, const char* f) {
    return v.is_number() ? fmt::format(fmt::runtime(f), v.get<double>()) : "—";
  }

  std::string Markdown() const {
    std::string s;
    s += fmt::format("# VexFS vectors through the filesystem: {} files x {} dims, {} queries, k={}\n\n",
                     o_.n, o_.dim, o_.nq, o_.k);
    if (!o_.note.empty()) s += o_.note + "\n\n";
    s += fmt::format(
        "Cosine, synthetic clustered data (seed {}); HNSW M={}, ef_construction={}, {} elements; {} insert/build "
        "threads (`xattr`: 1); queries single-threaded, fastest of {} passes. Mount passes "
        "alternate with in-process passes at the same ef (\"in-proc QPS\", the driver's own "
        "T-thread build), and the ratios use those; QPS/CPU-s counts the driver thread plus the "
        "whole vexfs-fuse process. \"Same index\": after the sweeps the volume is unmounted and "
        "the index the daemon built and searched is loaded from the image and searched "
        "in-process, alternating with the T-thread build; the ratio is (mount / T-build) x "
        "(T-build / same index). \"Direct\" (with --remount-cmd): the volume is then mounted "
        "again and its query-file batches alternate pass by pass with that same index "
        "in-process.\n\n",
        o_.seed, o_.M, o_.ef_construction, o_.type, threads_, o_.reps);
    s += "| path | ef | recall@10 | QPS | p50 µs | p99 µs | in-proc QPS | QPS ratio | "
         "QPS/CPU-s ratio | same index: in-proc QPS | QPS ratio, same index | durable inserts/s | "
         "to indexed (s) |\n"
         "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const json& r : rows_) {
      const bool inproc = r["path"] == "in-process";
      auto get = [&](const char* key, const char* f) {
        return r.contains(key) ? Num(r[key], f) : std::string("—");
      };
      s += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                       r["path"].get<std::string>(), get("ef", "{:.0f}"),
                       get("recall_at_10", "{:.4f}"), get("qps", "{:.0f}"),
                       r.contains("batch_p50_us") ? get("batch_p50_us", "{:.0f}") + " /batch"
                                                  : get("p50_us", "{:.1f}"),
                       r.contains("batch_p99_us") ? get("batch_p99_us", "{:.0f}") + " /batch"
                                                  : get("p99_us", "{:.1f}"),
                       get("in_process_qps_paired", "{:.0f}"), get("qps_vs_in_process", "{:.2f}"),
                       get("qps_cpu_vs_in_process", "{:.2f}"), get("same_index_qps", "{:.0f}"),
                       get("qps_vs_same_index", "{:.2f}"),
                       inproc ? get("insert_per_s", "{:.0f}") + " (build, in RAM)"
                              : get("insert_per_s", "{:.0f}"),
                       get("time_to_indexed_s", "{:.2f}"));
    }
    s += "\nInsert methods:\n\n";
    std::map<std::string, std::string> methods;
    for (const json& r : rows_) methods.emplace(r["path"], r["method"]);
    for (const auto& [p, m] : methods) s += fmt::format("* `{}`: {}\n", p, m);
    s += fmt::format("\nEngine build in-process at the start (HnswIndex::AddBatch, in RAM, not "
                     "durable): {:.0f} vectors/s with 1 thread, {:.0f} with {} threads.\n\n",
                     build_1t_per_s_, build_per_s_, threads_);
    s += Goals();
    return s;
  }

  // --qfile-big-batch capped at the query count; 0 when off or when it
  // would repeat the --qfile-batch rows.
  size_t BigBatch() const {
    const size_t b = std::min<size_t>(o_.qfile_big_batch, data_.queries.rows);
    return b == o_.qfile_batch ? 0 : b;
  }

  // Per path: the smallest ef reaching recall@10 >= 0.95, and the ratios.
  // The goals table's row of `path`: the smallest ef whose recall@10
  // reached 0.95, or null.
  const json* GoalRow(const std::string& path) const {
    const json* best = nullptr;
    for (const json& r : rows_) {
      if (r["path"] != path || !r["recall_at_10"].is_number() || r["recall_at_10"].get<double>() < 0.95) continue;
      if (!best || r["ef"].get<size_t>() < (*best)["ef"].get<size_t>()) best = &r;
    }
    return best;
  }

  std::string Goals() const {
    std::map<std::string, const json*> first;
    for (const json& r : rows_) first.emplace(r["path"].get<std::string>(), &r);
    std::string s =
        "## Goals\n\n| path | smallest ef with recall@10 >= 0.95 | recall@10 | QPS | "
        "QPS / in-process (same ef, alternating) | QPS / in-process on the same index | QPS / the "
        "same index, direct (after a remount) | QPS per "
        "CPU-s / in-process | durable insert/s / engine build/s (measured just before) "
        "|\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const auto& [p, r] : first) {
      const json* b = GoalRow(p);
      std::string ratio = "—";
      if (r->contains("insert_vs_engine_build")) {
        const size_t t = (*r)["engine_build_threads_paired"];
        ratio = Num((*r)["insert_vs_engine_build"], "{:.2f}") +
                fmt::format(" ({:.0f} vs {:.0f}, {} thread{})", (*r)["insert_per_s"].get<double>(),
                            (*r)["engine_build_per_s_paired"].get<double>(), t, t == 1 ? "" : "s");
      }
      auto get = [&](const char* key, const char* f) {
        return b && b->contains(key) ? Num((*b)[key], f) : std::string("—");
      };
      s += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", p,
                       b                         ? Num((*b)["ef"], "{:.0f}")
                       : (*r)["qps"].is_number() ? "not reached"
                                                 : "no search",
                       get("recall_at_10", "{:.4f}"), get("qps", "{:.0f}"),
                       get("qps_vs_in_process", "{:.2f}"), get("qps_vs_same_index", "{:.2f}"),
                       get("qps_vs_same_index_direct", "{:.2f}"), get("qps_cpu_vs_in_process", "{:.2f}"),
                       p == "in-process" ? "—" : ratio);
    }
    s += "\nGoals (from the requirement): recall@10 >= 0.95; QPS through the mount >= 0.8x the "
         "in-process engine on the same index (and >= 10,000 single-threaded); durable insert/s "
         "through bulk import >= 1.0x the engine's own build throughput.\n";
    return s;
  }

  Options o_;
  size_t threads_ = 1;
  engine::SyntheticDataset data_;
  engine::GroundTruth gt_;
  double build_per_s_ = 0, build_1t_per_s_ = 0;
  std::unique_ptr<engine::HnswIndex> index_;  // the T-thread build, searched in-process
  // Per mount path: the index the daemon persisted, loaded by SameIndex().
  std::map<std::string, std::unique_ptr<engine::HnswIndex>> same_;
  // Per mount path: file inode -> data row (for the persisted index's ids).
  std::map<std::string, std::unordered_map<uint64_t, uint64_t>> row_of_ino_;
  json rows_ = json::array();
};

}  // namespace
}  // namespace vexfs::bench

int main(int argc, char** argv) {
  using vexfs::bench::Options;
  Options o;
  std::string ef, paths;
  CLI::App app{"VexFS: vectors through the mounted filesystem vs the in-process engine"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("--quick", o.quick, "2,000 files, 200 queries, a short ef sweep");
  app.add_option("--n", o.n, "files / vectors");
  app.add_option("--nq", o.nq, "queries");
  app.add_option("--dim", o.dim, "dimensions");
  app.add_option("--threads", o.threads, "insert and build threads (0 = all cores)");
  app.add_option("--M", o.M, "HNSW M (collection and in-process)");
  app.add_option("--ef-construction", o.ef_construction, "HNSW ef_construction");
  app.add_option("--type", o.type, "index element type, collections and in-process: f32 or f16")
      ->check(CLI::IsMember({"f32", "f16"}));
  app.add_option("--ef", ef, "comma list of ef_search values");
  app.add_option("--reps", o.reps, "timed passes per ef (fastest kept)")->check(CLI::Range(1, 100));
  app.add_option("--batch", o.batch,
                 "also search through the mount in staged batches of this many queries "
                 "(VEXFS_IOC_STAGE + SEARCH + RESULTS); 0 or 1: per-query only")
      ->check(CLI::Range(0, 1024));
  app.add_option("--qfile-batch", o.qfile_batch,
                 "also search through the mount with binary batch requests of this many queries on "
                 "the query file (one write, one read per batch); 0: none")
      ->check(CLI::Range(0, 1024));
  app.add_option("--qfile-big-batch", o.qfile_big_batch,
                 "also search through the query file with requests of this many queries (capped at "
                 "--nq; default 1000: all of them in one request); 0: none")
      ->check(CLI::Range(0, int(VEXFS_SEARCH_MAX_NQ)));
  app.add_flag("--qfile-pipeline", o.qfile_pipeline,
               "also search through the query file with two descriptors, a second thread writing the "
               "next request while the answer of the one before is read (one search at a time)");
  app.add_flag("--qfile-at-write", o.qfile_at_write,
               "also search through the query file with VEXFS_QUERY_AT_WRITE in each request (searched "
               "when the write arrives, not at the read)");
  app.add_option("--qfile-threads", o.qfile_threads,
                 "also search through the query file with qq_threads = N (one batch split over N daemon "
                 "threads), against the engine's ParallelSearchBatch on N threads; 0 or 1: none")
      ->check(CLI::Range(0, int(VEXFS_QUERY_MAX_THREADS)));
  app.add_option("--seed", o.seed, "synthetic data seed");
  app.add_option("--mount", o.mount, "a mounted, empty VexFS directory (omit: in-process only)");
  app.add_option("--paths", paths, "comma list of xattr, xattr-mt, put-mt, import");
  app.add_option("--import-cmd", o.import_cmd,
                 "bulk import command for the import path; {dir}, {npy}, {names} and {threads} "
                 "are "
                 "replaced (default: the driver's multithreaded create + setxattr)");
  app.add_option("--scratch", o.scratch, "directory for --import-cmd's input file");
  app.add_option("--import-label", o.import_label, "how to name --import-cmd in the report");
  app.add_option("--daemon-pid", o.daemon_pid, "vexfs-fuse's pid, to count its CPU time");
  app.add_option("--image", o.image,
                 "the image mounted at --mount: after the sweeps, unmount it (fusermount3 -u), wait "
                 "for --daemon-pid to exit and search each collection's persisted index in-process "
                 "(the requirement's \"same index\" baseline)");
  app.add_option("--remount-cmd", o.remount_cmd,
                 "after the same-index phase (--image), a shell command that mounts the image at --mount "
                 "again and returns: then each path's query-file batches alternate with its persisted "
                 "index in-process (qps_vs_same_index_direct)");
  app.add_option("--remount-pidfile", o.remount_pidfile,
                 "a file holding the remounted daemon's pid, written by --remount-cmd (for its CPU time)");
  std::string direct_ef;
  app.add_option("--direct-reps", o.direct_reps, "passes per side in the direct same-index pairs")
      ->check(CLI::Range(1, 100));
  app.add_option("--direct-ef", direct_ef,
                 "comma list of ef values for the direct same-index pairs (default: per path, the "
                 "smallest ef whose query-file batches reached recall@10 >= 0.95)");
  app.add_option("--index-timeout", o.index_timeout_s, "seconds to wait for pending == 0");
  app.add_option("--out", o.out, "FILE.json (FILE.md beside it)");
  app.add_option("--note", o.note, "a line for the report's header");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    if (app.count("--n") == 0) o.n = 2000;
    if (app.count("--nq") == 0) o.nq = 200;
    if (ef.empty()) ef = "10,16,32,64";
  }
  if (!ef.empty()) o.ef = vexfs::bench::ParseList(ef);
  if (!direct_ef.empty()) o.direct_ef = vexfs::bench::ParseList(direct_ef);
  if (!paths.empty()) o.paths = vexfs::bench::SplitWords(paths);
  if (o.k != 10 || o.n < o.k || o.nq == 0 || o.ef.empty() || o.n > 9999999) {
    std::fprintf(stderr, "bad sizes\n");
    return 2;
  }
  return vexfs::bench::Bench(std::move(o)).Run();
}
