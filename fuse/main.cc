// vexfs-fuse: mounts a VexFS volume through FUSE. A thin front end: option
// parsing in options.cc, the operations table in vexfs_fuse.cc, the
// filesystem in vexfs_core. See vexfs-fuse(8) and docs/fuse.md.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "fuse/options.h"
#include "fuse/vexfs_fuse.h"
#include "vexfs/block_device.h"
#include "vexfs/filesystem.h"

namespace vexfs::fusefs {
namespace {

bool g_daemon = false;  // stderr is /dev/null: report through syslog too

void Error(const std::string& msg) {
  if (g_daemon) syslog(LOG_ERR, "%s", msg.c_str());
  std::fprintf(stderr, "vexfs-fuse: %s\n", msg.c_str());
}

void Notice(const std::string& msg) {
  if (g_daemon)
    syslog(LOG_NOTICE, "%s", msg.c_str());
  else
    std::fprintf(stderr, "vexfs-fuse: %s\n", msg.c_str());
}

// Tells the waiting parent (see Daemonize) how start-up went.
void Notify(int* fd, char code) {
  if (*fd < 0) return;
  while (write(*fd, &code, 1) < 0 && errno == EINTR) {
  }
  close(*fd);
  *fd = -1;
}

// Forks; the parent waits for the child's start-up verdict and exits with
// it, so `vexfs-fuse` and mount(8) return only when the mount is up or has
// failed. Forking first, before the device is opened, keeps vexfs_core's
// threads in the process that uses them. Returns the fd the child reports
// on, or -1 in the parent after it has its exit code in *exit_code.
int Daemonize(int* exit_code) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    Error(std::string("pipe: ") + std::strerror(errno));
    *exit_code = 1;
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    Error(std::string("fork: ") + std::strerror(errno));
    *exit_code = 1;
    return -1;
  }
  if (pid > 0) {
    close(fds[1]);
    char code = 1;
    ssize_t n;
    while ((n = read(fds[0], &code, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) {  // the child died before reporting
      int st = 0;
      waitpid(pid, &st, 0);
      code = 1;
    }
    *exit_code = code;
    return -1;
  }
  close(fds[0]);
  setsid();
  return fds[1];
}

// Detaches stdio once the mount is up (the daemon's messages go to syslog).
void DetachStdio() {
  const int fd = open("/dev/null", O_RDWR);
  if (fd < 0) return;
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  if (fd > 2) close(fd);
  if (chdir("/") != 0) {
  }
  g_daemon = true;
}

// Shutdown on SIGTERM/SIGINT/SIGHUP. The signals are blocked everywhere and
// taken by sigwait() in a helper thread, which first syncs the mount (with
// the writeback cache the kernel may still hold dirty pages, and only a
// running session can receive them), waits until the session has answered
// every request it was sent (WaitUntilAnswered), then ends the session and
// wakes the main thread out of the loop's wait with SIGUSR1. Lock order:
// Shutdown::mu only.
struct Shutdown {
  std::mutex mu;
  bool loop_done = false;  // the session may be gone: do not touch it
  fuse_session* se = nullptr;
  const FuseContext* ctx = nullptr;
  std::string mountpoint;
  dev_t mount_dev = 0;  // st_dev of our mount's root; 0 if unknown
  pthread_t main_thread;
};

void WakeHandler(int) {}

// syncfs() on a FUSE mount starts the write-back of dirty pages but does not
// wait for the WRITE requests it queues (the kernel waits for FUSE
// write-back only in fsync and close of that file), and a WRITE still
// queued when the session loop ends is lost. Waits until every request read
// has been answered and none is waiting in /dev/fuse, three times in a row
// kSettle apart with no request read in between, or until `limit` passes
// (traffic from other processes that never stops). A reply is counted
// after its write(2), inside which the kernel moves the next queued
// background request to the pending list, so a drained queue cannot look
// idle between two WRITEs; the settle time covers a request the kernel has
// handed to a worker whose read(2) has not yet returned. Returns whether the
// session went quiet.
bool WaitUntilAnswered(Shutdown* sd, int fuse_fd, std::chrono::milliseconds limit) {
  const FuseContext& ctx = *sd->ctx;
  using Clock = std::chrono::steady_clock;
  constexpr auto kSettle = std::chrono::milliseconds(25);
  constexpr int kQuietProbes = 3;
  const auto deadline = Clock::now() + limit;
  int quiet = 0;
  uint64_t read_before = ctx.requests_read.load(std::memory_order_acquire);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(sd->mu);
      if (sd->loop_done) return true;  // unmounted meanwhile
    }
    pollfd p{fuse_fd, POLLIN, 0};
    const bool pending = poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
    if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return true;  // connection gone
    const bool answered = ctx.unanswered.load(std::memory_order_acquire) <= 0;
    const uint64_t read_now = ctx.requests_read.load(std::memory_order_acquire);
    quiet = (!pending && answered && read_now == read_before) ? quiet + 1 : 0;
    if (quiet >= kQuietProbes) return true;
    read_before = read_now;
    std::this_thread::sleep_for(quiet > 0 ? kSettle : std::chrono::milliseconds(1));
  }
  return false;
}

