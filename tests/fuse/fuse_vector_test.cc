// Vectors in the mounted filesystem, through the raw interfaces: the
// user.vexfs.vector xattr, the ioctls and the .vexfs-query file. Covers
// permissions (two unprivileged users, a mode-0700 directory), namespace
// changes (rename, unlink, links, truncate), bad input and kill -9.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexfs::fusetest {
namespace {

constexpr uid_t kA = 65534, kB = 65533;

int CreateCollection(const std::string& dir, uint32_t dim, uint8_t metric = VEXFS_METRIC_L2) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno;
  vexfs_ioc_collection c{};
  c.vi_size = sizeof(c);
  c.vi_dim = dim;
  c.vi_metric = metric;
  c.vi_index_kind = VEXFS_INDEX_HNSW;
  const int rc = ioctl(fd, VEXFS_IOC_COLL_CREATE, &c) < 0 ? errno : 0;
  close(fd);
  return rc;
}

int PutVec(const std::string& path, const std::vector<float>& v) {
  return setxattr(path.c_str(), VEXFS_VECTOR_XATTR, v.data(), v.size() * 4, 0) < 0 ? errno : 0;
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, mode);
  ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

// A new session of dir's query file (read-write), or -1 with errno set.
int OpenQueryFile(const std::string& dir) { return open((dir + "/" VEXFS_QUERY_FILE).c_str(), O_RDWR); }

// One request through the query file; returns the parsed answer.
nlohmann::json Query(const std::string& dir, const std::string& request) {
  const int fd = OpenQueryFile(dir);
  if (fd < 0) return nlohmann::json{{"open_errno", errno}};
  std::string answer;
  if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  auto j = nlohmann::json::parse(answer, nullptr, false);
  return j.is_discarded() ? nlohmann::json{{"raw", answer}} : j;
}

// One binary request (struct vexfs_query_req) through the query file.
struct BinAnswer {
  int err = 0;                 // errno of open/write/read, or qa_errno
  std::string message;         // with qa_errno
  std::vector<std::vector<std::string>> paths;  // per query, best first
  bool malformed = false;
};
// The bytes of a binary request; `reserved` goes to qq_reserved[5], `cut`
// bytes are dropped from the end.
std::string BinRequest(const std::vector<float>& queries, uint32_t dim, uint32_t k, const std::string& filter = "",
                       uint32_t reserved = 0, size_t cut = 0) {
  vexfs_query_req h{};
  h.qq_magic = VEXFS_QUERY_REQ_MAGIC;
  h.qq_size = sizeof(h);
  h.qq_k = k;
  h.qq_dim = dim;
  h.qq_nq = dim == 0 ? 1 : static_cast<uint32_t>(queries.size() / dim);
  h.qq_filter_len = static_cast<uint32_t>(filter.size());
  h.qq_reserved[5] = reserved;
  std::string req(reinterpret_cast<const char*>(&h), sizeof(h));
  req += filter;
  req.resize((req.size() + 3) & ~size_t{3}, '\0');
  req.append(reinterpret_cast<const char*>(queries.data()), queries.size() * 4);
  req.resize(req.size() - cut);
  return req;
}

// `req` (a BinRequest) with qq_flags = `flags`.
std::string Flagged(std::string req, uint32_t flags) {
  std::memcpy(req.data() + offsetof(vexfs_query_req, qq_flags), &flags, sizeof(flags));
  return req;
}

// `req` (a BinRequest) with qq_threads = `threads`.
std::string WithThreads(std::string req, uint32_t threads) {
  std::memcpy(req.data() + offsetof(vexfs_query_req, qq_threads), &threads, sizeof(threads));
  return req;
}

// Sends `req` on the open query file `fd` (in write(2)s of `chunk` bytes,
// 0 = one write) and reads the answer to its end.
BinAnswer BinExchange(int fd, const std::string& req, size_t chunk = 0) {
  BinAnswer out;
  if (chunk == 0) chunk = req.size();
  for (size_t off = 0; off < req.size(); off += chunk) {
    const size_t n = std::min(chunk, req.size() - off);
    if (write(fd, req.data() + off, n) != static_cast<ssize_t>(n)) {
      out.err = errno;
      return out;
    }
  }
  std::string ans;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) ans.append(buf, static_cast<size_t>(n));
  if (n < 0) {
    out.err = errno;
    return out;
  }
  vexfs_query_ans a{};
  if (ans.size() < sizeof(a)) {
    out.malformed = true;
    return out;
  }
  std::memcpy(&a, ans.data(), sizeof(a));
  if (a.qa_magic != VEXFS_QUERY_ANS_MAGIC || a.qa_size != sizeof(a) || ans.size() != sizeof(a) + a.qa_bytes) {
    out.malformed = true;
    return out;
  }
  if (a.qa_errno != 0) {
    out.err = static_cast<int>(a.qa_errno);
    out.message = ans.substr(sizeof(a));
    return out;
  }
  out.paths.resize(a.qa_nq);
  size_t off = sizeof(a);
  for (uint32_t i = 0; i < a.qa_total; i++) {
    vexfs_search_hit hit;
    if (off + sizeof(hit) > ans.size()) break;
    std::memcpy(&hit, ans.data() + off, sizeof(hit));
    if (hit.vh_query >= a.qa_nq || off + sizeof(hit) + hit.vh_path_len > ans.size()) break;
    out.paths[hit.vh_query].emplace_back(ans.data() + off + sizeof(hit), hit.vh_path_len);
    off += vexfs_search_hit_bytes(&hit);
  }
  out.malformed = off != ans.size();
  return out;
}

// One binary request (BinRequest's arguments, then qq_flags) on a fresh
// descriptor of dir's query file.
BinAnswer BinQuery(const std::string& dir, const std::vector<float>& queries, uint32_t dim, uint32_t k,
                   const std::string& filter = "", uint32_t reserved = 0, size_t cut = 0, uint32_t flags = 0) {
  const int fd = OpenQueryFile(dir);
  if (fd < 0) {
    BinAnswer out;
    out.err = errno;
    return out;
  }
  BinAnswer out = BinExchange(fd, Flagged(BinRequest(queries, dim, k, filter, reserved, cut), flags));
  close(fd);
  return out;
}

std::vector<std::string> Paths(const nlohmann::json& answer) {
  std::vector<std::string> out;
  if (!answer.contains("results")) return out;
  for (const auto& r : answer["results"]) out.push_back(r["path"].get<std::string>());
  return out;
}

// Search ioctl on `dir`; returns errno, fills paths.
int IoctlSearch(const std::string& dir, const std::vector<float>& q, uint32_t k, const std::string& filter,
                std::vector<std::string>* paths) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno;
  auto s = std::make_unique<vexfs_ioc_search>();
  std::memset(s.get(), 0, sizeof(*s));
  s->sq_size = sizeof(*s);
  s->sq_k = k;
  s->sq_dim = static_cast<uint32_t>(q.size());
  s->sq_nq = 1;
  s->sq_filter_len = static_cast<uint32_t>(filter.size());
  std::memcpy(s->sq_buf, filter.data(), filter.size());
  std::memcpy(s->sq_buf + ((filter.size() + 3) & ~size_t{3}), q.data(), q.size() * 4);
  const int rc = ioctl(fd, VEXFS_IOC_SEARCH, s.get()) < 0 ? errno : 0;
  close(fd);
  if (rc == 0 && paths) {
    paths->clear();
    size_t off = 0;
    for (uint32_t i = 0; i < s->sq_returned; i++) {
      vexfs_search_hit h;
      std::memcpy(&h, s->sq_buf + off, sizeof(h));
      paths->emplace_back(reinterpret_cast<const char*>(s->sq_buf + off + sizeof(h)), h.vh_path_len);
      off += vexfs_search_hit_bytes(&h);
    }
  }
  return rc;
}

