// FsImpl: the Filesystem implementation. Internal header shared by the
// fs_*.cc files.
//
// Locking: one mutex (mu_) serialises every public call; all helpers
// REQUIRE mu_ held. Mutations run as BufferCache operations via RunOp().
// Data reads and in-place overwrites plan under mu_ and do their device I/O
// after releasing it (see io_mu_ and DataLock()); an overwrite of a file
// with a current MapSnapshot takes no mu_ at all.
// Lock order: mu_, io_mu_, DataLock().
#ifndef VEXFS_CORE_FS_IMPL_H_
#define VEXFS_CORE_FS_IMPL_H_

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "core/alloc.h"
#include "core/cache.h"
#include "core/dir.h"
#include "core/extent.h"
#include "core/journal.h"
#include "core/layout.h"
#include "core/sec_xattr_cache.h"
#include "vexfs/filesystem.h"

namespace vexfs::core {

// One piece of a planned read: `bytes` bytes for out[out_offset...] from
// physical block `phys` starting `skip` bytes in (phys 0: zeros).
struct ReadSegment {
  uint64_t out_offset = 0, bytes = 0, phys = 0, skip = 0;
};

struct InodeRef {
  uint64_t ino = 0;
  Buffer* buf = nullptr;
  vexfs_inode* raw = nullptr;
  uint32_t mode() const { return Le16(raw->i_mode); }
  bool is_dir() const;
  bool is_reg() const;
  bool is_lnk() const;
};

class FsImpl final : public Filesystem {
 public:
  FsImpl(std::unique_ptr<BlockDevice> dev, const MountOptions& opts);
  ~FsImpl() override;

  Status DoMount(MountInfo* info);

