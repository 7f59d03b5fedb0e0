// CRC-32C (Castagnoli), the checksum of every VexFS metadata block and of
// the vector engine's serialized blobs. Same polynomial and conventions as
// the kernel's crc32c(): pass ~0 as the initial seed for a fresh checksum
// and invert the result (Crc32c() does both).
//
// Thread safety: pure functions.
#ifndef VEXFS_CRC32C_H_
#define VEXFS_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace vexfs {

// Raw update: crc = crc32c_update(crc, data) with no pre/post inversion.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
// Standard CRC-32C of a buffer (init ~0, final xor ~0).
inline uint32_t Crc32c(const void* data, size_t n) { return ~Crc32cExtend(~0u, data, n); }

}  // namespace vexfs

#endif  // VEXFS_CRC32C_H_
