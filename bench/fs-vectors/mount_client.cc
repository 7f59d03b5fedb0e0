#include "mount_client.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

// Retries EINTR; returns 0 or errno.
template <typename F>
int Sys(F f) {
  for (;;) {
    if (f() >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

MountDir::MountDir(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

MountDir::~MountDir() {
  for (int qfd : query_fd_) {
    if (qfd >= 0) close(qfd);
  }
  if (fd_ >= 0) close(fd_);
}

int MountDir::Create(const std::string& path, std::unique_ptr<MountDir>* out) {
  if (mkdir(path.c_str(), 0755) != 0) return errno;
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->reset(new MountDir(path, fd));
  return 0;
}

int MountDir::Open(const std::string& path, std::unique_ptr<MountDir>* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->reset(new MountDir(path, fd));
  return 0;
}

int MountDir::CreateCollection(const CollectionSpec& spec) {
  vexfs_ioc_collection c;
  std::memset(&c, 0, sizeof(c));
  c.vi_size = sizeof(c);
  c.vi_dim = spec.dim;
  c.vi_metric = spec.metric;
  c.vi_element_type = spec.element_type;
  c.vi_index_kind = VEXFS_INDEX_HNSW;
  c.vi_param[0] = spec.M;
  c.vi_param[1] = spec.ef_construction;
  return Sys([&] { return ioctl(fd_, VEXFS_IOC_COLL_CREATE, &c); });
}

int MountDir::Info(CollectionState* out) {
  vexfs_ioc_collection c;
  std::memset(&c, 0, sizeof(c));
  c.vi_size = sizeof(c);
  if (int e = Sys([&] { return ioctl(fd_, VEXFS_IOC_COLL_INFO, &c); })) return e;
  out->state = c.vi_state;
  out->flags = c.vi_flags;
  out->count = c.vi_count;
  out->indexed = c.vi_indexed;
  out->pending = c.vi_pending;
  out->memory_bytes = c.vi_memory_bytes;
  return 0;
}

std::string MountDir::FileName(size_t row) {
  char name[32];
  std::snprintf(name, sizeof(name), "v%07zu", row);
  return name;
}

int64_t MountDir::RowOf(std::string_view name) {
  if (name.size() != 8 || name[0] != 'v') return -1;
  int64_t row = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    row = row * 10 + (name[i] - '0');
  }
  return row;
}

StoreResult MountDir::StoreVectors(const engine::FloatMatrix& base, size_t threads,
                                   StoreMethod method) {
  StoreResult res;
  res.ino.assign(base.rows, 0);
  threads = std::max<size_t>(1, std::min(threads, base.rows));
  std::mutex mu;
  std::atomic<bool> failed{false};
  auto fail = [&](int err, std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    if (res.err == 0) {
      res.err = err;
      res.what = std::move(what);
    }
    failed = true;
  };
  auto worker = [&](size_t begin, size_t end) {
    std::unique_ptr<vexfs_ioc_put> put;
    if (method == StoreMethod::kIoctlPut) {
      put = std::make_unique<vexfs_ioc_put>();
      std::memset(put.get(), 0, sizeof(*put));
    }
    const size_t bytes = base.cols * sizeof(float);
    for (size_t i = begin; i < end && !failed; ++i) {
      const std::string name = FileName(i);
      const int fd = openat(fd_, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return fail(errno, "create " + name);
      int e = 0;
      const float* v = base.data.data() + i * base.cols;
      if (method == StoreMethod::kSetxattr) {
        // The ABI's byte order is little-endian; this benchmark only runs on
        // little-endian hosts (x86-64, arm64), so the row is sent as is.
        e = Sys([&] { return fsetxattr(fd, VEXFS_VECTOR_XATTR, v, bytes, 0); });
      } else {
        put->vp_size = sizeof(*put);
        put->vp_dim = static_cast<uint32_t>(base.cols);
        std::memcpy(put->vp_data, v, bytes);
        e = Sys([&] { return ioctl(fd, VEXFS_IOC_PUT, put.get()); });
      }
      struct stat st {};
      if (e == 0 && fstat(fd, &st) != 0) e = errno;
      res.ino[i] = st.st_ino;
      if (close(fd) != 0 && e == 0) e = errno;
      if (e != 0) {
        return fail(e, (method == StoreMethod::kSetxattr ? "setxattr " : "VEXFS_IOC_PUT ") + name);
      }
    }
  };
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back(worker, base.rows * t / threads, base.rows * (t + 1) / threads);
  }
  for (std::thread& t : pool) t.join();
  res.seconds = Since(t0);
  if (res.err != 0) return res;
  if (int e = SyncDir(fd_, &res.sync_seconds)) {
    res.err = e;
    res.what = "syncfs/fsync";
  }
  return res;
}

int SyncDir(int dir_fd, double* seconds) {
  const auto t0 = Clock::now();
  if (int e = Sys([&] { return syncfs(dir_fd); })) return e;
  if (int e = Sys([&] { return fsync(dir_fd); })) return e;
  *seconds = Since(t0);
  return 0;
}

int MountDir::Search(const float* query, uint32_t dim, uint32_t k, uint32_t ef,
                     std::vector<uint64_t>* inos, std::vector<std::string>* paths) {
  if (!search_) search_ = std::make_unique<vexfs_ioc_search>();
  vexfs_ioc_search* s = search_.get();
  std::memset(s, 0, offsetof(vexfs_ioc_search, sq_buf));
  const size_t bytes = size_t{dim} * sizeof(float);
  if (bytes > sizeof(s->sq_buf)) return E2BIG;
  s->sq_size = sizeof(*s);
  s->sq_k = k;
  s->sq_dim = dim;
  s->sq_nq = 1;
  s->sq_effort = ef;
  std::memcpy(s->sq_buf, query, bytes);  // no filter: the floats start at 0
  if (int e = Sys([&] { return ioctl(fd_, VEXFS_IOC_SEARCH, s); })) return e;
  if (s->sq_bytes > sizeof(s->sq_buf)) return EPROTO;
  std::vector<std::vector<uint64_t>> i1(1);
  std::vector<std::vector<std::string>> p1(1);
  i1[0].swap(*inos);
  p1[0].swap(*paths);
  const int e = ParseHits(s->sq_buf, s->sq_bytes, s->sq_returned, 1, &i1, &p1);
  i1[0].swap(*inos);
  p1[0].swap(*paths);
  return e;
}

int MountDir::ParseHits(const uint8_t* buf, uint32_t bytes, uint32_t count, uint32_t nq,
                        std::vector<std::vector<uint64_t>>* inos,
                        std::vector<std::vector<std::string>>* paths) {
  size_t off = 0;
  for (uint32_t r = 0; r < count; ++r) {
    if (off + sizeof(vexfs_search_hit) > bytes) return EPROTO;
    vexfs_search_hit h;
    std::memcpy(&h, buf + off, sizeof(h));
    const uint32_t len = vexfs_search_hit_bytes(&h);
    if (off + len > bytes || h.vh_query >= nq) return EPROTO;
    (*inos)[h.vh_query].push_back(h.vh_ino);
    (*paths)[h.vh_query].emplace_back(reinterpret_cast<const char*>(buf + off + sizeof(h)),
                                      h.vh_path_len);
    off += len;
  }
  return 0;
}

int MountDir::SearchBatch(const float* queries, uint32_t nq, uint32_t dim, uint32_t k,
                          uint32_t ef, std::vector<std::vector<uint64_t>>* inos,
                          std::vector<std::vector<std::string>>* paths) {
  if (!stage_) stage_ = std::make_unique<vexfs_ioc_stage>();
  if (!search_) search_ = std::make_unique<vexfs_ioc_search>();
  if (!results_) results_ = std::make_unique<vexfs_ioc_results>();
  const size_t total = size_t{nq} * dim;
  if (total > VEXFS_STAGE_MAX_FLOATS || nq > VEXFS_SEARCH_MAX_NQ) return E2BIG;
  for (size_t off = 0; off < total; off += VEXFS_IOC_INLINE_FLOATS) {
    const size_t count = std::min<size_t>(VEXFS_IOC_INLINE_FLOATS, total - off);
    vexfs_ioc_stage* st = stage_.get();
    std::memset(st, 0, offsetof(vexfs_ioc_stage, vs_data));
    st->vs_size = sizeof(*st);
    st->vs_offset = static_cast<uint32_t>(off);
    st->vs_count = static_cast<uint32_t>(count);
    std::memcpy(st->vs_data, queries + off, count * sizeof(float));
    if (int e = Sys([&] { return ioctl(fd_, VEXFS_IOC_STAGE, st); })) return e;
  }
  vexfs_ioc_search* s = search_.get();
  std::memset(s, 0, offsetof(vexfs_ioc_search, sq_buf));
  s->sq_size = sizeof(*s);
  s->sq_flags = VEXFS_SEARCH_STAGED;
  s->sq_k = k;
  s->sq_dim = dim;
  s->sq_nq = nq;
  s->sq_effort = ef;
  if (int e = Sys([&] { return ioctl(fd_, VEXFS_IOC_SEARCH, s); })) return e;
  if (s->sq_bytes > sizeof(s->sq_buf) || s->sq_returned > s->sq_total) return EPROTO;
  if (int e = ParseHits(s->sq_buf, s->sq_bytes, s->sq_returned, nq, inos, paths)) return e;
  uint32_t have = s->sq_returned;
  const uint32_t want = s->sq_total;
  while (have < want) {
    vexfs_ioc_results* r = results_.get();
    std::memset(r, 0, offsetof(vexfs_ioc_results, vr_buf));
    r->vr_size = sizeof(*r);
    r->vr_first = have;
    if (int e = Sys([&] { return ioctl(fd_, VEXFS_IOC_RESULTS, r); })) return e;
    if (r->vr_returned == 0 || r->vr_bytes > sizeof(r->vr_buf)) return EPROTO;
    if (int e = ParseHits(r->vr_buf, r->vr_bytes, r->vr_returned, nq, inos, paths)) return e;
    have += r->vr_returned;
  }
  return 0;
}

int MountDir::QueryFileBatch(const float* queries, uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef,
                             std::vector<std::vector<uint64_t>>* inos,
                             std::vector<std::vector<std::string>>* paths, QueryFileTimes* times,
                             uint32_t threads) {
  if (int e = QueryFileSend(0, queries, nq, dim, k, ef, times, threads)) return e;
  return QueryFileReceive(0, nq, k, inos, paths, times);
}

int MountDir::QueryFileSend(int slot, const float* queries, uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef,
                            QueryFileTimes* times, uint32_t threads) {
  const auto t0 = Clock::now();
  if (slot < 0 || slot >= kQuerySlots) return EINVAL;
  int& fd = query_fd_[slot];
  if (fd < 0) {
    fd = openat(fd_, VEXFS_QUERY_FILE, O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno;
  }
  vexfs_query_req h{};
  h.qq_magic = VEXFS_QUERY_REQ_MAGIC;
  h.qq_size = sizeof(h);
  h.qq_k = k;
  h.qq_dim = dim;
  h.qq_nq = nq;
  h.qq_effort = ef;
  h.qq_threads = threads;
  h.qq_flags = query_flags_;
  const size_t floats = size_t{nq} * dim * sizeof(float);
  // No filter: the floats follow the header. One writev(2), one FUSE
  // WRITE: the queries go from the caller's rows, not copied behind the
  // header first.
  iovec iov[2] = {{&h, sizeof(h)}, {const_cast<float*>(queries), floats}};
  const auto t1 = Clock::now();
  const ssize_t w = writev(fd, iov, 2);
  if (w < 0) return errno;
  if (times != nullptr) {
    times->build += std::chrono::duration<double>(t1 - t0).count();
    times->write += Since(t1);
  }
  if (static_cast<size_t>(w) != sizeof(h) + floats) return EIO;
  return 0;
}

int MountDir::QueryFileReceive(int slot, uint32_t nq, uint32_t k, std::vector<std::vector<uint64_t>>* inos,
                               std::vector<std::vector<std::string>>* paths, QueryFileTimes* times) {
  if (slot < 0 || slot >= kQuerySlots || query_fd_[slot] < 0) return EINVAL;
  const int fd = query_fd_[slot];
  std::vector<uint8_t>& answer = answer_[slot];
  const auto t2 = Clock::now();
  // Room for k records of a short path per query; read on if longer.
  answer.resize(sizeof(vexfs_query_ans) + size_t{nq} * k * 32 + 4096);
  size_t got = 0;
  size_t want = sizeof(vexfs_query_ans);
  while (got < want) {
    if (answer.size() < want) answer.resize(want);
    const ssize_t r = read(fd, answer.data() + got, answer.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EPROTO;  // end of file before the whole answer
    got += static_cast<size_t>(r);
    if (got >= sizeof(vexfs_query_ans)) {
      vexfs_query_ans a;
      std::memcpy(&a, answer.data(), sizeof(a));
      if (a.qa_magic != VEXFS_QUERY_ANS_MAGIC || a.qa_size != sizeof(a)) return EPROTO;
      want = sizeof(a) + a.qa_bytes;
    }
  }
  const auto t3 = Clock::now();
  vexfs_query_ans a;
  std::memcpy(&a, answer.data(), sizeof(a));
  if (a.qa_errno != 0) return static_cast<int>(a.qa_errno);
  if (a.qa_nq != nq || got != want) return EPROTO;
  const int e = ParseHits(answer.data() + sizeof(a), a.qa_bytes, a.qa_total, nq, inos, paths);
  if (times != nullptr) {
    times->read += std::chrono::duration<double>(t3 - t2).count();
    times->parse += Since(t3);
  }
  return e;
}

}  // namespace vexfs::bench