// VEXFS_IOC_IMPORT on directory `dir`: stages `vecs` (row-major, `dim`
// per name) on the same descriptor, then imports. Returns the ioctl's
// errno (0 on success, *out then holds vm_done / vm_error).
int Import(const std::string& dir, const std::vector<std::string>& names, const std::vector<float>& vecs,
           uint32_t dim, vexfs_ioc_import* out, uint32_t flags = 0, uint32_t mode = 0644) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno;
  int rc = 0;
  auto st = std::make_unique<vexfs_ioc_stage>();
  for (size_t off = 0; rc == 0 && off < vecs.size(); off += VEXFS_IOC_INLINE_FLOATS) {
    std::memset(st.get(), 0, sizeof(*st));
    st->vs_size = sizeof(*st);
    st->vs_offset = static_cast<uint32_t>(off);
    st->vs_count = static_cast<uint32_t>(std::min<size_t>(VEXFS_IOC_INLINE_FLOATS, vecs.size() - off));
    std::memcpy(st->vs_data, vecs.data() + off, st->vs_count * 4);
    if (ioctl(fd, VEXFS_IOC_STAGE, st.get()) < 0) rc = errno;
  }
  if (rc == 0) {
    std::memset(out, 0, sizeof(*out));
    out->vm_size = sizeof(*out);
    out->vm_flags = flags;
    out->vm_count = static_cast<uint32_t>(names.size());
    out->vm_dim = dim;
    out->vm_mode = mode;
    size_t pos = 0;
    for (const auto& n : names) {
      std::memcpy(out->vm_names + pos, n.data(), n.size());
      pos += n.size() + 1;
    }
    out->vm_names_len = static_cast<uint32_t>(pos);
    if (ioctl(fd, VEXFS_IOC_IMPORT, out) < 0) rc = errno;
  }
  close(fd);
  return rc;
}

// VEXFS_IOC_COLL_INFO on directory `dir`; returns errno.
int CollInfo(const std::string& dir, vexfs_ioc_collection* info) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno;
  std::memset(info, 0, sizeof(*info));
  info->vi_size = sizeof(*info);
  const int rc = ioctl(fd, VEXFS_IOC_COLL_INFO, info) < 0 ? errno : 0;
  close(fd);
  return rc;
}

std::vector<float> Xattr3(const std::string& path) {
  std::vector<float> v(3);
  if (getxattr(path.c_str(), VEXFS_VECTOR_XATTR, v.data(), 12) != 12) return {};
  return v;
}

class FuseVectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = SkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(vol_.Mount()) << vol_.log();
    ASSERT_EQ(mkdir(vol_.P("c").c_str(), 0755), 0);
    ASSERT_EQ(CreateCollection(vol_.P("c"), 3), 0);
  }
  // Files doc0..doc39 in collection `c` on a 7-wide grid, vector
  // (i % 7, i / 7, 1); returns 9 queries (q, q % 3, 1) as one batch. Waits
  // until the indexer has taken every vector: some of the queries' k-th
  // results are ties, which a vector still pending (searched exactly) and
  // the same vector in the graph may order differently, so answers compared
  // across requests must all come from the graph.
  std::vector<float> PutGridAndQueries(const std::string& c) {
    for (int i = 0; i < 40; i++) {
      const std::string f = c + "/doc" + std::to_string(i);
      WriteFile(f, "x");
      EXPECT_EQ(PutVec(f, {float(i % 7), float(i / 7), 1}), 0) << f;
    }
    vexfs_ioc_collection info{};
    for (int i = 0; i < 1000 && (CollInfo(c, &info) != 0 || info.vi_pending != 0); i++) usleep(10000);
    EXPECT_EQ(info.vi_pending, 0u);
    std::vector<float> queries;
    for (int q = 0; q < 9; q++) {
      for (float x : {float(q), float(q % 3), 1.0f}) queries.push_back(x);
    }
    return queries;
  }
  Volume vol_;
};

TEST_F(FuseVectorTest, SearchNeverRevealsWhatTheCallerCannotRead) {
  const std::string c = vol_.P("c");
  ASSERT_EQ(mkdir((c + "/public").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((c + "/private").c_str(), 0700), 0);
  ASSERT_EQ(chown((c + "/private").c_str(), kB, kB), 0);
  WriteFile(c + "/public/a", "a");
  WriteFile(c + "/private/secret", "s");
  ASSERT_EQ(chown((c + "/private/secret").c_str(), kB, kB), 0);
  WriteFile(c + "/unreadable", "u", 0600);
  ASSERT_EQ(PutVec(c + "/public/a", {5, 0, 0}), 0);
  ASSERT_EQ(PutVec(c + "/private/secret", {1, 0, 0}), 0);
  ASSERT_EQ(PutVec(c + "/unreadable", {1.1f, 0, 0}), 0);
  const std::string req = R"({"vector":[1,0,0],"k":10})";

  // Root sees all three, closest first.
  EXPECT_EQ(Paths(Query(c, req)), (std::vector<std::string>{"private/secret", "unreadable", "public/a"}));
  // User A: neither the file in B's 0700 directory nor the 0600 file.
  std::vector<std::string> seen;
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              auto ans = Query(c, req);
              return Paths(ans) == std::vector<std::string>{"public/a"} ? 0 : 1;
            }),
            0);
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              std::vector<std::string> p;
              const int rc = IoctlSearch(c, {1, 0, 0}, 10, "", &p);
              return rc == 0 && p == std::vector<std::string>{"public/a"} ? 0 : 1;
            }),
            0);
  // User B owns the private directory: sees its file, still not the 0600 one.
  ASSERT_EQ(RunAs(kB, kB, {}, [&] {
              auto ans = Query(c, req);
              return Paths(ans) == std::vector<std::string>{"private/secret", "public/a"} ? 0 : 1;
            }),
            0);
  // The query file's binary requests obey the same rules.
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              const BinAnswer b = BinQuery(c, {1, 0, 0, 6, 0, 0}, 3, 10);
              using P = std::vector<std::vector<std::string>>;
              return b.err == 0 && !b.malformed && b.paths == P{{"public/a"}, {"public/a"}} ? 0 : 1;
            }),
            0);
  ASSERT_EQ(RunAs(kB, kB, {}, [&] {
              const BinAnswer b = BinQuery(c, {1, 0, 0}, 3, 10);
              using P = std::vector<std::vector<std::string>>;
              return b.err == 0 && b.paths == P{{"private/secret", "public/a"}} ? 0 : 1;
            }),
            0);
  // Searched at the write (VEXFS_QUERY_AT_WRITE): the same, for the writer.
  for (uint32_t flags : {0u, VEXFS_QUERY_AT_WRITE}) {
    using P = std::vector<std::vector<std::string>>;
    const BinAnswer all = BinQuery(c, {1, 0, 0, 6, 0, 0}, 3, 10, "", 0, 0, flags);
    EXPECT_EQ(all.err, 0) << all.message;
    EXPECT_EQ(all.paths, (P{{"private/secret", "unreadable", "public/a"}, {"public/a", "unreadable", "private/secret"}}));
    EXPECT_EQ(RunAs(kA, kA, {}, [&] {
                const BinAnswer b = BinQuery(c, {1, 0, 0, 6, 0, 0}, 3, 10, "", 0, 0, flags);
                return b.err == 0 && !b.malformed && b.paths == P{{"public/a"}, {"public/a"}} ? 0 : 1;
              }),
              0)
        << flags;
    EXPECT_EQ(RunAs(kB, kB, {}, [&] {
                const BinAnswer b = BinQuery(c, {1, 0, 0}, 3, 10, "", 0, 0, flags);
                return b.err == 0 && b.paths == P{{"private/secret", "public/a"}} ? 0 : 1;
              }),
              0)
        << flags;
  }
  // An answer made at the write is for the writer's credentials only: a
  // process that shares the descriptor but not the credentials gets
  // EACCES, not the writer's results; the writer then still reads it.
  {
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    const std::string req = Flagged(BinRequest({1, 0, 0}, 3, 10), VEXFS_QUERY_AT_WRITE);
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    EXPECT_EQ(RunAs(kA, kA, {}, [&] {
                char buf[4096];
                return read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
              }),
              EACCES);
    const BinAnswer root = BinExchange(fd, "");
    EXPECT_EQ(root.err, 0) << root.message;
    EXPECT_EQ(root.paths, (std::vector<std::vector<std::string>>{{"private/secret", "unreadable", "public/a"}}));
    // Written by A: root may not read it either, A may.
    EXPECT_EQ(RunAs(kA, kA, {}, [&] { return write(fd, req.data(), req.size()) < 0 ? errno : 0; }), 0);
    char buf[4096];
    EXPECT_EQ(read(fd, buf, sizeof(buf)), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(RunAs(kA, kA, {}, [&] {
                const BinAnswer b = BinExchange(fd, "");
                return b.err == 0 && b.paths == std::vector<std::vector<std::string>>{{"public/a"}} ? 0 : 1;
              }),
              0);
    close(fd);
  }
  // Searching inside the private directory as A: the directory itself is closed.
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              std::vector<std::string> p;
              const int rc = IoctlSearch(c + "/private", {1, 0, 0}, 10, "", &p);
              return rc == EACCES ? 0 : 100 + rc;
            }),
            0);
}

