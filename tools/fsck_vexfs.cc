// fsck.vexfs: offline consistency check and repair (see man/fsck.vexfs.8).
// A thin wrapper over vexfs::CheckVolume; exit codes follow fsck(8).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <string>

#include "vexfs/block_device.h"
#include "vexfs/fsck.h"

namespace {

constexpr int kExitUsage = 16;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Check and repair a VexFS volume (offline)", "fsck.vexfs"};
  bool no = false, yes = false, force = false, preen = false, verbose = false;
  std::string target;
  app.add_flag("-n", no, "Check only; open the volume read-only and change nothing");
  app.add_flag("-y", yes, "Repair every problem that can be repaired");
  app.add_flag("-p", preen, "Repair automatically (same as -y: every VexFS repair is safe)");
  app.add_flag("-f", force, "Check even if the volume is marked clean");
  app.add_flag("-v", verbose, "Verbose: print statistics");
  app.add_option("TARGET", target, "Image file or block device")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  const bool repair = yes || preen;
  if (no && repair) {
    fmt::print(stderr, "fsck.vexfs: -n cannot be combined with -y or -p\n");
    return kExitUsage;
  }
  vexfs::OpenOptions oo;
  oo.read_only = !repair;
  oo.exclusive = true;
  auto dev = vexfs::OpenBlockDevice(target, oo);
  if (!dev.ok()) {
    fmt::print(stderr, "fsck.vexfs: {}\n", dev.status().message());
    return 8;
  }
  vexfs::CheckOptions co;
  co.repair = repair;
  co.force = force;
  auto res = vexfs::CheckVolume(dev->get(), co);
  const int rc = vexfs::FsckExitCode(res);
  if (!res.ok()) {
    fmt::print(stderr, "fsck.vexfs: {}: {}\n", target, res.status().message());
    if (res.status().IsCorruption()) {
      fmt::print(stderr,
                 "fsck.vexfs: {} does not hold a usable VexFS volume (no valid superblock)\n",
                 target);
    }
    return rc;
  }
  const vexfs::CheckReport& r = *res;
  if (r.journal_replayed)
    fmt::print("{}: replayed {} journal transaction(s)\n", target, r.journal_replayed);
  if (r.journal_pending) {
    fmt::print("{}: journal holds {} committed transaction(s); checked as if replayed\n", target,
               r.journal_pending);
  }
  if (!r.checked) {
    fmt::print("{}: clean, {} inodes, {} blocks (use -f to force a full check)\n", target,
               r.inode_count, r.block_count);
    return rc;
  }
  for (const auto& p : r.problems) {
    fmt::print("{}: {}{}: {}\n", target, p.fixed ? "FIXED " : "", p.code, p.message);
  }
  if (verbose) {
    fmt::print(
        "{:>10} directories\n{:>10} regular files\n{:>10} symbolic links\n{:>10} special files\n"
        "{:>10} orphans\n",
        r.directories, r.regular_files, r.symlinks, r.special_files, r.orphans);
  }
  fmt::print("{}: {}{}/{} inodes, {}/{} blocks\n", target,
             r.errors_left() ? "UNCORRECTED ERRORS, " : (r.errors_fixed() ? "REPAIRED, " : ""),
             r.inodes_used, r.inode_count, r.blocks_used, r.block_count);
  if (r.errors_left() && !repair) fmt::print("{}: run fsck.vexfs -y to repair\n", target);
  return rc;
}
