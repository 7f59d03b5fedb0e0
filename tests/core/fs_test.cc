#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <map>
#include <thread>
#include <random>
#include <set>

#include "fs_test_util.h"
#include "vexfs/fsck.h"

namespace vexfs {
namespace {

using testing::Bytes;
using testing::MountImage;
using testing::NewImage;
using testing::ReadAll;

constexpr uint64_t kRoot = Filesystem::kRootIno;
const Cred kRootCred = Cred::Root();

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    img_ = NewImage(16384, 0, 16384);  // 64 MiB
    fs_ = MountImage(img_);
    ASSERT_NE(fs_, nullptr);
  }
  // Remounts with a power switch; CutPower() then simulates a crash.
  void RemountWithPowerSwitch() {
    ASSERT_TRUE(fs_->Unmount().ok());
    power_ = std::make_shared<std::atomic<bool>>(false);
    fs_ = MountImage(img_, testing::TestMountOptions(), nullptr, power_);
    ASSERT_NE(fs_, nullptr);
  }
  void CutPower() {
    power_->store(true);
    fs_.reset();  // its unmount fails: nothing more reaches the image
  }
  std::shared_ptr<std::atomic<bool>> power_;
  void Remount() {
    ASSERT_TRUE(fs_->Unmount().ok());
    fs_ = MountImage(img_);
    ASSERT_NE(fs_, nullptr);
  }
  // Unmounts, expects fsck to find nothing, mounts again.
  void UnmountCheckRemount() {
    ASSERT_TRUE(fs_->Unmount().ok());
    testing::SharedMemoryDevice dev(img_);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->problems.empty()) << rep->problems[0].code << ": " << rep->problems[0].message;
    fs_ = MountImage(img_);
    ASSERT_NE(fs_, nullptr);
  }
  Attr Create(uint64_t parent, const std::string& name, uint32_t mode = 0644) {
    auto r = fs_->Mknod(parent, name, S_IFREG | mode, 0, kRootCred);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Attr{};
  }
  std::vector<std::string> List(uint64_t dir) {
    std::vector<std::string> names;
    EXPECT_TRUE(fs_->ReadDir(dir, 0, [&](const DirEntry& e) {
                     names.push_back(e.name);
                     return true;
                   }).ok());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::shared_ptr<std::vector<uint8_t>> img_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FsTest, FreshVolumeHasRootAndLostFound) {
  auto root = fs_->GetAttr(kRoot);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(S_ISDIR(root->mode));
  EXPECT_EQ(root->nlink, 3u);
  EXPECT_EQ(List(kRoot), (std::vector<std::string>{".", "..", "lost+found"}));
}

TEST_F(FsTest, CreateWriteReadPersist) {
  Attr a = Create(kRoot, "hello.txt");
  ASSERT_TRUE(fs_->Write(a.ino, 0, Bytes("hello, world")).ok());
  EXPECT_EQ(ReadAll(fs_.get(), a.ino), "hello, world");
  Remount();
  auto l = fs_->Lookup(kRoot, "hello.txt", kRootCred);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(ReadAll(fs_.get(), l->ino), "hello, world");
  EXPECT_EQ(l->size, 12u);
}

TEST_F(FsTest, LargeAndSparseWrites) {
  Attr a = Create(kRoot, "big");
  std::mt19937 rng(1);
  std::string data(3 * 1024 * 1024 + 123, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  ASSERT_TRUE(fs_->Write(a.ino, 0, Bytes(data)).ok());
  // A sparse write far away.
  ASSERT_TRUE(fs_->Write(a.ino, 40ull << 20, Bytes("tail")).ok());
  Remount();
  std::string got(data.size(), '\0');
  auto n = fs_->Read(a.ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(got, data);
  std::string hole(4096, 'x');
  ASSERT_TRUE(fs_->Read(a.ino, 20ull << 20, {reinterpret_cast<uint8_t*>(hole.data()), hole.size()}).ok());
  EXPECT_EQ(hole, std::string(4096, '\0'));
  auto st = fs_->GetAttr(a.ino);
  EXPECT_EQ(st->size, (40ull << 20) + 4);
  auto d = fs_->SeekData(a.ino, 5ull << 20, SEEK_DATA);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 40ull << 20);
  auto h = fs_->SeekData(a.ino, 0, SEEK_HOLE);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (data.size() + 4095) / 4096 * 4096);
}

TEST_F(FsTest, ManyRandomWritesBuildAnExtentTree) {
  Attr a = Create(kRoot, "frag");
  std::map<uint64_t, char> model;
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; i++) {
    uint64_t blk = (rng() % 4000) * 2;  // every other block: no merging
    char c = static_cast<char>('a' + rng() % 26);
    ASSERT_TRUE(fs_->Write(a.ino, blk * 4096, Bytes(std::string(4096, c))).ok());
    model[blk] = c;
  }
  Remount();
  for (auto [blk, c] : model) {
    char b[4096];
    ASSERT_TRUE(fs_->Read(a.ino, blk * 4096, {reinterpret_cast<uint8_t*>(b), 4096}).ok());
    ASSERT_EQ(b[0], c);
    ASSERT_EQ(b[4095], c);
  }
  // Truncate to half and check the rest.
  SetAttrRequest req;
  req.valid = SetAttrRequest::kSize;
  req.size = 4000ull * 4096;
  ASSERT_TRUE(fs_->SetAttr(a.ino, req, kRootCred).ok());
  Remount();
  for (auto [blk, c] : model) {
    if (blk >= 4000) continue;
    char b[1];
    ASSERT_TRUE(fs_->Read(a.ino, blk * 4096, {reinterpret_cast<uint8_t*>(b), 1}).ok());
    ASSERT_EQ(b[0], c);
  }
}

