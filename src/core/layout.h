// Helpers over the on-disk format shared by the library and the tools:
// endian conversion, checksums, geometry, the directory-name hash.
// Pure functions; thread-safe.
#ifndef VEXFS_CORE_LAYOUT_H_
#define VEXFS_CORE_LAYOUT_H_

#include <endian.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/status.h"

namespace vexfs::core {

inline uint16_t Le16(__le16 v) { return le16toh(v); }
inline uint32_t Le32(__le32 v) { return le32toh(v); }
inline uint64_t Le64(__le64 v) { return le64toh(v); }
inline __le16 ToLe16(uint16_t v) { return htole16(v); }
inline __le32 ToLe32(uint32_t v) { return htole32(v); }
inline __le64 ToLe64(uint64_t v) { return htole64(v); }

// Metadata blocks (struct vexfs_block_header first).
uint32_t ComputeBlockCrc(const uint8_t* block);
void SealBlock(uint8_t* block);
// OK when magic, crc and self block number match; EUCLEAN otherwise.
Status VerifyBlock(const uint8_t* block, uint32_t magic, uint64_t blocknr);
void InitBlockHeader(uint8_t* block, uint32_t magic, uint64_t blocknr, uint64_t owner);

// Inodes.
uint32_t ComputeInodeCrc(const vexfs_inode& ino);
void SealInode(vexfs_inode* ino);
bool InodeCrcOk(const vexfs_inode& ino);

// Superblock (the first VEXFS_SUPER_SIZE bytes of block 0).
void SealSuper(vexfs_super_block* sb);
// Checks magic, crc, version, block size, features, and that every region
// lies inside the volume without overlapping. `device_blocks` may be 0 to
// skip the size check.
Status ValidateSuper(const vexfs_super_block& sb, uint64_t device_blocks, bool* ro_only);

// Volume geometry decided by mkfs.
struct Geometry {
  uint64_t block_count = 0;
  uint64_t inode_count = 0;
  uint64_t journal_start = 0, journal_blocks = 0;
  uint64_t ibitmap_start = 0, ibitmap_blocks = 0;
  uint64_t bbitmap_start = 0, bbitmap_blocks = 0;
  uint64_t itable_start = 0, itable_blocks = 0;
  uint64_t data_start = 0;
};
// inode_count 0 picks one inode per 16 KiB; journal_blocks 0 picks a size
// from the volume size. Fails when the volume is too small.
Result<Geometry> ComputeGeometry(uint64_t block_count, uint64_t inode_count,
                                 uint64_t journal_blocks);
Geometry GeometryOf(const vexfs_super_block& sb);

inline uint64_t InodeBlock(const Geometry& g, uint64_t ino) {
  return g.itable_start + (ino - 1) / VEXFS_INODES_PER_BLOCK;
}
inline uint32_t InodeOffset(uint64_t ino) {
  return static_cast<uint32_t>(((ino - 1) % VEXFS_INODES_PER_BLOCK) * VEXFS_INODE_SIZE);
}

// SipHash-2-4 of `data` under a 16-byte key.
uint64_t SipHash24(const uint8_t key[16], const void* data, size_t len);
// Directory hash of a name (see the format header).
uint64_t DirHash(const uint8_t seed[16], std::string_view name);

// dirent type for a mode.
uint8_t FileTypeOfMode(uint32_t mode);

}  // namespace vexfs::core

#endif  // VEXFS_CORE_LAYOUT_H_
