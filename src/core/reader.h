// VolumeReader: read-only, bounds-checked access to a VexFS volume for the
// offline tools (fsck.vexfs, vexctl). It never writes and never trusts a
// count, offset or block number read from the device: every loop is bounded
// by the structure that holds it, trees by VEXFS_TREE_MAX_DEPTH and by a
// visited set, so a hostile image can only produce Issues, never a crash,
// a hang or an unbounded allocation.
//
// The walkers are lenient: they report every problem they find as an Issue
// (a stable code plus a message) and keep what is still usable ("salvaged"
// records), which is exactly what fsck needs to rebuild a structure.
//
// Thread safety: none; one reader per thread.
#ifndef VEXFS_CORE_READER_H_
#define VEXFS_CORE_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/block_device.h"
#include "vexfs/status.h"

// The offline tools' namespace: kept apart from vexfs::core (the mounted
// filesystem) so the two can never clash on a type name.
namespace vexfs::offline {

using namespace vexfs::core;  // NOLINT: layout helpers and Geometry

// One problem found while reading a structure. `code` is stable (tests and
// scripts match on it), `message` is for humans.
struct Issue {
  std::string code;
  std::string message;
};

class VolumeReader {
 public:
  // Reads block 0 and validates the superblock against the device size.
  // `dev` is borrowed and must outlive the reader.
  static Result<std::unique_ptr<VolumeReader>> Open(BlockDevice* dev);
  // Like Open() but takes an already validated superblock (e.g. the backup).
  static std::unique_ptr<VolumeReader> FromSuper(BlockDevice* dev, const vexfs_super_block& sb);

  const vexfs_super_block& super() const { return sb_; }
  const Geometry& geometry() const { return geo_; }
  BlockDevice* device() const { return dev_; }

  // Reads are served from `images` first (journal images not yet replayed:
  // fsck -n checks the post-replay state without writing).
  void SetOverlay(std::map<uint64_t, std::vector<uint8_t>> images);
  // Re-reads the superblock (through the overlay) and validates it.
  Status Reload();

  // REQUIRES: buf holds VEXFS_BLOCK_SIZE bytes. Fails for blocknr >= the
  // volume's block count.
  Status ReadBlock(uint64_t blocknr, uint8_t* buf);
  // Inode numbers are 1..s_inode_count.
  Status ReadInode(uint64_t ino, vexfs_inode* out);
  bool ValidIno(uint64_t ino) const { return ino >= 1 && ino <= geo_.inode_count; }
  // True when [start, start + len) lies inside the data area (which excludes
  // the backup superblock in the last block).
  bool InDataArea(uint64_t start, uint64_t len) const {
    return start >= geo_.data_start && len <= geo_.block_count - 1 - start &&
           start < geo_.block_count - 1;
  }

 private:
  VolumeReader(BlockDevice* dev) : dev_(dev) {}
  BlockDevice* dev_;
  vexfs_super_block sb_{};
  Geometry geo_;
  std::map<uint64_t, std::vector<uint8_t>> overlay_;
};

// ---- Extents -----------------------------------------------------------

struct ExtentRec {
  uint32_t logical = 0;
  uint32_t len = 0;  // without the UNWRITTEN flag
  bool unwritten = false;
  uint64_t start = 0;
};

struct ExtentMap {
  bool tree = false;      // eh_depth == 1
  uint64_t tr_nodes = 0;  // as recorded in the tree root
  uint16_t tr_depth = 0;
  std::vector<ExtentRec> extents;  // salvaged: valid, sorted, non-overlapping
  std::vector<uint64_t> nodes;     // tree node blocks that checked out
  std::vector<Issue> issues;
  uint64_t data_blocks() const;
};

// Reads the extent map of a regular file, EA inode or long symlink.
void ReadExtents(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, ExtentMap* out);

// ---- Directories -------------------------------------------------------

struct DirEntry {
  uint64_t hash = 0;  // as stored
  uint64_t ino = 0;
  uint8_t type = 0;
  std::string name;
};

struct DirListing {
  uint64_t tr_nodes = 0;          // as recorded
  uint64_t dr_entries = 0;        // as recorded
  std::vector<DirEntry> entries;  // salvaged, in on-disk order
  std::vector<uint64_t> nodes;
  std::vector<Issue> issues;
  // Set when an entry was dropped or damaged (not only a counter mismatch):
  // the tree itself must be rebuilt to repair it.
  bool needs_rebuild = false;
};

// True when `name` may appear in a directory.
bool ValidName(std::string_view name);
void ReadDir(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, DirListing* out);
// Looks `name` up in directory `dir`. NotFound when absent.
Result<uint64_t> Lookup(VolumeReader& r, uint64_t dir, std::string_view name);
// Resolves an absolute or root-relative path without following symlinks.
Result<uint64_t> ResolvePath(VolumeReader& r, std::string_view path);

// ---- Extended attributes -----------------------------------------------

struct XattrEntry {
  uint8_t index = 0;
  uint8_t flags = 0;
  std::string name;
  uint32_t value_len = 0;
  uint64_t ea_ino = 0;         // VEXFS_XATTR_FL_EA_INODE
  std::vector<uint8_t> value;  // inline value
  bool in_block = false;
};

struct XattrList {
  std::vector<XattrEntry> entries;  // salvaged
  uint64_t block = 0;               // i_xattr_block
  bool block_ok = false;            // the block checked out and is owned
  std::vector<Issue> issues;
};

void ReadXattrs(VolumeReader& r, uint64_t ino, const vexfs_inode& inode, XattrList* out);
// "user.", "trusted.", ... for a name index; "?" for an unknown one.
const char* XattrPrefix(uint8_t index);

// ---- Misc --------------------------------------------------------------

// Reads up to `max` bytes of a file's contents from offset 0 (holes and
// unwritten extents read as zeros). For symlink targets and EA values.
Result<std::string> ReadFileHead(VolumeReader& r, uint64_t ino, const vexfs_inode& inode,
                                 size_t max);
// "reg", "dir", "lnk", "chr", "blk", "fifo", "sock" or "bad".
const char* ModeTypeName(uint32_t mode);
bool ValidModeType(uint32_t mode);
bool InodeIsZero(const vexfs_inode& inode);

}  // namespace vexfs::offline

#endif  // VEXFS_CORE_READER_H_
