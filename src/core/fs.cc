// Filesystem core: mount/unmount, inode management, operations and
// inode lifetime (orphans).
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "core/fs_impl.h"
#include "core/xattr.h"

namespace vexfs {

bool Cred::InGroup(uint32_t g) const {
  if (g == gid) return true;
  if (lazy) {
    std::call_once(lazy->once, [this] {
      if (lazy->load) lazy->groups = lazy->load();
    });
    return std::find(lazy->groups.begin(), lazy->groups.end(), g) != lazy->groups.end();
  }
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

Result<Attr> Filesystem::ResolvePath(std::string_view path, const Cred& cred) {
  VEXFS_ASSIGN_OR_RETURN(Attr cur, GetAttr(kRootIno));
  size_t pos = 0;
  while (pos < path.size()) {
    while (pos < path.size() && path[pos] == '/') pos++;
    if (pos >= path.size()) break;
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    VEXFS_ASSIGN_OR_RETURN(cur, Lookup(cur.ino, path.substr(pos, end - pos), cred));
    pos = end;
  }
  return cur;
}

Result<std::unique_ptr<Filesystem>> Filesystem::Mount(std::unique_ptr<BlockDevice> dev,
                                                      const MountOptions& options, MountInfo* info) {
  auto fs = std::make_unique<core::FsImpl>(std::move(dev), options);
  MountInfo local;
  VEXFS_RETURN_IF_ERROR(fs->DoMount(info ? info : &local));
  return std::unique_ptr<Filesystem>(std::move(fs));
}

namespace core {

bool InodeRef::is_dir() const { return S_ISDIR(mode()); }
bool InodeRef::is_reg() const { return S_ISREG(mode()); }
bool InodeRef::is_lnk() const { return S_ISLNK(mode()); }

FsImpl::FsImpl(std::unique_ptr<BlockDevice> dev, const MountOptions& opts)
    : dev_(std::move(dev)), opts_(opts) {}

FsImpl::~FsImpl() {
  if (mounted_) Unmount().IgnoreError();
}

Status FsImpl::DoMount(MountInfo* info) {
  read_only_ = opts_.read_only || dev_->read_only();
  if (dev_->block_count() < 1) return Status::InvalidArgument("device is empty");
  std::vector<uint8_t> b0(VEXFS_BLOCK_SIZE);
  VEXFS_RETURN_IF_ERROR(dev_->Read(0, 1, b0.data()));
  const auto* sb = reinterpret_cast<const vexfs_super_block*>(b0.data());
  // Checks the superblock in b0 and takes the volume's geometry, hash seed
  // and uuid from it; `context` prefixes a validation error.
  auto adopt_super = [&](const std::string& context) -> Status {
    bool ro_only = false;
    if (Status s = ValidateSuper(*sb, dev_->block_count(), &ro_only); !s.ok()) {
      return Status::Error(s.err(), context + s.message());
    }
    if (ro_only && !read_only_) {
      return Status::Error(EROFS, "volume has read-only-compatible features this version lacks; mount read-only");
    }
    geo_ = GeometryOf(*sb);
    std::memcpy(hash_seed_, sb->s_hash_seed, 16);
    std::memcpy(uuid_, sb->s_uuid, 16);
    return Status::Ok();
  };
  VEXFS_RETURN_IF_ERROR(adopt_super(""));

  journal_ = std::make_unique<Journal>(dev_.get(), geo_.journal_start, geo_.journal_blocks, uuid_,
                                       geo_.block_count);
  VEXFS_ASSIGN_OR_RETURN(JournalScan scan, journal_->Scan());
  if (!scan.txns.empty() && dev_->read_only()) {
    return Status::Error(EROFS, "the journal needs recovery but the device is read-only");
  }
  if (!dev_->read_only()) {
    uint64_t replayed = 0;
    VEXFS_RETURN_IF_ERROR(journal_->Recover(&replayed));
    info->replayed_transactions = replayed;
  }
  // The state as of the last commit: replay may have rewritten the
  // superblock (Journal::Scan lets it keep only the uuid, the journal
  // region and the block count), so everything else comes from it again,
  // as fsck takes it.
  VEXFS_RETURN_IF_ERROR(dev_->Read(0, 1, b0.data()));
  if (info->replayed_transactions > 0) {
    VEXFS_RETURN_IF_ERROR(adopt_super("superblock invalid after journal replay: "));
  }
  info->was_clean = (Le32(sb->s_state) & VEXFS_STATE_CLEAN) != 0 && info->replayed_transactions == 0;
  const size_t max_buffers = std::max<size_t>(opts_.cache_mb, 1) * (1 << 20) / VEXFS_BLOCK_SIZE;
  cache_ = std::make_unique<BufferCache>(dev_.get(), journal_.get(), max_buffers);
  blocks_ = std::make_unique<BitmapAllocator>(cache_.get(), geo_.bbitmap_start, geo_.bbitmap_blocks,
                                              geo_.block_count, true);
  inodes_ = std::make_unique<BitmapAllocator>(cache_.get(), geo_.ibitmap_start, geo_.ibitmap_blocks,
                                              geo_.inode_count, false);
  cache_->SetCommitHook([this] {
    blocks_->OnCommit();
    // Slots freed by committed transactions may be overwritten now.
    for (auto& [dir, c] : colls_) {
      c.free_slots.insert(c.free_slots.end(), c.quarantine.begin(), c.quarantine.end());
      c.quarantine.clear();
    }
  });
  cache_->SetCheckpointHook([this] {
    std::unique_lock<std::shared_mutex> quiesce(io_mu_);  // no read in flight
    blocks_->OnCheckpoint();
  });
  VEXFS_RETURN_IF_ERROR(blocks_->Load());
  VEXFS_RETURN_IF_ERROR(inodes_->Load());
  {
    VEXFS_ASSIGN_OR_RETURN(InodeRef root, GetInode(VEXFS_ROOT_INO));
    if (!root.is_dir()) return Status::Corruption("root inode is not a directory");
  }
  std::random_device rd;
  next_generation_ = rd();
  if (!read_only_) {
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
      cache_->MarkDirty(b, SealKind::kSuper);
      auto* s = reinterpret_cast<vexfs_super_block*>(b->data);
      s->s_state = ToLe32(Le32(s->s_state) & ~VEXFS_STATE_CLEAN);
      s->s_mount_count = ToLe32(Le32(s->s_mount_count) + 1);
      s->s_mount_time = ToLe64(static_cast<uint64_t>(Now().sec));
      return Status::Ok();
    }));
    VEXFS_RETURN_IF_ERROR(ProcessOrphans(&info->orphans_released, &info->truncations_finished));
    VEXFS_RETURN_IF_ERROR(cache_->Commit());
  }
  VEXFS_RETURN_IF_ERROR(LoadCollections());
  mounted_ = true;
  if (!read_only_ && opts_.commit_interval_ms > 0) {
    commit_thread_ = std::thread([this] { CommitThread(); });
  }
  return Status::Ok();
}

