// HnswIndex serialization (spec: docs/hnsw_format.md). The payload (inside
// the serialize.h blob container, kind kHnsw) is, all integers
// little-endian:
//
//   u32 dim | u8 metric | u8 element_type | u16 reserved (0)
//   u32 M | u32 ef_construction | u32 ef_search | u64 seed
//   u32 slot_count (n) | u32 entry (0xFFFFFFFF when n == 0) | i32 max_level
//   u64 label[n] | u8 level[n] | u8 deleted[n] (0 or 1)
//   vectors: n * dim f32 (element_type 0), u16 binary16 (1) or i8 codes (2)
//   level 0:  for each slot: u32 count (<= 2M), u32 neighbour[count]
//   upper:    for each slot, for level 1..level[slot]: u32 count (<= M),
//             u32 neighbour[count]
//   version 2 only (int8):
//             u8 has_quantizer | u8[3] reserved (0) | u32 int8_train_size
//             [ScalarQuantizer::Serialize block when has_quantizer]
//             u32 pending (p) | u64 pending_id[p] | f32 pending_vec[p * dim]
//
// Version 1 is still written for f32/f16 indexes (older readers load
// them); int8 indexes are written as version 2. Both are read.
//
// Every field is validated on load: neighbour ids < n, counts <= the
// per-level maximum, levels <= 31 and <= max_level, entry at max_level,
// live labels unique, vectors finite.
#include <algorithm>
#include <cmath>
#include <string>

#include "hnsw_impl.h"
#include "vexfs/engine/serialize.h"

namespace vexfs::engine {

using hnsw_internal::kNoNode;

namespace {
constexpr uint16_t kHnswFormatVersion = 2;  // newest version read

Status Bad(const std::string& what) { return Status::Corruption("hnsw: " + what); }
}  // namespace

Result<std::vector<uint8_t>> HnswIndex::Serialize() const {
  const Impl& m = *impl_;
  ByteWriter w;
  w.PutU32(static_cast<uint32_t>(m.dim_));
  w.PutU8(static_cast<uint8_t>(m.p_.metric));
  w.PutU8(static_cast<uint8_t>(m.p_.element_type));
  w.PutU16(0);
  w.PutU32(static_cast<uint32_t>(m.M_));
  w.PutU32(static_cast<uint32_t>(std::min<size_t>(m.p_.ef_construction, UINT32_MAX)));
  w.PutU32(static_cast<uint32_t>(std::min<size_t>(m.p_.ef_search, UINT32_MAX)));
  w.PutU64(m.p_.seed);
  const size_t n = m.count_;
  w.PutU32(static_cast<uint32_t>(n));
  w.PutU32(m.entry_);
  w.PutI32(m.max_level_);
  w.PutU64Array(std::span<const uint64_t>(m.labels_.data(), n));
  w.PutBytes(m.levels_.data(), n);
  w.PutBytes(m.deleted_.data(), n);
  for (uint32_t i = 0; i < n; ++i) {
    if (m.i8_) {
      w.PutBytes(m.VecPtr(i), m.dim_);
    } else if (m.f16_) {
      w.PutU16Array({reinterpret_cast<const uint16_t*>(m.VecPtr(i)), m.dim_});
    } else {
      w.PutF32Array({reinterpret_cast<const float*>(m.VecPtr(i)), m.dim_});
    }
  }
  uint32_t buf[2 * hnsw_internal::kMaxM];
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t cnt = m.GetLinks(i, 0, buf);
    w.PutU32(cnt);
    w.PutU32Array({buf, cnt});
  }
  for (uint32_t i = 0; i < n; ++i) {
    for (int l = 1; l <= m.levels_[i]; ++l) {
      const uint32_t* ll = m.LinksUpper(i, l);
      w.PutU32Array({ll, size_t{ll[0]} + 1});
    }
  }
  if (m.i8_) {
    w.PutU8(m.sq_ ? 1 : 0);
    w.PutU8(0);
    w.PutU8(0);
    w.PutU8(0);
    w.PutU32(static_cast<uint32_t>(m.p_.int8_train_size));
    if (m.sq_) m.sq_->Serialize(&w);
    w.PutU32(static_cast<uint32_t>(m.pending_ids_.size()));
    w.PutU64Array(m.pending_ids_);
    w.PutF32Array(m.pending_vecs_);
  }
  std::vector<uint8_t> payload = w.Release();
  return WrapBlob(IndexKind::kHnsw, m.i8_ ? 2 : 1, payload);
}

namespace {
// Reads one link list (count + ids) into `dst` (room for 1 + max words).
Status ReadLinks(ByteReader& r, uint32_t* dst, size_t max, size_t n) {
  uint32_t cnt = 0;
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&cnt));
  if (cnt > max)
    return Bad("link count " + std::to_string(cnt) + " exceeds " + std::to_string(max));
  VEXFS_RETURN_IF_ERROR(r.ReadU32Array(dst + 1, cnt));
  for (uint32_t j = 0; j < cnt; ++j) {
    if (dst[1 + j] >= n) return Bad("neighbour id out of range");
  }
  dst[0] = cnt;
  return Status::Ok();
}

