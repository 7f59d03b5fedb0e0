// BlockDevice: every byte VexFS reads or writes goes through this interface
// (leveldb's Env idea), so tests can substitute an in-memory device, a
// fault-injecting one or a recording one for crash-consistency testing.
//
// Units are 4 KiB blocks (VEXFS_BLOCK_SIZE). Write() may sit in a volatile
// cache until Flush() returns: only data written before a successful
// Flush() is guaranteed to survive a power cut.
//
// Thread safety: implementations must allow concurrent Read/Write calls on
// distinct blocks from several threads. Flush may run concurrently too.
#ifndef VEXFS_BLOCK_DEVICE_H_
#define VEXFS_BLOCK_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vexfs/status.h"

namespace vexfs {

inline constexpr uint32_t kBlockSize = 4096;

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Size of the device in blocks.
  virtual uint64_t block_count() const = 0;
  // REQUIRES: block + count <= block_count(); buf holds count * kBlockSize.
  virtual Status Read(uint64_t block, uint32_t count, void* buf) = 0;
  // Read() for file data (not metadata): an image file or block device
  // serves small reads into a 4 KiB-aligned `buf` of ranges the host has
  // not cached with O_DIRECT, so random reads of file data, already cached
  // by the page cache above VexFS, skip a second copy in the host's. Sees
  // every completed Write().
  virtual Status ReadData(uint64_t block, uint32_t count, void* buf) {
    return Read(block, count, buf);
  }
  virtual Status Write(uint64_t block, uint32_t count, const void* buf) = 0;
  // Durability barrier: everything written before is on stable storage.
  virtual Status Flush() = 0;
  // Makes [block, block + count) read as zeros (fast paths: hole punching
  // for image files, BLKZEROOUT for block devices).
  virtual Status Zero(uint64_t block, uint64_t count);
  virtual bool read_only() const { return false; }
};

struct OpenOptions {
  bool read_only = false;
  // Take an exclusive lock (flock, and O_EXCL for block devices) so that a
  // second mount of the same volume is refused with EBUSY.
  bool exclusive = true;
  // Early write-back: once this many bytes have been written since the host
  // last started writing the image out, ask it to start again
  // (sync_file_range(SYNC_FILE_RANGE_WRITE) over the whole image, from a
  // background thread, so no Write() waits for it). An fsync then finds
  // most of the data on its way to the disk instead of all of it in the
  // host's page cache. Durability does not depend on it: it only moves
  // write-back that the host may do at any time anyway earlier, and errors
  // are still reported by Flush(). 0: leave write-back to the host.
  uint64_t start_writeback_bytes = uint64_t{8} << 20;
};

// Opens an image file or a block device. A regular file's size is rounded
// down to whole blocks.
Result<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                     const OpenOptions& options);

// A RAM-backed device; Flush() is a no-op. Contents start zeroed.
class MemoryDevice final : public BlockDevice {
 public:
  explicit MemoryDevice(uint64_t blocks) : data_(blocks * kBlockSize) {}
  explicit MemoryDevice(std::vector<uint8_t> image) : data_(std::move(image)) {}

  uint64_t block_count() const override { return data_.size() / kBlockSize; }
  Status Read(uint64_t block, uint32_t count, void* buf) override;
  Status Write(uint64_t block, uint32_t count, const void* buf) override;
  Status Flush() override { return Status::Ok(); }

  // Direct access for tests and tools (not thread-safe against writers).
  std::vector<uint8_t>& image() { return data_; }

 private:
  std::vector<uint8_t> data_;
};

}  // namespace vexfs

#endif  // VEXFS_BLOCK_DEVICE_H_