TEST_F(FsTest, TruncateZeroesTheTail) {
  Attr a = Create(kRoot, "t");
  ASSERT_TRUE(fs_->Write(a.ino, 0, Bytes(std::string(8192, 'x'))).ok());
  SetAttrRequest req;
  req.valid = SetAttrRequest::kSize;
  req.size = 100;
  ASSERT_TRUE(fs_->SetAttr(a.ino, req, kRootCred).ok());
  req.size = 8192;
  ASSERT_TRUE(fs_->SetAttr(a.ino, req, kRootCred).ok());
  std::string got = ReadAll(fs_.get(), a.ino);
  EXPECT_EQ(got.substr(0, 100), std::string(100, 'x'));
  EXPECT_EQ(got.substr(100), std::string(8192 - 100, '\0'));
}

TEST_F(FsTest, DirectoryWithManyEntries) {
  auto d = fs_->Mkdir(kRoot, "d", 0755, kRootCred);
  ASSERT_TRUE(d.ok());
  const int n = 5000;
  for (int i = 0; i < n; i++) {
    auto made = fs_->Mknod(d->ino, "file-" + std::to_string(i), S_IFREG | 0644, 0, kRootCred);
    ASSERT_TRUE(made.ok()) << i << " " << made.status().ToString();
  }
  Remount();
  for (int i = 0; i < n; i += 97) {
    ASSERT_TRUE(fs_->Lookup(d->ino, "file-" + std::to_string(i), kRootCred).ok()) << i;
  }
  auto names = List(d->ino);
  EXPECT_EQ(names.size(), static_cast<size_t>(n + 2));
  // Resume readdir from a cookie in the middle.
  uint64_t cookie = 0;
  int count = 0;
  ASSERT_TRUE(fs_->ReadDir(d->ino, 0, [&](const DirEntry& e) {
                   cookie = e.cookie;
                   return ++count < 1000;
                 }).ok());
  std::set<std::string> rest;
  ASSERT_TRUE(fs_->ReadDir(d->ino, cookie, [&](const DirEntry& e) {
                   rest.insert(e.name);
                   return true;
                 }).ok());
  EXPECT_EQ(rest.size() + 1000, static_cast<size_t>(n + 2));
  for (int i = 0; i < n; i++) {
    ASSERT_TRUE(fs_->Unlink(d->ino, "file-" + std::to_string(i), kRootCred).ok()) << i;
  }
  EXPECT_EQ(List(d->ino), (std::vector<std::string>{".", ".."}));
  ASSERT_TRUE(fs_->Rmdir(kRoot, "d", kRootCred).ok());
  auto st = fs_->StatFs();
  ASSERT_TRUE(st.ok());
  Remount();
  auto st2 = fs_->StatFs();
  EXPECT_EQ(st->free_blocks, st2->free_blocks);
  EXPECT_EQ(st->free_inodes, st2->free_inodes);
}

// Unlink, rename over a name and RENAME_EXCHANGE edit a directory leaf in
// place (only a leaf's last record is removed by rewriting it): every
// leaf must stay well formed (fsck decodes each one) and every name
// findable, in a directory of many leaves with names of many lengths.
TEST_F(FsTest, DirectoryEditsInPlaceKeepLeavesWellFormed) {
  auto d = fs_->Mkdir(kRoot, "d", 0755, kRootCred);
  ASSERT_TRUE(d.ok());
  std::mt19937 rng(7);
  std::map<std::string, uint64_t> model;  // name -> inode
  for (int i = 0; i < 3000; i++) {
    const std::string name = "n" + std::to_string(i) + std::string(rng() % 40, 'x');
    Attr a = Create(d->ino, name);
    ASSERT_NE(a.ino, 0u) << name;
    model[name] = a.ino;
  }
  auto check = [&] {
    EXPECT_EQ(List(d->ino).size(), model.size() + 2);
    for (const auto& [name, ino] : model) {
      auto r = fs_->Lookup(d->ino, name, kRootCred);
      ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
      EXPECT_EQ(r->ino, ino) << name;
    }
  };
  std::vector<std::string> names;
  for (const auto& [name, ino] : model) names.push_back(name);
  std::shuffle(names.begin(), names.end(), rng);
  // Two of every three go: unlinked, or renamed over a name that stays.
  for (size_t i = 0; i + 2 < names.size(); i += 3) {
    ASSERT_TRUE(fs_->Unlink(d->ino, names[i], kRootCred).ok()) << names[i];
    model.erase(names[i]);
    ASSERT_TRUE(fs_->Rename(d->ino, names[i + 1], d->ino, names[i + 2], 0, kRootCred).ok()) << names[i + 1];
    model[names[i + 2]] = model[names[i + 1]];
    model.erase(names[i + 1]);
  }
  check();
  // Exchanges of the survivors, pairwise.
  std::vector<std::string> left;
  for (const auto& [name, ino] : model) left.push_back(name);
  for (size_t i = 0; i + 1 < left.size(); i += 2) {
    ASSERT_TRUE(fs_->Rename(d->ino, left[i], d->ino, left[i + 1], RENAME_EXCHANGE, kRootCred).ok()) << left[i];
    std::swap(model[left[i]], model[left[i + 1]]);
  }
  check();
  UnmountCheckRemount();
  check();
  for (const auto& [name, ino] : model) ASSERT_TRUE(fs_->Unlink(d->ino, name, kRootCred).ok()) << name;
  EXPECT_EQ(List(d->ino), (std::vector<std::string>{".", ".."}));
  ASSERT_TRUE(fs_->Rmdir(kRoot, "d", kRootCred).ok());
  UnmountCheckRemount();
}

