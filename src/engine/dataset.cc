#include "vexfs/engine/dataset.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_set>

#include "vexfs/engine/distance.h"
#include "vexfs/engine/flat_index.h"

namespace vexfs::engine {
namespace {

constexpr uint32_t kMaxVecsDim = 1u << 20;

// ---- stdio helpers ----

struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

Status ErrnoStatus(const std::string& what, const std::string& path) {
  const int e = errno != 0 ? errno : EIO;
  return Status::Error(e, what + " " + path + ": " + std::strerror(e));
}

Result<File> Open(const std::string& path, const char* mode) {
  errno = 0;
  File f(std::fopen(path.c_str(), mode));
  if (!f) return ErrnoStatus("cannot open", path);
  return f;
}

// Reads exactly n bytes; *eof is set (and Ok returned) when the file ends
// cleanly before the first byte. A partial read is Corruption.
Status ReadExact(FILE* f, void* dst, size_t n, const std::string& path, bool* eof) {
  errno = 0;
  const size_t got = std::fread(dst, 1, n, f);
  if (got == n) return Status::Ok();
  if (std::ferror(f)) return ErrnoStatus("read error on", path);
  if (got == 0 && eof != nullptr) {
    *eof = true;
    return Status::Ok();
  }
  return Status::Corruption(path + ": truncated (wanted " + std::to_string(n) + " bytes, got " +
                            std::to_string(got) + ")");
}

Status WriteAll(FILE* f, const void* src, size_t n, const std::string& path) {
  errno = 0;
  if (n != 0 && std::fwrite(src, 1, n, f) != n) return ErrnoStatus("write error on", path);
  return Status::Ok();
}

Status Close(File f, const std::string& path) {
  errno = 0;
  if (std::fclose(f.release()) != 0) return ErrnoStatus("close error on", path);
  return Status::Ok();
}

Result<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  VEXFS_ASSIGN_OR_RETURN(File f, Open(path, "rb"));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  for (;;) {
    errno = 0;
    const size_t got = std::fread(buf, 1, sizeof(buf), f.get());
    out.insert(out.end(), buf, buf + got);
    if (got < sizeof(buf)) {
      if (std::ferror(f.get())) return ErrnoStatus("read error on", path);
      break;
    }
  }
  return out;
}

uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// ---- TEXMEX ----

// Reads rows of `elem`-byte values; `convert(raw, dst_row)` turns the row.
template <typename T, typename Convert>
Status LoadVecs(const std::string& path, size_t max_rows, size_t elem, size_t* rows_out,
                size_t* cols_out, std::vector<T>* data, Convert convert) {
  VEXFS_ASSIGN_OR_RETURN(File f, Open(path, "rb"));
  size_t rows = 0;
  uint32_t dim = 0;
  std::vector<uint8_t> raw;
  while (rows < max_rows) {
    uint8_t hdr[4];
    bool eof = false;
    VEXFS_RETURN_IF_ERROR(ReadExact(f.get(), hdr, 4, path, &eof));
    if (eof) break;
    const uint32_t d = LoadLe32(hdr);
    if (d == 0 || d > kMaxVecsDim) {
      return Status::Corruption(path + ": row " + std::to_string(rows) + " has bad dimension " +
                                std::to_string(static_cast<int32_t>(d)));
    }
    if (rows == 0) {
      dim = d;
      raw.resize(size_t{d} * elem);
    } else if (d != dim) {
      return Status::Corruption(path + ": row " + std::to_string(rows) + " has dimension " +
                                std::to_string(d) + ", first row " + std::to_string(dim));
    }
    VEXFS_RETURN_IF_ERROR(ReadExact(f.get(), raw.data(), raw.size(), path, nullptr));
    data->resize((rows + 1) * dim);
    convert(raw.data(), data->data() + rows * dim, dim);
    ++rows;
  }
  *rows_out = rows;
  *cols_out = dim;
  return Status::Ok();
}

template <typename T>
Status WriteVecs(const std::string& path, size_t rows, size_t cols, const std::vector<T>& data) {
  static_assert(sizeof(T) == 4);
  if (cols == 0 || cols > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument("vecs rows need 1..INT32_MAX columns");
  }
  if (data.size() != rows * cols) return Status::InvalidArgument("matrix size mismatch");
  VEXFS_ASSIGN_OR_RETURN(File f, Open(path, "wb"));
  std::vector<uint8_t> buf(4 + 4 * cols);
  StoreLe32(buf.data(), static_cast<uint32_t>(cols));
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      StoreLe32(buf.data() + 4 + 4 * c, std::bit_cast<uint32_t>(data[r * cols + c]));
    }
    VEXFS_RETURN_IF_ERROR(WriteAll(f.get(), buf.data(), buf.size(), path));
  }
  return Close(std::move(f), path);
}

