// One named test per corruption case: each builds a small populated image,
// breaks one invariant, checks that fsck -n reports it (with its stable
// code), that fsck -y repairs it, and that a second pass is clean.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/journal.h"
#include "core/reader.h"
#include "fsck_test_util.h"
#include "vexfs/crc32c.h"

namespace vexfs::testing {
namespace {

struct Populated : Img {
  uint64_t a, dir1, b, link, empty, tagged, sparse;
  Populated() {
    a = MkFile(VEXFS_ROOT_INO, "a.txt", 3);
    dir1 = MkDir(VEXFS_ROOT_INO, "dir1");
    b = MkFile(dir1, "b.bin", 1);
    link = MkSymlink(dir1, "link", "../a.txt");
    empty = MkFile(VEXFS_ROOT_INO, "empty", 0);
    tagged = MkFile(VEXFS_ROOT_INO, "tagged", 1);
    AddInlineXattr(tagged, VEXFS_XATTR_INDEX_USER, "color", "blue");
    // A sparse file with two extents and a hole between them.
    sparse = AllocIno();
    vexfs_inode in = NewInode(S_IFREG | 0600, 1);
    const uint64_t b1 = AllocBlocks(2), b2 = AllocBlocks(1);
    SetInlineExtents(&in, {Ext(0, 2, b1), Ext(10, 1, b2)});
    in.i_size = ToLe64(11 * VEXFS_BLOCK_SIZE);
    in.i_blocks = ToLe64(3);
    PutInode(sparse, in);
    AddEntry(VEXFS_ROOT_INO, "sparse", sparse, VEXFS_FT_REG);
  }
  uint64_t FirstBlock(uint64_t ino) {
    vexfs_inode in = Inode(ino);
    vexfs_extent e;
    std::memcpy(&e, in.i_data + 8, sizeof(e));
    return Le64(e.ee_start);
  }
};

// Detects `code` with -n, repairs with -y, and a second pass is clean.
void DetectRepairClean(BlockDevice* dev, const std::string& code) {
  CheckReport r1 = Check(dev, false);
  EXPECT_TRUE(r1.Has(code)) << "missing " << code << ":\n" << Dump(r1);
  EXPECT_EQ(FsckExitCode(r1), 4) << Dump(r1);
  CheckReport r2 = Check(dev, true);
  EXPECT_TRUE(r2.Has(code)) << Dump(r2);
  EXPECT_EQ(r2.errors_left(), 0u) << Dump(r2);
  EXPECT_EQ(FsckExitCode(r2), 1);
  CheckReport r3 = Check(dev, false);
  EXPECT_TRUE(r3.problems.empty()) << "second pass not clean:\n" << Dump(r3);
  EXPECT_EQ(FsckExitCode(r3), 0);
}

TEST(FsckTest, FreshFormatIsClean) {
  Img img;
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.checked);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.directories, 2u);
  EXPECT_EQ(FsckExitCode(r), 0);
}

TEST(FsckTest, PopulatedImageIsClean) {
  Populated img;
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.directories, 3u);
  EXPECT_EQ(r.regular_files, 5u);
  EXPECT_EQ(r.symlinks, 1u);
  // Repair mode on a clean image changes nothing.
  const auto before = img.dev.image();
  CheckReport r2 = Check(&img.dev, true);
  EXPECT_TRUE(r2.problems.empty()) << Dump(r2);
  EXPECT_TRUE(before == img.dev.image());
}

TEST(FsckTest, CleanVolumeSkippedWithoutForce) {
  Populated img;
  auto r = CheckVolume(&img.dev, CheckOptions{false, false});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->checked);
}

TEST(FsckTest, SuperBadMagicUsesBackup) {
  Populated img;
  img.Raw(0)[0] ^= 0xff;
  DetectRepairClean(&img.dev, "super.bad_primary");
}

TEST(FsckTest, SuperBadCrcUsesBackup) {
  Populated img;
  img.Raw(0)[300] ^= 0x01;  // inside the checksummed 1024 bytes
  DetectRepairClean(&img.dev, "super.bad_primary");
}

TEST(FsckTest, SuperBadVersionUsesBackup) {
  Populated img;
  img.sb.s_version_major = ToLe16(7);
  img.StoreSuper(/*backup=*/false);
  DetectRepairClean(&img.dev, "super.bad_primary");
}

TEST(FsckTest, SuperRegionOverlapIsOperationalError) {
  Populated img;
  img.sb.s_bbitmap_start = img.sb.s_ibitmap_start;  // overlapping regions
  img.StoreSuper(/*backup=*/true);
  auto r = CheckVolume(&img.dev, CheckOptions{true, true});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(FsckExitCode(r), 8);
}

TEST(FsckTest, GarbageImageIsOperationalError) {
  MemoryDevice dev(256);
  for (size_t i = 0; i < dev.image().size(); i++)
    dev.image()[i] = static_cast<uint8_t>(i * 131 + 7);
  auto r = CheckVolume(&dev, CheckOptions{false, true});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(FsckExitCode(r), 8);
  MemoryDevice empty(0);
  EXPECT_EQ(FsckExitCode(CheckVolume(&empty, CheckOptions{true, true})), 8);
}

TEST(FsckTest, BackupSuperBad) {
  Populated img;
  img.Raw(img.g.block_count - 1)[0] ^= 0xff;
  DetectRepairClean(&img.dev, "super.bad_backup");
}

TEST(FsckTest, FreeCountsWrongOnCleanVolume) {
  Populated img;
  img.sb.s_free_blocks = ToLe64(5);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "super.free_counts");
}

TEST(FsckTest, ErrorsFlagCleared) {
  Populated img;
  img.sb.s_state = ToLe32(VEXFS_STATE_ERRORS);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "super.errors_flag");
}

TEST(FsckTest, BlockBitmapBadCrc) {
  Populated img;
  img.Raw(img.g.bbitmap_start)[100] ^= 0x10;
  DetectRepairClean(&img.dev, "bbitmap.bad_block");
}

TEST(FsckTest, InodeBitmapBadCrc) {
  Populated img;
  img.Raw(img.g.ibitmap_start)[2000] ^= 0x10;
  DetectRepairClean(&img.dev, "ibitmap.bad_block");
}

TEST(FsckTest, BitmapWrongIndex) {
  Populated img;
  auto* bm = reinterpret_cast<vexfs_bitmap_block*>(img.Raw(img.g.bbitmap_start));
  bm->bm_index = ToLe32(3);
  img.Reseal(img.g.bbitmap_start);
  DetectRepairClean(&img.dev, "bbitmap.bad_block");
}

TEST(FsckTest, BlockLeak) {
  Populated img;
  img.SetBit(img.g.bbitmap_start, img.g.block_count - 10, true);
  DetectRepairClean(&img.dev, "block.leak");
}

TEST(FsckTest, BlockUsedButFree) {
  Populated img;
  img.SetBit(img.g.bbitmap_start, img.FirstBlock(img.a) + 1, false);
  DetectRepairClean(&img.dev, "block.used_but_free");
}

TEST(FsckTest, BitmapTailBitsClear) {
  Populated img;
  img.SetBit(img.g.bbitmap_start, img.g.block_count + 5, false);
  DetectRepairClean(&img.dev, "block.used_but_free");
}

TEST(FsckTest, InodeBitmapLeak) {
  Populated img;
  img.SetBit(img.g.ibitmap_start, 100, true);
  DetectRepairClean(&img.dev, "ibitmap.leak");
}

TEST(FsckTest, InodeUsedButFree) {
  Populated img;
  img.SetBit(img.g.ibitmap_start, img.b - 1, false);
  DetectRepairClean(&img.dev, "ibitmap.used_but_free");
}

TEST(FsckTest, DoubleReferencedBlock) {
  Populated img;
  vexfs_inode in = img.Inode(img.b);
  Img::SetInlineExtents(&in, {Img::Ext(0, 1, img.FirstBlock(img.a) + 2)});
  img.PutInode(img.b, in);
  DetectRepairClean(&img.dev, "block.multiply_claimed");
}

TEST(FsckTest, WrongLinkCount) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  in.i_links = ToLe32(3);
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "inode.bad_links");
}

TEST(FsckTest, WrongDirectoryLinkCount) {
  Populated img;
  vexfs_inode in = img.Inode(VEXFS_ROOT_INO);
  in.i_links = ToLe32(2);
  img.PutInode(VEXFS_ROOT_INO, in);
  DetectRepairClean(&img.dev, "inode.bad_links");
}

TEST(FsckTest, WrongBlockCount) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  in.i_blocks = ToLe64(1);
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "inode.bad_blocks");
}

TEST(FsckTest, DirectoryWrongParent) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  in.i_parent = ToLe64(img.dir1);
  img.PutInode(img.dir1, in);
  DetectRepairClean(&img.dev, "dir.bad_parent");
}

TEST(FsckTest, DirectoryWrongSize) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  in.i_size = ToLe64(12345);
  img.PutInode(img.dir1, in);
  DetectRepairClean(&img.dev, "dir.bad_size");
}

TEST(FsckTest, DirectoryWrongEntryCount) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  reinterpret_cast<vexfs_dir_root*>(in.i_data)->dr_entries = ToLe64(9);
  img.PutInode(img.dir1, in);
  DetectRepairClean(&img.dev, "dir.bad_entries");
}

TEST(FsckTest, DirectoryWrongNodeCount) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  reinterpret_cast<vexfs_dir_root*>(in.i_data)->dr_tree.tr_nodes = ToLe64(4);
  img.PutInode(img.dir1, in);
  DetectRepairClean(&img.dev, "dir.bad_nodes");
}

TEST(FsckTest, BadDirectoryHash) {
  Populated img;
  auto recs = img.Records(img.dir1);
  recs[0].hash ^= 0x1234;
  img.WriteRecords(img.dir1, recs);
  DetectRepairClean(&img.dev, "dir.bad_hash");
  // The entry survived the repair with its correct hash.
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(offline::ResolvePath(**r, "/dir1/b.bin").ok());
  EXPECT_TRUE(offline::ResolvePath(**r, "/dir1/link").ok());
}

TEST(FsckTest, DirectoryRecordsOutOfOrder) {
  Populated img;
  auto recs = img.Records(VEXFS_ROOT_INO);
  std::swap(recs[0], recs[1]);
  img.WriteRecords(VEXFS_ROOT_INO, recs);
  DetectRepairClean(&img.dev, "dir.order");
}

