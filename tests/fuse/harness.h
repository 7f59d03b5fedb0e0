// Test harness for the FUSE suite: formats an image in a fresh temp dir,
// runs vexfs-fuse (VEXFS_FUSE_BIN) on it as a child process and always
// unmounts in teardown. Tests skip when not root or without /dev/fuse.
#ifndef VEXFS_TESTS_FUSE_HARNESS_H_
#define VEXFS_TESTS_FUSE_HARNESS_H_

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vexfs::fusetest {

// Empty when FUSE mounts can run here, else the reason to skip.
std::string SkipReason();

// Runs argv (argv[0] looked up in PATH) and returns its exit status, or -1.
// Output goes to `log` when not empty.
int RunCmd(const std::vector<std::string>& argv, const std::string& log = "");

// Formats a sparse image of `mib` MiB at `path` with vexfs::Format.
void MakeImage(const std::string& path, uint64_t mib);

// Forks, drops to uid/gid with the given supplementary groups, runs fn and
// returns what fn returned (0..255, conventionally 0 or an errno).
int RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::function<int()>& fn);

// One volume in a temp dir (mode 0755 so other uids can reach the mount).
class Volume {
 public:
  explicit Volume(uint64_t mib = 128);
  ~Volume();  // unmounts, reaps the daemon, removes the temp dir

  // Starts `vexfs-fuse IMAGE MNT -f -o allow_other[,extra]` and waits
  // (bounded) for the mount. False on failure; the log has the details.
  bool Mount(const std::string& extra_opts = "");
  // Unmounts (fusermount3 -u, else umount -l) and waits for the daemon.
  // Returns the daemon's exit status (-1 if it had to be killed).
  int Unmount();
  // SIGKILLs the daemon and removes the dead mount.
  void Kill9();
  // Waits (bounded) for the daemon to exit by itself; returns its exit
  // status, or -1 if it had to be killed.
  int Reap(int timeout_ms);
  bool Remount(const std::string& extra_opts = "") {
    Unmount();
    return Mount(extra_opts);
  }
  bool mounted() const;
  pid_t pid() const { return pid_; }

  const std::string& dir() const { return dir_; }
  const std::string& image() const { return image_; }
  const std::string& mnt() const { return mnt_; }
  std::string log() const;  // the daemon's stderr so far
  std::string P(const std::string& rel) const { return mnt_ + "/" + rel; }

 private:
  void ForceUnmount();
  std::string dir_, image_, mnt_, log_;
  pid_t pid_ = -1;
};

// True when st_dev of `path` differs from that of its parent directory.
bool IsMountPoint(const std::string& path);
// Waits (bounded) until nothing holds the image's exclusive lock.
bool WaitImageUnlocked(const std::string& image, int timeout_ms);

// errno of the last call when rc < 0, else 0.
inline int Err(long rc) { return rc < 0 ? errno : 0; }

}  // namespace vexfs::fusetest

#define VEXFS_SKIP_UNLESS_FUSE()                              \
  do {                                                        \
    const std::string _why = ::vexfs::fusetest::SkipReason(); \
    if (!_why.empty()) GTEST_SKIP() << _why;                  \
  } while (0)

#endif  // VEXFS_TESTS_FUSE_HARNESS_H_
