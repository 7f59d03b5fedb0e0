// HnswIndex: construction, insert, update, remove and the public wrappers.
// Search paths live in hnsw_search.cc, serialization in hnsw_io.cc.
#include "vexfs/engine/hnsw.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "hnsw_impl.h"
#include "index_common.h"

namespace vexfs::engine {

using hnsw_internal::Cand;
using hnsw_internal::kMaxLevel;
using hnsw_internal::kMaxTrainSize;
using hnsw_internal::kNoNode;

namespace hnsw_internal {
void AlignedArray::AdviseHuge(void* p, size_t n) {
#if defined(MADV_HUGEPAGE)
  (void)madvise(p, n, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

VisitedTags& ThreadVisited() {
  thread_local VisitedTags tags;
  return tags;
}
}  // namespace hnsw_internal

HnswIndex::Impl::Impl(const HnswParams& p)
    : p_(p),
      dim_(p.dim),
      M_(p.M),
      M0_(2 * p.M),
      vec_used_bytes_(p.dim * (p.element_type == ElementType::kFloat16 ? 2
                               : p.element_type == ElementType::kInt8  ? 1
                                                                       : 4)),
      f16_(p.element_type == ElementType::kFloat16),
      i8_(p.element_type == ElementType::kInt8),
      l2_(p.metric == Metric::kL2),
      normalize_(p.metric == Metric::kCosine),
      sign_(p.metric == Metric::kL2 ? 1.0f : -1.0f),
      bias_(p.metric == Metric::kCosine ? 1.0f : 0.0f),
      level_mult_(1.0 / std::log(static_cast<double>(p.M))),
      rng_(p.seed) {
  const DistanceKernels& k = Kernels();
  // Fetched once: the hot loops call through these pointers only.
  dist_f32_ = p.metric == Metric::kL2 ? k.l2_f32 : k.dot_f32;
  dist_f32_x4_ = p.metric == Metric::kL2 ? k.l2_f32_x4 : k.dot_f32_x4;
  dist_f16_ = p.metric == Metric::kL2 ? k.l2_f16 : k.dot_f16;
  dist_f16_x4_ = p.metric == Metric::kL2 ? k.l2_f16_x4 : k.dot_f16_x4;
  dist_f16_f16_ = p.metric == Metric::kL2 ? k.l2_f16_f16 : k.dot_f16_f16;
  const Sq8Kernels& qk = QuantKernels();
  sq8_l2_ = qk.l2;
  sq8_dot_ = qk.dot;
  SetGeometry(3);
}

void HnswIndex::Impl::SetGeometry(size_t w) {
  link_w_ = w;
  const size_t links = 4 + M0_ * w;
  if (i8_) {
    // Packed: links, then codes, the stride rounded to 4.
    links_off_ = 0;
    vec_off_ = (links + 3) & ~size_t{3};
    rec_bytes_ = (vec_off_ + vec_used_bytes_ + 3) & ~size_t{3};
    return;
  }
  // The vector first, 64-byte aligned, its links right after it: a node is
  // expanded only after its distance was computed, and the hardware
  // prefetcher streaming through the vector has often brought the links
  // in by then (measured +2-5% QPS on 1M x 128 against links first). One
  // byte of slack keeps the 4-byte load of the last 3-byte id inside the
  // record.
  vec_off_ = 0;
  links_off_ = vec_used_bytes_;
  rec_bytes_ = (vec_used_bytes_ + links + 1 + 63) & ~size_t{63};
}

void HnswIndex::Impl::SetQuantizer(ScalarQuantizer q) {
  sq_.emplace(std::move(q));
  sq_steps_ = sq_->steps().data();
  sq_offset_.resize(dim_);
  for (size_t i = 0; i < dim_; ++i) sq_offset_[i] = sq_->lo(i) + 128.0f * sq_->step(i);
}

// The decoded value is x_i = off_i + s_i c_i with off_i = lo_i + 128 s_i, so
// (v_i - x_i) = (v_i - off_i) - s_i c_i and v.x = sum v_i off_i + sum (v_i s_i) c_i.
const float* HnswIndex::Impl::QueryForm(const float* v, float* scratch) const {
  if (!i8_) return v;
  const float* off = sq_offset_.data();
  if (l2_) {
    for (size_t i = 0; i < dim_; ++i) scratch[i] = v[i] - off[i];
    scratch[dim_] = 0.0f;
  } else {
    double bias = 0;
    for (size_t i = 0; i < dim_; ++i) {
      scratch[i] = v[i] * sq_steps_[i];
      bias += static_cast<double>(v[i]) * off[i];
    }
    scratch[dim_] = static_cast<float>(bias);
  }
  return scratch;
}

const float* HnswIndex::Impl::PairForm(uint32_t id, float* scratch) const {
  if (!i8_) return nullptr;
  sq_->Decode(reinterpret_cast<const int8_t*>(VecPtr(id)), scratch);
  return QueryForm(scratch, scratch + dim_);
}

void HnswIndex::Impl::StoreVector(uint32_t id, const float* v) {
  if (i8_) {
    sq_->Encode(v, reinterpret_cast<int8_t*>(VecPtr(id)));
  } else if (f16_) {
    auto* h = reinterpret_cast<uint16_t*>(VecPtr(id));
    for (size_t i = 0; i < dim_; ++i) h[i] = FloatToHalf(v[i]);
  } else {
    std::memcpy(VecPtr(id), v, dim_ * sizeof(float));
  }
}

Status HnswIndex::Impl::PrepareVector(std::span<const float> v, float* out, bool stored) const {
  if (v.size() != dim_) {
    return Status::InvalidArgument("vector has dimension " + std::to_string(v.size()) +
                                   ", index has " + std::to_string(dim_));
  }
  if (!AllFinite(v.data(), dim_)) return Status::InvalidArgument("vector has a NaN or Inf component");
  std::memcpy(out, v.data(), dim_ * sizeof(float));
  if (normalize_ && !NormalizeL2(out, dim_)) {
    return Status::InvalidArgument("zero vector under the cosine metric");
  }
  if (f16_ && stored && !FitsFloat16(out, dim_)) return Status::InvalidArgument("value overflows float16");
  return Status::Ok();
}

Status HnswIndex::Impl::EnsureCapacity(size_t n) {
  if (n <= capacity_) return Status::Ok();
  if (n > hnsw_internal::kMaxSlots) return Status::NoSpace("hnsw index is full (2^31-1 slots)");
  size_t cap = std::max({n, capacity_ + capacity_ / 2, size_t{64}});
  cap = std::min(cap, size_t{hnsw_internal::kMaxSlots});
  // Stay at 3-byte links for as long as the request fits them.
  if (link_w_ == 3 && n <= hnsw_internal::kMaxSlots24) {
    cap = std::min(cap, hnsw_internal::kMaxSlots24);
  }
  if (cap > hnsw_internal::kMaxSlots24 && link_w_ == 3) {
    VEXFS_RETURN_IF_ERROR(WidenLinks(cap));
  } else if (!level0_.Reserve(cap * rec_bytes_)) {
    return Status::Error(ENOMEM, "out of memory growing the hnsw index");
  }
  labels_.reserve(cap);
  levels_.reserve(cap);
  deleted_.reserve(cap);
  upper_off_.reserve(cap);
  // Expected upper levels per node: sum over l >= 1 of M^-l = 1 / (M - 1).
  const size_t blocks = cap / (M_ - 1) + cap / (16 * (M_ - 1)) + 16;
  if (upper_pool_.capacity() < blocks * (M_ + 1)) upper_pool_.reserve(blocks * (M_ + 1));
  // No lock is held while the index grows (exclusive access).
  auto locks = std::make_unique<std::atomic<uint8_t>[]>(cap);
  for (size_t i = 0; i < cap; ++i) locks[i].store(0, std::memory_order_relaxed);
  locks_ = std::move(locks);
  ids_.Reserve(cap);
  capacity_ = cap;
  return Status::Ok();
}

Status HnswIndex::Impl::WidenLinks(size_t cap) {
  const size_t old_w = link_w_, old_off = vec_off_, old_rec = rec_bytes_, old_loff = links_off_;
  hnsw_internal::AlignedArray wide;
  SetGeometry(4);
  if (!wide.Reserve(std::max(cap, capacity_) * rec_bytes_)) {
    SetGeometry(old_w);
    return Status::Error(ENOMEM, "out of memory growing the hnsw index");
  }
  for (size_t i = 0; i < count_; ++i) {
    const uint8_t* src = level0_.data() + i * old_rec;
    uint8_t* dst = wide.data() + i * rec_bytes_;
    const uint32_t cnt = Load32(src + old_loff);
    Store32(dst + links_off_, cnt);
    for (uint32_t j = 0; j < cnt; ++j) {
      StoreId(dst + links_off_ + 4 + 4 * j, 4, LinkAt(src + old_loff + 4, old_w, j));
    }
    std::memcpy(dst + vec_off_, src + old_off, vec_used_bytes_);
  }
  level0_.Swap(wide);
  return Status::Ok();
}

int HnswIndex::Impl::RandomLevel() {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_);
  if (r <= 0.0) r = 1e-300;
  double l = -std::log(r) * level_mult_;
  return static_cast<int>(std::min<double>(l, kMaxLevel));
}

uint32_t HnswIndex::Impl::NewSlot(uint64_t label, int level) {
  auto slot = static_cast<uint32_t>(count_++);
  labels_.push_back(label);
  levels_.push_back(static_cast<uint8_t>(level));
  deleted_.push_back(0);
  // Blocks number about count_ / (M - 1) < 2^31, so a u32 block index fits.
  upper_off_.push_back(static_cast<uint32_t>(upper_pool_.size() / (M_ + 1)));
  if (level > 0) upper_pool_.resize(upper_pool_.size() + size_t(level) * (M_ + 1), 0);  // counts 0
  Store32(Links0Ptr(slot), 0);
  ids_.Put(label, slot);
  return slot;
}

void HnswIndex::Impl::SelectHeuristic(std::vector<Cand>& cands, size_t m) const {
  if (cands.size() <= m) return;
  std::vector<float> scratch(ScratchFloats());
  size_t kept = 0;
  for (size_t i = 0; i < cands.size() && kept < m; ++i) {
    const Cand c = cands[i];
    const float* cf = kept > 0 ? PairForm(c.id, scratch.data()) : nullptr;
    bool good = true;
    for (size_t j = 0; j < kept; ++j) {
      if (DistPair(c.id, cf, cands[j].id) < c.d) {
        good = false;
        break;
      }
    }
    if (good) cands[kept++] = c;
  }
  cands.resize(kept);
}

template <bool kLocked>
uint32_t HnswIndex::Impl::ConnectNeighbors(uint32_t node, int level, std::vector<Cand>& cands,
                                           bool is_update) {
  SelectHeuristic(cands, M_);
  const size_t mmax = MaxLinks(level);
  uint32_t buf[2 * hnsw_internal::kMaxM];
  {
    for (size_t i = 0; i < cands.size(); ++i) buf[i] = cands[i].id;
    if constexpr (kLocked) hnsw_internal::SpinLock(locks_[node]);
    SetLinks(node, level, buf, cands.size());
    if constexpr (kLocked) hnsw_internal::SpinUnlock(locks_[node]);
  }
  std::vector<float> scratch(ScratchFloats());
  std::vector<Cand> pruned;
  for (const Cand& c : cands) {
    const uint32_t s = c.id;
    if constexpr (kLocked) hnsw_internal::SpinLock(locks_[s]);
    const uint32_t cnt = GetLinks(s, level, buf);
    bool present = false;
    if (is_update) {
      for (uint32_t j = 0; j < cnt; ++j) present |= (buf[j] == node);
    }
    if (!present) {
      if (cnt < mmax) {
        AppendLink(s, level, cnt, node);
      } else {
        // Full: re-select among the old links plus the new node.
        const float* sf = PairForm(s, scratch.data());
        pruned.clear();
        pruned.push_back({c.d, node});
        for (uint32_t j = 0; j < cnt; ++j) pruned.push_back({DistPair(s, sf, buf[j]), buf[j]});
        std::sort(pruned.begin(), pruned.end(),
                  [](const Cand& a, const Cand& b) { return a.d < b.d; });
        SelectHeuristic(pruned, mmax);
        for (size_t j = 0; j < pruned.size(); ++j) buf[j] = pruned[j].id;
        SetLinks(s, level, buf, pruned.size());
      }
    }
    if constexpr (kLocked) hnsw_internal::SpinUnlock(locks_[s]);
  }
  return cands.empty() ? kNoNode : cands[0].id;
}

template <bool kLocked>
void HnswIndex::Impl::Link(uint32_t node, int level, const float* q) {
  std::unique_lock<std::mutex> glock(entry_mu_, std::defer_lock);
  if constexpr (kLocked) glock.lock();
  std::vector<float> qbuf(i8_ ? dim_ + 1 : 0);
  q = QueryForm(q, qbuf.data());
  uint32_t ep = entry_;
  const int maxl = max_level_;
  if (ep == kNoNode) {
    entry_ = node;
    max_level_ = level;
    return;
  }
  // A node that raises the top level keeps the entry lock for its whole
  // insert (as hnswlib does); others release it at once.
  if constexpr (kLocked) {
    if (level <= maxl) glock.unlock();
  }
  float ep_d = Dist(q, ep);
  for (int l = maxl; l > level; --l) ep = GreedyUpper<kLocked>(q, ep, &ep_d, l);
  // Search every level top-down first, then connect bottom-up. Connecting
  // top-down (hnswlib's order) makes the node reachable on level l while its
  // level l-1 list is still empty: a concurrent insert that descends through
  // it finds only the node, links to it alone, and its back-link is then
  // overwritten when the node writes its own level l-1 list, leaving the
  // other node unreachable (hnswlib avoids this by holding the new node's
  // lock for its whole insert). Bottom-up, no other node can reach this one
  // on level l before its level-l list is written, so that write never
  // clobbers a back-link. Single-threaded the graph is the same either way:
  // a search on level l-1 reads no level-l list.
  const int top = std::min(level, maxl);
  std::vector<std::vector<Cand>> cands(size_t(top) + 1);
  for (int l = top; l >= 0; --l) {
    SearchLayer<kLocked>(q, ep, ep_d, l, p_.ef_construction, &cands[l]);
    ep = cands[l][0].id;
    ep_d = cands[l][0].d;
  }
  for (int l = 0; l <= top; ++l) {
    ConnectNeighbors<kLocked>(node, l, cands[l], /*is_update=*/false);
  }
  if (level > maxl) {
    entry_ = node;
    max_level_ = level;
  }
}

template void HnswIndex::Impl::Link<false>(uint32_t, int, const float*);
template void HnswIndex::Impl::Link<true>(uint32_t, int, const float*);

void HnswIndex::Impl::UpdateNode(uint32_t node, const float* q) {
  StoreVector(node, q);
  if (entry_ == node && count_ == 1) return;
  const int level = levels_[node];
  std::vector<float> scratch(ScratchFloats());
  std::vector<uint32_t> one_hop, cand_ids;
  std::vector<Cand> cands;
  // Re-select the links of the node's neighbours among its 1- and 2-hop
  // neighbourhood, so edges computed against the old vector are revisited
  // (hnswlib's updatePoint with probability 1).
  uint32_t buf[2 * hnsw_internal::kMaxM];
  for (int l = 0; l <= level; ++l) {
    one_hop.assign(buf, buf + GetLinks(node, l, buf));
    if (one_hop.empty()) continue;
    cand_ids.clear();
    cand_ids.push_back(node);
    for (uint32_t n1 : one_hop) {
      cand_ids.push_back(n1);
      cand_ids.insert(cand_ids.end(), buf, buf + GetLinks(n1, l, buf));
    }
    std::sort(cand_ids.begin(), cand_ids.end());
    cand_ids.erase(std::unique(cand_ids.begin(), cand_ids.end()), cand_ids.end());
    for (uint32_t n1 : one_hop) {
      const float* nf = PairForm(n1, scratch.data());
      cands.clear();
      for (uint32_t c : cand_ids) {
        if (c != n1) cands.push_back({DistPair(n1, nf, c), c});
      }
      auto by_d = [](const Cand& a, const Cand& b) { return a.d < b.d; };
      const size_t keep = std::min(p_.ef_construction, cands.size());
      std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), by_d);
      cands.resize(keep);
      SelectHeuristic(cands, MaxLinks(l));
      for (size_t i = 0; i < cands.size(); ++i) buf[i] = cands[i].id;
      SetLinks(n1, l, buf, cands.size());
    }
  }
  RepairConnections(node, level, q);
}

