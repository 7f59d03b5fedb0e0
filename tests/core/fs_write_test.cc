// The write path: in-place overwrites and whole-block allocating writes run
// outside the filesystem lock, wait for nothing and are waited for by
// read-modify-writes of their blocks; overwrites that keep the times take
// no lock at all once the file's extent map is snapshotted, and never use a
// stale snapshot; nor do reads that leave the atime alone;
// WriteTimes::kKeep leaves the file times to the caller; durability after
// Sync is unchanged.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "fs_test_util.h"
#include "vexfs/fsck.h"

namespace vexfs {
namespace {

using namespace std::chrono_literals;
using testing::Bytes;
using testing::MountImage;
using testing::NewImage;
using testing::ReadAll;
using testing::SharedMemoryDevice;

constexpr uint64_t kRoot = Filesystem::kRootIno;
const Cred kRootCred = Cred::Root();

// A SharedMemoryDevice that holds back every write whose first byte is
// `marker` until Release(): the test can keep one data write in flight.
class GateDevice : public BlockDevice {
 public:
  GateDevice(std::shared_ptr<std::vector<uint8_t>> img, uint8_t marker)
      : dev_(std::move(img)), marker_(marker) {}
  uint64_t block_count() const override { return dev_.block_count(); }
  Status Read(uint64_t block, uint32_t count, void* buf) override {
    return dev_.Read(block, count, buf);
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (static_cast<const uint8_t*>(buf)[0] == marker_) Hold();
    return dev_.Write(block, count, buf);
  }
  Status Flush() override {
    if (hold_flush_.exchange(false)) Hold();
    return dev_.Flush();
  }
  // The next Flush is held back as well, until Release().
  void HoldNextFlush() { hold_flush_ = true; }

  // Waits (bounded) until a marked write is being held.
  bool WaitHeld() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, 10s, [this] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  void Hold() {
    std::unique_lock<std::mutex> l(mu_);
    held_ = true;
    cv_.notify_all();
    cv_.wait(l, [this] { return released_; });
  }
  SharedMemoryDevice dev_;
  std::atomic<bool> hold_flush_{false};
  const uint8_t marker_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, released_ = false;
};

class FsWriteTest : public ::testing::Test {
 protected:
  void SetUp() override { img_ = NewImage(4096, 0, 1024); }
  // Mounts through a GateDevice holding back writes that start with 'Z'.
  GateDevice* MountGated() {
    auto dev = std::make_unique<GateDevice>(img_, 'Z');
    GateDevice* gate = dev.get();
    auto r = Filesystem::Mount(std::move(dev), testing::TestMountOptions());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    fs_ = std::move(r).value();
    return gate;
  }
  uint64_t CreateFile(const std::string& name, const std::string& contents) {
    auto a = fs_->Mknod(kRoot, name, S_IFREG | 0644, 0, kRootCred);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(fs_->Write(a->ino, 0, Bytes(contents)).ok());
    EXPECT_TRUE(fs_->Sync().ok());
    return a->ino;
  }
  // truncate(2) or extension of `ino` to `size`, as root.
  bool Truncate(uint64_t ino, uint64_t size) {
    SetAttrRequest req;
    req.valid = SetAttrRequest::kSize;
    req.size = size;
    return fs_->SetAttr(ino, req, kRootCred).ok();
  }
  // Unmounts and checks the volume with fsck: no error left.
  void UnmountAndExpectClean() {
    ASSERT_TRUE(fs_->Unmount().ok());
    testing::SharedMemoryDevice dev(img_);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->errors_left(), 0u) << (rep->problems.empty() ? "" : rep->problems[0].message);
  }
  std::shared_ptr<std::vector<uint8_t>> img_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(FsWriteTest, OverwriteInPlaceDoesNotHoldTheLock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(3 * 4096, 'a'));
  const std::string block(4096, 'Z');
  auto writer = std::async(std::launch::async, [&] { return fs_->Write(ino, 4096, Bytes(block)); });
  ASSERT_TRUE(gate->WaitHeld());
  // The overwrite's device write is in flight: other calls go on.
  auto other = std::async(std::launch::async, [&] {
    auto a = fs_->GetAttr(ino);
    auto m = fs_->Mknod(kRoot, "g", S_IFREG | 0644, 0, kRootCred);
    return a.ok() && m.ok();
  });
  const bool ran = other.wait_for(5s) == std::future_status::ready;
  gate->Release();
  EXPECT_TRUE(ran) << "a call waited for an overwrite's device write";
  EXPECT_TRUE(other.get());
  auto n = writer.get();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 4096u);
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(4096, 'a') + block + std::string(4096, 'a'));
}

