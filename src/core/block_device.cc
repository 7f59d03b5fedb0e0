#include "vexfs/block_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace vexfs {
namespace {

Status Errno(const std::string& what) { return Status::Error(errno, what + ": " + strerror(errno)); }

bool InRange(uint64_t block, uint32_t count, uint64_t total) {
  return block <= total && count <= total - block;
}

class FileDevice final : public BlockDevice {
 public:
  // `direct_fd`: the same file opened O_DIRECT for ReadData, or -1.
  FileDevice(int fd, int direct_fd, uint64_t blocks, bool ro, bool is_blk, uint64_t start_writeback_bytes)
      : fd_(fd),
        direct_fd_(direct_fd),
        start_writeback_bytes_(ro ? 0 : start_writeback_bytes),
        blocks_(blocks),
        ro_(ro),
        is_blk_(is_blk) {
    if (direct_fd_ >= 0) {  // value-initialised: 0
      region_ = std::make_unique<std::atomic<uint8_t>[]>((blocks_ + kRegionBlocks - 1) / kRegionBlocks);
    }
  }
  ~FileDevice() override {
    {
      std::lock_guard<std::mutex> l(wb_mu_);
      wb_stop_ = true;
    }
    wb_cv_.notify_all();
    if (wb_thread_.joinable()) wb_thread_.join();
    ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  uint64_t block_count() const override { return blocks_; }
  bool read_only() const override { return ro_; }

  Status Read(uint64_t block, uint32_t count, void* buf) override {
    if (!InRange(block, count, blocks_)) return Status::IoError("read beyond end of device");
    return Transfer(false, block, count, buf);
  }
  // Small reads only: large ones come from sequential readers, which the
  // host's readahead serves better. A range the host has cached (clean or
  // dirty, cachestat(2)) is read through the cache: a hit costs no I/O, and
  // an O_DIRECT read would first write a dirty copy back and wait. (Where
  // cachestat is missing, O_DIRECT always: the kernel's write-back before
  // it keeps the read consistent with every completed Write().)
  Status ReadData(uint64_t block, uint32_t count, void* buf) override {
    if (!InRange(block, count, blocks_)) return Status::IoError("read beyond end of device");
    if (count == 0 || direct_fd_ < 0 || count > kDirectMaxBlocks ||
        reinterpret_cast<uintptr_t>(buf) % kBlockSize != 0 || !direct_ok_.load(std::memory_order_relaxed) ||
        !Uncached(block, count)) {
      return Transfer(false, block, count, buf);
    }
    const size_t len = size_t{count} * kBlockSize;
    const ssize_t n = ::pread(direct_fd_, buf, len, static_cast<off_t>(block * kBlockSize));
    if (n == static_cast<ssize_t>(len)) return Status::Ok();
    if (n < 0 && errno == EINVAL) direct_ok_.store(false, std::memory_order_relaxed);  // alignment
    return Transfer(false, block, count, buf);
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (ro_) return Status::Error(EROFS, "device is read-only");
    if (!InRange(block, count, blocks_)) return Status::IoError("write beyond end of device");
    VEXFS_RETURN_IF_ERROR(Transfer(true, block, count, const_cast<void*>(buf)));
    if (start_writeback_bytes_ != 0) {
      const uint64_t len = uint64_t{count} * kBlockSize;
      if (unstarted_.fetch_add(len, std::memory_order_relaxed) + len >= start_writeback_bytes_) StartWriteback();
    }
    return Status::Ok();
  }
  Status Zero(uint64_t block, uint64_t count) override {
    if (ro_) return Status::Error(EROFS, "device is read-only");
    if (!InRange(block, count, blocks_)) return Status::IoError("zero beyond end of device");
    const off_t off = static_cast<off_t>(block * kBlockSize);
    const off_t len = static_cast<off_t>(count * kBlockSize);
    if (is_blk_) {
      uint64_t range[2] = {static_cast<uint64_t>(off), static_cast<uint64_t>(len)};
      if (::ioctl(fd_, BLKZEROOUT, range) == 0) return Status::Ok();
    } else if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) {
      return Status::Ok();
    }
    return BlockDevice::Zero(block, count);
  }
  Status Flush() override {
    if (ro_) return Status::Ok();
    unstarted_.store(0, std::memory_order_relaxed);
    if (::fdatasync(fd_) != 0) return Errno("fdatasync");
    return Status::Ok();
  }

