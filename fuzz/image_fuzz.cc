// Fuzz target for whole volume images: mount (read-only and read-write,
// with journal replay and orphan release), a walk of everything, a few
// mutations, fsck, and fsck's repair.
//
// Input: byte 0 picks one of the seed volumes built in code at start-up
// (kSeedVolumes: 1 MiB each, made with the library's mkfs and filled
// through the Filesystem API; see Seeds() below), the rest is a list of
// patches applied to it:
//
//   patch := where:u8 offset:u16le ctl:u8 bytes[1 + ctl % 32]
//   ctl / 32 % 4 = 0: block `where` of the seed's metadata list (superblock,
//                     bitmaps, inode table, tree/xattr/journal blocks in
//                     use, collection segments, backup superblock), mod
//                     its length; offset mod 4096
//                  1: inode 1 + where (mod the inode count); offset mod 256
//                  2: journal block `where` (mod the journal's length);
//                     with offset & 0x8000 instead a new transaction: the
//                     bytes land in a copy of metadata block `where` (as
//                     kind 0), which is journaled after the last committed
//                     transaction (one transaction holds every such patch
//                     of the input, in order, sealed and hash-chained), so
//                     the mount replays it (with ctl & 128, the copy is
//                     re-sealed as its home block first)
//                  3: any block (where * 256 + offset / 16, mod the volume)
//   ctl & 128:        re-seal what the bytes land in afterwards (superblock
//                     crc, inode crc, block crc; in the journal the
//                     descriptors, commits and hash chain of every
//                     transaction, and any inode or block header inside an
//                     image), so the damage gets past the checksums
//
// A raw image would be 1 MiB of input whose interesting bytes are a few
// hundred scattered ones behind CRC-32C and SipHash seals: libFuzzer's
// byte-level mutations would nearly all land in zeros or break a checksum.
// Patches aim every mutation at metadata and keep inputs a few dozen bytes.
//
// Per input (each step may fail with any Status; none may crash, hang,
// leak or trip a sanitizer):
//   1. fsck -n -f of the image;
//   2. a read-only mount (a device that refuses writes: no replay) and a
//      walk: readdir (also resumed at a cookie), lookup, getattr, read,
//      seek, readlink, list/get xattrs, statfs, collections;
//   3. a read-write mount (journal replay, orphans released), the walk,
//      Collections attached (info and a search per collection), mutations
//      (create, write, truncate, setxattr, a vector, rename, link, unlink,
//      mkdir, symlink), sync, close, unmount; then fsck -n -f;
//   4. when step 1 found problems, fsck -y -f of the original image (a
//      copy), which must then check clean and mount.
// Aborts when a repaired volume (every problem fixed) does not check clean
// or does not mount,
// or when a volume fsck found clean does not mount read-write or is no
// longer clean after step 3.
//
//   fuzz/image_fuzz -max_len=256 -len_control=0 fuzz/corpus/image
//   (seeds: image_replay --write-seeds DIR; IMAGE_FUZZ_VERBOSE=1 prints
//   what each seed volume holds and how each mount went;
//   IMAGE_FUZZ_DUMP=FILE writes the volume of the last input run there)
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/journal.h"
#include "core/layout.h"
#include "fuzz/fuzz_seeds.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/block_device.h"
#include "vexfs/collections.h"
#include "vexfs/filesystem.h"
#include "vexfs/fsck.h"
#include "vexfs/mkfs.h"

namespace {

using namespace vexfs;
using core::Le16;
using core::Le32;
using core::Le64;
using core::ToLe64;

constexpr uint64_t kBlocks = 256;  // 1 MiB volumes
constexpr uint64_t kInodes = 64;
constexpr uint64_t kJournalBlocks = 64;
constexpr size_t kSeedVolumes = 4;
constexpr uint32_t kDim = 4;

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "image_fuzz: check failed: %s\n", what);
    abort();
  }
}

std::string Dump(const CheckReport& r) {
  std::string s;
  for (const Problem& p : r.problems) {
    s += "  " + p.code + (p.fixed ? " (fixed): " : ": ") + p.message + "\n";
  }
  return s;
}

void CheckClean(const Result<CheckReport>& r, const char* what) {
  if (r.ok() && r->problems.empty()) return;
  fprintf(stderr, "image_fuzz: %s: %s\n%s", what,
          r.ok() ? "problems" : r.status().ToString().c_str(), r.ok() ? Dump(*r).c_str() : "");
  abort();
}

