// File data: read, write, truncate, fallocate, SEEK_DATA/SEEK_HOLE.
//
// Data blocks bypass the buffer cache and are written before the
// operation that maps them commits (ordered mode). Overwrites of written
// blocks in place need no journaling but the file times; they run outside
// the filesystem lock (see Write), and without taking it at all when the
// times are the caller's and the file's extent map has a current snapshot
// (MapSnapshot in fs_impl.h).
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "core/fs_impl.h"

namespace vexfs::core {
namespace {

constexpr uint64_t kBs = VEXFS_BLOCK_SIZE;
constexpr uint64_t kMaxBytes = (VEXFS_MAX_FILE_BLOCKS) * kBs;
constexpr size_t kChunk = 1 << 20;  // bytes written per atomic operation
constexpr int64_t kRelatimeSeconds = 24 * 3600;  // a read updates an atime this old

}  // namespace

Status FsImpl::WriteChunk(const InodeRef& r, uint64_t offset, std::span<const uint8_t> data,
                          bool times) {
  const uint64_t end = offset + data.size();
  const uint64_t first = offset / kBs, last = (end - 1) / kBs;
  VEXFS_RETURN_IF_ERROR(ZeroPastEnd(r, offset));
  // A partial block is read, merged and written back: not while an
  // overwrite of this file runs outside mu_.
  std::unique_lock<std::shared_mutex> rmw(DataLock(r.ino), std::defer_lock);
  if (offset % kBs != 0 || end % kBs != 0) rmw.lock();
  Dirty(r);
  ExtentMap map = Extents(r);
  std::vector<uint8_t> buf;
  uint64_t blk = first;
  uint64_t prev_phys = 0;
  while (blk <= last) {
    VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
    uint64_t run = std::min<uint64_t>(m.len, last - blk + 1);
    const uint64_t run_off = blk * kBs;  // file offset of the run
    // Bytes of `data` that land in this run.
    const uint64_t lo = std::max(offset, run_off), hi = std::min(end, run_off + run * kBs);
    uint64_t phys;
    bool fresh = m.hole() || m.unwritten;
    if (m.hole()) {
      const uint64_t goal = prev_phys ? prev_phys + 1 : geo_.data_start + (r.ino * 64) % (geo_.block_count - geo_.data_start);
      VEXFS_ASSIGN_OR_RETURN(Extent e, blocks_->Alloc(goal, std::min<uint64_t>(run, VEXFS_EXTENT_MAX_LEN)));
      run = e.len;
      phys = e.start;
    } else {
      phys = m.start;
    }
    const uint64_t hi2 = std::min(hi, run_off + run * kBs);
    const bool partial_head = lo > run_off, partial_tail = hi2 < run_off + run * kBs;
    buf.resize(run * kBs);
    if (fresh) {
      if (partial_head || partial_tail) std::fill(buf.begin(), buf.end(), 0);
    } else {
      if (partial_head) VEXFS_RETURN_IF_ERROR(dev_->Read(phys, 1, buf.data()));
      if (partial_tail && (run > 1 || !partial_head)) {
        VEXFS_RETURN_IF_ERROR(dev_->Read(phys + run - 1, 1, buf.data() + (run - 1) * kBs));
      }
    }
    std::memcpy(buf.data() + (lo - run_off), data.data() + (lo - offset), hi2 - lo);
    VEXFS_RETURN_IF_ERROR(dev_->Write(phys, static_cast<uint32_t>(run), buf.data()));
    if (fresh) cache_->NoteOrderedData();
    if (m.hole()) {
      VEXFS_RETURN_IF_ERROR(map.Insert(blk, phys, static_cast<uint32_t>(run), false));
    } else if (m.unwritten) {
      VEXFS_RETURN_IF_ERROR(map.MarkWritten(blk, blk + run));
    }
    prev_phys = phys + run - 1;
    blk += run;
  }
  if (end > Le64(r.raw->i_size)) {
    // The new size exposes bytes written in place (in a block the file
    // already mapped, as well as new ones): they go first.
    r.raw->i_size = ToLe64(end);
    cache_->NoteOrderedData();
  }
  if (times) SetTimes(r, false, true, true);
  return Status::Ok();
}

Result<std::vector<ReadSegment>> FsImpl::PlanOverwrite(const InodeRef& r, uint64_t offset,
                                                       size_t len) {
  std::vector<ReadSegment> plan;
  const uint64_t end = offset + len;
  if (offset % kBs != 0 || len % kBs != 0 || end > Le64(r.raw->i_size)) return plan;
  ExtentMap map = Extents(r);
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t blk = pos / kBs;
    VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
    if (m.hole() || m.unwritten) return std::vector<ReadSegment>{};
    const uint64_t run_end = std::min<uint64_t>(end, (blk + m.len) * kBs);
    if (run_end <= pos) {  // a hostile i_size past 2^64 / 4096 blocks, or an empty run: never loop
      return Status::Corruption("inode " + std::to_string(r.ino) + ": no mapping at byte " + std::to_string(pos));
    }
    ReadSegment seg;
    seg.out_offset = pos - offset;
    seg.bytes = run_end - pos;
    seg.phys = m.start;
    plan.push_back(seg);
    pos = run_end;
  }
  return plan;
}

