// Internals of CheckVolume (fsck.cc: driver, superblock, journal, bitmaps;
// fsck_pass.cc: inode and connectivity passes; fsck_vector.cc: the vector
// layer; fsck_repair.cc: writers).
//
// Order of work:
//   1. superblock (primary, else backup), journal replay or overlay;
//   2. orphan list (with repair: orphans are freed here, like e2fsck;
//      linked files on it, interrupted truncations, are cut in pass 1);
//   3. pass 1: every inode, its extent / directory tree and xattrs; claims
//      each block in `used_` (a second claim is a duplicate);
//   4. pass 2: EA references; the vector catalogue, segments and index
//      blobs (CheckCatalogue); directory entries; vectors of files
//      (CheckVectorFiles); reachability, reconnection to /lost+found, link
//      counts;
//   5. repair writes (rebuilt trees allocate from blocks no one claimed);
//   6. bitmaps compared with (and rebuilt from) `used_` / `iused_`;
//   7. superblock counters and state.
#ifndef VEXFS_CORE_FSCK_INTERNAL_H_
#define VEXFS_CORE_FSCK_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/reader.h"
#include "vexfs/fsck.h"

namespace vexfs::offline {

// One record for BuildTree: its key and its packed bytes.
struct TreeRec {
  uint64_t key = 0;
  std::vector<uint8_t> bytes;
};

struct BuiltTree {
  uint64_t root = 0;
  uint16_t depth = 0;
  uint64_t nodes = 0;
  std::vector<uint64_t> blocks;  // every node block, leaves first
};

class Checker {
 public:
  Checker(BlockDevice* dev, const CheckOptions& opt) : dev_(dev), opt_(opt) {}
  Result<CheckReport> Run();

  // Packs `recs` (sorted by key) into leaves of a fresh tree; records with
  // equal keys stay in one leaf. Allocates node blocks with AllocBlock.
  Result<BuiltTree> BuildTree(uint32_t magic, uint64_t owner, const std::vector<TreeRec>& recs);

 private:
  struct Claim {
    uint64_t start, len;
  };
  struct Ino {
    uint16_t mode = 0;
    uint32_t flags = 0;
    uint32_t links = 0;
    uint64_t parent = 0;
    uint64_t size = 0;
    uint64_t blocks = 0;       // i_blocks as stored
    uint64_t data_blocks = 0;  // blocks mapped by kept extents
    uint32_t refs = 0;         // directory entries naming it
    uint32_t subdirs = 0;      // directories only
    uint64_t parent_dir = 0;   // directory holding its (first) entry
    uint32_t ea_refs = 0;
    uint64_t vector = 0;      // i_vector (written back on repair)
    uint32_t generation = 0;  // i_generation
    bool reserved = false;  // inodes 2..7
    bool vec_hidden = false;  // a segment or index blob the catalogue keeps
    bool clear = false;
    bool reachable = false;
    bool on_orphan_list = false;
    bool keep_links = false;         // unreachable and not reconnected
    bool rebuild_extents = false;
    bool rewrite_xattrs = false;
    bool dirty = false;              // fields below differ from the disk
    std::vector<ExtentRec> extents;  // kept extents when rebuild_extents
    std::vector<Claim> claims;       // data blocks this inode claimed
    std::vector<uint64_t> nodes;     // extent tree nodes it claimed
    std::set<uint64_t> drop_ea;      // EA inode refs to drop from its xattrs
    uint64_t xattr_block = 0;        // claimed xattr block (0 = none)
    uint64_t ExpectBlocks() const { return data_blocks + nodes.size() + (xattr_block ? 1 : 0); }
  };
  struct Dir {
    std::vector<DirEntry> entries;
    uint64_t tr_nodes = 0, dr_entries = 0;
    bool rebuild = false;
  };

  // Problems.
  void Report(const std::string& code, const std::string& msg, bool fixable);
  void ReportIssues(const std::vector<Issue>& issues, bool fixable);

  // fsck.cc
  Status OpenSuper();
  Status HandleJournal();
  Status CheckBackupSuper();
  Status LoadBitmaps();
  Status CheckBitmaps();
  Status FinishSuper();

  // fsck_pass.cc
  Status ProcessOrphans();
  Status Pass1();
  Status CheckInode(uint64_t ino, const vexfs_inode& inode);
  bool ClaimRange(uint64_t start, uint64_t len);
  void Unclaim(uint64_t start, uint64_t len);
  void UnclaimAll(Ino& in);
  Status Pass2();
  void ReconnectUnreachable(uint64_t lf);
  Status EnsureLostFound(uint64_t* lf);