void SignalThread(Shutdown* sd, sigset_t set) {
  int sig = 0;
  if (sigwait(&set, &sig) != 0) return;
  // Our own reference to /dev/fuse, taken while the session surely exists
  // (Serve destroys it only after setting loop_done).
  int fuse_fd = -1;
  {
    std::lock_guard<std::mutex> lock(sd->mu);
    if (sd->loop_done) return;
    fuse_fd = fcntl(fuse_session_fd(sd->se), F_DUPFD_CLOEXEC, 0);
  }
  // syncfs() through the mount point, if it still leads to this mount; it
  // may not (`umount -l` while files are open detaches the mount but keeps
  // it alive, dirty pages included), and then sync(), which reaches every
  // live superblock.
  const int fd = open(sd->mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st {};
  if (fd >= 0 && sd->mount_dev != 0 && fstat(fd, &st) == 0 && st.st_dev == sd->mount_dev) {
    syncfs(fd);
  } else {
    sync();
  }
  if (fd >= 0) close(fd);
  if (fuse_fd >= 0) {
    if (!WaitUntilAnswered(sd, fuse_fd, std::chrono::seconds(10))) {
      Error("requests still arriving 10 s after the stop signal: ending the session anyway");
    }
    close(fuse_fd);
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(sd->mu);
      if (sd->loop_done) return;
      fuse_session_exit(sd->se);
      pthread_kill(sd->main_thread, SIGUSR1);
    }
    // The wake-up can land just before the loop starts waiting: repeat.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Undoes /proc/self/mountinfo's octal escapes (\040 for a space, ...).
std::string UnescapeMountField(const std::string& in) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && octal(in[i + 1]) && octal(in[i + 2]) &&
        octal(in[i + 3])) {
      out += static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0'));
      i += 3;
    } else {
      out += in[i];
    }
  }
  return out;
}

// The device number of the topmost FUSE mount on `mountpoint`, from
// /proc/self/mountinfo (no request to the session, which is not serving
// yet); 0 if not found.
dev_t FuseMountDevice(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  dev_t dev = 0;
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ...
    std::istringstream fields(line);
    std::string id, parent, numbers, root, mnt;
    if (!(fields >> id >> parent >> numbers >> root >> mnt)) continue;
    const size_t sep = line.find(" - ");
    if (sep == std::string::npos || line.compare(sep + 3, 4, "fuse") != 0) continue;
    unsigned major = 0, minor = 0;
    if (std::sscanf(numbers.c_str(), "%u:%u", &major, &minor) != 2) continue;
    if (UnescapeMountField(mnt) == mountpoint) dev = makedev(major, minor);  // last wins
  }
  return dev;
}

