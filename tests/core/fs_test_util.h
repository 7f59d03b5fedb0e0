// Helpers for filesystem tests: in-memory volumes and small wrappers.
#ifndef VEXFS_TESTS_CORE_FS_TEST_UTIL_H_
#define VEXFS_TESTS_CORE_FS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "vexfs/block_device.h"
#include "vexfs/filesystem.h"
#include "vexfs/mkfs.h"

namespace vexfs::testing {

// A BlockDevice over a shared byte image, so a test can "pull the plug"
// (drop the Filesystem) and mount the same bytes again.
class SharedMemoryDevice : public BlockDevice {
 public:
  // `power_cut`, when given and set, makes every later write and flush fail
  // without touching the image: the machine lost power.
  explicit SharedMemoryDevice(std::shared_ptr<std::vector<uint8_t>> img,
                              std::shared_ptr<std::atomic<bool>> power_cut = nullptr)
      : img_(std::move(img)), cut_(std::move(power_cut)) {}
  uint64_t block_count() const override { return img_->size() / kBlockSize; }
  Status Read(uint64_t block, uint32_t count, void* buf) override {
    if (block + count > block_count()) return Status::IoError("read beyond end");
    std::memcpy(buf, img_->data() + block * kBlockSize, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (cut_ && *cut_) return Status::IoError("power cut");
    if (block + count > block_count()) return Status::IoError("write beyond end");
    std::memcpy(img_->data() + block * kBlockSize, buf, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Flush() override { return cut_ && *cut_ ? Status::IoError("power cut") : Status::Ok(); }

 private:
  std::shared_ptr<std::vector<uint8_t>> img_;
  std::shared_ptr<std::atomic<bool>> cut_;
};

inline std::shared_ptr<std::vector<uint8_t>> NewImage(uint64_t blocks, uint64_t journal_blocks = 0,
                                                      uint64_t inodes = 0) {
  auto img = std::make_shared<std::vector<uint8_t>>(blocks * kBlockSize, 0);
  SharedMemoryDevice dev(img);
  FormatOptions fo;
  fo.seed = 42;
  fo.journal_blocks = journal_blocks;
  fo.inode_count = inodes;
  auto r = Format(&dev, fo);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return img;
}

inline MountOptions TestMountOptions() {
  MountOptions o;
  o.commit_interval_ms = 0;
  o.cache_mb = 8;
  return o;
}

inline std::unique_ptr<Filesystem> MountImage(std::shared_ptr<std::vector<uint8_t>> img,
                                              MountOptions o = TestMountOptions(),
                                              MountInfo* info = nullptr,
                                              std::shared_ptr<std::atomic<bool>> power_cut = nullptr) {
  auto r = Filesystem::Mount(std::make_unique<SharedMemoryDevice>(img, power_cut), o, info);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return nullptr;
  return std::move(r).value();
}

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// `dim` float32 components base, base + 0.5, base + 1, ... as the raw bytes
// of a user.vexfs.vector value.
inline std::vector<uint8_t> VectorBytes(float base, uint32_t dim) {
  std::vector<uint8_t> v(size_t{dim} * 4);
  for (uint32_t i = 0; i < dim; i++) {
    const float f = base + static_cast<float>(i) * 0.5f;
    std::memcpy(v.data() + 4 * size_t{i}, &f, 4);
  }
  return v;
}

inline std::string ReadAll(Filesystem* fs, uint64_t ino) {
  auto a = fs->GetAttr(ino);
  if (!a.ok()) return "<error>";
  std::string s(a->size, '\0');
  auto n = fs->Read(ino, 0, {reinterpret_cast<uint8_t*>(s.data()), s.size()});
  if (!n.ok()) return "<error>";
  s.resize(*n);
  return s;
}

}  // namespace vexfs::testing

#endif  // VEXFS_TESTS_CORE_FS_TEST_UTIL_H_