Status FsImpl::WriteAllocating(std::unique_lock<std::mutex>& lock, uint64_t ino,
                               uint64_t offset, std::span<const uint8_t> data, bool times,
                               bool* fallback) {
  *fallback = false;
  const uint64_t first = offset / kBs, end_blk = (offset + data.size()) / kBs;
  struct Run {
    uint64_t blk, phys, len;
    bool unwritten;  // to be marked written once the data is on the device
  };
  std::vector<Run> runs;
  uint64_t tail_gen = 0;
  // Holes become unwritten extents: until the second operation they read
  // as zeros, and a crash in between leaves allocated blocks past EOF (or
  // unwritten ones inside it), which is a consistent volume.
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    runs.clear();
    tail_gen = TailGen(ino);
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    ExtentMap map = Extents(r);
    uint64_t goal = 0;
    if (first > 0) {
      VEXFS_ASSIGN_OR_RETURN(BlockMapping prev, map.Lookup(first - 1));
      if (!prev.hole()) goal = prev.start + 1;
    }
    bool dirty = false;
    for (uint64_t blk = first; blk < end_blk;) {
      VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
      uint64_t run = std::min<uint64_t>(m.len, end_blk - blk);
      uint64_t phys = m.start;
      if (m.hole()) {
        if (goal == 0) goal = geo_.data_start + (ino * 64) % (geo_.block_count - geo_.data_start);
        VEXFS_ASSIGN_OR_RETURN(Extent e,
                               blocks_->Alloc(goal, std::min<uint64_t>(run, VEXFS_EXTENT_MAX_LEN)));
        if (!dirty) Dirty(r);
        dirty = true;
        VEXFS_RETURN_IF_ERROR(map.Insert(blk, e.start, static_cast<uint32_t>(e.len), true));
        run = e.len;
        phys = e.start;
      }
      runs.push_back({blk, phys, run, m.hole() || m.unwritten});
      goal = phys + run;
      blk += run;
    }
    return Status::Ok();
  }));
  {
    // As for overwrites: freed blocks are not reused under us (io_mu_), no
    // read-modify-write of these blocks runs meanwhile (DataLock).
    std::shared_lock<std::shared_mutex> io(io_mu_);
    std::shared_lock<std::shared_mutex> contents(DataLock(ino));
    lock.unlock();
    Status s;
    for (const Run& run : runs) {
      s = dev_->Write(run.phys, static_cast<uint32_t>(run.len),
                      data.data() + (run.blk - first) * kBs);
      if (!s.ok()) break;
    }
    contents.unlock();
    io.unlock();
    lock.lock();
    VEXFS_RETURN_IF_ERROR(s);
  }
  // The data is written: map it. If a truncation, hole punch or another
  // write changed any of these extents meanwhile, leave them alone and let
  // the caller redo the write under mu_ (a valid order of the two). The
  // runs written in place count too: a truncation that cut them would
  // otherwise see the size raised over the holes it left; and so does a
  // truncation downwards or zeros written in place meanwhile (TailGen):
  // bytes this write wrote in place may then have been zeroed (a growth
  // zeroing the old last block past its end, a hole punch's edges) or
  // cut and rewritten by another write, after them, and raising the size
  // would expose that under this write's.
  return RunOp([&]() -> Status {
    *fallback = TailGen(ino) != tail_gen;
    if (*fallback) return Status::Ok();
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    ExtentMap map = Extents(r);
    bool any_unwritten = false;
    for (const Run& run : runs) {
      VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(run.blk));
      if (m.hole() || m.unwritten != run.unwritten || m.start != run.phys || m.len < run.len) {
        *fallback = true;
        return Status::Ok();
      }
      any_unwritten |= run.unwritten;
    }
    Dirty(r);
    for (const Run& run : runs) {
      if (run.unwritten) VEXFS_RETURN_IF_ERROR(map.MarkWritten(run.blk, run.blk + run.len));
    }
    const uint64_t end = offset + data.size();
    VEXFS_RETURN_IF_ERROR(ZeroPastEnd(r, offset));
    // Newly mapped data, or a new size over blocks written in place, must
    // be durable before this commits.
    if (any_unwritten || end > Le64(r.raw->i_size)) cache_->NoteOrderedData();
    if (end > Le64(r.raw->i_size)) r.raw->i_size = ToLe64(end);
    if (times) SetTimes(r, false, true, true);
    return Status::Ok();
  });
}

