#include "fuse/vexfs_fuse.h"

#include "fuse/vector_ops.h"
#include "uapi/vexfs/vexfs_ioctl.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace vexfs::fusefs {
namespace {

constexpr uint32_t kMaxWrite = 1u << 20;

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }
Filesystem* Fs(fuse_req_t req) { return Ctx(req)->fs; }

// Set by RequestRead for the request this thread is about to dispatch: the
// kernel asked (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID or
// FUSE_OPEN_KILL_SUIDGID) that setuid/setgid be cleared. Only sent once
// HANDLE_KILLPRIV_V2 is negotiated.
thread_local bool t_kill_suidgid = false;

// The caller's credentials; supplementary groups only when VexFS itself
// checks permissions (they cost a read of /proc/PID/task/TID/status).
Cred CredOf(fuse_req_t req) { return RequestCred(req, Ctx(req)->check_permissions); }

struct stat ToStat(const Attr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  // Both VexFS and the FUSE wire format carry the kernel's new_encode_dev().
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = kBlockSize;
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_atim = {static_cast<time_t>(a.atime.sec), static_cast<long>(a.atime.nsec)};
  st.st_mtim = {static_cast<time_t>(a.mtime.sec), static_cast<long>(a.mtime.nsec)};
  st.st_ctim = {static_cast<time_t>(a.ctime.sec), static_cast<long>(a.ctime.nsec)};
  return st;
}

// Fills `e` for `a` and takes the lookup reference the reply hands over.
void MakeEntry(fuse_req_t req, const Attr& a, fuse_entry_param* e) {
  *e = fuse_entry_param{};
  e->ino = a.ino;
  e->generation = a.generation;
  e->attr = ToStat(a);
  e->attr_timeout = Ctx(req)->attr_timeout;
  e->entry_timeout = Ctx(req)->entry_timeout;
  Fs(req)->Ref(a.ino);
}

int EntryFrom(fuse_req_t req, const Result<Attr>& r, fuse_entry_param* e) {
  if (!r.ok()) return r.status().err();
  MakeEntry(req, *r, e);
  return 0;
}

// Replies with an entry made by a do_op; drops the reference when the
// kernel never receives it (the request was interrupted).
void ReplyEntry(fuse_req_t req, int err, const fuse_entry_param& e) {
  if (err != 0) {
    fuse_reply_err(req, err);
  } else if (fuse_reply_entry(req, &e) != 0 && e.ino != 0) {
    Fs(req)->Forget(e.ino, 1);
  }
}

// -- do_ops: each returns 0 or a positive errno and never replies. ------------

int DoLookup(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_entry_param* e) {
  Result<Attr> r = Fs(req)->Lookup(parent, name, CredOf(req));
  if (!r.ok() && r.status().err() == ENOENT) {
    // Negative entry: every change to the namespace passes through this
    // kernel, which drops the negative dentry when the name is created.
    *e = fuse_entry_param{};
    e->entry_timeout = Ctx(req)->entry_timeout;
    return 0;
  }
  return EntryFrom(req, r, e);
}

