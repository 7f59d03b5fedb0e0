// Parsers of the query file's requests and of VEXFS_IOC_SEARCH's fields.
// See query_request.h and docs/ioctl.md (sections on VEXFS_IOC_SEARCH and
// the query file).
#include "query_request.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexfs {
namespace {

bool AllZero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

}  // namespace

Status SearchFieldsFrom(uint32_t k, uint32_t dim, uint32_t nq, uint32_t effort, uint32_t filter_len,
                        bool range, float max_distance, SearchRequest* r) {
  if (filter_len > VEXFS_FILTER_MAX || nq == 0 || nq > VEXFS_SEARCH_MAX_NQ || dim == 0 ||
      dim > VEXFS_VECTOR_MAX_DIM || k == 0 || k > VEXFS_SEARCH_MAX_K) {
    return Status::InvalidArgument("k, dim, nq or filter length out of range");
  }
  r->dim = dim;
  r->nq = nq;
  r->k = k;
  r->effort = effort;
  r->max_distance.reset();
  if (range) r->max_distance = max_distance;
  return Status::Ok();
}

size_t BinaryHeadBytes(std::string_view head) {
  uint32_t magic = 0;
  if (head.size() < sizeof(magic)) return sizeof(magic);
  std::memcpy(&magic, head.data(), sizeof(magic));
  if (magic != VEXFS_QUERY_REQ_MAGIC) return SIZE_MAX;
  vexfs_query_req h;
  if (head.size() < sizeof(h)) return sizeof(h);
  std::memcpy(&h, head.data(), sizeof(h));
  return sizeof(h) + ((size_t{h.qq_filter_len} + 3) & ~size_t{3});
}

bool SearchAtWrite(std::string_view head, size_t float_bytes) {
  const size_t head_bytes = BinaryHeadBytes(head);
  if (head_bytes == SIZE_MAX || head_bytes < sizeof(vexfs_query_req) || head.size() != head_bytes) {
    return false;
  }
  vexfs_query_req h;
  std::memcpy(&h, head.data(), sizeof(h));
  if ((h.qq_flags & VEXFS_QUERY_AT_WRITE) == 0) return false;
  return float_bytes == size_t{h.qq_nq} * h.qq_dim * sizeof(float);
}

Status ParseBinaryRequest(std::string_view head, size_t float_bytes, SearchRequest* r,
                          uint32_t* nq) {
  *nq = 0;
  const size_t total = head.size() + float_bytes;
  vexfs_query_req h{};
  if (head.size() < sizeof(h))
    return Status::InvalidArgument("binary request shorter than struct vexfs_query_req");
  std::memcpy(&h, head.data(), sizeof(h));
  *nq = h.qq_nq;
  if (h.qq_magic != VEXFS_QUERY_REQ_MAGIC || h.qq_size != sizeof(h) ||
      (h.qq_flags & ~(VEXFS_SEARCH_RANGE | VEXFS_QUERY_AT_WRITE)) != 0 || !AllZero(h.qq_reserved, sizeof(h.qq_reserved))) {
    return Status::InvalidArgument("bad qq_size, qq_flags or reserved field");
  }
  if (h.qq_threads > VEXFS_QUERY_MAX_THREADS) {
    return Status::InvalidArgument("qq_threads is " + std::to_string(h.qq_threads) + "; at most " +
                                   std::to_string(VEXFS_QUERY_MAX_THREADS));
  }
  VEXFS_RETURN_IF_ERROR(SearchFieldsFrom(h.qq_k, h.qq_dim, h.qq_nq, h.qq_effort, h.qq_filter_len,
                                         (h.qq_flags & VEXFS_SEARCH_RANGE) != 0, h.qq_max_distance,
                                         r));
  r->threads = h.qq_threads == 0 ? 1 : h.qq_threads;
  const size_t off = sizeof(h) + ((size_t{h.qq_filter_len} + 3) & ~size_t{3});
  const size_t want = off + size_t{h.qq_nq} * h.qq_dim * sizeof(float);
  if (total != want) {
    return Status::InvalidArgument("request is " + std::to_string(total) +
                                   " bytes; its header makes it " + std::to_string(want));
  }
  if (head.size() != off) {  // the caller did not split where BinaryHeadBytes says
    return Status::InvalidArgument("the head of this binary request is its first " +
                                   std::to_string(off) + " bytes, not " +
                                   std::to_string(head.size()));
  }
  r->filter.assign(head.data() + sizeof(h), h.qq_filter_len);
  return Status::Ok();
}

Status ParseJsonRequest(std::string_view text, SearchRequest* r, bool* batch) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(
        "the request must be one JSON object, e.g. {\"vector\": [0.1, 0.2], \"k\": 10}");
  }
  *r = SearchRequest{};
  *batch = false;
  std::vector<const nlohmann::json*> vecs;
  if (j.contains("vector") && j.contains("vectors"))
    return Status::InvalidArgument("give either \"vector\" or \"vectors\"");
  if (j.contains("vector")) {
    vecs.push_back(&j["vector"]);
  } else if (j.contains("vectors") && j["vectors"].is_array()) {
    *batch = true;
    for (const auto& v : j["vectors"]) vecs.push_back(&v);
  } else {
    return Status::InvalidArgument(
        "missing \"vector\" (an array of numbers) or \"vectors\" (an array of them)");
  }
  if (vecs.empty() || vecs.size() > VEXFS_SEARCH_MAX_NQ)
    return Status::InvalidArgument("between 1 and 1024 query vectors");
  for (const auto* v : vecs) {
    if (!v->is_array() || v->empty()) {
      return Status::InvalidArgument("a query vector must be a non-empty array of numbers");
    }
    if (r->dim == 0) r->dim = v->size();
    if (v->size() != r->dim)
      return Status::InvalidArgument("all query vectors must have the same length");
    for (const auto& x : *v) {
      if (!x.is_number())
        return Status::InvalidArgument("a query vector must contain only numbers");
      r->queries.push_back(x.get<float>());
    }
  }
  r->nq = vecs.size();
  for (const auto& [key, val] : j.items()) {
    if (key == "vector" || key == "vectors") continue;
    if (key == "k") {
      if (!val.is_number_integer() || val.get<int64_t>() < 1 ||
          val.get<int64_t>() > VEXFS_SEARCH_MAX_K) {
        return Status::InvalidArgument("\"k\" must be an integer 1..10000");
      }
      r->k = val.get<size_t>();
    } else if (key == "ef") {
      if (!val.is_number_integer() || val.get<int64_t>() < 0 || val.get<int64_t>() > 100000) {
        return Status::InvalidArgument("\"ef\" must be an integer 0..100000");
      }
      r->effort = val.get<size_t>();
    } else if (key == "filter") {
      if (!val.is_string()) return Status::InvalidArgument("\"filter\" must be a string");
      r->filter = val.get<std::string>();
    } else if (key == "max_distance") {
      if (!val.is_number()) return Status::InvalidArgument("\"max_distance\" must be a number");
      r->max_distance = val.get<float>();
    } else {
      return Status::InvalidArgument("unknown field \"" + key +
                                     "\" (known: vector, vectors, k, ef, filter, max_distance)");
    }
  }
  return Status::Ok();
}

}  // namespace vexfs
