#include "core/dir.h"

#include <algorithm>

namespace vexfs::core {
namespace {

vexfs_dir_root* DirRootOf(vexfs_inode* ino) { return reinterpret_cast<vexfs_dir_root*>(ino->i_data); }

bool RecLess(const DirRec& a, const DirRec& b) {
  if (a.hash != b.hash) return a.hash < b.hash;
  return a.name < b.name;
}

}  // namespace

Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::Error(ENOENT, "empty name");
  if (name.size() > VEXFS_NAME_MAX) return Status::Error(ENAMETOOLONG, "name longer than 255 bytes");
  if (name == "." || name == "..") return Status::InvalidArgument("'.' and '..' are reserved");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("name contains '/' or NUL");
  }
  return Status::Ok();
}

Status DirCodec::Decode(const TreeEnv&, const vexfs_tree_node& n, std::vector<Rec>* out) {
  const uint16_t count = Le16(n.tn_count);
  const uint16_t used = Le16(n.tn_used);
  if (used > VEXFS_TREE_NODE_SPACE) return Status::Corruption("directory leaf: bad size");
  size_t off = 0;
  out->reserve(out->size() + count);
  for (uint16_t i = 0; i < count; i++) {
    if (off + VEXFS_DIR_REC_HDR > used) return Status::Corruption("directory leaf: record overflow");
    const uint8_t* p = n.tn_space + off;
    DirRec r;
    uint64_t v;
    std::memcpy(&v, p, 8);
    r.hash = le64toh(v);
    std::memcpy(&v, p + 8, 8);
    r.ino = le64toh(v);
    const uint8_t len = p[16];
    r.type = p[17];
    if (len == 0 || off + VEXFS_DIR_REC_SIZE(len) > used) {
      return Status::Corruption("directory leaf: bad record length");
    }
    r.name.assign(reinterpret_cast<const char*>(p + VEXFS_DIR_REC_HDR), len);
    if (!out->empty() && RecLess(r, out->back()) == false && r.hash == out->back().hash &&
        r.name == out->back().name) {
      return Status::Corruption("directory leaf: duplicate name");
    }
    if (!out->empty() && RecLess(r, out->back())) return Status::Corruption("directory leaf: unsorted");
    off += VEXFS_DIR_REC_SIZE(len);
    out->push_back(std::move(r));
  }
  if (off != used) return Status::Corruption("directory leaf: size mismatch");
  return Status::Ok();
}

void DirCodec::Encode(const Rec* recs, size_t n, vexfs_tree_node* node) {
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t* p = node->tn_space + off;
    uint64_t v = htole64(recs[i].hash);
    std::memcpy(p, &v, 8);
    v = htole64(recs[i].ino);
    std::memcpy(p + 8, &v, 8);
    p[16] = static_cast<uint8_t>(recs[i].name.size());
    p[17] = recs[i].type;
    std::memcpy(p + VEXFS_DIR_REC_HDR, recs[i].name.data(), recs[i].name.size());
    off += VEXFS_DIR_REC_SIZE(recs[i].name.size());
  }
  node->tn_used = ToLe16(static_cast<uint16_t>(off));
}

Directory::Directory(TreeEnv env, vexfs_inode* inode, const uint8_t* hash_seed)
    : env_(std::move(env)), inode_(inode), seed_(hash_seed) {
  env_.magic = VEXFS_DIR_MAGIC;
  vexfs_inode* ino = inode_;
  env_.account = [ino](int64_t d) {
    ino->i_blocks = ToLe64(static_cast<uint64_t>(static_cast<int64_t>(Le64(ino->i_blocks)) + d));
    ino->i_size = ToLe64(static_cast<uint64_t>(static_cast<int64_t>(Le64(ino->i_size)) + d * VEXFS_BLOCK_SIZE));
  };
}

TreeRootMem Directory::LoadRoot() const {
  const vexfs_dir_root* r = DirRootOf(inode_);
  TreeRootMem m;
  m.root = Le64(r->dr_tree.tr_root);
  m.depth = Le16(r->dr_tree.tr_depth);
  m.nodes = Le64(r->dr_tree.tr_nodes);
  return m;
}

void Directory::StoreRoot(const TreeRootMem& m, int64_t entries_delta) {
  vexfs_dir_root* r = DirRootOf(inode_);
  r->dr_tree.tr_root = ToLe64(m.root);
  r->dr_tree.tr_depth = ToLe16(m.depth);
  r->dr_tree.tr_nodes = ToLe64(m.nodes);
  r->dr_entries = ToLe64(static_cast<uint64_t>(static_cast<int64_t>(Le64(r->dr_entries)) + entries_delta));
}

uint64_t Directory::entries() const { return Le64(DirRootOf(inode_)->dr_entries); }

Status Directory::Create(uint64_t goal) {
  std::memset(inode_->i_data, 0, sizeof(inode_->i_data));
  TreeRootMem root;
  Tree<DirCodec> tree(env_, &root);
  VEXFS_RETURN_IF_ERROR(tree.Create(goal));
  StoreRoot(root, 0);
  return Status::Ok();
}