void HnswIndex::Impl::RepairConnections(uint32_t node, int level, const float* q) {
  std::vector<float> qbuf(i8_ ? dim_ + 1 : 0);
  q = QueryForm(q, qbuf.data());
  uint32_t ep = entry_;
  float ep_d = Dist(q, ep);
  for (int l = max_level_; l > level; --l) ep = GreedyUpper<false>(q, ep, &ep_d, l);
  std::vector<Cand> cands;
  for (int l = level; l >= 0; --l) {
    SearchLayer<false>(q, ep, ep_d, l, p_.ef_construction, &cands);
    std::erase_if(cands, [node](const Cand& c) { return c.id == node; });
    if (cands.empty()) continue;
    if (deleted_[entry_] && entry_ != node && levels_[entry_] >= l) {
      // Keep a deleted entry point reachable, as hnswlib does.
      bool have = false;
      for (const Cand& c : cands) have |= (c.id == entry_);
      if (!have) {
        Cand e{Dist(q, entry_), entry_};
        auto it = std::upper_bound(cands.begin(), cands.end(), e,
                                   [](const Cand& a, const Cand& b) { return a.d < b.d; });
        cands.insert(it, e);
        if (cands.size() > p_.ef_construction) cands.pop_back();
      }
    }
    ep = cands[0].id;
    ep_d = cands[0].d;
    ConnectNeighbors<false>(node, l, cands, /*is_update=*/true);
  }
}

