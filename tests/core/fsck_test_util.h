// Test helper: a small formatted volume in memory that tests edit at the
// byte level to build populated images and then corrupt them precisely.
// Only the simplest shapes are supported (single-leaf directories, inline
// extents); everything it writes is valid unless a test breaks it.
#ifndef VEXFS_TESTS_CORE_FSCK_TEST_UTIL_H_
#define VEXFS_TESTS_CORE_FSCK_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/layout.h"
#include "vexfs/block_device.h"
#include "vexfs/fsck.h"
#include "vexfs/mkfs.h"

namespace vexfs::testing {

using namespace vexfs::core;  // NOLINT

class Img {
 public:
  explicit Img(uint64_t blocks = 4096) : dev(blocks) {
    FormatOptions o;
    o.seed = 42;
    o.label = "fscktest";
    auto r = Format(&dev, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    LoadSuper();
  }

  // Adopts an existing image (e.g. one written by the Filesystem).
  explicit Img(std::vector<uint8_t> image) : dev(std::move(image)) { LoadSuper(); }

  MemoryDevice dev;
  vexfs_super_block sb{};
  Geometry g;

  uint8_t* Raw(uint64_t b) { return dev.image().data() + b * VEXFS_BLOCK_SIZE; }
  void Reseal(uint64_t b) { SealBlock(Raw(b)); }
  void LoadSuper() {
    std::memcpy(&sb, Raw(0), sizeof(sb));
    g = GeometryOf(sb);
  }
  // Writes `sb` to block 0 (and the backup when `backup`).
  void StoreSuper(bool backup = true) {
    SealSuper(&sb);
    std::memset(Raw(0), 0, VEXFS_SUPER_SIZE);
    std::memcpy(Raw(0), &sb, sizeof(sb));
    if (backup) std::memcpy(Raw(g.block_count - 1), Raw(0), VEXFS_BLOCK_SIZE);
  }

  vexfs_inode Inode(uint64_t ino) {
    vexfs_inode in;
    std::memcpy(&in, Raw(InodeBlock(g, ino)) + InodeOffset(ino), sizeof(in));
    return in;
  }
  void PutInode(uint64_t ino, vexfs_inode in, bool seal = true) {
    if (seal) SealInode(&in);
    std::memcpy(Raw(InodeBlock(g, ino)) + InodeOffset(ino), &in, sizeof(in));
  }

  bool Bit(uint64_t start, uint64_t item) {
    const uint64_t b = start + item / VEXFS_BITMAP_BITS, i = item % VEXFS_BITMAP_BITS;
    return (Raw(b)[VEXFS_BITMAP_HDR + i / 8] >> (i % 8)) & 1;
  }
  void SetBit(uint64_t start, uint64_t item, bool on) {
    const uint64_t b = start + item / VEXFS_BITMAP_BITS, i = item % VEXFS_BITMAP_BITS;
    uint8_t& byte = Raw(b)[VEXFS_BITMAP_HDR + i / 8];
    byte = on ? (byte | (1u << (i % 8))) : (byte & ~(1u << (i % 8)));
    Reseal(b);
  }
  void FreeCounts(int64_t dblocks, int64_t dinodes) {
    sb.s_free_blocks = ToLe64(Le64(sb.s_free_blocks) - dblocks);
    sb.s_free_inodes = ToLe64(Le64(sb.s_free_inodes) - dinodes);
    StoreSuper();
  }
  uint64_t AllocBlocks(uint64_t n) {
    for (uint64_t b = g.data_start; b + n < g.block_count; b++) {
      bool ok = true;
      for (uint64_t k = 0; k < n && ok; k++) ok = !Bit(g.bbitmap_start, b + k);
      if (!ok) continue;
      for (uint64_t k = 0; k < n; k++) SetBit(g.bbitmap_start, b + k, true);
      FreeCounts(n, 0);
      return b;
    }
    ADD_FAILURE() << "out of blocks";
    return 0;
  }
  uint64_t AllocIno() {
    for (uint64_t i = VEXFS_FIRST_INO; i <= g.inode_count; i++) {
      if (Bit(g.ibitmap_start, i - 1)) continue;
      SetBit(g.ibitmap_start, i - 1, true);
      FreeCounts(0, 1);
      return i;
    }
    ADD_FAILURE() << "out of inodes";
    return 0;
  }

  static vexfs_inode NewInode(uint32_t mode, uint32_t links) {
    vexfs_inode in{};
    in.i_mode = ToLe16(static_cast<uint16_t>(mode));
    in.i_links = ToLe32(links);
    in.i_mtime = ToLe64(1700000000);
    in.i_generation = ToLe32(1);
    return in;
  }
  static void SetInlineExtents(vexfs_inode* in, const std::vector<vexfs_extent>& ext) {
    std::memset(in->i_data, 0, sizeof(in->i_data));
    vexfs_extent_header eh{};
    eh.eh_magic = ToLe16(VEXFS_EXTENT_HDR_MAGIC);
    eh.eh_entries = ToLe16(static_cast<uint16_t>(ext.size()));
    eh.eh_max = ToLe16(VEXFS_EXTENT_INLINE);
    std::memcpy(in->i_data, &eh, sizeof(eh));
    for (size_t i = 0; i < ext.size(); i++) std::memcpy(in->i_data + 8 + 16 * i, &ext[i], 16);
  }
  static vexfs_extent Ext(uint32_t logical, uint32_t len, uint64_t start) {
    return vexfs_extent{ToLe32(logical), ToLe32(len), ToLe64(start)};
  }

  // Directory leaf records (single-leaf directories only).
  struct Rec {
    uint64_t hash, ino;
    uint8_t type;
    std::string name;
  };
  uint64_t DirLeaf(uint64_t dir) {
    vexfs_inode in = Inode(dir);
    vexfs_dir_root dr;
    std::memcpy(&dr, in.i_data, sizeof(dr));
    EXPECT_EQ(Le16(dr.dr_tree.tr_depth), 0);
    return Le64(dr.dr_tree.tr_root);
  }
  std::vector<Rec> Records(uint64_t dir) {
    auto* n = reinterpret_cast<vexfs_tree_node*>(Raw(DirLeaf(dir)));
    std::vector<Rec> out;
    uint32_t off = 0;
    for (uint32_t i = 0; i < Le16(n->tn_count); i++) {
      const uint8_t* p = n->tn_space + off;
      Rec r;
      std::memcpy(&r.hash, p, 8);
      std::memcpy(&r.ino, p + 8, 8);
      r.hash = le64toh(r.hash);
      r.ino = le64toh(r.ino);
      r.type = p[17];
      r.name.assign(reinterpret_cast<const char*>(p + 18), p[16]);
      off += VEXFS_DIR_REC_SIZE(p[16]);
      out.push_back(r);
    }
    return out;
  }
  // Writes `recs` as given (no sorting) and sets dr_entries.
  void WriteRecords(uint64_t dir, const std::vector<Rec>& recs) {
    const uint64_t leaf = DirLeaf(dir);
    auto* n = reinterpret_cast<vexfs_tree_node*>(Raw(leaf));
    std::memset(n->tn_space, 0, sizeof(n->tn_space));
    uint32_t off = 0;
    for (const auto& r : recs) {
      uint8_t* p = n->tn_space + off;
      const uint64_t h = htole64(r.hash), i = htole64(r.ino);
      std::memcpy(p, &h, 8);
      std::memcpy(p + 8, &i, 8);
      p[16] = static_cast<uint8_t>(r.name.size());
      p[17] = r.type;
      std::memcpy(p + 18, r.name.data(), r.name.size());
      off += VEXFS_DIR_REC_SIZE(r.name.size());
    }
    n->tn_count = ToLe16(static_cast<uint16_t>(recs.size()));
    n->tn_used = ToLe16(static_cast<uint16_t>(off));
    Reseal(leaf);
    vexfs_inode in = Inode(dir);
    auto* dr = reinterpret_cast<vexfs_dir_root*>(in.i_data);
    dr->dr_entries = ToLe64(recs.size());
    PutInode(dir, in);
  }
  void AddEntry(uint64_t dir, const std::string& name, uint64_t ino, uint8_t type) {
    auto recs = Records(dir);
    recs.push_back({DirHash(sb.s_hash_seed, name), ino, type, name});
    std::sort(recs.begin(), recs.end(), [](const Rec& a, const Rec& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.name < b.name;
    });
    WriteRecords(dir, recs);
  }

  // A regular file of `nblocks` contiguous data blocks in `dir`.
  uint64_t MkFile(uint64_t dir, const std::string& name, uint32_t nblocks) {
    const uint64_t ino = AllocIno();
    vexfs_inode in = NewInode(S_IFREG | 0644, 1);
    if (nblocks) {
      const uint64_t b = AllocBlocks(nblocks);
      for (uint32_t k = 0; k < nblocks; k++)
        std::memset(Raw(b + k), 'a' + k % 26, VEXFS_BLOCK_SIZE);
      SetInlineExtents(&in, {Ext(0, nblocks, b)});
    } else {
      SetInlineExtents(&in, {});
    }
    in.i_size = ToLe64(uint64_t{nblocks} * VEXFS_BLOCK_SIZE);
    in.i_blocks = ToLe64(nblocks);
    PutInode(ino, in);
    AddEntry(dir, name, ino, VEXFS_FT_REG);
    return ino;
  }
  uint64_t MkDir(uint64_t parent, const std::string& name) {
    const uint64_t ino = AllocIno();
    const uint64_t leaf = AllocBlocks(1);
    InitBlockHeader(Raw(leaf), VEXFS_DIR_MAGIC, leaf, ino);
    Reseal(leaf);
    vexfs_inode in = NewInode(S_IFDIR | 0755, 2);
    in.i_size = ToLe64(VEXFS_BLOCK_SIZE);
    in.i_blocks = ToLe64(1);
    in.i_parent = ToLe64(parent);
    auto* dr = reinterpret_cast<vexfs_dir_root*>(in.i_data);
    dr->dr_tree.tr_root = ToLe64(leaf);
    dr->dr_tree.tr_nodes = ToLe64(1);
    PutInode(ino, in);
    AddEntry(parent, name, ino, VEXFS_FT_DIR);
    vexfs_inode p = Inode(parent);
    p.i_links = ToLe32(Le32(p.i_links) + 1);
    PutInode(parent, p);
    return ino;
  }
  uint64_t MkSymlink(uint64_t dir, const std::string& name, const std::string& target) {
    const uint64_t ino = AllocIno();
    vexfs_inode in = NewInode(S_IFLNK | 0777, 1);
    in.i_flags = ToLe32(VEXFS_INODE_FL_INLINE_SYMLINK);
    std::memcpy(in.i_data, target.data(), target.size());
    in.i_size = ToLe64(target.size());
    PutInode(ino, in);
    AddEntry(dir, name, ino, VEXFS_FT_LNK);
    return ino;
  }
  // Appends an inline xattr entry with an inline value.
  void AddInlineXattr(uint64_t ino, uint8_t index, const std::string& name,
                      const std::string& value) {
    vexfs_inode in = Inode(ino);
    size_t pos = 0;
    while (pos + 8 <= VEXFS_XATTR_INLINE && in.i_xattr[pos + 1] != 0) {
      uint32_t vl;
      std::memcpy(&vl, in.i_xattr + pos + 4, 4);
      pos += (8 + in.i_xattr[pos + 1] + le32toh(vl) + 3) & ~size_t{3};
    }
    const size_t need = (8 + name.size() + value.size() + 3) & ~size_t{3};
    ASSERT_LE(pos + need, VEXFS_XATTR_INLINE);
    in.i_xattr[pos] = index;
    in.i_xattr[pos + 1] = static_cast<uint8_t>(name.size());
    const uint32_t vl = htole32(static_cast<uint32_t>(value.size()));
    std::memcpy(in.i_xattr + pos + 4, &vl, 4);
    std::memcpy(in.i_xattr + pos + 8, name.data(), name.size());
    std::memcpy(in.i_xattr + pos + 8 + name.size(), value.data(), value.size());
    PutInode(ino, in);
  }
};

inline std::string Dump(const CheckReport& r) {
  std::string s;
  for (const auto& p : r.problems)
    s += "  [" + p.code + (p.fixed ? " fixed] " : "] ") + p.message + "\n";
  return s;
}

inline CheckReport Check(BlockDevice* dev, bool repair) {
  auto r = CheckVolume(dev, CheckOptions{repair, true});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : CheckReport{};
}

}  // namespace vexfs::testing

#endif  // VEXFS_TESTS_CORE_FSCK_TEST_UTIL_H_
