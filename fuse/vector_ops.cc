// ioctls and the query file of the vector layer over FUSE. See
// vector_ops.h, include/uapi/vexfs/vexfs_ioctl.h and docs/ioctl.md.
#include "fuse/vector_ops.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "fuse/vexfs_fuse.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexfs::fusefs {
namespace {

constexpr size_t kMaxRequest = 64u << 20;

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }

// Search results are filtered by the caller's permissions whatever the
// mount's permission mode, so supplementary groups are always fetched.
Cred FullCred(fuse_req_t req) { return RequestCred(req, true); }

struct stat QueryStat(uint64_t ino) {
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = S_IFREG | 0666;
  st.st_nlink = 1;
  st.st_blksize = 4096;
  return st;
}

CollectionConfig ConfigFrom(const vexfs_ioc_collection& in) {
  CollectionConfig c;
  c.dim = in.vi_dim;
  c.metric = in.vi_metric;
  c.element_type = in.vi_element_type;
  c.index_kind = in.vi_index_kind;
  for (int i = 0; i < 4; i++) c.params[i] = in.vi_param[i];
  return c;
}

bool AllZero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

void EncodeHits(const std::vector<SearchHit>& hits, OpenFile* st) {
  st->results.clear();
  st->offsets.clear();
  for (const auto& h : hits) {
    vexfs_search_hit rec{};
    rec.vh_ino = h.ino;
    rec.vh_distance = h.distance;
    rec.vh_query = static_cast<uint16_t>(h.query);
    rec.vh_path_len = static_cast<uint16_t>(std::min<size_t>(h.path.size(), 0xffff));
    const size_t start = st->results.size();
    st->offsets.push_back(static_cast<uint32_t>(start));
    st->results.resize(start + vexfs_search_hit_bytes(&rec), 0);
    std::memcpy(st->results.data() + start, &rec, sizeof(rec));
    std::memcpy(st->results.data() + start + sizeof(rec), h.path.data(), rec.vh_path_len);
  }
  st->have_results = true;
}

// Copies records [first, ...) that fit into `buf`; returns (count, bytes).
std::pair<uint32_t, uint32_t> PageOut(const OpenFile& st, uint32_t first, uint8_t* buf, size_t cap) {
  uint32_t n = 0;
  size_t bytes = 0;
  for (size_t i = first; i < st.offsets.size(); i++) {
    const size_t end = i + 1 < st.offsets.size() ? st.offsets[i + 1] : st.results.size();
    const size_t len = end - st.offsets[i];
    if (bytes + len > cap) break;
    std::memcpy(buf + bytes, st.results.data() + st.offsets[i], len);
    bytes += len;
    n++;
  }
  return {n, static_cast<uint32_t>(bytes)};
}

// The names of a VEXFS_IOC_IMPORT: `count` NUL-terminated single-component
// names filling exactly `len` bytes, each valid and distinct.
bool SplitImportNames(const char* buf, size_t len, size_t count, std::vector<std::string_view>* names) {
  std::unordered_set<std::string_view> seen;
  size_t pos = 0;
  while (pos < len) {
    const void* nul = std::memchr(buf + pos, '\0', len - pos);
    if (nul == nullptr) return false;
    const std::string_view n(buf + pos, static_cast<const char*>(nul) - (buf + pos));
    if (n.empty() || n.size() > VEXFS_NAME_MAX || n == "." || n == ".." || n == VEXFS_QUERY_FILE ||
        n.find('/') != std::string_view::npos || !seen.insert(n).second) {
      return false;
    }
    names->push_back(n);
    if (names->size() > count) return false;
    pos += n.size() + 1;
  }
  return names->size() == count;
}

