// fsx-style random operations on one file through the mount, checked
// against an in-memory model after every read: write, read, truncate,
// mmap read, mmap write + msync, fallocate (extend, keep-size, punch hole),
// rename and fsync, with a fixed seed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness.h"

namespace vexfs::fusetest {
namespace {

constexpr size_t kMaxSize = 512 * 1024;

class Fsx {
 public:
  Fsx(Volume* vol, uint32_t seed) : vol_(vol), rng_(seed) {}

  ::testing::AssertionResult Open() {
    fd_ = open(vol_->P(name_).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0) return ::testing::AssertionFailure() << "open: " << strerror(errno);
    return ::testing::AssertionSuccess();
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  ::testing::AssertionResult Step(int i) {
    const int op = Pick(0, 99);
    if (op < 25) return Write(i);
    if (op < 45) return Read(i);
    if (op < 52) return Truncate(i);
    if (op < 62) return MapRead(i);
    if (op < 72) return MapWrite(i);
    if (op < 82) return Fallocate(i);
    if (op < 88) return Rename(i);
    if (op < 92) return fsync(fd_) == 0 ? Ok() : Fail(i, "fsync");
    return Read(i);
  }

  ::testing::AssertionResult CheckAll(int i) {
    std::vector<uint8_t> buf(model_.size() + 100);
    const ssize_t n = pread(fd_, buf.data(), buf.size(), 0);
    if (n != static_cast<ssize_t>(model_.size())) return Fail(i, "full read length");
    return Compare(i, "full read", buf.data(), 0, model_.size());
  }
  ::testing::AssertionResult CheckReopened() {
    const int fd = open(vol_->P(name_).c_str(), O_RDONLY);
    if (fd < 0) return Fail(-1, "reopen");
    std::vector<uint8_t> buf(model_.size() + 100);
    const ssize_t n = pread(fd, buf.data(), buf.size(), 0);
    close(fd);
    if (n != static_cast<ssize_t>(model_.size())) return Fail(-1, "reopened read length");
    return Compare(-1, "reopened read", buf.data(), 0, model_.size());
  }
  const std::string& name() const { return name_; }
  size_t size() const { return model_.size(); }

 private:
  static ::testing::AssertionResult Ok() { return ::testing::AssertionSuccess(); }
  ::testing::AssertionResult Fail(int i, const std::string& what) {
    return ::testing::AssertionFailure() << "op " << i << ": " << what << ": " << strerror(errno)
                                         << " (model size " << model_.size() << ")";
  }
  size_t Pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }
  // Offsets bias towards block boundaries, where extents split.
  size_t Offset(size_t limit) {
    size_t o = Pick(0, limit);
    if (Pick(0, 3) == 0) o &= ~size_t{4095};
    return std::min(o, limit);
  }

  struct Event {
    int op;
    std::string what;
    size_t off, len, size_after;
  };
  void Note(int i, std::string what, size_t off, size_t len) {
    history_.push_back({i, std::move(what), off, len, model_.size()});
  }
  // The operations that touched `byte` or changed the size, newest last.
  std::string History(size_t byte) const {
    std::string out;
    for (const Event& e : history_) {
      if ((byte >= e.off && byte < e.off + e.len) || (e.what == "truncate" && e.off <= byte)) {
        out += "\n  op " + std::to_string(e.op) + " " + e.what + " [" + std::to_string(e.off) +
               ", +" + std::to_string(e.len) + ") size " + std::to_string(e.size_after);
      }
    }
    return out.size() > 3000 ? out.substr(out.size() - 3000) : out;
  }

  ::testing::AssertionResult Compare(int i, const char* what, const uint8_t* got, size_t off,
                                     size_t len) {
    for (size_t k = 0; k < len; ++k) {
      if (got[k] != model_[off + k]) {
        return ::testing::AssertionFailure()
               << "op " << i << ": " << what << " mismatch at byte " << off + k << ": got "
               << int(got[k]) << " want " << int(model_[off + k]) << " (size " << model_.size()
               << ")" << History(off + k);
      }
    }
    return Ok();
  }

