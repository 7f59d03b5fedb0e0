// vexctl put / search on a mounted volume: VEXFS_IOC_PUT, VEXFS_IOC_SEARCH,
// with VEXFS_IOC_STAGE for large inputs and VEXFS_IOC_RESULTS for large
// outputs (docs/ioctl.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/core.h>
#include <memory>
#include <nlohmann/json.hpp>

#include "mounted.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/filter.h"

namespace vexctl {
namespace {

std::string ParentDir(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

// After EINVAL: if the collection's dimension differs from `dim`, says so
// (the most common cause) and returns true.
bool ExplainDimension(int dir_fd, const std::string& what, size_t dim) {
  vexfs_ioc_collection c;
  if (dir_fd < 0 || CollectionInfo(dir_fd, &c) != 0) return false;
  if (c.vi_dim == dim) return false;
  PrintError(what, fmt::format("dimension mismatch: the vector has {} components, the collection has "
                               "dimension {}",
                               dim, c.vi_dim));
  return true;
}

// Reads the vector of `path` from user.vexfs.vector.
bool ReadVectorXattr(const std::string& path, std::vector<float>* out) {
  std::vector<uint8_t> buf(VEXFS_VECTOR_MAX_DIM * sizeof(float) + 4);
  const ssize_t n = getxattr(path.c_str(), VEXFS_VECTOR_XATTR, buf.data(), buf.size());
  if (n < 0) {
    PrintError(path, errno == ENODATA ? std::string("the file has no vector") : strerror(errno));
    return false;
  }
  if (n == 0 || n % 4 != 0) {
    PrintError(path, fmt::format("{} holds {} bytes, not a float32 vector", VEXFS_VECTOR_XATTR, n));
    return false;
  }
  out->resize(n / 4);
  std::memcpy(out->data(), buf.data(), n);
  std::string why;
  if (!CheckFinite(*out, &why)) {
    PrintError(path, why);
    return false;
  }
  return true;
}

struct Hit {
  uint64_t ino;
  float distance;
  std::string path;
};

// Appends the `count` records held in `bytes` bytes of `buf` to their
// queries' lists. False when the records do not fit or name a query >= nq.
bool ParseHits(const uint8_t* buf, uint32_t bytes, uint32_t count, size_t nq,
               std::vector<std::vector<Hit>>* out) {
  if (bytes > VEXFS_SEARCH_BUF) return false;
  uint32_t off = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (bytes - off < sizeof(vexfs_search_hit)) return false;
    vexfs_search_hit h;
    std::memcpy(&h, buf + off, sizeof(h));
    const uint32_t len = vexfs_search_hit_bytes(&h);
    if (len > bytes - off || h.vh_query >= nq) return false;
    (*out)[h.vh_query].push_back(
        {h.vh_ino, h.vh_distance, std::string(reinterpret_cast<const char*>(buf + off + sizeof(h)), h.vh_path_len)});
    off += len;
  }
  return off == bytes;
}

// Chooses the query source: exactly one of --vector, --from, --like.
bool LoadQueries(const SearchArgs& a, std::vector<float>* data, size_t* nq, size_t* dim, int* rc) {
  *rc = kExitUsage;
  const int given = !a.json.empty() + !a.from.empty() + !a.like.empty();
  if (given != 1) {
    PrintError("", "give exactly one of --vector JSON, --from FILE or --like FILE");
    return false;
  }
  std::string why;
  if (!a.json.empty()) {
    if (!ParseVector(a.json, data, &why)) {
      PrintError("--vector", why);
      return false;
    }
    *nq = 1;
    *dim = data->size();
    return true;
  }
  if (!a.from.empty()) {
    if (!LoadMatrix(a.from, data, nq, dim, &why)) {
      PrintError(a.from, why);
      return false;
    }
    return true;
  }
  *rc = kExitFailure;
  if (!ReadVectorXattr(a.like, data)) return false;
  *nq = 1;
  *dim = data->size();
  return true;
}

void PrintResults(const SearchArgs& a, const std::vector<std::vector<Hit>>& res, bool batch) {
  const std::string base = TrimDir(a.dir);
  if (a.json_out) {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& q : res) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& h : q) {
        list.push_back({{"path", JoinPath(base, h.path)}, {"distance", h.distance}, {"ino", h.ino}});
      }
      all.push_back(std::move(list));
    }
    fmt::print("{}\n", (batch ? all : all[0]).dump(2));
    return;
  }
  for (size_t q = 0; q < res.size(); q++) {
    if (batch) fmt::print("# query {}: {} results\n", q, res[q].size());
    for (const auto& h : res[q]) fmt::print("{:.6f}\t{}\n", h.distance, JoinPath(base, h.path));
  }
}

}  // namespace

