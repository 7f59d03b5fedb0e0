// Namespace operations, attributes and the public xattr calls.
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include "core/fs_impl.h"
#include "core/xattr.h"

namespace vexfs::core {
namespace {

constexpr uint32_t kLinkMax = 65000;

uint8_t DtOf(uint32_t mode) { return FileTypeOfMode(mode); }
constexpr const char* kVectorSuffix = "vexfs.vector";

}  // namespace

Result<InodeRef> FsImpl::CheckDirForChange(uint64_t parent, std::string_view name, const Cred& cred) {
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  VEXFS_ASSIGN_OR_RETURN(InodeRef dir, GetInode(parent));
  if (!dir.is_dir()) return Status::Error(ENOTDIR, "not a directory");
  if (name == "." || name == "..") {
    return Status::Error(name == "." ? EINVAL : ENOTEMPTY, "cannot change '.' or '..'");
  }
  VEXFS_RETURN_IF_ERROR(ValidateName(name));
  VEXFS_RETURN_IF_ERROR(Perm(dir, W_OK | X_OK, cred));
  if (Le32(dir.raw->i_links) == 0) return Status::Error(ENOENT, "directory was removed");
  return dir;
}

Result<InodeRef> FsImpl::Child(const InodeRef& dir, std::string_view name) {
  VEXFS_ASSIGN_OR_RETURN(auto rec, Dir(dir).Lookup(name));
  if (!rec) return Status::NotFound("no such file or directory");
  return GetInode(rec->ino);
}

Status FsImpl::CheckSticky(const InodeRef& dir, const InodeRef& victim, const Cred& cred) const {
  if (!opts_.check_permissions || cred.uid == 0) return Status::Ok();
  if (!(dir.mode() & S_ISVTX)) return Status::Ok();
  if (cred.uid == Le32(dir.raw->i_uid) || cred.uid == Le32(victim.raw->i_uid)) return Status::Ok();
  return Status::Error(EPERM, "sticky directory");
}

Result<bool> FsImpl::IsAncestor(uint64_t ancestor, uint64_t ino) {
  uint64_t cur = ino;
  for (uint64_t guard = 0; guard < 4096; guard++) {
    if (cur == ancestor) return true;
    if (cur == VEXFS_ROOT_INO) return false;
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(cur));
    cur = Le64(r.raw->i_parent);
  }
  return Status::Corruption("directory parent chain too long");
}

Result<InodeRef> FsImpl::CreateChild(const InodeRef& dir, std::string_view name, uint32_t mode,
                                     uint32_t rdev, const Cred& cred) {
  VEXFS_ASSIGN_OR_RETURN(auto existing, Dir(dir).Lookup(name));
  if (existing) return Status::Error(EEXIST, "file exists");
  const bool is_dir = S_ISDIR(mode);
  if (is_dir && Le32(dir.raw->i_links) >= kLinkMax) return Status::Error(EMLINK, "too many links");
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, AllocInode(dir.ino));
  uint32_t gid = cred.gid;
  if (dir.mode() & S_ISGID) {
    gid = Le32(dir.raw->i_gid);
    if (is_dir) mode |= S_ISGID;
  }
  if (!is_dir && (mode & S_ISGID) && cred.uid != 0 && !cred.InGroup(gid) && opts_.check_permissions) {
    mode &= ~static_cast<uint32_t>(S_ISGID);
  }
  r.raw->i_mode = ToLe16(static_cast<uint16_t>(mode));
  r.raw->i_uid = ToLe32(cred.uid);
  r.raw->i_gid = ToLe32(gid);
  r.raw->i_links = ToLe32(is_dir ? 2 : 1);
  r.raw->i_rdev = ToLe32(rdev);
  r.raw->i_parent = ToLe64(dir.ino);
  SetTimes(r, true, true, true);
  r.raw->i_crtime = r.raw->i_mtime;
  r.raw->i_crtime_ns = r.raw->i_mtime_ns;
  if (is_dir) {
    VEXFS_RETURN_IF_ERROR(Dir(r).Create(dir.buf->blocknr));
  } else if (S_ISREG(mode) || S_ISLNK(mode)) {
    ExtentMap::InitEmpty(r.raw);
  }
  Dirty(dir);
  VEXFS_RETURN_IF_ERROR(Dir(dir).Add(name, r.ino, DtOf(mode)));
  Emit(Event{Event::kLink, dir.ino, r.ino, std::string(name), is_dir});
  if (is_dir) dir.raw->i_links = ToLe32(Le32(dir.raw->i_links) + 1);
  SetTimes(dir, false, true, true);
  return r;
}

