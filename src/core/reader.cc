#include "core/reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_set>

#include "vexfs/crc32c.h"

namespace vexfs::offline {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

void Add(std::vector<Issue>* out, std::string code, std::string msg) {
  // A hostile image could produce one issue per record; cap the list so a
  // report stays readable and memory stays bounded.
  constexpr size_t kMaxIssues = 256;
  if (out->size() < kMaxIssues) out->push_back({std::move(code), std::move(msg)});
}

constexpr uint64_t kNoHi = ~0ull;

// Leaf callback: the verified leaf, its block and the key range [lo, hi)
// its parent allows (hi == kNoHi: unbounded).
using LeafFn =
    std::function<void(const vexfs_tree_node&, uint64_t block, uint64_t lo, uint64_t hi)>;

struct TreeWalker {
  VolumeReader& r;
  uint64_t owner;
  uint32_t magic;
  const char* what;  // "extent" / "dir"
  std::vector<uint64_t>* nodes;
  std::vector<Issue>* issues;
  LeafFn leaf;
  std::unordered_set<uint64_t> seen;
  bool damaged = false;

  void Bad(const char* code, const std::string& msg) {
    damaged = true;
    Add(issues, code, "inode " + Num(owner) + ": " + what + " tree: " + msg);
  }

  void Walk(uint64_t block, int level, uint64_t lo, uint64_t hi) {
    if (!r.InDataArea(block, 1)) {
      Bad("tree.node_out_of_range", "node block " + Num(block) + " outside the data area");
      return;
    }
    if (!seen.insert(block).second) {
      Bad("tree.cycle", "node block " + Num(block) + " referenced twice (cycle or shared node)");
      return;
    }
    std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
    if (Status s = r.ReadBlock(block, buf.data()); !s.ok()) {
      Bad("tree.io", "cannot read node " + Num(block) + ": " + s.message());
      return;
    }
    if (Status s = VerifyBlock(buf.data(), magic, block); !s.ok()) {
      Bad("tree.bad_node", s.message());
      return;
    }
    const auto& n = *reinterpret_cast<const vexfs_tree_node*>(buf.data());
    if (Le64(n.tn_hdr.bh_owner) != owner) {
      Bad("tree.bad_owner",
          "node " + Num(block) + " belongs to inode " + Num(Le64(n.tn_hdr.bh_owner)));
      return;
    }
    if (Le16(n.tn_level) != level) {
      Bad("tree.bad_level", "node " + Num(block) + " has level " + Num(Le16(n.tn_level)) +
                                ", expected " + Num(level));
      return;
    }
    nodes->push_back(block);
    if (level == 0) {
      leaf(n, block, lo, hi);
      return;
    }
    const uint32_t count = Le16(n.tn_count);
    if (count == 0 || count > VEXFS_TREE_INDEX_MAX ||
        Le16(n.tn_used) != count * sizeof(vexfs_tree_index)) {
      Bad("tree.bad_count", "internal node " + Num(block) + " has " + Num(count) + " entries in " +
                                Num(Le16(n.tn_used)) + " bytes");
      return;
    }
    // Keep the children whose keys are strictly increasing and inside the
    // parent's range; child 0's key is only a hint.
    struct Child {
      uint64_t key, block;
    };
    std::vector<Child> kids;
    const auto* idx = reinterpret_cast<const vexfs_tree_index*>(n.tn_space);
    for (uint32_t i = 0; i < count; i++) {
      vexfs_tree_index e;
      std::memcpy(&e, &idx[i], sizeof(e));
      const uint64_t key = Le64(e.ti_key), child = Le64(e.ti_child);
      if (i == 0) {
        kids.push_back({lo, child});
        continue;
      }
      const uint64_t prev = kids.back().key;
      if (key <= prev || key < lo || (hi != kNoHi && key >= hi)) {
        Bad("tree.index_order", "node " + Num(block) + " entry " + Num(i) + " key " + Num(key) +
                                    " out of order or range");
        continue;
      }
      kids.push_back({key, child});
    }
    for (size_t i = 0; i < kids.size(); i++) {
      const uint64_t child_hi = i + 1 < kids.size() ? kids[i + 1].key : hi;
      Walk(kids[i].block, level - 1, kids[i].key, child_hi);
    }
  }
};

bool InRange(uint64_t key, uint64_t lo, uint64_t hi) {
  return key >= lo && (hi == kNoHi || key < hi);
}

}  // namespace

// ---- VolumeReader ------------------------------------------------------

Result<std::unique_ptr<VolumeReader>> VolumeReader::Open(BlockDevice* dev) {
  std::unique_ptr<VolumeReader> r(new VolumeReader(dev));
  VEXFS_RETURN_IF_ERROR(r->Reload());
  return r;
}

