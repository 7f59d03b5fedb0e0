// Vector storage in the core: collections (catalogue, configuration xattr),
// vector segments of fixed-size slots, user.vexfs.vector on files inside a
// collection, and the index blob. See "Vector layer" in
// include/uapi/vexfs/vexfs_format.h and docs/format.md.
//
// Crash safety: a slot is written (ordered data, flushed before the commit)
// before the journaled inode change that points at it; a replaced slot is
// reused only after the transaction that released it has committed. The
// configuration, catalogue links and i_vector fields are journaled metadata.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/fs_impl.h"
#include "core/xattr.h"
#include "vexfs/crc32c.h"

namespace vexfs::core {
namespace {

constexpr const char* kConfigName = "vexfs.collection";  // in the trusted namespace
constexpr const char* kVectorSuffix = "vexfs.vector";     // in the user namespace
constexpr size_t kScanChunk = 1 << 20;
// Slots per segment: at most this many (docs/format.md, "Vector layer").
constexpr uint64_t kMaxSlots = 0x7fffffffu;
constexpr int kMaxDepth = 4096;

uint32_t ConfigCrc(vexfs_collection c) {
  c.vc_crc = 0;
  return Crc32c(&c, sizeof(c));
}

uint32_t SlotCrc(vexfs_vslot h, const float* v, uint32_t dim) {
  h.vs_crc = 0;
  uint32_t crc = Crc32cExtend(~0u, &h, sizeof(h));
  return ~Crc32cExtend(crc, v, size_t{dim} * 4);
}

Status ValidateConfig(const CollectionConfig& cfg, bool create) {
  if (create && (cfg.dim == 0 || cfg.dim > VEXFS_VECTOR_MAX_DIM)) {
    return Status::InvalidArgument("dimension must be 1.." + std::to_string(VEXFS_VECTOR_MAX_DIM));
  }
  if (cfg.metric > VEXFS_METRIC_COSINE) return Status::InvalidArgument("unknown metric");
  if (cfg.element_type > VEXFS_ELEM_I8) return Status::InvalidArgument("unknown element type");
  if (cfg.index_kind > VEXFS_INDEX_LSH) return Status::InvalidArgument("unknown index kind");
  if (cfg.index_kind == VEXFS_INDEX_HNSW) {
    if (cfg.params[0] != 0 && (cfg.params[0] < 2 || cfg.params[0] > 128)) {
      return Status::InvalidArgument("HNSW M must be 2..128");
    }
    if (cfg.params[3] != 0) return Status::InvalidArgument("reserved parameter must be 0");
  } else if (cfg.index_kind == VEXFS_INDEX_LSH) {
    if (cfg.params[0] > 64) return Status::InvalidArgument("LSH tables must be <= 64");
    if (cfg.params[1] > 64) return Status::InvalidArgument("LSH bits must be <= 64");
    if (cfg.params[3] != 0) return Status::InvalidArgument("reserved parameter must be 0");
  } else {
    for (uint16_t p : cfg.params) {
      if (p != 0) return Status::InvalidArgument("a flat index takes no parameters");
    }
  }
  if (cfg.element_type != VEXFS_ELEM_F32 && cfg.index_kind != VEXFS_INDEX_HNSW &&
      cfg.index_kind != VEXFS_INDEX_FLAT) {
    return Status::InvalidArgument("float16/int8 storage needs a flat or HNSW index");
  }
  return Status::Ok();
}

CollectionConfig ToConfig(const vexfs_collection& c) {
  CollectionConfig out;
  out.dim = Le32(c.vc_dim);
  out.metric = c.vc_metric;
  out.element_type = c.vc_element_type;
  out.index_kind = c.vc_index_kind;
  for (int i = 0; i < 4; i++) out.params[i] = Le16(c.vc_param[i]);
  out.dir = Le64(c.vc_dir);
  out.index_valid = Le32(c.vc_index_state) == VEXFS_INDEX_STATE_VALID;
  out.index_bytes = Le64(c.vc_index_bytes);
  return out;
}

}  // namespace

void FsImpl::SetObserver(FsObserver* observer) {
  std::lock_guard<std::mutex> lock(mu_);
  observer_ = observer;
}

FsImpl::VecCollection* FsImpl::Coll(uint64_t dir) {
  auto it = colls_.find(dir);
  return it == colls_.end() ? nullptr : &it->second;
}

Status FsImpl::LoadCollections() {
  colls_.clear();
  VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
  const auto* sb = reinterpret_cast<const vexfs_super_block*>(b->data);
  uint64_t seg = Le64(sb->s_vector_root);
  if (seg != 0 && !(Le32(sb->s_feature_incompat) & VEXFS_FEATURE_INCOMPAT_VECTORS)) {
    return Status::Corruption("vector catalogue present without the vectors feature");
  }
  std::unordered_set<uint64_t> seen;
  while (seg != 0) {
    if (!seen.insert(seg).second) return Status::Corruption("vector catalogue loops");
    VEXFS_ASSIGN_OR_RETURN(InodeRef s, GetInode(seg));
    if (!(Le32(s.raw->i_flags) & VEXFS_INODE_FL_VSEGMENT) || !s.is_reg()) {
      return Status::Corruption("vector catalogue: inode " + std::to_string(seg) + " is not a segment");
    }
    XattrStore xs(this, s);
    std::vector<XattrItem> items;
    VEXFS_RETURN_IF_ERROR(xs.Load(&items));
    VecCollection c;
    c.seg = seg;
    bool found = false;
    for (const auto& it : items) {
      if (it.index != VEXFS_XATTR_INDEX_TRUSTED || it.name != kConfigName) continue;
      VEXFS_ASSIGN_OR_RETURN(std::vector<uint8_t> v, xs.ValueOf(it));
      if (v.size() != sizeof(vexfs_collection)) return Status::Corruption("collection config: bad size");
      std::memcpy(&c.cfg, v.data(), sizeof(c.cfg));
      found = true;
    }
    if (!found) return Status::Corruption("segment " + std::to_string(seg) + " has no configuration");
    const auto& cfg = c.cfg;
    if (Le32(cfg.vc_magic) != VEXFS_COLLECTION_MAGIC || Le16(cfg.vc_size) != sizeof(vexfs_collection) ||
        ConfigCrc(cfg) != Le32(cfg.vc_crc)) {
      return Status::Corruption("collection config of segment " + std::to_string(seg) + " is damaged");
    }
    if (Le16(cfg.vc_version) != 1) return Status::NotSupported("collection config version is newer");
    const uint32_t dim = Le32(cfg.vc_dim);
    if (dim == 0 || dim > VEXFS_VECTOR_MAX_DIM || Le32(cfg.vc_slot_size) != vexfs_slot_size(dim) ||
        cfg.vc_metric > VEXFS_METRIC_COSINE || cfg.vc_element_type > VEXFS_ELEM_I8 ||
        cfg.vc_index_kind > VEXFS_INDEX_LSH) {
      return Status::Corruption("collection config of segment " + std::to_string(seg) + " is invalid");
    }
    // Slots are written in order and never punched, so a segment is no
    // larger than the data area (a scan of a sparse 16 TiB one would run
    // for hours) and holds at most kMaxSlots (PutVector's limit).
    const uint64_t seg_size = Le64(s.raw->i_size);
    if (seg_size > (geo_.block_count - geo_.data_start) * VEXFS_BLOCK_SIZE ||
        seg_size / Le32(cfg.vc_slot_size) > kMaxSlots) {
      return Status::Corruption("segment " + std::to_string(seg) + ": size " + std::to_string(seg_size) +
                                " exceeds the data area or the slot limit");
    }
    c.dir = Le64(cfg.vc_dir);
    VEXFS_ASSIGN_OR_RETURN(InodeRef d, GetInode(c.dir));
    if (!d.is_dir() || !(Le32(d.raw->i_flags) & VEXFS_INODE_FL_COLLECTION) || Le64(d.raw->i_vector) != seg ||
        Le64(s.raw->i_parent) != c.dir) {
      return Status::Corruption("collection directory " + std::to_string(c.dir) + " does not match its segment");
    }
    const uint64_t next = Le64(s.raw->i_vector);
    colls_[c.dir] = std::move(c);
    seg = next;
  }
  return Status::Ok();
}

Result<uint64_t> FsImpl::CollOfDir(uint64_t dir) {
  uint64_t cur = dir;
  for (int depth = 0; depth < kMaxDepth; depth++) {
    if (colls_.empty()) return uint64_t{0};
    if (colls_.count(cur)) return cur;
    if (cur == VEXFS_ROOT_INO || cur == 0) return uint64_t{0};
    auto r = GetInode(cur);
    if (!r.ok() || !r->is_dir()) return uint64_t{0};
    cur = Le64(r->raw->i_parent);
  }
  return Status::Corruption("directory parents loop");
}

Result<uint64_t> FsImpl::CollOfInode(const InodeRef& r) {
  if (colls_.empty()) return uint64_t{0};
  if (r.is_dir()) return CollOfDir(r.ino);
  const uint64_t p = Le64(r.raw->i_parent);
  if (p == 0) return uint64_t{0};
  auto pr = GetInode(p);
  if (!pr.ok() || !pr->is_dir()) return uint64_t{0};
  return CollOfDir(p);
}

Status FsImpl::WriteCollConfig(VecCollection& c) {
  c.cfg.vc_crc = ToLe32(ConfigCrc(c.cfg));
  VEXFS_ASSIGN_OR_RETURN(InodeRef s, GetInode(c.seg));
  std::vector<uint8_t> v(sizeof(c.cfg));
  std::memcpy(v.data(), &c.cfg, sizeof(c.cfg));
  XattrStore xs(this, s);
  return xs.Set(VEXFS_XATTR_INDEX_TRUSTED, kConfigName, &v, 0);
}

Status FsImpl::EditCollConfig(VecCollection& c, const std::function<void(vexfs_collection&)>& edit) {
  const vexfs_collection saved = c.cfg;
  const uint64_t dir = c.dir;
  OnUndo([this, dir, saved] {
    if (auto* cc = Coll(dir)) cc->cfg = saved;
  });
  edit(c.cfg);
  return WriteCollConfig(c);
}

Status FsImpl::MarkStale(VecCollection& c) {
  if (Le32(c.cfg.vc_index_state) == VEXFS_INDEX_STATE_STALE) return Status::Ok();
  return EditCollConfig(c, [](vexfs_collection& v) { v.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE); });
}