void FsImpl::NoteMapUse(const InodeRef& r) {
  std::atomic<std::shared_ptr<const MapSnapshot>>& slot = snapshots_[r.ino % kMapStripes];
  const uint64_t gen = MapGen(r.ino).load(std::memory_order_acquire);
  std::shared_ptr<const MapSnapshot> cur = slot.load(std::memory_order_acquire);
  const bool seen = cur && cur->ino == r.ino && cur->gen == gen;
  if (seen && cur->complete) return;
  auto snap = std::make_shared<MapSnapshot>();
  snap->ino = r.ino;
  snap->gen = gen;
  snap->size = Le64(r.raw->i_size);
  const int64_t at = static_cast<int64_t>(Le64(r.raw->i_atime));
  if (read_only_) {
    snap->atime_kept_until = INT64_MAX;
  } else if (at > static_cast<int64_t>(Le64(r.raw->i_mtime)) &&
             at > static_cast<int64_t>(Le64(r.raw->i_ctime))) {
    snap->atime_kept_until = at + kRelatimeSeconds;
  }
  if (seen) {
    bool fits = true;
    Status s = Extents(r).ForEach([&](const ExtentRec& e) {
      if (snap->extents.size() == kMaxSnapshotExtents) return fits = false;
      snap->extents.push_back(e);
      return true;
    });
    if (!s.ok() || !fits) return;  // the mark stays: no copy next time either
    snap->complete = true;
  }
  slot.store(std::move(snap), std::memory_order_release);
}

std::shared_ptr<const FsImpl::MapSnapshot> FsImpl::CurrentSnapshot(uint64_t ino) {
  std::shared_ptr<const MapSnapshot> snap =
      snapshots_[ino % kMapStripes].load(std::memory_order_acquire);
  if (!snap || !snap->complete || snap->ino != ino) return nullptr;
  return snap;
}

bool FsImpl::PlanFromSnapshot(const MapSnapshot& snap, uint64_t offset, uint64_t end,
                              std::vector<ReadSegment>* plan) {
  plan->clear();
  const std::vector<ExtentRec>& ext = snap.extents;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t blk = pos / kBs;
    auto it = std::upper_bound(ext.begin(), ext.end(), blk,
                               [](uint64_t b, const ExtentRec& e) { return b < e.logical; });
    if (it == ext.begin() || (--it)->end() <= blk || it->unwritten) return false;
    ReadSegment seg;
    seg.out_offset = pos - offset;
    seg.bytes = std::min<uint64_t>(end, it->end() * kBs) - pos;
    seg.phys = it->start + (blk - it->logical);
    seg.skip = pos - blk * kBs;
    plan->push_back(seg);
    pos += seg.bytes;
  }
  return true;
}

Status FsImpl::WriteSegments(const std::vector<ReadSegment>& plan, std::span<const uint8_t> data) {
  for (const ReadSegment& seg : plan) {
    VEXFS_RETURN_IF_ERROR(dev_->Write(seg.phys, static_cast<uint32_t>(seg.bytes / kBs),
                                      data.data() + seg.out_offset));
  }
  return Status::Ok();
}