 private:
  // OpenOptions::start_writeback_bytes. The thread starts with the first
  // request; a request made while one is under way is merged into the next.
  void StartWriteback() {
    unstarted_.store(0, std::memory_order_relaxed);
    std::lock_guard<std::mutex> l(wb_mu_);
    if (wb_stop_) return;
    wb_wanted_ = true;
    if (!wb_thread_.joinable()) {
      try {
        wb_thread_ = std::thread([this] { WritebackLoop(); });
      } catch (const std::system_error&) {
        wb_stop_ = true;  // no thread to spare: leave write-back to the host
      }
    } else {
      wb_cv_.notify_one();
    }
  }
  void WritebackLoop() {
    std::unique_lock<std::mutex> l(wb_mu_);
    for (;;) {
      wb_cv_.wait(l, [this] { return wb_wanted_ || wb_stop_; });
      if (wb_stop_) return;
      wb_wanted_ = false;
      l.unlock();
      // WRITE alone neither waits nor consumes a write-back error: the next
      // fdatasync in Flush() still reports it. An error here (EIO from the
      // submission, ESPIPE on odd devices) changes nothing Flush() relies on.
      (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
      l.lock();
    }
  }

  Status Transfer(bool write, uint64_t block, uint32_t count, void* buf) {
    // After the I/O, on every path: a region a concurrent ReadData finds
    // cold meanwhile is warmed again once these pages are in the cache.
    struct After {
      FileDevice* d;
      uint64_t b;
      uint32_t n;
      ~After() { d->Touched(b, n); }
    } after{this, block, count};
    auto* p = static_cast<uint8_t*>(buf);
    size_t left = size_t{count} * kBlockSize;
    off_t off = static_cast<off_t>(block * kBlockSize);
    while (left > 0) {
      ssize_t n = write ? ::pwrite(fd_, p, left, off) : ::pread(fd_, p, left, off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno(write ? "pwrite" : "pread");
      }
      if (n == 0) return Status::IoError("short transfer at end of device");
      p += n;
      left -= static_cast<size_t>(n);
      off += n;
    }
    return Status::Ok();
  }

  // cachestat(2) (Linux 6.5): the pages of the range in the host's page
  // cache, or -1 when unknown.
  int64_t CachedPages(uint64_t block, uint64_t count) {
    if (!cachestat_ok_.load(std::memory_order_relaxed)) return -1;
    struct {
      uint64_t off, len;
    } range{block * kBlockSize, count * kBlockSize};
    struct {
      uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } st{};
    constexpr long kCachestat = 451;  // the same number on every architecture
    if (::syscall(kCachestat, fd_, &range, &st, 0) != 0) {
      if (errno == ENOSYS || errno == EOPNOTSUPP) cachestat_ok_.store(false, std::memory_order_relaxed);
      return -1;
    }
    return static_cast<int64_t>(st.nr_cache);
  }

  // Whether ReadData should read [block, block + count) with O_DIRECT: the
  // host holds none of it, or cannot say. A region found cold is trusted
  // without asking again (region_); otherwise the range is asked about,
  // and after kRecheck misses in a row its whole region is.
  bool Uncached(uint64_t block, uint32_t count) {
    const uint64_t first = block / kRegionBlocks, last = (block + count - 1) / kRegionBlocks;
    bool cold = true;
    for (uint64_t r = first; r <= last; r++) cold = cold && region_[r].load(std::memory_order_relaxed) == kCold;
    if (cold) return true;
    const int64_t pages = CachedPages(block, count);
    if (pages != 0) return pages < 0;
    for (uint64_t r = first; r <= last; r++) {
      uint8_t seen = region_[r].load(std::memory_order_relaxed);
      if (seen == kCold) continue;
      uint8_t next = static_cast<uint8_t>(seen + 1);
      if (next >= kRecheck) {
        const uint64_t start = r * kRegionBlocks;
        next = CachedPages(start, std::min(kRegionBlocks, blocks_ - start)) == 0 ? kCold : 0;
      }
      // Lost to a concurrent Touched() (or another reader): keep theirs.
      region_[r].compare_exchange_strong(seen, next, std::memory_order_relaxed);
    }
    return true;
  }

  // The regions of [block, block + count) may now have pages in the
  // host's cache: buffered I/O of this device went through them.
  // REQUIRES: the range is on the device (as Read, Write and ReadData check).
  void Touched(uint64_t block, uint32_t count) {
    if (!region_ || count == 0) return;
    const uint64_t last = (block + count - 1) / kRegionBlocks;
    for (uint64_t r = block / kRegionBlocks; r <= last; r++) {
      if (region_[r].load(std::memory_order_relaxed) != 0) region_[r].store(0, std::memory_order_relaxed);
    }
  }

  static constexpr uint32_t kDirectMaxBlocks = 4;
  // ReadData's memory of where the host's page cache holds nothing of the
  // device, per region of kRegionBlocks blocks: kCold, a region in which a
  // look at cachestat(2) found no page, read with O_DIRECT without asking
  // again until this device's own buffered I/O touches it (Touched);
  // otherwise the misses in a row of ReadData's range checks there. A
  // mounted device is filled into the host's cache by this process alone
  // (it holds the device exclusively), and a stale entry costs time, never
  // data: an O_DIRECT read sees dirty cached pages too (the kernel writes
  // them back first). A cold 4 KiB read then saves its cachestat call
  // (1.3-1.5 us of a ~70 us read in session 8's trace, against
  // passthrough_ll's plain pread; bench/fuse/README.md).
  static constexpr uint64_t kRegionBlocks = 512;  // 2 MiB
  static constexpr uint8_t kCold = 0xff, kRecheck = 4;
  std::unique_ptr<std::atomic<uint8_t>[]> region_;  // only with direct_fd_
  int fd_;
  int direct_fd_;
  const uint64_t start_writeback_bytes_;
  std::atomic<uint64_t> unstarted_{0};  // bytes written since write-back last started
  std::mutex wb_mu_;
  std::condition_variable wb_cv_;
  bool wb_wanted_ = false;  // guarded by wb_mu_
  bool wb_stop_ = false;    // guarded by wb_mu_
  std::thread wb_thread_;   // started by the first StartWriteback()
  std::atomic<bool> direct_ok_{true};
  std::atomic<bool> cachestat_ok_{true};
  uint64_t blocks_;
  bool ro_;
  bool is_blk_;
};

}  // namespace

Result<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                     const OpenOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno("cannot open " + path);
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  const bool is_blk = S_ISBLK(st.st_mode);
  if (!is_blk && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + " is neither a regular file nor a block device");
  }
  if (is_blk && options.exclusive && !options.read_only) flags |= O_EXCL;
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return Errno("cannot open " + path);
  if (options.exclusive) {
    int op = (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB;
    if (::flock(fd, op) != 0) {
      int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) return Status::Error(EBUSY, path + " is in use by another process");
      errno = e;
      return Errno("flock " + path);
    }
  }
  uint64_t bytes = 0;
  if (is_blk) {
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
      Status s = Errno("BLKGETSIZE64");
      ::close(fd);
      return s;
    }
  } else {
    bytes = static_cast<uint64_t>(st.st_size);
  }
  // Without O_EXCL: the exclusive open above already holds the device.
  // Filesystems without O_DIRECT (tmpfs) refuse it: buffered reads then.
  const int direct_fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  return std::unique_ptr<BlockDevice>(
      new FileDevice(fd, direct_fd, bytes / kBlockSize, options.read_only, is_blk, options.start_writeback_bytes));
}

Status BlockDevice::Zero(uint64_t block, uint64_t count) {
  if (block > block_count() || count > block_count() - block) {
    return Status::IoError("zero beyond end of device");
  }
  std::vector<uint8_t> zeros(size_t{256} * kBlockSize, 0);
  while (count > 0) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, 256));
    VEXFS_RETURN_IF_ERROR(Write(block, n, zeros.data()));
    block += n;
    count -= n;
  }
  return Status::Ok();
}

Status MemoryDevice::Read(uint64_t block, uint32_t count, void* buf) {
  if (!InRange(block, count, block_count())) return Status::IoError("read beyond end of device");
  std::memcpy(buf, data_.data() + block * kBlockSize, size_t{count} * kBlockSize);
  return Status::Ok();
}

Status MemoryDevice::Write(uint64_t block, uint32_t count, const void* buf) {
  if (!InRange(block, count, block_count())) return Status::IoError("write beyond end of device");
  std::memcpy(data_.data() + block * kBlockSize, buf, size_t{count} * kBlockSize);
  return Status::Ok();
}

}  // namespace vexfs