Status FsImpl::ScanSlotsRaw(VecCollection& c,
                            const std::function<Status(uint32_t, const vexfs_vslot&, const float*)>& fn) {
  VEXFS_ASSIGN_OR_RETURN(InodeRef s, GetInode(c.seg));
  const uint32_t slot_size = Le32(c.cfg.vc_slot_size);
  const uint64_t nslots = Le64(s.raw->i_size) / slot_size;
  // No bigger than the segment: a small collection's scan need not zero
  // and fault in a whole chunk.
  const uint64_t per_chunk = std::max<uint64_t>(1, std::min<uint64_t>(kScanChunk / slot_size, nslots));
  std::vector<uint8_t> buf(per_chunk * slot_size);
  for (uint64_t first = 0; first < nslots; first += per_chunk) {
    const uint64_t n = std::min(per_chunk, nslots - first);
    VEXFS_ASSIGN_OR_RETURN(size_t got, ReadData(s, first * slot_size, std::span<uint8_t>(buf.data(), n * slot_size)));
    if (got != n * slot_size) return Status::Corruption("vector segment shorter than its size");
    for (uint64_t i = 0; i < n; i++) {
      vexfs_vslot h;
      std::memcpy(&h, buf.data() + i * slot_size, sizeof(h));
      VEXFS_RETURN_IF_ERROR(
          fn(static_cast<uint32_t>(first + i), h, reinterpret_cast<const float*>(buf.data() + i * slot_size + 16)));
    }
  }
  return Status::Ok();
}

