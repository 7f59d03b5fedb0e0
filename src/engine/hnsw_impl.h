// Internal state of HnswIndex, shared by hnsw.cc (insert/update/remove),
// hnsw_search.cc (query paths) and hnsw_io.cc (serialization).
// Not a public header.
#ifndef VEXFS_SRC_ENGINE_HNSW_IMPL_H_
#define VEXFS_SRC_ENGINE_HNSW_IMPL_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "aligned.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/hnsw.h"
#include "vexfs/engine/quantizer.h"

namespace vexfs::engine {
namespace hnsw_internal {

// The level-0 arena stores ids as little-endian bytes and reads them with
// native 4-byte loads.
static_assert(std::endian::native == std::endian::little, "hnsw arena assumes little-endian");

inline constexpr uint32_t kNoNode = 0xFFFFFFFFu;
inline constexpr uint32_t kMaxSlots = 0x7FFFFFFFu;  // top bit is the pool's "expanded" flag
inline constexpr size_t kMaxSlots24 = size_t{1} << 24;  // slots addressable by 3-byte links
inline constexpr int kMaxLevel = 31;
inline constexpr size_t kMaxM = 128;
inline constexpr size_t kMaxDim = 65536;
inline constexpr size_t kMaxK = 10000;
inline constexpr size_t kMaxTrainSize = size_t{1} << 20;
// ef_construction and ef_search (a blob from a volume is checked against it
// too: the insert beam is allocated at that size).
inline constexpr size_t kMaxEf = size_t{1} << 20;

// Growable, zero-filled, 64-byte aligned byte array. Arrays of 4 MiB and
// more are 2 MiB aligned and asked to be backed by transparent huge pages:
// graph search reads them at random, and with 4 KiB pages nearly every
// neighbour costs a TLB miss once the index outgrows the TLB's reach.
class AlignedArray {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  AlignedArray() = default;
  explicit AlignedArray(size_t huge_from) : huge_from_(huge_from) {}
  ~AlignedArray() { std::free(p_); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;

  // Grows to at least `bytes` (rounded up to 64, or to 2 MiB for large
  // arrays), keeping the contents and zeroing the new tail. Returns false
  // when out of memory.
  bool Reserve(size_t bytes) {
    if (bytes <= cap_) return true;
    const bool huge = bytes >= huge_from_;
    const size_t align = huge ? kHugePage : 64;
    const size_t n = (bytes + align - 1) & ~(align - 1);
    auto* q = static_cast<uint8_t*>(std::aligned_alloc(align, n));
    if (q == nullptr) return false;
    if (huge) AdviseHuge(q, n);  // before the first touch below
    if (cap_ != 0) std::memcpy(q, p_, cap_);
    std::memset(q + cap_, 0, n - cap_);
    std::free(p_);
    p_ = q;
    cap_ = n;
    return true;
  }

  uint8_t* data() const { return p_; }
  size_t capacity() const { return cap_; }
  void Swap(AlignedArray& o) {
    std::swap(p_, o.p_);
    std::swap(cap_, o.cap_);
  }

 private:
  // A hint: without THP (or with it disabled) the array keeps 4 KiB pages.
  static void AdviseHuge(void* p, size_t n);

  uint8_t* p_ = nullptr;
  size_t cap_ = 0;
  size_t huge_from_ = 2 * kHugePage;
};

// Open-addressing (linear probing, backward-shift delete) map from external
// u64 id to internal u32 slot. A bucket holds only the slot: the key is
// read back from the label array the map is bound to (4 bytes per bucket
// instead of 12; lookups are off the search path). Load factor <= 0.7.
// REQUIRES: every slot in the map has (*labels)[slot] == its key, i.e. the
// owner writes labels[slot] before Put(key, slot) and erases a key before
// changing its slot's label.
class IdMap {
 public:
  static constexpr uint32_t kAbsent = kNoNode;

  explicit IdMap(const std::vector<uint64_t>* labels) : labels_(labels) {}