void FsImpl::CommitThread() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_commit_) {
    commit_cv_.wait_for(lock, std::chrono::milliseconds(opts_.commit_interval_ms));
    if (stop_commit_) break;
    if (cache_->running_blocks() > 0 && !cache_->failed()) cache_->Commit().IgnoreError();
  }
}

Status FsImpl::Unmount() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!mounted_) return Status::Error(EINVAL, "not mounted");
    stop_commit_ = true;
  }
  commit_cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  mounted_ = false;
  // Every MapSnapshot goes stale: no write without mu_ from here on.
  for (auto& gen : map_gens_) gen.fetch_add(1, std::memory_order_acq_rel);
  if (read_only_) return Status::Ok();
  if (cache_->failed()) return Status::IoError("volume was shut down after an I/O error; run fsck.vexfs");
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
    cache_->MarkDirty(b, SealKind::kSuper);
    auto* s = reinterpret_cast<vexfs_super_block*>(b->data);
    s->s_state = ToLe32(Le32(s->s_state) | VEXFS_STATE_CLEAN);
    s->s_free_blocks = ToLe64(blocks_->free_count());
    s->s_free_inodes = ToLe64(inodes_->free_count());
    s->s_write_time = ToLe64(static_cast<uint64_t>(Now().sec));
    return Status::Ok();
  }));
  VEXFS_RETURN_IF_ERROR(cache_->Checkpoint());
  // Refresh the backup superblock from the (now checkpointed) primary.
  std::vector<uint8_t> b0(VEXFS_BLOCK_SIZE);
  VEXFS_RETURN_IF_ERROR(dev_->Read(0, 1, b0.data()));
  VEXFS_RETURN_IF_ERROR(dev_->Write(geo_.block_count - 1, 1, b0.data()));
  return dev_->Flush();
}

