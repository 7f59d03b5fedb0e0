// Crash consistency: record every block write of a workload (a mixed
// namespace and data one, and a vector one), then for every prefix of the
// write log (and every prefix with its last write torn), and for images
// where any subset of the unflushed writes was lost, recover a copy of the
// image and check that
//   - the recovered volume mounts and fsck finds no problem,
//   - its namespace and its collections (configuration and every live
//     vector, read back by getxattr and by ScanVectors) equal the state
//     after some operation at or after the last completed Sync (operations
//     are atomic, nothing synced is lost),
//   - every file whose contents did not change after that Sync is intact,
//   - an index blob marked valid matches the stored vectors, and one that
//     was valid at the Sync and not touched since is still valid.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "core/reader.h"
#include "fs_test_util.h"
#include "uapi/vexfs/vexfs_format.h"
#include "vexfs/crc32c.h"
#include "vexfs/fsck.h"

namespace vexfs {
namespace {

using testing::Bytes;

// Records writes and flushes; serves reads from the current image.
class RecordingDevice : public BlockDevice {
 public:
  struct Event {
    uint64_t block;  // UINT64_MAX for a flush
    std::vector<uint8_t> data;
    size_t op;  // workload operation in progress
  };
  RecordingDevice(std::vector<uint8_t> image, std::vector<Event>* log, const size_t* op)
      : img_(std::move(image)), log_(log), op_(op) {}
  uint64_t block_count() const override { return img_.size() / kBlockSize; }
  Status Read(uint64_t block, uint32_t count, void* buf) override {
    if (block + count > block_count()) return Status::IoError("read beyond end");
    std::memcpy(buf, img_.data() + block * kBlockSize, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Write(uint64_t block, uint32_t count, const void* buf) override {
    if (block + count > block_count()) return Status::IoError("write beyond end");
    std::lock_guard<std::mutex> lock(mu_);
    const auto* p = static_cast<const uint8_t*>(buf);
    for (uint32_t i = 0; i < count; i++) {
      log_->push_back({block + i, std::vector<uint8_t>(p + size_t{i} * kBlockSize, p + size_t{i + 1} * kBlockSize), *op_});
    }
    std::memcpy(img_.data() + block * kBlockSize, buf, size_t{count} * kBlockSize);
    return Status::Ok();
  }
  Status Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    log_->push_back({UINT64_MAX, {}, *op_});
    return Status::Ok();
  }

 private:
  std::mutex mu_;  // a commit timer writes beside the caller
  std::vector<uint8_t> img_;
  std::vector<Event>* log_;
  const size_t* op_;
};

struct FileState {
  std::string meta;      // type, size, mode, nlink, xattrs, symlink target
  uint32_t content = 0;  // crc of the data (regular files)
};
using Snapshot = std::map<std::string, FileState>;

// What a recovered volume is compared on.
struct State {
  Snapshot files;
  // Collection directory -> its configuration and vectors ("path=crc" for
  // each file, in path order; "plain" marks an ordinary xattr the
  // collection does not index).
  std::map<std::string, std::string> colls;
  // Collection directory -> "stale" or "valid <crc of the blob>".
  std::map<std::string, std::string> index;
};

// Inode -> its first path (in path order) and mode, filled by Walk.
using Paths = std::map<uint64_t, std::pair<std::string, uint32_t>>;

Status Walk(Filesystem* fs, uint64_t dir, const std::string& prefix, Snapshot* out, Paths* paths,
            int depth = 0) {
  if (depth > 16) return Status::Corruption("directory tree too deep");
  std::vector<DirEntry> entries;
  VEXFS_RETURN_IF_ERROR(fs->ReadDir(dir, 0, [&](const DirEntry& e) {
    entries.push_back(e);
    return true;
  }));
  for (const auto& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    const std::string path = prefix + "/" + e.name;
    VEXFS_ASSIGN_OR_RETURN(Attr a, fs->GetAttr(e.ino));
    auto [pit, fresh] = paths->try_emplace(e.ino, path, a.mode);
    if (!fresh && path < pit->second.first) pit->second.first = path;
    std::ostringstream m;
    m << std::oct << a.mode << std::dec << " n" << a.nlink << " s" << (S_ISDIR(a.mode) ? 0 : a.size);
    VEXFS_ASSIGN_OR_RETURN(auto names, fs->ListXattr(e.ino, Cred::Root()));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      VEXFS_ASSIGN_OR_RETURN(auto v, fs->GetXattr(e.ino, n, Cred::Root()));
      m << " x:" << n << "=" << Crc32c(v.data(), v.size());
    }
    FileState st;
    if (S_ISLNK(a.mode)) {
      VEXFS_ASSIGN_OR_RETURN(std::string t, fs->Readlink(e.ino));
      m << " ->" << t;
    }
    if (S_ISREG(a.mode)) {
      std::vector<uint8_t> data(a.size);
      VEXFS_ASSIGN_OR_RETURN(size_t n, fs->Read(e.ino, 0, data));
      if (n != a.size) return Status::Corruption("short read of " + path);
      st.content = Crc32c(data.data(), data.size());
    }
    st.meta = m.str();
    (*out)[path] = st;
    if (S_ISDIR(a.mode)) VEXFS_RETURN_IF_ERROR(Walk(fs, e.ino, path, out, paths, depth + 1));
  }
  return Status::Ok();
}

// The live vectors of collection `dir` by owner, as crcs of their bytes.
Result<std::map<uint64_t, uint32_t>> ScanCrcs(Filesystem* fs, uint64_t dir) {
  std::map<uint64_t, uint32_t> out;
  bool dup = false;
  VEXFS_RETURN_IF_ERROR(fs->ScanVectors(dir, [&](uint64_t ino, std::span<const float> v) {
    dup |= !out.emplace(ino, Crc32c(v.data(), v.size_bytes())).second;
  }));
  if (dup) return Status::Corruption("ScanVectors returns an inode twice");
  return out;
}

// What the test's index blobs record: the collection's vectors when saved.
uint32_t Digest(const std::map<uint64_t, uint32_t>& vectors) {
  uint32_t crc = ~0u;
  for (const auto& [ino, c] : vectors) {
    const uint64_t rec[2] = {ino, c};
    crc = Crc32cExtend(crc, rec, sizeof(rec));
  }
  return ~crc;
}

constexpr uint32_t kBlobMagic = 0x42495856;  // "VXIB"

// An index blob of `size` (>= 8) bytes standing for the vectors `digest`.
std::vector<uint8_t> IndexBlob(uint32_t digest, size_t size) {
  std::vector<uint8_t> b(size);
  std::memcpy(b.data(), &kBlobMagic, 4);
  std::memcpy(b.data() + 4, &digest, 4);
  for (size_t i = 8; i < size; i++) b[i] = static_cast<uint8_t>(digest >> (8 * (i % 4))) ^ static_cast<uint8_t>(i);
  return b;
}

// The regular files of each collection (by nearest collection), with the
// crc of the vector getxattr returns, if any.
Result<std::map<uint64_t, std::map<uint64_t, std::optional<uint32_t>>>> Members(Filesystem* fs,
                                                                                const Paths& paths) {
  std::map<uint64_t, std::map<uint64_t, std::optional<uint32_t>>> out;
  for (const auto& [ino, pm] : paths) {
    if (!S_ISREG(pm.second)) continue;
    VEXFS_ASSIGN_OR_RETURN(uint64_t c, fs->CollectionOf(ino));
    if (c == 0) continue;
    auto x = fs->GetXattr(ino, VEXFS_VECTOR_XATTR, Cred::Root());
    if (!x.ok() && x.status().err() != ENODATA) return x.status();
    out[c][ino] = x.ok() ? std::optional<uint32_t>(Crc32c(x->data(), x->size())) : std::nullopt;
  }
  return out;
}

// The vectors of collection `dir` by owner as the files report them.
Result<std::map<uint64_t, uint32_t>> FileVectors(Filesystem* fs, uint64_t dir) {
  State unused;
  Paths paths;
  VEXFS_RETURN_IF_ERROR(Walk(fs, Filesystem::kRootIno, "", &unused.files, &paths));
  VEXFS_ASSIGN_OR_RETURN(auto members, Members(fs, paths));
  std::map<uint64_t, uint32_t> out;
  for (const auto& [ino, crc] : members[dir]) {
    if (crc) out[ino] = *crc;
  }
  return out;
}

// Collections, their vectors and index blobs. `scan` (the recovered
// volumes) also reads every collection with ScanVectors and checks that it
// agrees with getxattr. The recording does not: ScanVectors rebuilds the
// free slot lists, which would hide slot reuse bugs from the workload.
// An index marked valid must load and match the vectors.
Status CaptureVectors(Filesystem* fs, const Paths& paths, bool scan, State* out) {
  VEXFS_ASSIGN_OR_RETURN(auto colls, fs->ListCollections());
  if (colls.empty()) return Status::Ok();
  auto path_of = [&](uint64_t ino) -> std::string {
    if (ino == Filesystem::kRootIno) return "/";
    auto it = paths.find(ino);
    return it == paths.end() ? "" : it->second.first;
  };
  VEXFS_ASSIGN_OR_RETURN(auto members, Members(fs, paths));
  for (uint64_t dir : colls) {
    const std::string where = path_of(dir);
    if (where.empty()) return Status::Corruption("collection " + std::to_string(dir) + " is not in the namespace");
    VEXFS_ASSIGN_OR_RETURN(CollectionConfig cfg, fs->GetCollection(dir));
    std::map<uint64_t, uint32_t> vectors;  // what the collection indexes
    std::map<std::string, std::string> by_path;
    for (const auto& [ino, crc] : members[dir]) {
      if (crc) vectors[ino] = *crc;
    }
    if (scan) {
      VEXFS_ASSIGN_OR_RETURN(auto slots, ScanCrcs(fs, dir));
      for (const auto& [ino, crc] : slots) {
        auto m = members[dir].find(ino);
        if (m == members[dir].end()) {
          return Status::Corruption("ScanVectors of " + where + " returns inode " + std::to_string(ino) +
                                    ", not a file of the collection");
        }
        if (m->second != crc) return Status::Corruption("getxattr and ScanVectors disagree on " + path_of(ino));
      }
      for (const auto& [ino, crc] : vectors) {
        if (!slots.count(ino)) by_path[path_of(ino)] = "plain";  // an xattr the collection does not index
      }
      vectors = std::move(slots);
    }
    for (const auto& [ino, crc] : vectors) by_path[path_of(ino)] += std::to_string(crc);
    std::ostringstream s;
    s << "dim " << cfg.dim << " metric " << int{cfg.metric} << " elem " << int{cfg.element_type} << " kind "
      << int{cfg.index_kind} << " params " << cfg.params[0] << "," << cfg.params[1] << "," << cfg.params[2] << ","
      << cfg.params[3] << ":";
    for (const auto& [p, v] : by_path) s << " " << p << "=" << v;
    out->colls[where] = s.str();
    auto blob = fs->LoadIndexBlob(dir);
    if (blob.ok()) {
      uint32_t magic = 0, d = 0;
      if (blob->size() >= 8) {
        std::memcpy(&magic, blob->data(), 4);
        std::memcpy(&d, blob->data() + 4, 4);
      }
      if (magic != kBlobMagic || d != Digest(vectors) || *blob != IndexBlob(d, blob->size())) {
        return Status::Corruption("the valid index blob of " + where + " does not match the stored vectors");
      }
      out->index[where] = "valid " + std::to_string(Crc32c(blob->data(), blob->size()));
    } else if (blob.status().err() == ENODATA) {
      if (cfg.index_valid) return Status::Corruption("the index of " + where + " is marked valid but does not load");
      out->index[where] = "stale";
    } else {
      return blob.status();
    }
  }
  return Status::Ok();
}

Status Capture(Filesystem* fs, bool scan, State* out) {
  Paths paths;
  VEXFS_RETURN_IF_ERROR(Walk(fs, Filesystem::kRootIno, "", &out->files, &paths));
  return CaptureVectors(fs, paths, scan, out);
}

std::string Describe(const State& s) {
  std::string out;
  for (const auto& [p, st] : s.files) out += p + " " + st.meta + " c" + std::to_string(st.content) + "\n";
  for (const auto& [p, c] : s.colls) out += "collection " + p + " " + c + "\n";
  for (const auto& [p, i] : s.index) out += "index " + p + " " + i + "\n";
  return out;
}

// A recorded workload: the per-operation states and sync marks.
struct Recorded {
  std::vector<uint8_t> base;         // image before the workload
  std::vector<RecordingDevice::Event> log;
  std::vector<State> after_op;       // state after op i (index 0 = before any op)
  std::vector<bool> synced;          // op i ended with a completed Sync
  std::vector<bool> index_op;        // op i rewrote an index blob (stale meanwhile)
};

// What one operation did.
struct OpResult {
  bool sync = false;   // ended with a completed Sync or Fsync
  bool index = false;  // saved an index blob
};
// Runs operation `op` (1-based) of a workload.
using Workload = std::function<OpResult(Filesystem* fs, std::mt19937_64& rng, size_t op)>;

Recorded Record(uint64_t seed, int ops, uint64_t journal_blocks, const Workload& step, uint64_t inodes = 256) {
  Recorded rec;
  auto img = testing::NewImage(2048, journal_blocks, inodes);  // 8 MiB
  rec.base = *img;
  size_t op = 0;
  auto dev = std::make_unique<RecordingDevice>(*img, &rec.log, &op);
  MountOptions mo = testing::TestMountOptions();
  auto fsr = Filesystem::Mount(std::move(dev), mo);
  EXPECT_TRUE(fsr.ok()) << fsr.status().ToString();
  auto fs = std::move(fsr).value();
  std::mt19937_64 rng(seed);
  auto snap = [&]() {
    State s;
    Status st = Capture(fs.get(), /*scan=*/false, &s);
    EXPECT_TRUE(st.ok()) << "op " << op << ": " << st.ToString();
    return s;
  };
  rec.after_op.push_back(snap());
  rec.synced.push_back(true);
  rec.index_op.push_back(false);
  for (op = 1; op <= static_cast<size_t>(ops); op++) {
    const OpResult r = step(fs.get(), rng, op);
    rec.after_op.push_back(snap());
    rec.synced.push_back(r.sync);
    rec.index_op.push_back(r.index);
  }
  op = static_cast<size_t>(ops) + 1;
  {
    // The recording did not scan (see CaptureVectors); its model must agree
    // with the scan at the end.
    State scanned;
    Status st = Capture(fs.get(), /*scan=*/true, &scanned);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(Describe(scanned), Describe(rec.after_op.back()));
  }
  EXPECT_TRUE(fs->Unmount().ok());
  return rec;
}

// The mixed workload: a deterministic mix of namespace and data operations
// with Sync points.
OpResult MixedOp(Filesystem* fs, std::mt19937_64& rng, size_t) {
  const Cred root = Cred::Root();
  auto pick = [&](const char* pfx, int n) { return std::string(pfx) + std::to_string(rng() % n); };
  const int kind = static_cast<int>(rng() % 14);
  uint64_t dir = Filesystem::kRootIno;
  if (rng() % 2) {
    auto d = fs->Lookup(Filesystem::kRootIno, "d" + std::to_string(rng() % 3), root);
    if (d.ok()) dir = d->ino;
  }
  const std::string name = pick("f", 8);
  auto f = fs->Lookup(dir, name, root);
  switch (kind) {
    case 0:
    case 1: {  // create + write
      if (!f.ok()) f = fs->Mknod(dir, name, S_IFREG | 0644, 0, root);
      if (f.ok() && S_ISREG(f->mode)) {
        std::string data(1 + rng() % 20000, static_cast<char>('a' + rng() % 26));
        fs->Write(f->ino, rng() % 30000, Bytes(data)).status().IgnoreError();
      }
      break;
    }
    case 2:  // overwrite in place
      if (f.ok() && S_ISREG(f->mode) && f->size > 0) {
        std::string data(1 + rng() % 5000, static_cast<char>('A' + rng() % 26));
        fs->Write(f->ino, rng() % f->size, Bytes(data)).status().IgnoreError();
      }
      break;
    case 3:
      if (f.ok() && S_ISREG(f->mode)) {
        SetAttrRequest r;
        r.valid = SetAttrRequest::kSize;
        r.size = rng() % 40000;
        fs->SetAttr(f->ino, r, root).status().IgnoreError();
      }
      break;
    case 4:
      fs->Rename(dir, name, Filesystem::kRootIno, pick("f", 8), 0, root).IgnoreError();
      break;
    case 5:
      fs->Rename(dir, name, Filesystem::kRootIno, pick("f", 8), RENAME_EXCHANGE, root).IgnoreError();
      break;
    case 6:
      if (f.ok()) fs->Link(f->ino, Filesystem::kRootIno, pick("l", 4), root).status().IgnoreError();
      break;
    case 7:
      fs->Unlink(dir, name, root).IgnoreError();
      break;
    case 8:
      if (f.ok()) {
        std::vector<uint8_t> v(rng() % 3 == 0 ? 6000 : 1 + rng() % 300, static_cast<uint8_t>(rng()));
        fs->SetXattr(f->ino, pick("user.k", 3), v, 0, root).IgnoreError();
      }
      break;
    case 9:
      if (f.ok()) fs->RemoveXattr(f->ino, pick("user.k", 3), root).IgnoreError();
      break;
    case 10:
      fs->Mkdir(Filesystem::kRootIno, pick("d", 3), 0755, root).status().IgnoreError();
      break;
    case 11:
      fs->Rmdir(Filesystem::kRootIno, pick("d", 3), root).IgnoreError();
      break;
    case 12:
      if (f.ok() && S_ISREG(f->mode)) {
        fs->Fallocate(f->ino, (rng() % 2) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : 0, rng() % 20000,
                      1 + rng() % 20000)
            .IgnoreError();
      }
      break;
    case 13:
      fs->Symlink(dir, pick("s", 3), std::string(1 + rng() % 100, 't'), root).status().IgnoreError();
      break;
  }
  OpResult r;
  if (rng() % 4 == 0) {
    EXPECT_TRUE(fs->Sync().ok());
    r.sync = true;
  }
  return r;
}

// The vector workload. Collections /a and /b (dimension 300: 1216-byte
// slots straddle blocks) with /a/sub inside /a, /c (dimension 5, cosine),
// /d (dimension 300, dropped and created again), and the plain directory
// /p whose files hold ordinary 300-float vector xattrs. Each operation is
// one call: create a file, set a vector (a new slot, the old one released
// copy-on-write), set a vector that does not fit (rejected), remove one,
// unlink, rename or exchange files between /a and /b (the vector moves),
// between a collection and /c (EXDEV when the vector does not fit, undone)
// or /p (slot <-> ordinary xattr), within /a; hard links inside /a; plain
// data writes; index blobs saved; index kinds changed; /d dropped or
// created; Fsync; Sync.
class VectorWorkload {
 public:
  OpResult operator()(Filesystem* fs, std::mt19937_64& rng, size_t op) {
    const Cred root = Cred::Root();
    OpResult r;
    if (op <= kSetup.size()) {
      const auto& [parent, name] = kSetup[op - 1];
      auto p = fs->ResolvePath(parent);
      EXPECT_TRUE(p.ok());
      if (p.ok()) {
        EXPECT_TRUE(fs->Mkdir(p->ino, name, 0755, root).ok()) << name;
      }
      return r;
    }
    if (op <= kSetup.size() + 4) {
      const char* dir = kColls[op - kSetup.size() - 1];
      EXPECT_TRUE(fs->CreateCollection(Ino(fs, dir), Config(dir), root).ok()) << dir;
      return r;
    }
    const int kind = static_cast<int>(rng() % 20);
    const char* dname = kDirs[rng() % std::size(kDirs)];
    const uint64_t dir = Ino(fs, dname);
    const std::string name = "f" + std::to_string(rng() % kNames);
    auto f = fs->Lookup(dir, name, root);
    const float base = static_cast<float>(static_cast<int>(rng() % 2000) - 1000) / 8.0f;
    switch (kind) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:  // create, or set (replace) the vector
        if (!f.ok()) {
          EXPECT_TRUE(fs->Mknod(dir, name, S_IFREG | 0644, 0, root).ok());
        } else if (S_ISREG(f->mode) && !(dname == std::string("/d") && !IsColl(fs, "/d"))) {
          const Status s = fs->SetXattr(f->ino, VEXFS_VECTOR_XATTR, testing::VectorBytes(base, Dim(dname)), 0, root);
          EXPECT_TRUE(s.ok()) << s.ToString();
        }
        break;
      case 7:  // a vector the collection rejects: nothing changes
        if (f.ok() && IsColl(fs, dname)) {
          auto v = testing::VectorBytes(base, rng() % 2 ? Dim(dname) + 1 : Dim(dname));
          if (v.size() == Dim(dname) * 4) std::memset(v.data() + 4, 0xff, 4);  // NaN
          EXPECT_EQ(fs->SetXattr(f->ino, VEXFS_VECTOR_XATTR, v, 0, root).err(), EINVAL);
        }
        break;
      case 8:
        if (f.ok()) fs->RemoveXattr(f->ino, VEXFS_VECTOR_XATTR, root).IgnoreError();
        break;
      case 9:
        fs->Unlink(dir, name, root).IgnoreError();
        break;
      case 10:
      case 11: {  // between the two collections of equal dimension
        const bool ab = rng() % 2;
        const std::string to = "f" + std::to_string(rng() % kNames);
        const unsigned flags = rng() % 3 ? 0 : RENAME_EXCHANGE;
        fs->Rename(Ino(fs, ab ? "/a" : "/b"), name, Ino(fs, ab ? "/b" : "/a"), to, flags, root).IgnoreError();
        break;
      }
      case 12: {  // to or from /c (dimension 5) or /p (ordinary xattrs)
        const char* other = rng() % 2 ? "/c" : "/p";
        const bool out = rng() % 2;
        const std::string to = "f" + std::to_string(rng() % kNames);
        const unsigned flags = rng() % 4 ? 0 : RENAME_EXCHANGE;
        fs->Rename(Ino(fs, out ? "/a" : other), name, Ino(fs, out ? other : "/a"), to, flags, root).IgnoreError();
        break;
      }
      case 13:  // within /a
        fs->Rename(Ino(fs, "/a"), name, Ino(fs, "/a/sub"), "f" + std::to_string(rng() % kNames), 0, root).IgnoreError();
        break;
      case 14:  // a second name inside /a
        if (f.ok() && dname == std::string("/a")) {
          fs->Link(f->ino, Ino(fs, "/a/sub"), "l" + std::to_string(rng() % 3), root).status().IgnoreError();
        }
        break;
      case 15:
        if (f.ok() && S_ISREG(f->mode)) {
          const size_t len = 1 + rng() % 9000;
          std::vector<uint8_t> data(len, static_cast<uint8_t>(rng()));
          fs->Write(f->ino, rng() % 8192, data).status().IgnoreError();
        }
        break;
      case 16:
      case 17:
        if (IsColl(fs, dname)) {
          const uint64_t cdir = Ino(fs, CollOf(dname));
          auto vectors = FileVectors(fs, cdir);
          EXPECT_TRUE(vectors.ok());
          const Status s = fs->SaveIndexBlob(cdir, IndexBlob(Digest(*vectors), 8 + rng() % 20000));
          EXPECT_TRUE(s.ok()) << s.ToString();
          r.index = true;
          if (rng() % 2) {  // as the engine does after saving
            EXPECT_TRUE(fs->Sync().ok());
            r.sync = true;
          }
        }
        break;
      case 18:
        if (rng() % 3 == 0) {
          if (IsColl(fs, "/d")) {
            EXPECT_TRUE(fs->DropCollection(Ino(fs, "/d"), root).ok());
          } else {
            EXPECT_TRUE(fs->CreateCollection(Ino(fs, "/d"), Config("/d"), root).ok());
          }
        } else if (IsColl(fs, dname)) {  // another index kind (marks the index stale)
          const uint64_t cdir = Ino(fs, CollOf(dname));
          auto c = fs->GetCollection(cdir);
          EXPECT_TRUE(c.ok());
          c->index_kind = c->index_kind == VEXFS_INDEX_HNSW ? VEXFS_INDEX_FLAT : VEXFS_INDEX_HNSW;
          c->params[0] = c->index_kind == VEXFS_INDEX_HNSW ? 8 + rng() % 24 : 0;
          const Status s = fs->UpdateCollection(cdir, *c, root);
          EXPECT_TRUE(s.ok()) << s.ToString();
        }
        break;
      case 19:
        if (f.ok()) {
          EXPECT_TRUE(fs->Fsync(f->ino, rng() % 2).ok());
          r.sync = true;
        }
        break;
    }
    if (!r.sync && rng() % 10 == 0) {
      EXPECT_TRUE(fs->Sync().ok());
      r.sync = true;
    }
    return r;
  }