  uint32_t Find(uint64_t key) const {
    if (size_ == 0) return kAbsent;
    for (size_t i = Hash(key) & mask_;; i = (i + 1) & mask_) {
      const uint32_t v = vals_[i];
      if (v == kAbsent) return kAbsent;
      if ((*labels_)[v] == key) return v;
    }
  }
  // Inserts or overwrites. REQUIRES: (*labels)[val] == key.
  void Put(uint64_t key, uint32_t val) {
    if ((size_ + 1) * 10 > vals_.size() * 7) Rehash(vals_.empty() ? 16 : vals_.size() * 2);
    size_t i = Hash(key) & mask_;
    for (; vals_[i] != kAbsent; i = (i + 1) & mask_) {
      if ((*labels_)[vals_[i]] == key) {
        vals_[i] = val;
        return;
      }
    }
    vals_[i] = val;
    ++size_;
  }
  void Erase(uint64_t key) {
    if (size_ == 0) return;
    size_t i = Hash(key) & mask_;
    for (;; i = (i + 1) & mask_) {
      if (vals_[i] == kAbsent) return;
      if ((*labels_)[vals_[i]] == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; vals_[j] != kAbsent; j = (j + 1) & mask_) {
      size_t home = Hash((*labels_)[vals_[j]]) & mask_;
      bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        vals_[hole] = vals_[j];
        hole = j;
      }
    }
    vals_[hole] = kAbsent;
    --size_;
  }
  void Reserve(size_t n) {
    size_t want = 16;
    while (want * 7 < n * 10) want *= 2;
    if (want > vals_.size()) Rehash(want);
  }
  size_t size() const { return size_; }
  size_t MemoryBytes() const { return vals_.capacity() * sizeof(uint32_t); }

 private:
  static size_t Hash(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }
  void Rehash(size_t buckets) {
    std::vector<uint32_t> ov = std::move(vals_);
    vals_.assign(buckets, kAbsent);
    vals_.shrink_to_fit();
    mask_ = buckets - 1;
    for (uint32_t v : ov) {
      if (v == kAbsent) continue;
      size_t i = Hash((*labels_)[v]) & mask_;
      while (vals_[i] != kAbsent) i = (i + 1) & mask_;
      vals_[i] = v;
    }
  }

  const std::vector<uint64_t>* labels_;
  std::vector<uint32_t> vals_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// One candidate: internal distance (smaller is better) and slot.
struct Cand {
  float d;
  uint32_t id;
};

// Per-thread visited tags with epochs: a search bumps the epoch instead of
// clearing the array (every 255th search clears it). One byte per slot,
// huge-page backed from 1 MiB: the tags of a 1M-slot index fit in the L2
// cache and in one TLB entry.
struct VisitedTags {
  AlignedArray tags{size_t{1} << 20};
  size_t size = 0;
  uint8_t epoch = 0;
  // Returns the tag for a fresh traversal over `n` slots. Throws
  // std::bad_alloc when the array cannot grow, as the std::vector it
  // replaced did.
  uint8_t Next(size_t n) {
    if (size < n) {
      AlignedArray grown{size_t{1} << 20};
      if (!grown.Reserve(n + n / 2 + 64)) throw std::bad_alloc();
      tags.Swap(grown);
      size = tags.capacity();
      epoch = 0;
    }
    if (++epoch == 0) {
      std::memset(tags.data(), 0, size);
      epoch = 1;
    }
    return epoch;
  }
};
VisitedTags& ThreadVisited();

// Tiny test-and-test-and-set lock for one node's link lists.
inline void SpinLock(std::atomic<uint8_t>& l) {
  for (int spins = 0;; ++spins) {
    if (l.load(std::memory_order_relaxed) == 0 && l.exchange(1, std::memory_order_acquire) == 0) {
      return;
    }
    if (spins > 64) std::this_thread::yield();
  }
}
inline void SpinUnlock(std::atomic<uint8_t>& l) { l.store(0, std::memory_order_release); }

}  // namespace hnsw_internal

class HnswIndex::Impl {
 public:
  using Cand = hnsw_internal::Cand;

