// Crash consistency under concurrency. crash_test.cc records single-threaded
// workloads, where a commit can only fall between two operations; here
// several writer threads extend, overwrite (also through the unlocked
// paths), truncate and fallocate files of their own with known byte
// patterns, while another thread syncs at random moments and the commit
// timer commits every millisecond. A hook in the test device makes some
// data-area writes of the writers wait (up to 2 ms) for a Sync that another
// thread starts at that moment, so commits land while a data write is in
// flight. Every write and flush is recorded with the thread that made it;
// each call records where in the log it began and ended.
//
// Then, for a sample of the flushes (durable states), a sample of other
// prefixes of the log, and at flushes images that lost some of the writes
// since the previous flush (a volatile write cache), a copy of the image
// is recovered and checked:
//   - fsck finds nothing, before the mount (journal overlaid) and after it;
//   - every file's size is one it had after a call that was complete when
//     the last durable Sync (or its own Fsync) began, or after a later call
//     that had begun by the crash point;
//   - every byte inside the file is a value that byte held, inside the file,
//     in one of those states (data synced and not touched since is intact;
//     a byte past the end of the file in every such state, say the tail of
//     an extending write whose size commit landed without its data, fails);
//   - grown back by truncation, fallocate or a write past the end, the file
//     reads zeros past its recovered size.
//
// A second workload (WritersRacingOnTheSameFiles) has every writer work on
// the same two files, so calls on one file overlap: two extensions, an
// overwrite (locked or not) and a truncation, a write and a hole punch.
// Overlapping calls take effect in either order, so no one sequence of
// states describes the file. Each call is modelled by what it does to
// whatever it finds: a write sets its bytes to its pattern and raises the
// size to its end; a truncation to s sets the size to s and the bytes from s
// on to zero (what growing the file again exposes); a fallocate raises the
// size to its end unless KEEP_SIZE, and sets its range to zero if it
// punches or zeroes. Call a precedes b if a returned before b was called
// (a ticket counter read around every call): a comes first in every order
// the filesystem may have taken. A call is durable if it ended before the
// last durable Sync (or Fsync of its file) began, and may have taken effect
// if it began by the crash point. The recovered file is that of some order
// of some set of calls that holds every durable call, only calls that may
// have taken effect, and what precedes each (a call that is not durable
// never precedes a durable one), so:
//   - its size is one set by a truncation, or raised to by a growing call,
//     that may have taken effect and is not followed by a durable truncation
//     (the last truncation, or a growth after it; 0 if none is durable);
//   - its size is at least each durable call's, unless a truncation to
//     less that may have taken effect does not precede that call;
//   - each byte inside the file holds a value that a call which may have
//     taken effect set there, and no durable call setting that byte follows
//     that call (zero if no durable call set it). So synced bytes come back
//     unless a later or racing call changed them, and garbage, another
//     file's bytes, or bytes a durable call overwrote, fail.
// (Each call changes the size in one operation: these files stay under
// 64 KiB, truncated in one step.) Once the threads are done, the volume
// itself must pass the same check with every call durable; and in one
// crash image in four the first workload's files, whose calls are ordered,
// are checked by this model too, which must accept what the states accept.
//
// VEXFS_CRASH_POINTS lowers the number of images per seed (ASan runs);
// VEXFS_CRASH_SEEDS and VEXFS_CRASH_SEED_BASE run other seeds, to hunt.
// The file also holds the regression tests of what it found that the
// single-threaded crash tests could not see.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "core/layout.h"
#include "fs_test_util.h"
#include "vexfs/fsck.h"

namespace vexfs {
namespace {

constexpr uint64_t kNoFlush = UINT64_MAX;

// The worker whose call runs on this thread (-1: none: the syncer, the
// commit timer) and the index of the last flush this thread made.
thread_local int t_actor = -1;
thread_local size_t t_last_flush = SIZE_MAX;

// What the device saw: every write (one event a block) and flush, in order.
struct Recording {
  struct Event {
    uint64_t block;  // kNoFlush for a flush
    std::vector<uint8_t> data;
    int actor;
  };
  std::mutex mu;
  std::vector<uint8_t> image;  // the device's current contents
  std::vector<Event> log;
  std::atomic<uint64_t> ticket{0};  // orders calls in real time (see SharedFile)
  size_t Mark() {
    std::lock_guard<std::mutex> lock(mu);
    return log.size();
  }
};

// Records into `rec`. `hook`, when set, runs on a writer's thread before
// each of its writes to the data area reaches the device, and `after`
// (if given and set) once it has.
class ThreadRecordingDevice : public BlockDevice {
 public:
  ThreadRecordingDevice(Recording* rec, uint64_t data_start, std::function<void()>* hook,
                        std::function<void()>* after = nullptr)
      : rec_(rec), data_start_(data_start), hook_(hook), after_(after) {}
  uint64_t block_count() const override { return rec_->image.size() / kBlockSize; }
  Status Read(uint64_t block, uint32_t count, void* buf) override {
    if (block + count > block_count()) return Status::IoError("read beyond end");
    std::lock_guard<std::mutex> lock(rec_->mu);
    std::memcpy(buf, rec_->image.data() + block * kBlockSize, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (block + count > block_count()) return Status::IoError("write beyond end");
    const bool data = t_actor >= 0 && block >= data_start_;
    if (data && *hook_) (*hook_)();
    {
      std::lock_guard<std::mutex> lock(rec_->mu);
      const auto* p = static_cast<const uint8_t*>(buf);
      for (uint32_t i = 0; i < count; i++) {
        rec_->log.push_back(
            {block + i, std::vector<uint8_t>(p + size_t{i} * kBlockSize, p + size_t{i + 1} * kBlockSize), t_actor});
      }
      std::memcpy(rec_->image.data() + block * kBlockSize, buf, size_t{count} * kBlockSize);
    }
    if (data && after_ && *after_) (*after_)();
    return Status::Ok();
  }
  Status Flush() override {
    std::lock_guard<std::mutex> lock(rec_->mu);
    t_last_flush = rec_->log.size();
    rec_->log.push_back({kNoFlush, {}, t_actor});
    return Status::Ok();
  }

 private:
  Recording* rec_;
  uint64_t data_start_;
  std::function<void()>* hook_;
  std::function<void()>* after_;
};

// A Sync (every file) or an Fsync (file `file`) that completed: calls that
// ended by `start` are durable once the flush at `flush` is.
struct SyncRec {
  size_t start, flush;
  int file;  // -1: every file; else an index into Workload::files, then ::shared
};

// A file every writer works on: the calls made on it, each with what it
// does to the file whatever state it finds (see the header comment).
struct SharedFile {
  std::string name;
  uint64_t ino = 0;
  struct Call {
    uint64_t t0, t1;      // tickets taken just before and just after the call
    size_t start, end;    // log marks around it
    enum Kind { kWrite, kTruncate, kFallocate } kind;
    int mode;             // kFallocate
    uint64_t off, len;    // kWrite, kFallocate; kTruncate: the new size in off
    uint8_t pattern;      // kWrite
    std::string what;     // for messages
    // The bytes it sets, [*lo, *hi) to *v; false if none.
    bool Sets(uint64_t* lo, uint64_t* hi, uint8_t* v) const {
      *lo = off;
      *hi = kind == kTruncate ? UINT64_MAX : off + len;
      *v = kind == kWrite ? pattern : 0;
      return kind != kFallocate || (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE));
    }
    bool truncates() const { return kind == kTruncate; }
    bool grows() const { return kind == kWrite || (kind == kFallocate && !(mode & FALLOC_FL_KEEP_SIZE)); }
    uint64_t size() const { return kind == kTruncate ? off : off + len; }  // truncates() or grows()
    bool before(const Call& o) const { return t1 < o.t0; }  // ended before o began
  };
  std::vector<Call> calls;
};

// One file's history: its state after each call on it (state 0: empty, as
// created and synced before the workload).
struct FileModel {
  std::string name;
  uint64_t ino = 0;
  struct State {
    size_t start, end;  // log marks around the call
    std::vector<uint8_t> content;  // its size is the file's
    std::string what;              // the call, for messages
  };
  std::vector<State> states;
  SharedFile as_calls;  // the same calls as a shared file's (to check that model too)
};

constexpr uint64_t kMaxFile = 64 * 1024;

// A thread that runs Sync when asked; Request waits for it (at most 2 ms:
// the asker may hold the filesystem lock the Sync needs).
class SyncOnRequest {
 public:
  SyncOnRequest(Filesystem* fs, Recording* rec, std::mutex* syncs_mu, std::vector<SyncRec>* syncs)
      : fs_(fs), rec_(rec), syncs_mu_(syncs_mu), syncs_(syncs), thread_([this] { Run(); }) {}
  ~SyncOnRequest() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Request() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t id = ++requested_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(2), [&] { return served_ >= id; });
  }
  uint64_t served() {
    std::lock_guard<std::mutex> lock(mu_);
    return served_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || requested_ > served_; });
      if (stop_) return;
      const uint64_t id = requested_;
      lock.unlock();
      const size_t start = rec_->Mark();
      const Status s = fs_->Sync();
      EXPECT_TRUE(s.ok()) << s.ToString();
      {
        std::lock_guard<std::mutex> g(*syncs_mu_);
        syncs_->push_back({start, t_last_flush, -1});
      }
      lock.lock();
      served_ = id;
      cv_.notify_all();
    }
  }

  Filesystem* fs_;
  Recording* rec_;
  std::mutex* syncs_mu_;
  std::vector<SyncRec>* syncs_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0, served_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