int DoSetAttr(fuse_req_t req, fuse_ino_t ino, const struct stat& in, int to_set,
              const fuse_file_info* fi, Attr* out) {
  SetAttrRequest q;
  // FATTR_FH: ftruncate(2), or the file times the kernel flushes under the
  // writeback cache, all through a handle opened for writing, whose access
  // was checked at open.
  const OpenFile* file = StateOf(fi);
  if (file != nullptr && file->writable) q.valid |= SetAttrRequest::kByWriter;
  if (to_set & FUSE_SET_ATTR_MODE) {
    q.valid |= SetAttrRequest::kMode;
    q.mode = in.st_mode;
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    q.valid |= SetAttrRequest::kUid;
    q.uid = in.st_uid;
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    q.valid |= SetAttrRequest::kGid;
    q.gid = in.st_gid;
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    q.valid |= SetAttrRequest::kSize;
    if (in.st_size < 0) return EINVAL;
    q.size = static_cast<uint64_t>(in.st_size);
  }
  // The kernel sets ATIME together with ATIME_NOW for utimensat(UTIME_NOW).
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    q.valid |= SetAttrRequest::kAtimeNow;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    q.valid |= SetAttrRequest::kAtime;
    q.atime = {in.st_atim.tv_sec, static_cast<uint32_t>(in.st_atim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    q.valid |= SetAttrRequest::kMtimeNow;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    q.valid |= SetAttrRequest::kMtime;
    q.mtime = {in.st_mtim.tv_sec, static_cast<uint32_t>(in.st_mtim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_CTIME) {
    q.valid |= SetAttrRequest::kCtime;
    q.ctime = {in.st_ctim.tv_sec, static_cast<uint32_t>(in.st_ctim.tv_nsec)};
    // Under the writeback cache the kernel sends utimensat(UTIME_NOW) and
    // the times it keeps itself as an explicit mtime with the same ctime.
    if ((q.valid & SetAttrRequest::kMtime) && q.mtime.sec == q.ctime.sec &&
        q.mtime.nsec == q.ctime.nsec) {
      q.valid |= SetAttrRequest::kMtimeIsNow;
    }
  }
  // HANDLE_KILLPRIV_V2: the kernel no longer adds the mode change itself.
  // Truncation says so per request; chown of a non-directory always kills
  // (chown_common() in the VFS).
  if (t_kill_suidgid ||
      (Ctx(req)->killpriv_v2.load(std::memory_order_relaxed) &&
       (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))) {
    q.valid |= SetAttrRequest::kKillSuidGid;
  }
  Result<Attr> r = Fs(req)->SetAttr(ino, q, CredOf(req));
  if (!r.ok()) return r.status().err();
  *out = *r;
  return 0;
}

// HANDLE_KILLPRIV_V2's kill on write, open(O_TRUNC) and fallocate: clears the bits
// (before the data changes, as file_remove_privs() does: a crash in between
// leaves them cleared, never new contents under them), then drops the
// kernel's cached attributes, which neither reply refreshes: until then
// exec(2) would still see the setuid bit.
int KillSuidGid(fuse_req_t req, fuse_ino_t ino) {
  Result<Attr> a = Fs(req)->GetAttr(ino);
  if (!a.ok()) return a.status().err();
  const bool sgid_exec = (a->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
  if (S_ISDIR(a->mode) || (!(a->mode & S_ISUID) && !sgid_exec)) return 0;
  SetAttrRequest q;
  q.valid = SetAttrRequest::kKillSuidGid;
  Result<Attr> k = Fs(req)->SetAttr(ino, q, RequestCred(req, false));
  if (!k.ok()) return k.status().err();
  if (Ctx(req)->session != nullptr) {
    fuse_lowlevel_notify_inval_inode(Ctx(req)->session, ino, -1, 0);
  }
  return 0;
}

int DoOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const Cred cred = CredOf(req);
  Status s = Fs(req)->CheckOpen(ino, fi->flags, cred);
  if (!s.ok()) return s.err();
  if (fi->flags & O_TRUNC) {
    // FUSE_CAP_ATOMIC_O_TRUNC: the kernel leaves the truncation to us.
    if (t_kill_suidgid) {
      const int err = KillSuidGid(req, ino);
      if (err != 0) return err;
    }
    SetAttrRequest q;
    q.valid = SetAttrRequest::kSize;
    Result<Attr> r = Fs(req)->SetAttr(ino, q, cred);
    if (!r.ok()) return r.status().err();
  }
  if (fi->flags & O_DIRECT) {
    fi->direct_io = 1;
  } else {
    // Only this mount changes the volume, so cached pages stay valid.
    fi->keep_cache = 1;
  }
  return 0;
}

// A per-thread read buffer aligned to the block size, so that small block
// reads can go to the device with O_DIRECT (BlockDevice::ReadData).
struct ReadBuffer {
  uint8_t* data = nullptr;
  size_t cap = 0;
  ~ReadBuffer() { std::free(data); }
  bool Reserve(size_t n) {
    if (n <= cap) return true;
    const size_t want = (n + kBlockSize - 1) / kBlockSize * kBlockSize;
    void* p = std::aligned_alloc(kBlockSize, want);
    if (p == nullptr) return false;
    std::free(data);
    data = static_cast<uint8_t*>(p);
    cap = want;
    return true;
  }
};

// Reads up to `size` bytes into a per-thread buffer: `*out` holds `*n`.
int DoRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, const uint8_t** out,
           size_t* n) {
  thread_local ReadBuffer buf;
  if (off < 0) return EINVAL;
  if (!buf.Reserve(size)) return ENOMEM;
  Result<size_t> r = Fs(req)->Read(ino, static_cast<uint64_t>(off), std::span(buf.data, size));
  if (!r.ok()) return r.status().err();
  *out = buf.data;
  *n = *r;
  return 0;
}

int DoWrite(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, const fuse_file_info* fi,
            size_t* written) {
  if (off < 0) return EINVAL;
  const size_t size = fuse_buf_size(in);
  std::span<const uint8_t> data;
  thread_local std::vector<uint8_t> copy;
  const fuse_buf& b0 = in->buf[in->idx];
  if (in->count - in->idx == 1 && !(b0.flags & FUSE_BUF_IS_FD)) {
    data = std::span(static_cast<const uint8_t*>(b0.mem) + in->off, size);
  } else {
    // Spliced or scattered input: gather it into memory first.
    copy.resize(size);
    fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
    dst.buf[0].mem = copy.data();
    const ssize_t n = fuse_buf_copy(&dst, in, fuse_buf_copy_flags{});
    if (n < 0) return static_cast<int>(-n);
    data = std::span<const uint8_t>(copy.data(), static_cast<size_t>(n));
  }
  if (t_kill_suidgid) {
    const int err = KillSuidGid(req, ino);
    if (err != 0) return err;
  }
  // Write-back of cached pages (FUSE_WRITE_CACHE) under the writeback
  // cache: the kernel keeps mtime/ctime and sends them in a SETATTR of
  // their own (fuse_write_inode(), also before every FSYNC), so this
  // write leaves them alone instead of journaling a value about to be
  // overwritten.
  const bool kernel_times =
      fi->writepage && Ctx(req)->kernel_times.load(std::memory_order_relaxed);
  Result<size_t> r = Fs(req)->Write(ino, static_cast<uint64_t>(off), data,
                                    kernel_times ? Filesystem::WriteTimes::kKeep
                                                 : Filesystem::WriteTimes::kUpdate);
  if (!r.ok()) return r.status().err();
  *written = *r;
  return 0;
}

int DoReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus,
              std::vector<char>* buf, std::vector<fuse_ino_t>* refs) {
  // Collect first: the Filesystem holds its lock while it calls back, so
  // attributes for readdirplus are fetched after ReadDir returns. The kernel
  // holds the directory's lock across readdir, so no entry can be removed in
  // between.
  std::vector<DirEntry> entries;
  size_t need = 0;
  Status s = Fs(req)->ReadDir(ino, static_cast<uint64_t>(off), [&](const DirEntry& d) {
    const size_t n = plus ? fuse_add_direntry_plus(req, nullptr, 0, d.name.c_str(), nullptr, 0)
                          : fuse_add_direntry(req, nullptr, 0, d.name.c_str(), nullptr, 0);
    if (need + n > size) return false;
    need += n;
    entries.push_back(d);
    return true;
  });
  if (!s.ok()) return s.err();
  buf->resize(size);
  size_t pos = 0;
  for (const DirEntry& d : entries) {
    struct stat st {};
    st.st_ino = d.ino;
    st.st_mode = static_cast<mode_t>(d.type) << 12;
    const off_t next = static_cast<off_t>(d.cookie);
    size_t n;
    if (!plus) {
      n = fuse_add_direntry(req, buf->data() + pos, size - pos, d.name.c_str(), &st, next);
    } else {
      fuse_entry_param e{};
      e.attr = st;
      if (d.name != "." && d.name != "..") {
        Result<Attr> a = Fs(req)->GetAttr(d.ino);
        if (a.ok()) {
          MakeEntry(req, *a, &e);
          refs->push_back(e.ino);
        }
      }
      n = fuse_add_direntry_plus(req, buf->data() + pos, size - pos, d.name.c_str(), &e, next);
    }
    if (n > size - pos) break;  // cannot happen: sized above
    pos += n;
  }
  buf->resize(pos);
  return 0;
}

int DoFallocate(fuse_req_t req, fuse_ino_t ino, int mode, uint64_t off, uint64_t len) {
  // With HANDLE_KILLPRIV_V2 the kernel drops fallocate's file_modified()
  // kill and FALLOCATE has no flag for it: clear the bits for any caller
  // but root (CAP_FSETID is not visible here).
  if (Ctx(req)->killpriv_v2.load(std::memory_order_relaxed) && fuse_req_ctx(req)->uid != 0) {
    const int err = KillSuidGid(req, ino);
    if (err != 0) return err;
  }
  return Fs(req)->Fallocate(ino, mode, off, len).err();
}

int DoXattrReply(const std::vector<uint8_t>& value, size_t size) {
  return value.size() > size ? ERANGE : 0;
}

// -- Handlers: call one do_op, reply exactly once. -----------------------------

void VxInit(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_EXPORT_SUPPORT);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  // The kernel page cache may hold writes until fsync, close or memory
  // pressure: safe because nothing but this mount changes the volume (the
  // device is opened exclusively) and SIGTERM syncs the mount before exiting.
  // See FuseContext::writeback_cache for the times it brings.
  if (ctx->writeback_cache && !ctx->read_only) want(FUSE_CAP_WRITEBACK_CACHE);
  ctx->kernel_times.store((conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
  // Our files change only through this kernel: no invalidation on mtime
  // changes, keep_cache on open.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Requests must come through RequestRead (see InstallRequestIo), and
  // libfuse would splice around it.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  conn->max_write = kMaxWrite;
  conn->time_gran = 1;
}

void VxLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  if (std::strcmp(name, VEXFS_QUERY_FILE) == 0 && QueryLookup(req, parent, &e) == 0) {
    fuse_reply_entry(req, &e);
    return;
  }
  const int err = DoLookup(req, parent, name, &e);
  ReplyEntry(req, err, e);
}

void VxForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  if (!IsQueryIno(ino)) Fs(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void VxForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  thread_local std::vector<Filesystem::ForgetItem> items;
  items.clear();
  for (size_t i = 0; i < count; ++i) {
    if (!IsQueryIno(forgets[i].ino)) items.push_back({forgets[i].ino, forgets[i].nlookup});
  }
  Fs(req)->ForgetMany(items);
  fuse_reply_none(req);
}

void VxGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (IsQueryIno(ino)) return QueryGetAttr(req, ino);
  Result<Attr> r = Fs(req)->GetAttr(ino);
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
    return;
  }
  const struct stat st = ToStat(*r);
  fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
}

void VxSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  if (IsQueryIno(ino)) return QueryGetAttr(req, ino);  // "> file" truncation: nothing to do
  Attr out;
  const int err = DoSetAttr(req, ino, *attr, to_set, fi, &out);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  const struct stat st = ToStat(out);
  fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
}

void VxReadlink(fuse_req_t req, fuse_ino_t ino) {
  Result<std::string> r = Fs(req)->Readlink(ino);
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
    return;
  }
  fuse_reply_readlink(req, r->c_str());
}

void VxMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  fuse_entry_param e{};
  const int err = EntryFrom(
      req, Fs(req)->Mknod(parent, name, mode, static_cast<uint32_t>(rdev), CredOf(req)), &e);
  ReplyEntry(req, err, e);
}

void VxMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  fuse_entry_param e{};
  const int err = EntryFrom(req, Fs(req)->Mkdir(parent, name, mode, CredOf(req)), &e);
  ReplyEntry(req, err, e);
}

void VxSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  fuse_entry_param e{};
  const int err = EntryFrom(req, Fs(req)->Symlink(parent, name, link, CredOf(req)), &e);
  ReplyEntry(req, err, e);
}

void VxLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  fuse_entry_param e{};
  const int err = EntryFrom(req, Fs(req)->Link(ino, newparent, newname, CredOf(req)), &e);
  ReplyEntry(req, err, e);
}

void VxUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, Fs(req)->Unlink(parent, name, CredOf(req)).err());
}

void VxRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, Fs(req)->Rmdir(parent, name, CredOf(req)).err());
}

void VxRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    fuse_reply_err(req, EINVAL);  // RENAME_WHITEOUT: no overlayfs upper on VexFS
    return;
  }
  fuse_reply_err(req, Fs(req)->Rename(parent, name, newparent, newname, flags, CredOf(req)).err());
}

void VxOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (IsQueryIno(ino)) return QueryOpen(req, ino, fi);
  const int err = DoOpen(req, ino, fi);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  Ctx(req)->open_files.Open(fi);
  if (fuse_reply_open(req, fi) != 0) Ctx(req)->open_files.Release(fi);
}

void VxCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  // A new file may be opened for writing whatever its mode: no CheckOpen.
  fuse_entry_param e{};
  const int err = EntryFrom(req, Fs(req)->Mknod(parent, name, mode, 0, CredOf(req)), &e);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  if (fi->flags & O_DIRECT)
    fi->direct_io = 1;
  else
    fi->keep_cache = 1;
  Ctx(req)->open_files.Open(fi);
  if (fuse_reply_create(req, &e, fi) != 0) {
    Fs(req)->Forget(e.ino, 1);
    Ctx(req)->open_files.Release(fi);
  }
}

void VxRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (IsQueryIno(ino)) return QueryRead(req, ino, size, off, fi);
  const uint8_t* buf = nullptr;
  size_t n = 0;
  const int err = DoRead(req, ino, size, off, &buf, &n);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf), n);
}

void VxWriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  if (IsQueryIno(ino)) return QueryWrite(req, ino, in, off, fi);
  size_t written = 0;
  const int err = DoWrite(req, ino, in, off, fi, &written);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_write(req, written);
}

// Nothing is buffered in the daemon: close(2) has nothing to push.
void VxFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void VxRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Ctx(req)->open_files.Release(fi);
  fuse_reply_err(req, 0);
}

void VxFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  if (IsQueryIno(ino)) return (void)fuse_reply_err(req, 0);
  fuse_reply_err(req, Fs(req)->Fsync(ino, datasync != 0).err());
}

void VxOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Status s = Fs(req)->CheckOpen(ino, O_RDONLY, CredOf(req));
  if (!s.ok()) {
    fuse_reply_err(req, s.err());
    return;
  }
  Ctx(req)->open_files.Open(fi);
  if (fuse_reply_open(req, fi) != 0) Ctx(req)->open_files.Release(fi);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::vector<char> buf;
  std::vector<fuse_ino_t> refs;
  const int err = DoReadDir(req, ino, size, off, plus, &buf, &refs);
  if (err != 0) {
    for (fuse_ino_t r : refs) Fs(req)->Forget(r, 1);
    fuse_reply_err(req, err);
    return;
  }
  if (fuse_reply_buf(req, buf.data(), buf.size()) != 0) {
    for (fuse_ino_t r : refs) Fs(req)->Forget(r, 1);
  }
}

void VxReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  ReadDirCommon(req, ino, size, off, false);
}

void VxReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  ReadDirCommon(req, ino, size, off, true);
}

void VxReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Ctx(req)->open_files.Release(fi);
  fuse_reply_err(req, 0);
}

void VxFsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  fuse_reply_err(req, Fs(req)->Fsync(ino, datasync != 0).err());
}

void VxStatFs(fuse_req_t req, fuse_ino_t) {
  Result<FsStats> r = Fs(req)->StatFs();
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
    return;
  }
  struct statvfs sv {};
  sv.f_bsize = r->block_size;
  sv.f_frsize = r->block_size;
  sv.f_blocks = r->blocks;
  sv.f_bfree = r->free_blocks;
  sv.f_bavail = r->available_blocks;
  sv.f_files = r->inodes;
  sv.f_ffree = r->free_inodes;
  sv.f_favail = r->free_inodes;
  sv.f_namemax = r->name_max;
  fuse_reply_statfs(req, &sv);
}

void VxSetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  const auto* p = reinterpret_cast<const uint8_t*>(value);
  fuse_reply_err(req, Fs(req)->SetXattr(ino, name, std::span(p, size), flags, CredOf(req)).err());
}

void VxGetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // Supplementary groups only decide the read permission of user.*: the
  // kernel's security.capability probe before each write(2) skips /proc.
  const bool groups = Ctx(req)->check_permissions && std::strncmp(name, "user.", 5) == 0;
  Result<std::vector<uint8_t>> r = Fs(req)->GetXattr(ino, name, RequestCred(req, groups));
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
  } else if (size == 0) {
    fuse_reply_xattr(req, r->size());  // size probe
  } else if (const int err = DoXattrReply(*r, size); err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_buf(req, reinterpret_cast<const char*>(r->data()), r->size());
  }
}

void VxListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Result<std::vector<std::string>> r = Fs(req)->ListXattr(ino, CredOf(req));
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
    return;
  }
  std::vector<uint8_t> list;
  for (const std::string& n : *r) {
    list.insert(list.end(), n.begin(), n.end());
    list.push_back(0);
  }
  if (size == 0) {
    fuse_reply_xattr(req, list.size());
  } else if (const int err = DoXattrReply(list, size); err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_buf(req, reinterpret_cast<const char*>(list.data()), list.size());
  }
}

void VxRemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  fuse_reply_err(req, Fs(req)->RemoveXattr(ino, name, CredOf(req)).err());
}

void VxAccess(fuse_req_t req, fuse_ino_t ino, int mask) {
  fuse_reply_err(req, Fs(req)->Access(ino, mask, CredOf(req)).err());
}

void VxFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info*) {
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  fuse_reply_err(req, DoFallocate(req, ino, mode, static_cast<uint64_t>(offset),
                                  static_cast<uint64_t>(length)));
}

void VxLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
  // The kernel handles SEEK_SET/CUR/END itself and only forwards these two.
  if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  Result<uint64_t> r = Fs(req)->SeekData(ino, static_cast<uint64_t>(off), whence);
  if (!r.ok()) {
    fuse_reply_err(req, r.status().err());
    return;
  }
  fuse_reply_lseek(req, static_cast<off_t>(*r));
}

// -- /dev/fuse I/O (InstallRequestIo) --------------------------------------

template <typename T>
T ArgOf(const void* buf, size_t n) {
  T arg{};
  if (n > sizeof(fuse_in_header)) {
    std::memcpy(&arg, static_cast<const char*>(buf) + sizeof(fuse_in_header),
                std::min(sizeof(T), n - sizeof(fuse_in_header)));
  }
  return arg;
}

// Requests the kernel waits for an answer to (an INTERRUPT may get an
// EAGAIN reply, but under its own unique id: see IsAnswer).
bool ExpectsReply(uint32_t opcode) {
  return opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT &&
         opcode != FUSE_NOTIFY_REPLY;
}

