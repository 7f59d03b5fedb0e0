#include "core/alloc.h"

#include <algorithm>
#include <bit>
#include <string>

#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"

namespace vexfs::core {
namespace {

inline bool TestBit(const uint8_t* bits, uint64_t i) { return bits[i >> 3] & (1u << (i & 7)); }
inline void SetBit(uint8_t* bits, uint64_t i) { bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7)); }
inline void ClearBit(uint8_t* bits, uint64_t i) { bits[i >> 3] &= static_cast<uint8_t>(~(1u << (i & 7))); }

}  // namespace

BitmapAllocator::BitmapAllocator(BufferCache* cache, uint64_t region_start, uint64_t region_blocks,
                                 uint64_t nitems, bool quarantine)
    : cache_(cache),
      region_start_(region_start),
      region_blocks_(region_blocks),
      nitems_(nitems),
      quarantine_enabled_(quarantine) {}

Result<Buffer*> BitmapAllocator::Block(uint64_t index) {
  bool fresh = false;
  VEXFS_ASSIGN_OR_RETURN(Buffer * b, cache_->Get(region_start_ + index, &fresh));
  if (fresh) {
    if (Status s = VerifyBlock(b->data, VEXFS_BITMAP_MAGIC, b->blocknr); !s.ok()) {
      cache_->Forget(b->blocknr);
      return Status::Corruption("bitmap: " + s.message());
    }
    const auto* bm = reinterpret_cast<const vexfs_bitmap_block*>(b->data);
    if (Le32(bm->bm_index) != index) {
      cache_->Forget(b->blocknr);
      return Status::Corruption("bitmap block " + std::to_string(b->blocknr) + ": wrong index");
    }
  }
  return b;
}

Status BitmapAllocator::Load() {
  free_ = 0;
  free_per_block_.assign(region_blocks_, 0);
  for (uint64_t i = 0; i < region_blocks_; i++) {
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Block(i));
    const auto* bm = reinterpret_cast<const vexfs_bitmap_block*>(b->data);
    uint32_t used = 0;
    for (size_t w = 0; w < VEXFS_BITMAP_BYTES; w += 8) {
      uint64_t word;
      std::memcpy(&word, bm->bm_bits + w, 8);
      used += static_cast<uint32_t>(std::popcount(word));
    }
    free_per_block_[i] = VEXFS_BITMAP_BITS - used;
    free_ += free_per_block_[i];
  }
  return Status::Ok();
}

bool BitmapAllocator::Quarantined(uint64_t item, uint64_t* end) const {
  for (const auto* m : {&q_running_, &q_committed_}) {
    auto it = m->upper_bound(item);
    if (it == m->begin()) continue;
    --it;
    if (item < it->second) {
      *end = it->second;
      return true;
    }
  }
  return false;
}

uint64_t BitmapAllocator::NextQuarantine(uint64_t item) const {
  uint64_t next = UINT64_MAX;
  for (const auto* m : {&q_running_, &q_committed_}) {
    auto it = m->upper_bound(item);
    if (it != m->end()) next = std::min(next, it->first);
  }
  return next;
}

void BitmapAllocator::AddInterval(std::map<uint64_t, uint64_t>& m, uint64_t start, uint64_t end) {
  auto it = m.upper_bound(start);
  if (it != m.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) {
      start = prev->first;
      end = std::max(end, prev->second);
      it = m.erase(prev);
    }
  }
  while (it != m.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = m.erase(it);
  }
  m.emplace(start, end);
}

void BitmapAllocator::RemoveInterval(std::map<uint64_t, uint64_t>& m, uint64_t start, uint64_t end) {
  auto it = m.upper_bound(start);
  if (it != m.begin()) --it;
  while (it != m.end() && it->first < end) {
    const uint64_t s = it->first, e = it->second;
    if (e <= start) {
      ++it;
      continue;
    }
    it = m.erase(it);
    if (s < start) m.emplace(s, start);
    if (e > end) m.emplace(end, e);
  }
}

