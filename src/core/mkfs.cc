#include "vexfs/mkfs.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/journal.h"
#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"

namespace vexfs {

using namespace core;  // NOLINT

namespace {

void SetBitmap(std::vector<uint8_t>& region, uint64_t item) {
  const uint64_t blk = item / VEXFS_BITMAP_BITS, bit = item % VEXFS_BITMAP_BITS;
  region[blk * VEXFS_BLOCK_SIZE + VEXFS_BITMAP_HDR + bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
}

Status WriteBitmap(BlockDevice* dev, uint64_t start, uint64_t nblocks, uint64_t nitems,
                   const std::vector<uint64_t>& used) {
  std::vector<uint8_t> region(nblocks * VEXFS_BLOCK_SIZE, 0);
  for (uint64_t b = 0; b < nblocks; b++) {
    uint8_t* blk = region.data() + b * VEXFS_BLOCK_SIZE;
    InitBlockHeader(blk, VEXFS_BITMAP_MAGIC, start + b, 0);
    reinterpret_cast<vexfs_bitmap_block*>(blk)->bm_index = ToLe32(static_cast<uint32_t>(b));
  }
  for (uint64_t i = nitems; i < nblocks * VEXFS_BITMAP_BITS; i++) SetBitmap(region, i);
  for (uint64_t i : used) SetBitmap(region, i);
  for (uint64_t b = 0; b < nblocks; b++) SealBlock(region.data() + b * VEXFS_BLOCK_SIZE);
  // Write in chunks to bound request sizes.
  for (uint64_t b = 0; b < nblocks; b += 256) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(256, nblocks - b));
    VEXFS_RETURN_IF_ERROR(dev->Write(start + b, n, region.data() + b * VEXFS_BLOCK_SIZE));
  }
  return Status::Ok();
}

void InitDirInode(vexfs_inode* ino, uint32_t mode, uint32_t links, uint64_t parent, uint64_t leaf,
                  uint64_t entries, const timespec& now) {
  std::memset(ino, 0, sizeof(*ino));
  ino->i_mode = ToLe16(static_cast<uint16_t>(S_IFDIR | mode));
  ino->i_uid = ToLe32(0);
  ino->i_gid = ToLe32(0);
  ino->i_links = ToLe32(links);
  ino->i_size = ToLe64(VEXFS_BLOCK_SIZE);
  ino->i_blocks = ToLe64(1);
  ino->i_atime = ino->i_mtime = ino->i_ctime = ino->i_crtime = ToLe64(static_cast<uint64_t>(now.tv_sec));
  ino->i_atime_ns = ino->i_mtime_ns = ino->i_ctime_ns = ino->i_crtime_ns =
      ToLe32(static_cast<uint32_t>(now.tv_nsec));
  ino->i_generation = ToLe32(1);
  ino->i_parent = ToLe64(parent);
  auto* dr = reinterpret_cast<vexfs_dir_root*>(ino->i_data);
  dr->dr_tree.tr_root = ToLe64(leaf);
  dr->dr_tree.tr_depth = 0;
  dr->dr_tree.tr_nodes = ToLe64(1);
  dr->dr_entries = ToLe64(entries);
  SealInode(ino);
}

}  // namespace

bool HasVexfsSignature(BlockDevice* dev) {
  if (dev->block_count() == 0) return false;
  std::vector<uint8_t> b(VEXFS_BLOCK_SIZE);
  if (!dev->Read(0, 1, b.data()).ok()) return false;
  const auto* sb = reinterpret_cast<const vexfs_super_block*>(b.data());
  return Le32(sb->s_magic) == VEXFS_SUPER_MAGIC;
}

