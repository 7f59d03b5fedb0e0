// Storage-library throughput against the host filesystem, same workload,
// same run: create/stat/unlink of N files, sequential write and read of a
// large file, 4 KiB random writes each followed by fsync.
//
// VexFS runs in-process on an image file that lives on the host filesystem
// being compared against, so both sides pay the same device costs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <random>

#include "vexfs/filesystem.h"
#include "vexfs/mkfs.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

[[noreturn]] void Die(const std::string& what) {
  fmt::print(stderr, "core_bench: {}\n", what);
  std::exit(1);
}
void Check(const vexfs::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

struct Results {
  double create_s, stat_s, unlink_s, seq_write_s, seq_read_s, rand_fsync_s;
};

Results RunHost(const std::string& dir, size_t nfiles, uint64_t file_bytes, size_t rand_writes) {
  Results r{};
  std::filesystem::create_directories(dir + "/files");
  auto t = Clock::now();
  for (size_t i = 0; i < nfiles; i++) {
    int fd = ::open((dir + "/files/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_EXCL, 0644);
    if (fd < 0) Die("host create");
    ::close(fd);
  }
  r.create_s = Since(t);
  t = Clock::now();
  struct stat st;
  for (size_t i = 0; i < nfiles; i++) {
    if (::stat((dir + "/files/f" + std::to_string(i)).c_str(), &st) != 0) Die("host stat");
  }
  r.stat_s = Since(t);
  t = Clock::now();
  for (size_t i = 0; i < nfiles; i++) ::unlink((dir + "/files/f" + std::to_string(i)).c_str());
  r.unlink_s = Since(t);
  const std::string big = dir + "/big";
  std::vector<uint8_t> buf(1 << 20, 0xab);
  t = Clock::now();
  int fd = ::open(big.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
  for (uint64_t off = 0; off < file_bytes; off += buf.size()) {
    if (::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(buf.size())) Die("host write");
  }
  ::fsync(fd);
  r.seq_write_s = Since(t);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  t = Clock::now();
  for (uint64_t off = 0; off < file_bytes; off += buf.size()) {
    if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(buf.size())) Die("host read");
  }
  r.seq_read_s = Since(t);
  std::mt19937_64 rng(1);
  t = Clock::now();
  for (size_t i = 0; i < rand_writes; i++) {
    const off_t off = static_cast<off_t>((rng() % (file_bytes / 4096)) * 4096);
    if (::pwrite(fd, buf.data(), 4096, off) != 4096) Die("host rand write");
    ::fsync(fd);
  }
  r.rand_fsync_s = Since(t);
  ::close(fd);
  std::filesystem::remove_all(dir);
  return r;
}

Results RunVexfs(const std::string& image, size_t nfiles, uint64_t file_bytes, size_t rand_writes) {
  Results r{};
  const uint64_t bytes = file_bytes * 2 + (1ull << 30);
  {
    int fd = ::open(image.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) Die("cannot create image");
    ::close(fd);
  }
  auto dev = vexfs::OpenBlockDevice(image, {});
  if (!dev.ok()) Die(dev.status().ToString());
  vexfs::FormatOptions fo;
  fo.inode_count = nfiles + 1024;
  auto f = vexfs::Format(dev->get(), fo);
  if (!f.ok()) Die(f.status().ToString());
  vexfs::MountOptions mo;
  mo.commit_interval_ms = 5000;
  auto fsr = vexfs::Filesystem::Mount(std::move(dev).value(), mo);
  if (!fsr.ok()) Die(fsr.status().ToString());
  auto fs = std::move(fsr).value();
  const vexfs::Cred root;
  auto dir = fs->Mkdir(vexfs::Filesystem::kRootIno, "files", 0755, root);
  if (!dir.ok()) Die(dir.status().ToString());
  auto t = Clock::now();
  for (size_t i = 0; i < nfiles; i++) {
    Check(fs->Mknod(dir->ino, "f" + std::to_string(i), S_IFREG | 0644, 0, root).status(), "create");
  }
  r.create_s = Since(t);
  t = Clock::now();
  for (size_t i = 0; i < nfiles; i++) Check(fs->Lookup(dir->ino, "f" + std::to_string(i), root).status(), "stat");
  r.stat_s = Since(t);
  t = Clock::now();
  for (size_t i = 0; i < nfiles; i++) Check(fs->Unlink(dir->ino, "f" + std::to_string(i), root), "unlink");
  r.unlink_s = Since(t);
  auto big = fs->Mknod(vexfs::Filesystem::kRootIno, "big", S_IFREG | 0644, 0, root);
  if (!big.ok()) Die(big.status().ToString());
  std::vector<uint8_t> buf(1 << 20, 0xab);
  t = Clock::now();
  for (uint64_t off = 0; off < file_bytes; off += buf.size()) Check(fs->Write(big->ino, off, buf).status(), "write");
  Check(fs->Fsync(big->ino, false), "fsync");
  r.seq_write_s = Since(t);
  {
    // Cold read like the host side: drop the image's pages from the cache.
    int fd = ::open(image.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
  }
  t = Clock::now();
  for (uint64_t off = 0; off < file_bytes; off += buf.size()) Check(fs->Read(big->ino, off, buf).status(), "read");
  r.seq_read_s = Since(t);
  std::mt19937_64 rng(1);
  t = Clock::now();
  for (size_t i = 0; i < rand_writes; i++) {
    const uint64_t off = (rng() % (file_bytes / 4096)) * 4096;
    Check(fs->Write(big->ino, off, std::span<const uint8_t>(buf.data(), 4096)).status(), "rand write");
    Check(fs->Fsync(big->ino, false), "fsync");
  }
  r.rand_fsync_s = Since(t);
  Check(fs->Unmount(), "unmount");
  ::unlink(image.c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"VexFS storage library vs the host filesystem"};
  std::string dir = "/var/tmp", out;
  size_t nfiles = 100000, rand_writes = 2000;
  uint64_t mib = 1024;
  app.add_option("--dir", dir, "directory on the host filesystem to run in");
  app.add_option("--files", nfiles, "files to create/stat/unlink");
  app.add_option("--mib", mib, "sequential file size in MiB");
  app.add_option("--rand-writes", rand_writes, "4 KiB random writes, each followed by fsync");
  app.add_option("--out", out, "write JSON results here");
  CLI11_PARSE(app, argc, argv);
  const uint64_t bytes = mib << 20;
  const std::string base = dir + "/vexfs-core-bench." + std::to_string(::getpid());
  Results host = RunHost(base + ".host", nfiles, bytes, rand_writes);
  Results vex = RunVexfs(base + ".img", nfiles, bytes, rand_writes);
  struct Row {
    const char* name;
    double ops, host_s, vex_s;
  } rows[] = {
      {"create", static_cast<double>(nfiles), host.create_s, vex.create_s},
      {"stat", static_cast<double>(nfiles), host.stat_s, vex.stat_s},
      {"unlink", static_cast<double>(nfiles), host.unlink_s, vex.unlink_s},
      {"seq_write_mib", static_cast<double>(mib), host.seq_write_s, vex.seq_write_s},
      {"seq_read_mib", static_cast<double>(mib), host.seq_read_s, vex.seq_read_s},
      {"rand_write_4k_fsync", static_cast<double>(rand_writes), host.rand_fsync_s, vex.rand_fsync_s},
  };
  nlohmann::json j = nlohmann::json::array();
  fmt::print("{:<22} {:>14} {:>14} {:>10}\n", "workload", "host ops/s", "vexfs ops/s", "ratio");
  for (const auto& r : rows) {
    const double h = r.ops / r.host_s, v = r.ops / r.vex_s;
    fmt::print("{:<22} {:>14.0f} {:>14.0f} {:>9.2f}x\n", r.name, h, v, v / h);
    j.push_back({{"workload", r.name}, {"count", r.ops}, {"host_per_s", h}, {"vexfs_per_s", v}, {"ratio", v / h}});
  }
  if (!out.empty()) {
    FILE* f = std::fopen(out.c_str(), "w");
    if (!f) Die("cannot write " + out);
    std::fputs(j.dump(2).c_str(), f);
    std::fclose(f);
  }
  return 0;
}