TEST_F(FsTest, ErrnoCases) {
  Attr a = Create(kRoot, "f");
  EXPECT_EQ(fs_->Mknod(kRoot, "f", S_IFREG | 0644, 0, kRootCred).status().err(), EEXIST);
  EXPECT_EQ(fs_->Lookup(kRoot, "nope", kRootCred).status().err(), ENOENT);
  EXPECT_EQ(fs_->Lookup(a.ino, "x", kRootCred).status().err(), ENOTDIR);
  EXPECT_EQ(fs_->Mknod(kRoot, std::string(256, 'a'), S_IFREG | 0644, 0, kRootCred).status().err(), ENAMETOOLONG);
  EXPECT_TRUE(fs_->Mknod(kRoot, std::string(255, 'a'), S_IFREG | 0644, 0, kRootCred).ok());
  EXPECT_EQ(fs_->Rmdir(kRoot, "f", kRootCred).err(), ENOTDIR);
  EXPECT_EQ(fs_->Unlink(kRoot, "lost+found", kRootCred).err(), EISDIR);
  auto d = fs_->Mkdir(kRoot, "d", 0755, kRootCred);
  Create(d->ino, "inner");
  EXPECT_EQ(fs_->Rmdir(kRoot, "d", kRootCred).err(), ENOTEMPTY);
  EXPECT_EQ(fs_->Rename(kRoot, "d", d->ino, "sub", 0, kRootCred).err(), EINVAL);
  EXPECT_EQ(fs_->Rename(kRoot, "f", kRoot, "d", 0, kRootCred).err(), EISDIR);
  EXPECT_EQ(fs_->Rename(kRoot, "d", kRoot, "f", 0, kRootCred).err(), ENOTDIR);
  EXPECT_EQ(fs_->Rename(kRoot, "f", kRoot, "lost+found", RENAME_NOREPLACE, kRootCred).err(), EEXIST);
  EXPECT_EQ(fs_->Rename(kRoot, "f", kRoot, "absent", RENAME_EXCHANGE, kRootCred).err(), ENOENT);
  EXPECT_EQ(fs_->Link(d->ino, kRoot, "dlink", kRootCred).status().err(), EPERM);
  EXPECT_EQ(fs_->Write(d->ino, 0, Bytes("x")).status().err(), EISDIR);
}

TEST_F(FsTest, RenameAndExchange) {
  auto d1 = fs_->Mkdir(kRoot, "d1", 0755, kRootCred);
  auto d2 = fs_->Mkdir(kRoot, "d2", 0755, kRootCred);
  Attr f = Create(d1->ino, "a");
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes("A")).ok());
  Attr g = Create(d2->ino, "b");
  ASSERT_TRUE(fs_->Write(g.ino, 0, Bytes("B")).ok());
  ASSERT_TRUE(fs_->Rename(d1->ino, "a", d2->ino, "b", 0, kRootCred).ok());
  EXPECT_EQ(fs_->Lookup(d1->ino, "a", kRootCred).status().err(), ENOENT);
  EXPECT_EQ(ReadAll(fs_.get(), fs_->Lookup(d2->ino, "b", kRootCred)->ino), "A");
  EXPECT_EQ(fs_->GetAttr(g.ino).status().err(), ESTALE);  // replaced and freed
  // Move a directory and check link counts and "..".
  auto sub = fs_->Mkdir(d1->ino, "sub", 0755, kRootCred);
  EXPECT_EQ(fs_->GetAttr(d1->ino)->nlink, 3u);
  ASSERT_TRUE(fs_->Rename(d1->ino, "sub", d2->ino, "sub2", 0, kRootCred).ok());
  EXPECT_EQ(fs_->GetAttr(d1->ino)->nlink, 2u);
  EXPECT_EQ(fs_->GetAttr(d2->ino)->nlink, 3u);
  EXPECT_EQ(fs_->Lookup(sub->ino, "..", kRootCred)->ino, d2->ino);
  // Exchange a file and a directory across parents.
  Attr x = Create(d1->ino, "x");
  ASSERT_TRUE(fs_->Rename(d1->ino, "x", d2->ino, "sub2", RENAME_EXCHANGE, kRootCred).ok());
  EXPECT_EQ(fs_->Lookup(d1->ino, "x", kRootCred)->ino, sub->ino);
  EXPECT_EQ(fs_->Lookup(d2->ino, "sub2", kRootCred)->ino, x.ino);
  EXPECT_EQ(fs_->Lookup(sub->ino, "..", kRootCred)->ino, d1->ino);
  EXPECT_EQ(fs_->GetAttr(d1->ino)->nlink, 3u);
  EXPECT_EQ(fs_->GetAttr(d2->ino)->nlink, 2u);
  Remount();
  EXPECT_EQ(fs_->Lookup(d1->ino, "x", kRootCred)->ino, sub->ino);
}

