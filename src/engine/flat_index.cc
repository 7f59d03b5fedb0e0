#include "vexfs/engine/flat_index.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "index_common.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {
namespace {

constexpr size_t kQueryBlock = 16;
// Bytes of stored vectors scored per block: stays within a typical L2.
constexpr size_t kBaseBlockBytes = 256 * 1024;

struct Cand {
  float dist;
  uint32_t slot;
  uint64_t id;
};
// Heap order: the worst candidate (largest distance, then largest id) on top.
inline bool Better(const Cand& a, const Cand& b) {
  return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

bool ValidMetric(Metric m) { return static_cast<uint8_t>(m) <= 2; }
bool ValidElement(ElementType e) { return static_cast<uint8_t>(e) <= 2; }

size_t ElementBytes(ElementType e) {
  switch (e) {
    case ElementType::kFloat32:
      return 4;
    case ElementType::kFloat16:
      return 2;
    case ElementType::kInt8:
      return 1;
  }
  return 4;
}

Status CheckK(size_t k) {
  if (k == 0 || k > FlatIndex::kMaxK) {
    return Status::InvalidArgument("k must be in [1, " + std::to_string(FlatIndex::kMaxK) +
                                   "], got " + std::to_string(k));
  }
  return Status::Ok();
}

}  // namespace

// Per-query scan state: a bounded max-heap of candidates.
struct FlatIndex::Scan {
  const float* q = nullptr;
  ScalarQuantizer::PreparedQuery pq;  // kInt8 once trained
  size_t keep = 0;
  std::vector<Cand> heap;

