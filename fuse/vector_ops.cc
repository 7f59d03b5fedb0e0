// ioctls and the query file of the vector layer over FUSE. See
// vector_ops.h, include/uapi/vexfs/vexfs_ioctl.h and docs/ioctl.md.
#include "fuse/vector_ops.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "fuse/vexfs_fuse.h"
#include "vector/query_request.h"
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

// CPUs this process may run on (qq_threads is capped there), at least 1.
size_t UsableCpus() {
  static const size_t n = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return size_t{1};
    return std::max<size_t>(1, static_cast<size_t>(CPU_COUNT(&set)));
  }();
  return n;
}

bool AllZero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

// Appends the records of `hits` (struct vexfs_search_hit and its path) to
// `out`, and the offset of each record to `offsets` unless null.
template <typename Bytes>
void AppendHits(const std::vector<SearchHit>& hits, Bytes* out, std::vector<uint32_t>* offsets) {
  size_t total = out->size();
  for (const auto& h : hits) total += (sizeof(vexfs_search_hit) + std::min<size_t>(h.path.size(), 0xffff) + 7) & ~7u;
  out->reserve(total);
  for (const auto& h : hits) {
    vexfs_search_hit rec{};
    rec.vh_ino = h.ino;
    rec.vh_distance = h.distance;
    rec.vh_query = static_cast<uint16_t>(h.query);
    rec.vh_path_len = static_cast<uint16_t>(std::min<size_t>(h.path.size(), 0xffff));
    const size_t start = out->size();
    if (offsets != nullptr) offsets->push_back(static_cast<uint32_t>(start));
    out->resize(start + vexfs_search_hit_bytes(&rec), 0);
    std::memcpy(out->data() + start, &rec, sizeof(rec));
    std::memcpy(out->data() + start + sizeof(rec), h.path.data(), rec.vh_path_len);
  }
}

void EncodeHits(const std::vector<SearchHit>& hits, OpenFile* st) {
  st->results.clear();
  st->offsets.clear();
  AppendHits(hits, &st->results, &st->offsets);
  st->have_results = true;
}

// Records [first, ...) that fit into `cap` bytes: (count, bytes). They are
// contiguous in st.results from st.offsets[first].
std::pair<uint32_t, uint32_t> PageSpan(const OpenFile& st, uint32_t first, size_t cap) {
  uint32_t n = 0;
  size_t bytes = 0;
  for (size_t i = first; i < st.offsets.size(); i++) {
    const size_t end = i + 1 < st.offsets.size() ? st.offsets[i + 1] : st.results.size();
    const size_t len = end - st.offsets[i];
    if (bytes + len > cap) break;
    bytes += len;
    n++;
  }
  return {n, static_cast<uint32_t>(bytes)};
}

