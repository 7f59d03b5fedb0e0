// fsck for the vector layer (VEXFS_FEATURE_INCOMPAT_VECTORS): the
// collection catalogue, segments and their collection records, index
// blobs, and the slots regular files point at. docs/format.md section 15
// lists the invariants and the problem codes.
//
// Repairs never invent vectors: a vector whose slot does not check out is
// dropped (i_vector = 0), a collection whose segment or record is damaged
// turns back into a plain directory (its files keep their data and lose
// their vectors), an index blob that does not match is marked stale (it is
// a cache the filesystem rebuilds). Orphans (a dropped collection's
// segment, a replaced index blob) are on their way out and not examined.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/fsck_internal.h"
#include "vexfs/crc32c.h"

namespace vexfs::offline {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }
bool IsDir(uint16_t mode) { return (mode & S_IFMT) == S_IFDIR; }
bool IsReg(uint16_t mode) { return (mode & S_IFMT) == S_IFREG; }

constexpr uint32_t kHiddenFlags = VEXFS_INODE_FL_VSEGMENT | VEXFS_INODE_FL_VINDEX;
constexpr uint32_t kVectorFlags = VEXFS_INODE_FL_COLLECTION | kHiddenFlags;

}  // namespace

void Checker::NoteVectorInode(uint64_t ino, Ino& in, const XattrList& xl) {
  if (in.vector != 0 || (in.flags & kVectorFlags)) vec_seen_ = true;
  uint32_t bad = 0;
  if ((in.flags & VEXFS_INODE_FL_COLLECTION) && !IsDir(in.mode)) bad |= VEXFS_INODE_FL_COLLECTION;
  const uint32_t hidden = in.flags & kHiddenFlags;
  if (hidden && (!IsReg(in.mode) || (in.flags & VEXFS_INODE_FL_EA) || hidden == kHiddenFlags ||
                 ino < VEXFS_FIRST_INO)) {
    bad |= hidden;
  }
  if (bad) {
    Report("vec.bad_flags",
           "inode " + Num(ino) + " (" + ModeTypeName(in.mode) + "): vector flags " + Num(bad) +
               " do not fit it; clearing them",
           true);
    in.flags &= ~bad;
    in.dirty = true;
  }
  if (in.flags & VEXFS_INODE_FL_COLLECTION) coll_dirs_.insert(ino);
  if (in.flags & VEXFS_INODE_FL_VSEGMENT) {
    SegRec rec;
    rec.ok = CollectionOfSegment(xl, &rec.c, &rec.why);
    seg_rec_[ino] = rec;
  }
}

bool Checker::IsSegmentCandidate(uint64_t ino) {
  auto it = inodes_.find(ino);
  return it != inodes_.end() && !it->second.clear && !orphans_.count(ino) &&
         IsReg(it->second.mode) && (it->second.flags & VEXFS_INODE_FL_VSEGMENT);
}

void Checker::FreeVectorInode(uint64_t ino) {
  Ino& t = inodes_[ino];
  UnclaimAll(t);
  t.clear = true;
  t.vec_hidden = false;
  to_clear_.insert(ino);
  FreeEaInodesOf(ino);
}

void Checker::FreeEaInodesOf(uint64_t owner) {
  // An EA inode holding one of the owner's values goes with it.
  for (const auto& [ea, users] : ea_users_) {
    if (users.size() != 1 || users[0].first != owner) continue;
    auto it = inodes_.find(ea);
    if (it == inodes_.end() || it->second.clear || it->second.ea_refs != 1) continue;
    UnclaimAll(it->second);
    it->second.clear = true;
    to_clear_.insert(ea);
  }
}

void Checker::Dissolve(uint64_t dir, const std::string& code, const std::string& msg) {
  if (dissolved_.count(dir)) return;
  dissolved_[dir] = Dissolved{code, msg, 0};
  Ino& d = inodes_[dir];
  d.flags &= ~VEXFS_INODE_FL_COLLECTION;
  d.vector = 0;
  d.dirty = true;
}

void Checker::PatchCollection(uint64_t seg, const vexfs_collection& c) {
  vexfs_collection x = c;
  x.vc_crc = 0;
  x.vc_crc = ToLe32(Crc32c(&x, sizeof(x)));
  std::vector<uint8_t> v(sizeof(x));
  std::memcpy(v.data(), &x, sizeof(x));
  xattr_patch_[seg] = std::move(v);
  seg_rec_[seg].c = x;
  inodes_[seg].rewrite_xattrs = true;
}

