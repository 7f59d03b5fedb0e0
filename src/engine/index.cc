#include "vexfs/engine/index.h"

#include <algorithm>
#include <iterator>

#include "vexfs/engine/parallel.h"

namespace vexfs::engine {

Result<std::vector<std::vector<Neighbor>>> VectorIndex::SearchBatch(
    std::span<const float> queries, const SearchParams& params) const {
  const size_t d = dim();
  if (d == 0 || queries.size() % d != 0) {
    return Status::InvalidArgument("batch size is not a multiple of the dimension");
  }
  std::vector<std::vector<Neighbor>> out;
  out.reserve(queries.size() / d);
  for (size_t off = 0; off < queries.size(); off += d) {
    auto r = Search(queries.subspan(off, d), params);
    if (!r.ok()) return r.status();
    out.push_back(std::move(r).value());
  }
  return out;
}

Result<std::vector<std::vector<Neighbor>>> ParallelSearchBatch(const VectorIndex& index,
                                                               std::span<const float> queries,
                                                               const SearchParams& params, size_t threads) {
  const size_t d = index.dim();
  if (d == 0 || queries.size() % d != 0) {
    return Status::InvalidArgument("batch size is not a multiple of the dimension");
  }
  const size_t nq = queries.size() / d;
  threads = std::min(threads, nq);
  if (threads <= 1) return index.SearchBatch(queries, params);
  std::vector<Result<std::vector<std::vector<Neighbor>>>> parts(threads, std::vector<std::vector<Neighbor>>{});
  ParallelFor(nq, threads, [&](size_t part, size_t lo, size_t hi) {
    parts[part] = index.SearchBatch(queries.subspan(lo * d, (hi - lo) * d), params);
  });
  std::vector<std::vector<Neighbor>> out;
  out.reserve(nq);
  for (auto& part : parts) {
    if (!part.ok()) return part.status();
    auto& lists = part.value();
    std::move(lists.begin(), lists.end(), std::back_inserter(out));
  }
  return out;
}

}  // namespace vexfs::engine