// Supplementary groups are read lazily (only for checks where the group
// class and the other class differ): membership must still count, both for
// search results and for open(2) on the mount.
// VEXFS_IOC_PUT needs write permission on the file, as setxattr(2) does,
// whatever the descriptor it comes through: one open for writing,
// inherited from root, does not stand in for it (docs/ioctl.md section 6).
TEST_F(FuseVectorTest, PutNeedsWritePermissionWhateverTheDescriptor) {
  const std::string c = vol_.P("c");
  const std::string theirs = c + "/root_file", mine = c + "/a_file";
  WriteFile(theirs, "r");  // root's, 0644
  WriteFile(mine, "a");
  ASSERT_EQ(chown(mine.c_str(), kA, kA), 0);
  auto put = [](int fd, bool remove) {
    auto p = std::make_unique<vexfs_ioc_put>();
    std::memset(p.get(), 0, sizeof(*p));
    p->vp_size = sizeof(*p);
    if (remove) {
      p->vp_flags = VEXFS_PUT_REMOVE;
    } else {
      p->vp_dim = 3;
      p->vp_data[0] = 1;
    }
    return ioctl(fd, VEXFS_IOC_PUT, p.get()) < 0 ? errno : 0;
  };
  const int wfd = open(theirs.c_str(), O_WRONLY);
  const int rfd = open(theirs.c_str(), O_RDONLY);
  ASSERT_GE(wfd, 0);
  ASSERT_GE(rfd, 0);
  for (const int fd : {wfd, rfd}) {
    EXPECT_EQ(RunAs(kA, kA, {}, [&] { return put(fd, false); }), EACCES) << (fd == wfd ? "O_WRONLY" : "O_RDONLY");
    EXPECT_EQ(RunAs(kA, kA, {}, [&] {
                const float v[3] = {1, 0, 0};
                return fsetxattr(fd, VEXFS_VECTOR_XATTR, v, sizeof(v), 0) < 0 ? errno : 0;
              }),
              EACCES);
  }
  char buf[64];
  EXPECT_EQ(getxattr(theirs.c_str(), VEXFS_VECTOR_XATTR, buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  // Root through either descriptor, A on its own file through a read-only one.
  EXPECT_EQ(put(rfd, false), 0);
  EXPECT_EQ(RunAs(kA, kA, {}, [&] { return put(wfd, true); }), EACCES);
  EXPECT_EQ(put(wfd, true), 0);
  EXPECT_EQ(getxattr(theirs.c_str(), VEXFS_VECTOR_XATTR, buf, sizeof(buf)), -1);
  EXPECT_EQ(RunAs(kA, kA, {}, [&] {
              const int fd = open(mine.c_str(), O_RDONLY);
              if (fd < 0) return 100;
              const int rc = put(fd, false);
              close(fd);
              return rc;
            }),
            0);
  EXPECT_EQ(getxattr(mine.c_str(), VEXFS_VECTOR_XATTR, buf, sizeof(buf)), 12);
  close(wfd);
  close(rfd);
}

TEST_F(FuseVectorTest, SupplementaryGroupsStillGrantAccess) {
  constexpr gid_t kG = 4242;
  const std::string c = vol_.P("c");
  ASSERT_EQ(mkdir((c + "/team").c_str(), 0750), 0);
  ASSERT_EQ(chown((c + "/team").c_str(), 0, kG), 0);
  WriteFile(c + "/team/doc", "d", 0640);
  ASSERT_EQ(chown((c + "/team/doc").c_str(), 0, kG), 0);
  WriteFile(c + "/open", "o", 0644);
  ASSERT_EQ(PutVec(c + "/team/doc", {1, 0, 0}), 0);
  ASSERT_EQ(PutVec(c + "/open", {2, 0, 0}), 0);
  auto search = [&](std::vector<std::string> want) {
    return [=] {
      std::vector<std::string> p;
      const int rc = IoctlSearch(c, {1, 0, 0}, 10, "", &p);
      return rc == 0 && p == want ? 0 : 1;
    };
  };
  const std::string doc = c + "/team/doc";
  auto read_doc = [doc] {
    const int fd = open(doc.c_str(), O_RDONLY);
    if (fd < 0) return errno;
    close(fd);
    return 0;
  };
  EXPECT_EQ(RunAs(kA, kA, {kG}, search({"team/doc", "open"})), 0);
  EXPECT_EQ(RunAs(kA, kA, {}, search({"open"})), 0);
  EXPECT_EQ(RunAs(kA, kA, {kG}, read_doc), 0);
  EXPECT_EQ(RunAs(kA, kA, {}, read_doc), EACCES);
  // The group class can also be the more restrictive one.
  ASSERT_EQ(chmod((c + "/open").c_str(), 0604), 0);
  ASSERT_EQ(chown((c + "/open").c_str(), 0, kG), 0);
  EXPECT_EQ(RunAs(kA, kA, {kG}, search({"team/doc"})), 0);
  EXPECT_EQ(RunAs(kA, kA, {}, search({"open"})), 0);
  // A request searched at the write is filtered by the writer's groups, and
  // read only with them: the same uid without the group gets EACCES.
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  const std::string req = Flagged(BinRequest({1, 0, 0}, 3, 10), VEXFS_QUERY_AT_WRITE);
  EXPECT_EQ(RunAs(kA, kA, {kG}, [&] { return write(fd, req.data(), req.size()) < 0 ? errno : 0; }), 0);
  EXPECT_EQ(RunAs(kA, kA, {}, [&] {
              char buf[4096];
              return read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
            }),
            EACCES);
  EXPECT_EQ(RunAs(kA, kA, {kG}, [&] {
              const BinAnswer b = BinExchange(fd, "");
              return b.err == 0 && b.paths == std::vector<std::vector<std::string>>{{"team/doc"}} ? 0 : 1;
            }),
            0);
  EXPECT_EQ(RunAs(kA, kA, {}, [&] {
              const BinAnswer b = BinExchange(fd, req);
              return b.err == 0 && b.paths == std::vector<std::vector<std::string>>{{"open"}} ? 0 : 1;
            }),
            0);
  close(fd);
}

TEST_F(FuseVectorTest, XattrRoundTripAndNamespaceChangesKeepTheIndexRight) {
  const std::string c = vol_.P("c");
  for (int i = 0; i < 4; i++) WriteFile(c + "/f" + std::to_string(i), "x");
  for (int i = 0; i < 4; i++) ASSERT_EQ(PutVec(c + "/f" + std::to_string(i), {float(i), 0, 0}), 0);
  float got[3] = {};
  ASSERT_EQ(getxattr((c + "/f2").c_str(), VEXFS_VECTOR_XATTR, got, sizeof(got)), 12);
  EXPECT_EQ(got[0], 2.0f);
  std::vector<std::string> p;
  ASSERT_EQ(IoctlSearch(c, {2, 0, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"f2"});
  // rename: found under the new name
  ASSERT_EQ(rename((c + "/f2").c_str(), (c + "/g2").c_str()), 0);
  ASSERT_EQ(IoctlSearch(c, {2, 0, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"g2"});
  // truncate keeps the vector
  ASSERT_EQ(truncate((c + "/g2").c_str(), 0), 0);
  ASSERT_EQ(IoctlSearch(c, {2, 0, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"g2"});
  // removexattr and unlink take files out at once
  ASSERT_EQ(removexattr((c + "/g2").c_str(), VEXFS_VECTOR_XATTR), 0);
  ASSERT_EQ(unlink((c + "/f3").c_str()), 0);
  ASSERT_EQ(IoctlSearch(c, {2.5f, 0, 0}, 10, "", &p), 0);
  EXPECT_EQ(std::set<std::string>(p.begin(), p.end()), (std::set<std::string>{"f0", "f1"}));
  // hard link in the same collection: the file has one vector, one hit
  ASSERT_EQ(link((c + "/f1").c_str(), (c + "/h1").c_str()), 0);
  ASSERT_EQ(IoctlSearch(c, {1, 0, 0}, 10, "", &p), 0);
  EXPECT_EQ(p.size(), 2u);
  ASSERT_EQ(unlink((c + "/f1").c_str()), 0);
  ASSERT_EQ(IoctlSearch(c, {1, 0, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"h1"});
  // across collections: files move with their vector; directories and
  // incompatible vectors are EXDEV
  ASSERT_EQ(mkdir(vol_.P("d").c_str(), 0755), 0);
  ASSERT_EQ(CreateCollection(vol_.P("d"), 3), 0);
  ASSERT_EQ(rename((c + "/f0").c_str(), vol_.P("d/f0").c_str()), 0);
  ASSERT_EQ(IoctlSearch(vol_.P("d"), {0, 0, 0}, 5, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"f0"});
  ASSERT_EQ(mkdir((c + "/sub").c_str(), 0755), 0);
  EXPECT_EQ(Err(rename((c + "/sub").c_str(), vol_.P("d/sub").c_str())), EXDEV);
  EXPECT_EQ(Err(link(vol_.P("d/f0").c_str(), (c + "/l0").c_str())), EXDEV);
  ASSERT_EQ(mkdir(vol_.P("e").c_str(), 0755), 0);
  ASSERT_EQ(CreateCollection(vol_.P("e"), 4), 0);
  EXPECT_EQ(Err(rename(vol_.P("d/f0").c_str(), vol_.P("e/f0").c_str())), EXDEV);
}

TEST_F(FuseVectorTest, BadInputIsRejectedAndChangesNothing) {
  const std::string c = vol_.P("c");
  WriteFile(c + "/f", "x");
  const float nan = std::nanf("");
  EXPECT_EQ(PutVec(c + "/f", {1, 2}), EINVAL);
  EXPECT_EQ(PutVec(c + "/f", {1, nan, 0}), EINVAL);
  EXPECT_EQ(PutVec(c + "/f", {1, INFINITY, 0}), EINVAL);
  char buf[64];
  EXPECT_EQ(getxattr((c + "/f").c_str(), VEXFS_VECTOR_XATTR, buf, sizeof(buf)), -1);
  EXPECT_EQ(errno, ENODATA);
  ASSERT_EQ(PutVec(c + "/f", {1, 0, 0}), 0);
  std::vector<std::string> p;
  EXPECT_EQ(IoctlSearch(c, {1, 0, 0}, 0, "", &p), EINVAL);
  EXPECT_EQ(IoctlSearch(c, {1, 0, 0}, 10001, "", &p), EINVAL);
  EXPECT_EQ(IoctlSearch(c, {1, 0}, 1, "", &p), EINVAL);
  EXPECT_EQ(IoctlSearch(c, {nan, 0, 0}, 1, "", &p), EINVAL);
  EXPECT_EQ(IoctlSearch(c, {1, 0, 0}, 1, "xattr.lang = ", &p), EINVAL);
  EXPECT_EQ(IoctlSearch(vol_.P(""), {1, 0, 0}, 1, "", &p), ENOTSUP);
  EXPECT_EQ(CreateCollection(c, 3), EEXIST);
  EXPECT_EQ(CreateCollection(vol_.P("x0"), 3), ENOENT);
  ASSERT_EQ(mkdir(vol_.P("z").c_str(), 0755), 0);
  EXPECT_EQ(CreateCollection(vol_.P("z"), 0), EINVAL);
  EXPECT_EQ(CreateCollection(vol_.P("z"), VEXFS_VECTOR_MAX_DIM + 1), EINVAL);
  auto ans = Query(c, "{not json");
  EXPECT_EQ(ans.value("errno", 0), EINVAL) << ans.dump();
  ans = Query(c, R"({"vector":[1,0,0],"k":0})");
  EXPECT_EQ(ans.value("errno", 0), EINVAL) << ans.dump();
  ans = Query(c, R"({"vector":[1,0,0],"filter":"size >"})");
  EXPECT_EQ(ans.value("errno", 0), EINVAL) << ans.dump();
  EXPECT_NE(ans.value("error", "").find("column"), std::string::npos) << ans.dump();
  // Binary requests on the query file: the answer carries the errno.
  BinAnswer b = BinQuery(c, {1, 0, 0}, 3, 1);
  ASSERT_EQ(b.err, 0) << b.message;
  EXPECT_EQ(b.paths, (std::vector<std::vector<std::string>>{{"f"}}));
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 0).err, EINVAL);
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 1, "", 7).err, EINVAL);        // reserved field
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 1, "", 0, 4).err, EINVAL);     // one float short
  EXPECT_EQ(BinQuery(c, {1, 0}, 2, 1).err, EINVAL);                  // dimension mismatch
  EXPECT_EQ(BinQuery(c, {nan, 0, 0}, 3, 1).err, EINVAL);
  b = BinQuery(c, {1, 0, 0}, 3, 1, "size >");
  EXPECT_EQ(b.err, EINVAL);
  EXPECT_NE(b.message.find("column"), std::string::npos) << b.message;
  EXPECT_FALSE(b.malformed);
  // The stored vector is untouched by all of that.
  float got[3] = {};
  ASSERT_EQ(getxattr((c + "/f").c_str(), VEXFS_VECTOR_XATTR, got, sizeof(got)), 12);
  EXPECT_EQ(got[0], 1.0f);
  // No query file outside collections.
  struct stat st;
  EXPECT_EQ(Err(stat(vol_.P(VEXFS_QUERY_FILE).c_str(), &st)), ENOENT);
}

