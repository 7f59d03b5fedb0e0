// BitmapAllocator: allocation of blocks or inodes from an on-disk bitmap
// region (see "Bitmaps" in the format header).
//
// Freed blocks are quarantined: they cannot be allocated again until the
// next checkpoint, so that (a) a block freed by an uncommitted transaction
// is never overwritten by file data, and (b) no journal image still waiting
// in the log can land on a block that was reused for data (no revoke
// records are needed).
//
// Thread safety: none; the filesystem serialises calls. Every mutating call
// must happen inside a BufferCache operation and is rolled back with it.
#ifndef VEXFS_CORE_ALLOC_H_
#define VEXFS_CORE_ALLOC_H_

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "core/cache.h"
#include "vexfs/status.h"

namespace vexfs::core {

struct Extent {
  uint64_t start = 0;
  uint64_t len = 0;
};

class BitmapAllocator {
 public:
  // `nitems` items, tracked by `region_blocks` bitmap blocks at
  // `region_start`. `quarantine` enables the reuse rule above.
  BitmapAllocator(BufferCache* cache, uint64_t region_start, uint64_t region_blocks,
                  uint64_t nitems, bool quarantine);

  // Reads and verifies every bitmap block and counts free items.
  Status Load();
  uint64_t free_count() const { return free_; }
  // Free items that can be allocated now (excludes quarantined ones).
  uint64_t available() const { return free_ - quarantined_; }

  // Allocates a run of 1..want contiguous items, searching from `goal`.
  Result<Extent> Alloc(uint64_t goal, uint64_t want);
  // Frees [start, start + len). Corruption if any item is already free.
  Status Free(uint64_t start, uint64_t len);
  Result<bool> IsAllocated(uint64_t item);

  void OnCommit();
  void OnCheckpoint();

 private:
  Result<Buffer*> Block(uint64_t index);
  bool Quarantined(uint64_t item, uint64_t* end) const;
  uint64_t NextQuarantine(uint64_t item) const;
  static void AddInterval(std::map<uint64_t, uint64_t>& m, uint64_t start, uint64_t end);
  static void RemoveInterval(std::map<uint64_t, uint64_t>& m, uint64_t start, uint64_t end);

  BufferCache* cache_;
  uint64_t region_start_, region_blocks_, nitems_;
  bool quarantine_enabled_;
  uint64_t free_ = 0;
  uint64_t quarantined_ = 0;
  std::vector<uint32_t> free_per_block_;
  uint64_t hint_ = 0;
  // start -> end (exclusive) intervals.
  std::map<uint64_t, uint64_t> q_running_, q_committed_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_ALLOC_H_
