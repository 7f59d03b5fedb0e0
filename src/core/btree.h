// Tree<Codec>: the B+tree of 4 KiB nodes behind extent maps and
// directories (see "Trees" in the format header).
//
// A leaf is modified by decoding it into a vector of records, changing the
// vector and handing it back to Rewrite(), which re-encodes it, splitting
// the leaf (and its ancestors) when it overflows and unlinking it when it
// becomes empty. Internal-node handling is shared by every tree type.
//
// Codec requirements:
//   using Rec;
//   static uint64_t Key(const Rec&);
//   static size_t Size(const Rec&);                 // encoded bytes
//   static Status Decode(const TreeEnv&, const vexfs_tree_node&, std::vector<Rec>*);
//                                                   // appends; checks what the records
//                                                   // point at against env's block range
//   static void Encode(const Rec* recs, size_t n, vexfs_tree_node*);
//   static constexpr bool kUniqueKeys;              // false: equal keys allowed
//
// Thread safety: none (the filesystem lock). All calls inside a
// BufferCache operation. A Path is invalidated by Rewrite().
#ifndef VEXFS_CORE_BTREE_H_
#define VEXFS_CORE_BTREE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/alloc.h"
#include "core/cache.h"
#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"

namespace vexfs::core {

struct TreeRootMem {
  uint64_t root = 0;
  uint16_t depth = 0;
  uint64_t nodes = 0;
};

// What a tree needs from its owner.
struct TreeEnv {
  BufferCache* cache = nullptr;
  BitmapAllocator* blocks = nullptr;
  uint64_t owner = 0;  // inode number
  uint32_t magic = 0;
  uint64_t data_start = 0, data_end = 0;  // valid node block range
  // Called with +1/-1 for every node block allocated/freed (i_blocks).
  std::function<void(int64_t)> account;
};

struct PathElem {
  Buffer* buf;
  uint16_t idx;  // child taken (internal nodes)
};
using TreePath = std::vector<PathElem>;

inline vexfs_tree_node* Node(Buffer* b) { return reinterpret_cast<vexfs_tree_node*>(b->data); }
inline vexfs_tree_index* Index(Buffer* b) {
  return reinterpret_cast<vexfs_tree_index*>(Node(b)->tn_space);
}

template <class Codec>
class Tree {
 public:
  using Rec = typename Codec::Rec;

  Tree(const TreeEnv& env, TreeRootMem* root) : env_(env), root_(root) {}

  // Creates an empty tree (a single empty leaf).
  Status Create(uint64_t goal) {
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, NewNode(goal, 0));
    root_->root = b->blocknr;
    root_->depth = 0;
    root_->nodes = 1;
    return Status::Ok();
  }

  // Path from the root to the leaf that holds (or would hold) `key`.
  Result<TreePath> Descend(uint64_t key) {
    TreePath path;
    if (root_->depth > VEXFS_TREE_MAX_DEPTH) return Status::Corruption("tree too deep");
    uint64_t blk = root_->root;
    for (int level = root_->depth; level >= 0; level--) {
      VEXFS_ASSIGN_OR_RETURN(Buffer * b, Load(blk, static_cast<uint16_t>(level)));
      if (level == 0) {
        path.push_back({b, 0});
        break;
      }
      const uint16_t n = Le16(Node(b)->tn_count);
      const vexfs_tree_index* ix = Index(b);
      // Last entry with key <= `key`; entry 0 catches everything below.
      uint16_t lo = 1, hi = n;
      while (lo < hi) {
        uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
        if (Le64(ix[mid].ti_key) <= key) lo = static_cast<uint16_t>(mid + 1);
        else hi = mid;
      }
      const uint16_t idx = static_cast<uint16_t>(lo - 1);
      path.push_back({b, idx});
      blk = Le64(ix[idx].ti_child);
    }
    return path;
  }

  // Counts one more node visited by a walk. A real tree has at most one
  // node per block of the data area; a walk visiting more has met a node
  // shared by several parents (a hostile image), which would make it run
  // for up to 253^8 steps: EUCLEAN.
  Status CountVisit(uint64_t* visited) const {
    if (++*visited > env_.data_end - env_.data_start) {
      return Status::Corruption("tree of inode " + std::to_string(env_.owner) +
                                " reaches more nodes than the volume has blocks (a shared node)");
    }
    return Status::Ok();
  }

