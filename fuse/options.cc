#include "fuse/options.h"

#include <cerrno>
#include <charconv>
#include <string_view>

namespace vexfs::fusefs {
namespace {

// Passed through to libfuse, which maps them to mount(2) flags or to FUSE
// mount options.
constexpr std::string_view kFuseFlags[] = {
    "allow_other", "allow_root",    "auto_unmount", "suid",       "nosuid",   "dev",
    "nodev",       "exec",          "noexec",       "async",      "sync",     "dirsync",
    "atime",       "noatime",       "diratime",     "nodiratime", "relatime", "norelatime",
    "strictatime", "nostrictatime", "lazytime",     "nolazytime",
};
constexpr std::string_view kFusePrefixed[] = {
    "fsname=", "subtype=", "max_read=", "context=", "fscontext=", "defcontext=", "rootcontext="};
// fstab and mount(8) bookkeeping with no meaning to the filesystem.
constexpr std::string_view kIgnored[] = {"defaults", "auto",  "noauto", "user",    "nouser",
                                         "users",    "owner", "group",  "_netdev", "nofail"};

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

Status ParseU64(std::string_view key, std::string_view v, uint64_t max, uint64_t* out) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n > max) {
    return Status::InvalidArgument("bad value for " + std::string(key) + ": '" + std::string(v) +
                                   "'");
  }
  *out = n;
  return Status::Ok();
}

Status ParseOption(std::string_view opt, CommandLine* cl) {
  if (opt.empty()) return Status::Ok();
  for (auto w : kIgnored) {
    if (opt == w) return Status::Ok();
  }
  if (StartsWith(opt, "x-") || StartsWith(opt, "comment=")) return Status::Ok();
  if (opt == "ro" || opt == "rw") {
    cl->mount.read_only = opt == "ro";
    cl->fuse_options.emplace_back(opt);
    return Status::Ok();
  }
  if (opt == "debug") {
    cl->debug = true;
    return Status::Ok();
  }
  if (opt == "default_permissions") {
    cl->default_permissions = true;
    cl->mount.check_permissions = false;
    cl->fuse_options.emplace_back(opt);
    return Status::Ok();
  }
  if (StartsWith(opt, "cache_mb=")) {
    uint64_t n = 0;
    VEXFS_RETURN_IF_ERROR(ParseU64("cache_mb", opt.substr(9), 1u << 20, &n));
    if (n == 0) return Status::InvalidArgument("cache_mb must be at least 1");
    cl->mount.cache_mb = n;
    return Status::Ok();
  }
  if (StartsWith(opt, "commit_ms=")) {
    uint64_t n = 0;
    VEXFS_RETURN_IF_ERROR(ParseU64("commit_ms", opt.substr(10), 3600 * 1000, &n));
    cl->mount.commit_interval_ms = static_cast<uint32_t>(n);
    return Status::Ok();
  }
  if (StartsWith(opt, "readahead_kb=")) {
    VEXFS_RETURN_IF_ERROR(ParseU64("readahead_kb", opt.substr(13), 1u << 16, &cl->readahead_kb));
    cl->readahead_given = true;
    return Status::Ok();
  }
  if (StartsWith(opt, "start_writeback_mb=")) {
    VEXFS_RETURN_IF_ERROR(ParseU64("start_writeback_mb", opt.substr(19), 1u << 20, &cl->start_writeback_mb));
    return Status::Ok();
  }
  for (auto w : kFuseFlags) {
    if (opt == w) {
      cl->fuse_options.emplace_back(opt);
      return Status::Ok();
    }
  }
  for (auto p : kFusePrefixed) {
    if (StartsWith(opt, p)) {
      cl->fuse_options.emplace_back(opt);
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown option '" + std::string(opt) + "'");
}

Status ParseOptionList(std::string_view list, CommandLine* cl) {
  while (true) {
    const size_t comma = list.find(',');
    VEXFS_RETURN_IF_ERROR(ParseOption(list.substr(0, comma), cl));
    if (comma == std::string_view::npos) return Status::Ok();
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cl;
  std::vector<std::string_view> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-f" || a == "--foreground") {
      cl.foreground = true;
    } else if (a == "-d" || a == "--debug") {
      cl.debug = true;
    } else if (a == "-s") {
      cl.single_thread = true;
    } else if (a == "-h" || a == "--help") {
      cl.show_help = true;
    } else if (a == "-V" || a == "--version") {
      cl.show_version = true;
    } else if (a == "-o") {
      if (++i == argc) return Status::InvalidArgument("-o needs an argument");
      VEXFS_RETURN_IF_ERROR(ParseOptionList(argv[i], &cl));
    } else if (StartsWith(a, "-o")) {
      VEXFS_RETURN_IF_ERROR(ParseOptionList(a.substr(2), &cl));
    } else if (a == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-') {
      return Status::InvalidArgument("unknown argument '" + std::string(a) + "'");
    } else {
      positional.push_back(a);
    }
  }
  if (cl.show_help || cl.show_version) return cl;
  if (positional.size() != 2) {
    return Status::InvalidArgument(positional.size() < 2 ? "need TARGET and MOUNTPOINT"
                                                         : "too many arguments");
  }
  cl.target = positional[0];
  cl.mountpoint = positional[1];
  return cl;
}

std::string Usage() {
  return R"(usage: vexfs-fuse TARGET MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]

Mounts the VexFS volume in TARGET (an image file or a block device) on
MOUNTPOINT through FUSE. Without -f the program returns once the mount is
up and keeps serving it in the background.

  -f, --foreground     stay in the foreground
  -d, --debug          trace every FUSE request on stderr (implies -f)
  -s                   single-threaded request loop
  -h, --help           this text
  -V, --version        print the version

options (-o):
  ro, rw               mount read-only / read-write (default rw)
  allow_other          let other users access the mount
  default_permissions  let the kernel check permissions from the mode bits
                       (VexFS's own checks are turned off)
  cache_mb=N           metadata cache size in MiB (default 256)
  commit_ms=N          background journal commit interval (default 5000,
                       0: commit only on fsync, sync, a full journal, unmount)
  start_writeback_mb=N have the host start writing the image to disk every
                       N MiB written, so that an fsync finds less to do
                       (default 8; 0: leave it to the host)
  readahead_kb=N       the mount's kernel readahead in KiB, set after the
                       mount when run as root (default 4096; 0: the
                       kernel's 128)
  fsname=, subtype=, nosuid, nodev, noexec, noatime, ... are passed to the
  kernel; fstab words (defaults, auto, noauto, user, nofail, _netdev, x-*)
  are ignored.

See vexfs-fuse(8).
)";
}

}  // namespace vexfs::fusefs
