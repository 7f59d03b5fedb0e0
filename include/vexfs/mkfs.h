// Format: creates an empty VexFS volume (what mkfs.vexfs runs).
#ifndef VEXFS_MKFS_H_
#define VEXFS_MKFS_H_

#include <cstdint>
#include <string>

#include "vexfs/block_device.h"
#include "vexfs/status.h"

namespace vexfs {

struct FormatOptions {
  std::string label;
  uint64_t inode_count = 0;     // 0: one inode per 16 KiB
  uint64_t journal_blocks = 0;  // 0: sized from the volume
  // Deterministic uuid/hash seed for tests; 0 draws them from getrandom().
  uint64_t seed = 0;
};

struct FormatResult {
  uint64_t block_count = 0;
  uint64_t inode_count = 0;
  uint64_t journal_blocks = 0;
  uint64_t data_start = 0;
  uint8_t uuid[16] = {};
};

// Writes a fresh filesystem over the whole device: superblock and its
// backup, empty journal, bitmaps, zeroed inode table, the root directory
// and /lost+found.
Result<FormatResult> Format(BlockDevice* dev, const FormatOptions& options);

// True when the first block holds a VexFS superblock (mkfs's -f check).
bool HasVexfsSignature(BlockDevice* dev);

}  // namespace vexfs

#endif  // VEXFS_MKFS_H_
