// IvfIndex: k-means coarse quantizer, float32 inverted lists, exact scan of
// the probed lists.
#include "vexfs/engine/ivf.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>

#include "index_common.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/parallel.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

using index_internal::NeighborLess;

constexpr size_t kMaxSamplePerList = 256;
constexpr char kPrefix[] = "ivf: ";

struct Rng : index_internal::SplitMix64 {
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
};

Status CheckK(size_t k) { return index_internal::CheckK(k, IvfIndex::kMaxK, kPrefix); }

Status Bad(const std::string& what) { return Status::Corruption("ivf: " + what); }

}  // namespace

Result<std::unique_ptr<IvfIndex>> IvfIndex::Create(const IvfOptions& o) {
  if (o.dim == 0 || o.dim > kMaxDim)
    return Status::InvalidArgument("ivf: dim must be in [1, 65536]");
  if (static_cast<uint8_t>(o.metric) > 2) return Status::InvalidArgument("ivf: unknown metric");
  if (o.nlist == 0 || o.nlist > kMaxList) {
    return Status::InvalidArgument("ivf: nlist must be in [1, 65536]");
  }
  if (o.default_nprobe == 0) return Status::InvalidArgument("ivf: default_nprobe must be > 0");
  if (o.kmeans_iters == 0 || o.kmeans_iters > 100) {
    return Status::InvalidArgument("ivf: kmeans_iters must be in [1, 100]");
  }
  IvfOptions opt = o;
  if (opt.train_size == 0) opt.train_size = 32 * opt.nlist;
  if (opt.train_size < opt.nlist || opt.train_size > UINT32_MAX) {
    return Status::InvalidArgument("ivf: train_size must be in [nlist, 2^32)");
  }
  return std::unique_ptr<IvfIndex>(new IvfIndex(opt));
}

size_t IvfIndex::MemoryBytes() const {
  size_t bytes = sizeof(*this) + centroids_.capacity() * sizeof(float) +
                 lists_.capacity() * sizeof(List) + index_internal::HashMapBytes(where_);
  for (const List& l : lists_) bytes += l.ids.capacity() * 8 + l.vecs.capacity() * 4;
  return bytes;
}

std::vector<size_t> IvfIndex::ListSizes() const {
  std::vector<size_t> out;
  if (!trained()) return out;
  for (const List& l : lists_) out.push_back(l.ids.size());
  return out;
}

size_t IvfIndex::Threads() const { return index_internal::ResolveThreads(opt_.num_threads); }

Status IvfIndex::Prepare(std::span<const float> v, float* out, const char* what) const {
  return index_internal::PrepareVector(v, opt_.dim, opt_.metric, out, kPrefix, what);
}

uint32_t IvfIndex::NearestCentroid(const float* v) const {
  const size_t d = opt_.dim, k = centroids_.size() / d;
  const auto l2 = Kernels().l2_f32;
  uint32_t best = 0;
  float best_d = std::numeric_limits<float>::infinity();
  for (size_t c = 0; c < k; ++c) {
    const float dist = l2(v, centroids_.data() + c * d, d);
    if (dist < best_d) {
      best_d = dist;
      best = static_cast<uint32_t>(c);
    }
  }
  return best;
}

void IvfIndex::Append(uint32_t list, uint64_t id, const float* v) {
  List& l = lists_[list];
  where_[id] = Loc{list, static_cast<uint32_t>(l.ids.size())};
  l.ids.push_back(id);
  l.vecs.insert(l.vecs.end(), v, v + opt_.dim);
}

void IvfIndex::Erase(Loc loc) {
  const size_t d = opt_.dim;
  List& l = lists_[loc.list];
  const size_t last = l.ids.size() - 1;
  if (loc.pos != last) {
    l.ids[loc.pos] = l.ids[last];
    std::memcpy(l.vecs.data() + size_t{loc.pos} * d, l.vecs.data() + last * d, d * sizeof(float));
    where_[l.ids[loc.pos]] = loc;
  }
  l.ids.pop_back();
  l.vecs.resize(last * d);
}