// A truncate into the block being overwritten leaves the block's contents
// alone (its cut tail is past the end, zeroed by the next growth: a zeroing
// in place could reach the disk before the truncate commits), so it need
// not wait; growing the file again zeroes that tail only after the
// overwrite landed, so it shows zeros, not bytes of the overwrite past the
// cut.
TEST_F(FsWriteTest, RegrowAfterATruncateWaitsForAnOverwriteOfItsBlock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a'));
  auto writer = std::async(std::launch::async,
                           [&] { return fs_->Write(ino, 0, Bytes(std::string(4096, 'Z'))); });
  ASSERT_TRUE(gate->WaitHeld());
  ASSERT_TRUE(Truncate(ino, 100));
  auto grow = std::async(std::launch::async, [&] { return Truncate(ino, 4096); });
  EXPECT_EQ(grow.wait_for(300ms), std::future_status::timeout)
      << "growing zeroed the block while an overwrite of it was in flight";
  gate->Release();
  ASSERT_TRUE(writer.get().ok());
  ASSERT_TRUE(grow.get());
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(100, 'Z') + std::string(4096 - 100, '\0'));
}

// The same for a partial write of the block (read, merge, write back).
TEST_F(FsWriteTest, PartialWriteWaitsForAnOverwriteOfItsBlock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a'));
  auto writer = std::async(std::launch::async,
                           [&] { return fs_->Write(ino, 0, Bytes(std::string(4096, 'Z'))); });
  ASSERT_TRUE(gate->WaitHeld());
  auto partial = std::async(std::launch::async,
                            [&] { return fs_->Write(ino, 10, Bytes(std::string(10, 'p'))).ok(); });
  EXPECT_EQ(partial.wait_for(300ms), std::future_status::timeout)
      << "a partial write merged the block while an overwrite of it was in flight";
  gate->Release();
  ASSERT_TRUE(writer.get().ok());
  ASSERT_TRUE(partial.get());
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(10, 'Z') + std::string(10, 'p') +
                                         std::string(4096 - 20, 'Z') + std::string(4096, 'a'));
}

TEST_F(FsWriteTest, KeepTimesLeavesMtimeAndCtime) {
  fs_ = MountImage(img_);
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a'));
  SetAttrRequest old;
  old.valid = SetAttrRequest::kMtime | SetAttrRequest::kCtime;
  old.mtime = {1000, 1};
  old.ctime = {2000, 2};
  ASSERT_TRUE(fs_->SetAttr(ino, old, kRootCred).ok());
  auto keep = [&](uint64_t off, const std::string& s) {
    return fs_->Write(ino, off, Bytes(s), Filesystem::WriteTimes::kKeep).ok();
  };
  ASSERT_TRUE(keep(0, std::string(4096, 'b')));      // in place
  ASSERT_TRUE(keep(4096 + 7, "partial"));            // read-modify-write
  ASSERT_TRUE(keep(5 * 4096, std::string(4096, 'c')));  // allocates, extends
  auto a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mtime.sec, 1000);
  EXPECT_EQ(a->mtime.nsec, 1u);
  EXPECT_EQ(a->ctime.sec, 2000);
  EXPECT_EQ(a->size, 6u * 4096);
  // The default (write(2)) sets both, in place or not.
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'd'))).ok());
  a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->mtime.sec, 1000);
  EXPECT_GT(a->ctime.sec, 2000);
  ASSERT_TRUE(fs_->SetAttr(ino, old, kRootCred).ok());
  ASSERT_TRUE(fs_->Write(ino, 4096 + 7, Bytes(std::string("x"))).ok());
  a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->mtime.sec, 1000);
  ASSERT_TRUE(fs_->Unmount().ok());
}

// What Sync returned for survives a power cut: overwrites in place (and
// the times a SetAttr set for them) as much as allocating writes.
TEST_F(FsWriteTest, SyncedOverwritesSurviveAPowerCut) {
  auto power = std::make_shared<std::atomic<bool>>(false);
  fs_ = MountImage(img_, testing::TestMountOptions(), nullptr, power);
  const uint64_t ino = CreateFile("f", std::string(8 * 4096, 'a'));
  std::string want(8 * 4096, 'a');
  for (uint64_t b : {6, 1, 3}) {
    const std::string block(4096, static_cast<char>('0' + b));
    ASSERT_TRUE(fs_->Write(ino, b * 4096, Bytes(block), Filesystem::WriteTimes::kKeep).ok());
    want.replace(b * 4096, 4096, block);
  }
  ASSERT_TRUE(fs_->Write(ino, 2 * 4096, Bytes(std::string(2 * 4096, 'u'))).ok());
  want.replace(2 * 4096, 2 * 4096, std::string(2 * 4096, 'u'));
  SetAttrRequest times;
  times.valid = SetAttrRequest::kMtime | SetAttrRequest::kCtime;
  times.mtime = {123456, 789};
  times.ctime = {123457, 0};
  ASSERT_TRUE(fs_->SetAttr(ino, times, kRootCred).ok());
  ASSERT_TRUE(fs_->Fsync(ino, false).ok());
  // After the sync: may be lost, must not tear anything else.
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'n'))).ok());
  power->store(true);
  fs_.reset();

  MountInfo info;
  fs_ = MountImage(img_, testing::TestMountOptions(), &info);
  ASSERT_NE(fs_, nullptr);
  const std::string got = ReadAll(fs_.get(), ino);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got.substr(4096) == want.substr(4096));
  EXPECT_TRUE(got.substr(0, 4096) == want.substr(0, 4096) ||
              got.substr(0, 4096) == std::string(4096, 'n'));
  auto a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mtime.sec, 123456);
  EXPECT_EQ(a->mtime.nsec, 789u);
  ASSERT_TRUE(fs_->Unmount().ok());
}