Result<Attr> FsImpl::Lookup(uint64_t parent, std::string_view name, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef dir, GetInode(parent));
  if (!dir.is_dir()) return Status::Error(ENOTDIR, "not a directory");
  VEXFS_RETURN_IF_ERROR(Perm(dir, X_OK, cred));
  if (name == ".") return ToAttr(dir);
  if (name == "..") {
    VEXFS_ASSIGN_OR_RETURN(InodeRef p, GetInode(Le64(dir.raw->i_parent)));
    return ToAttr(p);
  }
  VEXFS_RETURN_IF_ERROR(ValidateName(name));
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, Child(dir, name));
  return ToAttr(r);
}

Result<Attr> FsImpl::Mknod(uint64_t parent, std::string_view name, uint32_t mode, uint32_t rdev,
                           const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t type = mode & S_IFMT;
  if (type == 0) mode |= S_IFREG;
  else if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK) {
    return Status::InvalidArgument("bad file type for mknod");
  }
  if ((type == S_IFCHR || type == S_IFBLK) && cred.uid != 0 && opts_.check_permissions) {
    return Status::Error(EPERM, "only root may create device nodes");
  }
  Attr out;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, CreateChild(dir, name, mode & (S_IFMT | 07777), rdev, cred));
    out = ToAttr(r);
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FsImpl::Mkdir(uint64_t parent, std::string_view name, uint32_t mode, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  Attr out;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, CreateChild(dir, name, S_IFDIR | (mode & 07777), 0, cred));
    out = ToAttr(r);
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FsImpl::Symlink(uint64_t parent, std::string_view name, std::string_view target,
                             const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  if (target.empty()) return Status::Error(ENOENT, "empty symlink target");
  if (target.size() > VEXFS_SYMLINK_MAX) return Status::Error(ENAMETOOLONG, "symlink target too long");
  if (target.find('\0') != std::string_view::npos) return Status::InvalidArgument("NUL in symlink target");
  Attr out;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, CreateChild(dir, name, S_IFLNK | 0777, 0, cred));
    if (target.size() < VEXFS_INODE_DATA) {
      std::memset(r.raw->i_data, 0, sizeof(r.raw->i_data));
      std::memcpy(r.raw->i_data, target.data(), target.size());
      r.raw->i_flags = ToLe32(Le32(r.raw->i_flags) | VEXFS_INODE_FL_INLINE_SYMLINK);
      r.raw->i_size = ToLe64(target.size());
    } else {
      VEXFS_RETURN_IF_ERROR(WriteChunk(
          r, 0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(target.data()), target.size())));
    }
    out = ToAttr(r);
    return Status::Ok();
  }));
  return out;
}

Result<std::string> FsImpl::Readlink(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  if (!r.is_lnk()) return Status::InvalidArgument("not a symbolic link");
  const uint64_t size = Le64(r.raw->i_size);
  if (size == 0 || size > VEXFS_SYMLINK_MAX) return Status::Corruption("bad symlink size");
  if (Le32(r.raw->i_flags) & VEXFS_INODE_FL_INLINE_SYMLINK) {
    if (size >= VEXFS_INODE_DATA) return Status::Corruption("bad inline symlink size");
    return std::string(reinterpret_cast<const char*>(r.raw->i_data), size);
  }
  std::string s(size, '\0');
  VEXFS_ASSIGN_OR_RETURN(size_t n, ReadData(r, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), size)));
  if (n != size) return Status::Corruption("short symlink");
  return s;
}

