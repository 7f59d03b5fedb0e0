// vexctl import DIR (--jsonl FILE | --npy FILE.npy --names FILE.txt):
// bulk creation of files with text, user.* xattrs and vectors on a mounted
// volume. Files that carry only a vector go in batches through
// VEXFS_IOC_IMPORT (one call per few hundred files, vectors staged with
// VEXFS_IOC_STAGE); the others, and every file when the ioctl is not
// available, through plain POSIX calls (open, write, fsetxattr). The end is
// syncfs + fsync of the directory.
//
// The input is read twice: a first pass validates every record (so a bad
// line changes nothing), a second pass feeds worker threads. Memory stays
// bounded by the queue, whatever the size of the input (except --npy,
// whose matrix is loaded whole).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fmt/core.h>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mounted.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"
#include "vexctl.h"

namespace vexctl {
namespace {

constexpr size_t kMaxReportedErrors = 20;
constexpr size_t kQueueDepth = 1024;
// Files per VEXFS_IOC_IMPORT call (fewer when names or vectors fill it).
constexpr size_t kImportBatch = 256;

struct ImportArgs {
  std::string dir;
  std::string jsonl;
  std::string npy;
  std::string names;
  unsigned threads = 2;
  bool no_progress = false;
};

// One file to write.
struct Record {
  size_t line = 0;  // 1-based line of the JSONL or names file
  std::string path;  // relative to DIR, validated
  std::vector<float> vec;
  std::optional<std::string> text;
  std::vector<std::pair<std::string, std::string>> xattrs;  // full names ("user.lang")
};

// A relative path without empty, "." or ".." components, NUL, or a
// component longer than NAME_MAX, and not the query file.
bool CheckRelPath(const std::string& p, std::string* why) {
  if (p.empty()) {
    *why = "empty path";
    return false;
  }
  if (p.front() == '/') {
    *why = fmt::format("path \"{}\" is absolute (paths are relative to DIR)", p);
    return false;
  }
  if (p.find('\0') != std::string::npos) {
    *why = "path contains a NUL byte";
    return false;
  }
  size_t pos = 0;
  while (true) {
    const size_t end = std::min(p.find('/', pos), p.size());
    const std::string c = p.substr(pos, end - pos);
    if (c.empty() || c == "." || c == "..") {
      *why = fmt::format("path \"{}\" has an empty, \".\" or \"..\" component", p);
      return false;
    }
    if (c.size() > VEXFS_NAME_MAX) {
      *why = fmt::format("path \"{}\" has a component longer than {} bytes", p, VEXFS_NAME_MAX);
      return false;
    }
    if (c == VEXFS_QUERY_FILE) {
      *why = fmt::format("path \"{}\" uses the reserved name {}", p, VEXFS_QUERY_FILE);
      return false;
    }
    if (end == p.size()) break;
    pos = end + 1;
  }
  return true;
}

// Parses and validates one JSONL record.
bool ParseRecord(const std::string& line, Record* r, std::string* why) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) {
    *why = "not valid JSON";
    return false;
  }
  if (!j.is_object()) {
    *why = "not a JSON object";
    return false;
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "path" && key != "vector" && key != "text" && key != "xattrs") {
      *why = fmt::format("unknown key \"{}\" (expected path, vector, text, xattrs)", key);
      return false;
    }
  }
  if (!j.contains("path") || !j["path"].is_string()) {
    *why = "\"path\" is missing or not a string";
    return false;
  }
  r->path = j["path"].get<std::string>();
  if (!CheckRelPath(r->path, why)) return false;
  if (!j.contains("vector")) {
    *why = "\"vector\" is missing";
    return false;
  }
  std::string w;
  if (!ParseVector(j["vector"].dump(), &r->vec, &w)) {
    *why = "\"vector\": " + w;
    return false;
  }
  r->text.reset();
  if (j.contains("text")) {
    if (!j["text"].is_string()) {
      *why = "\"text\" is not a string";
      return false;
    }
    r->text = j["text"].get<std::string>();
  }
  r->xattrs.clear();
  if (j.contains("xattrs")) {
    const auto& x = j["xattrs"];
    if (!x.is_object()) {
      *why = "\"xattrs\" is not an object";
      return false;
    }
    for (const auto& [name, value] : x.items()) {
      std::string n = name.rfind("user.", 0) == 0 ? name.substr(5) : name;
      if (n.empty() || n.size() > VEXFS_XATTR_NAME_MAX - 5 || n.find('\0') != std::string::npos) {
        *why = fmt::format("xattr name \"{}\" is empty, too long or holds a NUL", name);
        return false;
      }
      if (n.rfind("vexfs.", 0) == 0) {
        *why = fmt::format("xattr \"user.{}\" is reserved (the vector goes in \"vector\")", n);
        return false;
      }
      std::string v;
      if (value.is_string()) v = value.get<std::string>();
      else if (value.is_number() || value.is_boolean()) v = value.dump();
      else {
        *why = fmt::format("xattr \"{}\": the value must be a string, number or boolean", name);
        return false;
      }
      if (v.size() > VEXFS_XATTR_VALUE_MAX) {
        *why = fmt::format("xattr \"{}\": value longer than {} bytes", name, VEXFS_XATTR_VALUE_MAX);
        return false;
      }
      r->xattrs.emplace_back("user." + n, std::move(v));
    }
  }
  return true;
}

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r") == std::string::npos;
}