// An appending write of whole blocks maps them unwritten, writes the
// device without the lock, then maps them written: while its data is in
// flight other calls go on and see the old size.
TEST_F(FsWriteTest, AllocatingWriteDoesNotHoldTheLock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a'));
  const std::string blocks(3 * 4096, 'Z');
  auto writer = std::async(std::launch::async, [&] { return fs_->Write(ino, 2 * 4096, Bytes(blocks)); });
  ASSERT_TRUE(gate->WaitHeld());
  auto other = std::async(std::launch::async, [&] {
    auto a = fs_->GetAttr(ino);
    auto m = fs_->Mknod(kRoot, "g", S_IFREG | 0644, 0, kRootCred);
    return a.ok() && m.ok() && a->size == 2 * 4096 &&
           ReadAll(fs_.get(), ino) == std::string(2 * 4096, 'a');
  });
  const bool ran = other.wait_for(5s) == std::future_status::ready;
  gate->Release();
  EXPECT_TRUE(ran) << "a call waited for an allocating write's device write";
  EXPECT_TRUE(other.get());
  auto n = writer.get();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, blocks.size());
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(2 * 4096, 'a') + blocks);
  UnmountAndExpectClean();
}

// A truncation that removes the blocks of an allocating write while its
// data is in flight: the write is redone under the lock afterwards (the
// truncation first, then the write), never marks blocks it no longer owns.
TEST_F(FsWriteTest, TruncateDuringAnAllocatingWriteRedoesIt) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(4096, 'a'));
  const std::string blocks(2 * 4096, 'Z');
  auto writer = std::async(std::launch::async, [&] { return fs_->Write(ino, 4 * 4096, Bytes(blocks)); });
  ASSERT_TRUE(gate->WaitHeld());
  auto truncate = std::async(std::launch::async, [&] {
    // After the sync the freed blocks may be reused.
    return Truncate(ino, 0) && fs_->Sync().ok();
  });
  const bool ran = truncate.wait_for(5s) == std::future_status::ready;
  gate->Release();
  ASSERT_TRUE(ran) << "the truncation waited for an allocating write's device write";
  ASSERT_TRUE(truncate.get());
  auto n = writer.get();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(4 * 4096, '\0') + blocks);
  UnmountAndExpectClean();
}

// Power lost while an allocating write's data is in flight, after a sync
// committed its unwritten mapping: the file reads as before (size and
// bytes), and the volume is consistent.
TEST_F(FsWriteTest, PowerCutDuringAnAllocatingWriteKeepsTheOldFile) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(4096, 'a'));
  auto writer = std::async(std::launch::async,
                           [&] { return fs_->Write(ino, 4096, Bytes(std::string(2 * 4096, 'Z'))); });
  ASSERT_TRUE(gate->WaitHeld());
  auto sync = std::async(std::launch::async, [&] { return fs_->Sync().ok(); });
  const bool ran = sync.wait_for(5s) == std::future_status::ready;
  // Power cut: keep the image as it is now (the unwritten extents
  // committed); the data write never reaches it.
  auto snapshot = std::make_shared<std::vector<uint8_t>>(*img_);
  gate->Release();
  ASSERT_TRUE(ran) << "sync waited for an allocating write's device write";
  ASSERT_TRUE(sync.get());
  ASSERT_TRUE(writer.get().ok());
  ASSERT_TRUE(fs_->Unmount().ok());
  fs_.reset();

  fs_ = MountImage(snapshot);
  ASSERT_NE(fs_, nullptr);
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(4096, 'a'));
  // The unwritten blocks past EOF read as zeros once the file grows over them.
  ASSERT_TRUE(Truncate(ino, 3 * 4096));
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(4096, 'a') + std::string(2 * 4096, '\0'));
  ASSERT_TRUE(fs_->Unmount().ok());
  testing::SharedMemoryDevice dev(snapshot);
  auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->errors_left(), 0u) << (rep->problems.empty() ? "" : rep->problems[0].message);
}

constexpr auto kKeep = Filesystem::WriteTimes::kKeep;