void IvfIndex::AddPrepared(uint64_t id, const float* v) {
  auto it = where_.find(id);
  const uint32_t list = trained() ? NearestCentroid(v) : 0;
  if (it != where_.end()) {
    const Loc loc = it->second;
    if (loc.list == list) {  // same cell: overwrite in place
      std::memcpy(lists_[list].vecs.data() + size_t{loc.pos} * opt_.dim, v,
                  opt_.dim * sizeof(float));
      return;
    }
    Erase(loc);
    where_.erase(id);
  }
  Append(list, id, v);
}

Status IvfIndex::Add(uint64_t id, std::span<const float> vec) {
  std::vector<float> v(opt_.dim);
  VEXFS_RETURN_IF_ERROR(Prepare(vec, v.data(), "vector"));
  if (size() >= UINT32_MAX && !Contains(id)) return Status::NoSpace("ivf: index is full");
  AddPrepared(id, v.data());
  if (!trained() && size() >= opt_.train_size) return TrainPrepared(lists_[0].vecs);
  return Status::Ok();
}

Status IvfIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs) {
  const size_t d = opt_.dim;
  if (vecs.size() != ids.size() * d) {
    return Status::InvalidArgument("ivf: AddBatch needs ids.size() * dim floats");
  }
  std::vector<float> prepared;
  VEXFS_RETURN_IF_ERROR(
      index_internal::PrepareRows(vecs, d, opt_.metric, &prepared, kPrefix, "vector"));
  if (size() + ids.size() > UINT32_MAX) return Status::NoSpace("ivf: index would be too large");
  size_t i = 0;
  // Before training, fill up to the training size, train on everything
  // present, then assign the rest of the batch to cells.
  for (; i < ids.size() && !trained(); ++i) {
    AddPrepared(ids[i], prepared.data() + i * d);
    if (size() >= opt_.train_size) {
      // Train on the whole batch so far plus what was already stored.
      std::vector<float> sample = lists_[0].vecs;
      sample.insert(sample.end(), prepared.data() + (i + 1) * d, prepared.data() + prepared.size());
      VEXFS_RETURN_IF_ERROR(TrainPrepared(std::move(sample)));
      ++i;
      break;
    }
  }
  if (!trained()) return Status::Ok();
  // Assign the remaining rows in parallel, insert serially (ids may repeat;
  // the last one wins as with sequential Adds).
  const size_t rest = ids.size() - i;
  std::vector<uint32_t> cell(rest);
  ParallelFor(rest, Threads(), [&](size_t, size_t b, size_t e) {
    for (size_t j = b; j < e; ++j) cell[j] = NearestCentroid(prepared.data() + (i + j) * d);
  });
  for (size_t j = 0; j < rest; ++j) {
    const uint64_t id = ids[i + j];
    const float* v = prepared.data() + (i + j) * d;
    auto it = where_.find(id);
    if (it != where_.end()) {
      Erase(it->second);
      where_.erase(it);
    }
    Append(cell[j], id, v);
  }
  return Status::Ok();
}

Status IvfIndex::Remove(uint64_t id) {
  auto it = where_.find(id);
  if (it == where_.end())
    return Status::NotFound("ivf: id " + std::to_string(id) + " not in index");
  const Loc loc = it->second;
  where_.erase(it);
  Erase(loc);
  return Status::Ok();
}

Status IvfIndex::Train(std::span<const float> sample) {
  const size_t d = opt_.dim;
  VEXFS_RETURN_IF_ERROR(index_internal::CheckSampleShape(sample, d, kPrefix));
  if (sample.size() / d < opt_.nlist) {
    return Status::InvalidArgument("ivf: training sample needs at least nlist rows");
  }
  std::vector<float> prepared;
  VEXFS_RETURN_IF_ERROR(
      index_internal::PrepareRows(sample, d, opt_.metric, &prepared, kPrefix, "sample row"));
  return TrainPrepared(std::move(prepared));
}