  Status Unmount() override;
  Result<Attr> Lookup(uint64_t parent, std::string_view name, const Cred& cred) override;
  Result<Attr> GetAttr(uint64_t ino) override;
  uint64_t AttrEpoch() const override { return attr_epoch_.load(std::memory_order_acquire); }
  Result<Attr> SetAttr(uint64_t ino, const SetAttrRequest& req, const Cred& cred) override;
  Result<Attr> Mknod(uint64_t parent, std::string_view name, uint32_t mode, uint32_t rdev,
                     const Cred& cred) override;
  Result<Attr> Mkdir(uint64_t parent, std::string_view name, uint32_t mode, const Cred& cred) override;
  Result<Attr> Symlink(uint64_t parent, std::string_view name, std::string_view target,
                       const Cred& cred) override;
  Result<Attr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name,
                    const Cred& cred) override;
  Status Unlink(uint64_t parent, std::string_view name, const Cred& cred) override;
  Status Rmdir(uint64_t parent, std::string_view name, const Cred& cred) override;
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, unsigned flags, const Cred& cred) override;
  Result<std::string> Readlink(uint64_t ino) override;
  Status ReadDir(uint64_t ino, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn) override;
  Status Access(uint64_t ino, int mask, const Cred& cred) override;
  void Ref(uint64_t ino) override;
  void Forget(uint64_t ino, uint64_t n) override;
  void ForgetMany(std::span<const ForgetItem> items) override;
  Status CheckOpen(uint64_t ino, int flags, const Cred& cred) override;
  Result<size_t> Read(uint64_t ino, uint64_t offset, std::span<uint8_t> out) override;
  using Filesystem::Write;
  Result<size_t> Write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                       WriteTimes times) override;
  Status Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) override;
  Result<uint64_t> SeekData(uint64_t ino, uint64_t offset, int whence) override;
  Status Fsync(uint64_t ino, bool datasync) override;
  Status Sync() override;
  Result<std::vector<uint8_t>> GetXattr(uint64_t ino, std::string_view name, const Cred& cred) override;
  Status SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value, int flags,
                  const Cred& cred) override;
  Result<std::vector<std::string>> ListXattr(uint64_t ino, const Cred& cred) override;
  Status RemoveXattr(uint64_t ino, std::string_view name, const Cred& cred) override;
  Result<FsStats> StatFs() override;

  void SetObserver(FsObserver* observer) override;
  Status CreateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) override;
  Status DropCollection(uint64_t dir, const Cred& cred) override;
  Status UpdateCollection(uint64_t dir, const CollectionConfig& config, const Cred& cred) override;
  Result<CollectionConfig> GetCollection(uint64_t dir) override;
  Result<uint64_t> CollectionOf(uint64_t ino) override;
  Result<std::vector<uint64_t>> ListCollections() override;
  Status ScanVectors(uint64_t dir, const std::function<void(uint64_t, std::span<const float>)>& fn) override;
  Status SaveIndexBlob(uint64_t dir, std::span<const uint8_t> blob) override;
  Result<std::vector<uint8_t>> LoadIndexBlob(uint64_t dir) override;

 private:
  friend class XattrStore;
  // -- fs.cc: inodes, ops, lifetime -----------------------------------
  Status CheckWritable();
  // Runs `fn` as one atomic operation; rolls back on failure. Retries once
  // after a checkpoint when space is only held by quarantined blocks.
  Status RunOp(const std::function<Status()>& fn);
  Result<InodeRef> GetInode(uint64_t ino);
  // Every change to an inode goes through here (before or after the bytes
  // change, within one hold of mu_), which is what makes AttrEpoch() sound.
  void Dirty(const InodeRef& r) {
    attr_epoch_.fetch_add(1, std::memory_order_release);
    MapGen(r.ino).fetch_add(1, std::memory_order_acq_rel);
    cache_->MarkDirty(r.buf, SealKind::kInodeTable);
  }
  Result<InodeRef> AllocInode(uint64_t goal);
  TreeEnv Env(uint64_t owner);
  ExtentMap Extents(const InodeRef& r) { return ExtentMap(Env(r.ino), r.raw); }
  Directory Dir(const InodeRef& r) { return Directory(Env(r.ino), r.raw, hash_seed_); }
  Attr ToAttr(const InodeRef& r) const;
  Status Perm(const InodeRef& r, int mask, const Cred& cred) const;
  Timespec Now() const;
  void SetTimes(const InodeRef& r, bool atime, bool mtime, bool ctime);
  Result<Buffer*> Super();
  // The orphan list is singly linked on disk (s_orphan_head, i_orphan_next);
  // RemoveOrphan finds the predecessor through orphan_prev_ in O(1).
  Status AddOrphan(const InodeRef& r);
  Status RemoveOrphan(uint64_t ino);
  // Frees the data of an unlinked inode in bounded steps and finally the
  // inode itself (each step one operation).
  Status Reap(uint64_t ino);
  Status ReapStep(uint64_t ino, bool* done);
  // The link of `r` in directory `dir` is gone: links--, orphan at zero.
  Status DropLink(const InodeRef& r, uint64_t dir);
  Status MaybeReap(uint64_t ino);
  void ForgetLocked(uint64_t ino, uint64_t n);
  // After journal replay: releases the unlinked inodes on the orphan list
  // and finishes the truncations of the linked ones.
  Status ProcessOrphans(uint64_t* released, uint64_t* truncated);
  void CommitThread();

  // -- fs_namei.cc -------------------------------------------------------
  Result<InodeRef> CheckDirForChange(uint64_t parent, std::string_view name, const Cred& cred);
  Result<InodeRef> CreateChild(const InodeRef& dir, std::string_view name, uint32_t mode,
                               uint32_t rdev, const Cred& cred);
  // The inode `name` refers to in `dir`; ENOENT when absent.
  Result<InodeRef> Child(const InodeRef& dir, std::string_view name);
  Status CheckSticky(const InodeRef& dir, const InodeRef& victim, const Cred& cred) const;
  Result<bool> IsAncestor(uint64_t ancestor, uint64_t ino);

  // -- fs_data.cc -----------------------------------------------------------
  // `times`: set mtime and ctime (Write with WriteTimes::kKeep does not).
  Status WriteChunk(const InodeRef& r, uint64_t offset, std::span<const uint8_t> data,
                    bool times = true);
  // The device writes of an overwrite of [offset, offset + len) in place:
  // empty unless the range is whole blocks, inside i_size, all allocated and
  // written (no unwritten extent, no hole). `bytes` of each segment are
  // block multiples and `skip` is 0.
  Result<std::vector<ReadSegment>> PlanOverwrite(const InodeRef& r, uint64_t offset, size_t len);
  // A write of whole blocks, at most one chunk, that is not a plain
  // overwrite (it allocates, fills unwritten extents or extends the file):
  // maps its holes as unwritten extents in one operation, writes the device
  // without mu_, then marks them written and sets size and times in a
  // second operation. REQUIRES `lock` holds mu_; it holds it again on
  // return. Sets *fallback (and writes nothing visible) when the file's map
  // changed under the unlocked write: the caller then writes under mu_.
  Status WriteAllocating(std::unique_lock<std::mutex>& lock, uint64_t ino, uint64_t offset,
                         std::span<const uint8_t> data, bool times, bool* fallback);
  // An overwrite in place planned from the file's MapSnapshot, without
  // mu_: returns false (having written nothing) when there is no current
  // snapshot or it does not show [offset, offset + size) as written blocks
  // inside the file; the caller then takes mu_. True: *s is the result.
  bool OverwriteUnlocked(uint64_t ino, uint64_t offset, std::span<const uint8_t> data, Status* s);
  // A read planned from the file's MapSnapshot, without mu_: false (having
  // read nothing) when there is no current snapshot, the range is not all
  // written blocks (up to EOF), or the read is due to update the atime.
  // True: *s is the result and *n the bytes read.
  bool ReadUnlocked(uint64_t ino, uint64_t offset, std::span<uint8_t> out, size_t* n, Status* s);
  // Writes `data` to the segments of an overwrite plan (whole blocks).
  Status WriteSegments(const std::vector<ReadSegment>& plan, std::span<const uint8_t> data);
  // Called under mu_ for an in-place overwrite of `r`, or a read of it that
  // updates no atime: the first such call since the file last changed
  // leaves a mark, the second copies the map into a MapSnapshot (so a file
  // that changes between such calls is not copied each time).
  void NoteMapUse(const InodeRef& r);
  Result<size_t> ReadData(const InodeRef& r, uint64_t offset, std::span<uint8_t> out);
  Result<std::vector<ReadSegment>> PlanRead(const InodeRef& r, uint64_t offset, size_t len, size_t* total);
  // `file_data`: through BlockDevice::ReadData (a read(2) of file data).
  Status ExecuteRead(const std::vector<ReadSegment>& plan, std::span<uint8_t> out,
                     bool file_data = false);
  Status Truncate(uint64_t ino, uint64_t size);
  // Unmaps every block of `ino` past its size, one operation per 256
  // extents; with `size`, the first operation also sets the size (and,
  // growing, zeroes the grown part of the last block; a cut part is left
  // as it is, see ZeroPastEnd). A file that needs
  // more than one operation is on the orphan list from the first to the
  // last (format.md section 11); without `size` this finishes such a
  // truncation (at mount).
  Status CutPastEnd(uint64_t ino, std::optional<uint64_t> size);
  // Zeroes file bytes [offset, end), inside one block, on disk (nothing
  // for a hole or an unwritten block). `ordered`: the running transaction
  // must not commit before these zeros are durable (NoteOrderedData).
  Status ZeroPartial(const InodeRef& r, uint64_t offset, uint64_t end, bool ordered = false);
  // Called by every operation that grows a file's size, before it does, with
  // `upto` the offset where the bytes it writes (if any) begin, or the new
  // size: zeroes the file's last block from the current end up to `upto`.
  // Bytes past the end of a file are not kept zero on disk: an extending
  // write lands in place before the commit that sets its size, so a crash
  // in between leaves them holding its data, and a truncation downwards
  // leaves the cut bytes of its new last block there. The zeros are
  // ordered before the commit of the size.
  Status ZeroPastEnd(const InodeRef& r, uint64_t upto);
  Status AllocateRange(const InodeRef& r, uint64_t first_blk, uint64_t end_blk);

  // -- vector_store.cc: collections, vector slots, observer events ---------
  struct VecCollection {
    uint64_t dir = 0, seg = 0;
    vexfs_collection cfg{};
    bool slots_known = false;          // free_slots reflects the segment
    std::vector<uint32_t> free_slots;  // reusable now
    std::vector<uint32_t> quarantine;  // freed; reusable after the next commit
  };
  struct Event {
    enum Kind { kLink, kUnlink, kVecSet, kVecRemoved, kCollCreated, kCollDropped } kind;
    Event(Kind k, uint64_t a_, uint64_t b_, std::string n = {}, bool d = false)
        : kind(k), a(a_), b(b_), name(std::move(n)), is_dir(d) {}
    uint64_t a = 0, b = 0;  // parent/collection, ino
    std::string name;
    bool is_dir = false;
    std::vector<float> vec;
  };
  Status LoadCollections();
  void Emit(Event e) { if (observer_) op_events_.push_back(std::move(e)); }
  void OnUndo(std::function<void()> fn) { op_undo_.push_back(std::move(fn)); }
  // Nearest collection of directory `dir` (itself included), 0 if none.
  Result<uint64_t> CollOfDir(uint64_t dir);
  // Collection deciding where `r`'s vector lives (see the format header).
  Result<uint64_t> CollOfInode(const InodeRef& r);
  VecCollection* Coll(uint64_t dir);
  Status WriteCollConfig(VecCollection& c);
  // Applies `edit` to the cached configuration and writes it (undone with
  // the operation if it fails).
  Status EditCollConfig(VecCollection& c, const std::function<void(vexfs_collection&)>& edit);
  Status MarkStale(VecCollection& c);
  Status EnsureSlots(VecCollection& c);
  // Reads the segment in order: fn(slot, header, vector) for every slot.
  Status ScanSlotsRaw(VecCollection& c, const std::function<Status(uint32_t, const vexfs_vslot&, const float*)>& fn);
  Result<bool> SlotLive(VecCollection& c, uint32_t slot, const vexfs_vslot& h);
  // fn(header, vector) for every live slot; with rebuild_free, the free
  // list is recomputed from the slots that are not (quarantine excepted).
  Status ForEachLiveSlot(VecCollection& c, const std::function<Status(const vexfs_vslot&, const float*)>& fn,
                         bool rebuild_free);
  // fn(file) for every regular file below `dir`, nested collections excluded.
  Status ForEachFileBelow(uint64_t dir, const std::function<void(const InodeRef&)>& fn);
  Result<std::vector<float>> ReadSlot(VecCollection& c, const InodeRef& file);
  Status ValidateVector(const VecCollection& c, std::span<const uint8_t> bytes);
  // Stores `vec` for `file` in `c` (copy on write), emits the event.
  Status PutVector(VecCollection& c, const InodeRef& file, std::span<const float> vec);
  Status DropVector(VecCollection& c, const InodeRef& file);
  // The directory stops being a collection (rmdir, drop): unlinks the
  // segment from the catalogue and orphans the segment and index inodes.
  Status DetachCollection(const InodeRef& dir, std::vector<uint64_t>* reap);
  // user.vexfs.vector of a regular file: where it lives and what it holds.
  Result<std::optional<std::vector<uint8_t>>> PlainVector(const InodeRef& r);
  // Rename of a non-directory from collection `from` to `to` (either 0).
  Status MoveVector(const InodeRef& r, uint64_t from, uint64_t to);
  Status AdoptPlainVectors(uint64_t dir);

  // Segment/index inodes orphaned by the last operation; the caller reaps
  // them once the operation is done (ReapDetached).
  std::vector<uint64_t> reap_after_op_;
  Status ReapDetached();

  std::map<uint64_t, VecCollection> colls_;  // by directory inode
  FsObserver* observer_ = nullptr;
  std::vector<Event> op_events_;
  std::vector<std::function<void()>> op_undo_;

  std::mutex mu_;
  // Held shared by data reads and overwrites running outside mu_; taken
  // exclusively (with mu_ held) before quarantined blocks are released, so
  // a block freed under them is not reused until they are done.
  std::shared_mutex io_mu_;
  // Per-file (striped) lock on the contents of data blocks: held shared by
  // in-place overwrites running outside mu_ (taken before mu_ is released),
  // exclusive (under mu_) around every read-modify-write of a data block
  // (partial-block writes, ZeroPartial), which would otherwise lose a
  // concurrent overwrite or let stale bytes past a new EOF.
  std::shared_mutex& DataLock(uint64_t ino) { return data_locks_[ino % data_locks_.size()]; }
  std::array<std::shared_mutex, 64> data_locks_;
  // Bumped (under mu_, striped like DataLock) by every ZeroPartial of a
  // written block and every truncation downwards. A write that wrote
  // blocks in place outside mu_ and then sets the size (WriteAllocating)
  // redoes itself if it moved: its bytes may have been zeroed, or cut and
  // overwritten by another write, after it wrote them.
  uint64_t& TailGen(uint64_t ino) { return tail_gens_[ino % tail_gens_.size()]; }
  std::array<uint64_t, 64> tail_gens_{};
  // Lock-free overwrites and reads. Dirty() bumps the (striped) map generation of the
  // inode it marks, under mu_, on every change to the inode or anything it
  // owns (extent tree, size, flags, being freed); a MapSnapshot made under
  // mu_ is valid while that generation is unchanged. A writer using one
  // loads it, takes io_mu_ and DataLock() shared (a reader: io_mu_), then checks the
  // generation: a change after the check is ordered after the write (freed
  // blocks stay quarantined while io_mu_ is held, a read-modify-write waits
  // for DataLock()), a change before it is seen (both locks order it).
  struct MapSnapshot {
    uint64_t ino = 0, gen = 0, size = 0;
    // Reads before this time (seconds) leave the atime alone (relatime).
    int64_t atime_kept_until = 0;
    bool complete = false;  // false: a mark (see NoteMapUse), no extents
    std::vector<ExtentRec> extents;  // every extent, in logical order
  };
  // The file's complete MapSnapshot, or null (none, a mark, another inode's).
  std::shared_ptr<const MapSnapshot> CurrentSnapshot(uint64_t ino);
  // Plans [offset, end) from `snap`: false when a block in it is not a
  // written block of an extent (a hole, unwritten, past the map).
  static bool PlanFromSnapshot(const MapSnapshot& snap, uint64_t offset, uint64_t end,
                               std::vector<ReadSegment>* plan);
  static constexpr size_t kMapStripes = 256;
  static constexpr size_t kMaxSnapshotExtents = 4096;
  std::atomic<uint64_t>& MapGen(uint64_t ino) { return map_gens_[ino % kMapStripes]; }
  std::array<std::atomic<uint64_t>, kMapStripes> map_gens_{};
  std::array<std::atomic<std::shared_ptr<const MapSnapshot>>, kMapStripes> snapshots_;
  std::unique_ptr<BlockDevice> dev_;
  MountOptions opts_;
  Geometry geo_;
  uint8_t hash_seed_[16];
  uint8_t uuid_[16];
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<BufferCache> cache_;
  std::unique_ptr<BitmapAllocator> blocks_;
  std::unique_ptr<BitmapAllocator> inodes_;
  std::unordered_map<uint64_t, uint64_t> refs_;
  // Orphan list member -> the member before it (0: the head), kept by
  // AddOrphan/RemoveOrphan. A hint only: RemoveOrphan checks it against the
  // list (an operation that failed may have left it stale) and walks the
  // list from the head when it does not hold. Without it, releasing many
  // orphans oldest first walked the whole list each time.
  std::unordered_map<uint64_t, uint64_t> orphan_prev_;
  // Answers getxattr("security.*") = ENODATA without mu_ (see the header).
  NoSecurityXattrs no_sec_xattrs_;
  // AttrEpoch(): bumped (under mu_) by Dirty().
  std::atomic<uint64_t> attr_epoch_{1};
  uint32_t next_generation_ = 1;
  bool mounted_ = false;
  bool read_only_ = false;
  std::thread commit_thread_;
  std::condition_variable commit_cv_;
  bool stop_commit_ = false;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_FS_IMPL_H_