std::string Absolute(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return path;
  return buf;
}

bool HasOption(const CommandLine& cl, const char* prefix) {
  for (const auto& o : cl.fuse_options) {
    if (o.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Everything after the fork: returns the process exit code. notify_fd < 0
// in the foreground; set to -1 once the parent has been told.
int Serve(const CommandLine& cl, int* notify_fd) {
  // Blocked before vexfs_core starts its threads, which inherit the mask:
  // only SignalThread may take them.
  const sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const std::string target = Absolute(cl.target);
  const std::string mountpoint = Absolute(cl.mountpoint);

  OpenOptions oo;
  oo.read_only = cl.mount.read_only;
  oo.exclusive = true;
  oo.start_writeback_bytes = cl.start_writeback_mb << 20;
  Result<std::unique_ptr<BlockDevice>> dev = OpenBlockDevice(target, oo);
  if (!dev.ok()) {
    if (dev.status().err() == EBUSY) {
      Error(target + " is in use: another process has the volume open (already mounted?)");
    } else {
      Error("cannot open " + target + ": " + dev.status().ToString());
    }
    return 1;
  }
  MountInfo info;
  Result<std::unique_ptr<Filesystem>> fs = Filesystem::Mount(std::move(*dev), cl.mount, &info);
  if (!fs.ok()) {
    Error("cannot mount " + target + ": " + fs.status().ToString());
    return 1;
  }

  CollectionsOptions copts;
  copts.log = [](const std::string& line) { Notice(line); };
  Result<std::unique_ptr<Collections>> vectors = Collections::Attach(fs->get(), copts);
  if (!vectors.ok()) {
    Error("cannot load the collections of " + target + ": " + vectors.status().ToString());
    fs->get()->Unmount().IgnoreError();
    return 1;
  }

  FuseContext ctx;
  ctx.fs = fs->get();
  ctx.vectors = vectors->get();
  ctx.read_only = cl.mount.read_only;
  ctx.check_permissions = cl.mount.check_permissions;
  ctx.entry_timeout = ctx.check_permissions ? 0.0 : 1.0;
  ctx.writeback_cache = !ctx.read_only;
  ctx.debug = cl.debug;

  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  bool ok = fuse_opt_add_arg(&args, "vexfs-fuse") == 0;
  if (cl.debug) ok = ok && fuse_opt_add_arg(&args, "-odebug") == 0;
  char* opts = nullptr;  // comma-joined, commas inside values escaped
  for (const auto& o : cl.fuse_options) ok = ok && fuse_opt_add_opt_escaped(&opts, o.c_str()) == 0;
  if (!HasOption(cl, "fsname=")) {
    ok = ok && fuse_opt_add_opt_escaped(&opts, ("fsname=" + target).c_str()) == 0;
  }
  if (!HasOption(cl, "subtype=")) ok = ok && fuse_opt_add_opt_escaped(&opts, "subtype=vexfs") == 0;
  if (opts != nullptr) ok = ok && fuse_opt_add_arg(&args, (std::string("-o") + opts).c_str()) == 0;
  free(opts);

  int code = 1;
  fuse_session* se =
      ok ? fuse_session_new(&args, &LowLevelOps(), sizeof(fuse_lowlevel_ops), &ctx) : nullptr;
  if (se == nullptr) {
    Error("cannot create the FUSE session (bad options?)");
  } else if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    Error("cannot mount on " + mountpoint);
    fuse_session_destroy(se);
    se = nullptr;
  } else if (const int e = InstallRequestIo(se); e != 0) {
    Error(std::string("cannot set up the FUSE device I/O: ") + std::strerror(-e));
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    se = nullptr;
  } else {
    ctx.session = se;
  }
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    vectors->get()->Close().IgnoreError();
    fs->get()->Unmount().IgnoreError();
    return 1;
  }

  if (*notify_fd >= 0) DetachStdio();
  Notify(notify_fd, 0);
  if (!info.was_clean || info.replayed_transactions > 0) {
    Notice(target + " was not cleanly unmounted: replayed " +
           std::to_string(info.replayed_transactions) + " journal transactions, released " +
           std::to_string(info.orphans_released) + " orphans, finished " +
           std::to_string(info.truncations_finished) + " interrupted truncations");
  }

  Shutdown sd;
  sd.se = se;
  sd.ctx = &ctx;
  sd.mountpoint = mountpoint;
  sd.mount_dev = FuseMountDevice(mountpoint);
  if (cl.readahead_kb != 0 && sd.mount_dev != 0) {
    // Applied by the request I/O right after the INIT reply (read below).
    ctx.readahead_kb = static_cast<uint32_t>(cl.readahead_kb);
    ctx.readahead_warn = cl.readahead_given;
    ctx.readahead_file = "/sys/class/bdi/" + std::to_string(major(sd.mount_dev)) + ":" +
                         std::to_string(minor(sd.mount_dev)) + "/read_ahead_kb";
  }
  sd.main_thread = pthread_self();
  struct sigaction sa {};
  sa.sa_handler = WakeHandler;  // no SA_RESTART: interrupts the loop's wait
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread signal_thread(SignalThread, &sd, StopSignals());

  int loop_err;
  if (cl.single_thread) {
    loop_err = fuse_session_loop(se);
  } else {
    fuse_loop_config* lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(lc, 0);
    // libfuse's default, as passthrough_ll runs: with 16, idle workers
    // going back to sleep on /dev/fuse cost context switches and CPU
    // (bench/fuse/README.md: rand_read_4k 4.9-5.2k -> 6.3-6.8k ops/s,
    // rand_write_4k 3,897 -> 2,585 daemon context switches per run).
    fuse_loop_cfg_set_max_threads(lc, 10);
    loop_err = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
  }
  {
    std::lock_guard<std::mutex> lock(sd.mu);
    sd.loop_done = true;
  }
  fuse_session_unmount(se);
  code = loop_err < 0 ? 1 : 0;
  Status vs = vectors->get()->Close();
  if (!vs.ok()) Error("saving the indexes of " + target + " failed: " + vs.ToString());
  Status s = fs->get()->Unmount();
  if (!s.ok()) {
    Error("unmount of " + target + " failed: " + s.ToString());
    code = 1;
  }
  fuse_session_destroy(se);
  // `sd` lives on this stack: the signal thread must be gone before it is.
  // A SIGTERM aimed at it ends its sigwait(); if it was already past that,
  // it sees loop_done within one sleep. (Only after the session is
  // destroyed: a request it might be blocked in then fails at once.)
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return code;
}

}  // namespace
}  // namespace vexfs::fusefs

int main(int argc, char** argv) {
  using namespace vexfs::fusefs;
  vexfs::Result<CommandLine> cl = ParseCommandLine(argc, argv);
  if (!cl.ok()) {
    std::fprintf(stderr, "vexfs-fuse: %s\nTry 'vexfs-fuse --help'.\n",
                 cl.status().message().c_str());
    return 1;
  }
  if (cl->show_help) {
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  if (cl->show_version) {
    std::printf("vexfs-fuse %s (FUSE library %s)\n", VEXFS_VERSION, fuse_pkgversion());
    return 0;
  }
  openlog("vexfs-fuse", LOG_PID, LOG_DAEMON);
  int notify_fd = -1;
  if (!cl->foreground && !cl->debug) {
    int code = 0;
    notify_fd = Daemonize(&code);
    if (notify_fd < 0) return code;
  }
  const int code = Serve(*cl, &notify_fd);
  Notify(&notify_fd, static_cast<char>(code));  // no-op once reported
  return code;
}