Status Checker::CheckIndexBlob(uint64_t seg, vexfs_collection& c, bool* patch) {
  const std::string who = "collection " + Num(Le64(c.vc_dir)) + ": index blob ";
  const uint64_t idx = Le64(c.vc_index_ino);
  const bool valid_state = Le32(c.vc_index_state) == VEXFS_INDEX_STATE_VALID;
  // `ours`: the blob inode names this segment, so it goes with the record.
  auto drop = [&](const std::string& why, bool ours = false) {
    if (ours) stray_[idx] = {"", ""};
    Report("vec.bad_index", who + Num(idx) + ": " + why + "; dropping it (the index is rebuilt)",
           true);
    c.vc_index_ino = 0;
    c.vc_index_bytes = 0;
    c.vc_index_crc = 0;
    c.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE);
    *patch = true;
  };
  if (idx == 0) {
    if (valid_state) drop("marked valid but absent");
    return Status::Ok();
  }
  auto it = inodes_.find(idx);
  if (!r_->ValidIno(idx) || it == inodes_.end() || it->second.clear || orphans_.count(idx)) {
    drop("is not an allocated inode");
    return Status::Ok();
  }
  Ino& t = it->second;
  if (!IsReg(t.mode) || !(t.flags & VEXFS_INODE_FL_VINDEX)) {
    drop("is not an index blob inode");
    return Status::Ok();
  }
  if (t.parent != seg || t.vec_hidden) {
    drop("belongs to segment " + Num(t.parent));
    return Status::Ok();
  }
  if (t.links != 1) {
    drop("has " + Num(t.links) + " links", true);
    return Status::Ok();
  }
  t.vec_hidden = true;
  t.reachable = true;
  if (!valid_state) return Status::Ok();
  const uint64_t bytes = Le64(c.vc_index_bytes);
  std::string why;
  if (t.size != bytes) {
    why = "is " + Num(t.size) + " bytes, the record says " + Num(bytes);
  } else {
    vexfs_inode raw;
    VEXFS_RETURN_IF_ERROR(r_->ReadInode(idx, &raw));
    ExtentMap m;
    if (!t.rebuild_extents) ReadExtents(*r_, idx, raw, &m);
    const std::vector<ExtentRec>& ext = t.rebuild_extents ? t.extents : m.extents;
    // The filesystem writes every byte of a blob, so a hole means damage;
    // checking that first bounds the work by the blocks actually mapped.
    uint64_t mapped = 0;
    FileBytes fb(*r_, ext);
    fb.ForEachMapped(bytes, [&](uint64_t first, uint64_t end) { mapped += end - first; });
    if (mapped != bytes) {
      why = "has holes";
    } else {
      std::vector<uint8_t> buf(16 * VEXFS_BLOCK_SIZE);
      uint32_t crc = ~0u;
      for (uint64_t off = 0; off < bytes; off += buf.size()) {
        const size_t n = std::min<uint64_t>(buf.size(), bytes - off);
        VEXFS_RETURN_IF_ERROR(fb.Read(off, n, buf.data()));
        crc = Crc32cExtend(crc, buf.data(), n);
      }
      if (~crc != Le32(c.vc_index_crc)) why = "checksum mismatch";
    }
  }
  if (!why.empty()) {
    Report("vec.index_mismatch", who + Num(idx) + " " + why + "; marking it stale", true);
    c.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE);
    *patch = true;
  }
  return Status::Ok();
}