// ---- npy ----

constexpr uint8_t kNpyMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

void SkipSpace(const std::string& s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\t')) ++*i;
}

// Finds `'key':` in the header dict and positions *i after the colon.
bool FindKey(const std::string& h, const char* key, size_t* i) {
  for (const char q : {'\'', '"'}) {
    const std::string pat = std::string(1, q) + key + std::string(1, q);
    size_t p = h.find(pat);
    if (p == std::string::npos) continue;
    p += pat.size();
    SkipSpace(h, &p);
    if (p >= h.size() || h[p] != ':') return false;
    ++p;
    SkipSpace(h, &p);
    *i = p;
    return true;
  }
  return false;
}

Status ParseNpyHeader(const std::string& h, NpyType* type, std::vector<size_t>* shape) {
  if (h.empty() || h.front() != '{') return Status::Corruption("npy header is not a dict");
  size_t i;
  // descr
  if (!FindKey(h, "descr", &i)) return Status::Corruption("npy header lacks 'descr'");
  if (i >= h.size() || (h[i] != '\'' && h[i] != '"')) {
    return Status::NotSupported("npy structured dtypes are not supported");
  }
  const char quote = h[i];
  const size_t end = h.find(quote, i + 1);
  if (end == std::string::npos) return Status::Corruption("npy 'descr' is unterminated");
  const std::string descr = h.substr(i + 1, end - i - 1);
  if (descr == "<f4") {
    *type = NpyType::kFloat32;
  } else if (descr == "<f2") {
    *type = NpyType::kFloat16;
  } else if (descr == "|i1" || descr == "<i1" || descr == "i1") {
    *type = NpyType::kInt8;
  } else if (descr == "|u1" || descr == "<u1" || descr == "u1") {
    *type = NpyType::kUint8;
  } else if (descr == "<i4") {
    *type = NpyType::kInt32;
  } else {
    return Status::NotSupported("npy dtype '" + descr + "' is not supported");
  }
  // fortran_order
  if (!FindKey(h, "fortran_order", &i)) return Status::Corruption("npy header lacks fortran_order");
  if (h.compare(i, 4, "True") == 0) return Status::NotSupported("npy Fortran order not supported");
  if (h.compare(i, 5, "False") != 0) return Status::Corruption("npy fortran_order is not a bool");
  // shape
  if (!FindKey(h, "shape", &i)) return Status::Corruption("npy header lacks 'shape'");
  if (i >= h.size() || h[i] != '(') return Status::Corruption("npy shape is not a tuple");
  ++i;
  shape->clear();
  for (;;) {
    SkipSpace(h, &i);
    if (i >= h.size()) return Status::Corruption("npy shape is unterminated");
    if (h[i] == ')') break;
    if (h[i] < '0' || h[i] > '9') return Status::Corruption("npy shape holds a non-integer");
    uint64_t v = 0;
    while (i < h.size() && h[i] >= '0' && h[i] <= '9') {
      if (v > (uint64_t{1} << 48)) return Status::Corruption("npy dimension too large");
      v = v * 10 + static_cast<uint64_t>(h[i] - '0');
      ++i;
    }
    if (i < h.size() && h[i] == 'L') ++i;  // Python 2 longs
    shape->push_back(static_cast<size_t>(v));
    if (shape->size() > 8) return Status::Corruption("npy shape has too many dimensions");
    SkipSpace(h, &i);
    if (i < h.size() && h[i] == ',') ++i;
  }
  if (shape->empty()) return Status::NotSupported("npy scalars (shape ()) are not supported");
  if (shape->size() > 2) {
    return Status::NotSupported("npy arrays with " + std::to_string(shape->size()) +
                                " dimensions are not supported");
  }
  return Status::Ok();
}