 private:
  static constexpr std::array<std::pair<const char*, const char*>, 6> kSetup = {
      {{"/", "a"}, {"/", "b"}, {"/", "c"}, {"/", "d"}, {"/", "p"}, {"/a", "sub"}}};
  static constexpr const char* kColls[] = {"/a", "/b", "/c", "/d"};
  static constexpr int kNames = 6;  // f0..f5 in each directory
  static constexpr const char* kDirs[] = {"/a", "/a", "/a/sub", "/b", "/b", "/c", "/d", "/p"};

  static uint64_t Ino(Filesystem* fs, const std::string& path) {
    auto a = fs->ResolvePath(path);
    EXPECT_TRUE(a.ok()) << path;
    return a.ok() ? a->ino : 0;
  }
  static uint32_t Dim(const std::string& dir) { return dir == "/c" ? 5 : 300; }
  static std::string CollOf(const std::string& dir) { return dir == "/a/sub" ? "/a" : dir; }
  static bool IsColl(Filesystem* fs, const std::string& dir) {
    return dir != "/p" && fs->GetCollection(Ino(fs, CollOf(dir))).ok();
  }
  static CollectionConfig Config(const std::string& dir) {
    CollectionConfig c;
    c.dim = Dim(dir);
    c.metric = dir == "/c" ? VEXFS_METRIC_COSINE : VEXFS_METRIC_L2;
    c.index_kind = dir == "/b" ? VEXFS_INDEX_FLAT : VEXFS_INDEX_HNSW;
    if (c.index_kind == VEXFS_INDEX_HNSW) c.params[0] = 16;
    return c;
  }
};

// Whether the recovered state `got` is the state after op `j`, given that
// the last completed Sync ended op `last_sync_op` and op `cur_op` was in
// progress at the crash.
bool Matches(const State& got, const Recorded& rec, size_t j, size_t last_sync_op, size_t cur_op) {
  const State& cand = rec.after_op[j];
  const State& synced = rec.after_op[last_sync_op];
  const size_t last = std::min(cur_op, rec.after_op.size() - 1);
  if (cand.files.size() != got.files.size() || cand.colls != got.colls) return false;
  for (const auto& [path, fstate] : cand.files) {
    auto it = got.files.find(path);
    if (it == got.files.end() || it->second.meta != fstate.meta) return false;
    // Contents must be exact when the file did not change after the sync
    // (up to the crash); otherwise in-place overwrites may be visible.
    bool stable = true;
    auto s = synced.files.find(path);
    if (s == synced.files.end() || s->second.content != fstate.content) stable = false;
    for (size_t k = last_sync_op; stable && k <= last; k++) {
      auto kk = rec.after_op[k].files.find(path);
      if (kk == rec.after_op[k].files.end() || kk->second.content != fstate.content) stable = false;
    }
    if (stable && it->second.content != fstate.content) return false;
  }
  // An index blob is derived data: it may be stale where the model has it
  // valid, unless it was valid at the Sync and nothing touched it since
  // (SaveIndexBlob marks it stale while it rewrites it).
  for (const auto& [coll, idx] : got.index) {
    auto c = cand.index.find(coll);
    if (c == cand.index.end()) return false;
    if (idx == c->second) continue;
    if (idx != "stale") return false;
    auto s = synced.index.find(coll);
    bool stable = s != synced.index.end() && s->second == c->second;
    for (size_t k = last_sync_op + 1; stable && k <= last; k++) {
      auto kk = rec.after_op[k].index.find(coll);
      stable = !rec.index_op[k] && kk != rec.after_op[k].index.end() && kk->second == c->second;
    }
    if (stable) return false;
  }
  return cand.index.size() == got.index.size();
}

// Checks one crashed image. Returns "" or a failure description.
std::string CheckCrash(std::vector<uint8_t> image, const Recorded& rec, size_t last_sync_op, size_t cur_op) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(image));
  {
    // fsck without repair checks the post-replay state through an overlay.
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck -n failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck -n found " + rep->problems[0].code + ": " + rep->problems[0].message;
  }
  auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(shared), testing::TestMountOptions());
  if (!fsr.ok()) return "mount failed: " + fsr.status().ToString();
  auto fs = std::move(fsr).value();
  State got;
  Status st = Capture(fs.get(), /*scan=*/true, &got);
  if (!st.ok()) return "reading the recovered volume failed: " + st.ToString();
  if (Status u = fs->Unmount(); !u.ok()) return "unmount failed: " + u.ToString();
  {
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck after recovery failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck after recovery: " + rep->problems[0].code + ": " + rep->problems[0].message;
  }
  for (size_t j = last_sync_op; j <= std::min(cur_op, rec.after_op.size() - 1); j++) {
    if (Matches(got, rec, j, last_sync_op, cur_op)) return "";
  }
  return "recovered state matches no operation boundary in [" + std::to_string(last_sync_op) + ", " +
         std::to_string(cur_op) + "]\nrecovered:\n" + Describe(got) + "last synced:\n" +
         Describe(rec.after_op[last_sync_op]);
}