  explicit Impl(const HnswParams& p);

  // ---- geometry / accessors -------------------------------------------
  // Level 0 lives in one arena of fixed-stride records, one per slot, as in
  // hnswlib's data_level0: a neighbour's links and its vector share a
  // record, so expanding a node touches one run of cache lines (and one
  // page) instead of two arrays. The links are
  //   u32 count | M0 ids of link_w_ bytes (little-endian)
  // at links_off_, the vector at vec_off_, the stride is rec_bytes_ (see
  // SetGeometry: float records hold the vector first, 64-byte aligned;
  // int8 records are packed, links first, because memory is what int8 is
  // for). link_w_ is 3 while capacity_ <= 2^24 slots and 4 above
  // (EnsureCapacity re-lays the arena when it crosses): 32 level-0 links at
  // M=16 take 96 bytes instead of 128.
  uint8_t* Rec(uint32_t id) const { return level0_.data() + size_t{id} * rec_bytes_; }
  uint8_t* Links0Ptr(uint32_t id) const { return Rec(id) + links_off_; }
  const uint8_t* VecPtr(uint32_t id) const { return Rec(id) + vec_off_; }
  uint8_t* VecPtr(uint32_t id) { return Rec(id) + vec_off_; }
  // REQUIRES: 1 <= level <= levels_[id].
  uint32_t* LinksUpper(uint32_t id, int level) const {
    return const_cast<uint32_t*>(upper_pool_.data()) + size_t{upper_off_[id]} * (M_ + 1) +
           size_t(level - 1) * (M_ + 1);
  }
  size_t MaxLinks(int level) const { return level == 0 ? M0_ : M_; }
  // The raw list of `id` on `level`: *ids points at its first id, *w is
  // the id width in bytes (decode entry j with LinkAt). Returns the count.
  // Under AddBatch the caller holds locks_[id].
  uint32_t RawLinks(uint32_t id, int level, const uint8_t** ids, size_t* w) const {
    if (level == 0) {
      const uint8_t* r = Links0Ptr(id);
      *ids = r + 4;
      *w = link_w_;
      return Load32(r);
    }
    const uint32_t* u = LinksUpper(id, level);
    *ids = reinterpret_cast<const uint8_t*>(u + 1);
    *w = 4;
    return u[0];
  }
  // Entry j of a raw list of width w (3 or 4). A 3-byte id is read with a
  // 4-byte load and masked: the byte after the last id slot still lies in
  // the record (slack or vector), so the load never leaves the arena.
  static uint32_t LinkAt(const uint8_t* ids, size_t w, size_t j) {
    const uint32_t v = Load32(ids + j * w);
    return w == 4 ? v : (v & 0xFFFFFFu);
  }
  // Copies the list of `id` on `level` into out[0, MaxLinks(level)) and
  // returns its count.
  uint32_t GetLinks(uint32_t id, int level, uint32_t* out) const {
    const uint8_t* ids;
    size_t w;
    const uint32_t cnt = RawLinks(id, level, &ids, &w);
    for (uint32_t j = 0; j < cnt; ++j) out[j] = LinkAt(ids, w, j);
    return cnt;
  }
  // Replaces the list of `id` on `level`. REQUIRES: n <= MaxLinks(level),
  // every id < capacity_.
  void SetLinks(uint32_t id, int level, const uint32_t* src, size_t n) {
    if (level == 0) {
      uint8_t* r = Links0Ptr(id);
      for (size_t j = 0; j < n; ++j) StoreId(r + 4 + j * link_w_, link_w_, src[j]);
      Store32(r, static_cast<uint32_t>(n));
      return;
    }
    uint32_t* u = LinksUpper(id, level);
    std::memcpy(u + 1, src, n * sizeof(uint32_t));
    u[0] = static_cast<uint32_t>(n);
  }
  // Appends `v` to a list holding `cnt` < MaxLinks(level) entries.
  void AppendLink(uint32_t id, int level, uint32_t cnt, uint32_t v) {
    if (level == 0) {
      uint8_t* r = Links0Ptr(id);
      StoreId(r + 4 + size_t{cnt} * link_w_, link_w_, v);
      Store32(r, cnt + 1);
      return;
    }
    uint32_t* u = LinksUpper(id, level);
    u[1 + cnt] = v;
    u[0] = cnt + 1;
  }
  static uint32_t Load32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  static void Store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
  static void StoreId(uint8_t* p, size_t w, uint32_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
    p[2] = static_cast<uint8_t>(v >> 16);
    if (w == 4) p[3] = static_cast<uint8_t>(v >> 24);
  }
  // Record geometry for an id width: sets link_w_, vec_off_, rec_bytes_.
  void SetGeometry(size_t w);