struct Workload {
  std::vector<uint8_t> base;  // the image after setup (files created, synced)
  size_t setup_end = 0;       // log events before this are setup
  std::vector<Recording::Event> log;
  std::vector<FileModel> files;
  std::vector<SharedFile> shared;
  std::vector<SyncRec> syncs;
  uint64_t hooked_syncs = 0;
};

// One random call on file `f` (model `m`), writing byte `pattern`: appends
// the file's new state to `m`, or records an Fsync in `syncs`.
void WriterOp(Filesystem* fs, std::mt19937_64& rng, int f, FileModel& m, Recording* rec, std::mutex* syncs_mu,
              std::vector<SyncRec>* syncs, uint8_t pattern) {
  const Cred root = Cred::Root();
  std::vector<uint8_t> c = m.states.back().content;
  const uint64_t size = c.size();
  const int kind = static_cast<int>(rng() % 12);
  const size_t start = rec->Mark();
  std::string what;
  SharedFile::Call call{};
  call.pattern = pattern;
  Status s;
  if (kind == 11) {  // fsync this file
    s = fs->Fsync(m.ino, rng() % 2);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::lock_guard<std::mutex> g(*syncs_mu);
    syncs->push_back({start, t_last_flush, f});
    return;
  }
  if (kind <= 3) {  // extend: append, maybe after a gap, maybe whole blocks
    uint64_t off = size + (rng() % 3 == 0 ? rng() % 6000 : 0);
    uint64_t len = 1 + rng() % 9000;
    if (kind == 3) {
      off = (off + kBlockSize - 1) / kBlockSize * kBlockSize;
      len = (1 + rng() % 3) * kBlockSize;
    }
    if (off + len > kMaxFile) {
      off = 0;
      len = std::min<uint64_t>(len, kMaxFile);
    }
    what = "write " + std::to_string(off) + "+" + std::to_string(len);
    call.kind = SharedFile::Call::kWrite;
    call.off = off;
    call.len = len;
    const std::vector<uint8_t> data(len, pattern);
    auto n = fs->Write(m.ino, off, data);
    ASSERT_TRUE(n.ok() && *n == len) << n.status().ToString();
    if (c.size() < off + len) c.resize(off + len, 0);
    std::copy(data.begin(), data.end(), c.begin() + off);
  } else if (kind <= 6) {  // overwrite inside; whole blocks without times go unlocked
    if (size == 0) return;
    uint64_t off = rng() % size, len = 1 + rng() % (size - off);
    Filesystem::WriteTimes times = Filesystem::WriteTimes::kUpdate;
    if (kind >= 5 && size >= kBlockSize) {
      off = rng() % (size / kBlockSize) * kBlockSize;
      len = (1 + rng() % ((size - off) / kBlockSize)) * kBlockSize;
      times = Filesystem::WriteTimes::kKeep;
    }
    what = std::string(times == Filesystem::WriteTimes::kKeep ? "overwrite (keep times) " : "overwrite ") +
           std::to_string(off) + "+" + std::to_string(len);
    call.kind = SharedFile::Call::kWrite;
    call.off = off;
    call.len = len;
    const std::vector<uint8_t> data(len, pattern);
    auto n = fs->Write(m.ino, off, data, times);
    ASSERT_TRUE(n.ok() && *n == len) << n.status().ToString();
    std::copy(data.begin(), data.end(), c.begin() + off);
  } else if (kind <= 8) {  // truncate, mostly down
    SetAttrRequest r;
    r.valid = SetAttrRequest::kSize;
    r.size = rng() % 4 ? (size ? rng() % size : 0) : rng() % kMaxFile;
    what = "truncate to " + std::to_string(r.size);
    call.kind = SharedFile::Call::kTruncate;
    call.off = r.size;
    auto a = fs->SetAttr(m.ino, r, root);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    c.resize(r.size, 0);
  } else {  // fallocate
    static constexpr int kModes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                     FALLOC_FL_ZERO_RANGE};
    const int mode = kModes[rng() % 4];
    const uint64_t off = rng() % kMaxFile, len = 1 + rng() % std::min<uint64_t>(12000, kMaxFile - off);
    what = "fallocate mode " + std::to_string(mode) + " " + std::to_string(off) + "+" + std::to_string(len);
    call.kind = SharedFile::Call::kFallocate;
    call.mode = mode;
    call.off = off;
    call.len = len;
    s = fs->Fallocate(m.ino, mode, off, len);
    ASSERT_TRUE(s.ok()) << s.ToString();
    const uint64_t end = off + len;
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > c.size()) c.resize(end, 0);
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
      std::fill(c.begin() + std::min<uint64_t>(off, c.size()), c.begin() + std::min<uint64_t>(end, c.size()), 0);
    }
  }
  m.states.push_back({start, rec->Mark(), std::move(c), what});
  // (One thread per file: the calls are ordered, whatever the tickets.)
  call.t0 = 2 * m.as_calls.calls.size();
  call.t1 = call.t0 + 1;
  call.start = start;
  call.end = m.states.back().end;
  call.what = what;
  m.as_calls.calls.push_back(std::move(call));
}

