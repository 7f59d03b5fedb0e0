// The FUSE low-level operations table over a mounted vexfs::Filesystem.
//
// Every handler converts its request into one or two Filesystem calls and
// replies exactly once (passthrough_hp's habit: a do_op() returns an errno,
// the handler turns it into the reply). Errors become errno here and only
// here: a failed Status's err() is the reply.
//
// Lookup counts: every reply that hands the kernel an inode (lookup,
// create, mknod, mkdir, symlink, link, each readdirplus entry except "."
// and "..") takes one Filesystem::Ref() first, and drops it again when the
// reply cannot be delivered; forget/forget_multi pass the kernel's counts to
// Filesystem::Forget(). FUSE inode numbers are VexFS inode numbers (root 1).
//
// Locks: getlk/setlk/flock are deliberately not implemented, so the kernel
// keeps POSIX and flock locks locally (correct for a volume that only this
// mount can open).
//
// Thread safety: the table may be driven by fuse_session_loop_mt; the
// Filesystem serialises its calls itself.
#ifndef VEXFS_FUSE_VEXFS_FUSE_H_
#define VEXFS_FUSE_VEXFS_FUSE_H_

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <linux/fuse.h>

#include <atomic>

#include "fuse/vector_ops.h"
#include "vexfs/collections.h"
#include "vexfs/filesystem.h"

namespace vexfs::fusefs {

struct FuseContext {
  // Not owned; outlives the session.
  Filesystem* fs = nullptr;
  // The vector layer over `fs` (collections, search); may be null.
  Collections* vectors = nullptr;
  // Per open file state (fuse_file_info::fh).
  OpenFiles open_files;
  // The session, once mounted (for notifications to the kernel: entries
  // created behind its back by VEXFS_IOC_IMPORT); null before that.
  fuse_session* session = nullptr;
  bool read_only = false;
  // False when the kernel checks permissions (-o default_permissions): the
  // handlers then skip reading supplementary groups from /proc.
  bool check_permissions = true;
  // Attribute validity handed to the kernel, in seconds.
  double attr_timeout = 1.0;
  // Entry (dentry) validity. Must be 0 while VexFS checks permissions: the
  // kernel walks cached dentries without asking us, so a search permission
  // revoked by chmod would go unnoticed for the timeout.
  double entry_timeout = 1.0;
  // FUSE_CAP_WRITEBACK_CACHE, on every read-write mount. The kernel then
  // keeps file times itself and sends them as explicit mtime and ctime,
  // under the credentials of whoever flushes; with VexFS's own permission
  // checks DoSetAttr tells those from a user's utimensat() by the writer's
  // handle they carry (kByWriter) or by mtime == ctime (kMtimeIsNow).
  bool writeback_cache = false;
  // The writeback cache was negotiated: the kernel owns the file times of
  // regular files, and WRITEs from its page cache do not set them.
  std::atomic<bool> kernel_times{false};
  // FUSE_HANDLE_KILLPRIV_V2, negotiated behind libfuse's back (see
  // InstallRequestIo): the kernel then sets SB_NOSEC, and stops asking
  // getxattr("security.capability") before every write(2), but leaves
  // clearing setuid/setgid on write, truncate and chown to us.
  std::atomic<bool> killpriv_v2{false};
  // The INIT request whose reply InstallRequestIo amends; 0 once done.
  // Set and cleared by the thread that reads INIT and replies to it; every
  // other reply only reads it. `init_add` is what the reply gains: the
  // flags of kInitFlagsAdded that the kernel offered.
  std::atomic<uint64_t> init_unique{0};
  std::atomic<uint32_t> init_add{0};
  // -d / -o debug: InstallRequestIo logs the amended INIT reply to stderr.
  bool debug = false;
  // -o readahead_kb: written to `readahead_file` (the mount's
  // /sys/class/bdi/MAJOR:MINOR/read_ahead_kb) right after the INIT reply,
  // which may only lower the kernel's default of 128 KiB for a FUSE mount.
  // Empty file: left alone. A failure is reported when `readahead_warn`.
  uint32_t readahead_kb = 0;
  std::string readahead_file;
  bool readahead_warn = false;
  // Requests read from /dev/fuse that still owe the kernel a reply, and all
  // requests read, counted by the request I/O below. The shutdown path
  // (fuse/main.cc) waits for the count to drain before it ends the session:
  // the kernel queues write-back WRITEs without waiting for them.
  std::atomic<int64_t> unanswered{0};
  std::atomic<uint64_t> requests_read{0};
};

// INIT flags that InstallRequestIo adds to libfuse's INIT reply when the
// kernel offers them:
//  * FUSE_HANDLE_KILLPRIV_V2: libfuse 3.14 knows no FUSE_CAP_ for it;
//  * FUSE_PARALLEL_DIROPS: libfuse before 3.16 accepts FUSE_CAP_PARALLEL_DIROPS
//    in `want` but never puts it in the reply (libfuse pull request 861), so
//    the kernel would serialise LOOKUP and READDIR per directory. Every
//    handler here takes the filesystem's own lock, so concurrent lookups and
//    readdirs of one directory are safe.
inline constexpr uint32_t kInitFlagsAdded = FUSE_HANDLE_KILLPRIV_V2 | FUSE_PARALLEL_DIROPS;

// The reply flags: `reply_flags` plus those of kInitFlagsAdded that
// `kernel_flags` (the INIT request's) offers.
uint32_t AmendInitFlags(uint32_t kernel_flags, uint32_t reply_flags);

// Reads and writes /dev/fuse through a fuse_custom_io that
//  * adds kInitFlagsAdded to the INIT reply where the kernel offers them,
//  * hands the handlers the kill-suid/sgid flags of WRITE, SETATTR and OPEN
//    requests, which libfuse 3.14 drops (through a thread-local: a worker
//    thread reads a request and dispatches it before it reads the next),
//  * keeps FuseContext::unanswered and requests_read: +1 for each request
//    read that expects a reply (all but FORGET, BATCH_FORGET, INTERRUPT and
//    NOTIFY_REPLY), -1 once a reply to it has been written (after the
//    write(2): the kernel moves its next queued background request to the
//    pending list inside that call).
// Call after fuse_session_mount() and before the session loop; the
// session's userdata must be the FuseContext. Returns 0 or -errno.
int InstallRequestIo(fuse_session* se);

// The credentials of the request's caller; supplementary groups (read from
// /proc) only if `with_groups`.
Cred RequestCred(fuse_req_t req, bool with_groups);

// The operations table; pass a FuseContext* as the session's userdata.
const fuse_lowlevel_ops& LowLevelOps();

}  // namespace vexfs::fusefs

#endif  // VEXFS_FUSE_VEXFS_FUSE_H_