template <typename T>
Status WriteNpyImpl(const std::string& path, const char* descr, size_t rows, size_t cols,
                    const std::vector<T>& data) {
  static_assert(sizeof(T) == 4);
  if (data.size() != rows * cols) return Status::InvalidArgument("matrix size mismatch");
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  // magic(6) + version(2) + len(2) + dict + padding + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  if (dict.size() > 0xFFFF) return Status::InvalidArgument("npy header too long");
  std::vector<uint8_t> head(10);
  std::memcpy(head.data(), kNpyMagic, 6);
  head[6] = 1;
  head[7] = 0;
  head[8] = static_cast<uint8_t>(dict.size() & 0xFF);
  head[9] = static_cast<uint8_t>(dict.size() >> 8);
  head.insert(head.end(), dict.begin(), dict.end());
  VEXFS_ASSIGN_OR_RETURN(File f, Open(path, "wb"));
  VEXFS_RETURN_IF_ERROR(WriteAll(f.get(), head.data(), head.size(), path));
  std::vector<uint8_t> buf(4 * std::max<size_t>(cols, 1));
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      StoreLe32(buf.data() + 4 * c, std::bit_cast<uint32_t>(data[r * cols + c]));
    }
    VEXFS_RETURN_IF_ERROR(WriteAll(f.get(), buf.data(), 4 * cols, path));
  }
  return Close(std::move(f), path);
}

void MatrixShape(const NpyArray& a, size_t* rows, size_t* cols) {
  if (a.shape.size() == 1) {
    *rows = 1;
    *cols = a.shape[0];
  } else {
    *rows = a.shape[0];
    *cols = a.shape[1];
  }
}

// Element i of the array as double (data validated by ParseNpy).
double NpyValue(const NpyArray& a, size_t i) {
  const uint8_t* p = a.bytes.data();
  switch (a.type) {
    case NpyType::kFloat32:
      return std::bit_cast<float>(LoadLe32(p + 4 * i));
    case NpyType::kFloat16:
      return HalfToFloat(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
    case NpyType::kInt8:
      return static_cast<int8_t>(p[i]);
    case NpyType::kUint8:
      return p[i];
    case NpyType::kInt32:
      return static_cast<int32_t>(LoadLe32(p + 4 * i));
  }
  return 0;
}

// ---- synthetic data ----

// SplitMix64: tiny, fast, and identical everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1).
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  double Normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double t = 6.283185307179586 * Uniform();
    spare_ = r * std::sin(t);
    have_spare_ = true;
    return r * std::cos(t);
  }

 private:
  uint64_t s_;
  double spare_ = 0;
  bool have_spare_ = false;
};

struct Mixture {
  size_t dim, rank;
  std::vector<double> centres;  // clusters * dim
  std::vector<double> bases;    // clusters * rank * dim (rows ~unit length)
  std::vector<double> scales;   // clusters * rank
  std::vector<double> cdf;      // cumulative cluster weights
};