// One random call on shared file `file` (model `m`, whose calls vector is
// guarded by `calls_mu`), writing byte `pattern`: the same kinds as
// WriterOp, chosen from the size the file had a moment before (others may
// change it before the call runs: an overwrite may then extend the file).
void SharedOp(Filesystem* fs, std::mt19937_64& rng, int file, SharedFile& m, Recording* rec,
              std::mutex* calls_mu, std::mutex* syncs_mu, std::vector<SyncRec>* syncs, uint8_t pattern) {
  auto attr = fs->GetAttr(m.ino);
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();
  const uint64_t size = attr->size;
  const int kind = static_cast<int>(rng() % 12);
  SharedFile::Call c{};
  c.pattern = pattern;
  Filesystem::WriteTimes times = Filesystem::WriteTimes::kUpdate;
  if (kind == 11) {  // fsync this file
    const size_t start = rec->Mark();
    const Status s = fs->Fsync(m.ino, rng() % 2);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::lock_guard<std::mutex> g(*syncs_mu);
    syncs->push_back({start, t_last_flush, file});
    return;
  }
  if (kind <= 3) {  // extend
    c.kind = SharedFile::Call::kWrite;
    c.off = size + (rng() % 3 == 0 ? rng() % 6000 : 0);
    c.len = 1 + rng() % 9000;
    if (kind == 3) {
      c.off = (c.off + kBlockSize - 1) / kBlockSize * kBlockSize;
      c.len = (1 + rng() % 3) * kBlockSize;
    }
    if (c.off + c.len > kMaxFile) {
      c.off = 0;
      c.len = std::min<uint64_t>(c.len, kMaxFile);
    }
    c.what = "write " + std::to_string(c.off) + "+" + std::to_string(c.len);
  } else if (kind <= 6) {  // overwrite inside; whole blocks without times go unlocked
    if (size == 0) return;
    c.kind = SharedFile::Call::kWrite;
    c.off = rng() % size;
    c.len = 1 + rng() % (size - c.off);
    if (kind >= 5 && size >= kBlockSize) {
      c.off = rng() % (size / kBlockSize) * kBlockSize;
      c.len = (1 + rng() % ((size - c.off) / kBlockSize)) * kBlockSize;
      times = Filesystem::WriteTimes::kKeep;
    }
    c.what = std::string(times == Filesystem::WriteTimes::kKeep ? "overwrite (keep times) " : "overwrite ") +
             std::to_string(c.off) + "+" + std::to_string(c.len);
  } else if (kind <= 8) {  // truncate, mostly down
    c.kind = SharedFile::Call::kTruncate;
    c.off = rng() % 4 ? (size ? rng() % size : 0) : rng() % kMaxFile;
    c.what = "truncate to " + std::to_string(c.off);
  } else {  // fallocate
    static constexpr int kModes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                     FALLOC_FL_ZERO_RANGE};
    c.kind = SharedFile::Call::kFallocate;
    c.mode = kModes[rng() % 4];
    c.off = rng() % kMaxFile;
    c.len = 1 + rng() % std::min<uint64_t>(12000, kMaxFile - c.off);
    c.what = "fallocate mode " + std::to_string(c.mode) + " " + std::to_string(c.off) + "+" + std::to_string(c.len);
  }
  c.what += " by writer " + std::to_string(t_actor);
  c.t0 = rec->ticket.fetch_add(1);
  c.start = rec->Mark();
  Status s;
  if (c.kind == SharedFile::Call::kWrite) {
    const std::vector<uint8_t> data(c.len, pattern);
    auto n = fs->Write(m.ino, c.off, data, times);
    s = n.ok() && *n != c.len ? Status::IoError("short write") : n.status();
  } else if (c.kind == SharedFile::Call::kTruncate) {
    SetAttrRequest r;
    r.valid = SetAttrRequest::kSize;
    r.size = c.off;
    s = fs->SetAttr(m.ino, r, Cred::Root()).status();
  } else {
    s = fs->Fallocate(m.ino, c.mode, c.off, c.len);
  }
  c.end = rec->Mark();
  c.t1 = rec->ticket.fetch_add(1);
  ASSERT_TRUE(s.ok()) << c.what << ": " << s.ToString();
  std::lock_guard<std::mutex> g(*calls_mu);
  m.calls.push_back(std::move(c));
}

// Grows file `ino` from `size` (`way` 0: truncation, 1: fallocate, 2: a
// write past the end) and checks that it reads zeros past `size`.
std::string GrowsWithZeros(Filesystem* fs, uint64_t ino, uint64_t size, int way) {
  const uint64_t grown = std::max<uint64_t>(size, kMaxFile) + 5000;
  Status g;
  switch (way) {
    case 0: {
      SetAttrRequest r;
      r.valid = SetAttrRequest::kSize;
      r.size = grown;
      g = fs->SetAttr(ino, r, Cred::Root()).status();
      break;
    }
    case 1: g = fs->Fallocate(ino, 0, size, grown - size); break;
    case 2: g = fs->Write(ino, grown - 1, std::vector<uint8_t>(1, 0)).status(); break;
  }
  if (!g.ok()) return "growing: " + g.ToString();
  std::vector<uint8_t> tail(grown - size);
  auto n = fs->Read(ino, size, tail);
  if (!n.ok() || *n != tail.size()) return "short read after growing";
  auto nz = std::find_if(tail.begin(), tail.end(), [](uint8_t b) { return b != 0; });
  if (nz == tail.end()) return "";
  return "grown from " + std::to_string(size) + " (way " + std::to_string(way) + "), byte " +
         std::to_string(size + (nz - tail.begin())) + " reads " + std::to_string(*nz);
}

