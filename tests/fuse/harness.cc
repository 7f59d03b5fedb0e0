#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "vexfs/block_device.h"
#include "vexfs/mkfs.h"

namespace vexfs::fusetest {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Should the test process die, a daemon gets SIGTERM and unmounts.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (!log.empty()) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

int WaitStatus(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : -1; }

}  // namespace

std::string SkipReason() {
  if (geteuid() != 0) return "FUSE tests need root (they mount and switch uids)";
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is not available";
  return "";
}

int RunCmd(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WaitStatus(st);
}

void MakeImage(const std::string& path, uint64_t mib) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(mib << 20)) != 0) std::abort();
  close(fd);
  auto dev = OpenBlockDevice(path, OpenOptions{.read_only = false, .exclusive = true});
  if (!dev.ok()) std::abort();
  FormatOptions fo;
  fo.seed = 42;
  if (!Format(dev->get(), fo).ok() || !(*dev)->Flush().ok()) std::abort();
}

int RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      _exit(254);
    }
    _exit(fn() & 0xff);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WaitStatus(st);
}

bool IsMountPoint(const std::string& path) {
  struct stat a, b;
  if (stat(path.c_str(), &a) != 0) return errno == ENOTCONN;  // a dead FUSE mount
  if (stat((path + "/..").c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev;
}

bool WaitImageUnlocked(const std::string& image, int timeout_ms) {
  const int64_t end = NowMs() + timeout_ms;
  while (true) {
    const int fd = open(image.c_str(), O_RDONLY);
    if (fd < 0) return false;
    const bool free = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    if (free) return true;
    if (NowMs() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Volume::Volume(uint64_t mib) {
  char tmpl[] = "/tmp/vexfs-fuse-test.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);
  image_ = dir_ + "/image";
  mnt_ = dir_ + "/mnt";
  log_ = dir_ + "/daemon.log";
  mkdir(mnt_.c_str(), 0755);
  MakeImage(image_, mib);
}

Volume::~Volume() {
  Unmount();
  RunCmd({"rm", "-rf", dir_});
}

bool Volume::mounted() const { return IsMountPoint(mnt_); }

std::string Volume::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Volume::Mount(const std::string& extra_opts) {
  if (pid_ > 0) return false;
  std::string opts = "allow_other";
  if (!extra_opts.empty()) opts += "," + extra_opts;
  pid_ = Spawn({VEXFS_FUSE_BIN, image_, mnt_, "-f", "-o", opts}, log_);
  const int64_t end = NowMs() + 10000;
  while (NowMs() < end) {
    if (mounted()) return true;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {  // the daemon gave up
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  return false;
}

void Volume::ForceUnmount() {
  for (int i = 0; i < 50 && mounted(); ++i) {
    if (RunCmd({"fusermount3", "-u", "-q", mnt_}) == 0 && !mounted()) break;
    umount2(mnt_.c_str(), MNT_DETACH);  // umount -l
    if (!mounted()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Volume::Reap(int timeout_ms) {
  if (pid_ <= 0) return -1;
  const int64_t end = NowMs() + timeout_ms;
  int st = 0;
  while (waitpid(pid_, &st, WNOHANG) == 0) {
    if (NowMs() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WaitStatus(st);
}

int Volume::Unmount() {
  ForceUnmount();
  return Reap(20000);
}

void Volume::Kill9() {
  if (pid_ > 0) kill(pid_, SIGKILL);
  Reap(5000);
  ForceUnmount();
}

}  // namespace vexfs::fusetest
