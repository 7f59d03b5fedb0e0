// Collections::Search on an in-memory volume: what a caller may see when
// most members are hidden from it (the search then decides every member,
// hundreds of them in one search), and that the searched directory's
// cached scope follows changes made between searches.
#include <dirent.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/block_device.h"
#include "vexfs/collections.h"
#include "vexfs/filesystem.h"
#include "vexfs/mkfs.h"

namespace vexfs {
namespace {

constexpr size_t kDim = 4;

class CollectionsSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dev = std::make_unique<MemoryDevice>(16384);
    ASSERT_TRUE(Format(dev.get(), {}).ok());
    MountOptions mo;
    mo.commit_interval_ms = 0;
    auto fs = Filesystem::Mount(std::move(dev), mo);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(fs).value();
    auto d = fs_->Mkdir(Filesystem::kRootIno, "c", 0755, root_);
    ASSERT_TRUE(d.ok());
    dir_ = d->ino;
    auto colls = Collections::Attach(fs_.get());
    ASSERT_TRUE(colls.ok()) << colls.status().ToString();
    colls_ = std::move(colls).value();
    CollectionConfig cfg;
    cfg.dim = kDim;
    cfg.metric = VEXFS_METRIC_L2;
    cfg.index_kind = VEXFS_INDEX_HNSW;
    ASSERT_TRUE(colls_->Create(dir_, cfg, root_).ok());
  }
  void TearDown() override {
    if (colls_) EXPECT_TRUE(colls_->Close().ok());
    colls_.reset();
    if (fs_) EXPECT_TRUE(fs_->Unmount().ok());
  }

  // A file `name` in `parent` with mode `mode` and the vector (x, 0, 0, 0).
  uint64_t Put(uint64_t parent, const std::string& name, uint32_t mode, float x) {
    auto f = fs_->Mknod(parent, name, S_IFREG | mode, 0, root_);
    EXPECT_TRUE(f.ok()) << name;
    if (!f.ok()) return 0;
    const float v[kDim] = {x, 0, 0, 0};
    EXPECT_TRUE(fs_->SetXattr(f->ino, VEXFS_VECTOR_XATTR, {reinterpret_cast<const uint8_t*>(v), sizeof(v)}, 0,
                              root_)
                    .ok());
    return f->ino;
  }

  std::vector<std::string> Paths(uint64_t dir, const Cred& cred, size_t k, const std::string& filter = "") {
    SearchRequest r;
    r.dim = kDim;
    r.k = k;
    r.queries = {0, 0, 0, 0};
    r.filter = filter;
    auto hits = colls_->Search(dir, r, cred);
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    std::vector<std::string> out;
    if (hits.ok()) {
      for (const auto& h : *hits) out.push_back(h.path);
    }
    return out;
  }

  const Cred root_ = Cred::Root();
  const Cred user_{1000, 1000, {}};
  std::unique_ptr<Filesystem> fs_;
  std::unique_ptr<Collections> colls_;
  uint64_t dir_ = 0;
};

// Every query of a request is checked before any is searched: NaN or an
// infinity anywhere (the kernels' vector body and tail alike, at 37
// dimensions) names its component, and under cosine a query of zeros
// (-0.0 included) has no direction, while one of subnormals does. Under L2
// a zero query is fine.
TEST_F(CollectionsSearchTest, QueriesAreCheckedBeforeAnySearch) {
  constexpr size_t kD = 37;
  auto make = [&](const char* name, uint32_t metric) {
    auto d = fs_->Mkdir(Filesystem::kRootIno, name, 0755, root_);
    EXPECT_TRUE(d.ok());
    CollectionConfig cfg;
    cfg.dim = kD;
    cfg.metric = metric;
    cfg.index_kind = VEXFS_INDEX_HNSW;
    EXPECT_TRUE(colls_->Create(d->ino, cfg, root_).ok());
    auto f = fs_->Mknod(d->ino, "f", S_IFREG | 0644, 0, root_);
    EXPECT_TRUE(f.ok());
    std::vector<float> v(kD, 0.5f);
    EXPECT_TRUE(fs_->SetXattr(f->ino, VEXFS_VECTOR_XATTR,
                              {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)}, 0, root_)
                    .ok());
    return d->ino;
  };
  const uint64_t cos = make("cos", VEXFS_METRIC_COSINE), l2 = make("l2", VEXFS_METRIC_L2);
  // Three queries; the second is `bad`.
  auto search = [&](uint64_t dir, const std::vector<float>& bad) {
    SearchRequest r;
    r.dim = kD;
    r.k = 1;
    r.nq = 3;
    r.queries.assign(kD, 1.0f);
    r.queries.insert(r.queries.end(), bad.begin(), bad.end());
    r.queries.insert(r.queries.end(), kD, 1.0f);
    return colls_->Search(dir, r, root_);
  };
  for (float x : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity()}) {
    for (size_t at : {size_t{0}, size_t{20}, size_t{36}}) {
      std::vector<float> q(kD, 1.0f);
      q[at] = x;
      for (uint64_t dir : {cos, l2}) {
        auto hits = search(dir, q);
        ASSERT_FALSE(hits.ok()) << x << " at " << at;
        EXPECT_EQ(hits.status().err(), EINVAL);
        EXPECT_NE(hits.status().message().find("query component " + std::to_string(at) + " is NaN or infinite"),
                  std::string::npos)
            << hits.status().message();
      }
    }
  }
  for (float z : {0.0f, -0.0f}) {
    auto hits = search(cos, std::vector<float>(kD, z));
    ASSERT_FALSE(hits.ok());
    EXPECT_NE(hits.status().message().find("no direction"), std::string::npos) << hits.status().message();
    auto l2_hits = search(l2, std::vector<float>(kD, z));
    ASSERT_TRUE(l2_hits.ok()) << l2_hits.status().ToString();
    EXPECT_EQ(l2_hits->size(), 3u);
  }
  std::vector<float> tiny(kD, 0.0f);
  tiny[36] = std::numeric_limits<float>::denorm_min();
  auto hits = search(cos, tiny);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(hits->size(), 3u);
}

