// fsck repair writers. Everything here runs only with CheckOptions::repair,
// after pass 1 has claimed every block that is kept, so AllocBlock() hands
// out blocks nobody references. Writes go straight to the device (offline).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "core/fsck_internal.h"

namespace vexfs::offline {
namespace {

bool IsDir(uint16_t mode) { return (mode & S_IFMT) == S_IFDIR; }

void PutLe64(uint8_t* p, uint64_t v) {
  const __le64 x = ToLe64(v);
  std::memcpy(p, &x, 8);
}

size_t XattrEntrySize(const XattrEntry& e) {
  const bool ea = (e.flags & VEXFS_XATTR_FL_EA_INODE) != 0;
  const size_t n =
      sizeof(vexfs_xattr_entry) + (ea ? 8 : 0) + e.name.size() + (ea ? 0 : e.value.size());
  return (n + 3) & ~size_t{3};
}

void PackXattr(const XattrEntry& e, uint8_t* p) {
  const bool ea = (e.flags & VEXFS_XATTR_FL_EA_INODE) != 0;
  vexfs_xattr_entry h{};
  h.xe_name_index = e.index;
  h.xe_name_len = static_cast<uint8_t>(e.name.size());
  h.xe_flags = e.flags;
  h.xe_value_len = ToLe32(e.value_len);
  std::memcpy(p, &h, sizeof(h));
  p += sizeof(h);
  if (ea) {
    PutLe64(p, e.ea_ino);
    p += 8;
  }
  std::memcpy(p, e.name.data(), e.name.size());
  p += e.name.size();
  if (!ea && !e.value.empty()) std::memcpy(p, e.value.data(), e.value.size());
}

}  // namespace

Status Checker::ReadInodeRaw(uint64_t ino, vexfs_inode* out) { return r_->ReadInode(ino, out); }

Status Checker::WriteInode(uint64_t ino, vexfs_inode inode) {
  if (!InodeIsZero(inode)) SealInode(&inode);
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  const uint64_t blk = InodeBlock(g_, ino);
  VEXFS_RETURN_IF_ERROR(dev_->Read(blk, 1, buf.data()));
  std::memcpy(buf.data() + InodeOffset(ino), &inode, sizeof(inode));
  return dev_->Write(blk, 1, buf.data());
}

Status Checker::ClearInode(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) it->second.clear = true;
  return WriteInode(ino, vexfs_inode{});
}

Result<uint64_t> Checker::AllocBlock() {
  const uint64_t end = g_.block_count - 1;  // the backup superblock
  for (int pass = 0; pass < 2; pass++) {
    for (uint64_t b = alloc_cursor_; b < end; b++) {
      if (!Used(b)) {
        SetUsed(b);
        alloc_cursor_ = b + 1;
        return b;
      }
    }
    alloc_cursor_ = g_.data_start;
  }
  return Status::NoSpace("no free block left for the repair");
}

Result<uint64_t> Checker::AllocInode() {
  for (uint64_t n = VEXFS_FIRST_INO; n <= g_.inode_count; n++) {
    if (inodes_.count(n) || to_clear_.count(n) || orphans_.count(n)) continue;
    vexfs_inode inode;
    VEXFS_RETURN_IF_ERROR(ReadInodeRaw(n, &inode));
    if (InodeIsZero(inode)) return n;
  }
  return Status::NoSpace("no free inode left for the repair");
}

