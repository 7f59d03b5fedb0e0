// The command line and mount(8) integration: daemon mode, refusal of a
// volume that is already mounted, bad options, `mount -t fuse.vexfs` and an
// fstab line through the mount.fuse.vexfs helper.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "harness.h"

namespace vexfs::fusetest {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FuseMount : public ::testing::Test {
 protected:
  void SetUp() override {
    VEXFS_SKIP_UNLESS_FUSE();
    vol_ = std::make_unique<Volume>();
    out_ = vol_->dir() + "/out.log";
  }
  // For mounts made outside Volume (daemon mode, mount(8)): unmount and wait
  // until the daemon has let go of the image.
  void UnmountExternal() {
    if (IsMountPoint(vol_->mnt())) {
      if (RunCmd({"umount", vol_->mnt()}) != 0) RunCmd({"umount", "-l", vol_->mnt()});
    }
    EXPECT_TRUE(WaitImageUnlocked(vol_->image(), 20000));
  }
  void TearDown() override {
    if (!vol_) return;
    UnmountExternal();
    vol_.reset();
  }
  bool RoundTrip() {
    const std::string f = vol_->P("hello");
    const int fd = open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "hi", 2) != 2) return false;
    close(fd);
    return Slurp(f) == "hi";
  }
  std::unique_ptr<Volume> vol_;
  std::string out_;
};

TEST_F(FuseMount, DaemonModeReturnsOnceMounted) {
  ASSERT_EQ(
      RunCmd({VEXFS_FUSE_BIN, vol_->image(), vol_->mnt(), "-o", "allow_other,cache_mb=16"}, out_),
      0)
      << Slurp(out_);
  EXPECT_TRUE(IsMountPoint(vol_->mnt()));
  EXPECT_TRUE(RoundTrip());
  const std::string mounts = Slurp("/proc/self/mounts");
  EXPECT_NE(mounts.find(vol_->image() + " " + vol_->mnt() + " fuse.vexfs "), std::string::npos)
      << mounts;
  UnmountExternal();
  // The clean unmount left a clean, unlocked volume: mount it again.
  ASSERT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image(), vol_->mnt()}, out_), 0) << Slurp(out_);
  EXPECT_EQ(Slurp(vol_->P("hello")), "hi");
}

TEST_F(FuseMount, RefusesAVolumeInUse) {
  ASSERT_TRUE(vol_->Mount()) << vol_->log();
  const std::string mnt2 = vol_->dir() + "/mnt2";
  ASSERT_EQ(mkdir(mnt2.c_str(), 0755), 0);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image(), mnt2, "-f"}, out_), 1);
  EXPECT_NE(Slurp(out_).find("in use"), std::string::npos) << Slurp(out_);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image(), mnt2}, out_), 1);  // daemon mode reports it too
  EXPECT_FALSE(IsMountPoint(mnt2));
  EXPECT_EQ(vol_->Unmount(), 0);
}

// libfuse 3.14 drops FUSE_PARALLEL_DIROPS from the INIT reply; the daemon
// puts it back (every kernel since 4.7 offers it), so lookups and readdirs
// of one directory are not serialised by the kernel.
TEST_F(FuseMount, InitReplyCarriesParallelDirops) {
  ASSERT_TRUE(vol_->Mount("debug")) << vol_->log();
  EXPECT_TRUE(RoundTrip());
  EXPECT_EQ(vol_->Unmount(), 0);
  const std::string log = vol_->log();
  const size_t at = log.find("vexfs: INIT reply flags=");
  ASSERT_NE(at, std::string::npos) << log.substr(0, 2000);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("PARALLEL_DIROPS"), std::string::npos) << line;
  const unsigned long flags = std::strtoul(line.c_str() + line.find('=') + 1, nullptr, 16);
  EXPECT_NE(flags & (1ul << 18), 0u) << line;  // FUSE_PARALLEL_DIROPS
}

// The kernel gives a FUSE mount 128 KiB of readahead and the INIT reply
// can only lower it; the daemon raises it afterwards (4096 KiB by default,
// -o readahead_kb=N, 0 leaves the kernel's value), which is what large
// cold sequential reads need.
TEST_F(FuseMount, ReadaheadIsRaisedAfterInit) {
  auto file = [&] {
    struct stat st {};
    if (stat(vol_->mnt().c_str(), &st) != 0) return std::string("no stat");
    return "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) +
           "/read_ahead_kb";
  };
  auto readahead = [&] {
    std::string v = Slurp(file());
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  };
  if (geteuid() != 0) GTEST_SKIP() << "needs root to write /sys/class/bdi";
  ASSERT_TRUE(vol_->Mount()) << vol_->log();
  EXPECT_TRUE(RoundTrip());
  if (access(file().c_str(), W_OK) != 0) {
    const std::string why = std::strerror(errno);
    EXPECT_EQ(vol_->Unmount(), 0);
    GTEST_SKIP() << file() << " is not writable here (" << why << ")";
  }
  EXPECT_EQ(readahead(), "4096");
  EXPECT_EQ(vol_->Unmount(), 0);
  ASSERT_TRUE(vol_->Mount("readahead_kb=256")) << vol_->log();
  EXPECT_EQ(readahead(), "256");
  EXPECT_EQ(vol_->Unmount(), 0);
  ASSERT_TRUE(vol_->Mount("readahead_kb=0")) << vol_->log();
  EXPECT_EQ(readahead(), "128");
  EXPECT_EQ(vol_->Unmount(), 0);
}

