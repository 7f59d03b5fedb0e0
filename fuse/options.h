// Command line of vexfs-fuse: `vexfs-fuse TARGET MOUNTPOINT [-f] [-d] [-s]
// [-o opt,...]`, the same shape mount(8) uses to call mount.fuse.vexfs.
//
// ParseCommandLine() only parses: it touches no file and no FUSE state, so
// it is unit-tested on its own. The -o list is split three ways: options
// for vexfs_core and its device (ro, cache_mb=, commit_ms=,
// start_writeback_mb=, default_permissions turns the library's own
// permission checks off), options handed to libfuse and the kernel
// (allow_other, default_permissions, nosuid, fsname=, ...), and
// fstab-only words mount(8) passes along (defaults, nofail, _netdev, x-*,
// ...), which are dropped.
//
// Thread safety: plain functions over values.
#ifndef VEXFS_FUSE_OPTIONS_H_
#define VEXFS_FUSE_OPTIONS_H_

#include <string>
#include <vector>

#include "vexfs/filesystem.h"
#include "vexfs/status.h"

namespace vexfs::fusefs {

struct CommandLine {
  std::string target;          // image file or block device
  std::string mountpoint;      // as given; made absolute by the caller
  bool foreground = false;     // -f: do not daemonize
  bool debug = false;          // -d or -o debug: libfuse request trace on stderr
  bool single_thread = false;  // -s: fuse_session_loop instead of the _mt loop
  bool show_help = false;
  bool show_version = false;
  bool default_permissions = false;  // the kernel checks permissions
  MountOptions mount;                // read_only, cache_mb, commit_interval_ms
  // start_writeback_mb=N: OpenOptions::start_writeback_bytes in MiB.
  uint64_t start_writeback_mb = 8;
  // readahead_kb=N: the mount's kernel readahead (0: the kernel's default,
  // 128 KiB for FUSE); `readahead_given` if the option was on the line.
  uint64_t readahead_kb = 4096;
  bool readahead_given = false;
  // Options for fuse_session_new, one per element ("allow_other",
  // "fsname=/img"); unescaped: the caller escapes commas.
  std::vector<std::string> fuse_options;
};

// Parses argv (argv[0] is skipped). EINVAL with a one-line message on an
// unknown option, a bad number or a missing TARGET / MOUNTPOINT (unless
// --help or --version was given).
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// The --help text.
std::string Usage();

}  // namespace vexfs::fusefs

#endif  // VEXFS_FUSE_OPTIONS_H_