TEST(FsckTest, DirectoryRecordOverflow) {
  Populated img;
  const uint64_t leaf = img.DirLeaf(img.dir1);
  auto* n = reinterpret_cast<vexfs_tree_node*>(img.Raw(leaf));
  n->tn_space[VEXFS_DIR_REC_SIZE(img.Records(img.dir1)[0].name.size()) + 16] = 250;  // 2nd name_len
  img.Reseal(leaf);
  DetectRepairClean(&img.dev, "dir.record_overflow");
}

TEST(FsckTest, DirectoryUsedTooLarge) {
  Populated img;
  const uint64_t leaf = img.DirLeaf(img.dir1);
  auto* n = reinterpret_cast<vexfs_tree_node*>(img.Raw(leaf));
  n->tn_used = ToLe16(60000);
  img.Reseal(leaf);
  DetectRepairClean(&img.dev, "dir.record_overflow");
}

TEST(FsckTest, DirectoryBadName) {
  Populated img;
  auto recs = img.Records(img.dir1);
  recs[0].name = "..";
  recs[0].hash = DirHash(img.sb.s_hash_seed, "..");
  img.WriteRecords(img.dir1, recs);
  DetectRepairClean(&img.dev, "dir.bad_name");
}

TEST(FsckTest, DirectoryDuplicateName) {
  Populated img;
  img.AddEntry(VEXFS_ROOT_INO, "a.txt", img.b, VEXFS_FT_REG);
  DetectRepairClean(&img.dev, "dir.duplicate");
}

TEST(FsckTest, DirectoryEntryWrongType) {
  Populated img;
  auto recs = img.Records(img.dir1);
  for (auto& r : recs) r.type = VEXFS_FT_SOCK;
  img.WriteRecords(img.dir1, recs);
  DetectRepairClean(&img.dev, "dir.bad_type");
}

TEST(FsckTest, DirectoryEntryToFreeInode) {
  Populated img;
  img.AddEntry(img.dir1, "ghost", 200, VEXFS_FT_REG);
  DetectRepairClean(&img.dev, "dir.entry_to_free_inode");
}

TEST(FsckTest, DirectoryEntryOutOfRange) {
  Populated img;
  img.AddEntry(img.dir1, "far", img.g.inode_count + 50, VEXFS_FT_REG);
  DetectRepairClean(&img.dev, "dir.bad_entry");
}

TEST(FsckTest, DirectoryHardLink) {
  Populated img;
  img.AddEntry(VEXFS_ROOT_INO, "again", img.dir1, VEXFS_FT_DIR);
  DetectRepairClean(&img.dev, "dir.hardlink");
}

TEST(FsckTest, DirectoryLeafBadCrc) {
  Populated img;
  img.Raw(img.DirLeaf(img.dir1))[200] ^= 1;
  DetectRepairClean(&img.dev, "tree.bad_node");
}

TEST(FsckTest, DirectoryLeafWrongOwner) {
  Populated img;
  const uint64_t leaf = img.DirLeaf(img.dir1);
  reinterpret_cast<vexfs_block_header*>(img.Raw(leaf))->bh_owner = ToLe64(img.a);
  img.Reseal(leaf);
  DetectRepairClean(&img.dev, "tree.bad_owner");
}

TEST(FsckTest, UnreachableInodeReconnected) {
  Populated img;
  auto recs = img.Records(img.dir1);
  std::erase_if(recs, [&](const Img::Rec& r) { return r.ino == img.b; });
  img.WriteRecords(img.dir1, recs);
  DetectRepairClean(&img.dev, "inode.unreachable");
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  auto found = offline::ResolvePath(**r, "/lost+found/#" + std::to_string(img.b));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, img.b);
}

TEST(FsckTest, UnreachableDirectoryReconnected) {
  Populated img;
  auto recs = img.Records(VEXFS_ROOT_INO);
  std::erase_if(recs, [&](const Img::Rec& r) { return r.ino == img.dir1; });
  img.WriteRecords(VEXFS_ROOT_INO, recs);
  DetectRepairClean(&img.dev, "inode.unreachable");
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(
      offline::ResolvePath(**r, "/lost+found/#" + std::to_string(img.dir1) + "/b.bin").ok());
}

TEST(FsckTest, DirectoryCycleReconnected) {
  Populated img;
  // dir1 -> sub -> (entry back to dir1), and dir1 dropped from the root.
  const uint64_t sub = img.MkDir(img.dir1, "sub");
  auto recs = img.Records(VEXFS_ROOT_INO);
  std::erase_if(recs, [&](const Img::Rec& r) { return r.ino == img.dir1; });
  img.WriteRecords(VEXFS_ROOT_INO, recs);
  img.AddEntry(sub, "loop", img.dir1, VEXFS_FT_DIR);
  DetectRepairClean(&img.dev, "inode.unreachable");
}

TEST(FsckTest, UnlinkedInodeNotOnOrphanListFreed) {
  Populated img;
  const uint64_t ino = img.AllocIno();
  img.PutInode(ino, Img::NewInode(S_IFREG | 0644, 0));
  vexfs_inode in = img.Inode(ino);
  Img::SetInlineExtents(&in, {});
  img.PutInode(ino, in);
  DetectRepairClean(&img.dev, "inode.unlinked");
}

TEST(FsckTest, InodeBadCrc) {
  Populated img;
  vexfs_inode in = img.Inode(img.b);
  in.i_uid = ToLe32(77);
  img.PutInode(img.b, in, /*seal=*/false);
  DetectRepairClean(&img.dev, "inode.bad_crc");
}

TEST(FsckTest, InodeBadMode) {
  Populated img;
  vexfs_inode in = img.Inode(img.b);
  in.i_mode = ToLe16(0170000);
  img.PutInode(img.b, in);
  DetectRepairClean(&img.dev, "inode.bad_mode");
}

TEST(FsckTest, InodeBadFlags) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  in.i_flags = ToLe32(VEXFS_INODE_FL_INLINE_SYMLINK);
  img.PutInode(img.dir1, in);
  DetectRepairClean(&img.dev, "inode.bad_flags");
}

TEST(FsckTest, SymlinkBadSize) {
  Populated img;
  vexfs_inode in = img.Inode(img.link);
  in.i_size = ToLe64(100);
  img.PutInode(img.link, in);
  DetectRepairClean(&img.dev, "symlink.bad_size");
}

TEST(FsckTest, RootMissingRecreated) {
  Populated img;
  img.PutInode(VEXFS_ROOT_INO, vexfs_inode{}, /*seal=*/false);
  DetectRepairClean(&img.dev, "root.missing");
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(offline::ResolvePath(**r, "/lost+found").ok());
}

TEST(FsckTest, ExtentOutOfRange) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  Img::SetInlineExtents(&in, {Img::Ext(0, 3, img.g.block_count + 5)});
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "extent.out_of_range");
}

TEST(FsckTest, ExtentIntoMetadata) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  Img::SetInlineExtents(&in, {Img::Ext(0, 3, img.g.itable_start)});
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "extent.out_of_range");
}

TEST(FsckTest, ExtentBadLength) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  Img::SetInlineExtents(&in, {Img::Ext(0, 0, img.FirstBlock(img.a))});
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "extent.bad_len");
}

TEST(FsckTest, OverlappingExtents) {
  Populated img;
  vexfs_inode in = img.Inode(img.sparse);
  vexfs_extent e[2];
  std::memcpy(e, in.i_data + 8, sizeof(e));
  e[1].ee_logical = ToLe32(1);  // overlaps [0, 2)
  Img::SetInlineExtents(&in, {e[0], e[1]});
  img.PutInode(img.sparse, in);
  DetectRepairClean(&img.dev, "extent.overlap");
}

TEST(FsckTest, ExtentHeaderBad) {
  Populated img;
  vexfs_inode in = img.Inode(img.a);
  in.i_data[0] = 0;
  img.PutInode(img.a, in);
  DetectRepairClean(&img.dev, "extent.bad_header");
}

// An extent tree whose root index lists the same leaf twice.
TEST(FsckTest, ExtentTreeCycle) {
  Populated img;
  const uint64_t leaf = img.AllocBlocks(1), root = img.AllocBlocks(1), data = img.AllocBlocks(8);
  const uint64_t ino = img.MkFile(VEXFS_ROOT_INO, "tree", 0);
  InitBlockHeader(img.Raw(leaf), VEXFS_EXTENT_MAGIC, leaf, ino);
  auto* ln = reinterpret_cast<vexfs_tree_node*>(img.Raw(leaf));
  for (uint32_t i = 0; i < 4; i++) {
    vexfs_extent e = Img::Ext(i * 4, 2, data + 2 * i);
    std::memcpy(ln->tn_space + 16 * i, &e, 16);
  }
  ln->tn_count = ToLe16(4);
  ln->tn_used = ToLe16(64);
  img.Reseal(leaf);
  InitBlockHeader(img.Raw(root), VEXFS_EXTENT_MAGIC, root, ino);
  auto* rn = reinterpret_cast<vexfs_tree_node*>(img.Raw(root));
  rn->tn_level = ToLe16(1);
  rn->tn_count = ToLe16(2);
  rn->tn_used = ToLe16(32);
  vexfs_tree_index ix[2] = {{ToLe64(0), ToLe64(leaf)}, {ToLe64(100), ToLe64(leaf)}};
  std::memcpy(rn->tn_space, ix, sizeof(ix));
  img.Reseal(root);
  vexfs_inode in = img.Inode(ino);
  std::memset(in.i_data, 0, sizeof(in.i_data));
  vexfs_extent_header eh{ToLe16(VEXFS_EXTENT_HDR_MAGIC), 0, ToLe16(VEXFS_EXTENT_INLINE), ToLe16(1)};
  std::memcpy(in.i_data, &eh, 8);
  vexfs_tree_root tr{};
  tr.tr_root = ToLe64(root);
  tr.tr_depth = ToLe16(1);
  tr.tr_nodes = ToLe64(2);
  std::memcpy(in.i_data + 8, &tr, sizeof(tr));
  in.i_size = ToLe64(16 * VEXFS_BLOCK_SIZE);
  in.i_blocks = ToLe64(8 + 2);
  img.PutInode(ino, in);
  DetectRepairClean(&img.dev, "tree.cycle");
  // The rebuilt file keeps its four extents.
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  vexfs_inode after;
  ASSERT_TRUE((*r)->ReadInode(ino, &after).ok());
  offline::ExtentMap m;
  offline::ReadExtents(**r, ino, after, &m);
  EXPECT_TRUE(m.issues.empty());
  EXPECT_EQ(m.extents.size(), 4u);
}

