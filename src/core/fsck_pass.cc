// fsck passes: orphan list, pass 1 (inodes and the blocks they own),
// pass 2 (directory entries, EA references, reachability, link counts).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "core/fsck_internal.h"

namespace vexfs::offline {
namespace {
std::string Num(uint64_t v) { return std::to_string(v); }
bool IsDir(uint16_t mode) { return (mode & S_IFMT) == S_IFDIR; }
bool IsReg(uint16_t mode) { return (mode & S_IFMT) == S_IFREG; }
bool IsLnk(uint16_t mode) { return (mode & S_IFMT) == S_IFLNK; }
constexpr uint64_t kMaxFileBytes = VEXFS_MAX_FILE_BLOCKS * VEXFS_BLOCK_SIZE;
}  // namespace

bool Checker::ClaimRange(uint64_t start, uint64_t len) {
  // Stops at the first block already claimed and gives back what it took,
  // so the work over all inodes stays O(block_count + extents).
  for (uint64_t i = 0; i < len; i++) {
    if (Used(start + i)) {
      for (uint64_t k = 0; k < i; k++) ClearUsed(start + k);
      return false;
    }
    SetUsed(start + i);
  }
  return true;
}

void Checker::Unclaim(uint64_t start, uint64_t len) {
  for (uint64_t i = 0; i < len; i++) ClearUsed(start + i);
}

void Checker::UnclaimAll(Ino& in) {
  for (const auto& c : in.claims) Unclaim(c.start, c.len);
  for (uint64_t n : in.nodes) Unclaim(n, 1);
  if (in.xattr_block) Unclaim(in.xattr_block, 1);
  in.claims.clear();
  in.nodes.clear();
  in.xattr_block = 0;
  in.data_blocks = 0;
}

Status Checker::ProcessOrphans() {
  std::unordered_set<uint64_t> seen;
  std::vector<uint64_t> list;
  uint64_t ino = orphan_head_;
  // Each step visits a new inode, so the walk ends within inode_count steps.
  while (ino != 0) {
    if (!r_->ValidIno(ino)) {
      Report("orphan.bad_inode", "orphan list points at inode " + Num(ino) + " outside the table",
             true);
      break;
    }
    if (!seen.insert(ino).second) {
      Report("orphan.cycle", "orphan list loops back to inode " + Num(ino), true);
      break;
    }
    vexfs_inode inode;
    VEXFS_RETURN_IF_ERROR(r_->ReadInode(ino, &inode));
    const uint32_t flags = Le32(inode.i_flags);
    if (InodeIsZero(inode) || !InodeCrcOk(inode) || !(flags & VEXFS_INODE_FL_ORPHAN) ||
        ino < VEXFS_FIRST_INO ||
        (Le32(inode.i_links) != 0 && (!IsReg(Le16(inode.i_mode)) || (flags & VEXFS_INODE_FL_EA)))) {
      Report("orphan.bad_inode",
             "orphan list entry " + Num(ino) +
                 " is neither an unlinked inode nor a regular file being truncated, marked as orphan",
             true);
      break;
    }
    // A linked entry is a truncation cut by a crash: pass 1 finishes it.
    if (Le32(inode.i_links) != 0) {
      truncating_.insert(ino);
    } else {
      list.push_back(ino);
    }
    ino = Le64(inode.i_orphan_next);
  }
  rep_.orphans = list.size() + truncating_.size();
  if (!writable_) {
    orphans_.insert(list.begin(), list.end());
    return Status::Ok();
  }
  // Like e2fsck: finish the interrupted deletions now. Their blocks were
  // never claimed, so the bitmap rebuild frees them.
  for (uint64_t o : list) {
    vexfs_inode zero{};
    VEXFS_RETURN_IF_ERROR(WriteInode(o, zero));
  }
  if (!list.empty()) {
    Report("orphan.released", "released " + Num(list.size()) + " orphan inode(s)", true);
  }
  if (orphan_head_ != 0) {
    orphan_head_ = 0;
    super_dirty_ = true;
  }
  return Status::Ok();
}

Status Checker::Pass1() {
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  for (uint64_t b = 0; b < g_.itable_blocks; b++) {
    VEXFS_RETURN_IF_ERROR(r_->ReadBlock(g_.itable_start + b, buf.data()));
    for (uint32_t k = 0; k < VEXFS_INODES_PER_BLOCK; k++) {
      const uint64_t ino = b * VEXFS_INODES_PER_BLOCK + k + 1;
      if (ino > g_.inode_count) break;
      vexfs_inode inode;
      std::memcpy(&inode, buf.data() + k * VEXFS_INODE_SIZE, sizeof(inode));
      VEXFS_RETURN_IF_ERROR(CheckInode(ino, inode));
    }
  }
  auto root = inodes_.find(VEXFS_ROOT_INO);
  if (!root_bad_ && (root == inodes_.end() || !IsDir(root->second.mode))) {
    Report("root.bad", "the root inode is not a directory", true);
    if (root != inodes_.end()) {
      UnclaimAll(root->second);
      root->second.clear = true;
      to_clear_.insert(VEXFS_ROOT_INO);
    }
    root_bad_ = true;
  }
  return Status::Ok();
}

Status Checker::CheckInode(uint64_t ino, const vexfs_inode& inode) {
  const std::string who = "inode " + Num(ino) + ": ";
  if (InodeIsZero(inode)) {
    if (ino == VEXFS_ROOT_INO) {
      Report("root.missing", "the root directory inode is free", true);
      root_bad_ = true;
    }
    return Status::Ok();
  }
  if (!InodeCrcOk(inode)) {
    Report("inode.bad_crc", who + "checksum mismatch", true);
    to_clear_.insert(ino);
    if (ino == VEXFS_ROOT_INO) root_bad_ = true;
    return Status::Ok();
  }
  const uint16_t mode = Le16(inode.i_mode);
  if (!ValidModeType(mode)) {
    Report("inode.bad_mode", who + "bad mode " + Num(mode), true);
    to_clear_.insert(ino);
    if (ino == VEXFS_ROOT_INO) root_bad_ = true;
    return Status::Ok();
  }
  Ino& in = inodes_[ino];
  in.mode = mode;
  in.flags = Le32(inode.i_flags);
  in.links = Le32(inode.i_links);
  in.parent = Le64(inode.i_parent);
  in.size = Le64(inode.i_size);
  in.blocks = Le64(inode.i_blocks);
  in.vector = Le64(inode.i_vector);
  in.generation = Le32(inode.i_generation);
  in.reserved = ino != VEXFS_ROOT_INO && ino < VEXFS_FIRST_INO;

  uint32_t bad_flags = 0;
  if ((in.flags & VEXFS_INODE_FL_EA) && !IsReg(mode)) bad_flags |= VEXFS_INODE_FL_EA;
  if ((in.flags & VEXFS_INODE_FL_INLINE_SYMLINK) && !IsLnk(mode))
    bad_flags |= VEXFS_INODE_FL_INLINE_SYMLINK;
  if (bad_flags) {
    Report("inode.bad_flags", who + "flags " + Num(bad_flags) + " do not fit its type", true);
    in.flags &= ~bad_flags;
    in.dirty = true;
  }

  const bool inline_lnk = IsLnk(mode) && (in.flags & VEXFS_INODE_FL_INLINE_SYMLINK);
  if (IsLnk(mode)) {
    const uint64_t max = inline_lnk ? VEXFS_INODE_DATA - 1 : VEXFS_SYMLINK_MAX;
    if (in.size == 0 || in.size > max) {
      Report("symlink.bad_size", who + "symlink target length " + Num(in.size), true);
      to_clear_.insert(ino);
      in.clear = true;
      return Status::Ok();
    }
  }
  if (IsReg(mode) || (IsLnk(mode) && !inline_lnk)) {
    ExtentMap m;
    ReadExtents(*r_, ino, inode, &m);
    ReportIssues(m.issues, true);
    in.rebuild_extents = !m.issues.empty();
    for (uint64_t n : m.nodes) {
      if (!ClaimRange(n, 1)) {
        Report("block.multiply_claimed",
               who + "extent tree node " + Num(n) + " is also used elsewhere", true);
        in.rebuild_extents = true;
        continue;
      }
      in.nodes.push_back(n);
    }
    if (m.tree && m.tr_nodes != m.nodes.size()) {
      Report("extent.bad_nodes",
             who + "tree root says " + Num(m.tr_nodes) + " nodes, found " + Num(m.nodes.size()),
             true);
      in.rebuild_extents = true;
    }
    if (writable_ && truncating_.count(ino)) {
      // Finish the truncation as the mount would: unmap every block past
      // the end (left unclaimed, the bitmap rebuild frees it).
      const uint64_t keep = (std::min(in.size, kMaxFileBytes) + VEXFS_BLOCK_SIZE - 1) / VEXFS_BLOCK_SIZE;
      uint64_t cut = 0;
      std::vector<ExtentRec> kept;
      for (ExtentRec e : m.extents) {
        if (e.logical >= keep) {
          cut += e.len;
          continue;
        }
        if (e.logical + uint64_t{e.len} > keep) {
          cut += e.logical + uint64_t{e.len} - keep;
          e.len = static_cast<uint32_t>(keep - e.logical);
        }
        kept.push_back(e);
      }
      if (cut > 0) {
        m.extents = std::move(kept);
        in.rebuild_extents = true;
      }
      in.flags &= ~VEXFS_INODE_FL_ORPHAN;
      in.dirty = true;
      Report("orphan.truncated",
             who + "finished an interrupted truncation to " + Num(in.size) + " bytes (" + Num(cut) +
                 " block(s) unmapped)",
             true);
    }
    for (const auto& e : m.extents) {
      if (!ClaimRange(e.start, e.len)) {
        Report("block.multiply_claimed",
               who + "blocks " + Num(e.start) + "+" + Num(e.len) +
                   " are also used elsewhere; dropping the extent",
               true);
        in.rebuild_extents = true;
        continue;
      }
      in.claims.push_back({e.start, e.len});
      in.data_blocks += e.len;
      in.extents.push_back(e);
    }
    if (!in.rebuild_extents) in.extents.clear();  // only kept for a rebuild
    if (in.size > kMaxFileBytes) {
      // The mount refuses such an inode (EUCLEAN); nothing past the last
      // written extent was ever data.
      uint64_t end = 0;
      for (const auto& e : m.extents) {
        if (!e.unwritten) end = std::max<uint64_t>(end, e.logical + e.len);
      }
      Report("inode.bad_size",
             who + "size " + Num(in.size) + " beyond the largest file (" + Num(kMaxFileBytes) +
                 "); cut to " + Num(end * VEXFS_BLOCK_SIZE),
             true);
      in.size = end * VEXFS_BLOCK_SIZE;
      in.dirty = true;
    }
  } else if (IsDir(mode)) {
    DirListing l;
    ReadDir(*r_, ino, inode, &l);
    ReportIssues(l.issues, true);
    Dir& d = dirs_[ino];
    d.rebuild = l.needs_rebuild;
    d.tr_nodes = l.tr_nodes;
    d.dr_entries = l.dr_entries;
    d.entries = std::move(l.entries);
    for (uint64_t n : l.nodes) {
      if (!ClaimRange(n, 1)) {
        Report("block.multiply_claimed",
               who + "directory node " + Num(n) + " is also used elsewhere", true);
        d.rebuild = true;
        continue;
      }
      in.nodes.push_back(n);
    }
    if (l.tr_nodes != l.nodes.size()) {
      Report("dir.bad_nodes",
             who + "tree root says " + Num(l.tr_nodes) + " nodes, found " + Num(l.nodes.size()),
             true);
      d.rebuild = true;
    }
    if (!d.rebuild && in.size != uint64_t{in.nodes.size()} * VEXFS_BLOCK_SIZE) {
      Report("dir.bad_size",
             who + "directory size " + Num(in.size) + ", expected " +
                 Num(in.nodes.size() * VEXFS_BLOCK_SIZE),
             true);
      in.size = in.nodes.size() * VEXFS_BLOCK_SIZE;
      in.dirty = true;
    }
  }

  XattrList xl;
  ReadXattrs(*r_, ino, inode, &xl);
  ReportIssues(xl.issues, true);
  in.rewrite_xattrs = !xl.issues.empty();
  if (xl.block_ok) {
    if (ClaimRange(xl.block, 1)) {
      in.xattr_block = xl.block;
    } else {
      Report("block.multiply_claimed",
             who + "xattr block " + Num(xl.block) + " is also used elsewhere", true);
      in.rewrite_xattrs = true;
    }
  }
  for (const auto& e : xl.entries) {
    if ((e.flags & VEXFS_XATTR_FL_EA_INODE) && (!e.in_block || in.xattr_block)) {
      ea_users_[e.ea_ino].push_back({ino, e.value_len});
    }
  }
  NoteVectorInode(ino, in, xl);

  const bool rebuilding =
      in.rebuild_extents || in.rewrite_xattrs || (IsDir(mode) && dirs_[ino].rebuild);
  if (!rebuilding && in.blocks != in.ExpectBlocks()) {
    Report("inode.bad_blocks",
           who + "i_blocks " + Num(in.blocks) + ", owns " + Num(in.ExpectBlocks()), true);
    in.dirty = true;
  }
  return Status::Ok();
}

Status Checker::EnsureLostFound(uint64_t* lf) {
  // /lost+found, or when that name is taken by something else (a damaged
  // or replaced inode, left for the other checks) /lost+found.1 .. .9: a
  // volume whose lost+found is broken can still take its strays.
  Dir& root = dirs_[VEXFS_ROOT_INO];
  std::string name;
  for (int k = 0; k < 10 && name.empty(); k++) {
    const std::string want = k == 0 ? "lost+found" : "lost+found." + Num(k);
    bool taken = false;
    for (const auto& e : root.entries) {
      if (e.name != want) continue;
      auto it = inodes_.find(e.ino);
      if (it != inodes_.end() && !it->second.clear && IsDir(it->second.mode)) {
        *lf = e.ino;
        return Status::Ok();
      }
      taken = true;
      break;
    }
    if (!taken) name = want;
  }
  if (name.empty()) {
    return Status::Error(EEXIST, "/lost+found and /lost+found.1-9 exist but none is a usable directory");
  }
  VEXFS_ASSIGN_OR_RETURN(uint64_t ino, AllocInode());
  VEXFS_RETURN_IF_ERROR(MakeEmptyDir(ino, VEXFS_ROOT_INO, 0700));
  Report("lost+found.created", "created /" + name + " as inode " + Num(ino), true);
  DirEntry e;
  e.name = name;
  e.ino = ino;
  e.type = VEXFS_FT_DIR;
  e.hash = DirHash(r_->super().s_hash_seed, e.name);
  root.entries.push_back(e);
  root.rebuild = true;
  inodes_[ino].parent_dir = VEXFS_ROOT_INO;
  inodes_[ino].reachable = true;
  *lf = ino;
  return Status::Ok();
}

Status Checker::Pass2() {
  const uint8_t* seed = r_->super().s_hash_seed;
  if (root_bad_) {
    if (!writable_) {
      // Nothing is reachable without a root; connectivity is not checked.
      return Status::Ok();
    }
    VEXFS_RETURN_IF_ERROR(MakeEmptyDir(VEXFS_ROOT_INO, VEXFS_ROOT_INO, 0755));
    to_clear_.erase(VEXFS_ROOT_INO);
    Report("root.recreated", "recreated an empty root directory", true);
  }

  // EA inode references: each EA inode must be named by exactly one entry.
  std::unordered_map<uint64_t, std::vector<uint64_t>> ea_of_owner;  // references counted
  for (auto& [ea, users] : ea_users_) {
    auto it = inodes_.find(ea);
    const bool valid = it != inodes_.end() && !it->second.clear && IsReg(it->second.mode) &&
                       (it->second.flags & VEXFS_INODE_FL_EA) && ea >= VEXFS_FIRST_INO;
    for (const auto& [owner, len] : users) {
      Ino& o = inodes_[owner];
      if (o.clear) continue;  // its xattrs go with it (the root cleared in pass 1)
      if (!valid || it->second.ea_refs > 0) {
        Report("xattr.bad_ea_ref",
               "inode " + Num(owner) + ": xattr value inode " + Num(ea) +
                   (valid ? " is shared" : " is not an EA inode"),
               true);
        o.drop_ea.insert(ea);
        o.rewrite_xattrs = true;
        continue;
      }
      Ino& t = it->second;
      t.ea_refs++;
      t.reachable = true;
      ea_of_owner[owner].push_back(ea);
      if (t.size != len) {
        Report("ea.bad_size",
               "EA inode " + Num(ea) + " size " + Num(t.size) + ", xattr says " + Num(len), true);
        t.size = len;
        t.dirty = true;
      }
      if (t.links != 1) {
        Report("inode.bad_links",
               "EA inode " + Num(ea) + " has " + Num(t.links) + " links, expected 1", true);
        t.links = 1;
        t.dirty = true;
      }
    }
  }
  // An unreferenced EA inode is cleared, and with it the references its
  // own xattrs made (a hostile image's EA inode may carry some), which may
  // leave further EA inodes unreferenced.
  std::vector<uint64_t> unreferenced;
  for (auto& [ino, in] : inodes_) {
    if (in.clear || !(in.flags & VEXFS_INODE_FL_EA) || in.ea_refs > 0 || orphans_.count(ino))
      continue;
    unreferenced.push_back(ino);
  }
  while (!unreferenced.empty()) {
    const uint64_t ino = unreferenced.back();
    unreferenced.pop_back();
    Ino& in = inodes_[ino];
    if (in.clear) continue;
    Report("ea.unreferenced", "EA inode " + Num(ino) + " is not referenced by any xattr", true);
    UnclaimAll(in);
    in.clear = true;
    to_clear_.insert(ino);
    for (uint64_t ea : ea_of_owner[ino]) {
      Ino& t = inodes_[ea];
      if (t.ea_refs > 0 && --t.ea_refs == 0 && !t.clear && !orphans_.count(ea)) {
        unreferenced.push_back(ea);
      }
    }
  }

  // The vector catalogue, segments and index blobs (fsck_vector.cc): decides
  // which hidden inodes stay before directory entries are judged.
  VEXFS_RETURN_IF_ERROR(CheckCatalogue());

  // Directory entries.
  for (auto& [dino, d] : dirs_) {
    Ino& dir = inodes_[dino];
    if (dir.clear) continue;
    std::vector<DirEntry> kept;
    const std::string who = "directory " + Num(dino) + ": entry '";
    for (auto& e : d.entries) {
      auto it = inodes_.find(e.ino);
      std::string why;
      if (!r_->ValidIno(e.ino) || e.ino == VEXFS_ROOT_INO || e.ino < VEXFS_FIRST_INO) {
        why = "dir.bad_entry";
      } else if (it == inodes_.end() || it->second.clear) {
        why = "dir.entry_to_free_inode";
      } else if (it->second.flags & VEXFS_INODE_FL_EA) {
        why = "dir.entry_to_ea_inode";
      } else if (orphans_.count(e.ino)) {
        why = "dir.entry_to_orphan";
      } else if (it->second.vec_hidden) {
        why = "dir.entry_to_vector_inode";
      } else if (IsDir(it->second.mode) && it->second.parent_dir != 0) {
        why = "dir.hardlink";
      }
      if (!why.empty()) {
        Report(why, who + e.name + "' -> inode " + Num(e.ino) + " dropped", true);
        d.rebuild = true;
        continue;
      }
      Ino& t = it->second;
      const uint8_t ft = FileTypeOfMode(t.mode);
      if (e.type != ft) {
        Report("dir.bad_type", who + e.name + "' has type " + Num(e.type) + ", inode is " + Num(ft),
               true);
        e.type = ft;
        d.rebuild = true;
      }
      if (IsDir(t.mode)) {
        t.parent_dir = dino;
      } else {
        t.refs++;
      }
      kept.push_back(std::move(e));
    }
    d.entries = std::move(kept);
  }

  // Vectors of files; stray segments and index blobs (fsck_vector.cc).
  VEXFS_RETURN_IF_ERROR(CheckVectorFiles());

  // Reachability from the root.
  auto mark = [&](uint64_t start) {
    std::deque<uint64_t> q{start};
    inodes_[start].reachable = true;
    while (!q.empty()) {
      const uint64_t d = q.front();
      q.pop_front();
      auto dit = dirs_.find(d);
      if (dit == dirs_.end()) continue;
      for (const auto& e : dit->second.entries) {
        Ino& t = inodes_[e.ino];
        if (t.reachable) continue;
        t.reachable = true;  // each inode enters the queue once
        if (IsDir(t.mode)) q.push_back(e.ino);
      }
    }
  };
  mark(VEXFS_ROOT_INO);
  inodes_[VEXFS_ROOT_INO].parent_dir = VEXFS_ROOT_INO;
  // Reserved directories (e.g. a vector-layer catalogue in inode 2) are
  // roots of their own: what they name is reachable.
  for (auto& [ino, in] : inodes_) {
    if (in.reserved && !in.clear && IsDir(in.mode) && !in.reachable) mark(ino);
  }

  uint64_t lf = 0;
  bool lf_failed = false;
  std::unordered_set<std::string> lf_names;
  auto reconnect = [&](uint64_t ino, Ino& in) -> Status {
    const std::string msg =
        "inode " + Num(ino) + " (" + ModeTypeName(in.mode) + ") is not reachable";
    if (writable_ && lf == 0 && !lf_failed) {
      Status s = EnsureLostFound(&lf);
      if (!s.ok() && s.err() != EEXIST && s.err() != ENOSPC) return s;
      lf_failed = !s.ok();
      if (lf_failed) {
        Report("lost+found.unusable", s.message(), false);
      } else {
        for (const auto& x : dirs_[lf].entries) lf_names.insert(x.name);
      }
    }
    if (!writable_ || lf_failed) {
      Report("inode.unreachable", msg, lf_failed ? false : true);
      mark(ino);  // avoid cascading reports
      // Its link count stays: counting its (zero) entries would make the
      // next run free it as unlinked.
      in.keep_links = true;
      return Status::Ok();
    }
    Report("inode.unreachable", msg + "; reconnecting to /lost+found", true);
    DirEntry e;
    Dir& l = dirs_[lf];
    e.name = "#" + Num(ino);
    for (int k = 1; k < 1000 && lf_names.count(e.name); k++) {  // keep names unique
      e.name = "#" + Num(ino) + "." + Num(k);
    }
    lf_names.insert(e.name);
    e.ino = ino;
    e.type = FileTypeOfMode(in.mode);
    e.hash = DirHash(seed, e.name);
    l.entries.push_back(e);
    l.rebuild = true;
    if (IsDir(in.mode)) {
      in.parent_dir = lf;
    } else {
      in.refs++;
    }
    mark(ino);
    return Status::Ok();
  };

  // Unreachable directories: climb to the top of the detached subtree (or
  // into its cycle) and reconnect that one.
  for (auto& [ino, in] : inodes_) {
    if (in.clear || in.reachable || in.reserved || !IsDir(in.mode) || orphans_.count(ino)) continue;
    std::unordered_set<uint64_t> seen{ino};
    uint64_t top = ino;
    while (true) {
      const uint64_t p = inodes_[top].parent_dir;
      if (p == 0 || !seen.insert(p).second) break;
      top = p;
    }
    Ino& t = inodes_[top];
    if (t.parent_dir != 0) {
      Dir& pd = dirs_[t.parent_dir];
      std::erase_if(pd.entries, [&](const DirEntry& e) { return e.ino == top; });
      pd.rebuild = true;
      t.parent_dir = 0;
    }
    VEXFS_RETURN_IF_ERROR(reconnect(top, t));
  }
  for (auto& [ino, in] : inodes_) {
    if (in.clear || in.reachable || in.reserved || IsDir(in.mode) || (in.flags & VEXFS_INODE_FL_EA))
      continue;
    if (orphans_.count(ino)) continue;  // legitimately unreachable
    if (in.refs == 0 && in.links == 0) {
      const char* code =
          (in.flags & VEXFS_INODE_FL_ORPHAN) ? "orphan.not_listed" : "inode.unlinked";
      Report(code, "inode " + Num(ino) + " has no links and is not on the orphan list; freeing it",
             true);
      UnclaimAll(in);
      in.clear = true;
      to_clear_.insert(ino);
      FreeEaInodesOf(ino);
      continue;
    }
    VEXFS_RETURN_IF_ERROR(reconnect(ino, in));
  }

  // Parents, subdirectory counts, link counts, entry counts.
  for (auto& [dino, d] : dirs_) {
    if (inodes_[dino].clear) continue;
    for (const auto& e : d.entries) {
      if (IsDir(inodes_[e.ino].mode)) inodes_[dino].subdirs++;
    }
  }
  for (auto& [ino, in] : inodes_) {
    if (in.clear || in.reserved || orphans_.count(ino)) continue;
    const std::string who = "inode " + Num(ino) + ": ";
    uint32_t want;
    if (IsDir(in.mode)) {
      want = 2 + in.subdirs;
      if (in.parent_dir != 0 && in.parent != in.parent_dir) {
        Report("dir.bad_parent",
               who + "parent " + Num(in.parent) + ", expected " + Num(in.parent_dir), true);
        in.parent = in.parent_dir;
        in.dirty = true;
      }
      Dir& d = dirs_[ino];
      if (!d.rebuild && d.dr_entries != d.entries.size()) {
        Report("dir.bad_entries",
               who + "entry count " + Num(d.dr_entries) + ", found " + Num(d.entries.size()), true);
        in.dirty = true;
      }
    } else if (in.flags & VEXFS_INODE_FL_EA) {
      continue;  // checked with its xattr
    } else if (in.vec_hidden) {
      continue;  // checked with the catalogue
    } else if (orphans_.count(ino)) {
      want = 0;
    } else if (in.keep_links) {
      continue;
    } else {
      want = in.refs;
    }
    if (in.links != want) {
      Report("inode.bad_links", who + "link count " + Num(in.links) + ", expected " + Num(want),
             true);
      in.links = want;
      in.dirty = true;
    }
    if ((in.flags & VEXFS_INODE_FL_ORPHAN) && !orphans_.count(ino) && !truncating_.count(ino) &&
        want > 0) {
      Report("inode.bad_flags", who + "marked orphan but linked", true);
      in.flags &= ~VEXFS_INODE_FL_ORPHAN;
      in.dirty = true;
    }
  }
  return Status::Ok();
}

}  // namespace vexfs::offline
