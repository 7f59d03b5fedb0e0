// vexfs_fsvec_probe: a steady search load on one collection of a mounted
// VexFS, for profiling the daemon (perf record -p, perf stat -p) while
// nothing else changes; and the same searches in-process on the index the
// daemon persisted. Data and queries are those of vexfs_fs_vectors_bench
// (the "10k" shape: 10,000 x 1,536, cosine, seed 42). See README.md.
//
//   vexfs_fsvec_probe fill DIR [--type f16] mkdir DIR, make it a collection
//                                           (float32 index, or float16), store
//                                           the vectors, wait until indexed
//   vexfs_fsvec_probe qfile DIR SECONDS [--batch N] [--ef EF] [--pipeline] [--threads T] [--at-write]
//                                           binary requests of N queries on DIR's query file;
//                                           --pipeline: a second thread writes the next request
//                                           on a second descriptor while this one reads the
//                                           answer; --threads: qq_threads; --at-write: set
//                                           VEXFS_QUERY_AT_WRITE (searched at the write)
//   vexfs_fsvec_probe ioctl DIR SECONDS [--ef EF]
//                                           one VEXFS_IOC_SEARCH per query
//   vexfs_fsvec_probe rejected DIR SECONDS [--batch N]
//                                           the query file's transport alone: requests of N
//                                           queries of dim - 1 floats, which the search refuses
//   vexfs_fsvec_probe inproc IMAGE NAME SECONDS [--ef EF] [--rotate N --batch B]
//                                           HnswIndex::Search on the index of collection
//                                           /NAME persisted in IMAGE (not mounted); --rotate:
//                                           batches of B handed to N threads in turn, the
//                                           caller waiting (the shape of FUSE workers)
//
// After an untimed warm-up of ~100 queries, prints queries, seconds,
// queries/s, the client's CPU time (with --pipeline, both threads) and, for the mount modes,
// p50/p99 latency per call.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <semaphore>
#include <thread>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/timing.h"
#include "mount_client.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"
#include "vexfs/block_device.h"
#include "vexfs/engine/dataset.h"
#include "vexfs/engine/hnsw.h"
#include "vexfs/filesystem.h"