  void Push(const Cand& c) { index_internal::BoundedPush(&heap, keep, c, Better); }
};

Result<std::unique_ptr<FlatIndex>> FlatIndex::Create(const FlatIndexOptions& options) {
  if (options.dim == 0 || options.dim > kMaxDim) {
    return Status::InvalidArgument("dim must be in [1, 65536], got " + std::to_string(options.dim));
  }
  if (!ValidMetric(options.metric)) return Status::InvalidArgument("unknown metric");
  if (!ValidElement(options.element_type)) return Status::InvalidArgument("unknown element type");
  if (options.rerank_factor == 0 || options.rerank_factor > 1000) {
    return Status::InvalidArgument("rerank_factor must be in [1, 1000]");
  }
  return std::unique_ptr<FlatIndex>(new FlatIndex(options));
}

size_t FlatIndex::MemoryBytes() const {
  return f32_.capacity() * sizeof(float) + f16_.capacity() * sizeof(uint16_t) + codes_.capacity() +
         ids_.capacity() * sizeof(uint64_t) + index_internal::HashMapBytes(slots_) +
         (quantizer_ ? 4 * sizeof(float) * opt_.dim : 0);
}

Status FlatIndex::CheckVector(std::span<const float> v, const char* what) const {
  return index_internal::CheckVector(v, opt_.dim, "", what);
}

Status FlatIndex::PrepareQuery(std::span<const float> q, std::vector<float>* out) const {
  VEXFS_RETURN_IF_ERROR(CheckVector(q, "query"));
  out->assign(q.begin(), q.end());
  if (opt_.metric == Metric::kCosine && !NormalizeL2(out->data(), out->size())) {
    return Status::InvalidArgument("cannot search a zero vector under the cosine metric");
  }
  return Status::Ok();
}

void FlatIndex::StoreSlot(uint32_t slot, const float* v) {
  const size_t d = opt_.dim;
  const size_t off = static_cast<size_t>(slot) * d;
  if (opt_.element_type == ElementType::kFloat16) {
    EncodeF16(std::span<const float>(v, d), f16_.data() + off);
    return;
  }
  std::memcpy(f32_.data() + off, v, d * sizeof(float));
  if (opt_.element_type == ElementType::kInt8 && quantizer_) {
    quantizer_->Encode(v, codes_.data() + off);
  }
}

void FlatIndex::EncodeAll() {
  codes_.resize(f32_.size());
  if (quantizer_) quantizer_->EncodeBatch(f32_, codes_.data());
}

void FlatIndex::MaybeAutoTrain() {
  if (opt_.element_type != ElementType::kInt8 || quantizer_ || size() < kAutoTrainSize) return;
  auto q = ScalarQuantizer::Train(f32_, opt_.dim, ScalarQuantizer::Mode::kPerDimension);
  if (!q.ok()) return;  // cannot happen: stored vectors are finite
  quantizer_.emplace(std::move(q).value());
  EncodeAll();
}

Status FlatIndex::Train(std::span<const float> sample) {
  VEXFS_RETURN_IF_ERROR(index_internal::CheckSampleShape(sample, opt_.dim, ""));
  if (opt_.element_type != ElementType::kInt8) {
    for (float x : sample) {
      if (!std::isfinite(x)) return Status::InvalidArgument("training sample holds NaN or Inf");
    }
    return Status::Ok();
  }
  std::vector<float> copy;
  std::span<const float> data = sample;
  if (opt_.metric == Metric::kCosine) {
    // The quantizer sees stored (normalised) vectors, so train on those.
    copy.assign(sample.begin(), sample.end());
    for (size_t off = 0; off < copy.size(); off += opt_.dim) {
      NormalizeL2(copy.data() + off, opt_.dim);
    }
    data = copy;
  }
  VEXFS_ASSIGN_OR_RETURN(
      ScalarQuantizer q,
      ScalarQuantizer::Train(data, opt_.dim, ScalarQuantizer::Mode::kPerDimension));
  quantizer_.emplace(std::move(q));
  EncodeAll();
  return Status::Ok();
}

Status FlatIndex::Add(uint64_t id, std::span<const float> vec) {
  VEXFS_RETURN_IF_ERROR(CheckVector(vec, "vector"));
  std::vector<float> v(vec.begin(), vec.end());
  if (opt_.metric == Metric::kCosine && !NormalizeL2(v.data(), v.size())) {
    return Status::InvalidArgument("cannot insert a zero vector under the cosine metric");
  }
  if (opt_.element_type == ElementType::kFloat16 && !FitsFloat16(v.data(), v.size())) {
    return Status::InvalidArgument("value outside float16 range");
  }
  auto it = slots_.find(id);
  if (it != slots_.end()) {
    StoreSlot(it->second, v.data());
    return Status::Ok();
  }
  if (size() >= UINT32_MAX) return Status::NoSpace("flat index is full (2^32 - 1 vectors)");
  const uint32_t slot = static_cast<uint32_t>(size());
  const size_t n = (size() + 1) * opt_.dim;
  if (opt_.element_type == ElementType::kFloat16) {
    f16_.resize(n);
  } else {
    f32_.resize(n);
    if (quantizer_) codes_.resize(n);
  }
  ids_.push_back(id);
  slots_.emplace(id, slot);
  StoreSlot(slot, v.data());
  MaybeAutoTrain();
  return Status::Ok();
}

Status FlatIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs) {
  const size_t d = opt_.dim;
  if (vecs.size() != ids.size() * d) {
    return Status::InvalidArgument("AddBatch needs ids.size() * dim floats");
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    std::span<const float> v = vecs.subspan(i * d, d);
    VEXFS_RETURN_IF_ERROR(CheckVector(v, "vector"));
    // Cosine vectors are stored normalised, so any finite one fits float16.
    if (opt_.element_type == ElementType::kFloat16 && opt_.metric != Metric::kCosine &&
        !FitsFloat16(v.data(), d)) {
      return Status::InvalidArgument("value outside float16 range");
    }
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    if (opt_.metric == Metric::kCosine && !(norm > 0)) {
      return Status::InvalidArgument("cannot insert a zero vector under the cosine metric");
    }
  }
  if (size() + ids.size() > UINT32_MAX) return Status::NoSpace("flat index would exceed 2^32 - 1");
  ids_.reserve(size() + ids.size());
  slots_.reserve(size() + ids.size());
  if (opt_.element_type == ElementType::kFloat16) {
    f16_.reserve((size() + ids.size()) * d);
  } else {
    f32_.reserve((size() + ids.size()) * d);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    VEXFS_RETURN_IF_ERROR(Add(ids[i], vecs.subspan(i * d, d)));
  }
  return Status::Ok();
}

