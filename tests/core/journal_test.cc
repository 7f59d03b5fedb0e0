#include <gtest/gtest.h>

#include <cstring>

#include "core/journal.h"
#include "core/layout.h"
#include "vexfs/block_device.h"

namespace vexfs::core {
namespace {

const uint8_t kUuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

// An inode-table-like block: 16 records that each end in their own crc32c.
std::vector<uint8_t> InodeTableImage(uint8_t fill) {
  std::vector<uint8_t> b(VEXFS_BLOCK_SIZE);
  for (uint32_t i = 0; i < VEXFS_INODES_PER_BLOCK; i++) {
    auto* ino = reinterpret_cast<vexfs_inode*>(b.data() + i * VEXFS_INODE_SIZE);
    std::memset(ino, fill + i, sizeof(*ino));
    SealInode(ino);
  }
  return b;
}

TEST(JournalTest, CommitThenScanReturnsImages) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(100).ok());
  auto a = InodeTableImage(1), b = InodeTableImage(2);
  ASSERT_TRUE(j.Commit({{500, a.data()}, {501, b.data()}}, false).ok());
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->txns.size(), 1u);
  EXPECT_EQ(scan->images.at(500), a);
  EXPECT_EQ(scan->images.at(501), b);
}

// Regression: a CRC over self-checksummed records does not depend on their
// contents, so a stale inode-table image once passed the commit check.
TEST(JournalTest, StaleSelfChecksummedImageInvalidatesTheTransaction) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(100).ok());
  auto a = InodeTableImage(1), b = InodeTableImage(2);
  ASSERT_TRUE(j.Commit({{500, a.data()}, {501, b.data()}}, false).ok());
  // The first image (journal block 2 = absolute 3) never reached the disk.
  auto stale = InodeTableImage(9);
  ASSERT_TRUE(dev.Write(3, 1, stale.data()).ok());
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->txns.empty());
}

TEST(JournalTest, TornCommitBlockInvalidatesTheTransaction) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(100).ok());
  auto a = InodeTableImage(1);
  ASSERT_TRUE(j.Commit({{500, a.data()}}).ok());
  ASSERT_TRUE(j.Commit({{501, a.data()}}).ok());
  // Tear the second commit block (journal block 6 = absolute 7).
  std::vector<uint8_t> blk(VEXFS_BLOCK_SIZE);
  ASSERT_TRUE(dev.Read(7, 1, blk.data()).ok());
  std::memset(blk.data() + 2048, 0, 2048);
  blk[40] ^= 1;
  ASSERT_TRUE(dev.Write(7, 1, blk.data()).ok());
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->txns.size(), 1u);
}

TEST(JournalTest, RecoverAppliesImagesAndStartsAFreshLog) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(7).ok());
  auto a = InodeTableImage(3);
  ASSERT_TRUE(j.Commit({{600, a.data()}}).ok());
  Journal j2(&dev, 1, 64, kUuid, 1024);
  uint64_t replayed = 0;
  ASSERT_TRUE(j2.Recover(&replayed).ok());
  EXPECT_EQ(replayed, 1u);
  std::vector<uint8_t> home(VEXFS_BLOCK_SIZE);
  ASSERT_TRUE(dev.Read(600, 1, home.data()).ok());
  EXPECT_EQ(home, a);
  EXPECT_EQ(j2.next_sequence(), 8u);
  auto scan = j2.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->txns.empty());
}

TEST(JournalTest, TargetsInsideTheJournalAreRejected) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(1).ok());
  auto a = InodeTableImage(1);
  ASSERT_TRUE(j.Commit({{10, a.data()}}).ok());  // block 10 lies in the journal
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->txns.empty());
}