Status FsImpl::CheckWritable() {
  if (!mounted_) return Status::Error(EIO, "filesystem is not mounted");
  if (read_only_) return Status::Error(EROFS, "read-only filesystem");
  if (cache_->failed()) return Status::IoError("volume was shut down after an I/O error");
  return Status::Ok();
}

Status FsImpl::RunOp(const std::function<Status()>& fn) {
  for (int attempt = 0;; attempt++) {
    cache_->BeginOp();
    op_events_.clear();
    op_undo_.clear();
    reap_after_op_.clear();
    Status s = fn();
    if (s.ok()) {
      VEXFS_RETURN_IF_ERROR(cache_->EndOp());
      op_undo_.clear();
      if (observer_ != nullptr) {
        for (const Event& e : op_events_) {
          switch (e.kind) {
            case Event::kLink: observer_->OnLink(e.a, e.name, e.b, e.is_dir); break;
            case Event::kUnlink: observer_->OnUnlink(e.a, e.name, e.b); break;
            case Event::kVecSet: observer_->OnVectorSet(e.a, e.b, e.vec); break;
            case Event::kVecRemoved: observer_->OnVectorRemoved(e.a, e.b); break;
            case Event::kCollCreated: observer_->OnCollectionCreated(e.a); break;
            case Event::kCollDropped: observer_->OnCollectionDropped(e.a); break;
          }
        }
      }
      op_events_.clear();
      return Status::Ok();
    }
    cache_->AbortOp();
    op_events_.clear();
    for (auto it = op_undo_.rbegin(); it != op_undo_.rend(); ++it) (*it)();
    op_undo_.clear();
    if (s.err() == ENOSPC && attempt == 0 && blocks_->free_count() > blocks_->available()) {
      // Space held by blocks freed since the last checkpoint: release it.
      VEXFS_RETURN_IF_ERROR(cache_->Checkpoint());
      continue;
    }
    if (s.IsCorruption()) {
      // Leave a mark for fsck; best effort.
      cache_->BeginOp();
      auto sb = Super();
      if (sb.ok()) {
        cache_->MarkDirty(*sb, SealKind::kSuper);
        auto* raw = reinterpret_cast<vexfs_super_block*>((*sb)->data);
        raw->s_state = ToLe32(Le32(raw->s_state) | VEXFS_STATE_ERRORS);
        cache_->EndOp().IgnoreError();
      } else {
        cache_->AbortOp();
      }
    }
    return s;
  }
}

Result<Buffer*> FsImpl::Super() { return cache_->Get(0); }

Result<InodeRef> FsImpl::GetInode(uint64_t ino) {
  if (ino == 0 || ino > geo_.inode_count) return Status::Error(ESTALE, "inode number out of range");
  InodeRef r;
  r.ino = ino;
  VEXFS_ASSIGN_OR_RETURN(r.buf, cache_->Get(InodeBlock(geo_, ino)));
  r.raw = reinterpret_cast<vexfs_inode*>(r.buf->data + InodeOffset(ino));
  if (r.raw->i_mode == 0) return Status::Error(ESTALE, "inode " + std::to_string(ino) + " is free");
  if (!r.buf->modified && !InodeCrcOk(*r.raw)) {
    return Status::Corruption("inode " + std::to_string(ino) + ": checksum mismatch");
  }
  if (Le64(r.raw->i_size) > VEXFS_MAX_FILE_BLOCKS * VEXFS_BLOCK_SIZE && (r.is_reg() || r.is_lnk())) {
    // (Only a hostile image has one: offsets past it overflow the block
    // arithmetic, and the kernel's loff_t would see a negative size. fsck
    // cuts it: inode.bad_size.)
    return Status::Corruption("inode " + std::to_string(ino) + ": size beyond the largest file");
  }
  return r;
}

Result<InodeRef> FsImpl::AllocInode(uint64_t goal) {
  VEXFS_ASSIGN_OR_RETURN(Extent e, inodes_->Alloc(goal > 0 ? goal - 1 : 0, 1));
  const uint64_t ino = e.start + 1;
  if (ino < VEXFS_FIRST_INO) return Status::Corruption("inode bitmap: reserved inode marked free");
  InodeRef r;
  r.ino = ino;
  VEXFS_ASSIGN_OR_RETURN(r.buf, cache_->Get(InodeBlock(geo_, ino)));
  r.raw = reinterpret_cast<vexfs_inode*>(r.buf->data + InodeOffset(ino));
  Dirty(r);
  std::memset(r.raw, 0, sizeof(*r.raw));
  r.raw->i_generation = ToLe32(next_generation_++);
  return r;
}

