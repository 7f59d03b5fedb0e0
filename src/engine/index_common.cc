#include "index_common.h"

#include <cmath>
#include <string>

#include "vexfs/engine/distance.h"

namespace vexfs::engine::index_internal {

Status CheckK(size_t k, size_t max_k, const char* prefix) {
  if (k == 0 || k > max_k) {
    return Status::InvalidArgument(std::string(prefix) + "k must be in [1, " +
                                   std::to_string(max_k) + "]");
  }
  return Status::Ok();
}

Status CheckVector(std::span<const float> v, size_t dim, const char* prefix, const char* what) {
  if (v.size() != dim) {
    return Status::InvalidArgument(std::string(prefix) + what + " has " + std::to_string(v.size()) +
                                   " elements, index dim is " + std::to_string(dim));
  }
  if (!AllFinite(v.data(), v.size())) {
    return Status::InvalidArgument(std::string(prefix) + what + " holds NaN or Inf");
  }
  return Status::Ok();
}

Status PrepareVector(std::span<const float> v, size_t dim, Metric metric, float* out,
                     const char* prefix, const char* what) {
  VEXFS_RETURN_IF_ERROR(CheckVector(v, dim, prefix, what));
  std::copy(v.begin(), v.end(), out);
  if (metric == Metric::kCosine && !NormalizeL2(out, dim)) {
    return Status::InvalidArgument(std::string(prefix) + "zero " + what +
                                   " under the cosine metric");
  }
  return Status::Ok();
}

Status PrepareRows(std::span<const float> rows, size_t dim, Metric metric, std::vector<float>* out,
                   const char* prefix, const char* what) {
  out->resize(rows.size());
  for (size_t off = 0; off < rows.size(); off += dim) {
    VEXFS_RETURN_IF_ERROR(
        PrepareVector(rows.subspan(off, dim), dim, metric, out->data() + off, prefix, what));
  }
  return Status::Ok();
}

Status CheckSampleShape(std::span<const float> sample, size_t dim, const char* prefix) {
  if (sample.empty() || sample.size() % dim != 0) {
    return Status::InvalidArgument(std::string(prefix) +
                                   "training sample is empty or not a multiple of dim");
  }
  return Status::Ok();
}

Status IndexSlots(std::span<const uint64_t> ids, const uint8_t* live,
                  std::unordered_map<uint64_t, uint32_t>* slots, const char* prefix) {
  for (uint32_t s = 0; s < ids.size(); ++s) {
    if (live != nullptr && live[s] == 0) continue;
    if (!slots->emplace(ids[s], s).second) {
      return Status::Corruption(std::string(prefix) + "duplicate id " + std::to_string(ids[s]));
    }
  }
  return Status::Ok();
}

}  // namespace vexfs::engine::index_internal