// Collects validation errors; prints the first kMaxReportedErrors.
class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}
  void Add(size_t line, const std::string& why) {
    if (count_++ < kMaxReportedErrors) PrintError(fmt::format("{}: line {}", file_, line), why);
  }
  size_t count() const { return count_; }
  int Finish() const {
    if (count_ > kMaxReportedErrors) {
      PrintError(file_, fmt::format("{} more errors not shown", count_ - kMaxReportedErrors));
    }
    if (count_) PrintError(file_, fmt::format("{} invalid records: nothing was imported", count_));
    return count_ ? kExitUsage : 0;
  }

 private:
  std::string file_;
  size_t count_ = 0;
};

// Tracks paths for duplicates and for a path that is both a file and a
// parent directory of another file.
class PathSet {
 public:
  void Add(const std::string& p, size_t line, Problems* pr) {
    auto [it, fresh] = files_.emplace(p, line);
    if (!fresh) {
      pr->Add(line, fmt::format("path \"{}\" already appears on line {}", p, it->second));
      return;
    }
    for (size_t s = p.find('/'); s != std::string::npos; s = p.find('/', s + 1)) {
      dirs_.emplace(p.substr(0, s), line);
    }
  }
  void Check(Problems* pr) const {
    for (const auto& [d, line] : dirs_) {
      auto it = files_.find(d);
      if (it != files_.end()) {
        pr->Add(it->second, fmt::format("path \"{}\" is also a directory of the file on line {}", d, line));
      }
    }
  }

 private:
  std::unordered_map<std::string, size_t> files_;
  std::unordered_map<std::string, size_t> dirs_;
};

// Pass 1 over a JSONL file: counts records, finds the dimension.
int ValidateJsonl(const std::string& file, size_t* records, size_t* dim) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    PrintError(file, strerror(errno));
    return kExitFailure;
  }
  Problems pr(file);
  PathSet paths;
  std::string line;
  size_t ln = 0, first_dim_line = 0;
  *records = 0;
  *dim = 0;
  Record r;
  while (std::getline(in, line)) {
    ln++;
    if (IsBlank(line)) continue;
    std::string why;
    if (!ParseRecord(line, &r, &why)) {
      pr.Add(ln, why);
      continue;
    }
    if (*dim == 0) {
      *dim = r.vec.size();
      first_dim_line = ln;
    } else if (r.vec.size() != *dim) {
      pr.Add(ln, fmt::format("vector has {} components, line {} has {}", r.vec.size(), first_dim_line, *dim));
      continue;
    }
    paths.Add(r.path, ln, &pr);
    (*records)++;
  }
  if (in.bad()) {
    PrintError(file, strerror(errno));
    return kExitFailure;
  }
  paths.Check(&pr);
  if (*records == 0 && pr.count() == 0) {
    PrintError(file, "no records");
    return kExitUsage;
  }
  return pr.Finish();
}