TEST_F(FuseVectorTest, BulkImportIoctlCreatesFilesWithVectors) {
  const std::string c = vol_.P("c");
  struct stat st;
  // A negative dentry the kernel may cache must not hide imported files.
  EXPECT_EQ(Err(stat((c + "/n1").c_str(), &st)), ENOENT);
  auto imp = std::make_unique<vexfs_ioc_import>();
  ASSERT_EQ(Import(c, {"n1", "n2", "n3"}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, imp.get(), 0, 0640), 0);
  EXPECT_EQ(imp->vm_done, 3u);
  EXPECT_EQ(imp->vm_error, 0u);
  ASSERT_EQ(stat((c + "/n1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, S_IFREG | 0640u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(Xattr3(c + "/n2"), (std::vector<float>{0, 1, 0}));
  std::vector<std::string> p;
  ASSERT_EQ(IoctlSearch(c, {0, 0.9f, 0.1f}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"n2"});

  // An existing file gets the new vector; with EXCL the batch stops there.
  ASSERT_EQ(Import(c, {"n4", "n1"}, {2, 0, 0, 0, 2, 0}, 3, imp.get()), 0);
  EXPECT_EQ(imp->vm_done, 2u);
  EXPECT_EQ(Xattr3(c + "/n1"), (std::vector<float>{0, 2, 0}));
  ASSERT_EQ(Import(c, {"n5", "n2", "n6"}, {3, 0, 0, 0, 3, 0, 0, 0, 3}, 3, imp.get(), VEXFS_IMPORT_EXCL), 0);
  EXPECT_EQ(imp->vm_done, 1u);
  EXPECT_EQ(imp->vm_error, static_cast<uint32_t>(EEXIST));
  EXPECT_EQ(Xattr3(c + "/n5"), (std::vector<float>{3, 0, 0}));
  EXPECT_EQ(Xattr3(c + "/n2"), (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(Err(stat((c + "/n6").c_str(), &st)), ENOENT);
  // A directory in the way stops the batch too.
  ASSERT_EQ(mkdir((c + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(Import(c, {"sub"}, {1, 1, 1}, 3, imp.get()), 0);
  EXPECT_EQ(imp->vm_done, 0u);
  EXPECT_EQ(imp->vm_error, static_cast<uint32_t>(EISDIR));

  // Bad input: refused as a whole, nothing created.
  const float nan = std::nanf("");
  EXPECT_EQ(Import(c, {"b1", "b2"}, {1, 0, 0, nan, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {"b1", "b2"}, {1, 0, 0, INFINITY, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {"b1"}, {1, 0, 0, 1}, 4, imp.get()), EINVAL);          // dimension
  EXPECT_EQ(Import(c, {"b1", "b2"}, {1, 0, 0}, 3, imp.get()), EINVAL);       // staged size
  EXPECT_EQ(Import(c, {"b1", "b1"}, {1, 0, 0, 0, 1, 0}, 3, imp.get()), EINVAL);  // duplicate
  EXPECT_EQ(Import(c, {"x/b1"}, {1, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {".."}, {1, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {""}, {1, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {std::string(256, 'n')}, {1, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {VEXFS_QUERY_FILE}, {1, 0, 0}, 3, imp.get()), EINVAL);
  EXPECT_EQ(Import(c, {"b1"}, {1, 0, 0}, 3, imp.get(), 0, 010644), EINVAL);  // mode
  EXPECT_EQ(Import(c, {"b1"}, {1, 0, 0}, 3, imp.get(), 0x80), EINVAL);       // flags
  EXPECT_EQ(Err(stat((c + "/b1").c_str(), &st)), ENOENT);
  EXPECT_EQ(Err(stat((c + "/b2").c_str(), &st)), ENOENT);
  ASSERT_EQ(mkdir(vol_.P("plain").c_str(), 0755), 0);
  EXPECT_EQ(Import(vol_.P("plain"), {"b1"}, {1, 0, 0}, 3, imp.get()), ENOTSUP);
  ASSERT_EQ(mkdir(vol_.P("cos").c_str(), 0755), 0);
  ASSERT_EQ(CreateCollection(vol_.P("cos"), 3, VEXFS_METRIC_COSINE), 0);
  EXPECT_EQ(Import(vol_.P("cos"), {"z"}, {0, 0, 0}, 3, imp.get()), EINVAL);  // no direction
  {
    const int fd = open((c + "/n1").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    std::memset(imp.get(), 0, sizeof(*imp));
    imp->vm_size = sizeof(*imp);
    EXPECT_EQ(ioctl(fd, VEXFS_IOC_IMPORT, imp.get()) < 0 ? errno : 0, ENOTDIR);
    close(fd);
  }

  // Unprivileged: needs write permission on the directory; files belong
  // to the caller.
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              vexfs_ioc_import r;
              return Import(c, {"u1"}, {1, 0, 0}, 3, &r) == EACCES ? 0 : 1;
            }),
            0);
  ASSERT_EQ(mkdir((c + "/mine").c_str(), 0755), 0);
  ASSERT_EQ(chown((c + "/mine").c_str(), kA, kA), 0);
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              vexfs_ioc_import r;
              return Import(c + "/mine", {"u1"}, {1, 0, 0}, 3, &r) == 0 && r.vm_done == 1 ? 0 : 1;
            }),
            0);
  ASSERT_EQ(stat((c + "/mine/u1").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kA);
  EXPECT_EQ(st.st_gid, kA);
  // Root's file in A's directory: A may not give it a vector.
  WriteFile(c + "/mine/roots", "r", 0644);
  ASSERT_EQ(RunAs(kA, kA, {}, [&] {
              vexfs_ioc_import r;
              const int rc = Import(c + "/mine", {"roots"}, {1, 0, 0}, 3, &r);
              return rc == 0 && r.vm_done == 0 && r.vm_error == EACCES ? 0 : 1;
            }),
            0);
}

// Threads sharing one descriptor take turns on its staging buffer and
// results: every staged search succeeds and the daemon survives.
TEST_F(FuseVectorTest, ConcurrentIoctlsOnOneDescriptor) {
  const std::string c = vol_.P("c");
  WriteFile(c + "/a", "a");
  ASSERT_EQ(PutVec(c + "/a", {1, 0, 0}), 0);
  const int fd = open(c.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  std::atomic<int> failures{0};
  auto worker = [&](float x) {
    auto st = std::make_unique<vexfs_ioc_stage>();
    auto s = std::make_unique<vexfs_ioc_search>();
    for (int i = 0; i < 500; i++) {
      std::memset(st.get(), 0, sizeof(*st));
      st->vs_size = sizeof(*st);
      st->vs_count = 3;
      st->vs_data[0] = x;
      if (ioctl(fd, VEXFS_IOC_STAGE, st.get()) != 0) failures++;
      std::memset(s.get(), 0, sizeof(*s));
      s->sq_size = sizeof(*s);
      s->sq_flags = VEXFS_SEARCH_STAGED;
      s->sq_k = 1;
      s->sq_dim = 3;
      s->sq_nq = 1;
      // The other thread may restage in between: still exactly 3 floats.
      if (ioctl(fd, VEXFS_IOC_SEARCH, s.get()) != 0 || s->sq_total != 1) failures++;
    }
  };
  std::thread t1(worker, 1.0f), t2(worker, 2.0f);
  t1.join();
  t2.join();
  close(fd);
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::string> p;
  EXPECT_EQ(IoctlSearch(c, {1, 0, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"a"});
}

TEST_F(FuseVectorTest, FiltersOnXattrsSizeAndNames) {
  const std::string c = vol_.P("c");
  for (int i = 0; i < 6; i++) {
    const std::string f = c + "/doc" + std::to_string(i) + (i % 2 ? ".md" : ".txt");
    WriteFile(f, std::string(static_cast<size_t>(i) * 100, 'x'));
    const std::string lang = i < 3 ? "en" : "de";
    ASSERT_EQ(setxattr(f.c_str(), "user.lang", lang.data(), lang.size(), 0), 0);
    ASSERT_EQ(PutVec(f, {float(i), 0, 0}), 0);
  }
  std::vector<std::string> p;
  ASSERT_EQ(IoctlSearch(c, {0, 0, 0}, 10, R"(xattr.lang = "de" and name glob "*.md")", &p), 0);
  EXPECT_EQ(p, (std::vector<std::string>{"doc3.md", "doc5.md"}));
  ASSERT_EQ(IoctlSearch(c, {0, 0, 0}, 2, "size > 250", &p), 0);
  EXPECT_EQ(p, (std::vector<std::string>{"doc3.md", "doc4.txt"}));
  auto ans = Query(c, R"J({"vectors":[[0,0,0],[5,0,0]],"k":1,"filter":"xattr.lang in (\"en\")"})J");
  ASSERT_TRUE(ans.contains("results")) << ans.dump();
  EXPECT_EQ(ans["results"][0][0]["path"], "doc0.txt");
  EXPECT_EQ(ans["results"][1][0]["path"], "doc2.txt");
  const BinAnswer b = BinQuery(c, {0, 0, 0, 5, 0, 0}, 3, 1, R"(xattr.lang in ("en"))");
  ASSERT_EQ(b.err, 0) << b.message;
  EXPECT_EQ(b.paths, (std::vector<std::vector<std::string>>{{"doc0.txt"}, {"doc2.txt"}}));
}

// A binary request may arrive in any number of write(2)s, cut anywhere (in
// the magic, the header, the filter, its padding, inside a float), and
// requests of other sizes may follow on the same descriptor: the answers
// are those of single writes.
TEST_F(FuseVectorTest, BinaryRequestsInPiecesAndInSequence) {
  const std::string c = vol_.P("c");
  for (int i = 0; i < 6; i++) {
    const std::string f = c + "/doc" + std::to_string(i) + (i % 2 ? ".md" : ".txt");
    WriteFile(f, "x");
    ASSERT_EQ(PutVec(f, {float(i), 1, 0}), 0);
  }
  const std::string filter = R"(name glob "*.txt")";  // 17 bytes: 3 of padding
  const std::string two = BinRequest({0, 1, 0, 5, 1, 0}, 3, 2, filter);
  const std::string one = BinRequest({5, 1, 0}, 3, 1);
  const std::vector<std::vector<std::string>> want_two = {{"doc0.txt", "doc2.txt"}, {"doc4.txt", "doc2.txt"}};
  const std::vector<std::vector<std::string>> want_one = {{"doc5.md"}};
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{3}, size_t{5}, size_t{7}, size_t{66}}) {
    BinAnswer b = BinExchange(fd, two, chunk);
    ASSERT_EQ(b.err, 0) << "chunk " << chunk << ": " << b.message;
    EXPECT_FALSE(b.malformed);
    EXPECT_EQ(b.paths, want_two) << "chunk " << chunk;
    b = BinExchange(fd, one, chunk);
    ASSERT_EQ(b.err, 0) << "chunk " << chunk << ": " << b.message;
    EXPECT_EQ(b.paths, want_one) << "chunk " << chunk;
  }
  // A short request after a longer one is short (its missing float is not
  // taken from the last request), and one float too many is too long.
  BinAnswer b = BinExchange(fd, BinRequest({5, 1, 0}, 3, 1, "", 0, 4), 5);
  EXPECT_EQ(b.err, EINVAL);
  b = BinExchange(fd, BinRequest({5, 1, 0, 0}, 3, 1), 5);  // nq 1 from 4 / 3
  EXPECT_EQ(b.err, EINVAL);
  b = BinExchange(fd, two, 4);
  ASSERT_EQ(b.err, 0) << b.message;
  EXPECT_EQ(b.paths, want_two);
  close(fd);
}

// qq_threads: a batch split over several daemon threads answers exactly
// as one thread does; more than VEXFS_QUERY_MAX_THREADS is EINVAL.
TEST_F(FuseVectorTest, ThreadedBatchesAnswerAsOneThread) {
  const std::string c = vol_.P("c");
  const std::vector<float> queries = PutGridAndQueries(c);
  ASSERT_FALSE(HasFailure());
  const std::string req = BinRequest(queries, 3, 5);
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  const BinAnswer one = BinExchange(fd, req);
  ASSERT_EQ(one.err, 0) << one.message;
  ASSERT_EQ(one.paths.size(), 9u);
  for (const auto& p : one.paths) EXPECT_EQ(p.size(), 5u);
  for (uint32_t t : {1u, 2u, 4u, 9u, VEXFS_QUERY_MAX_THREADS}) {
    const BinAnswer many = BinExchange(fd, WithThreads(req, t));
    ASSERT_EQ(many.err, 0) << "threads " << t << ": " << many.message;
    EXPECT_FALSE(many.malformed);
    EXPECT_EQ(many.paths, one.paths) << "threads " << t;
  }
  for (uint32_t t : {VEXFS_QUERY_MAX_THREADS + 1, UINT32_MAX}) {
    const BinAnswer bad = BinExchange(fd, WithThreads(req, t));
    EXPECT_EQ(bad.err, EINVAL) << "threads " << t;
    EXPECT_NE(bad.message.find("qq_threads"), std::string::npos) << bad.message;
  }
  close(fd);
}

// Two descriptors of one query file are separate sessions: a request
// written on one while the other's is unanswered changes neither answer
// (what a pipelining client relies on, docs/ioctl.md section 10).
TEST_F(FuseVectorTest, TwoSessionsOfOneQueryFile) {
  const std::string c = vol_.P("c");
  const std::vector<float> queries = PutGridAndQueries(c);
  ASSERT_FALSE(HasFailure());
  const std::string req = BinRequest(queries, 3, 5);
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  const BinAnswer one = BinExchange(fd, req);
  ASSERT_EQ(one.err, 0) << one.message;
  const std::string other = BinRequest({6, 5, 1}, 3, 2);
  const int fd2 = OpenQueryFile(c);
  ASSERT_GE(fd2, 0);
  const BinAnswer other_alone = BinExchange(fd2, other);
  ASSERT_EQ(other_alone.err, 0) << other_alone.message;
  EXPECT_EQ(other_alone.paths, (std::vector<std::vector<std::string>>{{"doc34", "doc33"}}));
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  ASSERT_EQ(write(fd2, other.data(), other.size()), static_cast<ssize_t>(other.size()));
  const BinAnswer a = BinExchange(fd, "");
  const BinAnswer b = BinExchange(fd2, "");
  ASSERT_EQ(a.err, 0) << a.message;
  ASSERT_EQ(b.err, 0) << b.message;
  EXPECT_EQ(a.paths, one.paths);
  EXPECT_EQ(b.paths, other_alone.paths);
  close(fd2);
  close(fd);
}

// VEXFS_QUERY_AT_WRITE: searched at the write that completes the request,
// answered at the read exactly as without the flag, whatever the writes'
// cuts, qq_threads or filter.
TEST_F(FuseVectorTest, AtWriteAnswersAsAtRead) {
  const std::string c = vol_.P("c");
  const std::vector<float> queries = PutGridAndQueries(c);
  ASSERT_FALSE(HasFailure());
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  for (const std::string& filter : {std::string(), std::string(R"(name glob "doc1*")")}) {
    const std::string req = BinRequest(queries, 3, 5, filter);
    const BinAnswer plain = BinExchange(fd, req);
    ASSERT_EQ(plain.err, 0) << plain.message;
    ASSERT_EQ(plain.paths.size(), 9u);
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{66}}) {
      const BinAnswer at = BinExchange(fd, Flagged(req, VEXFS_QUERY_AT_WRITE), chunk);
      ASSERT_EQ(at.err, 0) << "chunk " << chunk << ": " << at.message;
      EXPECT_FALSE(at.malformed);
      EXPECT_EQ(at.paths, plain.paths) << "chunk " << chunk;
      // Unflagged again on the same descriptor: back to searching at the read.
      const BinAnswer again = BinExchange(fd, req, chunk);
      ASSERT_EQ(again.err, 0) << again.message;
      EXPECT_EQ(again.paths, plain.paths);
    }
    const BinAnswer t = BinExchange(fd, WithThreads(Flagged(req, VEXFS_QUERY_AT_WRITE), 4));
    ASSERT_EQ(t.err, 0) << t.message;
    EXPECT_EQ(t.paths, plain.paths);
  }
  // The answer is read in small pieces as well as in one.
  const std::string req = Flagged(BinRequest(queries, 3, 5), VEXFS_QUERY_AT_WRITE);
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string pieces;
  char buf[13];
  ssize_t n;
  for (int i = 0; i < 100000 && (n = read(fd, buf, sizeof(buf))) > 0; i++) pieces.append(buf, static_cast<size_t>(n));
  ASSERT_EQ(n, 0);
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string whole;
  char big[65536];
  while ((n = read(fd, big, sizeof(big))) > 0) whole.append(big, static_cast<size_t>(n));
  EXPECT_EQ(pieces, whole);
  EXPECT_GT(whole.size(), sizeof(vexfs_query_ans));
  close(fd);
}

// Errors in a request with VEXFS_QUERY_AT_WRITE come back in the answer
// as without it; an unknown flag bit is EINVAL, beside the flag or alone.
TEST_F(FuseVectorTest, AtWriteErrorsAreAnswered) {
  const std::string c = vol_.P("c");
  WriteFile(c + "/f", "x");
  ASSERT_EQ(PutVec(c + "/f", {1, 0, 0}), 0);
  const uint32_t at = VEXFS_QUERY_AT_WRITE;
  const float nan = std::nanf("");
  BinAnswer b = BinQuery(c, {1, 0, 0}, 3, 1, "", 0, 0, at);
  ASSERT_EQ(b.err, 0) << b.message;
  EXPECT_EQ(b.paths, (std::vector<std::vector<std::string>>{{"f"}}));
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 0, "", 0, 0, at).err, EINVAL);      // k = 0
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 10001, "", 0, 0, at).err, EINVAL);  // k too large
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 1, "", 7, 0, at).err, EINVAL);      // reserved field
  EXPECT_EQ(BinQuery(c, {1, 0, 0}, 3, 1, "", 0, 4, at).err, EINVAL);      // one float short: at the read
  {
    // One write past the request's last byte: never complete, EINVAL at the read.
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    const BinAnswer longer = BinExchange(fd, Flagged(BinRequest({1, 0, 0}, 3, 1), at) + std::string(4, '\0'));
    EXPECT_EQ(longer.err, EINVAL);
    EXPECT_NE(longer.message.find("header makes it"), std::string::npos) << longer.message;
    close(fd);
  }
  b = BinQuery(c, {1, 0}, 2, 1, "", 0, 0, at);                            // dimension mismatch
  EXPECT_EQ(b.err, EINVAL);
  EXPECT_NE(b.message.find("dimensions"), std::string::npos) << b.message;
  EXPECT_EQ(BinQuery(c, {nan, 0, 0}, 3, 1, "", 0, 0, at).err, EINVAL);
  b = BinQuery(c, {1, 0, 0}, 3, 1, "size >", 0, 0, at);
  EXPECT_EQ(b.err, EINVAL);
  EXPECT_NE(b.message.find("column"), std::string::npos) << b.message;
  EXPECT_FALSE(b.malformed);
  for (uint32_t flags : {at | (at << 1), at >> 1, at << 1, at | VEXFS_SEARCH_STAGED, 0x80000000u}) {
    b = BinQuery(c, {1, 0, 0}, 3, 1, "", 0, 0, flags);
    EXPECT_EQ(b.err, EINVAL) << std::hex << flags;
    EXPECT_NE(b.message.find("qq_flags"), std::string::npos) << b.message;
  }
  // The JSON requests know no such flag and are unchanged.
  EXPECT_EQ(Paths(Query(c, R"({"vector":[1,0,0],"k":1})")), (std::vector<std::string>{"f"}));
}

// The search of a VEXFS_QUERY_AT_WRITE request runs after the write is
// answered, holding the descriptor's state: closing without a read, a
// write while it runs (EBUSY, or a new request once it is done) and reads
// and writes racing on one descriptor are all safe, and the next session
// answers as usual.
TEST_F(FuseVectorTest, AtWriteCloseWithoutReadAndRacesAreSafe) {
  const std::string c = vol_.P("c");
  const std::vector<float> queries = PutGridAndQueries(c);
  ASSERT_FALSE(HasFailure());
  std::vector<float> many;  // 1024 queries, so that a search takes a while
  while (many.size() < 1024 * 3) many.insert(many.end(), queries.begin(), queries.end());
  many.resize(1024 * 3);
  const std::string big = Flagged(BinRequest(many, 3, 40), VEXFS_QUERY_AT_WRITE);
  const std::string req = Flagged(BinRequest(queries, 3, 5), VEXFS_QUERY_AT_WRITE);
  const BinAnswer want = BinQuery(c, queries, 3, 5);
  ASSERT_EQ(want.err, 0) << want.message;
  for (int i = 0; i < 30; i++) {
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, big.data(), big.size()), static_cast<ssize_t>(big.size()));
    close(fd);  // the release may come while the search runs
  }
  int busy = 0;
  for (int i = 0; i < 10; i++) {
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, big.data(), big.size()), static_cast<ssize_t>(big.size()));
    // A second request right away: EBUSY while the first is searched, else
    // it replaces the unread answer. Either way the read answers `req`.
    const ssize_t w = write(fd, req.data(), req.size());
    if (w < 0) {
      ASSERT_EQ(errno, EBUSY);
      busy++;
      const BinAnswer first = BinExchange(fd, "");  // waits for the search
      ASSERT_EQ(first.err, 0) << first.message;
      EXPECT_EQ(first.paths.size(), 1024u);
      const BinAnswer b = BinExchange(fd, req);  // after the first answer: a new request
      ASSERT_EQ(b.err, 0) << b.message;
      EXPECT_EQ(b.paths, want.paths);
    } else {
      ASSERT_EQ(w, static_cast<ssize_t>(req.size()));
      const BinAnswer b = BinExchange(fd, "");
      ASSERT_EQ(b.err, 0) << b.message;
      EXPECT_EQ(b.paths, want.paths);
    }
    close(fd);
  }
  std::printf("second write during the search: EBUSY %d of 10\n", busy);
  // Two threads on one descriptor, one writing requests and one reading:
  // whatever each sees, the daemon stays up and consistent.
  {
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      char buf[65536];
      while (!stop.load()) {
        if (read(fd, buf, sizeof(buf)) < 0 && errno != EACCES) ADD_FAILURE() << strerror(errno);
      }
    });
    for (int i = 0; i < 200; i++) {
      const std::string& r = i % 3 == 0 ? big : req;
      if (write(fd, r.data(), r.size()) < 0 && errno != EBUSY) ADD_FAILURE() << strerror(errno);
    }
    stop = true;
    reader.join();
    close(fd);
  }
  ASSERT_TRUE(vol_.mounted());
  const BinAnswer after = BinQuery(c, queries, 3, 5, "", 0, 0, VEXFS_QUERY_AT_WRITE);
  ASSERT_EQ(after.err, 0) << after.message;
  EXPECT_EQ(after.paths, want.paths);
}