Result<Attr> FsImpl::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  Attr out;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(new_parent, new_name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    if (r.is_dir()) return Status::Error(EPERM, "hard links to directories are not allowed");
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE | VEXFS_INODE_FL_APPEND)) {
      return Status::Error(EPERM, "immutable or append-only file");
    }
    if (Le32(r.raw->i_links) >= kLinkMax) return Status::Error(EMLINK, "too many links");
    if (Le32(r.raw->i_links) == 0 && (Le32(r.raw->i_flags) & VEXFS_INODE_FL_ORPHAN)) {
      return Status::Error(ENOENT, "file was removed");
    }
    if (r.is_reg() && Le64(r.raw->i_vector) != 0) {
      VEXFS_ASSIGN_OR_RETURN(uint64_t from, CollOfInode(r));
      VEXFS_ASSIGN_OR_RETURN(uint64_t to, CollOfDir(dir.ino));
      if (from != to) return Status::Error(EXDEV, "a file with a vector cannot be linked into another collection");
    }
    Dirty(dir);
    VEXFS_RETURN_IF_ERROR(Dir(dir).Add(new_name, r.ino, DtOf(r.mode())));
    Emit(Event{Event::kLink, dir.ino, r.ino, std::string(new_name), false});
    SetTimes(dir, false, true, true);
    Dirty(r);
    r.raw->i_links = ToLe32(Le32(r.raw->i_links) + 1);
    SetTimes(r, false, false, true);
    out = ToAttr(r);
    return Status::Ok();
  }));
  return out;
}

Status FsImpl::Unlink(uint64_t parent, std::string_view name, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t victim = 0;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, Child(dir, name));
    if (r.is_dir()) return Status::Error(EISDIR, "is a directory");
    VEXFS_RETURN_IF_ERROR(CheckSticky(dir, r, cred));
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE | VEXFS_INODE_FL_APPEND)) {
      return Status::Error(EPERM, "immutable or append-only file");
    }
    Dirty(dir);
    VEXFS_RETURN_IF_ERROR(Dir(dir).Remove(name));
    Emit(Event{Event::kUnlink, dir.ino, r.ino, std::string(name), false});
    SetTimes(dir, false, true, true);
    VEXFS_RETURN_IF_ERROR(DropLink(r, dir.ino));
    victim = r.ino;
    return Status::Ok();
  }));
  return MaybeReap(victim);
}

Status FsImpl::Rmdir(uint64_t parent, std::string_view name, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t victim = 0;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef dir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, Child(dir, name));
    if (!r.is_dir()) return Status::Error(ENOTDIR, "not a directory");
    if (Dir(r).entries() != 0) return Status::Error(ENOTEMPTY, "directory not empty");
    VEXFS_RETURN_IF_ERROR(CheckSticky(dir, r, cred));
    Dirty(dir);
    VEXFS_RETURN_IF_ERROR(Dir(dir).Remove(name));
    Emit(Event{Event::kUnlink, dir.ino, r.ino, std::string(name), true});
    dir.raw->i_links = ToLe32(Le32(dir.raw->i_links) - 1);
    SetTimes(dir, false, true, true);
    VEXFS_RETURN_IF_ERROR(DropLink(r, dir.ino));
    victim = r.ino;
    return Status::Ok();
  }));
  VEXFS_RETURN_IF_ERROR(ReapDetached());
  return MaybeReap(victim);
}