// Checks shared file `m` as `fs` holds it, where call k is durable if
// `durable[k]` and the calls that began before log event `visible` may have
// taken effect (the model in the header comment); then grows it by
// GrowsWithZeros(`grow_way`) unless `grow_way` < 0.
std::string CheckShared(Filesystem* fs, const SharedFile& m, const std::vector<bool>& durable, size_t visible,
                        int grow_way) {
  using Call = SharedFile::Call;
  std::vector<const Call*> may;  // began by the crash point (or durable)
  uint64_t last_cut = 0;         // the latest start of a durable truncation
  for (size_t k = 0; k < m.calls.size(); k++) {
    const Call& c = m.calls[k];
    if (durable[k] || c.start < visible) may.push_back(&c);
    if (durable[k] && c.truncates()) last_cut = std::max(last_cut, c.t0 + 1);
  }
  std::string where = m.name + " (" + std::to_string(may.size()) + " calls)";
  auto a = fs->GetAttr(m.ino);
  if (!a.ok()) return where + ": " + a.status().ToString();
  const uint64_t size = a->size;
  std::vector<uint8_t> got(size);
  auto n = fs->Read(m.ino, 0, got);
  if (!n.ok() || *n != size) return where + ": short read";
  auto describe = [&](const Call& c) {
    return "\n  [" + std::to_string(c.start) + ", " + std::to_string(c.end) + ") tickets " + std::to_string(c.t0) +
           ".." + std::to_string(c.t1) + (durable[&c - m.calls.data()] ? " durable " : " ") + c.what;
  };
  // The size: set by a truncation or raised by a write or fallocate not
  // followed by a durable truncation (the empty file if none was durable)...
  bool size_ok = last_cut == 0 && size == 0;
  for (const Call* c : may) size_ok |= (c->truncates() || c->grows()) && c->t1 >= last_cut && c->size() == size;
  if (!size_ok) return where + ": size " + std::to_string(size) + " is none a call could leave";
  // ... and not below one a durable call left, unless a truncation that may
  // have come after it cut lower.
  for (size_t k = 0; k < m.calls.size(); k++) {
    const Call& c = m.calls[k];
    if (!durable[k] || !(c.truncates() || c.grows()) || c.size() <= size) continue;
    bool cut = false;
    for (const Call* t : may) cut |= t != &c && t->truncates() && !t->before(c) && t->size() < c.size();
    if (!cut) return where + ": size " + std::to_string(size) + " below the durable" + describe(c);
  }
  // Each byte: a value set by a call not followed by a durable call that
  // set it too (zero if no durable call set it). A truncation's zero (or
  // the empty file's) also needs a call that may follow it and bring the
  // byte back inside the file without setting it: a truncation up, a write
  // past it, fallocate. The cuts make every segment between them one in
  // which each call sets all bytes or none, and raises the size past all or
  // none.
  struct Effect {
    const Call* call;
    uint64_t lo, hi;  // the bytes it sets ([0, 0) if none)
    uint8_t v;
    bool sizes;  // truncates() or grows()
  };
  std::vector<Effect> effects;
  effects.reserve(may.size());
  std::vector<uint64_t> cuts = {0, size};
  for (const Call* c : may) {
    Effect f{c, 0, 0, 0, c->truncates() || c->grows()};
    if (c->Sets(&f.lo, &f.hi, &f.v)) {
      if (f.lo < size) cuts.push_back(f.lo);
      if (f.hi < size) cuts.push_back(f.hi);
    } else {
      f.lo = f.hi = 0;
    }
    if (f.sizes && c->size() < size) cuts.push_back(c->size());
    effects.push_back(f);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (size_t i = 0; i + 1 < cuts.size(); i++) {
    const uint64_t b = cuts[i], e = cuts[i + 1];
    uint64_t latest = 0;   // the latest start of a durable call setting [b, e)
    uint64_t regrown = 0;  // the latest end of a call that may bring [b, e) back
    bool set = false;
    for (const Effect& f : effects) {
      const bool sets = f.lo <= b && e <= f.hi;
      if (sets && durable[f.call - m.calls.data()]) {
        set = true;
        latest = std::max(latest, f.call->t0 + 1);
      }
      if (f.sizes && !sets && f.call->size() > b) regrown = std::max(regrown, f.call->t1);
    }
    bool ok[256] = {};
    ok[0] = !set && regrown > 0;
    for (const Effect& f : effects) {
      if (f.lo <= b && e <= f.hi && f.call->t1 >= latest && (!f.call->truncates() || regrown > f.call->t0)) {
        ok[f.v] = true;
      }
    }
    for (uint64_t p = b; p < e; p++) {
      if (ok[got[p]]) continue;
      std::string seen, sized;
      for (const Effect& f : effects) {
        if (f.lo <= p && p < f.hi) seen += describe(*f.call) + ": " + std::to_string(f.v);
        if (f.sizes && f.call->t1 >= latest) sized += describe(*f.call) + ": " + std::to_string(f.call->size());
      }
      auto data = fs->SeekData(m.ino, p, SEEK_DATA);  // a hole or unwritten, or written zeros?
      return where + ": byte " + std::to_string(p) + " of " + std::to_string(size) + " reads " +
             std::to_string(got[p]) + " (" + (data.ok() && *data == p ? "written" : "a hole or unwritten") +
             "); the calls setting it" + (set ? "" : " (none durable)") + ":" + seen +
             "\nthe sizes since the last durable one:" + sized;
    }
  }
  if (grow_way < 0) return "";
  if (std::string e = GrowsWithZeros(fs, m.ino, size, grow_way); !e.empty()) return where + ": " + e;
  return "";
}

// Runs the workload: `writers` threads with `files_per_writer` files each
// or, when `shared_files` > 0, all on those `shared_files` files, `ops` calls
// per writer, a random syncer, the hook, a 1 ms commit timer.
Workload RecordConcurrent(uint64_t seed, int writers, int files_per_writer, int ops, int shared_files = 0) {
  Workload out;
  Recording rec;
  rec.image = *testing::NewImage(2048, 128, 256);
  vexfs_super_block sb;
  std::memcpy(&sb, rec.image.data(), sizeof(sb));
  const core::Geometry geo = core::GeometryOf(sb);
  std::function<void()> hook;
  MountOptions mo = testing::TestMountOptions();
  mo.commit_interval_ms = 1;
  auto fsr = Filesystem::Mount(std::make_unique<ThreadRecordingDevice>(&rec, geo.data_start, &hook), mo);
  EXPECT_TRUE(fsr.ok()) << fsr.status().ToString();
  if (!fsr.ok()) return out;
  auto fs = std::move(fsr).value();
  for (int i = 0; i < writers * files_per_writer; i++) {
    FileModel m;
    m.name = "f" + std::to_string(i);
    auto a = fs->Mknod(Filesystem::kRootIno, m.name, S_IFREG | 0644, 0, Cred::Root());
    EXPECT_TRUE(a.ok());
    if (!a.ok()) return out;
    m.ino = a->ino;
    m.as_calls.name = m.name;
    m.as_calls.ino = m.ino;
    out.files.push_back(std::move(m));
  }
  for (int i = 0; i < shared_files; i++) {
    SharedFile m;
    m.name = "s" + std::to_string(i);
    auto a = fs->Mknod(Filesystem::kRootIno, m.name, S_IFREG | 0644, 0, Cred::Root());
    EXPECT_TRUE(a.ok());
    if (!a.ok()) return out;
    m.ino = a->ino;
    out.shared.push_back(std::move(m));
  }
  EXPECT_TRUE(fs->Sync().ok());
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    out.base = rec.image;
    out.setup_end = rec.log.size();
  }
  for (auto& m : out.files) m.states.push_back({out.setup_end, out.setup_end, {}, "create"});
  std::mutex syncs_mu, calls_mu;
  std::atomic<int> running{writers};
  {
    SyncOnRequest on_request(fs.get(), &rec, &syncs_mu, &out.syncs);
    std::mt19937_64 hook_rng(seed * 31);
    std::mutex hook_mu;
    hook = [&] {
      bool fire;
      {
        std::lock_guard<std::mutex> lock(hook_mu);
        fire = hook_rng() % 6 == 0;
      }
      if (fire) on_request.Request();
    };
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; w++) {
      threads.emplace_back([&, w] {
        t_actor = w;
        std::mt19937_64 rng(seed * 1000 + w);
        for (int op = 0; op < ops && !::testing::Test::HasFatalFailure(); op++) {
          const auto pattern = static_cast<uint8_t>(1 + (w * 97 + op) % 255);
          if (shared_files > 0) {
            const int f = std::getenv("XOWN") ? w % shared_files : static_cast<int>(rng() % shared_files);
            SharedOp(fs.get(), rng, static_cast<int>(out.files.size()) + f, out.shared[f], &rec, &calls_mu,
                     &syncs_mu, &out.syncs, pattern);
            continue;
          }
          const int f = w * files_per_writer + static_cast<int>(rng() % files_per_writer);
          WriterOp(fs.get(), rng, f, out.files[f], &rec, &syncs_mu, &out.syncs, pattern);
        }
        running--;
      });
    }
    threads.emplace_back([&] {  // syncs at random moments
      std::mt19937_64 rng(seed * 7);
      while (running > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        const size_t start = rec.Mark();
        EXPECT_TRUE(fs->Sync().ok());
        std::lock_guard<std::mutex> g(syncs_mu);
        out.syncs.push_back({start, t_last_flush, -1});
      }
    });
    for (auto& t : threads) t.join();
    hook = nullptr;
    out.hooked_syncs = on_request.served();
  }
  // The model must agree with the volume before it is used as a reference.
  for (const auto& m : out.files) {
    std::vector<uint8_t> got(kMaxFile + 1);
    auto n = fs->Read(m.ino, 0, got);
    EXPECT_TRUE(n.ok());
    got.resize(n.ok() ? *n : 0);
    EXPECT_TRUE(got == m.states.back().content) << m.name << ": the model disagrees with the volume";
  }
  for (const auto& m : out.shared) {  // every call complete: only the last ones count
    const std::vector<bool> all(m.calls.size(), true);
    const std::string e = CheckShared(fs.get(), m, all, SIZE_MAX, -1);
    EXPECT_EQ(e, "") << "the model disagrees with the volume";
  }
  EXPECT_TRUE(fs->Unmount().ok());
  fs.reset();
  out.log = std::move(rec.log);
  return out;
}