// The kernel may hold negative dentries for names VEXFS_IOC_IMPORT just
// created. One invalidation at a time, so a worker blocked on a directory
// lock held by a request in flight never starves the pool that must answer
// it.
void InvalidateCreated(FuseContext* ctx, uint64_t dir, const std::vector<std::string_view>& created) {
  if (ctx->session == nullptr || created.empty()) return;
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  for (std::string_view n : created) fuse_lowlevel_notify_inval_entry(ctx->session, dir, n.data(), n.size());
  fuse_lowlevel_notify_inval_inode(ctx->session, dir, -1, 0);
}

int DoImport(fuse_req_t req, fuse_ino_t dir, const Attr& dattr, const vexfs_ioc_import& in, OpenFile* st,
             vexfs_ioc_import* out) {
  FuseContext* ctx = Ctx(req);
  if (in.vm_size != sizeof(vexfs_ioc_import) || (in.vm_flags & ~VEXFS_IMPORT_EXCL) != 0 || in.vm_done != 0 ||
      in.vm_error != 0 || (in.vm_mode & ~07777u) != 0 || in.vm_names_len > VEXFS_IMPORT_NAMES) {
    return EINVAL;
  }
  if (st == nullptr) return EBADF;
  Filesystem* fs = ctx->fs;
  Result<uint64_t> coll = fs->CollectionOf(dir);
  if (!coll.ok()) return coll.status().err();
  if (*coll == 0) return ENOTSUP;
  Result<CollectionConfig> config = fs->GetCollection(*coll);
  if (!config.ok()) return config.status().err();
  const size_t dim = config->dim;
  if (in.vm_count == 0 || in.vm_dim != dim || size_t{in.vm_count} * dim > VEXFS_STAGE_MAX_FLOATS ||
      st->staged.size() != size_t{in.vm_count} * dim) {
    return EINVAL;
  }
  std::vector<std::string_view> names;
  if (!SplitImportNames(in.vm_names, in.vm_names_len, in.vm_count, &names)) return EINVAL;
  // Every vector is checked before anything changes.
  const auto* rows = reinterpret_cast<const uint8_t*>(st->staged.data());
  for (size_t i = 0; i < in.vm_count; i++) {
    const std::span<const uint8_t> row(rows + i * dim * sizeof(float), dim * sizeof(float));
    if (!CheckVector(config->dim, config->metric, row).ok()) return EINVAL;
  }
  if (ctx->read_only) return EROFS;
  const Cred cred = FullCred(req);
  if (!PermissionAllows(dattr, W_OK | X_OK, cred)) return EACCES;

  std::vector<std::string_view> created;
  uint32_t done = 0;
  int error = 0;
  for (; done < in.vm_count; done++) {
    const std::string_view name = names[done];
    Result<Attr> a = fs->Lookup(dir, name, Cred::Root());
    if (a.ok()) {
      if (in.vm_flags & VEXFS_IMPORT_EXCL) {
        error = EEXIST;
      } else if (S_ISDIR(a->mode)) {
        error = EISDIR;
      } else if (!S_ISREG(a->mode)) {
        error = EINVAL;
      } else if (!PermissionAllows(*a, W_OK, cred)) {
        error = EACCES;
      }
    } else if (a.status().err() == ENOENT) {
      a = fs->Mknod(dir, name, S_IFREG | in.vm_mode, 0, cred);
      if (a.ok()) created.push_back(name);
    }
    if (error == 0 && !a.ok()) error = a.status().err();
    if (error != 0) break;
    const std::span<const uint8_t> row(rows + size_t{done} * dim * sizeof(float), dim * sizeof(float));
    error = fs->SetXattr(a->ino, VEXFS_VECTOR_XATTR, row, 0, Cred::Root()).err();
    if (error != 0) break;
  }
  InvalidateCreated(ctx, dir, created);
  *out = in;
  out->vm_done = done;
  out->vm_error = static_cast<uint32_t>(error);
  return 0;
}

