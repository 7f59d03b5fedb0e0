// Permission semantics through the mount as unprivileged users (fork +
// setgroups/setgid/setuid), once with VexFS checking (the default) and
// once with -o default_permissions (the kernel checks).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "harness.h"

namespace vexfs::fusetest {
namespace {

constexpr uid_t kNobody = 65534;
constexpr uid_t kOther = 65533;
constexpr gid_t kGroup = 4242;

class FusePerm : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    VEXFS_SKIP_UNLESS_FUSE();
    vol_ = std::make_unique<Volume>();
    ASSERT_TRUE(vol_->Mount(GetParam() ? "default_permissions" : "")) << vol_->log();
  }
  void TearDown() override {
    if (vol_) {
      EXPECT_EQ(vol_->Unmount(), 0) << vol_->log();
    }
  }
  std::string P(const std::string& rel) const { return vol_->P(rel); }
  void Touch(const std::string& rel, mode_t mode) {
    const int fd = open(P(rel).c_str(), O_WRONLY | O_CREAT, mode);
    ASSERT_GE(fd, 0) << strerror(errno);
    close(fd);
    ASSERT_EQ(chmod(P(rel).c_str(), mode), 0);
  }
  static int AsNobody(const std::function<int()>& fn) { return RunAs(kNobody, kNobody, {}, fn); }
  static int AsOther(const std::function<int()>& fn) { return RunAs(kOther, kOther, {}, fn); }

  std::unique_ptr<Volume> vol_;
};