// Forwards to a device the caller keeps (Mount takes ownership of its own).
// With `writable` false it is a read-only device: Mount then neither
// replays the journal nor writes anything. CutPower(n) lets n more blocks
// through and silently drops every write after them (a power cut).
class Borrowed final : public BlockDevice {
 public:
  Borrowed(BlockDevice* d, bool writable) : d_(d), writable_(writable) {}
  uint64_t block_count() const override { return d_->block_count(); }
  Status Read(uint64_t b, uint32_t n, void* buf) override { return d_->Read(b, n, buf); }
  Status Write(uint64_t b, uint32_t n, const void* buf) override {
    if (!writable_) return Status::Error(EROFS, "read-only device");
    written_ += n;
    if (budget_ < 0) return d_->Write(b, n, buf);
    const uint32_t pass = static_cast<uint32_t>(std::min<int64_t>(budget_, n));
    budget_ -= pass;
    return pass > 0 ? d_->Write(b, pass, buf) : Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  bool read_only() const override { return !writable_; }
  void CutPower(int64_t after_blocks) { budget_ = after_blocks; }
  int64_t written() const { return written_; }

 private:
  BlockDevice* d_;
  bool writable_;
  int64_t budget_ = -1;  // blocks still written; -1: no limit
  int64_t written_ = 0;
};

std::span<const uint8_t> Bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}
std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- Seed volumes -------------------------------------------------------

// The first phase of every seed: a bit of everything the format has.
void Populate(Filesystem& fs, Collections& colls) {
  const Cred root;
  auto must = [](const Status& s, const char* what) {
    if (!s.ok()) fprintf(stderr, "image_fuzz seed: %s: %s\n", what, s.ToString().c_str());
    Check(s.ok(), what);
  };
  auto d1 = fs.Mkdir(Filesystem::kRootIno, "d1", 0755, root);
  must(d1.status(), "mkdir d1");
  auto d2 = fs.Mkdir(d1->ino, "d2", 0700, root);
  must(d2.status(), "mkdir d2");
  std::vector<uint8_t> data(3 * 4096 + 100);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 7);
  auto f = fs.Mknod(d1->ino, "data.bin", S_IFREG | 0644, 0, root);
  must(f.status(), "create data.bin");
  must(fs.Write(f->ino, 0, data).status(), "write data.bin");
  // Every other block: more extents than fit inline, so an extent tree.
  auto frag = fs.Mknod(Filesystem::kRootIno, "frag", S_IFREG | 0600, 0, root);
  must(frag.status(), "create frag");
  const std::vector<uint8_t> blk(4096, 'f');
  for (int i = 0; i < 6; i++) must(fs.Write(frag->ino, uint64_t(i) * 2 * 4096, blk).status(), "write frag");
  auto pre = fs.Mknod(Filesystem::kRootIno, "prealloc", S_IFREG | 0600, 0, root);
  must(pre.status(), "create prealloc");
  must(fs.Fallocate(pre->ino, FALLOC_FL_KEEP_SIZE, 0, 4 * 4096), "fallocate");
  // Xattrs inline, in the xattr block and in an EA inode.
  must(fs.SetXattr(f->ino, "user.small", std::vector<uint8_t>(8, 's'), 0, root), "xattr small");
  must(fs.SetXattr(f->ino, "user.mid", std::vector<uint8_t>(1500, 'm'), 0, root), "xattr mid");
  must(fs.SetXattr(f->ino, "user.large", std::vector<uint8_t>(5000, 'L'), 0, root), "xattr large");
  must(fs.SetXattr(d1->ino, "trusted.dirattr", std::vector<uint8_t>(8, 'd'), 0, root), "xattr dir");
  must(fs.Symlink(d1->ino, "short", "data.bin", root).status(), "symlink short");
  must(fs.Symlink(d1->ino, "long", std::string(300, 'p'), root).status(), "symlink long");
  must(fs.Mknod(d2->ino, "fifo", S_IFIFO | 0600, 0, root).status(), "mkfifo");
  must(fs.Mknod(d2->ino, "chr", S_IFCHR | 0600, 0x0103, root).status(), "mknod chr");
  // A directory of hard links: a two-level directory tree at little cost
  // in inodes.
  auto big = fs.Mkdir(Filesystem::kRootIno, "big", 0755, root);
  must(big.status(), "mkdir big");
  auto target = fs.Mknod(big->ino, "target", S_IFREG | 0644, 0, root);
  must(target.status(), "create target");
  for (int i = 0; i < 100; i++) {
    must(fs.Link(target->ino, big->ino, "hard-link-with-a-longish-name-" + std::to_string(i), root)
             .status(),
         "link");
  }
  // A collection with vectors, one in a subdirectory, one plain vector
  // outside it.
  auto c = fs.Mkdir(Filesystem::kRootIno, "coll", 0755, root);
  must(c.status(), "mkdir coll");
  CollectionConfig cfg;
  cfg.dim = kDim;
  cfg.index_kind = VEXFS_INDEX_HNSW;
  must(colls.Create(c->ino, cfg, root), "create collection");
  auto sub = fs.Mkdir(c->ino, "sub", 0755, root);
  must(sub.status(), "mkdir sub");
  for (int i = 0; i < 8; i++) {
    auto v = fs.Mknod(i % 3 ? c->ino : sub->ino, "v" + std::to_string(i), S_IFREG | 0644, 0, root);
    must(v.status(), "create vector file");
    std::vector<float> vec(kDim);
    for (uint32_t k = 0; k < kDim; k++) vec[k] = static_cast<float>(i * 3 + k + 1);
    must(fs.SetXattr(v->ino, VEXFS_VECTOR_XATTR, Bytes(vec), 0, root), "set vector");
  }
  must(fs.SetXattr(f->ino, VEXFS_VECTOR_XATTR, Bytes(std::vector<float>{1, 2, 3, 4}), 0, root),
       "plain vector");
}