Result<Extent> BitmapAllocator::Alloc(uint64_t goal, uint64_t want) {
  if (want == 0) want = 1;
  if (available() == 0) return Status::NoSpace("no free space");
  if (goal >= nitems_) goal = hint_ < nitems_ ? hint_ : 0;
  const uint64_t nblocks = region_blocks_;
  uint64_t bi = goal / VEXFS_BITMAP_BITS;
  uint64_t start_bit = goal % VEXFS_BITMAP_BITS;
  for (uint64_t scanned = 0; scanned <= nblocks; scanned++, bi = (bi + 1) % nblocks, start_bit = 0) {
    if (free_per_block_[bi] == 0) continue;
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Block(bi));
    auto* bm = reinterpret_cast<vexfs_bitmap_block*>(b->data);
    const uint64_t base = bi * VEXFS_BITMAP_BITS;
    const uint64_t limit = std::min<uint64_t>(VEXFS_BITMAP_BITS, nitems_ - base);
    uint64_t i = start_bit;
    while (i < limit) {
      // Skip whole allocated 64-bit words quickly.
      if ((i & 63) == 0 && i + 64 <= limit) {
        uint64_t word;
        std::memcpy(&word, bm->bm_bits + i / 8, 8);
        if (word == ~0ull) {
          i += 64;
          continue;
        }
      }
      if (TestBit(bm->bm_bits, i)) {
        i++;
        continue;
      }
      uint64_t qend;
      if (quarantine_enabled_ && Quarantined(base + i, &qend)) {
        i = qend - base;
        continue;
      }
      // Found a free item; extend the run.
      const uint64_t qnext = quarantine_enabled_ ? NextQuarantine(base + i) : UINT64_MAX;
      uint64_t len = 1;
      while (len < want && i + len < limit && base + i + len < qnext &&
             !TestBit(bm->bm_bits, i + len)) {
        len++;
      }
      cache_->MarkDirty(b, SealKind::kBlockHeader);
      for (uint64_t k = 0; k < len; k++) SetBit(bm->bm_bits, i + k);
      free_per_block_[bi] -= static_cast<uint32_t>(len);
      free_ -= len;
      const uint64_t old_hint = hint_;
      hint_ = base + i + len;
      cache_->OnAbort([this, bi, len, old_hint] {
        free_per_block_[bi] += static_cast<uint32_t>(len);
        free_ += len;
        hint_ = old_hint;
      });
      return Extent{base + i, len};
    }
  }
  return Status::NoSpace("no free space");
}

Status BitmapAllocator::Free(uint64_t start, uint64_t len) {
  if (len == 0) return Status::Ok();
  if (start >= nitems_ || len > nitems_ - start) {
    return Status::Corruption("freeing items beyond the bitmap");
  }
  uint64_t item = start;
  const uint64_t end = start + len;
  while (item < end) {
    const uint64_t bi = item / VEXFS_BITMAP_BITS;
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Block(bi));
    auto* bm = reinterpret_cast<vexfs_bitmap_block*>(b->data);
    const uint64_t base = bi * VEXFS_BITMAP_BITS;
    const uint64_t stop = std::min(end, base + VEXFS_BITMAP_BITS);
    for (uint64_t k = item; k < stop; k++) {
      if (!TestBit(bm->bm_bits, k - base)) {
        return Status::Corruption("double free of item " + std::to_string(k));
      }
    }
    cache_->MarkDirty(b, SealKind::kBlockHeader);
    for (uint64_t k = item; k < stop; k++) ClearBit(bm->bm_bits, k - base);
    const uint64_t n = stop - item;
    free_per_block_[bi] += static_cast<uint32_t>(n);
    free_ += n;
    cache_->OnAbort([this, bi, n] {
      free_per_block_[bi] -= static_cast<uint32_t>(n);
      free_ -= n;
    });
    item = stop;
  }
  if (quarantine_enabled_) {
    AddInterval(q_running_, start, end);
    quarantined_ += len;
    cache_->OnAbort([this, start, end, len] {
      RemoveInterval(q_running_, start, end);
      quarantined_ -= len;
    });
  }
  return Status::Ok();
}

Result<bool> BitmapAllocator::IsAllocated(uint64_t item) {
  if (item >= nitems_) return Status::InvalidArgument("item beyond the bitmap");
  VEXFS_ASSIGN_OR_RETURN(Buffer * b, Block(item / VEXFS_BITMAP_BITS));
  const auto* bm = reinterpret_cast<const vexfs_bitmap_block*>(b->data);
  return TestBit(bm->bm_bits, item % VEXFS_BITMAP_BITS);
}

void BitmapAllocator::OnCommit() {
  for (const auto& [s, e] : q_running_) AddInterval(q_committed_, s, e);
  q_running_.clear();
}

void BitmapAllocator::OnCheckpoint() {
  uint64_t released = 0;
  for (const auto& [s, e] : q_committed_) released += e - s;
  q_committed_.clear();
  quarantined_ -= released;
}

}  // namespace vexfs::core
