// Builds a populated volume through the real Filesystem API (the lead's
// core), so fsck and the reader are checked against what the filesystem
// actually writes: multi-leaf directory trees, extent trees, xattr blocks,
// EA inodes, symlinks, hard links, special files, preallocated space.
#ifndef VEXFS_TESTS_CORE_FS_IMAGE_UTIL_H_
#define VEXFS_TESTS_CORE_FS_IMAGE_UTIL_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "vexfs/block_device.h"
#include "vexfs/filesystem.h"
#include "vexfs/mkfs.h"

namespace vexfs::testing {

// Forwards to a device the test keeps (Mount takes ownership of its device).
class BorrowedDevice final : public BlockDevice {
 public:
  explicit BorrowedDevice(BlockDevice* d) : d_(d) {}
  uint64_t block_count() const override { return d_->block_count(); }
  Status Read(uint64_t b, uint32_t n, void* buf) override { return d_->Read(b, n, buf); }
  Status Write(uint64_t b, uint32_t n, const void* buf) override { return d_->Write(b, n, buf); }
  Status Flush() override { return d_->Flush(); }

 private:
  BlockDevice* d_;
};

// Formats `dev` and fills it. Returns false (with test failures) on error.
inline bool BuildFsImage(MemoryDevice* dev) {
  FormatOptions fo;
  fo.seed = 7;
  if (!Format(dev, fo).ok()) return false;
  MountOptions mo;
  mo.commit_interval_ms = 0;
  mo.check_permissions = false;
  auto m = Filesystem::Mount(std::make_unique<BorrowedDevice>(dev), mo);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return false;
  Filesystem& fs = **m;
  const Cred c = Cred::Root();
  bool ok = true;
  auto check = [&](const Status& s, const char* what) {
    if (!s.ok()) {
      ADD_FAILURE() << what << ": " << s.ToString();
      ok = false;
    }
  };
  auto d1 = fs.Mkdir(Filesystem::kRootIno, "d1", 0755, c);
  check(d1.status(), "mkdir d1");
  if (!ok) return false;
  auto d2 = fs.Mkdir(d1->ino, "d2", 0700, c);
  check(d2.status(), "mkdir d2");
  auto big = fs.Mkdir(Filesystem::kRootIno, "big", 0755, c);
  check(big.status(), "mkdir big");
  if (!ok) return false;
  for (int i = 0; i < 400 && ok; i++) {
    auto f =
        fs.Mknod(big->ino, "file-with-a-longish-name-" + std::to_string(i), S_IFREG | 0644, 0, c);
    check(f.status(), "create in big");
  }
  std::vector<uint8_t> data(3 * 4096 + 100, 'x');
  auto f1 = fs.Mknod(d1->ino, "data.bin", S_IFREG | 0644, 0, c);
  check(f1.status(), "create data.bin");
  if (!ok) return false;
  check(fs.Write(f1->ino, 0, data).status(), "write");
  // A fragmented file: every other block, enough extents for a tree.
  auto frag = fs.Mknod(Filesystem::kRootIno, "fragmented", S_IFREG | 0600, 0, c);
  check(frag.status(), "create fragmented");
  if (!ok) return false;
  std::vector<uint8_t> blk(4096, 'f');
  for (int i = 0; i < 300 && ok; i++)
    check(fs.Write(frag->ino, uint64_t(i) * 2 * 4096, blk).status(), "write frag");
  auto pre = fs.Mknod(Filesystem::kRootIno, "prealloc", S_IFREG | 0600, 0, c);
  check(pre.status(), "create prealloc");
  if (!ok) return false;
  check(fs.Fallocate(pre->ino, FALLOC_FL_KEEP_SIZE, 0, 64 * 4096), "fallocate");
  // Xattrs: inline, in the xattr block, in an EA inode.
  std::vector<uint8_t> small(8, 's'), mid(1500, 'm'), large(10000, 'L');
  check(fs.SetXattr(f1->ino, "user.small", small, 0, c), "xattr small");
  check(fs.SetXattr(f1->ino, "user.mid", mid, 0, c), "xattr mid");
  check(fs.SetXattr(f1->ino, "user.large", large, 0, c), "xattr large");
  check(fs.SetXattr(d1->ino, "trusted.dirattr", small, 0, c), "xattr dir");
  check(fs.Symlink(d1->ino, "short", "data.bin", c).status(), "symlink short");
  check(fs.Symlink(d1->ino, "long", std::string(300, 'p'), c).status(), "symlink long");
  check(fs.Link(f1->ino, Filesystem::kRootIno, "hardlink", c).status(), "link");
  check(fs.Mknod(d2->ino, "fifo", S_IFIFO | 0600, 0, c).status(), "mkfifo");
  check(fs.Mknod(d2->ino, "sock", S_IFSOCK | 0600, 0, c).status(), "mksock");
  check(fs.Mknod(d2->ino, "chr", S_IFCHR | 0600, 0x0103, c).status(), "mknod chr");
  auto gone = fs.Mknod(d1->ino, "gone", S_IFREG | 0644, 0, c);
  check(gone.status(), "create gone");
  if (ok) check(fs.Unlink(d1->ino, "gone", c), "unlink");
  check(fs.Rename(d1->ino, "data.bin", d2->ino, "moved.bin", 0, c), "rename");
  check(fs.Unmount(), "unmount");
  return ok;
}

}  // namespace vexfs::testing

#endif  // VEXFS_TESTS_CORE_FS_IMAGE_UTIL_H_