// The second phase (seeds 1..3): changes after the last clean unmount.
void Change(Filesystem& fs) {
  const Cred root;
  auto d1 = fs.Lookup(Filesystem::kRootIno, "d1", root);
  auto c = fs.Lookup(Filesystem::kRootIno, "coll", root);
  if (!d1.ok() || !c.ok()) return;
  (void)fs.Rename(d1->ino, "data.bin", Filesystem::kRootIno, "moved.bin", 0, root);
  auto n = fs.Mknod(d1->ino, "new", S_IFREG | 0644, 0, root);
  if (n.ok()) (void)fs.Write(n->ino, 100, Bytes(std::string(6000, 'n')));
  (void)fs.SetXattr(d1->ino, "user.later", Bytes("value"), 0, root);
  auto v1 = fs.Lookup(c->ino, "v1", root);
  if (v1.ok()) {
    (void)fs.SetXattr(v1->ino, VEXFS_VECTOR_XATTR, Bytes(std::vector<float>{9, 8, 7, 6}), 0, root);
  }
  (void)fs.Unlink(c->ino, "v2", root);
  (void)fs.Rename(c->ino, "v4", d1->ino, "v4-out", 0, root);  // the vector leaves the collection
  // An unlinked file still open at the power cut: on the orphan list.
  auto open = fs.Lookup(c->ino, "v5", root);
  if (open.ok()) {
    fs.Ref(open->ino);
    (void)fs.Unlink(c->ino, "v5", root);
  }
  (void)fs.Mkdir(c->ino, "later", 0755, root);
  SetAttrRequest r;
  r.valid = SetAttrRequest::kSize;
  r.size = 5000;
  auto frag = fs.Lookup(Filesystem::kRootIno, "frag", root);
  if (frag.ok()) (void)fs.SetAttr(frag->ino, r, root);
}

struct Seed {
  std::vector<uint8_t> image;
  std::vector<uint64_t> meta;  // blocks patches of kind 0 aim at
};