Status FlatIndex::Remove(uint64_t id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) return Status::NotFound("id " + std::to_string(id) + " not in index");
  const size_t d = opt_.dim;
  const uint32_t slot = it->second;
  const uint32_t last = static_cast<uint32_t>(size() - 1);
  slots_.erase(it);
  if (slot != last) {
    const size_t dst = static_cast<size_t>(slot) * d, src = static_cast<size_t>(last) * d;
    if (!f32_.empty()) std::memcpy(f32_.data() + dst, f32_.data() + src, d * sizeof(float));
    if (!f16_.empty()) std::memcpy(f16_.data() + dst, f16_.data() + src, d * sizeof(uint16_t));
    if (!codes_.empty()) std::memcpy(codes_.data() + dst, codes_.data() + src, d);
    ids_[slot] = ids_[last];
    slots_[ids_[slot]] = slot;
  }
  ids_.pop_back();
  const size_t n = size() * d;
  if (!f32_.empty()) f32_.resize(n);
  if (!f16_.empty()) f16_.resize(n);
  if (!codes_.empty()) codes_.resize(n);
  return Status::Ok();
}

bool FlatIndex::Contains(uint64_t id) const { return slots_.count(id) != 0; }

std::vector<uint64_t> FlatIndex::Ids() const {
  std::vector<uint64_t> out;
  out.reserve(slots_.size());
  for (const auto& [id, slot] : slots_) out.push_back(id);
  return out;
}

Result<std::vector<float>> FlatIndex::GetVector(uint64_t id) const {
  auto it = slots_.find(id);
  if (it == slots_.end()) return Status::NotFound("id " + std::to_string(id) + " not in index");
  const size_t off = static_cast<size_t>(it->second) * opt_.dim;
  std::vector<float> out(opt_.dim);
  if (opt_.element_type == ElementType::kFloat16) {
    DecodeF16(std::span<const uint16_t>(f16_.data() + off, opt_.dim), out.data());
  } else {
    std::memcpy(out.data(), f32_.data() + off, opt_.dim * sizeof(float));
  }
  return out;
}

float FlatIndex::ExactDistance(const float* q, uint32_t slot) const {
  const DistanceKernels& k = Kernels();
  const size_t d = opt_.dim;
  const size_t off = static_cast<size_t>(slot) * d;
  const bool half = opt_.element_type == ElementType::kFloat16;
  switch (opt_.metric) {
    case Metric::kL2:
      return half ? k.l2_f16(q, f16_.data() + off, d) : k.l2_f32(q, f32_.data() + off, d);
    case Metric::kInnerProduct:
      return -(half ? k.dot_f16(q, f16_.data() + off, d) : k.dot_f32(q, f32_.data() + off, d));
    case Metric::kCosine:
      return 1.0f -
             (half ? k.dot_f16(q, f16_.data() + off, d) : k.dot_f32(q, f32_.data() + off, d));
  }
  return 0.0f;
}

void FlatIndex::ScanBlock(Scan* scans, size_t nq, size_t begin, size_t end,
                          const uint8_t* allowed) const {
  const size_t d = opt_.dim;
  const bool approx = opt_.element_type == ElementType::kInt8 && quantizer_.has_value();
  // Hoisted out of the hot loop: one indirect call per code, no branches
  // on the quantizer mode.
  const Sq8Kernels& qk = QuantKernels();
  const float* steps = approx ? quantizer_->steps().data() : nullptr;
  const bool l2 = opt_.metric == Metric::kL2;
  const float bias = opt_.metric == Metric::kCosine ? 1.0f : 0.0f;
  for (size_t s = 0; s < nq; ++s) {
    Scan& sc = scans[s];
    for (size_t slot = begin; slot < end; ++slot) {
      if (allowed != nullptr && !allowed[slot - begin]) continue;
      float dist;
      if (approx) {
        const int8_t* c = codes_.data() + slot * d;
        dist = l2 ? qk.l2(sc.pq.w.data(), steps, c, d)
                  : bias - (sc.pq.bias + qk.dot(sc.pq.w.data(), c, d));
      } else {
        dist = ExactDistance(sc.q, static_cast<uint32_t>(slot));
      }
      sc.Push(Cand{dist, static_cast<uint32_t>(slot), ids_[slot]});
    }
  }
}