TEST(FsckTest, XattrBadIndex) {
  Populated img;
  vexfs_inode in = img.Inode(img.tagged);
  in.i_xattr[0] = 9;
  img.PutInode(img.tagged, in);
  DetectRepairClean(&img.dev, "xattr.bad_index");
}

TEST(FsckTest, XattrOverflow) {
  Populated img;
  vexfs_inode in = img.Inode(img.tagged);
  in.i_xattr[4] = 200;  // value length runs past the inline area
  img.PutInode(img.tagged, in);
  DetectRepairClean(&img.dev, "xattr.overflow");
}

TEST(FsckTest, XattrBlockOutOfRange) {
  Populated img;
  vexfs_inode in = img.Inode(img.tagged);
  in.i_xattr_block = ToLe64(img.g.block_count + 1);
  img.PutInode(img.tagged, in);
  DetectRepairClean(&img.dev, "xattr.block_out_of_range");
}

TEST(FsckTest, EaInodeUnreferenced) {
  Populated img;
  const uint64_t ino = img.AllocIno();
  vexfs_inode in = Img::NewInode(S_IFREG | 0600, 1);
  in.i_flags = ToLe32(VEXFS_INODE_FL_EA);
  Img::SetInlineExtents(&in, {});
  img.PutInode(ino, in);
  DetectRepairClean(&img.dev, "ea.unreferenced");
}

TEST(FsckTest, XattrReferencesNonEaInode) {
  Populated img;
  vexfs_inode in = img.Inode(img.tagged);
  std::memset(in.i_xattr, 0, sizeof(in.i_xattr));
  in.i_xattr[0] = VEXFS_XATTR_INDEX_USER;
  in.i_xattr[1] = 3;
  in.i_xattr[2] = VEXFS_XATTR_FL_EA_INODE;
  const uint32_t vl = htole32(5000);
  std::memcpy(in.i_xattr + 4, &vl, 4);
  const uint64_t target = htole64(img.a);
  std::memcpy(in.i_xattr + 8, &target, 8);
  std::memcpy(in.i_xattr + 16, "big", 3);
  img.PutInode(img.tagged, in);
  DetectRepairClean(&img.dev, "xattr.bad_ea_ref");
}

void MakeOrphan(Populated& img, uint64_t ino, uint64_t next) {
  vexfs_inode in = img.Inode(ino);
  in.i_links = 0;
  in.i_flags = ToLe32(Le32(in.i_flags) | VEXFS_INODE_FL_ORPHAN);
  in.i_orphan_next = ToLe64(next);
  img.PutInode(ino, in);
  auto recs = img.Records(img.dir1);
  std::erase_if(recs, [&](const Img::Rec& r) { return r.ino == ino; });
  img.WriteRecords(img.dir1, recs);
}

TEST(FsckTest, OrphanListIsLegitimate) {
  Populated img;
  MakeOrphan(img, img.b, 0);
  img.sb.s_orphan_head = ToLe64(img.b);
  img.sb.s_state = 0;  // crashed while the file was open
  img.StoreSuper();
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.orphans, 1u);
  CheckReport r2 = Check(&img.dev, true);
  EXPECT_TRUE(r2.Has("orphan.released")) << Dump(r2);
  EXPECT_EQ(r2.errors_left(), 0u) << Dump(r2);
  CheckReport r3 = Check(&img.dev, false);
  EXPECT_TRUE(r3.problems.empty()) << Dump(r3);
  EXPECT_EQ(r3.orphans, 0u);
}

// A linked regular file on the orphan list is a truncation a crash cut
// (format.md section 11): -n accepts it as it stands; -y unmaps every block
// past its end (cutting an extent that straddles it) and takes it off the
// list, as well as releasing the unlinked orphan behind it.
TEST(FsckTest, PendingTruncationIsFinished) {
  Populated img;
  MakeOrphan(img, img.b, 0);
  vexfs_inode in = img.Inode(img.sparse);  // blocks 0-1 and 10 mapped
  in.i_size = ToLe64(100);
  in.i_flags = ToLe32(Le32(in.i_flags) | VEXFS_INODE_FL_ORPHAN);
  in.i_orphan_next = ToLe64(img.b);
  img.PutInode(img.sparse, in);
  img.sb.s_orphan_head = ToLe64(img.sparse);
  img.sb.s_state = 0;  // crashed
  img.StoreSuper();
  const uint64_t first = img.FirstBlock(img.sparse);
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.orphans, 2u);
  CheckReport y = Check(&img.dev, true);
  EXPECT_TRUE(y.Has("orphan.truncated")) << Dump(y);
  EXPECT_TRUE(y.Has("orphan.released")) << Dump(y);
  EXPECT_EQ(y.errors_left(), 0u) << Dump(y);
  CheckReport again = Check(&img.dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
  EXPECT_EQ(again.orphans, 0u);
  in = img.Inode(img.sparse);
  EXPECT_EQ(Le32(in.i_flags) & VEXFS_INODE_FL_ORPHAN, 0u);
  EXPECT_EQ(Le64(in.i_orphan_next), 0u);
  EXPECT_EQ(Le64(in.i_size), 100u);
  EXPECT_EQ(Le64(in.i_blocks), 1u);
  const auto* eh = reinterpret_cast<const vexfs_extent_header*>(in.i_data);
  ASSERT_EQ(Le16(eh->eh_entries), 1u);
  vexfs_extent e;
  std::memcpy(&e, in.i_data + 8, sizeof(e));
  EXPECT_EQ(Le32(e.ee_logical), 0u);
  EXPECT_EQ(Le32(e.ee_len), 1u);
  EXPECT_EQ(Le64(e.ee_start), first);
  EXPECT_FALSE(img.Bit(img.g.bbitmap_start, first + 1)) << "the cut block is still allocated";
  img.LoadSuper();
  EXPECT_EQ(Le64(img.sb.s_orphan_head), 0u);
}

// Only a regular file can be truncated: another linked inode on the list
// is still an error (a directory, here, keeps its entries).
TEST(FsckTest, OrphanListNamesALinkedDirectory) {
  Populated img;
  vexfs_inode in = img.Inode(img.dir1);
  in.i_flags = ToLe32(Le32(in.i_flags) | VEXFS_INODE_FL_ORPHAN);
  img.PutInode(img.dir1, in);
  img.sb.s_orphan_head = ToLe64(img.dir1);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "orphan.bad_inode");
  EXPECT_EQ(img.Records(img.dir1).size(), 2u);
}

TEST(FsckTest, OrphanListCycle) {
  Populated img;
  MakeOrphan(img, img.b, img.link);
  MakeOrphan(img, img.link, img.b);
  img.sb.s_orphan_head = ToLe64(img.b);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "orphan.cycle");
}

TEST(FsckTest, OrphanListBadEntry) {
  Populated img;
  img.sb.s_orphan_head = ToLe64(img.a);  // linked, not an orphan
  img.StoreSuper();
  DetectRepairClean(&img.dev, "orphan.bad_inode");
}

// Writes a journal transaction that sets inode `ino`'s uid, through the
// real Journal, leaving the home block stale.
void JournalInodeChange(Img& img, uint64_t ino, uint32_t uid) {
  Journal j(&img.dev, img.g.journal_start, img.g.journal_blocks, img.sb.s_uuid, img.g.block_count);
  auto scan = j.Scan();
  ASSERT_TRUE(scan.ok());
  ASSERT_TRUE(j.Recover(nullptr).ok());  // positions the writer
  std::vector<uint8_t> blk(img.Raw(InodeBlock(img.g, ino)), img.Raw(InodeBlock(img.g, ino)) + 4096);
  vexfs_inode in;
  std::memcpy(&in, blk.data() + InodeOffset(ino), sizeof(in));
  in.i_uid = ToLe32(uid);
  SealInode(&in);
  std::memcpy(blk.data() + InodeOffset(ino), &in, sizeof(in));
  ASSERT_TRUE(j.Commit({{InodeBlock(img.g, ino), blk.data()}}).ok());
}

TEST(FsckTest, JournalValidTransactionReplayed) {
  Populated img;
  JournalInodeChange(img, img.a, 4242);
  CheckReport r = Check(&img.dev, false);
  EXPECT_EQ(r.journal_pending, 1u);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(Le32(img.Inode(img.a).i_uid), 0u);  // -n wrote nothing
  CheckReport r2 = Check(&img.dev, true);
  EXPECT_EQ(r2.journal_replayed, 1u);
  EXPECT_EQ(FsckExitCode(r2), 1);
  EXPECT_EQ(Le32(img.Inode(img.a).i_uid), 4242u);
  CheckReport r3 = Check(&img.dev, false);
  EXPECT_EQ(r3.journal_pending, 0u);
  EXPECT_TRUE(r3.problems.empty()) << Dump(r3);
}

TEST(FsckTest, JournalOverlayHidesStaleHomeBlock) {
  Populated img;
  // Home block has a wrong link count; the journal holds the fix.
  vexfs_inode in = img.Inode(img.a);
  JournalInodeChange(img, img.a, 7);
  in.i_links = ToLe32(9);
  img.PutInode(img.a, in);
  CheckReport r = Check(&img.dev, false);
  EXPECT_FALSE(r.Has("inode.bad_links")) << Dump(r);
}

TEST(FsckTest, JournalCorruptCommitIgnored) {
  Populated img;
  JournalInodeChange(img, img.a, 4242);
  // Relative block 3 is the commit (superblock, descriptor, image, commit).
  img.Raw(img.g.journal_start + 3)[100] ^= 0xff;
  CheckReport r = Check(&img.dev, true);
  EXPECT_EQ(r.journal_replayed, 0u);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(Le32(img.Inode(img.a).i_uid), 0u);
}

TEST(FsckTest, JournalSuperblockCorrupt) {
  Populated img;
  img.Raw(img.g.journal_start)[64] ^= 0xff;
  DetectRepairClean(&img.dev, "journal.bad_super");
}

}  // namespace
}  // namespace vexfs::testing

// Cross-check with the filesystem core: everything it writes must check out.
#include "fs_image_util.h"
#include "fs_test_util.h"