  // fsck_vector.cc
  void NoteVectorInode(uint64_t ino, Ino& in, const XattrList& xl);
  Status CheckCatalogue();
  Status CheckVectorFiles();
  bool IsSegmentCandidate(uint64_t ino);
  void FreeVectorInode(uint64_t ino);
  // Clears the EA inodes whose one reference is an xattr of `owner` (being
  // cleared after the references were counted).
  void FreeEaInodesOf(uint64_t owner);
  void Dissolve(uint64_t dir, const std::string& code, const std::string& msg);
  void PatchCollection(uint64_t seg, const vexfs_collection& c);
  uint64_t NearestCollection(uint64_t dir);
  Status CheckSlots(uint64_t seg, std::vector<std::pair<uint64_t, uint64_t>>& claims);
  Status CheckIndexBlob(uint64_t seg, vexfs_collection& c, bool* patch);

  // fsck_repair.cc
  Status ApplyRepairs();
  Status ReadInodeRaw(uint64_t ino, vexfs_inode* out);
  Status WriteInode(uint64_t ino, vexfs_inode inode);
  Status ClearInode(uint64_t ino);
  Result<uint64_t> AllocBlock();
  Result<uint64_t> AllocInode();
  Status RebuildDir(uint64_t ino, Dir& d, vexfs_inode* inode);
  Status RebuildExtents(uint64_t ino, Ino& in, vexfs_inode* inode);
  Status RewriteXattrs(uint64_t ino, Ino& in, vexfs_inode* inode);
  Status MakeEmptyDir(uint64_t ino, uint64_t parent, uint16_t perm);

  bool Used(uint64_t b) const { return (used_[b >> 6] >> (b & 63)) & 1; }
  void SetUsed(uint64_t b) { used_[b >> 6] |= 1ull << (b & 63); }
  void ClearUsed(uint64_t b) { used_[b >> 6] &= ~(1ull << (b & 63)); }

  BlockDevice* dev_;
  CheckOptions opt_;
  CheckReport rep_;
  std::unique_ptr<VolumeReader> r_;
  Geometry g_;
  bool writable_ = false;  // repair and nothing forbids writing
  bool super_dirty_ = false;
  uint64_t orphan_head_ = 0;

  std::vector<uint64_t> used_;      // blocks claimed (1 bit per block)
  std::vector<uint64_t> disk_bbm_;  // on-disk block bitmap
  std::vector<uint64_t> disk_ibm_;  // on-disk inode bitmap (bit n-1 = inode n)
  bool bbm_damaged_ = false, ibm_damaged_ = false;
  uint64_t alloc_cursor_ = 0;

  std::map<uint64_t, Ino> inodes_;  // allocated inodes that check out
  std::map<uint64_t, Dir> dirs_;
  std::set<uint64_t> to_clear_;  // inodes to zero on repair
  std::set<uint64_t> orphans_;   // unlinked inodes on a valid orphan list
  // Linked regular files on it: truncations a crash cut (pass 1 finishes
  // them on repair).
  std::set<uint64_t> truncating_;
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint32_t>>>
      ea_users_;  // ea ino -> (owner, len)
  bool root_bad_ = false;

  // Vector layer.
  struct SegRec {
    bool ok = false;  // the collection record checks out (context aside)
    vexfs_collection c{};
    std::string why;
  };
  struct Dissolved {
    std::string code, msg;
    uint64_t lost = 0;  // vectors of member files cleared
  };
  uint64_t vector_root_ = 0;         // s_vector_root (written back on repair)
  bool vec_seen_ = false;            // some inode carries a vector flag or i_vector
  bool vec_feature_fix_ = false;     // set VEXFS_FEATURE_INCOMPAT_VECTORS
  std::map<uint64_t, SegRec> seg_rec_;       // FL_VSEGMENT inodes, from pass 1
  std::set<uint64_t> coll_dirs_;             // directories with FL_COLLECTION in pass 1
  std::map<uint64_t, uint64_t> live_coll_;   // surviving collection dir -> segment
  std::map<uint64_t, Dissolved> dissolved_;  // collection dirs turned plain
  std::map<uint64_t, std::vector<uint8_t>> xattr_patch_;  // segment -> new record
  std::map<uint64_t, uint64_t> coll_memo_;   // directory -> nearest collection
  // Segments / index blobs the catalogue does not keep -> (code, message);
  // an empty code: already reported.
  std::map<uint64_t, std::pair<std::string, std::string>> stray_;
};

}  // namespace vexfs::offline

#endif  // VEXFS_CORE_FSCK_INTERNAL_H_
