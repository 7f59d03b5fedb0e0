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

#include <algorithm>
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

// ---- Vector layer ------------------------------------------------------

// Finds the entry `index`/`name` (name without its prefix) in `xl`; nullptr
// when absent.
const XattrEntry* FindXattr(const XattrList& xl, uint8_t index, std::string_view name);

// Decodes and validates a stored struct vexfs_collection: magic, version,
// size, crc, dimension, metric / element type / index kind, slot size.
// Context (vc_dir, the index blob) is for the caller. On failure `why` says
// what is wrong.
bool ParseCollection(const std::vector<uint8_t>& value, vexfs_collection* out, std::string* why);
// The segment's collection record ("trusted.vexfs.collection").
bool CollectionOfSegment(const XattrList& xl, vexfs_collection* out, std::string* why);

// CRC of a slot: its 16-byte header with vs_crc = 0, then dim floats.
// REQUIRES: `slot` holds vexfs_slot_size(dim) bytes.
uint32_t SlotCrc(const uint8_t* slot, uint32_t dim);

// "l2", "ip", "cosine" / "f32", "f16", "i8" / "flat", "hnsw", "lsh"; "?"
// for an unknown value.
const char* MetricName(uint32_t metric);
const char* ElementTypeName(uint32_t type);
const char* IndexKindName(uint32_t kind);

// One line for humans: "dim 24, metric l2, element f32, index hnsw
// params 16/0/0/0, index blob 27 (9000 bytes, valid)".
std::string DescribeCollection(const vexfs_collection& c);

// Reads byte ranges of a file through an extent map (holes and unwritten
// extents read as zeros), keeping the last block read: reading in
// ascending order costs one device read per block. `extents` must be
// sorted and non-overlapping (ReadExtents' output) and outlive the reader.
class FileBytes {
 public:
  FileBytes(VolumeReader& r, const std::vector<ExtentRec>& extents)
      : r_(r), extents_(extents), buf_(VEXFS_BLOCK_SIZE) {}
  Status Read(uint64_t offset, size_t len, uint8_t* out);
  // Calls fn(first, end) for each maximal byte range [first, end) below
  // `size` that written extents map, in order.
  template <typename Fn>
  void ForEachMapped(uint64_t size, Fn fn) const {
    for (const auto& e : extents_) {
      if (e.unwritten) continue;
      const uint64_t first = uint64_t{e.logical} * VEXFS_BLOCK_SIZE;
      if (first >= size) break;
      const uint64_t end = std::min<uint64_t>(size, (uint64_t{e.logical} + e.len) * VEXFS_BLOCK_SIZE);
      fn(first, end);
    }
  }

 private:
  VolumeReader& r_;
  const std::vector<ExtentRec>& extents_;
  std::vector<uint8_t> buf_;
  uint64_t cached_ = ~0ull;  // logical block in buf_
};

// One collection as the offline tools see it.
struct CollectionInfo {
  uint64_t segment = 0;
  uint64_t dir = 0;  // the segment's i_parent
  bool config_ok = false;
  vexfs_collection config{};
  uint64_t slots = 0;  // i_size / slot size
  uint64_t live = 0;   // slots whose owner's i_vector points back (CountLive)
  std::vector<Issue> issues;
};

// Walks the catalogue from s_vector_root (bounded by a visited set) and
// reads each segment's record; with `count_live`, also scans its slots.
std::vector<CollectionInfo> ListCollections(VolumeReader& r, bool count_live,
                                            std::vector<Issue>* issues);
// Reads the collection whose segment is `seg`.
CollectionInfo ReadCollection(VolumeReader& r, uint64_t seg, bool count_live);
// The nearest directory with VEXFS_INODE_FL_COLLECTION at or above `ino`,
// following i_parent (bounded); 0 when none.
uint64_t FindCollection(VolumeReader& r, uint64_t ino);

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
