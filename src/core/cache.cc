#include "core/cache.h"

#include <algorithm>
#include <cstring>

#include "core/layout.h"
#include "uapi/vexfs/vexfs_format.h"

namespace vexfs::core {
namespace {

std::unique_ptr<uint8_t[]> CopyBlock(const uint8_t* src) {
  std::unique_ptr<uint8_t[]> p(new uint8_t[VEXFS_BLOCK_SIZE]);
  std::memcpy(p.get(), src, VEXFS_BLOCK_SIZE);
  return p;
}

}  // namespace

BufferCache::BufferCache(BlockDevice* dev, Journal* journal, size_t max_buffers)
    : dev_(dev), journal_(journal), max_buffers_(std::max<size_t>(max_buffers, 64)) {}

BufferCache::~BufferCache() = default;

Buffer* BufferCache::Insert(uint64_t blocknr) {
  auto b = std::make_unique<Buffer>();
  b->blocknr = blocknr;
  b->storage.reset(new uint8_t[VEXFS_BLOCK_SIZE]);
  b->data = b->storage.get();
  lru_.push_front(b.get());
  b->lru = lru_.begin();
  Buffer* raw = b.get();
  map_.emplace(blocknr, std::move(b));
  return raw;
}

Result<Buffer*> BufferCache::Get(uint64_t blocknr, bool* fresh) {
  if (fresh) *fresh = false;
  auto it = map_.find(blocknr);
  if (it != map_.end()) {
    Buffer* b = it->second.get();
    lru_.splice(lru_.begin(), lru_, b->lru);
    return b;
  }
  if (blocknr >= dev_->block_count()) return Status::Corruption("block number beyond the device");
  Buffer* b = Insert(blocknr);
  Status s = dev_->Read(blocknr, 1, b->data);
  if (!s.ok()) {
    lru_.erase(b->lru);
    map_.erase(blocknr);
    return s;
  }
  if (fresh) *fresh = true;
  return b;
}

void BufferCache::SaveUndo(Buffer* b, bool created) {
  if (b->undo_epoch == epoch_) return;
  Undo u;
  u.buf = b;
  u.data = created ? nullptr : CopyBlock(b->data);
  u.in_txn = b->in_txn;
  u.modified = b->modified;
  u.created = created;
  u.seal = b->seal;
  u.created_frozen = false;
  if (!b->in_txn && b->dirty_home && !b->frozen) {
    b->frozen = CopyBlock(b->data);
    u.created_frozen = true;
  }
  undo_.push_back(std::move(u));
  b->undo_epoch = epoch_;
}

void BufferCache::MarkDirty(Buffer* b, SealKind seal) {
  SaveUndo(b, false);
  if (seal != SealKind::kNone) b->seal = seal;
  b->modified = true;
  if (!b->in_txn) {
    b->in_txn = true;
    running_.push_back(b);
  }
}

Buffer* BufferCache::GetNew(uint64_t blocknr, SealKind seal) {
  auto it = map_.find(blocknr);
  Buffer* b;
  if (it != map_.end()) {
    b = it->second.get();
    MarkDirty(b, seal);
  } else {
    b = Insert(blocknr);
    SaveUndo(b, true);
    b->seal = seal;
    b->modified = true;
    b->in_txn = true;
    running_.push_back(b);
  }
  std::memset(b->data, 0, VEXFS_BLOCK_SIZE);
  return b;
}

void BufferCache::Forget(uint64_t blocknr) {
  auto it = map_.find(blocknr);
  if (it == map_.end()) return;
  Buffer* b = it->second.get();
  if (b->in_txn || b->dirty_home || b->undo_epoch == epoch_) return;
  lru_.erase(b->lru);
  map_.erase(it);
}

void BufferCache::BeginOp() {
  in_op_ = true;
  epoch_++;
  undo_.clear();
  undo_fns_.clear();
}

void BufferCache::OnAbort(std::function<void()> undo) { undo_fns_.push_back(std::move(undo)); }

void BufferCache::AbortOp() {
  bool drop_running = false;
  std::vector<uint64_t> created;
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    Buffer* b = it->buf;
    if (it->created) {
      created.push_back(b->blocknr);
      b->in_txn = false;
      drop_running = true;
      continue;
    }
    std::memcpy(b->data, it->data.get(), VEXFS_BLOCK_SIZE);
    b->modified = it->modified;
    b->seal = it->seal;
    if (it->created_frozen) b->frozen.reset();
    if (!it->in_txn && b->in_txn) {
      b->in_txn = false;
      drop_running = true;
    }
  }
  if (drop_running) {
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [](Buffer* b) { return !b->in_txn; }),
                   running_.end());
  }
  for (uint64_t blk : created) {
    auto it = map_.find(blk);
    if (it != map_.end()) {
      lru_.erase(it->second->lru);
      map_.erase(it);
    }
  }
  for (auto it = undo_fns_.rbegin(); it != undo_fns_.rend(); ++it) (*it)();
  undo_.clear();
  undo_fns_.clear();
  in_op_ = false;
  epoch_++;
}