Status FsImpl::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, unsigned flags, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return Status::InvalidArgument("unsupported rename flags");
  }
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return Status::InvalidArgument("RENAME_NOREPLACE with RENAME_EXCHANGE");
  }
  const bool exchange = flags & RENAME_EXCHANGE;
  uint64_t victim = 0;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef sdir, CheckDirForChange(parent, name, cred));
    VEXFS_ASSIGN_OR_RETURN(InodeRef ddir, CheckDirForChange(new_parent, new_name, cred));
    VEXFS_ASSIGN_OR_RETURN(auto srec, Dir(sdir).Lookup(name));
    if (!srec) return Status::NotFound("no such file or directory");
    VEXFS_ASSIGN_OR_RETURN(auto drec, Dir(ddir).Lookup(new_name));
    if (parent == new_parent && name == new_name) return Status::Ok();
    if (drec && (flags & RENAME_NOREPLACE)) return Status::Error(EEXIST, "target exists");
    if (!drec && exchange) return Status::NotFound("exchange target does not exist");
    VEXFS_ASSIGN_OR_RETURN(InodeRef src, GetInode(srec->ino));
    VEXFS_RETURN_IF_ERROR(CheckSticky(sdir, src, cred));
    InodeRef dst;
    if (drec) {
      VEXFS_ASSIGN_OR_RETURN(dst, GetInode(drec->ino));
      VEXFS_RETURN_IF_ERROR(CheckSticky(ddir, dst, cred));
      if (dst.ino == src.ino && !exchange) return Status::Ok();  // same file: no-op
    }
    // A directory may not move below itself.
    if (src.is_dir() && parent != new_parent) {
      VEXFS_ASSIGN_OR_RETURN(bool below, IsAncestor(src.ino, new_parent));
      if (below) return Status::InvalidArgument("cannot move a directory into itself");
    }
    if (exchange && dst.is_dir() && parent != new_parent) {
      VEXFS_ASSIGN_OR_RETURN(bool below, IsAncestor(dst.ino, parent));
      if (below) return Status::InvalidArgument("cannot move a directory into itself");
    }
    // Moving a directory to a new parent rewrites its "..": needs write
    // permission on the directory itself.
    if (src.is_dir() && parent != new_parent) VEXFS_RETURN_IF_ERROR(Perm(src, W_OK, cred));
    if (exchange && dst.is_dir() && parent != new_parent) VEXFS_RETURN_IF_ERROR(Perm(dst, W_OK, cred));
    // Collection boundaries: a directory (other than a collection root) may
    // not cross one; a file's vector moves with it or the rename is EXDEV.
    uint64_t scoll = 0, dcoll = 0;
    if (parent != new_parent && !colls_.empty()) {
      VEXFS_ASSIGN_OR_RETURN(scoll, CollOfDir(parent));
      VEXFS_ASSIGN_OR_RETURN(dcoll, CollOfDir(new_parent));
      if (scoll != dcoll) {
        if (src.is_dir() && !colls_.count(src.ino)) {
          return Status::Error(EXDEV, "a directory cannot move across a collection boundary");
        }
        if (exchange && dst.is_dir() && !colls_.count(dst.ino)) {
          return Status::Error(EXDEV, "a directory cannot move across a collection boundary");
        }
      }
    }

    Dirty(sdir);
    Dirty(ddir);
    if (exchange) {
      VEXFS_RETURN_IF_ERROR(Dir(sdir).Replace(name, dst.ino, DtOf(dst.mode())));
      VEXFS_RETURN_IF_ERROR(Dir(ddir).Replace(new_name, src.ino, DtOf(src.mode())));
      Emit(Event{Event::kUnlink, parent, src.ino, std::string(name), src.is_dir()});
      Emit(Event{Event::kUnlink, new_parent, dst.ino, std::string(new_name), dst.is_dir()});
      Emit(Event{Event::kLink, parent, dst.ino, std::string(name), dst.is_dir()});
      Emit(Event{Event::kLink, new_parent, src.ino, std::string(new_name), src.is_dir()});
      if (parent != new_parent) {
        if (!src.is_dir()) {
          VEXFS_RETURN_IF_ERROR(MoveVector(src, scoll, dcoll));
          Dirty(src);
          src.raw->i_parent = ToLe64(new_parent);
        }
        if (!dst.is_dir()) {
          VEXFS_RETURN_IF_ERROR(MoveVector(dst, dcoll, scoll));
          Dirty(dst);
          dst.raw->i_parent = ToLe64(parent);
        }
        if (src.is_dir() != dst.is_dir()) {
          // The directory among the two changes parent.
          const InodeRef& from = src.is_dir() ? sdir : ddir;
          const InodeRef& to = src.is_dir() ? ddir : sdir;
          from.raw->i_links = ToLe32(Le32(from.raw->i_links) - 1);
          to.raw->i_links = ToLe32(Le32(to.raw->i_links) + 1);
        }
        if (src.is_dir()) {
          Dirty(src);
          src.raw->i_parent = ToLe64(new_parent);
        }
        if (dst.is_dir()) {
          Dirty(dst);
          dst.raw->i_parent = ToLe64(parent);
        }
      }
      Dirty(src);
      Dirty(dst);
      SetTimes(src, false, false, true);
      SetTimes(dst, false, false, true);
    } else {
      if (drec) {
        if (src.is_dir()) {
          if (!dst.is_dir()) return Status::Error(ENOTDIR, "target is not a directory");
          if (Dir(dst).entries() != 0) return Status::Error(ENOTEMPTY, "target directory not empty");
        } else if (dst.is_dir()) {
          return Status::Error(EISDIR, "target is a directory");
        }
        VEXFS_RETURN_IF_ERROR(Dir(ddir).Replace(new_name, src.ino, DtOf(src.mode())));
        Emit(Event{Event::kUnlink, new_parent, dst.ino, std::string(new_name), dst.is_dir()});
        if (dst.is_dir()) ddir.raw->i_links = ToLe32(Le32(ddir.raw->i_links) - 1);
        VEXFS_RETURN_IF_ERROR(DropLink(dst, new_parent));
        victim = dst.ino;
      } else {
        VEXFS_RETURN_IF_ERROR(Dir(ddir).Add(new_name, src.ino, DtOf(src.mode())));
      }
      VEXFS_RETURN_IF_ERROR(Dir(sdir).Remove(name));
      Emit(Event{Event::kUnlink, parent, src.ino, std::string(name), src.is_dir()});
      Emit(Event{Event::kLink, new_parent, src.ino, std::string(new_name), src.is_dir()});
      if (!src.is_dir() && parent != new_parent) {
        VEXFS_RETURN_IF_ERROR(MoveVector(src, scoll, dcoll));
        Dirty(src);
        src.raw->i_parent = ToLe64(new_parent);
      }
      if (src.is_dir() && parent != new_parent) {
        sdir.raw->i_links = ToLe32(Le32(sdir.raw->i_links) - 1);
        ddir.raw->i_links = ToLe32(Le32(ddir.raw->i_links) + 1);
        Dirty(src);
        src.raw->i_parent = ToLe64(new_parent);
      }
      Dirty(src);
      SetTimes(src, false, false, true);
    }
    SetTimes(sdir, false, true, true);
    SetTimes(ddir, false, true, true);
    return Status::Ok();
  }));
  VEXFS_RETURN_IF_ERROR(ReapDetached());
  if (victim) return MaybeReap(victim);
  return Status::Ok();
}