Result<bool> FsImpl::SlotLive(VecCollection& c, uint32_t slot, const vexfs_vslot& h) {
  const uint64_t owner = Le64(h.vs_owner);
  if (owner == 0 || owner > geo_.inode_count) return false;
  auto r = GetInode(owner);
  if (!r.ok()) {
    if (r.status().err() == ESTALE) return false;
    return r.status();
  }
  if (!r->is_reg() || Le64(r->raw->i_vector) != uint64_t{slot} + 1 ||
      Le32(r->raw->i_generation) != Le32(h.vs_generation)) {
    return false;
  }
  VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfInode(*r));
  return coll == c.dir;
}

Status FsImpl::ForEachLiveSlot(VecCollection& c, const std::function<Status(const vexfs_vslot&, const float*)>& fn,
                               bool rebuild_free) {
  std::unordered_set<uint32_t> quarantined(c.quarantine.begin(), c.quarantine.end());
  std::vector<uint32_t> free;
  VEXFS_RETURN_IF_ERROR(ScanSlotsRaw(c, [&](uint32_t slot, const vexfs_vslot& h, const float* data) -> Status {
    VEXFS_ASSIGN_OR_RETURN(bool live, SlotLive(c, slot, h));
    if (live) return fn(h, data);
    if (!quarantined.count(slot)) free.push_back(slot);
    return Status::Ok();
  }));
  if (rebuild_free) {
    // Pop from the back: lowest slots first.
    std::reverse(free.begin(), free.end());
    c.free_slots = std::move(free);
    c.slots_known = true;
  }
  return Status::Ok();
}

Status FsImpl::EnsureSlots(VecCollection& c) {
  if (c.slots_known) return Status::Ok();
  return ForEachLiveSlot(c, [](const vexfs_vslot&, const float*) { return Status::Ok(); }, true);
}

Result<std::vector<float>> FsImpl::ReadSlot(VecCollection& c, const InodeRef& file) {
  const uint64_t slot = Le64(file.raw->i_vector) - 1;
  const uint32_t slot_size = Le32(c.cfg.vc_slot_size), dim = Le32(c.cfg.vc_dim);
  VEXFS_ASSIGN_OR_RETURN(InodeRef s, GetInode(c.seg));
  if ((slot + 1) * slot_size > Le64(s.raw->i_size)) {
    return Status::Corruption("inode " + std::to_string(file.ino) + ": vector slot beyond the segment");
  }
  std::vector<uint8_t> buf(slot_size);
  VEXFS_ASSIGN_OR_RETURN(size_t got, ReadData(s, slot * slot_size, buf));
  if (got != slot_size) return Status::Corruption("short vector slot");
  vexfs_vslot h;
  std::memcpy(&h, buf.data(), sizeof(h));
  std::vector<float> v(dim);
  std::memcpy(v.data(), buf.data() + 16, size_t{dim} * 4);
  if (Le64(h.vs_owner) != file.ino || Le32(h.vs_generation) != Le32(file.raw->i_generation) ||
      SlotCrc(h, v.data(), dim) != Le32(h.vs_crc)) {
    return Status::Corruption("inode " + std::to_string(file.ino) + ": vector slot " +
                              std::to_string(slot) + " is damaged");
  }
  return v;
}