TEST_F(FuseMount, BadArgumentsFail) {
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image(), vol_->mnt(), "-o", "bogus"}, out_), 1);
  EXPECT_NE(Slurp(out_).find("unknown option 'bogus'"), std::string::npos) << Slurp(out_);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->dir() + "/missing", vol_->mnt()}, out_), 1);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image(), vol_->dir() + "/nodir"}, out_), 1);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, vol_->image()}, out_), 1);
  EXPECT_EQ(RunCmd({VEXFS_FUSE_BIN, "--help"}, out_), 0);
  EXPECT_FALSE(IsMountPoint(vol_->mnt()));
  EXPECT_TRUE(WaitImageUnlocked(vol_->image(), 1000));
}

// mount(8) finds helpers only in /sbin: the test installs a symlink there,
// and only where it may (root in CI, or VEXFS_TEST_INSTALL_MOUNT_HELPER=1).
class MountHelper : public FuseMount {
 protected:
  void SetUp() override {
    FuseMount::SetUp();
    if (IsSkipped()) return;
    const char* helper = "/sbin/mount.fuse.vexfs";
    char resolved[4096];
    const ssize_t n = readlink(helper, resolved, sizeof resolved - 1);
    if (n > 0 && std::string(resolved, n) == VEXFS_MOUNT_HELPER) return;  // ours already
    if (access(helper, F_OK) == 0) GTEST_SKIP() << helper << " exists and is not this build's";
    if (getenv("CI") == nullptr && getenv("VEXFS_TEST_INSTALL_MOUNT_HELPER") == nullptr) {
      GTEST_SKIP() << "installing " << helper
                   << " needs CI=1 or VEXFS_TEST_INSTALL_MOUNT_HELPER=1 (root)";
    }
    ASSERT_EQ(symlink(VEXFS_MOUNT_HELPER, helper), 0) << strerror(errno);
    installed_ = helper;
  }
  void TearDown() override {
    FuseMount::TearDown();
    if (!installed_.empty()) unlink(installed_.c_str());
  }
  std::string installed_;
};

TEST_F(MountHelper, MountTypeFuseVexfs) {
  ASSERT_EQ(RunCmd({"mount", "-t", "fuse.vexfs", vol_->image(), vol_->mnt(), "-o",
                    "allow_other,commit_ms=100,noatime"},
                   out_),
            0)
      << Slurp(out_);
  ASSERT_TRUE(IsMountPoint(vol_->mnt()));
  EXPECT_TRUE(RoundTrip());
  const std::string mounts = Slurp("/proc/self/mounts");
  EXPECT_NE(mounts.find(vol_->mnt() + " fuse.vexfs rw,nosuid,nodev,noatime"), std::string::npos)
      << mounts;
  UnmountExternal();
  EXPECT_FALSE(IsMountPoint(vol_->mnt()));
}

TEST_F(MountHelper, FstabLine) {
  const std::string fstab = vol_->dir() + "/fstab";
  std::ofstream(fstab) << vol_->image() << " " << vol_->mnt()
                       << " fuse.vexfs defaults,nofail,x-test.opt=1,cache_mb=32,allow_other 0 0\n";
  ASSERT_EQ(RunCmd({"mount", "-T", fstab, vol_->mnt()}, out_), 0) << Slurp(out_);
  ASSERT_TRUE(IsMountPoint(vol_->mnt()));
  EXPECT_TRUE(RoundTrip());
  UnmountExternal();
  // The same line read-only.
  std::ofstream(fstab) << vol_->image() << " " << vol_->mnt() << " fuse.vexfs ro 0 0\n";
  ASSERT_EQ(RunCmd({"mount", "-T", fstab, vol_->mnt()}, out_), 0) << Slurp(out_);
  EXPECT_EQ(Slurp(vol_->P("hello")), "hi");
  EXPECT_EQ(Err(open(vol_->P("x").c_str(), O_WRONLY | O_CREAT, 0644)), EROFS);
}

}  // namespace
}  // namespace vexfs::fusetest
