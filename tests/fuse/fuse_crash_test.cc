// Daemon lifecycle: SIGTERM unmounts cleanly (even data still in the
// kernel's writeback cache reaches the volume); after kill -9 the next
// mount replays the journal, fsync'ed data is intact and fsck is clean.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "harness.h"
#include "vexfs/block_device.h"
#include "vexfs/filesystem.h"
#include "vexfs/fsck.h"

namespace vexfs::fusetest {
namespace {

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, 0);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ReadAll(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

bool WriteAll(const std::string& path, const std::string& data, bool do_fsync) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  if (do_fsync) ok = ok && fsync(fd) == 0;
  return close(fd) == 0 && ok;
}

// Offline check of the image: no problems left.
void ExpectFsckClean(const std::string& image, const char* when) {
  auto dev = OpenBlockDevice(image, OpenOptions{.read_only = true, .exclusive = true});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  CheckOptions co;
  co.force = true;
  Result<CheckReport> r = CheckVolume(dev->get(), co);
  ASSERT_TRUE(r.ok()) << when << ": " << r.status().ToString();
  for (const Problem& p : r->problems) ADD_FAILURE() << when << ": " << p.code << ": " << p.message;
  EXPECT_TRUE(r->checked) << when;
}

// How the daemon learns it must stop.
enum class Stop {
  kSigtermWhileUnmounting,  // SIGTERM, and at once fusermount3 -u / umount -l
  kLazyUnmountThenSigterm,  // umount -l first: the mount point no longer leads to it
};

void SigtermUnmountsCleanly(const std::string& opts, Stop how) {
  VEXFS_SKIP_UNLESS_FUSE();
  Volume vol;
  ASSERT_TRUE(vol.Mount(opts)) << vol.log();
  const std::string data = Pattern(3 << 20, 1);
  // Left open and unsynced: with the writeback cache these pages may still
  // sit in the kernel when the signal arrives.
  const int fd = open(vol.P("open-file").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(WriteAll(vol.P("closed-file"), "closed", false));
  if (how == Stop::kLazyUnmountThenSigterm) {
    ASSERT_EQ(umount2(vol.mnt().c_str(), MNT_DETACH), 0) << strerror(errno);
    ASSERT_EQ(kill(vol.pid(), SIGTERM), 0);
    EXPECT_EQ(vol.Reap(20000), 0) << vol.log();  // exit 0, by itself
  } else {
    ASSERT_EQ(kill(vol.pid(), SIGTERM), 0);
    EXPECT_EQ(vol.Unmount(), 0) << vol.log();  // waits for the daemon: exit 0
  }
  close(fd);
  EXPECT_FALSE(vol.mounted());

  // Marked clean: mounting with the library replays nothing.
  {
    auto dev = OpenBlockDevice(vol.image(), OpenOptions{});
    ASSERT_TRUE(dev.ok());
    MountInfo info;
    auto fs = Filesystem::Mount(std::move(*dev), MountOptions{}, &info);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    EXPECT_TRUE(info.was_clean);
    EXPECT_EQ(info.replayed_transactions, 0u);
    ASSERT_TRUE((*fs)->Unmount().ok());
  }
  ExpectFsckClean(vol.image(), "after SIGTERM");
  ASSERT_TRUE(vol.Mount(opts)) << vol.log();
  EXPECT_TRUE(ReadAll(vol.P("open-file")) == data) << "open-file lost its unsynced data";
  EXPECT_EQ(ReadAll(vol.P("closed-file")), "closed");
  EXPECT_EQ(vol.Unmount(), 0) << vol.log();
}

TEST(FuseLifecycle, SigtermUnmountsCleanly) {
  SigtermUnmountsCleanly("", Stop::kSigtermWhileUnmounting);
}

// With the writeback cache the open file's pages may still be in the
// kernel: the daemon's syncfs() on SIGTERM must fetch them, and wait for the
// WRITEs it causes (the kernel does not).
TEST(FuseLifecycle, SigtermUnmountsCleanlyWritebackCache) {
  SigtermUnmountsCleanly("default_permissions", Stop::kSigtermWhileUnmounting);
}

// The mount was detached before the signal, with a file still open: the
// mount point leads elsewhere, but the mount and its dirty pages live on.
TEST(FuseLifecycle, SigtermAfterLazyUnmountKeepsOpenFileData) {
  SigtermUnmountsCleanly("default_permissions", Stop::kLazyUnmountThenSigterm);
}

TEST(FuseLifecycle, KillNineKeepsFsyncedData) {
  VEXFS_SKIP_UNLESS_FUSE();
  Volume vol(256);
  ASSERT_TRUE(vol.Mount("commit_ms=60000")) << vol.log();  // only fsync commits
  std::vector<std::pair<std::string, std::string>> synced;
  ASSERT_EQ(mkdir(vol.P("dir").c_str(), 0755), 0);
  for (int i = 0; i < 8; ++i) {
    const std::string name = "dir/synced-" + std::to_string(i);
    synced.emplace_back(name, Pattern(100000 * i + 1, i));
    ASSERT_TRUE(WriteAll(vol.P(name), synced.back().second, true));
  }
  const int dfd = open(vol.P("dir").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  ASSERT_EQ(fsync(dfd), 0);
  close(dfd);
  // Rewritten in place and fsync'ed: the new contents must win.
  synced[3].second = Pattern(250000, 99);
  ASSERT_TRUE(WriteAll(vol.P(synced[3].first), synced[3].second, true));
  // Not synced: may or may not survive, but must not break anything.
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(WriteAll(vol.P("unsynced-" + std::to_string(i)), Pattern(300000, 50 + i), false));
  }
  ASSERT_EQ(unlink(vol.P("dir/synced-0").c_str()), 0);              // an unsynced unlink
  const int open_fd = open(vol.P("dir/synced-1").c_str(), O_RDWR);  // held across the kill
  ASSERT_GE(open_fd, 0);

  vol.Kill9();
  close(open_fd);
  EXPECT_FALSE(vol.mounted());

  // The crashed image checks clean with the journal overlaid (no repair).
  {
    auto dev = OpenBlockDevice(vol.image(), OpenOptions{.read_only = true, .exclusive = true});
    ASSERT_TRUE(dev.ok());
    Result<CheckReport> r = CheckVolume(dev->get(), CheckOptions{});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const Problem& p : r->problems)
      ADD_FAILURE() << "crashed image: " << p.code << ": " << p.message;
  }

  ASSERT_TRUE(vol.Mount()) << vol.log();
  EXPECT_NE(vol.log().find("not cleanly unmounted"), std::string::npos) << vol.log();
  for (size_t i = 1; i < synced.size(); ++i) {
    EXPECT_TRUE(ReadAll(vol.P(synced[i].first)) == synced[i].second) << synced[i].first;
  }
  const std::string first = ReadAll(vol.P("dir/synced-0"));
  EXPECT_TRUE(first == synced[0].second || first.rfind("<", 0) == 0);
  for (int i = 0; i < 8; ++i) {
    const std::string u = ReadAll(vol.P("unsynced-" + std::to_string(i)));
    if (u[0] != '<') {
      EXPECT_LE(u.size(), 300000u);
    }
  }
  // The replayed volume takes new writes.
  ASSERT_TRUE(WriteAll(vol.P("after"), "after", true));
  EXPECT_EQ(vol.Unmount(), 0) << vol.log();
  ExpectFsckClean(vol.image(), "after recovery and clean unmount");
}

// With the writeback cache, pages rewritten in place reach the daemon as
// WRITEs that leave the file times alone (the kernel owns them) and run
// outside the filesystem lock; the kernel sends its times in a SETATTR
// before the FSYNC. Both must survive kill -9 once fsync returned.
TEST(FuseLifecycle, KillNineKeepsFsyncedOverwritesAndTimes) {
  VEXFS_SKIP_UNLESS_FUSE();
  Volume vol;
  ASSERT_TRUE(vol.Mount("default_permissions,commit_ms=60000")) << vol.log();
  std::string want = Pattern(64 * 4096, 7);
  ASSERT_TRUE(WriteAll(vol.P("f"), want, true));
  struct stat before {};
  ASSERT_EQ(stat(vol.P("f").c_str(), &before), 0);
  usleep(20000);  // the rewrite's mtime must differ from the first one's
  const int fd = open(vol.P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::mt19937 rng(3);
  for (int i = 0; i < 40; ++i) {
    const size_t off = size_t{rng() % 64} * 4096;
    const std::string page = Pattern(4096, 100 + i);
    ASSERT_EQ(pwrite(fd, page.data(), page.size(), static_cast<off_t>(off)), 4096);
    want.replace(off, 4096, page);
  }
  ASSERT_EQ(fsync(fd), 0);
  struct stat synced {};
  ASSERT_EQ(fstat(fd, &synced), 0);
  EXPECT_TRUE(synced.st_mtim.tv_sec != before.st_mtim.tv_sec ||
              synced.st_mtim.tv_nsec != before.st_mtim.tv_nsec);
  vol.Kill9();
  close(fd);

  ASSERT_TRUE(vol.Mount()) << vol.log();
  EXPECT_TRUE(ReadAll(vol.P("f")) == want) << "fsync'ed overwrites lost";
  struct stat after {};
  ASSERT_EQ(stat(vol.P("f").c_str(), &after), 0);
  EXPECT_EQ(after.st_mtim.tv_sec, synced.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, synced.st_mtim.tv_nsec);
  EXPECT_EQ(after.st_ctim.tv_sec, synced.st_ctim.tv_sec);
  EXPECT_EQ(after.st_ctim.tv_nsec, synced.st_ctim.tv_nsec);
  EXPECT_EQ(vol.Unmount(), 0) << vol.log();
  ExpectFsckClean(vol.image(), "after overwrites, kill -9 and recovery");
}

}  // namespace
}  // namespace vexfs::fusetest