std::unique_ptr<VolumeReader> VolumeReader::FromSuper(BlockDevice* dev,
                                                      const vexfs_super_block& sb) {
  std::unique_ptr<VolumeReader> r(new VolumeReader(dev));
  r->sb_ = sb;
  r->geo_ = GeometryOf(sb);
  return r;
}

void VolumeReader::SetOverlay(std::map<uint64_t, std::vector<uint8_t>> images) {
  overlay_ = std::move(images);
}

Status VolumeReader::Reload() {
  if (dev_->block_count() < 1)
    return Status::Corruption("device is empty (smaller than one 4 KiB block)");
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  if (auto it = overlay_.find(0); it != overlay_.end()) {
    std::memcpy(buf.data(), it->second.data(), VEXFS_BLOCK_SIZE);
  } else {
    VEXFS_RETURN_IF_ERROR(dev_->Read(0, 1, buf.data()));
  }
  vexfs_super_block sb;
  std::memcpy(&sb, buf.data(), sizeof(sb));
  VEXFS_RETURN_IF_ERROR(ValidateSuper(sb, dev_->block_count(), nullptr));
  sb_ = sb;
  geo_ = GeometryOf(sb);
  return Status::Ok();
}

Status VolumeReader::ReadBlock(uint64_t blocknr, uint8_t* buf) {
  if (blocknr >= geo_.block_count || blocknr >= dev_->block_count()) {
    return Status::Corruption("block " + Num(blocknr) + " beyond the end of the volume");
  }
  if (!overlay_.empty()) {
    if (auto it = overlay_.find(blocknr); it != overlay_.end()) {
      std::memcpy(buf, it->second.data(), VEXFS_BLOCK_SIZE);
      return Status::Ok();
    }
  }
  return dev_->Read(blocknr, 1, buf);
}

Status VolumeReader::ReadInode(uint64_t ino, vexfs_inode* out) {
  if (!ValidIno(ino)) return Status::NotFound("inode " + Num(ino) + " out of range");
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  VEXFS_RETURN_IF_ERROR(ReadBlock(InodeBlock(geo_, ino), buf.data()));
  std::memcpy(out, buf.data() + InodeOffset(ino), sizeof(*out));
  return Status::Ok();
}

// ---- Extents -----------------------------------------------------------

uint64_t ExtentMap::data_blocks() const {
  uint64_t n = 0;
  for (const auto& e : extents) n += e.len;
  return n;
}

