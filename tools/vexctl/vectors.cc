// vexctl sample / put / search: vectors stored as the user.vexfs.vector
// xattr (raw little-endian float32) on files of an unmounted image.
// Search is an exact scan of a directory subtree with the engine's
// FlatIndex. put and search given one path instead of IMAGE PATH work on a
// mounted volume (mounted_vectors.cc).
#include <fcntl.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "mounted.h"
#include "vexctl.h"
#include "vexfs/engine/dataset.h"
#include "vexfs/engine/flat_index.h"
#include "vexfs/filesystem.h"

namespace vexctl {
namespace {

constexpr const char* kVectorXattr = "user.vexfs.vector";

std::unique_ptr<vexfs::Filesystem> MountImage(const std::string& path, bool read_only) {
  auto dev = vexfs::OpenBlockDevice(path, {.read_only = read_only, .exclusive = true});
  if (!dev.ok()) {
    fmt::print(stderr, "vexctl: {}\n", dev.status().ToString());
    return nullptr;
  }
  vexfs::MountOptions mo;
  mo.read_only = read_only;
  mo.commit_interval_ms = 0;
  auto fs = vexfs::Filesystem::Mount(std::move(dev).value(), mo);
  if (!fs.ok()) {
    fmt::print(stderr, "vexctl: cannot mount {}: {}\n", path, fs.status().ToString());
    return nullptr;
  }
  return std::move(fs).value();
}

// mkdir -p inside the volume; returns the inode of the last component.
vexfs::Result<uint64_t> MakeDirs(vexfs::Filesystem* fs, const std::string& path) {
  uint64_t cur = vexfs::Filesystem::kRootIno;
  size_t pos = 0;
  while (pos < path.size()) {
    while (pos < path.size() && path[pos] == '/') pos++;
    if (pos >= path.size()) break;
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string name = path.substr(pos, end - pos);
    auto l = fs->Lookup(cur, name, vexfs::Cred::Root());
    if (l.ok()) {
      if (!S_ISDIR(l->mode)) return vexfs::Status::Error(ENOTDIR, path + ": not a directory");
      cur = l->ino;
    } else if (l.status().err() == ENOENT) {
      VEXFS_ASSIGN_OR_RETURN(vexfs::Attr a, fs->Mkdir(cur, name, 0755, vexfs::Cred::Root()));
      cur = a.ino;
    } else {
      return l.status();
    }
    pos = end;
  }
  return cur;
}

std::vector<uint8_t> Encode(std::span<const float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());  // x86_64/aarch64: little-endian
  return out;
}

bool ParseVectorJson(const std::string& text, std::vector<float>* out) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty()) {
    fmt::print(stderr, "vexctl: --vector must be a non-empty JSON array of numbers\n");
    return false;
  }
  for (const auto& x : j) {
    if (!x.is_number()) {
      fmt::print(stderr, "vexctl: --vector must contain only numbers\n");
      return false;
    }
    const double d = x.get<double>();
    if (!std::isfinite(d)) {
      fmt::print(stderr, "vexctl: --vector contains NaN or Inf\n");
      return false;
    }
    out->push_back(static_cast<float>(d));
  }
  return true;
}

struct Found {
  std::string path;
  std::vector<float> vec;
};

// Collects every file below `ino` carrying a vector.
vexfs::Status Collect(vexfs::Filesystem* fs, uint64_t ino, const std::string& path, std::vector<Found>* out,
                      int depth) {
  if (depth > 64) return vexfs::Status::Error(ELOOP, "directory tree too deep");
  std::vector<vexfs::DirEntry> entries;
  VEXFS_RETURN_IF_ERROR(fs->ReadDir(ino, 0, [&](const vexfs::DirEntry& e) {
    if (e.name != "." && e.name != "..") entries.push_back(e);
    return true;
  }));
  for (const auto& e : entries) {
    const std::string p = path + "/" + e.name;
    if (e.type == 4) {  // DT_DIR
      VEXFS_RETURN_IF_ERROR(Collect(fs, e.ino, p, out, depth + 1));
      continue;
    }
    auto v = fs->GetXattr(e.ino, kVectorXattr, vexfs::Cred::Root());
    if (!v.ok()) continue;
    if (v->size() % 4 != 0 || v->empty()) continue;
    Found f{p, std::vector<float>(v->size() / 4)};
    std::memcpy(f.vec.data(), v->data(), v->size());
    out->push_back(std::move(f));
  }
  return vexfs::Status::Ok();
}

