// XattrStore: the extended attributes of one inode: entries inline in the
// inode, in one xattr block, and large values in EA inodes (see
// "Extended attributes" in the format header).
//
// The store decodes every entry, applies a change and re-encodes: small
// entries inline first, the rest in the block. REQUIRES the filesystem
// lock and, for mutations, an open BufferCache operation.
#ifndef VEXFS_CORE_XATTR_H_
#define VEXFS_CORE_XATTR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs_impl.h"

namespace vexfs::core {

struct XattrItem {
  uint8_t index = 0;
  std::string name;            // without the prefix
  std::vector<uint8_t> value;  // empty when stored in an EA inode
  uint64_t ea_ino = 0;
  uint32_t value_len = 0;
};

// Splits "user.foo" into (VEXFS_XATTR_INDEX_USER, "foo").
Status ParseXattrName(std::string_view full, uint8_t* index, std::string* suffix);
std::string XattrFullName(uint8_t index, const std::string& suffix);

class XattrStore {
 public:
  XattrStore(FsImpl* fs, const InodeRef& inode) : fs_(fs), r_(inode) {}

  Status Load(std::vector<XattrItem>* items);
  Result<std::vector<uint8_t>> ValueOf(const XattrItem& item);
  // Replaces or adds (value != nullptr) or removes (value == nullptr).
  Status Set(uint8_t index, const std::string& name, const std::vector<uint8_t>* value,
             int flags);
  // Frees the xattr block and every EA inode (inode deletion).
  Status DropAll();

 private:
  Status Store(std::vector<XattrItem>& items);
  Result<uint64_t> CreateEaInode(const std::vector<uint8_t>& value);
  Status FreeEaInode(uint64_t ino);

  FsImpl* fs_;
  InodeRef r_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_XATTR_H_