void ReadExtents(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, ExtentMap* out) {
  *out = ExtentMap();
  vexfs_extent_header eh;
  std::memcpy(&eh, inode.i_data, sizeof(eh));
  const std::string who = "inode " + Num(ino) + ": ";
  uint64_t prev_end = 0;  // logical block after the last accepted extent
  bool have_prev = false;
  auto accept = [&](const vexfs_extent& raw, uint64_t lo, uint64_t hi) {
    ExtentRec e;
    e.logical = Le32(raw.ee_logical);
    const uint32_t len = Le32(raw.ee_len);
    e.unwritten = (len & VEXFS_EXTENT_UNWRITTEN) != 0;
    e.len = len & VEXFS_EXTENT_LEN_MASK;
    e.start = Le64(raw.ee_start);
    const std::string at = who + "extent at logical " + Num(e.logical) + ": ";
    if (e.len == 0 || e.len > VEXFS_EXTENT_MAX_LEN) {
      Add(&out->issues, "extent.bad_len", at + "bad length " + Num(e.len));
      return;
    }
    if (uint64_t{e.logical} + e.len > VEXFS_MAX_FILE_BLOCKS) {
      Add(&out->issues, "extent.bad_logical", at + "runs past the largest file");
      return;
    }
    if (!r.InDataArea(e.start, e.len)) {
      Add(&out->issues, "extent.out_of_range",
          at + "blocks " + Num(e.start) + "+" + Num(e.len) + " outside the data area");
      return;
    }
    if (!InRange(e.logical, lo, hi)) {
      Add(&out->issues, "extent.key_range", at + "outside its tree node's key range");
      return;
    }
    if (have_prev && e.logical < prev_end) {
      Add(&out->issues, "extent.overlap", at + "overlaps or precedes the previous extent");
      return;
    }
    have_prev = true;
    prev_end = uint64_t{e.logical} + e.len;
    out->extents.push_back(e);
  };

  if (Le16(eh.eh_magic) != VEXFS_EXTENT_HDR_MAGIC) {
    Add(&out->issues, "extent.bad_header", who + "bad extent header magic");
    return;
  }
  const uint16_t depth = Le16(eh.eh_depth);
  if (depth == 0) {
    uint32_t n = Le16(eh.eh_entries);
    if (n > VEXFS_EXTENT_INLINE || Le16(eh.eh_max) != VEXFS_EXTENT_INLINE) {
      Add(&out->issues, "extent.bad_header",
          who + "inline extent header: " + Num(n) + " entries, max " + Num(Le16(eh.eh_max)));
      n = std::min<uint32_t>(n, VEXFS_EXTENT_INLINE);
    }
    for (uint32_t i = 0; i < n; i++) {
      vexfs_extent e;
      std::memcpy(&e, inode.i_data + sizeof(eh) + i * sizeof(e), sizeof(e));
      accept(e, 0, kNoHi);
    }
    return;
  }
  if (depth != 1) {
    Add(&out->issues, "extent.bad_header", who + "bad extent header depth " + Num(depth));
    return;
  }
  out->tree = true;
  vexfs_tree_root root;
  std::memcpy(&root, inode.i_data + sizeof(eh), sizeof(root));
  out->tr_nodes = Le64(root.tr_nodes);
  out->tr_depth = Le16(root.tr_depth);
  if (out->tr_depth >= VEXFS_TREE_MAX_DEPTH) {
    Add(&out->issues, "tree.depth", who + "extent tree depth " + Num(out->tr_depth) + " too large");
    return;
  }
  TreeWalker w{r, ino, VEXFS_EXTENT_MAGIC, "extent", &out->nodes, &out->issues, nullptr, {}};
  w.leaf = [&](const vexfs_tree_node& n, uint64_t block, uint64_t lo, uint64_t hi) {
    uint32_t count = Le16(n.tn_count);
    const uint32_t max = VEXFS_TREE_NODE_SPACE / sizeof(vexfs_extent);
    if (count > max || Le16(n.tn_used) != count * sizeof(vexfs_extent)) {
      Add(&out->issues, "tree.bad_count",
          who + "extent leaf " + Num(block) + " claims " + Num(count) + " records in " +
              Num(Le16(n.tn_used)) + " bytes");
      count = std::min(count, max);
    }
    for (uint32_t i = 0; i < count; i++) {
      vexfs_extent e;
      std::memcpy(&e, n.tn_space + i * sizeof(e), sizeof(e));
      accept(e, lo, hi);
    }
  };
  w.Walk(Le64(root.tr_root), out->tr_depth, 0, kNoHi);
}

// ---- Directories -------------------------------------------------------

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > VEXFS_NAME_MAX || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