// Checks a crashed image given the last synced op and the op in progress:
// "" or a failure description.
using Checker = std::function<std::string(std::vector<uint8_t> image, size_t last_sync_op, size_t cur_op)>;

// Checks the crash points (writes) of ops first_op..last_op, with CheckCrash
// unless `check` is given.
void RunCrashPoints(const Recorded& rec, uint64_t seed, size_t max_points, size_t first_op = 0,
                    size_t last_op = SIZE_MAX, Checker check = nullptr) {
  if (!check) {
    check = [&rec](std::vector<uint8_t> image, size_t last_sync_op, size_t cur_op) {
      return CheckCrash(std::move(image), rec, last_sync_op, cur_op);
    };
  }
  ASSERT_FALSE(rec.log.empty());
  std::vector<uint8_t> image = rec.base;
  size_t last_sync_op = 0;
  // Stride so that at most max_points prefixes are checked (all of them when
  // the log is short enough).
  const size_t stride = std::max<size_t>(1, rec.log.size() / max_points);
  size_t checked = 0;
  // Ops whose Sync completed before event i: a Sync completes after its
  // last flush, so track the op of the latest flush that ended an op with
  // a sync.
  for (size_t i = 0; i <= rec.log.size(); i++) {
    // State: events [0, i) applied.
    const size_t cur_op = i < rec.log.size() ? rec.log[i].op : rec.after_op.size() - 1;
    if (cur_op >= first_op && cur_op <= last_op && (i % stride == 0 || i == rec.log.size())) {
      std::string err = check(image, last_sync_op, cur_op);
      ASSERT_EQ(err, "") << "crash after " << i << " of " << rec.log.size() << " writes (op " << cur_op << ")";
      // The same prefix with event i torn in half.
      if (i < rec.log.size() && rec.log[i].block != UINT64_MAX) {
        std::vector<uint8_t> torn = image;
        std::memcpy(torn.data() + rec.log[i].block * kBlockSize, rec.log[i].data.data(), kBlockSize / 2);
        err = check(std::move(torn), last_sync_op, cur_op);
        ASSERT_EQ(err, "") << "torn write " << i << " of " << rec.log.size() << " (op " << cur_op << ")";
      }
      checked++;
    }
    if (i == rec.log.size()) break;
    const auto& e = rec.log[i];
    if (e.block != UINT64_MAX) {
      std::memcpy(image.data() + e.block * kBlockSize, e.data.data(), kBlockSize);
    }
    // Once the last event of a synced op is applied, that op is durable.
    const bool last_of_op = i + 1 == rec.log.size() || rec.log[i + 1].op != e.op;
    if (last_of_op && e.block == UINT64_MAX && e.op < rec.synced.size() && rec.synced[e.op]) {
      last_sync_op = e.op;
    }
  }
  EXPECT_TRUE(checked > 0 || first_op > 0);
  ::testing::Test::RecordProperty("crash_points", static_cast<int>(checked));
  std::printf("seed %llu: %zu writes, %zu crash points checked (x2 with torn writes)\n",
              static_cast<unsigned long long>(seed), rec.log.size(), checked);
}