TEST_P(FusePerm, NonOwnerCannotChmodOrChown) {
  Touch("f", 0644);
  const std::string f = P("f");
  EXPECT_EQ(AsNobody([&] { return Err(chmod(f.c_str(), 0777)); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(chown(f.c_str(), kNobody, -1)); }), EPERM);
  ASSERT_EQ(chown(f.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(AsNobody([&] { return Err(chmod(f.c_str(), 0600)); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(chown(f.c_str(), 0, -1)); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(chown(f.c_str(), -1, kGroup)); }), EPERM);  // not a member
  EXPECT_EQ(RunAs(kNobody, kNobody, {kGroup}, [&] { return Err(chown(f.c_str(), -1, kGroup)); }),
            0);
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_gid, kGroup);
}

TEST_P(FusePerm, ReadWriteAndCreateDenied) {
  Touch("f", 0644);
  const std::string f = P("f"), g = P("g");
  EXPECT_EQ(AsNobody([&] { return Err(open(f.c_str(), O_WRONLY)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(open(f.c_str(), O_RDONLY | O_TRUNC)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(truncate(f.c_str(), 0)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(access(f.c_str(), W_OK)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(access(f.c_str(), R_OK)); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(close(open(f.c_str(), O_RDONLY))); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(open(g.c_str(), O_WRONLY | O_CREAT, 0644)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(mkdir(g.c_str(), 0755)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(unlink(f.c_str())); }), EACCES);
  Touch("secret", 0600);
  EXPECT_EQ(AsNobody([&] { return Err(open(P("secret").c_str(), O_RDONLY)); }), EACCES);
  // Explicit times need ownership; "now" needs only write permission.
  Touch("shared", 0666);
  const std::string s = P("shared");
  EXPECT_EQ(AsNobody([&] { return Err(utimensat(AT_FDCWD, s.c_str(), nullptr, 0)); }), 0);
  const timespec ts[2] = {{1, 0}, {1, 0}};
  EXPECT_EQ(AsNobody([&] { return Err(utimensat(AT_FDCWD, s.c_str(), ts, 0)); }), EPERM);
}

TEST_P(FusePerm, Mode0700DirectoryDeniesSearch) {
  ASSERT_EQ(mkdir(P("private").c_str(), 0700), 0);
  Touch("private/f", 0644);
  const std::string d = P("private"), f = P("private/f");
  struct stat st;
  EXPECT_EQ(AsNobody([&] { return Err(stat(f.c_str(), &st)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(open(f.c_str(), O_RDONLY)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(open(d.c_str(), O_RDONLY | O_DIRECTORY)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(chdir(d.c_str())); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(stat(d.c_str(), &st)); }), 0);
  ASSERT_EQ(chmod(d.c_str(), 0711), 0);  // search without read
  EXPECT_EQ(AsNobody([&] { return Err(stat(f.c_str(), &st)); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(open(d.c_str(), O_RDONLY | O_DIRECTORY)); }), EACCES);
}

TEST_P(FusePerm, StickyDirectory) {
  ASSERT_EQ(mkdir(P("tmp").c_str(), 0777), 0);
  ASSERT_EQ(chmod(P("tmp").c_str(), 01777), 0);
  const std::string mine = P("tmp/mine"), moved = P("tmp/moved");
  EXPECT_EQ(AsNobody([&] { return Err(close(open(mine.c_str(), O_WRONLY | O_CREAT, 0666))); }), 0);
  struct stat st;
  ASSERT_EQ(stat(mine.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);  // new files belong to the caller
  EXPECT_EQ(st.st_gid, kNobody);
  EXPECT_EQ(AsOther([&] { return Err(unlink(mine.c_str())); }), EPERM);
  EXPECT_EQ(AsOther([&] { return Err(rename(mine.c_str(), moved.c_str())); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(rename(mine.c_str(), moved.c_str())); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(unlink(moved.c_str())); }), 0);
  EXPECT_EQ(AsOther([&] { return Err(mkdir(P("tmp/od").c_str(), 0777)); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(rmdir(P("tmp/od").c_str())); }), EPERM);
  EXPECT_EQ(rmdir(P("tmp/od").c_str()), 0);  // root may
}

TEST_P(FusePerm, SetgidDirectoryGroupInheritance) {
  ASSERT_EQ(mkdir(P("proj").c_str(), 0777), 0);
  ASSERT_EQ(chown(P("proj").c_str(), 0, kGroup), 0);
  ASSERT_EQ(chmod(P("proj").c_str(), 02777), 0);
  const std::string f = P("proj/f"), d = P("proj/sub");
  EXPECT_EQ(AsNobody([&] { return Err(close(open(f.c_str(), O_WRONLY | O_CREAT, 0644))); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(mkdir(d.c_str(), 0755)); }), 0);
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_FALSE(st.st_mode & S_ISGID);
  ASSERT_EQ(stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_TRUE(st.st_mode & S_ISGID);
  // A non-member cannot keep S_ISGID on its own file in that group.
  EXPECT_EQ(AsNobody([&] { return Err(chmod(f.c_str(), 02755)); }), 0);
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_FALSE(st.st_mode & S_ISGID);
}

TEST_P(FusePerm, XattrNamespaces) {
  Touch("f", 0644);
  const std::string f = P("f");
  EXPECT_EQ(AsNobody([&] { return Err(setxattr(f.c_str(), "user.x", "1", 1, 0)); }), EACCES);
  ASSERT_EQ(setxattr(f.c_str(), "user.x", "1", 1, 0), 0);
  char buf[4];
  EXPECT_EQ(AsNobody([&] { return Err(getxattr(f.c_str(), "user.x", buf, sizeof buf)); }), 0);
  EXPECT_EQ(AsNobody([&] { return Err(setxattr(f.c_str(), "trusted.x", "1", 1, 0)); }), EPERM);
}

// Every read-write mount uses the writeback cache, so the kernel keeps the
// file times and flushes them later as explicit times under the flusher's
// credentials; truncation through a descriptor carries its handle. A writer
// who does not own the file, and whose descriptor outlived a chmod that took
// write permission away, must still write, ftruncate and fsync (Linux
// checks write access at open), while explicit times stay the owner's.
TEST_P(FusePerm, NonOwnerWriterKeepsWriteTimesButCannotChooseThem) {
  Touch("f", 0644);  // root's, not writable by nobody
  const std::string f = P("f");
  const timespec old_times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), old_times, 0), 0);
  const int fd = open(f.c_str(), O_WRONLY);  // inherited by nobody below
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_EQ(AsNobody([&] {
              if (pwrite(fd, "hello world", 11, 0) != 11) return errno;
              if (ftruncate(fd, 5) != 0) return errno;
              if (pwrite(fd, "!", 1, 5) != 1) return errno;
              return Err(fsync(fd));
            }),
            0);
  // Times chosen by a non-owner: EPERM, even through a writable descriptor,
  // and before write permission is looked at (EACCES), as Linux orders it.
  const timespec chosen[2] = {{1, 0}, {1, 0}};
  EXPECT_EQ(AsNobody([&] { return Err(futimens(fd, chosen)); }), EPERM);
  const timespec now_and_chosen[2] = {{0, UTIME_NOW}, {1, 0}};
  EXPECT_EQ(AsNobody([&] { return Err(utimensat(AT_FDCWD, f.c_str(), now_and_chosen, 0)); }), EPERM);
  const timespec chosen_and_now[2] = {{1, 0}, {0, UTIME_NOW}};
  EXPECT_EQ(AsNobody([&] { return Err(utimensat(AT_FDCWD, f.c_str(), chosen_and_now, 0)); }), EPERM);
  // "Now" needs write permission, which the mode does not give.
  EXPECT_EQ(AsNobody([&] { return Err(utimensat(AT_FDCWD, f.c_str(), nullptr, 0)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return Err(futimens(fd, nullptr)); }), EACCES);
  ASSERT_EQ(close(fd), 0);
  auto check = [&](const char* when) {
    struct stat st {};
    ASSERT_EQ(stat(f.c_str(), &st), 0) << when;
    EXPECT_EQ(st.st_size, 6) << when;
    EXPECT_GT(st.st_mtim.tv_sec, 1000) << when;  // the writer's, not the refused 1
    EXPECT_NE(st.st_atim.tv_sec, 1) << when;
    char buf[16] = {};
    const int rfd = open(f.c_str(), O_RDONLY);
    ASSERT_GE(rfd, 0) << when;
    EXPECT_EQ(read(rfd, buf, sizeof buf), 6) << when;
    close(rfd);
    EXPECT_STREQ(buf, "hello!") << when;
  };
  check("mounted");
  ASSERT_TRUE(vol_->Remount(GetParam() ? "default_permissions" : "")) << vol_->log();
  check("after remount");
}

// vexfs-fuse negotiates FUSE_HANDLE_KILLPRIV_V2, so the daemon, not the
// kernel, clears setuid/setgid when a user without CAP_FSETID writes or
// truncates a file, and on chown; stat() and exec must see it at once.
TEST_P(FusePerm, WriteTruncateAndChownClearSetuid) {
  Touch("f", 06777);
  const std::string f = P("f");
  auto mode = [&] {
    struct stat st {};
    EXPECT_EQ(stat(f.c_str(), &st), 0);
    return st.st_mode & 07777;
  };
  auto append = [&] {
    const int fd = open(f.c_str(), O_WRONLY | O_APPEND);
    if (fd < 0) return errno;
    const int err = write(fd, "x", 1) == 1 ? 0 : errno;
    close(fd);
    return err;
  };
  EXPECT_EQ(append(), 0);  // root has CAP_FSETID: the bits stay
  EXPECT_EQ(mode(), 06777u);
  EXPECT_EQ(AsNobody(append), 0);
  EXPECT_EQ(mode(), 0777u);
  // setgid without group execute (mandatory locking) is not a privilege.
  ASSERT_EQ(chmod(f.c_str(), 06767), 0);
  EXPECT_EQ(AsNobody(append), 0);
  EXPECT_EQ(mode(), 02767u);
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  EXPECT_EQ(AsNobody([&] { return Err(truncate(f.c_str(), 1)); }), 0);
  EXPECT_EQ(mode(), 0777u);
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  EXPECT_EQ(AsNobody([&] { return Err(close(open(f.c_str(), O_WRONLY | O_TRUNC))); }), 0);
  EXPECT_EQ(mode(), 0777u);
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  EXPECT_EQ(AsNobody([&] {
              const int fd = open(f.c_str(), O_WRONLY);
              if (fd < 0) return errno;
              const int err = Err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1));
              close(fd);
              return err;
            }),
            0);
  EXPECT_EQ(mode(), 0777u);
  ASSERT_EQ(chmod(f.c_str(), 06777), 0);
  ASSERT_EQ(chown(f.c_str(), kOther, -1), 0);  // even by root
  EXPECT_EQ(mode(), 0777u);
  // A directory's setgid bit is inheritance, not privilege: chown keeps it.
  ASSERT_EQ(mkdir(P("d").c_str(), 0775), 0);
  ASSERT_EQ(chmod(P("d").c_str(), 02775), 0);
  ASSERT_EQ(chown(P("d").c_str(), kOther, -1), 0);
  struct stat st {};
  ASSERT_EQ(stat(P("d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02775u);
}

INSTANTIATE_TEST_SUITE_P(Checks, FusePerm, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "KernelDefaultPermissions" : "VexfsChecks";
                         });

}  // namespace
}  // namespace vexfs::fusetest