// 600 members of which only two are readable by the user, far from the
// query: every member is decided in one search, and only those two come
// back, whether or not the indexer has caught up.
TEST_F(CollectionsSearchTest, MostlyHiddenMembersAreNeverReturned) {
  for (int i = 0; i < 600; i++) Put(dir_, "h" + std::to_string(i), 0600, static_cast<float>(i));
  Put(dir_, "far1", 0644, 1000);
  Put(dir_, "far2", 0644, 2000);
  EXPECT_EQ(Paths(dir_, user_, 5), (std::vector<std::string>{"far1", "far2"}));
  colls_->WaitIndexed();
  EXPECT_EQ(Paths(dir_, user_, 5), (std::vector<std::string>{"far1", "far2"}));
  EXPECT_EQ(Paths(dir_, user_, 1), (std::vector<std::string>{"far1"}));
  // Root sees the nearest ones.
  EXPECT_EQ(Paths(dir_, root_, 2), (std::vector<std::string>{"h0", "h1"}));
  // A selective filter behaves the same way.
  EXPECT_EQ(Paths(dir_, root_, 3, "name glob \"far*\""), (std::vector<std::string>{"far1", "far2"}));
}

// Searching a subdirectory: its mode and its place are cached between
// searches, and must follow a chmod and a rename at once.
TEST_F(CollectionsSearchTest, SearchedDirectoryScopeFollowsChanges) {
  auto sub = fs_->Mkdir(dir_, "sub", 0755, root_);
  ASSERT_TRUE(sub.ok());
  Put(sub->ino, "a", 0644, 1);
  Put(dir_, "b", 0644, 2);
  colls_->WaitIndexed();
  EXPECT_EQ(Paths(sub->ino, user_, 10), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Paths(sub->ino, user_, 10, "path under \"/sub\""), (std::vector<std::string>{"a"}));
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0754;
  ASSERT_TRUE(fs_->SetAttr(sub->ino, chmod, root_).ok());
  EXPECT_EQ(Paths(sub->ino, user_, 10), std::vector<std::string>{});
  EXPECT_EQ(Paths(dir_, user_, 10), (std::vector<std::string>{"b"}));
  chmod.mode = 0755;
  ASSERT_TRUE(fs_->SetAttr(sub->ino, chmod, root_).ok());
  EXPECT_EQ(Paths(dir_, user_, 10), (std::vector<std::string>{"sub/a", "b"}));
  ASSERT_TRUE(fs_->Rename(dir_, "sub", dir_, "moved", 0, root_).ok());
  EXPECT_EQ(Paths(sub->ino, user_, 10, "path under \"/sub\""), std::vector<std::string>{});
  EXPECT_EQ(Paths(sub->ino, user_, 10, "path under \"/moved\""), (std::vector<std::string>{"a"}));
}

