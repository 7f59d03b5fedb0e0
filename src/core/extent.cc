#include "core/extent.h"

#include <algorithm>

namespace vexfs::core {
namespace {

vexfs_extent_header* Header(vexfs_inode* ino) {
  return reinterpret_cast<vexfs_extent_header*>(ino->i_data);
}
vexfs_tree_root* RootOf(vexfs_inode* ino) {
  return reinterpret_cast<vexfs_tree_root*>(ino->i_data + sizeof(vexfs_extent_header));
}

ExtentRec FromDisk(const vexfs_extent& e) {
  ExtentRec r;
  r.logical = Le32(e.ee_logical);
  const uint32_t l = Le32(e.ee_len);
  r.len = l & VEXFS_EXTENT_LEN_MASK;
  r.unwritten = (l & VEXFS_EXTENT_UNWRITTEN) != 0;
  r.start = Le64(e.ee_start);
  return r;
}

vexfs_extent ToDisk(const ExtentRec& r) {
  vexfs_extent e;
  e.ee_logical = ToLe32(static_cast<uint32_t>(r.logical));
  e.ee_len = ToLe32(r.len | (r.unwritten ? VEXFS_EXTENT_UNWRITTEN : 0));
  e.ee_start = ToLe64(r.start);
  return e;
}

bool Mergeable(const ExtentRec& a, const ExtentRec& b) {
  return a.end() == b.logical && a.start + a.len == b.start && a.unwritten == b.unwritten &&
         uint64_t{a.len} + b.len <= VEXFS_EXTENT_MAX_LEN;
}

// Merges adjacent extents in place.
void Coalesce(std::vector<ExtentRec>& v) {
  if (v.size() < 2) return;
  size_t w = 0;
  for (size_t i = 1; i < v.size(); i++) {
    if (Mergeable(v[w], v[i])) {
      v[w].len += v[i].len;
    } else {
      v[++w] = v[i];
    }
  }
  v.resize(w + 1);
}

// Extents are sorted, do not overlap, end within the largest file, and
// map blocks of the data area [env.data_start, env.data_end): one reaching
// the superblock, a bitmap, the inode table or the journal would send the
// file's writes there and hand those blocks to the allocator when cut.
Status CheckSorted(const TreeEnv& env, const std::vector<ExtentRec>& v) {
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i].len == 0 || v[i].len > VEXFS_EXTENT_MAX_LEN || v[i].start == 0) {
      return Status::Corruption("bad extent length or start");
    }
    if (v[i].end() > VEXFS_MAX_FILE_BLOCKS) return Status::Corruption("extent beyond the maximum file size");
    if (v[i].start < env.data_start || v[i].start >= env.data_end || v[i].len > env.data_end - v[i].start) {
      return Status::Corruption("extent of inode " + std::to_string(env.owner) + " maps blocks " +
                                std::to_string(v[i].start) + "+" + std::to_string(v[i].len) +
                                " outside the data area");
    }
    if (i > 0 && v[i].logical < v[i - 1].end()) return Status::Corruption("overlapping extents");
  }
  return Status::Ok();
}

}  // namespace

Status ExtentCodec::Decode(const TreeEnv& env, const vexfs_tree_node& n, std::vector<Rec>* out) {
  const uint16_t count = Le16(n.tn_count);
  if (count > VEXFS_TREE_NODE_SPACE / sizeof(vexfs_extent) || Le16(n.tn_used) != count * sizeof(vexfs_extent)) {
    return Status::Corruption("extent leaf: bad count");
  }
  const auto* e = reinterpret_cast<const vexfs_extent*>(n.tn_space);
  out->reserve(out->size() + count);
  for (uint16_t i = 0; i < count; i++) out->push_back(FromDisk(e[i]));
  return CheckSorted(env, *out);
}

void ExtentCodec::Encode(const Rec* recs, size_t n, vexfs_tree_node* node) {
  auto* e = reinterpret_cast<vexfs_extent*>(node->tn_space);
  for (size_t i = 0; i < n; i++) e[i] = ToDisk(recs[i]);
  node->tn_used = ToLe16(static_cast<uint16_t>(n * sizeof(vexfs_extent)));
}

ExtentMap::ExtentMap(TreeEnv env, vexfs_inode* inode) : env_(std::move(env)), inode_(inode) {
  env_.magic = VEXFS_EXTENT_MAGIC;
  vexfs_inode* ino = inode_;
  env_.account = [ino](int64_t d) {
    ino->i_blocks = ToLe64(static_cast<uint64_t>(static_cast<int64_t>(Le64(ino->i_blocks)) + d));
  };
}