// Sample documents as JSONL for `vexctl import` (a mounted volume): one
// record per document with its text, a user.group xattr and its vector.
int WriteSampleJsonl(const std::string& out, const vexfs::engine::FloatMatrix& vecs) {
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  if (!f) {
    fmt::print(stderr, "vexctl: {}: {}\n", out, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < vecs.rows; i++) {
    const auto row = vecs.row(i);
    const std::string group = fmt::format("g{}", i % 4);
    nlohmann::json j = {{"path", fmt::format("doc-{:06d}.txt", i)},
                        {"text", fmt::format("Sample document {} of {} (group {}).\n", i, vecs.rows, group)},
                        {"xattrs", {{"group", group}}},
                        {"vector", std::vector<float>(row.begin(), row.end())}};
    f << j.dump() << '\n';
  }
  f.close();
  if (!f) {
    fmt::print(stderr, "vexctl: {}: write failed\n", out);
    return 1;
  }
  fmt::print("wrote {} sample records with {}-dimensional vectors to {}\n", vecs.rows, vecs.cols, out);
  return 0;
}

int RunSample(const std::string& image, const std::string& jsonl, const std::string& dir, size_t count, size_t dim,
              uint64_t seed) {
  if (count == 0 || count > 1000000 || dim == 0 || dim > 4096) {
    fmt::print(stderr, "vexctl: --count must be 1..1000000 and --dim 1..4096\n");
    return 2;
  }
  if (image.empty() == jsonl.empty()) {
    fmt::print(stderr, "vexctl: give either IMAGE (an unmounted image) or --jsonl FILE (for vexctl import)\n");
    return 2;
  }
  vexfs::engine::SyntheticOptions so;
  so.dim = dim;
  so.num_base = count;
  so.num_queries = 1;
  so.num_clusters = std::max<size_t>(1, count / 50);
  so.intrinsic_dim = std::min<size_t>(dim, 16);
  so.normalize = true;
  so.seed = seed;
  auto data = vexfs::engine::GenerateSynthetic(so);
  if (!data.ok()) {
    fmt::print(stderr, "vexctl: {}\n", data.status().ToString());
    return 1;
  }
  if (!jsonl.empty()) return WriteSampleJsonl(jsonl, data->base);
  auto fs = MountImage(image, false);
  if (!fs) return 1;
  auto d = MakeDirs(fs.get(), dir);
  if (!d.ok()) {
    fmt::print(stderr, "vexctl: {}\n", d.status().ToString());
    return 1;
  }
  for (size_t i = 0; i < count; i++) {
    const std::string name = fmt::format("doc-{:06d}.txt", i);
    auto f = fs->Lookup(*d, name, vexfs::Cred::Root());
    if (!f.ok()) f = fs->Mknod(*d, name, S_IFREG | 0644, 0, vexfs::Cred::Root());
    if (!f.ok()) {
      fmt::print(stderr, "vexctl: {}: {}\n", name, f.status().ToString());
      return 1;
    }
    const std::string text = fmt::format("Sample document {} of {}.\n", i, count);
    auto w = fs->Write(f->ino, 0, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    vexfs::Status s = w.ok() ? fs->SetXattr(f->ino, kVectorXattr, Encode(data->base.row(i)), 0, vexfs::Cred::Root())
                             : w.status();
    if (!s.ok()) {
      fmt::print(stderr, "vexctl: {}: {}\n", name, s.ToString());
      return 1;
    }
  }
  vexfs::Status s = fs->Unmount();
  if (!s.ok()) {
    fmt::print(stderr, "vexctl: {}\n", s.ToString());
    return 1;
  }
  fmt::print("wrote {} files with {}-dimensional vectors under {}\n", count, dim, dir);
  return 0;
}

int RunPut(const std::string& image, const std::string& path, const std::string& json) {
  std::vector<float> v;
  if (!ParseVectorJson(json, &v)) return 2;
  if (v.size() > 4096 * 4) {
    fmt::print(stderr, "vexctl: vector too long ({} > 16384 dimensions)\n", v.size());
    return 2;
  }
  auto fs = MountImage(image, false);
  if (!fs) return 1;
  auto f = fs->ResolvePath(path);
  if (!f.ok()) {
    fmt::print(stderr, "vexctl: {}: {}\n", path, f.status().ToString());
    return 1;
  }
  vexfs::Status s = fs->SetXattr(f->ino, kVectorXattr, Encode(v), 0, vexfs::Cred::Root());
  if (s.ok()) s = fs->Unmount();
  if (!s.ok()) {
    fmt::print(stderr, "vexctl: {}: {}\n", path, s.ToString());
    return 1;
  }
  return 0;
}

int RunSearch(const std::string& image, const std::string& dir, const std::string& json,
              const std::string& like, size_t k, const std::string& metric_name, bool as_json) {
  if (k == 0 || k > 10000) {
    fmt::print(stderr, "vexctl: -k must be between 1 and 10000\n");
    return 2;
  }
  vexfs::engine::Metric metric;
  if (metric_name == "cosine") metric = vexfs::engine::Metric::kCosine;
  else if (metric_name == "l2") metric = vexfs::engine::Metric::kL2;
  else if (metric_name == "ip") metric = vexfs::engine::Metric::kInnerProduct;
  else {
    fmt::print(stderr, "vexctl: --metric must be cosine, l2 or ip\n");
    return 2;
  }
  std::vector<float> query;
  if (json.empty() == like.empty()) {
    fmt::print(stderr, "vexctl: give exactly one of --vector JSON or --like PATH\n");
    return 2;
  }
  if (!json.empty() && !ParseVectorJson(json, &query)) return 2;
  auto fs = MountImage(image, true);
  if (!fs) return 1;
  if (!like.empty()) {
    auto f = fs->ResolvePath(like);
    auto v = f.ok() ? fs->GetXattr(f->ino, kVectorXattr, vexfs::Cred::Root()) : f.status();
    if (!v.ok() || v->size() % 4 != 0 || v->empty()) {
      fmt::print(stderr, "vexctl: {} has no vector ({})\n", like, v.ok() ? "bad size" : v.status().ToString());
      return 1;
    }
    query.resize(v->size() / 4);
    std::memcpy(query.data(), v->data(), v->size());
  }
  auto d = fs->ResolvePath(dir);
  if (!d.ok() || !S_ISDIR(d->mode)) {
    fmt::print(stderr, "vexctl: {}: {}\n", dir, d.ok() ? "not a directory" : d.status().ToString());
    return 1;
  }
  std::vector<Found> found;
  std::string base = dir == "/" ? "" : dir;
  if (!base.empty() && base.back() == '/') base.pop_back();
  vexfs::Status s = Collect(fs.get(), d->ino, base, &found, 0);
  if (!s.ok()) {
    fmt::print(stderr, "vexctl: {}\n", s.ToString());
    return 1;
  }
  vexfs::engine::FlatIndexOptions fo;
  fo.dim = query.size();
  fo.metric = metric;
  auto index = vexfs::engine::FlatIndex::Create(fo);
  if (!index.ok()) {
    fmt::print(stderr, "vexctl: {}\n", index.status().ToString());
    return 1;
  }
  size_t skipped = 0;
  for (size_t i = 0; i < found.size(); i++) {
    if (found[i].vec.size() != query.size() || !(*index)->Add(i, found[i].vec).ok()) skipped++;
  }
  if ((*index)->size() == 0 && skipped > 0) {
    fmt::print(stderr, "vexctl: no vector under {} has dimension {} (found {} of dimension {})\n", dir,
               query.size(), found.size(), found[0].vec.size());
    return 1;
  }
  vexfs::engine::SearchParams sp;
  sp.k = k;
  auto res = (*index)->Search(query, sp);
  if (!res.ok()) {
    fmt::print(stderr, "vexctl: {}\n", res.status().ToString());
    return 1;
  }
  if (as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : *res) out.push_back({{"path", found[n.id].path}, {"distance", n.distance}});
    fmt::print("{}\n", out.dump(2));
  } else {
    for (const auto& n : *res) fmt::print("{:.6f}  {}\n", n.distance, found[n.id].path);
  }
  if (skipped) fmt::print(stderr, "vexctl: skipped {} files whose vectors have another dimension or are invalid\n", skipped);
  return 0;
}

}  // namespace