// Overwrites that leave the times to the caller (the writeback cache's
// page writes) plan from a snapshot of the extent map, made at the second
// one: from then on they run while another call holds the filesystem lock
// (here a Sync, held in its flush).
TEST_F(FsWriteTest, OverwriteWithASnapshotTakesNoLock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(4 * 4096, 'a'));
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'b')), kKeep).ok());
  ASSERT_TRUE(fs_->Write(ino, 4096, Bytes(std::string(4096, 'b')), kKeep).ok());
  SetAttrRequest times;
  times.valid = SetAttrRequest::kMtime;
  times.mtime = {1000, 0};
  ASSERT_TRUE(fs_->SetAttr(ino, times, kRootCred).ok());  // the commit the Sync flushes
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'c')), kKeep).ok());
  ASSERT_TRUE(fs_->Write(ino, 4096, Bytes(std::string(4096, 'c')), kKeep).ok());
  gate->HoldNextFlush();
  auto sync = std::async(std::launch::async, [&] { return fs_->Sync().ok(); });
  ASSERT_TRUE(gate->WaitHeld());
  // The lock is held: a call that needs it waits.
  auto attr = std::async(std::launch::async, [&] { return fs_->GetAttr(ino).ok(); });
  const bool locked = attr.wait_for(200ms) == std::future_status::timeout;
  auto writer = std::async(std::launch::async, [&] {
    return fs_->Write(ino, 2 * 4096, Bytes(std::string(2 * 4096, 'd')), kKeep).ok();
  });
  const bool ran = writer.wait_for(5s) == std::future_status::ready;
  gate->Release();
  EXPECT_TRUE(locked) << "Sync did not hold the filesystem lock in its flush";
  EXPECT_TRUE(ran) << "an overwrite with a current snapshot waited for the filesystem lock";
  EXPECT_TRUE(writer.get());
  EXPECT_TRUE(sync.get());
  EXPECT_TRUE(attr.get());
  EXPECT_EQ(ReadAll(fs_.get(), ino),
            std::string(4096, 'c') + std::string(4096, 'c') + std::string(2 * 4096, 'd'));
  ASSERT_TRUE(fs_->Unmount().ok());
}

// Every change to the file invalidates its snapshot: after a truncation
// and a re-extension (holes now), a write of the old blocks allocates new
// ones instead of writing the freed ones (which would leave a hole), and
// hole punching and a write past EOF are seen.
TEST_F(FsWriteTest, ChangedFileIsNotWrittenThroughAStaleSnapshot) {
  fs_ = MountImage(img_);
  const uint64_t ino = CreateFile("f", std::string(4 * 4096, 'a'));
  const uint64_t other = CreateFile("g", "");
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(fs_->Write(ino, 3 * 4096, Bytes(std::string(4096, 'b')), kKeep).ok());
  }
  ASSERT_TRUE(Truncate(ino, 4096));
  ASSERT_TRUE(Truncate(ino, 4 * 4096));
  ASSERT_TRUE(fs_->Write(other, 0, Bytes(std::string(8 * 4096, 'g'))).ok());
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'c')), kKeep).ok());
  }
  ASSERT_TRUE(fs_->Write(ino, 3 * 4096, Bytes(std::string(4096, 'd')), kKeep).ok());
  EXPECT_EQ(ReadAll(fs_.get(), other), std::string(8 * 4096, 'g'));
  EXPECT_EQ(ReadAll(fs_.get(), ino),
            std::string(4096, 'c') + std::string(2 * 4096, '\0') + std::string(4096, 'd'));
  // Punching a hole (snapshot current before it) and writing it again.
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'e')), kKeep).ok());
  }
  ASSERT_TRUE(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096).ok());
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'f')), kKeep).ok());
  // And past EOF after the snapshot: the file grows.
  ASSERT_TRUE(fs_->Write(ino, 4 * 4096, Bytes(std::string(4096, 'h')), kKeep).ok());
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(4096, 'f') + std::string(2 * 4096, '\0') +
                                         std::string(4096, 'd') + std::string(4096, 'h'));
  EXPECT_EQ(ReadAll(fs_.get(), other), std::string(8 * 4096, 'g'));
  UnmountAndExpectClean();
}