void ExtentMap::InitEmpty(vexfs_inode* inode) {
  std::memset(inode->i_data, 0, sizeof(inode->i_data));
  vexfs_extent_header* h = Header(inode);
  h->eh_magic = ToLe16(VEXFS_EXTENT_HDR_MAGIC);
  h->eh_entries = 0;
  h->eh_max = ToLe16(VEXFS_EXTENT_INLINE);
  h->eh_depth = 0;
}

bool ExtentMap::inline_mode() const { return Le16(Header(inode_)->eh_depth) == 0; }

std::vector<ExtentRec> ExtentMap::ReadInline() const {
  const vexfs_extent_header* h = Header(inode_);
  const auto* e = reinterpret_cast<const vexfs_extent*>(inode_->i_data + sizeof(*h));
  std::vector<ExtentRec> v;
  const uint16_t n = std::min<uint16_t>(Le16(h->eh_entries), VEXFS_EXTENT_INLINE);
  for (uint16_t i = 0; i < n; i++) v.push_back(FromDisk(e[i]));
  return v;
}

void ExtentMap::WriteInline(const std::vector<ExtentRec>& recs) {
  InitEmpty(inode_);
  vexfs_extent_header* h = Header(inode_);
  auto* e = reinterpret_cast<vexfs_extent*>(inode_->i_data + sizeof(*h));
  for (size_t i = 0; i < recs.size(); i++) e[i] = ToDisk(recs[i]);
  h->eh_entries = ToLe16(static_cast<uint16_t>(recs.size()));
}

TreeRootMem ExtentMap::LoadRoot() const {
  const auto* r = reinterpret_cast<const vexfs_tree_root*>(inode_->i_data + sizeof(vexfs_extent_header));
  TreeRootMem m;
  m.root = Le64(r->tr_root);
  m.depth = Le16(r->tr_depth);
  m.nodes = Le64(r->tr_nodes);
  return m;
}

void ExtentMap::StoreRoot(const TreeRootMem& m) {
  vexfs_tree_root* r = RootOf(inode_);
  r->tr_root = ToLe64(m.root);
  r->tr_depth = ToLe16(m.depth);
  r->tr_nodes = ToLe64(m.nodes);
}

Status ExtentMap::FreeBlocks(uint64_t start, uint64_t len) {
  VEXFS_RETURN_IF_ERROR(env_.blocks->Free(start, len));
  env_.account(-static_cast<int64_t>(len));
  return Status::Ok();
}

Status ExtentMap::StoreAll(std::vector<ExtentRec>& recs) {
  // Only used in inline mode.
  Coalesce(recs);
  if (recs.size() <= VEXFS_EXTENT_INLINE) {
    WriteInline(recs);
    return Status::Ok();
  }
  // Convert to a tree.
  TreeRootMem root;
  Tree<ExtentCodec> tree(env_, &root);
  VEXFS_RETURN_IF_ERROR(tree.Create(recs.front().start));
  vexfs_extent_header* h = Header(inode_);
  std::memset(inode_->i_data + sizeof(*h), 0, sizeof(inode_->i_data) - sizeof(*h));
  h->eh_depth = ToLe16(1);
  h->eh_entries = 0;
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(0));
  VEXFS_RETURN_IF_ERROR(tree.Rewrite(path, recs));
  StoreRoot(root);
  return Status::Ok();
}

static Result<uint64_t> NextLeafKey(Tree<ExtentCodec>& tree, const TreePath& path);

Result<BlockMapping> ExtentMap::Lookup(uint64_t logical) {
  BlockMapping m;
  m.logical = logical;
  std::vector<ExtentRec> recs;
  uint64_t next_start = UINT64_MAX;
  if (inline_mode()) {
    recs = ReadInline();
    VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
  } else {
    TreeRootMem root = LoadRoot();
    Tree<ExtentCodec> tree(env_, &root);
    VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(logical));
    VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
    if (recs.empty() || recs.back().end() <= logical) {
      // The next extent may start in the following leaf.
      VEXFS_ASSIGN_OR_RETURN(next_start, NextLeafKey(tree, path));
    }
  }
  auto it = std::upper_bound(recs.begin(), recs.end(), logical,
                             [](uint64_t l, const ExtentRec& r) { return l < r.logical; });
  if (it != recs.begin()) {
    const ExtentRec& r = *std::prev(it);
    if (logical < r.end()) {
      m.start = r.start + (logical - r.logical);
      m.len = r.end() - logical;
      m.unwritten = r.unwritten;
      return m;
    }
  }
  if (it != recs.end()) next_start = std::min(next_start, it->logical);
  m.start = 0;
  m.len = next_start == UINT64_MAX ? UINT32_MAX : next_start - logical;
  return m;
}

