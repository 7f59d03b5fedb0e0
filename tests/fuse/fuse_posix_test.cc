// POSIX conformance through a real FUSE mount: success paths and errno
// cases per syscall, as root. Permission cases are in fuse_perm_test.cc.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace vexfs::fusetest {
namespace {

class FusePosix : public ::testing::Test {
 protected:
  void SetUp() override {
    VEXFS_SKIP_UNLESS_FUSE();
    vol_ = std::make_unique<Volume>();
    ASSERT_TRUE(vol_->Mount()) << vol_->log();
  }
  void TearDown() override {
    if (vol_) {
      EXPECT_EQ(vol_->Unmount(), 0) << vol_->log();
    }
    vol_.reset();
  }
  std::string P(const std::string& rel) const { return vol_->P(rel); }

  void WriteFile(const std::string& rel, const std::string& data) {
    const int fd = open(P(rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << rel << ": " << strerror(errno);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(close(fd), 0);
  }
  std::string ReadFile(const std::string& rel) {
    const int fd = open(P(rel).c_str(), O_RDONLY);
    if (fd < 0) return "<" + std::string(strerror(errno)) + ">";
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
    close(fd);
    return out;
  }

  std::unique_ptr<Volume> vol_;
};

TEST_F(FusePosix, CreateWriteReadStat) {
  const std::string data(100000, 'x');
  WriteFile("a", data);
  EXPECT_EQ(ReadFile("a"), data);
  struct stat st;
  ASSERT_EQ(stat(P("a").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_size, 100000);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_GE(st.st_blocks * 512, 100000);
  // pread/pwrite at offsets, sparse gap reads zeros.
  const int fd = open(P("a").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "end", 3, 1 << 20), 3);
  char buf[8] = {1};
  ASSERT_EQ(pread(fd, buf, 4, 500000), 4);
  EXPECT_EQ(std::string(buf, 4), std::string(4, '\0'));
  ASSERT_EQ(pread(fd, buf, 8, (1 << 20) + 1), 2);
  EXPECT_EQ(std::string(buf, 2), "nd");
  close(fd);
}

TEST_F(FusePosix, NamespaceErrnos) {
  WriteFile("f", "x");
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d/sub").c_str(), 0755), 0);
  WriteFile("d/sub/g", "y");
  EXPECT_EQ(Err(open(P("missing").c_str(), O_RDONLY)), ENOENT);
  EXPECT_EQ(Err(open(P("missing/x").c_str(), O_RDONLY | O_CREAT, 0644)), ENOENT);
  EXPECT_EQ(Err(mkdir(P("d").c_str(), 0755)), EEXIST);
  EXPECT_EQ(Err(mkdir(P("f").c_str(), 0755)), EEXIST);
  EXPECT_EQ(Err(open(P("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644)), EEXIST);
  EXPECT_EQ(Err(symlink("t", P("f").c_str())), EEXIST);
  EXPECT_EQ(Err(link(P("f").c_str(), P("d").c_str())), EEXIST);
  EXPECT_EQ(Err(open(P("f/x").c_str(), O_RDONLY)), ENOTDIR);
  EXPECT_EQ(Err(mkdir(P("f/x").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(Err(rmdir(P("f").c_str())), ENOTDIR);
  EXPECT_EQ(Err(open(P("f").c_str(), O_RDONLY | O_DIRECTORY)), ENOTDIR);
  EXPECT_EQ(Err(unlink(P("d").c_str())), EISDIR);
  EXPECT_EQ(Err(open(P("d").c_str(), O_WRONLY)), EISDIR);
  EXPECT_EQ(Err(open(P("d").c_str(), O_RDWR)), EISDIR);
  EXPECT_EQ(Err(rmdir(P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(Err(rmdir(P("d/sub/.").c_str())), EINVAL);
  EXPECT_EQ(Err(rename(P("d").c_str(), P("d/sub/inside").c_str())), EINVAL);
  EXPECT_EQ(Err(rename(P("d").c_str(), P("d/sub").c_str())), EINVAL);
  EXPECT_EQ(Err(link(P("d").c_str(), P("dlink").c_str())), EPERM);
  EXPECT_EQ(Err(unlink(P("missing").c_str())), ENOENT);
  EXPECT_EQ(Err(rmdir(P("missing").c_str())), ENOENT);
  EXPECT_EQ(Err(rename(P("missing").c_str(), P("x").c_str())), ENOENT);
  char buf[16];
  EXPECT_EQ(Err(readlink(P("f").c_str(), buf, sizeof buf)), EINVAL);
}

TEST_F(FusePosix, NameLengthLimits) {
  const std::string ok(255, 'n'), bad(256, 'n');
  EXPECT_EQ(Err(close(open(P(ok).c_str(), O_CREAT | O_WRONLY, 0644))), 0);
  EXPECT_EQ(Err(access(P(ok).c_str(), F_OK)), 0);
  EXPECT_EQ(Err(open(P(bad).c_str(), O_CREAT | O_WRONLY, 0644)), ENAMETOOLONG);
  EXPECT_EQ(Err(mkdir(P(bad).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(Err(access(P(bad).c_str(), F_OK)), ENAMETOOLONG);
  EXPECT_EQ(Err(rename(P(ok).c_str(), P(bad).c_str())), ENAMETOOLONG);
  EXPECT_EQ(Err(symlink("t", P(bad).c_str())), ENAMETOOLONG);
  struct statvfs sv;
  ASSERT_EQ(statvfs(P("").c_str(), &sv), 0);
  EXPECT_EQ(sv.f_namemax, 255u);
}

TEST_F(FusePosix, RenameReplacesAndNeverExdev) {
  WriteFile("a", "A");
  WriteFile("b", "B");
  ASSERT_EQ(mkdir(P("d1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d2").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("full").c_str(), 0755), 0);
  WriteFile("full/x", "x");
  ASSERT_EQ(rename(P("a").c_str(), P("b").c_str()), 0);
  EXPECT_EQ(ReadFile("b"), "A");
  EXPECT_EQ(Err(access(P("a").c_str(), F_OK)), ENOENT);
  ASSERT_EQ(rename(P("b").c_str(), P("d1/moved").c_str()), 0);  // across dirs: no EXDEV
  EXPECT_EQ(ReadFile("d1/moved"), "A");
  ASSERT_EQ(rename(P("d1").c_str(), P("d2").c_str()), 0);  // over an empty dir
  EXPECT_EQ(ReadFile("d2/moved"), "A");
  EXPECT_EQ(Err(rename(P("d2").c_str(), P("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(Err(rename(P("d2/moved").c_str(), P("full").c_str())), EISDIR);
  EXPECT_EQ(Err(rename(P("full").c_str(), P("d2/moved").c_str())), ENOTDIR);
  ASSERT_EQ(rename(P("full").c_str(), P("d2/full").c_str()), 0);  // dir to a new parent
  struct stat st;
  ASSERT_EQ(stat(P("d2/full/..").c_str(), &st), 0);
  struct stat d2;
  ASSERT_EQ(stat(P("d2").c_str(), &d2), 0);
  EXPECT_EQ(st.st_ino, d2.st_ino);
  EXPECT_EQ(d2.st_nlink, 3u);
  ASSERT_EQ(rename(P("d2/moved").c_str(), P("d2/moved").c_str()), 0);  // same name: no-op
}

TEST_F(FusePosix, Renameat2NoreplaceAndExchange) {
  WriteFile("a", "A");
  WriteFile("b", "B");
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  auto r2 = [&](const std::string& a, const std::string& b, unsigned flags) {
    return Err(syscall(SYS_renameat2, AT_FDCWD, P(a).c_str(), AT_FDCWD, P(b).c_str(), flags));
  };
  EXPECT_EQ(r2("a", "b", RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(ReadFile("b"), "B");
  EXPECT_EQ(r2("a", "c", RENAME_NOREPLACE), 0);
  EXPECT_EQ(ReadFile("c"), "A");
  EXPECT_EQ(r2("c", "b", RENAME_EXCHANGE), 0);
  EXPECT_EQ(ReadFile("c"), "B");
  EXPECT_EQ(ReadFile("b"), "A");
  EXPECT_EQ(r2("c", "missing", RENAME_EXCHANGE), ENOENT);
  EXPECT_EQ(r2("b", "d", RENAME_EXCHANGE), 0);  // file <-> directory
  struct stat st;
  ASSERT_EQ(stat(P("b").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(ReadFile("d"), "A");
  EXPECT_EQ(r2("b", "d", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
}

TEST_F(FusePosix, HardLinksSymlinksAndFifo) {
  WriteFile("f", "data");
  ASSERT_EQ(link(P("f").c_str(), P("g").c_str()), 0);
  struct stat a, b;
  ASSERT_EQ(stat(P("f").c_str(), &a), 0);
  ASSERT_EQ(stat(P("g").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  ASSERT_EQ(unlink(P("f").c_str()), 0);
  ASSERT_EQ(stat(P("g").c_str(), &b), 0);
  EXPECT_EQ(b.st_nlink, 1u);
  EXPECT_EQ(ReadFile("g"), "data");

  const std::string target(1000, 't');
  ASSERT_EQ(symlink("g", P("s").c_str()), 0);
  ASSERT_EQ(symlink(target.c_str(), P("long").c_str()), 0);
  char buf[2048];
  ASSERT_EQ(readlink(P("s").c_str(), buf, sizeof buf), 1);
  EXPECT_EQ(buf[0], 'g');
  ASSERT_EQ(readlink(P("long").c_str(), buf, sizeof buf), 1000);
  EXPECT_EQ(std::string(buf, 1000), target);
  ASSERT_EQ(lstat(P("s").c_str(), &a), 0);
  EXPECT_TRUE(S_ISLNK(a.st_mode));
  EXPECT_EQ(a.st_size, 1);
  EXPECT_EQ(ReadFile("s"), "data");                                 // followed
  EXPECT_EQ(Err(open(P("long").c_str(), O_RDONLY)), ENAMETOOLONG);  // one 1000-byte component

  ASSERT_EQ(mkfifo(P("fifo").c_str(), 0600), 0);
  ASSERT_EQ(lstat(P("fifo").c_str(), &a), 0);
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  const int fd = open(P("fifo").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "pipe", 4), 4);
  ASSERT_EQ(read(fd, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "pipe");
  close(fd);
  ASSERT_EQ(mknod(P("chr").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
  ASSERT_EQ(lstat(P("chr").c_str(), &a), 0);
  EXPECT_TRUE(S_ISCHR(a.st_mode));
  EXPECT_EQ(a.st_rdev, makedev(1, 3));
  ASSERT_EQ(mknod(P("sock").c_str(), S_IFSOCK | 0600, 0), 0);
}

TEST_F(FusePosix, ReaddirListsEveryEntryOnce) {
  ASSERT_EQ(mkdir(P("big").c_str(), 0755), 0);
  std::set<std::string> want;
  for (int i = 0; i < 1500; ++i) {
    const std::string n = "entry-with-a-longish-name-" + std::to_string(i);
    if (i % 10 == 0)
      ASSERT_EQ(mkdir(P("big/" + n).c_str(), 0755), 0);
    else
      WriteFile("big/" + n, "");
    want.insert(n);
  }
  auto list = [&]() {
    std::multiset<std::string> got;
    DIR* d = opendir(P("big").c_str());
    EXPECT_NE(d, nullptr);
    while (dirent* e = readdir(d)) {
      got.insert(e->d_name);
      const std::string n = e->d_name;
      if (n.rfind("entry", 0) == 0) {
        const int i = std::stoi(n.substr(n.rfind('-') + 1));
        EXPECT_EQ(e->d_type, i % 10 == 0 ? DT_DIR : DT_REG) << n;
      }
    }
    closedir(d);
    return got;
  };
  auto got = list();
  EXPECT_EQ(got.count("."), 1u);
  EXPECT_EQ(got.count(".."), 1u);
  got.erase(".");
  got.erase("..");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
  EXPECT_EQ(got.size(), want.size());
  for (int i = 1; i < 1500; i += 2) {
    const std::string n = "entry-with-a-longish-name-" + std::to_string(i);
    ASSERT_EQ(unlink(P("big/" + n).c_str()), 0);
    want.erase(n);
  }
  got = list();
  got.erase(".");
  got.erase("..");
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
  EXPECT_EQ(got.size(), want.size());
}

TEST_F(FusePosix, TruncateAndTimes) {
  WriteFile("f", std::string(10000, 'a'));
  ASSERT_EQ(truncate(P("f").c_str(), 100), 0);
  EXPECT_EQ(ReadFile("f"), std::string(100, 'a'));
  ASSERT_EQ(truncate(P("f").c_str(), 5000), 0);
  EXPECT_EQ(ReadFile("f"), std::string(100, 'a') + std::string(4900, '\0'));
  EXPECT_EQ(Err(truncate(P("f").c_str(), -1)), EINVAL);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(Err(truncate(P("d").c_str(), 0)), EISDIR);
  // O_TRUNC on open.
  int fd = open(P("f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(ReadFile("f"), "");

  const timespec ts[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), ts, 0), 0);
  struct stat st;
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1100000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  const timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), omit_now, 0), 0);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
  const time_t before_ctime = st.st_ctim.tv_sec;
  ASSERT_EQ(chmod(P("f").c_str(), 0600), 0);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_GE(st.st_ctim.tv_sec, before_ctime);
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), ts, 0), 0);
  fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_EQ(write(fd, "x", 1), 1);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);  // a write moves mtime
  ASSERT_EQ(chown(P("f").c_str(), 123, 456), 0);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 123u);
  EXPECT_EQ(st.st_gid, 456u);
}

TEST_F(FusePosix, XattrRoundTrips) {
  WriteFile("f", "x");
  const std::string f = P("f");
  EXPECT_EQ(Err(getxattr(f.c_str(), "user.none", nullptr, 0)), ENODATA);
  ASSERT_EQ(setxattr(f.c_str(), "user.a", "hello", 5, 0), 0);
  EXPECT_EQ(getxattr(f.c_str(), "user.a", nullptr, 0), 5);  // size probe
  char small[3];
  EXPECT_EQ(Err(getxattr(f.c_str(), "user.a", small, sizeof small)), ERANGE);
  char buf[16];
  ASSERT_EQ(getxattr(f.c_str(), "user.a", buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(Err(setxattr(f.c_str(), "user.a", "x", 1, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(Err(setxattr(f.c_str(), "user.b", "x", 1, XATTR_REPLACE)), ENODATA);
  ASSERT_EQ(setxattr(f.c_str(), "user.empty", "", 0, 0), 0);
  EXPECT_EQ(getxattr(f.c_str(), "user.empty", buf, sizeof buf), 0);

  std::string big16(16 * 1024, 0), big64(64 * 1024, 0);
  for (size_t i = 0; i < big64.size(); ++i) big64[i] = static_cast<char>(i * 7 + (i >> 8));
  for (size_t i = 0; i < big16.size(); ++i) big16[i] = static_cast<char>(i * 13);
  ASSERT_EQ(setxattr(f.c_str(), "user.big16", big16.data(), big16.size(), 0), 0) << strerror(errno);
  ASSERT_EQ(setxattr(f.c_str(), "user.big64", big64.data(), big64.size(), 0), 0) << strerror(errno);
  auto get = [&](const char* name) {
    const ssize_t n = getxattr(f.c_str(), name, nullptr, 0);
    if (n < 0) return std::string("<") + strerror(errno) + ">";
    std::string v(n, 0);
    EXPECT_EQ(getxattr(f.c_str(), name, v.data(), v.size()), n);
    return v;
  };
  EXPECT_EQ(get("user.big16"), big16);
  EXPECT_EQ(get("user.big64"), big64);

  const ssize_t ln = listxattr(f.c_str(), nullptr, 0);
  ASSERT_GT(ln, 0);
  std::string names(ln, 0);
  EXPECT_EQ(Err(listxattr(f.c_str(), names.data(), 1)), ERANGE);
  ASSERT_EQ(listxattr(f.c_str(), names.data(), names.size()), ln);
  std::set<std::string> got;
  for (size_t p = 0; p < names.size(); p += strlen(names.c_str() + p) + 1)
    got.insert(names.c_str() + p);
  EXPECT_EQ(got, (std::set<std::string>{"user.a", "user.empty", "user.big16", "user.big64"}));
  ASSERT_EQ(removexattr(f.c_str(), "user.a"), 0);
  EXPECT_EQ(Err(removexattr(f.c_str(), "user.a")), ENODATA);

  ASSERT_TRUE(vol_->Remount()) << vol_->log();
  EXPECT_EQ(get("user.big16"), big16);
  EXPECT_EQ(get("user.big64"), big64);
  EXPECT_EQ(Err(getxattr(f.c_str(), "user.a", nullptr, 0)), ENODATA);
}

TEST_F(FusePosix, FallocatePunchHoleAndSeekData) {
  const int fd = open(P("f").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  const std::string mib(1 << 20, 'd');
  ASSERT_EQ(pwrite(fd, mib.data(), mib.size(), 0), static_cast<ssize_t>(mib.size()));
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 << 10, 256 << 10), 0)
      << strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  std::string buf(256 << 10, 'x');
  ASSERT_EQ(pread(fd, buf.data(), buf.size(), 256 << 10), static_cast<ssize_t>(buf.size()));
  EXPECT_EQ(buf, std::string(256 << 10, '\0'));
  ASSERT_EQ(pread(fd, buf.data(), 10, (512 << 10)), 10);
  EXPECT_EQ(buf.substr(0, 10), std::string(10, 'd'));
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 256 << 10);
  EXPECT_EQ(lseek(fd, 256 << 10, SEEK_DATA), 512 << 10);
  EXPECT_EQ(lseek(fd, 300 << 10, SEEK_DATA), 512 << 10);
  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 0);
  EXPECT_EQ(lseek(fd, 600 << 10, SEEK_HOLE), 1 << 20);
  EXPECT_EQ(Err(lseek(fd, 2 << 20, SEEK_DATA)), ENXIO);
  // Mode 0 extends the size; KEEP_SIZE does not.
  ASSERT_EQ(fallocate(fd, 0, 1 << 20, 1 << 20), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 2 << 20);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 << 20, 1 << 20), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 2 << 20);
  ASSERT_EQ(pread(fd, buf.data(), 4096, (1 << 20) + 4096), 4096);
  EXPECT_EQ(buf.substr(0, 4096), std::string(4096, '\0'));
  EXPECT_EQ(Err(fallocate(fd, 0, 0, 0)), EINVAL);
  close(fd);
}

TEST_F(FusePosix, AppendDirectIoAndMmap) {
  int a = open(P("log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int b = open(P("log").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  std::string want;
  for (int i = 0; i < 50; ++i) {
    const std::string s = "line " + std::to_string(i) + "\n";
    ASSERT_EQ(write(i % 2 ? a : b, s.data(), s.size()), static_cast<ssize_t>(s.size()));
    want += s;
  }
  close(a);
  close(b);
  EXPECT_EQ(ReadFile("log"), want);

  const int d = open(P("direct").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(d, 0) << strerror(errno);
  void* mem = nullptr;
  ASSERT_EQ(posix_memalign(&mem, 4096, 8192), 0);
  memset(mem, 'D', 8192);
  ASSERT_EQ(pwrite(d, mem, 8192, 4096), 8192) << strerror(errno);
  memset(mem, 0, 8192);
  ASSERT_EQ(pread(d, mem, 8192, 4096), 8192);
  EXPECT_EQ(std::string(static_cast<char*>(mem), 8192), std::string(8192, 'D'));
  free(mem);
  close(d);
  EXPECT_EQ(ReadFile("direct"), std::string(4096, '\0') + std::string(8192, 'D'));

  const int m = open(P("mapped").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(m, 0);
  ASSERT_EQ(ftruncate(m, 65536), 0);
  char* p = static_cast<char*>(mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0));
  ASSERT_NE(p, MAP_FAILED);
  memcpy(p + 5000, "mapped!", 7);
  ASSERT_EQ(msync(p, 65536, MS_SYNC), 0);
  munmap(p, 65536);
  close(m);
  const std::string got = ReadFile("mapped");
  ASSERT_EQ(got.size(), 65536u);
  EXPECT_EQ(got.substr(5000, 7), "mapped!");
}

TEST_F(FusePosix, FlockAndFcntlLocksBetweenProcesses) {
  WriteFile("lock", "0123456789");
  const int fd = open(P("lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 5;
  ASSERT_EQ(fcntl(fd, F_SETLK, &fl), 0);
  const pid_t me = getpid();
  const std::string path = P("lock");
  const int child = RunAs(0, 0, {}, [&]() {
    const int c = open(path.c_str(), O_RDWR);
    if (c < 0) return 100;
    if (flock(c, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 101;
    struct flock w {};
    w.l_type = F_WRLCK;
    w.l_whence = SEEK_SET;
    w.l_start = 2;
    w.l_len = 1;
    if (fcntl(c, F_SETLK, &w) == 0 || (errno != EAGAIN && errno != EACCES)) return 102;
    if (fcntl(c, F_GETLK, &w) != 0 || w.l_type != F_WRLCK || w.l_pid != me) return 103;
    w.l_type = F_WRLCK;
    w.l_start = 5;  // the other half is free
    w.l_len = 5;
    if (fcntl(c, F_SETLK, &w) != 0) return 104;
    return 0;
  });
  EXPECT_EQ(child, 0);
  ASSERT_EQ(flock(fd, LOCK_UN), 0);
  close(fd);  // drops the POSIX lock too
  const int after = RunAs(0, 0, {}, [&]() {
    const int c = open(path.c_str(), O_RDWR);
    struct flock w {};
    w.l_type = F_WRLCK;
    w.l_whence = SEEK_SET;
    return flock(c, LOCK_EX | LOCK_NB) == 0 && fcntl(c, F_SETLK, &w) == 0 ? 0 : 1;
  });
  EXPECT_EQ(after, 0);
}

TEST_F(FusePosix, StatfsAndUnlinkedOpenFile) {
  struct statvfs before, during, after;
  ASSERT_EQ(statvfs(P("").c_str(), &before), 0);
  EXPECT_EQ(before.f_bsize, 4096u);
  EXPECT_GT(before.f_blocks, 0u);
  EXPECT_GT(before.f_files, before.f_ffree - 1);
  const int fd = open(P("tmp").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  const std::string data(4 << 20, 'u');
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(unlink(P("tmp").c_str()), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  std::string back(10, 0);
  ASSERT_EQ(pread(fd, back.data(), 10, 1000), 10);  // still readable
  EXPECT_EQ(back, std::string(10, 'u'));
  ASSERT_EQ(statvfs(P("").c_str(), &during), 0);
  EXPECT_LE(during.f_bfree + 1000, before.f_bfree);
  close(fd);
  // The last reference goes with the kernel's forget: poll briefly.
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(statvfs(P("").c_str(), &after), 0);
    if (after.f_bfree + 16 >= before.f_bfree) break;
    usleep(10000);
  }
  EXPECT_GE(after.f_bfree + 16, before.f_bfree);
}

TEST_F(FusePosix, DataSurvivesRemount) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0750), 0);
  std::map<std::string, std::string> files;
  for (int i = 0; i < 20; ++i) {
    std::string data(i * 7919, static_cast<char>('a' + i));
    files["d/f" + std::to_string(i)] = data;
    WriteFile("d/f" + std::to_string(i), data);
  }
  ASSERT_EQ(symlink("d/f1", P("link").c_str()), 0);
  ASSERT_EQ(vol_->Unmount(), 0) << vol_->log();
  ASSERT_TRUE(vol_->Mount()) << vol_->log();
  for (const auto& [name, data] : files) EXPECT_EQ(ReadFile(name), data) << name;
  EXPECT_EQ(ReadFile("link"), files["d/f1"]);
  struct stat st;
  ASSERT_EQ(stat(P("d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(FusePosix, ReadOnlyMount) {
  WriteFile("f", "keep");
  ASSERT_EQ(vol_->Unmount(), 0);
  ASSERT_TRUE(vol_->Mount("ro")) << vol_->log();
  EXPECT_EQ(ReadFile("f"), "keep");
  EXPECT_EQ(Err(open(P("f").c_str(), O_WRONLY)), EROFS);
  EXPECT_EQ(Err(open(P("g").c_str(), O_WRONLY | O_CREAT, 0644)), EROFS);
  EXPECT_EQ(Err(mkdir(P("d").c_str(), 0755)), EROFS);
  EXPECT_EQ(Err(unlink(P("f").c_str())), EROFS);
  EXPECT_EQ(Err(setxattr(P("f").c_str(), "user.x", "1", 1, 0)), EROFS);
}

}  // namespace
}  // namespace vexfs::fusetest