// k-means++ seeding, then Lloyd iterations with threaded assignment.
Status IvfIndex::TrainPrepared(std::vector<float> sample) {
  const size_t d = opt_.dim, k = opt_.nlist;
  size_t n = sample.size() / d;
  if (n < k) return Status::InvalidArgument("ivf: training sample needs at least nlist rows");
  Rng rng{opt_.seed};
  if (n > kMaxSamplePerList * k) {
    // Deterministic subsample: partial Fisher-Yates over row indexes.
    const size_t m = kMaxSamplePerList * k;
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), size_t{0});
    for (size_t i = 0; i < m; ++i) std::swap(idx[i], idx[i + rng.Below(n - i)]);
    std::vector<float> sub(m * d);
    for (size_t i = 0; i < m; ++i) {
      std::memcpy(sub.data() + i * d, sample.data() + idx[i] * d, d * sizeof(float));
    }
    sample = std::move(sub);
    n = m;
  }
  const auto l2 = Kernels().l2_f32;
  const float* x = sample.data();
  std::vector<float> cent(k * d);
  // k-means++: each next centre is drawn with probability ~ D(x)^2.
  std::vector<double> dmin(n, std::numeric_limits<double>::infinity());
  size_t pick = rng.Below(n);
  for (size_t c = 0; c < k; ++c) {
    std::memcpy(cent.data() + c * d, x + pick * d, d * sizeof(float));
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      dmin[i] = std::min<double>(dmin[i], l2(x + i * d, cent.data() + c * d, d));
      total += dmin[i];
    }
    if (c + 1 == k) break;
    if (!(total > 0)) {
      pick = rng.Below(n);  // all rows coincide with centres: any row will do
      continue;
    }
    double r = rng.Uniform() * total;
    pick = n - 1;
    for (size_t i = 0; i < n; ++i) {
      r -= dmin[i];
      if (r < 0) {
        pick = i;
        break;
      }
    }
  }
  std::vector<uint32_t> assign(n);
  std::vector<float> adist(n);
  const size_t threads = Threads();
  for (size_t iter = 0; iter < opt_.kmeans_iters; ++iter) {
    ParallelFor(n, threads, [&](size_t, size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        float best = std::numeric_limits<float>::infinity();
        uint32_t bc = 0;
        for (size_t c = 0; c < k; ++c) {
          const float dist = l2(x + i * d, cent.data() + c * d, d);
          if (dist < best) {
            best = dist;
            bc = static_cast<uint32_t>(c);
          }
        }
        assign[i] = bc;
        adist[i] = best;
      }
    });
    std::vector<double> sum(k * d, 0.0);
    std::vector<size_t> count(k, 0);
    for (size_t i = 0; i < n; ++i) {
      ++count[assign[i]];
      double* s = sum.data() + size_t{assign[i]} * d;
      for (size_t j = 0; j < d; ++j) s[j] += x[i * d + j];
    }
    for (size_t c = 0; c < k; ++c) {
      float* ce = cent.data() + c * d;
      if (count[c] == 0) {
        // Re-seed an empty cell with the row farthest from its centre.
        const size_t far =
            static_cast<size_t>(std::max_element(adist.begin(), adist.end()) - adist.begin());
        std::memcpy(ce, x + far * d, d * sizeof(float));
        adist[far] = 0;
        continue;
      }
      for (size_t j = 0; j < d; ++j) ce[j] = static_cast<float>(sum[c * d + j] / double(count[c]));
      if (opt_.metric == Metric::kCosine) NormalizeL2(ce, d);  // zero mean stays as is
    }
  }
  // Install the centroids and re-assign everything stored.
  std::vector<uint64_t> ids;
  std::vector<float> vecs;
  ids.reserve(size());
  vecs.reserve(size() * d);
  for (List& l : lists_) {
    ids.insert(ids.end(), l.ids.begin(), l.ids.end());
    vecs.insert(vecs.end(), l.vecs.begin(), l.vecs.end());
  }
  centroids_ = std::move(cent);
  lists_.assign(k, List{});
  where_.clear();
  std::vector<uint32_t> cell(ids.size());
  ParallelFor(ids.size(), threads, [&](size_t, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) cell[i] = NearestCentroid(vecs.data() + i * d);
  });
  where_.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) Append(cell[i], ids[i], vecs.data() + i * d);
  return Status::Ok();
}

void IvfIndex::Probe(const float* q, size_t nprobe, std::vector<uint32_t>* out) const {
  out->clear();
  if (!trained()) {
    out->push_back(0);
    return;
  }
  const size_t d = opt_.dim, k = lists_.size();
  nprobe = std::min(nprobe, k);
  // Inner product ranks cells by <q, c>: a vector x of cell c has
  // <q, x> = <q, c> + <q, x - c>, and cells are compact around c.
  const DistanceKernels& kern = Kernels();
  const bool ip = opt_.metric == Metric::kInnerProduct;
  std::vector<std::pair<float, uint32_t>> cd(k);
  for (size_t c = 0; c < k; ++c) {
    const float* ce = centroids_.data() + c * d;
    cd[c] = {ip ? -kern.dot_f32(q, ce, d) : kern.l2_f32(q, ce, d), uint32_t(c)};
  }
  std::partial_sort(cd.begin(), cd.begin() + nprobe, cd.end());
  for (size_t i = 0; i < nprobe; ++i) out->push_back(cd[i].second);
}

