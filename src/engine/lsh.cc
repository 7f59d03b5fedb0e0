// LshIndex: SimHash tables, query-directed multi-probe, exact re-ranking.
#include "vexfs/engine/lsh.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>
#include <string>

#include "index_common.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

using index_internal::NeighborLess;

constexpr char kPrefix[] = "lsh: ";

// splitmix64 + Box-Muller: platform-independent Gaussian planes (the
// std:: distributions are implementation-defined).
struct Rng : index_internal::SplitMix64 {
  double Uniform() {
    return (static_cast<double>(Next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  double Gauss() {
    const double u = Uniform(), v = Uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

// Per-thread "seen" tags for candidate deduplication.
struct SeenTags {
  std::vector<uint32_t> tags;
  uint32_t epoch = 0;
  uint32_t Next(size_t n) {
    if (tags.size() < n) {
      tags.assign(n + n / 2 + 64, 0);
      epoch = 0;
    }
    if (++epoch == 0) {
      std::fill(tags.begin(), tags.end(), 0u);
      epoch = 1;
    }
    return epoch;
  }
};

SeenTags& ThreadSeen() {
  thread_local SeenTags t;
  return t;
}

Status CheckK(size_t k) { return index_internal::CheckK(k, LshIndex::kMaxK, kPrefix); }

Status Bad(const std::string& what) { return Status::Corruption("lsh: " + what); }

}  // namespace

LshIndex::LshIndex(const LshOptions& opt) : opt_(opt), tables_(opt.num_tables) {
  const size_t np = opt.num_tables * opt.num_bits;
  planes_.resize(np * opt.dim);
  Rng rng{opt.seed};
  for (size_t p = 0; p < np; ++p) {
    float* a = planes_.data() + p * opt.dim;
    double norm = 0;
    for (size_t i = 0; i < opt.dim; ++i) {
      a[i] = static_cast<float>(rng.Gauss());
      norm += static_cast<double>(a[i]) * a[i];
    }
    // Unit planes make margins comparable across bits.
    const double inv = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
    for (size_t i = 0; i < opt.dim; ++i) a[i] = static_cast<float>(a[i] * inv);
  }
}

Result<std::unique_ptr<LshIndex>> LshIndex::Create(const LshOptions& o) {
  if (o.dim == 0 || o.dim > kMaxDim)
    return Status::InvalidArgument("lsh: dim must be in [1, 65536]");
  if (static_cast<uint8_t>(o.metric) > 2) return Status::InvalidArgument("lsh: unknown metric");
  if (o.num_tables == 0 || o.num_tables > kMaxTables) {
    return Status::InvalidArgument("lsh: num_tables must be in [1, 64]");
  }
  if (o.num_bits == 0 || o.num_bits > kMaxBits) {
    return Status::InvalidArgument("lsh: num_bits must be in [1, 32]");
  }
  if (o.default_probes == 0) return Status::InvalidArgument("lsh: default_probes must be > 0");
  return std::unique_ptr<LshIndex>(new LshIndex(o));
}

size_t LshIndex::MemoryBytes() const {
  size_t bytes = sizeof(*this) + planes_.capacity() * 4 + center_.capacity() * 4 +
                 ids_.capacity() * 8 + live_.capacity() + vectors_.capacity() * 4 +
                 keys_.capacity() * 4 + free_.capacity() * 4 + index_internal::HashMapBytes(slots_);
  for (const auto& t : tables_) {
    bytes += t.bucket_count() * sizeof(void*);
    for (const auto& [key, list] : t) {
      bytes += sizeof(std::pair<const uint32_t, std::vector<uint32_t>>) + 2 * sizeof(void*) +
               list.capacity() * 4;
    }
  }
  return bytes;
}

Status LshIndex::Prepare(std::span<const float> v, float* out, const char* what) const {
  return index_internal::PrepareVector(v, opt_.dim, opt_.metric, out, kPrefix, what);
}

void LshIndex::Project(const float* v, float* proj) const {
  const size_t d = opt_.dim, np = opt_.num_tables * opt_.num_bits;
  const float* x = v;
  std::vector<float> centered;
  if (!center_.empty()) {
    centered.resize(d);
    for (size_t i = 0; i < d; ++i) centered[i] = v[i] - center_[i];
    x = centered.data();
  }
  const auto dot = Kernels().dot_f32;
  for (size_t p = 0; p < np; ++p) proj[p] = dot(planes_.data() + p * d, x, d);
}

uint32_t LshIndex::KeyOf(const float* proj, size_t table) const {
  uint32_t key = 0;
  const float* p = proj + table * opt_.num_bits;
  for (size_t j = 0; j < opt_.num_bits; ++j) key |= (p[j] >= 0.0f ? 1u : 0u) << j;
  return key;
}

void LshIndex::Insert(uint32_t slot) {
  const size_t L = opt_.num_tables;
  std::vector<float> proj(L * opt_.num_bits);
  Project(vectors_.data() + size_t{slot} * opt_.dim, proj.data());
  for (size_t t = 0; t < L; ++t) {
    const uint32_t key = KeyOf(proj.data(), t);
    keys_[size_t{slot} * L + t] = key;
    tables_[t][key].push_back(slot);
  }
}

void LshIndex::Unhash(uint32_t slot) {
  const size_t L = opt_.num_tables;
  for (size_t t = 0; t < L; ++t) {
    auto it = tables_[t].find(keys_[size_t{slot} * L + t]);
    if (it == tables_[t].end()) continue;
    std::vector<uint32_t>& list = it->second;
    auto pos = std::find(list.begin(), list.end(), slot);
    if (pos != list.end()) {
      *pos = list.back();
      list.pop_back();
    }
    if (list.empty()) tables_[t].erase(it);
  }
}

void LshIndex::AddPrepared(uint64_t id, const float* v) {
  const size_t d = opt_.dim;
  auto it = slots_.find(id);
  uint32_t slot;
  if (it != slots_.end()) {
    slot = it->second;
    Unhash(slot);
  } else if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    ids_[slot] = id;
    live_[slot] = 1;
    slots_.emplace(id, slot);
  } else {
    slot = static_cast<uint32_t>(ids_.size());
    ids_.push_back(id);
    live_.push_back(1);
    vectors_.resize(vectors_.size() + d);
    keys_.resize(keys_.size() + opt_.num_tables);
    slots_.emplace(id, slot);
  }
  std::memcpy(vectors_.data() + size_t{slot} * d, v, d * sizeof(float));
  Insert(slot);
}

Status LshIndex::Add(uint64_t id, std::span<const float> vec) {
  std::vector<float> v(opt_.dim);
  VEXFS_RETURN_IF_ERROR(Prepare(vec, v.data(), "vector"));
  if (!slots_.count(id) && free_.empty() && ids_.size() >= UINT32_MAX) {
    return Status::NoSpace("lsh: index is full (2^32 - 1 slots)");
  }
  AddPrepared(id, v.data());
  return Status::Ok();
}

Status LshIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs) {
  const size_t d = opt_.dim;
  if (vecs.size() != ids.size() * d) {
    return Status::InvalidArgument("lsh: AddBatch needs ids.size() * dim floats");
  }
  std::vector<float> prepared;
  VEXFS_RETURN_IF_ERROR(
      index_internal::PrepareRows(vecs, d, opt_.metric, &prepared, kPrefix, "vector"));
  if (ids_.size() + ids.size() > UINT32_MAX)
    return Status::NoSpace("lsh: index would exceed 2^32 - 1");
  for (size_t i = 0; i < ids.size(); ++i) AddPrepared(ids[i], prepared.data() + i * d);
  return Status::Ok();
}

Status LshIndex::Remove(uint64_t id) {
  auto it = slots_.find(id);
  if (it == slots_.end())
    return Status::NotFound("lsh: id " + std::to_string(id) + " not in index");
  const uint32_t slot = it->second;
  slots_.erase(it);
  Unhash(slot);
  live_[slot] = 0;
  std::memset(vectors_.data() + size_t{slot} * opt_.dim, 0, opt_.dim * sizeof(float));
  free_.push_back(slot);
  return Status::Ok();
}

void LshIndex::Rehash() {
  for (auto& t : tables_) t.clear();
  for (uint32_t s = 0; s < ids_.size(); ++s) {
    if (live_[s]) Insert(s);
  }
}

Status LshIndex::Train(std::span<const float> sample) {
  const size_t d = opt_.dim;
  VEXFS_RETURN_IF_ERROR(index_internal::CheckSampleShape(sample, d, kPrefix));
  for (float x : sample) {
    if (!std::isfinite(x)) return Status::InvalidArgument("lsh: training sample holds NaN or Inf");
  }
  if (opt_.metric != Metric::kL2) return Status::Ok();
  const size_t n = sample.size() / d;
  std::vector<double> mean(d, 0.0);
  for (size_t r = 0; r < n; ++r) {
    for (size_t i = 0; i < d; ++i) mean[i] += sample[r * d + i];
  }
  center_.resize(d);
  for (size_t i = 0; i < d; ++i) center_[i] = static_cast<float>(mean[i] / double(n));
  Rehash();
  return Status::Ok();
}

float LshIndex::Distance(const float* q, uint32_t slot) const {
  return MetricDistance(opt_.metric, q, vectors_.data() + size_t{slot} * opt_.dim, opt_.dim);
}

// Query-directed probing: bits sorted by margin; perturbation sets are
// generated in increasing total margin with the shift/expand heap of Lv et
// al. A set is a bitmask over sorted positions plus its largest position.
void LshIndex::Candidates(const float* q, size_t probes, std::vector<uint32_t>* out) const {
  const size_t L = opt_.num_tables, K = opt_.num_bits;
  out->clear();
  std::vector<float> proj(L * K);
  Project(q, proj.data());
  SeenTags& seen = ThreadSeen();
  const uint32_t tag = seen.Next(ids_.size());
  uint32_t* tags = seen.tags.data();
  const uint64_t max_probes = K >= 63 ? UINT64_MAX : (uint64_t{1} << K);
  probes = static_cast<size_t>(std::min<uint64_t>(probes, max_probes));
  struct Pert {
    float score;
    uint32_t mask;
    uint32_t maxpos;
    bool operator>(const Pert& o) const { return score > o.score; }
  };
  std::vector<uint32_t> order(K);
  std::vector<float> margin(K);
  auto take = [&](const std::vector<uint32_t>& bucket) {
    for (uint32_t s : bucket) {
      if (tags[s] != tag) {
        tags[s] = tag;
        out->push_back(s);
      }
    }
  };
  auto visit = [&](const std::unordered_map<uint32_t, std::vector<uint32_t>>& table, uint32_t key) {
    auto it = table.find(key);
    if (it != table.end()) take(it->second);
  };
  for (size_t t = 0; t < L; ++t) {
    const float* p = proj.data() + t * K;
    if (probes > 1 && probes >= tables_[t].size()) {
      // At least as many probes as the table has non-empty buckets: take
      // them all (a superset of what probing finds). Bounds the work and
      // the probe heap by the data, whatever effort a caller asks for.
      for (const auto& [key, bucket] : tables_[t]) take(bucket);
      continue;
    }
    const uint32_t home = KeyOf(proj.data(), t);
    visit(tables_[t], home);
    if (probes <= 1) continue;
    for (size_t j = 0; j < K; ++j) order[j] = static_cast<uint32_t>(j);
    std::sort(order.begin(), order.end(),
              [p](uint32_t a, uint32_t b) { return std::fabs(p[a]) < std::fabs(p[b]); });
    for (size_t j = 0; j < K; ++j) margin[j] = std::fabs(p[order[j]]);
    std::priority_queue<Pert, std::vector<Pert>, std::greater<Pert>> heap;
    heap.push({margin[0], 1u, 0u});
    for (size_t done = 1; done < probes && !heap.empty(); ++done) {
      const Pert a = heap.top();
      heap.pop();
      uint32_t key = home;
      for (uint32_t m = a.mask, pos = 0; m != 0; m >>= 1, ++pos) {
        if (m & 1u) key ^= 1u << order[pos];
      }
      visit(tables_[t], key);
      if (a.maxpos + 1 < K) {
        const uint32_t nxt = a.maxpos + 1;
        // shift: replace the largest position by the next one.
        heap.push({a.score - margin[a.maxpos] + margin[nxt],
                   (a.mask & ~(1u << a.maxpos)) | (1u << nxt), nxt});
        // expand: add the next position.
        heap.push({a.score + margin[nxt], a.mask | (1u << nxt), nxt});
      }
    }
  }
}

Result<std::vector<Neighbor>> LshIndex::SearchPrepared(const float* q,
                                                       const SearchParams& params) const {
  const size_t probes = params.effort != 0 ? params.effort : opt_.default_probes;
  thread_local std::vector<uint32_t> cands;
  Candidates(q, probes, &cands);
  std::vector<Neighbor> top;  // max-heap by NeighborLess
  top.reserve(params.k + 1);
  for (uint32_t s : cands) {
    if (params.filter != nullptr && !(*params.filter)(ids_[s])) continue;
    index_internal::BoundedPush(&top, params.k, Neighbor{ids_[s], Distance(q, s)}, NeighborLess);
  }
  std::sort_heap(top.begin(), top.end(), NeighborLess);
  return top;
}

Result<std::vector<Neighbor>> LshIndex::Search(std::span<const float> query,
                                               const SearchParams& params) const {
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  std::vector<float> q(opt_.dim);
  VEXFS_RETURN_IF_ERROR(Prepare(query, q.data(), "query"));
  return SearchPrepared(q.data(), params);
}

Result<std::vector<Neighbor>> LshIndex::RangeSearch(std::span<const float> query, float radius,
                                                    const SearchParams& params) const {
  if (std::isnan(radius)) return Status::InvalidArgument("lsh: radius is NaN");
  std::vector<float> q(opt_.dim);
  VEXFS_RETURN_IF_ERROR(Prepare(query, q.data(), "query"));
  const size_t probes = params.effort != 0 ? params.effort : opt_.default_probes;
  std::vector<uint32_t> cands;
  Candidates(q.data(), probes, &cands);
  std::vector<Neighbor> out;
  for (uint32_t s : cands) {
    if (params.filter != nullptr && !(*params.filter)(ids_[s])) continue;
    const float d = Distance(q.data(), s);
    if (d <= radius) out.push_back({ids_[s], d});
  }
  std::sort(out.begin(), out.end(), NeighborLess);
  return out;
}

Result<std::vector<std::vector<Neighbor>>> LshIndex::SearchBatch(std::span<const float> queries,
                                                                 const SearchParams& params) const {
  const size_t d = opt_.dim;
  if (queries.size() % d != 0) {
    return Status::InvalidArgument("lsh: batch size is not a multiple of the dimension");
  }
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  const size_t nq = queries.size() / d;
  std::vector<float> prepared;
  VEXFS_RETURN_IF_ERROR(
      index_internal::PrepareRows(queries, d, opt_.metric, &prepared, kPrefix, "query"));
  std::vector<std::vector<Neighbor>> out(nq);
  std::atomic<size_t> next{0};
  index_internal::RunWorkers(std::min(index_internal::ResolveThreads(opt_.num_threads), nq), [&] {
    for (size_t i = next.fetch_add(1); i < nq; i = next.fetch_add(1)) {
      auto r = SearchPrepared(prepared.data() + i * d, params);
      if (r.ok()) out[i] = std::move(r).value();  // cannot fail after validation
    }
  });
  return out;
}

Result<std::vector<uint8_t>> LshIndex::Serialize() const {
  ByteWriter w;
  w.PutU32(static_cast<uint32_t>(opt_.dim));
  w.PutU8(static_cast<uint8_t>(opt_.metric));
  w.PutU8(center_.empty() ? 0 : 1);
  w.PutU16(0);
  w.PutU32(static_cast<uint32_t>(opt_.num_tables));
  w.PutU32(static_cast<uint32_t>(opt_.num_bits));
  w.PutU32(static_cast<uint32_t>(std::min<size_t>(opt_.default_probes, UINT32_MAX)));
  w.PutU64(opt_.seed);
  if (!center_.empty()) w.PutF32Array(center_);
  w.PutU32(static_cast<uint32_t>(ids_.size()));
  w.PutU64Array(ids_);
  w.PutBytes(live_.data(), live_.size());
  w.PutF32Array(vectors_);
  std::vector<uint8_t> payload = w.Release();
  return WrapBlob(IndexKind::kLsh, kFormatVersion, payload);
}

Result<std::unique_ptr<LshIndex>> LshIndex::Deserialize(std::span<const uint8_t> blob) {
  VEXFS_ASSIGN_OR_RETURN(BlobView view, UnwrapBlob(blob, IndexKind::kLsh, kFormatVersion));
  ByteReader r(view.payload);
  uint32_t dim = 0, L = 0, K = 0, probes = 0, n = 0;
  uint8_t metric = 0, has_center = 0;
  uint16_t reserved = 0;
  uint64_t seed = 0;
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&dim));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&metric));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&has_center));
  VEXFS_RETURN_IF_ERROR(r.ReadU16(&reserved));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&L));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&K));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&probes));
  VEXFS_RETURN_IF_ERROR(r.ReadU64(&seed));
  if (dim == 0 || dim > kMaxDim) return Bad("bad dim");
  if (metric > 2) return Bad("unknown metric");
  if (has_center > 1 || (has_center && metric != static_cast<uint8_t>(Metric::kL2))) {
    return Bad("bad center flag");
  }
  if (reserved != 0) return Bad("reserved field is not zero");
  if (L == 0 || L > kMaxTables || K == 0 || K > kMaxBits || probes == 0) {
    return Bad("bad table parameters");
  }
  LshOptions o;
  o.dim = dim;
  o.metric = static_cast<Metric>(metric);
  o.num_tables = L;
  o.num_bits = K;
  o.default_probes = probes;
  o.seed = seed;
  std::vector<float> center;
  if (has_center) {
    VEXFS_RETURN_IF_ERROR(r.CheckAvailable(dim, 4));
    center.resize(dim);
    VEXFS_RETURN_IF_ERROR(r.ReadF32Array(center.data(), dim));
    for (float x : center) {
      if (!std::isfinite(x)) return Bad("non-finite center");
    }
  }
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&n));
  if (n == UINT32_MAX) return Bad("slot count too large");
  // Validate the count against the input before allocating anything.
  VEXFS_RETURN_IF_ERROR(r.CheckAvailable(n, 8 + 1 + size_t{dim} * 4));
  std::unique_ptr<LshIndex> idx(new LshIndex(o));
  idx->center_ = std::move(center);
  idx->ids_.resize(n);
  idx->live_.resize(n);
  idx->vectors_.resize(size_t{n} * dim);
  idx->keys_.resize(size_t{n} * L);
  VEXFS_RETURN_IF_ERROR(r.ReadU64Array(idx->ids_.data(), n));
  VEXFS_RETURN_IF_ERROR(r.ReadBytes(idx->live_.data(), n));
  VEXFS_RETURN_IF_ERROR(r.ReadF32Array(idx->vectors_.data(), idx->vectors_.size()));
  VEXFS_RETURN_IF_ERROR(r.ExpectEnd());
  for (float x : idx->vectors_) {
    if (!std::isfinite(x)) return Bad("non-finite vector value");
  }
  for (uint8_t live : idx->live_) {
    if (live > 1) return Bad("invalid live flag");
  }
  VEXFS_RETURN_IF_ERROR(
      index_internal::IndexSlots(idx->ids_, idx->live_.data(), &idx->slots_, kPrefix));
  for (uint32_t s = n; s-- > 0;) {
    if (idx->live_[s] == 0) idx->free_.push_back(s);
  }
  idx->Rehash();
  return idx;
}


std::vector<uint64_t> LshIndex::Ids() const {
  std::vector<uint64_t> out;
  out.reserve(slots_.size());
  for (const auto& [id, slot] : slots_) out.push_back(id);
  return out;
}

}  // namespace vexfs::engine