  // Distance from a query in "query form" (see QueryForm) to a slot.
  float Dist(const float* q, uint32_t id) const {
    float raw;
    if (i8_) {
      const auto* c = reinterpret_cast<const int8_t*>(VecPtr(id));
      raw = l2_ ? sq8_l2_(q, sq_steps_, c, dim_) : q[dim_] + sq8_dot_(q, c, dim_);
    } else if (f16_) {
      raw = dist_f16_(q, reinterpret_cast<const uint16_t*>(VecPtr(id)), dim_);
    } else {
      raw = dist_f32_(q, reinterpret_cast<const float*>(VecPtr(id)), dim_);
    }
    return bias_ + sign_ * raw;
  }
  // Dist() to four slots at once, bit for bit. REQUIRES: float32 or
  // float16 storage.
  void Dist4(const float* q, const uint32_t* ids, float* out) const {
    if (f16_) {
      const uint16_t* x[4];
      for (int j = 0; j < 4; ++j) x[j] = reinterpret_cast<const uint16_t*>(VecPtr(ids[j]));
      dist_f16_x4_(q, x, dim_, out);
    } else {
      const float* x[4];
      for (int j = 0; j < 4; ++j) x[j] = reinterpret_cast<const float*>(VecPtr(ids[j]));
      dist_f32_x4_(q, x, dim_, out);
    }
    for (int j = 0; j < 4; ++j) out[j] = bias_ + sign_ * out[j];
  }
  // Dist() from `q` to the first of `left` (>= 1) slots at `ids`, or to
  // up to four of them at once; returns how many distances went to `out`.
  // float32 and float16 go four at a time: four vector streams keep more
  // loads in flight than one, and the search is bound by memory, not by
  // arithmetic, once the vectors outgrow the caches (measured +15-25% QPS
  // at 768 dims for float32). Two or three left take the four-vector
  // kernel with the last id repeated (the repeat is cached). int8 goes one
  // at a time, prefetching the next.
  size_t DistUpTo4(const float* q, const uint32_t* ids, size_t left, float* out) const {
    if (!i8_ && left >= 4) {
      Dist4(q, ids, out);
      return 4;
    }
    if (!i8_ && left >= 2) {
      const uint32_t pad[4] = {ids[0], ids[1], ids[left - 1], ids[left - 1]};
      Dist4(q, pad, out);
      return left;
    }
    if (left > 1) PrefetchVec(ids[1]);
    out[0] = Dist(q, ids[0]);
    return 1;
  }
  // Distance between two stored nodes; `a_form` = PairForm(a). f32 and
  // f16 compare the stored vectors directly (f16 with the f16-vs-f16
  // kernel: no conversion); int8 uses `a` decoded into query form.
  float DistPair(uint32_t a, const float* a_form, uint32_t b) const {
    if (i8_) return Dist(a_form, b);
    float raw;
    if (f16_) {
      raw = dist_f16_f16_(reinterpret_cast<const uint16_t*>(VecPtr(a)),
                          reinterpret_cast<const uint16_t*>(VecPtr(b)), dim_);
    } else {
      raw = dist_f32_(reinterpret_cast<const float*>(VecPtr(a)),
                      reinterpret_cast<const float*>(VecPtr(b)), dim_);
    }
    return bias_ + sign_ * raw;
  }
  // Floats of scratch QueryForm (int8) and PairForm need.
  size_t ScratchFloats() const { return i8_ ? 2 * dim_ + 1 : 0; }
  // A prepared vector `v` (normalised for cosine) in the form Dist() takes:
  // `v` itself for f32/f16; for int8 the quantizer weights w[dim] plus the
  // dot-product bias at w[dim], written to scratch[0, dim + 1).
  const float* QueryForm(const float* v, float* scratch) const;
  // The left side of DistPair(id, ...): for int8 the stored codes decoded
  // into query form in `scratch` (ScratchFloats() floats); nullptr for f32
  // and f16, which need no preparation.
  const float* PairForm(uint32_t id, float* scratch) const;
  void StoreVector(uint32_t id, const float* v);
  // kInt8: installs a trained quantizer and its derived tables.
  void SetQuantizer(ScalarQuantizer q);
  void PrefetchVec(uint32_t id) const {
    const uint8_t* p = VecPtr(id);
    for (size_t off = 0; off < vec_used_bytes_; off += 64) __builtin_prefetch(p + off);
  }

