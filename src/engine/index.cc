#include "vexfs/engine/index.h"

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

}  // namespace vexfs::engine