void ReadDir(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, DirListing* out) {
  *out = DirListing();
  vexfs_dir_root dr;
  std::memcpy(&dr, inode.i_data, sizeof(dr));
  out->tr_nodes = Le64(dr.dr_tree.tr_nodes);
  out->dr_entries = Le64(dr.dr_entries);
  const std::string who = "directory " + Num(ino) + ": ";
  const uint16_t depth = Le16(dr.dr_tree.tr_depth);
  if (depth >= VEXFS_TREE_MAX_DEPTH) {
    Add(&out->issues, "tree.depth", who + "tree depth " + Num(depth) + " too large");
    out->needs_rebuild = true;
    return;
  }
  const uint8_t* seed = r.super().s_hash_seed;
  bool have_prev = false;
  uint64_t prev_hash = 0, prev_leaf = 0;
  std::string prev_name;
  TreeWalker w{r, ino, VEXFS_DIR_MAGIC, "dir", &out->nodes, &out->issues, nullptr, {}};
  auto bad = [&](const char* code, const std::string& msg) {
    Add(&out->issues, code, who + msg);
    out->needs_rebuild = true;
  };
  w.leaf = [&](const vexfs_tree_node& n, uint64_t block, uint64_t lo, uint64_t hi) {
    const uint32_t count = Le16(n.tn_count);
    uint32_t used = Le16(n.tn_used);
    if (used > VEXFS_TREE_NODE_SPACE) {
      bad("dir.record_overflow",
          "leaf " + Num(block) + " tn_used " + Num(used) + " exceeds the node");
      used = VEXFS_TREE_NODE_SPACE;
    }
    uint32_t off = 0, i = 0;
    for (; i < count; i++) {
      if (off + VEXFS_DIR_REC_HDR > used) {
        bad("dir.record_overflow",
            "leaf " + Num(block) + " record " + Num(i) + " runs past tn_used");
        break;
      }
      const uint8_t* p = n.tn_space + off;
      DirEntry e;
      uint64_t v;
      std::memcpy(&v, p, 8);
      e.hash = Le64(v);
      std::memcpy(&v, p + 8, 8);
      e.ino = Le64(v);
      const uint32_t name_len = p[16];
      e.type = p[17];
      const uint32_t rec = VEXFS_DIR_REC_SIZE(name_len);
      if (name_len == 0 || off + rec > used) {
        bad("dir.record_overflow", "leaf " + Num(block) + " record " + Num(i) + " (name_len " +
                                       Num(name_len) + ") runs past tn_used");
        break;
      }
      e.name.assign(reinterpret_cast<const char*>(p + VEXFS_DIR_REC_HDR), name_len);
      off += rec;
      if (!ValidName(e.name)) {
        bad("dir.bad_name", "leaf " + Num(block) + " has an invalid name");
        continue;
      }
      const uint64_t want = DirHash(seed, e.name);
      if (e.hash != want) {
        bad("dir.bad_hash",
            "entry '" + e.name + "' has hash " + Num(e.hash) + ", expected " + Num(want));
        e.hash = want;  // salvage with the right hash; the rebuild re-sorts
      } else if (!InRange(e.hash, lo, hi)) {
        bad("dir.key_range", "entry '" + e.name + "' outside its leaf's key range");
      } else if (have_prev &&
                 (e.hash < prev_hash || (e.hash == prev_hash && e.name <= prev_name))) {
        bad("dir.order", "entry '" + e.name + "' out of order");
      } else if (have_prev && e.hash == prev_hash && block != prev_leaf) {
        bad("dir.hash_split", "entries with hash " + Num(e.hash) + " span two leaves");
      }
      if (!have_prev || e.hash > prev_hash || (e.hash == prev_hash && e.name > prev_name)) {
        have_prev = true;
        prev_hash = e.hash;
        prev_name = e.name;
        prev_leaf = block;
      }
      out->entries.push_back(std::move(e));
    }
    if (i == count && off != Le16(n.tn_used)) {
      bad("dir.bad_used", "leaf " + Num(block) + " tn_used " + Num(Le16(n.tn_used)) +
                              " but its records use " + Num(off));
    }
  };
  const uint64_t root = Le64(dr.dr_tree.tr_root);
  if (root == 0) {
    bad("dir.no_root", "no root node");
    return;
  }
  w.Walk(root, depth, 0, kNoHi);
  if (w.damaged) out->needs_rebuild = true;
  // Duplicate names (possibly with different hashes before salvage).
  std::vector<size_t> order(out->entries.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return out->entries[a].name < out->entries[b].name; });
  std::vector<bool> drop(out->entries.size(), false);
  for (size_t i = 1; i < order.size(); i++) {
    if (out->entries[order[i]].name == out->entries[order[i - 1]].name) {
      bad("dir.duplicate", "duplicate entry '" + out->entries[order[i]].name + "'");
      drop[std::max(order[i], order[i - 1])] = true;
    }
  }
  if (std::find(drop.begin(), drop.end(), true) != drop.end()) {
    std::vector<DirEntry> kept;
    for (size_t i = 0; i < out->entries.size(); i++) {
      if (!drop[i]) kept.push_back(std::move(out->entries[i]));
    }
    out->entries = std::move(kept);
  }
}

Result<uint64_t> Lookup(VolumeReader& r, uint64_t dir, std::string_view name) {
  vexfs_inode inode;
  VEXFS_RETURN_IF_ERROR(r.ReadInode(dir, &inode));
  if ((Le16(inode.i_mode) & S_IFMT) != S_IFDIR) {
    return Status::Error(ENOTDIR, "inode " + Num(dir) + " is not a directory");
  }
  DirListing l;
  ReadDir(r, dir, inode, &l);
  for (const auto& e : l.entries) {
    if (e.name == name) return e.ino;
  }
  return Status::NotFound(std::string(name) + ": no such entry");
}

Result<uint64_t> ResolvePath(VolumeReader& r, std::string_view path) {
  uint64_t cur = Le64(r.super().s_root_ino);
  size_t pos = 0;
  // Bounded by the path length: every step consumes at least one byte.
  while (pos < path.size()) {
    while (pos < path.size() && path[pos] == '/') pos++;
    if (pos >= path.size()) break;
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(pos, end - pos);
    pos = end;
    if (comp == ".") continue;
    if (comp == "..") {
      vexfs_inode inode;
      VEXFS_RETURN_IF_ERROR(r.ReadInode(cur, &inode));
      cur = Le64(inode.i_parent);
      if (!r.ValidIno(cur)) return Status::Corruption("bad parent pointer");
      continue;
    }
    VEXFS_ASSIGN_OR_RETURN(cur, Lookup(r, cur, comp));
    if (!r.ValidIno(cur)) return Status::Corruption("entry points outside the inode table");
  }
  return cur;
}