Result<BuiltTree> Checker::BuildTree(uint32_t magic, uint64_t owner,
                                     const std::vector<TreeRec>& recs) {
  // Pack leaves; a run of equal keys is never split across two leaves
  // unless it alone overflows a node.
  std::vector<std::pair<size_t, size_t>> leaves;  // [begin, end) into recs
  size_t begin = 0, bytes = 0;
  for (size_t i = 0; i < recs.size(); i++) {
    const size_t s = recs[i].bytes.size();
    if (i > begin && bytes + s > VEXFS_TREE_NODE_SPACE) {
      size_t cut = i;
      while (cut > begin && recs[cut - 1].key == recs[i].key) cut--;
      if (cut == begin) cut = i;
      leaves.push_back({begin, cut});
      begin = cut;
      bytes = 0;
      for (size_t k = begin; k < i; k++) bytes += recs[k].bytes.size();
    }
    bytes += s;
  }
  leaves.push_back({begin, recs.size()});

  BuiltTree t;
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  std::vector<std::pair<uint64_t, uint64_t>> level;  // (first key, block)
  for (const auto& [b, e] : leaves) {
    VEXFS_ASSIGN_OR_RETURN(uint64_t blk, AllocBlock());
    InitBlockHeader(buf.data(), magic, blk, owner);
    auto& n = *reinterpret_cast<vexfs_tree_node*>(buf.data());
    size_t off = 0;
    for (size_t k = b; k < e; k++) {
      std::memcpy(n.tn_space + off, recs[k].bytes.data(), recs[k].bytes.size());
      off += recs[k].bytes.size();
    }
    n.tn_count = ToLe16(static_cast<uint16_t>(e - b));
    n.tn_used = ToLe16(static_cast<uint16_t>(off));
    SealBlock(buf.data());
    VEXFS_RETURN_IF_ERROR(dev_->Write(blk, 1, buf.data()));
    level.push_back({b < e ? recs[b].key : 0, blk});
    t.blocks.push_back(blk);
  }
  uint16_t depth = 0;
  while (level.size() > 1) {
    depth++;
    std::vector<std::pair<uint64_t, uint64_t>> up;
    for (size_t i = 0; i < level.size(); i += VEXFS_TREE_INDEX_MAX) {
      const size_t n = std::min<size_t>(VEXFS_TREE_INDEX_MAX, level.size() - i);
      VEXFS_ASSIGN_OR_RETURN(uint64_t blk, AllocBlock());
      InitBlockHeader(buf.data(), magic, blk, owner);
      auto& node = *reinterpret_cast<vexfs_tree_node*>(buf.data());
      node.tn_level = ToLe16(depth);
      node.tn_count = ToLe16(static_cast<uint16_t>(n));
      node.tn_used = ToLe16(static_cast<uint16_t>(n * sizeof(vexfs_tree_index)));
      for (size_t k = 0; k < n; k++) {
        vexfs_tree_index ix{ToLe64(level[i + k].first), ToLe64(level[i + k].second)};
        std::memcpy(node.tn_space + k * sizeof(ix), &ix, sizeof(ix));
      }
      SealBlock(buf.data());
      VEXFS_RETURN_IF_ERROR(dev_->Write(blk, 1, buf.data()));
      up.push_back({level[i].first, blk});
      t.blocks.push_back(blk);
    }
    level = std::move(up);
  }
  t.root = level[0].second;
  t.depth = depth;
  t.nodes = t.blocks.size();
  return t;
}

Status Checker::RebuildDir(uint64_t ino, Dir& d, vexfs_inode* inode) {
  Ino& in = inodes_[ino];
  for (uint64_t n : in.nodes) Unclaim(n, 1);
  in.nodes.clear();
  const uint8_t* seed = r_->super().s_hash_seed;
  for (auto& e : d.entries) e.hash = DirHash(seed, e.name);
  std::sort(d.entries.begin(), d.entries.end(), [](const DirEntry& a, const DirEntry& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.name < b.name;
  });
  d.entries.erase(
      std::unique(d.entries.begin(), d.entries.end(),
                  [](const DirEntry& a, const DirEntry& b) { return a.name == b.name; }),
      d.entries.end());
  std::vector<TreeRec> recs;
  recs.reserve(d.entries.size());
  for (const auto& e : d.entries) {
    TreeRec r;
    r.key = e.hash;
    r.bytes.assign(VEXFS_DIR_REC_SIZE(e.name.size()), 0);
    PutLe64(r.bytes.data(), e.hash);
    PutLe64(r.bytes.data() + 8, e.ino);
    r.bytes[16] = static_cast<uint8_t>(e.name.size());
    r.bytes[17] = e.type;
    std::memcpy(r.bytes.data() + VEXFS_DIR_REC_HDR, e.name.data(), e.name.size());
    recs.push_back(std::move(r));
  }
  VEXFS_ASSIGN_OR_RETURN(BuiltTree t, BuildTree(VEXFS_DIR_MAGIC, ino, recs));
  in.nodes = t.blocks;
  vexfs_dir_root dr{};
  dr.dr_tree.tr_root = ToLe64(t.root);
  dr.dr_tree.tr_depth = ToLe16(t.depth);
  dr.dr_tree.tr_nodes = ToLe64(t.nodes);
  dr.dr_entries = ToLe64(d.entries.size());
  std::memset(inode->i_data, 0, sizeof(inode->i_data));
  std::memcpy(inode->i_data, &dr, sizeof(dr));
  d.rebuild = false;
  return Status::Ok();
}