// Volatile write cache model: at a crash, everything before the last
// completed flush is durable and any subset of the later writes may have
// reached the disk.
//
// Crash points: every stride-th write, or with `at_flushes` the last write
// before every stride-th flush. There the most writes are pending, so every
// image of an earlier point is also an image of that one, and the commit
// block is among them (a commit that lands without the data it needs is
// only seen there).
void RunReorderedCrashPoints(const Recorded& rec, uint64_t seed, size_t samples_per_point, size_t max_points,
                             bool at_flushes = false) {
  std::vector<uint8_t> durable = rec.base;
  std::vector<size_t> pending;  // event indexes since the last flush
  size_t last_sync_op = 0;
  std::mt19937_64 rng(seed * 7919);
  auto before_flush = [&](size_t i) { return i + 1 < rec.log.size() && rec.log[i + 1].block == UINT64_MAX; };
  size_t points = rec.log.size();
  if (at_flushes) {
    points = 0;
    for (size_t i = 0; i < rec.log.size(); i++) points += rec.log[i].block != UINT64_MAX && before_flush(i);
  }
  const size_t stride = std::max<size_t>(1, points / max_points);
  size_t checked = 0, flushes = 0;
  for (size_t i = 0; i < rec.log.size(); i++) {
    const auto& e = rec.log[i];
    if (e.block == UINT64_MAX) {
      for (size_t k : pending) {
        std::memcpy(durable.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize);
      }
      pending.clear();
      const bool last_of_op = i + 1 == rec.log.size() || rec.log[i + 1].op != e.op;
      if (last_of_op && e.op < rec.synced.size() && rec.synced[e.op]) last_sync_op = e.op;
      continue;
    }
    pending.push_back(i);
    if (at_flushes) {
      if (!before_flush(i) || flushes++ % stride != 0) continue;
    } else if (i % stride != 0) {
      continue;
    }
    if (pending.size() < 2) continue;
    for (size_t s = 0; s < samples_per_point; s++) {
      std::vector<uint8_t> image = durable;
      std::string applied;
      // Each pending write is lost with probability 1/2 or (at flushes, in
      // turn) 1/8, or exactly one is: a commit block that lands without
      // one write it depends on needs the rest of its transaction to land.
      const int mode = at_flushes ? static_cast<int>(s % 3) : 0;
      const size_t lost = rng() % pending.size();
      for (size_t n = 0; n < pending.size(); n++) {
        const size_t k = pending[n];
        if (mode == 0 ? rng() % 2 != 0 : mode == 1 ? rng() % 8 != 0 : n != lost) {
          std::memcpy(image.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize);
          applied += " " + std::to_string(rec.log[k].block);
        }
      }
      std::vector<uint8_t> copy;
      if (std::getenv("VEXFS_SAVE_FAILED")) copy = image;
      std::string err = CheckCrash(std::move(image), rec, last_sync_op, e.op);
      if (!err.empty() && std::getenv("VEXFS_SAVE_FAILED")) {
        FILE* f = std::fopen(std::getenv("VEXFS_SAVE_FAILED"), "w");
        std::fwrite(copy.data(), 1, copy.size(), f);
        std::fclose(f);
      }
      if (!err.empty() && std::getenv("VEXFS_SAVE_FAILED")) {
        std::printf("applied:%s\n", applied.c_str());
        for (size_t k : pending) {
          std::printf("pending %llu crc_new=%08x crc_durable=%08x same_as_durable=%d\n", (unsigned long long)rec.log[k].block,
                      Crc32c(rec.log[k].data.data(), kBlockSize), Crc32c(durable.data() + rec.log[k].block * kBlockSize, kBlockSize),
                      std::memcmp(durable.data() + rec.log[k].block * kBlockSize, rec.log[k].data.data(), kBlockSize) == 0);
        }
        for (size_t k = (i > 60 ? i - 60 : 0); k <= i; k++) {
          std::printf("ev %zu op %zu blk %lld%s\n", k, rec.log[k].op, rec.log[k].block == UINT64_MAX ? -1LL : (long long)rec.log[k].block,
                      std::find(pending.begin(), pending.end(), k) != pending.end() ? " pending" : "");
        }
      }
      ASSERT_EQ(err, "") << "reordered crash at write " << i << " sample " << s << " (op " << e.op << ")";
      checked++;
    }
  }
  std::printf("seed %llu: %zu reordered crash images checked\n", static_cast<unsigned long long>(seed), checked);
}