// ---- Extended attributes -----------------------------------------------

const char* XattrPrefix(uint8_t index) {
  switch (index) {
    case VEXFS_XATTR_INDEX_USER:
      return "user.";
    case VEXFS_XATTR_INDEX_TRUSTED:
      return "trusted.";
    case VEXFS_XATTR_INDEX_SECURITY:
      return "security.";
    case VEXFS_XATTR_INDEX_SYSTEM:
      return "system.";
    default:
      return "?";
  }
}

namespace {

// Parses packed entries in [area, area + len). `count` < 0: inline area,
// ended by a zero name length or the end. Returns the bytes consumed.
uint32_t ParseXattrArea(const uint8_t* area, uint32_t len, int64_t count, bool in_block,
                        const std::string& who, XattrList* out, bool* ok) {
  uint32_t pos = 0;
  for (int64_t i = 0; count < 0 || i < count; i++) {
    if (pos + sizeof(vexfs_xattr_entry) > len) {
      if (count >= 0) {
        Add(&out->issues, "xattr.overflow", who + "entry " + Num(i) + " runs past the area");
        *ok = false;
      }
      break;
    }
    vexfs_xattr_entry h;
    std::memcpy(&h, area + pos, sizeof(h));
    if (h.xe_name_len == 0) {
      if (count >= 0) {
        Add(&out->issues, "xattr.bad_entry", who + "entry " + Num(i) + " has an empty name");
        *ok = false;
      }
      break;
    }
    XattrEntry e;
    e.index = h.xe_name_index;
    e.flags = h.xe_flags;
    e.value_len = Le32(h.xe_value_len);
    e.in_block = in_block;
    const bool ea = (h.xe_flags & VEXFS_XATTR_FL_EA_INODE) != 0;
    uint64_t need = sizeof(h) + (ea ? 8 : 0) + h.xe_name_len + (ea ? 0 : uint64_t{e.value_len});
    need = (need + 3) & ~uint64_t{3};
    if (need > len - pos) {
      Add(&out->issues, "xattr.overflow", who + "entry " + Num(i) + " runs past the area");
      *ok = false;
      break;
    }
    const uint8_t* p = area + pos + sizeof(h);
    if (ea) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      e.ea_ino = Le64(v);
      p += 8;
    }
    e.name.assign(reinterpret_cast<const char*>(p), h.xe_name_len);
    p += h.xe_name_len;
    if (!ea) e.value.assign(p, p + e.value_len);
    pos += static_cast<uint32_t>(need);
    if (e.index < VEXFS_XATTR_INDEX_USER || e.index > VEXFS_XATTR_INDEX_SYSTEM) {
      Add(&out->issues, "xattr.bad_index",
          who + "entry '" + e.name + "' has name index " + Num(e.index));
      *ok = false;
      continue;
    }
    if ((h.xe_flags & ~VEXFS_XATTR_FL_EA_INODE) != 0 ||
        (ea && e.value_len > VEXFS_XATTR_VALUE_MAX) ||
        (!ea && e.value_len > VEXFS_XATTR_BLOCK_VALUE_MAX)) {
      Add(&out->issues, "xattr.bad_entry", who + "entry '" + e.name + "' has bad flags or size");
      *ok = false;
      continue;
    }
    out->entries.push_back(std::move(e));
  }
  return pos;
}

}  // namespace

void ReadXattrs(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, XattrList* out) {
  *out = XattrList();
  const std::string who = "inode " + Num(ino) + ": xattr: ";
  bool ok = true;
  ParseXattrArea(inode.i_xattr, VEXFS_XATTR_INLINE, -1, false, who, out, &ok);
  out->block = Le64(inode.i_xattr_block);
  if (out->block == 0) return;
  if (!r.InDataArea(out->block, 1)) {
    Add(&out->issues, "xattr.block_out_of_range",
        who + "block " + Num(out->block) + " outside the data area");
    return;
  }
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  if (Status s = r.ReadBlock(out->block, buf.data()); !s.ok()) {
    Add(&out->issues, "xattr.io", who + s.message());
    return;
  }
  if (Status s = VerifyBlock(buf.data(), VEXFS_XATTR_MAGIC, out->block); !s.ok()) {
    Add(&out->issues, "xattr.bad_block", who + s.message());
    return;
  }
  const auto& xb = *reinterpret_cast<const vexfs_xattr_block*>(buf.data());
  if (Le64(xb.xb_hdr.bh_owner) != ino) {
    Add(&out->issues, "xattr.bad_owner",
        who + "block " + Num(out->block) + " belongs to inode " + Num(Le64(xb.xb_hdr.bh_owner)));
    return;
  }
  out->block_ok = true;
  const uint32_t used = Le32(xb.xb_used), count = Le32(xb.xb_count);
  if (used > VEXFS_XATTR_BLOCK_SPACE || count > VEXFS_XATTR_BLOCK_SPACE / 12) {
    Add(&out->issues, "xattr.overflow",
        who + "block claims " + Num(count) + " entries in " + Num(used) + " bytes");
    ParseXattrArea(xb.xb_space, VEXFS_XATTR_BLOCK_SPACE, VEXFS_XATTR_BLOCK_SPACE / 12, true, who,
                   out, &ok);
    return;
  }
  const uint32_t consumed = ParseXattrArea(xb.xb_space, used, count, true, who, out, &ok);
  if (ok && consumed != used) {
    Add(&out->issues, "xattr.bad_used",
        who + "block xb_used " + Num(used) + " but entries use " + Num(consumed));
  }
}