  // Advances `path` to the next leaf. Returns false at the end. (Callers
  // looping over leaves bound the loop with CountVisit.)
  Result<bool> Next(TreePath& path) {
    for (int pos = static_cast<int>(path.size()) - 2; pos >= 0; pos--) {
      Buffer* b = path[pos].buf;
      if (path[pos].idx + 1 < Le16(Node(b)->tn_count)) {
        path[pos].idx++;
        path.resize(pos + 1);
        uint64_t blk = Le64(Index(b)[path[pos].idx].ti_child);
        for (int level = root_->depth - pos - 1; level >= 0; level--) {
          VEXFS_ASSIGN_OR_RETURN(Buffer * c, Load(blk, static_cast<uint16_t>(level)));
          path.push_back({c, 0});
          if (level > 0) blk = Le64(Index(c)[0].ti_child);
        }
        return true;
      }
    }
    return false;
  }

  Status DecodeLeaf(const TreePath& path, std::vector<Rec>* recs) {
    return Codec::Decode(env_, *Node(path.back().buf), recs);
  }

  // Replaces the leaf at the end of `path` with `recs` (sorted by key).
  Status Rewrite(TreePath& path, const std::vector<Rec>& recs) {
    Buffer* leaf = path.back().buf;
    size_t total = 0;
    for (const Rec& r : recs) total += Codec::Size(r);
    if (total <= VEXFS_TREE_NODE_SPACE) {
      if (recs.empty() && path.size() > 1 && !OnlyChildChain(path)) {
        return RemoveLeaf(path);
      }
      env_.cache->MarkDirty(leaf, SealKind::kBlockHeader);
      EncodeLeaf(leaf, recs.data(), recs.size());
      return Status::Ok();
    }
    // Split into chunks of roughly equal size, never between equal keys.
    const size_t nchunks = (total + VEXFS_TREE_NODE_SPACE - 1) / VEXFS_TREE_NODE_SPACE;
    const size_t target = total / nchunks;
    std::vector<size_t> cuts;  // chunk start indexes after the first
    size_t acc = 0, chunk_start = 0;
    for (size_t i = 0; i < recs.size(); i++) {
      const size_t sz = Codec::Size(recs[i]);
      bool must_cut = acc + sz > VEXFS_TREE_NODE_SPACE;
      bool want_cut = acc >= target && cuts.size() + 1 < nchunks;
      if ((must_cut || want_cut) && i > chunk_start) {
        size_t cut = i;
        if (!Codec::kUniqueKeys) {
          while (cut > chunk_start && Codec::Key(recs[cut - 1]) == Codec::Key(recs[cut])) cut--;
          if (cut == chunk_start) {
            if (!must_cut) {
              acc += sz;
              continue;
            }
            return Status::NoSpace("too many directory entries with the same name hash");
          }
        }
        cuts.push_back(cut);
        chunk_start = cut;
        acc = 0;
        for (size_t k = cut; k < i; k++) acc += Codec::Size(recs[k]);
      }
      acc += sz;
    }
    if (acc > VEXFS_TREE_NODE_SPACE) return Status::NoSpace("directory leaf overflow");
    cuts.push_back(recs.size());
    // The first chunk stays in place; the others get new leaves, inserted
    // into the parent right after it (in order).
    env_.cache->MarkDirty(leaf, SealKind::kBlockHeader);
    EncodeLeaf(leaf, recs.data(), cuts[0]);
    size_t prev = 0, from = cuts[0];
    const uint64_t goal = leaf->blocknr + 1;
    for (size_t c = 1; c < cuts.size(); c++) {
      const size_t to = cuts[c];
      if (c > 1) {
        // The previous insert may have split ancestors: find the leaf that
        // now holds the previous chunk again.
        VEXFS_ASSIGN_OR_RETURN(path, Descend(Codec::Key(recs[prev])));
      }
      VEXFS_ASSIGN_OR_RETURN(Buffer * nb, NewNode(goal, 0));
      EncodeLeaf(nb, recs.data() + from, to - from);
      VEXFS_RETURN_IF_ERROR(InsertIndex(path, static_cast<int>(path.size()) - 2,
                                        Codec::Key(recs[from]), nb->blocknr, 1));
      prev = from;
      from = to;
    }
    return Status::Ok();
  }

