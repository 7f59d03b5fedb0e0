// One directory with N entries (default 1,000,000): create rate, random
// lookups after a remount (cold metadata cache), and a full readdir.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fmt/core.h>
#include <random>

#include "vexfs/filesystem.h"
#include "vexfs/mkfs.h"

using Clock = std::chrono::steady_clock;
static double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  CLI::App app{"VexFS: a directory with a million entries"};
  std::string image = "/var/tmp/vexfs-bigdir.img";
  int n = 1000000, lookups = 100000;
  app.add_option("--image", image, "scratch image file (deleted afterwards)");
  app.add_option("-n,--entries", n, "entries to create")->check(CLI::Range(1, 50000000));
  app.add_option("--lookups", lookups, "random lookups after remount");
  CLI11_PARSE(app, argc, argv);
  {
    int fd = ::open(image.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ::ftruncate(fd, 8ll << 30) != 0) return 1;
    ::close(fd);
  }
  auto fail = [&](const vexfs::Status& s) {
    fmt::print(stderr, "bigdir_bench: {}\n", s.ToString());
    ::unlink(image.c_str());
    return 1;
  };
  auto dev = vexfs::OpenBlockDevice(image, {});
  if (!dev.ok()) return fail(dev.status());
  vexfs::FormatOptions fo;
  fo.inode_count = static_cast<uint64_t>(n) + 1024;
  if (auto f = vexfs::Format(dev->get(), fo); !f.ok()) return fail(f.status());
  vexfs::MountOptions mo;
  auto fsr = vexfs::Filesystem::Mount(std::move(dev).value(), mo);
  if (!fsr.ok()) return fail(fsr.status());
  auto fs = std::move(fsr).value();
  const vexfs::Cred root;
  auto d = fs->Mkdir(vexfs::Filesystem::kRootIno, "big", 0755, root);
  if (!d.ok()) return fail(d.status());
  auto t = Clock::now();
  for (int i = 0; i < n; i++) {
    auto r = fs->Mknod(d->ino, "entry-" + std::to_string(i), S_IFREG | 0644, 0, root);
    if (!r.ok()) return fail(r.status());
  }
  const double create_s = Since(t);
  if (auto s = fs->Unmount(); !s.ok()) return fail(s);
  fs.reset();
  auto dev2 = vexfs::OpenBlockDevice(image, {});
  if (!dev2.ok()) return fail(dev2.status());
  fsr = vexfs::Filesystem::Mount(std::move(dev2).value(), mo);
  if (!fsr.ok()) return fail(fsr.status());
  fs = std::move(fsr).value();
  std::mt19937 rng(1);
  t = Clock::now();
  for (int i = 0; i < lookups; i++) {
    auto r = fs->Lookup(d->ino, "entry-" + std::to_string(rng() % n), root);
    if (!r.ok()) return fail(r.status());
  }
  const double lookup_s = Since(t);
  size_t count = 0;
  t = Clock::now();
  if (auto s = fs->ReadDir(d->ino, 0, [&](const vexfs::DirEntry&) { return ++count > 0; }); !s.ok()) return fail(s);
  const double readdir_s = Since(t);
  auto a = fs->GetAttr(d->ino);
  fmt::print("entries {}: create {:.0f}/s, cold random lookup {:.0f}/s, readdir {:.0f} entries/s ({} entries), "
             "directory {:.1f} MiB\n",
             n, n / create_s, lookups / lookup_s, count / readdir_s, count, a.ok() ? a->size / 1048576.0 : 0.0);
  (void)fs->Unmount();
  ::unlink(image.c_str());
  return count == static_cast<size_t>(n) + 2 ? 0 : 1;
}