namespace vexfs::bench {
namespace {

constexpr uint32_t kDim = 1536;
constexpr uint32_t kK = 10;

Result<engine::SyntheticDataset> Data() {
  engine::SyntheticOptions s;  // as vexfs_fs_vectors_bench
  s.dim = kDim;
  s.num_base = 10000;
  s.num_queries = 1000;
  s.num_clusters = 64;
  s.intrinsic_dim = 128;
  s.spectrum_decay = 0.98f;
  s.noise = 0.05f;
  s.normalize = true;
  s.seed = 42;
  return engine::GenerateSynthetic(s);
}

int Fail(const std::string& what, int err) {
  fmt::print(stderr, "vexfs_fsvec_probe: {}: {}\n", what, std::strerror(err));
  return 1;
}

int Run(int argc, char** argv) {
  CLI::App app{"steady search load on a mounted VexFS collection, or in-process on its persisted index"};
  std::string mode, target, name;
  double seconds = 5;
  uint32_t batch = 64, ef = 16;
  pid_t daemon = 0;
  bool pipeline = false, at_write = false;
  uint32_t threads = 0, rotate = 0;
  std::string type = "f32";
  app.add_option("mode", mode, "fill, qfile, ioctl, rejected or inproc")->required();
  app.add_option("target", target, "collection directory on the mount (inproc: the image)")->required();
  app.add_option("args", name, "inproc: the collection's name below the root");
  app.add_option("--seconds", seconds, "how long to search");
  app.add_option("--batch", batch, "queries per query-file request")->check(CLI::Range(1u, VEXFS_SEARCH_MAX_NQ));
  app.add_option("--ef", ef, "ef_search");
  app.add_option("--daemon", daemon, "pid of vexfs-fuse: also print its CPU time per query");
  app.add_option("--type", type, "fill: the index's element type, f32 or f16")
      ->check(CLI::IsMember({"f32", "f16"}));
  app.add_flag("--pipeline", pipeline, "qfile: write the next request ahead on a second descriptor");
  app.add_option("--threads", threads, "qfile: qq_threads of each request")
      ->check(CLI::Range(0u, VEXFS_QUERY_MAX_THREADS));
  app.add_flag("--at-write", at_write, "qfile, rejected: VEXFS_QUERY_AT_WRITE in qq_flags");
  app.add_option("--rotate", rotate,
                 "inproc: hand each batch of --batch queries to the next of N threads in turn and wait "
                 "for it, as FUSE workers take requests (CPU is then the whole process's)")
      ->check(CLI::Range(0u, 64u));
  CLI11_PARSE(app, argc, argv);

  auto data = Data();
  if (!data.ok()) return Fail("GenerateSynthetic", data.status().err());
  const engine::FloatMatrix& queries = data->queries;
  const size_t nq = queries.rows;

  if (mode == "fill") {
    std::unique_ptr<MountDir> md;
    if (int e = MountDir::Create(target, &md)) return Fail("mkdir " + target, e);
    CollectionSpec spec;
    spec.dim = kDim;
    spec.metric = VEXFS_METRIC_COSINE;
    spec.element_type = type == "f16" ? VEXFS_ELEM_F16 : VEXFS_ELEM_F32;
    if (int e = md->CreateCollection(spec)) return Fail("VEXFS_IOC_COLL_CREATE", e);
    StoreResult r = md->StoreVectors(data->base, 2, StoreMethod::kSetxattr);
    if (r.err) return Fail(r.what, r.err);
    for (CollectionState cs;;) {
      if (int e = md->Info(&cs)) return Fail("VEXFS_IOC_COLL_INFO", e);
      if (cs.pending == 0 && cs.state == VEXFS_COLL_STATE_READY) break;
      usleep(20000);
    }
    fmt::print("{}: {} vectors stored and indexed\n", target, data->base.rows);
    return 0;
  }

  size_t done = 0;
  double send_cpu = 0;  // the sender thread's, with --pipeline
  std::vector<double> lat;
  QueryFileTimes phases;
  clockid_t daemon_clock = 0;
  if (daemon > 0 && clock_getcpuclockid(daemon, &daemon_clock) != 0) return Fail("clock_getcpuclockid", ESRCH);
  double c0 = 0, d0 = 0;
  Clock::time_point t0;
  auto start = [&] {
    c0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    if (daemon > 0) d0 = CpuSeconds(daemon_clock);
    t0 = Clock::now();
  };
  if (mode == "inproc") {
    OpenOptions oo;
    oo.read_only = true;
    auto dev = OpenBlockDevice(target, oo);
    if (!dev.ok()) return Fail("open " + target, dev.status().err());
    MountOptions mo;
    mo.read_only = true;
    mo.commit_interval_ms = 0;
    auto fs = Filesystem::Mount(std::move(*dev), mo);
    if (!fs.ok()) return Fail("mount " + target, fs.status().err());
    auto attr = (*fs)->Lookup(Filesystem::kRootIno, name, Cred::Root());
    if (!attr.ok()) return Fail("lookup /" + name, attr.status().err());
    auto blob = (*fs)->LoadIndexBlob(attr->ino);
    if (!blob.ok()) return Fail("index of /" + name, blob.status().err());
    auto idx = engine::HnswIndex::Deserialize(*blob);
    if (!idx.ok()) return Fail("deserializing the index of /" + name, idx.status().err());
    engine::SearchParams sp;
    sp.k = kK;
    sp.effort = ef;
    for (size_t q = 0; q < 100; q++) (void)(*idx)->Search(queries.row(q % nq), sp);  // warm-up
    if (rotate > 0) {
      // N workers, one batch at a time, the caller waiting: the shape of a
      // FUSE daemon serving one client's batches.
      std::vector<std::binary_semaphore*> go;
      std::counting_semaphore<> finished(0);
      std::atomic<size_t> first{0};
      std::atomic<bool> stop{false}, failed{false};
      std::vector<std::thread> workers;
      for (uint32_t w = 0; w < rotate; ++w) {
        go.push_back(new std::binary_semaphore(0));
        workers.emplace_back([&, w] {
          for (;;) {
            go[w]->acquire();
            if (stop) return;
            for (size_t i = 0, q = first; i < batch; ++i, q = (q + 1) % nq) {
              if (!(*idx)->Search(queries.row(q), sp).ok()) failed = true;
            }
            finished.release();
          }
        });
      }
      const double p0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
      start();
      for (size_t b = 0, q = 0; Seconds(t0, Clock::now()) < seconds; ++b, q = (q + batch) % nq, done += batch) {
        first = q;
        go[b % rotate]->release();
        finished.acquire();
      }
      stop = true;
      for (uint32_t w = 0; w < rotate; ++w) go[w]->release();
      for (auto& t : workers) t.join();
      for (auto* g : go) delete g;
      if (failed) return Fail("HnswIndex::Search", EIO);
      send_cpu = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - p0 - (CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0);
    } else {
      start();
      for (size_t q = 0; Seconds(t0, Clock::now()) < seconds; q = (q + 1) % nq, done++) {
        auto r = (*idx)->Search(queries.row(q), sp);
        if (!r.ok()) return Fail("HnswIndex::Search", r.status().err());
      }
    }
  } else if (mode == "qfile" || mode == "ioctl" || mode == "rejected") {
    std::unique_ptr<MountDir> md;
    if (int e = MountDir::Open(target, &md)) return Fail("open " + target, e);
    if (at_write) md->SetQueryFlags(VEXFS_QUERY_AT_WRITE);
    if (mode == "ioctl") batch = 1;
    if (batch > nq) batch = static_cast<uint32_t>(nq);
    std::vector<std::vector<uint64_t>> inos(batch);
    std::vector<std::vector<std::string>> paths(batch);
    // Warm-up (untimed): the first search after a mount may wait for the
    // index to load.
    for (size_t q = 0; q < 128; q += batch) {
      const int e = mode == "ioctl" ? md->Search(queries.row(q).data(), kDim, kK, ef, &inos[0], &paths[0])
                                    : md->QueryFileBatch(queries.row(q).data(), batch, kDim, kK, ef, &inos, &paths);
      if (e) return Fail(mode + " search (warm-up)", e);
    }
    start();
    if (mode == "qfile" && pipeline) {
      // Batch b starts at row (b % nb) * batch and goes on descriptor b % 2.
      const size_t nb = nq / batch;
      std::counting_semaphore<MountDir::kQuerySlots> free_slots(MountDir::kQuerySlots);
      std::counting_semaphore<1 << 30> sent(0);
      std::atomic<bool> stop{false};
      std::atomic<int> send_err{0};
      std::thread sender([&] {
        const double s0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
        for (size_t b = 0;; b++) {
          free_slots.acquire();
          if (stop.load()) break;
          const int e = md->QueryFileSend(static_cast<int>(b % MountDir::kQuerySlots),
                                          queries.row((b % nb) * batch).data(), batch, kDim, kK, ef, nullptr,
                                          threads);
          if (e != 0) send_err = e;
          sent.release();
          if (e != 0) break;
        }
        send_cpu = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - s0;
      });
      int e = 0;
      for (size_t b = 0; Seconds(t0, Clock::now()) < seconds; b++, done += batch) {
        for (auto& v : inos) v.clear();
        for (auto& v : paths) v.clear();
        const auto l0 = Clock::now();
        sent.acquire();
        if ((e = send_err.load()) != 0) break;
        e = md->QueryFileReceive(static_cast<int>(b % MountDir::kQuerySlots), batch, kK, &inos, &paths, &phases);
        if (e != 0) break;
        free_slots.release();
        lat.push_back(Seconds(l0, Clock::now()));
      }
      stop = true;
      free_slots.release(MountDir::kQuerySlots);
      sender.join();
      if (e) return Fail("qfile search (pipelined)", e);
    }
    for (size_t q = 0; !(mode == "qfile" && pipeline) && Seconds(t0, Clock::now()) < seconds;
         q += batch, done += batch) {
      if (q + batch > nq) q = 0;
      for (auto& v : inos) v.clear();
      for (auto& v : paths) v.clear();
      const auto l0 = Clock::now();
      int e;
      if (mode == "ioctl") {
        e = md->Search(queries.row(q).data(), kDim, kK, ef, &inos[0], &paths[0]);
      } else {
        // rejected: the same bytes per query less one float, a dimension
        // the collection refuses after the whole request has arrived.
        const uint32_t dim = mode == "rejected" ? kDim - 1 : kDim;
        e = md->QueryFileBatch(queries.row(q).data(), batch, dim, kK, ef, &inos, &paths, &phases, threads);
        if (mode == "rejected") e = e == EINVAL ? 0 : (e == 0 ? EPROTO : e);
      }
      if (e) return Fail(mode + " search", e);
      lat.push_back(Seconds(l0, Clock::now()));
    }
  } else {
    fmt::print(stderr, "vexfs_fsvec_probe: unknown mode {}\n", mode);
    return 2;
  }
  const double wall = Seconds(t0, Clock::now());
  const double cpu = CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0 + send_cpu;
  const double dcpu = daemon > 0 ? CpuSeconds(daemon_clock) - d0 : 0;
  fmt::print("{}: {} queries in {:.2f} s: {:.0f} queries/s, {:.1f} us of the client's CPU per query", mode, done,
             wall, done / wall, cpu * 1e6 / done);
  if (daemon > 0) fmt::print(", {:.1f} us of the daemon's", dcpu * 1e6 / done);
  if (phases.write > 0) {
    const double us = 1e6 / done;
    fmt::print(", wall per query: build {:.2f} write {:.2f} read {:.2f} parse {:.2f} us", phases.build * us,
               phases.write * us, phases.read * us, phases.parse * us);
  }
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    fmt::print(", per call p50 {:.1f} us p99 {:.1f} us", lat[lat.size() / 2] * 1e6,
               lat[lat.size() * 99 / 100] * 1e6);
  }
  fmt::print("\n");
  return 0;
}

}  // namespace
}  // namespace vexfs::bench

int main(int argc, char** argv) { return vexfs::bench::Run(argc, argv); }