Status HnswIndex::Impl::AddPrepared(uint64_t id, const float* q) {
  uint32_t slot = ids_.Find(id);
  if (slot != kNoNode) {
    UpdateNode(slot, q);
    return Status::Ok();
  }
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    labels_[slot] = id;
    deleted_[slot] = 0;
    --num_deleted_;
    ids_.Put(id, slot);
    UpdateNode(slot, q);
    return Status::Ok();
  }
  VEXFS_RETURN_IF_ERROR(EnsureCapacity(count_ + 1));
  const int level = RandomLevel();
  slot = NewSlot(id, level);
  StoreVector(slot, q);
  Link<false>(slot, level, q);
  return Status::Ok();
}

// ---- public wrappers ---------------------------------------------------------

HnswIndex::HnswIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HnswIndex::~HnswIndex() = default;

Result<std::unique_ptr<HnswIndex>> HnswIndex::Create(const HnswParams& params) {
  if (params.dim == 0 || params.dim > hnsw_internal::kMaxDim) {
    return Status::InvalidArgument("hnsw: dim must be in [1, 65536]");
  }
  if (params.M < 2 || params.M > hnsw_internal::kMaxM) {
    return Status::InvalidArgument("hnsw: M must be in [2, 128]");
  }
  if (params.ef_construction == 0 || params.ef_search == 0 ||
      params.ef_construction > hnsw_internal::kMaxEf || params.ef_search > hnsw_internal::kMaxEf) {
    return Status::InvalidArgument("hnsw: ef_construction and ef_search must be in [1, 2^20]");
  }
  if (params.metric != Metric::kL2 && params.metric != Metric::kInnerProduct &&
      params.metric != Metric::kCosine) {
    return Status::InvalidArgument("hnsw: unknown metric");
  }
  if (params.element_type != ElementType::kFloat32 &&
      params.element_type != ElementType::kFloat16 && params.element_type != ElementType::kInt8) {
    return Status::InvalidArgument("hnsw: unknown element type");
  }
  if (params.int8_train_size == 0 || params.int8_train_size > kMaxTrainSize) {
    return Status::InvalidArgument("hnsw: int8_train_size must be in [1, 2^20]");
  }
  auto impl = std::make_unique<Impl>(params);
  if (params.max_elements > 0) {
    VEXFS_RETURN_IF_ERROR(
        impl->EnsureCapacity(std::min<size_t>(params.max_elements, hnsw_internal::kMaxSlots)));
  }
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

size_t HnswIndex::dim() const { return impl_->dim_; }
Metric HnswIndex::metric() const { return impl_->p_.metric; }
size_t HnswIndex::size() const {
  return impl_->count_ - impl_->num_deleted_ + impl_->pending_ids_.size();
}
size_t HnswIndex::slot_count() const { return impl_->count_; }
const HnswParams& HnswIndex::params() const { return impl_->p_; }

size_t HnswIndex::MemoryBytes() const {
  const Impl& m = *impl_;
  return sizeof(HnswIndex) + sizeof(Impl) + m.level0_.capacity() +
         m.labels_.capacity() * sizeof(uint64_t) + m.levels_.capacity() + m.deleted_.capacity() +
         m.upper_off_.capacity() * sizeof(uint32_t) + m.upper_pool_.capacity() * sizeof(uint32_t) +
         m.capacity_ * sizeof(std::atomic<uint8_t>) + m.ids_.MemoryBytes() +
         m.free_slots_.capacity() * sizeof(uint32_t) + (m.sq_ ? 6 * m.dim_ * sizeof(float) : 0) +
         m.sq_offset_.capacity() * sizeof(float) + m.pending_ids_.capacity() * sizeof(uint64_t) +
         m.pending_vecs_.capacity() * sizeof(float);
}

bool HnswIndex::trained() const { return impl_->trained(); }

void HnswIndex::SetVectorSource(const VectorSource* source) {
  if (impl_->i8_) impl_->source_ = source;  // other types are exact already
}

Status HnswIndex::Train(std::span<const float> sample) {
  Impl& m = *impl_;
  const size_t d = m.dim_;
  if (sample.empty() || sample.size() % d != 0) {
    return Status::InvalidArgument("hnsw: training sample is empty or not a multiple of dim");
  }
  for (float x : sample) {
    if (!std::isfinite(x)) return Status::InvalidArgument("hnsw: training sample holds NaN or Inf");
  }
  if (!m.i8_) return Status::Ok();
  if (m.sq_) return Status::InvalidArgument("hnsw: the int8 quantizer is already trained");
  std::vector<float> copy(sample.begin(), sample.end());
  if (m.normalize_) {
    // The quantizer sees stored (normalised) vectors; zero rows stay zero.
    for (size_t off = 0; off < copy.size(); off += d) NormalizeL2(copy.data() + off, d);
  }
  return m.TrainAndFlush(copy, 1);
}

ptrdiff_t HnswIndex::Impl::FindPending(uint64_t id) const {
  for (size_t i = 0; i < pending_ids_.size(); ++i) {
    if (pending_ids_[i] == id) return static_cast<ptrdiff_t>(i);
  }
  return -1;
}

Status HnswIndex::Impl::AddPending(const uint64_t* ids, const float* prepared, size_t n,
                                   size_t threads) {
  for (size_t i = 0; i < n; ++i) {
    const ptrdiff_t pos = FindPending(ids[i]);
    if (pos >= 0) {
      std::memcpy(pending_vecs_.data() + size_t(pos) * dim_, prepared + i * dim_,
                  dim_ * sizeof(float));
    } else {
      pending_ids_.push_back(ids[i]);
      pending_vecs_.insert(pending_vecs_.end(), prepared + i * dim_, prepared + (i + 1) * dim_);
    }
  }
  if (pending_ids_.size() < p_.int8_train_size) return Status::Ok();
  return TrainAndFlush(pending_vecs_, threads);
}

Status HnswIndex::Impl::TrainAndFlush(std::span<const float> sample, size_t threads) {
  VEXFS_ASSIGN_OR_RETURN(
      ScalarQuantizer q,
      ScalarQuantizer::Train(sample, dim_, ScalarQuantizer::Mode::kPerDimension));
  SetQuantizer(std::move(q));
  std::vector<uint64_t> ids = std::move(pending_ids_);
  std::vector<float> vecs = std::move(pending_vecs_);
  pending_ids_ = {};
  pending_vecs_ = {};
  if (ids.empty()) return Status::Ok();
  return AddPreparedBatch(ids.data(), vecs.data(), ids.size(), threads);
}

bool HnswIndex::Contains(uint64_t id) const {
  return impl_->ids_.Find(id) != kNoNode || impl_->FindPending(id) >= 0;
}

std::vector<uint64_t> HnswIndex::Ids() const {
  const Impl& m = *impl_;
  std::vector<uint64_t> out;
  out.reserve(size());
  for (size_t s = 0; s < m.count_; ++s) {
    if (!m.deleted_[s]) out.push_back(m.labels_[s]);
  }
  out.insert(out.end(), m.pending_ids_.begin(), m.pending_ids_.end());
  return out;
}

Status HnswIndex::Add(uint64_t id, std::span<const float> vec) {
  std::vector<float> q(impl_->dim_);
  VEXFS_RETURN_IF_ERROR(impl_->PrepareVector(vec, q.data(), /*stored=*/true));
  if (!impl_->trained()) return impl_->AddPending(&id, q.data(), 1, 1);
  return impl_->AddPrepared(id, q.data());
}

Status HnswIndex::Remove(uint64_t id) {
  Impl& m = *impl_;
  const uint32_t slot = m.ids_.Find(id);
  if (slot == kNoNode) {
    const ptrdiff_t pos = m.FindPending(id);
    if (pos < 0) return Status::NotFound("hnsw: id not present");
    const size_t last = m.pending_ids_.size() - 1;
    m.pending_ids_[size_t(pos)] = m.pending_ids_[last];
    std::memmove(m.pending_vecs_.data() + size_t(pos) * m.dim_,
                 m.pending_vecs_.data() + last * m.dim_, m.dim_ * sizeof(float));
    m.pending_ids_.pop_back();
    m.pending_vecs_.resize(last * m.dim_);
    return Status::Ok();
  }
  m.ids_.Erase(id);
  m.deleted_[slot] = 1;
  ++m.num_deleted_;
  m.free_slots_.push_back(slot);
  return Status::Ok();
}

Status HnswIndex::AddBatch(std::span<const uint64_t> ids, std::span<const float> vecs,
                           size_t threads) {
  Impl& m = *impl_;
  const size_t d = m.dim_;
  if (vecs.size() != ids.size() * d) {
    return Status::InvalidArgument("hnsw: AddBatch needs ids.size() * dim floats");
  }
  const size_t n = ids.size();
  // Validate everything first so a bad row leaves the index untouched.
  std::vector<float> prepared(n * d);
  for (size_t i = 0; i < n; ++i) {
    VEXFS_RETURN_IF_ERROR(m.PrepareVector(vecs.subspan(i * d, d), prepared.data() + i * d, /*stored=*/true));
  }
  if (!m.trained()) return m.AddPending(ids.data(), prepared.data(), n, threads);
  return m.AddPreparedBatch(ids.data(), prepared.data(), n, threads);
}

Status HnswIndex::Impl::AddPreparedBatch(const uint64_t* ids, const float* prepared, size_t n,
                                         size_t threads) {
  Impl& m = *this;
  const size_t d = dim_;
  // Last occurrence of a repeated id wins.
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
  std::vector<size_t> fresh;
  std::vector<size_t> serial;
  for (size_t j = 0; j < n; ++j) {
    if (j + 1 < n && ids[order[j + 1]] == ids[order[j]]) continue;
    const size_t i = order[j];
    if (m.ids_.Find(ids[i]) != kNoNode) {
      serial.push_back(i);
    } else {
      fresh.push_back(i);
    }
  }
  std::sort(fresh.begin(), fresh.end());  // keep the caller's order (and level draws) stable
  // Updates and deleted-slot reuse need the global repair: do them serially.
  for (size_t r = std::min(m.free_slots_.size(), fresh.size()); r > 0; --r) {
    serial.push_back(fresh.back());
    fresh.pop_back();
  }
  for (size_t i : serial) VEXFS_RETURN_IF_ERROR(m.AddPrepared(ids[i], prepared + i * d));
  if (fresh.empty()) return Status::Ok();

  VEXFS_RETURN_IF_ERROR(m.EnsureCapacity(m.count_ + fresh.size()));
  std::vector<uint32_t> slots(fresh.size());
  std::vector<int> levels(fresh.size());
  for (size_t j = 0; j < fresh.size(); ++j) {
    levels[j] = m.RandomLevel();
    slots[j] = m.NewSlot(ids[fresh[j]], levels[j]);
    m.StoreVector(slots[j], prepared + fresh[j] * d);
  }
  size_t start = 0;
  if (m.entry_ == kNoNode) {
    m.Link<false>(slots[0], levels[0], prepared + fresh[0] * d);
    start = 1;
  }
  threads = std::max<size_t>(1, std::min(threads, fresh.size()));
  if (threads == 1) {
    for (size_t j = start; j < fresh.size(); ++j) {
      m.Link<false>(slots[j], levels[j], prepared + fresh[j] * d);
    }
    return Status::Ok();
  }
  std::atomic<size_t> next{start};
  auto worker = [&] {
    for (;;) {
      const size_t j = next.fetch_add(1, std::memory_order_relaxed);
      if (j >= fresh.size()) return;
      m.Link<true>(slots[j], levels[j], prepared + fresh[j] * d);
    }
  };
  index_internal::RunWorkers(threads, worker);
  return Status::Ok();
}

}  // namespace vexfs::engine