// ---- Vector layer ------------------------------------------------------

const XattrEntry* FindXattr(const XattrList& xl, uint8_t index, std::string_view name) {
  for (const auto& e : xl.entries) {
    if (e.index == index && e.name == name) return &e;
  }
  return nullptr;
}

bool ParseCollection(const std::vector<uint8_t>& value, vexfs_collection* out, std::string* why) {
  if (value.size() != sizeof(vexfs_collection)) {
    *why = "record is " + Num(value.size()) + " bytes, expected " + Num(sizeof(vexfs_collection));
    return false;
  }
  vexfs_collection c;
  std::memcpy(&c, value.data(), sizeof(c));
  const uint32_t dim = Le32(c.vc_dim);
  vexfs_collection z = c;
  z.vc_crc = 0;
  if (Le32(c.vc_magic) != VEXFS_COLLECTION_MAGIC) {
    *why = "bad magic";
  } else if (Le16(c.vc_version) != 1 || Le16(c.vc_size) != sizeof(vexfs_collection)) {
    *why = "version " + Num(Le16(c.vc_version)) + ", size " + Num(Le16(c.vc_size));
  } else if (Crc32c(&z, sizeof(z)) != Le32(c.vc_crc)) {
    *why = "checksum mismatch";
  } else if (dim == 0 || dim > VEXFS_VECTOR_MAX_DIM) {
    *why = "dimension " + Num(dim);
  } else if (c.vc_metric > VEXFS_METRIC_COSINE || c.vc_element_type > VEXFS_ELEM_I8 ||
             c.vc_index_kind > VEXFS_INDEX_LSH) {
    *why = "metric " + Num(c.vc_metric) + ", element type " + Num(c.vc_element_type) +
           ", index kind " + Num(c.vc_index_kind);
  } else if (Le32(c.vc_slot_size) != vexfs_slot_size(dim)) {
    *why = "slot size " + Num(Le32(c.vc_slot_size)) + ", expected " + Num(vexfs_slot_size(dim));
  } else if (Le32(c.vc_index_state) > VEXFS_INDEX_STATE_VALID) {
    *why = "index state " + Num(Le32(c.vc_index_state));
  } else {
    *out = c;
    return true;
  }
  return false;
}

bool CollectionOfSegment(const XattrList& xl, vexfs_collection* out, std::string* why) {
  // VEXFS_COLLECTION_XATTR without its "trusted." prefix.
  const XattrEntry* e = FindXattr(xl, VEXFS_XATTR_INDEX_TRUSTED, "vexfs.collection");
  if (e == nullptr) {
    *why = "no " VEXFS_COLLECTION_XATTR " xattr";
    return false;
  }
  if (e->flags & VEXFS_XATTR_FL_EA_INODE) {
    *why = VEXFS_COLLECTION_XATTR " stored in an EA inode";
    return false;
  }
  return ParseCollection(e->value, out, why);
}

uint32_t SlotCrc(const uint8_t* slot, uint32_t dim) {
  vexfs_vslot h;
  std::memcpy(&h, slot, sizeof(h));
  h.vs_crc = 0;
  const uint32_t crc = Crc32cExtend(~0u, &h, sizeof(h));
  return ~Crc32cExtend(crc, slot + sizeof(h), size_t{dim} * 4);
}

const char* MetricName(uint32_t metric) {
  switch (metric) {
    case VEXFS_METRIC_L2:
      return "l2";
    case VEXFS_METRIC_IP:
      return "ip";
    case VEXFS_METRIC_COSINE:
      return "cosine";
    default:
      return "?";
  }
}