// A search thread keeps its verdicts for the next search of the same
// directory by the same uid and gid while nothing changes: they must not
// outlive a change of supplementary groups, of names or of modes.
TEST_F(CollectionsSearchTest, VerdictsKeptBetweenSearchesFollowEveryChange) {
  const uint64_t g = Put(dir_, "g", 0640, 1);
  Put(dir_, "o", 0644, 2);
  SetAttrRequest chown;
  chown.valid = SetAttrRequest::kGid;
  chown.gid = 500;
  ASSERT_TRUE(fs_->SetAttr(g, chown, root_).ok());
  colls_->WaitIndexed();
  const Cred member{1000, 1000, {500}};
  const Cred outsider{1000, 1000, {}};
  for (int round = 0; round < 2; round++) {
    EXPECT_EQ(Paths(dir_, member, 10), (std::vector<std::string>{"g", "o"})) << round;
    EXPECT_EQ(Paths(dir_, outsider, 10), (std::vector<std::string>{"o"})) << round;
  }
  EXPECT_EQ(Paths(dir_, outsider, 10), (std::vector<std::string>{"o"}));
  EXPECT_EQ(Paths(dir_, outsider, 10), (std::vector<std::string>{"o"}));
  EXPECT_EQ(Paths(dir_, member, 10), (std::vector<std::string>{"g", "o"}));
  EXPECT_EQ(Paths(dir_, member, 10), (std::vector<std::string>{"g", "o"}));
  EXPECT_EQ(Paths(dir_, Cred{1001, 1000, {}}, 10), (std::vector<std::string>{"o"}));
  ASSERT_TRUE(fs_->Rename(dir_, "o", dir_, "o2", 0, root_).ok());
  EXPECT_EQ(Paths(dir_, user_, 10), (std::vector<std::string>{"o2"}));
  ASSERT_TRUE(fs_->Link(g, dir_, "g2", root_).ok());
  ASSERT_TRUE(fs_->Unlink(dir_, "g", root_).ok());
  EXPECT_EQ(Paths(dir_, member, 10), (std::vector<std::string>{"g2", "o2"}));
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0600;
  auto o2 = fs_->Lookup(dir_, "o2", root_);
  ASSERT_TRUE(o2.ok());
  ASSERT_TRUE(fs_->SetAttr(o2->ino, chmod, root_).ok());
  EXPECT_EQ(Paths(dir_, user_, 10), std::vector<std::string>{});
  EXPECT_EQ(Paths(dir_, member, 10), (std::vector<std::string>{"g2"}));
}

// A float16 index holds |x| <= 65504 under l2 and ip: a vector beyond is
// refused when stored (EINVAL, nothing changes), and a collection holding
// one cannot be reindexed to f16. Under cosine vectors are normalised
// first, so any finite one fits.
TEST_F(CollectionsSearchTest, Float16CollectionsRefuseVectorsBeyondItsRange) {
  auto bytes = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
  };
  Put(dir_, "big", 0644, 70000);
  Put(dir_, "small", 0644, 1);
  CollectionConfig half;
  half.dim = kDim;
  half.metric = VEXFS_METRIC_L2;
  half.index_kind = VEXFS_INDEX_HNSW;
  half.element_type = VEXFS_ELEM_F16;
  Status s = colls_->Reindex(dir_, half, root_);
  EXPECT_EQ(s.err(), EINVAL) << s.ToString();
  auto cfg = fs_->GetCollection(dir_);
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->element_type, VEXFS_ELEM_F32);
  colls_->WaitIndexed();
  EXPECT_EQ(Paths(dir_, user_, 10), (std::vector<std::string>{"small", "big"}));

  auto h = fs_->Mkdir(Filesystem::kRootIno, "h", 0755, root_);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(colls_->Create(h->ino, half, root_).ok());
  auto f = fs_->Mknod(h->ino, "f", S_IFREG | 0644, 0, root_);
  ASSERT_TRUE(f.ok());
  const std::vector<float> over = {0, -65520.0f, 0, 0}, edge = {0, -65504.0f, 0, 0};
  s = fs_->SetXattr(f->ino, VEXFS_VECTOR_XATTR, bytes(over), 0, root_);
  EXPECT_EQ(s.err(), EINVAL) << s.ToString();
  EXPECT_EQ(fs_->GetXattr(f->ino, VEXFS_VECTOR_XATTR, root_).status().err(), ENODATA);
  ASSERT_TRUE(fs_->SetXattr(f->ino, VEXFS_VECTOR_XATTR, bytes(edge), 0, root_).ok());
  colls_->WaitIndexed();
  EXPECT_EQ(Paths(h->ino, user_, 10), (std::vector<std::string>{"f"}));

  auto cos = fs_->Mkdir(Filesystem::kRootIno, "cos", 0755, root_);
  ASSERT_TRUE(cos.ok());
  half.metric = VEXFS_METRIC_COSINE;
  ASSERT_TRUE(colls_->Create(cos->ino, half, root_).ok());
  auto g = fs_->Mknod(cos->ino, "g", S_IFREG | 0644, 0, root_);
  ASSERT_TRUE(g.ok());
  const std::vector<float> huge = {1e30f, 0, 0, 0};
  EXPECT_TRUE(fs_->SetXattr(g->ino, VEXFS_VECTOR_XATTR, bytes(huge), 0, root_).ok());
  colls_->WaitIndexed();
  auto hits = colls_->Search(cos->ino, [] {
    SearchRequest r;
    r.dim = kDim;
    r.k = 1;
    r.queries = {1, 0, 0, 0};
    return r;
  }(), user_);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].path, "g");
}