// A truncation while a lock-free overwrite's data is in flight runs at
// once, but the blocks it frees are not handed to another file until the
// write is done: here the volume is full, so the next allocation needs
// them (a checkpoint), and waits.
TEST_F(FsWriteTest, TruncateDuringAnUnlockedOverwriteKeepsItsBlocks) {
  GateDevice* gate = MountGated();
  auto st = fs_->StatFs();
  ASSERT_TRUE(st.ok());
  const uint64_t nblocks = st->free_blocks - 64;
  const uint64_t ino = CreateFile("f", std::string(nblocks * 4096, 'a'));
  const uint64_t other = CreateFile("g", "");
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'b')), kKeep).ok());
  }
  auto writer = std::async(std::launch::async, [&] {
    return fs_->Write(ino, 4096, Bytes(std::string(4096, 'Z')), kKeep).ok();
  });
  ASSERT_TRUE(gate->WaitHeld());
  auto truncate = std::async(std::launch::async, [&] {
    return Truncate(ino, 0) && fs_->Sync().ok();
  });
  const bool truncated = truncate.wait_for(5s) == std::future_status::ready;
  auto refill = std::async(std::launch::async, [&] {
    return fs_->Write(other, 0, Bytes(std::string((nblocks - 8) * 4096, 'g'))).ok();
  });
  const bool refilled_early = refill.wait_for(300ms) == std::future_status::ready;
  gate->Release();
  EXPECT_TRUE(truncated) << "the truncation waited for a lock-free overwrite";
  EXPECT_FALSE(refilled_early) << "blocks freed under a lock-free overwrite were reused at once";
  EXPECT_TRUE(writer.get());
  ASSERT_TRUE(truncate.get());
  ASSERT_TRUE(refill.get());
  EXPECT_EQ(ReadAll(fs_.get(), other), std::string((nblocks - 8) * 4096, 'g'));
  EXPECT_EQ(ReadAll(fs_.get(), ino), "");
  UnmountAndExpectClean();
}

// Reads that update no atime plan from the same snapshot once two of them
// found the file unchanged: they run while another call holds the lock.
TEST_F(FsWriteTest, ReadWithASnapshotTakesNoLock) {
  GateDevice* gate = MountGated();
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a') + "tail");
  // An atime after mtime and ctime (seconds): reads leave it alone.
  SetAttrRequest times;
  times.valid = SetAttrRequest::kMtime | SetAttrRequest::kAtime;
  times.mtime = {1000, 0};
  times.atime = {static_cast<int64_t>(time(nullptr)) + 3600, 0};
  ASSERT_TRUE(fs_->SetAttr(ino, times, kRootCred).ok());  // the commit the Sync flushes
  for (int i = 0; i < 2; i++) ReadAll(fs_.get(), ino);  // mark, snapshot
  gate->HoldNextFlush();
  auto sync = std::async(std::launch::async, [&] { return fs_->Sync().ok(); });
  ASSERT_TRUE(gate->WaitHeld());
  auto attr = std::async(std::launch::async, [&] { return fs_->GetAttr(ino).ok(); });
  const bool locked = attr.wait_for(200ms) == std::future_status::timeout;
  auto reader = std::async(std::launch::async, [&] {
    std::string got(3 * 4096, 'x');
    auto n = fs_->Read(ino, 4096 - 2, std::span(reinterpret_cast<uint8_t*>(got.data()), got.size()));
    return n.ok() ? got.substr(0, *n) : std::string("error");
  });
  const bool ran = reader.wait_for(5s) == std::future_status::ready;
  gate->Release();
  EXPECT_TRUE(locked) << "Sync did not hold the filesystem lock in its flush";
  EXPECT_TRUE(ran) << "a read with a current snapshot waited for the filesystem lock";
  EXPECT_EQ(reader.get(), "aa" + std::string(4096, 'a') + "tail");
  EXPECT_TRUE(sync.get());
  EXPECT_TRUE(attr.get());
  ASSERT_TRUE(fs_->Unmount().ok());
}

// A snapshot never hides a change from a read: new size, new blocks, and
// the atime update a write makes due (relatime: atime not after mtime).
TEST_F(FsWriteTest, ReadAfterAChangeIsNotPlannedFromAStaleSnapshot) {
  fs_ = MountImage(img_);
  const uint64_t ino = CreateFile("f", std::string(2 * 4096, 'a'));
  SetAttrRequest future;  // reads leave this atime alone
  future.valid = SetAttrRequest::kAtime;
  future.atime = {static_cast<int64_t>(time(nullptr)) + 3600, 0};
  ASSERT_TRUE(fs_->SetAttr(ino, future, kRootCred).ok());
  for (int i = 0; i < 3; i++) ReadAll(fs_.get(), ino);
  ASSERT_TRUE(Truncate(ino, 100));
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(100, 'a'));
  for (int i = 0; i < 3; i++) ReadAll(fs_.get(), ino);
  ASSERT_TRUE(fs_->Write(ino, 4096, Bytes(std::string(4096, 'b'))).ok());
  EXPECT_EQ(ReadAll(fs_.get(), ino), std::string(100, 'a') + std::string(4096 - 100, '\0') +
                                         std::string(4096, 'b'));
  for (int i = 0; i < 3; i++) ReadAll(fs_.get(), ino);
  SetAttrRequest times;
  times.valid = SetAttrRequest::kMtime | SetAttrRequest::kAtime;
  times.atime = {1000, 0};
  times.mtime = {2000, 0};
  ASSERT_TRUE(fs_->SetAttr(ino, times, kRootCred).ok());
  ReadAll(fs_.get(), ino);
  auto a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->atime.sec, 2000) << "a read after the snapshot did not update a stale atime";
  // A snapshot made by overwrites (no change: the times are the caller's)
  // while the atime is due: the next read still updates it.
  ASSERT_TRUE(fs_->SetAttr(ino, times, kRootCred).ok());
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(4096, 'c')), kKeep).ok());
  }
  EXPECT_EQ(ReadAll(fs_.get(), ino).substr(0, 4096), std::string(4096, 'c'));
  a = fs_->GetAttr(ino);
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->atime.sec, 2000) << "a read through a snapshot skipped a due atime update";
  ASSERT_TRUE(fs_->Unmount().ok());
}