size_t MaxPoints() {
  const char* env = std::getenv("VEXFS_CRASH_POINTS");
  return env ? static_cast<size_t>(std::atol(env)) : 1500;
}

Recorded Mixed(uint64_t seed, int ops) { return Record(seed, ops, 256, MixedOp); }

TEST(CrashTest, MixedWorkloadSeed1) { RunCrashPoints(Mixed(1, 400), 1, MaxPoints()); }
TEST(CrashTest, MixedWorkloadSeed2) { RunCrashPoints(Mixed(2, 400), 2, MaxPoints()); }
TEST(CrashTest, UnflushedWritesLostInAnyOrder) {
  RunReorderedCrashPoints(Mixed(4, 300), 4, 3, MaxPoints() / 3 + 1);
}
TEST(CrashTest, MixedWorkloadSeed3) { RunCrashPoints(Mixed(3, 600), 3, MaxPoints()); }

// Runs `workload` on a fresh volume (`blocks` blocks, `journal_blocks` of
// journal) mounted with a 1 ms commit timer, so that commits land between
// and inside its calls, recording every write and flush; the workload may
// set `*op` to tag the events that follow. Then calls `check` with the
// durable image at each flush of the recording (every write before it
// applied), in order: `flush` is that flush's event and `at` names it. Stops
// at a fatal failure, or with `stop_at_failure` at any failure.
void ForEachDurableStateUnderTimer(uint64_t blocks, uint64_t journal_blocks,
                                   const std::function<void(Filesystem*, size_t* op)>& workload,
                                   const std::function<void(const std::vector<uint8_t>& image,
                                                            const RecordingDevice::Event& flush,
                                                            const std::string& at)>& check,
                                   bool stop_at_failure = false) {
  auto img = testing::NewImage(blocks, journal_blocks, 256);
  const std::vector<uint8_t> base = *img;
  std::vector<RecordingDevice::Event> log;
  size_t op = 0;
  {
    MountOptions mo = testing::TestMountOptions();
    mo.commit_interval_ms = 1;
    auto fsr = Filesystem::Mount(std::make_unique<RecordingDevice>(*img, &log, &op), mo);
    ASSERT_TRUE(fsr.ok()) << fsr.status().ToString();
    auto fs = std::move(fsr).value();
    workload(fs.get(), &op);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_TRUE(fs->Unmount().ok());
  }
  std::vector<uint8_t> image = base;
  for (size_t i = 0; i < log.size(); i++) {
    if (log[i].block != UINT64_MAX) {
      std::memcpy(image.data() + log[i].block * kBlockSize, log[i].data.data(), kBlockSize);
      continue;
    }
    check(image, log[i], "flush " + std::to_string(i) + " of " + std::to_string(log.size()));
    if (stop_at_failure ? ::testing::Test::HasFailure() : ::testing::Test::HasFatalFailure()) return;
  }
}

// A file of three written blocks is cut to 100 bytes, again and again,
// while the commit timer commits every millisecond. At every flush the
// durable volume, once mounted, must read zeros past the file's size when
// the file is grown back. It read the bytes of the next rewrite: that
// write lands in place before the commit that extends the size, and
// growing the file did not zero its last block past the old end. (The
// truncation also used to change the size one operation before it
// unmapped the cut blocks; a commit in between would leave them mapped
// and written past the end, but this test has not been seen to hit that
// window.)
TEST(CrashTest, RegrownFileReadsZerosPastItsSize) {
  const Cred root = Cred::Root();
  constexpr uint64_t kLen = 3 * kBlockSize;
  size_t checked = 0;
  auto workload = [&](Filesystem* fs, size_t*) {
    auto f = fs->Mknod(Filesystem::kRootIno, "cut", S_IFREG | 0644, 0, root);
    ASSERT_TRUE(f.ok());
    SetAttrRequest cut;
    cut.valid = SetAttrRequest::kSize;
    cut.size = 100;
    for (int i = 0; i < 2000; i++) {
      ASSERT_TRUE(fs->Write(f->ino, 0, Bytes(std::string(kLen, static_cast<char>('a' + i % 26)))).ok());
      ASSERT_TRUE(fs->SetAttr(f->ino, cut, root).ok());
    }
  };
  auto check = [&](const std::vector<uint8_t>& image, const RecordingDevice::Event&, const std::string& at) {
    auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(
                                     std::make_shared<std::vector<uint8_t>>(image)),
                                 testing::TestMountOptions());
    ASSERT_TRUE(fsr.ok()) << at << ": " << fsr.status().ToString();
    auto fs = std::move(fsr).value();
    auto f = fs->Lookup(Filesystem::kRootIno, "cut", root);
    if (!f.ok()) return;
    SetAttrRequest grow;
    grow.valid = SetAttrRequest::kSize;
    grow.size = kLen;
    ASSERT_TRUE(fs->SetAttr(f->ino, grow, root).ok());
    std::vector<uint8_t> buf(kLen);
    auto n = fs->Read(f->ino, 0, buf);
    ASSERT_TRUE(n.ok() && *n == kLen);
    for (uint64_t b = f->size; b < kLen; b++) {
      ASSERT_EQ(buf[b], 0) << at << ": byte " << b << " of the file regrown from " << f->size
                           << " bytes is old data";
    }
    checked++;
  };
  ForEachDurableStateUnderTimer(2048, 256, workload, check);
  if (HasFatalFailure()) return;
  EXPECT_GT(checked, 0u);
  std::printf("%zu durable states checked\n", checked);
}

// A truncation downwards used to zero the cut part of its new last block
// in place, a write that reaches the disk before the truncation commits:
// a crash in between left the file at its old size with those bytes
// zeroed, synced data lost to a call that never took effect (found by
// ConcurrentCrashTest). At every prefix of the log from the truncation
// to the Sync after it, the file reads whole at its old size or cut at
// the new one.
TEST(CrashTest, UncommittedTruncationKeepsTheBytesItCuts) {
  const Cred root = Cred::Root();
  auto img = testing::NewImage(2048, 256, 256);
  std::vector<uint8_t> image = *img;
  std::vector<RecordingDevice::Event> log;
  size_t op = 0;  // 1 from the truncation on
  {
    auto fsr = Filesystem::Mount(std::make_unique<RecordingDevice>(*img, &log, &op), testing::TestMountOptions());
    ASSERT_TRUE(fsr.ok()) << fsr.status().ToString();
    auto fs = std::move(fsr).value();
    auto f = fs->Mknod(Filesystem::kRootIno, "f", S_IFREG | 0644, 0, root);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(fs->Write(f->ino, 0, Bytes(std::string(6000, 'a'))).ok());
    ASSERT_TRUE(fs->Sync().ok());
    op = 1;
    SetAttrRequest cut;
    cut.valid = SetAttrRequest::kSize;
    cut.size = 5000;
    ASSERT_TRUE(fs->SetAttr(f->ino, cut, root).ok());
    ASSERT_TRUE(fs->Sync().ok());
  }
  size_t checked = 0;
  for (size_t i = 0; i <= log.size(); i++) {
    if (i == log.size() || log[i].op == 1) {
      auto fs = testing::MountImage(std::make_shared<std::vector<uint8_t>>(image));
      ASSERT_NE(fs, nullptr);
      auto f = fs->Lookup(Filesystem::kRootIno, "f", root);
      ASSERT_TRUE(f.ok());
      const std::string got = testing::ReadAll(fs.get(), f->ino);
      EXPECT_TRUE(got == std::string(6000, 'a') || got == std::string(5000, 'a'))
          << "crash after " << i << " of " << log.size() << " events: size " << got.size() << ", "
          << std::count(got.begin(), got.end(), '\0') << " zero bytes";
      checked++;
    }
    if (i < log.size() && log[i].block != UINT64_MAX) {
      std::memcpy(image.data() + log[i].block * kBlockSize, log[i].data.data(), kBlockSize);
    }
  }
  EXPECT_GT(checked, 2u);
}