// --names: one relative path per line, as many as the matrix has rows.
int LoadNames(const std::string& file, size_t rows, std::vector<std::string>* names) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    PrintError(file, strerror(errno));
    return kExitFailure;
  }
  Problems pr(file);
  PathSet paths;
  std::string line;
  size_t ln = 0;
  while (std::getline(in, line)) {
    ln++;
    std::string why;
    if (!CheckRelPath(line, &why)) {
      pr.Add(ln, why);
      continue;
    }
    paths.Add(line, ln, &pr);
    names->push_back(line);
  }
  if (in.bad()) {
    PrintError(file, strerror(errno));
    return kExitFailure;
  }
  paths.Check(&pr);
  if (pr.count() == 0 && names->size() != rows) {
    PrintError(file, fmt::format("{} names for {} vectors", names->size(), rows));
    return kExitUsage;
  }
  return pr.Finish();
}

// A batch of records that carry only a vector, all in one directory, for
// VEXFS_IOC_IMPORT.
struct Batch {
  std::string parent;  // relative to DIR ("" = DIR itself)
  std::vector<const Record*> records;
  size_t name_bytes = 0;

  static std::string ParentOf(const std::string& path) {
    const size_t s = path.rfind('/');
    return s == std::string::npos ? std::string() : path.substr(0, s);
  }
  static std::string LeafOf(const std::string& path) {
    const size_t s = path.rfind('/');
    return s == std::string::npos ? path : path.substr(s + 1);
  }
  static bool Plain(const Record& r) { return !r.text && r.xattrs.empty(); }
  // Whether `r` may join (same directory, room for its name and vector).
  bool Fits(const Record& r, size_t dim) const {
    if (records.empty()) return true;
    return ParentOf(r.path) == parent && records.size() < kImportBatch &&
           name_bytes + LeafOf(r.path).size() + 1 <= VEXFS_IMPORT_NAMES &&
           (records.size() + 1) * dim <= VEXFS_STAGE_MAX_FLOATS;
  }
  void Add(const Record* r) {
    if (records.empty()) parent = ParentOf(r->path);
    records.push_back(r);
    name_bytes += LeafOf(r->path).size() + 1;
  }
  void Clear() {
    records.clear();
    name_bytes = 0;
  }
};

// The shared state of the writers.
class Importer {
 public:
  Importer(std::string dir, std::string input, size_t dim) : dir_(TrimDir(dir)), input_(std::move(input)), dim_(dim) {}