Status Checker::RebuildExtents(uint64_t ino, Ino& in, vexfs_inode* inode) {
  for (uint64_t n : in.nodes) Unclaim(n, 1);
  in.nodes.clear();
  std::memset(inode->i_data, 0, sizeof(inode->i_data));
  vexfs_extent_header eh{};
  eh.eh_magic = ToLe16(VEXFS_EXTENT_HDR_MAGIC);
  eh.eh_max = ToLe16(VEXFS_EXTENT_INLINE);
  auto pack = [](const ExtentRec& e) {
    vexfs_extent x{};
    x.ee_logical = ToLe32(e.logical);
    x.ee_len = ToLe32(e.len | (e.unwritten ? VEXFS_EXTENT_UNWRITTEN : 0));
    x.ee_start = ToLe64(e.start);
    return x;
  };
  if (in.extents.size() <= VEXFS_EXTENT_INLINE) {
    eh.eh_entries = ToLe16(static_cast<uint16_t>(in.extents.size()));
    std::memcpy(inode->i_data, &eh, sizeof(eh));
    for (size_t i = 0; i < in.extents.size(); i++) {
      const vexfs_extent x = pack(in.extents[i]);
      std::memcpy(inode->i_data + sizeof(eh) + i * sizeof(x), &x, sizeof(x));
    }
    in.rebuild_extents = false;
    return Status::Ok();
  }
  std::vector<TreeRec> recs;
  recs.reserve(in.extents.size());
  for (const auto& e : in.extents) {
    const vexfs_extent x = pack(e);
    TreeRec r;
    r.key = e.logical;
    r.bytes.assign(reinterpret_cast<const uint8_t*>(&x),
                   reinterpret_cast<const uint8_t*>(&x) + sizeof(x));
    recs.push_back(std::move(r));
  }
  VEXFS_ASSIGN_OR_RETURN(BuiltTree t, BuildTree(VEXFS_EXTENT_MAGIC, ino, recs));
  in.nodes = t.blocks;
  eh.eh_depth = ToLe16(1);
  std::memcpy(inode->i_data, &eh, sizeof(eh));
  vexfs_tree_root root{};
  root.tr_root = ToLe64(t.root);
  root.tr_depth = ToLe16(t.depth);
  root.tr_nodes = ToLe64(t.nodes);
  std::memcpy(inode->i_data + sizeof(eh), &root, sizeof(root));
  in.rebuild_extents = false;
  return Status::Ok();
}

Status Checker::RewriteXattrs(uint64_t ino, Ino& in, vexfs_inode* inode) {
  XattrList xl;
  ReadXattrs(*r_, ino, *inode, &xl);
  auto keep = [&](const XattrEntry& e) {
    return !((e.flags & VEXFS_XATTR_FL_EA_INODE) && in.drop_ea.count(e.ea_ino));
  };
  // A patched collection record (fsck_vector.cc) keeps its size, so it
  // fits where the old one was.
  if (auto p = xattr_patch_.find(ino); p != xattr_patch_.end()) {
    for (auto& e : xl.entries) {
      if (e.index == VEXFS_XATTR_INDEX_TRUSTED && e.name == "vexfs.collection" &&
          !(e.flags & VEXFS_XATTR_FL_EA_INODE) && e.value.size() == p->second.size()) {
        e.value = p->second;
      }
    }
  }
  uint8_t area[VEXFS_XATTR_INLINE] = {};
  size_t pos = 0;
  for (const auto& e : xl.entries) {
    if (e.in_block || !keep(e)) continue;
    const size_t s = XattrEntrySize(e);
    if (pos + s > sizeof(area)) continue;
    PackXattr(e, area + pos);
    pos += s;
  }
  std::memcpy(inode->i_xattr, area, sizeof(area));
  if (in.xattr_block != 0) {
    std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
    InitBlockHeader(buf.data(), VEXFS_XATTR_MAGIC, in.xattr_block, ino);
    auto& xb = *reinterpret_cast<vexfs_xattr_block*>(buf.data());
    uint32_t used = 0, count = 0;
    for (const auto& e : xl.entries) {
      if (!e.in_block || !keep(e)) continue;
      const size_t s = XattrEntrySize(e);
      if (used + s > VEXFS_XATTR_BLOCK_SPACE) continue;
      PackXattr(e, xb.xb_space + used);
      used += static_cast<uint32_t>(s);
      count++;
    }
    if (count == 0) {
      Unclaim(in.xattr_block, 1);
      in.xattr_block = 0;
    } else {
      xb.xb_count = ToLe32(count);
      xb.xb_used = ToLe32(used);
      SealBlock(buf.data());
      VEXFS_RETURN_IF_ERROR(dev_->Write(in.xattr_block, 1, buf.data()));
    }
  }
  inode->i_xattr_block = ToLe64(in.xattr_block);
  in.rewrite_xattrs = false;
  return Status::Ok();
}

