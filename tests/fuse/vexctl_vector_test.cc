// The vexctl binary against a mounted volume: collection create / info /
// reindex / drop, put, search (inline, staged, batched, paged, filtered,
// range), import (JSONL and .npy), and every bad input giving a non-zero
// exit, a readable message and an unchanged volume.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "vexfs/engine/dataset.h"

namespace vexfs::fusetest {
namespace {

struct Exec {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

std::string VectorJson(const std::vector<float>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (float f : v) j.push_back(f);
  return j.dump();
}

std::vector<float> GetVector(const std::string& path) {
  std::vector<float> v(16384);
  const ssize_t n = getxattr(path.c_str(), "user.vexfs.vector", v.data(), v.size() * 4);
  if (n < 0) return {};
  v.resize(n / 4);
  return v;
}

// Lines of `s` (without the newlines).
std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

// "distance\tpath" -> path.
std::string PathOf(const std::string& line) {
  const size_t tab = line.find('\t');
  return tab == std::string::npos ? "" : line.substr(tab + 1);
}
double DistanceOf(const std::string& line) { return std::atof(line.substr(0, line.find('\t')).c_str()); }

class VexctlVector : public ::testing::Test {
 protected:
  void SetUp() override {
    VEXFS_SKIP_UNLESS_FUSE();
    vol_ = std::make_unique<Volume>(256);
    ASSERT_TRUE(vol_->Mount()) << vol_->log();
    docs_ = vol_->P("docs");
    ASSERT_EQ(mkdir(docs_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((docs_ + "/sub").c_str(), 0755), 0);
    for (const char* f : {"a.txt", "b.txt", "sub/c.txt"}) WriteFile(docs_ + "/" + f, std::string("text of ") + f);
  }
  void TearDown() override {
    if (vol_) {
      EXPECT_EQ(vol_->Unmount(), 0) << vol_->log();
    }
    vol_.reset();
  }

  Exec Ctl(const std::string& args) {
    const std::string errf = vol_->dir() + "/vexctl.err";
    Exec r;
    FILE* p = popen((std::string(VEXCTL_BIN) + " " + args + " 2>'" + errf + "'").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
    const int st = pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.err = Slurp(errf);
    return r;
  }
  // Runs a command expected to fail: exit `rc`, one "vexctl: " message
  // containing `needle`, nothing on stdout.
  void ExpectFail(const std::string& args, int rc, const std::string& needle) {
    SCOPED_TRACE(args);
    Exec r = Ctl(args);
    EXPECT_EQ(r.rc, rc) << r.out << r.err;
    EXPECT_EQ(r.err.rfind("vexctl: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
  nlohmann::json Info(const std::string& dir) {
    Exec r = Ctl("collection info '" + dir + "' --json");
    EXPECT_EQ(r.rc, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  void Create(const std::string& dir, const std::string& opts) {
    Exec r = Ctl("collection create '" + dir + "' " + opts);
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  void Put(const std::string& file, const std::vector<float>& v) {
    Exec r = Ctl("put '" + file + "' --vector '" + VectorJson(v) + "'");
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  std::string WriteNpy(const std::string& name, size_t rows, size_t cols, const std::vector<float>& data) {
    engine::FloatMatrix m{rows, cols, data};
    const std::string path = vol_->dir() + "/" + name;
    EXPECT_TRUE(engine::WriteNpy(path, m).ok());
    return path;
  }
  // Everything a failed command must leave alone: the collection's
  // configuration and count, the names under docs, every file's vector.
  std::string Snapshot() {
    std::string s;
    Exec r = Ctl("collection info '" + docs_ + "' --json");
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_object()) {
      j.erase("memory_bytes");
      j.erase("state");
      j.erase("indexed");
      j.erase("pending");
    }
    s += std::to_string(r.rc) + " " + j.dump() + "\n";
    Exec ls = Exec{};
    FILE* p = popen(("cd '" + docs_ + "' && find . | LC_ALL=C sort").c_str(), "r");
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) ls.out.append(buf, n);
    if (p) pclose(p);
    s += ls.out;
    for (const auto& f : Lines(ls.out)) {
      s += f + " " + VectorJson(GetVector(docs_ + "/" + f)) + "\n";
    }
    return s;
  }

  std::unique_ptr<Volume> vol_;
  std::string docs_;
};

TEST_F(VexctlVector, CreateInfoPutSearchReindexDrop) {
  Create(docs_, "--dim 4 --metric l2 --index hnsw --m 8 --ef-search 40");
  auto j = Info(docs_);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["dim"], 4);
  EXPECT_EQ(j["metric"], "l2");
  EXPECT_EQ(j["element_type"], "f32");
  EXPECT_EQ(j["index"], "hnsw");
  EXPECT_EQ(j["params"]["m"], 8);
  EXPECT_EQ(j["params"]["ef_search"], 40);
  EXPECT_EQ(j["count"], 0);
  EXPECT_EQ(j["collection"], docs_);
  // Info from a subdirectory names the collection above it.
  EXPECT_EQ(Info(docs_ + "/sub")["collection"], docs_);
  ExpectFail("collection create '" + docs_ + "' --dim 4", 1, "already a collection");

  Put(docs_ + "/a.txt", {1, 0, 0, 0});
  Put(docs_ + "/b.txt", {0, 1, 0, 0});
  Put(docs_ + "/sub/c.txt", {0, 0, 1, 0});
  EXPECT_EQ(GetVector(docs_ + "/a.txt"), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(Info(docs_)["count"], 3);
  Exec text = Ctl("collection info '" + docs_ + "'");
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("dimension:     4"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("vectors:       3"), std::string::npos) << text.out;

  // Text output: distance TAB path, best first; L2 squared distances.
  Exec r = Ctl("search '" + docs_ + "' --vector '[1,0,0,0.5]' -k 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(PathOf(lines[0]), docs_ + "/a.txt");
  EXPECT_NEAR(DistanceOf(lines[0]), 0.25, 1e-5);
  EXPECT_NEAR(DistanceOf(lines[1]), 2.25, 1e-5);
  // Only files below the directory searched.
  r = Ctl("search '" + docs_ + "/sub' --vector '[1,0,0,0]' -k 3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"2.000000\t" + docs_ + "/sub/c.txt"});
  // JSON output, --ef accepted.
  r = Ctl("search '" + docs_ + "/' --vector '[0,1,0,0]' -k 3 --ef 16 --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto js = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(js.is_array()) << r.out;
  ASSERT_EQ(js.size(), 3u);
  EXPECT_EQ(js[0]["path"], docs_ + "/b.txt");
  EXPECT_NEAR(js[0]["distance"].get<double>(), 0.0, 1e-6);
  // Range search.
  r = Ctl("search '" + docs_ + "' --vector '[1,0,0,0]' -k 10 --max-distance 0.5");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
  // Filter on an xattr and on names.
  ASSERT_EQ(setxattr((docs_ + "/b.txt").c_str(), "user.lang", "en", 2, 0), 0);
  r = Ctl("search '" + docs_ + "' --vector '[1,0,0,0]' -k 10 --filter 'xattr.lang = \"en\"'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(PathOf(Lines(r.out)[0]), docs_ + "/b.txt");
  r = Ctl("search '" + docs_ + "' --vector '[1,0,0,0]' -k 10 --filter 'name glob \"c*\"'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"2.000000\t" + docs_ + "/sub/c.txt"});
  // --like takes another file's vector.
  r = Ctl("search '" + docs_ + "' --like '" + docs_ + "/sub/c.txt' -k 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"0.000000\t" + docs_ + "/sub/c.txt"});

  // Remove a vector; removing it twice is an error.
  ASSERT_EQ(Ctl("put '" + docs_ + "/b.txt' --remove").rc, 0);
  EXPECT_TRUE(GetVector(docs_ + "/b.txt").empty());
  EXPECT_EQ(Info(docs_)["count"], 2);
  ExpectFail("put '" + docs_ + "/b.txt' --remove", 1, "has no vector");

  // Reindex as a flat index; the vectors stay.
  r = Ctl("collection reindex '" + docs_ + "' --index flat");
  ASSERT_EQ(r.rc, 0) << r.err;
  j = Info(docs_);
  EXPECT_EQ(j["index"], "flat");
  EXPECT_EQ(j["count"], 2);
  EXPECT_EQ(j["metric"], "l2");
  r = Ctl("collection reindex '" + docs_ + "' --index hnsw --type f16 --m 12");
  ASSERT_EQ(r.rc, 0) << r.err;
  j = Info(docs_);
  EXPECT_EQ(j["index"], "hnsw");
  EXPECT_EQ(j["element_type"], "f16");
  EXPECT_EQ(j["params"]["m"], 12);
  r = Ctl("search '" + docs_ + "' --vector '[1,0,0,0]' -k 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(PathOf(Lines(r.out).at(0)), docs_ + "/a.txt");

  // Drop needs --yes; then the directory is no collection and the files stay.
  ExpectFail("collection drop '" + docs_ + "'", 2, "--yes");
  EXPECT_EQ(Info(docs_)["count"], 2);
  ExpectFail("collection drop '" + docs_ + "/sub' --yes", 1, "not the collection directory");
  ExpectFail("collection reindex '" + docs_ + "/sub' --index flat", 1, "not the collection directory");
  r = Ctl("collection drop '" + docs_ + "' --yes");
  ASSERT_EQ(r.rc, 0) << r.err;
  ExpectFail("collection info '" + docs_ + "'", 1, "not inside a collection");
  EXPECT_EQ(Slurp(docs_ + "/a.txt"), "text of a.txt");
  EXPECT_TRUE(GetVector(docs_ + "/a.txt").empty());
}

TEST_F(VexctlVector, BadInputFailsAndChangesNothing) {
  Create(docs_, "--dim 4");
  Put(docs_ + "/a.txt", {1, 2, 3, 4});
  ASSERT_EQ(mkdir(vol_->P("plain").c_str(), 0755), 0);
  WriteFile(vol_->P("plain/x"), "x");
  const std::string before = Snapshot();
  const std::string a = "'" + docs_ + "/a.txt'";
  const std::string d = "'" + docs_ + "'";

  // put
  ExpectFail("put " + a + " --vector '[1,2,3]'", 1, "dimension");
  ExpectFail("put " + a + " --vector '[1,2,NaN,4]'", 2, "NaN");
  ExpectFail("put " + a + " --vector '[1,2,1e39,4]'", 2, "Inf");
  ExpectFail("put " + a + " --vector '[]'", 2, "empty");
  ExpectFail("put " + a + " --vector '[1,\"x\",3,4]'", 2, "not a number");
  ExpectFail("put " + a + " --vector '[1,2,3,4]' --remove", 2, "exactly one");
  ExpectFail("put " + a, 2, "exactly one");
  ExpectFail("put '" + docs_ + "/missing' --vector '[1,2,3,4]'", 1, "No such file");
  ExpectFail("put " + d + " --vector '[1,2,3,4]'", 1, "directory");
  ExpectFail("put '" + vol_->P("plain/x") + "' --vector '[1,2,3,4]'", 1, "not inside a collection");
  ExpectFail("put '" + vol_->image() + "' --vector '[1,2,3,4]'", 2, "unmounted image");
  ExpectFail("put /proc/self/status --vector '[1,2,3,4]'", 1, "not a VexFS file");
  // search
  ExpectFail("search " + d + " --vector '[1,2,3,4]' -k 0", 2, "-k");
  ExpectFail("search " + d + " --vector '[1,2,3,4]' -k 10001", 2, "-k");
  ExpectFail("search " + d + " --vector '[1,2]'", 1, "dimension");
  ExpectFail("search " + d + " --vector '[1,2,3,NaN]'", 2, "NaN");
  ExpectFail("search " + d + " --vector '[1,2,3,4]' --filter 'xattr.lang en'", 2, "column");
  ExpectFail("search " + d + " --vector '[1,2,3,4]' --filter '(size > 1'", 2, "--filter");
  ExpectFail("search " + d + " --vector '[1,2,3,4]' --max-distance inf", 2, "finite");
  ExpectFail("search " + d + " --vector '[1,2,3,4]' --metric l2", 2, "--metric");
  ExpectFail("search " + d, 2, "exactly one");
  ExpectFail("search '" + vol_->P("plain") + "' --vector '[1,2,3,4]'", 1, "not inside a collection");
  ExpectFail("search '" + docs_ + "/nope' --vector '[1,2,3,4]'", 1, "No such file");
  ExpectFail("search /proc --vector '[1,2,3,4]'", 1, "not a VexFS file");
  // collections
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 0", 2, "--dim");
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 16385", 2, "--dim");
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 4 --metric cheb", 2, "--metric");
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 4 --index ivf", 2, "--index");
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 4 --index flat --m 4", 2, "parameters");
  ExpectFail("collection create '" + vol_->P("plain") + "' --dim 4 --m 70000", 2, "--m");
  ExpectFail("collection create " + a + " --dim 4", 1, "Not a directory");
  ExpectFail("collection info '" + vol_->P("plain") + "'", 1, "not inside a collection");
  ExpectFail("collection drop " + d, 2, "--yes");
  ExpectFail("collection drop '" + vol_->P("plain") + "' --yes", 1, "not inside a collection");
  ExpectFail("collection reindex " + d + " --index ivf", 2, "--index");
  // import: a bad line anywhere means nothing is written
  const std::string jl = vol_->dir() + "/bad.jsonl";
  WriteFile(jl, "{\"path\": \"new/one.txt\", \"vector\": [1,2,3,4], \"text\": \"one\"}\n"
                "{\"path\": \"new/two.txt\", \"vector\": [1,2,3,4]}\n"
                "{\"path\": \"new/three.txt\", \"vector\": [1,2,3]}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "line 3");
  WriteFile(jl, "{\"path\": \"new/one.txt\", \"vector\": [1,2,3,4]}\n{\"path\": \"x\", \"vector\": [1,2,3,4]\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "line 2");
  WriteFile(jl, "{\"path\": \"../escape\", \"vector\": [1,2,3,4]}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "line 1");
  WriteFile(jl, "{\"path\": \"/abs\", \"vector\": [1,2,3,4]}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "absolute");
  WriteFile(jl, "{\"path\": \"p\", \"vector\": [1,2,3,4]}\n\n{\"path\": \"p\", \"vector\": [4,3,2,1]}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "line 3");
  WriteFile(jl, "{\"path\": \"p\", \"vector\": [1,2,3,4], \"vec\": 1}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "unknown key");
  WriteFile(jl, "{\"path\": \"p\", \"vector\": [1,2,3,4], \"xattrs\": {\"lang\": [1]}}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "xattr");
  WriteFile(jl, "{\"path\": \"p\", \"vector\": [1,2,3,4], \"xattrs\": {\"vexfs.vector\": \"x\"}}\n");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "reserved");
  WriteFile(jl, "{\"path\": \"p\", \"vector\": [1,2,3]}\n");  // consistent, but not the collection's dim
  ExpectFail("import " + d + " --jsonl '" + jl + "' --no-progress", 2, "dimension");
  ExpectFail("import " + d + " --jsonl '" + vol_->dir() + "/missing.jsonl'", 1, "No such file");
  ExpectFail("import " + d + " --npy '" + WriteNpy("q.npy", 2, 4, {1, 2, 3, 4, 5, 6, 7, 8}) + "'", 2, "--names");
  WriteFile(vol_->dir() + "/names.txt", "only-one\n");
  ExpectFail("import " + d + " --npy '" + vol_->dir() + "/q.npy' --names '" + vol_->dir() + "/names.txt'", 2,
             "1 names for 2 vectors");
  ExpectFail("import " + d + " --jsonl '" + jl + "' --threads 0", 2, "--threads");

  EXPECT_EQ(Snapshot(), before);
}

TEST_F(VexctlVector, ImportJsonlAndNpy) {
  Create(docs_, "--dim 8 --metric cosine");
  constexpr int kN = 300;
  engine::SyntheticOptions so;
  so.dim = 8;
  so.num_base = kN;
  so.num_queries = 1;
  so.num_clusters = 10;
  so.intrinsic_dim = 8;
  so.normalize = true;
  auto data = engine::GenerateSynthetic(so);
  ASSERT_TRUE(data.ok());
  std::string jl;
  for (int i = 0; i < kN; i++) {
    nlohmann::json rec = {{"path", "imp/" + std::to_string(i % 7) + "/doc" + std::to_string(i) + ".txt"},
                          {"vector", std::vector<float>(data->base.row(i).begin(), data->base.row(i).end())},
                          {"text", "document " + std::to_string(i)},
                          {"xattrs", {{"lang", i % 2 ? "en" : "fr"}, {"n", i}}}};
    jl += rec.dump() + "\n";
  }
  WriteFile(vol_->dir() + "/in.jsonl", jl);
  Exec r = Ctl("import '" + docs_ + "' --jsonl '" + vol_->dir() + "/in.jsonl' --threads 3 --no-progress");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("imported 300 files"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
  for (int i : {0, 1, 150, 299}) {
    const std::string f = docs_ + "/imp/" + std::to_string(i % 7) + "/doc" + std::to_string(i) + ".txt";
    EXPECT_EQ(Slurp(f), "document " + std::to_string(i));
    char buf[16] = {};
    ASSERT_EQ(getxattr(f.c_str(), "user.lang", buf, sizeof(buf)), 2) << f;
    EXPECT_EQ(std::string(buf, 2), i % 2 ? "en" : "fr");
    EXPECT_EQ(GetVector(f), std::vector<float>(data->base.row(i).begin(), data->base.row(i).end()));
  }
  EXPECT_EQ(Info(docs_)["count"], kN);
  // The vector of document 17 finds document 17 first; a filter on the
  // imported xattr keeps only matching files.
  const std::string q = VectorJson({data->base.row(17).begin(), data->base.row(17).end()});
  r = Ctl("search '" + docs_ + "' --vector '" + q + "' -k 5");
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 5u);
  EXPECT_EQ(PathOf(Lines(r.out)[0]), docs_ + "/imp/3/doc17.txt");
  EXPECT_LT(DistanceOf(Lines(r.out)[0]), 1e-5);
  r = Ctl("search '" + docs_ + "' --vector '" + q + "' -k 300 --filter 'xattr.lang = \"fr\"' --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto js = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(js.is_array());
  EXPECT_EQ(js.size(), size_t{kN / 2});

  // .npy + names into a fresh subtree (not yet a collection below docs? it
  // is: the same collection), then durable across a remount.
  std::vector<float> m(4 * 8);
  for (size_t i = 0; i < m.size(); i++) m[i] = float(i % 5) - 2.0f + (i / 8);
  const std::string npy = WriteNpy("m.npy", 4, 8, m);
  WriteFile(vol_->dir() + "/names.txt", "npy/r0\nnpy/r1\nnpy/deep/r2\nnpy/deep/r3\n");
  r = Ctl("import '" + docs_ + "' --npy '" + npy + "' --names '" + vol_->dir() + "/names.txt' --threads 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(GetVector(docs_ + "/npy/deep/r2"), std::vector<float>(m.begin() + 16, m.begin() + 24));
  ASSERT_TRUE(vol_->Remount()) << vol_->log();
  EXPECT_EQ(Info(docs_)["count"], kN + 4);
  EXPECT_EQ(GetVector(docs_ + "/npy/r1"), std::vector<float>(m.begin() + 8, m.begin() + 16));
  EXPECT_EQ(Slurp(docs_ + "/imp/0/doc0.txt"), "document 0");

  // A batch (VEXFS_IOC_IMPORT) stopped by a directory in the way: the
  // files before it stay, the message names the culprit.
  ASSERT_EQ(mkdir((docs_ + "/npy/r9").c_str(), 0755), 0);
  WriteFile(vol_->dir() + "/names2.txt", "npy/r8\nnpy/r9\nnpy/r10\nnpy/r11\n");
  r = Ctl("import '" + docs_ + "' --npy '" + npy + "' --names '" + vol_->dir() + "/names2.txt' --threads 1");
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("npy/r9"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Is a directory"), std::string::npos) << r.err;
  EXPECT_EQ(GetVector(docs_ + "/npy/r8"), std::vector<float>(m.begin(), m.begin() + 8));
  EXPECT_TRUE(GetVector(docs_ + "/npy/r10").empty());

  // vexctl sample --jsonl writes records vexctl import takes.
  ASSERT_EQ(mkdir(vol_->P("s").c_str(), 0755), 0);
  Create(vol_->P("s"), "--dim 16 --metric cosine");
  r = Ctl("sample --jsonl '" + vol_->dir() + "/s.jsonl' --count 50 --dim 16");
  ASSERT_EQ(r.rc, 0) << r.err;
  r = Ctl("import '" + vol_->P("s") + "' --jsonl '" + vol_->dir() + "/s.jsonl' --no-progress");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Slurp(vol_->P("s") + "/doc-000007.txt"), "Sample document 7 of 50 (group g3).\n");
  r = Ctl("search '" + vol_->P("s") + "' --like '" + vol_->P("s") + "/doc-000007.txt' -k 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(Lines(r.out).size(), 1u);
  EXPECT_EQ(PathOf(Lines(r.out)[0]), vol_->P("s") + "/doc-000007.txt");
  ExpectFail("sample --count 5", 2, "either IMAGE");
}

TEST_F(VexctlVector, StagedVectorsBatchesAndPagedResults) {
  // Dimension 5000 > VEXFS_IOC_INLINE_FLOATS: put and search go through
  // the staging buffer.
  const std::string big = vol_->P("big");
  ASSERT_EQ(mkdir(big.c_str(), 0755), 0);
  Create(big, "--dim 5000 --metric l2 --index flat");
  std::vector<float> rows(3 * 5000);
  for (size_t i = 0; i < rows.size(); i++) rows[i] = float((i * 7919) % 101) / 101.0f + float(i / 5000);
  const std::string npy = WriteNpy("big.npy", 3, 5000, rows);
  for (int i = 0; i < 3; i++) {
    WriteFile(big + "/f" + std::to_string(i), "");
    Exec r = Ctl("put '" + big + "/f" + std::to_string(i) + "' --from '" + npy + "' --row " + std::to_string(i));
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  EXPECT_EQ(GetVector(big + "/f2"), std::vector<float>(rows.begin() + 10000, rows.end()));
  ExpectFail("put '" + big + "/f0' --from '" + npy + "'", 2, "--row");
  ExpectFail("put '" + big + "/f0' --from '" + npy + "' --row 3", 2, "out of range");
  // A batch of three staged queries: one header per query, each query's
  // own file first.
  Exec r = Ctl("search '" + big + "' --from '" + npy + "' -k 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 9u) << r.out;
  for (int q = 0; q < 3; q++) {
    EXPECT_EQ(lines[q * 3], "# query " + std::to_string(q) + ": 2 results");
    EXPECT_EQ(PathOf(lines[q * 3 + 1]), big + "/f" + std::to_string(q));
    EXPECT_NEAR(DistanceOf(lines[q * 3 + 1]), 0.0, 1e-3);
  }
  r = Ctl("search '" + big + "' --from '" + npy + "' -k 1 --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto js = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(js.is_array() && js.size() == 3 && js[1].is_array()) << r.out;
  EXPECT_EQ(js[1][0]["path"], big + "/f1");

  // More results than one reply holds: paged with VEXFS_IOC_RESULTS.
  Create(docs_, "--dim 2 --metric l2 --index flat");
  std::string jl;
  constexpr int kN = 1200;
  for (int i = 0; i < kN; i++) {
    jl += "{\"path\": \"many/a-rather-long-file-name-to-fill-result-pages-" + std::to_string(i) +
          "\", \"vector\": [" + std::to_string(i) + ", 0]}\n";
  }
  WriteFile(vol_->dir() + "/many.jsonl", jl);
  r = Ctl("import '" + docs_ + "' --jsonl '" + vol_->dir() + "/many.jsonl' --no-progress");
  ASSERT_EQ(r.rc, 0) << r.err;
  r = Ctl("search '" + docs_ + "' --vector '[0,0]' -k 10000");
  ASSERT_EQ(r.rc, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), size_t{kN});
  for (int i = 0; i < kN; i++) {
    ASSERT_EQ(PathOf(lines[i]), docs_ + "/many/a-rather-long-file-name-to-fill-result-pages-" + std::to_string(i));
    ASSERT_NEAR(DistanceOf(lines[i]), double(i) * i, 1e-3 * i * i + 1e-6);
  }
}

}  // namespace
}  // namespace vexfs::fusetest
