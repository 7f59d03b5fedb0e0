// NoSecurityXattrs: inodes known to carry no security.* attribute.
//
// Why: FUSE mounts lack SB_NOSEC, so the kernel asks
// getxattr("security.capability") before every write(2) to a FUSE file
// (file_remove_privs). The answer is nearly always ENODATA; this cache lets
// Filesystem::GetXattr give it without the filesystem lock, so the request
// does not queue behind a WRITE holding that lock.
//
// Direct-mapped: slot ino % kSlots holds one inode number; a newer entry
// evicts an older one, which only costs a slow-path lookup later.
//
// Thread safety: Has() is lock-free and may run concurrently with anything.
// Remember() and Forget() REQUIRE the filesystem lock, which is also held by
// every change to an inode's security attributes and by inode deletion:
// Remember() runs right after reading the attributes under that lock, and
// every such change calls Forget() before the lock is released, so a slot
// never outlives the fact it records.
#ifndef VEXFS_CORE_SEC_XATTR_CACHE_H_
#define VEXFS_CORE_SEC_XATTR_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace vexfs::core {

class NoSecurityXattrs {
 public:
  NoSecurityXattrs() : slots_(new std::atomic<uint64_t>[kSlots]) {
    for (size_t i = 0; i < kSlots; i++) slots_[i].store(0, std::memory_order_relaxed);
  }

  // True if inode `ino` exists and has no security.* attribute.
  bool Has(uint64_t ino) const {
    return ino != 0 && slots_[ino % kSlots].load(std::memory_order_acquire) == ino;
  }
  // REQUIRES: the filesystem lock; `ino` was just seen without security.*.
  void Remember(uint64_t ino) { slots_[ino % kSlots].store(ino, std::memory_order_release); }
  // REQUIRES: the filesystem lock. Call before a security.* attribute of
  // `ino` may change and before `ino` is freed.
  void Forget(uint64_t ino) {
    uint64_t expected = ino;
    slots_[ino % kSlots].compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }

 private:
  static constexpr size_t kSlots = 4096;  // 32 KiB
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
};

}  // namespace vexfs::core

#endif  // VEXFS_CORE_SEC_XATTR_CACHE_H_
