#include "core/journal.h"

#include <sys/time.h>

#include <cstring>
#include <string>

#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/crc32c.h"

namespace vexfs::core {
namespace {

struct AlignedBlock {
  alignas(64) uint8_t b[VEXFS_BLOCK_SIZE];
};

}  // namespace

uint64_t ChainImage(const uint8_t key[16], uint64_t h, uint64_t target, const uint8_t* image) {
  uint64_t words[3] = {htole64(h), htole64(target), htole64(SipHash24(key, image, VEXFS_BLOCK_SIZE))};
  return SipHash24(key, words, sizeof(words));
}

// Replay must not move the journal it replays from nor resize the volume:
// an image of block 0 has to be a valid superblock of this journal's
// volume (the library never journals any other).
bool Journal::SuperImageFits(const uint8_t* image) const {
  vexfs_super_block sb;
  std::memcpy(&sb, image, sizeof(sb));
  return ValidateSuper(sb, device_blocks_, nullptr).ok() && Le64(sb.s_block_count) == device_blocks_ &&
         Le64(sb.s_journal_start) == start_ && Le64(sb.s_journal_blocks) == blocks_ &&
         std::memcmp(sb.s_uuid, uuid_, 16) == 0;
}

Journal::Journal(BlockDevice* dev, uint64_t start, uint64_t blocks, const uint8_t uuid[16],
                 uint64_t device_blocks)
    : dev_(dev), start_(start), blocks_(blocks), device_blocks_(device_blocks) {
  std::memcpy(uuid_, uuid, 16);
}

uint64_t Journal::BlocksNeeded(size_t images) {
  return images + (images + VEXFS_JDESC_MAX - 1) / VEXFS_JDESC_MAX + 1;
}

Status Journal::WriteSuper(uint64_t start_rel, uint64_t sequence) {
  AlignedBlock blk;
  InitBlockHeader(blk.b, VEXFS_JSB_MAGIC, start_, 0);
  auto* js = reinterpret_cast<vexfs_journal_super*>(blk.b);
  js->js_blocks = ToLe64(blocks_);
  js->js_start = ToLe64(start_rel);
  js->js_sequence = ToLe64(sequence);
  std::memcpy(js->js_uuid, uuid_, 16);
  SealBlock(blk.b);
  VEXFS_RETURN_IF_ERROR(dev_->Write(start_, 1, blk.b));
  return dev_->Flush();
}

Status Journal::Format(uint64_t first_sequence) {
  head_ = 1;
  sequence_ = first_sequence;
  return WriteSuper(1, first_sequence);
}

Result<JournalScan> Journal::Scan() {
  AlignedBlock blk;
  VEXFS_RETURN_IF_ERROR(dev_->Read(start_, 1, blk.b));
  if (Status s = VerifyBlock(blk.b, VEXFS_JSB_MAGIC, start_); !s.ok()) {
    return Status::Corruption("journal superblock: " + s.message());
  }
  const auto* js = reinterpret_cast<const vexfs_journal_super*>(blk.b);
  if (Le64(js->js_blocks) != blocks_) return Status::Corruption("journal superblock: size mismatch");
  if (std::memcmp(js->js_uuid, uuid_, 16) != 0) return Status::Corruption("journal superblock: uuid mismatch");
  JournalScan scan;
  uint64_t pos = Le64(js->js_start);
  uint64_t seq = Le64(js->js_sequence);
  scan.start_sequence = seq;
  if (pos == 0) pos = 1;  // older "empty" encoding
  if (pos >= blocks_) return Status::Corruption("journal superblock: start beyond the journal");
  const uint64_t log_start = pos;  // (blk, and with it js, is reused below)

  std::vector<uint8_t> image(VEXFS_BLOCK_SIZE);
  // Walk transactions until the first one that does not check out.
  for (;;) {
    const uint64_t txn_start = pos;
    JournalTxnInfo info;
    info.sequence = seq;
    info.first_block = txn_start;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> pending;
    uint64_t data_hash = seq;
    bool committed = false;
    while (pos < blocks_) {
      VEXFS_RETURN_IF_ERROR(dev_->Read(start_ + pos, 1, blk.b));
      const auto* hdr = reinterpret_cast<const vexfs_block_header*>(blk.b);
      const uint32_t magic = Le32(hdr->bh_magic);
      if (magic == VEXFS_JDESC_MAGIC) {
        if (!VerifyBlock(blk.b, magic, start_ + pos).ok()) break;
        const auto* d = reinterpret_cast<const vexfs_journal_desc*>(blk.b);
        const uint32_t count = Le32(d->jd_count);
        if (Le64(d->jd_sequence) != seq || count == 0 || count > VEXFS_JDESC_MAX) break;
        if (pos + 1 + count > blocks_) break;
        std::vector<uint64_t> targets(count);
        bool bad_target = false;
        for (uint32_t i = 0; i < count; i++) {
          targets[i] = Le64(d->jd_targets[i]);
          if (targets[i] >= device_blocks_ ||
              (targets[i] >= start_ && targets[i] < start_ + blocks_)) {
            bad_target = true;
          }
        }
        if (bad_target) break;
        pos++;
        bool bad_super = false;
        for (uint32_t i = 0; i < count; i++, pos++) {
          VEXFS_RETURN_IF_ERROR(dev_->Read(start_ + pos, 1, image.data()));
          if (targets[i] == 0 && !SuperImageFits(image.data())) bad_super = true;
          data_hash = ChainImage(uuid_, data_hash, targets[i], image.data());
          pending.emplace_back(targets[i], image);
          info.targets.push_back(targets[i]);
        }
        if (bad_super) break;
        continue;
      }
      if (magic == VEXFS_JCOMMIT_MAGIC && !pending.empty()) {
        if (!VerifyBlock(blk.b, magic, start_ + pos).ok()) break;
        const auto* c = reinterpret_cast<const vexfs_journal_commit*>(blk.b);
        if (Le64(c->jc_sequence) != seq) break;
        if (Le64(c->jc_data_hash) != data_hash) break;
        if (Le32(c->jc_nblocks) != pos - txn_start) break;
        committed = true;
        pos++;
      }
      break;
    }
    if (!committed) break;
    info.nblocks = pos - txn_start;
    for (auto& [target, img] : pending) scan.images[target] = std::move(img);
    scan.txns.push_back(std::move(info));
    seq++;
    if (pos >= blocks_) break;
  }
  scan.next_sequence = seq;
  scan.end_block = scan.txns.empty() ? log_start : pos;
  return scan;
}

Status Journal::Recover(uint64_t* replayed) {
  VEXFS_ASSIGN_OR_RETURN(JournalScan scan, Scan());
  for (const auto& [target, img] : scan.images) {
    VEXFS_RETURN_IF_ERROR(dev_->Write(target, 1, img.data()));
  }
  if (!scan.images.empty()) VEXFS_RETURN_IF_ERROR(dev_->Flush());
  if (replayed) *replayed = scan.txns.size();
  sequence_ = scan.next_sequence;
  head_ = 1;
  // Always rewrite the superblock so a partly written log from before the
  // crash can never be mistaken for a continuation of the new one.
  return WriteSuper(1, sequence_);
}

Status Journal::ResumeAfter(const JournalScan& scan) {
  if (scan.end_block == 0 || scan.end_block > blocks_) {
    return Status::Corruption("journal scan ends outside the log");
  }
  head_ = scan.end_block;
  sequence_ = scan.next_sequence;
  return Status::Ok();
}

Status Journal::Commit(const std::vector<std::pair<uint64_t, const uint8_t*>>& images, bool data_barrier) {
  if (images.empty()) return Status::Ok();
  const uint64_t need = BlocksNeeded(images.size());
  if (need > FreeBlocks()) return Status::NoSpace("journal full");
  const uint64_t txn_start = head_;
  std::vector<uint8_t> run((need - 1) * VEXFS_BLOCK_SIZE);
  uint64_t data_hash = sequence_;
  uint64_t rel = head_;
  size_t out = 0;
  for (size_t i = 0; i < images.size(); i += VEXFS_JDESC_MAX) {
    const size_t n = std::min<size_t>(VEXFS_JDESC_MAX, images.size() - i);
    uint8_t* d = run.data() + out * VEXFS_BLOCK_SIZE;
    InitBlockHeader(d, VEXFS_JDESC_MAGIC, start_ + rel, 0);
    auto* desc = reinterpret_cast<vexfs_journal_desc*>(d);
    desc->jd_sequence = ToLe64(sequence_);
    desc->jd_count = ToLe32(static_cast<uint32_t>(n));
    for (size_t j = 0; j < n; j++) desc->jd_targets[j] = ToLe64(images[i + j].first);
    SealBlock(d);
    out++;
    rel++;
    for (size_t j = 0; j < n; j++, out++, rel++) {
      std::memcpy(run.data() + out * VEXFS_BLOCK_SIZE, images[i + j].second, VEXFS_BLOCK_SIZE);
      data_hash = ChainImage(uuid_, data_hash, images[i + j].first, images[i + j].second);
    }
  }
  // Large runs go out in chunks so a single request stays reasonable.
  constexpr uint64_t kChunk = 256;
  for (uint64_t off = 0; off < out; off += kChunk) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kChunk, out - off));
    VEXFS_RETURN_IF_ERROR(dev_->Write(start_ + head_ + off, n, run.data() + off * VEXFS_BLOCK_SIZE));
  }
  if (data_barrier) VEXFS_RETURN_IF_ERROR(dev_->Flush());
  AlignedBlock cb;
  InitBlockHeader(cb.b, VEXFS_JCOMMIT_MAGIC, start_ + rel, 0);
  auto* c = reinterpret_cast<vexfs_journal_commit*>(cb.b);
  c->jc_sequence = ToLe64(sequence_);
  c->jc_data_hash = ToLe64(data_hash);
  c->jc_nblocks = ToLe32(static_cast<uint32_t>(rel - txn_start));
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  c->jc_time = ToLe64(static_cast<uint64_t>(tv.tv_sec));
  c->jc_time_ns = ToLe32(static_cast<uint32_t>(tv.tv_usec * 1000));
  SealBlock(cb.b);
  VEXFS_RETURN_IF_ERROR(dev_->Write(start_ + rel, 1, cb.b));
  VEXFS_RETURN_IF_ERROR(dev_->Flush());
  head_ = rel + 1;
  sequence_++;
  return Status::Ok();
}

Status Journal::Reset() {
  head_ = 1;
  return WriteSuper(1, sequence_);
}

}  // namespace vexfs::core