// A file grown by a write or a fallocate past its end reads zeros between
// the old end and the new data, wherever a crash left it: an extending
// write's data lands in place before the commit that sets the size, so a
// crash in between (here at the flush a commit makes before its commit
// block, or one by the commit timer) leaves the file's last block holding
// newer bytes past its old end. Rounds of an extending write (aligned,
// through the unlocked allocating path, or not) and a cut back to 100
// bytes, two in three with both fsynced, under a 1 ms commit timer; every
// durable state with the file at 100 bytes is grown each way (on its own
// copy) and read.
TEST(CrashTest, FileGrownByWriteOrFallocateReadsZerosInTheGap) {
  const Cred root = Cred::Root();
  constexpr uint64_t kCut = 100, kLen = 3 * kBlockSize;
  auto workload = [&](Filesystem* fs, size_t*) {
    auto f = fs->Mknod(Filesystem::kRootIno, "cut", S_IFREG | 0644, 0, root);
    ASSERT_TRUE(f.ok());
    SetAttrRequest cut;
    cut.valid = SetAttrRequest::kSize;
    cut.size = kCut;
    for (int i = 0; i < 300; i++) {
      const uint64_t len = i % 2 ? kLen : kLen - 7;  // aligned or not
      ASSERT_TRUE(fs->Write(f->ino, 0, Bytes(std::string(len, static_cast<char>('a' + i % 26)))).ok());
      if (i % 3 != 2) {
        ASSERT_TRUE(fs->Fsync(f->ino, i % 3 == 1).ok());
      }
      ASSERT_TRUE(fs->SetAttr(f->ino, cut, root).ok());
      if (i % 3 != 2) {
        ASSERT_TRUE(fs->Fsync(f->ino, false).ok());
      }
    }
  };
  struct Growth {
    const char* what;
    std::function<Status(Filesystem*, uint64_t)> grow;
    uint64_t size, zeros;  // size after it; bytes [kCut, zeros) read as zeros
    char data;             // and [zeros, size) as this ('\0': zeros too)
  };
  auto write = [](uint64_t off, size_t len) {
    return [=](Filesystem* fs, uint64_t ino) { return fs->Write(ino, off, Bytes(std::string(len, 'X'))).status(); };
  };
  auto fallocate = [](int mode, uint64_t off, uint64_t len) {
    return [=](Filesystem* fs, uint64_t ino) { return fs->Fallocate(ino, mode, off, len); };
  };
  const std::vector<Growth> growths = {
      {"write in the last block", write(3000, 10), 3010, 3000, 'X'},
      {"write in a later block", write(5000, 10), 5010, 5000, 'X'},
      {"whole-block write past a gap", write(8192, 4096), 12288, 8192, 'X'},
      {"fallocate", fallocate(0, 0, kLen), kLen, kLen, 0},
      {"fallocate past the end", fallocate(0, 6000, 100), 6100, 6100, 0},
      {"zero range past the end", fallocate(FALLOC_FL_ZERO_RANGE, 200, 1000), 1200, 1200, 0},
      {"keep-size fallocate, then a write",
       [&](Filesystem* fs, uint64_t ino) {
         VEXFS_RETURN_IF_ERROR(fs->Fallocate(ino, FALLOC_FL_KEEP_SIZE, 0, kLen));
         return write(5000, 10)(fs, ino);
       },
       5010, 5000, 'X'},
  };
  size_t checked = 0;
  std::map<std::string, std::string> failed;
  auto check = [&](const std::vector<uint8_t>& image, const RecordingDevice::Event&, const std::string& at) {
    {
      auto fs = testing::MountImage(std::make_shared<std::vector<uint8_t>>(image));
      ASSERT_NE(fs, nullptr) << at;
      auto f = fs->Lookup(Filesystem::kRootIno, "cut", root);
      if (!f.ok() || f->size != kCut) return;
    }
    for (const Growth& g : growths) {
      auto fs = testing::MountImage(std::make_shared<std::vector<uint8_t>>(image));
      ASSERT_NE(fs, nullptr);
      auto f = fs->Lookup(Filesystem::kRootIno, "cut", root);
      ASSERT_TRUE(f.ok());
      Status s = g.grow(fs.get(), f->ino);
      ASSERT_TRUE(s.ok()) << g.what << ": " << s.ToString();
      std::vector<uint8_t> buf(g.size);
      auto n = fs->Read(f->ino, 0, buf);
      ASSERT_TRUE(n.ok() && *n == g.size) << g.what;
      for (uint64_t b = kCut; b < g.size; b++) {
        if (buf[b] != (b < g.zeros ? 0 : g.data)) {
          // The first durable state where each way fails.
          if (failed.emplace(g.what, at + ": byte " + std::to_string(b) + " reads " + std::to_string(buf[b]))
                  .second) {
            ADD_FAILURE() << g.what << ", " << failed[g.what] << " (grown from " << kCut << " bytes)";
          }
          break;
        }
      }
    }
    checked++;
  };
  ForEachDurableStateUnderTimer(2048, 256, workload, check);
  if (HasFatalFailure()) return;
  EXPECT_GT(checked, 0u);
  EXPECT_TRUE(failed.empty()) << failed.size() << " of " << growths.size() << " ways failed";
  std::printf("%zu durable states checked\n", checked);
}

// Whether the blocks file `ino` maps on the (unmounted) image all lie
// within its size; "" when they do, else what lies beyond.
std::string MappedPastEnd(std::vector<uint8_t>* image, uint64_t ino) {
  testing::SharedMemoryDevice dev(std::shared_ptr<std::vector<uint8_t>>(image, [](auto*) {}));
  auto r = offline::VolumeReader::Open(&dev);
  if (!r.ok()) return r.status().ToString();
  vexfs_inode inode;
  if (Status s = (*r)->ReadInode(ino, &inode); !s.ok()) return s.ToString();
  offline::ExtentMap m;
  offline::ReadExtents(**r, ino, inode, &m);
  if (!m.issues.empty()) return m.issues[0].message;
  const uint64_t end = (core::Le64(inode.i_size) + kBlockSize - 1) / kBlockSize;
  for (const auto& e : m.extents) {
    if (e.logical + e.len > end) {
      return "size " + std::to_string(core::Le64(inode.i_size)) + ", extent at block " + std::to_string(e.logical) +
             " + " + std::to_string(e.len) + (e.unwritten ? " (unwritten)" : " (written)");
    }
  }
  return "";
}

// A truncation of a file of more than 256 extents unmaps them in steps of
// 256, each its own operation; the journal commits between them when its
// running transaction fills (a 64-block journal: past ~16 blocks, which
// the 12 or more extent-tree leaves of a file of 3,000 extents reach).
// A crash there used to leave the rest mapped and written past the new
// end, where a later extension read their old bytes. Rounds: two files
// are fragmented together (3,000 one-block writes each, alternating; the
// first writes every other block, so it has 3,000 extents wherever the
// allocator puts them), synced, then both are cut (one to a partial
// block, one to nothing) under a 1 ms commit timer. Every durable state during and
// just after the cuts: fsck -n finds nothing, the mount (finishing any
// interrupted truncation) leaves no block mapped past either file's end,
// fsck of the unmounted volume is clean (so the bitmap and the free counts
// agree with what is mapped), and growing a file back reads zeros; where
// the mount finished a truncation, fsck -y finishes it too. Six rounds;
// some state must have caught a truncation between its steps.
TEST(CrashTest, InterruptedTruncationOfManyExtentsIsFinished) {
  const Cred root = Cred::Root();
  constexpr uint64_t kBlocks = 3000;  // written per file and round
  uint64_t ino[2] = {0, 0};
  // Tags: 1 while a truncation runs, 2 for the sync after it.
  auto workload = [&](Filesystem* fs, size_t* op) {
    for (int k = 0; k < 2; k++) {
      auto f = fs->Mknod(Filesystem::kRootIno, "f" + std::to_string(k), S_IFREG | 0644, 0, root);
      ASSERT_TRUE(f.ok());
      ino[k] = f->ino;
    }
    for (int round = 0; round < 6; round++) {
      for (uint64_t b = 0; b < kBlocks; b++) {
        for (int k = 0; k < 2; k++) {
          const std::string data(kBlockSize, static_cast<char>('a' + (round * 2 + k) % 26));
          ASSERT_TRUE(fs->Write(ino[k], (k == 0 ? 2 * b : b) * kBlockSize, Bytes(data)).ok());
        }
      }
      ASSERT_TRUE(fs->Sync().ok());
      *op = 1;
      for (int k = 0; k < 2; k++) {
        SetAttrRequest cut;
        cut.valid = SetAttrRequest::kSize;
        cut.size = k == 0 ? kBlockSize + 100 + 1000 * round : 0;
        ASSERT_TRUE(fs->SetAttr(ino[k], cut, root).ok());
      }
      *op = 2;
      ASSERT_TRUE(fs->Sync().ok());
      *op = 0;
    }
  };
  size_t checked = 0, cut_short = 0, pending = 0;
  auto check = [&](const std::vector<uint8_t>& image, const RecordingDevice::Event& flush, const std::string& at) {
    if (flush.op == 0) return;
    {
      testing::SharedMemoryDevice dev(std::make_shared<std::vector<uint8_t>>(image));
      auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
      ASSERT_TRUE(rep.ok()) << at;
      ASSERT_TRUE(rep->problems.empty()) << at << ": " << rep->problems[0].code << " " << rep->problems[0].message;
    }
    auto copy = std::make_shared<std::vector<uint8_t>>(image);
    uint64_t size[2];
    {
      MountInfo info;
      auto fs = testing::MountImage(copy, testing::TestMountOptions(), &info);
      ASSERT_NE(fs, nullptr) << at;
      pending += info.truncations_finished > 0;
      if (info.truncations_finished > 0) {
        // fsck -y finishes it as well.
        auto fixed = std::make_shared<std::vector<uint8_t>>(image);
        testing::SharedMemoryDevice dev(fixed);
        auto y = CheckVolume(&dev, CheckOptions{.repair = true, .force = true});
        ASSERT_TRUE(y.ok()) << at;
        EXPECT_TRUE(y->Has("orphan.truncated")) << at;
        EXPECT_EQ(y->errors_left(), 0u) << at;
        for (int k = 0; k < 2; k++) EXPECT_EQ(MappedPastEnd(fixed.get(), ino[k]), "") << at << ": fsck -y, file " << k;
        auto n = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
        ASSERT_TRUE(n.ok()) << at;
        EXPECT_TRUE(n->problems.empty()) << at << ": after fsck -y: " << n->problems[0].code;
      }
      for (int k = 0; k < 2; k++) {
        auto a = fs->GetAttr(ino[k]);
        ASSERT_TRUE(a.ok()) << at;
        size[k] = a->size;
      }
      ASSERT_TRUE(fs->Unmount().ok()) << at;
    }
    for (int k = 0; k < 2; k++) {
      const std::string past = MappedPastEnd(copy.get(), ino[k]);
      EXPECT_EQ(past, "") << at << ": file " << k << " after the mount";
      if (!past.empty()) cut_short++;
    }
    {
      testing::SharedMemoryDevice dev(copy);
      auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
      ASSERT_TRUE(rep.ok()) << at;
      ASSERT_TRUE(rep->problems.empty()) << at << ": " << rep->problems[0].code << " " << rep->problems[0].message;
    }
    {
      auto fs = testing::MountImage(copy);
      ASSERT_NE(fs, nullptr) << at;
      for (int k = 0; k < 2; k++) {
        SetAttrRequest grow;
        grow.valid = SetAttrRequest::kSize;
        grow.size = 2 * kBlocks * kBlockSize;
        ASSERT_TRUE(fs->SetAttr(ino[k], grow, root).ok());
        std::vector<uint8_t> buf(grow.size);
        auto n = fs->Read(ino[k], 0, buf);
        ASSERT_TRUE(n.ok() && *n == grow.size);
        const auto nz = std::find_if(buf.begin() + size[k], buf.end(), [](uint8_t c) { return c != 0; });
        EXPECT_TRUE(nz == buf.end()) << at << ": file " << k << " cut to " << size[k]
                                     << " and grown back reads " << int{*nz} << " at byte " << (nz - buf.begin());
      }
    }
    checked++;
  };
  ForEachDurableStateUnderTimer(16384, 64, workload, check, /*stop_at_failure=*/true);
  if (HasFatalFailure()) return;
  EXPECT_GT(checked, 0u);
  EXPECT_GT(pending, 0u) << "no durable state caught a truncation between two of its steps";
  std::printf("%zu durable states checked, %zu with a truncation the mount finished, %zu files left mapped past "
              "their end\n",
              checked, pending, cut_short);
}