const char* ElementTypeName(uint32_t type) {
  switch (type) {
    case VEXFS_ELEM_F32:
      return "f32";
    case VEXFS_ELEM_F16:
      return "f16";
    case VEXFS_ELEM_I8:
      return "i8";
    default:
      return "?";
  }
}

const char* IndexKindName(uint32_t kind) {
  switch (kind) {
    case VEXFS_INDEX_FLAT:
      return "flat";
    case VEXFS_INDEX_HNSW:
      return "hnsw";
    case VEXFS_INDEX_LSH:
      return "lsh";
    default:
      return "?";
  }
}

std::string DescribeCollection(const vexfs_collection& c) {
  std::string s = "dim " + Num(Le32(c.vc_dim)) + ", metric " + MetricName(c.vc_metric) +
                  ", element " + ElementTypeName(c.vc_element_type) + ", index " +
                  IndexKindName(c.vc_index_kind) + " params ";
  for (int i = 0; i < 4; i++) s += (i ? "/" : "") + Num(Le16(c.vc_param[i]));
  if (Le64(c.vc_index_ino) == 0) return s + ", no index blob";
  return s + ", index blob " + Num(Le64(c.vc_index_ino)) + " (" + Num(Le64(c.vc_index_bytes)) +
         " bytes, " +
         (Le32(c.vc_index_state) == VEXFS_INDEX_STATE_VALID ? "valid" : "stale") + ")";
}

Status FileBytes::Read(uint64_t offset, size_t len, uint8_t* out) {
  while (len > 0) {
    const uint64_t lblk = offset / VEXFS_BLOCK_SIZE;
    const uint32_t in = static_cast<uint32_t>(offset % VEXFS_BLOCK_SIZE);
    const size_t n = std::min<size_t>(len, VEXFS_BLOCK_SIZE - in);
    if (lblk != cached_) {
      // The extent holding lblk: the last one starting at or before it.
      auto it = std::upper_bound(extents_.begin(), extents_.end(), lblk,
                                 [](uint64_t b, const ExtentRec& e) { return b < e.logical; });
      const ExtentRec* e = it == extents_.begin() ? nullptr : &*(it - 1);
      if (e != nullptr && lblk < uint64_t{e->logical} + e->len && !e->unwritten) {
        VEXFS_RETURN_IF_ERROR(r_.ReadBlock(e->start + (lblk - e->logical), buf_.data()));
      } else {
        std::memset(buf_.data(), 0, VEXFS_BLOCK_SIZE);
      }
      cached_ = lblk;
    }
    std::memcpy(out, buf_.data() + in, n);
    out += n;
    offset += n;
    len -= n;
  }
  return Status::Ok();
}

CollectionInfo ReadCollection(VolumeReader& r, uint64_t seg, bool count_live) {
  CollectionInfo ci;
  ci.segment = seg;
  const std::string who = "segment " + Num(seg) + ": ";
  vexfs_inode in;
  if (Status s = r.ReadInode(seg, &in); !s.ok()) {
    Add(&ci.issues, "vec.catalogue_bad_link", who + s.message());
    return ci;
  }
  if (InodeIsZero(in) || !InodeCrcOk(in) || (Le16(in.i_mode) & S_IFMT) != S_IFREG ||
      !(Le32(in.i_flags) & VEXFS_INODE_FL_VSEGMENT)) {
    Add(&ci.issues, "vec.catalogue_bad_link", who + "not a valid segment inode");
    return ci;
  }
  ci.dir = Le64(in.i_parent);
  XattrList xl;
  ReadXattrs(r, seg, in, &xl);
  std::string why;
  ci.config_ok = CollectionOfSegment(xl, &ci.config, &why);
  if (!ci.config_ok) {
    Add(&ci.issues, "vec.bad_collection", who + why);
    return ci;
  }
  const uint32_t ss = Le32(ci.config.vc_slot_size), dim = Le32(ci.config.vc_dim);
  const uint64_t size = Le64(in.i_size);
  ci.slots = size / ss;
  if (!count_live) return ci;
  ExtentMap m;
  ReadExtents(r, seg, in, &m);
  FileBytes fb(r, m.extents);
  std::vector<uint8_t> slot(ss);
  uint64_t next = 0;  // first slot not yet scanned
  Status err;
  // Only slots overlapping mapped data can be live: the scan costs at most
  // the mapped bytes, however large i_size claims to be.
  fb.ForEachMapped(ci.slots * ss, [&](uint64_t first, uint64_t end) {
    for (uint64_t i = std::max(next, first / ss); i * ss < end && err.ok(); i++) {
      next = i + 1;
      if (Status s = fb.Read(i * ss, ss, slot.data()); !s.ok()) {
        err = s;
        break;
      }
      vexfs_vslot h;
      std::memcpy(&h, slot.data(), sizeof(h));
      const uint64_t owner = Le64(h.vs_owner);
      vexfs_inode f;
      if (owner == 0 || !r.ReadInode(owner, &f).ok() || !InodeCrcOk(f)) continue;
      if ((Le16(f.i_mode) & S_IFMT) != S_IFREG || Le64(f.i_vector) != i + 1 ||
          Le32(f.i_generation) != Le32(h.vs_generation)) {
        continue;  // a stale slot (the file moved on or is gone)
      }
      if (SlotCrc(slot.data(), dim) != Le32(h.vs_crc)) {
        Add(&ci.issues, "vec.slot_crc", who + "slot " + Num(i) + " of inode " + Num(owner) +
                                            ": checksum mismatch");
        continue;
      }
      ci.live++;
    }
  });
  if (!err.ok()) Add(&ci.issues, "vec.io", who + err.message());
  return ci;
}

