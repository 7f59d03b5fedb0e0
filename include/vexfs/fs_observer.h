// FsObserver: how the filesystem core tells the layers above it (the
// vector layer's in-memory indexes and name map) what changed.
//
// Events are delivered in operation order, after the operation has been
// applied in memory (it may not be durable yet), never for an operation
// that failed and was rolled back. They run with the filesystem lock held:
// an observer must be quick (queue work, update a map) and must not call
// back into the Filesystem.
#ifndef VEXFS_FS_OBSERVER_H_
#define VEXFS_FS_OBSERVER_H_

#include <cstdint>
#include <span>
#include <string_view>

namespace vexfs {

class FsObserver {
 public:
  virtual ~FsObserver() = default;
  // `name` in `parent` now refers to `ino` (create, mkdir, link, rename's
  // new name, the replaced side of an exchange).
  virtual void OnLink(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) = 0;
  // `name` in `parent`, which referred to `ino`, is gone (unlink, rmdir,
  // rename's old name, a rename target that was replaced).
  virtual void OnUnlink(uint64_t parent, std::string_view name, uint64_t ino) = 0;
  // The vector of `ino` in collection `collection` (its directory inode) is
  // now `vec` (set, replaced, or moved in by a rename).
  virtual void OnVectorSet(uint64_t collection, uint64_t ino, std::span<const float> vec) = 0;
  // `ino` no longer has a vector in `collection` (removexattr, last link
  // gone, moved out by a rename, collection dropped).
  virtual void OnVectorRemoved(uint64_t collection, uint64_t ino) = 0;
  virtual void OnCollectionCreated(uint64_t collection) = 0;
  virtual void OnCollectionDropped(uint64_t collection) = 0;
};

}  // namespace vexfs

#endif  // VEXFS_FS_OBSERVER_H_