Status FsImpl::ValidateVector(const VecCollection& c, std::span<const uint8_t> bytes) {
  return CheckVector(Le32(c.cfg.vc_dim), c.cfg.vc_metric, c.cfg.vc_element_type, bytes);
}

}  // namespace vexfs::core

namespace vexfs {
namespace {
constexpr float kMaxHalf = 65504.0f;  // the largest finite float16
}  // namespace

Status CheckVector(uint32_t dim, uint8_t metric, uint8_t element_type, std::span<const uint8_t> bytes) {
  if (bytes.size() != size_t{dim} * 4) {
    return Status::InvalidArgument("vector has " + std::to_string(bytes.size()) + " bytes; the collection takes " +
                                   std::to_string(dim) + " float32 (" + std::to_string(dim * 4) + " bytes)");
  }
  const bool half = element_type == VEXFS_ELEM_F16 && metric != VEXFS_METRIC_COSINE;
  double norm = 0;
  for (uint32_t i = 0; i < dim; i++) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    if (!std::isfinite(f)) return Status::InvalidArgument("vector component " + std::to_string(i) + " is NaN or infinite");
    if (half && std::fabs(f) > kMaxHalf) {
      return Status::InvalidArgument("vector component " + std::to_string(i) + " (" + std::to_string(f) +
                                     ") is beyond float16's range (|x| <= 65504) of the collection's f16 index");
    }
    norm += double{f} * f;
  }
  if (metric == VEXFS_METRIC_COSINE && norm == 0) {
    return Status::InvalidArgument("a zero vector has no direction (cosine metric)");
  }
  return Status::Ok();
}

}  // namespace vexfs