namespace vexfs::testing {
namespace {

TEST(FsckFsTest, FilesystemImageIsClean) {
  MemoryDevice dev(8192);
  ASSERT_TRUE(BuildFsImage(&dev));
  CheckReport r = Check(&dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_GE(r.regular_files, 400u);
  EXPECT_EQ(FsckExitCode(r), 0);
  auto reader = offline::VolumeReader::Open(&dev);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(offline::ResolvePath(**reader, "/d1/d2/moved.bin").ok());
  EXPECT_TRUE(offline::ResolvePath(**reader, "/big/file-with-a-longish-name-399").ok());
}

TEST(FsckFsTest, FilesystemImageRepairIsNoop) {
  MemoryDevice dev(8192);
  ASSERT_TRUE(BuildFsImage(&dev));
  const auto before = dev.image();
  CheckReport r = Check(&dev, true);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_TRUE(before == dev.image());
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

TEST(FsckTest, ExtentLeafBadUsed) {
  MemoryDevice dev(8192);
  ASSERT_TRUE(BuildFsImage(&dev));
  auto r = offline::VolumeReader::Open(&dev);
  ASSERT_TRUE(r.ok());
  auto ino = offline::ResolvePath(**r, "/fragmented");
  ASSERT_TRUE(ino.ok());
  vexfs_inode in;
  ASSERT_TRUE((*r)->ReadInode(*ino, &in).ok());
  offline::ExtentMap m;
  offline::ReadExtents(**r, *ino, in, &m);
  ASSERT_TRUE(m.tree);
  ASSERT_GE(m.nodes.size(), 2u);
  // The last node visited is a leaf; break its byte count.
  uint8_t* leaf = dev.image().data() + m.nodes.back() * VEXFS_BLOCK_SIZE;
  auto* n = reinterpret_cast<vexfs_tree_node*>(leaf);
  ASSERT_EQ(Le16(n->tn_level), 0);
  n->tn_used = ToLe16(Le16(n->tn_used) + 16);
  SealBlock(leaf);
  DetectRepairClean(&dev, "tree.bad_count");
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

// A "crash" snapshot taken after Sync while a file is unlinked but still
// open: the journal may hold transactions and the orphan list is live.
// fsck -n must see a consistent post-replay state, -y must release the
// orphan and leave a clean volume.
TEST(FsckFsTest, CrashSnapshotWithOrphanIsConsistent) {
  MemoryDevice dev(8192);
  ASSERT_TRUE(BuildFsImage(&dev));
  MountOptions mo;
  mo.commit_interval_ms = 0;
  mo.check_permissions = false;
  auto m = Filesystem::Mount(std::make_unique<BorrowedDevice>(&dev), mo);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Filesystem& fs = **m;
  const Cred c = Cred::Root();
  auto f = fs.Mknod(Filesystem::kRootIno, "open-unlinked", S_IFREG | 0644, 0, c);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> data(5 * 4096, 'o');
  ASSERT_TRUE(fs.Write(f->ino, 0, data).ok());
  fs.Ref(f->ino);
  ASSERT_TRUE(fs.Unlink(Filesystem::kRootIno, "open-unlinked", c).ok());
  auto g = fs.Mknod(Filesystem::kRootIno, "fresh", S_IFREG | 0644, 0, c);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(fs.Write(g->ino, 0, data).ok());
  ASSERT_TRUE(fs.Sync().ok());
  MemoryDevice snap(dev.image());
  fs.Forget(f->ino, 1);
  ASSERT_TRUE(fs.Unmount().ok());

  CheckReport r = Check(&snap, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.orphans, 1u);
  CheckReport y = Check(&snap, true);
  EXPECT_EQ(y.errors_left(), 0u) << Dump(y);
  CheckReport again = Check(&snap, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
  EXPECT_EQ(again.orphans, 0u);
  // The unmounted original is clean too.
  CheckReport orig = Check(&dev, false);
  EXPECT_TRUE(orig.problems.empty()) << Dump(orig);
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

TEST(FsckTest, LostFoundMissingIsRecreated) {
  Populated img;
  // Drop /lost+found (inode 8) entirely, then orphan b.bin from dir1.
  auto recs = img.Records(VEXFS_ROOT_INO);
  std::erase_if(recs, [](const Img::Rec& r) { return r.name == "lost+found"; });
  img.WriteRecords(VEXFS_ROOT_INO, recs);
  const uint64_t lf_leaf = img.DirLeaf(VEXFS_FIRST_INO);
  img.PutInode(VEXFS_FIRST_INO, vexfs_inode{}, /*seal=*/false);
  img.SetBit(img.g.ibitmap_start, VEXFS_FIRST_INO - 1, false);
  img.SetBit(img.g.bbitmap_start, lf_leaf, false);
  vexfs_inode root = img.Inode(VEXFS_ROOT_INO);
  root.i_links = ToLe32(Le32(root.i_links) - 1);
  img.PutInode(VEXFS_ROOT_INO, root);
  img.sb.s_free_blocks = ToLe64(Le64(img.sb.s_free_blocks) + 1);
  img.sb.s_free_inodes = ToLe64(Le64(img.sb.s_free_inodes) + 1);
  img.StoreSuper();
  ASSERT_TRUE(Check(&img.dev, false).problems.empty()) << Dump(Check(&img.dev, false));
  auto d1 = img.Records(img.dir1);
  std::erase_if(d1, [&](const Img::Rec& r) { return r.ino == img.b; });
  img.WriteRecords(img.dir1, d1);
  DetectRepairClean(&img.dev, "inode.unreachable");
  auto r = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(offline::ResolvePath(**r, "/lost+found/#" + std::to_string(img.b)).ok());
}

TEST(FsckTest, LostFoundNotADirectoryGetsAnAlternative) {
  Populated img;
  auto recs = img.Records(VEXFS_ROOT_INO);
  for (auto& rec : recs) {
    if (rec.name == "a.txt") {
      rec.name = "lost+found";
      rec.hash = DirHash(img.sb.s_hash_seed, rec.name);
    }
  }
  std::erase_if(recs, [&](const Img::Rec& r) { return r.ino == VEXFS_FIRST_INO; });
  std::sort(recs.begin(), recs.end(), [](const Img::Rec& a, const Img::Rec& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.name < b.name;
  });
  img.WriteRecords(VEXFS_ROOT_INO, recs);
  // The old lost+found (inode 8) is now unreachable; "lost+found" names a
  // file, so it goes into a new /lost+found.1 (it used to stay stranded).
  auto r = Check(&img.dev, true);
  EXPECT_TRUE(r.Has("lost+found.created")) << Dump(r);
  EXPECT_TRUE(r.Has("inode.unreachable")) << Dump(r);
  EXPECT_EQ(FsckExitCode(r), 1) << Dump(r);
  auto again = Check(&img.dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
  auto rd = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(rd.ok());
  auto moved = offline::ResolvePath(**rd, "/lost+found.1/#" + std::to_string(VEXFS_FIRST_INO));
  EXPECT_TRUE(moved.ok()) << moved.status().ToString();
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

// Corruptions of structures only the Filesystem writes (EA inodes, xattr
// blocks) on a real image.
struct FsImg : Img {
  FsImg() : Img(Build()) {}
  static std::vector<uint8_t> Build() {
    MemoryDevice dev(8192);
    EXPECT_TRUE(BuildFsImage(&dev));
    return dev.image();
  }
  uint64_t Path(const std::string& p) {
    auto r = offline::VolumeReader::Open(&dev);
    EXPECT_TRUE(r.ok());
    auto ino = offline::ResolvePath(**r, p);
    EXPECT_TRUE(ino.ok()) << p;
    return ino.ok() ? *ino : 0;
  }
  offline::XattrList Xattrs(uint64_t ino) {
    auto r = offline::VolumeReader::Open(&dev);
    vexfs_inode in;
    EXPECT_TRUE((*r)->ReadInode(ino, &in).ok());
    offline::XattrList x;
    offline::ReadXattrs(**r, ino, in, &x);
    return x;
  }
  uint64_t EaInode() {
    for (const auto& e : Xattrs(Path("/d1/d2/moved.bin")).entries) {
      if (e.flags & VEXFS_XATTR_FL_EA_INODE) return e.ea_ino;
    }
    ADD_FAILURE() << "no EA inode";
    return 0;
  }
};

TEST(FsckFsTest, EaInodeWrongSize) {
  FsImg img;
  const uint64_t ea = img.EaInode();
  vexfs_inode in = img.Inode(ea);
  in.i_size = ToLe64(3);
  img.PutInode(ea, in);
  DetectRepairClean(&img.dev, "ea.bad_size");
}

TEST(FsckFsTest, EaInodeInDirectory) {
  FsImg img;
  img.AddEntry(VEXFS_ROOT_INO, "peek", img.EaInode(), VEXFS_FT_REG);
  DetectRepairClean(&img.dev, "dir.entry_to_ea_inode");
}

TEST(FsckFsTest, XattrBlockBadCrcDropsItsEntries) {
  FsImg img;
  const uint64_t f = img.Path("/d1/d2/moved.bin");
  const uint64_t blk = Le64(img.Inode(f).i_xattr_block);
  ASSERT_NE(blk, 0u);
  img.Raw(blk)[40] ^= 0x55;
  DetectRepairClean(&img.dev, "xattr.bad_block");
  // Inline entries survive.
  bool small = false;
  for (const auto& e : img.Xattrs(f).entries) small = small || e.name == "small";
  EXPECT_TRUE(small);
}

TEST(FsckFsTest, XattrBlockWrongOwner) {
  FsImg img;
  const uint64_t f = img.Path("/d1/d2/moved.bin");
  const uint64_t blk = Le64(img.Inode(f).i_xattr_block);
  ASSERT_NE(blk, 0u);
  reinterpret_cast<vexfs_block_header*>(img.Raw(blk))->bh_owner = ToLe64(f + 1);
  img.Reseal(blk);
  DetectRepairClean(&img.dev, "xattr.bad_owner");
}

// The journal carries block 0: fsck -n must check the superblock it
// would have after replay.
TEST(FsckTest, JournalCarryingSuperblockIsOverlaid) {
  Populated img;
  Journal j(&img.dev, img.g.journal_start, img.g.journal_blocks, img.sb.s_uuid, img.g.block_count);
  ASSERT_TRUE(j.Recover(nullptr).ok());
  std::vector<uint8_t> b0(img.Raw(0), img.Raw(0) + VEXFS_BLOCK_SIZE);
  vexfs_super_block sb;
  std::memcpy(&sb, b0.data(), sizeof(sb));
  std::memcpy(sb.s_label, "replayed", 9);
  SealSuper(&sb);
  std::memcpy(b0.data(), &sb, sizeof(sb));
  ASSERT_TRUE(j.Commit({{0, b0.data()}}).ok());
  CheckReport r = Check(&img.dev, false);
  EXPECT_EQ(r.journal_pending, 1u);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  CheckReport y = Check(&img.dev, true);
  EXPECT_EQ(y.journal_replayed, 1u);
  img.LoadSuper();
  EXPECT_STREQ(img.sb.s_label, "replayed");
  EXPECT_TRUE(Check(&img.dev, false).problems.empty());
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

// A directory in a reserved inode (the vector layer's catalogue, inode 2)
// is a root of its own: its children are reachable, nothing is moved.
TEST(FsckTest, ReservedDirectoryIsARoot) {
  Populated img;
  const uint64_t leaf = img.AllocBlocks(1);
  InitBlockHeader(img.Raw(leaf), VEXFS_DIR_MAGIC, leaf, VEXFS_VECTOR_INO);
  img.Reseal(leaf);
  vexfs_inode in = Img::NewInode(S_IFDIR | 0700, 2);
  in.i_size = ToLe64(VEXFS_BLOCK_SIZE);
  in.i_blocks = ToLe64(1);
  in.i_parent = ToLe64(VEXFS_VECTOR_INO);
  auto* dr = reinterpret_cast<vexfs_dir_root*>(in.i_data);
  dr->dr_tree.tr_root = ToLe64(leaf);
  dr->dr_tree.tr_nodes = ToLe64(1);
  img.PutInode(VEXFS_VECTOR_INO, in);
  img.MkFile(VEXFS_VECTOR_INO, "segment-0", 2);
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
}

}  // namespace
}  // namespace vexfs::testing

// ---- Vector layer -----------------------------------------------------------

namespace vexfs::testing {
namespace {

// A volume with two collections laid out byte by byte as the vector layer
// writes them: /coll (dim 100, an index blob, vectors in /coll/a0 slot 0,
// /coll/a1 slot 9, which straddles a block boundary, and /coll/sub/deep
// slot 5; slot 3 is stale) and /coll2 (dim 4, /coll2/b0 slot 1). The
// catalogue is s_vector_root -> seg -> seg2.
struct VecImg : Populated {
  static constexpr uint32_t kDim = 100, kDim2 = 4;
  uint64_t coll, sub, seg, idx, coll2, seg2, a0, a1, deep, plain, b0;
  std::map<uint64_t, uint64_t> xblock, data;  // segment -> xattr block, first data block

  VecImg() {
    sb.s_feature_incompat = ToLe32(Le32(sb.s_feature_incompat) | VEXFS_FEATURE_INCOMPAT_VECTORS);
    StoreSuper();
    coll = MkDir(VEXFS_ROOT_INO, "coll");
    sub = MkDir(coll, "sub");
    seg = MkSegment(coll, kDim, 12);
    coll2 = MkDir(VEXFS_ROOT_INO, "coll2");
    seg2 = MkSegment(coll2, kDim2, 2);
    a0 = MkVecFile(coll, "a0", seg, 0);
    a1 = MkVecFile(coll, "a1", seg, 9);
    deep = MkVecFile(sub, "deep", seg, 5);
    plain = MkFile(coll, "plain", 1);
    PutSlot(seg, 3, a0, 1, 3.0f);  // stale: a0 lives in slot 0
    b0 = MkVecFile(coll2, "b0", seg2, 1);
    // The index blob of /coll.
    idx = AllocIno();
    const uint64_t blk = AllocBlocks(2);
    std::vector<uint8_t> blob(5000);
    for (size_t i = 0; i < blob.size(); i++) blob[i] = static_cast<uint8_t>(i * 7 + 1);
    std::memcpy(Raw(blk), blob.data(), blob.size());
    vexfs_inode in = NewInode(S_IFREG, 1);
    in.i_flags = ToLe32(VEXFS_INODE_FL_VINDEX);
    in.i_parent = ToLe64(seg);
    SetInlineExtents(&in, {Ext(0, 2, blk)});
    in.i_size = ToLe64(blob.size());
    in.i_blocks = ToLe64(2);
    PutInode(idx, in);
    vexfs_collection c = Record(seg);
    c.vc_index_ino = ToLe64(idx);
    c.vc_index_bytes = ToLe64(blob.size());
    c.vc_index_crc = ToLe32(Crc32c(blob.data(), blob.size()));
    c.vc_index_state = ToLe32(VEXFS_INDEX_STATE_VALID);
    PutRecord(seg, c);
    // The catalogue.
    SetVector(seg, seg2);
    sb.s_vector_root = ToLe64(seg);
    StoreSuper();
  }

  void SetVector(uint64_t ino, uint64_t v) {
    vexfs_inode in = Inode(ino);
    in.i_vector = ToLe64(v);
    PutInode(ino, in);
  }
  void SetFlags(uint64_t ino, uint32_t flags) {
    vexfs_inode in = Inode(ino);
    in.i_flags = ToLe32(flags);
    PutInode(ino, in);
  }
  uint32_t Flags(uint64_t ino) { return Le32(Inode(ino).i_flags); }
  uint64_t Vector(uint64_t ino) { return Le64(Inode(ino).i_vector); }

  // The collection record lives in the segment's xattr block (too big for
  // the inline area): one entry, name "vexfs.collection", 128-byte value.
  static constexpr size_t kValueOff = VEXFS_XATTR_BLOCK_HDR + 8 + 16;
  vexfs_collection Record(uint64_t s) {
    vexfs_collection c;
    std::memcpy(&c, Raw(xblock[s]) + kValueOff, sizeof(c));
    return c;
  }
  // Stores `c` with a fresh crc (seal = false keeps the crc as given).
  void PutRecord(uint64_t s, vexfs_collection c, bool seal = true) {
    if (seal) {
      c.vc_crc = 0;
      c.vc_crc = ToLe32(Crc32c(&c, sizeof(c)));
    }
    std::memcpy(Raw(xblock[s]) + kValueOff, &c, sizeof(c));
    Reseal(xblock[s]);
  }

  uint64_t MkSegment(uint64_t dir, uint32_t dim, uint32_t nslots) {
    const uint64_t ino = AllocIno();
    const uint32_t ss = vexfs_slot_size(dim);
    const uint64_t bytes = uint64_t{nslots} * ss;
    const uint32_t nblocks = static_cast<uint32_t>((bytes + VEXFS_BLOCK_SIZE - 1) / VEXFS_BLOCK_SIZE);
    const uint64_t blk = AllocBlocks(nblocks);
    std::memset(Raw(blk), 0, uint64_t{nblocks} * VEXFS_BLOCK_SIZE);
    const uint64_t xb = AllocBlocks(1);
    InitBlockHeader(Raw(xb), VEXFS_XATTR_MAGIC, xb, ino);
    auto* x = reinterpret_cast<vexfs_xattr_block*>(Raw(xb));
    vexfs_xattr_entry e{};
    e.xe_name_index = VEXFS_XATTR_INDEX_TRUSTED;
    e.xe_name_len = 16;
    e.xe_value_len = ToLe32(sizeof(vexfs_collection));
    std::memcpy(x->xb_space, &e, sizeof(e));
    std::memcpy(x->xb_space + 8, "vexfs.collection", 16);
    x->xb_count = ToLe32(1);
    x->xb_used = ToLe32(8 + 16 + sizeof(vexfs_collection));
    xblock[ino] = xb;
    data[ino] = blk;
    vexfs_collection c{};
    c.vc_magic = ToLe32(VEXFS_COLLECTION_MAGIC);
    c.vc_version = ToLe16(1);
    c.vc_size = ToLe16(sizeof(c));
    c.vc_dim = ToLe32(dim);
    c.vc_metric = VEXFS_METRIC_COSINE;
    c.vc_element_type = VEXFS_ELEM_F32;
    c.vc_index_kind = VEXFS_INDEX_HNSW;
    c.vc_slot_size = ToLe32(ss);
    c.vc_param[0] = ToLe16(16);
    c.vc_dir = ToLe64(dir);
    c.vc_created = ToLe64(1700000000);
    PutRecord(ino, c);
    vexfs_inode in = NewInode(S_IFREG, 1);
    in.i_flags = ToLe32(VEXFS_INODE_FL_VSEGMENT);
    in.i_parent = ToLe64(dir);
    SetInlineExtents(&in, {Ext(0, nblocks, blk)});
    in.i_size = ToLe64(bytes);
    in.i_blocks = ToLe64(nblocks + 1);
    in.i_xattr_block = ToLe64(xb);
    PutInode(ino, in);
    vexfs_inode d = Inode(dir);
    d.i_flags = ToLe32(Le32(d.i_flags) | VEXFS_INODE_FL_COLLECTION);
    d.i_vector = ToLe64(ino);
    PutInode(dir, d);
    return ino;
  }
  uint8_t* SlotPtr(uint64_t s, uint64_t slot) {
    return Raw(data[s]) + slot * Le32(Record(s).vc_slot_size);
  }
  void PutSlot(uint64_t s, uint64_t slot, uint64_t owner, uint32_t gen, float base) {
    const uint32_t dim = Le32(Record(s).vc_dim);
    uint8_t* p = SlotPtr(s, slot);
    vexfs_vslot h{};
    h.vs_owner = ToLe64(owner);
    h.vs_generation = ToLe32(gen);
    std::memcpy(p, &h, sizeof(h));
    for (uint32_t i = 0; i < dim; i++) {
      const float f = base + 0.25f * static_cast<float>(i);
      std::memcpy(p + 16 + 4 * i, &f, 4);
    }
    h.vs_crc = ToLe32(offline::SlotCrc(p, dim));
    std::memcpy(p, &h, sizeof(h));
  }
  uint64_t MkVecFile(uint64_t dir, const std::string& name, uint64_t s, uint64_t slot) {
    const uint64_t f = MkFile(dir, name, 1);
    vexfs_inode in = Inode(f);
    in.i_parent = ToLe64(dir);
    in.i_vector = ToLe64(slot + 1);
    PutInode(f, in);
    PutSlot(s, slot, f, Le32(in.i_generation), static_cast<float>(f));
    return f;
  }
};

TEST(FsckVecTest, HandBuiltCollectionsAreClean) {
  VecImg img;
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(FsckExitCode(r), 0);
  const auto before = img.dev.image();
  CheckReport y = Check(&img.dev, true);
  EXPECT_TRUE(y.problems.empty()) << Dump(y);
  EXPECT_TRUE(before == img.dev.image());
  // The reader sees both collections and counts the live slots only.
  auto rd = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(rd.ok());
  std::vector<offline::Issue> issues;
  auto list = offline::ListCollections(**rd, true, &issues);
  EXPECT_TRUE(issues.empty());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].dir, img.coll);
  EXPECT_EQ(Le32(list[0].config.vc_dim), VecImg::kDim);
  EXPECT_EQ(list[0].slots, 12u);
  EXPECT_EQ(list[0].live, 3u);
  EXPECT_TRUE(list[0].issues.empty());
  EXPECT_EQ(list[1].dir, img.coll2);
  EXPECT_EQ(list[1].live, 1u);
  EXPECT_EQ(offline::DescribeCollection(list[0].config),
            "dim 100, metric cosine, element f32, index hnsw params 16/0/0/0, index blob " +
                std::to_string(img.idx) + " (5000 bytes, valid)");
  EXPECT_EQ(offline::FindCollection(**rd, img.deep), img.coll);
  EXPECT_EQ(offline::FindCollection(**rd, img.coll2), img.coll2);
  EXPECT_EQ(offline::FindCollection(**rd, img.a), 0u);
}

TEST(FsckVecTest, FeatureBitClearIsSet) {
  VecImg img;
  img.sb.s_feature_incompat =
      ToLe32(Le32(img.sb.s_feature_incompat) & ~VEXFS_FEATURE_INCOMPAT_VECTORS);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "vec.no_feature");
  img.LoadSuper();
  EXPECT_TRUE(Le32(img.sb.s_feature_incompat) & VEXFS_FEATURE_INCOMPAT_VECTORS);
  EXPECT_EQ(img.Vector(img.a1), 10u);
}

TEST(FsckVecTest, FeatureBitClearWithStrayVectorOnly) {
  Populated img;
  vexfs_inode in = img.Inode(img.b);
  in.i_vector = ToLe64(1);
  img.PutInode(img.b, in);
  DetectRepairClean(&img.dev, "vec.no_feature");
  img.LoadSuper();
  EXPECT_FALSE(Le32(img.sb.s_feature_incompat) & VEXFS_FEATURE_INCOMPAT_VECTORS);
  EXPECT_EQ(Le64(img.Inode(img.b).i_vector), 0u);
}

TEST(FsckVecTest, CollectionFlagOnRegularFile) {
  VecImg img;
  img.SetFlags(img.plain, VEXFS_INODE_FL_COLLECTION);
  DetectRepairClean(&img.dev, "vec.bad_flags");
  EXPECT_EQ(img.Flags(img.plain), 0u);
}

TEST(FsckVecTest, SegmentFlagOnDirectory) {
  VecImg img;
  img.SetFlags(img.sub, VEXFS_INODE_FL_VSEGMENT);
  DetectRepairClean(&img.dev, "vec.bad_flags");
  EXPECT_EQ(img.Vector(img.deep), 6u);  // its vector is still good
}

TEST(FsckVecTest, CatalogueRootNotASegment) {
  VecImg img;
  img.sb.s_vector_root = ToLe64(img.plain);
  img.StoreSuper();
  DetectRepairClean(&img.dev, "vec.catalogue_bad_link");
  // Both collections are relinked, nothing is lost.
  img.LoadSuper();
  EXPECT_EQ(Le64(img.sb.s_vector_root), img.seg);
  EXPECT_EQ(img.Vector(img.seg), img.seg2);
  EXPECT_TRUE(img.Flags(img.coll2) & VEXFS_INODE_FL_COLLECTION);
  EXPECT_EQ(img.Vector(img.b0), 2u);
}

TEST(FsckVecTest, CatalogueOutOfRange) {
  VecImg img;
  img.SetVector(img.seg, img.g.inode_count + 5);
  DetectRepairClean(&img.dev, "vec.catalogue_bad_link");
  EXPECT_EQ(img.Vector(img.seg), img.seg2);
}

TEST(FsckVecTest, CatalogueLoop) {
  VecImg img;
  img.SetVector(img.seg2, img.seg);
  DetectRepairClean(&img.dev, "vec.catalogue_loop");
  EXPECT_EQ(img.Vector(img.seg2), 0u);
}

TEST(FsckVecTest, SegmentMissingFromCatalogue) {
  VecImg img;
  img.SetVector(img.seg, 0);
  DetectRepairClean(&img.dev, "vec.segment_unlisted");
  EXPECT_EQ(img.Vector(img.seg), img.seg2);
}

TEST(FsckVecTest, SegmentWrongParentDissolvesCollection) {
  VecImg img;
  vexfs_inode in = img.Inode(img.seg2);
  in.i_parent = ToLe64(VEXFS_ROOT_INO);
  img.PutInode(img.seg2, in);
  DetectRepairClean(&img.dev, "vec.segment_bad_parent");
  // The segment is freed with its blocks (the clean second pass shows no
  // leak), /coll2 is a plain directory and b0 lost its vector.
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.seg2)));
  EXPECT_FALSE(img.Flags(img.coll2) & VEXFS_INODE_FL_COLLECTION);
  EXPECT_EQ(img.Vector(img.coll2), 0u);
  EXPECT_EQ(img.Vector(img.b0), 0u);
  img.LoadSuper();
  EXPECT_EQ(Le64(img.sb.s_vector_root), img.seg);
  EXPECT_EQ(img.Vector(img.seg), 0u);
  EXPECT_EQ(img.Vector(img.a0), 1u);  // the other collection is untouched
}

TEST(FsckVecTest, CollectionDirectoryWithoutSegment) {
  VecImg img;
  img.SetVector(img.coll2, 0);
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.Has("vec.segment_bad_parent")) << Dump(r);
  DetectRepairClean(&img.dev, "vec.collection_no_segment");
  EXPECT_FALSE(img.Flags(img.coll2) & VEXFS_INODE_FL_COLLECTION);
  EXPECT_EQ(img.Vector(img.b0), 0u);
}

TEST(FsckVecTest, CollectionRecordBadCrc) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg);
  c.vc_created = ToLe64(1);
  img.PutRecord(img.seg, c, /*seal=*/false);
  DetectRepairClean(&img.dev, "vec.bad_collection");
  EXPECT_FALSE(img.Flags(img.coll) & VEXFS_INODE_FL_COLLECTION);
  EXPECT_EQ(img.Vector(img.a0), 0u);
  EXPECT_EQ(img.Vector(img.deep), 0u);
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.seg)));
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.idx)));  // its index goes too
  img.LoadSuper();
  EXPECT_EQ(Le64(img.sb.s_vector_root), img.seg2);
}