Status ExtentMap::Insert(uint64_t logical, uint64_t start, uint32_t len, bool unwritten) {
  if (len == 0) return Status::Ok();
  if (logical + len > VEXFS_MAX_FILE_BLOCKS) return Status::Error(EFBIG, "file too large");
  ExtentRec nr{logical, start, len, unwritten};
  env_.account(len);
  if (inline_mode()) {
    std::vector<ExtentRec> recs = ReadInline();
    auto it = std::lower_bound(recs.begin(), recs.end(), nr,
                               [](const ExtentRec& a, const ExtentRec& b) { return a.logical < b.logical; });
    recs.insert(it, nr);
    VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
    return StoreAll(recs);
  }
  TreeRootMem root = LoadRoot();
  Tree<ExtentCodec> tree(env_, &root);
  VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(logical));
  std::vector<ExtentRec> recs;
  VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
  auto it = std::lower_bound(recs.begin(), recs.end(), nr,
                             [](const ExtentRec& a, const ExtentRec& b) { return a.logical < b.logical; });
  recs.insert(it, nr);
  VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
  Coalesce(recs);
  VEXFS_RETURN_IF_ERROR(tree.Rewrite(path, recs));
  StoreRoot(root);
  return Status::Ok();
}

// Applies `fn` to the extents of one leaf's worth of records that overlap
// [lo, hi), producing the new record list.
namespace {

// Removes [lo, hi) from recs (up to `budget` overlapping extents).
RangeEdit CutRange(const std::vector<ExtentRec>& recs, uint64_t lo, uint64_t hi, size_t budget) {
  RangeEdit e;
  for (const ExtentRec& r : recs) {
    if (r.end() <= lo || r.logical >= hi || e.touched >= budget) {
      e.out.push_back(r);
      continue;
    }
    e.touched++;
    const uint64_t cut_lo = std::max(lo, r.logical), cut_hi = std::min(hi, r.end());
    if (r.logical < cut_lo) {
      ExtentRec left = r;
      left.len = static_cast<uint32_t>(cut_lo - r.logical);
      e.out.push_back(left);
    }
    e.freed.push_back({r.start + (cut_lo - r.logical), cut_hi - cut_lo});
    if (cut_hi < r.end()) {
      ExtentRec right = r;
      right.logical = cut_hi;
      right.start = r.start + (cut_hi - r.logical);
      right.len = static_cast<uint32_t>(r.end() - cut_hi);
      e.out.push_back(right);
    }
  }
  return e;
}

// Marks [lo, hi) written.
RangeEdit WriteRange(const std::vector<ExtentRec>& recs, uint64_t lo, uint64_t hi) {
  RangeEdit e;
  for (const ExtentRec& r : recs) {
    if (!r.unwritten || r.end() <= lo || r.logical >= hi) {
      e.out.push_back(r);
      continue;
    }
    e.touched++;
    const uint64_t a = std::max(lo, r.logical), b = std::min(hi, r.end());
    if (r.logical < a) {
      ExtentRec left = r;
      left.len = static_cast<uint32_t>(a - r.logical);
      e.out.push_back(left);
    }
    ExtentRec mid = r;
    mid.logical = a;
    mid.start = r.start + (a - r.logical);
    mid.len = static_cast<uint32_t>(b - a);
    mid.unwritten = false;
    e.out.push_back(mid);
    if (b < r.end()) {
      ExtentRec right = r;
      right.logical = b;
      right.start = r.start + (b - r.logical);
      right.len = static_cast<uint32_t>(r.end() - b);
      e.out.push_back(right);
    }
  }
  Coalesce(e.out);
  return e;
}

}  // namespace

// Smallest key of the leaf after `path`, UINT64_MAX when it is the last.
static Result<uint64_t> NextLeafKey(Tree<ExtentCodec>& tree, const TreePath& path) {
  TreePath p2 = path;
  VEXFS_ASSIGN_OR_RETURN(bool more, tree.Next(p2));
  if (!more) return UINT64_MAX;
  std::vector<ExtentRec> nxt;
  VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(p2, &nxt));
  if (!nxt.empty()) return nxt.front().logical;
  // An empty leaf: its index key still bounds it from below.
  return Le64(Index(p2[p2.size() - 2].buf)[p2[p2.size() - 2].idx].ti_key);
}