void FlatIndex::SearchBlock(const float* queries, size_t nq, const SearchParams& params,
                            std::vector<Neighbor>* out) const {
  const size_t d = opt_.dim;
  const size_t n = size();
  const size_t k = std::min(params.k, n);
  const bool approx = opt_.element_type == ElementType::kInt8 && quantizer_.has_value();
  std::vector<Scan> scans(nq);
  for (size_t i = 0; i < nq; ++i) {
    Scan& sc = scans[i];
    sc.q = queries + i * d;
    sc.keep = approx ? std::min(n, k * opt_.rerank_factor) : k;
    sc.heap.reserve(sc.keep);
    if (approx) {
      sc.pq =
          opt_.metric == Metric::kL2 ? quantizer_->PrepareL2(sc.q) : quantizer_->PrepareDot(sc.q);
    }
  }
  if (k > 0) {
    const size_t row_bytes = d * (approx ? 1 : ElementBytes(opt_.element_type));
    const size_t block = std::clamp<size_t>(kBaseBlockBytes / row_bytes, 16, 1 << 16);
    std::vector<uint8_t> allowed;
    if (params.filter != nullptr) allowed.resize(block);
    for (size_t begin = 0; begin < n; begin += block) {
      const size_t end = std::min(n, begin + block);
      if (params.filter != nullptr) {
        for (size_t s = begin; s < end; ++s) allowed[s - begin] = (*params.filter)(ids_[s]) ? 1 : 0;
      }
      ScanBlock(scans.data(), nq, begin, end, params.filter != nullptr ? allowed.data() : nullptr);
    }
  }
  for (size_t i = 0; i < nq; ++i) {
    std::vector<Cand>& c = scans[i].heap;
    if (approx) {
      for (Cand& x : c) x.dist = ExactDistance(scans[i].q, x.slot);
    }
    std::sort(c.begin(), c.end(), Better);
    if (c.size() > k) c.resize(k);
    out[i].clear();
    out[i].reserve(c.size());
    for (const Cand& x : c) out[i].push_back(Neighbor{x.id, x.dist});
  }
}

Result<std::vector<Neighbor>> FlatIndex::Search(std::span<const float> query,
                                                const SearchParams& params) const {
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  std::vector<float> q;
  VEXFS_RETURN_IF_ERROR(PrepareQuery(query, &q));
  std::vector<Neighbor> out;
  SearchBlock(q.data(), 1, params, &out);
  return out;
}

Result<std::vector<std::vector<Neighbor>>> FlatIndex::SearchBatch(
    std::span<const float> queries, const SearchParams& params) const {
  const size_t d = opt_.dim;
  if (queries.size() % d != 0) {
    return Status::InvalidArgument("batch size is not a multiple of the dimension");
  }
  VEXFS_RETURN_IF_ERROR(CheckK(params.k));
  const size_t nq = queries.size() / d;
  std::vector<float> prepared(queries.size());
  std::vector<float> one;
  for (size_t i = 0; i < nq; ++i) {
    VEXFS_RETURN_IF_ERROR(PrepareQuery(queries.subspan(i * d, d), &one));
    std::memcpy(prepared.data() + i * d, one.data(), d * sizeof(float));
  }
  std::vector<std::vector<Neighbor>> out(nq);
  const size_t nblocks = (nq + kQueryBlock - 1) / kQueryBlock;
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t b = next.fetch_add(1); b < nblocks; b = next.fetch_add(1)) {
      const size_t q0 = b * kQueryBlock;
      const size_t cnt = std::min(kQueryBlock, nq - q0);
      SearchBlock(prepared.data() + q0 * d, cnt, params, out.data() + q0);
    }
  };
  size_t threads = std::min(index_internal::ResolveThreads(opt_.num_threads), nblocks);
  // Threads only pay off for real work.
  if (static_cast<double>(nq) * static_cast<double>(size()) * static_cast<double>(d) < 4e6) {
    threads = 1;
  }
  index_internal::RunWorkers(threads, worker);
  return out;
}

Result<std::vector<Neighbor>> FlatIndex::RangeSearch(std::span<const float> query, float radius,
                                                     const SearchParams& params) const {
  if (std::isnan(radius)) return Status::InvalidArgument("radius is NaN");
  std::vector<float> q;
  VEXFS_RETURN_IF_ERROR(PrepareQuery(query, &q));
  std::vector<Cand> hits;
  for (size_t s = 0; s < size(); ++s) {
    if (params.filter != nullptr && !(*params.filter)(ids_[s])) continue;
    const float dist = ExactDistance(q.data(), static_cast<uint32_t>(s));
    if (dist <= radius) hits.push_back(Cand{dist, static_cast<uint32_t>(s), ids_[s]});
  }
  std::sort(hits.begin(), hits.end(), Better);
  std::vector<Neighbor> out;
  out.reserve(hits.size());
  for (const Cand& c : hits) out.push_back(Neighbor{c.id, c.dist});
  return out;
}