Status BufferCache::EndOp() {
  in_op_ = false;
  undo_.clear();
  undo_fns_.clear();
  epoch_++;
  Status s;
  if (running_.size() > journal_->Capacity() / 4) s = Commit();
  if (map_.size() > max_buffers_) Evict();
  return s;
}

void BufferCache::Seal(Buffer* b) {
  switch (b->seal) {
    case SealKind::kNone:
      break;
    case SealKind::kBlockHeader:
      SealBlock(b->data);
      break;
    case SealKind::kSuper:
      SealSuper(reinterpret_cast<vexfs_super_block*>(b->data));
      break;
    case SealKind::kInodeTable:
      for (uint32_t i = 0; i < VEXFS_INODES_PER_BLOCK; i++) {
        auto* ino = reinterpret_cast<vexfs_inode*>(b->data + i * VEXFS_INODE_SIZE);
        if (ino->i_mode != 0) SealInode(ino);
      }
      break;
  }
}

Status BufferCache::WriteHomes() {
  std::vector<Buffer*> homes;
  for (auto& [blk, b] : map_) {
    if (b->dirty_home && (!b->in_txn || b->frozen)) homes.push_back(b.get());
  }
  std::sort(homes.begin(), homes.end(),
            [](const Buffer* a, const Buffer* b) { return a->blocknr < b->blocknr; });
  for (Buffer* b : homes) {
    Status s = dev_->Write(b->blocknr, 1, b->in_txn ? b->frozen.get() : b->data);
    if (!s.ok()) {
      failed_ = true;
      return s;
    }
  }
  if (Status s = dev_->Flush(); !s.ok()) {
    failed_ = true;
    return s;
  }
  for (Buffer* b : homes) {
    b->dirty_home = false;
    b->frozen.reset();
  }
  return Status::Ok();
}

Status BufferCache::Commit() {
  if (failed_) return Status::IoError("volume is shut down after an earlier I/O error");
  if (running_.empty()) return Status::Ok();
  std::sort(running_.begin(), running_.end(),
            [](const Buffer* a, const Buffer* b) { return a->blocknr < b->blocknr; });
  for (Buffer* b : running_) Seal(b);
  const uint64_t need = Journal::BlocksNeeded(running_.size());
  if (need > journal_->Capacity()) {
    failed_ = true;
    return Status::IoError("transaction larger than the journal");
  }
  if (need > journal_->FreeBlocks()) VEXFS_RETURN_IF_ERROR(CheckpointCommitted());
  std::vector<std::pair<uint64_t, const uint8_t*>> images;
  images.reserve(running_.size());
  for (Buffer* b : running_) images.emplace_back(b->blocknr, b->data);
  if (Status s = journal_->Commit(images, ordered_data_); !s.ok()) {
    failed_ = true;
    return s;
  }
  ordered_data_ = false;
  stats_.commits++;
  stats_.journal_blocks_written += need;
  for (Buffer* b : running_) {
    b->in_txn = false;
    b->dirty_home = true;
    b->frozen.reset();
  }
  running_.clear();
  if (commit_hook_) commit_hook_();
  return Status::Ok();
}

Status BufferCache::CheckpointCommitted() {
  VEXFS_RETURN_IF_ERROR(WriteHomes());
  if (Status s = journal_->Reset(); !s.ok()) {
    failed_ = true;
    return s;
  }
  stats_.checkpoints++;
  if (checkpoint_hook_) checkpoint_hook_();
  return Status::Ok();
}

Status BufferCache::Checkpoint() {
  VEXFS_RETURN_IF_ERROR(Commit());
  return CheckpointCommitted();
}

void BufferCache::Evict() {
  const size_t target = max_buffers_ - max_buffers_ / 8;
  auto it = lru_.end();
  while (map_.size() > target && it != lru_.begin()) {
    --it;
    Buffer* b = *it;
    if (b->in_txn) continue;
    if (b->dirty_home) {
      if (!dev_->Write(b->blocknr, 1, b->data).ok()) {
        failed_ = true;
        return;
      }
      b->dirty_home = false;
    }
    auto victim = it++;
    lru_.erase(victim);
    map_.erase(b->blocknr);
  }
}

}  // namespace vexfs::core
