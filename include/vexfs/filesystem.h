// Filesystem: a mounted VexFS volume, addressed by inode numbers like the
// FUSE low-level API and the kernel VFS.
//
// Semantics follow Linux: errno values in failed Statuses (ENOENT, EEXIST,
// ENOTDIR, EISDIR, ENOTEMPTY, EACCES, EPERM, EXDEV (rename or link
// across a collection boundary, see CollectionConfig), ENAMETOOLONG,
// ENOSPC, EFBIG, EROFS, ENODATA, ERANGE, EINVAL, EIO, EUCLEAN). Permission
// checks use the Cred passed in (disable with MountOptions::
// check_permissions when the caller, e.g. the kernel with
// default_permissions, already checks).
//
// Durability: metadata changes are journaled; data is written before the
// metadata that exposes it (ordered mode). Fsync()/Sync() return after
// everything written so far is on stable storage. Each call is atomic with
// respect to a crash: it is either wholly visible after recovery or not at
// all (a large Write/truncate may be split into several atomic steps).
//
// Inode lifetime: an unlinked inode lives while it is referenced
// (Ref/Forget, the kernel's lookup count); the orphan list frees it at the
// next mount after a crash.
//
// Thread safety: all methods may be called from any thread; they are
// serialised internally.
#ifndef VEXFS_FILESYSTEM_H_
#define VEXFS_FILESYSTEM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vexfs/block_device.h"
#include "vexfs/fs_observer.h"
#include "vexfs/status.h"
#include "vexfs/types.h"

namespace vexfs {

// A collection's configuration as stored in the volume (struct
// vexfs_collection, include/uapi/vexfs/vexfs_format.h). Enumerations use
// the VEXFS_METRIC_*, VEXFS_ELEM_* and VEXFS_INDEX_* values.
struct CollectionConfig {
  uint32_t dim = 0;
  uint8_t metric = 0;
  uint8_t element_type = 0;
  uint8_t index_kind = 1;
  uint16_t params[4] = {0, 0, 0, 0};
  // Read back only:
  uint64_t dir = 0;            // collection directory
  bool index_valid = false;    // a persisted index blob matches the slots
  uint64_t index_bytes = 0;
};

// Whether `bytes` (raw little-endian float32) is a vector a collection of
// dimension `dim`, metric `metric` and in-memory element type
// `element_type` (VEXFS_ELEM_*) accepts: the right length, every component
// finite, not all zero under cosine, and under a float16 index with the
// l2 or ip metric every component within float16's range (|x| <= 65504;
// cosine vectors are normalised first, so any finite one fits).
// InvalidArgument naming the problem otherwise. The rule
// setxattr("user.vexfs.vector") applies, for front ends that check a
// batch before storing any of it.
Status CheckVector(uint32_t dim, uint8_t metric, uint8_t element_type, std::span<const uint8_t> bytes);

struct MountOptions {
  bool read_only = false;
  // Metadata cache size.
  size_t cache_mb = 256;
  // Background commit interval; 0 disables the commit thread (commits then
  // happen on Sync/Fsync, when the journal fills and at unmount).
  uint32_t commit_interval_ms = 5000;
  bool check_permissions = true;
};

struct MountInfo {
  uint64_t replayed_transactions = 0;
  uint64_t orphans_released = 0;
  uint64_t truncations_finished = 0;  // interrupted by a crash, finished by the mount
  bool was_clean = false;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  // Mounts the volume on `dev`: replays the journal, releases orphans and
  // finishes interrupted truncations.
  static Result<std::unique_ptr<Filesystem>> Mount(std::unique_ptr<BlockDevice> dev,
                                                   const MountOptions& options,
                                                   MountInfo* info = nullptr);
  // Flushes everything and marks the volume clean. Further calls fail.
  virtual Status Unmount() = 0;

  static constexpr uint64_t kRootIno = 1;