bool FsImpl::OverwriteUnlocked(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                               Status* status) {
  std::shared_ptr<const MapSnapshot> snap = CurrentSnapshot(ino);
  if (!snap) return false;
  const uint64_t end = offset + data.size();
  if (offset % kBs != 0 || data.empty() || data.size() % kBs != 0 || end > snap->size ||
      end < offset) {
    return false;
  }
  thread_local std::vector<ReadSegment> plan;
  if (!PlanFromSnapshot(*snap, offset, end, &plan)) return false;
  std::shared_lock<std::shared_mutex> io(io_mu_);
  std::shared_lock<std::shared_mutex> contents(DataLock(ino));
  if (MapGen(ino).load(std::memory_order_acquire) != snap->gen) return false;
  if (cache_->failed()) {
    *status = Status::IoError("volume was shut down after an I/O error");
    return true;
  }
  *status = WriteSegments(plan, data);
  return true;
}

Result<size_t> FsImpl::Write(uint64_t ino, uint64_t offset, std::span<const uint8_t> data,
                             WriteTimes times) {
  // Only times need journaling in an overwrite; without them it may skip mu_.
  if (times == WriteTimes::kKeep) {
    Status s;
    if (OverwriteUnlocked(ino, offset, data, &s)) {
      if (!s.ok()) return s;
      return data.size();
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  std::vector<ReadSegment> overwrite;
  {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    if (r.is_dir()) return Status::Error(EISDIR, "is a directory");
    if (!r.is_reg()) return Status::InvalidArgument("not a regular file");
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE)) return Status::Error(EPERM, "immutable file");
    if (data.empty()) return size_t{0};
    if (offset >= kMaxBytes || data.size() > kMaxBytes - offset) {
      return Status::Error(EFBIG, "write beyond the maximum file size");
    }
    VEXFS_ASSIGN_OR_RETURN(overwrite, PlanOverwrite(r, offset, data.size()));
    if (!overwrite.empty() && times == WriteTimes::kKeep) NoteMapUse(r);
  }
  if (!overwrite.empty()) {
    // In place: no block changes hands, the size stays, so nothing but the
    // times is journaled (before the data: a crash may leave new times over
    // old bytes, which an unsynced write may do anyway). The blocks cannot
    // be freed and reused under us (io_mu_), nor be read-modify-written
    // under mu_ meanwhile (DataLock).
    if (times == WriteTimes::kUpdate) {
      VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
        VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
        Dirty(r);
        SetTimes(r, false, true, true);
        return Status::Ok();
      }));
    }
    std::shared_lock<std::shared_mutex> io(io_mu_);
    std::shared_lock<std::shared_mutex> contents(DataLock(ino));
    lock.unlock();
    VEXFS_RETURN_IF_ERROR(WriteSegments(overwrite, data));
    return data.size();
  }
  if (offset % kBs == 0 && data.size() % kBs == 0 && data.size() <= kChunk) {
    bool fallback = false;
    VEXFS_RETURN_IF_ERROR(WriteAllocating(lock, ino, offset, data,
                                          times == WriteTimes::kUpdate, &fallback));
    if (!fallback) return data.size();
  }
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min(kChunk - (offset + done) % kChunk, data.size() - done);
    Status s = RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
      return WriteChunk(r, offset + done, data.subspan(done, n), times == WriteTimes::kUpdate);
    });
    if (!s.ok()) {
      if (done > 0 && s.err() == ENOSPC) return done;  // short write
      return s;
    }
    done += n;
  }
  return done;
}

Result<std::vector<ReadSegment>> FsImpl::PlanRead(const InodeRef& r, uint64_t offset, size_t len,
                                                   size_t* total) {
  std::vector<ReadSegment> plan;
  *total = 0;
  const uint64_t size = Le64(r.raw->i_size);
  if (offset >= size) return plan;
  const uint64_t end = std::min<uint64_t>(size, offset + len);
  ExtentMap map = Extents(r);
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t blk = pos / kBs;
    VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
    const uint64_t run_end = std::min<uint64_t>(end, (blk + m.len) * kBs);
    if (run_end <= pos) {  // a hostile i_size past 2^64 / 4096 blocks, or an empty run: never loop
      return Status::Corruption("inode " + std::to_string(r.ino) + ": no mapping at byte " + std::to_string(pos));
    }
    ReadSegment seg;
    seg.out_offset = pos - offset;
    seg.bytes = run_end - pos;
    seg.phys = (m.hole() || m.unwritten) ? 0 : m.start;
    seg.skip = pos - blk * kBs;
    plan.push_back(seg);
    pos = run_end;
  }
  *total = static_cast<size_t>(end - offset);
  return plan;
}

