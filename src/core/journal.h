// Journal: the physical write-ahead log of metadata blocks (see the format
// header and docs/format.md, "Journal").
//
// Write protocol of one transaction (Commit):
//   1. descriptor block(s) + block images, written contiguously;
//   2. Flush (so newly written file data is durable before the commit;
//      skipped when the transaction exposes no new data blocks);
//   3. commit block;  4. Flush.
// Only after step 4 may the images be written to their home blocks.
// When the log is full the owner checkpoints: writes every committed image
// home, flushes, and calls Reset(), which starts an empty log.
//
// Thread safety: none; the owner serialises all calls.
#ifndef VEXFS_CORE_JOURNAL_H_
#define VEXFS_CORE_JOURNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "vexfs/block_device.h"
#include "vexfs/status.h"

namespace vexfs::core {

struct JournalTxnInfo {
  uint64_t sequence = 0;
  uint64_t first_block = 0;  // relative to the journal start
  uint64_t nblocks = 0;      // descriptors + images + commit
  std::vector<uint64_t> targets;
};

struct JournalScan {
  uint64_t start_sequence = 0;
  std::vector<JournalTxnInfo> txns;  // valid transactions, in order
  // Latest image of every block touched by a valid transaction.
  std::map<uint64_t, std::vector<uint8_t>> images;
  uint64_t next_sequence = 0;
  uint64_t end_block = 0;  // relative block after the last valid commit
};

// One step of the hash chain a commit block seals over its transaction's
// images (vexfs_journal_commit.jc_data_hash): folds block `target`'s image
// into `h`. The chain of a transaction starts at its sequence number.
uint64_t ChainImage(const uint8_t key[16], uint64_t h, uint64_t target, const uint8_t* image);

class Journal {
 public:
  // `start`/`blocks`: the journal region; `uuid`: the volume's s_uuid.
  Journal(BlockDevice* dev, uint64_t start, uint64_t blocks, const uint8_t uuid[16],
          uint64_t device_blocks);

  // Writes an empty journal superblock (mkfs).
  Status Format(uint64_t first_sequence);
  // Reads and validates the journal superblock and every valid transaction
  // without writing anything. Targets outside [0, device_blocks) or inside
  // the journal make the journal corrupt (EUCLEAN). A transaction whose
  // image of block 0 is not a valid superblock with this journal's uuid,
  // region and block count is invalid (the log ends before it).
  Result<JournalScan> Scan();
  // Positions the writer after the last valid transaction of `scan` (this
  // journal's Scan()), so the next Commit extends the log instead of
  // starting it over; used by tools that append to a log without replaying
  // it. EUCLEAN if `scan` does not fit this journal.
  Status ResumeAfter(const JournalScan& scan);
  // Scan() + write every image home + Flush + Reset(). `replayed` gets the
  // number of transactions applied.
  Status Recover(uint64_t* replayed);

  // Journal blocks a transaction of `images` blocks needs.
  static uint64_t BlocksNeeded(size_t images);
  // Blocks still free in the log.
  uint64_t FreeBlocks() const { return blocks_ - head_; }
  uint64_t Capacity() const { return blocks_ - 1; }
  uint64_t next_sequence() const { return sequence_; }

  // Writes one transaction. REQUIRES: FreeBlocks() >= BlocksNeeded(n).
  // `images[i].second` points at a 4 KiB block image. `data_barrier`: the
  // transaction exposes newly written data blocks, so a flush must separate
  // them from the commit block; without it one flush after the commit
  // suffices (a commit whose images did not all land fails its checksum and
  // is ignored at replay).
  Status Commit(const std::vector<std::pair<uint64_t, const uint8_t*>>& images, bool data_barrier = true);
  // Starts an empty log after a checkpoint. REQUIRES: every committed image
  // is durable at home.
  Status Reset();

 private:
  Status WriteSuper(uint64_t start_rel, uint64_t sequence);
  bool SuperImageFits(const uint8_t* image) const;

  BlockDevice* dev_;
  uint64_t start_, blocks_, device_blocks_;
  uint8_t uuid_[16];
  uint64_t head_ = 1;      // next relative block to write
  uint64_t sequence_ = 1;  // next transaction sequence
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_JOURNAL_H_