// Copies records [first, ...) that fit into `buf`; returns (count, bytes).
std::pair<uint32_t, uint32_t> PageOut(const OpenFile& st, uint32_t first, uint8_t* buf, size_t cap) {
  const auto [n, bytes] = PageSpan(st, first, cap);
  if (n > 0) std::memcpy(buf, st.results.data() + st.offsets[first], bytes);
  return {n, bytes};
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
    if (!CheckVector(config->dim, config->metric, config->element_type, row).ok()) return EINVAL;
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

// VEXFS_IOC_SEARCH: returns an errno; on success *reply holds the header
// and the first page of records. The 16 KiB argument is read in place, and
// only the header and the records go back (the rest of sq_buf carries
// nothing, docs/ioctl.md): a query's reply is a few hundred bytes, not
// 16 KiB. The caller replies after the descriptor's lock is released: once
// the reply is out, the client may close the descriptor and free its state.
int SearchIoctl(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, unsigned flags, const void* in_buf,
                size_t in_bufsz, std::vector<uint8_t>* reply) {
  OpenFile* st = StateOf(fi);
  std::unique_lock<std::mutex> st_lock;
  if (st != nullptr) st_lock = std::unique_lock<std::mutex>(st->ioctl_mu);
  // A restricted ioctl on a directory carries FUSE_IOCTL_DIR: the type is
  // known without a trip through the filesystem lock.
  if (!(flags & FUSE_IOCTL_DIR)) return ENOTDIR;
  if (in_buf == nullptr || in_bufsz < sizeof(vexfs_ioc_search)) return EINVAL;
  const auto* bytes = static_cast<const uint8_t*>(in_buf);
  vexfs_ioc_search in;  // the header only; sq_buf is read in place
  std::memcpy(&in, bytes, offsetof(vexfs_ioc_search, sq_buf));
  const uint8_t* in_data = bytes + offsetof(vexfs_ioc_search, sq_buf);
  if (in.sq_size != sizeof(vexfs_ioc_search) || (in.sq_flags & ~(VEXFS_SEARCH_STAGED | VEXFS_SEARCH_RANGE)) ||
      !AllZero(in.sq_reserved, sizeof(in.sq_reserved))) {
    return EINVAL;
  }
  thread_local SearchRequest r;
  const int err = SearchFieldsFrom(in.sq_k, in.sq_dim, in.sq_nq, in.sq_effort, in.sq_filter_len,
                                   (in.sq_flags & VEXFS_SEARCH_RANGE) != 0, in.sq_max_distance, &r)
                      .err();
  if (err != 0) return err;
  r.filter.assign(reinterpret_cast<const char*>(in_data), in.sq_filter_len);
  const size_t nfloats = size_t{r.nq} * r.dim;
  const bool staged = (in.sq_flags & VEXFS_SEARCH_STAGED) != 0;
  if (staged) {
    if (st == nullptr || st->staged.size() != nfloats) return EINVAL;
    r.queries.swap(st->staged);  // given back below; ioctl_mu is held
  } else {
    const size_t off = (in.sq_filter_len + 3u) & ~3u;
    if (off + nfloats * 4 > VEXFS_SEARCH_BUF) return EINVAL;
    r.queries.resize(nfloats);
    std::memcpy(r.queries.data(), in_data + off, nfloats * 4);
  }
  Result<std::vector<SearchHit>> hits = Ctx(req)->vectors->Search(ino, r, FullCred(req));
  if (staged) r.queries.swap(st->staged);
  if (!hits.ok()) return hits.status().err();
  OpenFile local;
  OpenFile* dst = st != nullptr ? st : &local;
  EncodeHits(*hits, dst);
  vexfs_ioc_search out;
  std::memset(&out, 0, offsetof(vexfs_ioc_search, sq_buf));
  out.sq_size = sizeof(vexfs_ioc_search);
  out.sq_flags = in.sq_flags;
  out.sq_k = in.sq_k;
  out.sq_dim = in.sq_dim;
  out.sq_nq = in.sq_nq;
  out.sq_effort = in.sq_effort;
  out.sq_max_distance = in.sq_max_distance;
  out.sq_filter_len = in.sq_filter_len;
  out.sq_total = static_cast<uint32_t>(hits->size());
  const auto [n, page] = PageSpan(*dst, 0, VEXFS_SEARCH_BUF);
  out.sq_returned = n;
  out.sq_bytes = page;
  const auto* h = reinterpret_cast<const uint8_t*>(&out);
  reply->assign(h, h + offsetof(vexfs_ioc_search, sq_buf));
  reply->insert(reply->end(), dst->results.begin(), dst->results.begin() + page);
  return 0;
}

// The query file's binary request answered into *answer (struct
// vexfs_query_ans, then records or message): `head` holds its head,
// `floats` its first float_bytes bytes of queries (split by
// BinaryHeadBytes). *floats is lent to the search and given back. Uses
// no fuse_req_t: a search at the write runs after its request is answered.
void BinaryAnswer(Collections* vectors, const Cred& cred, uint64_t dir, const std::string& head,
                  std::vector<float>* floats, size_t float_bytes, std::string* answer) {
  vexfs_query_ans ans{};
  ans.qa_magic = VEXFS_QUERY_ANS_MAGIC;
  ans.qa_size = sizeof(ans);
  answer->assign(sizeof(ans), '\0');
  auto finish = [&] { std::memcpy(answer->data(), &ans, sizeof(ans)); };
  auto fail = [&](int err, std::string_view why) {
    ans.qa_errno = static_cast<uint32_t>(err);
    ans.qa_bytes = static_cast<uint32_t>(why.size());
    answer->append(why);
    finish();
  };
  thread_local SearchRequest r;
  if (Status s = ParseBinaryRequest(head, float_bytes, &r, &ans.qa_nq); !s.ok()) return fail(s.err(), s.message());
  r.threads = std::min(r.threads, UsableCpus());  // more threads than CPUs only queue
  floats->resize(r.nq * r.dim);  // never grows: float_bytes == nq * dim * 4
  r.queries.swap(*floats);
  Result<std::vector<SearchHit>> hits = vectors->Search(dir, r, cred);
  r.queries.swap(*floats);
  if (!hits.ok()) return fail(hits.status().err(), hits.status().message());
  AppendHits(*hits, answer, nullptr);
  ans.qa_total = static_cast<uint32_t>(hits->size());
  ans.qa_bytes = static_cast<uint32_t>(answer->size() - sizeof(ans));
  finish();
}

nlohmann::json QueryAnswer(fuse_req_t req, uint64_t dir, const std::string& text) {
  auto fail = [](int err, const std::string& msg) {
    return nlohmann::json{{"error", msg}, {"errno", err}};
  };
  SearchRequest r;
  bool batch = false;
  if (Status s = ParseJsonRequest(text, &r, &batch); !s.ok()) return fail(s.err(), s.message());
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
  auto st = std::make_shared<OpenFile>();
  OpenFile* raw = st.get();
  raw->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
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
  std::shared_ptr<OpenFile> gone;  // freed here unless a search at the write holds it
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

// The query file's handlers reply after releasing the file's lock: once a
// reply is out, the client may close the file, and the release frees its
// state (and the lock) at once.

namespace {

// The credentials a search at the write filters by: those of the write,
// with the supplementary groups read now, while `req` is live (the search
// runs after the reply, when `req` is gone).
Cred WriterCred(fuse_req_t req) {
  Cred c = FullCred(req);
  if (c.lazy != nullptr) {
    c.groups = c.lazy->load();
    c.lazy.reset();
  }
  return c;
}

// Whether `req` is made with the credentials `writer` (as WriterCred
// took them): uid, gid and, but for root (whose groups no check
// consults), the supplementary groups as a set.
bool SameCred(fuse_req_t req, const Cred& writer) {
  const fuse_ctx* fc = fuse_req_ctx(req);
  if (fc->uid != writer.uid || fc->gid != writer.gid) return false;
  if (fc->uid == 0) return true;
  std::vector<uint32_t> a = WriterCred(req).groups, b = writer.groups;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// The answer's bytes a read of `size` at `off` gets, into *out (nothing
// asked yet, or past the answer: none, end of file). Offsets count from the
// end of the last write. REQUIRES: st.mu held, st.searching false.
void AnswerSlice(const OpenFile& st, off_t off, size_t size, std::string* out) {
  out->clear();
  const uint64_t pos = static_cast<uint64_t>(off) > st.write_end ? static_cast<uint64_t>(off) - st.write_end : 0;
  if (st.answered && pos < st.answer.size()) {
    out->assign(st.answer, pos, std::min<uint64_t>(size, st.answer.size() - pos));
  }
}

// Appends the bytes of `in` to st's request: returns the count or -errno.
// REQUIRES: st->mu held.
ssize_t AppendRequest(OpenFile* st, fuse_bufvec* in) {
  const size_t n = fuse_buf_size(in);
  if (st->request.size() + st->float_bytes + n > kMaxRequest) return -EFBIG;
  const size_t head_before = st->request.size(), floats_before = st->float_bytes;
  size_t done = 0;
  while (done < n) {
    size_t take = n - done;
    void* dst;
    // A JSON request is all text; a binary one keeps its head in `request`
    // and its queries go to `floats`.
    const size_t limit = st->float_bytes == 0 ? BinaryHeadBytes(st->request) : 0;
    const bool head = st->request.size() < limit;
    if (head) {
      take = std::min(take, limit - st->request.size());
      const size_t old = st->request.size();
      st->request.resize(old + take);
      dst = st->request.data() + old;
    } else {
      const size_t floats = (st->float_bytes + take + sizeof(float) - 1) / sizeof(float);
      if (st->floats.size() < floats) st->floats.resize(floats);
      dst = reinterpret_cast<uint8_t*>(st->floats.data()) + st->float_bytes;
    }
    fuse_bufvec out = FUSE_BUFVEC_INIT(take);
    out.buf[0].mem = dst;
    const ssize_t got = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));  // advances `in`
    if (got < 0 || static_cast<size_t>(got) != take) {  // the request stays as it was
      st->request.resize(head_before);
      st->float_bytes = floats_before;
      return got < 0 ? got : -EIO;
    }
    if (!head) st->float_bytes += take;
    done += take;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace

void QueryWrite(fuse_req_t req, uint64_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  OpenFile* st = StateOf(fi);
  if (st == nullptr) {
    fuse_reply_err(req, EBADF);
    return;
  }
  ssize_t got;
  std::shared_ptr<OpenFile> hold;  // set when this write completes a VEXFS_QUERY_AT_WRITE request
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->searching) {
      got = -EBUSY;
    } else {
      if (st->answered) {  // a new request after an answer
        st->request.clear();
        st->float_bytes = 0;
        st->answer.clear();
        st->answered = false;
        st->answered_at_write = false;
      }
      got = AppendRequest(st, in);
      if (got >= 0) st->write_end = static_cast<uint64_t>(off) + static_cast<uint64_t>(got);
      if (got > 0 && SearchAtWrite(st->request, st->float_bytes)) {
        // Everything the search needs from `req` is taken before the
        // reply frees it.
        st->writer = WriterCred(req);
        st->searching = true;
        hold = st->shared_from_this();
      }
    }
  }
  if (got < 0) {
    fuse_reply_err(req, static_cast<int>(-got));
    return;
  }
  if (hold == nullptr) {
    fuse_reply_write(req, static_cast<size_t>(got));
    return;
  }
  Collections* vectors = Ctx(req)->vectors;
  fuse_reply_write(req, static_cast<size_t>(got));  // `req` and `fi` are gone from here on
  // `searching` gives request, floats and answer to this thread: no
  // write changes them and no read looks at them until it is cleared.
  BinaryAnswer(vectors, hold->writer, ino & ~kQueryBit, hold->request, &hold->floats, hold->float_bytes,
               &hold->answer);
  // The reads parked meanwhile are answered from here, each with the bytes
  // at its own offset, copied out under the lock as QueryRead does.
  thread_local std::vector<OpenFile::ParkedRead> parked;
  thread_local std::vector<std::string> slices;
  {
    std::lock_guard<std::mutex> lock(hold->mu);
    hold->searching = false;
    hold->answered = true;
    hold->answered_at_write = true;
    parked.swap(hold->parked);
    if (slices.size() < parked.size()) slices.resize(parked.size());
    for (size_t i = 0; i < parked.size(); i++) AnswerSlice(*hold, parked[i].off, parked[i].size, &slices[i]);
  }
  for (size_t i = 0; i < parked.size(); i++) fuse_reply_buf(parked[i].req, slices[i].data(), slices[i].size());
  parked.clear();
}

void QueryRead(fuse_req_t req, uint64_t ino, size_t size, off_t off, fuse_file_info* fi) {
  OpenFile* st = StateOf(fi);
  if (st == nullptr) {
    fuse_reply_err(req, EBADF);
    return;
  }
  thread_local std::string slice;  // the bytes replied, copied out under the lock
  slice.clear();
  int err = 0;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    // An answer searched at the write, running or done, is for the
    // writer's credentials only.
    if ((st->searching || st->answered_at_write) && !SameCred(req, st->writer)) {
      err = EACCES;
    } else if (st->searching) {
      st->parked.push_back({req, size, off});  // answered by the search's thread (QueryWrite)
      return;
    } else if (!st->answered && !st->request.empty()) {
      uint32_t magic = 0;
      if (st->request.size() >= sizeof(magic)) std::memcpy(&magic, st->request.data(), sizeof(magic));
      if (magic == VEXFS_QUERY_REQ_MAGIC) {
        BinaryAnswer(Ctx(req)->vectors, FullCred(req), ino & ~kQueryBit, st->request, &st->floats,
                     st->float_bytes, &st->answer);
      } else {
        st->answer = QueryAnswer(req, ino & ~kQueryBit, st->request).dump() + "\n";
      }
      st->answered = true;
    }
    if (err == 0) AnswerSlice(*st, off, size, &slice);
  }
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, slice.data(), slice.size());
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
  // STAGE and RESULTS touch only the descriptor's state; the rest needs
  // the inode's type.
  std::optional<Attr> attr;
  bool dir = false;
  if (cmd != VEXFS_IOC_STAGE && cmd != VEXFS_IOC_RESULTS) {
    Result<Attr> a = ctx->fs->GetAttr(ino);
    if (!a.ok()) return a.status().err();
    attr = *a;
    dir = S_ISDIR(attr->mode);
  }
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
      // Write permission on the file, as setxattr(2) needs, whatever the
      // descriptor's mode and the mount's permission mode. (libfuse gives
      // an ioctl no open flags: fi->flags is always 0.)
      if (ctx->read_only) return EROFS;
      const Cred cred = FullCred(req);
      if (!PermissionAllows(*attr, W_OK, cred)) return EACCES;
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
  // A search's reply buffer is reused by the thread: no allocation per query.
  thread_local std::vector<uint8_t> search_out;
  std::vector<uint8_t> other_out;
  std::vector<uint8_t>& out = cmd == VEXFS_IOC_SEARCH ? search_out : other_out;
  const int err = cmd == VEXFS_IOC_SEARCH ? SearchIoctl(req, ino, fi, flags, in_buf, in_bufsz, &out)
                                          : DoIoctl(req, ino, cmd, fi, in_buf, in_bufsz, &out);
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  if (out.size() > out_bufsz) out.resize(out_bufsz);
  fuse_reply_ioctl(req, 0, out.empty() ? nullptr : out.data(), out.size());
}

}  // namespace vexfs::fusefs
