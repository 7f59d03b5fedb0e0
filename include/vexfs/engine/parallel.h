// ParallelFor: one range of work split over threads, the calling thread
// among them. The engine's builds and batch searches use it, and so does the
// filesystem's vector layer for a batch search spread over threads.
//
// Thread safety: `fn` runs on several threads at once, each call with its
// own part; it must not share unsynchronised state between parts.
#ifndef VEXFS_ENGINE_PARALLEL_H_
#define VEXFS_ENGINE_PARALLEL_H_

#include <algorithm>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace vexfs::engine {

// Calls fn(part, begin, end) for parts = min(threads, n) contiguous runs
// [begin, end) that cover [0, n) in order, part p being
// [n * p / parts, n * (p + 1) / parts). Part 0 runs on the calling thread,
// the others on threads of their own; a part no thread can be started for
// runs on the calling thread after part 0. Returns when every part is done.
// threads 0 counts as 1; n == 0 calls nothing.
template <class Fn>
void ParallelFor(size_t n, size_t threads, const Fn& fn) {
  const size_t parts = std::min(std::max<size_t>(threads, 1), n);
  if (parts == 0) return;
  auto run = [&](size_t p) { fn(p, n * p / parts, n * (p + 1) / parts); };
  std::vector<std::thread> pool;
  std::vector<size_t> here;  // parts no thread could be started for
  pool.reserve(parts - 1);
  for (size_t p = 1; p < parts; ++p) {
    try {
      pool.emplace_back(run, p);
    } catch (const std::system_error&) {
      here.push_back(p);
    }
  }
  run(0);
  for (size_t p : here) run(p);
  for (std::thread& t : pool) t.join();
}

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_PARALLEL_H_