int DoSearch(fuse_req_t req, fuse_ino_t ino, const vexfs_ioc_search& in, OpenFile* st, vexfs_ioc_search* out) {
  Collections* vx = Ctx(req)->vectors;
  if (in.sq_size != sizeof(vexfs_ioc_search)) return EINVAL;
  if (in.sq_flags & ~(VEXFS_SEARCH_STAGED | VEXFS_SEARCH_RANGE)) return EINVAL;
  if (!AllZero(in.sq_reserved, sizeof(in.sq_reserved))) return EINVAL;
  if (in.sq_filter_len > VEXFS_FILTER_MAX) return EINVAL;
  if (in.sq_nq == 0 || in.sq_nq > VEXFS_SEARCH_MAX_NQ || in.sq_dim == 0 || in.sq_dim > VEXFS_VECTOR_MAX_DIM) {
    return EINVAL;
  }
  if (in.sq_k == 0 || in.sq_k > VEXFS_SEARCH_MAX_K) return EINVAL;
  SearchRequest r;
  r.dim = in.sq_dim;
  r.nq = in.sq_nq;
  r.k = in.sq_k;
  r.effort = in.sq_effort;
  if (in.sq_flags & VEXFS_SEARCH_RANGE) r.max_distance = in.sq_max_distance;
  r.filter.assign(reinterpret_cast<const char*>(in.sq_buf), in.sq_filter_len);
  const size_t nfloats = size_t{r.nq} * r.dim;
  if (in.sq_flags & VEXFS_SEARCH_STAGED) {
    if (st == nullptr || st->staged.size() != nfloats) return EINVAL;
    r.queries = st->staged;
  } else {
    const size_t off = (in.sq_filter_len + 3u) & ~3u;
    if (off + nfloats * 4 > VEXFS_SEARCH_BUF) return EINVAL;
    r.queries.resize(nfloats);
    std::memcpy(r.queries.data(), in.sq_buf + off, nfloats * 4);
  }
  Result<std::vector<SearchHit>> hits = vx->Search(ino, r, FullCred(req));
  if (!hits.ok()) return hits.status().err();
  OpenFile local;
  OpenFile* dst = st != nullptr ? st : &local;
  EncodeHits(*hits, dst);
  std::memset(out, 0, offsetof(vexfs_ioc_search, sq_buf));
  out->sq_size = sizeof(vexfs_ioc_search);
  out->sq_flags = in.sq_flags;
  out->sq_k = in.sq_k;
  out->sq_dim = in.sq_dim;
  out->sq_nq = in.sq_nq;
  out->sq_effort = in.sq_effort;
  out->sq_max_distance = in.sq_max_distance;
  out->sq_filter_len = in.sq_filter_len;
  out->sq_total = static_cast<uint32_t>(hits->size());
  auto [n, bytes] = PageOut(*dst, 0, out->sq_buf, VEXFS_SEARCH_BUF);
  out->sq_returned = n;
  out->sq_bytes = bytes;
  return 0;
}