Status Checker::MakeEmptyDir(uint64_t ino, uint64_t parent, uint16_t perm) {
  Ino in;
  in.mode = S_IFDIR | perm;
  in.links = 2;
  in.parent = parent;
  in.size = VEXFS_BLOCK_SIZE;
  in.reachable = ino == VEXFS_ROOT_INO;
  in.parent_dir = ino == VEXFS_ROOT_INO ? ino : 0;
  inodes_[ino] = in;
  Dir d;
  vexfs_inode inode{};
  VEXFS_RETURN_IF_ERROR(RebuildDir(ino, d, &inode));
  Ino& rin = inodes_[ino];
  rin.blocks = rin.ExpectBlocks();
  const uint64_t now = static_cast<uint64_t>(time(nullptr));
  inode.i_mode = ToLe16(rin.mode);
  inode.i_links = ToLe32(2);
  inode.i_size = ToLe64(rin.nodes.size() * VEXFS_BLOCK_SIZE);
  inode.i_blocks = ToLe64(rin.blocks);
  inode.i_atime = inode.i_mtime = inode.i_ctime = inode.i_crtime = ToLe64(now);
  inode.i_parent = ToLe64(parent);
  d.tr_nodes = rin.nodes.size();
  dirs_[ino] = std::move(d);
  return WriteInode(ino, inode);
}

Status Checker::ApplyRepairs() {
  for (uint64_t ino : to_clear_) VEXFS_RETURN_IF_ERROR(ClearInode(ino));
  for (auto& [ino, in] : inodes_) {
    if (in.clear) continue;
    Dir* d = IsDir(in.mode) ? &dirs_[ino] : nullptr;
    const bool need = in.dirty || in.rebuild_extents || in.rewrite_xattrs || (d && d->rebuild) ||
                      in.blocks != in.ExpectBlocks();
    if (!need) continue;
    vexfs_inode inode;
    VEXFS_RETURN_IF_ERROR(ReadInodeRaw(ino, &inode));
    if (in.rewrite_xattrs) VEXFS_RETURN_IF_ERROR(RewriteXattrs(ino, in, &inode));
    if (in.rebuild_extents) VEXFS_RETURN_IF_ERROR(RebuildExtents(ino, in, &inode));
    if (d && d->rebuild) VEXFS_RETURN_IF_ERROR(RebuildDir(ino, *d, &inode));
    inode.i_mode = ToLe16(in.mode);
    inode.i_links = ToLe32(in.links);
    inode.i_flags = ToLe32(in.flags);
    if (!(in.flags & VEXFS_INODE_FL_ORPHAN)) inode.i_orphan_next = 0;
    inode.i_vector = ToLe64(in.vector);
    inode.i_parent = ToLe64(in.parent);
    if (d) {
      in.size = in.nodes.size() * VEXFS_BLOCK_SIZE;
      vexfs_dir_root dr;
      std::memcpy(&dr, inode.i_data, sizeof(dr));
      dr.dr_entries = ToLe64(d->entries.size());
      std::memcpy(inode.i_data, &dr, sizeof(dr));
    }
    inode.i_size = ToLe64(in.size);
    in.blocks = in.ExpectBlocks();
    inode.i_blocks = ToLe64(in.blocks);
    VEXFS_RETURN_IF_ERROR(WriteInode(ino, inode));
  }
  return Status::Ok();
}

}  // namespace vexfs::offline
