// Hostile images: seeded random corruption of a populated volume must never
// crash, hang or blow up CheckVolume or the reader behind vexctl. Blocks
// are often re-sealed after the bit flips so the damage gets past the
// checksums and reaches the structural checks. Runs under ASan in CI.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <span>

#include "core/journal.h"
#include "vexfs/filesystem.h"
#include "core/reader.h"
#include "fs_image_util.h"
#include "fsck_test_util.h"

namespace vexfs::testing {
namespace {

const std::vector<uint8_t>& BaseImage() {
  static const std::vector<uint8_t> img = [] {
    MemoryDevice dev(2048);
    EXPECT_TRUE(BuildFsImage(&dev));
    return dev.image();
  }();
  return img;
}

// Every block that holds metadata: superblock, journal superblock, bitmaps,
// inode table, and any block starting with a known magic.
std::vector<uint64_t> MetadataBlocks(const std::vector<uint8_t>& img) {
  vexfs_super_block sb;
  std::memcpy(&sb, img.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  std::vector<uint64_t> out{0, g.journal_start};
  for (uint64_t b = g.ibitmap_start; b < g.data_start; b++) out.push_back(b);
  const uint64_t n = img.size() / VEXFS_BLOCK_SIZE;
  for (uint64_t b = g.data_start; b < n; b++) {
    uint32_t magic;
    std::memcpy(&magic, img.data() + b * VEXFS_BLOCK_SIZE, 4);
    magic = le32toh(magic);
    if (magic == VEXFS_EXTENT_MAGIC || magic == VEXFS_DIR_MAGIC || magic == VEXFS_XATTR_MAGIC)
      out.push_back(b);
  }
  return out;
}

// Re-seals whatever checksum covers the mutated bytes.
void Reseal(std::vector<uint8_t>& img, uint64_t block, size_t off, const Geometry& g) {
  uint8_t* p = img.data() + block * VEXFS_BLOCK_SIZE;
  if (block == 0) {
    vexfs_super_block sb;
    std::memcpy(&sb, p, sizeof(sb));
    SealSuper(&sb);
    std::memcpy(p, &sb, sizeof(sb));
  } else if (block >= g.itable_start && block < g.itable_start + g.itable_blocks) {
    auto* in = reinterpret_cast<vexfs_inode*>(p + off / VEXFS_INODE_SIZE * VEXFS_INODE_SIZE);
    SealInode(in);
  } else {
    SealBlock(p);
  }
}

// Exercises everything vexctl reads: info's journal scan, dump of every
// allocated inode (dir listing, extents, xattrs, symlink target), paths.
void ReadEverything(MemoryDevice* dev) {
  auto r = offline::VolumeReader::Open(dev);
  if (!r.ok()) return;
  offline::VolumeReader& rd = **r;
  const Geometry& g = rd.geometry();
  core::Journal j(dev, g.journal_start, g.journal_blocks, rd.super().s_uuid, g.block_count);
  (void)j.Scan();
  for (uint64_t ino = 1; ino <= std::min<uint64_t>(g.inode_count, 600); ino++) {
    vexfs_inode in;
    if (!rd.ReadInode(ino, &in).ok() || offline::InodeIsZero(in)) continue;
    const uint32_t mode = core::Le16(in.i_mode);
    if (S_ISDIR(mode)) {
      offline::DirListing l;
      offline::ReadDir(rd, ino, in, &l);
    } else {
      offline::ExtentMap m;
      offline::ReadExtents(rd, ino, in, &m);
      (void)offline::ReadFileHead(rd, ino, in, VEXFS_SYMLINK_MAX);
    }
    offline::XattrList x;
    offline::ReadXattrs(rd, ino, in, &x);
  }
  std::vector<offline::Issue> issues;
  for (const auto& c : offline::ListCollections(rd, /*count_live=*/true, &issues)) {
    (void)offline::FindCollection(rd, c.dir);
  }
  for (const char* p : {"/", "/d1/d2/moved.bin", "/big/file-with-a-longish-name-7",
                        "/d1/../d1/long", "/lost+found/x"}) {
    (void)offline::ResolvePath(rd, p);
  }
}

// The mount options of the tests below: no commit thread.
MountOptions NoCommitThread() {
  MountOptions mo;
  mo.commit_interval_ms = 0;
  return mo;
}

// Mounts the volume on `dev`, which stays the caller's.
Result<std::unique_ptr<Filesystem>> MountBorrowed(BlockDevice* dev, MountInfo* info = nullptr) {
  return Filesystem::Mount(std::make_unique<BorrowedDevice>(dev), NoCommitThread(), info);
}

// Formats `dev` as a small volume (a 64-block journal) with hash seed `seed`.
[[nodiscard]] bool FormatSmall(MemoryDevice* dev, uint64_t seed) {
  FormatOptions fo;
  fo.seed = seed;
  fo.journal_blocks = 64;
  auto r = Format(dev, fo);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok();
}

TEST(HostileImageTest, RandomBitFlipsNeverCrash) {
  const auto& base = BaseImage();
  ASSERT_FALSE(base.empty());
  const auto meta = MetadataBlocks(base);
  vexfs_super_block sb;
  std::memcpy(&sb, base.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  std::mt19937_64 rng(20261121);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  int iterations = 0, unclean_after_repair = 0, detected = 0;
  for (int it = 0; it < 300 && std::chrono::steady_clock::now() < deadline; it++, iterations++) {
    MemoryDevice dev(base);
    auto& img = dev.image();
    const int nflips = 1 + static_cast<int>(rng() % 8);
    const bool reseal = rng() % 4 != 0;
    for (int f = 0; f < nflips; f++) {
      const uint64_t block = meta[rng() % meta.size()];
      // Headers and counters live early in a block; bias towards them.
      const size_t off = (rng() % 2) ? rng() % 128 : rng() % VEXFS_BLOCK_SIZE;
      if (block == 0 && off >= VEXFS_SUPER_SIZE) continue;
      img[block * VEXFS_BLOCK_SIZE + off] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (reseal) Reseal(img, block, off, g);
    }
    SCOPED_TRACE("iteration " + std::to_string(it));
    auto r = CheckVolume(&dev, CheckOptions{false, true});
    detected += FsckExitCode(r) != 0;
    ReadEverything(&dev);
    if (it % 3 == 0) {
      auto fixed = CheckVolume(&dev, CheckOptions{true, true});
      if (fixed.ok()) {
        auto again = CheckVolume(&dev, CheckOptions{false, true});
        ASSERT_TRUE(again.ok());
        if (!again->problems.empty()) {
          unclean_after_repair++;
          ADD_FAILURE() << "not clean after repair (iteration " << it << "):\n"
                        << Dump(*again) << "repair pass:\n"
                        << Dump(*fixed);
        }
        ReadEverything(&dev);
      }
    }
  }
  EXPECT_GT(iterations, 50);
  // Most mutations must be noticed (a few land in unused bytes).
  EXPECT_GT(detected, iterations / 2) << detected << " of " << iterations;
  EXPECT_EQ(unclean_after_repair, 0);
}

// Mounts the image with the library and uses it like a program would.
// Every call may fail; none may crash or hang.
bool UseEverything(std::vector<uint8_t> img) {
  MountOptions mo = NoCommitThread();
  mo.cache_mb = 4;
  auto fsr = Filesystem::Mount(std::make_unique<MemoryDevice>(std::move(img)), mo);
  if (!fsr.ok()) return false;
  Filesystem* fs = fsr->get();
  const Cred root;
  std::vector<uint64_t> dirs{Filesystem::kRootIno}, files;
  for (size_t i = 0; i < dirs.size() && i < 64; i++) {
    (void)fs->ReadDir(dirs[i], 0, [&](const DirEntry& e) {
      if (e.name == "." || e.name == "..") return true;
      auto a = fs->GetAttr(e.ino);
      if (a.ok() && S_ISDIR(a->mode)) dirs.push_back(e.ino);
      if (a.ok() && !S_ISDIR(a->mode)) files.push_back(e.ino);
      return dirs.size() + files.size() < 400;
    });
  }
  std::vector<uint8_t> buf(64 * 1024);
  for (uint64_t ino : files) {
    (void)fs->Read(ino, 0, buf);
    (void)fs->Readlink(ino);
    auto names = fs->ListXattr(ino, root);
    if (names.ok()) {
      for (const auto& n : *names) (void)fs->GetXattr(ino, n, root);
    }
    (void)fs->SeekData(ino, 0, SEEK_HOLE);
    (void)fs->Write(ino, 4096, std::span<const uint8_t>(buf.data(), 5000));
    SetAttrRequest r;
    r.valid = SetAttrRequest::kSize;
    r.size = 100;
    (void)fs->SetAttr(ino, r, root);
    (void)fs->SetXattr(ino, "user.h", std::span<const uint8_t>(buf.data(), 3000), 0, root);
  }
  for (uint64_t d : dirs) {
    (void)fs->Mknod(d, "hostile-new", S_IFREG | 0644, 0, root);
    (void)fs->Mkdir(d, "hostile-dir", 0755, root);
    (void)fs->Rename(d, "hostile-new", Filesystem::kRootIno, "hostile-moved", 0, root);
    (void)fs->Unlink(Filesystem::kRootIno, "hostile-moved", root);
    (void)fs->Rmdir(d, "hostile-dir", root);
  }
  (void)fs->Sync();
  (void)fs->Unmount();
  return true;
}

TEST(HostileImageTest, LibraryMountAndUseNeverCrash) {
  const auto& base = BaseImage();
  ASSERT_FALSE(base.empty());
  const auto meta = MetadataBlocks(base);
  vexfs_super_block sb;
  std::memcpy(&sb, base.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  std::mt19937_64 rng(424242);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  int iterations = 0, mounted = 0;
  for (int it = 0; it < 250 && std::chrono::steady_clock::now() < deadline; it++, iterations++) {
    std::vector<uint8_t> img = base;
    const int nflips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < nflips; f++) {
      const uint64_t block = meta[rng() % meta.size()];
      const size_t off = (rng() % 2) ? rng() % 128 : rng() % VEXFS_BLOCK_SIZE;
      if (block == 0 && off >= VEXFS_SUPER_SIZE) continue;
      img[block * VEXFS_BLOCK_SIZE + off] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (rng() % 4 != 0) Reseal(img, block, off, g);  // get past the checksums
    }
    SCOPED_TRACE("iteration " + std::to_string(it));
    mounted += UseEverything(std::move(img));
  }
  EXPECT_GT(iterations, 30);
  EXPECT_GT(mounted, iterations / 4) << "most corrupted images should still mount and be exercised";
  std::printf("%d corrupted images, %d mounted and exercised\n", iterations, mounted);
}

// A volume with two collections (vectors in slots, an index blob, stale
// slots from updates and unlinks), built through the library.
const std::vector<uint8_t>& VectorImage() {
  static const std::vector<uint8_t> img = [] {
    MemoryDevice dev(2048);
    FormatOptions fo;
    fo.seed = 5;
    EXPECT_TRUE(Format(&dev, fo).ok());
    auto m = MountBorrowed(&dev);
    EXPECT_TRUE(m.ok());
    if (!m.ok()) return std::vector<uint8_t>();
    Filesystem& fs = **m;
    const Cred root;
    bool ok = true;
    auto check = [&](const Status& st) { ok = ok && st.ok(); };
    for (const uint32_t dim : {7u, 40u}) {
      auto d = fs.Mkdir(Filesystem::kRootIno, "c" + std::to_string(dim), 0755, root);
      if (!d.ok()) return std::vector<uint8_t>();
      CollectionConfig cfg;
      cfg.dim = dim;
      check(fs.CreateCollection(d->ino, cfg, root));
      auto sub = fs.Mkdir(d->ino, "sub", 0755, root);
      if (!sub.ok()) return std::vector<uint8_t>();
      std::vector<float> v(dim);
      for (int i = 0; i < 60 && ok; i++) {
        auto f = fs.Mknod(i % 2 ? d->ino : sub->ino, "v" + std::to_string(i), S_IFREG | 0644, 0,
                          root);
        if (!f.ok()) return std::vector<uint8_t>();
        for (uint32_t k = 0; k < dim; k++) v[k] = static_cast<float>(i * 3 + k);
        const auto bytes = std::as_bytes(std::span(v));
        std::span<const uint8_t> value(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        check(fs.SetXattr(f->ino, VEXFS_VECTOR_XATTR, value, 0, root));
        if (i % 5 == 0) check(fs.SetXattr(f->ino, VEXFS_VECTOR_XATTR, value, 0, root));
        if (i % 9 == 0) check(fs.Unlink(i % 2 ? d->ino : sub->ino, "v" + std::to_string(i), root));
      }
      check(fs.SaveIndexBlob(d->ino, std::vector<uint8_t>(6000 + dim, 0x3c)));
    }
    check(fs.Unmount());
    EXPECT_TRUE(ok);
    return ok ? dev.image() : std::vector<uint8_t>();
  }();
  return img;
}

// Bit flips in the vector layer's metadata (inode table, xattr blocks,
// superblock) and in segment and index data: fsck and the reader never
// crash, and a repaired volume checks clean.
TEST(HostileImageTest, VectorLayerBitFlipsNeverCrash) {
  const auto& base = VectorImage();
  ASSERT_FALSE(base.empty());
  {
    MemoryDevice clean(base);
    auto r = CheckVolume(&clean, CheckOptions{false, true});
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->problems.empty()) << Dump(*r);
  }
  vexfs_super_block sb;
  std::memcpy(&sb, base.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  std::vector<uint64_t> targets;  // superblock, xattr blocks, segment and index data
  std::vector<uint64_t> inodes;   // allocated inodes
  {
    MemoryDevice dev(base);
    auto r = offline::VolumeReader::Open(&dev);
    ASSERT_TRUE(r.ok());
    std::vector<offline::Issue> issues;
    for (const auto& c : offline::ListCollections(**r, false, &issues)) {
      for (uint64_t ino : {c.segment, uint64_t{core::Le64(c.config.vc_index_ino)}}) {
        vexfs_inode in;
        if (ino == 0 || !(*r)->ReadInode(ino, &in).ok()) continue;
        offline::ExtentMap m;
        offline::ReadExtents(**r, ino, in, &m);
        for (const auto& e : m.extents) {
          for (uint64_t k = 0; k < e.len; k++) targets.push_back(e.start + k);
        }
      }
    }
    ASSERT_FALSE(targets.empty());
    for (uint64_t ino = 1; ino <= g.inode_count; ino++) {
      vexfs_inode in;
      if ((*r)->ReadInode(ino, &in).ok() && !offline::InodeIsZero(in)) inodes.push_back(ino);
    }
    for (uint64_t b : MetadataBlocks(base)) {
      uint32_t magic;
      std::memcpy(&magic, base.data() + b * VEXFS_BLOCK_SIZE, 4);
      if (b == 0 || le32toh(magic) == VEXFS_XATTR_MAGIC) targets.push_back(b);
    }
  }
  std::mt19937_64 rng(1515);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int iterations = 0, detected = 0;
  for (int it = 0; it < 200 && std::chrono::steady_clock::now() < deadline; it++, iterations++) {
    MemoryDevice dev(base);
    auto& img = dev.image();
    const int nflips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < nflips; f++) {
      uint64_t block = targets[rng() % targets.size()];
      size_t off = rng() % VEXFS_BLOCK_SIZE;
      if (block == 0) off = 280 + rng() % 8;  // s_vector_root
      if (rng() % 2) {  // an inode's flags .. i_vector
        const uint64_t ino = inodes[rng() % inodes.size()];
        block = core::InodeBlock(g, ino);
        off = core::InodeOffset(ino) + 80 + rng() % 48;
      }
      img[block * VEXFS_BLOCK_SIZE + off] ^= static_cast<uint8_t>(1u << (rng() % 8));
      Reseal(img, block, off, g);
    }
    SCOPED_TRACE("iteration " + std::to_string(it));
    auto r = CheckVolume(&dev, CheckOptions{false, true});
    ASSERT_TRUE(r.ok());
    detected += FsckExitCode(r) != 0;
    ReadEverything(&dev);
    auto fixed = CheckVolume(&dev, CheckOptions{true, true});
    ASSERT_TRUE(fixed.ok());
    auto again = CheckVolume(&dev, CheckOptions{false, true});
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->problems.empty()) << "not clean after repair:\n"
                                         << Dump(*again) << "repair pass:\n"
                                         << Dump(*fixed);
    ReadEverything(&dev);
    if (it % 4 == 0) (void)UseEverything(dev.image());
  }
  EXPECT_GT(iterations, 40);
  EXPECT_GT(detected, iterations / 3) << detected << " of " << iterations;
}

TEST(HostileImageTest, TruncatedImagesNeverCrash) {
  const auto& base = BaseImage();
  ASSERT_FALSE(base.empty());
  const uint64_t n = base.size() / VEXFS_BLOCK_SIZE;
  std::mt19937_64 rng(7);
  std::set<uint64_t> sizes{0, 1, 2, 63, 64, 300, n - 1};
  while (sizes.size() < 40) sizes.insert(rng() % n);
  for (uint64_t blocks : sizes) {
    SCOPED_TRACE("blocks " + std::to_string(blocks));
    std::vector<uint8_t> img(base.begin(), base.begin() + blocks * VEXFS_BLOCK_SIZE);
    MemoryDevice dev(std::move(img));
    auto r = CheckVolume(&dev, CheckOptions{false, true});
    EXPECT_FALSE(r.ok());  // the superblock's size exceeds the device
    EXPECT_EQ(FsckExitCode(r), 8);
    ReadEverything(&dev);
    auto y = CheckVolume(&dev, CheckOptions{true, true});
    EXPECT_FALSE(y.ok());
    (void)UseEverything(dev.image());
  }
}

TEST(HostileImageTest, CorruptJournalNeverCrashes) {
  const auto& base = BaseImage();
  ASSERT_FALSE(base.empty());
  vexfs_super_block sb;
  std::memcpy(&sb, base.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  std::mt19937_64 rng(99);
  for (int it = 0; it < 40; it++) {
    MemoryDevice dev(base);
    // Commit a few transactions carrying metadata blocks, then damage them.
    Journal j(&dev, g.journal_start, g.journal_blocks, sb.s_uuid, g.block_count);
    ASSERT_TRUE(j.Recover(nullptr).ok());
    for (int t = 0; t < 3; t++) {
      std::vector<std::vector<uint8_t>> imgs;
      std::vector<std::pair<uint64_t, const uint8_t*>> list;
      for (int k = 0; k < 1 + it % 4; k++) {
        const uint64_t target = g.itable_start + rng() % g.itable_blocks;
        imgs.emplace_back(dev.image().begin() + target * VEXFS_BLOCK_SIZE,
                          dev.image().begin() + (target + 1) * VEXFS_BLOCK_SIZE);
        imgs.back()[rng() % VEXFS_BLOCK_SIZE] ^= 0x40;  // an inode the replay will break
      }
      for (size_t k = 0; k < imgs.size(); k++) {
        list.push_back({g.itable_start + k, imgs[k].data()});
      }
      ASSERT_TRUE(j.Commit(list).ok());
    }
    for (int f = 0; f < 1 + it % 5; f++) {
      const uint64_t b = g.journal_start + rng() % 24;
      dev.image()[b * VEXFS_BLOCK_SIZE + rng() % 64] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (rng() % 2) SealBlock(dev.image().data() + b * VEXFS_BLOCK_SIZE);
    }
    auto r = CheckVolume(&dev, CheckOptions{false, true});
    (void)FsckExitCode(r);
    ReadEverything(&dev);
    auto y = CheckVolume(&dev, CheckOptions{true, true});
    if (y.ok()) {
      const CheckReport again = Check(&dev, false);
      EXPECT_TRUE(again.problems.empty()) << Dump(again);
    }
  }
}

// Found by fuzz/image_fuzz: the mount took the directory hash seed from
// the superblock as it was before journal replay, and the journal's image
// of block 0 (whose seed fsck uses) differed, so every name it created
// or looked up hashed wrongly.
TEST(HostileImageTest, MountUsesTheSuperblockAsReplayed) {
  MemoryDevice dev(512);
  ASSERT_TRUE(FormatSmall(&dev, 3));
  std::vector<uint8_t> cut;
  {
    auto fs = MountBorrowed(&dev);
    ASSERT_TRUE(fs.ok());
    ASSERT_TRUE((*fs)->Mknod(Filesystem::kRootIno, "a", S_IFREG | 0644, 0, Cred()).ok());
    ASSERT_TRUE((*fs)->Sync().ok());
    cut = dev.image();  // power cut: the journal holds block 0 (mount state)
  }
  vexfs_super_block sb;
  std::memcpy(&sb, cut.data(), sizeof(sb));
  sb.s_hash_seed[0] ^= 1;
  SealSuper(&sb);
  std::memcpy(cut.data(), &sb, sizeof(sb));
  MemoryDevice after(cut);
  MountInfo info;
  auto fs = MountBorrowed(&after, &info);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_GT(info.replayed_transactions, 0u);
  EXPECT_TRUE((*fs)->Lookup(Filesystem::kRootIno, "a", Cred()).ok());
  ASSERT_TRUE((*fs)->Mknod(Filesystem::kRootIno, "b", S_IFREG | 0644, 0, Cred()).ok());
  ASSERT_TRUE((*fs)->Unmount().ok());
  auto r = CheckVolume(&after, CheckOptions{false, true});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->problems.empty()) << Dump(*r);
}

// A collection segment of 2^40 bytes, almost all holes: the mount scanned
// it slot by slot (hours); it now refuses it, and fsck cuts it to the data
// area, after which the collection's vector is still there.
TEST(HostileImageTest, HugeSparseSegmentIsRefusedAndCut) {
  MemoryDevice dev(512);
  ASSERT_TRUE(FormatSmall(&dev, 4));
  uint64_t file = 0;
  {
    auto fs = MountBorrowed(&dev);
    ASSERT_TRUE(fs.ok());
    auto c = (*fs)->Mkdir(Filesystem::kRootIno, "c", 0755, Cred());
    ASSERT_TRUE(c.ok());
    CollectionConfig cfg;
    cfg.dim = 4;
    ASSERT_TRUE((*fs)->CreateCollection(c->ino, cfg, Cred()).ok());
    auto f = (*fs)->Mknod(c->ino, "f", S_IFREG | 0644, 0, Cred());
    ASSERT_TRUE(f.ok());
    file = f->ino;
    const float v[4] = {1, 2, 3, 4};
    ASSERT_TRUE((*fs)->SetXattr(file, VEXFS_VECTOR_XATTR,
                                std::span(reinterpret_cast<const uint8_t*>(v), sizeof(v)), 0, Cred())
                    .ok());
    ASSERT_TRUE((*fs)->Unmount().ok());
  }
  vexfs_super_block sb;
  std::memcpy(&sb, dev.image().data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  bool found = false;
  for (uint64_t ino = 1; ino <= g.inode_count; ino++) {
    auto* in = reinterpret_cast<vexfs_inode*>(dev.image().data() + InodeBlock(g, ino) * VEXFS_BLOCK_SIZE +
                                              InodeOffset(ino));
    if (!(Le32(in->i_flags) & VEXFS_INODE_FL_VSEGMENT)) continue;
    in->i_size = ToLe64(uint64_t{1} << 40);
    SealInode(in);
    found = true;
  }
  ASSERT_TRUE(found);
  auto refused = Filesystem::Mount(std::make_unique<MemoryDevice>(dev.image()), NoCommitThread());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().err(), EUCLEAN) << refused.status().ToString();
  auto r = CheckVolume(&dev, CheckOptions{true, true});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Has("vec.segment_bad_size")) << Dump(*r);
  const CheckReport again = Check(&dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
  auto fs = Filesystem::Mount(std::make_unique<MemoryDevice>(dev.image()), NoCommitThread());
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto v = (*fs)->GetXattr(file, VEXFS_VECTOR_XATTR, Cred());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->size(), 16u);
}

// A directory tree four levels deep whose every index entry names the same
// child: a DAG of 5 blocks that a leaf walk (readdir) took 253^4 steps
// through. Walks now stop after as many nodes as the data area has blocks.
TEST(HostileImageTest, SharedTreeNodeIsRefused) {
  MemoryDevice dev(512);
  ASSERT_TRUE(FormatSmall(&dev, 5));
  uint64_t dir = 0;
  {
    auto fs = MountBorrowed(&dev);
    ASSERT_TRUE(fs.ok());
    auto d = (*fs)->Mkdir(Filesystem::kRootIno, "d", 0755, Cred());
    ASSERT_TRUE(d.ok());
    dir = d->ino;
    for (const char* n : {"f1", "f2", "f3"}) {
      ASSERT_TRUE((*fs)->Mknod(dir, n, S_IFREG | 0644, 0, Cred()).ok());
    }
    ASSERT_TRUE((*fs)->Unmount().ok());
  }
  vexfs_super_block sb;
  std::memcpy(&sb, dev.image().data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  auto* in = reinterpret_cast<vexfs_inode*>(dev.image().data() + InodeBlock(g, dir) * VEXFS_BLOCK_SIZE +
                                            InodeOffset(dir));
  vexfs_dir_root root;
  std::memcpy(&root, in->i_data, sizeof(root));
  ASSERT_EQ(Le16(root.dr_tree.tr_depth), 0);
  uint64_t child = Le64(root.dr_tree.tr_root);
  for (uint16_t level = 1; level <= 4; level++) {
    const uint64_t blk = g.block_count - 10 + level;  // free in this small volume
    uint8_t* b = dev.image().data() + blk * VEXFS_BLOCK_SIZE;
    std::memset(b, 0, VEXFS_BLOCK_SIZE);
    InitBlockHeader(b, VEXFS_DIR_MAGIC, blk, dir);
    auto* node = reinterpret_cast<vexfs_tree_node*>(b);
    node->tn_level = ToLe16(level);
    node->tn_count = ToLe16(VEXFS_TREE_INDEX_MAX);
    node->tn_used = ToLe16(VEXFS_TREE_INDEX_MAX * 16);
    auto* ix = reinterpret_cast<vexfs_tree_index*>(node->tn_space);
    for (uint32_t i = 0; i < VEXFS_TREE_INDEX_MAX; i++) {
      ix[i].ti_key = ToLe64((uint64_t{1} << 63) + i);  // above every hash: walks start at entry 0
      ix[i].ti_child = ToLe64(child);
    }
    SealBlock(b);
    child = blk;
  }
  root.dr_tree.tr_root = ToLe64(child);
  root.dr_tree.tr_depth = ToLe16(4);
  std::memcpy(in->i_data, &root, sizeof(root));
  SealInode(in);
  {
    auto fs = Filesystem::Mount(std::make_unique<MemoryDevice>(dev.image()), NoCommitThread());
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    size_t seen = 0;
    const Status s = (*fs)->ReadDir(dir, 0, [&](const DirEntry&) {
      seen++;
      return true;
    });
    EXPECT_EQ(s.err(), EUCLEAN) << s.ToString();
    EXPECT_LT(seen, 2000u);
  }
  auto r = CheckVolume(&dev, CheckOptions{true, true});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->problems.empty());
  const CheckReport again = Check(&dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
}


// A small volume with one regular file holding `blocks` blocks of 'a'
// (cleanly unmounted); returns the file's inode number.
uint64_t VolumeWithFile(MemoryDevice* dev, uint64_t seed, int blocks, bool fragmented = false) {
  if (!FormatSmall(dev, seed)) return 0;
  auto fs = MountBorrowed(dev);
  EXPECT_TRUE(fs.ok());
  if (!fs.ok()) return 0;
  auto f = (*fs)->Mknod(Filesystem::kRootIno, "f", S_IFREG | 0644, 0, Cred());
  EXPECT_TRUE(f.ok());
  if (!f.ok()) return 0;
  const std::vector<uint8_t> blk(VEXFS_BLOCK_SIZE, 'a');
  for (int i = 0; i < blocks; i++) {
    const uint64_t at = uint64_t(i) * (fragmented ? 2 : 1) * VEXFS_BLOCK_SIZE;
    EXPECT_TRUE((*fs)->Write(f->ino, at, blk).ok());
  }
  EXPECT_TRUE((*fs)->Unmount().ok());
  return f->ino;
}

vexfs_inode* RawInode(MemoryDevice* dev, uint64_t ino) {
  vexfs_super_block sb;
  std::memcpy(&sb, dev->image().data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  return reinterpret_cast<vexfs_inode*>(dev->image().data() + InodeBlock(g, ino) * VEXFS_BLOCK_SIZE +
                                        InodeOffset(ino));
}

// Every extent of `ino` (inline, or in the root leaf of its tree),
// writable in place; `*leaf` is the leaf block (0 when inline).
std::span<vexfs_extent> RawExtents(MemoryDevice* dev, uint64_t ino, uint64_t* leaf) {
  vexfs_inode* in = RawInode(dev, ino);
  vexfs_extent_header eh;
  std::memcpy(&eh, in->i_data, sizeof(eh));
  *leaf = 0;
  if (Le16(eh.eh_depth) == 0) {
    return {reinterpret_cast<vexfs_extent*>(in->i_data + sizeof(eh)), Le16(eh.eh_entries)};
  }
  vexfs_tree_root root;
  std::memcpy(&root, in->i_data + sizeof(eh), sizeof(root));
  EXPECT_EQ(Le16(root.tr_depth), 0);
  *leaf = Le64(root.tr_root);
  auto* node = reinterpret_cast<vexfs_tree_node*>(dev->image().data() + *leaf * VEXFS_BLOCK_SIZE);
  return {reinterpret_cast<vexfs_extent*>(node->tn_space), Le16(node->tn_count)};
}

void ResealExtents(MemoryDevice* dev, uint64_t ino, uint64_t leaf) {
  if (leaf) {
    SealBlock(dev->image().data() + leaf * VEXFS_BLOCK_SIZE);
  } else {
    SealInode(RawInode(dev, ino));
  }
}

// A file extent mapping the inode table, the journal or the backup
// superblock: reads and writes went straight to that metadata (a write
// overwrote sixteen inodes, root included) and a truncation freed those
// blocks for the allocator. Now every use of the map is EUCLEAN, the write
// lands nowhere and no metadata block is freed; fsck drops the extent.
TEST(HostileImageTest, ExtentOutsideTheDataAreaIsRefused) {
  for (const bool tree : {false, true}) {
    for (int target = 0; target < 3; target++) {
      SCOPED_TRACE(std::string(tree ? "tree" : "inline") + " extent, target " + std::to_string(target));
      MemoryDevice dev(512);
      const uint64_t file = VolumeWithFile(&dev, 20 + target, tree ? 5 : 1, /*fragmented=*/tree);
      ASSERT_NE(file, 0u);
      vexfs_super_block sb;
      std::memcpy(&sb, dev.image().data(), sizeof(sb));
      const Geometry g = GeometryOf(sb);
      const uint64_t where[] = {g.itable_start, g.journal_start + 1, g.block_count - 1};
      uint64_t leaf = 0;
      std::span<vexfs_extent> ext = RawExtents(&dev, file, &leaf);
      ASSERT_EQ(ext.size(), tree ? 5u : 1u);
      ASSERT_EQ(leaf != 0, tree);
      ext[0].ee_start = ToLe64(where[target]);
      ResealExtents(&dev, file, leaf);
      const std::vector<uint8_t> x(VEXFS_BLOCK_SIZE, 'X');
      {
        auto fs = MountBorrowed(&dev);
        ASSERT_TRUE(fs.ok()) << fs.status().ToString();
        std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
        auto rd = (*fs)->Read(file, 0, buf);
        EXPECT_EQ(rd.status().err(), EUCLEAN) << rd.status().ToString();
        EXPECT_EQ((*fs)->SeekData(file, 0, SEEK_DATA).status().err(), EUCLEAN);
        EXPECT_EQ((*fs)->Write(file, 0, x).status().err(), EUCLEAN);
        SetAttrRequest cut;  // (sets the size, then fails to free the blocks)
        cut.valid = SetAttrRequest::kSize;
        cut.size = 0;
        EXPECT_EQ((*fs)->SetAttr(file, cut, Cred()).status().err(), EUCLEAN);
        ASSERT_TRUE((*fs)->Unmount().ok());
      }
      for (uint64_t b = 0; b < g.block_count; b++) {
        EXPECT_NE(0, std::memcmp(dev.image().data() + b * VEXFS_BLOCK_SIZE, x.data(), x.size()))
            << "the write reached block " << b;
      }
      auto r = CheckVolume(&dev, CheckOptions{false, true});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(r->Has("extent.out_of_range")) << Dump(*r);
      EXPECT_FALSE(r->Has("inode.bad_crc")) << Dump(*r);
      EXPECT_FALSE(r->Has("block.used_but_free")) << Dump(*r);
      ASSERT_TRUE(CheckVolume(&dev, CheckOptions{true, true}).ok());
      const CheckReport again = Check(&dev, false);
      EXPECT_TRUE(again.problems.empty()) << Dump(again);
      auto fs = MountBorrowed(&dev);
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    }
  }
}

// The orphan list may name linked inodes: a regular file marked ORPHAN is
// a truncation a crash cut, which the mount finishes (unmapping the blocks
// past its end); anything else linked is only taken off the list and left
// whole: a directory marked ORPHAN, a file not marked (its blocks past the
// end are legal, as after fallocate(KEEP_SIZE)).
TEST(HostileImageTest, LinkedInodesOnTheOrphanList) {
  for (int kind = 0; kind < 3; kind++) {
    SCOPED_TRACE(kind == 0 ? "marked file" : kind == 1 ? "marked directory" : "unmarked file");
    Img img;
    const uint64_t dir = img.MkDir(VEXFS_ROOT_INO, "d");
    const uint64_t file = img.MkFile(dir, "f", 3);
    const uint64_t target = kind == 1 ? dir : file;
    vexfs_inode in = img.Inode(file);
    in.i_size = ToLe64(100);
    img.PutInode(file, in);
    if (kind != 2) {
      in = img.Inode(target);
      in.i_flags = ToLe32(Le32(in.i_flags) | VEXFS_INODE_FL_ORPHAN);
      img.PutInode(target, in);
    }
    img.sb.s_orphan_head = ToLe64(target);
    img.sb.s_state = 0;
    img.StoreSuper();
    MountInfo info;
    {
      auto fs = MountBorrowed(&img.dev, &info);
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
      EXPECT_EQ(info.truncations_finished, kind == 0 ? 1u : 0u);
      auto f = (*fs)->Lookup(dir, "f", Cred::Root());
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      EXPECT_EQ(f->size, 100u);
      EXPECT_EQ(f->blocks, (kind == 0 ? 1u : 3u) * 8) << "512-byte units";
      ASSERT_TRUE((*fs)->Unmount().ok());
    }
    img.LoadSuper();
    EXPECT_EQ(Le64(img.sb.s_orphan_head), 0u);
    EXPECT_EQ(Le32(img.Inode(target).i_flags) & VEXFS_INODE_FL_ORPHAN, 0u);
    const CheckReport r = Check(&img.dev, false);
    EXPECT_TRUE(r.problems.empty()) << Dump(r);
  }
}

// The largest file is 2^32 - 1 blocks: a file may be that long, no extent
// may end past it (one ending at 2^32 passed both checks before), and an
// i_size past it (2^63 here, which the kernel's loff_t reads as negative)
// is refused by the mount with EUCLEAN and cut by fsck to the end of the
// written data, which survives.
TEST(HostileImageTest, FileSizeAndExtentLimits) {
  constexpr uint64_t kMaxBytes = VEXFS_MAX_FILE_BLOCKS * VEXFS_BLOCK_SIZE;
  {
    MemoryDevice dev(512);
    const uint64_t file = VolumeWithFile(&dev, 30, 2);
    ASSERT_NE(file, 0u);
    {
      auto fs = MountBorrowed(&dev);
      ASSERT_TRUE(fs.ok());
      SetAttrRequest r;
      r.valid = SetAttrRequest::kSize;
      r.size = kMaxBytes + 1;
      EXPECT_EQ((*fs)->SetAttr(file, r, Cred()).status().err(), EFBIG);
      r.size = kMaxBytes;
      ASSERT_TRUE((*fs)->SetAttr(file, r, Cred()).ok());
      const std::vector<uint8_t> one(1, 'e');
      EXPECT_EQ((*fs)->Write(file, kMaxBytes, one).status().err(), EFBIG);
      auto w = (*fs)->Write(file, kMaxBytes - 1, one);  // an extent ending at the limit
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      ASSERT_TRUE((*fs)->Unmount().ok());
    }
    auto r = CheckVolume(&dev, CheckOptions{false, true});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->problems.empty()) << Dump(*r);  // exactly the largest file is legal
  }
  for (const uint64_t size : {kMaxBytes + 1, uint64_t{1} << 63, UINT64_MAX}) {
    SCOPED_TRACE("size " + std::to_string(size));
    MemoryDevice dev(512);
    const uint64_t file = VolumeWithFile(&dev, 31, 2);
    ASSERT_NE(file, 0u);
    vexfs_inode* in = RawInode(&dev, file);
    in->i_size = ToLe64(size);
    SealInode(in);
    {
      auto fs = MountBorrowed(&dev);
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
      EXPECT_EQ((*fs)->GetAttr(file).status().err(), EUCLEAN);
      std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
      EXPECT_EQ((*fs)->Read(file, size - 100, buf).status().err(), EUCLEAN);
      EXPECT_EQ((*fs)->Write(file, 0, buf).status().err(), EUCLEAN);
      (void)(*fs)->Unmount();
    }
    auto n = CheckVolume(&dev, CheckOptions{false, true});
    ASSERT_TRUE(n.ok());
    EXPECT_TRUE(n->Has("inode.bad_size")) << Dump(*n);
    auto y = CheckVolume(&dev, CheckOptions{true, true});
    ASSERT_TRUE(y.ok());
    const CheckReport again = Check(&dev, false);
    EXPECT_TRUE(again.problems.empty()) << Dump(again);
    auto fs = MountBorrowed(&dev);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    auto a = (*fs)->GetAttr(file);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ(a->size, 2 * VEXFS_BLOCK_SIZE);
    std::vector<uint8_t> buf(2 * VEXFS_BLOCK_SIZE);
    auto got = (*fs)->Read(file, 0, buf);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, buf.size());
    EXPECT_EQ(buf, std::vector<uint8_t>(buf.size(), 'a'));
  }
  {
    // An extent ending at block 2^32, one past the largest file.
    MemoryDevice dev(512);
    const uint64_t file = VolumeWithFile(&dev, 32, 1);
    ASSERT_NE(file, 0u);
    uint64_t leaf = 0;
    std::span<vexfs_extent> ext = RawExtents(&dev, file, &leaf);
    ASSERT_EQ(ext.size(), 1u);
    ext[0].ee_logical = ToLe32(0xFFFFFFFFu);
    ResealExtents(&dev, file, leaf);
    {
      auto fs = MountBorrowed(&dev);
      ASSERT_TRUE(fs.ok()) << fs.status().ToString();
      EXPECT_EQ((*fs)->SeekData(file, 0, SEEK_DATA).status().err(), EUCLEAN);
      (void)(*fs)->Unmount();
    }
    auto y = CheckVolume(&dev, CheckOptions{true, true});
    ASSERT_TRUE(y.ok());
    EXPECT_TRUE(y->Has("extent.bad_logical")) << Dump(*y);
    const CheckReport again = Check(&dev, false);
    EXPECT_TRUE(again.problems.empty()) << Dump(again);
  }
}


// Found by fuzz/image_fuzz: /lost+found's inode damaged into a regular
// file and a directory lost, so its files were unreachable. fsck -y could
// not reconnect them (/lost+found "not a usable directory"), set their
// link counts to the zero entries it found, and the next run freed them
// as unlinked. Now it reconnects them into a new /lost+found.1, and an
// inode it cannot reconnect keeps its link count.
TEST(HostileImageTest, StraysFindALostFoundWhenItsNameIsTaken) {
  MemoryDevice dev(512);
  ASSERT_TRUE(FormatSmall(&dev, 41));
  uint64_t dir = 0, file = 0, lf = 0;
  {
    auto fs = MountBorrowed(&dev);
    ASSERT_TRUE(fs.ok());
    auto l = (*fs)->Lookup(Filesystem::kRootIno, "lost+found", Cred());
    ASSERT_TRUE(l.ok());
    lf = l->ino;
    auto d = (*fs)->Mkdir(Filesystem::kRootIno, "d", 0755, Cred());
    ASSERT_TRUE(d.ok());
    dir = d->ino;
    auto f = (*fs)->Mknod(dir, "x", S_IFREG | 0644, 0, Cred());
    ASSERT_TRUE(f.ok());
    file = f->ino;
    ASSERT_TRUE((*fs)->Write(file, 0, std::vector<uint8_t>(100, 'x')).ok());
    ASSERT_TRUE((*fs)->Unmount().ok());
  }
  vexfs_inode* l = RawInode(&dev, lf);
  l->i_mode = ToLe16(S_IFREG | 0600);
  SealInode(l);
  std::memset(RawInode(&dev, dir), 0, sizeof(vexfs_inode));  // d is gone: x is a stray
  auto y = CheckVolume(&dev, CheckOptions{true, true});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_TRUE(y->Has("lost+found.created")) << Dump(*y);
  EXPECT_EQ(y->errors_left(), 0u) << Dump(*y);
  const CheckReport again = Check(&dev, false);
  EXPECT_TRUE(again.problems.empty()) << Dump(again);
  auto fs = MountBorrowed(&dev);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto nl = (*fs)->Lookup(Filesystem::kRootIno, "lost+found.1", Cred());
  ASSERT_TRUE(nl.ok()) << nl.status().ToString();
  auto x = (*fs)->Lookup(nl->ino, "#" + std::to_string(file), Cred());
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(x->size, 100u);
}

}  // namespace
}  // namespace vexfs::testing
