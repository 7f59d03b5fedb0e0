// Directory: the hashed B+tree of names of one directory inode (see
// "Directories" in the format header). Lookups scan one leaf in place;
// changes decode the leaf, edit it and let Tree::Rewrite split or unlink.
//
// Thread safety: none (the filesystem lock). Mutations inside a BufferCache
// operation, with the directory inode's buffer already marked dirty.
#ifndef VEXFS_CORE_DIR_H_
#define VEXFS_CORE_DIR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/btree.h"

namespace vexfs::core {

struct DirRec {
  uint64_t hash = 0;
  uint64_t ino = 0;
  uint8_t type = 0;
  std::string name;
};

struct DirCodec {
  using Rec = DirRec;
  static constexpr bool kUniqueKeys = false;
  static uint64_t Key(const Rec& r) { return r.hash; }
  static size_t Size(const Rec& r) { return VEXFS_DIR_REC_SIZE(r.name.size()); }
  static Status Decode(const TreeEnv& env, const vexfs_tree_node& n, std::vector<Rec>* out);
  static void Encode(const Rec* recs, size_t n, vexfs_tree_node* node);
};

// Checks a single path component: 1..255 bytes, no '/', no NUL, not "." or
// "..". Returns EINVAL / ENAMETOOLONG.
Status ValidateName(std::string_view name);

class Directory {
 public:
  Directory(TreeEnv env, vexfs_inode* inode, const uint8_t* hash_seed);

  // Creates the empty tree of a new directory inode.
  Status Create(uint64_t goal);
  Result<std::optional<DirRec>> Lookup(std::string_view name);
  // EEXIST when the name is present.
  Status Add(std::string_view name, uint64_t ino, uint8_t type);
  // Points an existing name at another inode. ENOENT when absent.
  Status Replace(std::string_view name, uint64_t ino, uint8_t type);
  // ENOENT when absent.
  Status Remove(std::string_view name);
  uint64_t entries() const;
  // Records with hash > cookie, in hash order; fn returns false to stop.
  Status ReadFrom(uint64_t cookie, const std::function<bool(const DirRec&)>& fn);
  Status Destroy();

 private:
  // Removes `name` or points it at (ino, type). ENOENT when absent.
  Status EditRecord(std::string_view name, bool remove, uint64_t ino, uint8_t type);
  TreeRootMem LoadRoot() const;
  void StoreRoot(const TreeRootMem& r, int64_t entries_delta);
  uint64_t Hash(std::string_view name) const { return DirHash(seed_, name); }

  TreeEnv env_;
  vexfs_inode* inode_;
  const uint8_t* seed_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_DIR_H_