// Every way of growing a file makes the grown range read as zeros, even
// where its last block holds bytes past the old end: here those of an
// extending write whose data landed in place while a power cut lost the
// size change (a 100-byte file of 'a' whose block 0 holds 'B' from byte
// 100 on).
TEST_F(FsWriteTest, GrowingAFileZeroesItsLastBlockPastTheOldEnd) {
  fs_ = MountImage(img_);
  ASSERT_NE(fs_, nullptr);
  const uint64_t ino = CreateFile("f", std::string(100, 'a'));
  ASSERT_TRUE(fs_->Write(ino, 0, Bytes(std::string(100, 'a') + std::string(3 * 4096 - 100, 'B'))).ok());
  const std::vector<uint8_t> cut = *img_;  // the size change was never committed
  ASSERT_TRUE(fs_->Unmount().ok());
  fs_.reset();

  struct Growth {
    const char* what;
    std::function<Status(Filesystem*)> grow;
    uint64_t size;     // the file's size after it
    uint64_t zeros;    // bytes [100, zeros) must read as zeros
    char data;         // bytes [zeros, size) hold this ('\0': zeros too)
  };
  auto write = [ino](uint64_t off, size_t len, char c) {
    return [=](Filesystem* fs) { return fs->Write(ino, off, Bytes(std::string(len, c))).status(); };
  };
  auto fallocate = [ino](int mode, uint64_t off, uint64_t len) {
    return [=](Filesystem* fs) { return fs->Fallocate(ino, mode, off, len); };
  };
  const std::vector<Growth> cases = {
      {"write in the last block", write(3000, 10, 'x'), 3010, 3000, 'x'},
      {"write in a later block", write(5000, 10, 'x'), 5010, 5000, 'x'},
      {"whole-block write past a gap", write(8192, 4096, 'x'), 12288, 8192, 'x'},
      {"fallocate", fallocate(0, 0, 3 * 4096), 3 * 4096, 3 * 4096, 0},
      {"fallocate past the end", fallocate(0, 6000, 100), 6100, 6100, 0},
      {"zero range past the end", fallocate(FALLOC_FL_ZERO_RANGE, 200, 1000), 1200, 1200, 0},
      {"keep-size fallocate, then a write", [&](Filesystem* fs) {
         VEXFS_RETURN_IF_ERROR(fs->Fallocate(ino, FALLOC_FL_KEEP_SIZE, 0, 3 * 4096));
         return write(5000, 10, 'x')(fs);
       }, 5010, 5000, 'x'},
      {"truncate", [&](Filesystem* fs) { return Truncate(ino, 3000) ? Status::Ok() : Status::IoError("truncate"); },
       3000, 3000, 0},
  };
  for (const Growth& g : cases) {
    SCOPED_TRACE(g.what);
    auto img = std::make_shared<std::vector<uint8_t>>(cut);
    fs_ = MountImage(img);
    ASSERT_NE(fs_, nullptr);
    ASSERT_EQ(ReadAll(fs_.get(), ino), std::string(100, 'a'));
    Status s = g.grow(fs_.get());
    ASSERT_TRUE(s.ok()) << s.ToString();
    const std::string want = std::string(100, 'a') + std::string(g.zeros - 100, '\0') +
                             std::string(g.size - g.zeros, g.data);
    const std::string got = ReadAll(fs_.get(), ino);
    ASSERT_EQ(got.size(), want.size());
    const size_t diff = std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin();
    EXPECT_EQ(diff, got.size()) << "byte " << diff << " reads " << int{got[diff]};
    // And so it stays after a remount.
    ASSERT_TRUE(fs_->Unmount().ok());
    fs_ = MountImage(img);
    ASSERT_NE(fs_, nullptr);
    EXPECT_TRUE(ReadAll(fs_.get(), ino) == want);
    ASSERT_TRUE(fs_->Unmount().ok());
    fs_.reset();
  }
}

