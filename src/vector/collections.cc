// Collections: per-collection ANN indexes fed by filesystem events, a
// pending set searched exactly until the background indexer catches up,
// a name map (inode -> links) for result paths and permission checks.
//
// Locks (never held while calling into the Filesystem, whose lock is held
// while events arrive): map_mu_ (the collection map), names_mu_ (name map),
// Coll::pmu (pending set, members), Coll::imu (the index; shared for
// searches, exclusive for the indexer). Order: imu before pmu.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "vexfs/collections.h"
#include "vexfs/engine/distance.h"
#include "vexfs/engine/flat_index.h"
#include "vexfs/engine/hnsw.h"
#include "vexfs/engine/lsh.h"
#include "vexfs/filter.h"
#include "uapi/vexfs/vexfs_format.h"

namespace vexfs {
namespace {

using engine::Metric;
using engine::Neighbor;

constexpr size_t kMaxK = 10000;
constexpr size_t kMaxNq = 1024;
// Vectors per indexer step (taken from the pending set at once).
constexpr size_t kBatch = 256;
// Vectors added under one hold of the index lock while searches wait.
constexpr size_t kStep = 32;
constexpr int kMaxDepth = 4096;

Metric MetricOf(uint8_t m) {
  return m == VEXFS_METRIC_IP ? Metric::kInnerProduct : m == VEXFS_METRIC_COSINE ? Metric::kCosine : Metric::kL2;
}
engine::ElementType ElemOf(uint8_t e) {
  return e == VEXFS_ELEM_F16 ? engine::ElementType::kFloat16
         : e == VEXFS_ELEM_I8 ? engine::ElementType::kInt8
                              : engine::ElementType::kFloat32;
}

struct Link {
  uint64_t parent;
  std::string name;
};

// What a search needs to know of an inode besides its names, kept until
// the filesystem's attribute epoch moves (Filesystem::AttrEpoch): a hit
// then costs one lookup in the name map instead of a trip through the
// filesystem lock and its inode cache.
struct Facts {
  uint64_t epoch = 0;  // the epoch read before these were fetched; 0: none
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_sec = 0;
};

struct Names {
  std::vector<Link> links;
  Facts facts;
};

class VectorFetcher final : public engine::VectorSource {
 public:
  explicit VectorFetcher(Filesystem* fs) : fs_(fs) {}
  Status Fetch(uint64_t id, std::span<float> out) const override {
    VEXFS_ASSIGN_OR_RETURN(std::vector<uint8_t> v, fs_->GetXattr(id, VEXFS_VECTOR_XATTR, Cred::Root()));
    if (v.size() != out.size() * 4) return Status::Corruption("stored vector changed size");
    std::memcpy(out.data(), v.data(), v.size());
    return Status::Ok();
  }

 private:
  Filesystem* fs_;
};

struct Coll {
  uint64_t dir = 0;
  CollectionConfig cfg;
  Metric metric = Metric::kL2;
  std::shared_mutex imu;
  std::unique_ptr<engine::VectorIndex> index;
  std::unique_ptr<VectorFetcher> fetcher;
  std::mutex pmu;
  struct Pend {
    bool remove = false;
    std::vector<float> vec;   // as stored
    std::vector<float> norm;  // normalised copy (cosine)
    uint64_t seq = 0;
  };
  std::unordered_map<uint64_t, Pend> pending;
  std::unordered_set<uint64_t> members;
  std::atomic<bool> loaded{false}, rebuilt{false};
  // Size and memory of `index`, published after every change so Info()
  // never waits for the indexer's exclusive hold of `imu`.
  std::atomic<uint64_t> indexed{0}, index_bytes{0};
  // Searches waiting for `imu` (the indexer lets them in between steps).
  std::atomic<int> readers_waiting{0};
  std::atomic<bool> dirty{false};
  std::atomic<bool> dropped{false};
};

class CollectionsImpl final : public Collections, public FsObserver {
 public:
  CollectionsImpl(Filesystem* fs, CollectionsOptions opts) : fs_(fs), opts_(std::move(opts)) {}
  ~CollectionsImpl() override { Stop(); }

  Status Start();
  Status Close() override;
  Status Create(uint64_t dir, const CollectionConfig& config, const Cred& cred) override;
  Status Drop(uint64_t dir, const Cred& cred) override;
  Status Reindex(uint64_t dir, const CollectionConfig& config, const Cred& cred) override;
  Result<CollectionInfo> Info(uint64_t dir) override;
  Result<std::vector<SearchHit>> Search(uint64_t dir, const SearchRequest& request, const Cred& cred) override;
  void WaitIndexed() override;