  // ---- insert / update (hnsw.cc) ----------------------------------------
  // Validates and copies `v` (normalised for cosine) to `out`. A vector
  // to be `stored` must also fit float16 in a float16 index; a query stays
  // float32 (the kernels take a float32 query), so any finite one will do.
  Status PrepareVector(std::span<const float> v, float* out, bool stored) const;
  Status EnsureCapacity(size_t n);
  // Re-lays the level-0 arena with 4-byte links and room for
  // max(cap, capacity_) records (EnsureCapacity calls it when the index
  // outgrows 2^24 slots). Exclusive access.
  Status WidenLinks(size_t cap);
  int RandomLevel();
  // Appends a fresh slot with `level`; allocates its upper lists.
  uint32_t NewSlot(uint64_t label, int level);
  // Adds a prepared vector (replace if the id exists, else reuse a free slot
  // or append). Single-threaded.
  Status AddPrepared(uint64_t id, const float* q);
  // Inserts prepared vectors (n * dim, ids distinct), new ids linked by
  // `threads` workers. REQUIRES: trained.
  Status AddPreparedBatch(const uint64_t* ids, const float* prepared, size_t n, size_t threads);
  // kInt8 before training: add/replace in the pending buffer, then train
  // and flush once it holds int8_train_size vectors.
  Status AddPending(const uint64_t* ids, const float* prepared, size_t n, size_t threads);
  Status TrainAndFlush(std::span<const float> sample, size_t threads);
  bool trained() const { return !i8_ || sq_.has_value(); }
  // Pending position of `id`, or -1.
  ptrdiff_t FindPending(uint64_t id) const;
  template <bool kLocked>
  void Link(uint32_t node, int level, const float* q);
  void UpdateNode(uint32_t node, const float* q);
  void RepairConnections(uint32_t node, int level, const float* q);
  template <bool kLocked>
  uint32_t ConnectNeighbors(uint32_t node, int level, std::vector<Cand>& cands, bool is_update);
  // hnswlib's getNeighborsByHeuristic2: keep a candidate unless it is closer
  // to an already kept one than to the base. `cands` sorted ascending.
  void SelectHeuristic(std::vector<Cand>& cands, size_t m) const;