Status Checker::CheckCatalogue() {
  const bool feature = Le32(r_->super().s_feature_incompat) & VEXFS_FEATURE_INCOMPAT_VECTORS;

  // 1. The catalogue as linked on disk.
  std::vector<uint64_t> listed;
  std::unordered_set<uint64_t> seen;
  bool broken = false;
  for (uint64_t cur = vector_root_, prev = 0; cur != 0;) {
    const std::string from = prev ? "segment " + Num(prev) : std::string("s_vector_root");
    if (!seen.insert(cur).second) {
      Report("vec.catalogue_loop", from + " links back to segment " + Num(cur), true);
      broken = true;
      break;
    }
    if (!IsSegmentCandidate(cur)) {
      Report("vec.catalogue_bad_link", from + " names inode " + Num(cur) + ", not a segment",
             true);
      broken = true;
      break;
    }
    listed.push_back(cur);
    prev = cur;
    cur = inodes_[cur].vector;
  }

  // 2. Segments: a segment survives when its parent is a collection
  //    directory naming it back and its record checks out.
  std::vector<uint64_t> survivors;
  for (auto& [seg, rec] : seg_rec_) {
    if (!IsSegmentCandidate(seg)) continue;
    Ino& s = inodes_[seg];
    const std::string who = "segment " + Num(seg) + ": ";
    auto p = inodes_.find(s.parent);
    const bool parent_ok = p != inodes_.end() && !p->second.clear && IsDir(p->second.mode) &&
                           (p->second.flags & VEXFS_INODE_FL_COLLECTION) &&
                           p->second.vector == seg && !orphans_.count(s.parent);
    if (!parent_ok) {
      stray_[seg] = {"vec.segment_bad_parent",
                     who + "parent " + Num(s.parent) + " is not a collection directory naming it"};
      continue;
    }
    std::string why = rec.why;
    if (rec.ok && Le64(rec.c.vc_dir) != s.parent) {
      why = "record names directory " + Num(Le64(rec.c.vc_dir)) + ", parent is " + Num(s.parent);
    } else if (rec.ok) {
      why.clear();
    }
    if (!why.empty()) {
      stray_[seg] = {"", ""};  // reported with its directory
      Dissolve(s.parent, "vec.bad_collection",
               "collection " + Num(s.parent) + ": segment " + Num(seg) + " record: " + why);
      continue;
    }
    if (s.mode != S_IFREG || s.links != 1) {
      Report("vec.segment_bad_inode",
             who + "mode " + Num(s.mode) + ", " + Num(s.links) + " links; expected " +
                 Num(S_IFREG) + " and 1",
             true);
      s.mode = S_IFREG;
      s.links = 1;
      s.dirty = true;
    }
    const uint32_t ss = Le32(rec.c.vc_slot_size);
    // As the mount requires: no larger than the data area (slots are
    // never punched), at most 2^31 - 1 slots.
    const uint64_t max_size =
        std::min<uint64_t>((g_.block_count - g_.data_start) * VEXFS_BLOCK_SIZE, uint64_t{0x7fffffff} * ss);
    if (s.size > max_size) {
      Report("vec.segment_bad_size",
             who + "size " + Num(s.size) + " exceeds the data area or the slot limit; cutting it to " +
                 Num(max_size / ss * ss),
             true);
      s.size = max_size / ss * ss;
      s.dirty = true;
    }
    if (s.size % ss != 0) {
      Report("vec.segment_bad_size",
             who + "size " + Num(s.size) + " is not a multiple of the slot size " + Num(ss) +
                 "; cutting the partial slot",
             true);
      s.size -= s.size % ss;
      s.dirty = true;
    }
    s.vec_hidden = true;
    s.reachable = true;
    live_coll_[s.parent] = seg;
    survivors.push_back(seg);
  }

  // 3. Collection directories without a surviving segment.
  for (uint64_t d : coll_dirs_) {
    auto it = inodes_.find(d);
    if (it == inodes_.end() || it->second.clear || orphans_.count(d)) continue;
    if (live_coll_.count(d) || dissolved_.count(d)) continue;
    Dissolve(d, "vec.collection_no_segment",
             "collection " + Num(d) + ": i_vector " + Num(it->second.vector) +
                 " is not a valid segment of it");
  }

  // 4. Index blobs of the surviving collections.
  for (uint64_t seg : survivors) {
    vexfs_collection c = seg_rec_[seg].c;
    bool patch = false;
    VEXFS_RETURN_IF_ERROR(CheckIndexBlob(seg, c, &patch));
    if (patch) PatchCollection(seg, c);
  }
  for (auto& [ino, in] : inodes_) {
    if (in.clear || in.vec_hidden || orphans_.count(ino) || !(in.flags & VEXFS_INODE_FL_VINDEX))
      continue;
    if (stray_.count(ino)) continue;
    // The blob of a segment that is going away goes with it quietly.
    auto p = stray_.find(in.parent);
    const bool with_segment = p != stray_.end() && seg_rec_.count(in.parent);
    stray_[ino] = {with_segment ? "" : "vec.stray_index",
                   "index blob " + Num(ino) + " is not the index of a collection"};
  }

  // 5. Relink the catalogue when it differs from the surviving segments:
  //    the listed ones in their order, then the unlisted ones.
  std::vector<uint64_t> want;
  std::unordered_set<uint64_t> alive(survivors.begin(), survivors.end());
  for (uint64_t s : listed) {
    if (alive.count(s)) want.push_back(s);
  }
  for (uint64_t s : survivors) {
    if (seen.count(s)) continue;
    Report("vec.segment_unlisted",
           "segment " + Num(s) + " of collection " + Num(inodes_[s].parent) +
               " is missing from the catalogue; linking it",
           true);
    want.push_back(s);
  }
  if (broken || want != listed) {
    vector_root_ = want.empty() ? 0 : want[0];
    for (size_t i = 0; i < want.size(); i++) {
      Ino& s = inodes_[want[i]];
      const uint64_t next = i + 1 < want.size() ? want[i + 1] : 0;
      if (s.vector != next) {
        s.vector = next;
        s.dirty = true;
      }
    }
  }

  // 6. The feature bit. With surviving collections the repair sets it
  //    (like e2fsck for a valid extent tree on a volume without extents);
  //    otherwise the checks below remove every vector structure.
  if (!feature && (vec_seen_ || Le64(r_->super().s_vector_root) != 0)) {
    Report("vec.no_feature",
           std::string("vector structures on a volume without the vectors feature; ") +
               (survivors.empty() ? "removing them" : "setting the feature"),
           true);
    if (!survivors.empty()) {
      vec_feature_fix_ = true;
      super_dirty_ = true;
    }
  }
  return Status::Ok();
}