// Which calls on file `fi` (an index into wl.files, then wl.shared) ended
// before the last Sync, or Fsync of the file, whose flush is before `durable`.
std::vector<bool> DurableCalls(const Workload& wl, size_t fi, const SharedFile& m, size_t durable) {
  size_t synced = 0;
  for (const SyncRec& s : wl.syncs) {
    if (s.flush < durable && (s.file < 0 || static_cast<size_t>(s.file) == fi)) synced = std::max(synced, s.start);
  }
  std::vector<bool> done(m.calls.size());
  for (size_t k = 0; k < m.calls.size(); k++) done[k] = m.calls[k].end <= synced;
  return done;
}

// Checks the image of a crash where the events before `visible` may have
// reached the device, and every Sync whose flush is before `durable` had;
// `cross_check`: each writer's own files by the call model too.
std::string CheckImage(const Workload& wl, std::vector<uint8_t> image, size_t visible, size_t durable,
                       int grow_way, bool cross_check) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(image));
  auto fsck = [&](const char* when) -> std::string {
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return std::string("fsck ") + when + " failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) {
      return std::string("fsck ") + when + " found " + rep->problems[0].code + ": " + rep->problems[0].message;
    }
    return "";
  };
  if (std::string e = fsck("before the mount"); !e.empty()) return e;
  auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(shared), testing::TestMountOptions());
  if (!fsr.ok()) return "mount failed: " + fsr.status().ToString();
  auto fs = std::move(fsr).value();
  for (size_t fi = 0; fi < wl.files.size(); fi++) {
    const FileModel& m = wl.files[fi];
    // The oldest state that must have survived, and the newest that may.
    size_t lo = 0, hi = 0;
    for (const SyncRec& s : wl.syncs) {
      if (s.flush >= durable || (s.file >= 0 && static_cast<size_t>(s.file) != fi)) continue;
      for (size_t k = lo; k < m.states.size() && m.states[k].end <= s.start; k++) lo = k;
    }
    for (size_t k = 0; k < m.states.size() && m.states[k].start < visible; k++) hi = k;
    hi = std::max(hi, lo);
    // The call model of shared files, checked against this one where asked:
    // it may only be more permissive.
    const std::string calls_err =
        cross_check ? CheckShared(fs.get(), m.as_calls, DurableCalls(wl, fi, m.as_calls, durable), visible, -1) : "";
    const std::string where = m.name + " (states " + std::to_string(lo) + ".." + std::to_string(hi) + ")" +
                              (calls_err.empty() ? "" : " (the call model fails too)");
    auto a = fs->GetAttr(m.ino);
    if (!a.ok()) return where + ": " + a.status().ToString();
    std::vector<uint8_t> got(a->size);
    auto n = fs->Read(m.ino, 0, got);
    if (!n.ok() || *n != a->size) return where + ": short read";
    bool size_ok = false, exact = false;
    for (size_t k = lo; k <= hi; k++) {
      size_ok |= m.states[k].content.size() == a->size;
      exact |= m.states[k].content == got;
    }
    if (!size_ok) return where + ": size " + std::to_string(a->size) + " is none it had";
    for (uint64_t p = 0; !exact && p < got.size(); p++) {
      bool ok = false;
      for (size_t k = lo; k <= hi && !ok; k++) ok = p < m.states[k].content.size() && m.states[k].content[p] == got[p];
      if (!ok) {
        std::string seen;
        for (size_t k = lo >= 2 ? lo - 2 : 0; k <= hi; k++) {  // (two before the range too)
          const auto& sc = m.states[k].content;
          seen += "\n  " + std::to_string(k) + " [" + std::to_string(m.states[k].start) + ", " +
                  std::to_string(m.states[k].end) + ") " + m.states[k].what + ": " +
                  (p < sc.size() ? std::to_string(sc[p]) : "-") + "/" + std::to_string(sc.size());
        }
        return where + ": byte " + std::to_string(p) + " of " + std::to_string(got.size()) + " reads " +
               std::to_string(got[p]) + "; value/size in each state:" + seen;
      }
    }
    if (!calls_err.empty()) return "the call model fails where the states agree: " + calls_err;
    // Grown back, the file reads zeros past its recovered size.
    if (std::string e = GrowsWithZeros(fs.get(), m.ino, a->size, (grow_way + fi) % 3); !e.empty()) {
      return where + ": " + e;
    }
  }
  for (size_t si = 0; si < wl.shared.size(); si++) {
    const SharedFile& m = wl.shared[si];
    const std::string e = CheckShared(fs.get(), m, DurableCalls(wl, wl.files.size() + si, m, durable), visible,
                                      static_cast<int>((grow_way + si) % 3));
    if (!e.empty()) return e;
  }
  if (Status u = fs->Unmount(); !u.ok()) return "unmount failed: " + u.ToString();
  return fsck("after the mount");
}

