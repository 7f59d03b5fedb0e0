// Offline consistency check and repair of a VexFS volume (fsck.vexfs).
//
// CheckVolume() reads every structure of an unmounted volume, reports each
// inconsistency as a Problem with a stable code (see docs/format.md,
// "Invariants", and man/fsck.vexfs.8) and, with CheckOptions::repair,
// writes fixes straight to the device. It never crashes, hangs or
// allocates without bound on a hostile image: memory is proportional to
// the volume size (one bit per block and per inode plus the directory
// entries that check out).
//
// Repair is offline only: the caller must ensure nothing else has the
// volume open (fsck.vexfs opens it exclusively).
//
// Thread safety: none; one check per device at a time.
#ifndef VEXFS_FSCK_H_
#define VEXFS_FSCK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vexfs/block_device.h"
#include "vexfs/status.h"

namespace vexfs {

struct CheckOptions {
  // Fix what can be fixed (fsck -y). When false nothing is written (fsck
  // -n): a journal holding committed transactions is not replayed; its
  // images are overlaid on reads so the post-replay state is checked.
  bool repair = false;
  // Check even when the volume is marked clean and the journal is empty
  // (fsck -f). Without it such a volume is only given a superblock check.
  bool force = false;
};

struct Problem {
  std::string code;     // stable, e.g. "block.leak", "dir.bad_hash"
  std::string message;  // human-readable detail
  bool fixed = false;   // repaired on the device
};

struct CheckReport {
  std::vector<Problem> problems;
  bool checked = false;           // false: skipped as clean (no force)
  uint64_t journal_replayed = 0;  // transactions replayed (repair) ...
  uint64_t journal_pending = 0;   // ... or found and overlaid (no repair)
  uint64_t inodes_used = 0;
  uint64_t inode_count = 0;
  uint64_t blocks_used = 0;
  uint64_t block_count = 0;
  uint64_t directories = 0, regular_files = 0, symlinks = 0, special_files = 0;
  uint64_t orphans = 0;

  size_t errors_fixed() const;
  size_t errors_left() const;
  // True when `code` was reported (tests).
  bool Has(const std::string& code) const;
};

// Checks (and with options.repair, repairs) the volume on `dev`.
// Returns a failed Status only for operational errors: the device cannot
// be read or written, or no valid superblock (primary or backup) exists.
Result<CheckReport> CheckVolume(BlockDevice* dev, const CheckOptions& options);

// fsck(8) exit code: 0 clean, 1 errors corrected, 4 errors left
// uncorrected, 8 operational error.
int FsckExitCode(const Result<CheckReport>& result);

}  // namespace vexfs

#endif  // VEXFS_FSCK_H_
