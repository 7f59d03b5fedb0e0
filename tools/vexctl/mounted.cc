// Shared helpers of the mounted-volume commands (see mounted.h).
#include "mounted.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/core.h>
#include <limits>
#include <nlohmann/json.hpp>

#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/engine/dataset.h"

namespace vexctl {

void PrintError(const std::string& what, const std::string& reason) {
  if (what.empty()) {
    fmt::print(stderr, "vexctl: {}\n", reason);
  } else {
    fmt::print(stderr, "vexctl: {}: {}\n", what, reason);
  }
}

std::string Explain(Op op, int err) {
  switch (err) {
    case ENOTTY:
      return "not a VexFS file";
    case ENOTSUP:
      return "not inside a collection (create one with 'vexctl collection create DIR --dim N')";
    case ENOTDIR:
      return "not a directory";
    case E2BIG:
      return "input too large for the staging buffer";
    default:
      break;
  }
  if (err == EEXIST && op == Op::kCollCreate) return "already a collection";
  if (err == ENOTSUP && op == Op::kCollDrop) return "not a collection directory";
  if (err == EISDIR && op == Op::kPut) return "is a directory (vectors belong to regular files)";
  if (err == EROFS) return "read-only file system";
  if (err == EBUSY && op == Op::kCollCreate) {
    return "the directory holds vectors of an enclosing collection (drop or move them first)";
  }
  if (err == ENODATA && op == Op::kPut) return "the file has no vector";
  if (err == ENODATA && op == Op::kResults) return "no search results on this file";
  if (err == EACCES || err == EPERM) {
    if (op == Op::kCollCreate || op == Op::kCollDrop || op == Op::kCollReindex) {
      return std::string(strerror(err)) + " (only the directory's owner or root may change a collection)";
    }
    if (op == Op::kPut) return std::string(strerror(err)) + " (a vector needs write permission on the file)";
  }
  if (err == EINVAL) {
    switch (op) {
      case Op::kCollCreate:
        return "invalid argument (a parameter is out of range, or a file below already carries a "
               "vector of another dimension)";
      case Op::kCollReindex:
        return "invalid argument (bad element type, index kind or parameter, or not the collection "
               "directory itself)";
      case Op::kPut:
        return "invalid argument (the vector's dimension differs from the collection's, or it "
               "holds NaN or Inf)";
      case Op::kSearch:
        return "invalid argument (the query's dimension differs from the collection's, or the "
               "filter or a parameter is invalid)";
      default:
        break;
    }
  }
  return strerror(err);
}

int Fail(const std::string& what, Op op, int err) {
  PrintError(what, Explain(op, err));
  return kExitFailure;
}

bool IsVexfsImage(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return false;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint8_t magic[4];
  ssize_t n;
  do {
    n = pread(fd, magic, sizeof(magic), 0);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n != 4) return false;
  const uint32_t m = uint32_t(magic[0]) | uint32_t(magic[1]) << 8 | uint32_t(magic[2]) << 16 |
                     uint32_t(magic[3]) << 24;
  return m == VEXFS_SUPER_MAGIC;
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

Fd OpenForIoctl(const std::string& path, bool dir) {
  const int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (dir ? O_DIRECTORY : 0);
  int fd = open(path.c_str(), O_RDONLY | flags);
  if (fd < 0 && errno == EACCES && !dir) fd = open(path.c_str(), O_WRONLY | flags);
  if (fd < 0) {
    PrintError(path, strerror(errno));
    return Fd();
  }
  return Fd(fd);
}

int Ioctl(int fd, unsigned long cmd, void* arg) {
  int rc;
  do {
    rc = ioctl(fd, cmd, arg);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

bool CheckFinite(std::span<const float> v, std::string* why) {
  for (size_t i = 0; i < v.size(); i++) {
    if (!std::isfinite(v[i])) {
      *why = fmt::format("component {} is NaN or Inf", i);
      return false;
    }
  }
  return true;
}

bool ParseVector(const std::string& json, std::vector<float>* out, std::string* why) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_array()) {
    *why = "not a JSON array of numbers (NaN and Inf are not numbers)";
    return false;
  }
  if (j.empty()) {
    *why = "empty vector";
    return false;
  }
  if (j.size() > VEXFS_VECTOR_MAX_DIM) {
    *why = fmt::format("{} components, more than the maximum dimension {}", j.size(), VEXFS_VECTOR_MAX_DIM);
    return false;
  }
  out->clear();
  out->reserve(j.size());
  for (size_t i = 0; i < j.size(); i++) {
    if (!j[i].is_number()) {
      *why = fmt::format("component {} is not a number", i);
      return false;
    }
    const double d = j[i].get<double>();
    const float f = static_cast<float>(d);
    if (!std::isfinite(d) || !std::isfinite(f)) {
      *why = fmt::format("component {} is NaN, Inf or beyond the float32 range", i);
      return false;
    }
    out->push_back(f);
  }
  return true;
}

bool LoadMatrix(const std::string& path, std::vector<float>* data, size_t* rows, size_t* cols,
                std::string* why) {
  auto ends = [&](const char* ext) {
    const size_t n = strlen(ext);
    return path.size() >= n && strcasecmp(path.c_str() + path.size() - n, ext) == 0;
  };
  vexfs::Result<vexfs::engine::FloatMatrix> m = vexfs::Status::Error(EINVAL, "");
  if (ends(".npy")) {
    m = vexfs::engine::LoadNpyFloat(path);
  } else if (ends(".fvecs")) {
    m = vexfs::engine::LoadFvecs(path);
  } else {
    *why = "unknown file type (expected .npy or .fvecs)";
    return false;
  }
  if (!m.ok()) {
    *why = m.status().message().empty() ? strerror(m.status().err()) : m.status().message();
    return false;
  }
  if (m->rows == 0 || m->cols == 0) {
    *why = "no vectors in the file";
    return false;
  }
  for (size_t r = 0; r < m->rows; r++) {
    std::string w;
    if (!CheckFinite(m->row(r), &w)) {
      *why = fmt::format("row {}: {}", r, w);
      return false;
    }
  }
  *rows = m->rows;
  *cols = m->cols;
  *data = std::move(m->data);
  return true;
}

int StageFloats(int fd, std::span<const float> v) {
  vexfs_ioc_stage st;
  if (v.empty()) return EINVAL;
  for (size_t off = 0; off < v.size(); off += VEXFS_IOC_INLINE_FLOATS) {
    const size_t n = std::min<size_t>(VEXFS_IOC_INLINE_FLOATS, v.size() - off);
    std::memset(&st, 0, offsetof(vexfs_ioc_stage, vs_data));
    st.vs_size = sizeof(st);
    st.vs_offset = static_cast<uint32_t>(off);
    st.vs_count = static_cast<uint32_t>(n);
    std::memcpy(st.vs_data, v.data() + off, n * sizeof(float));
    std::memset(st.vs_data + n, 0, (VEXFS_IOC_INLINE_FLOATS - n) * sizeof(float));
    if (int e = Ioctl(fd, VEXFS_IOC_STAGE, &st)) return e;
  }
  return 0;
}

int CollectionInfo(int dir_fd, vexfs_ioc_collection* out) {
  std::memset(out, 0, sizeof(*out));
  out->vi_size = sizeof(*out);
  return Ioctl(dir_fd, VEXFS_IOC_COLL_INFO, out);
}

const char* MetricName(uint32_t m) {
  switch (m) {
    case VEXFS_METRIC_L2: return "l2";
    case VEXFS_METRIC_IP: return "ip";
    case VEXFS_METRIC_COSINE: return "cosine";
  }
  return "unknown";
}

const char* ElementName(uint32_t t) {
  switch (t) {
    case VEXFS_ELEM_F32: return "f32";
    case VEXFS_ELEM_F16: return "f16";
    case VEXFS_ELEM_I8: return "int8";
  }
  return "unknown";
}

const char* IndexName(uint32_t k) {
  switch (k) {
    case VEXFS_INDEX_FLAT: return "flat";
    case VEXFS_INDEX_HNSW: return "hnsw";
    case VEXFS_INDEX_LSH: return "lsh";
  }
  return "unknown";
}

bool ParseMetric(const std::string& s, uint8_t* out) {
  if (s == "cosine") *out = VEXFS_METRIC_COSINE;
  else if (s == "l2") *out = VEXFS_METRIC_L2;
  else if (s == "ip") *out = VEXFS_METRIC_IP;
  else return false;
  return true;
}

bool ParseElement(const std::string& s, uint8_t* out) {
  if (s == "f32") *out = VEXFS_ELEM_F32;
  else if (s == "f16") *out = VEXFS_ELEM_F16;
  else if (s == "int8" || s == "i8") *out = VEXFS_ELEM_I8;
  else return false;
  return true;
}

bool ParseIndex(const std::string& s, uint8_t* out) {
  if (s == "hnsw") *out = VEXFS_INDEX_HNSW;
  else if (s == "flat") *out = VEXFS_INDEX_FLAT;
  else if (s == "lsh") *out = VEXFS_INDEX_LSH;
  else return false;
  return true;
}

std::string TrimDir(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

std::string JoinPath(const std::string& dir, const std::string& rel) {
  const std::string d = TrimDir(dir);
  if (rel.empty()) return d;
  if (d == "/") return "/" + rel;
  return d + "/" + rel;
}

}  // namespace vexctl