namespace vexfs::core {

Status FsImpl::PutVector(VecCollection& c, const InodeRef& file, std::span<const float> vec) {
  VEXFS_RETURN_IF_ERROR(EnsureSlots(c));
  VEXFS_ASSIGN_OR_RETURN(InodeRef s, GetInode(c.seg));
  const uint32_t slot_size = Le32(c.cfg.vc_slot_size), dim = Le32(c.cfg.vc_dim);
  uint32_t slot;
  const uint64_t dir = c.dir;
  if (!c.free_slots.empty()) {
    slot = c.free_slots.back();
    c.free_slots.pop_back();
    OnUndo([this, dir, slot] {
      if (auto* cc = Coll(dir)) cc->free_slots.push_back(slot);
    });
  } else {
    const uint64_t n = Le64(s.raw->i_size) / slot_size;
    if (n >= kMaxSlots) return Status::NoSpace("collection is full");
    slot = static_cast<uint32_t>(n);
  }
  std::vector<uint8_t> bytes(slot_size, 0);
  vexfs_vslot h{};
  h.vs_owner = ToLe64(file.ino);
  h.vs_generation = file.raw->i_generation;
  h.vs_crc = ToLe32(SlotCrc(h, vec.data(), dim));
  std::memcpy(bytes.data(), &h, sizeof(h));
  std::memcpy(bytes.data() + 16, vec.data(), size_t{dim} * 4);
  VEXFS_RETURN_IF_ERROR(WriteChunk(s, uint64_t{slot} * slot_size, bytes));
  // The slot must be on stable storage before the commit that points at it,
  // also when it overwrote an already allocated block.
  cache_->NoteOrderedData();
  const uint64_t old = Le64(file.raw->i_vector);
  if (old != 0) {
    const uint32_t old_slot = static_cast<uint32_t>(old - 1);
    c.quarantine.push_back(old_slot);
    OnUndo([this, dir] {
      if (auto* cc = Coll(dir)) cc->quarantine.pop_back();
    });
  }
  Dirty(file);
  file.raw->i_vector = ToLe64(uint64_t{slot} + 1);
  VEXFS_RETURN_IF_ERROR(MarkStale(c));
  Event e{Event::kVecSet, c.dir, file.ino};
  if (observer_) e.vec.assign(vec.begin(), vec.end());
  Emit(std::move(e));
  return Status::Ok();
}

Status FsImpl::DropVector(VecCollection& c, const InodeRef& file) {
  const uint64_t old = Le64(file.raw->i_vector);
  if (old == 0) return Status::Error(ENODATA, "no vector");
  const uint64_t dir = c.dir;
  c.quarantine.push_back(static_cast<uint32_t>(old - 1));
  OnUndo([this, dir] {
    if (auto* cc = Coll(dir)) cc->quarantine.pop_back();
  });
  Dirty(file);
  file.raw->i_vector = 0;
  VEXFS_RETURN_IF_ERROR(MarkStale(c));
  Emit(Event{Event::kVecRemoved, c.dir, file.ino});
  return Status::Ok();
}

Result<std::optional<std::vector<uint8_t>>> FsImpl::PlainVector(const InodeRef& r) {
  XattrStore xs(this, r);
  std::vector<XattrItem> items;
  VEXFS_RETURN_IF_ERROR(xs.Load(&items));
  for (const auto& it : items) {
    if (it.index == VEXFS_XATTR_INDEX_USER && it.name == kVectorSuffix) {
      VEXFS_ASSIGN_OR_RETURN(std::vector<uint8_t> v, xs.ValueOf(it));
      return std::optional<std::vector<uint8_t>>(std::move(v));
    }
  }
  return std::optional<std::vector<uint8_t>>();
}

Status FsImpl::MoveVector(const InodeRef& r, uint64_t from, uint64_t to) {
  if (from == to || !r.is_reg()) return Status::Ok();
  // Take the vector out of where it lives now (slot or ordinary xattr)...
  std::vector<uint8_t> bytes;
  XattrStore xs(this, r);
  if (Le64(r.raw->i_vector) != 0) {
    VecCollection* c = Coll(from);
    if (c == nullptr) return Status::Corruption("vector of inode " + std::to_string(r.ino) + " has no collection");
    VEXFS_ASSIGN_OR_RETURN(std::vector<float> vec, ReadSlot(*c, r));
    bytes.resize(vec.size() * 4);
    std::memcpy(bytes.data(), vec.data(), bytes.size());
    VEXFS_RETURN_IF_ERROR(DropVector(*c, r));
  } else {
    if (to == 0) return Status::Ok();  // an ordinary xattr stays one
    VEXFS_ASSIGN_OR_RETURN(auto plain, PlainVector(r));
    if (!plain) return Status::Ok();
    bytes = std::move(*plain);
    VEXFS_RETURN_IF_ERROR(xs.Set(VEXFS_XATTR_INDEX_USER, kVectorSuffix, nullptr, 0));
  }
  // ...and store it where the file goes.
  if (to == 0) return xs.Set(VEXFS_XATTR_INDEX_USER, kVectorSuffix, &bytes, 0);
  VecCollection* dst = Coll(to);
  if (!ValidateVector(*dst, bytes).ok()) {
    return Status::Error(EXDEV, "the file's vector does not fit the target collection");
  }
  std::vector<float> vec(bytes.size() / 4);
  std::memcpy(vec.data(), bytes.data(), bytes.size());
  return PutVector(*dst, r, vec);
}

Status FsImpl::DetachCollection(const InodeRef& dir, std::vector<uint64_t>* reap) {
  VecCollection* c = Coll(dir.ino);
  if (c == nullptr) return Status::Corruption("collection flag without a catalogue entry");
  // Files still holding slots (hard links elsewhere): clear them.
  std::vector<uint64_t> owners;
  VEXFS_RETURN_IF_ERROR(ForEachLiveSlot(*c, [&](const vexfs_vslot& h, const float*) {
    owners.push_back(Le64(h.vs_owner));
    return Status::Ok();
  }, false));
  for (uint64_t o : owners) {
    VEXFS_ASSIGN_OR_RETURN(InodeRef f, GetInode(o));
    Dirty(f);
    f.raw->i_vector = 0;
    Emit(Event{Event::kVecRemoved, dir.ino, o});
  }
  // Unlink the segment from the catalogue.
  VEXFS_ASSIGN_OR_RETURN(InodeRef seg, GetInode(c->seg));
  const uint64_t next = Le64(seg.raw->i_vector);
  VEXFS_ASSIGN_OR_RETURN(Buffer * sb, Super());
  auto* raw = reinterpret_cast<vexfs_super_block*>(sb->data);
  if (Le64(raw->s_vector_root) == c->seg) {
    cache_->MarkDirty(sb, SealKind::kSuper);
    raw->s_vector_root = ToLe64(next);
  } else {
    uint64_t cur = Le64(raw->s_vector_root);
    bool done = false;
    for (size_t guard = 0; cur != 0 && guard <= colls_.size(); guard++) {
      VEXFS_ASSIGN_OR_RETURN(InodeRef p, GetInode(cur));
      if (Le64(p.raw->i_vector) == c->seg) {
        Dirty(p);
        p.raw->i_vector = ToLe64(next);
        done = true;
        break;
      }
      cur = Le64(p.raw->i_vector);
    }
    if (!done) return Status::Corruption("segment missing from the vector catalogue");
  }
  Dirty(seg);
  seg.raw->i_vector = 0;
  seg.raw->i_links = 0;
  VEXFS_RETURN_IF_ERROR(AddOrphan(seg));
  reap->push_back(seg.ino);
  const uint64_t idx = Le64(c->cfg.vc_index_ino);
  if (idx != 0) {
    VEXFS_ASSIGN_OR_RETURN(InodeRef ir, GetInode(idx));
    Dirty(ir);
    ir.raw->i_links = 0;
    VEXFS_RETURN_IF_ERROR(AddOrphan(ir));
    reap->push_back(idx);
  }
  Dirty(dir);
  dir.raw->i_flags = ToLe32(Le32(dir.raw->i_flags) & ~VEXFS_INODE_FL_COLLECTION);
  dir.raw->i_vector = 0;
  VecCollection saved = *c;
  colls_.erase(dir.ino);
  OnUndo([this, saved] { colls_[saved.dir] = saved; });
  Emit(Event{Event::kCollDropped, dir.ino, 0});
  return Status::Ok();
}

// -- Public API -----------------------------------------------------------------

Status FsImpl::CreateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) {
  VEXFS_RETURN_IF_ERROR(ValidateConfig(config, true));
  {
    std::lock_guard<std::mutex> lock(mu_);
    VEXFS_RETURN_IF_ERROR(CheckWritable());
    VEXFS_ASSIGN_OR_RETURN(InodeRef d, GetInode(dir));
    if (!d.is_dir()) return Status::Error(ENOTDIR, "not a directory");
    if (colls_.count(dir)) return Status::Error(EEXIST, "the directory already is a collection");
    if (opts_.check_permissions && cred.uid != 0 && cred.uid != Le32(d.raw->i_uid)) {
      return Status::Error(EPERM, "only the directory's owner may make it a collection");
    }
    // Files below that hold slots of an enclosing collection cannot change
    // collection atomically: refuse.
    VEXFS_ASSIGN_OR_RETURN(uint64_t outer, CollOfDir(dir));
    bool busy = false;
    if (outer != 0) {
      VEXFS_RETURN_IF_ERROR(ForEachFileBelow(dir, [&](const InodeRef& f) {
        if (busy || Le64(f.raw->i_vector) == 0) return;
        auto co = CollOfInode(f);
        busy = co.ok() && *co == outer;
      }));
    }
    if (busy) return Status::Error(EBUSY, "the directory holds vectors of an enclosing collection; remove them first");
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef d2, GetInode(dir));
      VEXFS_ASSIGN_OR_RETURN(InodeRef s, AllocInode(dir));
      s.raw->i_mode = ToLe16(S_IFREG);
      s.raw->i_links = ToLe32(1);
      s.raw->i_parent = ToLe64(dir);
      s.raw->i_flags = ToLe32(VEXFS_INODE_FL_VSEGMENT);
      SetTimes(s, true, true, true);
      ExtentMap::InitEmpty(s.raw);
      VecCollection c;
      c.dir = dir;
      c.seg = s.ino;
      c.slots_known = true;
      auto& v = c.cfg;
      v.vc_magic = ToLe32(VEXFS_COLLECTION_MAGIC);
      v.vc_version = ToLe16(1);
      v.vc_size = ToLe16(sizeof(vexfs_collection));
      v.vc_dim = ToLe32(config.dim);
      v.vc_metric = config.metric;
      v.vc_element_type = config.element_type;
      v.vc_index_kind = config.index_kind;
      v.vc_slot_size = ToLe32(vexfs_slot_size(config.dim));
      for (int i = 0; i < 4; i++) v.vc_param[i] = ToLe16(config.params[i]);
      v.vc_dir = ToLe64(dir);
      v.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE);
      v.vc_created = ToLe64(static_cast<uint64_t>(Now().sec));
      colls_[dir] = c;
      OnUndo([this, dir] { colls_.erase(dir); });
      VEXFS_RETURN_IF_ERROR(WriteCollConfig(colls_[dir]));
      VEXFS_ASSIGN_OR_RETURN(Buffer * sb, Super());
      cache_->MarkDirty(sb, SealKind::kSuper);
      auto* raw = reinterpret_cast<vexfs_super_block*>(sb->data);
      s.raw->i_vector = raw->s_vector_root;
      raw->s_vector_root = ToLe64(s.ino);
      raw->s_feature_incompat = ToLe32(Le32(raw->s_feature_incompat) | VEXFS_FEATURE_INCOMPAT_VECTORS);
      Dirty(d2);
      d2.raw->i_flags = ToLe32(Le32(d2.raw->i_flags) | VEXFS_INODE_FL_COLLECTION);
      d2.raw->i_vector = ToLe64(s.ino);
      SetTimes(d2, false, false, true);
      Emit(Event{Event::kCollCreated, dir, 0});
      return Status::Ok();
    }));
  }
  return AdoptPlainVectors(dir);
}