Status FsImpl::ReadDir(uint64_t ino, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn) {
  // Entries are gathered in batches under the lock and handed to `fn`
  // without it, so `fn` may call back into the filesystem.
  constexpr size_t kBatch = 128;
  std::vector<DirEntry> batch;
  for (;;) {
    batch.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      VEXFS_ASSIGN_OR_RETURN(InodeRef dir, GetInode(ino));
      if (!dir.is_dir()) return Status::Error(ENOTDIR, "not a directory");
      if (cookie == 0) batch.push_back(DirEntry{".", dir.ino, VEXFS_FT_DIR, 1});
      if (cookie <= 1) batch.push_back(DirEntry{"..", Le64(dir.raw->i_parent), VEXFS_FT_DIR, 2});
      VEXFS_RETURN_IF_ERROR(Dir(dir).ReadFrom(std::max<uint64_t>(cookie, 2), [&](const DirRec& r) {
        batch.push_back(DirEntry{r.name, r.ino, r.type, r.hash});
        return batch.size() < kBatch;
      }));
    }
    for (const DirEntry& e : batch) {
      if (!fn(e)) return Status::Ok();
    }
    if (batch.size() < kBatch) return Status::Ok();
    cookie = batch.back().cookie;
  }
}

Result<Attr> FsImpl::SetAttr(uint64_t ino, const SetAttrRequest& req, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  const bool perms = opts_.check_permissions && cred.uid != 0;
  if (req.valid & SetAttrRequest::kKillSuidGid) {
    // In its own step before anything else: a crash in between leaves the
    // bits cleared and the data or owner unchanged, never the reverse.
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    uint32_t mode = r.mode();
    if (!S_ISDIR(mode)) {
      mode &= ~static_cast<uint32_t>(S_ISUID);
      if (mode & S_IXGRP) mode &= ~static_cast<uint32_t>(S_ISGID);
    }
    if (mode != r.mode()) {
      VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
        VEXFS_ASSIGN_OR_RETURN(InodeRef w, GetInode(ino));
        Dirty(w);
        w.raw->i_mode = ToLe16(static_cast<uint16_t>(mode));
        SetTimes(w, false, false, true);
        return Status::Ok();
      }));
    } else if (req.valid == SetAttrRequest::kKillSuidGid) {
      return ToAttr(r);
    }
    if (req.valid == SetAttrRequest::kKillSuidGid) {
      VEXFS_ASSIGN_OR_RETURN(InodeRef w, GetInode(ino));
      return ToAttr(w);
    }
  }
  const bool by_writer = (req.valid & SetAttrRequest::kByWriter) != 0;
  if (req.valid & SetAttrRequest::kSize) {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    if (r.is_dir()) return Status::Error(EISDIR, "is a directory");
    if (!r.is_reg()) return Status::InvalidArgument("not a regular file");
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE | VEXFS_INODE_FL_APPEND)) {
      return Status::Error(EPERM, "immutable or append-only file");
    }
    if (!by_writer) VEXFS_RETURN_IF_ERROR(Perm(r, W_OK, cred));
    VEXFS_RETURN_IF_ERROR(Truncate(ino, req.size));
  }
  Attr out;
  VEXFS_RETURN_IF_ERROR(RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    const bool owner = cred.uid == Le32(r.raw->i_uid);
    uint32_t mode = r.mode();
    Dirty(r);
    if (req.valid & (SetAttrRequest::kUid | SetAttrRequest::kGid)) {
      const uint32_t uid = (req.valid & SetAttrRequest::kUid) ? req.uid : Le32(r.raw->i_uid);
      const uint32_t gid = (req.valid & SetAttrRequest::kGid) ? req.gid : Le32(r.raw->i_gid);
      if (perms) {
        if (uid != Le32(r.raw->i_uid)) return Status::Error(EPERM, "only root may change the owner");
        if (gid != Le32(r.raw->i_gid) && (!owner || !cred.InGroup(gid))) {
          return Status::Error(EPERM, "cannot change the group");
        }
      }
      if (!S_ISDIR(mode) && (uid != Le32(r.raw->i_uid) || gid != Le32(r.raw->i_gid) || cred.uid != 0)) {
        mode &= ~static_cast<uint32_t>(S_ISUID);
        if (mode & S_IXGRP) mode &= ~static_cast<uint32_t>(S_ISGID);
      }
      r.raw->i_uid = ToLe32(uid);
      r.raw->i_gid = ToLe32(gid);
    }
    if (req.valid & SetAttrRequest::kMode) {
      if (perms && !owner) return Status::Error(EPERM, "only the owner may change the mode");
      mode = (mode & S_IFMT) | (req.mode & 07777);
      if (perms && !cred.InGroup(Le32(r.raw->i_gid))) mode &= ~static_cast<uint32_t>(S_ISGID);
    }
    r.raw->i_mode = ToLe16(static_cast<uint16_t>(mode));
    const Timespec now = Now();
    const bool set_atime = req.valid & (SetAttrRequest::kAtime | SetAttrRequest::kAtimeNow);
    const bool set_mtime = req.valid & (SetAttrRequest::kMtime | SetAttrRequest::kMtimeNow);
    if (perms && !owner && (set_atime || set_mtime)) {
      // As setattr_prepare() and notify_change() order them: a time the
      // caller chose needs ownership (EPERM); "now" needs write permission
      // (EACCES), which a writer's handle already proved.
      const bool chosen_atime = set_atime && !(req.valid & SetAttrRequest::kAtimeNow);
      const bool chosen_mtime = set_mtime && !(req.valid & SetAttrRequest::kMtimeNow) &&
                                !(req.valid & SetAttrRequest::kMtimeIsNow) && !by_writer;
      if (chosen_atime || chosen_mtime) return Status::Error(EPERM, "only the owner may set explicit times");
      if (!by_writer) VEXFS_RETURN_IF_ERROR(Perm(r, W_OK, cred));
    }
    auto set_time = [&](bool now_flag, const Timespec& t, __le64* sec, __le32* nsec) {
      const Timespec v = now_flag ? now : t;
      *sec = ToLe64(static_cast<uint64_t>(v.sec));
      *nsec = ToLe32(v.nsec);
    };
    if (set_atime) set_time(req.valid & SetAttrRequest::kAtimeNow, req.atime, &r.raw->i_atime, &r.raw->i_atime_ns);
    if (set_mtime) set_time(req.valid & SetAttrRequest::kMtimeNow, req.mtime, &r.raw->i_mtime, &r.raw->i_mtime_ns);
    if (req.valid & SetAttrRequest::kCtime) {
      r.raw->i_ctime = ToLe64(static_cast<uint64_t>(req.ctime.sec));
      r.raw->i_ctime_ns = ToLe32(req.ctime.nsec);
    } else {
      SetTimes(r, false, false, true);
    }
    out = ToAttr(r);
    return Status::Ok();
  }));
  return out;
}