Mixture BuildMixture(const SyntheticOptions& o, Rng* rng) {
  Mixture m;
  m.dim = o.dim;
  m.rank = o.intrinsic_dim;
  const size_t d = o.dim, r = o.intrinsic_dim, nc = o.num_clusters;
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  // Shared subspace for the centres.
  std::vector<double> shared(r * d);
  for (double& x : shared) x = rng->Normal() * inv_sqrt_d;
  m.centres.assign(nc * d, 0.0);
  for (size_t c = 0; c < nc; ++c) {
    for (size_t j = 0; j < r; ++j) {
      const double z = rng->Normal() * o.cluster_spread * std::pow(o.spectrum_decay, double(j));
      for (size_t i = 0; i < d; ++i) m.centres[c * d + i] += z * shared[j * d + i];
    }
  }
  // Per-cluster local subspace: half shared directions, half its own, so
  // clusters overlap in orientation the way real embedding clusters do.
  m.bases.resize(nc * r * d);
  m.scales.resize(nc * r);
  for (size_t c = 0; c < nc; ++c) {
    for (size_t j = 0; j < r; ++j) {
      for (size_t i = 0; i < d; ++i) {
        m.bases[(c * r + j) * d + i] =
            std::sqrt(0.5) * (shared[j * d + i] + rng->Normal() * inv_sqrt_d);
      }
      m.scales[c * r + j] = std::pow(o.spectrum_decay, double(j)) * (0.5 + rng->Uniform());
    }
  }
  double total = 0;
  m.cdf.resize(nc);
  for (size_t c = 0; c < nc; ++c) {
    total += 1.0 / std::sqrt(static_cast<double>(c + 1));
    m.cdf[c] = total;
  }
  for (double& x : m.cdf) x /= total;
  return m;
}

void Sample(const Mixture& m, const SyntheticOptions& o, Rng* rng, float* out) {
  const double u = rng->Uniform();
  const size_t c = std::min<size_t>(
      static_cast<size_t>(std::lower_bound(m.cdf.begin(), m.cdf.end(), u) - m.cdf.begin()),
      m.cdf.size() - 1);
  const size_t d = m.dim, r = m.rank;
  std::vector<double> x(m.centres.begin() + c * d, m.centres.begin() + (c + 1) * d);
  for (size_t j = 0; j < r; ++j) {
    const double z = rng->Normal() * m.scales[c * r + j];
    const double* b = m.bases.data() + (c * r + j) * d;
    for (size_t i = 0; i < d; ++i) x[i] += z * b[i];
  }
  for (size_t i = 0; i < d; ++i) out[i] = static_cast<float>(x[i] + rng->Normal() * o.noise);
  if (o.normalize && !NormalizeL2(out, d)) out[0] = 1.0f;  // astronomically unlikely
}

}  // namespace

size_t NpyItemSize(NpyType t) {
  switch (t) {
    case NpyType::kFloat32:
    case NpyType::kInt32:
      return 4;
    case NpyType::kFloat16:
      return 2;
    case NpyType::kInt8:
    case NpyType::kUint8:
      return 1;
  }
  return 1;
}

// ---- public: TEXMEX ----

Result<FloatMatrix> LoadFvecs(const std::string& path, size_t max_rows) {
  FloatMatrix m;
  VEXFS_RETURN_IF_ERROR(LoadVecs(path, max_rows, 4, &m.rows, &m.cols, &m.data,
                                 [](const uint8_t* raw, float* dst, size_t d) {
                                   for (size_t i = 0; i < d; ++i) {
                                     dst[i] = std::bit_cast<float>(LoadLe32(raw + 4 * i));
                                   }
                                 }));
  return m;
}

Result<Int32Matrix> LoadIvecs(const std::string& path, size_t max_rows) {
  Int32Matrix m;
  VEXFS_RETURN_IF_ERROR(LoadVecs(path, max_rows, 4, &m.rows, &m.cols, &m.data,
                                 [](const uint8_t* raw, int32_t* dst, size_t d) {
                                   for (size_t i = 0; i < d; ++i) {
                                     dst[i] = static_cast<int32_t>(LoadLe32(raw + 4 * i));
                                   }
                                 }));
  return m;
}

Result<FloatMatrix> LoadBvecs(const std::string& path, size_t max_rows) {
  FloatMatrix m;
  VEXFS_RETURN_IF_ERROR(LoadVecs(path, max_rows, 1, &m.rows, &m.cols, &m.data,
                                 [](const uint8_t* raw, float* dst, size_t d) {
                                   for (size_t i = 0; i < d; ++i) dst[i] = raw[i];
                                 }));
  return m;
}

