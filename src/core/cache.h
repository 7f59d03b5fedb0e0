// BufferCache: the metadata block cache and the transaction manager.
//
// Every metadata change happens inside an operation (BeginOp .. EndOp or
// AbortOp). Operations are grouped into the running transaction, which
// Commit() writes to the journal. Data blocks of regular files bypass this
// cache (ordered mode: they are written before the transaction that makes
// them reachable commits).
//
// Invariants:
//  - a buffer modified by the running transaction is never written home
//    before that transaction commits (write-ahead rule);
//  - a committed buffer that the running transaction modifies again keeps a
//    frozen copy of its committed contents for checkpointing;
//  - an operation that fails is rolled back: AbortOp() restores every
//    buffer it touched and runs the registered undo callbacks in reverse.
//
// Buffer pointers stay valid until the end of the current operation:
// eviction only happens between operations.
//
// Thread safety: none. The filesystem serialises all calls (its big lock).
#ifndef VEXFS_CORE_CACHE_H_
#define VEXFS_CORE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/journal.h"
#include "vexfs/block_device.h"
#include "vexfs/status.h"

namespace vexfs::core {

enum class SealKind : uint8_t {
  kNone = 0,        // raw
  kBlockHeader = 1, // vexfs_block_header at offset 0: crc refreshed at commit
  kSuper = 2,       // block 0: superblock crc
  kInodeTable = 3,  // inode crcs refreshed at commit
};

struct Buffer {
  uint64_t blocknr = 0;
  uint8_t* data = nullptr;  // VEXFS_BLOCK_SIZE bytes
  SealKind seal = SealKind::kNone;
  bool in_txn = false;         // modified by the running transaction
  bool dirty_home = false;     // committed contents not yet written home
  bool modified = false;       // changed since read: on-disk crcs are stale in memory
  std::unique_ptr<uint8_t[]> frozen;  // committed contents (see invariants)
  uint64_t undo_epoch = 0;
  std::unique_ptr<uint8_t[]> storage;
  std::list<Buffer*>::iterator lru;
};

struct CacheStats {
  uint64_t commits = 0;
  uint64_t checkpoints = 0;
  uint64_t journal_blocks_written = 0;
};

class BufferCache {
 public:
  BufferCache(BlockDevice* dev, Journal* journal, size_t max_buffers);
  ~BufferCache();

  // Returns the cached buffer, reading it on a miss. `fresh` (optional) is
  // set when the contents just came from the device.
  Result<Buffer*> Get(uint64_t blocknr, bool* fresh = nullptr);
  // Returns a zero-filled buffer for a newly allocated block, marked dirty.
  // REQUIRES: inside an operation.
  Buffer* GetNew(uint64_t blocknr, SealKind seal);
  // Declares that `b` is about to change. REQUIRES: inside an operation.
  void MarkDirty(Buffer* b, SealKind seal);
  // Drops a clean buffer (or a buffer only dirty in the running transaction
  // after its block was freed: its contents no longer matter).
  void Forget(uint64_t blocknr);

  void BeginOp();
  // Registers an in-memory change to revert if the operation aborts.
  void OnAbort(std::function<void()> undo);
  void AbortOp();
  // Ends the operation; commits when the running transaction is large.
  Status EndOp();
  bool in_op() const { return in_op_; }

  // Writes the running transaction to the journal (checkpointing first if
  // the journal is full). A no-op when nothing changed.
  Status Commit();
  // Commit() + write every committed buffer home + flush + reset the
  // journal. `after_home` runs once homes are durable (quarantine release).
  Status Checkpoint();
  // Called after every successful commit / after every checkpoint (once
  // committed homes are durable and the journal is empty).
  void SetCommitHook(std::function<void()> hook) { commit_hook_ = std::move(hook); }
  void SetCheckpointHook(std::function<void()> hook) { checkpoint_hook_ = std::move(hook); }

  // File data was written to blocks that the running transaction makes
  // reachable: its commit needs a flush before the commit block.
  void NoteOrderedData() { ordered_data_ = true; }

  size_t running_blocks() const { return running_.size(); }
  const CacheStats& stats() const { return stats_; }
  // Once set, nothing more is written (the volume hit an I/O error).
  // May be read without the filesystem lock (lock-free overwrites).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  void set_failed() { failed_ = true; }

 private:
  struct Undo {
    Buffer* buf;
    std::unique_ptr<uint8_t[]> data;
    bool in_txn, modified;
    bool created_frozen;
    bool created;  // inserted by GetNew in this operation
    SealKind seal;
  };
  Buffer* Insert(uint64_t blocknr);
  Status WriteHomes();
  // Writes every committed buffer home, flushes, empties the journal and
  // runs the checkpoint hook. Running-transaction contents stay in memory.
  Status CheckpointCommitted();
  void SaveUndo(Buffer* b, bool created);
  void Evict();
  void Seal(Buffer* b);

  BlockDevice* dev_;
  Journal* journal_;
  size_t max_buffers_;
  std::unordered_map<uint64_t, std::unique_ptr<Buffer>> map_;
  std::list<Buffer*> lru_;  // front = most recent
  std::vector<Buffer*> running_;
  bool in_op_ = false;
  uint64_t epoch_ = 0;
  std::vector<Undo> undo_;
  std::vector<std::function<void()>> undo_fns_;
  std::function<void()> commit_hook_;
  std::function<void()> checkpoint_hook_;
  CacheStats stats_;
  std::atomic<bool> failed_{false};
  bool ordered_data_ = false;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_CACHE_H_