// A small journal, so commits also happen inside the multi-step calls
// (DropCollection, SaveIndexBlob) and between operations.
Recorded Vectors(uint64_t seed, int ops) { return Record(seed, ops, 128, VectorWorkload()); }

// The shape of the drop and adoption workloads: op 1 makes /d; with
// `collection_first`, op 2 makes it a collection; then two ops per file
// create /d/f<i> and give it a vector xattr, the last of them syncing;
// `dirs` unsynced mkdirs follow; then `last(fs, /d)` is one op, and the
// next op syncs.
Workload FilesThenMkdirsThen(bool collection_first, size_t files, size_t dirs,
                             std::function<void(Filesystem*, uint64_t)> last) {
  return [=](Filesystem* fs, std::mt19937_64&, size_t op) {
    const Cred root = Cred::Root();
    const size_t first = collection_first ? 3 : 2;  // the first file op
    const size_t mkdirs = first + 2 * files, last_op = mkdirs + dirs;
    OpResult r;
    auto d = fs->ResolvePath("/d");
    if (op == 1) {
      EXPECT_TRUE(fs->Mkdir(Filesystem::kRootIno, "d", 0755, root).ok());
    } else if (op < first) {
      CollectionConfig c;
      c.dim = 300;
      EXPECT_TRUE(fs->CreateCollection(d->ino, c, root).ok());
    } else if (op < mkdirs) {
      const std::string name = "f" + std::to_string((op - first) / 2);
      if ((op - first) % 2 == 0) {
        EXPECT_TRUE(fs->Mknod(d->ino, name, S_IFREG | 0644, 0, root).ok());
      } else {
        auto f = fs->Lookup(d->ino, name, root);
        EXPECT_TRUE(fs->SetXattr(f->ino, VEXFS_VECTOR_XATTR, testing::VectorBytes(float(op), 300), 0, root).ok());
      }
      r.sync = op == mkdirs - 1;
    } else if (op < last_op) {
      EXPECT_TRUE(fs->Mkdir(Filesystem::kRootIno, "x" + std::to_string(op), 0755, root).ok());
    } else if (op == last_op) {
      last(fs, d->ino);
    } else {
      r.sync = true;
    }
    if (r.sync) {
      EXPECT_TRUE(fs->Sync().ok());
    }
    return r;
  };
}

// Op 3 + 2 * 40 + dirs drops a collection of 40 vectors after `dirs`
// unsynced mkdirs; the next op syncs.
Workload DropAfterMkdirs(size_t dirs) {
  return FilesThenMkdirsThen(true, 40, dirs, [](Filesystem* fs, uint64_t d) {
    EXPECT_TRUE(fs->DropCollection(d, Cred::Root()).ok());
  });
}

// A small collection is dropped in one atomic step wherever the journal
// commits (it used to lose its vectors first, in an operation of its own
// that could commit alone). The journal commits when its running
// transaction passes a quarter of the journal; the number of mkdirs before
// the drop moves that point, and in some of ten consecutive counts it
// falls inside the drop. Only the writes of the drop itself are cut.
TEST(CrashTest, DropCollectionIsAtomic) {
  size_t inside = 0;  // writes during the drop, over all counts
  for (size_t dirs = 10; dirs < 20; dirs++) {
    const size_t drop_op = 3 + 2 * 40 + dirs;
    const Recorded rec = Record(7, static_cast<int>(drop_op + 1), 64, DropAfterMkdirs(dirs));
    for (const auto& e : rec.log) inside += e.op == drop_op;
    RunCrashPoints(rec, 7, std::max<size_t>(1, MaxPoints() / 10), drop_op, drop_op);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(inside, 0u) << "the journal never committed inside the drop: adjust the mkdir counts";
}

// Op 1 makes /d, the next 2 * 30 create files there holding ordinary
// vector xattrs, then a Sync; `dirs` unsynced mkdirs follow, then op
// 62 + dirs makes /d a collection (which converts the files one operation
// each) and the next op syncs.
Workload AdoptAfterMkdirs(size_t dirs) {
  return FilesThenMkdirsThen(false, 30, dirs, [](Filesystem* fs, uint64_t d) {
    CollectionConfig c;
    c.dim = 300;
    EXPECT_TRUE(fs->CreateCollection(d, c, Cred::Root()).ok());
  });
}

// A crash inside CreateCollection may leave some files of the new
// collection holding ordinary vector xattrs (docs/format.md: converted
// one operation each; not an inconsistency). Every such image checks
// clean, every file keeps its vector bytes, and UpdateCollection (a
// reindex) converts the rest. As in DropCollectionIsAtomic, the mkdir
// counts move the journal's commits into the conversion.
TEST(CrashTest, InterruptedAdoptionIsFinishedByUpdate) {
  size_t partial = 0;     // images with the conversion half done
  bool every_point = true;  // unless VEXFS_CRASH_POINTS thins them out
  const size_t budget = std::max<size_t>(1, MaxPoints() / 10);
  for (size_t dirs = 10; dirs < 20; dirs++) {
    const size_t create_op = 62 + dirs;
    const Recorded rec = Record(8, static_cast<int>(create_op + 1), 64, AdoptAfterMkdirs(dirs));
    const State& before = rec.after_op[create_op - 1];
    const State& after = rec.after_op[create_op];
    auto check = [&](std::vector<uint8_t> image, size_t, size_t) -> std::string {
      auto shared = std::make_shared<std::vector<uint8_t>>(std::move(image));
      testing::SharedMemoryDevice dev(shared);
      auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
      if (!rep.ok()) return "fsck -n failed: " + rep.status().ToString();
      if (rep->errors_left() > 0) return "fsck -n found " + rep->problems[0].code + ": " + rep->problems[0].message;
      auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(shared), testing::TestMountOptions());
      if (!fsr.ok()) return "mount failed: " + fsr.status().ToString();
      auto fs = std::move(fsr).value();
      State got;
      if (Status st = Capture(fs.get(), /*scan=*/true, &got); !st.ok()) return "reading failed: " + st.ToString();
      // The files of /d with their vectors, whichever mkdirs survived.
      auto files_of_d = [](const State& s) {
        std::string out;
        for (const auto& [path, fstate] : s.files) {
          if (path.starts_with("/d/")) out += path + " " + fstate.meta + "\n";
        }
        return out;
      };
      if (files_of_d(got) != files_of_d(before)) {
        return "the files changed:\n" + files_of_d(got) + "want:\n" + files_of_d(before);
      }
      auto d = fs->ResolvePath("/d");
      if (!d.ok()) return "no /d";
      if (auto cfg = fs->GetCollection(d->ino); cfg.ok()) {
        partial += got.colls["/d"].find("plain") != std::string::npos;
        if (Status u = fs->UpdateCollection(d->ino, *cfg, Cred::Root()); !u.ok()) return "reindex: " + u.ToString();
        State reindexed;
        if (Status st = Capture(fs.get(), /*scan=*/true, &reindexed); !st.ok()) return "reading failed: " + st.ToString();
        if (reindexed.colls != after.colls) {
          return "after the reindex:\n" + Describe(reindexed) + "want:\n" + Describe(after);
        }
      } else if (!got.colls.empty()) {
        return "collections without /d:\n" + Describe(got);
      }
      if (Status u = fs->Unmount(); !u.ok()) return "unmount failed: " + u.ToString();
      rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
      if (!rep.ok()) return "fsck after recovery failed: " + rep.status().ToString();
      if (rep->errors_left() > 0) return "fsck after recovery: " + rep->problems[0].code + ": " + rep->problems[0].message;
      return "";
    };
    every_point &= rec.log.size() / budget <= 1;  // RunCrashPoints' stride
    RunCrashPoints(rec, 8, budget, create_op, create_op, check);
    if (HasFatalFailure()) return;
  }
  if (every_point) {
    EXPECT_GT(partial, 0u) << "no crash image had the conversion half done: adjust the mkdir counts";
  }
}