Status FsImpl::ExecuteRead(const std::vector<ReadSegment>& plan, std::span<uint8_t> out,
                           bool file_data) {
  std::vector<uint8_t> bounce;
  for (const ReadSegment& seg : plan) {
    uint8_t* dst = out.data() + seg.out_offset;
    if (seg.phys == 0) {
      std::memset(dst, 0, seg.bytes);
    } else if (seg.skip == 0 && seg.bytes % kBs == 0) {
      const auto n = static_cast<uint32_t>(seg.bytes / kBs);
      VEXFS_RETURN_IF_ERROR(file_data ? dev_->ReadData(seg.phys, n, dst) : dev_->Read(seg.phys, n, dst));
    } else {
      const uint64_t nblk = (seg.skip + seg.bytes + kBs - 1) / kBs;
      bounce.resize(nblk * kBs);
      VEXFS_RETURN_IF_ERROR(dev_->Read(seg.phys, static_cast<uint32_t>(nblk), bounce.data()));
      std::memcpy(dst, bounce.data() + seg.skip, seg.bytes);
    }
  }
  return Status::Ok();
}

Result<size_t> FsImpl::ReadData(const InodeRef& r, uint64_t offset, std::span<uint8_t> out) {
  size_t total = 0;
  VEXFS_ASSIGN_OR_RETURN(auto plan, PlanRead(r, offset, out.size(), &total));
  VEXFS_RETURN_IF_ERROR(ExecuteRead(plan, out));
  return total;
}

bool FsImpl::ReadUnlocked(uint64_t ino, uint64_t offset, std::span<uint8_t> out, size_t* n,
                          Status* status) {
  std::shared_ptr<const MapSnapshot> snap = CurrentSnapshot(ino);
  if (!snap) return false;
  const uint64_t end = std::min<uint64_t>(snap->size, offset + out.size());
  thread_local std::vector<ReadSegment> plan;
  if (!PlanFromSnapshot(*snap, offset, end, &plan)) return false;
  std::shared_lock<std::shared_mutex> io(io_mu_);
  if (MapGen(ino).load(std::memory_order_acquire) != snap->gen) return false;
  if (Now().sec >= snap->atime_kept_until) return false;
  *n = end > offset ? static_cast<size_t>(end - offset) : 0;
  *status = ExecuteRead(plan, out, true);
  return true;
}