// -- Extended attributes ------------------------------------------------------

namespace {

// Linux rules: user.* only on regular files and directories; trusted.*
// needs CAP_SYS_ADMIN (root here).
Status XattrAccess(uint8_t index, const InodeRef& r, bool write, const Cred& cred, bool check) {
  if (!check) return Status::Ok();
  if (index == VEXFS_XATTR_INDEX_TRUSTED && cred.uid != 0) {
    return Status::Error(write ? EPERM : ENODATA, "trusted attributes need root");
  }
  if (index == VEXFS_XATTR_INDEX_USER && !r.is_reg() && !r.is_dir()) {
    return Status::Error(write ? EPERM : ENODATA, "user attributes only on files and directories");
  }
  if (write && (index == VEXFS_XATTR_INDEX_SYSTEM || index == VEXFS_XATTR_INDEX_SECURITY) &&
      cred.uid != 0 && cred.uid != Le32(r.raw->i_uid)) {
    return Status::Error(EPERM, "only the owner may set this attribute");
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<uint8_t>> FsImpl::GetXattr(uint64_t ino, std::string_view name, const Cred& cred) {
  uint8_t index;
  std::string suffix;
  VEXFS_RETURN_IF_ERROR(ParseXattrName(name, &index, &suffix));
  // The kernel's question before each write(2): no lock (security.* reads
  // need no permission).
  if (index == VEXFS_XATTR_INDEX_SECURITY && no_sec_xattrs_.Has(ino)) {
    return Status::Error(ENODATA, "no such attribute");
  }
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  VEXFS_RETURN_IF_ERROR(XattrAccess(index, r, false, cred, opts_.check_permissions));
  if (index == VEXFS_XATTR_INDEX_USER) VEXFS_RETURN_IF_ERROR(Perm(r, R_OK, cred));
  if (index == VEXFS_XATTR_INDEX_USER && suffix == kVectorSuffix && r.is_reg() && Le64(r.raw->i_vector) != 0) {
    VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfInode(r));
    VecCollection* c = Coll(coll);
    if (c == nullptr) return Status::Corruption("inode " + std::to_string(ino) + ": vector outside a collection");
    VEXFS_ASSIGN_OR_RETURN(std::vector<float> v, ReadSlot(*c, r));
    std::vector<uint8_t> out(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  XattrStore xs(this, r);
  std::vector<XattrItem> items;
  VEXFS_RETURN_IF_ERROR(xs.Load(&items));
  bool any_security = false;
  for (const auto& it : items) {
    if (it.index == index && it.name == suffix) return xs.ValueOf(it);
    any_security |= it.index == VEXFS_XATTR_INDEX_SECURITY;
  }
  if (!any_security) no_sec_xattrs_.Remember(ino);
  return Status::Error(ENODATA, "no such attribute");
}

Status FsImpl::SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value, int flags,
                        const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return Status::InvalidArgument("bad xattr flags");
  uint8_t index;
  std::string suffix;
  VEXFS_RETURN_IF_ERROR(ParseXattrName(name, &index, &suffix));
  if (value.size() > VEXFS_XATTR_VALUE_MAX) return Status::Error(E2BIG, "attribute value too large");
  const std::vector<uint8_t> v(value.begin(), value.end());
  if (index == VEXFS_XATTR_INDEX_SECURITY) no_sec_xattrs_.Forget(ino);
  return RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    VEXFS_RETURN_IF_ERROR(XattrAccess(index, r, true, cred, opts_.check_permissions));
    if (index == VEXFS_XATTR_INDEX_USER) VEXFS_RETURN_IF_ERROR(Perm(r, W_OK, cred));
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE | VEXFS_INODE_FL_APPEND)) {
      return Status::Error(EPERM, "immutable or append-only file");
    }
    XattrStore xs(this, r);
    if (index == VEXFS_XATTR_INDEX_USER && suffix == kVectorSuffix && !colls_.empty()) {
      VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfInode(r));
      if (coll != 0) {
        if (!r.is_reg()) return Status::InvalidArgument("vectors attach to regular files only");
        VecCollection* c = Coll(coll);
        VEXFS_RETURN_IF_ERROR(ValidateVector(*c, v));
        VEXFS_ASSIGN_OR_RETURN(auto plain, PlainVector(r));
        const bool exists = Le64(r.raw->i_vector) != 0 || plain.has_value();
        if ((flags & XATTR_CREATE) && exists) return Status::Error(EEXIST, "attribute exists");
        if ((flags & XATTR_REPLACE) && !exists) return Status::Error(ENODATA, "no such attribute");
        if (plain) VEXFS_RETURN_IF_ERROR(xs.Set(index, suffix, nullptr, 0));
        std::vector<float> vec(v.size() / 4);
        std::memcpy(vec.data(), v.data(), v.size());
        VEXFS_RETURN_IF_ERROR(PutVector(*c, r, vec));
        SetTimes(r, false, false, true);
        return Status::Ok();
      }
    }
    VEXFS_RETURN_IF_ERROR(xs.Set(index, suffix, &v, flags));
    SetTimes(r, false, false, true);
    return Status::Ok();
  });
}