TEST_F(FsTest, HardLinksSymlinksAndSpecialFiles) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->Link(f.ino, kRoot, "f2", kRootCred).ok());
  EXPECT_EQ(fs_->GetAttr(f.ino)->nlink, 2u);
  ASSERT_TRUE(fs_->Unlink(kRoot, "f", kRootCred).ok());
  EXPECT_EQ(fs_->GetAttr(f.ino)->nlink, 1u);
  auto s = fs_->Symlink(kRoot, "short", "target", kRootCred);
  ASSERT_TRUE(s.ok());
  std::string long_target(300, 'p');
  auto l = fs_->Symlink(kRoot, "long", long_target, kRootCred);
  ASSERT_TRUE(l.ok());
  auto fifo = fs_->Mknod(kRoot, "fifo", S_IFIFO | 0600, 0, kRootCred);
  ASSERT_TRUE(fifo.ok());
  auto dev = fs_->Mknod(kRoot, "null", S_IFCHR | 0666, (1 << 8) | 3, kRootCred);
  ASSERT_TRUE(dev.ok());
  Remount();
  EXPECT_EQ(*fs_->Readlink(s->ino), "target");
  EXPECT_EQ(*fs_->Readlink(l->ino), long_target);
  EXPECT_TRUE(S_ISFIFO(fs_->GetAttr(fifo->ino)->mode));
  EXPECT_EQ(fs_->GetAttr(dev->ino)->rdev, (1u << 8) | 3);
}

TEST_F(FsTest, Xattrs) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.a", Bytes("1"), 0, kRootCred).ok());
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.empty", {}, 0, kRootCred).ok());
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.bb", Bytes(std::string(500, 'b')), 0, kRootCred).ok());
  std::vector<uint8_t> big(16384);
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.vexfs.vector", big, 0, kRootCred).ok());
  std::vector<uint8_t> max(65536, 3);
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.max", max, 0, kRootCred).ok());
  EXPECT_EQ(fs_->SetXattr(f.ino, "user.a", Bytes("2"), XATTR_CREATE, kRootCred).err(), EEXIST);
  EXPECT_EQ(fs_->SetXattr(f.ino, "user.zz", Bytes("2"), XATTR_REPLACE, kRootCred).err(), ENODATA);
  EXPECT_EQ(fs_->SetXattr(f.ino, "user.toobig", std::vector<uint8_t>(65537), 0, kRootCred).err(), E2BIG);
  EXPECT_EQ(fs_->SetXattr(f.ino, "bogus.x", Bytes("1"), 0, kRootCred).err(), EOPNOTSUPP);
  Remount();
  EXPECT_EQ(*fs_->GetXattr(f.ino, "user.a", kRootCred), std::vector<uint8_t>{'1'});
  EXPECT_EQ(fs_->GetXattr(f.ino, "user.bb", kRootCred)->size(), 500u);
  EXPECT_EQ(*fs_->GetXattr(f.ino, "user.vexfs.vector", kRootCred), big);
  EXPECT_EQ(*fs_->GetXattr(f.ino, "user.max", kRootCred), max);
  auto names = fs_->ListXattr(f.ino, kRootCred);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 5u);
  EXPECT_TRUE(fs_->GetXattr(f.ino, "user.empty", kRootCred)->empty());
  ASSERT_TRUE(fs_->RemoveXattr(f.ino, "user.vexfs.vector", kRootCred).ok());
  EXPECT_EQ(fs_->GetXattr(f.ino, "user.vexfs.vector", kRootCred).status().err(), ENODATA);
  EXPECT_EQ(fs_->RemoveXattr(f.ino, "user.vexfs.vector", kRootCred).err(), ENODATA);
  // Deleting the file frees the EA inodes too.
  auto before = fs_->StatFs();
  ASSERT_TRUE(fs_->Unlink(kRoot, "f", kRootCred).ok());
  auto after = fs_->StatFs();
  EXPECT_EQ(after->free_inodes, before->free_inodes + 2);  // the file and user.max's EA inode
}

// security.* misses are answered from a lock-free cache (the kernel asks for
// security.capability before every write through FUSE): every change and
// the inode's deletion must show at once.
TEST_F(FsTest, SecurityXattrAbsenceCache) {
  const Cred alice{1000, 1000, {}};
  auto Vec = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  Attr f = Create(kRoot, "f", 0666);
  for (int i = 0; i < 2; i++) {  // a slow-path miss, then a cached one
    EXPECT_EQ(fs_->GetXattr(f.ino, "security.capability", alice).status().err(), ENODATA);
  }
  ASSERT_TRUE(fs_->SetXattr(f.ino, "user.tag", Bytes("t"), 0, kRootCred).ok());
  EXPECT_EQ(fs_->GetXattr(f.ino, "security.capability", kRootCred).status().err(), ENODATA);
  ASSERT_TRUE(fs_->SetXattr(f.ino, "security.capability", Bytes("cap"), 0, kRootCred).ok());
  EXPECT_EQ(*fs_->GetXattr(f.ino, "security.capability", alice), Vec("cap"));
  // Another security.* name is not cached as absent while one exists.
  EXPECT_EQ(fs_->GetXattr(f.ino, "security.selinux", alice).status().err(), ENODATA);
  EXPECT_EQ(*fs_->GetXattr(f.ino, "security.capability", alice), Vec("cap"));
  ASSERT_TRUE(fs_->RemoveXattr(f.ino, "security.capability", kRootCred).ok());
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(fs_->GetXattr(f.ino, "security.capability", alice).status().err(), ENODATA);
  }
  // A refused set (not the owner) leaves nothing behind either way.
  EXPECT_EQ(fs_->SetXattr(f.ino, "security.x", Bytes("1"), 0, alice).err(), EPERM);
  EXPECT_EQ(fs_->GetXattr(f.ino, "security.x", alice).status().err(), ENODATA);
  ASSERT_TRUE(fs_->SetXattr(f.ino, "security.x", Bytes("1"), 0, kRootCred).ok());
  EXPECT_EQ(*fs_->GetXattr(f.ino, "security.x", alice), Vec("1"));
  ASSERT_TRUE(fs_->RemoveXattr(f.ino, "security.x", kRootCred).ok());
  // Freed: the inode is gone, not attribute-less; its number's next owner
  // starts without attributes.
  EXPECT_EQ(fs_->GetXattr(f.ino, "security.capability", alice).status().err(), ENODATA);
  ASSERT_TRUE(fs_->Unlink(kRoot, "f", kRootCred).ok());
  EXPECT_EQ(fs_->GetXattr(f.ino, "security.capability", alice).status().err(), ESTALE);
  Attr g = Create(kRoot, "g");
  ASSERT_TRUE(fs_->SetXattr(g.ino, "security.capability", Bytes("g"), 0, kRootCred).ok());
  EXPECT_EQ(*fs_->GetXattr(g.ino, "security.capability", alice), Vec("g"));
  Remount();
  EXPECT_EQ(*fs_->GetXattr(g.ino, "security.capability", alice), Vec("g"));
}