nlohmann::json QueryAnswer(fuse_req_t req, uint64_t dir, const std::string& text) {
  auto fail = [](int err, const std::string& msg) {
    return nlohmann::json{{"error", msg}, {"errno", err}};
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(EINVAL, "the request must be one JSON object, e.g. {\"vector\": [0.1, 0.2], \"k\": 10}");
  }
  SearchRequest r;
  bool batch = false;
  std::vector<const nlohmann::json*> vecs;
  if (j.contains("vector") && j.contains("vectors")) return fail(EINVAL, "give either \"vector\" or \"vectors\"");
  if (j.contains("vector")) {
    vecs.push_back(&j["vector"]);
  } else if (j.contains("vectors") && j["vectors"].is_array()) {
    batch = true;
    for (const auto& v : j["vectors"]) vecs.push_back(&v);
  } else {
    return fail(EINVAL, "missing \"vector\" (an array of numbers) or \"vectors\" (an array of them)");
  }
  if (vecs.empty() || vecs.size() > VEXFS_SEARCH_MAX_NQ) return fail(EINVAL, "between 1 and 1024 query vectors");
  for (const auto* v : vecs) {
    if (!v->is_array() || v->empty()) return fail(EINVAL, "a query vector must be a non-empty array of numbers");
    if (r.dim == 0) r.dim = v->size();
    if (v->size() != r.dim) return fail(EINVAL, "all query vectors must have the same length");
    for (const auto& x : *v) {
      if (!x.is_number()) return fail(EINVAL, "a query vector must contain only numbers");
      r.queries.push_back(x.get<float>());
    }
  }
  r.nq = vecs.size();
  for (const auto& [key, val] : j.items()) {
    if (key == "vector" || key == "vectors") continue;
    if (key == "k") {
      if (!val.is_number_integer() || val.get<int64_t>() < 1 || val.get<int64_t>() > VEXFS_SEARCH_MAX_K) {
        return fail(EINVAL, "\"k\" must be an integer 1..10000");
      }
      r.k = val.get<size_t>();
    } else if (key == "ef") {
      if (!val.is_number_integer() || val.get<int64_t>() < 0 || val.get<int64_t>() > 100000) {
        return fail(EINVAL, "\"ef\" must be an integer 0..100000");
      }
      r.effort = val.get<size_t>();
    } else if (key == "filter") {
      if (!val.is_string()) return fail(EINVAL, "\"filter\" must be a string");
      r.filter = val.get<std::string>();
    } else if (key == "max_distance") {
      if (!val.is_number()) return fail(EINVAL, "\"max_distance\" must be a number");
      r.max_distance = val.get<float>();
    } else {
      return fail(EINVAL, "unknown field \"" + key + "\" (known: vector, vectors, k, ef, filter, max_distance)");
    }
  }
  Result<std::vector<SearchHit>> hits = Ctx(req)->vectors->Search(dir, r, FullCred(req));
  if (!hits.ok()) return fail(hits.status().err(), hits.status().message());
  std::vector<nlohmann::json> per(r.nq, nlohmann::json::array());
  for (const auto& h : *hits) {
    per[h.query].push_back(nlohmann::json{{"path", h.path}, {"distance", h.distance}});
  }
  if (!batch) return nlohmann::json{{"results", per[0]}};
  return nlohmann::json{{"results", per}};
}

}  // namespace

OpenFile* OpenFiles::Open(fuse_file_info* fi) {
  auto st = std::make_unique<OpenFile>();
  OpenFile* raw = st.get();
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_.emplace(raw, std::move(st));
  }
  fi->fh = reinterpret_cast<uintptr_t>(raw);
  return raw;
}

void OpenFiles::Release(fuse_file_info* fi) {
  OpenFile* raw = StateOf(fi);
  if (raw == nullptr) return;
  std::unique_ptr<OpenFile> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(raw);
    if (it == files_.end()) return;
    gone = std::move(it->second);
    files_.erase(it);
  }
  fi->fh = 0;
}

int QueryLookup(fuse_req_t req, uint64_t parent, fuse_entry_param* e) {
  if (Ctx(req)->vectors == nullptr) return ENOENT;
  Result<uint64_t> coll = Ctx(req)->fs->CollectionOf(parent);
  if (!coll.ok() || *coll == 0) return ENOENT;
  *e = fuse_entry_param{};
  e->ino = parent | kQueryBit;
  e->attr = QueryStat(e->ino);
  e->attr_timeout = 0;
  e->entry_timeout = 0;
  return 0;
}

void QueryGetAttr(fuse_req_t req, uint64_t ino) {
  const struct stat st = QueryStat(ino);
  fuse_reply_attr(req, &st, 0);
}

void QueryOpen(fuse_req_t req, uint64_t, fuse_file_info* fi) {
  Ctx(req)->open_files.Open(fi);
  fi->direct_io = 1;
  fi->nonseekable = 1;
  if (fuse_reply_open(req, fi) != 0) Ctx(req)->open_files.Release(fi);
}

