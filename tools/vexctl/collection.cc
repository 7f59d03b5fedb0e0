// vexctl collection create|info|reindex|drop: collections on directories of
// a mounted volume, through VEXFS_IOC_COLL_* (docs/ioctl.md).
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "mounted.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexctl.h"

namespace vexctl {
namespace {

// Index parameters as given on the command line; unset = keep/default.
struct ParamArgs {
  std::optional<uint16_t> m, ef_construction, ef_search;  // HNSW
  std::optional<uint16_t> tables, bits, probes;           // LSH
};

void AddParamOptions(CLI::App* c, ParamArgs* p) {
  c->add_option("--m", p->m, "HNSW: links per node (0 = default)");
  c->add_option("--ef-construction", p->ef_construction, "HNSW: candidate list while building (0 = default)");
  c->add_option("--ef-search", p->ef_search, "HNSW: default candidate list of a search (0 = default)");
  c->add_option("--tables", p->tables, "LSH: hash tables (0 = default)");
  c->add_option("--bits", p->bits, "LSH: bits per hash (0 = default)");
  c->add_option("--probes", p->probes, "LSH: default probes of a search (0 = default)");
}

// Writes the parameters that apply to `kind` into vi_param; false (with a
// message) when one for another index kind was given.
bool ApplyParams(const ParamArgs& p, uint8_t kind, vexfs_ioc_collection* c) {
  const bool hnsw = p.m || p.ef_construction || p.ef_search;
  const bool lsh = p.tables || p.bits || p.probes;
  if (kind == VEXFS_INDEX_HNSW) {
    if (lsh) {
      PrintError("", "--tables, --bits and --probes apply to --index lsh only");
      return false;
    }
    if (p.m) c->vi_param[0] = *p.m;
    if (p.ef_construction) c->vi_param[1] = *p.ef_construction;
    if (p.ef_search) c->vi_param[2] = *p.ef_search;
  } else if (kind == VEXFS_INDEX_LSH) {
    if (hnsw) {
      PrintError("", "--m, --ef-construction and --ef-search apply to --index hnsw only");
      return false;
    }
    if (p.tables) c->vi_param[0] = *p.tables;
    if (p.bits) c->vi_param[1] = *p.bits;
    if (p.probes) c->vi_param[2] = *p.probes;
  } else if (hnsw || lsh) {
    PrintError("", "the flat index takes no parameters");
    return false;
  }
  c->vi_param[3] = 0;
  return true;
}

int RunCreate(const std::string& dir, uint32_t dim, const std::string& metric, const std::string& type,
              const std::string& index, const ParamArgs& params) {
  vexfs_ioc_collection c;
  std::memset(&c, 0, sizeof(c));
  c.vi_size = sizeof(c);
  if (dim == 0 || dim > VEXFS_VECTOR_MAX_DIM) {
    PrintError("", fmt::format("--dim must be between 1 and {}", VEXFS_VECTOR_MAX_DIM));
    return kExitUsage;
  }
  c.vi_dim = dim;
  if (!ParseMetric(metric, &c.vi_metric)) {
    PrintError("", "--metric must be cosine, l2 or ip");
    return kExitUsage;
  }
  if (!ParseElement(type, &c.vi_element_type)) {
    PrintError("", "--type must be f32, f16 or int8");
    return kExitUsage;
  }
  if (!ParseIndex(index, &c.vi_index_kind)) {
    PrintError("", "--index must be hnsw, flat or lsh");
    return kExitUsage;
  }
  if (!ApplyParams(params, c.vi_index_kind, &c)) return kExitUsage;
  Fd fd = OpenForIoctl(dir, true);
  if (!fd.ok()) return kExitFailure;
  if (int e = Ioctl(fd.get(), VEXFS_IOC_COLL_CREATE, &c)) return Fail(dir, Op::kCollCreate, e);
  fmt::print("{}: collection created (dimension {}, metric {}, {} {})\n", dir, dim, metric, type, index);
  return 0;
}

// The path of the ancestor of `dir` (or `dir` itself) with inode `ino` on
// the same device, found by walking up the real path; empty if none.
std::string FindAncestor(const std::string& dir, uint64_t ino) {
  char buf[PATH_MAX];
  if (!realpath(dir.c_str(), buf)) return "";
  std::string cur = buf;
  struct stat st0;
  if (stat(cur.c_str(), &st0) != 0) return "";
  for (int depth = 0; depth < 4096; depth++) {
    struct stat st;
    if (stat(cur.c_str(), &st) != 0 || st.st_dev != st0.st_dev) return "";
    if (st.st_ino == ino) return cur;
    if (cur == "/") return "";
    const size_t slash = cur.rfind('/');
    cur = slash == 0 ? "/" : cur.substr(0, slash);
  }
  return "";
}

// Drop and reindex take the collection directory itself: says which
// directory that is when `dir` is only inside it. Returns 0 or an exit code.
int RequireCollectionRoot(int fd, const std::string& dir, const vexfs_ioc_collection& c) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Fail(dir, Op::kOther, errno);
  if (st.st_ino == c.vi_dir_ino) return 0;
  const std::string root = FindAncestor(dir, c.vi_dir_ino);
  PrintError(dir, fmt::format("not the collection directory (this works on the collection itself: {})",
                              root.empty() ? fmt::format("inode {}", c.vi_dir_ino) : root));
  return kExitFailure;
}

nlohmann::json ParamsJson(const vexfs_ioc_collection& c) {
  nlohmann::json p = nlohmann::json::object();
  if (c.vi_index_kind == VEXFS_INDEX_HNSW) {
    p = {{"m", c.vi_param[0]}, {"ef_construction", c.vi_param[1]}, {"ef_search", c.vi_param[2]}};
  } else if (c.vi_index_kind == VEXFS_INDEX_LSH) {
    p = {{"tables", c.vi_param[0]}, {"bits", c.vi_param[1]}, {"probes", c.vi_param[2]}};
  }
  return p;
}

std::string ParamsText(const vexfs_ioc_collection& c) {
  auto v = [](uint16_t x) { return x ? std::to_string(x) : std::string("default"); };
  if (c.vi_index_kind == VEXFS_INDEX_HNSW) {
    return fmt::format("m={} ef_construction={} ef_search={}", v(c.vi_param[0]), v(c.vi_param[1]),
                       v(c.vi_param[2]));
  }
  if (c.vi_index_kind == VEXFS_INDEX_LSH) {
    return fmt::format("tables={} bits={} probes={}", v(c.vi_param[0]), v(c.vi_param[1]), v(c.vi_param[2]));
  }
  return "";
}

std::string HumanBytes(uint64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (1ull << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  if (b < (1ull << 30)) return fmt::format("{:.1f} MiB", b / 1048576.0);
  return fmt::format("{:.2f} GiB", b / 1073741824.0);
}

int RunInfo(const std::string& dir, bool json) {
  Fd fd = OpenForIoctl(dir, true);
  if (!fd.ok()) return kExitFailure;
  vexfs_ioc_collection c;
  if (int e = CollectionInfo(fd.get(), &c)) return Fail(dir, Op::kCollInfo, e);
  const std::string root = FindAncestor(dir, c.vi_dir_ino);
  const char* state = c.vi_state == VEXFS_COLL_STATE_READY      ? "ready"
                      : c.vi_state == VEXFS_COLL_STATE_INDEXING ? "indexing"
                                                                : "unknown";
  if (json) {
    nlohmann::json j = {
        {"collection", root.empty() ? nlohmann::json(nullptr) : nlohmann::json(root)},
        {"dir_ino", c.vi_dir_ino},
        {"dim", c.vi_dim},
        {"metric", MetricName(c.vi_metric)},
        {"element_type", ElementName(c.vi_element_type)},
        {"index", IndexName(c.vi_index_kind)},
        {"params", ParamsJson(c)},
        {"count", c.vi_count},
        {"indexed", c.vi_indexed},
        {"pending", c.vi_pending},
        {"state", state},
        {"memory_bytes", c.vi_memory_bytes},
        {"loaded", (c.vi_flags & VEXFS_COLL_LOADED) != 0},
        {"rebuilt", (c.vi_flags & VEXFS_COLL_REBUILT) != 0},
    };
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("collection:    {} (inode {})\n", root.empty() ? std::string("?") : root, c.vi_dir_ino);
  fmt::print("dimension:     {}\n", c.vi_dim);
  fmt::print("metric:        {}\n", MetricName(c.vi_metric));
  fmt::print("element type:  {}\n", ElementName(c.vi_element_type));
  const std::string params = ParamsText(c);
  fmt::print("index:         {}{}{}\n", IndexName(c.vi_index_kind), params.empty() ? "" : " ", params);
  fmt::print("vectors:       {} (indexed {}, pending {})\n", c.vi_count, c.vi_indexed, c.vi_pending);
  fmt::print("state:         {}\n", state);
  fmt::print("memory:        {}\n", HumanBytes(c.vi_memory_bytes));
  std::string flags;
  if (c.vi_flags & VEXFS_COLL_LOADED) flags += "loaded ";
  if (c.vi_flags & VEXFS_COLL_REBUILT) flags += "rebuilt ";
  if (!flags.empty()) flags.pop_back();
  fmt::print("at mount:      {}\n", flags.empty() ? "created since" : flags);
  return 0;
}

int RunReindex(const std::string& dir, const std::string& type, const std::string& index,
               const ParamArgs& params) {
  vexfs_ioc_collection want;
  std::memset(&want, 0, sizeof(want));
  if (!type.empty() && !ParseElement(type, &want.vi_element_type)) {
    PrintError("", "--type must be f32, f16 or int8");
    return kExitUsage;
  }
  if (!index.empty() && !ParseIndex(index, &want.vi_index_kind)) {
    PrintError("", "--index must be hnsw, flat or lsh");
    return kExitUsage;
  }
  Fd fd = OpenForIoctl(dir, true);
  if (!fd.ok()) return kExitFailure;
  vexfs_ioc_collection cur;
  if (int e = CollectionInfo(fd.get(), &cur)) return Fail(dir, Op::kCollInfo, e);
  if (int rc = RequireCollectionRoot(fd.get(), dir, cur)) return rc;
  vexfs_ioc_collection c;
  std::memset(&c, 0, sizeof(c));
  c.vi_size = sizeof(c);
  c.vi_dim = 0;
  c.vi_metric = cur.vi_metric;
  c.vi_element_type = type.empty() ? cur.vi_element_type : want.vi_element_type;
  c.vi_index_kind = index.empty() ? cur.vi_index_kind : want.vi_index_kind;
  // Same index kind: keep the current parameters unless overridden;
  // another kind starts from its defaults.
  if (c.vi_index_kind == cur.vi_index_kind) std::memcpy(c.vi_param, cur.vi_param, sizeof(c.vi_param));
  if (!ApplyParams(params, c.vi_index_kind, &c)) return kExitUsage;
  if (int e = Ioctl(fd.get(), VEXFS_IOC_COLL_REINDEX, &c)) return Fail(dir, Op::kCollReindex, e);
  const std::string p = ParamsText(c);
  fmt::print("{}: reindexed ({} {}{}{})\n", dir, ElementName(c.vi_element_type), IndexName(c.vi_index_kind),
             p.empty() ? "" : " ", p);
  return 0;
}

int RunDrop(const std::string& dir, bool yes) {
  if (!yes) {
    PrintError(dir, "refusing to drop the collection without --yes (this deletes its index and every "
                    "vector stored in it; the files stay)");
    return kExitUsage;
  }
  Fd fd = OpenForIoctl(dir, true);
  if (!fd.ok()) return kExitFailure;
  vexfs_ioc_collection cur;
  if (int e = CollectionInfo(fd.get(), &cur)) return Fail(dir, Op::kCollInfo, e);
  if (int rc = RequireCollectionRoot(fd.get(), dir, cur)) return rc;
  if (int e = Ioctl(fd.get(), VEXFS_IOC_COLL_DROP, nullptr)) return Fail(dir, Op::kCollDrop, e);
  fmt::print("{}: collection dropped\n", dir);
  return 0;
}

}  // namespace

void AddCollectionCommands(CLI::App& app, std::function<int()>* run) {
  auto* coll = app.add_subcommand("collection", "Collections on directories of a mounted volume");
  coll->require_subcommand(1);

  auto* create = coll->add_subcommand("create", "Make a directory a collection");
  static std::string c_dir, c_metric = "cosine", c_type = "f32", c_index = "hnsw";
  static uint32_t c_dim = 0;
  static ParamArgs c_params;
  create->add_option("DIR", c_dir, "directory on a mounted VexFS volume")->required();
  create->add_option("--dim", c_dim, "vector dimension (1..16384)")->required();
  create->add_option("--metric", c_metric, "cosine (default), l2 or ip");
  create->add_option("--type", c_type, "index element type: f32 (default), f16 or int8");
  create->add_option("--index", c_index, "hnsw (default), flat or lsh");
  AddParamOptions(create, &c_params);
  create->callback([run] { *run = [] { return RunCreate(c_dir, c_dim, c_metric, c_type, c_index, c_params); }; });

  auto* info = coll->add_subcommand("info", "Show the collection a directory belongs to");
  static std::string i_dir;
  static bool i_json = false;
  info->add_option("DIR", i_dir, "directory inside a collection")->required();
  info->add_flag("--json", i_json, "JSON output");
  info->callback([run] { *run = [] { return RunInfo(i_dir, i_json); }; });

  auto* reindex = coll->add_subcommand("reindex", "Rebuild a collection's index, optionally changing it");
  static std::string r_dir, r_type, r_index;
  static ParamArgs r_params;
  reindex->add_option("DIR", r_dir, "directory inside a collection")->required();
  reindex->add_option("--type", r_type, "index element type: f32, f16 or int8 (default: unchanged)");
  reindex->add_option("--index", r_index, "hnsw, flat or lsh (default: unchanged)");
  AddParamOptions(reindex, &r_params);
  reindex->callback([run] { *run = [] { return RunReindex(r_dir, r_type, r_index, r_params); }; });

  auto* drop = coll->add_subcommand("drop", "Remove a collection with its index and vectors (files stay)");
  static std::string d_dir;
  static bool d_yes = false;
  drop->add_option("DIR", d_dir, "the collection directory")->required();
  drop->add_flag("--yes", d_yes, "really drop");
  drop->callback([run] { *run = [] { return RunDrop(d_dir, d_yes); }; });
}

}  // namespace vexctl