TreeEnv FsImpl::Env(uint64_t owner) {
  TreeEnv env;
  env.cache = cache_.get();
  env.blocks = blocks_.get();
  env.owner = owner;
  env.data_start = geo_.data_start;
  env.data_end = geo_.block_count - 1;
  return env;
}

Timespec FsImpl::Now() const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

void FsImpl::SetTimes(const InodeRef& r, bool atime, bool mtime, bool ctime) {
  const Timespec now = Now();
  if (atime) {
    r.raw->i_atime = ToLe64(static_cast<uint64_t>(now.sec));
    r.raw->i_atime_ns = ToLe32(now.nsec);
  }
  if (mtime) {
    r.raw->i_mtime = ToLe64(static_cast<uint64_t>(now.sec));
    r.raw->i_mtime_ns = ToLe32(now.nsec);
  }
  if (ctime) {
    r.raw->i_ctime = ToLe64(static_cast<uint64_t>(now.sec));
    r.raw->i_ctime_ns = ToLe32(now.nsec);
  }
}

Attr FsImpl::ToAttr(const InodeRef& r) const {
  const vexfs_inode* i = r.raw;
  Attr a;
  a.ino = r.ino;
  a.mode = Le16(i->i_mode);
  a.nlink = Le32(i->i_links);
  a.uid = Le32(i->i_uid);
  a.gid = Le32(i->i_gid);
  a.rdev = Le32(i->i_rdev);
  a.size = Le64(i->i_size);
  a.blocks = Le64(i->i_blocks) * (VEXFS_BLOCK_SIZE / 512);
  a.atime = {static_cast<int64_t>(Le64(i->i_atime)), Le32(i->i_atime_ns)};
  a.mtime = {static_cast<int64_t>(Le64(i->i_mtime)), Le32(i->i_mtime_ns)};
  a.ctime = {static_cast<int64_t>(Le64(i->i_ctime)), Le32(i->i_ctime_ns)};
  a.crtime = {static_cast<int64_t>(Le64(i->i_crtime)), Le32(i->i_crtime_ns)};
  a.generation = Le32(i->i_generation);
  a.flags = Le32(i->i_flags);
  return a;
}