Result<std::vector<uint8_t>> FlatIndex::Serialize() const {
  const size_t d = opt_.dim;
  ByteWriter w;
  w.PutU32(static_cast<uint32_t>(d));
  w.PutU8(static_cast<uint8_t>(opt_.metric));
  w.PutU8(static_cast<uint8_t>(opt_.element_type));
  w.PutU8(quantizer_ ? 1 : 0);
  w.PutU8(0);
  w.PutU32(static_cast<uint32_t>(opt_.rerank_factor));
  w.PutU64(size());
  w.PutU64Array(ids_);
  if (opt_.element_type == ElementType::kFloat16) {
    w.PutU16Array(f16_);
  } else {
    w.PutF32Array(f32_);
  }
  if (quantizer_) quantizer_->Serialize(&w);
  std::vector<uint8_t> payload = w.Release();
  return WrapBlob(IndexKind::kFlat, kFormatVersion, payload);
}

Result<std::unique_ptr<FlatIndex>> FlatIndex::Deserialize(std::span<const uint8_t> blob) {
  VEXFS_ASSIGN_OR_RETURN(BlobView view, UnwrapBlob(blob, IndexKind::kFlat, kFormatVersion));
  ByteReader r(view.payload);
  uint32_t dim, rerank;
  uint8_t metric, element, has_q, reserved;
  uint64_t count;
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&dim));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&metric));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&element));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&has_q));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&reserved));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&rerank));
  VEXFS_RETURN_IF_ERROR(r.ReadU64(&count));
  if (dim == 0 || dim > kMaxDim) return Status::Corruption("flat index: bad dim");
  if (metric > 2) return Status::Corruption("flat index: unknown metric");
  if (element > 2) return Status::Corruption("flat index: unknown element type");
  if (reserved != 0) return Status::Corruption("flat index: reserved byte is not zero");
  if (has_q > 1 || (has_q == 1 && element != static_cast<uint8_t>(ElementType::kInt8))) {
    return Status::Corruption("flat index: bad quantizer flag");
  }
  if (rerank == 0 || rerank > 1000) return Status::Corruption("flat index: bad rerank factor");
  if (count >= UINT32_MAX) return Status::Corruption("flat index: count too large");
  FlatIndexOptions opt;
  opt.dim = dim;
  opt.metric = static_cast<Metric>(metric);
  opt.element_type = static_cast<ElementType>(element);
  opt.rerank_factor = rerank;
  std::unique_ptr<FlatIndex> idx(new FlatIndex(opt));

  VEXFS_RETURN_IF_ERROR(r.CheckAvailable(count, sizeof(uint64_t)));
  idx->ids_.resize(count);
  VEXFS_RETURN_IF_ERROR(r.ReadU64Array(idx->ids_.data(), count));
  idx->slots_.reserve(count);
  VEXFS_RETURN_IF_ERROR(
      index_internal::IndexSlots(idx->ids_, nullptr, &idx->slots_, "flat index: "));
  const uint64_t nvals = count * dim;  // < 2^48: no overflow
  if (opt.element_type == ElementType::kFloat16) {
    VEXFS_RETURN_IF_ERROR(r.CheckAvailable(nvals, sizeof(uint16_t)));
    idx->f16_.resize(nvals);
    VEXFS_RETURN_IF_ERROR(r.ReadU16Array(idx->f16_.data(), nvals));
    for (uint16_t h : idx->f16_) {
      if ((h & 0x7C00u) == 0x7C00u) return Status::Corruption("flat index: non-finite float16");
    }
  } else {
    VEXFS_RETURN_IF_ERROR(r.CheckAvailable(nvals, sizeof(float)));
    idx->f32_.resize(nvals);
    VEXFS_RETURN_IF_ERROR(r.ReadF32Array(idx->f32_.data(), nvals));
    for (float x : idx->f32_) {
      if (!std::isfinite(x)) return Status::Corruption("flat index: non-finite vector value");
    }
  }
  if (has_q) {
    auto q = ScalarQuantizer::Deserialize(&r);
    if (!q.ok()) return q.status();
    if (q->dim() != dim) return Status::Corruption("flat index: quantizer dim mismatch");
    idx->quantizer_.emplace(std::move(q).value());
    idx->EncodeAll();
  }
  VEXFS_RETURN_IF_ERROR(r.ExpectEnd());
  return idx;
}

}  // namespace vexfs::engine