uint64_t Checker::NearestCollection(uint64_t dir) {
  std::vector<uint64_t> path;
  std::unordered_set<uint64_t> seen;
  uint64_t cur = dir, result = 0;
  // Each step visits a new directory, so the walk ends; the memo makes the
  // work over all files proportional to the directories.
  while (true) {
    if (auto m = coll_memo_.find(cur); m != coll_memo_.end()) {
      result = m->second;
      break;
    }
    auto it = inodes_.find(cur);
    if (it == inodes_.end() || it->second.clear || !IsDir(it->second.mode) ||
        !seen.insert(cur).second) {
      break;
    }
    path.push_back(cur);
    if (coll_dirs_.count(cur)) {
      result = cur;
      break;
    }
    const uint64_t p = it->second.parent_dir;
    if (cur == VEXFS_ROOT_INO || it->second.reserved || p == 0 || p == cur) break;
    cur = p;
  }
  for (uint64_t d : path) coll_memo_[d] = result;
  return result;
}

Status Checker::CheckSlots(uint64_t seg, std::vector<std::pair<uint64_t, uint64_t>>& claims) {
  std::sort(claims.begin(), claims.end());
  const vexfs_collection& c = seg_rec_[seg].c;
  const uint32_t ss = Le32(c.vc_slot_size), dim = Le32(c.vc_dim);
  Ino& s = inodes_[seg];
  vexfs_inode raw;
  VEXFS_RETURN_IF_ERROR(r_->ReadInode(seg, &raw));
  ExtentMap m;
  if (!s.rebuild_extents) ReadExtents(*r_, seg, raw, &m);
  FileBytes fb(*r_, s.rebuild_extents ? s.extents : m.extents);
  std::vector<uint8_t> slot(ss);
  for (size_t i = 0; i < claims.size();) {
    const uint64_t k = claims[i].first;
    size_t j = i;
    while (j < claims.size() && claims[j].first == k) j++;
    VEXFS_RETURN_IF_ERROR(fb.Read(k * ss, ss, slot.data()));
    vexfs_vslot h;
    std::memcpy(&h, slot.data(), sizeof(h));
    const uint64_t owner = Le64(h.vs_owner);
    const bool crc_ok = SlotCrc(slot.data(), dim) == Le32(h.vs_crc);
    bool owner_claims = false;
    for (size_t x = i; x < j; x++) owner_claims = owner_claims || claims[x].second == owner;
    for (size_t x = i; x < j; x++) {
      const uint64_t ino = claims[x].second;
      Ino& f = inodes_[ino];
      const std::string who = "inode " + Num(ino) + ": vector slot " + Num(k) + " of collection " +
                              Num(s.parent) + " ";
      std::string code, why;
      if (owner != ino || Le32(h.vs_generation) != f.generation) {
        code = j - i > 1 && owner_claims ? "vec.shared_slot" : "vec.slot_owner";
        why = code == "vec.shared_slot"
                  ? "belongs to inode " + Num(owner)
                  : "names inode " + Num(owner) + " generation " + Num(Le32(h.vs_generation)) +
                        ", the file has generation " + Num(f.generation);
      } else if (!crc_ok) {
        code = "vec.slot_crc";
        why = "fails its checksum";
      }
      if (code.empty()) continue;
      Report(code, who + why + "; the vector is lost", true);
      f.vector = 0;
      f.dirty = true;
    }
    i = j;
  }
  return Status::Ok();
}

