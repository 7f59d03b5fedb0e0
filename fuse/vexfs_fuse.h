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
  // FUSE_CAP_WRITEBACK_CACHE. Only with kernel permission checks: the kernel
  // then sends file times it computed itself (setattr with explicit
  // mtime/ctime, under the credentials of whoever flushes), which VexFS
  // cannot tell from a user's utimensat() and would refuse to non-owners.
  bool writeback_cache = false;
};

// The credentials of the request's caller; supplementary groups (read from
// /proc) only if `with_groups`.
Cred RequestCred(fuse_req_t req, bool with_groups);

// The operations table; pass a FuseContext* as the session's userdata.
const fuse_lowlevel_ops& LowLevelOps();

}  // namespace vexfs::fusefs

#endif  // VEXFS_FUSE_VEXFS_FUSE_H_