TEST(FsckVecTest, CollectionRecordBadSlotSize) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg2);
  c.vc_slot_size = ToLe32(24);
  img.PutRecord(img.seg2, c);
  DetectRepairClean(&img.dev, "vec.bad_collection");
}

TEST(FsckVecTest, CollectionRecordBadDimension) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg2);
  c.vc_dim = ToLe32(VEXFS_VECTOR_MAX_DIM + 1);
  c.vc_slot_size = ToLe32(vexfs_slot_size(VEXFS_VECTOR_MAX_DIM + 1));
  img.PutRecord(img.seg2, c);
  DetectRepairClean(&img.dev, "vec.bad_collection");
}

TEST(FsckVecTest, CollectionRecordBadMetric) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg2);
  c.vc_metric = 9;
  img.PutRecord(img.seg2, c);
  DetectRepairClean(&img.dev, "vec.bad_collection");
}

TEST(FsckVecTest, CollectionRecordNamesAnotherDirectory) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg2);
  c.vc_dir = ToLe64(img.coll);
  img.PutRecord(img.seg2, c);
  DetectRepairClean(&img.dev, "vec.bad_collection");
}

TEST(FsckVecTest, CollectionRecordMissing) {
  VecImg img;
  auto* x = reinterpret_cast<vexfs_xattr_block*>(img.Raw(img.xblock[img.seg2]));
  x->xb_space[8] = 'X';  // "Xexfs.collection"
  img.Reseal(img.xblock[img.seg2]);
  DetectRepairClean(&img.dev, "vec.bad_collection");
}