TEST_F(FsTest, KillSuidGid) {
  const Cred alice{1000, 1000, {}};
  SetAttrRequest kill;
  kill.valid = SetAttrRequest::kKillSuidGid;
  Attr f = Create(kRoot, "f", 06755);
  auto r = fs_->SetAttr(f.ino, kill, alice);  // no permission needed
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mode & 07777, 0755u);
  // Nothing to clear: nothing changes, not even ctime.
  Attr g = Create(kRoot, "g", 02745);  // setgid without group execute stays
  r = fs_->SetAttr(g.ino, kill, alice);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode & 07777, 02745u);
  EXPECT_EQ(r->ctime.sec, g.ctime.sec);
  EXPECT_EQ(r->ctime.nsec, g.ctime.nsec);
  // With a truncation: cleared as well as truncated.
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes("data")).ok());
  SetAttrRequest q;
  q.valid = SetAttrRequest::kKillSuidGid | SetAttrRequest::kMode;
  q.mode = 06777;
  r = fs_->SetAttr(f.ino, q, kRootCred);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode & 07777, 06777u);  // an explicit mode wins
  q.valid = SetAttrRequest::kKillSuidGid | SetAttrRequest::kSize;
  q.size = 1;
  r = fs_->SetAttr(f.ino, q, kRootCred);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode & 07777, 0777u);
  EXPECT_EQ(r->size, 1u);
  // Directories keep setgid (inheritance, not privilege).
  auto d = fs_->Mkdir(kRoot, "d", 02775, kRootCred);
  ASSERT_TRUE(d.ok());
  r = fs_->SetAttr(d->ino, kill, kRootCred);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode & 07777, 02775u);
  Remount();
  auto a = fs_->GetAttr(f.ino);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode & 07777, 0777u);
}

TEST_F(FsTest, UnlinkWhileReferencedKeepsDataUntilForget) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes("still here")).ok());
  fs_->Ref(f.ino);
  ASSERT_TRUE(fs_->Unlink(kRoot, "f", kRootCred).ok());
  EXPECT_EQ(ReadAll(fs_.get(), f.ino), "still here");
  fs_->Forget(f.ino, 1);
  EXPECT_EQ(fs_->GetAttr(f.ino).status().err(), ESTALE);
}

TEST_F(FsTest, ForgetManyDropsEachCountAndReleasesUnlinkedInodes) {
  Attr a = Create(kRoot, "a"), b = Create(kRoot, "b"), c = Create(kRoot, "c");
  for (int i = 0; i < 3; ++i) fs_->Ref(a.ino);
  fs_->Ref(b.ino);
  fs_->Ref(c.ino);
  ASSERT_TRUE(fs_->Unlink(kRoot, "a", kRootCred).ok());
  ASSERT_TRUE(fs_->Unlink(kRoot, "b", kRootCred).ok());
  const uint64_t free_before = fs_->StatFs()->free_inodes;
  // a: 3 - 2 references left; b: released; c: still linked.
  const std::vector<Filesystem::ForgetItem> items = {{a.ino, 2}, {b.ino, 1}, {c.ino, 1}};
  fs_->ForgetMany(items);
  EXPECT_TRUE(fs_->GetAttr(a.ino).ok());
  EXPECT_EQ(fs_->GetAttr(b.ino).status().err(), ESTALE);
  EXPECT_TRUE(fs_->GetAttr(c.ino).ok());
  EXPECT_EQ(fs_->StatFs()->free_inodes, free_before + 1);
  fs_->ForgetMany(std::vector<Filesystem::ForgetItem>{{a.ino, 1}});
  EXPECT_EQ(fs_->GetAttr(a.ino).status().err(), ESTALE);
  EXPECT_EQ(fs_->StatFs()->free_inodes, free_before + 2);
}