// A message written to /dev/fuse with this unique id answers a request
// that ExpectsReply: not a notification (0), nor an INTERRUPT's EAGAIN.
// The kernel numbers requests in steps of 2 and sends an INTERRUPT under the
// interrupted request's id | 1 (FUSE_INT_REQ_BIT in fs/fuse/fuse_i.h).
bool IsAnswer(uint64_t unique) { return unique != 0 && (unique & 1) == 0; }

// Called once the answer has been written.
void Answered(FuseContext* ctx) { ctx->unanswered.fetch_sub(1, std::memory_order_release); }

ssize_t RequestRead(int fd, void* buf, size_t len, void* userdata) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  const ssize_t n = ::read(fd, buf, len);
  t_kill_suidgid = false;
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
  const size_t got = static_cast<size_t>(n);
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof(in));
  if (ExpectsReply(in.opcode)) ctx->unanswered.fetch_add(1, std::memory_order_relaxed);
  ctx->requests_read.fetch_add(1, std::memory_order_release);
  switch (in.opcode) {
    case FUSE_INIT: {
      const auto init = ArgOf<fuse_init_in>(buf, got);
      const uint32_t add = AmendInitFlags(init.flags, 0);
      if (init.major == FUSE_KERNEL_VERSION && (add != 0 || !ctx->readahead_file.empty())) {
        ctx->init_add.store(add, std::memory_order_relaxed);
        ctx->init_unique.store(in.unique, std::memory_order_relaxed);
      }
      break;
    }
    case FUSE_WRITE:
      t_kill_suidgid = ArgOf<fuse_write_in>(buf, got).write_flags & FUSE_WRITE_KILL_SUIDGID;
      break;
    case FUSE_SETATTR:
      t_kill_suidgid = ArgOf<fuse_setattr_in>(buf, got).valid & FATTR_KILL_SUIDGID;
      break;
    case FUSE_OPEN:
      t_kill_suidgid = ArgOf<fuse_open_in>(buf, got).open_flags & FUSE_OPEN_KILL_SUIDGID;
      break;
    default:
      break;
  }
  return n;
}

// Raises the mount's readahead (FuseContext::readahead_kb): the kernel
// has just applied the INIT reply, which can only lower it.
void ApplyReadahead(const FuseContext& ctx) {
  const int fd = ::open(ctx.readahead_file.c_str(), O_WRONLY | O_CLOEXEC);
  const std::string text = std::to_string(ctx.readahead_kb) + "\n";
  const bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok && ctx.readahead_warn) {
    std::fprintf(stderr, "vexfs-fuse: readahead_kb=%u not applied: %s: %s\n", ctx.readahead_kb,
                 ctx.readahead_file.c_str(), std::strerror(err));
  }
}

ssize_t RequestWritev(int fd, struct iovec* iov, int count, void* userdata) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  const uint64_t init_unique = ctx->init_unique.load(std::memory_order_relaxed);
  bool init_reply = false;
  if (init_unique != 0 && count >= 2 && iov[0].iov_len == sizeof(fuse_out_header)) {
    auto* out = static_cast<fuse_out_header*>(iov[0].iov_base);
    if (out->unique == init_unique) {
      ctx->init_unique.store(0, std::memory_order_relaxed);
      init_reply = out->error == 0;
      constexpr size_t kFlagsEnd = offsetof(fuse_init_out, flags) + sizeof(uint32_t);
      if (out->error == 0 && iov[1].iov_len >= kFlagsEnd) {
        auto* init = static_cast<fuse_init_out*>(iov[1].iov_base);
        const uint32_t add = ctx->init_add.load(std::memory_order_relaxed);
        init->flags |= add;
        if (add & FUSE_HANDLE_KILLPRIV_V2) ctx->killpriv_v2.store(true);
        if (ctx->debug) {
          std::fprintf(stderr, "vexfs: INIT reply flags=0x%08x (added:%s%s)\n", init->flags,
                       (add & FUSE_HANDLE_KILLPRIV_V2) ? " HANDLE_KILLPRIV_V2" : "",
                       (add & FUSE_PARALLEL_DIROPS) ? " PARALLEL_DIROPS" : "");
        }
      }
    }
  }
  uint64_t unique = 0;  // libfuse puts the header alone in iov[0]
  if (count >= 1 && iov[0].iov_len >= sizeof(fuse_out_header)) {
    unique = static_cast<const fuse_out_header*>(iov[0].iov_base)->unique;
  }
  const ssize_t n = ::writev(fd, iov, count);
  if (IsAnswer(unique)) Answered(ctx);
  if (init_reply && n >= 0 && !ctx->readahead_file.empty()) ApplyReadahead(*ctx);
  return n;
}