  // -- Namespace --------------------------------------------------------
  virtual Result<Attr> Lookup(uint64_t parent, std::string_view name, const Cred& cred) = 0;
  virtual Result<Attr> GetAttr(uint64_t ino) = 0;
  // A counter that grows whenever any inode may have changed (attributes,
  // size, times, links), starting at 1. Attributes fetched with GetAttr
  // after reading epoch E stay current while AttrEpoch() == E: a cache of
  // them (the vector layer's, for search results) is valid exactly then.
  virtual uint64_t AttrEpoch() const = 0;
  virtual Result<Attr> SetAttr(uint64_t ino, const SetAttrRequest& req, const Cred& cred) = 0;
  // Regular files, FIFOs, sockets, character and block devices.
  virtual Result<Attr> Mknod(uint64_t parent, std::string_view name, uint32_t mode, uint32_t rdev,
                             const Cred& cred) = 0;
  virtual Result<Attr> Mkdir(uint64_t parent, std::string_view name, uint32_t mode,
                             const Cred& cred) = 0;
  virtual Result<Attr> Symlink(uint64_t parent, std::string_view name, std::string_view target,
                               const Cred& cred) = 0;
  virtual Result<Attr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name,
                            const Cred& cred) = 0;
  virtual Status Unlink(uint64_t parent, std::string_view name, const Cred& cred) = 0;
  virtual Status Rmdir(uint64_t parent, std::string_view name, const Cred& cred) = 0;
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (linux/fs.h values).
  virtual Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                        std::string_view new_name, unsigned flags, const Cred& cred) = 0;
  virtual Result<std::string> Readlink(uint64_t ino) = 0;
  // Entries after `cookie` (0 = start, including "." and ".."); fn returns
  // false to stop. fn runs without the filesystem lock and may call back
  // into the Filesystem; entries are read in batches, so a concurrent
  // change may or may not be seen (as with readdir(3)).
  virtual Status ReadDir(uint64_t ino, uint64_t cookie,
                         const std::function<bool(const DirEntry&)>& fn) = 0;
  // mask: R_OK | W_OK | X_OK (F_OK = 0 checks existence).
  virtual Status Access(uint64_t ino, int mask, const Cred& cred) = 0;

  // -- Lifetime ---------------------------------------------------------
  // Takes one reference (a kernel lookup, an open file).
  virtual void Ref(uint64_t ino) = 0;
  // Drops `n` references; an unlinked inode is freed at zero.
  virtual void Forget(uint64_t ino, uint64_t n) = 0;
  // Forget() of every item in one step: the kernel hands over thousands in
  // one BATCH_FORGET when it drops its inode cache, and taking the
  // filesystem lock once per item would contend with every other request.
  struct ForgetItem {
    uint64_t ino = 0, n = 0;
  };
  virtual void ForgetMany(std::span<const ForgetItem> items) {
    for (const ForgetItem& f : items) Forget(f.ino, f.n);
  }

  // -- Data -------------------------------------------------------------
  // Permission check for open(2) flags (O_RDONLY/O_WRONLY/O_RDWR, O_TRUNC).
  virtual Status CheckOpen(uint64_t ino, int flags, const Cred& cred) = 0;
  virtual Result<size_t> Read(uint64_t ino, uint64_t offset, std::span<uint8_t> out) = 0;
  Result<size_t> Write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data) {
    return Write(ino, offset, data, WriteTimes::kUpdate);
  }
  // kUpdate: the write sets mtime and ctime, as write(2) does. kKeep: it
  // leaves them alone, for the write-back of pages by a kernel that keeps
  // the file times itself and sends them as a SetAttr of their own before
  // any fsync (FUSE with the writeback cache).
  //
  // An overwrite of whole blocks that are allocated and written, inside
  // the file's size, needs no metadata change but the times: its device
  // write runs without the filesystem lock, concurrently with other calls.
  enum class WriteTimes { kUpdate, kKeep };
  virtual Result<size_t> Write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                               WriteTimes times) = 0;
  // mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
  // FALLOC_FL_ZERO_RANGE.
  virtual Status Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) = 0;
  // SEEK_DATA / SEEK_HOLE. ENXIO past the end.
  virtual Result<uint64_t> SeekData(uint64_t ino, uint64_t offset, int whence) = 0;
  virtual Status Fsync(uint64_t ino, bool datasync) = 0;
  virtual Status Sync() = 0;

  // -- Extended attributes (full names, e.g. "user.tag") -----------------
  virtual Result<std::vector<uint8_t>> GetXattr(uint64_t ino, std::string_view name,
                                                const Cred& cred) = 0;
  // flags: 0, XATTR_CREATE or XATTR_REPLACE.
  virtual Status SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value,
                          int flags, const Cred& cred) = 0;
  virtual Result<std::vector<std::string>> ListXattr(uint64_t ino, const Cred& cred) = 0;
  virtual Status RemoveXattr(uint64_t ino, std::string_view name, const Cred& cred) = 0;

  virtual Result<FsStats> StatFs() = 0;

  // -- Vector storage -----------------------------------------------------
  // The user.vexfs.vector xattr of a regular file inside a collection is
  // stored in the collection's vector segment (see docs/format.md): setting
  // it checks the dimension and finiteness (EINVAL), getxattr returns the
  // stored float32 bytes. Outside collections it is an ordinary xattr.
  // Events about vectors and names go to the observer (fs_observer.h).
  virtual void SetObserver(FsObserver* observer) = 0;

  // Makes directory `dir` a collection (EEXIST if it is one; EACCES unless
  // the caller owns it or is root). Files below it carrying a vector of the
  // right dimension (ordinary xattr, or slot of an enclosing collection)
  // move into it; any other dimension is EINVAL before anything changes.
  // They move one atomic step each: after a crash some may still hold an
  // ordinary xattr (same bytes, not indexed) until UpdateCollection.
  virtual Status CreateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) = 0;
  // Deletes the collection's vectors, segment and index blob; the files stay.
  // Atomic for a collection of up to 256 vectors; a larger one loses its
  // vectors in atomic batches of 256 first, so a crash may leave it a
  // collection with fewer vectors (drop it again).
  virtual Status DropCollection(uint64_t dir, const Cred& cred) = 0;
  // Changes element type, index kind and parameters (dim and metric stay).
  virtual Status UpdateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) = 0;
  // The configuration of collection `dir` (ENOTSUP if it is not one).
  virtual Result<CollectionConfig> GetCollection(uint64_t dir) = 0;
  // The nearest collection containing `ino` (a directory counts itself),
  // 0 if none.
  virtual Result<uint64_t> CollectionOf(uint64_t ino) = 0;
  virtual Result<std::vector<uint64_t>> ListCollections() = 0;
  // Calls fn(ino, vector) for every live vector of the collection, in slot
  // order. Runs under the filesystem lock: fn must not call back.
  virtual Status ScanVectors(uint64_t dir,
                             const std::function<void(uint64_t, std::span<const float>)>& fn) = 0;
  // Persists an index blob for the collection and marks it valid; the first
  // vector change afterwards marks it stale again (in the same transaction).
  virtual Status SaveIndexBlob(uint64_t dir, std::span<const uint8_t> blob) = 0;
  // The blob if it is valid (matches the stored vectors); ENODATA if not.
  virtual Result<std::vector<uint8_t>> LoadIndexBlob(uint64_t dir) = 0;

  // Convenience for tools and tests: resolves an absolute path from the
  // root ("/" is the root), following no symlinks.
  Result<Attr> ResolvePath(std::string_view path, const Cred& cred = Cred::Root());
};

}  // namespace vexfs

#endif  // VEXFS_FILESYSTEM_H_