// Files unlinked while still referenced wait on the orphan list; the kernel
// forgets them in whatever order their last close comes. Releasing them
// oldest first (each at the far end of the list from its head), at random,
// and half of them after a crash must each leave a volume fsck finds clean,
// with every inode back on the free count.
TEST_F(FsTest, OrphansReleasedInAnyOrder) {
  size_t n = 600;
  if (const char* e = std::getenv("VEXFS_ORPHAN_TEST_FILES")) n = std::strtoul(e, nullptr, 10);
  const std::vector<std::string> orders = {"oldest-first", "newest-first", "random", "crash"};
  for (const std::string& order : orders) {
    SCOPED_TRACE(order);
    RemountWithPowerSwitch();
    const uint64_t free_before = fs_->StatFs()->free_inodes;
    auto d = fs_->Mkdir(kRoot, "d", 0755, kRootCred);
    ASSERT_TRUE(d.ok());
    const uint64_t dir = d->ino;
    std::vector<uint64_t> inos;
    for (size_t i = 0; i < n; ++i) {
      Attr a = Create(dir, "f" + std::to_string(i));
      ASSERT_NE(a.ino, 0u);
      fs_->Ref(a.ino);
      inos.push_back(a.ino);
    }
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(fs_->Unlink(dir, "f" + std::to_string(i), kRootCred).ok());
    ASSERT_TRUE(fs_->Rmdir(kRoot, "d", kRootCred).ok());
    if (order == "newest-first") std::reverse(inos.begin(), inos.end());
    if (order == "random" || order == "crash") std::shuffle(inos.begin(), inos.end(), std::mt19937_64(7));
    const size_t forget = order == "crash" ? n / 2 : n;
    for (size_t i = 0; i < forget; ++i) {
      fs_->Forget(inos[i], 1);
      ASSERT_EQ(fs_->GetAttr(inos[i]).status().err(), ESTALE) << i;
    }
    if (order == "crash") {
      ASSERT_TRUE(fs_->Sync().ok());
      CutPower();
      MountInfo info;
      fs_ = MountImage(img_, testing::TestMountOptions(), &info);
      ASSERT_NE(fs_, nullptr);
      EXPECT_EQ(info.orphans_released, n - forget);
    } else {
      // Forgetting again is harmless.
      fs_->Forget(inos[0], 1);
    }
    EXPECT_EQ(fs_->StatFs()->free_inodes, free_before);
    UnmountCheckRemount();
  }
}

TEST_F(FsTest, OrphanReleasedAfterCrash) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes(std::string(100000, 'z'))).ok());
  RemountWithPowerSwitch();
  auto free_before = fs_->StatFs()->free_blocks;
  fs_->Ref(f.ino);
  ASSERT_TRUE(fs_->Unlink(kRoot, "f", kRootCred).ok());
  ASSERT_TRUE(fs_->Sync().ok());
  CutPower();
  MountInfo info;
  fs_ = MountImage(img_, testing::TestMountOptions(), &info);
  ASSERT_NE(fs_, nullptr);
  EXPECT_EQ(info.orphans_released, 1u);
  EXPECT_GE(fs_->StatFs()->free_blocks, free_before);
}

TEST_F(FsTest, Fallocate) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->Fallocate(f.ino, 0, 0, 1 << 20).ok());
  EXPECT_EQ(fs_->GetAttr(f.ino)->size, 1u << 20);
  EXPECT_GE(fs_->GetAttr(f.ino)->blocks, (1u << 20) / 512);
  EXPECT_EQ(ReadAll(fs_.get(), f.ino), std::string(1 << 20, '\0'));
  ASSERT_TRUE(fs_->Write(f.ino, 5000, Bytes("abc")).ok());
  std::string all = ReadAll(fs_.get(), f.ino);
  EXPECT_EQ(all.substr(5000, 3), "abc");
  EXPECT_EQ(all[4999], '\0');
  EXPECT_EQ(all[5003], '\0');
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes(std::string(1 << 20, 'q'))).ok());
  ASSERT_TRUE(fs_->Fallocate(f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 10000).ok());
  all = ReadAll(fs_.get(), f.ino);
  EXPECT_EQ(all.substr(0, 100), std::string(100, 'q'));
  EXPECT_EQ(all.substr(100, 10000), std::string(10000, '\0'));
  EXPECT_EQ(all[10100], 'q');
  EXPECT_EQ(fs_->Fallocate(f.ino, FALLOC_FL_PUNCH_HOLE, 0, 10).err(), EOPNOTSUPP);
  ASSERT_TRUE(fs_->Fallocate(f.ino, FALLOC_FL_KEEP_SIZE, 4 << 20, 1 << 20).ok());
  EXPECT_EQ(fs_->GetAttr(f.ino)->size, 1u << 20);
}

TEST_F(FsTest, PunchAlignedStartWithinOneBlock) {
  Attr f = Create(kRoot, "f");
  ASSERT_TRUE(fs_->Write(f.ino, 0, Bytes(std::string(40000, 'e'))).ok());
  ASSERT_TRUE(fs_->Fallocate(f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 24576, 1212).ok());
  std::string all = ReadAll(fs_.get(), f.ino);
  EXPECT_EQ(all.substr(24576, 1212), std::string(1212, '\0'));
  EXPECT_EQ(all[24575], 'e');
  EXPECT_EQ(all[24576 + 1212], 'e');
}

