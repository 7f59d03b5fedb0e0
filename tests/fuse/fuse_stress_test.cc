// Concurrency through the mount: four processes write and verify their own
// files, write disjoint stripes of one shared file while two readers read
// it, and churn names in a shared directory.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

namespace vexfs::fusetest {
namespace {

constexpr int kWriters = 4;
constexpr int kRounds = 60;
constexpr size_t kStripe = 16384;

uint8_t Byte(int who, int round, size_t k) {
  return static_cast<uint8_t>(who * 61 + round * 7 + k);
}

// Returns 0 or a line number that failed.
int Writer(const Volume& vol, int who) {
  const std::string own = vol.P("own-" + std::to_string(who));
  const int fd = open(own.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  const int shared = open(vol.P("shared").c_str(), O_RDWR);
  if (fd < 0 || shared < 0) return __LINE__;
  std::vector<uint8_t> buf(kStripe), back(kStripe);
  for (int round = 0; round < kRounds; ++round) {
    for (size_t k = 0; k < kStripe; ++k) buf[k] = Byte(who, round, k);
    const off_t off = static_cast<off_t>(round % 16) * kStripe;
    if (pwrite(fd, buf.data(), kStripe, off) != static_cast<ssize_t>(kStripe)) return __LINE__;
    if (pread(fd, back.data(), kStripe, off) != static_cast<ssize_t>(kStripe)) return __LINE__;
    if (back != buf) return __LINE__;
    // Stripe `who` of block `round % 16` in the shared file.
    const off_t soff = static_cast<off_t>((round % 16) * kWriters + who) * kStripe;
    if (pwrite(shared, buf.data(), kStripe, soff) != static_cast<ssize_t>(kStripe)) return __LINE__;
    // Name churn in a shared directory.
    const std::string a = vol.P("churn/" + std::to_string(who) + "-" + std::to_string(round));
    const int t = open(a.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (t < 0 || write(t, buf.data(), 100) != 100) return __LINE__;
    close(t);
    if (rename(a.c_str(), (a + ".r").c_str()) != 0) return __LINE__;
    if (round % 3 == 0 && unlink((a + ".r").c_str()) != 0) return __LINE__;
    if (round % 10 == 0 && fsync(fd) != 0) return __LINE__;
  }
  close(fd);
  close(shared);
  return 0;
}

int Reader(const Volume& vol) {
  const int fd = open(vol.P("shared").c_str(), O_RDONLY);
  if (fd < 0) return __LINE__;
  std::vector<uint8_t> buf(1 << 20);
  for (int i = 0; i < 200; ++i) {
    if (pread(fd, buf.data(), buf.size(), 0) < 0) return __LINE__;
    DIR* d = opendir(vol.P("churn").c_str());
    if (d == nullptr) return __LINE__;
    while (readdir(d) != nullptr) {
    }
    closedir(d);
  }
  close(fd);
  return 0;
}

TEST(FuseStress, ConcurrentWritersAndReaders) {
  VEXFS_SKIP_UNLESS_FUSE();
  Volume vol(256);
  ASSERT_TRUE(vol.Mount()) << vol.log();
  ASSERT_EQ(mkdir(vol.P("churn").c_str(), 0755), 0);
  ASSERT_EQ(close(open(vol.P("shared").c_str(), O_WRONLY | O_CREAT, 0644)), 0);
  std::vector<pid_t> kids;
  for (int w = 0; w < kWriters + 2; ++w) {
    const pid_t pid = fork();
    if (pid == 0) _exit(w < kWriters ? (Writer(vol, w) ? 1 : 0) : (Reader(vol) ? 1 : 0));
    kids.push_back(pid);
  }
  for (size_t i = 0; i < kids.size(); ++i) {
    int st = 0;
    waitpid(kids[i], &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "process " << i;
  }
  ASSERT_TRUE(vol.Remount()) << vol.log();
  // Every stripe of the shared file holds its writer's last round for it.
  const int fd = open(vol.P("shared").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> buf(kStripe);
  for (int block = 0; block < 16; ++block) {
    const int last = block + 16 * ((kRounds - 1 - block) / 16);
    for (int w = 0; w < kWriters; ++w) {
      ASSERT_EQ(pread(fd, buf.data(), kStripe, (block * kWriters + w) * kStripe),
                static_cast<ssize_t>(kStripe));
      for (size_t k = 0; k < kStripe; ++k) {
        ASSERT_EQ(buf[k], Byte(w, last, k)) << "block " << block << " writer " << w;
      }
    }
  }
  close(fd);
  int names = 0;
  DIR* d = opendir(vol.P("churn").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) names += e->d_name[0] != '.';
  closedir(d);
  int want = 0;
  for (int r = 0; r < kRounds; ++r) want += r % 3 != 0;
  EXPECT_EQ(names, want * kWriters);
  EXPECT_EQ(vol.Unmount(), 0) << vol.log();
}

}  // namespace
}  // namespace vexfs::fusetest