void QueryWrite(fuse_req_t req, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  OpenFile* st = StateOf(fi);
  if (st == nullptr) {
    fuse_reply_err(req, EBADF);
    return;
  }
  std::lock_guard<std::mutex> lock(st->mu);
  if (st->answered) {  // a new request after an answer
    st->request.clear();
    st->answer.clear();
    st->answered = false;
  }
  const size_t n = fuse_buf_size(in);
  if (st->request.size() + n > kMaxRequest) {
    fuse_reply_err(req, EFBIG);
    return;
  }
  const size_t old = st->request.size();
  st->request.resize(old + n);
  fuse_bufvec dst = FUSE_BUFVEC_INIT(n);
  dst.buf[0].mem = st->request.data() + old;
  const ssize_t got = fuse_buf_copy(&dst, in, static_cast<fuse_buf_copy_flags>(0));
  if (got < 0) {
    st->request.resize(old);
    fuse_reply_err(req, static_cast<int>(-got));
    return;
  }
  st->request.resize(old + static_cast<size_t>(got));
  st->write_end = static_cast<uint64_t>(off) + static_cast<uint64_t>(got);
  fuse_reply_write(req, static_cast<size_t>(got));
}

void QueryRead(fuse_req_t req, uint64_t ino, size_t size, off_t off, fuse_file_info* fi) {
  OpenFile* st = StateOf(fi);
  if (st == nullptr) {
    fuse_reply_err(req, EBADF);
    return;
  }
  std::lock_guard<std::mutex> lock(st->mu);
  if (!st->answered) {
    if (st->request.empty()) {
      fuse_reply_buf(req, nullptr, 0);  // nothing asked yet: EOF
      return;
    }
    st->answer = QueryAnswer(req, ino & ~kQueryBit, st->request).dump() + "\n";
    st->answered = true;
  }
  const uint64_t pos = static_cast<uint64_t>(off) > st->write_end ? static_cast<uint64_t>(off) - st->write_end : 0;
  if (pos >= st->answer.size()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  const size_t n = std::min<uint64_t>(size, st->answer.size() - pos);
  fuse_reply_buf(req, st->answer.data() + pos, n);
}

namespace {

// Runs one ioctl; returns an errno, filling `out` with the bytes to copy back.
int DoIoctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, fuse_file_info* fi, const void* in_buf,
            size_t in_bufsz, std::vector<uint8_t>* out) {
  FuseContext* ctx = Ctx(req);
  Collections* vx = ctx->vectors;
  OpenFile* st = StateOf(fi);
  std::unique_lock<std::mutex> st_lock;
  if (st != nullptr) st_lock = std::unique_lock<std::mutex>(st->ioctl_mu);
  auto attr = ctx->fs->GetAttr(ino);
  if (!attr.ok()) return attr.status().err();
  const bool dir = S_ISDIR(attr->mode);
  auto input = [&](void* dst, size_t n) {
    if (in_buf == nullptr || in_bufsz < n) return false;
    std::memcpy(dst, in_buf, n);
    return true;
  };
  switch (cmd) {
    case VEXFS_IOC_COLL_CREATE:
    case VEXFS_IOC_COLL_REINDEX: {
      vexfs_ioc_collection in{};
      if (!input(&in, sizeof(in))) return EINVAL;
      if (in.vi_size != sizeof(in) || in.vi_flags != 0 || in.vi_reserved0 != 0 || in.vi_reserved1 != 0 ||
          in.vi_state != 0 || !AllZero(in.vi_reserved, sizeof(in.vi_reserved))) {
        return EINVAL;
      }
      if (!dir) return ENOTDIR;
      if (ctx->read_only) return EROFS;
      const Cred cred = FullCred(req);
      Status s = cmd == VEXFS_IOC_COLL_CREATE ? vx->Create(ino, ConfigFrom(in), cred)
                                              : vx->Reindex(ino, ConfigFrom(in), cred);
      return s.err();
    }
    case VEXFS_IOC_COLL_INFO: {
      if (!dir) return ENOTDIR;
      Result<CollectionInfo> info = vx->Info(ino);
      if (!info.ok()) return info.status().err();
      vexfs_ioc_collection o{};
      o.vi_size = sizeof(o);
      o.vi_flags = (info->loaded ? VEXFS_COLL_LOADED : 0u) | (info->rebuilt ? VEXFS_COLL_REBUILT : 0u);
      o.vi_dim = info->config.dim;
      o.vi_metric = info->config.metric;
      o.vi_element_type = info->config.element_type;
      o.vi_index_kind = info->config.index_kind;
      for (int i = 0; i < 4; i++) o.vi_param[i] = info->config.params[i];
      o.vi_state = info->pending > 0 ? VEXFS_COLL_STATE_INDEXING : VEXFS_COLL_STATE_READY;
      o.vi_count = info->count;
      o.vi_indexed = info->indexed;
      o.vi_pending = info->pending;
      o.vi_memory_bytes = info->memory_bytes;
      o.vi_dir_ino = info->dir;
      out->assign(reinterpret_cast<uint8_t*>(&o), reinterpret_cast<uint8_t*>(&o) + sizeof(o));
      return 0;
    }
    case VEXFS_IOC_COLL_DROP: {
      if (!dir) return ENOTDIR;
      if (ctx->read_only) return EROFS;
      return vx->Drop(ino, FullCred(req)).err();
    }
    case VEXFS_IOC_STAGE: {
      if (st == nullptr) return EBADF;
      auto in = std::make_unique<vexfs_ioc_stage>();
      if (!input(in.get(), sizeof(*in))) return EINVAL;
      if (in->vs_size != sizeof(*in) || in->vs_reserved != 0 || in->vs_count == 0 ||
          in->vs_count > VEXFS_IOC_INLINE_FLOATS) {
        return EINVAL;
      }
      if (in->vs_offset == 0) st->staged.clear();
      if (in->vs_offset != st->staged.size()) return EINVAL;  // chunks arrive in order
      if (st->staged.size() + in->vs_count > VEXFS_STAGE_MAX_FLOATS) return E2BIG;
      st->staged.insert(st->staged.end(), in->vs_data, in->vs_data + in->vs_count);
      return 0;
    }
    case VEXFS_IOC_PUT: {
      auto in = std::make_unique<vexfs_ioc_put>();
      if (!input(in.get(), sizeof(*in))) return EINVAL;
      if (in->vp_size != sizeof(*in) || in->vp_reserved != 0 ||
          (in->vp_flags & ~(VEXFS_PUT_STAGED | VEXFS_PUT_REMOVE)) != 0) {
        return EINVAL;
      }
      if (dir) return EISDIR;
      if (!S_ISREG(attr->mode)) return EINVAL;
      // Write permission: checked at open for a descriptor open for
      // writing, here otherwise (whatever the mount's permission mode).
      if (ctx->read_only) return EROFS;
      const Cred cred = FullCred(req);
      if ((fi == nullptr || (fi->flags & O_ACCMODE) == O_RDONLY) && !PermissionAllows(*attr, W_OK, cred)) {
        return EACCES;
      }
      if (in->vp_flags & VEXFS_PUT_REMOVE) {
        if (in->vp_flags & VEXFS_PUT_STAGED) return EINVAL;
        return ctx->fs->RemoveXattr(ino, VEXFS_VECTOR_XATTR, Cred::Root()).err();
      }
      if (in->vp_dim == 0 || in->vp_dim > VEXFS_VECTOR_MAX_DIM) return EINVAL;
      std::vector<uint8_t> bytes(size_t{in->vp_dim} * 4);
      if (in->vp_flags & VEXFS_PUT_STAGED) {
        if (st == nullptr || st->staged.size() != in->vp_dim) return EINVAL;
        std::memcpy(bytes.data(), st->staged.data(), bytes.size());
      } else {
        if (in->vp_dim > VEXFS_IOC_INLINE_FLOATS) return EINVAL;
        std::memcpy(bytes.data(), in->vp_data, bytes.size());
      }
      Result<uint64_t> coll = ctx->fs->CollectionOf(ino);
      if (!coll.ok()) return coll.status().err();
      if (*coll == 0) return ENOTSUP;
      return ctx->fs->SetXattr(ino, VEXFS_VECTOR_XATTR, bytes, 0, Cred::Root()).err();
    }
    case VEXFS_IOC_SEARCH: {
      if (!dir) return ENOTDIR;
      // Not zeroed first: input() fills all of it or fails.
      auto in = std::make_unique_for_overwrite<vexfs_ioc_search>();
      if (!input(in.get(), sizeof(*in))) return EINVAL;
      // Only the header and the records are copied back: the rest of
      // sq_buf carries nothing (docs/ioctl.md), and a query's reply is
      // then a few hundred bytes instead of 16 KiB each way.
      std::unique_ptr<vexfs_ioc_search> o(new vexfs_ioc_search);
      const int err = DoSearch(req, ino, *in, st, o.get());
      if (err != 0) return err;
      const auto* b = reinterpret_cast<const uint8_t*>(o.get());
      out->assign(b, b + offsetof(vexfs_ioc_search, sq_buf) + o->sq_bytes);
      return 0;
    }
    case VEXFS_IOC_IMPORT: {
      if (!dir) return ENOTDIR;
      auto in = std::make_unique<vexfs_ioc_import>();
      if (!input(in.get(), sizeof(*in))) return EINVAL;
      auto o = std::make_unique<vexfs_ioc_import>();
      const int err = DoImport(req, ino, *attr, *in, st, o.get());
      if (err != 0) return err;
      out->assign(reinterpret_cast<uint8_t*>(o.get()), reinterpret_cast<uint8_t*>(o.get()) + sizeof(*o));
      return 0;
    }
    case VEXFS_IOC_RESULTS: {
      auto in = std::make_unique<vexfs_ioc_results>();
      if (!input(in.get(), sizeof(*in))) return EINVAL;
      if (in->vr_size != sizeof(*in) || !AllZero(in->vr_reserved, sizeof(in->vr_reserved))) return EINVAL;
      if (st == nullptr || !st->have_results) return ENODATA;
      auto o = std::make_unique<vexfs_ioc_results>();
      o->vr_size = sizeof(*o);
      o->vr_first = in->vr_first;
      o->vr_total = static_cast<uint32_t>(st->offsets.size());
      if (in->vr_first <= st->offsets.size()) {
        auto [n, bytes] = PageOut(*st, in->vr_first, o->vr_buf, VEXFS_SEARCH_BUF);
        o->vr_returned = n;
        o->vr_bytes = bytes;
      } else {
        return EINVAL;
      }
      out->assign(reinterpret_cast<uint8_t*>(o.get()), reinterpret_cast<uint8_t*>(o.get()) + sizeof(*o));
      return 0;
    }
    default:
      return ENOTTY;
  }
}

}  // namespace

void VectorIoctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg, fuse_file_info* fi, unsigned flags,
                 const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
  (void)arg;  // restricted ioctl: the kernel copied the argument for us
  if (flags & FUSE_IOCTL_COMPAT) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  if (Ctx(req)->vectors == nullptr || IsQueryIno(ino)) {
    fuse_reply_err(req, ENOTTY);
    return;
  }
  std::vector<uint8_t> out;
  const int err = DoIoctl(req, ino, cmd, fi, in_buf, in_bufsz, &out);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  if (out.size() > out_bufsz) out.resize(out_bufsz);
  fuse_reply_ioctl(req, 0, out.empty() ? nullptr : out.data(), out.size());
}

}  // namespace vexfs::fusefs