Status FsImpl::ForEachFileBelow(uint64_t dir, const std::function<void(const InodeRef&)>& fn) {
  std::vector<uint64_t> stack{dir};
  while (!stack.empty()) {
    const uint64_t cur = stack.back();
    stack.pop_back();
    VEXFS_ASSIGN_OR_RETURN(InodeRef cr, GetInode(cur));
    VEXFS_RETURN_IF_ERROR(Dir(cr).ReadFrom(0, [&](const DirRec& rec) {
      auto child = GetInode(rec.ino);
      if (!child.ok()) return true;
      if (child->is_dir()) {
        if (!colls_.count(rec.ino)) stack.push_back(rec.ino);
      } else if (child->is_reg()) {
        fn(*child);
      }
      return true;
    }));
  }
  return Status::Ok();
}

Status FsImpl::AdoptPlainVectors(uint64_t dir) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  VecCollection* c = Coll(dir);
  if (c == nullptr) return Status::NotSupported("not a collection");
  // Files below `dir` (not in nested collections) with an ordinary
  // user.vexfs.vector xattr move into the segment, one operation each.
  std::vector<uint64_t> files;
  VEXFS_RETURN_IF_ERROR(ForEachFileBelow(dir, [&](const InodeRef& f) {
    if (Le64(f.raw->i_vector) == 0) files.push_back(f.ino);
  }));
  for (uint64_t f : files) {
    Status s = RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(f));
      if (Le64(r.raw->i_vector) != 0) return Status::Ok();
      VEXFS_ASSIGN_OR_RETURN(uint64_t co, CollOfInode(r));
      if (co != dir) return Status::Ok();
      VEXFS_ASSIGN_OR_RETURN(auto plain, PlainVector(r));
      if (!plain) return Status::Ok();
      VecCollection* cc = Coll(dir);
      // A vector that does not fit stays an ordinary (unindexed) xattr.
      if (!ValidateVector(*cc, *plain).ok()) return Status::Ok();
      std::vector<float> vec(plain->size() / 4);
      std::memcpy(vec.data(), plain->data(), plain->size());
      XattrStore xs(this, r);
      VEXFS_RETURN_IF_ERROR(xs.Set(VEXFS_XATTR_INDEX_USER, kVectorSuffix, nullptr, 0));
      return PutVector(*cc, r, vec);
    });
    VEXFS_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status FsImpl::DropCollection(uint64_t dir, const Cred& cred) {
  std::unique_lock<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  {
    VEXFS_ASSIGN_OR_RETURN(InodeRef d, GetInode(dir));
    if (!d.is_dir()) return Status::Error(ENOTDIR, "not a directory");
    if (!colls_.count(dir)) return Status::NotSupported("the directory is not a collection");
    if (opts_.check_permissions && cred.uid != 0 && cred.uid != Le32(d.raw->i_uid)) {
      return Status::Error(EPERM, "only the directory's owner may drop its collection");
    }
  }
  // Clear the files' vectors in bounded operations while more than one
  // batch is left, then detach. DetachCollection clears the last batch in
  // its own operation, so a collection of up to kBatch vectors goes in one
  // atomic step (a crash never leaves it present with its vectors gone).
  constexpr size_t kBatch = 256;
  for (;;) {
    VecCollection* c = Coll(dir);
    std::vector<uint64_t> owners;
    VEXFS_RETURN_IF_ERROR(ForEachLiveSlot(*c, [&](const vexfs_vslot& h, const float*) {
      if (owners.size() <= kBatch) owners.push_back(Le64(h.vs_owner));
      return Status::Ok();
    }, false));
    if (owners.size() <= kBatch) break;
    owners.resize(kBatch);
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VecCollection* cc = Coll(dir);
      for (uint64_t o : owners) {
        VEXFS_ASSIGN_OR_RETURN(InodeRef f, GetInode(o));
        VEXFS_RETURN_IF_ERROR(DropVector(*cc, f));
      }
      return Status::Ok();
    }));
  }
  std::vector<uint64_t> reap;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    reap.clear();
    VEXFS_ASSIGN_OR_RETURN(InodeRef d, GetInode(dir));
    return DetachCollection(d, &reap);
  }));
  for (uint64_t ino : reap) VEXFS_RETURN_IF_ERROR(MaybeReap(ino));
  return Status::Ok();
}