TEST(FsckVecTest, SegmentSizeNotSlotMultiple) {
  VecImg img;
  vexfs_inode in = img.Inode(img.seg);
  in.i_size = ToLe64(Le64(in.i_size) - 100);
  img.PutInode(img.seg, in);
  DetectRepairClean(&img.dev, "vec.segment_bad_size");
  EXPECT_EQ(Le64(img.Inode(img.seg).i_size), 11u * vexfs_slot_size(VecImg::kDim));
  EXPECT_EQ(img.Vector(img.a1), 10u);  // slot 9 is still inside
}

TEST(FsckVecTest, SegmentBadMode) {
  VecImg img;
  vexfs_inode in = img.Inode(img.seg);
  in.i_mode = ToLe16(S_IFREG | 0644);
  in.i_links = ToLe32(3);
  img.PutInode(img.seg, in);
  DetectRepairClean(&img.dev, "vec.segment_bad_inode");
  EXPECT_EQ(Le16(img.Inode(img.seg).i_mode), S_IFREG);
  EXPECT_EQ(Le32(img.Inode(img.seg).i_links), 1u);
}

TEST(FsckVecTest, SegmentNamedByDirectory) {
  VecImg img;
  img.AddEntry(VEXFS_ROOT_INO, "peek", img.seg, VEXFS_FT_REG);
  DetectRepairClean(&img.dev, "dir.entry_to_vector_inode");
  auto rd = offline::VolumeReader::Open(&img.dev);
  ASSERT_TRUE(rd.ok());
  EXPECT_FALSE(offline::ResolvePath(**rd, "/peek").ok());
  EXPECT_TRUE(img.Flags(img.coll) & VEXFS_INODE_FL_COLLECTION);
}

TEST(FsckVecTest, StraySegmentIsFreed) {
  VecImg img;
  // A segment no collection names (a third one, parent /dir1).
  const uint64_t s = img.MkSegment(img.dir1, 8, 1);
  img.SetFlags(img.dir1, 0);
  img.SetVector(img.dir1, 0);
  DetectRepairClean(&img.dev, "vec.segment_bad_parent");
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(s)));
}

TEST(FsckVecTest, SegmentFlagOnLinkedFileIsCleared) {
  VecImg img;
  img.SetFlags(img.b, VEXFS_INODE_FL_VSEGMENT);
  DetectRepairClean(&img.dev, "vec.segment_bad_parent");
  EXPECT_EQ(img.Flags(img.b), 0u);  // kept as the plain file it is
  auto rd = offline::VolumeReader::Open(&img.dev);
  EXPECT_TRUE(offline::ResolvePath(**rd, "/dir1/b.bin").ok());
}

TEST(FsckVecTest, FileSlotPastSegment) {
  VecImg img;
  img.SetVector(img.a0, 13);
  DetectRepairClean(&img.dev, "vec.bad_slot");
  EXPECT_EQ(img.Vector(img.a0), 0u);
  EXPECT_EQ(img.Vector(img.a1), 10u);
}

