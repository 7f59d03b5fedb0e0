// HnswIndex query paths: greedy descent, the sorted-pool beam search used
// for plain queries and construction, the accept-aware search used with
// deletions and filters, exact fallback scans, and range search.
#include <algorithm>
#include <cmath>
#include <limits>

#include "hnsw_impl.h"

namespace vexfs::engine {

using hnsw_internal::Cand;
using hnsw_internal::kNoNode;

namespace {

constexpr uint32_t kExpanded = 0x80000000u;
constexpr size_t kLinkBuf = 2 * hnsw_internal::kMaxM;

inline bool ByDist(const Cand& a, const Cand& b) { return a.d < b.d; }
inline bool ByDistDesc(const Cand& a, const Cand& b) { return a.d > b.d; }

}  // namespace

template <bool kLocked>
uint32_t HnswIndex::Impl::GreedyUpper(const float* q, uint32_t ep, float* ep_d, int level) const {
  uint32_t buf[kLinkBuf];
  for (bool changed = true; changed;) {
    changed = false;
    const uint32_t* ll;
    uint32_t cnt;
    if constexpr (kLocked) {
      hnsw_internal::SpinLock(locks_[ep]);
      const uint32_t* src = LinksUpper(ep, level);
      cnt = src[0];
      std::memcpy(buf, src + 1, cnt * sizeof(uint32_t));
      hnsw_internal::SpinUnlock(locks_[ep]);
      ll = buf;
    } else {
      const uint32_t* src = LinksUpper(ep, level);
      cnt = src[0];
      ll = src + 1;
    }
    // Up to four at a time (DistUpTo4): the distances are bit-identical
    // and compared in the same order, so the walk is the one-at-a-time walk.
    for (uint32_t j = 0; j < cnt; ++j) __builtin_prefetch(VecPtr(ll[j]));
    float dd[4];
    for (uint32_t j = 0; j < cnt;) {
      const size_t got = DistUpTo4(q, ll + j, cnt - j, dd);
      for (uint32_t t = 0; t < got; ++t) {
        if (dd[t] < *ep_d) {
          *ep_d = dd[t];
          ep = ll[j + t];
          changed = true;
        }
      }
      j += got;
    }
  }
  return ep;
}

template uint32_t HnswIndex::Impl::GreedyUpper<false>(const float*, uint32_t, float*, int) const;
template uint32_t HnswIndex::Impl::GreedyUpper<true>(const float*, uint32_t, float*, int) const;

// One sorted array of at most ef entries serves as both the candidate queue
// and the result set (entries carry an "expanded" bit), which replaces
// hnswlib's two binary heaps with a binary search plus a short memmove.
template <bool kLocked>
void HnswIndex::Impl::SearchLayer(const float* q, uint32_t ep, float ep_d, int level, size_t ef,
                                  std::vector<Cand>* out) const {
  hnsw_internal::VisitedTags& vt = hnsw_internal::ThreadVisited();
  const uint8_t tag = vt.Next(capacity_);
  uint8_t* vis = vt.tags.data();
  // The beam never holds more than every slot once: a huge ef (a user's
  // effort, ef_construction) costs no more memory than the index has.
  ef = std::min(ef, static_cast<size_t>(capacity_));
  std::vector<Cand>& pool = *out;
  pool.resize(ef + 1);
  Cand* P = pool.data();
  size_t n = 1;
  P[0] = {ep_d, ep};
  vis[ep] = tag;
  uint32_t lbuf[kLinkBuf];
  uint32_t fresh[kLinkBuf];
  size_t cur = 0;
  while (cur < n) {
    const uint32_t node = P[cur].id;
    P[cur].id = node | kExpanded;
    const uint8_t* ids;
    size_t w;
    uint32_t cnt;
    if constexpr (kLocked) {
      hnsw_internal::SpinLock(locks_[node]);
      cnt = GetLinks(node, level, lbuf);
      hnsw_internal::SpinUnlock(locks_[node]);
      ids = reinterpret_cast<const uint8_t*>(lbuf);
      w = 4;
    } else {
      cnt = RawLinks(node, level, &ids, &w);
    }
    size_t m = 0;
    for (uint32_t j = 0; j < cnt; ++j) {
      const uint32_t v = LinkAt(ids, w, j);
      if (vis[v] != tag) {
        vis[v] = tag;
        fresh[m++] = v;
        __builtin_prefetch(VecPtr(v));
      }
    }
    size_t best = n;
    float dd[4];
    for (size_t j = 0; j < m;) {
      const size_t got = DistUpTo4(q, fresh + j, m - j, dd);
      for (size_t t = 0; t < got; ++t) {
        const uint32_t v = fresh[j + t];
        const float d = dd[t];
        if (n == ef && d >= P[n - 1].d) continue;
        // Insert after equal distances; the tail entry drops out when full.
        size_t lo = 0, hi = n;
        while (lo < hi) {
          const size_t mid = (lo + hi) >> 1;
          if (P[mid].d <= d) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        const size_t last = n < ef ? n : ef - 1;
        std::memmove(P + lo + 1, P + lo, (last - lo) * sizeof(Cand));
        P[lo] = {d, v};
        if (n < ef) ++n;
        if (lo < best) best = lo;
        if (level == 0) __builtin_prefetch(Links0Ptr(v));
      }
      j += got;
    }
    cur = best <= cur ? best : cur + 1;
    while (cur < n && (P[cur].id & kExpanded)) ++cur;
  }
  pool.resize(n);
  for (Cand& c : pool) c.id &= ~kExpanded;
}

template void HnswIndex::Impl::SearchLayer<false>(const float*, uint32_t, float, int, size_t,
                                                  std::vector<Cand>*) const;
template void HnswIndex::Impl::SearchLayer<true>(const float*, uint32_t, float, int, size_t,
                                                 std::vector<Cand>*) const;

template <class Accept>
void HnswIndex::Impl::SearchLayerAccept(const float* q, uint32_t ep, float ep_d, size_t ef,
                                        const Accept& accept, std::vector<Cand>* out) const {
  hnsw_internal::VisitedTags& vt = hnsw_internal::ThreadVisited();
  const uint8_t tag = vt.Next(capacity_);
  uint8_t* vis = vt.tags.data();
  std::vector<Cand> frontier;     // min-heap
  std::vector<Cand>& top = *out;  // max-heap of accepted nodes, at most ef
  top.clear();
  frontier.reserve(4 * ef);
  top.reserve(ef + 1);
  float bound = std::numeric_limits<float>::infinity();
  vis[ep] = tag;
  if (accept(ep)) {
    top.push_back({ep_d, ep});
    bound = ep_d;
  }
  frontier.push_back({ep_d, ep});
  uint32_t fresh[kLinkBuf];
  while (!frontier.empty()) {
    const Cand c = frontier.front();
    // Unlike the plain search, keep going while fewer than ef accepted
    // results exist: rejected nodes are traversed, never returned.
    if (c.d > bound && top.size() >= ef) break;
    std::pop_heap(frontier.begin(), frontier.end(), ByDistDesc);
    frontier.pop_back();
    const uint8_t* ids;
    size_t w;
    const uint32_t cnt = RawLinks(c.id, 0, &ids, &w);
    size_t m = 0;
    for (uint32_t j = 0; j < cnt; ++j) {
      const uint32_t v = LinkAt(ids, w, j);
      if (vis[v] != tag) {
        vis[v] = tag;
        fresh[m++] = v;
        __builtin_prefetch(VecPtr(v));
      }
    }
    for (size_t j = 0; j < m; ++j) {
      if (j + 1 < m) PrefetchVec(fresh[j + 1]);
      const uint32_t v = fresh[j];
      const float d = Dist(q, v);
      if (top.size() < ef || d < bound) {
        frontier.push_back({d, v});
        std::push_heap(frontier.begin(), frontier.end(), ByDistDesc);
        if (accept(v)) {
          top.push_back({d, v});
          std::push_heap(top.begin(), top.end(), ByDist);
          if (top.size() > ef) {
            std::pop_heap(top.begin(), top.end(), ByDist);
            top.pop_back();
          }
          bound = top.front().d;
        }
      }
    }
  }
  std::sort_heap(top.begin(), top.end(), ByDist);
}

void HnswIndex::Impl::BruteForce(const float* q, size_t k, const IdFilter* filter,
                                 std::vector<Cand>* out) const {
  std::vector<Cand>& top = *out;  // max-heap
  top.clear();
  for (uint32_t i = 0; i < count_; ++i) {
    if (deleted_[i]) continue;
    if (filter != nullptr && !(*filter)(labels_[i])) continue;
    const float d = Dist(q, i);
    if (top.size() < k) {
      top.push_back({d, i});
      std::push_heap(top.begin(), top.end(), ByDist);
    } else if (d < top.front().d) {
      std::pop_heap(top.begin(), top.end(), ByDist);
      top.back() = {d, i};
      std::push_heap(top.begin(), top.end(), ByDist);
    }
  }
  std::sort_heap(top.begin(), top.end(), ByDist);
}

void HnswIndex::Impl::Knn(const float* q, size_t k, size_t ef, const IdFilter* filter,
                          std::vector<Cand>* out) const {
  out->clear();
  const size_t live = count_ - num_deleted_;
  if (live == 0) return;
  if (filter != nullptr) {
    // Estimate selectivity on an even sample of slots; very selective
    // filters are cheaper (and exact) as a scan over the matches.
    const size_t step = std::max<size_t>(1, count_ / 512);
    size_t sampled = 0, hits = 0;
    for (size_t i = 0; i < count_; i += step) {
      if (deleted_[i]) continue;
      ++sampled;
      hits += (*filter)(labels_[i]) ? 1 : 0;
    }
    const double est = sampled == 0 ? 0.0 : double(hits) / double(sampled) * double(live);
    if (hits * 50 < sampled || est < 2.0 * double(ef)) {
      BruteForce(q, k, filter, out);
      return;
    }
  }
  uint32_t ep = entry_;
  float ep_d = Dist(q, ep);
  for (int l = max_level_; l > 0; --l) ep = GreedyUpper<false>(q, ep, &ep_d, l);
  if (filter == nullptr && num_deleted_ == 0) {
    SearchLayer<false>(q, ep, ep_d, 0, ef, out);
  } else if (filter == nullptr) {
    SearchLayerAccept(
        q, ep, ep_d, ef, [this](uint32_t id) { return deleted_[id] == 0; }, out);
  } else {
    SearchLayerAccept(
        q, ep, ep_d, ef,
        [this, filter](uint32_t id) { return deleted_[id] == 0 && (*filter)(labels_[id]); }, out);
  }
  if (out->size() < k && (filter != nullptr || out->size() < live)) {
    // The reachable part of the graph ran out (e.g. deletions cut it):
    // answer exactly instead.
    BruteForce(q, k, filter, out);
    return;
  }
  if (out->size() > k) out->resize(k);
}

Status HnswIndex::Impl::PrepareQuery(std::span<const float> query, AlignedFloats* buf,
                                     const float** q) const {
  buf->resize(i8_ ? 2 * dim_ + 1 : dim_);
  VEXFS_RETURN_IF_ERROR(PrepareVector(query, buf->data(), /*stored=*/false));
  *q = trained() ? QueryForm(buf->data(), buf->data() + dim_) : buf->data();
  return Status::Ok();
}

namespace {
inline bool NeighborLess(const Neighbor& a, const Neighbor& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}
}  // namespace

void HnswIndex::Impl::ScanPending(const float* v, size_t k, float radius, const IdFilter* filter,
                                  std::vector<Neighbor>* out) const {
  out->clear();
  for (size_t i = 0; i < pending_ids_.size(); ++i) {
    if (filter != nullptr && !(*filter)(pending_ids_[i])) continue;
    const float d = MetricDistance(p_.metric, v, pending_vecs_.data() + i * dim_, dim_);
    if (d <= radius) out->push_back({pending_ids_[i], d});
  }
  std::sort(out->begin(), out->end(), NeighborLess);
  if (out->size() > k) out->resize(k);
}

Status HnswIndex::Impl::Rerank(const float* v, const std::vector<Cand>& cands,
                               std::vector<Neighbor>* out) const {
  thread_local AlignedFloats orig;
  orig.resize(dim_);
  out->clear();
  out->reserve(cands.size());
  for (const Cand& c : cands) {
    const uint64_t id = labels_[c.id];
    VEXFS_RETURN_IF_ERROR(source_->Fetch(id, orig));
    for (float x : orig) {
      if (!std::isfinite(x)) return Status::Corruption("hnsw: vector source returned NaN or Inf");
    }
    if (normalize_ && !NormalizeL2(orig.data(), dim_)) {
      return Status::Corruption("hnsw: vector source returned a zero vector under cosine");
    }
    out->push_back({id, MetricDistance(p_.metric, v, orig.data(), dim_)});
  }
  std::sort(out->begin(), out->end(), NeighborLess);
  return Status::Ok();
}

Result<std::vector<Neighbor>> HnswIndex::Search(std::span<const float> query,
                                                const SearchParams& params) const {
  const Impl& m = *impl_;
  if (params.k == 0 || params.k > hnsw_internal::kMaxK) {
    return Status::InvalidArgument("hnsw: k must be in [1, 10000]");
  }
  // Per-thread scratch: no allocation besides the result on the hot path.
  thread_local AlignedFloats buf;
  thread_local std::vector<Cand> cands;
  const float* q = nullptr;
  VEXFS_RETURN_IF_ERROR(m.PrepareQuery(query, &buf, &q));
  if (!m.trained()) {
    std::vector<Neighbor> out;
    m.ScanPending(buf.data(), params.k, std::numeric_limits<float>::infinity(), params.filter,
                  &out);
    return out;
  }
  size_t ef = params.effort != 0 ? params.effort : m.p_.ef_search;
  ef = std::max(params.k, std::min(ef, std::max<size_t>(m.count_, 1)));
  if (m.source_ != nullptr) {
    // Re-rank the whole beam with the originals.
    m.Knn(q, ef, ef, params.filter, &cands);
    std::vector<Neighbor> out;
    VEXFS_RETURN_IF_ERROR(m.Rerank(buf.data(), cands, &out));
    if (out.size() > params.k) out.resize(params.k);
    return out;
  }
  m.Knn(q, params.k, ef, params.filter, &cands);
  std::vector<Neighbor> out(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) out[i] = {m.labels_[cands[i].id], cands[i].d};
  return out;
}

Result<std::vector<Neighbor>> HnswIndex::RangeSearch(std::span<const float> query, float radius,
                                                     const SearchParams& params) const {
  const Impl& m = *impl_;
  if (std::isnan(radius)) return Status::InvalidArgument("hnsw: radius is NaN");
  AlignedFloats buf;
  const float* q = nullptr;
  VEXFS_RETURN_IF_ERROR(m.PrepareQuery(query, &buf, &q));
  if (!m.trained()) {
    std::vector<Neighbor> out;
    m.ScanPending(buf.data(), std::numeric_limits<size_t>::max(), radius, params.filter, &out);
    return out;
  }
  const size_t live = m.count_ - m.num_deleted_;
  size_t ef = std::max<size_t>(params.effort != 0 ? params.effort : m.p_.ef_search, 32);
  std::vector<Cand> cands;
  for (;;) {
    if (ef >= live) {
      m.BruteForce(q, std::max<size_t>(live, 1), params.filter, &cands);
      break;
    }
    m.Knn(q, ef, ef, params.filter, &cands);
    // Widen until the beam's worst member lies outside the radius.
    if (cands.size() < ef || cands.back().d > radius) break;
    ef *= 2;
  }
  std::vector<Neighbor> out;
  for (const Cand& c : cands) {
    if (c.d > radius) break;
    out.push_back({m.labels_[c.id], c.d});
  }
  if (m.source_ != nullptr) {
    const size_t hits = out.size();
    cands.resize(hits);
    std::vector<Neighbor> exact;
    VEXFS_RETURN_IF_ERROR(m.Rerank(buf.data(), cands, &exact));
    std::erase_if(exact, [radius](const Neighbor& nb) { return nb.distance > radius; });
    return exact;
  }
  return out;
}

}  // namespace vexfs::engine