void AddVectorCommands(CLI::App& app, std::function<int()>* run) {
  auto* sample = app.add_subcommand(
      "sample", "Write sample files with embeddings into an unmounted image, or as JSONL for vexctl import");
  static std::string s_image, s_jsonl, s_dir = "/docs";
  static size_t s_count = 1000, s_dim = 64;
  static uint64_t s_seed = 1;
  sample->add_option("IMAGE", s_image, "unmounted VexFS image");
  sample->add_option("--jsonl", s_jsonl, "instead of an image: write the documents as JSONL records to this file");
  sample->add_option("--dir", s_dir, "directory to fill (created if missing)");
  sample->add_option("--count", s_count, "number of files");
  sample->add_option("--dim", s_dim, "vector dimension");
  sample->add_option("--seed", s_seed, "generator seed");
  sample->callback([run] { *run = [] { return RunSample(s_image, s_jsonl, s_dir, s_count, s_dim, s_seed); }; });

  // put and search take IMAGE PATH (an unmounted image, offline) or one
  // path on a mounted volume (ioctls, mounted_vectors.cc).
  auto* put = app.add_subcommand(
      "put", "Attach a vector to a file: FILE on a mounted volume, or IMAGE PATH of an unmounted image");
  static std::vector<std::string> p_pos;
  static PutArgs p_args;
  put->add_option("TARGET", p_pos, "FILE on a mounted volume, or IMAGE PATH")->required()->expected(1, 2);
  put->add_option("--vector", p_args.json, "JSON array of numbers");
  put->add_option("--from", p_args.from, "mounted only: take the vector from a .npy or .fvecs file");
  put->add_option("--row", p_args.row, "mounted only: row of the --from file (needed when it holds several)");
  put->add_flag("--remove", p_args.remove, "mounted only: remove the file's vector");
  put->callback([run, put] {
    *run = [put] {
      const bool offline = p_pos.size() == 2;
      if (!offline && IsVexfsImage(p_pos[0])) {
        PrintError(p_pos[0], "is an unmounted image: give IMAGE PATH, or put through a mount of it");
        return 2;
      }
      if (!offline) {
        p_args.file = p_pos[0];
        return RunMountedPut(p_args);
      }
      if (put->count("--from") || put->count("--row") || put->count("--remove")) {
        PrintError("", "--from, --row and --remove work on mounted volumes only");
        return 2;
      }
      if (p_args.json.empty()) {
        PrintError("", "--vector is required with IMAGE PATH");
        return 2;
      }
      return RunPut(p_pos[0], p_pos[1], p_args.json);
    };
  });

  auto* search = app.add_subcommand(
      "search", "k-NN search: DIR of a mounted volume (indexed collection), or IMAGE DIR (exact, offline)");
  static std::vector<std::string> q_pos;
  static SearchArgs q_args;
  static std::string q_metric = "cosine";
  search->add_option("TARGET", q_pos, "DIR on a mounted volume, or IMAGE DIR")->required()->expected(1, 2);
  search->add_option("--vector", q_args.json, "query as a JSON array");
  search->add_option("--like", q_args.like, "use the vector of this file as the query");
  search->add_option("--from", q_args.from, "mounted only: queries from a .npy (1-D or 2-D) or .fvecs file");
  search->add_option("-k", q_args.k, "results per query (1..10000)");
  search->add_option("--filter", q_args.filter, "mounted only: metadata filter (see vexctl(8))");
  search->add_option("--max-distance", q_args.max_distance, "mounted only: only results this close or closer");
  search->add_option("--ef", q_args.ef, "mounted only: search effort (HNSW ef_search, LSH probes)");
  search->add_option("--metric", q_metric, "offline only: cosine, l2 or ip");
  search->add_flag("--json", q_args.json_out, "JSON output");
  search->callback([run, search] {
    *run = [search] {
      const bool offline = q_pos.size() == 2;
      if (!offline && IsVexfsImage(q_pos[0])) {
        PrintError(q_pos[0], "is an unmounted image: give IMAGE DIR, or search through a mount of it");
        return 2;
      }
      if (!offline) {
        if (search->count("--metric")) {
          PrintError("", "--metric applies to images only: a collection has its own metric");
          return 2;
        }
        q_args.dir = q_pos[0];
        return RunMountedSearch(q_args);
      }
      if (search->count("--from") || search->count("--filter") || search->count("--max-distance") ||
          search->count("--ef")) {
        PrintError("", "--from, --filter, --max-distance and --ef work on mounted volumes only");
        return 2;
      }
      return RunSearch(q_pos[0], q_pos[1], q_args.json, q_args.like, q_args.k, q_metric, q_args.json_out);
    };
  });
}

}  // namespace vexctl
