// vexctl on a mounted volume: helpers shared by the commands that talk to
// vexfs-fuse (or, later, the kernel module) through open(2), ioctl(2) and
// the xattr calls, following include/uapi/vexfs/vexfs_ioctl.h and
// docs/ioctl.md.
//
// Conventions of these commands (see man/vexctl.8):
//  * every failure prints one line "vexctl: <what>: <reason>" on stderr;
//  * exit status 2 for bad arguments or input found before anything was
//    sent to the filesystem (usage, malformed vectors, k out of range,
//    malformed filter), 1 for failures reported by the filesystem.
#ifndef VEXFS_TOOLS_VEXCTL_MOUNTED_H_
#define VEXFS_TOOLS_VEXCTL_MOUNTED_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexctl {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints "vexctl: <what>: <reason>" to stderr.
void PrintError(const std::string& what, const std::string& reason);

// Which kind of call failed, so that an errno can be explained.
enum class Op { kOpen, kCollCreate, kCollInfo, kCollDrop, kCollReindex, kStage, kPut, kSearch, kResults, kOther };

// A readable reason for `err` returned by `op`: ENOTTY -> "not a VexFS
// file", ENOTSUP -> "not inside a collection", EINVAL explained per
// operation, otherwise strerror(err).
std::string Explain(Op op, int err);

// Prints the error for `op` failing with `err` on `what`; returns
// kExitFailure.
int Fail(const std::string& what, Op op, int err);

// True when `path` is a regular file or a block device whose first four
// bytes are the VexFS superblock magic (an unmounted image).
bool IsVexfsImage(const std::string& path);

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Opens `path` for ioctls. `dir`: must be a directory (ENOTDIR otherwise).
// Regular files are opened read-only, falling back to write-only when
// read permission is missing. On failure prints the error and returns a
// closed Fd.
Fd OpenForIoctl(const std::string& path, bool dir);

// ioctl retried on EINTR; returns 0 or the errno.
int Ioctl(int fd, unsigned long cmd, void* arg);

// Parses a JSON array of finite numbers (as float32: values beyond the
// float range are Inf and rejected). On failure sets *why and returns false.
bool ParseVector(const std::string& json, std::vector<float>* out, std::string* why);
// Checks that every value is finite; *why names the first bad index.
bool CheckFinite(std::span<const float> v, std::string* why);

// Reads a query/vector matrix from a .npy (float32/float16/int8/...;
// 1-D = one row) or .fvecs file, chosen by extension. On failure sets *why.
bool LoadMatrix(const std::string& path, std::vector<float>* data, size_t* rows, size_t* cols,
                std::string* why);

// Sends `v` into the staging buffer of `fd` in VEXFS_IOC_INLINE_FLOATS
// pieces (the first at offset 0, which clears the buffer). Returns 0 or
// the errno of the failing VEXFS_IOC_STAGE.
int StageFloats(int fd, std::span<const float> v);

// The collection a directory belongs to (VEXFS_IOC_COLL_INFO). Returns 0
// or the errno.
int CollectionInfo(int dir_fd, vexfs_ioc_collection* out);

// Names of the enum values of vexfs_format.h ("cosine", "f32", "hnsw").
const char* MetricName(uint32_t m);
const char* ElementName(uint32_t t);
const char* IndexName(uint32_t k);
// Parses a name; false when unknown.
bool ParseMetric(const std::string& s, uint8_t* out);
bool ParseElement(const std::string& s, uint8_t* out);
bool ParseIndex(const std::string& s, uint8_t* out);

// `dir` without trailing slashes ("/" stays "/"), for joining result paths.
std::string TrimDir(const std::string& dir);
// dir + "/" + rel without doubling the slash.
std::string JoinPath(const std::string& dir, const std::string& rel);

// vexctl put FILE (--vector JSON | --from FILE [--row N] | --remove).
struct PutArgs {
  std::string file;
  std::string json;
  std::string from;
  std::optional<size_t> row;
  bool remove = false;
};
int RunMountedPut(const PutArgs& a);

// vexctl search DIR (--vector JSON | --from FILE | --like FILE) [-k K]
// [--filter EXPR] [--max-distance D] [--ef N] [--json].
struct SearchArgs {
  std::string dir;
  std::string json;
  std::string from;
  std::string like;
  std::string filter;
  size_t k = 10;
  std::optional<double> max_distance;
  std::optional<uint32_t> ef;
  bool json_out = false;
};
int RunMountedSearch(const SearchArgs& a);

}  // namespace vexctl

#endif  // VEXFS_TOOLS_VEXCTL_MOUNTED_H_