Status FsImpl::Perm(const InodeRef& r, int mask, const Cred& cred) const {
  if (!opts_.check_permissions || mask == 0) return Status::Ok();
  const uint32_t mode = r.mode();
  if (cred.uid == 0) {
    // Root may execute only when some execute bit is set (directories: always).
    if ((mask & X_OK) && !S_ISDIR(mode) && !(mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
      return Status::Error(EACCES, "permission denied");
    }
    return Status::Ok();
  }
  const uint32_t bits = ClassBits(mode, Le32(r.raw->i_uid), Le32(r.raw->i_gid), mask, cred);
  if ((static_cast<uint32_t>(mask) & 7 & ~bits) != 0) return Status::Error(EACCES, "permission denied");
  return Status::Ok();
}

Status FsImpl::AddOrphan(const InodeRef& r) {
  if (Le32(r.raw->i_flags) & VEXFS_INODE_FL_ORPHAN) return Status::Ok();
  VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
  cache_->MarkDirty(b, SealKind::kSuper);
  auto* sb = reinterpret_cast<vexfs_super_block*>(b->data);
  Dirty(r);
  const uint64_t old_head = Le64(sb->s_orphan_head);
  r.raw->i_orphan_next = sb->s_orphan_head;
  r.raw->i_flags = ToLe32(Le32(r.raw->i_flags) | VEXFS_INODE_FL_ORPHAN);
  sb->s_orphan_head = ToLe64(r.ino);
  if (old_head != 0) orphan_prev_[old_head] = r.ino;
  orphan_prev_[r.ino] = 0;
  return Status::Ok();
}

Status FsImpl::RemoveOrphan(uint64_t ino) {
  VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
  auto* sb = reinterpret_cast<vexfs_super_block*>(b->data);
  VEXFS_ASSIGN_OR_RETURN(InodeRef target, GetInode(ino));
  const uint64_t next = Le64(target.raw->i_orphan_next);
  uint64_t prev = 0;
  if (Le64(sb->s_orphan_head) == ino) {
    cache_->MarkDirty(b, SealKind::kSuper);
    sb->s_orphan_head = ToLe64(next);
  } else {
    std::optional<InodeRef> p;
    if (auto h = orphan_prev_.find(ino); h != orphan_prev_.end() && h->second != 0) {
      auto c = GetInode(h->second);
      if (c.ok() && Le64(c->raw->i_orphan_next) == ino) p = *c;
    }
    if (!p) {
      uint64_t cur = Le64(sb->s_orphan_head);
      for (uint64_t guard = 0; cur != 0 && !p; guard++) {
        if (guard > geo_.inode_count) return Status::Corruption("orphan list has a cycle");
        VEXFS_ASSIGN_OR_RETURN(InodeRef c, GetInode(cur));
        if (Le64(c.raw->i_orphan_next) == ino) p = c;
        cur = Le64(c.raw->i_orphan_next);
      }
      if (!p) return Status::Corruption("inode missing from the orphan list");
    }
    Dirty(*p);
    p->raw->i_orphan_next = ToLe64(next);
    prev = p->ino;
  }
  Dirty(target);
  target.raw->i_orphan_next = 0;
  target.raw->i_flags = ToLe32(Le32(target.raw->i_flags) & ~VEXFS_INODE_FL_ORPHAN);
  orphan_prev_.erase(ino);
  if (next != 0) orphan_prev_[next] = prev;
  return Status::Ok();
}

Status FsImpl::DropLink(const InodeRef& r, uint64_t dir) {
  Dirty(r);
  uint32_t links = Le32(r.raw->i_links);
  if (!r.is_dir() && links > 1 && Le64(r.raw->i_parent) == dir) {
    // i_parent must keep naming a directory that decides the collection.
    VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfDir(dir));
    r.raw->i_parent = ToLe64(coll);
  }
  if (r.is_dir()) {
    links = 0;
  } else if (links > 0) {
    links--;
  }
  r.raw->i_links = ToLe32(links);
  SetTimes(r, false, false, true);
  if (links == 0) {
    if (r.is_reg() && Le64(r.raw->i_vector) != 0) {
      // Gone from the namespace: out of the collection (an open unlinked
      // file keeps its data but not its vector).
      VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfInode(r));
      if (VecCollection* c = Coll(coll)) VEXFS_RETURN_IF_ERROR(DropVector(*c, r));
    }
    if (r.is_dir() && (Le32(r.raw->i_flags) & VEXFS_INODE_FL_COLLECTION)) {
      VEXFS_RETURN_IF_ERROR(DetachCollection(r, &reap_after_op_));
    }
    return AddOrphan(r);
  }
  return Status::Ok();
}

Status FsImpl::ReapDetached() {
  std::vector<uint64_t> inos;
  inos.swap(reap_after_op_);
  for (uint64_t ino : inos) VEXFS_RETURN_IF_ERROR(MaybeReap(ino));
  return Status::Ok();
}

Status FsImpl::MaybeReap(uint64_t ino) {
  auto it = refs_.find(ino);
  if (it != refs_.end() && it->second > 0) return Status::Ok();
  auto r = GetInode(ino);
  if (!r.ok()) return Status::Ok();
  if (Le32(r->raw->i_links) != 0) return Status::Ok();
  return Reap(ino);
}

Status FsImpl::ReapStep(uint64_t ino, bool* done) {
  *done = false;
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  Dirty(r);
  if (r.is_dir()) {
    VEXFS_RETURN_IF_ERROR(Dir(r).Destroy());
  } else if ((r.is_reg() || r.is_lnk()) && !(Le32(r.raw->i_flags) & VEXFS_INODE_FL_INLINE_SYMLINK)) {
    bool all = false;
    VEXFS_RETURN_IF_ERROR(Extents(r).Remove(0, VEXFS_MAX_FILE_BLOCKS + 1, 256, &all));
    if (!all) return Status::Ok();
  }
  // Extended attributes (and their EA inodes, freed in the same step).
  XattrStore xs(this, r);
  VEXFS_RETURN_IF_ERROR(xs.DropAll());
  VEXFS_RETURN_IF_ERROR(RemoveOrphan(ino));
  std::memset(r.raw, 0, sizeof(*r.raw));
  no_sec_xattrs_.Forget(ino);
  VEXFS_RETURN_IF_ERROR(inodes_->Free(ino - 1, 1));
  refs_.erase(ino);
  *done = true;
  return Status::Ok();
}

