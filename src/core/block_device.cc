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
        is_blk_(is_blk) {}
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
    if (direct_fd_ < 0 || count > kDirectMaxBlocks || reinterpret_cast<uintptr_t>(buf) % kBlockSize != 0 ||
        !direct_ok_.load(std::memory_order_relaxed) || Cached(block, count)) {
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

  // cachestat(2) (Linux 6.5): whether any page of the range is in the
  // host's page cache. False when unknown.
  bool Cached(uint64_t block, uint32_t count) {
    if (!cachestat_ok_.load(std::memory_order_relaxed)) return false;
    struct {
      uint64_t off, len;
    } range{block * kBlockSize, uint64_t{count} * kBlockSize};
    struct {
      uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } st{};
    constexpr long kCachestat = 451;  // the same number on every architecture
    if (::syscall(kCachestat, fd_, &range, &st, 0) != 0) {
      if (errno == ENOSYS || errno == EOPNOTSUPP) cachestat_ok_.store(false, std::memory_order_relaxed);
      return false;
    }
    return st.nr_cache > 0;
  }

  static constexpr uint32_t kDirectMaxBlocks = 4;
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