// Index blobs larger than SaveIndexBlob's 1 MiB step: saved, rewritten in
// place shorter (trimmed) and longer, with vector changes between.
OpResult BigBlobOp(Filesystem* fs, std::mt19937_64&, size_t op) {
  const Cred root = Cred::Root();
  constexpr uint32_t kDim = 64;
  OpResult r;
  auto c = fs->ResolvePath("/c");
  auto file = [&](int i) { return fs->Lookup(c->ino, "f" + std::to_string(i), root); };
  auto save = [&](size_t bytes) {
    auto vectors = FileVectors(fs, c->ino);
    EXPECT_TRUE(vectors.ok());
    const Status s = fs->SaveIndexBlob(c->ino, IndexBlob(Digest(*vectors), bytes));
    EXPECT_TRUE(s.ok()) << s.ToString();
    r.index = true;
  };
  if (op == 1) {
    EXPECT_TRUE(fs->Mkdir(Filesystem::kRootIno, "c", 0755, root).ok());
  } else if (op == 2) {
    CollectionConfig cfg;
    cfg.dim = kDim;
    EXPECT_TRUE(fs->CreateCollection(c->ino, cfg, root).ok());
  } else if (op < 23) {
    const int i = static_cast<int>(op - 3) / 2;
    if (op % 2 == 1) {
      EXPECT_TRUE(fs->Mknod(c->ino, "f" + std::to_string(i), S_IFREG | 0644, 0, root).ok());
    } else {
      EXPECT_TRUE(fs->SetXattr(file(i)->ino, VEXFS_VECTOR_XATTR, testing::VectorBytes(float(i), kDim), 0, root).ok());
    }
  } else {
    switch (op) {
      case 24: save(2500000); break;
      case 26: save(1200000); break;  // in place, trimmed
      case 27:
        EXPECT_TRUE(fs->SetXattr(file(3)->ino, VEXFS_VECTOR_XATTR, testing::VectorBytes(-3, kDim), 0, root).ok());
        break;
      case 28: save(3100000); break;  // in place, then grown
      case 30: EXPECT_TRUE(fs->RemoveXattr(file(4)->ino, VEXFS_VECTOR_XATTR, root).ok()); break;
      case 31: save(600000); break;
      default: r.sync = true; break;  // 23, 25, 29, 32
    }
  }
  if (r.sync) {
    EXPECT_TRUE(fs->Sync().ok());
  }
  return r;
}

TEST(CrashTest, LargeIndexBlobs) {
  const Recorded rec = Record(9, 32, 64, BigBlobOp);
  RunCrashPoints(rec, 9, std::max<size_t>(1, MaxPoints() / 3), 23);
  RunReorderedCrashPoints(rec, 9, 6, std::max<size_t>(1, MaxPoints() / 60), /*at_flushes=*/true);
}

// Op 1 makes /d a collection of 300 vectors and syncs; op 2 drops it; op 3
// syncs.
OpResult BigDropOp(Filesystem* fs, std::mt19937_64&, size_t op) {
  const Cred root = Cred::Root();
  OpResult r;
  if (op == 1) {
    auto d = fs->Mkdir(Filesystem::kRootIno, "d", 0755, root);
    EXPECT_TRUE(d.ok());
    CollectionConfig cfg;
    cfg.dim = 8;
    EXPECT_TRUE(fs->CreateCollection(d->ino, cfg, root).ok());
    for (int i = 0; i < 300; i++) {
      auto f = fs->Mknod(d->ino, "f" + std::to_string(i), S_IFREG | 0644, 0, root);
      EXPECT_TRUE(f.ok());
      EXPECT_TRUE(fs->SetXattr(f->ino, VEXFS_VECTOR_XATTR, testing::VectorBytes(float(i), 8), 0, root).ok());
    }
  } else if (op == 2) {
    EXPECT_TRUE(fs->DropCollection(fs->ResolvePath("/d")->ino, root).ok());
  }
  r.sync = op != 2;
  if (r.sync) {
    EXPECT_TRUE(fs->Sync().ok());
  }
  return r;
}

// A collection of more than 256 vectors sheds them in atomic batches of 256
// before it goes (filesystem.h): a crash inside the drop leaves the
// collection whole, gone, or present with some vectors removed and the
// others intact; the volume checks clean and a second drop finishes it.
TEST(CrashTest, LargeDropShedsVectorsInBatches) {
  const Recorded rec = Record(10, 3, 64, BigDropOp, 512);
  const State& before = rec.after_op[1];
  std::map<std::string, std::string> vectors;  // path -> x: part of its meta
  for (const auto& [path, f] : before.files) {
    if (path.starts_with("/d/")) vectors[path] = f.meta;
  }
  ASSERT_EQ(vectors.size(), 300u);
  size_t partial = 0;
  auto check = [&](std::vector<uint8_t> image, size_t, size_t) -> std::string {
    auto shared = std::make_shared<std::vector<uint8_t>>(std::move(image));
    testing::SharedMemoryDevice dev(shared);
    auto rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck -n failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck -n found " + rep->problems[0].code + ": " + rep->problems[0].message;
    auto fsr = Filesystem::Mount(std::make_unique<testing::SharedMemoryDevice>(shared), testing::TestMountOptions());
    if (!fsr.ok()) return "mount failed: " + fsr.status().ToString();
    auto fs = std::move(fsr).value();
    State got;
    if (Status st = Capture(fs.get(), /*scan=*/true, &got); !st.ok()) return "reading failed: " + st.ToString();
    const bool coll = got.colls.count("/d") != 0;
    size_t kept = 0;
    for (const auto& [path, meta] : vectors) {
      auto it = got.files.find(path);
      if (it == got.files.end()) return path + " is gone";
      if (it->second.meta == meta) {
        kept++;
      } else if (it->second.meta.find(" x:") != std::string::npos) {
        return path + " has another vector: " + it->second.meta;
      }
    }
    if (!coll && kept != 0) return "the collection is gone but " + std::to_string(kept) + " files kept vectors";
    if (coll && kept != 300 && kept != 300 - 256) {
      return "the collection remains with " + std::to_string(kept) + " vectors, not a whole batch fewer";
    }
    partial += coll && kept != 300;
    auto d = fs->ResolvePath("/d");
    if (coll) {
      if (Status s = fs->DropCollection(d->ino, Cred::Root()); !s.ok()) return "second drop: " + s.ToString();
      State dropped;
      if (Status st = Capture(fs.get(), /*scan=*/true, &dropped); !st.ok()) return "reading failed: " + st.ToString();
      if (!dropped.colls.empty()) return "still a collection after the second drop";
    }
    if (Status u = fs->Unmount(); !u.ok()) return "unmount failed: " + u.ToString();
    rep = CheckVolume(&dev, CheckOptions{.repair = false, .force = true});
    if (!rep.ok()) return "fsck after recovery failed: " + rep.status().ToString();
    if (rep->errors_left() > 0) return "fsck after recovery: " + rep->problems[0].code + ": " + rep->problems[0].message;
    return "";
  };
  const size_t budget = std::max<size_t>(1, MaxPoints() / 3);
  RunCrashPoints(rec, 10, budget, 2, 3, check);
  if (rec.log.size() / budget <= 1) {  // every point was checked
    EXPECT_GT(partial, 0u) << "no crash image had the drop half done";
  }
  ::testing::Test::RecordProperty("partial_drops", static_cast<int>(partial));
}

TEST(CrashTest, VectorWorkload) { RunCrashPoints(Vectors(5, 400), 5, MaxPoints()); }
TEST(CrashTest, VectorWritesLostInAnyOrder) {
  RunReorderedCrashPoints(Vectors(6, 400), 6, 6, MaxPoints() / 6 + 1, /*at_flushes=*/true);
}

}  // namespace
}  // namespace vexfs