  // Calls fn(record) for every record in key order; stops early when fn
  // returns false.
  Status ForEach(const std::function<bool(const Rec&)>& fn) {
    VEXFS_ASSIGN_OR_RETURN(TreePath path, Descend(0));
    std::vector<Rec> recs;
    uint64_t leaves = 0;
    for (;;) {
      VEXFS_RETURN_IF_ERROR(CountVisit(&leaves));
      recs.clear();
      VEXFS_RETURN_IF_ERROR(DecodeLeaf(path, &recs));
      for (const Rec& r : recs) {
        if (!fn(r)) return Status::Ok();
      }
      VEXFS_ASSIGN_OR_RETURN(bool more, Next(path));
      if (!more) return Status::Ok();
    }
  }

  // Frees every node block of the tree.
  Status Destroy() {
    uint64_t visited = 0;
    return DestroyNode(root_->root, root_->depth, &visited);
  }

 private:
  Result<Buffer*> Load(uint64_t blk, uint16_t level) {
    if (blk < env_.data_start || blk >= env_.data_end) {
      return Status::Corruption("tree node pointer out of range in inode " + std::to_string(env_.owner));
    }
    bool fresh = false;
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, env_.cache->Get(blk, &fresh));
    const vexfs_tree_node* n = Node(b);
    Status s;
    if (fresh) {
      s = VerifyBlock(b->data, env_.magic, blk);
    } else if (Le32(n->tn_hdr.bh_magic) != env_.magic) {
      s = Status::Corruption("tree node " + std::to_string(blk) + ": bad magic");
    }
    if (s.ok() && (Le64(n->tn_hdr.bh_owner) != env_.owner || Le16(n->tn_level) != level ||
                   Le16(n->tn_used) > VEXFS_TREE_NODE_SPACE)) {
      s = Status::Corruption("tree node " + std::to_string(blk) + ": wrong owner, level or size");
    }
    if (s.ok() && level > 0) {
      const uint16_t cnt = Le16(n->tn_count);
      if (cnt == 0 || cnt > VEXFS_TREE_INDEX_MAX || Le16(n->tn_used) != cnt * 16u) {
        s = Status::Corruption("tree node " + std::to_string(blk) + ": bad index count");
      }
    }
    if (!s.ok()) {
      env_.cache->Forget(blk);
      return s;
    }
    return b;
  }

  Result<Buffer*> NewNode(uint64_t goal, uint16_t level) {
    VEXFS_ASSIGN_OR_RETURN(Extent e, env_.blocks->Alloc(goal, 1));
    Buffer* b = env_.cache->GetNew(e.start, SealKind::kBlockHeader);
    InitBlockHeader(b->data, env_.magic, e.start, env_.owner);
    Node(b)->tn_level = ToLe16(level);
    root_->nodes++;
    if (env_.account) env_.account(+1);
    return b;
  }

  Status FreeNode(uint64_t blk) {
    VEXFS_RETURN_IF_ERROR(env_.blocks->Free(blk, 1));
    root_->nodes--;
    if (env_.account) env_.account(-1);
    return Status::Ok();
  }

  void EncodeLeaf(Buffer* b, const Rec* recs, size_t n) {
    vexfs_tree_node* node = Node(b);
    std::memset(node->tn_space, 0, sizeof(node->tn_space));
    Codec::Encode(recs, n, node);
    node->tn_count = ToLe16(static_cast<uint16_t>(n));
  }

  // True when every node on the path has exactly one child: removing the
  // leaf would empty the root, so the empty leaf stays instead.
  bool OnlyChildChain(const TreePath& path) {
    for (size_t i = 0; i + 1 < path.size(); i++) {
      if (Le16(Node(path[i].buf)->tn_count) != 1) return false;
    }
    return true;
  }

  Status RemoveLeaf(TreePath& path) {
    // Walk up while the node would become empty.
    int pos = static_cast<int>(path.size()) - 1;
    while (pos > 0) {
      VEXFS_RETURN_IF_ERROR(FreeNode(path[pos].buf->blocknr));
      Buffer* parent = path[pos - 1].buf;
      const uint16_t n = Le16(Node(parent)->tn_count);
      if (n > 1) {
        env_.cache->MarkDirty(parent, SealKind::kBlockHeader);
        vexfs_tree_index* ix = Index(parent);
        const uint16_t idx = path[pos - 1].idx;
        std::memmove(ix + idx, ix + idx + 1, (n - idx - 1) * sizeof(*ix));
        std::memset(ix + n - 1, 0, sizeof(*ix));
        Node(parent)->tn_count = ToLe16(static_cast<uint16_t>(n - 1));
        Node(parent)->tn_used = ToLe16(static_cast<uint16_t>((n - 1) * 16));
        return Status::Ok();
      }
      pos--;
    }
    return Status::Corruption("tree: removing the root");
  }

  // Inserts (key, child) into the internal node path[pos] right after the
  // entry path[pos].idx + offset - 1.
  Status InsertIndex(TreePath& path, int pos, uint64_t key, uint64_t child, size_t offset) {
    if (pos < 0) {
      // The root splits: grow the tree by one level.
      if (root_->depth >= VEXFS_TREE_MAX_DEPTH) return Status::NoSpace("tree depth limit");
      Buffer* old_root = path[0].buf;
      VEXFS_ASSIGN_OR_RETURN(Buffer * nr, NewNode(old_root->blocknr, static_cast<uint16_t>(root_->depth + 1)));
      vexfs_tree_index* ix = Index(nr);
      ix[0].ti_key = ToLe64(0);
      ix[0].ti_child = ToLe64(old_root->blocknr);
      Node(nr)->tn_count = ToLe16(1);
      Node(nr)->tn_used = ToLe16(16);
      root_->root = nr->blocknr;
      root_->depth++;
      path.insert(path.begin(), PathElem{nr, 0});
      pos = 0;
    }
    Buffer* b = path[pos].buf;
    const uint16_t n = Le16(Node(b)->tn_count);
    const size_t at = path[pos].idx + offset;
    std::vector<vexfs_tree_index> entries(Index(b), Index(b) + n);
    vexfs_tree_index e;
    e.ti_key = ToLe64(key);
    e.ti_child = ToLe64(child);
    entries.insert(entries.begin() + static_cast<long>(std::min(at, entries.size())), e);
    env_.cache->MarkDirty(b, SealKind::kBlockHeader);
    if (entries.size() <= VEXFS_TREE_INDEX_MAX) {
      WriteIndex(b, entries.data(), entries.size());
      return Status::Ok();
    }
    const size_t half = entries.size() / 2;
    WriteIndex(b, entries.data(), half);
    VEXFS_ASSIGN_OR_RETURN(Buffer * nb, NewNode(b->blocknr + 1, Le16(Node(b)->tn_level)));
    WriteIndex(nb, entries.data() + half, entries.size() - half);
    return InsertIndex(path, pos - 1, Le64(entries[half].ti_key), nb->blocknr, 1);
  }

  void WriteIndex(Buffer* b, const vexfs_tree_index* e, size_t n) {
    vexfs_tree_node* node = Node(b);
    std::memset(node->tn_space, 0, sizeof(node->tn_space));
    std::memcpy(node->tn_space, e, n * sizeof(*e));
    node->tn_count = ToLe16(static_cast<uint16_t>(n));
    node->tn_used = ToLe16(static_cast<uint16_t>(n * 16));
  }

  Status DestroyNode(uint64_t blk, uint16_t level, uint64_t* visited) {
    VEXFS_RETURN_IF_ERROR(CountVisit(visited));
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Load(blk, level));
    if (level > 0) {
      const uint16_t n = Le16(Node(b)->tn_count);
      std::vector<uint64_t> children(n);
      for (uint16_t i = 0; i < n; i++) children[i] = Le64(Index(b)[i].ti_child);
      for (uint64_t c : children) {
        VEXFS_RETURN_IF_ERROR(DestroyNode(c, static_cast<uint16_t>(level - 1), visited));
      }
    }
    return FreeNode(blk);
  }

  TreeEnv env_;
  TreeRootMem* root_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_BTREE_H_