Status ExtentMap::EditTreeRange(uint64_t logical, uint64_t end, size_t budget, const RangeEditor& edit,
                                bool* done) {
  *done = true;
  TreeRootMem root = LoadRoot();
  Tree<ExtentCodec> tree(env_, &root);
  uint64_t cur = logical;
  for (int guard = 0; guard < 1 << 20; guard++) {
    VEXFS_ASSIGN_OR_RETURN(TreePath path, tree.Descend(cur));
    std::vector<ExtentRec> recs;
    VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(path, &recs));
    // Found before this leaf changes (Rewrite invalidates the path).
    VEXFS_ASSIGN_OR_RETURN(uint64_t next_key, NextLeafKey(tree, path));
    RangeEdit e = edit(recs, budget);
    if (e.touched > 0) {
      for (const Extent& f : e.freed) VEXFS_RETURN_IF_ERROR(FreeBlocks(f.start, f.len));
      VEXFS_RETURN_IF_ERROR(tree.Rewrite(path, e.out));
      budget -= std::min(budget, e.touched);
    }
    // Spent inside this leaf, the budget may have left some of its records
    // untouched, even in the last leaf: only a step that ends with budget
    // to spare is known to be done (at worst one more step finds nothing).
    if (budget == 0) {
      *done = false;
      break;
    }
    if (next_key >= end) break;
    cur = std::max(next_key, cur + 1);
  }
  // A tree left with at most an inline map's worth of extents, all in one
  // leaf under a chain of single children (what emptying leaves of a tree
  // of any depth: it never loses a level), goes back to an inline map and
  // frees its nodes (which a released inode would otherwise leak).
  if (*done) {
    VEXFS_ASSIGN_OR_RETURN(TreePath p, tree.Descend(0));
    bool chain = true;
    for (size_t i = 0; i + 1 < p.size(); i++) chain = chain && Le16(Node(p[i].buf)->tn_count) == 1;
    std::vector<ExtentRec> left;
    if (chain) VEXFS_RETURN_IF_ERROR(tree.DecodeLeaf(p, &left));
    if (chain && left.size() <= VEXFS_EXTENT_INLINE) {
      VEXFS_RETURN_IF_ERROR(tree.Destroy());
      WriteInline(left);
      return Status::Ok();
    }
  }
  StoreRoot(root);
  return Status::Ok();
}

Status ExtentMap::Remove(uint64_t logical, uint64_t end, size_t max_extents, bool* done) {
  *done = true;
  if (end <= logical) return Status::Ok();
  if (inline_mode()) {
    std::vector<ExtentRec> recs = ReadInline();
    VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
    RangeEdit e = CutRange(recs, logical, end, SIZE_MAX);
    for (const Extent& f : e.freed) VEXFS_RETURN_IF_ERROR(FreeBlocks(f.start, f.len));
    // Cutting the middle of an extent can leave four pieces.
    if (e.out.size() > VEXFS_EXTENT_INLINE) return StoreAll(e.out);
    WriteInline(e.out);
    return Status::Ok();
  }
  return EditTreeRange(logical, end, max_extents,
                       [&](const std::vector<ExtentRec>& recs, size_t budget) {
                         return CutRange(recs, logical, end, budget);
                       },
                       done);
}

Status ExtentMap::MarkWritten(uint64_t logical, uint64_t end) {
  if (end <= logical) return Status::Ok();
  if (inline_mode()) {
    std::vector<ExtentRec> recs = ReadInline();
    VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
    RangeEdit e = WriteRange(recs, logical, end);
    if (e.touched == 0) return Status::Ok();
    return StoreAll(e.out);
  }
  bool done = true;
  return EditTreeRange(logical, end, SIZE_MAX,
                       [&](const std::vector<ExtentRec>& recs, size_t) { return WriteRange(recs, logical, end); },
                       &done);
}

Status ExtentMap::ForEach(const std::function<bool(const ExtentRec&)>& fn) {
  if (inline_mode()) {
    std::vector<ExtentRec> recs = ReadInline();
    VEXFS_RETURN_IF_ERROR(CheckSorted(env_, recs));
    for (const auto& r : recs) {
      if (!fn(r)) break;
    }
    return Status::Ok();
  }
  TreeRootMem root = LoadRoot();
  Tree<ExtentCodec> tree(env_, &root);
  return tree.ForEach(fn);
}

Result<size_t> ExtentMap::CountExtents() {
  size_t n = 0;
  VEXFS_RETURN_IF_ERROR(ForEach([&](const ExtentRec&) {
    n++;
    return true;
  }));
  return n;
}

}  // namespace vexfs::core