TEST(FsckVecTest, FileSlotOwnedByAnotherInode) {
  VecImg img;
  img.SetVector(img.a0, 4);  // slot 3: the stale copy, owner a0... ->
  img.PutSlot(img.seg, 3, img.plain, 1, 1.0f);  // ... now owned by plain
  DetectRepairClean(&img.dev, "vec.slot_owner");
  EXPECT_EQ(img.Vector(img.a0), 0u);
}

TEST(FsckVecTest, FileSlotWrongGeneration) {
  VecImg img;
  img.PutSlot(img.seg, 9, img.a1, 7, 2.0f);
  DetectRepairClean(&img.dev, "vec.slot_owner");
  EXPECT_EQ(img.Vector(img.a1), 0u);
}

TEST(FsckVecTest, FileSlotBadCrc) {
  VecImg img;
  img.SlotPtr(img.seg, 9)[16 + 4 * 90] ^= 0x40;  // in the second block of the slot
  DetectRepairClean(&img.dev, "vec.slot_crc");
  EXPECT_EQ(img.Vector(img.a1), 0u);
  EXPECT_EQ(img.Vector(img.a0), 1u);
}

TEST(FsckVecTest, TwoFilesShareASlot) {
  VecImg img;
  vexfs_inode in = img.Inode(img.plain);
  in.i_parent = ToLe64(img.coll);
  in.i_vector = ToLe64(10);  // a1's slot
  img.PutInode(img.plain, in);
  DetectRepairClean(&img.dev, "vec.shared_slot");
  EXPECT_EQ(img.Vector(img.plain), 0u);
  EXPECT_EQ(img.Vector(img.a1), 10u);
}

TEST(FsckVecTest, FileVectorOutsideCollections) {
  VecImg img;
  vexfs_inode in = img.Inode(img.b);
  in.i_parent = ToLe64(img.dir1);
  in.i_vector = ToLe64(1);
  img.PutInode(img.b, in);
  DetectRepairClean(&img.dev, "vec.no_collection");
  EXPECT_EQ(img.Vector(img.b), 0u);
}

TEST(FsckVecTest, VectorOnSymlink) {
  VecImg img;
  img.SetVector(img.link, 1);
  DetectRepairClean(&img.dev, "vec.stray_vector");
  EXPECT_EQ(img.Vector(img.link), 0u);
}

TEST(FsckVecTest, VectorOnPlainDirectory) {
  VecImg img;
  img.SetVector(img.sub, img.seg);
  DetectRepairClean(&img.dev, "vec.stray_vector");
  EXPECT_EQ(img.Vector(img.deep), 6u);
}

TEST(FsckVecTest, IndexBlobWrongSize) {
  VecImg img;
  vexfs_inode in = img.Inode(img.idx);
  in.i_size = ToLe64(4000);
  img.PutInode(img.idx, in);
  DetectRepairClean(&img.dev, "vec.index_mismatch");
  EXPECT_EQ(Le32(img.Record(img.seg).vc_index_state), VEXFS_INDEX_STATE_STALE);
  EXPECT_EQ(Le64(img.Record(img.seg).vc_index_ino), img.idx);
}

TEST(FsckVecTest, IndexBlobBadChecksum) {
  VecImg img;
  const uint64_t blk = img.FirstBlock(img.idx);
  img.Raw(blk + 1)[10] ^= 1;
  DetectRepairClean(&img.dev, "vec.index_mismatch");
  EXPECT_EQ(Le32(img.Record(img.seg).vc_index_state), VEXFS_INDEX_STATE_STALE);
}

TEST(FsckVecTest, IndexBlobNotAnIndexInode) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg);
  c.vc_index_ino = ToLe64(img.plain);
  img.PutRecord(img.seg, c);
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.Has("vec.stray_index")) << Dump(r);  // the real blob is now unreferenced
  DetectRepairClean(&img.dev, "vec.bad_index");
  EXPECT_EQ(Le64(img.Record(img.seg).vc_index_ino), 0u);
  EXPECT_FALSE(offline::InodeIsZero(img.Inode(img.plain)));
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.idx)));
}

TEST(FsckVecTest, IndexBlobWrongLinks) {
  VecImg img;
  vexfs_inode in = img.Inode(img.idx);
  in.i_links = ToLe32(2);
  img.PutInode(img.idx, in);
  DetectRepairClean(&img.dev, "vec.bad_index");
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.idx)));
  EXPECT_EQ(Le32(img.Record(img.seg).vc_index_state), VEXFS_INDEX_STATE_STALE);
}

TEST(FsckVecTest, StrayIndexBlobIsFreed) {
  VecImg img;
  vexfs_collection c = img.Record(img.seg);
  c.vc_index_ino = 0;
  c.vc_index_state = ToLe32(VEXFS_INDEX_STATE_STALE);
  img.PutRecord(img.seg, c);
  DetectRepairClean(&img.dev, "vec.stray_index");
  EXPECT_TRUE(offline::InodeIsZero(img.Inode(img.idx)));
}