// A scratch image file of `bytes` bytes in /var/tmp (a filesystem with
// O_DIRECT), removed when the test ends, also when an assertion returns
// early.
struct TempImage {
  char path[40] = "/var/tmp/vexfs_device_XXXXXX";
  bool ok = false;
  explicit TempImage(off_t bytes) {
    const int fd = mkstemp(path);
    if (fd < 0) return;
    ok = ftruncate(fd, bytes) == 0;
    close(fd);
  }
  ~TempImage() { unlink(path); }
};

// Drops the file's clean pages from the host's page cache.
bool Evict(const char* path) {
  const int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  const bool ok = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  close(fd);
  return ok;
}

// ReadData of an image file on a filesystem with O_DIRECT: small aligned
// reads of uncached blocks bypass the page cache, cached ones (here: just
// written, dirty) are read through it; either way every completed Write is
// seen. Unaligned and large reads work as Read.
TEST(FileDeviceTest, ReadDataSeesBufferedWrites) {
  TempImage img(64 * 4096);
  ASSERT_TRUE(img.ok) << strerror(errno);
  auto dev = OpenBlockDevice(img.path, OpenOptions{});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  std::vector<uint8_t> blocks(8 * 4096);
  for (size_t i = 0; i < blocks.size(); i++) blocks[i] = static_cast<uint8_t>(i / 4096 + 1);
  ASSERT_TRUE((*dev)->Write(10, 8, blocks.data()).ok());
  auto* aligned = static_cast<uint8_t*>(std::aligned_alloc(4096, 9 * 4096));
  for (uint32_t n : {1u, 4u, 8u}) {
    std::memset(aligned, 0, 9 * 4096);
    ASSERT_TRUE((*dev)->ReadData(10, n, aligned).ok());
    EXPECT_EQ(std::memcmp(aligned, blocks.data(), n * 4096), 0) << n << " blocks, aligned";
    std::memset(aligned, 0, 9 * 4096);
    ASSERT_TRUE((*dev)->ReadData(10, n, aligned + 512).ok());
    EXPECT_EQ(std::memcmp(aligned + 512, blocks.data(), n * 4096), 0) << n << " blocks, unaligned";
  }
  // Overwrite in the page cache, read back at once.
  std::vector<uint8_t> again(4096, 0xAB);
  ASSERT_TRUE((*dev)->Write(11, 1, again.data()).ok());
  ASSERT_TRUE((*dev)->ReadData(11, 1, aligned).ok());
  EXPECT_EQ(std::memcmp(aligned, again.data(), 4096), 0);
  // Written back and evicted: read with O_DIRECT.
  ASSERT_TRUE((*dev)->Flush().ok());
  ASSERT_TRUE(Evict(img.path));
  for (uint32_t n : {1u, 4u}) {
    std::memset(aligned, 0, 9 * 4096);
    ASSERT_TRUE((*dev)->ReadData(10, n, aligned).ok());
    std::vector<uint8_t> want(blocks.begin(), blocks.begin() + n * 4096);
    if (n > 1) std::memcpy(want.data() + 4096, again.data(), 4096);  // block 11
    EXPECT_EQ(std::memcmp(aligned, want.data(), n * 4096), 0) << n << " blocks, evicted";
  }
  EXPECT_FALSE((*dev)->ReadData(63, 2, aligned).ok());  // past the end
  std::free(aligned);
}

// cachestat(2) of the whole file: {dirty, under write-back} pages, or
// nullopt where the kernel lacks it (before 6.5).
std::optional<std::pair<uint64_t, uint64_t>> DirtyPages(const char* path) {
  const int fd = open(path, O_RDONLY);
  if (fd < 0) return std::nullopt;
  struct {
    uint64_t off, len;
  } range{0, 0};
  struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } st{};
  const long r = syscall(451, fd, &range, &st, 0);
  close(fd);
  if (r != 0) return std::nullopt;
  return std::make_pair(st.nr_dirty, st.nr_writeback);
}