Status WriteFvecs(const std::string& path, const FloatMatrix& m) {
  return WriteVecs(path, m.rows, m.cols, m.data);
}
Status WriteIvecs(const std::string& path, const Int32Matrix& m) {
  return WriteVecs(path, m.rows, m.cols, m.data);
}

// ---- public: npy ----

Result<NpyArray> ParseNpy(std::span<const uint8_t> file) {
  if (file.size() < 10 || std::memcmp(file.data(), kNpyMagic, 6) != 0) {
    return Status::Corruption("not an npy file (bad magic)");
  }
  const uint8_t major = file[6];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = file[8] | (size_t{file[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) return Status::Corruption("npy v2 preamble truncated");
    header_len = LoadLe32(file.data() + 8);
    header_start = 12;
  } else {
    return Status::NotSupported("npy format version " + std::to_string(major) + " not supported");
  }
  if (header_len > file.size() - header_start) return Status::Corruption("npy header truncated");
  const std::string header(reinterpret_cast<const char*>(file.data() + header_start), header_len);
  NpyArray a;
  VEXFS_RETURN_IF_ERROR(ParseNpyHeader(header, &a.type, &a.shape));
  const size_t data_start = header_start + header_len;
  // Overflow-safe element count: each dim < 2^48 was checked, multiply carefully.
  uint64_t count = 1;
  for (size_t s : a.shape) {
    if (s != 0 && count > (uint64_t{1} << 62) / s) return Status::Corruption("npy shape overflow");
    count *= s;
  }
  const size_t item = NpyItemSize(a.type);
  const size_t avail = file.size() - data_start;
  if (count > avail / item || count * item != avail) {
    return Status::Corruption("npy data is " + std::to_string(avail) + " bytes, shape needs " +
                              std::to_string(count) + " x " + std::to_string(item));
  }
  a.bytes.assign(file.begin() + static_cast<ptrdiff_t>(data_start), file.end());
  return a;
}

Result<NpyArray> LoadNpy(const std::string& path) {
  VEXFS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadWholeFile(path));
  auto a = ParseNpy(bytes);
  if (!a.ok()) return Status::Error(a.status().err(), path + ": " + a.status().message());
  return a;
}

Result<FloatMatrix> NpyToFloat(const NpyArray& a) {
  FloatMatrix m;
  MatrixShape(a, &m.rows, &m.cols);
  const size_t n = m.rows * m.cols;
  if (n * NpyItemSize(a.type) != a.bytes.size())
    return Status::InvalidArgument("npy size mismatch");
  m.data.resize(n);
  for (size_t i = 0; i < n; ++i) m.data[i] = static_cast<float>(NpyValue(a, i));
  return m;
}

Result<Int32Matrix> NpyToInt32(const NpyArray& a) {
  Int32Matrix m;
  MatrixShape(a, &m.rows, &m.cols);
  const size_t n = m.rows * m.cols;
  if (n * NpyItemSize(a.type) != a.bytes.size())
    return Status::InvalidArgument("npy size mismatch");
  m.data.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double v = NpyValue(a, i);
    if (!(v >= INT32_MIN && v <= INT32_MAX) || v != std::floor(v)) {
      return Status::InvalidArgument("npy value " + std::to_string(v) + " is not an int32");
    }
    m.data[i] = static_cast<int32_t>(v);
  }
  return m;
}

Result<FloatMatrix> LoadNpyFloat(const std::string& path) {
  VEXFS_ASSIGN_OR_RETURN(NpyArray a, LoadNpy(path));
  return NpyToFloat(a);
}

Status WriteNpy(const std::string& path, const FloatMatrix& m) {
  return WriteNpyImpl(path, "<f4", m.rows, m.cols, m.data);
}
Status WriteNpy(const std::string& path, const Int32Matrix& m) {
  return WriteNpyImpl(path, "<i4", m.rows, m.cols, m.data);
}

// ---- public: synthetic data ----