size_t MaxPoints() {
  const char* env = std::getenv("VEXFS_CRASH_POINTS");
  return env ? static_cast<size_t>(std::atol(env)) : 1500;
}

// Seeds `base`, `base` + 1, ...: `count` of them, or VEXFS_CRASH_SEEDS of
// them from VEXFS_CRASH_SEED_BASE when set (to hunt outside the suite).
std::vector<uint64_t> Seeds(uint64_t base, int count) {
  if (const char* env = std::getenv("VEXFS_CRASH_SEED_BASE")) base = std::strtoull(env, nullptr, 10);
  if (const char* env = std::getenv("VEXFS_CRASH_SEEDS")) count = std::atoi(env);
  std::vector<uint64_t> seeds;
  for (int i = 0; i < count; i++) seeds.push_back(base + i);
  return seeds;
}

// Checks `budget` flushes, `budget` / 2 other prefixes and `budget` / 2
// images at flushes missing some of the writes since the previous flush.
void CheckCrashPoints(const Workload& wl, uint64_t seed, size_t budget) {
  const auto& log = wl.log;
  std::vector<size_t> flushes;
  for (size_t i = wl.setup_end; i < log.size(); i++) {
    if (log[i].block == kNoFlush) flushes.push_back(i);
  }
  ASSERT_GT(flushes.size(), 2u);
  std::mt19937_64 rng(seed * 7919);
  // Crash points: (prefix length, reordered?).
  std::vector<std::pair<size_t, bool>> points;
  const size_t stride = std::max<size_t>(1, flushes.size() / budget);
  for (size_t k = 0; k < flushes.size(); k += stride) points.push_back({flushes[k], false});
  for (size_t k = 0; k < budget / 2; k++) {
    points.push_back({wl.setup_end + rng() % (log.size() - wl.setup_end + 1), false});
    points.push_back({flushes[1 + rng() % (flushes.size() - 1)], true});
  }
  std::sort(points.begin(), points.end());
  std::vector<uint8_t> durable = wl.base;  // events before the last flush applied
  size_t last_flush = wl.setup_end;         // (index of that flush, or setup_end)
  std::vector<size_t> pending;               // writes since
  size_t next = wl.setup_end;                // events [setup_end, next) are in durable + pending
  size_t checked = 0, reordered = 0;
  for (const auto& [at, lossy] : points) {
    for (; next < at; next++) {
      if (log[next].block != kNoFlush) {
        pending.push_back(next);
        continue;
      }
      for (size_t k : pending) {
        std::memcpy(durable.data() + log[k].block * kBlockSize, log[k].data.data(), kBlockSize);
      }
      pending.clear();
      last_flush = next;
    }
    std::vector<uint8_t> image = durable;
    size_t applied = 0;
    // Lossy: each write is lost with probability 1/2 or 1/8, or exactly one
    // is (a commit block that lands needs the rest of its transaction).
    const int mode = static_cast<int>(reordered % 3);
    const size_t lost = pending.empty() ? 0 : rng() % pending.size();
    for (size_t n = 0; n < pending.size(); n++) {
      const size_t k = pending[n];
      if (lossy && (mode == 0 ? rng() % 2 == 0 : mode == 1 ? rng() % 8 == 0 : n == lost)) continue;
      std::memcpy(image.data() + log[k].block * kBlockSize, log[k].data.data(), kBlockSize);
      applied++;
    }
    // Lossy: Syncs whose flush came before the last flush are durable.
    const std::string err = CheckImage(wl, std::move(image), at, lossy ? last_flush + 1 : at,
                                       static_cast<int>(checked), checked % 4 == 0);
    if (!err.empty() && std::getenv("VEXFS_CRASH_SEEDS")) {  // hunting: the syncs and events before the crash
      for (const SyncRec& s : wl.syncs) {
        if (s.flush + 300 >= at && s.flush < at) std::printf("sync of %d: [%zu, flush %zu]\n", s.file, s.start, s.flush);
      }
      for (size_t i = at >= 300 ? at - 300 : 0; i < at; i++) {
        std::printf("event %zu: block %lld by %d\n", i, log[i].block == kNoFlush ? -1LL : static_cast<long long>(log[i].block),
                    log[i].actor);
      }
    }
    ASSERT_EQ(err, "") << (lossy ? "lossy crash at flush " : "crash after event ") << at << " of " << log.size()
                       << " (" << applied << " of " << pending.size() << " writes since the flush at " << last_flush
                       << " applied)";
    checked++;
    reordered += lossy;
  }
  std::printf("seed %llu: %zu events, %zu flushes, %zu syncs; %zu crash images checked (%zu lossy)\n",
              static_cast<unsigned long long>(seed), log.size(), flushes.size(), wl.syncs.size(), checked, reordered);
}