std::vector<Neighbor> IvfIndex::SearchPrepared(const float* q, const SearchParams& params) const {
  const size_t d = opt_.dim;
  std::vector<uint32_t> probe;
  Probe(q, params.effort != 0 ? params.effort : opt_.default_nprobe, &probe);
  std::vector<Neighbor> top;  // max-heap by NeighborLess
  top.reserve(params.k + 1);
  for (uint32_t li : probe) {
    const List& l = lists_[li];
    for (size_t p = 0; p < l.ids.size(); ++p) {
      if (params.filter != nullptr && !(*params.filter)(l.ids[p])) continue;
      const Neighbor nb{l.ids[p], MetricDistance(opt_.metric, q, l.vecs.data() + p * d, d)};
      index_internal::BoundedPush(&top, params.k, nb, NeighborLess);
    }
  }
  std::sort_heap(top.begin(), top.end(), NeighborLess);
  return top;
}

Result<std::vector<Neighbor>> IvfIndex::Search(std::span<const float> query,
                                               const SearchParams& params) const {
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  std::vector<float> q(opt_.dim);
  VEXFS_RETURN_IF_ERROR(Prepare(query, q.data(), "query"));
  return SearchPrepared(q.data(), params);
}

Result<std::vector<Neighbor>> IvfIndex::RangeSearch(std::span<const float> query, float radius,
                                                    const SearchParams& params) const {
  if (std::isnan(radius)) return Status::InvalidArgument("ivf: radius is NaN");
  const size_t d = opt_.dim;
  std::vector<float> q(d);
  VEXFS_RETURN_IF_ERROR(Prepare(query, q.data(), "query"));
  std::vector<uint32_t> probe;
  Probe(q.data(), params.effort != 0 ? params.effort : opt_.default_nprobe, &probe);
  std::vector<Neighbor> out;
  for (uint32_t li : probe) {
    const List& l = lists_[li];
    for (size_t p = 0; p < l.ids.size(); ++p) {
      if (params.filter != nullptr && !(*params.filter)(l.ids[p])) continue;
      const float dist = MetricDistance(opt_.metric, q.data(), l.vecs.data() + p * d, d);
      if (dist <= radius) out.push_back({l.ids[p], dist});
    }
  }
  std::sort(out.begin(), out.end(), NeighborLess);
  return out;
}

Result<std::vector<std::vector<Neighbor>>> IvfIndex::SearchBatch(std::span<const float> queries,
                                                                 const SearchParams& params) const {
  const size_t d = opt_.dim;
  if (queries.size() % d != 0) {
    return Status::InvalidArgument("ivf: batch size is not a multiple of the dimension");
  }
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  const size_t nq = queries.size() / d;
  std::vector<float> prepared;
  VEXFS_RETURN_IF_ERROR(
      index_internal::PrepareRows(queries, d, opt_.metric, &prepared, kPrefix, "query"));
  std::vector<std::vector<Neighbor>> out(nq);
  std::atomic<size_t> next{0};
  index_internal::RunWorkers(std::min(Threads(), nq), [&] {
    for (size_t i = next.fetch_add(1); i < nq; i = next.fetch_add(1)) {
      out[i] = SearchPrepared(prepared.data() + i * d, params);
    }
  });
  return out;
}