// Truncation, hole punching and release unmap extents 256 per operation:
// each unmaps every one of them, however the budget falls across the
// extent tree's leaves (when it ran out inside the last leaf, the rest of
// that leaf stayed mapped: a cut file read its old bytes back once grown,
// a punched hole read old data, a released file's blocks leaked).
TEST_F(FsTest, CutsOfFilesOfManyExtentsUnmapEveryExtent) {
  constexpr uint64_t kBlocks = 1100, kBs = 4096;
  Attr f[3] = {Create(kRoot, "cut"), Create(kRoot, "punched"), Create(kRoot, "removed")};
  for (uint64_t b = 0; b < kBlocks; b++) {  // alternating: ~1,100 extents each
    for (int k = 0; k < 3; k++) {
      ASSERT_TRUE(fs_->Write(f[k].ino, b * kBs, Bytes(std::string(kBs, static_cast<char>('a' + k)))).ok());
    }
  }
  SetAttrRequest req;
  req.valid = SetAttrRequest::kSize;
  req.size = kBs + 100;
  ASSERT_TRUE(fs_->SetAttr(f[0].ino, req, kRootCred).ok());
  req.size = kBlocks * kBs;
  ASSERT_TRUE(fs_->SetAttr(f[0].ino, req, kRootCred).ok());
  std::string want = std::string(kBs + 100, 'a') + std::string(kBlocks * kBs - kBs - 100, '\0');
  std::string got = ReadAll(fs_.get(), f[0].ino);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "cut and grown back: byte "
                           << (std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin())
                           << " is old data";
  ASSERT_TRUE(fs_->Fallocate(f[1].ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kBs, (kBlocks - 1) * kBs).ok());
  want = std::string(kBs, 'b') + std::string((kBlocks - 1) * kBs, '\0');
  got = ReadAll(fs_.get(), f[1].ino);
  EXPECT_TRUE(got == want) << "punched: byte "
                           << (std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin())
                           << " is old data";
  ASSERT_TRUE(fs_->Unlink(kRoot, "removed", kRootCred).ok());
  UnmountCheckRemount();
}

TEST_F(FsTest, WasCleanIsFalseAfterACrash) {
  RemountWithPowerSwitch();
  Create(kRoot, "f");
  ASSERT_TRUE(fs_->Sync().ok());
  CutPower();
  MountInfo info;
  fs_ = MountImage(img_, testing::TestMountOptions(), &info);
  ASSERT_NE(fs_, nullptr);
  EXPECT_GT(info.replayed_transactions, 0u);
  EXPECT_FALSE(info.was_clean);
  Remount();
}

TEST_F(FsTest, ConcurrentCallersKeepTheVolumeConsistent) {
  std::vector<uint64_t> inos;
  for (int i = 0; i < 4; i++) inos.push_back(Create(kRoot, "c" + std::to_string(i)).ino);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<uint8_t> buf(64 * 1024);
      for (int i = 0; i < 300; i++) {
        const uint64_t ino = inos[rng() % inos.size()];
        const uint64_t off = (rng() % 64) * 4096;
        switch (rng() % 4) {
          case 0:
          case 1:
            std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(t + 1));
            if (!fs_->Write(ino, off, buf).ok()) errors++;
            break;
          case 2:
            if (!fs_->Read(ino, off, buf).ok()) errors++;
            break;
          case 3: {
            SetAttrRequest r;
            r.valid = SetAttrRequest::kSize;
            r.size = off;
            if (!fs_->SetAttr(ino, r, kRootCred).ok()) errors++;
            break;
          }
        }
        if (i % 50 == 0 && !fs_->Sync().ok()) errors++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  Remount();
  for (uint64_t ino : inos) {
    auto a = fs_->GetAttr(ino);
    ASSERT_TRUE(a.ok());
    std::string data = ReadAll(fs_.get(), ino);
    EXPECT_EQ(data.size(), a->size);
  }
}

TEST_F(FsTest, PermissionsForUnprivilegedUsers) {
  Cred alice{1000, 1000, {}};
  Cred bob{1001, 1001, {}};
  auto tmp = fs_->Mkdir(kRoot, "tmp", 01777, kRootCred);
  ASSERT_TRUE(tmp.ok());
  auto af = fs_->Mknod(tmp->ino, "alice", S_IFREG | 0600, 0, alice);
  ASSERT_TRUE(af.ok());
  EXPECT_EQ(af->uid, 1000u);
  EXPECT_EQ(af->gid, 1000u);
  EXPECT_EQ(fs_->CheckOpen(af->ino, O_RDONLY, bob).err(), EACCES);
  EXPECT_TRUE(fs_->CheckOpen(af->ino, O_RDWR, alice).ok());
  EXPECT_EQ(fs_->Unlink(tmp->ino, "alice", bob).err(), EPERM);  // sticky
  EXPECT_EQ(fs_->Rename(tmp->ino, "alice", tmp->ino, "x", 0, bob).err(), EPERM);
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0644;
  EXPECT_EQ(fs_->SetAttr(af->ino, chmod, bob).status().err(), EPERM);
  EXPECT_TRUE(fs_->SetAttr(af->ino, chmod, alice).ok());
  SetAttrRequest chown;
  chown.valid = SetAttrRequest::kUid;
  chown.uid = 1001;
  EXPECT_EQ(fs_->SetAttr(af->ino, chown, alice).status().err(), EPERM);
  EXPECT_TRUE(fs_->SetAttr(af->ino, chown, kRootCred).ok());
  // Root-owned 0755 directory: others cannot create.
  EXPECT_EQ(fs_->Mknod(kRoot, "x", S_IFREG | 0644, 0, alice).status().err(), EACCES);
  // Search permission.
  auto priv = fs_->Mkdir(kRoot, "priv", 0700, kRootCred);
  ASSERT_TRUE(fs_->Mknod(priv->ino, "secret", S_IFREG | 0644, 0, kRootCred).ok());
  EXPECT_EQ(fs_->Lookup(priv->ino, "secret", alice).status().err(), EACCES);
  // setgid directory: group inherited.
  auto sg = fs_->Mkdir(kRoot, "sg", 02777, kRootCred);
  SetAttrRequest chgrp;
  chgrp.valid = SetAttrRequest::kGid;
  chgrp.gid = 500;
  ASSERT_TRUE(fs_->SetAttr(sg->ino, chgrp, kRootCred).ok());
  auto inherit = fs_->Mknod(sg->ino, "f", S_IFREG | 0644, 0, alice);
  EXPECT_EQ(inherit->gid, 500u);
  auto subdir = fs_->Mkdir(sg->ino, "d", 0755, alice);
  EXPECT_TRUE(subdir->mode & S_ISGID);
  EXPECT_EQ(subdir->gid, 500u);
  EXPECT_EQ(fs_->SetXattr(af->ino, "trusted.x", Bytes("1"), 0, alice).err(), EPERM);
}