// libfuse splices a reply whose data is a file descriptor
// (FUSE_CAP_SPLICE_WRITE), one splice per reply, falling back to writev if
// the splice fails. VexFS sends no data notifications (unique 0), so every
// successful splice answers a request.
ssize_t RequestSpliceSend(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                          unsigned int flags, void* userdata) {
  const ssize_t n = ::splice(fdin, offin, fdout, offout, len, flags);
  if (n >= 0) Answered(static_cast<FuseContext*>(userdata));
  return n;
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = VxInit;
  ops.lookup = VxLookup;
  ops.forget = VxForget;
  ops.forget_multi = VxForgetMulti;
  ops.getattr = VxGetAttr;
  ops.setattr = VxSetAttr;
  ops.readlink = VxReadlink;
  ops.mknod = VxMknod;
  ops.mkdir = VxMkdir;
  ops.unlink = VxUnlink;
  ops.rmdir = VxRmdir;
  ops.symlink = VxSymlink;
  ops.rename = VxRename;
  ops.link = VxLink;
  ops.open = VxOpen;
  ops.read = VxRead;
  ops.write_buf = VxWriteBuf;
  ops.flush = VxFlush;
  ops.release = VxRelease;
  ops.fsync = VxFsync;
  ops.opendir = VxOpenDir;
  ops.readdir = VxReadDir;
  ops.readdirplus = VxReadDirPlus;
  ops.releasedir = VxReleaseDir;
  ops.fsyncdir = VxFsyncDir;
  ops.statfs = VxStatFs;
  ops.setxattr = VxSetXattr;
  ops.getxattr = VxGetXattr;
  ops.listxattr = VxListXattr;
  ops.removexattr = VxRemoveXattr;
  ops.access = VxAccess;
  ops.create = VxCreate;
  ops.fallocate = VxFallocate;
  ops.lseek = VxLseek;
  ops.ioctl = VectorIoctl;
  // No getlk/setlk/flock: the kernel keeps locks locally.
  return ops;
}

}  // namespace

uint32_t AmendInitFlags(uint32_t kernel_flags, uint32_t reply_flags) {
  return reply_flags | (kernel_flags & kInitFlagsAdded);
}

Cred RequestCred(fuse_req_t req, bool with_groups) {
  const fuse_ctx* fc = fuse_req_ctx(req);
  Cred cred;
  cred.uid = fc->uid;
  cred.gid = fc->gid;
  if (with_groups && fc->uid != 0) {
    // Read from /proc only if a check depends on them, while the request
    // (and so `req`) is live: Creds do not outlive their request.
    cred.lazy = std::make_shared<Cred::LazyGroups>();
    cred.lazy->load = [req] {
      std::vector<gid_t> groups(32);
      int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
      if (n > static_cast<int>(groups.size())) {
        groups.resize(n);
        n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
      }
      std::vector<uint32_t> out;
      for (int i = 0; i < n && i < static_cast<int>(groups.size()); ++i) out.push_back(groups[i]);
      return out;
    };
  }
  return cred;
}

int InstallRequestIo(fuse_session* se) {
  fuse_custom_io io{};
  io.read = RequestRead;
  io.writev = RequestWritev;
  io.splice_send = RequestSpliceSend;
  return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

const fuse_lowlevel_ops& LowLevelOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace vexfs::fusefs
