// ExtentMap: the logical -> physical block map of one inode (regular files,
// long symlinks, EA inodes). Extents live inline in i_data (up to three)
// or in an extent tree (see the format header).
//
// Thread safety: none (the filesystem lock). Mutations happen inside a
// BufferCache operation; the caller marks the inode's buffer dirty before
// calling a mutating method (the map writes i_data and i_blocks in place).
#ifndef VEXFS_CORE_EXTENT_H_
#define VEXFS_CORE_EXTENT_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "core/btree.h"

namespace vexfs::core {

struct ExtentRec {
  uint64_t logical = 0;
  uint64_t start = 0;
  uint32_t len = 0;
  bool unwritten = false;
  uint64_t end() const { return logical + len; }
};

// The result of editing one leaf's records.
struct RangeEdit {
  std::vector<ExtentRec> out;
  std::vector<Extent> freed;
  size_t touched = 0;
};

struct ExtentCodec {
  using Rec = ExtentRec;
  static constexpr bool kUniqueKeys = true;
  static uint64_t Key(const Rec& r) { return r.logical; }
  static size_t Size(const Rec&) { return sizeof(vexfs_extent); }
  static Status Decode(const TreeEnv& env, const vexfs_tree_node& n, std::vector<Rec>* out);
  static void Encode(const Rec* recs, size_t n, vexfs_tree_node* node);
};

// Result of a lookup: an extent piece covering `logical`, or a hole
// (start == 0) of `len` blocks (UINT32_MAX when nothing follows).
struct BlockMapping {
  uint64_t logical = 0;
  uint64_t start = 0;
  uint64_t len = 0;
  bool unwritten = false;
  bool hole() const { return start == 0; }
};

class ExtentMap {
 public:
  // `inode` points into the inode table buffer. `env` supplies the cache,
  // allocator and valid block range; its owner/account fields are set here.
  ExtentMap(TreeEnv env, vexfs_inode* inode);

  // Initialises an empty inline map in i_data.
  static void InitEmpty(vexfs_inode* inode);

  Result<BlockMapping> Lookup(uint64_t logical);
  // Maps the hole [logical, logical + len) to [start, start + len).
  Status Insert(uint64_t logical, uint64_t start, uint32_t len, bool unwritten);
  // Unmaps [logical, end) and frees the blocks; handles at most
  // `max_extents` extents per call. `*done` is false when work remains.
  Status Remove(uint64_t logical, uint64_t end, size_t max_extents, bool* done);
  // Converts unwritten extents in [logical, end) to written.
  Status MarkWritten(uint64_t logical, uint64_t end);
  // Every extent in logical order.
  Status ForEach(const std::function<bool(const ExtentRec&)>& fn);
  // Number of extents and tree nodes (diagnostics).
  Result<size_t> CountExtents();

 private:
  bool inline_mode() const;
  std::vector<ExtentRec> ReadInline() const;
  void WriteInline(const std::vector<ExtentRec>& recs);
  TreeRootMem LoadRoot() const;
  void StoreRoot(const TreeRootMem& r);
  Status StoreAll(std::vector<ExtentRec>& recs);  // inline -> inline or tree
  Status FreeBlocks(uint64_t start, uint64_t len);
  // Applies `edit` leaf by leaf to the tree records overlapping
  // [logical, end), freeing what it cuts, until `budget` extents were
  // touched (`*done` false when work may remain: always when the whole
  // budget was spent).
  using RangeEditor = std::function<RangeEdit(const std::vector<ExtentRec>&, size_t budget)>;
  Status EditTreeRange(uint64_t logical, uint64_t end, size_t budget, const RangeEditor& edit, bool* done);

  TreeEnv env_;
  vexfs_inode* inode_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_EXTENT_H_