Result<SyntheticDataset> GenerateSynthetic(const SyntheticOptions& o) {
  if (o.dim == 0 || o.dim > FlatIndex::kMaxDim) return Status::InvalidArgument("bad dim");
  if (o.num_base == 0 || o.num_clusters == 0) {
    return Status::InvalidArgument("num_base and num_clusters must be positive");
  }
  if (o.intrinsic_dim == 0 || o.intrinsic_dim > o.dim) {
    return Status::InvalidArgument("intrinsic_dim must be in [1, dim]");
  }
  if (!(o.spectrum_decay > 0 && o.spectrum_decay <= 1) || !(o.cluster_spread >= 0) ||
      !(o.noise >= 0) || !std::isfinite(o.cluster_spread) || !std::isfinite(o.noise)) {
    return Status::InvalidArgument("bad spectrum_decay, cluster_spread or noise");
  }
  Rng model_rng(o.seed);
  const Mixture m = BuildMixture(o, &model_rng);
  SyntheticDataset ds;
  ds.base.rows = o.num_base;
  ds.base.cols = o.dim;
  ds.base.data.resize(o.num_base * o.dim);
  ds.queries.rows = o.num_queries;
  ds.queries.cols = o.dim;
  ds.queries.data.resize(o.num_queries * o.dim);
  // Independent streams, so base rows do not depend on num_queries.
  Rng base_rng(o.seed ^ 0x6A09E667F3BCC909ull);
  Rng query_rng(o.seed ^ 0xBB67AE8584CAA73Bull);
  for (size_t i = 0; i < o.num_base; ++i) Sample(m, o, &base_rng, ds.base.data.data() + i * o.dim);
  for (size_t i = 0; i < o.num_queries; ++i) {
    Sample(m, o, &query_rng, ds.queries.data.data() + i * o.dim);
  }
  return ds;
}

// ---- public: ground truth ----

Result<GroundTruth> ComputeGroundTruth(const FloatMatrix& base, const FloatMatrix& queries,
                                       size_t k, Metric metric, size_t num_threads) {
  if (base.cols == 0 || base.cols != queries.cols) {
    return Status::InvalidArgument("base and queries must have the same non-zero column count");
  }
  if (base.data.size() != base.rows * base.cols ||
      queries.data.size() != queries.rows * queries.cols) {
    return Status::InvalidArgument("matrix size mismatch");
  }
  if (k == 0 || k > base.rows || k > FlatIndex::kMaxK) {
    return Status::InvalidArgument("k must be in [1, min(base rows, 10000)]");
  }
  FlatIndexOptions opt;
  opt.dim = base.cols;
  opt.metric = metric;
  opt.num_threads = num_threads;
  VEXFS_ASSIGN_OR_RETURN(std::unique_ptr<FlatIndex> idx, FlatIndex::Create(opt));
  std::vector<uint64_t> ids(base.rows);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
  VEXFS_RETURN_IF_ERROR(idx->AddBatch(ids, base.data));
  SearchParams p;
  p.k = k;
  VEXFS_ASSIGN_OR_RETURN(auto results, idx->SearchBatch(queries.data, p));
  GroundTruth gt;
  gt.k = k;
  gt.ids.reserve(queries.rows * k);
  gt.distances.reserve(queries.rows * k);
  for (const auto& list : results) {
    // k <= base.rows and no filter: every list holds exactly k entries.
    for (const Neighbor& n : list) {
      gt.ids.push_back(n.id);
      gt.distances.push_back(n.distance);
    }
  }
  return gt;
}

double RecallAtK(const GroundTruth& truth, const std::vector<std::vector<Neighbor>>& results) {
  if (truth.k == 0 || results.empty()) return 0.0;
  const size_t nq = std::min(results.size(), truth.ids.size() / truth.k);
  if (nq == 0) return 0.0;
  double sum = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::unordered_set<uint64_t> want(truth.ids.begin() + q * truth.k,
                                      truth.ids.begin() + (q + 1) * truth.k);
    size_t hit = 0;
    for (size_t i = 0; i < results[q].size() && i < truth.k; ++i)
      hit += want.count(results[q][i].id);
    sum += static_cast<double>(hit) / truth.k;
  }
  return sum / static_cast<double>(nq);
}

}  // namespace vexfs::engine
