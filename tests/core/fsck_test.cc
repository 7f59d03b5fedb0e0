// One named test per corruption case: each builds a small populated image,
// breaks one invariant, checks that fsck -n reports it (with its stable
// code), that fsck -y repairs it, and that a second pass is clean.
#include <gtest/gtest.h>

#include <cstring>

#include "core/journal.h"
#include "core/reader.h"
#include "fsck_test_util.h"

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

TEST(FsckTest, LostFoundNotADirectoryLeavesErrors) {
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
  // The old lost+found (inode 8) is now unreachable, and there is nowhere
  // to put it.
  auto r = Check(&img.dev, true);
  EXPECT_TRUE(r.Has("lost+found.unusable")) << Dump(r);
  EXPECT_EQ(FsckExitCode(r), 4);
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
