// CheckVolume driver: superblock, journal, bitmaps, report. See
// fsck_internal.h for the order of the passes.
#include <sys/stat.h>

#include <bit>
#include <cstring>

#include "core/fsck_internal.h"
#include "core/journal.h"

namespace vexfs {

size_t CheckReport::errors_fixed() const {
  size_t n = 0;
  for (const auto& p : problems) n += p.fixed;
  return n;
}
size_t CheckReport::errors_left() const { return problems.size() - errors_fixed(); }
bool CheckReport::Has(const std::string& code) const {
  for (const auto& p : problems) {
    if (p.code == code) return true;
  }
  return false;
}

int FsckExitCode(const Result<CheckReport>& result) {
  if (!result.ok()) return 8;
  if (result->errors_left() > 0) return 4;
  if (result->errors_fixed() > 0 || result->journal_replayed > 0) return 1;
  return 0;
}

Result<CheckReport> CheckVolume(BlockDevice* dev, const CheckOptions& options) {
  if (dev == nullptr) return Status::InvalidArgument("no device");
  if (options.repair && dev->read_only()) {
    return Status::Error(EROFS, "cannot repair: the device is open read-only");
  }
  offline::Checker c(dev, options);
  return c.Run();
}

namespace offline {
using namespace vexfs::core;  // NOLINT: format helpers
namespace {
std::string Num(uint64_t v) { return std::to_string(v); }
}  // namespace

void Checker::Report(const std::string& code, const std::string& msg, bool fixable) {
  // A hostile image can trigger one problem per record; keep the report
  // bounded but still count what was left out.
  constexpr size_t kMaxProblems = 1000;
  Problem p{code, msg, fixable && writable_};
  if (rep_.problems.size() < kMaxProblems) {
    rep_.problems.push_back(std::move(p));
  } else if (rep_.problems.size() == kMaxProblems) {
    rep_.problems.push_back({"fsck.too_many", "further problems not listed", p.fixed});
  } else if (!p.fixed) {
    rep_.problems.back().fixed = false;  // the summary stays honest for the exit code
  }
}

void Checker::ReportIssues(const std::vector<Issue>& issues, bool fixable) {
  for (const auto& i : issues) Report(i.code, i.message, fixable);
}

Status Checker::OpenSuper() {
  auto primary = VolumeReader::Open(dev_);
  if (primary.ok()) {
    r_ = std::move(primary).value();
    return Status::Ok();
  }
  // Fall back to the backup in the device's last block.
  const uint64_t nblocks = dev_->block_count();
  if (nblocks >= 2) {
    std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
    VEXFS_RETURN_IF_ERROR(dev_->Read(nblocks - 1, 1, buf.data()));
    vexfs_super_block sb;
    std::memcpy(&sb, buf.data(), sizeof(sb));
    if (ValidateSuper(sb, nblocks, nullptr).ok() && Le64(sb.s_block_count) == nblocks) {
      Report("super.bad_primary",
             "primary superblock: " + primary.status().message() + "; using the backup in block " +
                 Num(nblocks - 1),
             true);
      if (writable_) {
        VEXFS_RETURN_IF_ERROR(dev_->Write(0, 1, buf.data()));
        VEXFS_RETURN_IF_ERROR(dev_->Flush());
        VEXFS_ASSIGN_OR_RETURN(r_, VolumeReader::Open(dev_));
      } else {
        r_ = VolumeReader::FromSuper(dev_, sb);
      }
      return Status::Ok();
    }
  }
  const Status& s = primary.status();
  return Status::Error(s.err(), "no valid VexFS superblock: " + s.message());
}

Status Checker::HandleJournal() {
  const auto& sb = r_->super();
  const Geometry& g = r_->geometry();
  Journal j(dev_, g.journal_start, g.journal_blocks, sb.s_uuid, g.block_count);
  auto scan = j.Scan();
  if (!scan.ok()) {
    if (!scan.status().IsCorruption()) return scan.status();
    Report("journal.bad_super", scan.status().message(), true);
    if (writable_) VEXFS_RETURN_IF_ERROR(j.Format(1));
    return Status::Ok();
  }
  if (scan->txns.empty()) return Status::Ok();
  if (writable_) {
    uint64_t n = 0;
    VEXFS_RETURN_IF_ERROR(j.Recover(&n));
    rep_.journal_replayed = n;
  } else {
    rep_.journal_pending = scan->txns.size();
    r_->SetOverlay(std::move(scan->images));
  }
  // The journal may have carried block 0.
  if (Status s = r_->Reload(); !s.ok()) {
    return Status::Error(s.err(), "superblock invalid after journal replay: " + s.message());
  }
  return Status::Ok();
}

Status Checker::CheckBackupSuper() {
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  VEXFS_RETURN_IF_ERROR(r_->ReadBlock(g_.block_count - 1, buf.data()));
  vexfs_super_block b;
  std::memcpy(&b, buf.data(), sizeof(b));
  const auto& sb = r_->super();
  bool ok = ValidateSuper(b, dev_->block_count(), nullptr).ok();
  if (ok) {
    const Geometry bg = GeometryOf(b);
    ok = std::memcmp(&bg, &g_, sizeof(bg)) == 0 && std::memcmp(b.s_uuid, sb.s_uuid, 16) == 0 &&
         std::memcmp(b.s_hash_seed, sb.s_hash_seed, 16) == 0;
  }
  if (!ok) {
    Report("super.bad_backup",
           "backup superblock in block " + Num(g_.block_count - 1) +
               " is missing or differs from the primary",
           true);
    super_dirty_ = true;
  }
  return Status::Ok();
}

Status Checker::LoadBitmaps() {
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  auto load = [&](uint64_t start, uint64_t nblocks, uint64_t items, std::vector<uint64_t>* bits,
                  bool* damaged, const char* what) -> Status {
    bits->assign((nblocks * VEXFS_BITMAP_BITS + 63) / 64, 0);
    for (uint64_t i = 0; i < nblocks; i++) {
      VEXFS_RETURN_IF_ERROR(r_->ReadBlock(start + i, buf.data()));
      const auto& bm = *reinterpret_cast<const vexfs_bitmap_block*>(buf.data());
      Status s = VerifyBlock(buf.data(), VEXFS_BITMAP_MAGIC, start + i);
      if (s.ok() && (Le64(bm.bm_hdr.bh_owner) != 0 || Le32(bm.bm_index) != i)) {
        s = Status::Corruption("block " + Num(start + i) + ": bad owner or index");
      }
      if (!s.ok()) {
        Report(std::string(what) + ".bad_block", std::string(what) + ": " + s.message(), true);
        *damaged = true;
        continue;  // its bits stay zero; the block is rewritten on repair
      }
      // VEXFS_BITMAP_BITS is a multiple of 64, so block i fills whole words.
      std::memcpy(bits->data() + i * (VEXFS_BITMAP_BITS / 64), bm.bm_bits, VEXFS_BITMAP_BYTES);
    }
    (void)items;
    return Status::Ok();
  };
  VEXFS_RETURN_IF_ERROR(load(g_.ibitmap_start, g_.ibitmap_blocks, g_.inode_count, &disk_ibm_,
                             &ibm_damaged_, "ibitmap"));
  VEXFS_RETURN_IF_ERROR(load(g_.bbitmap_start, g_.bbitmap_blocks, g_.block_count, &disk_bbm_,
                             &bbm_damaged_, "bbitmap"));
  return Status::Ok();
}

namespace {
bool Bit(const std::vector<uint64_t>& v, uint64_t i) { return (v[i >> 6] >> (i & 63)) & 1; }

}  // namespace

Status Checker::CheckBitmaps() {
  // Expected inode bitmap.
  const uint64_t ibits = g_.ibitmap_blocks * VEXFS_BITMAP_BITS;
  const uint64_t bbits = g_.bbitmap_blocks * VEXFS_BITMAP_BITS;
  std::vector<uint64_t> want_i((ibits + 63) / 64, 0), want_b((bbits + 63) / 64, 0);
  auto set = [](std::vector<uint64_t>& v, uint64_t i) { v[i >> 6] |= 1ull << (i & 63); };
  auto set_range = [&](std::vector<uint64_t>& v, uint64_t i, uint64_t end) {  // whole words
    for (; i < end && i % 64 != 0; i++) set(v, i);
    for (; i + 64 <= end; i += 64) v[i >> 6] = ~0ull;
    for (; i < end; i++) set(v, i);
  };
  for (uint64_t n = 1; n < VEXFS_FIRST_INO && n <= g_.inode_count; n++) set(want_i, n - 1);
  for (const auto& [ino, in] : inodes_) {
    if (!in.clear) set(want_i, ino - 1);
  }
  set_range(want_i, g_.inode_count, ibits);
  for (uint64_t w = 0; w < used_.size(); w++) want_b[w] = used_[w];
  set_range(want_b, g_.block_count, bbits);

  auto diff = [&](const std::vector<uint64_t>& want, const std::vector<uint64_t>& have,
                  uint64_t nbits, uint64_t limit, const char* what, uint64_t base) {
    uint64_t missing = 0, extra = 0;
    std::string fm, fe;
    for (uint64_t i = 0; i < nbits; i++) {
      if (i % 64 == 0 && want[i / 64] == have[i / 64]) {  // a word at a time where they agree
        i += 63;
        continue;
      }
      const bool w = Bit(want, i), h = Bit(have, i);
      if (w == h) continue;
      // Only the first eight of each kind are named: a damaged bitmap may
      // differ in every one of its 32,512 bits.
      uint64_t& count = w ? missing : extra;
      std::string& names = w ? fm : fe;
      if (count++ < 8) {
        names += (names.empty() ? "" : ", ") + Num(i + base) + (i >= limit ? " (past the end)" : "");
      }
    }
    return std::make_pair(std::make_pair(missing, fm), std::make_pair(extra, fe));
  };

  auto [ib_missing, ib_extra] = diff(want_i, disk_ibm_, ibits, g_.inode_count, "ibitmap", 1);
  auto [bb_missing, bb_extra] = diff(want_b, disk_bbm_, bbits, g_.block_count, "bbitmap", 0);
  if (!ibm_damaged_) {
    if (ib_missing.first) {
      Report("ibitmap.used_but_free",
             Num(ib_missing.first) + " used inode(s) marked free: " + ib_missing.second, true);
    }
    if (ib_extra.first) {
      Report("ibitmap.leak",
             Num(ib_extra.first) + " unused inode(s) marked in use: " + ib_extra.second, true);
    }
  }
  if (!bbm_damaged_) {
    if (bb_missing.first) {
      Report("block.used_but_free",
             Num(bb_missing.first) + " used block(s) marked free: " + bb_missing.second, true);
    }
    if (bb_extra.first) {
      Report("block.leak",
             Num(bb_extra.first) + " unused block(s) marked in use: " + bb_extra.second, true);
    }
  }
  rep_.blocks_used = 0;
  for (uint64_t w : used_) rep_.blocks_used += std::popcount(w);
  rep_.inodes_used = 0;
  for (uint64_t i = 0; i < g_.inode_count; i++) rep_.inodes_used += Bit(want_i, i);

  if (!writable_) return Status::Ok();
  auto write = [&](uint64_t start, uint64_t nblocks, const std::vector<uint64_t>& want,
                   const std::vector<uint64_t>& have, bool damaged) -> Status {
    std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
    const uint64_t words = VEXFS_BITMAP_BITS / 64;
    for (uint64_t i = 0; i < nblocks; i++) {
      if (!damaged &&
          std::memcmp(want.data() + i * words, have.data() + i * words, VEXFS_BITMAP_BYTES) == 0) {
        continue;
      }
      InitBlockHeader(buf.data(), VEXFS_BITMAP_MAGIC, start + i, 0);
      auto& bm = *reinterpret_cast<vexfs_bitmap_block*>(buf.data());
      bm.bm_index = ToLe32(static_cast<uint32_t>(i));
      std::memcpy(bm.bm_bits, want.data() + i * words, VEXFS_BITMAP_BYTES);
      SealBlock(buf.data());
      VEXFS_RETURN_IF_ERROR(dev_->Write(start + i, 1, buf.data()));
    }
    return Status::Ok();
  };
  VEXFS_RETURN_IF_ERROR(
      write(g_.ibitmap_start, g_.ibitmap_blocks, want_i, disk_ibm_, ibm_damaged_));
  VEXFS_RETURN_IF_ERROR(
      write(g_.bbitmap_start, g_.bbitmap_blocks, want_b, disk_bbm_, bbm_damaged_));
  return Status::Ok();
}

Status Checker::FinishSuper() {
  const auto& sb = r_->super();
  const uint64_t free_blocks = g_.block_count - rep_.blocks_used;
  const uint64_t free_inodes = g_.inode_count - rep_.inodes_used;
  const uint32_t state = Le32(sb.s_state);
  bool counts_off = Le64(sb.s_free_blocks) != free_blocks || Le64(sb.s_free_inodes) != free_inodes;
  if (counts_off && (state & VEXFS_STATE_CLEAN)) {
    Report("super.free_counts",
           "free counts " + Num(Le64(sb.s_free_blocks)) + "/" + Num(Le64(sb.s_free_inodes)) +
               " (blocks/inodes), actual " + Num(free_blocks) + "/" + Num(free_inodes),
           true);
  }
  if (state & VEXFS_STATE_ERRORS)
    Report("super.errors_flag", "the volume is marked as having errors", true);
  if (Le64(sb.s_orphan_head) != orphan_head_) super_dirty_ = true;
  if (Le64(sb.s_vector_root) != vector_root_) super_dirty_ = true;
  if (!writable_) return Status::Ok();
  const bool any_fix = rep_.errors_fixed() > 0 || rep_.journal_replayed > 0;
  if (!super_dirty_ && !any_fix && !counts_off && (state & VEXFS_STATE_CLEAN)) return Status::Ok();
  std::vector<uint8_t> blk(VEXFS_BLOCK_SIZE);
  VEXFS_RETURN_IF_ERROR(dev_->Read(0, 1, blk.data()));
  vexfs_super_block s;
  std::memcpy(&s, blk.data(), sizeof(s));
  s.s_free_blocks = ToLe64(free_blocks);
  s.s_free_inodes = ToLe64(free_inodes);
  s.s_orphan_head = ToLe64(orphan_head_);
  s.s_vector_root = ToLe64(vector_root_);
  if (vec_feature_fix_) {
    s.s_feature_incompat = ToLe32(Le32(s.s_feature_incompat) | VEXFS_FEATURE_INCOMPAT_VECTORS);
  }
  uint32_t ns = state;
  if (rep_.errors_left() == 0) ns = (ns | VEXFS_STATE_CLEAN) & ~VEXFS_STATE_ERRORS;
  s.s_state = ToLe32(ns);
  SealSuper(&s);
  std::memset(blk.data(), 0, VEXFS_SUPER_SIZE);
  std::memcpy(blk.data(), &s, sizeof(s));
  VEXFS_RETURN_IF_ERROR(dev_->Write(0, 1, blk.data()));
  VEXFS_RETURN_IF_ERROR(dev_->Write(g_.block_count - 1, 1, blk.data()));
  return Status::Ok();
}

Result<CheckReport> Checker::Run() {
  writable_ = opt_.repair && !dev_->read_only();
  VEXFS_RETURN_IF_ERROR(OpenSuper());
  bool ro_only = false;
  (void)ValidateSuper(r_->super(), 0, &ro_only);
  if (ro_only && writable_) {
    return Status::NotSupported("volume has read-only-compatible features this fsck does not know");
  }
  VEXFS_RETURN_IF_ERROR(HandleJournal());
  g_ = r_->geometry();
  rep_.block_count = g_.block_count;
  rep_.inode_count = g_.inode_count;
  const uint32_t state = Le32(r_->super().s_state);
  if (!opt_.force && (state & VEXFS_STATE_CLEAN) && !(state & VEXFS_STATE_ERRORS) &&
      rep_.journal_replayed == 0 && rep_.journal_pending == 0 && rep_.problems.empty()) {
    return rep_;  // clean: skipped like e2fsck without -f
  }
  rep_.checked = true;
  orphan_head_ = Le64(r_->super().s_orphan_head);
  vector_root_ = Le64(r_->super().s_vector_root);
  // One bit per block and per inode: bounded by the device size, which
  // ValidateSuper compared the block count against.
  used_.assign((g_.block_count + 63) / 64, 0);
  for (uint64_t b = 0; b < g_.data_start; b++) SetUsed(b);
  SetUsed(g_.block_count - 1);
  alloc_cursor_ = g_.data_start;
  VEXFS_RETURN_IF_ERROR(CheckBackupSuper());
  VEXFS_RETURN_IF_ERROR(LoadBitmaps());
  VEXFS_RETURN_IF_ERROR(ProcessOrphans());
  VEXFS_RETURN_IF_ERROR(Pass1());
  VEXFS_RETURN_IF_ERROR(Pass2());
  if (writable_) VEXFS_RETURN_IF_ERROR(ApplyRepairs());
  VEXFS_RETURN_IF_ERROR(CheckBitmaps());
  VEXFS_RETURN_IF_ERROR(FinishSuper());
  if (writable_) VEXFS_RETURN_IF_ERROR(dev_->Flush());
  for (const auto& [ino, in] : inodes_) {
    if (in.clear) continue;
    switch (in.mode & S_IFMT) {
      case S_IFDIR:
        rep_.directories++;
        break;
      case S_IFREG:
        rep_.regular_files++;
        break;
      case S_IFLNK:
        rep_.symlinks++;
        break;
      default:
        rep_.special_files++;
        break;
    }
  }
  return rep_;
}

}  // namespace offline
}  // namespace vexfs