namespace {

// Where `name` (hashing to h) is in leaf `n`: its record's byte offset and
// size, or nullopt. Checks only what it reads (bounds); Decode checks the
// rest when the leaf is rewritten whole.
struct RawRec {
  size_t off = 0, size = 0;
};
Result<std::optional<RawRec>> FindInLeaf(const vexfs_tree_node* n, uint64_t h, std::string_view name) {
  const uint16_t count = Le16(n->tn_count), used = Le16(n->tn_used);
  size_t off = 0;
  for (uint16_t i = 0; i < count; i++) {
    if (off + VEXFS_DIR_REC_HDR > used || used > VEXFS_TREE_NODE_SPACE) {
      return Status::Corruption("directory leaf: record overflow");
    }
    const uint8_t* p = n->tn_space + off;
    uint64_t rh;
    std::memcpy(&rh, p, 8);
    rh = le64toh(rh);
    const uint8_t len = p[16];
    if (len == 0 || off + VEXFS_DIR_REC_SIZE(len) > used) return Status::Corruption("directory leaf: bad record");
    if (rh > h) break;
    if (rh == h && len == name.size() && std::memcmp(p + VEXFS_DIR_REC_HDR, name.data(), len) == 0) {
      return std::optional<RawRec>(RawRec{off, VEXFS_DIR_REC_SIZE(len)});
    }
    off += VEXFS_DIR_REC_SIZE(len);
  }
  return std::optional<RawRec>();
}

}  // namespace

Result<std::optional<DirRec>> Directory::Lookup(std::string_view name) {
  const uint64_t h = Hash(name);
  TreeRootMem root = LoadRoot();
  Tree<DirCodec> tree(env_, &root);
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(h));
  const vexfs_tree_node* n = Node(path.back().buf);
  VEXFS_ASSIGN_OR_RETURN(std::optional<RawRec> at, FindInLeaf(n, h, name));
  if (!at) return std::optional<DirRec>();
  const uint8_t* p = n->tn_space + at->off;
  DirRec r;
  r.hash = h;
  uint64_t ino;
  std::memcpy(&ino, p + 8, 8);
  r.ino = le64toh(ino);
  r.type = p[17];
  r.name = std::string(name);
  return std::optional<DirRec>(std::move(r));
}

Status Directory::Add(std::string_view name, uint64_t ino, uint8_t type) {
  DirRec nr;
  nr.hash = Hash(name);
  nr.ino = ino;
  nr.type = type;
  nr.name = std::string(name);
  TreeRootMem root = LoadRoot();
  Tree<DirCodec> tree(env_, &root);
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(nr.hash));
  std::vector<DirRec> recs;
  VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
  auto it = std::lower_bound(recs.begin(), recs.end(), nr, RecLess);
  if (it != recs.end() && it->hash == nr.hash && it->name == nr.name) {
    return Status::Error(EEXIST, "name exists");
  }
  recs.insert(it, std::move(nr));
  VEXFS_RETURN_IF_ERROR(tree.Rewrite(path, recs));
  StoreRoot(root, +1);
  return Status::Ok();
}

Status Directory::EditRecord(std::string_view name, bool remove, uint64_t ino, uint8_t type) {
  const uint64_t h = Hash(name);
  TreeRootMem root = LoadRoot();
  Tree<DirCodec> tree(env_, &root);
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(h));
  // In place when the leaf keeps a record (unlink, rename): no decoding and
  // re-encoding of the whole leaf. A leaf's last record goes the long way,
  // below.
  Buffer* leaf = path.back().buf;
  VEXFS_ASSIGN_OR_RETURN(std::optional<RawRec> at, FindInLeaf(Node(leaf), h, name));
  if (!at) return Status::NotFound("no such entry");
  if (!remove || Le16(Node(leaf)->tn_count) > 1) {
    env_.cache->MarkDirty(leaf, SealKind::kBlockHeader);
    vexfs_tree_node* n = Node(leaf);
    uint8_t* p = n->tn_space + at->off;
    if (remove) {
      const size_t used = Le16(n->tn_used);
      std::memmove(p, p + at->size, used - at->off - at->size);
      std::memset(n->tn_space + used - at->size, 0, at->size);
      n->tn_used = ToLe16(static_cast<uint16_t>(used - at->size));
      n->tn_count = ToLe16(static_cast<uint16_t>(Le16(n->tn_count) - 1));
    } else {
      const uint64_t v = htole64(ino);
      std::memcpy(p + 8, &v, 8);
      p[17] = type;
    }
    StoreRoot(root, remove ? -1 : 0);
    return Status::Ok();
  }
  // The leaf's only record goes: the leaf is rewritten empty, which may
  // free it. Decoding it first keeps the whole-leaf checks on this path.
  std::vector<DirRec> recs;
  VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
  VEXFS_RETURN_IF_ERROR(tree.Rewrite(path, {}));
  StoreRoot(root, -1);
  return Status::Ok();
}

Status Directory::Replace(std::string_view name, uint64_t ino, uint8_t type) {
  return EditRecord(name, false, ino, type);
}

Status Directory::Remove(std::string_view name) { return EditRecord(name, true, 0, 0); }

Status Directory::ReadFrom(uint64_t cookie, const std::function<bool(const DirRec&)>& fn) {
  TreeRootMem root = LoadRoot();
  Tree<DirCodec> tree(env_, &root);
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(cookie + 1));
  std::vector<DirRec> recs;
  uint64_t leaves = 0;
  for (;;) {
    VEXFS_RETURN_IF_ERROR(tree.CountVisit(&leaves));
    recs.clear();
    VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
    for (const DirRec& r : recs) {
      if (r.hash <= cookie) continue;
      if (!fn(r)) return Status::Ok();
    }
    VEXFS_ASSIGN_OR_RETURN(bool more, tree.Next(path));
    if (!more) return Status::Ok();
  }
}

Status Directory::Destroy() {
  TreeRootMem root = LoadRoot();
  Tree<DirCodec> tree(env_, &root);
  VEXFS_RETURN_IF_ERROR(tree.Destroy());
  std::memset(inode_->i_data, 0, sizeof(inode_->i_data));
  return Status::Ok();
}

}  // namespace vexfs::core