Result<std::vector<std::string>> FsImpl::ListXattr(uint64_t ino, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
  XattrStore xs(this, r);
  std::vector<XattrItem> items;
  VEXFS_RETURN_IF_ERROR(xs.Load(&items));
  std::vector<std::string> names;
  for (const auto& it : items) {
    if (it.index == VEXFS_XATTR_INDEX_TRUSTED && cred.uid != 0 && opts_.check_permissions) continue;
    names.push_back(XattrFullName(it.index, it.name));
  }
  if (r.is_reg() && Le64(r.raw->i_vector) != 0) names.push_back(VEXFS_VECTOR_XATTR);
  return names;
}

Status FsImpl::RemoveXattr(uint64_t ino, std::string_view name, const Cred& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  VEXFS_RETURN_IF_ERROR(CheckWritable());
  uint8_t index;
  std::string suffix;
  VEXFS_RETURN_IF_ERROR(ParseXattrName(name, &index, &suffix));
  return RunOp([&]() -> Status {
    VEXFS_ASSIGN_OR_RETURN(InodeRef r, GetInode(ino));
    VEXFS_RETURN_IF_ERROR(XattrAccess(index, r, true, cred, opts_.check_permissions));
    if (index == VEXFS_XATTR_INDEX_USER) VEXFS_RETURN_IF_ERROR(Perm(r, W_OK, cred));
    if (Le32(r.raw->i_flags) & (VEXFS_INODE_FL_IMMUTABLE | VEXFS_INODE_FL_APPEND)) {
      return Status::Error(EPERM, "immutable or append-only file");
    }
    if (index == VEXFS_XATTR_INDEX_USER && suffix == kVectorSuffix && r.is_reg() && Le64(r.raw->i_vector) != 0) {
      VEXFS_ASSIGN_OR_RETURN(uint64_t coll, CollOfInode(r));
      VecCollection* c = Coll(coll);
      if (c == nullptr) return Status::Corruption("inode " + std::to_string(ino) + ": vector outside a collection");
      VEXFS_RETURN_IF_ERROR(DropVector(*c, r));
      SetTimes(r, false, false, true);
      return Status::Ok();
    }
    XattrStore xs(this, r);
    VEXFS_RETURN_IF_ERROR(xs.Set(index, suffix, nullptr, 0));
    SetTimes(r, false, false, true);
    return Status::Ok();
  });
}

}  // namespace vexfs::core