Status FsImpl::UpdateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) {
  VEXFS_RETURN_IF_ERROR(ValidateConfig(config, false));
  {
    std::lock_guard<std::mutex> lock(mu_);
    VEXFS_RETURN_IF_ERROR(CheckWritable());
    VEXFS_ASSIGN_OR_RETURN(InodeRef d, GetInode(dir));
    if (!d.is_dir()) return Status::Error(ENOTDIR, "not a directory");
    VecCollection* c = Coll(dir);
    if (c == nullptr) return Status::NotSupported("the directory is not a collection");
    if (opts_.check_permissions && cred.uid != 0 && cred.uid != Le32(d.raw->i_uid)) {
      return Status::Error(EPERM, "only the directory's owner may change its collection");
    }
    if (config.dim != 0 && config.dim != Le32(c->cfg.vc_dim)) {
      return Status::InvalidArgument("the dimension of a collection cannot change");
    }
    // Every stored vector must fit the new element type (float16's range
    // under l2 and ip) before anything changes.
    if (config.element_type == VEXFS_ELEM_F16 && c->cfg.vc_element_type != VEXFS_ELEM_F16 &&
        c->cfg.vc_metric != VEXFS_METRIC_COSINE) {
      const uint32_t dim = Le32(c->cfg.vc_dim);
      uint64_t misfit = 0;
      VEXFS_RETURN_IF_ERROR(ForEachLiveSlot(*c, [&](const vexfs_vslot& h, const float* v) {
        const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v), size_t{dim} * 4);
        if (misfit == 0 && !CheckVector(dim, c->cfg.vc_metric, VEXFS_ELEM_F16, bytes).ok()) {
          misfit = Le64(h.vs_owner);
        }
        return Status::Ok();
      }, /*rebuild_free=*/false));
      if (misfit != 0) {
        return Status::InvalidArgument("the vector of inode " + std::to_string(misfit) +
                                       " is beyond float16's range (|x| <= 65504): keep f32 for this collection");
      }
    }
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      return EditCollConfig(*Coll(dir), [&](vexfs_collection& v) {
        v.vc_element_type = config.element_type;
        v.vc_index_kind = config.index_kind;
        for (int i = 0; i < 4; i++) v.vc_param[i] = ToLe16(config.params[i]);
        v.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE);
      });
    }));
  }
  // A reindex also picks up files an interrupted create did not convert.
  return AdoptPlainVectors(dir);
}