Result<size_t> FsImpl::Read(uint64_t ino, uint64_t offset, std::span<uint8_t> out) {
  {
    size_t n = 0;
    Status s;
    if (ReadUnlocked(ino, offset, out, &n, &s)) {
      if (!s.ok()) return s;
      return n;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  if (r.is_dir()) return Status::Error(EISDIR, "is a directory");
  if (!r.is_reg()) return Status::InvalidArgument("not a regular file");
  size_t n = 0;
  VEXFS_ASSIGN_OR_RETURN(auto plan, PlanRead(r, offset, out.size(), &n));
  // relatime: update atime when it is older than mtime/ctime or a day old.
  if (!read_only_ && !cache_->failed() && n > 0) {
    const int64_t at = static_cast<int64_t>(Le64(r.raw->i_atime));
    const int64_t mt = static_cast<int64_t>(Le64(r.raw->i_mtime));
    const int64_t ct = static_cast<int64_t>(Le64(r.raw->i_ctime));
    if (at <= mt || at <= ct || Now().sec - at >= kRelatimeSeconds) {
      RunOp([&]() -> Status {
        VEXFS_ASSIGN_OR_RETURN(InodeRef w, GetInode(ino));
        Dirty(w);
        SetTimes(w, true, false, false);
        return Status::Ok();
      }).IgnoreError();
    } else {
      NoteMapUse(r);
    }
  } else if (n > 0 && read_only_) {
    NoteMapUse(r);
  }
  // The device reads run without the filesystem lock. Blocks freed
  // meanwhile stay quarantined until a checkpoint, and a checkpoint waits
  // for readers (io_mu_), so a racing truncate can never hand these blocks
  // to another file while we read them.
  std::shared_lock<std::shared_mutex> io(io_mu_);
  lock.unlock();
  VEXFS_RETURN_IF_ERROR(ExecuteRead(plan, out, true));
  return n;
}

// Zeroes file bytes [offset, end) that lie inside one block, on disk.
Status FsImpl::ZeroPartial(const InodeRef& r, uint64_t offset, uint64_t end, bool ordered) {
  if (end <= offset) return Status::Ok();
  const uint64_t blk = offset / kBs;
  VEXFS_ASSIGN_OR_RETURN(BlockMapping m, Extents(r).Lookup(blk));
  if (m.hole() || m.unwritten) return Status::Ok();
  std::vector<uint8_t> buf(kBs);
  std::unique_lock<std::shared_mutex> rmw(DataLock(r.ino));
  TailGen(r.ino)++;
  VEXFS_RETURN_IF_ERROR(dev_->Read(m.start, 1, buf.data()));
  std::memset(buf.data() + (offset - blk * kBs), 0, end - offset);
  VEXFS_RETURN_IF_ERROR(dev_->Write(m.start, 1, buf.data()));
  if (ordered) cache_->NoteOrderedData();
  return Status::Ok();
}

Status FsImpl::ZeroPastEnd(const InodeRef& r, uint64_t upto) {
  const uint64_t size = Le64(r.raw->i_size);
  if (upto <= size || size % kBs == 0) return Status::Ok();
  return ZeroPartial(r, size, std::min(upto, (size / kBs + 1) * kBs), /*ordered=*/true);
}

Status FsImpl::Truncate(uint64_t ino, uint64_t size) {
  if (size > kMaxBytes) return Status::Error(EFBIG, "size beyond the maximum file size");
  return CutPastEnd(ino, size);
}

Status FsImpl::CutPastEnd(uint64_t ino, std::optional<uint64_t> size) {
  // The size changes in the same operation as the first step of the
  // unmapping (256 extents): a crash after a size change whose cut blocks
  // stayed mapped and written would let a later extension read their old
  // bytes. A longer file loses the rest in further steps, and a crash
  // between them would leave the same: so the first step also puts the
  // file on the orphan list (linked, it stands for a pending truncation,
  // which the mount and fsck finish) and the last takes it off.
  // A cut does not zero the part of its new last block past the new end:
  // that write would reach the disk before the cut commits, and a crash in
  // between would leave the file at its old size with those bytes lost.
  // They are bytes past the end (format.md section 8), zeroed by whatever
  // grows the file again (ZeroPastEnd).
  bool done = false;
  for (bool first_step = true; !done; first_step = false) {
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
      Dirty(r);
      if (first_step && size) {
        if (*size < Le64(r.raw->i_size)) TailGen(ino)++;
        VEXFS_RETURN_IF_ERROR(ZeroPastEnd(r, *size));
        r.raw->i_size = ToLe64(*size);
        SetTimes(r, false, true, true);
      }
      const uint64_t first = (Le64(r.raw->i_size) + kBs - 1) / kBs;
      VEXFS_RETURN_IF_ERROR(Extents(r).Remove(first, VEXFS_MAX_FILE_BLOCKS + 1, 256, &done));
      const bool listed = Le32(r.raw->i_flags) & VEXFS_INODE_FL_ORPHAN;
      if (!done && !listed) return AddOrphan(r);
      // (An unlinked file stays listed: it is released later.)
      if (done && listed && Le32(r.raw->i_links) != 0) return RemoveOrphan(ino);
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

Status FsImpl::AllocateRange(const InodeRef& r, uint64_t first_blk, uint64_t end_blk) {
  ExtentMap map = Extents(r);
  uint64_t blk = first_blk;
  while (blk < end_blk) {
    VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
    const uint64_t run = std::min<uint64_t>(m.len, end_blk - blk);
    if (!m.hole()) {
      blk += run;
      continue;
    }
    VEXFS_ASSIGN_OR_RETURN(Extent e, blocks_->Alloc(geo_.data_start, std::min<uint64_t>(run, VEXFS_EXTENT_MAX_LEN)));
    VEXFS_RETURN_IF_ERROR(map.Insert(blk, e.start, static_cast<uint32_t>(e.len), true));
    blk += e.len;
  }
  return Status::Ok();
}

Status FsImpl::Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  if (length == 0) return Status::InvalidArgument("zero length");
  if (offset >= kMaxBytes || length > kMaxBytes - offset) return Status::Error(EFBIG, "range beyond the maximum file size");
  {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    if (r.is_dir()) return Status::Error(EISDIR, "is a directory");
    if (!r.is_reg()) return Status::Error(ENODEV, "not a regular file");
  }
  const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~known) return Status::Error(EOPNOTSUPP, "unsupported fallocate mode");
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) {
    return Status::Error(EOPNOTSUPP, "PUNCH_HOLE requires KEEP_SIZE");
  }
  if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) {
    return Status::Error(EOPNOTSUPP, "PUNCH_HOLE and ZERO_RANGE together");
  }
  const uint64_t end = offset + length;
  const bool punch = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE);
  if (punch) {
    // Partial blocks at the edges are zeroed in place; whole blocks unmapped.
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
      const uint64_t size = Le64(r.raw->i_size);
      const uint64_t zend = std::min(end, std::max(size, offset));
      const uint64_t head_end = std::min(zend, (offset / kBs + 1) * kBs);
      if (offset % kBs) VEXFS_RETURN_IF_ERROR(ZeroPartial(r, offset, head_end));
      if (zend % kBs && (zend / kBs > offset / kBs || offset % kBs == 0)) {
        VEXFS_RETURN_IF_ERROR(ZeroPartial(r, zend / kBs * kBs, zend));
      }
      Dirty(r);
      SetTimes(r, false, true, true);
      return Status::Ok();
    }));
    const uint64_t first = (offset + kBs - 1) / kBs, last = end / kBs;
    for (bool done = false; !done && first < last;) {
      VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
        VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
        Dirty(r);
        return Extents(r).Remove(first, last, 256, &done);
      }));
    }
  }
  if (mode & FALLOC_FL_PUNCH_HOLE) return Status::Ok();
  // Allocate unwritten extents over holes, 32 MiB per operation.
  const uint64_t first = offset / kBs, last = (end + kBs - 1) / kBs;
  constexpr uint64_t kStep = 8192;
  for (uint64_t b = first; b < last; b += kStep) {
    VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
      VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
      Dirty(r);
      return AllocateRange(r, b, std::min(last, b + kStep));
    }));
  }
  return RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    Dirty(r);
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > Le64(r.raw->i_size)) {
      VEXFS_RETURN_IF_ERROR(ZeroPastEnd(r, end));
      r.raw->i_size = ToLe64(end);
    }
    SetTimes(r, false, !(mode & FALLOC_FL_KEEP_SIZE) || punch, true);
    return Status::Ok();
  });
}

Result<uint64_t> FsImpl::SeekData(uint64_t ino, uint64_t offset, int whence) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return Status::InvalidArgument("bad whence");
  const uint64_t size = Le64(r.raw->i_size);
  if (offset >= size) return Status::Error(ENXIO, "offset beyond end of file");
  if (!r.is_reg()) return whence == SEEK_DATA ? offset : size;
  ExtentMap map = Extents(r);
  uint64_t pos = offset;
  while (pos < size) {
    const uint64_t blk = pos / kBs;
    VEXFS_ASSIGN_OR_RETURN(BlockMapping m, map.Lookup(blk));
    const bool data = !m.hole() && !m.unwritten;
    if (whence == SEEK_DATA && data) return pos;
    if (whence == SEEK_HOLE && !data) return pos;
    if (m.len >= UINT32_MAX || (blk + m.len) * kBs <= pos) break;  // (a hostile size overflows)
    pos = (blk + m.len) * kBs;
  }
  if (whence == SEEK_HOLE) return size;
  return Status::Error(ENXIO, "no data after offset");
}

}  // namespace vexfs::core