Status FsImpl::Reap(uint64_t ino) {
  for (;;) {
    bool done = false;
    VEXFS_RETURN_IF_ERROR(RunOp([&] { return ReapStep(ino, &done); }));
    if (done) return Status::Ok();
  }
}

Status FsImpl::ProcessOrphans(uint64_t* released, uint64_t* truncated) {
  *released = 0;
  *truncated = 0;
  std::unordered_set<uint64_t> seen;
  for (;;) {
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, Super());
    const uint64_t head = Le64(reinterpret_cast<vexfs_super_block*>(b->data)->s_orphan_head);
    if (head == 0) return Status::Ok();
    if (!seen.insert(head).second) return Status::Corruption("orphan list loops");
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(head));
    const bool flagged = Le32(r.raw->i_flags) & VEXFS_INODE_FL_ORPHAN;
    if (Le32(r.raw->i_links) != 0 && r.is_reg() && flagged) {
      // A truncation cut by a crash: unmap the rest (the last step takes it
      // off the list).
      VEXFS_RETURN_IF_ERROR(CutPastEnd(head, std::nullopt));
      (*truncated)++;
    } else if (Le32(r.raw->i_links) != 0) {
      // Nothing a mounted filesystem leaves: just take it off the list.
      VEXFS_RETURN_IF_ERROR(RunOp([&] { return RemoveOrphan(head); }));
    } else {
      VEXFS_RETURN_IF_ERROR(Reap(head));
      (*released)++;
    }
  }
}

void FsImpl::Ref(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  refs_[ino]++;
}

void FsImpl::Forget(uint64_t ino, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  ForgetLocked(ino, n);
}

void FsImpl::ForgetMany(std::span<const ForgetItem> items) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const ForgetItem& f : items) ForgetLocked(f.ino, f.n);
}

void FsImpl::ForgetLocked(uint64_t ino, uint64_t n) {
  auto it = refs_.find(ino);
  if (it == refs_.end()) return;
  it->second = it->second > n ? it->second - n : 0;
  if (it->second == 0) {
    refs_.erase(it);
    if (mounted_ && !read_only_ && !cache_->failed()) MaybeReap(ino).IgnoreError();
  }
}

Result<Attr> FsImpl::GetAttr(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  return ToAttr(r);
}

Status FsImpl::Access(uint64_t ino, int mask, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  if ((mask & W_OK) && read_only_) return Status::Error(EROFS, "read-only filesystem");
  return Perm(r, mask, cred);
}

Status FsImpl::CheckOpen(uint64_t ino, int flags, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  int mask = 0;
  const int acc = flags & O_ACCMODE;
  if (acc == O_RDONLY || acc == O_RDWR) mask |= R_OK;
  if (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC)) mask |= W_OK;
  if ((mask & W_OK) && r.is_dir()) return Status::Error(EISDIR, "is a directory");
  if ((mask & W_OK) && read_only_) return Status::Error(EROFS, "read-only filesystem");
  if ((mask & W_OK) && (Le32(r.raw->i_flags) & VEXFS_INODE_FL_IMMUTABLE)) {
    return Status::Error(EPERM, "immutable file");
  }
  return Perm(r, mask, cred);
}

Status FsImpl::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!mounted_) return Status::Error(EIO, "not mounted");
  if (read_only_) return Status::Ok();
  if (cache_->failed()) return Status::IoError("volume was shut down after an I/O error");
  const uint64_t before = cache_->stats().commits;
  VEXFS_RETURN_IF_ERROR(cache_->Commit());
  // A commit flushes; without one, data written in place still needs it.
  if (cache_->stats().commits == before) return dev_->Flush();
  return Status::Ok();
}

Status FsImpl::Fsync(uint64_t ino, bool datasync) { return Sync(); }

Result<FsStats> FsImpl::StatFs() {
  std::lock_guard<std::mutex> lock(mu_);
  FsStats s;
  s.blocks = geo_.block_count;
  s.free_blocks = blocks_->free_count();
  s.available_blocks = blocks_->free_count();
  s.inodes = geo_.inode_count;
  s.free_inodes = inodes_->free_count();
  return s;
}

}  // namespace core
}  // namespace vexfs