Result<CollectionConfig> FsImpl::GetCollection(uint64_t dir) {
  std::lock_guard<std::mutex> lock(mu_);
  VecCollection* c = Coll(dir);
  if (c == nullptr) return Status::NotSupported("the directory is not a collection");
  return ToConfig(c->cfg);
}

Result<uint64_t> FsImpl::CollectionOf(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  return CollOfInode(r);
}

Result<std::vector<uint64_t>> FsImpl::ListCollections() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [dir, c] : colls_) out.push_back(dir);
  return out;
}

Status FsImpl::ScanVectors(uint64_t dir, const std::function<void(uint64_t, std::span<const float>)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  VecCollection* c = Coll(dir);
  if (c == nullptr) return Status::NotSupported("the directory is not a collection");
  const uint32_t dim = Le32(c->cfg.vc_dim);
  std::vector<float> v(dim);
  return ForEachLiveSlot(*c, [&](const vexfs_vslot& h, const float* data) {
    std::memcpy(v.data(), data, size_t{dim} * 4);
    if (SlotCrc(h, v.data(), dim) != Le32(h.vs_crc)) {
      return Status::Corruption("the vector slot of inode " + std::to_string(Le64(h.vs_owner)) + " in collection " +
                                std::to_string(dir) + " is damaged; run fsck.vexfs");
    }
    fn(Le64(h.vs_owner), v);
    return Status::Ok();
  }, true);
}

Status FsImpl::SaveIndexBlob(uint64_t dir, std::span<const uint8_t> blob) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  if (Coll(dir) == nullptr) return Status::NotSupported("the directory is not a collection");
  // 1. An index inode, marked stale while it is rewritten.
  uint64_t idx = 0;
  bool in_place = false;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VecCollection* c = Coll(dir);
    VEXFS_RETURN_IF_ERROR(MarkStale(*c));
    idx = Le64(c->cfg.vc_index_ino);
    in_place = idx != 0;
    if (idx != 0) return Status::Ok();
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, AllocInode(c->seg));
    r.raw->i_mode = ToLe16(S_IFREG);
    r.raw->i_links = ToLe32(1);
    r.raw->i_parent = ToLe64(c->seg);
    r.raw->i_flags = ToLe32(VEXFS_INODE_FL_VINDEX);
    SetTimes(r, true, true, true);
    ExtentMap::InitEmpty(r.raw);
    idx = r.ino;
    return EditCollConfig(*c, [&](vexfs_collection& v) { v.vc_index_ino = ToLe64(r.ino); });
  }));
  // The old blob's blocks are overwritten in place: the stale mark must be
  // on disk first, or a crash leaves a record saying "valid" over a blob
  // that no longer matches its checksum (the disk may still say valid even
  // when the cached state was already stale).
  if (in_place) VEXFS_RETURN_IF_ERROR(cache_->Commit());
  // 2. The blob, in bounded steps.
  constexpr size_t kStep = 1 << 20;
  for (size_t done = 0; done < blob.size(); done += kStep) {
    const size_t n = std::min(kStep, blob.size() - done);
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(idx));
      return WriteChunk(r, done, blob.subspan(done, n));
    }));
  }
  // 3. Trim, then mark valid; the flush before this commit makes the blob
  //    durable first.
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(idx));
  const uint64_t old_size = Le64(r.raw->i_size);
  if (old_size > blob.size()) VEXFS_RETURN_IF_ERROR(Truncate(idx, blob.size()));
  return RunOp([&]() -> Status {
    cache_->NoteOrderedData();
    return EditCollConfig(*Coll(dir), [&](vexfs_collection& v) {
      v.vc_index_bytes = ToLe64(blob.size());
      v.vc_index_crc = ToLe32(Crc32c(blob.data(), blob.size()));
      v.vc_index_state = ToLe32(VEXFS_INDEX_STATE_VALID);
    });
  });
}

Result<std::vector<uint8_t>> FsImpl::LoadIndexBlob(uint64_t dir) {
  std::lock_guard<std::mutex> lock(mu_);
  VecCollection* c = Coll(dir);
  if (c == nullptr) return Status::NotSupported("the directory is not a collection");
  if (Le32(c->cfg.vc_index_state) != VEXFS_INDEX_STATE_VALID || c->cfg.vc_index_ino == 0) {
    return Status::Error(ENODATA, "no valid index blob");
  }
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(Le64(c->cfg.vc_index_ino)));
  const uint64_t n = Le64(c->cfg.vc_index_bytes);
  if (Le64(r.raw->i_size) < n) return Status::Corruption("index blob shorter than recorded");
  std::vector<uint8_t> out(n);
  VEXFS_ASSIGN_OR_RETURN(size_t got, ReadData(r, 0, out));
  if (got != n || Crc32c(out.data(), n) != Le32(c->cfg.vc_index_crc)) {
    return Status::Error(ENODATA, "index blob does not match its checksum");
  }
  return out;
}

}  // namespace vexfs::core