// A read that arrives while the search of a VEXFS_QUERY_AT_WRITE request
// runs is set aside and answered by the searching thread (docs/ioctl.md
// section 10): the writer's read gets the whole answer, one by other
// credentials EACCES, at once. The other uid's read is released the moment
// the write returns, while the 1,024-query search is still running, and
// ends before ours starts.
TEST_F(FuseVectorTest, ReadsDuringAnAtWriteSearchAreAnsweredByIt) {
  const std::string c = vol_.P("c");
  const std::vector<float> queries = PutGridAndQueries(c);
  ASSERT_FALSE(HasFailure());
  std::vector<float> many;
  while (many.size() < 1024 * 3) many.insert(many.end(), queries.begin(), queries.end());
  many.resize(1024 * 3);
  const std::string big = Flagged(BinRequest(many, 3, 40), VEXFS_QUERY_AT_WRITE);
  const BinAnswer want = BinQuery(c, many, 3, 40);
  ASSERT_EQ(want.err, 0) << want.message;
  ASSERT_EQ(want.paths.size(), 1024u);
  for (int i = 0; i < 5; i++) {
    const int fd = OpenQueryFile(c);
    ASSERT_GE(fd, 0);
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    int other = -1;
    std::thread t([&] {
      other = RunAs(kA, kA, {}, [&] {
        char b;
        if (read(go[0], &b, 1) != 1) return 200;
        char buf[65536];
        return read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
      });
    });
    usleep(20000);  // the child is forked and waits on the pipe
    ASSERT_EQ(write(fd, big.data(), big.size()), static_cast<ssize_t>(big.size()));
    ASSERT_EQ(write(go[1], "x", 1), 1);
    // The other uid's read first: reads of one open file take turns on its
    // position, so a read of ours now would hold it back until the answer.
    t.join();
    EXPECT_EQ(other, EACCES) << "round " << i;
    const BinAnswer b = BinExchange(fd, "");
    ASSERT_EQ(b.err, 0) << b.message;
    EXPECT_EQ(b.paths, want.paths) << "round " << i;
    close(go[0]);
    close(go[1]);
    close(fd);
  }
}