// Found by fuzz/image_fuzz: replay may rewrite block 0, but never into a
// superblock that moves the journal being replayed, resizes the volume or
// changes its uuid; such a transaction ends the log like a bad checksum.
TEST(JournalTest, SuperblockImageMustKeepTheJournal) {
  MemoryDevice dev(1024);
  auto geo = ComputeGeometry(1024, 0, 64);
  ASSERT_TRUE(geo.ok());
  auto super = [&](uint64_t journal_start, uint8_t uuid0) {
    std::vector<uint8_t> b(VEXFS_BLOCK_SIZE);
    auto* sb = reinterpret_cast<vexfs_super_block*>(b.data());
    sb->s_magic = ToLe32(VEXFS_SUPER_MAGIC);
    sb->s_version_major = ToLe16(VEXFS_VERSION_MAJOR);
    sb->s_block_size_log2 = ToLe32(VEXFS_BLOCK_SIZE_LOG2);
    sb->s_block_count = ToLe64(geo->block_count);
    sb->s_inode_count = ToLe64(geo->inode_count);
    sb->s_journal_start = ToLe64(journal_start);
    sb->s_journal_blocks = ToLe64(geo->journal_blocks);
    sb->s_ibitmap_start = ToLe64(geo->ibitmap_start);
    sb->s_ibitmap_blocks = ToLe64(geo->ibitmap_blocks);
    sb->s_bbitmap_start = ToLe64(geo->bbitmap_start);
    sb->s_bbitmap_blocks = ToLe64(geo->bbitmap_blocks);
    sb->s_itable_start = ToLe64(geo->itable_start);
    sb->s_itable_blocks = ToLe64(geo->itable_blocks);
    sb->s_data_start = ToLe64(geo->data_start);
    sb->s_root_ino = ToLe64(VEXFS_ROOT_INO);
    std::memcpy(sb->s_uuid, kUuid, 16);
    sb->s_uuid[0] = uuid0;
    SealSuper(sb);
    return b;
  };
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(1).ok());
  const auto good = super(1, kUuid[0]);
  ASSERT_TRUE(j.Commit({{0, good.data()}}).ok());
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->txns.size(), 1u);
  for (const auto& bad : {super(2, kUuid[0]), super(1, 99), std::vector<uint8_t>(VEXFS_BLOCK_SIZE, 7)}) {
    ASSERT_TRUE(j.Format(1).ok());
    auto a = InodeTableImage(1);
    ASSERT_TRUE(j.Commit({{500, a.data()}}).ok());
    ASSERT_TRUE(j.Commit({{600, a.data()}, {0, bad.data()}}).ok());
    scan = j.Scan();
    ASSERT_TRUE(scan.ok());
    EXPECT_EQ(scan->txns.size(), 1u);  // the first only
    EXPECT_EQ(scan->images.count(0), 0u);
  }
}


// Found by fuzz/image_fuzz: with no valid transaction, end_block was read
// from the journal superblock's buffer after the scan had reused it for
// the log's next block (here 2^64 - 1 from a torn descriptor).
TEST(JournalTest, EmptyLogEndsWhereItStarts) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(100).ok());
  std::vector<uint8_t> junk(VEXFS_BLOCK_SIZE, 0xff);
  InitBlockHeader(junk.data(), VEXFS_JDESC_MAGIC, 2, 0);  // not sealed: no transaction
  std::memset(junk.data() + sizeof(vexfs_block_header), 0xff, VEXFS_BLOCK_SIZE - sizeof(vexfs_block_header));
  ASSERT_TRUE(dev.Write(2, 1, junk.data()).ok());
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->txns.empty());
  EXPECT_EQ(scan->end_block, 1u);
}

// A second writer over a log it did not write (the image fuzzer appending a
// transaction) extends it: the appended transaction follows the old ones
// with the next sequence, and all of them replay.
TEST(JournalTest, ResumeAfterExtendsTheScannedLog) {
  MemoryDevice dev(1024);
  auto a = InodeTableImage(1), b = InodeTableImage(2), c = InodeTableImage(3);
  {
    Journal j(&dev, 1, 64, kUuid, 1024);
    ASSERT_TRUE(j.Format(100).ok());
    ASSERT_TRUE(j.Commit({{500, a.data()}}).ok());
    ASSERT_TRUE(j.Commit({{501, b.data()}}).ok());
  }
  Journal j(&dev, 1, 64, kUuid, 1024);
  auto before = j.Scan();
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(j.ResumeAfter(*before).ok());
  EXPECT_EQ(j.next_sequence(), 102u);
  EXPECT_EQ(j.FreeBlocks(), 64u - before->end_block);
  ASSERT_TRUE(j.Commit({{500, c.data()}}).ok());
  auto after = j.Scan();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->txns.size(), 3u);
  EXPECT_EQ(after->txns[2].sequence, 102u);
  EXPECT_EQ(after->txns[2].first_block, before->end_block);
  EXPECT_EQ(after->images.at(500), c);
  EXPECT_EQ(after->images.at(501), b);
}

TEST(JournalTest, ResumeAfterRefusesAScanOutsideTheLog) {
  MemoryDevice dev(1024);
  Journal j(&dev, 1, 64, kUuid, 1024);
  ASSERT_TRUE(j.Format(100).ok());
  JournalScan scan;
  scan.end_block = 65;
  EXPECT_TRUE(j.ResumeAfter(scan).IsCorruption());
  scan.end_block = 0;
  EXPECT_TRUE(j.ResumeAfter(scan).IsCorruption());
  scan.end_block = 64;  // a full log: nothing more fits
  ASSERT_TRUE(j.ResumeAfter(scan).ok());
  EXPECT_EQ(j.FreeBlocks(), 0u);
}

}  // namespace
}  // namespace vexfs::core