// OpenOptions::start_writeback_bytes: without it, 4 MiB written stay dirty
// in the host's page cache (until the host's own 30 s expiry); with 1 MiB,
// the device has the host start writing them out without a Flush, and the
// data reads back the same.
TEST(FileDeviceTest, StartsTheHostsWritebackEarly) {
  TempImage img(64 << 20);
  ASSERT_TRUE(img.ok) << strerror(errno);
  const char* path = img.path;
  if (!DirtyPages(path)) GTEST_SKIP() << "no cachestat(2) on this kernel";
  std::vector<uint8_t> mib(1 << 20);
  for (size_t i = 0; i < mib.size(); i++) mib[i] = static_cast<uint8_t>(i * 7 + 3);
  constexpr uint32_t kBlocksPerMib = (1 << 20) / kBlockSize;
  {
    OpenOptions oo;
    oo.start_writeback_bytes = 0;
    auto dev = OpenBlockDevice(path, oo);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    for (uint32_t i = 0; i < 4; i++) ASSERT_TRUE((*dev)->Write(i * kBlocksPerMib, kBlocksPerMib, mib.data()).ok());
    auto d = DirtyPages(path);
    ASSERT_TRUE(d);
    EXPECT_GT(d->first + d->second, 0u) << "nothing dirty: the host wrote back on its own";
    ASSERT_TRUE((*dev)->Flush().ok());
  }
  {
    OpenOptions oo;
    oo.start_writeback_bytes = 1 << 20;
    auto dev = OpenBlockDevice(path, oo);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    for (uint32_t i = 4; i < 8; i++) ASSERT_TRUE((*dev)->Write(i * kBlocksPerMib, kBlocksPerMib, mib.data()).ok());
    std::pair<uint64_t, uint64_t> d{1, 1};
    for (int tries = 0; tries < 1000 && d.first + d.second > 0; tries++) {
      usleep(10'000);
      d = *DirtyPages(path);
    }
    EXPECT_EQ(d.first + d.second, 0u) << d.first << " pages dirty, " << d.second << " under write-back after 10 s";
    std::vector<uint8_t> back(mib.size());
    for (uint32_t i = 0; i < 8; i++) {
      ASSERT_TRUE((*dev)->Read(i * kBlocksPerMib, kBlocksPerMib, back.data()).ok());
      EXPECT_TRUE(back == mib) << "MiB " << i;
    }
    ASSERT_TRUE((*dev)->Flush().ok());
  }
}

// ReadData remembers regions in which the host's cache held nothing and
// reads them with O_DIRECT without asking cachestat(2) again. A buffered
// write there must end that: the write's dirty page is then read through
// the cache, not first written back by an O_DIRECT read, and every read
// sees every completed write.
TEST(FileDeviceTest, ColdRegionsWarmUpOnWrite) {
  TempImage img(8 << 20);  // four 2 MiB regions
  ASSERT_TRUE(img.ok) << strerror(errno);
  const char* path = img.path;
  if (!DirtyPages(path)) GTEST_SKIP() << "no cachestat(2) on this kernel";
  OpenOptions oo;
  oo.start_writeback_bytes = 0;
  auto dev = OpenBlockDevice(path, oo);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  std::vector<uint8_t> blocks(8 * kBlockSize);
  for (size_t i = 0; i < blocks.size(); i++) blocks[i] = static_cast<uint8_t>(i / kBlockSize + 1);
  constexpr uint64_t kFirst = 600;  // in the second region, blocks 512..1023
  ASSERT_TRUE((*dev)->Write(kFirst, 8, blocks.data()).ok());
  ASSERT_TRUE((*dev)->Flush().ok());
  ASSERT_TRUE(Evict(path));
  auto* aligned = static_cast<uint8_t*>(std::aligned_alloc(kBlockSize, kBlockSize));
  struct Free {
    void* p;
    ~Free() { std::free(p); }
  } free_at_exit{aligned};
  // Enough cold reads for the region to be remembered as cold.
  for (uint32_t i = 0; i < 32; i++) {
    ASSERT_TRUE((*dev)->ReadData(kFirst + i % 8, 1, aligned).ok());
    ASSERT_EQ(std::memcmp(aligned, blocks.data() + (i % 8) * kBlockSize, kBlockSize), 0) << i;
  }
  for (int round = 0; round < 3; round++) {
    std::vector<uint8_t> again(kBlockSize, static_cast<uint8_t>(0xA0 + round));
    ASSERT_TRUE((*dev)->Write(kFirst + 1, 1, again.data()).ok());
    auto before = DirtyPages(path);
    ASSERT_TRUE(before);
    ASSERT_GT(before->first, 0u) << "the write left nothing dirty";
    ASSERT_TRUE((*dev)->ReadData(kFirst + 1, 1, aligned).ok());
    EXPECT_EQ(std::memcmp(aligned, again.data(), kBlockSize), 0) << round;
    auto after = DirtyPages(path);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->first, before->first) << "the read wrote the dirty page back: it went O_DIRECT";
    // Its neighbours, still uncached, read as written.
    for (uint32_t i = 2; i < 8; i++) {
      ASSERT_TRUE((*dev)->ReadData(kFirst + i, 1, aligned).ok());
      ASSERT_EQ(std::memcmp(aligned, blocks.data() + i * kBlockSize, kBlockSize), 0) << round << " " << i;
    }
    ASSERT_TRUE((*dev)->Flush().ok());
    ASSERT_TRUE(Evict(path));
    for (uint32_t i = 0; i < 32; i++) ASSERT_TRUE((*dev)->ReadData(kFirst + 2 + i % 6, 1, aligned).ok());
  }
}

}  // namespace
}  // namespace vexfs