// Which state of the collection an answer searched at the write reflects
// (docs/ioctl.md section 10): every change made before the write returned;
// a change made between the write and the read may or may not be there
// (the search starts when the write is answered), and shows at the next
// request either way.
TEST_F(FuseVectorTest, AtWriteSeesChangesMadeBeforeTheWrite) {
  const std::string c = vol_.P("c");
  WriteFile(c + "/far", "x");
  ASSERT_EQ(PutVec(c + "/far", {9, 9, 9}), 0);
  const std::string req = Flagged(BinRequest({1, 1, 1}, 3, 10), VEXFS_QUERY_AT_WRITE);
  const int fd = OpenQueryFile(c);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 20; i++) {
    const std::string before = "before" + std::to_string(i), after = "after" + std::to_string(i);
    WriteFile(c + "/" + before, "x");
    ASSERT_EQ(PutVec(c + "/" + before, {1, 1, 1}), 0);
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    WriteFile(c + "/" + after, "x");  // between the write and the read
    ASSERT_EQ(PutVec(c + "/" + after, {1, 1, 1}), 0);
    const BinAnswer b = BinExchange(fd, "");
    ASSERT_EQ(b.err, 0) << b.message;
    ASSERT_EQ(b.paths.size(), 1u);
    const std::vector<std::string>& got = b.paths[0];
    EXPECT_NE(std::find(got.begin(), got.end(), before), got.end()) << i;
    EXPECT_EQ(got.back(), "far") << i;
    // The next request, flagged or not, sees the file made in between.
    for (uint32_t flags : {0u, VEXFS_QUERY_AT_WRITE}) {
      const BinAnswer next = BinExchange(fd, Flagged(BinRequest({1, 1, 1}, 3, 10), flags));
      ASSERT_EQ(next.err, 0) << next.message;
      ASSERT_EQ(next.paths.size(), 1u);
      EXPECT_NE(std::find(next.paths[0].begin(), next.paths[0].end(), after), next.paths[0].end()) << i;
    }
    ASSERT_EQ(unlink((c + "/" + before).c_str()), 0);
    ASSERT_EQ(unlink((c + "/" + after).c_str()), 0);
  }
  close(fd);
}