Result<FormatResult> Format(BlockDevice* dev, const FormatOptions& options) {
  if (options.label.size() >= sizeof(vexfs_super_block::s_label)) {
    return Status::InvalidArgument("label longer than 63 bytes");
  }
  VEXFS_ASSIGN_OR_RETURN(Geometry g, ComputeGeometry(dev->block_count(), options.inode_count,
                                                     options.journal_blocks));
  uint8_t random[32];
  if (options.seed != 0) {
    std::mt19937_64 rng(options.seed);
    for (int i = 0; i < 32; i += 8) {
      uint64_t v = rng();
      std::memcpy(random + i, &v, 8);
    }
  } else if (getrandom(random, sizeof(random), 0) != sizeof(random)) {
    return Status::IoError("getrandom failed");
  }
  random[6] = static_cast<uint8_t>((random[6] & 0x0f) | 0x40);  // RFC 4122 v4
  random[8] = static_cast<uint8_t>((random[8] & 0x3f) | 0x80);
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);

  // Inode table first: it is the bulk of the work on large volumes.
  VEXFS_RETURN_IF_ERROR(dev->Zero(g.itable_start, g.itable_blocks));
  // A stale log from an earlier filesystem must never replay into this one.
  VEXFS_RETURN_IF_ERROR(dev->Zero(g.journal_start, g.journal_blocks));

  const uint64_t root_leaf = g.data_start, lf_leaf = g.data_start + 1;
  const uint64_t lf_ino = VEXFS_FIRST_INO;
  const uint64_t last = g.block_count - 1;

  // Block bitmap: metadata regions, the two directory leaves, the backup
  // superblock.
  std::vector<uint64_t> used_blocks;
  for (uint64_t b = 0; b < g.data_start; b++) used_blocks.push_back(b);
  used_blocks.push_back(root_leaf);
  used_blocks.push_back(lf_leaf);
  used_blocks.push_back(last);
  VEXFS_RETURN_IF_ERROR(WriteBitmap(dev, g.bbitmap_start, g.bbitmap_blocks, g.block_count, used_blocks));
  std::vector<uint64_t> used_inodes;
  for (uint64_t i = 1; i <= lf_ino; i++) used_inodes.push_back(i - 1);
  VEXFS_RETURN_IF_ERROR(WriteBitmap(dev, g.ibitmap_start, g.ibitmap_blocks, g.inode_count, used_inodes));

  // Root directory with one entry, lost+found.
  std::vector<uint8_t> blk(VEXFS_BLOCK_SIZE);
  InitBlockHeader(blk.data(), VEXFS_DIR_MAGIC, root_leaf, VEXFS_ROOT_INO);
  {
    auto* n = reinterpret_cast<vexfs_tree_node*>(blk.data());
    const std::string name = "lost+found";
    const uint64_t h = DirHash(random + 16, name);
    uint64_t v = htole64(h);
    std::memcpy(n->tn_space, &v, 8);
    v = htole64(lf_ino);
    std::memcpy(n->tn_space + 8, &v, 8);
    n->tn_space[16] = static_cast<uint8_t>(name.size());
    n->tn_space[17] = VEXFS_FT_DIR;
    std::memcpy(n->tn_space + VEXFS_DIR_REC_HDR, name.data(), name.size());
    n->tn_count = ToLe16(1);
    n->tn_used = ToLe16(static_cast<uint16_t>(VEXFS_DIR_REC_SIZE(name.size())));
  }
  SealBlock(blk.data());
  VEXFS_RETURN_IF_ERROR(dev->Write(root_leaf, 1, blk.data()));
  InitBlockHeader(blk.data(), VEXFS_DIR_MAGIC, lf_leaf, lf_ino);
  SealBlock(blk.data());
  VEXFS_RETURN_IF_ERROR(dev->Write(lf_leaf, 1, blk.data()));

  // Inodes 1 (root) and 8 (lost+found) share the first table block.
  std::vector<uint8_t> itab(VEXFS_BLOCK_SIZE, 0);
  InitDirInode(reinterpret_cast<vexfs_inode*>(itab.data() + InodeOffset(VEXFS_ROOT_INO)), 0755, 3,
               VEXFS_ROOT_INO, root_leaf, 1, now);
  InitDirInode(reinterpret_cast<vexfs_inode*>(itab.data() + InodeOffset(lf_ino)), 0700, 2,
               VEXFS_ROOT_INO, lf_leaf, 0, now);
  VEXFS_RETURN_IF_ERROR(dev->Write(g.itable_start, 1, itab.data()));

  Journal journal(dev, g.journal_start, g.journal_blocks, random, g.block_count);
  uint32_t first_seq;
  std::memcpy(&first_seq, random + 12, 4);
  VEXFS_RETURN_IF_ERROR(journal.Format((first_seq & 0x3fffffffu) + 1));

  std::vector<uint8_t> sbb(VEXFS_BLOCK_SIZE, 0);
  auto* sb = reinterpret_cast<vexfs_super_block*>(sbb.data());
  sb->s_magic = ToLe32(VEXFS_SUPER_MAGIC);
  sb->s_version_major = ToLe16(VEXFS_VERSION_MAJOR);
  sb->s_version_minor = ToLe16(VEXFS_VERSION_MINOR);
  sb->s_block_size_log2 = ToLe32(VEXFS_BLOCK_SIZE_LOG2);
  sb->s_feature_compat = ToLe32(VEXFS_FEATURE_COMPAT_DIR_INDEX_SIPHASH);
  sb->s_feature_incompat = ToLe32(VEXFS_FEATURE_INCOMPAT_EXTENTS | VEXFS_FEATURE_INCOMPAT_JOURNAL |
                                  VEXFS_FEATURE_INCOMPAT_EA_INODE);
  sb->s_feature_ro_compat = ToLe32(VEXFS_FEATURE_RO_COMPAT_METADATA_CSUM);
  sb->s_state = ToLe32(VEXFS_STATE_CLEAN);
  sb->s_block_count = ToLe64(g.block_count);
  sb->s_inode_count = ToLe64(g.inode_count);
  sb->s_free_blocks = ToLe64(g.block_count - used_blocks.size());
  sb->s_free_inodes = ToLe64(g.inode_count - used_inodes.size());
  sb->s_journal_start = ToLe64(g.journal_start);
  sb->s_journal_blocks = ToLe64(g.journal_blocks);
  sb->s_ibitmap_start = ToLe64(g.ibitmap_start);
  sb->s_ibitmap_blocks = ToLe64(g.ibitmap_blocks);
  sb->s_bbitmap_start = ToLe64(g.bbitmap_start);
  sb->s_bbitmap_blocks = ToLe64(g.bbitmap_blocks);
  sb->s_itable_start = ToLe64(g.itable_start);
  sb->s_itable_blocks = ToLe64(g.itable_blocks);
  sb->s_data_start = ToLe64(g.data_start);
  sb->s_root_ino = ToLe64(VEXFS_ROOT_INO);
  sb->s_mkfs_time = sb->s_write_time = ToLe64(static_cast<uint64_t>(now.tv_sec));
  std::memcpy(sb->s_uuid, random, 16);
  std::memcpy(sb->s_hash_seed, random + 16, 16);
  std::memcpy(sb->s_label, options.label.data(), options.label.size());
  SealSuper(sb);
  // Backup first, then flush, then the primary: a crash leaves either no
  // signature or a complete volume.
  VEXFS_RETURN_IF_ERROR(dev->Write(last, 1, sbb.data()));
  VEXFS_RETURN_IF_ERROR(dev->Flush());
  VEXFS_RETURN_IF_ERROR(dev->Write(0, 1, sbb.data()));
  VEXFS_RETURN_IF_ERROR(dev->Flush());

  FormatResult r;
  r.block_count = g.block_count;
  r.inode_count = g.inode_count;
  r.journal_blocks = g.journal_blocks;
  r.data_start = g.data_start;
  std::memcpy(r.uuid, random, 16);
  return r;
}

}  // namespace vexfs
