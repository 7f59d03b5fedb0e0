// Plain value types of the VexFS filesystem API.
#ifndef VEXFS_TYPES_H_
#define VEXFS_TYPES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vexfs {

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

// stat(2)-like attributes of one inode.
struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT | permissions
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint32_t rdev = 0;  // Linux dev_t (new_encode_dev)
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units, like st_blocks
  Timespec atime, mtime, ctime, crtime;
  uint32_t generation = 0;
  uint32_t flags = 0;  // VEXFS_INODE_FL_*
};

// Who is asking. Permission checks follow Linux: uid 0 bypasses
// read/write checks, needs one x bit to execute.
struct Cred {
  // Supplementary groups fetched on first use: reading them can be costly
  // (FUSE reads /proc/PID/status), and most checks never need them.
  struct LazyGroups {
    std::function<std::vector<uint32_t>()> load;
    std::once_flag once;
    std::vector<uint32_t> groups;
  };
  Cred() = default;
  Cred(uint32_t u, uint32_t g, std::vector<uint32_t> supplementary = {})
      : uid(u), gid(g), groups(std::move(supplementary)) {}
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups (unless `lazy`)
  std::shared_ptr<LazyGroups> lazy;  // when set, supersedes `groups`
  static Cred Root() { return Cred{}; }
  bool InGroup(uint32_t g) const;
};

// The permission bits (rwx, 0..7) of the class `cred` falls in for an
// inode with `mode`, `uid` and `gid`. Group membership is looked up only
// when the group and other classes differ on the bits of `mask`.
inline uint32_t ClassBits(uint32_t mode, uint32_t uid, uint32_t gid, int mask, const Cred& cred) {
  if (cred.uid == uid) return (mode >> 6) & 7;
  const uint32_t group = (mode >> 3) & 7, other = mode & 7;
  if (((group ^ other) & static_cast<uint32_t>(mask) & 7) == 0) return other;
  return cred.InGroup(gid) ? group : other;
}

// The Linux permission check (owner, group, other classes; root may read
// and write anything and execute what has an x bit or is a directory)
// of `mask` (R_OK | W_OK | X_OK bits: 4, 2, 1) on attributes `a`. For
// callers that must check whatever the mount's permission mode (search
// results, ioctls).
inline bool PermissionAllows(uint32_t mode, uint32_t uid, uint32_t gid, int mask, const Cred& cred) {
  if (cred.uid == 0) return !(mask & 1) || (mode & 0170000) == 0040000 || (mode & 0111) != 0;
  const uint32_t bits = ClassBits(mode, uid, gid, mask, cred);
  return (bits & static_cast<uint32_t>(mask)) == static_cast<uint32_t>(mask);
}
inline bool PermissionAllows(const Attr& a, int mask, const Cred& cred) {
  return PermissionAllows(a.mode, a.uid, a.gid, mask, cred);
}

// Whether PermissionAllows(mode, uid, gid, mask, cred) depends on cred's
// supplementary groups: a verdict that does not holds for any credentials
// with the same uid and gid.
inline bool ConsultsGroups(uint32_t mode, uint32_t uid, uint32_t gid, int mask, const Cred& cred) {
  if (cred.uid == 0 || cred.uid == uid || cred.gid == gid) return false;
  const uint32_t group = (mode >> 3) & 7, other = mode & 7;
  return ((group ^ other) & static_cast<uint32_t>(mask) & 7) != 0;
}

struct SetAttrRequest {
  enum : uint32_t {
    kMode = 1u << 0,
    kUid = 1u << 1,
    kGid = 1u << 2,
    kSize = 1u << 3,
    kAtime = 1u << 4,
    kMtime = 1u << 5,
    kAtimeNow = 1u << 6,
    kMtimeNow = 1u << 7,
    kCtime = 1u << 8,
    // Clears S_ISUID, and S_ISGID if the group may execute, of a
    // non-directory, first and whoever asks (the kernel's "kill suid/sgid"
    // on a write, truncate or chown by a caller without CAP_FSETID, which
    // FUSE leaves to the server with HANDLE_KILLPRIV_V2). Alone, and with no
    // bit to clear, it changes nothing (not even ctime).
    kKillSuidGid = 1u << 9,
    // Sent on behalf of a writer: a SETATTR that carries the handle of a
    // file opened for writing (ftruncate(2), or the times the kernel keeps
    // under FUSE's writeback cache and flushes later).
    // Like Linux, which checks write access once at open, truncation and
    // the times then need neither ownership nor write permission now.
    kByWriter = 1u << 10,
    // With kMtime: the explicit mtime is the kernel's own "now" (FUSE's
    // writeback cache sends utimensat(UTIME_NOW), like its flushed times,
    // as an explicit mtime equal to the ctime it sends with it). Checked
    // like kMtimeNow (write permission for a non-owner), stored as given.
    kMtimeIsNow = 1u << 11,
  };
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = 0;     // DT_* value
  uint64_t cookie = 0;  // pass back to ReadDir to continue after this entry
};

struct FsStats {
  uint64_t block_size = 4096;
  uint64_t blocks = 0, free_blocks = 0, available_blocks = 0;
  uint64_t inodes = 0, free_inodes = 0;
  uint32_t name_max = 255;
};

}  // namespace vexfs

#endif  // VEXFS_TYPES_H_