  // Writes one record; on failure records the first error and returns false.
  bool Apply(const Record& r) {
    const std::string full = JoinPath(dir_, r.path);
    if (!MakeParents(r)) return false;
    const int fd = open(full.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (r.text ? O_TRUNC : 0), 0644);
    if (fd < 0) return SetError(r, "open", errno);
    bool ok = true;
    if (r.text) {
      const char* p = r.text->data();
      size_t left = r.text->size();
      while (ok && left > 0) {
        const ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = SetError(r, "write", errno);
        else {
          p += n;
          left -= n;
        }
      }
    }
    for (size_t i = 0; ok && i < r.xattrs.size(); i++) {
      const auto& [name, value] = r.xattrs[i];
      if (fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) ok = SetError(r, "setxattr " + name, errno);
    }
    if (ok) {
      std::vector<float> le(r.vec);
      if constexpr (std::endian::native == std::endian::big) {
        for (float& f : le) f = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(f)));
      }
      if (fsetxattr(fd, VEXFS_VECTOR_XATTR, le.data(), le.size() * sizeof(float), 0) != 0) {
        ok = SetError(r, "setxattr " VEXFS_VECTOR_XATTR, errno);
      }
    }
    if (close(fd) != 0 && ok) ok = SetError(r, "close", errno);
    if (ok) done_.fetch_add(1, std::memory_order_relaxed);
    return ok;
  }

  // Writes a batch through VEXFS_IOC_IMPORT; record by record through
  // Apply() when the ioctl is unavailable or refuses the batch as a whole
  // (Apply then names the culprit precisely).
  bool ApplyBatch(Batch& b) {
    if (b.records.empty()) return true;
    int err = ENOTTY;  // without the ioctl: record by record
    if (use_ioctl_.load(std::memory_order_relaxed)) {
      err = MakeParents(*b.records.front()) ? ImportIoctl(b) : -1;
      if (err == ENOTTY || err == ENOTSUP || err == ENOSYS) use_ioctl_.store(false);
    }
    bool ok = err == 0;
    if (err > 0) {
      for (const Record* r : b.records) {
        if (!(ok = Apply(*r))) break;
      }
    }
    b.Clear();
    return ok;
  }

  bool SetError(const Record& r, const std::string& op, int err) {
    std::lock_guard<std::mutex> l(mu_);
    if (!failed_) {
      failed_ = true;
      std::string why = strerror(err);
      if (err == EINVAL && op == "setxattr " VEXFS_VECTOR_XATTR) {
        why += " (the vector does not fit the collection: dimension mismatch?)";
      }
      error_ = fmt::format("{} (line {}): {}: {}", JoinPath(dir_, r.path), r.line, op, why);
    }
    stop_.store(true);
    return false;
  }
  void SetInputError(const Record& r, const std::string& why) {
    std::lock_guard<std::mutex> l(mu_);
    if (!failed_) {
      failed_ = true;
      error_ = fmt::format("{}: line {}: {} (did the input change during the import?)", input_, r.line, why);
    }
    stop_.store(true);
  }
  bool stopped() const { return stop_.load(); }
  size_t done() const { return done_.load(std::memory_order_relaxed); }
  size_t dim() const { return dim_; }
  std::string error() {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }

 private:
  // 0: the batch is stored. > 0: the ioctl refused it as a whole (that
  // errno; nothing changed). < 0: it stopped at a file (error recorded).
  int ImportIoctl(const Batch& b) {
    thread_local std::string fd_parent;
    thread_local Fd fd;
    thread_local std::vector<float> vecs;
    thread_local std::unique_ptr<vexfs_ioc_import> req;
    if (!fd.ok() || fd_parent != b.parent) {
      const std::string path = b.parent.empty() ? dir_ : JoinPath(dir_, b.parent);
      fd = Fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd.ok()) return errno;
      fd_parent = b.parent;
    }
    if (!req) req = std::make_unique<vexfs_ioc_import>();
    std::memset(req.get(), 0, sizeof(*req));
    req->vm_size = sizeof(*req);
    req->vm_count = static_cast<uint32_t>(b.records.size());
    req->vm_dim = static_cast<uint32_t>(dim_);
    req->vm_mode = 0644 & ~umask_;
    vecs.clear();
    size_t pos = 0;
    for (const Record* r : b.records) {
      const std::string leaf = Batch::LeafOf(r->path);
      std::memcpy(req->vm_names + pos, leaf.data(), leaf.size());
      pos += leaf.size() + 1;  // the NUL is already there
      vecs.insert(vecs.end(), r->vec.begin(), r->vec.end());
    }
    req->vm_names_len = static_cast<uint32_t>(pos);
    if (int e = StageFloats(fd.get(), vecs)) return e;
    if (int e = Ioctl(fd.get(), VEXFS_IOC_IMPORT, req.get())) return e;
    done_.fetch_add(req->vm_done, std::memory_order_relaxed);
    if (req->vm_error == 0 && req->vm_done == b.records.size()) return 0;
    const Record& bad = *b.records[std::min<size_t>(req->vm_done, b.records.size() - 1)];
    SetError(bad, "create", req->vm_error != 0 ? static_cast<int>(req->vm_error) : EIO);
    return -1;
  }

  // mkdir -p of the record's parent directories below DIR; each directory
  // is made once per run (EEXIST from a racing worker is fine).
  bool MakeParents(const Record& r) {
    for (size_t s = r.path.find('/'); s != std::string::npos; s = r.path.find('/', s + 1)) {
      const std::string rel = r.path.substr(0, s);
      {
        std::lock_guard<std::mutex> l(mu_);
        if (made_.count(rel)) continue;
      }
      if (mkdir(JoinPath(dir_, rel).c_str(), 0755) != 0 && errno != EEXIST) {
        return SetError(r, "mkdir " + JoinPath(dir_, rel), errno);
      }
      std::lock_guard<std::mutex> l(mu_);
      made_.insert(rel);
    }
    return true;
  }

  const std::string dir_;
  const std::string input_;
  const size_t dim_;
  std::atomic<size_t> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> use_ioctl_{true};
  const mode_t umask_ = [] {
    const mode_t m = umask(0);
    umask(m);
    return m;
  }();
  std::mutex mu_;
  bool failed_ = false;            // guarded by mu_
  std::string error_;              // guarded by mu_
  std::unordered_set<std::string> made_;  // guarded by mu_
};

