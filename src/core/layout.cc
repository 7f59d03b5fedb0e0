#include "core/layout.h"

#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "vexfs/crc32c.h"

namespace vexfs::core {

uint32_t ComputeBlockCrc(const uint8_t* block) {
  uint32_t crc = Crc32cExtend(~0u, block, 4);
  const uint32_t zero = 0;
  crc = Crc32cExtend(crc, &zero, 4);
  crc = Crc32cExtend(crc, block + 8, VEXFS_BLOCK_SIZE - 8);
  return ~crc;
}

void SealBlock(uint8_t* block) {
  auto* h = reinterpret_cast<vexfs_block_header*>(block);
  h->bh_crc = ToLe32(ComputeBlockCrc(block));
}

Status VerifyBlock(const uint8_t* block, uint32_t magic, uint64_t blocknr) {
  const auto* h = reinterpret_cast<const vexfs_block_header*>(block);
  if (Le32(h->bh_magic) != magic) {
    return Status::Corruption("block " + std::to_string(blocknr) + ": bad magic");
  }
  if (Le32(h->bh_crc) != ComputeBlockCrc(block)) {
    return Status::Corruption("block " + std::to_string(blocknr) + ": checksum mismatch");
  }
  if (Le64(h->bh_blocknr) != blocknr) {
    return Status::Corruption("block " + std::to_string(blocknr) + ": misdirected (claims " +
                              std::to_string(Le64(h->bh_blocknr)) + ")");
  }
  return Status::Ok();
}

void InitBlockHeader(uint8_t* block, uint32_t magic, uint64_t blocknr, uint64_t owner) {
  std::memset(block, 0, VEXFS_BLOCK_SIZE);
  auto* h = reinterpret_cast<vexfs_block_header*>(block);
  h->bh_magic = ToLe32(magic);
  h->bh_blocknr = ToLe64(blocknr);
  h->bh_owner = ToLe64(owner);
}

uint32_t ComputeInodeCrc(const vexfs_inode& ino) {
  return Crc32c(&ino, offsetof(vexfs_inode, i_crc));
}
void SealInode(vexfs_inode* ino) { ino->i_crc = ToLe32(ComputeInodeCrc(*ino)); }
bool InodeCrcOk(const vexfs_inode& ino) { return Le32(ino.i_crc) == ComputeInodeCrc(ino); }

void SealSuper(vexfs_super_block* sb) {
  sb->s_crc = 0;
  uint8_t buf[VEXFS_SUPER_SIZE] = {};
  std::memcpy(buf, sb, sizeof(*sb));
  sb->s_crc = ToLe32(Crc32c(buf, sizeof(buf)));
}

Status ValidateSuper(const vexfs_super_block& in, uint64_t device_blocks, bool* ro_only) {
  if (Le32(in.s_magic) != VEXFS_SUPER_MAGIC) return Status::Corruption("not a VexFS volume (bad magic)");
  vexfs_super_block sb = in;
  sb.s_crc = 0;
  uint8_t buf[VEXFS_SUPER_SIZE] = {};
  std::memcpy(buf, &sb, sizeof(sb));
  if (Crc32c(buf, sizeof(buf)) != Le32(in.s_crc)) return Status::Corruption("superblock checksum mismatch");
  if (Le16(in.s_version_major) != VEXFS_VERSION_MAJOR) {
    return Status::NotSupported("unsupported format version " + std::to_string(Le16(in.s_version_major)));
  }
  if (Le32(in.s_block_size_log2) != VEXFS_BLOCK_SIZE_LOG2) return Status::NotSupported("unsupported block size");
  if (Le32(in.s_feature_incompat) & ~VEXFS_FEATURE_INCOMPAT_SUPP) {
    return Status::NotSupported("volume uses incompatible features this version does not know");
  }
  if (ro_only) *ro_only = (Le32(in.s_feature_ro_compat) & ~VEXFS_FEATURE_RO_COMPAT_SUPP) != 0;
  Geometry g = GeometryOf(in);
  if (g.block_count < 64) return Status::Corruption("volume too small");
  if (device_blocks != 0 && g.block_count > device_blocks) {
    return Status::Corruption("superblock says " + std::to_string(g.block_count) +
                              " blocks but the device has " + std::to_string(device_blocks));
  }
  if (g.inode_count < VEXFS_FIRST_INO || g.inode_count > (1ull << 40)) return Status::Corruption("bad inode count");
  struct Region {
    uint64_t start, len;
    const char* name;
  } regions[] = {{g.journal_start, g.journal_blocks, "journal"},
                 {g.ibitmap_start, g.ibitmap_blocks, "inode bitmap"},
                 {g.bbitmap_start, g.bbitmap_blocks, "block bitmap"},
                 {g.itable_start, g.itable_blocks, "inode table"}};
  uint64_t prev_end = 1;
  for (const auto& r : regions) {
    if (r.start < prev_end || r.len == 0 || r.len > g.block_count || r.start > g.block_count - r.len) {
      return Status::Corruption(std::string("superblock: bad ") + r.name + " region");
    }
    prev_end = r.start + r.len;
  }
  if (g.journal_blocks < 64) return Status::Corruption("superblock: journal too small");
  if (g.data_start != prev_end || g.data_start >= g.block_count) return Status::Corruption("superblock: bad data start");
  if (g.ibitmap_blocks != (g.inode_count + VEXFS_BITMAP_BITS - 1) / VEXFS_BITMAP_BITS) {
    return Status::Corruption("superblock: inode bitmap size does not match inode count");
  }
  if (g.bbitmap_blocks != (g.block_count + VEXFS_BITMAP_BITS - 1) / VEXFS_BITMAP_BITS) {
    return Status::Corruption("superblock: block bitmap size does not match block count");
  }
  if (g.itable_blocks != (g.inode_count + VEXFS_INODES_PER_BLOCK - 1) / VEXFS_INODES_PER_BLOCK) {
    return Status::Corruption("superblock: inode table size does not match inode count");
  }
  if (Le64(in.s_root_ino) != VEXFS_ROOT_INO) return Status::Corruption("superblock: bad root inode");
  if (Le64(in.s_orphan_head) > g.inode_count) return Status::Corruption("superblock: bad orphan list head");
  return Status::Ok();
}

Result<Geometry> ComputeGeometry(uint64_t block_count, uint64_t inode_count, uint64_t journal_blocks) {
  if (block_count < 256) return Status::InvalidArgument("volume too small: need at least 1 MiB");
  if (block_count > (1ull << 40)) return Status::InvalidArgument("volume too large (max 4 PiB)");
  Geometry g;
  g.block_count = block_count;
  if (inode_count == 0) inode_count = std::max<uint64_t>(block_count / 4, 64);
  inode_count = std::max<uint64_t>(inode_count, VEXFS_FIRST_INO + 8);
  // Round up to fill the last inode-table block.
  inode_count = (inode_count + VEXFS_INODES_PER_BLOCK - 1) / VEXFS_INODES_PER_BLOCK * VEXFS_INODES_PER_BLOCK;
  if (journal_blocks == 0) journal_blocks = std::clamp<uint64_t>(block_count / 64, 256, 32768);
  if (journal_blocks < 64) return Status::InvalidArgument("journal too small (minimum 64 blocks)");
  g.inode_count = inode_count;
  g.journal_start = 1;
  g.journal_blocks = journal_blocks;
  g.ibitmap_start = g.journal_start + g.journal_blocks;
  g.ibitmap_blocks = (inode_count + VEXFS_BITMAP_BITS - 1) / VEXFS_BITMAP_BITS;
  g.bbitmap_start = g.ibitmap_start + g.ibitmap_blocks;
  g.bbitmap_blocks = (block_count + VEXFS_BITMAP_BITS - 1) / VEXFS_BITMAP_BITS;
  g.itable_start = g.bbitmap_start + g.bbitmap_blocks;
  g.itable_blocks = inode_count / VEXFS_INODES_PER_BLOCK;
  g.data_start = g.itable_start + g.itable_blocks;
  // Keep at least 32 data blocks plus the backup superblock.
  if (g.data_start + 32 >= block_count) {
    return Status::InvalidArgument("volume too small for " + std::to_string(inode_count) +
                                   " inodes and a " + std::to_string(journal_blocks) + "-block journal");
  }
  return g;
}

Geometry GeometryOf(const vexfs_super_block& sb) {
  Geometry g;
  g.block_count = Le64(sb.s_block_count);
  g.inode_count = Le64(sb.s_inode_count);
  g.journal_start = Le64(sb.s_journal_start);
  g.journal_blocks = Le64(sb.s_journal_blocks);
  g.ibitmap_start = Le64(sb.s_ibitmap_start);
  g.ibitmap_blocks = Le64(sb.s_ibitmap_blocks);
  g.bbitmap_start = Le64(sb.s_bbitmap_start);
  g.bbitmap_blocks = Le64(sb.s_bbitmap_blocks);
  g.itable_start = Le64(sb.s_itable_start);
  g.itable_blocks = Le64(sb.s_itable_blocks);
  g.data_start = Le64(sb.s_data_start);
  return g;
}

namespace {
inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
  v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return le64toh(v);
}
}  // namespace

uint64_t SipHash24(const uint8_t key[16], const void* data, size_t len) {
  const uint64_t k0 = Load64(key), k1 = Load64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t full = len & ~size_t{7};
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = Load64(p + i);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(len) << 56;
  for (size_t i = 0; i < (len & 7); i++) b |= static_cast<uint64_t>(p[full + i]) << (8 * i);
  v3 ^= b;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t DirHash(const uint8_t seed[16], std::string_view name) {
  uint64_t h = SipHash24(seed, name.data(), name.size()) >> 1;
  if (h < VEXFS_DIR_HASH_MIN) h += VEXFS_DIR_HASH_MIN;
  return h;
}

uint8_t FileTypeOfMode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return VEXFS_FT_REG;
    case S_IFDIR: return VEXFS_FT_DIR;
    case S_IFLNK: return VEXFS_FT_LNK;
    case S_IFCHR: return VEXFS_FT_CHR;
    case S_IFBLK: return VEXFS_FT_BLK;
    case S_IFIFO: return VEXFS_FT_FIFO;
    case S_IFSOCK: return VEXFS_FT_SOCK;
    default: return VEXFS_FT_UNKNOWN;
  }
}

}  // namespace vexfs::core