Result<std::vector<uint8_t>> IvfIndex::Serialize() const {
  ByteWriter w;
  w.PutU32(static_cast<uint32_t>(opt_.dim));
  w.PutU8(static_cast<uint8_t>(opt_.metric));
  w.PutU8(trained() ? 1 : 0);
  w.PutU16(0);
  w.PutU32(static_cast<uint32_t>(opt_.nlist));
  w.PutU32(static_cast<uint32_t>(std::min<size_t>(opt_.default_nprobe, UINT32_MAX)));
  w.PutU32(static_cast<uint32_t>(opt_.train_size));
  w.PutU32(static_cast<uint32_t>(opt_.kmeans_iters));
  w.PutU64(opt_.seed);
  if (trained()) w.PutF32Array(centroids_);
  for (const List& l : lists_) {
    w.PutU32(static_cast<uint32_t>(l.ids.size()));
    w.PutU64Array(l.ids);
    w.PutF32Array(l.vecs);
  }
  std::vector<uint8_t> payload = w.Release();
  return WrapBlob(IndexKind::kIvf, kFormatVersion, payload);
}

Result<std::unique_ptr<IvfIndex>> IvfIndex::Deserialize(std::span<const uint8_t> blob) {
  VEXFS_ASSIGN_OR_RETURN(BlobView view, UnwrapBlob(blob, IndexKind::kIvf, kFormatVersion));
  ByteReader r(view.payload);
  uint32_t dim = 0, nlist = 0, nprobe = 0, train_size = 0, iters = 0;
  uint8_t metric = 0, trained = 0;
  uint16_t reserved = 0;
  uint64_t seed = 0;
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&dim));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&metric));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&trained));
  VEXFS_RETURN_IF_ERROR(r.ReadU16(&reserved));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&nlist));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&nprobe));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&train_size));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&iters));
  VEXFS_RETURN_IF_ERROR(r.ReadU64(&seed));
  if (dim == 0 || dim > kMaxDim) return Bad("bad dim");
  if (metric > 2) return Bad("unknown metric");
  if (trained > 1) return Bad("invalid trained flag");
  if (reserved != 0) return Bad("reserved field is not zero");
  if (nlist == 0 || nlist > kMaxList || nprobe == 0 || iters == 0 || iters > 100 ||
      train_size < nlist) {
    return Bad("invalid parameters");
  }
  IvfOptions o;
  o.dim = dim;
  o.metric = static_cast<Metric>(metric);
  o.nlist = nlist;
  o.default_nprobe = nprobe;
  o.train_size = train_size;
  o.kmeans_iters = iters;
  o.seed = seed;
  std::unique_ptr<IvfIndex> idx(new IvfIndex(o));
  const size_t nl = trained ? nlist : 1;
  if (trained) {
    VEXFS_RETURN_IF_ERROR(r.CheckAvailable(uint64_t{nlist} * dim, 4));
    idx->centroids_.resize(size_t{nlist} * dim);
    VEXFS_RETURN_IF_ERROR(r.ReadF32Array(idx->centroids_.data(), idx->centroids_.size()));
    for (float x : idx->centroids_) {
      if (!std::isfinite(x)) return Bad("non-finite centroid");
    }
  }
  // Every list needs at least its count.
  VEXFS_RETURN_IF_ERROR(r.CheckAvailable(nl, 4));
  idx->lists_.assign(nl, List{});
  for (size_t li = 0; li < nl; ++li) {
    uint32_t count = 0;
    VEXFS_RETURN_IF_ERROR(r.ReadU32(&count));
    VEXFS_RETURN_IF_ERROR(r.CheckAvailable(count, 8 + size_t{dim} * 4));
    if (idx->where_.size() + count >= UINT32_MAX) return Bad("too many vectors");
    List& l = idx->lists_[li];
    l.ids.resize(count);
    l.vecs.resize(size_t{count} * dim);
    VEXFS_RETURN_IF_ERROR(r.ReadU64Array(l.ids.data(), count));
    VEXFS_RETURN_IF_ERROR(r.ReadF32Array(l.vecs.data(), l.vecs.size()));
    for (float x : l.vecs) {
      if (!std::isfinite(x)) return Bad("non-finite vector value");
    }
    for (uint32_t p = 0; p < count; ++p) {
      if (!idx->where_.emplace(l.ids[p], Loc{uint32_t(li), p}).second) {
        return Bad("duplicate id " + std::to_string(l.ids[p]));
      }
    }
  }
  VEXFS_RETURN_IF_ERROR(r.ExpectEnd());
  return idx;
}


std::vector<uint64_t> IvfIndex::Ids() const {
  std::vector<uint64_t> out;
  out.reserve(where_.size());
  for (const auto& [id, loc] : where_) out.push_back(id);
  return out;
}

}  // namespace vexfs::engine