// An extending write whose bytes land in a block the file already maps
// (its partial last block) wrote them in place and committed the new size
// without a flush between: a volatile cache could keep the commit and lose
// the data, and the file came back at its new size reading the block's old
// contents (zeros here) where the write's bytes belong (found by
// WritersTruncatersAndSyncsRacing). Both write paths: a partial write
// (read-modify-write under the lock) and a whole-block one over the last
// block (written without the lock). At every flush after the write, each
// image missing exactly one of the writes since the previous flush must
// read as before the write or after it (or, the whole-block write landing
// in place without its size, its first 100 bytes).
TEST(ConcurrentCrashTest, ExtendingWriteInItsLastBlockIsOrderedBeforeItsSize) {
  for (const bool whole_block : {false, true}) {
    SCOPED_TRACE(whole_block ? "whole-block write" : "partial write");
    Recording rec;
    rec.image = *testing::NewImage(2048, 128, 256);
    const std::vector<uint8_t> base = rec.image;
    std::function<void()> no_hook;
    const std::string before(100, 'a');
    const std::string after = whole_block ? std::string(kBlockSize, 'c') : before + std::string(50, 'b');
    size_t start = 0;
    {
      auto fsr = Filesystem::Mount(std::make_unique<ThreadRecordingDevice>(&rec, 0, &no_hook),
                                   testing::TestMountOptions());
      ASSERT_TRUE(fsr.ok()) << fsr.status().ToString();
      auto fs = std::move(fsr).value();
      auto f = fs->Mknod(Filesystem::kRootIno, "f", S_IFREG | 0644, 0, Cred::Root());
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE(fs->Write(f->ino, 0, testing::Bytes(before)).ok());
      ASSERT_TRUE(fs->Sync().ok());
      start = rec.Mark();
      const uint64_t off = whole_block ? 0 : before.size();
      ASSERT_TRUE(fs->Write(f->ino, off, testing::Bytes(after.substr(off))).ok());
      ASSERT_TRUE(fs->Sync().ok());
    }
    std::vector<uint8_t> durable = base;
    std::vector<size_t> pending;
    size_t checked = 0;
    for (size_t i = 0; i < rec.log.size(); i++) {
      const Recording::Event& e = rec.log[i];
      if (e.block != kNoFlush) {
        pending.push_back(i);
        continue;
      }
      for (size_t lost = 0; i >= start && lost < pending.size(); lost++) {
        std::vector<uint8_t> image = durable;
        for (size_t n = 0; n < pending.size(); n++) {
          const Recording::Event& w = rec.log[pending[n]];
          if (n != lost) std::memcpy(image.data() + w.block * kBlockSize, w.data.data(), kBlockSize);
        }
        auto fs = testing::MountImage(std::make_shared<std::vector<uint8_t>>(std::move(image)));
        ASSERT_NE(fs, nullptr);
        auto f = fs->Lookup(Filesystem::kRootIno, "f", Cred::Root());
        ASSERT_TRUE(f.ok());
        const std::string got = testing::ReadAll(fs.get(), f->ino);
        // (The whole-block write lands in place: its bytes may show under the old size.)
        EXPECT_TRUE(got == before || got == after || got == after.substr(0, before.size()))
            << "flush " << i << ", write " << pending[lost] << " (block " << rec.log[pending[lost]].block
            << ") lost: size " << got.size() << ", " << std::count(got.begin(), got.end(), '\0') << " zero bytes";
        checked++;
      }
      for (size_t k : pending) std::memcpy(durable.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize);
      pending.clear();
    }
    EXPECT_GT(checked, 0u);
  }
}

// The setting of the regression tests below: a volume on a
// ThreadRecordingDevice, `hook` run before and `after` after every data
// write of actor 0, and one file "f".
struct HookedFile {
  // Mounts the volume and writes `before` to "f".
  ::testing::AssertionResult Mount(const std::string& before) {
    rec.image = *testing::NewImage(2048, 128, 256);
    vexfs_super_block sb;
    std::memcpy(&sb, rec.image.data(), sizeof(sb));
    auto fsr = Filesystem::Mount(
        std::make_unique<ThreadRecordingDevice>(&rec, core::GeometryOf(sb).data_start, &hook, &after),
        testing::TestMountOptions());
    if (!fsr.ok()) return ::testing::AssertionFailure() << fsr.status().ToString();
    fs = std::move(fsr).value();
    auto f = fs->Mknod(Filesystem::kRootIno, "f", S_IFREG | 0644, 0, Cred::Root());
    if (!f.ok()) return ::testing::AssertionFailure() << f.status().ToString();
    ino = f->ino;
    auto n = fs->Write(ino, 0, testing::Bytes(before));
    if (!n.ok()) return ::testing::AssertionFailure() << n.status().ToString();
    return ::testing::AssertionSuccess();
  }
  // Writes `data` at `off` as actor 0, on a thread of its own; expects all
  // of it written.
  void WriteAsActor(uint64_t off, const std::string& data) {
    std::thread([&] {
      t_actor = 0;
      auto n = fs->Write(ino, off, testing::Bytes(data));
      EXPECT_TRUE(n.ok() && *n == data.size()) << n.status().ToString();
    }).join();
  }
  // WriteAsActor, with `meanwhile` started on a thread of its own at the
  // write's first data write, which then waits 100 ms, long enough for
  // `meanwhile` to block on what the write holds and to go on once the
  // write's data is on the device.
  void WriteWhile(uint64_t off, const std::string& data, std::function<void()> meanwhile) {
    std::atomic<bool> started{false};
    std::thread other;
    hook = [&] {
      if (started.exchange(true)) return;
      other = std::thread(meanwhile);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    };
    WriteAsActor(off, data);
    EXPECT_TRUE(started) << "the write wrote no data";
    if (other.joinable()) other.join();
    hook = nullptr;
  }
  // Sets the file's size, expecting success.
  void Resize(uint64_t size) {
    SetAttrRequest r;
    r.valid = SetAttrRequest::kSize;
    r.size = size;
    EXPECT_TRUE(fs->SetAttr(ino, r, Cred::Root()).ok());
  }

  Recording rec;
  std::function<void()> hook, after;
  std::unique_ptr<Filesystem> fs;  // after rec and the hooks: unmounted first
  uint64_t ino = 0;
};

// A whole-block write that extends a file over blocks it maps already
// (its partial last block and those before: nothing to allocate) writes
// them without the filesystem lock and then sets the size in a second
// operation, which checked only the blocks the first had mapped unwritten
// for a change meanwhile. A truncation in between, cutting the write's
// range, went unseen: the write raised the size over the holes it left
// (zeros where it had written) and over the cut tail of its first block
// (found by WritersRacingOnTheSameFiles: bytes an overwrite had put there
// before the truncation reappeared under the size). The write and the
// truncation must come out in one order or the other.
TEST(ConcurrentCrashTest, TruncationDuringAnExtendingWriteOverMappedBlocks) {
  const std::string before(50000, 'a');  // blocks 0..12, the last one partial
  HookedFile v;
  ASSERT_TRUE(v.Mount(before));
  const uint64_t off = 10 * kBlockSize, cut = 43127;
  const std::string data(3 * kBlockSize, 'w');
  std::atomic<bool> cut_done{false};
  v.hook = [&] {  // the writer's first data write: truncate meanwhile
    if (cut_done.exchange(true)) return;
    std::thread([&] { v.Resize(cut); }).join();
  };
  v.WriteAsActor(off, data);
  v.hook = nullptr;
  ASSERT_TRUE(cut_done);
  const std::string got = testing::ReadAll(v.fs.get(), v.ino);
  const std::string write_last = before.substr(0, off) + data;
  const std::string cut_last = (before.substr(0, off) + data).substr(0, cut);
  EXPECT_TRUE(got == write_last || got == cut_last)
      << "size " << got.size() << ", " << std::count(got.begin(), got.end(), '\0') << " zero bytes, "
      << std::count(got.begin(), got.end(), 'w') << " written";
  ASSERT_TRUE(v.fs->Unmount().ok());
}