  ::testing::AssertionResult Write(int i) {
    const size_t off = Offset(kMaxSize - 1);
    const size_t len = std::min(Pick(1, 65536), kMaxSize - off);
    std::vector<uint8_t> data(len);
    const uint8_t tag = static_cast<uint8_t>(i * 31 + 7);
    for (size_t k = 0; k < len; ++k) data[k] = static_cast<uint8_t>(tag + k * 3 + (k >> 9));
    if (pwrite(fd_, data.data(), len, off) != static_cast<ssize_t>(len)) return Fail(i, "pwrite");
    if (model_.size() < off + len) model_.resize(off + len, 0);
    std::copy(data.begin(), data.end(), model_.begin() + off);
    Note(i, "write", off, len);
    return Ok();
  }
  ::testing::AssertionResult Read(int i) {
    if (model_.empty()) return Ok();
    const size_t off = Offset(model_.size() - 1);
    const size_t len = Pick(1, 100000);
    std::vector<uint8_t> buf(len);
    const ssize_t n = pread(fd_, buf.data(), len, off);
    const size_t want = std::min(len, model_.size() - off);
    if (n != static_cast<ssize_t>(want)) return Fail(i, "pread length");
    return Compare(i, "pread", buf.data(), off, want);
  }
  ::testing::AssertionResult Truncate(int i) {
    const size_t len = Offset(kMaxSize);
    if (ftruncate(fd_, len) != 0) return Fail(i, "ftruncate");
    model_.resize(len, 0);
    Note(i, "truncate", len, 0);
    return Ok();
  }
  ::testing::AssertionResult MapRead(int i) {
    if (model_.empty()) return Ok();
    void* p = mmap(nullptr, model_.size(), PROT_READ, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return Fail(i, "mmap read");
    const size_t off = Offset(model_.size() - 1);
    const size_t len = std::min(Pick(1, 65536), model_.size() - off);
    auto r = Compare(i, "mmap read", static_cast<uint8_t*>(p) + off, off, len);
    munmap(p, model_.size());
    return r;
  }
  ::testing::AssertionResult MapWrite(int i) {
    if (model_.empty()) return Ok();
    void* p = mmap(nullptr, model_.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return Fail(i, "mmap write");
    const size_t off = Offset(model_.size() - 1);
    const size_t len = std::min(Pick(1, 32768), model_.size() - off);
    auto* b = static_cast<uint8_t*>(p);
    for (size_t k = 0; k < len; ++k) {
      b[off + k] = static_cast<uint8_t>(i + k * 5);
      model_[off + k] = b[off + k];
    }
    const bool ok = msync(p, model_.size(), MS_SYNC) == 0;
    Note(i, "mmap write", off, len);
    munmap(p, model_.size());
    return ok ? Ok() : Fail(i, "msync");
  }
  ::testing::AssertionResult Fallocate(int i) {
    const size_t off = Offset(kMaxSize - 1);
    const size_t len = std::min(Pick(1, 131072), kMaxSize - off);
    const int kind = static_cast<int>(Pick(0, 2));
    const int mode = kind == 0   ? 0
                     : kind == 1 ? FALLOC_FL_KEEP_SIZE
                                 : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    if (fallocate(fd_, mode, off, len) != 0)
      return Fail(i, "fallocate mode " + std::to_string(mode));
    if (kind == 0 && model_.size() < off + len) model_.resize(off + len, 0);
    if (kind == 2 && off < model_.size()) {
      std::fill(model_.begin() + off, model_.begin() + std::min(model_.size(), off + len), 0);
    }
    Note(i, "fallocate mode " + std::to_string(mode), off, len);
    return Ok();
  }
  ::testing::AssertionResult Rename(int i) {
    const std::string next = "fsx-" + std::to_string(i);
    if (rename(vol_->P(name_).c_str(), vol_->P(next).c_str()) != 0) return Fail(i, "rename");
    name_ = next;
    return Ok();
  }

  Volume* vol_;
  std::mt19937 rng_;
  std::string name_ = "fsx-file";
  std::vector<uint8_t> model_;
  std::vector<Event> history_;
  int fd_ = -1;
};

void RunFsx(const std::string& opts, uint32_t seed, int ops) {
  VEXFS_SKIP_UNLESS_FUSE();
  Volume vol;
  ASSERT_TRUE(vol.Mount(opts)) << vol.log();
  Fsx fsx(&vol, seed);
  ASSERT_TRUE(fsx.Open());
  for (int i = 0; i < ops; ++i) {
    ASSERT_TRUE(fsx.Step(i)) << "seed " << seed;
    if (i % 500 == 499) {
      ASSERT_TRUE(fsx.CheckAll(i));
    }
  }
  ASSERT_TRUE(fsx.CheckAll(ops));
  fsx.Close();
  ASSERT_TRUE(fsx.CheckReopened());
  ASSERT_TRUE(vol.Remount(opts)) << vol.log();
  ASSERT_TRUE(fsx.CheckReopened()) << "after remount";
  EXPECT_EQ(vol.Unmount(), 0) << vol.log();
}

TEST(FuseFsx, RandomOpsMatchModel) { RunFsx("", 20240611, 3000); }

// The same with a tiny metadata cache and frequent commits: more eviction
// and journal wrap-around under the same workload.
// With -o default_permissions: the kernel's writeback cache is on.
TEST(FuseFsx, RandomOpsWritebackCache) { RunFsx("default_permissions", 20240611, 3000); }

TEST(FuseFsx, RandomOpsSmallCache) { RunFsx("cache_mb=1,commit_ms=50", 7, 1500); }

}  // namespace
}  // namespace vexfs::fusetest