// The vector layer keeps the attributes of result files between searches
// (valid until any inode changes): a change made after a search must count
// at the very next one -- mode, owner, a directory's search bit, the size a
// filter reads -- and a file made unreadable never shows again.
TEST_F(FuseVectorTest, SearchSeesAttributeChangesAtOnce) {
  const std::string c = vol_.P("c");
  ASSERT_EQ(mkdir((c + "/d").c_str(), 0755), 0);
  WriteFile(c + "/f", "f");
  WriteFile(c + "/d/g", "gg");
  ASSERT_EQ(PutVec(c + "/f", {1, 0, 0}), 0);
  ASSERT_EQ(PutVec(c + "/d/g", {2, 0, 0}), 0);
  auto seen_by_a = [&](const std::vector<std::string>& want, const std::string& filter = "") {
    return RunAs(kA, kA, {}, [&] {
      std::vector<std::string> p;
      const int rc = IoctlSearch(c, {0, 0, 0}, 10, filter, &p);
      return rc == 0 && p == want ? 0 : 100 + rc;
    });
  };
  EXPECT_EQ(seen_by_a({"f", "d/g"}), 0);
  ASSERT_EQ(chmod((c + "/f").c_str(), 0600), 0);
  EXPECT_EQ(seen_by_a({"d/g"}), 0);
  ASSERT_EQ(chown((c + "/f").c_str(), kA, kA), 0);
  EXPECT_EQ(seen_by_a({"f", "d/g"}), 0);
  ASSERT_EQ(chmod((c + "/d").c_str(), 0750), 0);  // A is "other": no search bit
  EXPECT_EQ(seen_by_a({"f"}), 0);
  ASSERT_EQ(chmod((c + "/d").c_str(), 0755), 0);
  EXPECT_EQ(seen_by_a({"f", "d/g"}), 0);
  EXPECT_EQ(seen_by_a({"d/g"}, "size > 1"), 0);
  ASSERT_EQ(truncate((c + "/f").c_str(), 10), 0);
  EXPECT_EQ(seen_by_a({"f", "d/g"}, "size > 1"), 0);
  // Root still sees everything; the layer's cache is per inode, not per caller.
  ASSERT_EQ(chown((c + "/f").c_str(), 0, 0), 0);
  std::vector<std::string> p;
  ASSERT_EQ(IoctlSearch(c, {0, 0, 0}, 10, "", &p), 0);
  EXPECT_EQ(p, (std::vector<std::string>{"f", "d/g"}));
  EXPECT_EQ(seen_by_a({"d/g"}), 0);
  // The searched directory's own attributes and path are cached too: its
  // search bit and a rename count at the next search.
  auto in_d_seen_by_a = [&](const std::string& sub, const std::vector<std::string>& want,
                            const std::string& filter = "") {
    return RunAs(kA, kA, {}, [&] {
      std::vector<std::string> q;
      const int rc = IoctlSearch(c + "/" + sub, {0, 0, 0}, 10, filter, &q);
      return rc == 0 && q == want ? 0 : 100 + rc;
    });
  };
  EXPECT_EQ(in_d_seen_by_a("d", {"g"}), 0);
  ASSERT_EQ(chmod((c + "/d").c_str(), 0754), 0);  // A may open it, not search it
  EXPECT_EQ(in_d_seen_by_a("d", {}), 0);
  ASSERT_EQ(chmod((c + "/d").c_str(), 0755), 0);
  EXPECT_EQ(in_d_seen_by_a("d", {"g"}, "path under \"/d\""), 0);
  ASSERT_EQ(rename((c + "/d").c_str(), (c + "/e").c_str()), 0);
  EXPECT_EQ(in_d_seen_by_a("e", {}, "path under \"/d\""), 0);
  EXPECT_EQ(in_d_seen_by_a("e", {"g"}, "path under \"/e\""), 0);
}