  // ---- search (hnsw_search.cc) --------------------------------------------
  template <bool kLocked>
  uint32_t GreedyUpper(const float* q, uint32_t ep, float* ep_d, int level) const;
  // Beam search on `level` with a sorted fixed-size pool; `out` receives up
  // to ef candidates sorted ascending. Deleted nodes are included.
  template <bool kLocked>
  void SearchLayer(const float* q, uint32_t ep, float ep_d, int level, size_t ef,
                   std::vector<Cand>* out) const;
  // Level-0 search returning only accepted nodes (hnswlib semantics with
  // deletions: keep exploring until ef accepted results are found).
  template <class Accept>
  void SearchLayerAccept(const float* q, uint32_t ep, float ep_d, size_t ef, const Accept& accept,
                         std::vector<Cand>* out) const;
  // k-NN over live (and filter-accepted) nodes; result sorted ascending.
  void Knn(const float* q, size_t k, size_t ef, const IdFilter* filter,
           std::vector<Cand>* out) const;
  void BruteForce(const float* q, size_t k, const IdFilter* filter, std::vector<Cand>* out) const;
  // Validates `query` into buf: the prepared (normalised) vector at
  // buf[0, dim), its query form after it for int8. *q = query form.
  Status PrepareQuery(std::span<const float> query, AlignedFloats* buf, const float** q) const;
  // Exact scan of the pending buffer (kInt8 before training).
  void ScanPending(const float* v, size_t k, float radius, const IdFilter* filter,
                   std::vector<Neighbor>* out) const;
  // Replaces the distances of `cands` by exact ones from source_, sorted.
  Status Rerank(const float* v, const std::vector<Cand>& cands, std::vector<Neighbor>* out) const;

  // ---- state ----------------------------------------------------------------
  HnswParams p_;
  size_t dim_;
  size_t M_;
  size_t M0_;
  size_t vec_used_bytes_;  // dim * element size
  size_t link_w_ = 0;      // level-0 id width in bytes: 3 or 4
  size_t vec_off_ = 0;     // vector offset in a level-0 record
  size_t links_off_ = 0;   // count + ids offset in a level-0 record
  size_t rec_bytes_ = 0;   // level-0 record stride
  bool f16_;
  bool i8_;
  bool l2_;
  bool normalize_;
  float sign_;
  float bias_;
  float (*dist_f32_)(const float*, const float*, size_t);
  void (*dist_f32_x4_)(const float*, const float* const*, size_t, float*);
  void (*dist_f16_x4_)(const float*, const uint16_t* const*, size_t, float*);
  float (*dist_f16_)(const float*, const uint16_t*, size_t);
  float (*dist_f16_f16_)(const uint16_t*, const uint16_t*, size_t);
  float (*sq8_l2_)(const float*, const float*, const int8_t*, size_t);
  float (*sq8_dot_)(const float*, const int8_t*, size_t);

  // kInt8 state: the quantizer once trained, its per-dimension step and
  // offset (lo + 128 * step) tables, the pending buffer before training,
  // and the optional source of originals for re-ranking.
  std::optional<ScalarQuantizer> sq_;
  const float* sq_steps_ = nullptr;
  std::vector<float> sq_offset_;
  std::vector<uint64_t> pending_ids_;
  std::vector<float> pending_vecs_;  // prepared (normalised) float32
  const VectorSource* source_ = nullptr;
  double level_mult_;
  std::mt19937_64 rng_;

  size_t count_ = 0;     // slots in use (live + deleted)
  size_t capacity_ = 0;  // slots allocated
  hnsw_internal::AlignedArray level0_;  // capacity_ records of rec_bytes_
  std::vector<uint64_t> labels_;
  std::vector<uint8_t> levels_;
  std::vector<uint8_t> deleted_;
  // Upper-level lists: node id's levels 1..L are L consecutive blocks of
  // (M + 1) words in upper_pool_, starting at block upper_off_[id]. The pool
  // grows only in NewSlot (never while worker threads link).
  std::vector<uint32_t> upper_off_;
  std::vector<uint32_t> upper_pool_;
  std::unique_ptr<std::atomic<uint8_t>[]> locks_;
  hnsw_internal::IdMap ids_{&labels_};
  std::vector<uint32_t> free_slots_;
  size_t num_deleted_ = 0;

  uint32_t entry_ = hnsw_internal::kNoNode;
  int max_level_ = -1;
  std::mutex entry_mu_;  // guards entry_/max_level_ during AddBatch
};

}  // namespace vexfs::engine

#endif  // VEXFS_SRC_ENGINE_HNSW_IMPL_H_