int RunMountedPut(const PutArgs& a) {
  const int given = !a.json.empty() + !a.from.empty() + a.remove;
  if (given != 1) {
    PrintError("", "give exactly one of --vector JSON, --from FILE or --remove");
    return kExitUsage;
  }
  if (a.row && a.from.empty()) {
    PrintError("", "--row goes with --from");
    return kExitUsage;
  }
  std::vector<float> v;
  std::string why;
  if (!a.json.empty() && !ParseVector(a.json, &v, &why)) {
    PrintError("--vector", why);
    return kExitUsage;
  }
  if (!a.from.empty()) {
    std::vector<float> m;
    size_t rows = 0, cols = 0;
    if (!LoadMatrix(a.from, &m, &rows, &cols, &why)) {
      PrintError(a.from, why);
      return kExitUsage;
    }
    if (!a.row && rows > 1) {
      PrintError(a.from, fmt::format("holds {} vectors: choose one with --row", rows));
      return kExitUsage;
    }
    const size_t r = a.row.value_or(0);
    if (r >= rows) {
      PrintError(a.from, fmt::format("--row {} is out of range (the file holds {} vectors)", r, rows));
      return kExitUsage;
    }
    v.assign(m.begin() + r * cols, m.begin() + (r + 1) * cols);
  }
  if (v.size() > VEXFS_VECTOR_MAX_DIM) {
    PrintError("", fmt::format("vector too long ({} > {} dimensions)", v.size(), VEXFS_VECTOR_MAX_DIM));
    return kExitUsage;
  }
  Fd fd = OpenForIoctl(a.file, false);
  if (!fd.ok()) return kExitFailure;
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Fail(a.file, Op::kOther, errno);
  if (!S_ISREG(st.st_mode)) {
    PrintError(a.file, S_ISDIR(st.st_mode) ? "is a directory (vectors belong to regular files)"
                                           : "not a regular file");
    return kExitFailure;
  }
  auto put = std::make_unique<vexfs_ioc_put>();
  std::memset(put.get(), 0, sizeof(*put));
  put->vp_size = sizeof(*put);
  if (a.remove) {
    put->vp_flags = VEXFS_PUT_REMOVE;
  } else {
    put->vp_dim = static_cast<uint32_t>(v.size());
    if (v.size() <= VEXFS_IOC_INLINE_FLOATS) {
      std::memcpy(put->vp_data, v.data(), v.size() * sizeof(float));
    } else {
      if (int e = StageFloats(fd.get(), v)) return Fail(a.file, Op::kStage, e);
      put->vp_flags = VEXFS_PUT_STAGED;
    }
  }
  if (int e = Ioctl(fd.get(), VEXFS_IOC_PUT, put.get())) {
    if (e == EINVAL && !a.remove) {
      Fd dir(open(ParentDir(a.file).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (ExplainDimension(dir.get(), a.file, v.size())) return kExitFailure;
    }
    return Fail(a.file, Op::kPut, e);
  }
  return 0;
}

int RunMountedSearch(const SearchArgs& a) {
  if (a.k == 0 || a.k > VEXFS_SEARCH_MAX_K) {
    PrintError("", fmt::format("-k must be between 1 and {}", VEXFS_SEARCH_MAX_K));
    return kExitUsage;
  }
  if (a.max_distance && !std::isfinite(static_cast<float>(*a.max_distance))) {
    PrintError("", "--max-distance must be a finite number");
    return kExitUsage;
  }
  if (a.filter.size() > VEXFS_FILTER_MAX) {
    PrintError("--filter", fmt::format("longer than {} bytes", VEXFS_FILTER_MAX));
    return kExitUsage;
  }
  if (auto f = vexfs::Filter::Parse(a.filter); !f.ok()) {
    PrintError("--filter", f.status().message());
    return kExitUsage;
  }
  std::vector<float> q;
  size_t nq = 0, dim = 0;
  int rc;
  if (!LoadQueries(a, &q, &nq, &dim, &rc)) return rc;
  if (dim > VEXFS_VECTOR_MAX_DIM) {
    PrintError("", fmt::format("queries have {} components, more than the maximum dimension {}", dim,
                               VEXFS_VECTOR_MAX_DIM));
    return kExitUsage;
  }
  if (nq > VEXFS_SEARCH_MAX_NQ) {
    PrintError(a.from, fmt::format("{} queries, more than {} per search", nq, VEXFS_SEARCH_MAX_NQ));
    return kExitUsage;
  }
  if (q.size() > VEXFS_STAGE_MAX_FLOATS) {
    PrintError(a.from, fmt::format("{} queries of {} components exceed the {}-float staging buffer", nq, dim,
                                   VEXFS_STAGE_MAX_FLOATS));
    return kExitUsage;
  }
  Fd fd = OpenForIoctl(a.dir, true);
  if (!fd.ok()) return kExitFailure;

  auto s = std::make_unique<vexfs_ioc_search>();
  std::memset(s.get(), 0, sizeof(*s));
  s->sq_size = sizeof(*s);
  s->sq_k = static_cast<uint32_t>(a.k);
  s->sq_dim = static_cast<uint32_t>(dim);
  s->sq_nq = static_cast<uint32_t>(nq);
  s->sq_effort = a.ef.value_or(0);
  if (a.max_distance) {
    s->sq_flags |= VEXFS_SEARCH_RANGE;
    s->sq_max_distance = static_cast<float>(*a.max_distance);
  }
  s->sq_filter_len = static_cast<uint32_t>(a.filter.size());
  std::memcpy(s->sq_buf, a.filter.data(), a.filter.size());
  const size_t vec_off = (a.filter.size() + 3) & ~size_t{3};
  if (vec_off + q.size() * sizeof(float) <= VEXFS_SEARCH_BUF) {
    std::memcpy(s->sq_buf + vec_off, q.data(), q.size() * sizeof(float));
  } else {
    if (int e = StageFloats(fd.get(), q)) return Fail(a.dir, Op::kStage, e);
    s->sq_flags |= VEXFS_SEARCH_STAGED;
  }
  if (int e = Ioctl(fd.get(), VEXFS_IOC_SEARCH, s.get())) {
    if (e == EINVAL && ExplainDimension(fd.get(), a.dir, dim)) return kExitFailure;
    return Fail(a.dir, Op::kSearch, e);
  }

  std::vector<std::vector<Hit>> res(nq);
  const uint32_t total = s->sq_total;
  if (s->sq_returned > total || !ParseHits(s->sq_buf, s->sq_bytes, s->sq_returned, nq, &res)) {
    PrintError(a.dir, "malformed search reply from the filesystem");
    return kExitFailure;
  }
  uint32_t got = s->sq_returned;
  if (got < total) {
    auto r = std::make_unique<vexfs_ioc_results>();
    while (got < total) {
      std::memset(r.get(), 0, offsetof(vexfs_ioc_results, vr_buf));
      r->vr_size = sizeof(*r);
      r->vr_first = got;
      if (int e = Ioctl(fd.get(), VEXFS_IOC_RESULTS, r.get())) return Fail(a.dir, Op::kResults, e);
      if (r->vr_total != total || r->vr_returned == 0 || r->vr_returned > total - got ||
          !ParseHits(r->vr_buf, r->vr_bytes, r->vr_returned, nq, &res)) {
        PrintError(a.dir, "malformed search reply from the filesystem");
        return kExitFailure;
      }
      got += r->vr_returned;
    }
  }
  PrintResults(a, res, nq > 1);
  return 0;
}

}  // namespace vexctl