  // FsObserver (filesystem lock held).
  void OnLink(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) override;
  void OnUnlink(uint64_t parent, std::string_view name, uint64_t ino) override;
  void OnVectorSet(uint64_t collection, uint64_t ino, std::span<const float> vec) override;
  void OnVectorRemoved(uint64_t collection, uint64_t ino) override;
  void OnCollectionCreated(uint64_t collection) override;
  void OnCollectionDropped(uint64_t collection) override;

 private:
  std::shared_ptr<Coll> Get(uint64_t dir);
  // Creates the (empty) index of `c` from its configuration.
  Status MakeIndex(Coll& c);
  Status LoadOne(uint64_t dir);
  // The index persisted for `c` if it is valid and parses, else null.
  std::unique_ptr<engine::VectorIndex> IndexFromBlob(Coll& c);
  Status ScanNames(uint64_t root);
  void Log(const std::string& line) {
    if (opts_.log) opts_.log(line);
  }
  void IndexerLoop();
  bool IndexSome();
  void Stop();
  void Enqueue(Coll& c, uint64_t ino, const float* v, size_t n);

  // Top `kk` candidates: exact over the pending set, ANN over the index.
  Result<std::vector<Neighbor>> Candidates(Coll& c, const float* q, size_t kk, size_t effort,
                                           const engine::IdFilter* filter);
  // Paths from `dir` to `ino` with the directories crossed (dir first).
  struct Route {
    std::string path;
    std::vector<uint64_t> dirs;
  };
  // With `facts`: also copies the cached facts of `ino` (epoch 0 if none).
  std::vector<Route> Routes(uint64_t ino, uint64_t dir, uint64_t root, Facts* facts = nullptr);
  // Facts of `ino` current at `epoch` (read before the call): the cached
  // ones if `*f` already holds them, else fetched and cached. False if the
  // inode is gone.
  bool Refresh(uint64_t ino, uint64_t epoch, Facts* f);
  Facts CachedFacts(uint64_t ino);

