// Crash consistency: record every block write of a mixed workload, then
// for every prefix of the write log (and every prefix with its last write
// torn) recover a copy of the image and check that
//   - the recovered volume mounts and fsck finds no problem,
//   - its namespace equals the state after some operation at or after the
//     last completed Sync (operations are atomic, nothing synced is lost),
//   - every file whose contents did not change after that Sync is intact.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "fs_test_util.h"
#include "vexfs/crc32c.h"
#include "vexfs/fsck.h"

namespace vexfs {
namespace {

using testing::Bytes;

// Records writes and flushes; serves reads from the current image.
class RecordingDevice : public BlockDevice {
 public:
  struct Event {
    uint64_t block;  // UINT64_MAX for a flush
    std::vector<uint8_t> data;
    size_t op;  // workload operation in progress
  };
  RecordingDevice(std::vector<uint8_t> image, std::vector<Event>* log, const size_t* op)
      : img_(std::move(image)), log_(log), op_(op) {}
  uint64_t block_count() const override { return img_.size() / kBlockSize; }
  Status Read(uint64_t block, uint32_t count, void* buf) override {
    if (block + count > block_count()) return Status::IoError("read beyond end");
    std::memcpy(buf, img_.data() + block * kBlockSize, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (block + count > block_count()) return Status::IoError("write beyond end");
    const auto* p = static_cast<const uint8_t*>(buf);
    for (uint32_t i = 0; i < count; i++) {
      log_->push_back({block + i, std::vector<uint8_t>(p + size_t{i} * kBlockSize, p + size_t{i + 1} * kBlockSize), *op_});
    }
    std::memcpy(img_.data() + block * kBlockSize, buf, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Flush() override {
    log_->push_back({UINT64_MAX, {}, *op_});
    return Status::Ok();
  }

 private:
  std::vector<uint8_t> img_;
  std::vector<Event>* log_;
  const size_t* op_;
};

struct FileState {
  std::string meta;      // type, size, mode, nlink, xattrs, symlink target
  uint32_t content = 0;  // crc of the data (regular files)
};
using Snapshot = std::map<std::string, FileState>;

Status Walk(Filesystem* fs, uint64_t dir, const std::string& prefix, Snapshot* out, int depth = 0) {
  if (depth > 16) return Status::Corruption("directory tree too deep");
  std::vector<DirEntry> entries;
  VEXFS_RETURN_IF_ERROR(fs->ReadDir(dir, 0, [&](const DirEntry& e) {
    entries.push_back(e);
    return true;
  }));
  for (const auto& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    const std::string path = prefix + "/" + e.name;
    VEXFS_ASSIGN_OR_RETURN(Attr a, fs->GetAttr(e.ino));
    std::ostringstream m;
    m << std::oct << a.mode << std::dec << " n" << a.nlink << " s" << (S_ISDIR(a.mode) ? 0 : a.size);
    VEXFS_ASSIGN_OR_RETURN(auto names, fs->ListXattr(e.ino, Cred::Root()));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      VEXFS_ASSIGN_OR_RETURN(auto v, fs->GetXattr(e.ino, n, Cred::Root()));
      m << " x:" << n << "=" << Crc32c(v.data(), v.size());
    }
    FileState st;
    if (S_ISLNK(a.mode)) {
      VEXFS_ASSIGN_OR_RETURN(std::string t, fs->Readlink(e.ino));
      m << " ->" << t;
    }
    if (S_ISREG(a.mode)) {
      std::vector<uint8_t> data(a.size);
      VEXFS_ASSIGN_OR_RETURN(size_t n, fs->Read(e.ino, 0, data));
      if (n != a.size) return Status::Corruption("short read of " + path);
      st.content = Crc32c(data.data(), data.size());
    }
    st.meta = m.str();
    (*out)[path] = st;
    if (S_ISDIR(a.mode)) VEXFS_RETURN_IF_ERROR(Walk(fs, e.ino, path, out, depth + 1));
  }
  return Status::Ok();
}

std::string Describe(const Snapshot& s) {
  std::string out;
  for (const auto& [p, st] : s) out += p + " " + st.meta + " c" + std::to_string(st.content) + "\n";
  return out;
}

// The workload: a deterministic mix of namespace and data operations with
// Sync points. Returns the per-operation snapshots and sync marks.
struct Recorded {
  std::vector<uint8_t> base;         // image before the workload
  std::vector<RecordingDevice::Event> log;
  std::vector<Snapshot> after_op;    // state after op i (index 0 = before any op)
  std::vector<bool> synced;          // op i ended with a completed Sync
};

Recorded RunWorkload(uint64_t seed, int ops) {
  Recorded rec;
  auto img = testing::NewImage(2048, 256, 256);  // 8 MiB, small journal
  rec.base = *img;
  size_t op = 0;
  auto dev = std::make_unique<RecordingDevice>(*img, &rec.log, &op);
  MountOptions mo = testing::TestMountOptions();
  auto fsr = Filesystem::Mount(std::move(dev), mo);
  EXPECT_TRUE(fsr.ok()) << fsr.status().ToString();
  auto fs = std::move(fsr).value();
  const Cred root = Cred::Root();
  std::mt19937_64 rng(seed);
  auto snap = [&]() {
    Snapshot s;
    Status st = Walk(fs.get(), Filesystem::kRootIno, "", &s);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return s;
  };
  rec.after_op.push_back(snap());
  rec.synced.push_back(true);
  auto pick = [&](const char* pfx, int n) { return std::string(pfx) + std::to_string(rng() % n); };
  for (op = 1; op <= static_cast<size_t>(ops); op++) {
    const int kind = static_cast<int>(rng() % 14);
    uint64_t dir = Filesystem::kRootIno;
    if (rng() % 2) {
      auto d = fs->Lookup(Filesystem::kRootIno, "d" + std::to_string(rng() % 3), root);
      if (d.ok()) dir = d->ino;
    }
    const std::string name = pick("f", 8);
    auto f = fs->Lookup(dir, name, root);
    bool sync = false;
    switch (kind) {
      case 0:
      case 1: {  // create + write
        if (!f.ok()) f = fs->Mknod(dir, name, S_IFREG | 0644, 0, root);
        if (f.ok() && S_ISREG(f->mode)) {
          std::string data(1 + rng() % 20000, static_cast<char>('a' + rng() % 26));
          fs->Write(f->ino, rng() % 30000, Bytes(data)).status().IgnoreError();
        }
        break;
      }
      case 2:  // overwrite in place
        if (f.ok() && S_ISREG(f->mode) && f->size > 0) {
          std::string data(1 + rng() % 5000, static_cast<char>('A' + rng() % 26));
          fs->Write(f->ino, rng() % f->size, Bytes(data)).status().IgnoreError();
        }
        break;
      case 3:
        if (f.ok() && S_ISREG(f->mode)) {
          SetAttrRequest r;
          r.valid = SetAttrRequest::kSize;
          r.size = rng() % 40000;
          fs->SetAttr(f->ino, r, root).status().IgnoreError();
        }
        break;
      case 4:
        fs->Rename(dir, name, Filesystem::kRootIno, pick("f", 8), 0, root).IgnoreError();
        break;
      case 5:
        fs->Rename(dir, name, Filesystem::kRootIno, pick("f", 8), RENAME_EXCHANGE, root).IgnoreError();
        break;
      case 6:
        if (f.ok()) fs->Link(f->ino, Filesystem::kRootIno, pick("l", 4), root).status().IgnoreError();
        break;
      case 7:
        fs->Unlink(dir, name, root).IgnoreError();
        break;
      case 8:
        if (f.ok()) {
          std::vector<uint8_t> v(rng() % 3 == 0 ? 6000 : 1 + rng() % 300, static_cast<uint8_t>(rng()));
          fs->SetXattr(f->ino, pick("user.k", 3), v, 0, root).IgnoreError();
        }
        break;
      case 9:
        if (f.ok()) fs->RemoveXattr(f->ino, pick("user.k", 3), root).IgnoreError();
        break;
      case 10:
        fs->Mkdir(Filesystem::kRootIno, pick("d", 3), 0755, root).status().IgnoreError();
        break;
      case 11:
        fs->Rmdir(Filesystem::kRootIno, pick("d", 3), root).IgnoreError();
        break;
      case 12:
        if (f.ok() && S_ISREG(f->mode)) {
          fs->Fallocate(f->ino, (rng() % 2) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : 0, rng() % 20000,
                        1 + rng() % 20000)
              .IgnoreError();
        }
        break;
      case 13:
        fs->Symlink(dir, pick("s", 3), std::string(1 + rng() % 100, 't'), root).status().IgnoreError();
        break;
    }
    if (rng() % 4 == 0) {
      EXPECT_TRUE(fs->Sync().ok());
      sync = true;
    }
    rec.after_op.push_back(snap());
    rec.synced.push_back(sync);
  }
  op = static_cast<size_t>(ops) + 1;
  EXPECT_TRUE(fs->Unmount().ok());
  return rec;
}

// Checks one crashed image. Returns "" or a failure description.
std::string CheckCrash(std::vector<uint8_t> image, const Recorded& rec, size_t last_sync_op, size_t cur_op) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(image));
  {
    // fsck without repair checks the post-replay state through an overlay.
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck -n failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck -n found " + rep->problems[0].code + ": " + rep->problems[0].message;
  }
  auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(shared), testing::TestMountOptions());
  if (!fsr.ok()) return "mount failed: " + fsr.status().ToString();
  auto fs = std::move(fsr).value();
  Snapshot got;
  Status st = Walk(fs.get(), Filesystem::kRootIno, "", &got);
  if (!st.ok()) return "walk failed: " + st.ToString();
  if (Status u = fs->Unmount(); !u.ok()) return "unmount failed: " + u.ToString();
  {
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck after recovery failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck after recovery: " + rep->problems[0].code + ": " + rep->problems[0].message;
  }
  const Snapshot& synced = rec.after_op[last_sync_op];
  for (size_t j = last_sync_op; j <= std::min(cur_op, rec.after_op.size() - 1); j++) {
    const Snapshot& cand = rec.after_op[j];
    if (cand.size() != got.size()) continue;
    bool match = true;
    for (const auto& [path, fstate] : cand) {
      auto it = got.find(path);
      if (it == got.end() || it->second.meta != fstate.meta) {
        match = false;
        break;
      }
      // Contents must be exact when the file did not change after the sync
      // (up to the crash); otherwise in-place overwrites may be visible.
      bool stable = true;
      auto s = synced.find(path);
      if (s == synced.end() || s->second.content != fstate.content) stable = false;
      for (size_t k = last_sync_op; stable && k <= std::min(cur_op, rec.after_op.size() - 1); k++) {
        auto kk = rec.after_op[k].find(path);
        if (kk == rec.after_op[k].end() || kk->second.content != fstate.content) stable = false;
      }
      if (stable && it->second.content != fstate.content) {
        match = false;
        break;
      }
    }
    if (match) return "";
  }
  return "recovered state matches no operation boundary in [" + std::to_string(last_sync_op) + ", " +
         std::to_string(cur_op) + "]\nrecovered:\n" + Describe(got) + "last synced:\n" + Describe(synced);
}

void RunCrashPoints(uint64_t seed, int ops, size_t max_points) {
  Recorded rec = RunWorkload(seed, ops);
  ASSERT_FALSE(rec.log.empty());
  std::vector<uint8_t> image = rec.base;
  size_t last_sync_op = 0;
  // Stride so that at most max_points prefixes are checked (all of them when
  // the log is short enough).
  const size_t stride = std::max<size_t>(1, rec.log.size() / max_points);
  size_t checked = 0;
  // Ops whose Sync completed before event i: a Sync completes after its
  // last flush, so track the op of the latest flush that ended an op with
  // a sync.
  for (size_t i = 0; i <= rec.log.size(); i++) {
    // State: events [0, i) applied.
    const size_t cur_op = i < rec.log.size() ? rec.log[i].op : rec.after_op.size() - 1;
    if (i % stride == 0 || i == rec.log.size()) {
      std::string err = CheckCrash(image, rec, last_sync_op, cur_op);
      ASSERT_EQ(err, "") << "crash after " << i << " of " << rec.log.size() << " writes (op " << cur_op << ")";
      // The same prefix with event i torn in half.
      if (i < rec.log.size() && rec.log[i].block != UINT64_MAX) {
        std::vector<uint8_t> torn = image;
        std::memcpy(torn.data() + rec.log[i].block * kBlockSize, rec.log[i].data.data(), kBlockSize / 2);
        err = CheckCrash(std::move(torn), rec, last_sync_op, cur_op);
        ASSERT_EQ(err, "") << "torn write " << i << " of " << rec.log.size() << " (op " << cur_op << ")";
      }
      checked++;
    }
    if (i == rec.log.size()) break;
    const auto& e = rec.log[i];
    if (e.block != UINT64_MAX) {
      std::memcpy(image.data() + e.block * kBlockSize, e.data.data(), kBlockSize);
    }
    // Once the last event of a synced op is applied, that op is durable.
    const bool last_of_op = i + 1 == rec.log.size() || rec.log[i + 1].op != e.op;
    if (last_of_op && e.block == UINT64_MAX && e.op < rec.synced.size() && rec.synced[e.op]) {
      last_sync_op = e.op;
    }
  }
  EXPECT_GT(checked, 0u);
  ::testing::Test::RecordProperty("crash_points", static_cast<int>(checked));
  std::printf("seed %llu: %zu writes, %zu crash points checked (x2 with torn writes)\n",
              static_cast<unsigned long long>(seed), rec.log.size(), checked);
}

// Volatile write cache model: at a crash, everything before the last
// completed flush is durable and any subset of the later writes may have
// reached the disk.
void RunReorderedCrashPoints(uint64_t seed, int ops, size_t samples_per_point, size_t max_points) {
  Recorded rec = RunWorkload(seed, ops);
  std::vector<uint8_t> durable = rec.base;
  std::vector<size_t> pending;  // event indexes since the last flush
  size_t last_sync_op = 0;
  std::mt19937_64 rng(seed * 7919);
  const size_t stride = std::max<size_t>(1, rec.log.size() / max_points);
  size_t checked = 0;
  for (size_t i = 0; i < rec.log.size(); i++) {
    const auto& e = rec.log[i];
    if (e.block == UINT64_MAX) {
      for (size_t k : pending) {
        std::memcpy(durable.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize);
      }
      pending.clear();
      const bool last_of_op = i + 1 == rec.log.size() || rec.log[i + 1].op != e.op;
      if (last_of_op && e.op < rec.synced.size() && rec.synced[e.op]) last_sync_op = e.op;
      continue;
    }
    pending.push_back(i);
    if (i % stride != 0 || pending.size() < 2) continue;
    for (size_t s = 0; s < samples_per_point; s++) {
      std::vector<uint8_t> image = durable;
      std::string applied;
      for (size_t k : pending) {
        if (rng() % 2) {
          std::memcpy(image.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize);
          applied += " " + std::to_string(rec.log[k].block);
        }
      }
      std::vector<uint8_t> copy = image;
      std::string err = CheckCrash(std::move(image), rec, last_sync_op, e.op);
      if (!err.empty() && std::getenv("VEXFS_SAVE_FAILED")) {
        FILE* f = std::fopen(std::getenv("VEXFS_SAVE_FAILED"), "w");
        std::fwrite(copy.data(), 1, copy.size(), f);
        std::fclose(f);
      }
      if (!err.empty() && std::getenv("VEXFS_SAVE_FAILED")) {
        std::printf("applied:%s\n", applied.c_str());
        for (size_t k : pending) {
          std::printf("pending %llu crc_new=%08x crc_durable=%08x same_as_durable=%d\n", (unsigned long long)rec.log[k].block,
                      Crc32c(rec.log[k].data.data(), kBlockSize), Crc32c(durable.data() + rec.log[k].block * kBlockSize, kBlockSize),
                      std::memcmp(durable.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize) == 0);
        }
        for (size_t k = (i > 60 ? i - 60 : 0); k <= i; k++) {
          std::printf("ev %zu op %zu blk %lld%s\n", k, rec.log[k].op, rec.log[k].block == UINT64_MAX ? -1LL : (long long)rec.log[k].block,
                      std::find(pending.begin(), pending.end(), k) != pending.end() ? " pending" : "");
        }
      }
      ASSERT_EQ(err, "") << "reordered crash at write " << i << " sample " << s << " (op " << e.op << ")";
      checked++;
    }
  }
  std::printf("seed %llu: %zu reordered crash images checked\n", static_cast<unsigned long long>(seed), checked);
}

size_t MaxPoints() {
  const char* env = std::getenv("VEXFS_CRASH_POINTS");
  return env ? static_cast<size_t>(std::atol(env)) : 1500;
}

TEST(CrashTest, MixedWorkloadSeed1) { RunCrashPoints(1, 400, MaxPoints()); }
TEST(CrashTest, MixedWorkloadSeed2) { RunCrashPoints(2, 400, MaxPoints()); }
TEST(CrashTest, UnflushedWritesLostInAnyOrder) { RunReorderedCrashPoints(4, 300, 3, MaxPoints() / 3 + 1); }
TEST(CrashTest, MixedWorkloadSeed3) { RunCrashPoints(3, 600, MaxPoints()); }

}  // namespace
}  // namespace vexfs
