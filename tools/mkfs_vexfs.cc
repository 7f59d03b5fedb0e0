// mkfs.vexfs: create a VexFS filesystem on an image file or block device.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstring>
#include <fmt/core.h>

#include "vexfs/block_device.h"
#include "vexfs/mkfs.h"

namespace {

// Parses "123", "64K", "512M", "1G", "2T" (binary units).
bool ParseSize(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  size_t pos = 0;
  uint64_t v = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
    const uint64_t d = static_cast<uint64_t>(s[pos] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
    pos++;
  }
  if (pos == 0) return false;
  uint64_t mul = 1;
  if (pos < s.size()) {
    switch (std::toupper(static_cast<unsigned char>(s[pos]))) {
      case 'K': mul = 1ull << 10; break;
      case 'M': mul = 1ull << 20; break;
      case 'G': mul = 1ull << 30; break;
      case 'T': mul = 1ull << 40; break;
      default: return false;
    }
    pos++;
    if (pos < s.size() && (s[pos] == 'i' || s[pos] == 'B')) pos++;
    if (pos < s.size() && s[pos] == 'B') pos++;
    if (pos != s.size()) return false;
  }
  if (v > UINT64_MAX / mul) return false;
  *out = v * mul;
  return true;
}

// Returns the name of a filesystem found on the device, or "".
std::string ExistingFilesystem(vexfs::BlockDevice* dev) {
  if (vexfs::HasVexfsSignature(dev)) return "vexfs";
  if (dev->block_count() < 17) return "";
  std::vector<uint8_t> b(vexfs::kBlockSize * 17);
  if (!dev->Read(0, 17, b.data()).ok()) return "";
  if (b[1080] == 0x53 && b[1081] == 0xEF) return "ext2/3/4";
  if (std::memcmp(b.data(), "XFSB", 4) == 0) return "xfs";
  if (std::memcmp(b.data() + 65536 + 64, "_BHRfS_M", 8) == 0) return "btrfs";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mkfs.vexfs: create a VexFS filesystem on an image file or block device"};
  std::string target, label, size_str;
  uint32_t block_size = 4096;
  uint64_t inodes = 0, journal = 0;
  bool force = false, quiet = false;
  app.add_option("-L,--label", label, "volume label (at most 63 bytes)");
  app.add_option("-b,--block-size", block_size, "block size in bytes (format v1: 4096 only)");
  app.add_option("-N,--inodes", inodes, "number of inodes (default: one per 16 KiB)");
  app.add_option("-J,--journal-blocks", journal, "journal size in 4 KiB blocks (default: from the volume size)");
  app.add_option("-s,--size", size_str, "size of the image file to create or resize (e.g. 1G)");
  app.add_flag("-f,--force", force, "overwrite an existing filesystem");
  app.add_flag("-q,--quiet", quiet, "print nothing on success");
  app.add_option("TARGET", target, "image file or block device")->required();
  CLI11_PARSE(app, argc, argv);

  if (block_size != 4096) {
    fmt::print(stderr, "mkfs.vexfs: unsupported block size {}: format v1 uses 4096-byte blocks\n", block_size);
    return 1;
  }
  uint64_t size = 0;
  if (!size_str.empty() && !ParseSize(size_str, &size)) {
    fmt::print(stderr, "mkfs.vexfs: cannot parse size '{}' (examples: 64M, 1G, 2T)\n", size_str);
    return 1;
  }
  struct stat st;
  const bool exists = ::stat(target.c_str(), &st) == 0;
  if (!size_str.empty()) {
    if (exists && S_ISBLK(st.st_mode)) {
      fmt::print(stderr, "mkfs.vexfs: -s applies to image files, not block devices\n");
      return 1;
    }
    if (size < 1 << 20) {
      fmt::print(stderr, "mkfs.vexfs: size {} is too small (minimum 1M)\n", size_str);
      return 1;
    }
  } else if (!exists) {
    fmt::print(stderr, "mkfs.vexfs: {} does not exist (give -s SIZE to create an image file)\n", target);
    return 1;
  }
  bool created = false;
  if (!exists) {
    int fd = ::open(target.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      fmt::print(stderr, "mkfs.vexfs: cannot create {}: {}\n", target, std::strerror(errno));
      return 1;
    }
    ::close(fd);
    created = true;
  }
  auto dev = vexfs::OpenBlockDevice(target, {.read_only = false, .exclusive = true});
  if (!dev.ok()) {
    fmt::print(stderr, "mkfs.vexfs: {}\n", dev.status().ToString());
    return dev.status().err() == EBUSY ? 1 : 1;
  }
  if (!created) {
    std::string fs = ExistingFilesystem(dev->get());
    if (!fs.empty() && !force) {
      fmt::print(stderr, "mkfs.vexfs: {} already contains a {} filesystem; use -f to overwrite it\n", target, fs);
      return 1;
    }
  }
  if (size != 0 && S_ISREG(exists ? st.st_mode : S_IFREG)) {
    dev->reset();
    if (::truncate(target.c_str(), static_cast<off_t>(size)) != 0) {
      fmt::print(stderr, "mkfs.vexfs: cannot resize {}: {}\n", target, std::strerror(errno));
      return 1;
    }
    dev = vexfs::OpenBlockDevice(target, {.read_only = false, .exclusive = true});
    if (!dev.ok()) {
      fmt::print(stderr, "mkfs.vexfs: {}\n", dev.status().ToString());
      return 1;
    }
  }
  vexfs::FormatOptions fo;
  fo.label = label;
  fo.inode_count = inodes;
  fo.journal_blocks = journal;
  auto r = vexfs::Format(dev->get(), fo);
  if (!r.ok()) {
    fmt::print(stderr, "mkfs.vexfs: {}\n", r.status().ToString());
    if (created) ::unlink(target.c_str());
    return 1;
  }
  if (!quiet) {
    char uuid[37];
    const uint8_t* u = r->uuid;
    std::snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                  u[14], u[15]);
    fmt::print("Created VexFS (format v1) on {}\n", target);
    fmt::print("  size:    {} blocks of 4096 bytes ({:.1f} MiB)\n", r->block_count,
               static_cast<double>(r->block_count) * 4096 / (1 << 20));
    fmt::print("  inodes:  {}\n", r->inode_count);
    fmt::print("  journal: {} blocks\n", r->journal_blocks);
    fmt::print("  uuid:    {}\n", uuid);
    if (!label.empty()) fmt::print("  label:   {}\n", label);
  }
  return 0;
}