Status Checker::CheckVectorFiles() {
  // Segments and index blobs the catalogue does not keep: a directory
  // entry naming one makes it a plain file (a stray flag), otherwise it is
  // freed with its blocks.
  for (auto& [ino, why] : stray_) {
    Ino& t = inodes_[ino];
    if (t.clear || t.vec_hidden) continue;
    const bool keep = t.refs > 0;
    if (!why.first.empty()) {
      Report(why.first, why.second + (keep ? "; named by a directory, kept as a plain file"
                                           : "; freeing it"),
             true);
    }
    if (keep) {
      t.flags &= ~kHiddenFlags;
      t.vector = 0;
      t.dirty = true;
    } else {
      FreeVectorInode(ino);
    }
  }

  // Vectors of files.
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> claims;  // seg -> (slot, ino)
  for (auto& kv : inodes_) {  // not a structured binding: clang 14 cannot capture one
    const uint64_t ino = kv.first;
    auto& in = kv.second;
    if (in.clear || in.vector == 0 || orphans_.count(ino)) continue;
    if (in.vec_hidden && (in.flags & VEXFS_INODE_FL_VSEGMENT)) continue;  // catalogue link
    if (IsDir(in.mode) && live_coll_.count(ino)) continue;              // its segment
    const std::string who = "inode " + Num(ino) + " (" + ModeTypeName(in.mode) + "): ";
    auto clear = [&](const std::string& code, const std::string& why) {
      if (!code.empty()) Report(code, who + why, true);
      in.vector = 0;
      in.dirty = true;
    };
    if (!IsReg(in.mode) || (in.flags & (VEXFS_INODE_FL_EA | kHiddenFlags)) || in.reserved) {
      clear("vec.stray_vector", "i_vector " + Num(in.vector) + " on an inode that cannot have one");
      continue;
    }
    uint64_t coll = 0;
    if (auto p = inodes_.find(in.parent); p != inodes_.end() && !p->second.clear &&
                                          IsDir(p->second.mode)) {
      coll = NearestCollection(in.parent);
    }
    if (auto d = dissolved_.find(coll); d != dissolved_.end()) {
      d->second.lost++;
      clear("", "");
      continue;
    }
    auto lc = live_coll_.find(coll);
    if (lc == live_coll_.end()) {
      clear("vec.no_collection", "has a vector but is in no collection (parent " +
                                     Num(in.parent) + "); the vector is lost");
      continue;
    }
    const uint64_t seg = lc->second;
    const uint64_t slots = inodes_[seg].size / Le32(seg_rec_[seg].c.vc_slot_size);
    if (in.vector - 1 >= slots) {
      clear("vec.bad_slot", "slot " + Num(in.vector - 1) + " is past the " + Num(slots) +
                                " slots of collection " + Num(coll) + "; the vector is lost");
      continue;
    }
    claims[seg].push_back({in.vector - 1, ino});
  }
  for (auto& [seg, c] : claims) VEXFS_RETURN_IF_ERROR(CheckSlots(seg, c));

  for (const auto& [dir, d] : dissolved_) {
    Report(d.code, d.msg + "; turning it back into a plain directory" +
                       (d.lost ? " (" + Num(d.lost) + " vector(s) lost)" : ""),
           true);
  }
  return Status::Ok();
}

}  // namespace vexfs::offline