TEST_F(FuseVectorTest, FsyncedVectorsSurviveKill9AndTheIndexIsRebuilt) {
  const std::string c = vol_.P("c");
  for (int i = 0; i < 50; i++) {
    const std::string f = c + "/f" + std::to_string(i);
    WriteFile(f, "x");
    ASSERT_EQ(PutVec(f, {float(i), 1, 0}), 0);
  }
  const int fd = open((c + "/f7").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  vol_.Kill9();
  ASSERT_TRUE(vol_.Mount()) << vol_.log();
  std::vector<std::string> p;
  ASSERT_EQ(IoctlSearch(c, {7, 1, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"f7"});
  vexfs_ioc_collection info{};
  ASSERT_EQ(CollInfo(c, &info), 0);
  EXPECT_EQ(info.vi_count, 50u);
  EXPECT_TRUE(info.vi_flags & VEXFS_COLL_REBUILT);
  EXPECT_NE(vol_.log().find("rebuilding"), std::string::npos) << vol_.log();
  // Clean unmount persists the index; the next mount loads it.
  ASSERT_EQ(vol_.Unmount(), 0);
  ASSERT_EQ(RunCmd({VEXFS_FSCK_BIN, "-n", "-f", vol_.image()}), 0);
  ASSERT_TRUE(vol_.Mount()) << vol_.log();
  ASSERT_EQ(CollInfo(c, &info), 0);
  EXPECT_EQ(info.vi_count, 50u);
  EXPECT_TRUE(info.vi_flags & VEXFS_COLL_LOADED);
  // Loaded without reading the slots: members come from the index itself.
  ASSERT_EQ(IoctlSearch(c, {7, 1, 0}, 1, "", &p), 0);
  EXPECT_EQ(p, std::vector<std::string>{"f7"});
  ASSERT_EQ(removexattr((c + "/f7").c_str(), VEXFS_VECTOR_XATTR), 0);
  ASSERT_EQ(IoctlSearch(c, {7, 1, 0}, 1, "", &p), 0);
  EXPECT_NE(p, std::vector<std::string>{"f7"});
  ASSERT_EQ(vol_.Unmount(), 0);
  ASSERT_TRUE(vol_.Mount()) << vol_.log();
  ASSERT_EQ(CollInfo(c, &info), 0);
  EXPECT_EQ(info.vi_count, 49u);
  EXPECT_TRUE(info.vi_flags & VEXFS_COLL_LOADED);
  ASSERT_EQ(IoctlSearch(c, {7, 1, 0}, 50, "", &p), 0);
  EXPECT_EQ(p.size(), 49u);
  EXPECT_EQ(std::count(p.begin(), p.end(), "f7"), 0);
}

}  // namespace
}  // namespace vexfs::fusetest