// The same write over a partial last block (its bytes past the end are
// written in place with the rest) met a growth of the file meanwhile: the
// growth zeroes the old last block past the old end (ZeroPastEnd, once the
// write's data is on the device), and the write then kept the zeros where
// its own bytes belong, whichever order the two take (found by
// WritersRacingOnTheSameFiles, seed 1377: a synced write read zeros).
TEST(ConcurrentCrashTest, GrowthDuringAnExtendingWriteOverItsLastBlock) {
  const std::string before(20500, 'a');  // blocks 0..5, the last one partial
  HookedFile v;
  ASSERT_TRUE(v.Mount(before));
  const uint64_t off = 4 * kBlockSize, grown = 62762;
  const std::string data(3 * kBlockSize, 'w');  // blocks 4 and 5 in place, 6 new
  // The growth zeroes the old last block once this write's data is written.
  v.WriteWhile(off, data, [&] { v.Resize(grown); });
  ASSERT_FALSE(HasFailure());
  std::string want = before.substr(0, off) + data;
  want.resize(grown, '\0');
  const std::string got = testing::ReadAll(v.fs.get(), v.ino);
  EXPECT_TRUE(got == want) << "size " << got.size() << ", " << std::count(got.begin(), got.end(), 'w')
                           << " of " << data.size() << " written";
  ASSERT_TRUE(v.fs->Unmount().ok());
}

// So did a hole punch across the old end of such a block: it zeroes the
// part inside the file (the edges of its range, in place, once the write's
// data is on the device) and the write then raised the size over the part
// past the old end holding its own bytes, a mix no order of the two gives.
TEST(ConcurrentCrashTest, HolePunchDuringAnExtendingWriteOverItsLastBlock) {
  const std::string before(20500, 'a');  // blocks 0..5, the last one partial
  HookedFile v;
  ASSERT_TRUE(v.Mount(before));
  const uint64_t off = 4 * kBlockSize, hole = 20000, hole_len = 2000;
  const std::string data(3 * kBlockSize, 'w');  // blocks 4 and 5 in place, 6 new
  // The punch zeroes [hole, 20500) once this write's data is written.
  v.WriteWhile(off, data, [&] {
    EXPECT_TRUE(v.fs->Fallocate(v.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, hole, hole_len).ok());
  });
  ASSERT_FALSE(HasFailure());
  const std::string write_last = before.substr(0, off) + data;
  std::string punch_last = write_last;
  std::fill(punch_last.begin() + hole, punch_last.begin() + hole + hole_len, '\0');
  const std::string got = testing::ReadAll(v.fs.get(), v.ino);
  EXPECT_TRUE(got == write_last || got == punch_last)
      << "size " << got.size() << ", " << std::count(got.begin(), got.end(), 'w') << " of " << data.size()
      << " written";
  ASSERT_TRUE(v.fs->Unmount().ok());
}

// And a write cut and rewritten by others meanwhile: once the write over
// the partial last block had written its bytes in place, another write
// replaced some of them and a truncation cut them off; raising the size,
// the first write then exposed the other's bytes where its own belong
// (found by WritersRacingOnTheSameFiles, seed 2066: bytes of a write the
// truncation had cut came back). It comes last, so all its bytes show.
TEST(ConcurrentCrashTest, CutAndRewriteDuringAnExtendingWriteOverItsLastBlock) {
  const std::string before(39011, 'a');  // blocks 0..9, the last one partial
  HookedFile v;
  ASSERT_TRUE(v.Mount(before));
  const uint64_t off = 8 * kBlockSize;
  const std::string data(2 * kBlockSize, 'o');  // blocks 8 and 9, in place
  std::atomic<bool> done{false};
  v.after = [&] {  // the writer's data is written: rewrite its last block, cut it
    if (done.exchange(true)) return;
    std::thread([&] {
      EXPECT_TRUE(v.fs->Write(v.ino, 9 * kBlockSize, testing::Bytes(std::string(kBlockSize, 'x'))).ok());
      v.Resize(37000);
    }).join();
  };
  v.WriteAsActor(off, data);
  v.after = nullptr;
  ASSERT_TRUE(done);
  const std::string got = testing::ReadAll(v.fs.get(), v.ino);
  EXPECT_TRUE(got == before.substr(0, off) + data)
      << "size " << got.size() << ", " << std::count(got.begin(), got.end(), 'o') << " of " << data.size()
      << " written, " << std::count(got.begin(), got.end(), 'x') << " of the other write's";
  ASSERT_TRUE(v.fs->Unmount().ok());
}

// Three writers with two files each, 400 calls per writer; three rounds
// (one when VEXFS_CRASH_POINTS is lowered, as under ASan).
TEST(ConcurrentCrashTest, WritersTruncatersAndSyncsRacing) {
  const size_t budget = std::max<size_t>(4, MaxPoints() / 3);
  for (const uint64_t seed : Seeds(11, MaxPoints() >= 1000 ? 3 : 1)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Workload wl = RecordConcurrent(seed, 3, 2, 400);
    if (HasFatalFailure()) return;
    std::printf("seed %llu: %llu syncs started by the hook\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(wl.hooked_syncs));
    EXPECT_GT(wl.hooked_syncs, 0u);
    CheckCrashPoints(wl, seed, budget);
    if (HasFatalFailure()) return;
  }
}

// Three writers all on the same two files, 300 calls each: extensions race
// extensions, truncations and fallocates of the same file, overwrites race
// truncations; two rounds (one when VEXFS_CRASH_POINTS is lowered).
TEST(ConcurrentCrashTest, WritersRacingOnTheSameFiles) {
  const size_t budget = std::max<size_t>(4, MaxPoints() / 3);
  for (const uint64_t seed : Seeds(21, MaxPoints() >= 1000 ? 2 : 1)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Workload wl = RecordConcurrent(seed, 3, 0, 300, std::getenv("XOWN") ? 3 : 2);
    if (HasFatalFailure()) return;
    size_t raced = 0;  // calls that overlapped another call on their file
    for (const SharedFile& m : wl.shared) {
      for (const SharedFile::Call& c : m.calls) {
        raced += std::any_of(m.calls.begin(), m.calls.end(),
                             [&](const SharedFile::Call& o) { return &o != &c && !o.before(c) && !c.before(o); });
      }
    }
    std::printf("seed %llu: %llu syncs started by the hook, %zu calls overlapped another on their file\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(wl.hooked_syncs), raced);
    EXPECT_GT(raced, 0u);
    CheckCrashPoints(wl, seed, budget);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace vexfs