std::vector<CollectionInfo> ListCollections(VolumeReader& r, bool count_live,
                                            std::vector<Issue>* issues) {
  std::vector<CollectionInfo> out;
  std::unordered_set<uint64_t> seen;
  uint64_t seg = Le64(r.super().s_vector_root);
  while (seg != 0) {
    if (!r.ValidIno(seg)) {
      Add(issues, "vec.catalogue_bad_link", "catalogue names inode " + Num(seg));
      break;
    }
    if (!seen.insert(seg).second) {
      Add(issues, "vec.catalogue_loop", "catalogue loops back to inode " + Num(seg));
      break;
    }
    vexfs_inode in;
    if (!r.ReadInode(seg, &in).ok()) break;
    out.push_back(ReadCollection(r, seg, count_live));
    if (InodeIsZero(in) || !InodeCrcOk(in) || (Le16(in.i_mode) & S_IFMT) != S_IFREG ||
        !(Le32(in.i_flags) & VEXFS_INODE_FL_VSEGMENT)) {
      break;  // not a segment: its i_vector means nothing
    }
    seg = Le64(in.i_vector);
  }
  return out;
}

uint64_t FindCollection(VolumeReader& r, uint64_t ino) {
  std::unordered_set<uint64_t> seen;
  vexfs_inode in;
  if (!r.ReadInode(ino, &in).ok() || !InodeCrcOk(in)) return 0;
  if ((Le16(in.i_mode) & S_IFMT) != S_IFDIR) ino = Le64(in.i_parent);
  while (r.ValidIno(ino) && seen.insert(ino).second) {
    if (!r.ReadInode(ino, &in).ok() || !InodeCrcOk(in) || (Le16(in.i_mode) & S_IFMT) != S_IFDIR) {
      return 0;
    }
    if (Le32(in.i_flags) & VEXFS_INODE_FL_COLLECTION) return ino;
    ino = Le64(in.i_parent);
  }
  return 0;
}

// ---- Misc --------------------------------------------------------------

Result<std::string> ReadFileHead(VolumeReader& r, uint64_t ino, const vexfs_inode& inode,
                                 size_t max) {
  const uint64_t size = std::min<uint64_t>(Le64(inode.i_size), max);
  std::string out(size, '\0');
  if (size == 0) return out;
  ExtentMap m;
  ReadExtents(r, ino, inode, &m);
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  const uint64_t nblocks = (size + VEXFS_BLOCK_SIZE - 1) / VEXFS_BLOCK_SIZE;
  for (const auto& e : m.extents) {
    if (e.logical >= nblocks) break;
    if (e.unwritten) continue;
    for (uint64_t i = 0; i < e.len && e.logical + i < nblocks; i++) {
      VEXFS_RETURN_IF_ERROR(r.ReadBlock(e.start + i, buf.data()));
      const uint64_t off = (e.logical + i) * VEXFS_BLOCK_SIZE;
      std::memcpy(out.data() + off, buf.data(), std::min<uint64_t>(VEXFS_BLOCK_SIZE, size - off));
    }
  }
  return out;
}

const char* ModeTypeName(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "reg";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "lnk";
    case S_IFCHR:
      return "chr";
    case S_IFBLK:
      return "blk";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "sock";
    default:
      return "bad";
  }
}

bool ValidModeType(uint32_t mode) { return std::string_view(ModeTypeName(mode)) != "bad"; }

bool InodeIsZero(const vexfs_inode& inode) {
  const auto* p = reinterpret_cast<const uint8_t*>(&inode);
  for (size_t i = 0; i < sizeof(inode); i++) {
    if (p[i]) return false;
  }
  return true;
}

}  // namespace vexfs::offline