// A dropped collection's segment and index sit on the orphan list until
// released: legitimate, and not part of any collection.
TEST(FsckVecTest, OrphanedSegmentIsLegitimate) {
  VecImg img;
  // Detach /coll2 the way DropCollection does.
  img.SetVector(img.seg, 0);
  img.SetFlags(img.coll2, 0);
  img.SetVector(img.coll2, 0);
  img.SetVector(img.b0, 0);
  vexfs_inode in = img.Inode(img.seg2);
  in.i_links = 0;
  in.i_flags = ToLe32(VEXFS_INODE_FL_VSEGMENT | VEXFS_INODE_FL_ORPHAN);
  img.PutInode(img.seg2, in);
  img.sb.s_orphan_head = ToLe64(img.seg2);
  img.StoreSuper();
  CheckReport r = Check(&img.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(r.orphans, 1u);
  CheckReport y = Check(&img.dev, true);
  EXPECT_EQ(y.errors_left(), 0u) << Dump(y);
  CheckReport again = Check(&img.dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

// Collections built through the Filesystem (the lead's vector layer): the
// volume it leaves must check clean, and corruptions of what it wrote are
// found.
struct FsVec {
  MemoryDevice dev{8192};
  uint64_t c1 = 0, c2 = 0, sub = 0, f0 = 0, moved = 0;
  static constexpr uint32_t kDim = 24;

  static std::vector<uint8_t> Vec(float base, uint32_t dim = kDim) { return VectorBytes(base, dim); }

  // Builds the volume; `unmount` false leaves it as a power cut after the
  // last Sync would (the journal may hold transactions).
  bool Build(bool unmount = true) {
    FormatOptions fo;
    fo.seed = 11;
    if (!Format(&dev, fo).ok()) return false;
    MountOptions mo;
    mo.commit_interval_ms = 0;
    mo.check_permissions = false;
    auto m = Filesystem::Mount(std::make_unique<BorrowedDevice>(&dev), mo);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return false;
    Filesystem& fs = **m;
    const Cred c = Cred::Root();
    bool ok = true;
    auto check = [&](const Status& s, const std::string& what) {
      if (!s.ok()) {
        ADD_FAILURE() << what << ": " << s.ToString();
        ok = false;
      }
    };
    auto mk = [&](uint64_t dir, const std::string& name) -> uint64_t {
      auto f = fs.Mknod(dir, name, S_IFREG | 0644, 0, c);
      check(f.status(), "create " + name);
      return f.ok() ? f->ino : 0;
    };
    auto d1 = fs.Mkdir(Filesystem::kRootIno, "c1", 0755, c);
    auto d2 = fs.Mkdir(Filesystem::kRootIno, "c2", 0755, c);
    auto d3 = fs.Mkdir(Filesystem::kRootIno, "dropped", 0755, c);
    check(d1.status(), "mkdir");
    check(d2.status(), "mkdir");
    check(d3.status(), "mkdir");
    if (!ok) return false;
    c1 = d1->ino;
    c2 = d2->ino;
    // A plain vector xattr before the collection exists is adopted by it.
    f0 = mk(c1, "f0");
    check(fs.SetXattr(f0, VEXFS_VECTOR_XATTR, Vec(0.5f), 0, c), "plain vector");
    CollectionConfig cfg;
    cfg.dim = kDim;
    cfg.metric = VEXFS_METRIC_L2;
    cfg.index_kind = VEXFS_INDEX_HNSW;
    cfg.params[0] = 16;
    check(fs.CreateCollection(c1, cfg, c), "create c1");
    CollectionConfig cfg2 = cfg;
    cfg2.dim = 3;
    cfg2.metric = VEXFS_METRIC_COSINE;
    check(fs.CreateCollection(c2, cfg2, c), "create c2");
    check(fs.CreateCollection(d3->ino, cfg, c), "create dropped");
    if (!ok) return false;
    auto s = fs.Mkdir(c1, "sub", 0755, c);
    check(s.status(), "mkdir sub");
    if (!ok) return false;
    sub = s->ino;
    for (int i = 1; i < 150 && ok; i++) {
      const uint64_t f = mk(i % 3 ? c1 : sub, "f" + std::to_string(i));
      if (i % 7 != 0) check(fs.SetXattr(f, VEXFS_VECTOR_XATTR, Vec(float(i)), 0, c), "setxattr");
      if (i % 10 == 0) check(fs.SetXattr(f, VEXFS_VECTOR_XATTR, Vec(-float(i)), 0, c), "update");
    }
    for (int i = 0; i < 5 && ok; i++) {
      const uint64_t f = mk(c2, "g" + std::to_string(i));
      check(fs.SetXattr(f, VEXFS_VECTOR_XATTR, Vec(float(i), 3), 0, c), "setxattr c2");
    }
    for (int i = 3; i < 150 && ok; i += 11) {
      check(fs.Unlink(i % 3 ? c1 : sub, "f" + std::to_string(i), c), "unlink");
    }
    check(fs.RemoveXattr(f0, VEXFS_VECTOR_XATTR, c), "removexattr");
    check(fs.SetXattr(f0, VEXFS_VECTOR_XATTR, Vec(9.0f), 0, c), "set again");
    check(fs.Rename(c1, "f1", sub, "moved", 0, c), "rename within the collection");
    auto mv = fs.Lookup(sub, "moved", c);
    check(mv.status(), "lookup moved");
    if (mv.ok()) moved = mv->ino;
    check(fs.SaveIndexBlob(c1, std::vector<uint8_t>(9000, 0x5a)), "save index");
    check(fs.SaveIndexBlob(c2, std::vector<uint8_t>(100, 0x11)), "save index c2");
    check(fs.SetXattr(mk(c2, "late"), VEXFS_VECTOR_XATTR, Vec(7.0f, 3), 0, c), "stale c2");
    check(fs.DropCollection(d3->ino, c), "drop");
    check(fs.Sync(), "sync");
    if (unmount) {
      check(fs.Unmount(), "unmount");
    } else {
      snapshot = dev.image();
      check(fs.Unmount(), "unmount");
    }
    return ok;
  }
  std::vector<uint8_t> snapshot;
};

TEST(FsckVecFsTest, FilesystemCollectionsAreClean) {
  FsVec v;
  ASSERT_TRUE(v.Build());
  CheckReport r = Check(&v.dev, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  EXPECT_EQ(FsckExitCode(r), 0);
  const auto before = v.dev.image();
  CheckReport y = Check(&v.dev, true);
  EXPECT_TRUE(y.problems.empty()) << Dump(y);
  EXPECT_TRUE(before == v.dev.image());
  auto rd = offline::VolumeReader::Open(&v.dev);
  ASSERT_TRUE(rd.ok());
  std::vector<offline::Issue> issues;
  auto list = offline::ListCollections(**rd, true, &issues);
  EXPECT_TRUE(issues.empty());
  ASSERT_EQ(list.size(), 2u);
  uint64_t live = 0;
  for (const auto& ci : list) {
    EXPECT_TRUE(ci.config_ok);
    EXPECT_TRUE(ci.issues.empty()) << ci.issues[0].message;
    live += ci.live;
  }
  // What Build() left: f1..f149 with a vector (set, or only updated),
  // minus the unlinked ones, plus f0 and the six files of c2.
  uint64_t want = 1 + 6;
  for (int i = 1; i < 150; i++) want += (i % 7 != 0 || i % 10 == 0) && (i - 3) % 11 != 0;
  EXPECT_EQ(live, want);
}

TEST(FsckVecFsTest, PowerCutAfterSyncIsClean) {
  FsVec v;
  ASSERT_TRUE(v.Build(/*unmount=*/false));
  MemoryDevice snap(v.snapshot);
  CheckReport r = Check(&snap, false);
  EXPECT_TRUE(r.problems.empty()) << Dump(r);
  CheckReport y = Check(&snap, true);
  EXPECT_EQ(y.errors_left(), 0u) << Dump(y);
  EXPECT_TRUE(Check(&snap, false).problems.empty());
}

// One corruption of what the Filesystem wrote: a slot's vector bytes.
TEST(FsckVecFsTest, FilesystemSlotCorrupted) {
  FsVec v;
  ASSERT_TRUE(v.Build());
  auto rd = offline::VolumeReader::Open(&v.dev);
  ASSERT_TRUE(rd.ok());
  vexfs_inode in;
  ASSERT_TRUE((*rd)->ReadInode(v.moved, &in).ok());
  const uint64_t slot = Le64(in.i_vector) - 1;
  ASSERT_NE(Le64(in.i_vector), 0u);
  vexfs_inode dir;
  ASSERT_TRUE((*rd)->ReadInode(v.c1, &dir).ok());
  const uint64_t seg = Le64(dir.i_vector);
  vexfs_inode s;
  ASSERT_TRUE((*rd)->ReadInode(seg, &s).ok());
  offline::ExtentMap m;
  offline::ReadExtents(**rd, seg, s, &m);
  const uint64_t off = slot * vexfs_slot_size(FsVec::kDim) + 20;  // a vector byte
  uint64_t phys = 0;
  for (const auto& e : m.extents) {
    const uint64_t lb = off / VEXFS_BLOCK_SIZE;
    if (lb >= e.logical && lb < uint64_t{e.logical} + e.len) phys = e.start + lb - e.logical;
  }
  ASSERT_NE(phys, 0u);
  v.dev.image()[phys * VEXFS_BLOCK_SIZE + off % VEXFS_BLOCK_SIZE] ^= 0x08;
  DetectRepairClean(&v.dev, "vec.slot_crc");
  // The volume still mounts and the file has no vector any more.
  MountOptions mo;
  mo.check_permissions = false;
  auto mnt = Filesystem::Mount(std::make_unique<BorrowedDevice>(&v.dev), mo);
  ASSERT_TRUE(mnt.ok()) << mnt.status().ToString();
  auto x = (*mnt)->GetXattr(v.moved, VEXFS_VECTOR_XATTR, Cred::Root());
  EXPECT_FALSE(x.ok());
  ASSERT_TRUE((*mnt)->Unmount().ok());
}

}  // namespace
}  // namespace vexfs::testing

namespace vexfs::testing {
namespace {

// Records every block write (flushes are irrelevant to a prefix).
class WriteLog final : public BlockDevice {
 public:
  WriteLog(MemoryDevice* d, std::vector<std::pair<uint64_t, std::vector<uint8_t>>>* log)
      : d_(d), log_(log) {}
  uint64_t block_count() const override { return d_->block_count(); }
  Status Read(uint64_t b, uint32_t n, void* buf) override { return d_->Read(b, n, buf); }
  Status Write(uint64_t b, uint32_t n, const void* buf) override {
    const auto* p = static_cast<const uint8_t*>(buf);
    for (uint32_t i = 0; i < n; i++) {
      log_->push_back({b + i, std::vector<uint8_t>(p + size_t{i} * VEXFS_BLOCK_SIZE,
                                                   p + size_t{i + 1} * VEXFS_BLOCK_SIZE)});
    }
    return d_->Write(b, n, buf);
  }
  Status Flush() override { return d_->Flush(); }

 private:
  MemoryDevice* d_;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>>* log_;
};

// A power cut after every block write of a vector workload (collections
// created, vectors set, updated and removed, files unlinked, an index
// blob saved, a collection dropped): fsck -n finds nothing, whatever the
// journal holds, and -y leaves a volume that checks clean.
TEST(FsckVecFsTest, EveryPowerCutChecksClean) {
  MemoryDevice dev(1024);
  FormatOptions fo;
  fo.seed = 3;
  fo.journal_blocks = 128;
  ASSERT_TRUE(Format(&dev, fo).ok());
  const std::vector<uint8_t> base = dev.image();
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> log;
  {
    MountOptions mo;
    mo.commit_interval_ms = 0;
    mo.check_permissions = false;
    auto m = Filesystem::Mount(std::make_unique<WriteLog>(&dev, &log), mo);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    Filesystem& fs = **m;
    const Cred c = Cred::Root();
    auto d1 = fs.Mkdir(Filesystem::kRootIno, "c", 0755, c);
    auto d2 = fs.Mkdir(Filesystem::kRootIno, "gone", 0755, c);
    ASSERT_TRUE(d1.ok() && d2.ok());
    CollectionConfig cfg;
    cfg.dim = 300;  // slots of 1216 bytes straddle blocks
    ASSERT_TRUE(fs.CreateCollection(d1->ino, cfg, c).ok());
    ASSERT_TRUE(fs.CreateCollection(d2->ino, cfg, c).ok());
    std::vector<uint64_t> files;
    for (int i = 0; i < 24; i++) {
      auto f = fs.Mknod(i % 4 ? d1->ino : d2->ino, "f" + std::to_string(i), S_IFREG | 0644, 0, c);
      ASSERT_TRUE(f.ok());
      files.push_back(f->ino);
      ASSERT_TRUE(fs.SetXattr(f->ino, VEXFS_VECTOR_XATTR, FsVec::Vec(float(i), 300), 0, c).ok());
      if (i % 2 == 0) ASSERT_TRUE(fs.Sync().ok());
    }
    for (int i = 0; i < 24; i += 3) {
      ASSERT_TRUE(fs.SetXattr(files[i], VEXFS_VECTOR_XATTR, FsVec::Vec(-float(i), 300), 0, c).ok());
      ASSERT_TRUE(fs.Sync().ok());
    }
    ASSERT_TRUE(fs.Sync().ok());
    ASSERT_TRUE(fs.SaveIndexBlob(d1->ino, std::vector<uint8_t>(10000, 0x42)).ok());
    for (int i = 1; i < 24; i += 4) {
      ASSERT_TRUE(fs.Unlink(i % 4 ? d1->ino : d2->ino, "f" + std::to_string(i), c).ok());
      ASSERT_TRUE(fs.Sync().ok());
    }
    ASSERT_TRUE(fs.RemoveXattr(files[2], VEXFS_VECTOR_XATTR, c).ok());
    ASSERT_TRUE(fs.Sync().ok());
    ASSERT_TRUE(fs.SetXattr(files[6], VEXFS_VECTOR_XATTR, FsVec::Vec(1.0f, 300), 0, c).ok());
    ASSERT_TRUE(fs.Sync().ok());
    ASSERT_TRUE(fs.DropCollection(d2->ino, c).ok());
    ASSERT_TRUE(fs.Sync().ok());
    ASSERT_TRUE(fs.CreateCollection(d2->ino, cfg, c).ok());  // reuses the freed inodes
    ASSERT_TRUE(fs.SetXattr(files[4], VEXFS_VECTOR_XATTR, FsVec::Vec(4.0f, 300), 0, c).ok());
    ASSERT_TRUE(fs.Unmount().ok());
  }
  ASSERT_GT(log.size(), 50u);
  MemoryDevice cut(base);
  int repaired = 0;
  for (size_t n = 0; n <= log.size(); n++) {
    if (n > 0) {
      std::memcpy(cut.image().data() + log[n - 1].first * VEXFS_BLOCK_SIZE,
                  log[n - 1].second.data(), VEXFS_BLOCK_SIZE);
    }
    MemoryDevice copy(cut.image());
    auto r = CheckVolume(&copy, CheckOptions{false, true});
    ASSERT_TRUE(r.ok()) << "after " << n << " writes: " << r.status().ToString();
    ASSERT_TRUE(r->problems.empty()) << "after " << n << " of " << log.size() << " writes:\n"
                                     << Dump(*r);
    if (n % 7 == 0 || n == log.size()) {
      auto y = CheckVolume(&copy, CheckOptions{true, true});
      ASSERT_TRUE(y.ok());
      ASSERT_EQ(y->errors_left(), 0u) << "after " << n << " writes:\n" << Dump(*y);
      auto again = CheckVolume(&copy, CheckOptions{false, true});
      ASSERT_TRUE(again.ok());
      ASSERT_TRUE(again->problems.empty()) << "after " << n << " writes:\n" << Dump(*again);
      repaired++;
    }
  }
  EXPECT_GT(repaired, 5);
  std::printf("%zu power cuts checked\n", log.size() + 1);
}

}  // namespace
}  // namespace vexfs::testing