// A bounded queue of work items from the reader to the writers.
template <typename T>
class WorkQueue {
 public:
  // False when the queue was closed for stopping.
  bool Push(T item, const Importer& imp) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < kQueueDepth || imp.stopped(); });
    if (imp.stopped()) return false;
    q_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  bool Pop(T* out) {
    std::unique_lock<std::mutex> l(mu_);
    not_empty_.wait(l, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    *out = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  void Wake() {
    std::lock_guard<std::mutex> l(mu_);
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> q_;
  bool closed_ = false;
};

// Redraws "[####    ] done/total pct files/s" on stderr every 100 ms.
class Progress {
 public:
  Progress(const Importer& imp, size_t total, bool enabled) : imp_(imp), total_(total) {
    if (!enabled) return;
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> l(mu_);
      while (!cv_.wait_for(l, std::chrono::milliseconds(100), [this] { return done_; })) Draw();
      Draw();
      fmt::print(stderr, "\n");
    });
  }
  ~Progress() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Draw() {
    const size_t n = imp_.done();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const size_t width = 30;
    const size_t fill = total_ ? n * width / total_ : width;
    fmt::print(stderr, "\r[{}{}] {}/{} {:3.0f}% {:.0f} files/s", std::string(fill, '#'),
               std::string(width - fill, ' '), n, total_, total_ ? 100.0 * n / total_ : 100.0,
               secs > 0 ? n / secs : 0.0);
    fflush(stderr);
  }

  const Importer& imp_;
  const size_t total_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// One unit of work: a raw JSONL line or a ready record (--npy).
struct Item {
  size_t line = 0;
  std::string json;  // JSONL mode
  Record record;     // --npy mode
};

int RunImport(const ImportArgs& a) {
  if ((a.jsonl.empty()) == (a.npy.empty())) {
    PrintError("", "give either --jsonl FILE or --npy FILE.npy --names FILE.txt");
    return kExitUsage;
  }
  if (!a.npy.empty() && a.names.empty()) {
    PrintError("", "--npy needs --names FILE.txt (one relative path per row)");
    return kExitUsage;
  }
  if (!a.jsonl.empty() && !a.names.empty()) {
    PrintError("", "--names goes with --npy");
    return kExitUsage;
  }
  if (a.threads == 0 || a.threads > 64) {
    PrintError("", "--threads must be between 1 and 64");
    return kExitUsage;
  }
  // Validate the whole input before touching the volume.
  size_t records = 0, dim = 0;
  std::vector<float> matrix;
  std::vector<std::string> names;
  if (!a.jsonl.empty()) {
    if (int rc = ValidateJsonl(a.jsonl, &records, &dim)) return rc;
  } else {
    std::string why;
    size_t rows = 0;
    if (!LoadMatrix(a.npy, &matrix, &rows, &dim, &why)) {
      PrintError(a.npy, why);
      return kExitUsage;
    }
    if (dim > VEXFS_VECTOR_MAX_DIM) {
      PrintError(a.npy, fmt::format("{} components, more than the maximum dimension {}", dim, VEXFS_VECTOR_MAX_DIM));
      return kExitUsage;
    }
    if (int rc = LoadNames(a.names, rows, &names)) return rc;
    records = rows;
  }
  const std::string input = a.jsonl.empty() ? a.npy : a.jsonl;

  Fd dir = OpenForIoctl(a.dir, true);
  if (!dir.ok()) return kExitFailure;
  vexfs_ioc_collection c;
  if (int e = CollectionInfo(dir.get(), &c)) {
    if (e != ENOTSUP) return Fail(a.dir, Op::kCollInfo, e);
    fmt::print(stderr, "vexctl: note: {} is not inside a collection: the vectors are stored, and indexed "
                       "once a collection is created above them\n", a.dir);
  } else if (c.vi_dim != dim) {
    PrintError(input, fmt::format("dimension mismatch: the vectors have {} components, the collection of {} "
                                  "has dimension {}; nothing was imported",
                                  dim, a.dir, c.vi_dim));
    return kExitUsage;
  }

  Importer imp(a.dir, input, dim);
  WorkQueue<Item> queue;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  const bool json_mode = !a.jsonl.empty();
  for (unsigned t = 0; t < a.threads; t++) {
    workers.emplace_back([&] {
      // Records waiting in `batch` live in `held` (a deque: stable addresses).
      std::deque<Item> held;
      Batch batch;
      auto flush = [&] {
        if (!imp.ApplyBatch(batch)) queue.Wake();
        held.clear();
      };
      Item it;
      while (queue.Pop(&it)) {
        if (imp.stopped()) continue;  // drain
        if (json_mode) {
          std::string why;
          it.record.line = it.line;
          if (!ParseRecord(it.json, &it.record, &why) || it.record.vec.size() != imp.dim()) {
            imp.SetInputError(it.record, why.empty() ? "dimension changed" : why);
            queue.Wake();
            continue;
          }
        }
        if (!Batch::Plain(it.record)) {
          if (!imp.Apply(it.record)) queue.Wake();
          continue;
        }
        if (!batch.Fits(it.record, imp.dim())) flush();
        held.push_back(std::move(it));
        batch.Add(&held.back().record);
      }
      if (!imp.stopped()) flush();
    });
  }
  {
    Progress progress(imp, records, !a.no_progress && isatty(STDERR_FILENO));
    if (json_mode) {
      std::ifstream in(a.jsonl, std::ios::binary);
      std::string line;
      size_t ln = 0;
      while (!imp.stopped() && std::getline(in, line)) {
        ln++;
        if (IsBlank(line)) continue;
        Item it;
        it.line = ln;
        it.json = std::move(line);
        if (!queue.Push(std::move(it), imp)) break;
      }
      if (in.bad()) {
        Record r;
        r.line = ln;
        imp.SetInputError(r, strerror(errno));
      }
    } else {
      for (size_t i = 0; i < records && !imp.stopped(); i++) {
        Item it;
        it.line = i + 1;
        it.record.line = i + 1;
        it.record.path = names[i];
        it.record.vec.assign(matrix.begin() + i * dim, matrix.begin() + (i + 1) * dim);
        if (!queue.Push(std::move(it), imp)) break;
      }
    }
    queue.Close();
    for (auto& w : workers) w.join();
    progress.Stop();
  }
  if (imp.stopped()) {
    PrintError("", imp.error());
    PrintError(a.dir, fmt::format("import stopped after {} of {} files (those stay)", imp.done(), records));
    return kExitFailure;
  }
  if (syncfs(dir.get()) != 0) return Fail(a.dir, Op::kOther, errno);
  // syncfs(2) never reaches a FUSE daemon; fsync of the directory does
  // (vexfs-fuse commits the whole journal for it), so the import is
  // durable when this returns.
  if (fsync(dir.get()) != 0) return Fail(a.dir, Op::kOther, errno);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("imported {} files into {} in {:.2f} s ({:.0f} files/s)\n", imp.done(), a.dir, secs,
             secs > 0 ? imp.done() / secs : 0.0);
  return 0;
}

}  // namespace

void AddImportCommand(CLI::App& app, std::function<int()>* run) {
  auto* imp = app.add_subcommand("import", "Bulk-create files with vectors under DIR of a mounted volume");
  static ImportArgs args;
  imp->add_option("DIR", args.dir, "existing directory on a mounted VexFS volume")->required();
  imp->add_option("--jsonl", args.jsonl,
                  "one JSON object per line: {\"path\": \"rel/path\", \"vector\": [...], \"text\": \"...\", "
                  "\"xattrs\": {\"lang\": \"en\"}}");
  imp->add_option("--npy", args.npy, "vectors as a 2-D .npy (or .fvecs) matrix, one row per file");
  imp->add_option("--names", args.names, "with --npy: one relative path per line, in row order");
  imp->add_option("--threads", args.threads, "writer threads (default 2)");
  imp->add_flag("--no-progress", args.no_progress, "no progress bar on stderr");
  imp->callback([run] { *run = [] { return RunImport(args); }; });
}

}  // namespace vexctl