TEST_F(FsTest, SetTimesAsNonOwner) {
  const Cred bob{1001, 1001, {}};
  const Attr f = Create(kRoot, "f", 0644);
  auto times = [&](uint32_t valid, int64_t mtime = 5, int64_t ctime = 7) {
    SetAttrRequest q;
    q.valid = valid;
    q.atime = {3, 0};
    q.mtime = {mtime, 0};
    q.ctime = {ctime, 0};
    return fs_->SetAttr(f.ino, q, bob).status().err();
  };
  using R = SetAttrRequest;
  // A time the caller chose needs ownership, checked before write
  // permission; "now" needs write permission.
  EXPECT_EQ(times(R::kAtimeNow | R::kMtimeNow), EACCES);
  EXPECT_EQ(times(R::kAtimeNow | R::kMtime), EPERM);
  EXPECT_EQ(times(R::kAtime | R::kMtimeNow), EPERM);
  EXPECT_EQ(times(R::kMtime | R::kCtime | R::kMtimeIsNow, 7, 7), EACCES);
  // A writer's handle stands for the write permission checked at open.
  EXPECT_EQ(times(R::kAtime | R::kByWriter), EPERM);
  SetAttrRequest trunc;
  trunc.valid = R::kSize;
  trunc.size = 10;
  EXPECT_EQ(fs_->SetAttr(f.ino, trunc, bob).status().err(), EACCES);
  auto before = fs_->GetAttr(f.ino);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->size, 0u);
  EXPECT_EQ(before->mtime.sec, f.mtime.sec);  // nothing refused changed anything
  trunc.valid |= R::kByWriter;
  ASSERT_TRUE(fs_->SetAttr(f.ino, trunc, bob).ok());
  EXPECT_EQ(times(R::kMtime | R::kCtime | R::kByWriter, 9, 11), 0);
  auto a = fs_->GetAttr(f.ino);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size, 10u);
  EXPECT_EQ(a->mtime.sec, 9);
  EXPECT_EQ(a->ctime.sec, 11);
  // With write permission, the kernel's "now" passes and is stored as sent.
  SetAttrRequest chmod;
  chmod.valid = R::kMode;
  chmod.mode = 0666;
  ASSERT_TRUE(fs_->SetAttr(f.ino, chmod, kRootCred).ok());
  EXPECT_EQ(times(R::kMtime | R::kCtime | R::kMtimeIsNow, 12, 12), 0);
  EXPECT_EQ(fs_->GetAttr(f.ino)->mtime.sec, 12);
  EXPECT_EQ(times(R::kMtime | R::kCtime, 13, 14), EPERM);
  EXPECT_EQ(times(R::kAtimeNow | R::kMtimeNow), 0);
}

TEST_F(FsTest, ReadOnlyMountRefusesWrites) {
  Create(kRoot, "f");
  ASSERT_TRUE(fs_->Unmount().ok());
  MountOptions o = testing::TestMountOptions();
  o.read_only = true;
  fs_ = MountImage(img_, o);
  ASSERT_NE(fs_, nullptr);
  EXPECT_TRUE(fs_->Lookup(kRoot, "f", kRootCred).ok());
  EXPECT_EQ(fs_->Mknod(kRoot, "g", S_IFREG | 0644, 0, kRootCred).status().err(), EROFS);
}

TEST_F(FsTest, FillingTheVolumeGivesEnospcAndRecovers) {
  Attr f = Create(kRoot, "fill");
  std::string chunk(1 << 20, 'f');
  uint64_t off = 0;
  Status last;
  for (int i = 0; i < 200; i++) {
    auto r = fs_->Write(f.ino, off, Bytes(chunk));
    if (!r.ok()) {
      last = r.status();
      break;
    }
    off += *r;
    if (*r < chunk.size()) break;
  }
  EXPECT_LT(off, 64ull << 20);
  ASSERT_TRUE(fs_->Unlink(kRoot, "fill", kRootCred).ok());
  // Space freed by the unlink becomes usable again.
  Attr g = Create(kRoot, "again");
  EXPECT_TRUE(fs_->Write(g.ino, 0, Bytes(std::string(8 << 20, 'g'))).ok());
}

}  // namespace
}  // namespace vexfs
