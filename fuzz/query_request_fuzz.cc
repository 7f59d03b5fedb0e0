// libFuzzer target for the query file's request parsers
// (src/vector/query_request.h).
//
// Input: one request, as written to VEXFS_QUERY_FILE. It is split as the
// daemon splits it while the writes arrive (the head grows as long as
// BinaryHeadBytes asks, the rest is queries), then parsed as binary or as
// JSON. Checks: a refused request is EINVAL with a message; an accepted
// binary one has k, nq, dim and filter length within the ioctl limits, a
// filter of exactly qq_filter_len bytes and exactly nq * dim floats after
// its head; an accepted JSON one has nq * dim queries, nq 1..1024, k
// 1..10000, and one query unless it was a batch.
//
//   fuzz/query_request_fuzz -max_len=70000 fuzz/corpus/query_request
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_seeds.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"
#include "vector/query_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t head = 0;
  while (head < in.size()) {
    const size_t limit = vexfs::BinaryHeadBytes(in.substr(0, head));
    if (head >= limit) break;
    head = std::min(in.size(), limit);
  }
  const bool binary = vexfs::BinaryHeadBytes(in.substr(0, head)) != SIZE_MAX;
  vexfs::SearchRequest r;
  auto refused = [](const vexfs::Status& s) {
    if (s.err() != EINVAL || s.message().empty()) abort();
    return 0;
  };
  auto limits = [&] {
    if (r.nq == 0 || r.nq > VEXFS_SEARCH_MAX_NQ || r.dim == 0 || r.k == 0 ||
        r.k > VEXFS_SEARCH_MAX_K)
      abort();
  };
  if (binary) {
    uint32_t nq = 0;
    const bool at_write = vexfs::SearchAtWrite(in.substr(0, head), in.size() - head);
    const vexfs::Status s =
        vexfs::ParseBinaryRequest(in.substr(0, head), in.size() - head, &r, &nq);
    if (!s.ok()) return refused(s);
    // An accepted request is complete: it is searched at its last byte
    // exactly when it asks to be.
    vexfs_query_req f;
    std::memcpy(&f, in.data(), sizeof(f));
    if (at_write != ((f.qq_flags & VEXFS_QUERY_AT_WRITE) != 0)) abort();
    limits();
    vexfs_query_req h;
    std::memcpy(&h, in.data(), sizeof(h));
    if (nq != r.nq || r.dim > VEXFS_VECTOR_MAX_DIM || r.filter.size() != h.qq_filter_len ||
        r.filter.size() > VEXFS_FILTER_MAX || in.substr(sizeof(h), r.filter.size()) != r.filter ||
        (in.size() - head) != r.nq * r.dim * sizeof(float) || head % 4 != 0) {
      abort();
    }
    return 0;
  }
  bool batch = false;
  const vexfs::Status s = vexfs::ParseJsonRequest(in, &r, &batch);
  if (!s.ok()) return refused(s);
  limits();
  if (r.queries.size() != r.nq * r.dim || (!batch && r.nq != 1)) abort();
  return 0;
}

std::vector<std::vector<uint8_t>> VexfsFuzzSeeds() {
  std::vector<std::vector<uint8_t>> seeds;
  for (const char* s : {
           R"({"vector": [0.1, -2, 3e5], "k": 5, "ef": 64})",
           R"({"vectors": [[1, 2], [3, 4]], "filter": "size > 10", "max_distance": 0.5})",
           R"({"vector": [1], "k": 0})",
       }) {
    seeds.emplace_back(s, s + std::char_traits<char>::length(s));
  }
  // Binary: 2 queries of 3 floats with a 9-byte filter (3 bytes of padding),
  // and one of 4 floats with a range and no filter.
  for (uint32_t variant = 0; variant < 2; variant++) {
    vexfs_query_req h{};
    h.qq_magic = VEXFS_QUERY_REQ_MAGIC;
    h.qq_size = sizeof(h);
    h.qq_k = 10;
    h.qq_dim = variant == 0 ? 3 : 4;
    h.qq_nq = variant == 0 ? 2 : 1;
    h.qq_effort = 16;
    const std::string filter = variant == 0 ? "size > 10" : "";
    h.qq_filter_len = static_cast<uint32_t>(filter.size());
    if (variant == 1) {
      h.qq_flags = VEXFS_SEARCH_RANGE;
      h.qq_max_distance = 0.25f;
    }
    std::vector<uint8_t> b(reinterpret_cast<const uint8_t*>(&h),
                           reinterpret_cast<const uint8_t*>(&h) + sizeof(h));
    b.insert(b.end(), filter.begin(), filter.end());
    b.resize((b.size() + 3) & ~size_t{3}, 0);
    for (uint32_t i = 0; i < h.qq_dim * h.qq_nq; i++) {
      const float f = 0.5f * static_cast<float>(i);
      const auto* p = reinterpret_cast<const uint8_t*>(&f);
      b.insert(b.end(), p, p + sizeof(f));
    }
    seeds.push_back(std::move(b));
  }
  return seeds;
}