  Filesystem* fs_;
  CollectionsOptions opts_;
  std::mutex map_mu_;
  std::map<uint64_t, std::shared_ptr<Coll>> colls_;
  std::mutex names_mu_;
  std::unordered_map<uint64_t, Names> names_;
  std::unordered_set<uint64_t> scope_;  // directories whose entries are tracked
  std::atomic<uint64_t> seq_{1};
  std::mutex work_mu_;
  std::condition_variable work_cv_, idle_cv_;
  bool stop_ = false;
  bool busy_ = false;
  std::thread indexer_;
  bool attached_ = false;
};

std::shared_ptr<Coll> CollectionsImpl::Get(uint64_t dir) {
  std::lock_guard<std::mutex> l(map_mu_);
  auto it = colls_.find(dir);
  return it == colls_.end() ? nullptr : it->second;
}

// Caller holds c.imu (either mode) and has just changed c.index.
void PublishIndexStats(Coll& c) {
  c.indexed = c.index ? c.index->size() : 0;
  c.index_bytes = c.index ? c.index->MemoryBytes() : 0;
}

Status CollectionsImpl::MakeIndex(Coll& c) {
  const auto& cfg = c.cfg;
  c.metric = MetricOf(cfg.metric);
  if (cfg.index_kind == VEXFS_INDEX_HNSW) {
    engine::HnswParams p;
    p.dim = cfg.dim;
    p.metric = c.metric;
    p.element_type = ElemOf(cfg.element_type);
    if (cfg.params[0]) p.M = cfg.params[0];
    if (cfg.params[1]) p.ef_construction = cfg.params[1];
    if (cfg.params[2]) p.ef_search = cfg.params[2];
    VEXFS_ASSIGN_OR_RETURN(auto idx, engine::HnswIndex::Create(p));
    if (p.element_type == engine::ElementType::kInt8) {
      c.fetcher = std::make_unique<VectorFetcher>(fs_);
      idx->SetVectorSource(c.fetcher.get());
    }
    c.index = std::move(idx);
  } else if (cfg.index_kind == VEXFS_INDEX_LSH) {
    engine::LshOptions o;
    o.dim = cfg.dim;
    o.metric = c.metric;
    if (cfg.params[0]) o.num_tables = cfg.params[0];
    if (cfg.params[1]) o.num_bits = cfg.params[1];
    if (cfg.params[2]) o.default_probes = cfg.params[2];
    o.num_threads = 1;
    VEXFS_ASSIGN_OR_RETURN(c.index, engine::LshIndex::Create(o));
  } else {
    engine::FlatIndexOptions o;
    o.dim = cfg.dim;
    o.metric = c.metric;
    o.element_type = ElemOf(cfg.element_type);
    o.num_threads = 1;
    VEXFS_ASSIGN_OR_RETURN(c.index, engine::FlatIndex::Create(o));
  }
  PublishIndexStats(c);
  return Status::Ok();
}

void CollectionsImpl::Enqueue(Coll& c, uint64_t ino, const float* v, size_t n) {
  Coll::Pend p;
  p.vec.assign(v, v + n);
  if (c.metric == Metric::kCosine) {
    p.norm = p.vec;
    engine::NormalizeL2(p.norm.data(), n);
  }
  p.seq = seq_++;
  c.pending[ino] = std::move(p);
  c.members.insert(ino);
}

std::unique_ptr<engine::VectorIndex> CollectionsImpl::IndexFromBlob(Coll& c) {
  auto blob = fs_->LoadIndexBlob(c.dir);
  if (!blob.ok()) return nullptr;
  if (c.cfg.index_kind == VEXFS_INDEX_HNSW) {
    auto h = engine::HnswIndex::Deserialize(*blob);
    if (!h.ok()) return nullptr;
    if (h.value()->params().element_type == engine::ElementType::kInt8) {
      c.fetcher = std::make_unique<VectorFetcher>(fs_);
      h.value()->SetVectorSource(c.fetcher.get());
    }
    return std::move(h).value();
  }
  if (c.cfg.index_kind == VEXFS_INDEX_LSH) {
    auto l = engine::LshIndex::Deserialize(*blob);
    return l.ok() ? std::move(l).value() : nullptr;
  }
  auto f = engine::FlatIndex::Deserialize(*blob);
  return f.ok() ? std::move(f).value() : nullptr;
}

Status CollectionsImpl::LoadOne(uint64_t dir) {
  auto c = std::make_shared<Coll>();
  c->dir = dir;
  VEXFS_ASSIGN_OR_RETURN(c->cfg, fs_->GetCollection(dir));
  c->metric = MetricOf(c->cfg.metric);
  const size_t dim = c->cfg.dim;
  std::unique_ptr<engine::VectorIndex> from_blob = c->cfg.index_valid ? IndexFromBlob(*c) : nullptr;
  // A VALID blob holds exactly the stored vectors (the first vector change
  // after a mount marks it STALE in the same transaction; fsck checks it),
  // so its ids are the members and the slots need not be read: attaching
  // costs the blob, not a pass over every stored vector. Otherwise the
  // index is rebuilt from the slots.
  std::vector<uint64_t> ids;
  std::vector<float> vecs;
  bool loaded = false;
  if (from_blob && from_blob->dim() == dim) {
    ids = from_blob->Ids();
    c->index = std::move(from_blob);
    PublishIndexStats(*c);
    loaded = true;
  } else {
    c->fetcher.reset();
    VEXFS_RETURN_IF_ERROR(fs_->ScanVectors(dir, [&](uint64_t ino, std::span<const float> v) {
      ids.push_back(ino);
      vecs.insert(vecs.end(), v.begin(), v.end());
    }));
  }
  std::string where = "collection at inode " + std::to_string(dir);
  if (loaded) {
    c->loaded = true;
    std::lock_guard<std::mutex> l(c->pmu);
    c->members.insert(ids.begin(), ids.end());
  } else {
    VEXFS_RETURN_IF_ERROR(MakeIndex(*c));
    {
      std::lock_guard<std::mutex> l(c->pmu);
      for (size_t i = 0; i < ids.size(); i++) Enqueue(*c, ids[i], vecs.data() + i * dim, dim);
    }
    c->dirty = true;
    if (!ids.empty()) {
      c->rebuilt = true;
      Log(where + ": no valid persisted index; rebuilding it from " + std::to_string(ids.size()) +
          " stored vectors in the background (searches stay exact meanwhile)");
    }
  }
  {
    std::lock_guard<std::mutex> l(map_mu_);
    colls_[dir] = c;
  }
  return ScanNames(dir);
}

Status CollectionsImpl::ScanNames(uint64_t root) {
  {
    std::lock_guard<std::mutex> l(names_mu_);
    scope_.insert(root);
  }
  std::vector<uint64_t> stack{root};
  while (!stack.empty()) {
    const uint64_t d = stack.back();
    stack.pop_back();
    std::vector<DirEntry> entries;
    VEXFS_RETURN_IF_ERROR(fs_->ReadDir(d, 0, [&](const DirEntry& e) {
      if (e.name != "." && e.name != "..") entries.push_back(e);
      return true;
    }));
    std::lock_guard<std::mutex> l(names_mu_);
    for (const auto& e : entries) {
      auto& links = names_[e.ino].links;
      bool have = false;
      for (const auto& lk : links) have |= (lk.parent == d && lk.name == e.name);
      if (!have) links.push_back(Link{d, e.name});
      if (e.type == VEXFS_FT_DIR && !scope_.count(e.ino)) {
        scope_.insert(e.ino);
        stack.push_back(e.ino);
      }
    }
  }
  return Status::Ok();
}

Status CollectionsImpl::Start() {
  fs_->SetObserver(this);
  attached_ = true;
  VEXFS_ASSIGN_OR_RETURN(std::vector<uint64_t> dirs, fs_->ListCollections());
  for (uint64_t d : dirs) VEXFS_RETURN_IF_ERROR(LoadOne(d));
  indexer_ = std::thread([this] { IndexerLoop(); });
  return Status::Ok();
}

void CollectionsImpl::Stop() {
  {
    std::lock_guard<std::mutex> l(work_mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (indexer_.joinable()) indexer_.join();
  if (attached_) {
    fs_->SetObserver(nullptr);
    attached_ = false;
  }
}

// -- Events ----------------------------------------------------------------

void CollectionsImpl::OnLink(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) {
  std::lock_guard<std::mutex> l(names_mu_);
  if (!scope_.count(parent)) return;
  names_[ino].links.push_back(Link{parent, std::string(name)});
  if (is_dir) scope_.insert(ino);
}

void CollectionsImpl::OnUnlink(uint64_t parent, std::string_view name, uint64_t ino) {
  std::lock_guard<std::mutex> l(names_mu_);
  auto it = names_.find(ino);
  if (it == names_.end()) return;
  auto& links = it->second.links;
  links.erase(std::remove_if(links.begin(), links.end(),
                             [&](const Link& lk) { return lk.parent == parent && lk.name == name; }),
              links.end());
  if (links.empty()) {
    names_.erase(it);
    // A directory keeps its scope while it is being moved (link follows);
    // an rmdir'ed one has no entries left to track.
  }
}

void CollectionsImpl::OnVectorSet(uint64_t collection, uint64_t ino, std::span<const float> vec) {
  auto c = Get(collection);
  if (!c) return;
  {
    std::lock_guard<std::mutex> l(c->pmu);
    Enqueue(*c, ino, vec.data(), vec.size());
  }
  c->dirty = true;
  work_cv_.notify_one();
}

void CollectionsImpl::OnVectorRemoved(uint64_t collection, uint64_t ino) {
  auto c = Get(collection);
  if (!c) return;
  {
    std::lock_guard<std::mutex> l(c->pmu);
    Coll::Pend p;
    p.remove = true;
    p.seq = seq_++;
    c->pending[ino] = std::move(p);
    c->members.erase(ino);
  }
  c->dirty = true;
  work_cv_.notify_one();
}

void CollectionsImpl::OnCollectionCreated(uint64_t collection) {
  // The configuration arrives in Create() (no calls back from here); until
  // then vectors queue in the pending set.
  auto c = std::make_shared<Coll>();
  c->dir = collection;
  c->dirty = true;
  {
    std::lock_guard<std::mutex> l(map_mu_);
    colls_[collection] = c;
  }
  std::lock_guard<std::mutex> l(names_mu_);
  scope_.insert(collection);
}

void CollectionsImpl::OnCollectionDropped(uint64_t collection) {
  std::shared_ptr<Coll> c;
  {
    std::lock_guard<std::mutex> l(map_mu_);
    auto it = colls_.find(collection);
    if (it == colls_.end()) return;
    c = it->second;
    colls_.erase(it);
  }
  c->dropped = true;
}

// -- Indexer -----------------------------------------------------------------

bool CollectionsImpl::IndexSome() {
  std::vector<std::shared_ptr<Coll>> all;
  {
    std::lock_guard<std::mutex> l(map_mu_);
    for (auto& [d, c] : colls_) all.push_back(c);
  }
  bool did = false;
  for (auto& c : all) {
    if (!c->index) continue;  // configuration not known yet
    std::vector<uint64_t> add_ids, rm_ids;
    std::vector<uint64_t> seqs_add, seqs_rm;
    std::vector<float> vecs;
    {
      std::lock_guard<std::mutex> l(c->pmu);
      for (auto& [ino, p] : c->pending) {
        if (add_ids.size() + rm_ids.size() >= kBatch) break;
        if (p.remove) {
          rm_ids.push_back(ino);
          seqs_rm.push_back(p.seq);
        } else {
          add_ids.push_back(ino);
          seqs_add.push_back(p.seq);
          vecs.insert(vecs.end(), p.vec.begin(), p.vec.end());
        }
      }
    }
    if (add_ids.empty() && rm_ids.empty()) continue;
    did = true;
    {
      std::unique_lock<std::shared_mutex> w(c->imu);
      for (uint64_t id : rm_ids) {
        if (c->index->Contains(id)) c->index->Remove(id).IgnoreError();
      }
      // In steps of kStep vectors; searches waiting for the index get in
      // between steps, so a search waits for one step at most, not for
      // the whole batch. (The index may be replaced by Reindex while the
      // lock is released: it is looked up again after every step.)
      const size_t dim = c->cfg.dim;
      Status s;
      for (size_t done = 0; done < add_ids.size() && s.ok();) {
        const size_t n = std::min(kStep, add_ids.size() - done);
        const std::span<const uint64_t> ids(add_ids.data() + done, n);
        const std::span<const float> vs(vecs.data() + done * dim, n * dim);
        if (auto* h = dynamic_cast<engine::HnswIndex*>(c->index.get())) {
          s = h->AddBatch(ids, vs, std::max<size_t>(1, opts_.indexer_threads));
        } else {
          for (size_t i = 0; i < n && s.ok(); i++) s = c->index->Add(ids[i], vs.subspan(i * dim, dim));
        }
        done += n;
        if (done < add_ids.size() && c->readers_waiting.load() > 0) {
          PublishIndexStats(*c);
          w.unlock();
          std::this_thread::yield();
          w.lock();
        }
      }
      if (!s.ok()) Log("collection at inode " + std::to_string(c->dir) + ": indexing failed: " + s.ToString());
      PublishIndexStats(*c);
      // Retire what was applied, unless it changed meanwhile.
      std::lock_guard<std::mutex> l(c->pmu);
      for (size_t i = 0; i < add_ids.size(); i++) {
        auto it = c->pending.find(add_ids[i]);
        if (it != c->pending.end() && it->second.seq == seqs_add[i]) c->pending.erase(it);
      }
      for (size_t i = 0; i < rm_ids.size(); i++) {
        auto it = c->pending.find(rm_ids[i]);
        if (it != c->pending.end() && it->second.seq == seqs_rm[i]) c->pending.erase(it);
      }
    }
  }
  return did;
}

void CollectionsImpl::IndexerLoop() {
  std::unique_lock<std::mutex> l(work_mu_);
  while (!stop_) {
    busy_ = true;
    l.unlock();
    const bool did = IndexSome();
    l.lock();
    busy_ = false;
    if (!did) {
      idle_cv_.notify_all();
      work_cv_.wait_for(l, std::chrono::milliseconds(50));
    }
  }
  idle_cv_.notify_all();
}

void CollectionsImpl::WaitIndexed() {
  for (;;) {
    bool empty = true;
    {
      std::lock_guard<std::mutex> l(map_mu_);
      for (auto& [d, c] : colls_) {
        std::lock_guard<std::mutex> p(c->pmu);
        if (c->index && !c->pending.empty()) empty = false;
      }
    }
    if (empty) return;
    work_cv_.notify_one();
    std::unique_lock<std::mutex> l(work_mu_);
    if (stop_) return;
    idle_cv_.wait_for(l, std::chrono::milliseconds(20));
  }
}

Status CollectionsImpl::Close() {
  WaitIndexed();
  Stop();
  std::vector<std::shared_ptr<Coll>> all;
  {
    std::lock_guard<std::mutex> l(map_mu_);
    for (auto& [d, c] : colls_) all.push_back(c);
  }
  Status first;
  for (auto& c : all) {
    if (!c->dirty || !c->index) continue;
    auto blob = c->index->Serialize();
    Status s = blob.ok() ? fs_->SaveIndexBlob(c->dir, *blob) : blob.status();
    if (!s.ok()) {
      Log("collection at inode " + std::to_string(c->dir) + ": index not saved (" + s.ToString() +
          "); it will be rebuilt at the next mount");
      if (first.ok() && s.err() != EROFS) first = s;
    }
  }
  return first;
}

// -- Management ------------------------------------------------------------------

Status CollectionsImpl::Create(uint64_t dir, const CollectionConfig& config, const Cred& cred) {
  // The collection exists for the observer before the adopted vectors
  // arrive; give it its configuration right after.
  VEXFS_RETURN_IF_ERROR(fs_->CreateCollection(dir, config, cred));
  auto c = Get(dir);
  if (!c) return Status::Ok();  // dropped concurrently
  VEXFS_ASSIGN_OR_RETURN(CollectionConfig stored, fs_->GetCollection(dir));
  {
    std::unique_lock<std::shared_mutex> w(c->imu);
    if (!c->index) {
      c->cfg = stored;
      VEXFS_RETURN_IF_ERROR(MakeIndex(*c));
      // Vectors that arrived before the configuration: normalise now.
      std::lock_guard<std::mutex> l(c->pmu);
      if (c->metric == Metric::kCosine) {
        for (auto& [ino, p] : c->pending) {
          if (!p.remove && p.norm.empty()) {
            p.norm = p.vec;
            engine::NormalizeL2(p.norm.data(), p.norm.size());
          }
        }
      }
    }
  }
  work_cv_.notify_one();
  return ScanNames(dir);
}

Status CollectionsImpl::Drop(uint64_t dir, const Cred& cred) { return fs_->DropCollection(dir, cred); }

Status CollectionsImpl::Reindex(uint64_t dir, const CollectionConfig& config, const Cred& cred) {
  VEXFS_ASSIGN_OR_RETURN(uint64_t coll, fs_->CollectionOf(dir));
  if (coll == 0) return Status::NotSupported("not inside a collection");
  if (coll != dir) return Status::InvalidArgument("reindex takes the collection's root directory");
  VEXFS_RETURN_IF_ERROR(fs_->UpdateCollection(dir, config, cred));
  auto c = Get(dir);
  if (!c) return Status::NotSupported("not a collection");
  VEXFS_ASSIGN_OR_RETURN(CollectionConfig stored, fs_->GetCollection(dir));
  std::unique_lock<std::shared_mutex> w(c->imu);
  c->cfg = stored;
  VEXFS_RETURN_IF_ERROR(MakeIndex(*c));
  {
    std::lock_guard<std::mutex> l(c->pmu);
    c->pending.clear();
    c->members.clear();
  }
  const size_t dim = stored.dim;
  VEXFS_RETURN_IF_ERROR(fs_->ScanVectors(dir, [&](uint64_t ino, std::span<const float> v) {
    std::lock_guard<std::mutex> l(c->pmu);
    Enqueue(*c, ino, v.data(), dim);
  }));
  c->dirty = true;
  c->loaded = false;
  c->rebuilt = false;
  work_cv_.notify_one();
  return Status::Ok();
}

Result<CollectionInfo> CollectionsImpl::Info(uint64_t dir) {
  VEXFS_ASSIGN_OR_RETURN(Attr a, fs_->GetAttr(dir));
  if (!S_ISDIR(a.mode)) return Status::Error(ENOTDIR, "not a directory");
  VEXFS_ASSIGN_OR_RETURN(uint64_t coll, fs_->CollectionOf(dir));
  if (coll == 0) return Status::NotSupported("not inside a collection");
  auto c = Get(coll);
  if (!c) return Status::NotSupported("not inside a collection");
  CollectionInfo info;
  VEXFS_ASSIGN_OR_RETURN(info.config, fs_->GetCollection(coll));
  info.dir = coll;
  std::lock_guard<std::mutex> l(c->pmu);
  info.count = c->members.size();
  info.pending = c->pending.size();
  info.indexed = c->indexed;
  info.memory_bytes = c->index_bytes;
  for (const auto& [ino, p] : c->pending) info.memory_bytes += (p.vec.size() + p.norm.size()) * 4 + 64;
  info.loaded = c->loaded;
  info.rebuilt = c->rebuilt;
  return info;
}

// -- Search --------------------------------------------------------------------------

Result<std::vector<Neighbor>> CollectionsImpl::Candidates(Coll& c, const float* q, size_t kk,
                                                          size_t effort, const engine::IdFilter* filter) {
  const size_t dim = c.cfg.dim;
  std::vector<Neighbor> out;
  std::unordered_set<uint64_t> shadow;
  c.readers_waiting++;
  std::shared_lock<std::shared_mutex> r(c.imu);
  c.readers_waiting--;
  {
    std::lock_guard<std::mutex> l(c.pmu);
    // Cosine compares normalised copies; the index normalises for itself,
    // so the query is normalised here only when something is pending.
    std::vector<float> qn;
    const bool cosine = c.metric == Metric::kCosine;
    for (const auto& [ino, p] : c.pending) {
      shadow.insert(ino);
      if (p.remove) continue;
      if (filter && !(*filter)(ino)) continue;
      if (cosine && qn.empty()) {
        qn.assign(q, q + dim);
        engine::NormalizeL2(qn.data(), dim);  // not zero: Search() checked
      }
      const float* v = cosine ? p.norm.data() : p.vec.data();
      out.push_back(Neighbor{ino, engine::MetricDistance(c.metric, cosine ? qn.data() : q, v, dim)});
    }
  }
  if (c.index && c.index->size() > 0) {
    engine::SearchParams sp;
    sp.k = std::min<size_t>(kMaxK, std::min(c.index->size(), kk + shadow.size()));
    sp.effort = effort;
    sp.filter = filter;
    if (sp.k > 0) {
      VEXFS_ASSIGN_OR_RETURN(auto res, c.index->Search(std::span<const float>(q, dim), sp));
      for (const auto& n : res) {
        if (!shadow.count(n.id)) out.push_back(n);
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Neighbor& a, const Neighbor& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  });
  if (out.size() > kk) out.resize(kk);
  return out;
}

std::vector<CollectionsImpl::Route> CollectionsImpl::Routes(uint64_t ino, uint64_t dir, uint64_t root,
                                                            Facts* facts) {
  std::vector<Route> out;
  if (facts) facts->epoch = 0;
  std::lock_guard<std::mutex> l(names_mu_);
  auto it = names_.find(ino);
  if (it == names_.end()) return out;
  if (facts) *facts = it->second.facts;
  // Names are referenced, not copied, until the path is assembled (the
  // map does not change while names_mu_ is held).
  std::vector<const std::string*> comps;
  for (const auto& lk : it->second.links) {
    comps.assign(1, &lk.name);
    Route r;
    uint64_t cur = lk.parent;
    bool ok = false;
    for (int depth = 0; depth < kMaxDepth; depth++) {
      r.dirs.push_back(cur);
      if (cur == dir) {
        ok = true;
        break;
      }
      if (cur == root) break;
      auto p = names_.find(cur);
      if (p == names_.end() || p->second.links.empty()) break;
      comps.push_back(&p->second.links.front().name);
      cur = p->second.links.front().parent;
    }
    if (!ok) continue;
    size_t len = 0;
    for (const std::string* c : comps) len += c->size() + 1;
    r.path.reserve(len);
    for (auto c = comps.rbegin(); c != comps.rend(); ++c) {
      if (!r.path.empty()) r.path += '/';
      r.path += **c;
    }
    std::reverse(r.dirs.begin(), r.dirs.end());
    out.push_back(std::move(r));
  }
  return out;
}

Facts CollectionsImpl::CachedFacts(uint64_t ino) {
  std::lock_guard<std::mutex> l(names_mu_);
  auto it = names_.find(ino);
  return it == names_.end() ? Facts{} : it->second.facts;
}

bool CollectionsImpl::Refresh(uint64_t ino, uint64_t epoch, Facts* f) {
  if (f->epoch == epoch) return true;
  auto a = fs_->GetAttr(ino);
  if (!a.ok()) return false;
  *f = Facts{epoch, a->mode, a->uid, a->gid, a->size, a->mtime.sec};
  std::lock_guard<std::mutex> l(names_mu_);
  auto it = names_.find(ino);
  if (it != names_.end() && it->second.facts.epoch < epoch) it->second.facts = *f;
  return true;
}

Result<std::vector<SearchHit>> CollectionsImpl::Search(uint64_t dir, const SearchRequest& req, const Cred& cred) {
  VEXFS_ASSIGN_OR_RETURN(Attr dattr, fs_->GetAttr(dir));
  if (!S_ISDIR(dattr.mode)) return Status::Error(ENOTDIR, "not a directory");
  VEXFS_ASSIGN_OR_RETURN(uint64_t root, fs_->CollectionOf(dir));
  if (root == 0) return Status::NotSupported("not inside a collection");
  auto c = Get(root);
  if (!c || !c->index) return Status::NotSupported("not inside a collection");
  const size_t dim = c->cfg.dim;
  if (req.dim != dim) {
    return Status::InvalidArgument("query has " + std::to_string(req.dim) + " dimensions; the collection has " +
                                   std::to_string(dim));
  }
  if (req.nq == 0 || req.nq > kMaxNq) return Status::InvalidArgument("number of queries must be 1..1024");
  if (req.queries.size() != req.nq * dim) return Status::InvalidArgument("query data does not match nq * dim");
  if (req.k == 0 || req.k > kMaxK) return Status::InvalidArgument("k must be 1..10000");
  if (req.max_distance && std::isnan(*req.max_distance)) return Status::InvalidArgument("max_distance is NaN");
  for (size_t i = 0; i < req.queries.size(); i++) {
    if (!std::isfinite(req.queries[i])) {
      return Status::InvalidArgument("query component " + std::to_string(i % dim) + " is NaN or infinite");
    }
  }
  VEXFS_ASSIGN_OR_RETURN(Filter filter, Filter::Parse(req.filter));

  // Path of `dir` below the collection root, for "path under".
  std::string dir_rel;
  if (dir != root) {
    auto routes = Routes(dir, root, root);
    if (!routes.empty()) dir_rel = routes.front().path;
  }
  // Per-search memo of permission checks and filter results. Attributes
  // come from the name map's cached facts while nothing changed since they
  // were fetched (AttrEpoch, read once before any of them is used).
  const uint64_t epoch = fs_->AttrEpoch();
  auto allows = [&](const Facts& f, int mask) { return PermissionAllows(f.mode, f.uid, f.gid, mask, cred); };
  std::unordered_map<uint64_t, bool> dir_ok;
  std::unordered_map<uint64_t, std::optional<std::string>> verdict;  // ino -> path if visible & matching
  auto dir_allowed = [&](uint64_t d) -> bool {
    auto it = dir_ok.find(d);
    if (it != dir_ok.end()) return it->second;
    Facts f = CachedFacts(d);
    const bool ok = Refresh(d, epoch, &f) && S_ISDIR(f.mode) && allows(f, X_OK);
    dir_ok[d] = ok;
    return ok;
  };
  auto check = [&](uint64_t ino) -> const std::optional<std::string>& {
    auto it = verdict.find(ino);
    if (it != verdict.end()) return it->second;
    std::optional<std::string> result;
    Facts attr;
    const std::vector<Route> routes = Routes(ino, dir, root, &attr);
    if (!routes.empty() && Refresh(ino, epoch, &attr) && S_ISREG(attr.mode) && allows(attr, R_OK)) {
      for (const Route& r : routes) {
        if (!std::all_of(r.dirs.begin(), r.dirs.end(), dir_allowed)) continue;
        if (!filter.MatchesAll()) {
          const std::string rel = dir_rel.empty() ? r.path : dir_rel + "/" + r.path;
          FileFacts f;
          const size_t slash = rel.rfind('/');
          f.name = slash == std::string::npos ? std::string_view(rel) : std::string_view(rel).substr(slash + 1);
          f.rel_path = rel;
          f.size = attr.size;
          f.mtime_sec = attr.mtime_sec;
          f.xattr = [&](std::string_view suffix) -> std::optional<std::string> {
            auto v = fs_->GetXattr(ino, "user." + std::string(suffix), cred);
            if (!v.ok()) return std::nullopt;
            return std::string(v->begin(), v->end());
          };
          if (!filter.Matches(f)) continue;
        }
        result = r.path;
        break;
      }
    }
    return verdict.emplace(ino, std::move(result)).first->second;
  };

  std::vector<SearchHit> hits;
  for (size_t qi = 0; qi < req.nq; qi++) {
    const float* q = req.queries.data() + qi * dim;
    // Finite (checked above) and not all zero: NormalizeL2 cannot fail.
    if (c->metric == Metric::kCosine && std::all_of(q, q + dim, [](float x) { return x == 0.0f; })) {
      return Status::InvalidArgument("a zero query vector has no direction (cosine metric)");
    }
    size_t members;
    {
      std::lock_guard<std::mutex> l(c->pmu);
      members = c->members.size();
    }
    std::vector<SearchHit> got;
    std::unordered_set<uint64_t> taken;
    auto take = [&](const std::vector<Neighbor>& cands) {
      for (const auto& n : cands) {
        if (got.size() >= req.k) break;
        if (req.max_distance && n.distance > *req.max_distance) break;
        if (taken.count(n.id)) continue;
        const auto& v = check(n.id);
        if (!v) continue;
        taken.insert(n.id);
        got.push_back(SearchHit{n.id, n.distance, static_cast<uint32_t>(qi), *v});
      }
    };
    size_t kk = req.k;
    bool complete = false;
    for (int round = 0; round < 6; round++) {
      got.clear();
      taken.clear();
      VEXFS_ASSIGN_OR_RETURN(auto cands, Candidates(*c, q, kk, req.effort, nullptr));
      take(cands);
      const bool exhausted = cands.size() < kk || kk >= members;
      const bool beyond_radius = req.max_distance && !cands.empty() && cands.back().distance > *req.max_distance;
      if (got.size() >= req.k || exhausted || beyond_radius) {
        complete = true;
        break;
      }
      if (kk >= kMaxK) break;
      kk = std::min(kMaxK, kk * 4);
    }
    if (!complete) {
      // Selective filter or permissions: decide every member, then let the
      // index search only the admissible ones.
      std::vector<uint64_t> ids;
      {
        std::lock_guard<std::mutex> l(c->pmu);
        ids.assign(c->members.begin(), c->members.end());
      }
      auto ok = std::make_shared<std::unordered_set<uint64_t>>();
      for (uint64_t id : ids) {
        if (check(id)) ok->insert(id);
      }
      engine::IdFilter f = [ok](uint64_t id) { return ok->count(id) > 0; };
      got.clear();
      taken.clear();
      VEXFS_ASSIGN_OR_RETURN(auto cands, Candidates(*c, q, req.k, req.effort, &f));
      take(cands);
    }
    hits.insert(hits.end(), got.begin(), got.end());
  }
  return hits;
}

}  // namespace

Result<std::unique_ptr<Collections>> Collections::Attach(Filesystem* fs, const CollectionsOptions& options) {
  auto impl = std::make_unique<CollectionsImpl>(fs, options);
  VEXFS_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Collections>(std::move(impl));
}

}  // namespace vexfs