// A batch split over several threads (SearchRequest::threads) answers as
// one thread does: the same hits in the same order, query by query, with
// the caller's visibility, a filter and a subdirectory's paths.
TEST_F(CollectionsSearchTest, ThreadedBatchAnswersAsOneThread) {
  auto sub = fs_->Mkdir(dir_, "s", 0755, root_);
  ASSERT_TRUE(sub.ok());
  for (int i = 0; i < 300; i++) {
    const uint64_t parent = i % 3 == 0 ? sub->ino : dir_;
    auto f = fs_->Mknod(parent, "f" + std::to_string(i), S_IFREG | (i % 5 == 0 ? 0600 : 0644), 0, root_);
    ASSERT_TRUE(f.ok());
    const float v[kDim] = {static_cast<float>(i % 17), static_cast<float>(i / 17), static_cast<float>(i % 3), 1};
    ASSERT_TRUE(fs_->SetXattr(f->ino, VEXFS_VECTOR_XATTR, {reinterpret_cast<const uint8_t*>(v), sizeof(v)}, 0,
                              root_)
                    .ok());
  }
  colls_->WaitIndexed();
  SearchRequest r;
  r.dim = kDim;
  r.k = 7;
  r.effort = 64;
  r.nq = 11;
  for (size_t q = 0; q < r.nq; q++) {
    for (float x : {static_cast<float>(q), static_cast<float>(q % 4) * 3, 1.0f, 0.5f}) r.queries.push_back(x);
  }
  auto key = [](const std::vector<SearchHit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits) {
      out.push_back(std::to_string(h.query) + " " + std::to_string(h.ino) + " " + std::to_string(h.distance) +
                    " " + h.path);
    }
    return out;
  };
  for (const std::string& filter : {std::string(), std::string("name glob \"f1*\"")}) {
    r.filter = filter;
    for (const Cred& cred : {root_, user_}) {
      r.threads = 1;
      auto one = colls_->Search(dir_, r, cred);
      ASSERT_TRUE(one.ok()) << one.status().ToString();
      EXPECT_EQ(one->size(), r.nq * r.k);
      for (size_t t : {2, 3, 11, 64}) {
        r.threads = t;
        auto many = colls_->Search(dir_, r, cred);
        ASSERT_TRUE(many.ok()) << many.status().ToString();
        EXPECT_EQ(key(*many), key(*one)) << "threads " << t << " filter " << filter;
      }
      r.threads = 3;
      auto below = colls_->Search(sub->ino, r, cred);
      r.threads = 1;
      auto below1 = colls_->Search(sub->ino, r, cred);
      ASSERT_TRUE(below.ok() && below1.ok());
      EXPECT_EQ(key(*below), key(*below1));
    }
  }
  // A bad request fails as with one thread.
  r.threads = 4;
  r.filter.clear();
  r.queries[5 * kDim + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(colls_->Search(dir_, r, root_).status().err(), EINVAL);
}

// Voluntary context switches of this process's thread named `name`, or -1.
long VoluntarySwitches(const std::string& name) {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  long found = -1;
  while (dirent* e = readdir(d)) {
    const std::string task = std::string("/proc/self/task/") + e->d_name;
    std::string comm;
    std::getline(std::ifstream(task + "/comm"), comm);
    if (comm != name) continue;
    std::ifstream status(task + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) found = std::stol(line.substr(24));
    }
  }
  closedir(d);
  return found;
}

// The indexer sleeps while there is nothing to index (it used to wake every
// 50 ms, so an idle mount never slept), and a vector stored later still
// wakes it without anyone waiting for the index.
TEST_F(CollectionsSearchTest, IdleIndexerSleepsUntilWorkArrives) {
  Put(dir_, "a", 0644, 1);
  colls_->WaitIndexed();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const long before = VoluntarySwitches("vexfs-indexer");
  ASSERT_GE(before, 0) << "no thread named vexfs-indexer";
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_LE(VoluntarySwitches("vexfs-indexer") - before, 1);

  Put(dir_, "b", 0644, 2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  uint64_t indexed = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = colls_->Info(dir_);
    ASSERT_TRUE(info.ok());
    indexed = info->indexed;
    if (indexed == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(indexed, 2u);
}

}  // namespace
}  // namespace vexfs