// The version-2 int8 trailer: quantizer state and the pending buffer.
Status ReadInt8Trailer(ByteReader& r, uint32_t n, HnswIndex::Impl* m) {
  uint8_t has_q = 0, pad[3];
  uint32_t train_size = 0, pending = 0;
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&has_q));
  VEXFS_RETURN_IF_ERROR(r.ReadBytes(pad, 3));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&train_size));
  if (has_q > 1) return Bad("invalid quantizer flag");
  if (pad[0] != 0 || pad[1] != 0 || pad[2] != 0) return Bad("trailer reserved bytes not zero");
  if (train_size == 0 || train_size > hnsw_internal::kMaxTrainSize) {
    return Bad("invalid int8 train size");
  }
  if (n > 0 && has_q == 0) return Bad("int8 graph without a quantizer");
  m->p_.int8_train_size = train_size;
  if (has_q) {
    auto q = ScalarQuantizer::Deserialize(&r);
    if (!q.ok()) return Bad("quantizer: " + q.status().message());
    if (q->dim() != m->dim_ || q->mode() != ScalarQuantizer::Mode::kPerDimension) {
      return Bad("quantizer does not match the index");
    }
    m->SetQuantizer(std::move(q).value());
  }
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&pending));
  // Pending vectors exist only before training, and fewer than train_size.
  if (pending > 0 && (has_q != 0 || pending >= train_size)) return Bad("invalid pending count");
  VEXFS_RETURN_IF_ERROR(r.CheckAvailable(pending, 8 + 4 * m->dim_));
  m->pending_ids_.resize(pending);
  m->pending_vecs_.resize(size_t{pending} * m->dim_);
  VEXFS_RETURN_IF_ERROR(r.ReadU64Array(m->pending_ids_.data(), pending));
  VEXFS_RETURN_IF_ERROR(r.ReadF32Array(m->pending_vecs_.data(), m->pending_vecs_.size()));
  for (float x : m->pending_vecs_) {
    if (!std::isfinite(x)) return Bad("non-finite pending vector component");
  }
  std::vector<uint64_t> sorted = m->pending_ids_;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Bad("duplicate pending id");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<HnswIndex>> HnswIndex::Deserialize(std::span<const uint8_t> blob) {
  VEXFS_ASSIGN_OR_RETURN(BlobView view, UnwrapBlob(blob, IndexKind::kHnsw, kHnswFormatVersion));
  ByteReader r(view.payload);
  uint32_t dim = 0, M = 0, efc = 0, efs = 0, n = 0, entry = 0;
  uint8_t metric = 0, etype = 0;
  uint16_t reserved = 0;
  uint64_t seed = 0;
  int32_t max_level = 0;
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&dim));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&metric));
  VEXFS_RETURN_IF_ERROR(r.ReadU8(&etype));
  VEXFS_RETURN_IF_ERROR(r.ReadU16(&reserved));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&M));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&efc));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&efs));
  VEXFS_RETURN_IF_ERROR(r.ReadU64(&seed));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&n));
  VEXFS_RETURN_IF_ERROR(r.ReadU32(&entry));
  VEXFS_RETURN_IF_ERROR(r.ReadI32(&max_level));
  if (reserved != 0) return Bad("reserved field is not zero");
  if (metric > static_cast<uint8_t>(Metric::kCosine)) return Bad("unknown metric");
  // Version 1 knows f32/f16 only; version 2 is written for int8 only.
  const uint8_t etype_ok = view.version == 1 ? static_cast<uint8_t>(ElementType::kFloat16)
                                             : static_cast<uint8_t>(ElementType::kInt8);
  if (etype > etype_ok || (view.version == 2 && etype != etype_ok)) {
    return Bad("unsupported element type for format version " + std::to_string(view.version));
  }
  HnswParams p;
  p.dim = dim;
  p.metric = static_cast<Metric>(metric);
  p.element_type = static_cast<ElementType>(etype);
  p.M = M;
  p.ef_construction = efc;
  p.ef_search = efs;
  p.seed = seed;
  if (dim == 0 || dim > hnsw_internal::kMaxDim || M < 2 || M > hnsw_internal::kMaxM || efc == 0 ||
      efs == 0 || efc > hnsw_internal::kMaxEf || efs > hnsw_internal::kMaxEf) {
    return Bad("invalid parameters");
  }
  if (n > hnsw_internal::kMaxSlots) return Bad("slot count too large");
  const size_t esize = etype == static_cast<uint8_t>(ElementType::kFloat16) ? 2
                       : etype == static_cast<uint8_t>(ElementType::kInt8)  ? 1
                                                                            : 4;
  // Minimum bytes per slot: label, level, flag, vector, level-0 count.
  VEXFS_RETURN_IF_ERROR(r.CheckAvailable(n, 8 + 1 + 1 + size_t{dim} * esize + 4));
  if (n == 0) {
    if (entry != kNoNode || max_level != -1) return Bad("empty index with an entry point");
  } else if (entry >= n || max_level < 0 || max_level > hnsw_internal::kMaxLevel) {
    return Bad("invalid entry point or max level");
  }

  auto impl = std::make_unique<Impl>(p);
  Impl& m = *impl;
  VEXFS_RETURN_IF_ERROR(m.EnsureCapacity(std::max<size_t>(n, 1)));
  std::vector<uint64_t> labels(n);
  std::vector<uint8_t> levels(n), deleted(n);
  VEXFS_RETURN_IF_ERROR(r.ReadU64Array(labels.data(), n));
  VEXFS_RETURN_IF_ERROR(r.ReadBytes(levels.data(), n));
  VEXFS_RETURN_IF_ERROR(r.ReadBytes(deleted.data(), n));
  for (uint32_t i = 0; i < n; ++i) {
    if (levels[i] > max_level) return Bad("node level above max level");
    if (deleted[i] > 1) return Bad("invalid deleted flag");
  }
  if (n > 0 && levels[entry] != max_level) return Bad("entry point is not on the top level");
  // Bound what the upper lists may allocate by what the input can hold:
  // vectors, one level-0 count per slot and one count per upper level.
  uint64_t upper_levels = 0;
  for (uint8_t l : levels) upper_levels += l;
  VEXFS_RETURN_IF_ERROR(
      r.CheckAvailable(uint64_t{n} * dim * esize + 4 * (uint64_t{n} + upper_levels), 1));
  for (uint32_t i = 0; i < n; ++i) {
    if (deleted[i] == 0 && m.ids_.Find(labels[i]) != kNoNode) return Bad("duplicate live id");
    const uint32_t prev = m.ids_.Find(labels[i]);
    m.NewSlot(labels[i], levels[i]);
    if (deleted[i] != 0) {
      m.ids_.Erase(labels[i]);
      if (prev != kNoNode) m.ids_.Put(labels[i], prev);
      m.deleted_[i] = 1;
      ++m.num_deleted_;
    }
  }
  for (size_t i = n; i-- > 0;) {
    if (deleted[i] != 0) m.free_slots_.push_back(static_cast<uint32_t>(i));
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (m.i8_) {
      VEXFS_RETURN_IF_ERROR(r.ReadBytes(m.VecPtr(i), dim));  // every code is valid
    } else if (m.f16_) {
      auto* h = reinterpret_cast<uint16_t*>(m.VecPtr(i));
      VEXFS_RETURN_IF_ERROR(r.ReadU16Array(h, dim));
      for (uint32_t j = 0; j < dim; ++j) {
        if ((h[j] & 0x7C00u) == 0x7C00u) return Bad("non-finite vector component");
      }
    } else {
      auto* f = reinterpret_cast<float*>(m.VecPtr(i));
      VEXFS_RETURN_IF_ERROR(r.ReadF32Array(f, dim));
      for (uint32_t j = 0; j < dim; ++j) {
        if (!std::isfinite(f[j])) return Bad("non-finite vector component");
      }
    }
  }
  uint32_t buf[1 + 2 * hnsw_internal::kMaxM];
  for (uint32_t i = 0; i < n; ++i) {
    VEXFS_RETURN_IF_ERROR(ReadLinks(r, buf, m.M0_, n));
    m.SetLinks(i, 0, buf + 1, buf[0]);
  }
  for (uint32_t i = 0; i < n; ++i) {
    for (int l = 1; l <= levels[i]; ++l) {
      VEXFS_RETURN_IF_ERROR(ReadLinks(r, m.LinksUpper(i, l), m.M_, n));
      // An upper-level link must point at a node that exists on that level.
      const uint32_t* ll = m.LinksUpper(i, l);
      for (uint32_t j = 1; j <= ll[0]; ++j) {
        if (levels[ll[j]] < l) return Bad("upper link to a node below that level");
      }
    }
  }
  if (view.version >= 2) VEXFS_RETURN_IF_ERROR(ReadInt8Trailer(r, n, &m));
  VEXFS_RETURN_IF_ERROR(r.ExpectEnd());
  m.entry_ = n == 0 ? kNoNode : entry;
  m.max_level_ = n == 0 ? -1 : max_level;
  m.rng_.seed(seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t{n} + 1)));
  return std::unique_ptr<HnswIndex>(new HnswIndex(std::move(impl)));
}

}  // namespace vexfs::engine