// Metadata blocks of `img`: the superblock and its backup, the journal
// blocks in use, bitmaps, inode table, and every data-area block that
// starts with a metadata magic or belongs to a collection segment.
std::vector<uint64_t> MetaBlocks(const std::vector<uint8_t>& img) {
  vexfs_super_block sb;
  std::memcpy(&sb, img.data(), sizeof(sb));
  const core::Geometry g = core::GeometryOf(sb);
  std::vector<uint64_t> out{0, g.block_count - 1};
  for (uint64_t b = g.journal_start; b < g.journal_start + g.journal_blocks; b++) {
    uint32_t magic;
    std::memcpy(&magic, img.data() + b * VEXFS_BLOCK_SIZE, 4);
    if (le32toh(magic) == VEXFS_JSB_MAGIC || le32toh(magic) == VEXFS_JDESC_MAGIC ||
        le32toh(magic) == VEXFS_JCOMMIT_MAGIC) {
      out.push_back(b);
    }
  }
  for (uint64_t b = g.ibitmap_start; b < g.data_start; b++) out.push_back(b);
  for (uint64_t b = g.data_start; b + 1 < g.block_count; b++) {
    uint32_t magic;
    std::memcpy(&magic, img.data() + b * VEXFS_BLOCK_SIZE, 4);
    magic = le32toh(magic);
    if (magic == VEXFS_EXTENT_MAGIC || magic == VEXFS_DIR_MAGIC || magic == VEXFS_XATTR_MAGIC) {
      out.push_back(b);
    }
  }
  // Segment data: blocks of VSEGMENT inodes' inline extents.
  for (uint64_t ino = 1; ino <= g.inode_count; ino++) {
    vexfs_inode in;
    std::memcpy(&in, img.data() + core::InodeBlock(g, ino) * VEXFS_BLOCK_SIZE + core::InodeOffset(ino),
                sizeof(in));
    if (!(Le32(in.i_flags) & VEXFS_INODE_FL_VSEGMENT)) continue;
    vexfs_extent_header eh;
    std::memcpy(&eh, in.i_data, sizeof(eh));
    if (Le16(eh.eh_depth) != 0) continue;
    for (unsigned i = 0; i < Le16(eh.eh_entries) && i < VEXFS_EXTENT_INLINE; i++) {
      vexfs_extent e;
      std::memcpy(&e, in.i_data + sizeof(eh) + i * sizeof(e), sizeof(e));
      const uint64_t len = Le32(e.ee_len) & VEXFS_EXTENT_LEN_MASK;
      for (uint64_t k = 0; k < len && k < 4; k++) out.push_back(Le64(e.ee_start) + k);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

MountOptions SeedMountOptions() {
  MountOptions mo;
  mo.commit_interval_ms = 0;
  mo.cache_mb = 4;
  return mo;
}

// Seed volume `which`:
//   0: populated and cleanly unmounted;
//   1: then changed and synced, power cut before the checkpoint: committed
//      transactions to replay, an orphan to release;
//   2: as 1, with the power cut halfway through the writes of the final
//      sync (a torn transaction at the end of the journal);
//   3: as 1 with the index blob valid and the collection dropped
//      afterwards (detached segments reaped at mount).
Seed MakeSeed(size_t which) {
  MemoryDevice dev(kBlocks);
  FormatOptions fo;
  fo.inode_count = kInodes;
  fo.journal_blocks = kJournalBlocks;
  fo.seed = 11 + which;
  Check(Format(&dev, fo).ok(), "format");
  {
    auto fs = Filesystem::Mount(std::make_unique<Borrowed>(&dev, true), SeedMountOptions());
    Check(fs.ok(), "seed mount");
    auto colls = Collections::Attach(fs->get());
    Check(colls.ok(), "seed attach");
    Populate(**fs, **colls);
    Check((*colls)->Close().ok(), "seed close");  // persists the index blob
    colls->reset();
    Check((*fs)->Unmount().ok(), "seed unmount");
  }
  // The last step before the power cut: a new file and a sync. Seed 2
  // loses the second half of its writes (a torn transaction at the end of
  // the journal); the first run only counts them.
  int64_t last_step_blocks = 0;
  for (int pass = which == 2 ? 0 : 1; which > 0 && pass < 2; pass++) {
    MemoryDevice copy(dev.image());
    auto owned = std::make_unique<Borrowed>(&copy, true);
    Borrowed* cut = owned.get();
    auto fs = Filesystem::Mount(std::move(owned), SeedMountOptions());
    Check(fs.ok(), "seed remount");
    Change(**fs);
    if (which == 3) {
      auto c = (*fs)->Lookup(Filesystem::kRootIno, "coll", Cred());
      if (c.ok()) (void)(*fs)->DropCollection(c->ino, Cred());
    }
    (void)(*fs)->Sync();
    const int64_t before = cut->written();
    if (pass == 1 && which == 2) cut->CutPower(last_step_blocks / 2);
    auto n = (*fs)->Mknod(Filesystem::kRootIno, "last", S_IFREG | 0644, 0, Cred());
    if (n.ok()) (void)(*fs)->Write(n->ino, 0, Bytes(std::string(9000, 'z')));
    (void)(*fs)->Sync();
    last_step_blocks = cut->written() - before;
    cut->CutPower(0);  // nothing after this reaches the image
    if (pass == 1) dev.image() = copy.image();
    fs->reset();  // its unmount writes nothing now
  }
  // Each seed must be what it claims: consistent, and with the journal
  // and orphans the fuzzer is meant to reach.
  MemoryDevice check(dev.image());
  auto r = CheckVolume(&check, CheckOptions{false, true});
  CheckClean(r, "seed volume");
  if (getenv("IMAGE_FUZZ_VERBOSE")) {
    fprintf(stderr, "seed %zu: %llu transactions pending, %llu orphans, %llu inodes, %llu blocks used\n",
            which, (unsigned long long)r->journal_pending, (unsigned long long)r->orphans,
            (unsigned long long)r->inodes_used, (unsigned long long)r->blocks_used);
  }
  Check(which == 0 || r->journal_pending > 0, "seed has transactions to replay");
  Seed s;
  s.image = dev.image();
  s.meta = MetaBlocks(s.image);
  return s;
}

const std::vector<Seed>& Seeds() {
  static const std::vector<Seed> seeds = [] {
    std::vector<Seed> v;
    for (size_t i = 0; i < kSeedVolumes; i++) v.push_back(MakeSeed(i));
    return v;
  }();
  return seeds;
}


// ---- Patches ----------------------------------------------------------------

struct Patched {
  std::vector<uint8_t> image;
  // Re-seal requests: block -> byte offsets written there.
  std::map<uint64_t, std::set<uint32_t>> reseal;
  // Blocks to journal in a new transaction: target, content, and whether
  // to re-seal the content as its home block (offsets written).
  struct Append {
    uint64_t target;
    std::vector<uint8_t> block;
    std::set<uint32_t> reseal;
  };
  std::vector<Append> appends;
};

// Applies the patch list of `data` to a copy of `seed`'s image in `p`
// (whose buffer is reused from input to input).
void ApplyPatches(const Seed& seed, const uint8_t* data, size_t size, Patched* out) {
  Patched& p = *out;
  p.image = seed.image;
  p.reseal.clear();
  p.appends.clear();
  vexfs_super_block sb;
  std::memcpy(&sb, seed.image.data(), sizeof(sb));
  const core::Geometry g = core::GeometryOf(sb);
  const uint64_t nblocks = p.image.size() / VEXFS_BLOCK_SIZE;
  size_t i = 0;
  while (i + 4 <= size) {
    const uint8_t where = data[i];
    const uint32_t off = data[i + 1] | (uint32_t{data[i + 2]} << 8);
    const uint8_t ctl = data[i + 3];
    i += 4;
    const size_t len = std::min<size_t>(1 + ctl % 32, size - i);
    uint64_t block = 0;
    uint32_t at = 0;
    switch (ctl / 32 % 4) {
      case 0:
        block = seed.meta[where % seed.meta.size()];
        at = off % VEXFS_BLOCK_SIZE;
        break;
      case 1: {
        const uint64_t ino = 1 + where % g.inode_count;
        block = core::InodeBlock(g, ino);
        at = core::InodeOffset(ino) + off % VEXFS_INODE_SIZE;
        break;
      }
      case 2:
        if (off & 0x8000) {  // a new transaction (see the header)
          const uint64_t target = seed.meta[where % seed.meta.size()];
          at = off % VEXFS_BLOCK_SIZE;
          Patched::Append* a = nullptr;
          for (auto& x : p.appends) {
            if (x.target == target) a = &x;
          }
          if (a == nullptr) {
            if (p.appends.size() >= 16) {
              i += len;
              continue;
            }
            p.appends.push_back({target, {}, {}});
            a = &p.appends.back();
            const uint8_t* home = p.image.data() + target * VEXFS_BLOCK_SIZE;
            a->block.assign(home, home + VEXFS_BLOCK_SIZE);
          }
          const size_t n = std::min<size_t>(len, VEXFS_BLOCK_SIZE - at);
          std::memcpy(a->block.data() + at, data + i, n);
          if (ctl & 128) {
            for (size_t k = 0; k < n; k++) a->reseal.insert(static_cast<uint32_t>(at + k));
          }
          i += len;
          continue;
        }
        block = g.journal_start + where % g.journal_blocks;
        at = off % VEXFS_BLOCK_SIZE;
        break;
      default:
        block = (uint64_t{where} * 256 + off / 16) % nblocks;
        at = off % VEXFS_BLOCK_SIZE;
        break;
    }
    const size_t n = std::min<size_t>(len, VEXFS_BLOCK_SIZE - at);
    std::memcpy(p.image.data() + block * VEXFS_BLOCK_SIZE + at, data + i, n);
    if (ctl & 128) {
      for (size_t k = 0; k < n; k++) p.reseal[block].insert(static_cast<uint32_t>(at + k));
    }
    i += len;
  }
}

bool HasMetaMagic(const uint8_t* block) {
  uint32_t magic;
  std::memcpy(&magic, block, 4);
  magic = le32toh(magic);
  return magic == VEXFS_BITMAP_MAGIC || magic == VEXFS_EXTENT_MAGIC || magic == VEXFS_DIR_MAGIC ||
         magic == VEXFS_XATTR_MAGIC || magic == VEXFS_JSB_MAGIC || magic == VEXFS_JDESC_MAGIC ||
         magic == VEXFS_JCOMMIT_MAGIC;
}

// Re-seals block `home`'s content at `block` (a home block, or a journal
// image of it) after bytes at `offsets` changed.
void SealAs(const core::Geometry& g, uint64_t home, uint8_t* block, const std::set<uint32_t>& offsets) {
  if (home == 0 || home == g.block_count - 1) {
    vexfs_super_block s;
    std::memcpy(&s, block, sizeof(s));
    core::SealSuper(&s);
    std::memcpy(block, &s, sizeof(s));
  } else if (home >= g.itable_start && home < g.itable_start + g.itable_blocks) {
    std::set<uint32_t> slots;
    for (uint32_t o : offsets) slots.insert(o / VEXFS_INODE_SIZE);
    for (uint32_t slot : slots) {
      vexfs_inode in;
      std::memcpy(&in, block + slot * VEXFS_INODE_SIZE, sizeof(in));
      core::SealInode(&in);
      std::memcpy(block + slot * VEXFS_INODE_SIZE, &in, sizeof(in));
    }
  } else if (HasMetaMagic(block)) {
    core::SealBlock(block);
  }
}

// Makes the journal's transactions check out again after patches inside
// it: images re-sealed as their home block, descriptors and commits
// re-sealed, each commit's hash recomputed over its images (the format
// header's chain). Walks the log like the replay does, bounded by its size.
void ResealJournal(const core::Geometry& g, const vexfs_super_block& sb, Patched* p) {
  uint8_t* base = p->image.data() + g.journal_start * VEXFS_BLOCK_SIZE;
  auto at = [&](uint64_t rel) { return base + rel * VEXFS_BLOCK_SIZE; };
  auto offsets = [&](uint64_t rel) -> const std::set<uint32_t>* {
    auto it = p->reseal.find(g.journal_start + rel);
    return it == p->reseal.end() ? nullptr : &it->second;
  };
  if (offsets(0) && HasMetaMagic(at(0))) core::SealBlock(at(0));
  vexfs_journal_super js;
  std::memcpy(&js, at(0), sizeof(js));
  uint64_t pos = std::max<uint64_t>(Le64(js.js_start), 1);
  uint64_t seq = Le64(js.js_sequence);
  uint64_t hash = seq;
  bool any = false;
  while (pos < g.journal_blocks) {
    uint32_t magic;
    std::memcpy(&magic, at(pos), 4);
    magic = le32toh(magic);
    if (magic == VEXFS_JDESC_MAGIC) {
      if (!any) hash = seq;
      any = true;
      vexfs_journal_desc d;
      std::memcpy(&d, at(pos), sizeof(d));
      if (offsets(pos)) core::SealBlock(at(pos));
      const uint32_t count = std::min<uint32_t>(Le32(d.jd_count), VEXFS_JDESC_MAX);
      pos++;
      for (uint32_t k = 0; k < count && pos < g.journal_blocks; k++, pos++) {
        const uint64_t target = Le64(d.jd_targets[k]);
        if (const auto* o = offsets(pos)) SealAs(g, target, at(pos), *o);
        hash = core::ChainImage(sb.s_uuid, hash, target, at(pos));
      }
    } else if (magic == VEXFS_JCOMMIT_MAGIC && any) {
      vexfs_journal_commit c;
      std::memcpy(&c, at(pos), sizeof(c));
      c.jc_data_hash = ToLe64(hash);
      std::memcpy(at(pos), &c, sizeof(c));
      core::SealBlock(at(pos));
      seq = Le64(c.jc_sequence) + 1;
      any = false;
      pos++;
    } else {
      break;
    }
  }
}

// Journals p->appends as one new transaction after the last one the log
// holds (as Journal::Scan reads it), when it fits, with the library's own
// writer.
void AppendTransaction(Patched* p) {
  if (p->appends.empty()) return;
  vexfs_super_block sb;
  std::memcpy(&sb, p->image.data(), sizeof(sb));
  const core::Geometry g = core::GeometryOf(sb);
  const uint64_t nblocks = p->image.size() / VEXFS_BLOCK_SIZE;
  if (g.journal_start == 0 || g.journal_start >= nblocks || g.journal_blocks > nblocks - g.journal_start) {
    return;  // a patched superblock moved the journal off the volume
  }
  std::vector<std::pair<uint64_t, const uint8_t*>> images;
  for (Patched::Append& a : p->appends) {
    if (!a.reseal.empty()) SealAs(g, a.target, a.block.data(), a.reseal);
    images.emplace_back(a.target, a.block.data());
  }
  MemoryDevice dev(std::move(p->image));
  {
    core::Journal j(&dev, g.journal_start, g.journal_blocks, sb.s_uuid, g.block_count);
    auto scan = j.Scan();
    // No usable log, or no room: the image stays as it is.
    if (scan.ok() && j.ResumeAfter(*scan).ok() && j.FreeBlocks() >= core::Journal::BlocksNeeded(images.size())) {
      (void)j.Commit(images);
    }
  }
  p->image = std::move(dev.image());
}

void Reseal(Patched* p) {
  if (p->reseal.empty()) return;
  vexfs_super_block sb;
  std::memcpy(&sb, p->image.data(), sizeof(sb));
  if (p->reseal.count(0)) {
    core::SealSuper(&sb);
    std::memcpy(p->image.data(), &sb, sizeof(sb));
  }
  // Geometry as the (patched) superblock says, where it is still sane.
  const core::Geometry g = core::GeometryOf(sb);
  const uint64_t nblocks = p->image.size() / VEXFS_BLOCK_SIZE;
  auto inside = [&](uint64_t start, uint64_t len) { return start <= nblocks && len <= nblocks - start; };
  const bool sane = g.block_count == nblocks && inside(g.journal_start, g.journal_blocks) &&
                    inside(g.itable_start, g.itable_blocks) && g.journal_start > 0;
  bool journal = false;
  for (const auto& [block, offs] : p->reseal) {
    if (block == 0) continue;
    if (sane && block >= g.journal_start && block < g.journal_start + g.journal_blocks) {
      journal = true;
      continue;
    }
    core::Geometry home = g;
    if (!sane) home = core::Geometry{.block_count = nblocks};
    SealAs(home, block, p->image.data() + block * VEXFS_BLOCK_SIZE, offs);
  }
  if (journal) ResealJournal(g, sb, p);
}

// ---- The exercise --------------------------------------------------------------

struct Found {
  std::vector<uint64_t> dirs, files, links, colls;
};

// Reads everything reachable from the root (bounded: at most 200 inodes
// and 600 entries per directory; a cycle in the tree is not followed).
Found Walk(Filesystem& fs) {
  const Cred root;
  Found f;
  std::set<uint64_t> seen{Filesystem::kRootIno};
  std::vector<uint64_t> queue{Filesystem::kRootIno};
  std::vector<uint8_t> buf(5 * VEXFS_BLOCK_SIZE);
  (void)fs.StatFs();
  for (size_t qi = 0; qi < queue.size() && seen.size() < 200; qi++) {
    const uint64_t dir = queue[qi];
    f.dirs.push_back(dir);
    std::vector<DirEntry> entries;
    (void)fs.ReadDir(dir, 0, [&](const DirEntry& e) {
      entries.push_back(e);
      return entries.size() < 600;
    });
    if (entries.size() > 3) {  // resume in the middle, as a second getdents would
      size_t again = 0;
      (void)fs.ReadDir(dir, entries[entries.size() / 2].cookie, [&](const DirEntry&) {
        return ++again < 600;
      });
    }
    if (auto c = fs.GetCollection(dir); c.ok()) f.colls.push_back(dir);
    (void)fs.CollectionOf(dir);
    for (const DirEntry& e : entries) {
      if (e.name == "." || e.name == "..") continue;
      auto a = fs.Lookup(dir, e.name, root);
      if (!a.ok()) continue;
      (void)fs.GetAttr(e.ino);
      if (!seen.insert(a->ino).second || seen.size() >= 200) continue;
      (void)fs.Access(a->ino, R_OK | X_OK, Cred(1000, 1000));
      auto names = fs.ListXattr(a->ino, root);
      if (names.ok()) {
        for (size_t k = 0; k < names->size() && k < 16; k++) (void)fs.GetXattr(a->ino, (*names)[k], root);
      }
      (void)fs.GetXattr(a->ino, VEXFS_VECTOR_XATTR, root);
      if (S_ISDIR(a->mode)) {
        queue.push_back(a->ino);
      } else if (S_ISLNK(a->mode)) {
        f.links.push_back(a->ino);
        (void)fs.Readlink(a->ino);
      } else if (S_ISREG(a->mode)) {
        f.files.push_back(a->ino);
        (void)fs.CheckOpen(a->ino, O_RDONLY, root);
        (void)fs.Read(a->ino, 0, buf);
        if (a->size > buf.size()) (void)fs.Read(a->ino, a->size - buf.size() / 2, buf);
        (void)fs.SeekData(a->ino, 0, SEEK_DATA);
        (void)fs.SeekData(a->ino, 0, SEEK_HOLE);
        (void)fs.CollectionOf(a->ino);
      }
    }
  }
  if (auto l = fs.ListCollections(); l.ok()) {
    for (size_t k = 0; k < l->size() && k < 8; k++) {
      (void)fs.ScanVectors((*l)[k], [](uint64_t, std::span<const float>) {});
      (void)fs.LoadIndexBlob((*l)[k]);
    }
  }
  return f;
}

void Search(Collections& colls, const Found& f) {
  const Cred root;
  for (size_t k = 0; k < f.colls.size() && k < 4; k++) {
    auto info = colls.Info(f.colls[k]);
    if (!info.ok() || info->config.dim == 0 || info->config.dim > 4096) continue;
    SearchRequest req;
    req.dim = info->config.dim;
    req.queries.assign(req.dim, 0.5f);
    req.queries[0] = 1;
    req.k = 5;
    (void)colls.Search(f.colls[k], req, root);
    req.filter = "size > 0";
    (void)colls.Search(f.colls[k], req, root);
  }
}

void Mutate(Filesystem& fs, const Found& f) {
  const Cred root;
  const std::string payload(6000, 'w');
  auto n = fs.Mknod(Filesystem::kRootIno, "fz-new", S_IFREG | 0644, 0, root);
  if (n.ok()) {
    (void)fs.Write(n->ino, 4000, Bytes(payload));
    (void)fs.SetXattr(n->ino, "user.fz", Bytes(payload.substr(0, 100)), 0, root);
  }
  (void)fs.Mkdir(Filesystem::kRootIno, "fz-dir", 0755, root);
  (void)fs.Symlink(Filesystem::kRootIno, "fz-link", "fz-new", root);
  if (f.dirs.size() > 1) {
    (void)fs.Rename(Filesystem::kRootIno, "fz-new", f.dirs[1], "fz-moved", 0, root);
    (void)fs.Mknod(f.dirs.back(), "fz-in-last", S_IFREG | 0600, 0, root);
  }
  for (size_t k = 0; k < f.files.size() && k < 3; k++) {
    const uint64_t ino = f.files[k];
    switch (k) {
      case 0:
        (void)fs.Write(ino, 0, Bytes(payload.substr(0, 4096)));  // an overwrite in place
        (void)fs.Write(ino, 10, Bytes("partial"));
        break;
      case 1: {
        SetAttrRequest r;
        r.valid = SetAttrRequest::kSize;
        r.size = 1000;
        (void)fs.SetAttr(ino, r, root);
        (void)fs.Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
        break;
      }
      default:
        (void)fs.SetXattr(ino, "user.fz-big", Bytes(std::string(2500, 'x')), 0, root);
        (void)fs.RemoveXattr(ino, "user.small", root);
        break;
    }
  }
  // A vector for a file in each collection (its dimension), and a link.
  for (size_t k = 0; k < f.colls.size() && k < 2; k++) {
    auto cfg = fs.GetCollection(f.colls[k]);
    if (!cfg.ok() || cfg->dim == 0 || cfg->dim > 4096) continue;
    auto v = fs.Mknod(f.colls[k], "fz-vec", S_IFREG | 0644, 0, root);
    if (!v.ok()) continue;
    std::vector<float> vec(cfg->dim, 0.25f);
    (void)fs.SetXattr(v->ino, VEXFS_VECTOR_XATTR, Bytes(vec), 0, root);
    (void)fs.Link(v->ino, Filesystem::kRootIno, "fz-vec-link", root);
  }
  if (!f.files.empty()) {
    // Unlink the first file by every name the root has for it, if any.
    std::vector<std::string> names;
    (void)fs.ReadDir(Filesystem::kRootIno, 0, [&](const DirEntry& e) {
      if (e.ino == f.files.back() && e.name != "." && e.name != "..") names.push_back(e.name);
      return names.size() < 4;
    });
    for (const auto& nm : names) (void)fs.Unlink(Filesystem::kRootIno, nm, root);
  }
  if (f.dirs.size() > 2) {
    (void)fs.Rename(Filesystem::kRootIno, "fz-dir", f.dirs[2], "fz-dir", 0, root);
  }
  (void)fs.Sync();
}

// Mounts `dev` (read-write unless `ro`), walks it, with `mutate` changes
// it. Returns the mount's status.
Status Use(BlockDevice* dev, bool ro, bool mutate) {
  MountOptions mo;
  mo.commit_interval_ms = 0;
  mo.cache_mb = 1;
  mo.read_only = ro;
  MountInfo info;
  auto fs = Filesystem::Mount(std::make_unique<Borrowed>(dev, !ro), mo, &info);
  if (getenv("IMAGE_FUZZ_VERBOSE")) {
    fprintf(stderr, "image_fuzz: %s mount: %s, %llu transactions replayed\n", ro ? "read-only" : "read-write",
            fs.ok() ? "ok" : fs.status().ToString().c_str(), (unsigned long long)info.replayed_transactions);
  }
  if (!fs.ok()) return fs.status();
  const Found f = Walk(**fs);
  if (mutate) {
    CollectionsOptions co;
    co.indexer_threads = 1;
    auto colls = Collections::Attach(fs->get(), co);
    if (colls.ok()) {
      Search(**colls, f);
      Mutate(**fs, f);
      Search(**colls, f);
      (void)(*colls)->Close();
    } else {
      Mutate(**fs, f);
    }
    (void)Walk(**fs);
  }
  (void)(*fs)->Unmount();
  return Status::Ok();
}

}  // namespace

// The devices of one input, kept from input to input: a fresh 1 MiB
// buffer per device and step cost more than the checks (page faults, and
// the sanitizer's allocator).
struct Devices {
  Patched patched;
  MemoryDevice before{kBlocks}, rw{kBlocks}, fix{kBlocks};
};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  const std::vector<Seed>& seeds = Seeds();
  static Devices* devs = new Devices;
  Patched& p = devs->patched;
  ApplyPatches(seeds[data[0] % seeds.size()], data + 1, size - 1, &p);
  Reseal(&p);
  AppendTransaction(&p);
  if (const char* path = getenv("IMAGE_FUZZ_DUMP")) {  // the volume this input makes
    if (FILE* f = fopen(path, "wb")) {
      fwrite(p.image.data(), 1, p.image.size(), f);
      fclose(f);
    }
  }

  MemoryDevice& dev = devs->before;
  dev.image() = p.image;
  const Result<CheckReport> before = CheckVolume(&dev, CheckOptions{false, true});
  const bool clean = before.ok() && before->problems.empty();

  (void)Use(&dev, /*ro=*/true, false);
  {
    MemoryDevice& rw = devs->rw;
    rw.image() = p.image;
    const Status mounted = Use(&rw, false, true);
    // (EROFS: read-only-compatible features this version lacks, which
    // fsck has no quarrel with.)
    if (clean && !mounted.ok() && mounted.err() != EROFS) {
      fprintf(stderr, "image_fuzz: fsck found the volume clean, mount failed: %s\n",
              mounted.ToString().c_str());
      abort();
    }
    const Result<CheckReport> after = CheckVolume(&rw, CheckOptions{false, true});
    if (clean) CheckClean(after, "clean volume not clean after a mount and changes");
  }
  // A clean volume has nothing to repair (and has just been mounted).
  if (!clean) {
    MemoryDevice& fix = devs->fix;
    fix.image() = p.image;
    const Result<CheckReport> repaired = CheckVolume(&fix, CheckOptions{true, true});
    // (A repair that leaves errors it says it cannot fix, e.g. strays when
    // no lost+found can be made, promises nothing about the next run.)
    if (repaired.ok() && repaired->errors_left() == 0) {
      const Result<CheckReport> again = CheckVolume(&fix, CheckOptions{false, true});
      if (!again.ok() || !again->problems.empty()) {
        fprintf(stderr, "repair pass:\n%s", Dump(*repaired).c_str());
      }
      CheckClean(again, "not clean after repair");
      const Status mounted = Use(&fix, false, false);
      if (!mounted.ok()) {
        fprintf(stderr, "image_fuzz: repaired volume does not mount: %s\n", mounted.ToString().c_str());
        abort();
      }
    }
  }
  return 0;
}

std::vector<std::vector<uint8_t>> VexfsFuzzSeeds() {
  std::vector<std::vector<uint8_t>> out;
  for (uint8_t i = 0; i < kSeedVolumes; i++) {
    out.push_back({i});
    // One re-sealed patch of each kind, as examples for the mutator: the
    // superblock's free-block hint, root's link count, the journal's first
    // descriptor's first target's low byte, a raw data byte.
    out.push_back({i, 0, 48, 0, 128, 7});
    out.push_back({i, 0, 12, 0, 32 | 128, 9});
    out.push_back({i, 1, 48, 0, 64 | 128, 1});
    out.push_back({i, 200, 0, 0, 96, 0xff});
  }
  return out;
}
