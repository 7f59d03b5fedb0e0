// Collections: per-collection ANN indexes fed by filesystem events, a
// pending set searched exactly until the background indexer catches up,
// a name map (inode -> links) for result paths and permission checks.
//
// Locks (never held while calling into the Filesystem, whose lock is held
// while events arrive): map_mu_ (the collection map), names_mu_ (name map),
// Coll::pmu (pending set, members), Coll::imu (the index; shared for
// searches, exclusive for the indexer). Order: imu before pmu.
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <iterator>
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
#include "vexfs/engine/parallel.h"
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
// Verdicts a search thread keeps from one search to the next (paths held).
constexpr size_t kMaxMemo = size_t{1} << 20;

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

// Ids to small values by open addressing, reused from search to search:
// in the steady state a search allocates nothing for its memos. Clear()
// costs the entries used, not the table. A slot holds key, value and
// flag together: a lookup in a table larger than the cache misses once.
class IdMemo {
 public:
  void Clear() {
    for (uint32_t s : used_) slots_[s].full = 0;
    used_.clear();
  }
  // The value of `id`; inserted as `init` if absent (*inserted says so).
  // The reference lasts until the next Get.
  int32_t& Get(uint64_t id, int32_t init, bool* inserted) {
    if ((used_.size() + 1) * 2 > slots_.size()) Grow();
    const size_t s = Slot(id);
    Entry& e = slots_[s];
    *inserted = !e.full;
    if (*inserted) {
      e = Entry{id, init, 1};
      used_.push_back(static_cast<uint32_t>(s));
    }
    return e.val;
  }
  const int32_t* Find(uint64_t id) const {
    if (slots_.empty()) return nullptr;
    const Entry& e = slots_[Slot(id)];
    return e.full ? &e.val : nullptr;
  }

 private:
  struct Entry {
    uint64_t key;
    int32_t val;
    uint32_t full;
  };
  // The slot holding `id`, or the empty one where it would go.
  size_t Slot(uint64_t id) const {
    const size_t mask = slots_.size() - 1;
    size_t s = static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_);
    while (slots_[s].full && slots_[s].key != id) s = (s + 1) & mask;
    return s;
  }
  void Grow() {
    std::vector<std::pair<uint64_t, int32_t>> old;
    old.reserve(used_.size());
    for (uint32_t s : used_) old.emplace_back(slots_[s].key, slots_[s].val);
    const size_t n = std::max<size_t>(64, slots_.size() * 2);
    slots_.assign(n, Entry{0, 0, 0});
    used_.clear();
    shift_ = 64 - std::countr_zero(n);
    bool inserted;
    for (const auto& [k, v] : old) Get(k, v, &inserted);
  }
  std::vector<Entry> slots_;
  std::vector<uint32_t> used_;  // occupied slots
  int shift_ = 64;
};

// Working memory of one Search, per thread; kept between searches so that
// a search's memos, routes and paths reuse their capacity.
struct SearchScratch {
  struct Route {
    std::string path;
    std::vector<uint64_t> dirs;
  };
  // What `verdict` and `dir_ok` were decided for. They carry over to the
  // next search with the same key, which no change to the name map
  // (names_gen), to attributes (epoch) or to credentials beyond uid and
  // gid can leave standing; searches with a filter start afresh.
  struct MemoKey {
    uint64_t dir = 0, epoch = 0, names_gen = 0;
    uint32_t uid = 0, gid = 0;
    bool operator==(const MemoKey&) const = default;
  };
  MemoKey key;
  bool reusable = false;  // `key` describes the memos
  bool groups_used = false;  // a verdict consulted the supplementary groups
  std::vector<Neighbor> cands;
  IdMemo verdict;  // ino -> index in `paths` (visible and matching), -1 not
  IdMemo dir_ok;   // directory -> 1 if the caller may search it, else 0
  IdMemo taken;    // inodes already placed for the current query
  std::vector<std::string> paths;
  size_t npaths = 0;
  std::vector<Route> routes;  // routes of the inode being checked
  size_t nroutes = 0;
  std::vector<const std::string*> comps;
  std::vector<std::pair<uint64_t, Facts>> dir_facts;
};
thread_local SearchScratch t_scratch;

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
    // The index refused it (logged): it stays here, searched exactly and
    // shadowing any older copy in the index, until its vector changes.
    bool stuck = false;
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
  // Wakes the indexer: called after queuing work for it.
  void Kick();
  void Stop();
  void Enqueue(Coll& c, uint64_t ino, const float* v, size_t n);

  // Top `kk` candidates into *out: exact over the pending set, ANN over
  // the index; *members gets the collection's member count at the time.
  Status Candidates(Coll& c, const float* q, size_t kk, size_t effort, const engine::IdFilter* filter,
                    std::vector<Neighbor>* out, size_t* members);
  // REQUIRES: names_mu_ held. The paths from `dir` to `ino`, with the
  // directories crossed (dir first), into s->routes[0, s->nroutes);
  // *facts gets the cached facts of `ino` (epoch 0 if none).
  void RoutesLocked(uint64_t ino, uint64_t dir, uint64_t root, SearchScratch* s, Facts* facts);
  // Brings what checking the first `n` candidates will read into the
  // cache, their loads overlapping: after an index search they are all
  // cache misses, and checking one hit at a time would wait for each in
  // turn. A candidate decided before: its memoised path; one not decided
  // yet: its name-map entry (names_mu_ is taken only if there is one).
  void WarmNames(const std::vector<Neighbor>& cands, size_t n, const SearchScratch& s);
  // Facts of `ino` current at `epoch` (read before the call): the cached
  // ones if `*f` already holds them, else fetched and cached. False if the
  // inode is gone.
  bool Refresh(uint64_t ino, uint64_t epoch, Facts* f);
  // What a search of `dir` needs to know of it, current at `epoch`: from
  // the scope cache when it was filled at that epoch, else fetched (and
  // cached). ENOTDIR, ENOTSUP (not in a collection) as for Search.
  struct DirScope {
    Facts facts;        // of `dir`; facts.epoch is the whole scope's
    uint64_t root = 0;  // the collection containing `dir`
    std::string rel;    // path of `dir` below `root` ("" for the root)
  };
  Result<DirScope> ScopeOf(uint64_t dir, uint64_t epoch, SearchScratch* s);
  // Search's work for queries [q_begin, q_end) of a checked request, with
  // the calling thread's scratch; appends their hits to *hits. Runs on
  // several threads at once for one request (SearchRequest::threads).
  Status SearchQueries(uint64_t dir, const DirScope& scope, Coll& c, const SearchRequest& req,
                       const Filter& filter, const Cred& cred, uint64_t epoch, size_t q_begin, size_t q_end,
                       std::vector<SearchHit>* hits);

  Filesystem* fs_;
  CollectionsOptions opts_;
  std::mutex map_mu_;
  std::map<uint64_t, std::shared_ptr<Coll>> colls_;
  std::mutex names_mu_;
  std::unordered_map<uint64_t, Names> names_;
  // Bumped (under names_mu_) by every change to the links in names_.
  std::atomic<uint64_t> names_gen_{1};
  std::unordered_set<uint64_t> scope_;  // directories whose entries are tracked
  std::mutex scope_mu_;  // scopes_ only; taken alone
  std::unordered_map<uint64_t, DirScope> scopes_;
  std::atomic<uint64_t> seq_{1};
  std::mutex work_mu_;
  std::condition_variable work_cv_, idle_cv_;
  bool stop_ = false;
  bool kicked_ = false;  // work arrived since the indexer last looked
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
      if (!have) {
        links.push_back(Link{d, e.name});
        names_gen_.fetch_add(1, std::memory_order_release);
      }
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
  pthread_setname_np(indexer_.native_handle(), "vexfs-indexer");
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
  names_gen_.fetch_add(1, std::memory_order_release);
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
  names_gen_.fetch_add(1, std::memory_order_release);
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
  Kick();
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
  Kick();
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
        if (p.stuck) continue;
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
      std::unordered_set<uint64_t> refused;
      for (size_t done = 0; done < add_ids.size();) {
        const size_t n = std::min(kStep, add_ids.size() - done);
        const std::span<const uint64_t> ids(add_ids.data() + done, n);
        const std::span<const float> vs(vecs.data() + done * dim, n * dim);
        auto* h = dynamic_cast<engine::HnswIndex*>(c->index.get());
        if (h == nullptr || !h->AddBatch(ids, vs, std::max<size_t>(1, opts_.indexer_threads)).ok()) {
          // One at a time: what the index refuses stays pending.
          for (size_t i = 0; i < n; i++) {
            Status s = c->index->Add(ids[i], vs.subspan(i * dim, dim));
            if (s.ok()) continue;
            refused.insert(ids[i]);
            Log("collection at inode " + std::to_string(c->dir) + ": inode " + std::to_string(ids[i]) +
                " not indexed (searched exactly instead): " + s.ToString());
          }
        }
        done += n;
        if (done < add_ids.size() && c->readers_waiting.load() > 0) {
          PublishIndexStats(*c);
          w.unlock();
          std::this_thread::yield();
          w.lock();
        }
      }
      PublishIndexStats(*c);
      // Retire what was applied, unless it changed meanwhile.
      std::lock_guard<std::mutex> l(c->pmu);
      for (size_t i = 0; i < add_ids.size(); i++) {
        auto it = c->pending.find(add_ids[i]);
        if (it == c->pending.end() || it->second.seq != seqs_add[i]) continue;
        if (refused.count(add_ids[i])) {
          it->second.stuck = true;
        } else {
          c->pending.erase(it);
        }
      }
      for (size_t i = 0; i < rm_ids.size(); i++) {
        auto it = c->pending.find(rm_ids[i]);
        if (it != c->pending.end() && it->second.seq == seqs_rm[i]) c->pending.erase(it);
      }
    }
  }
  return did;
}

void CollectionsImpl::Kick() {
  {
    std::lock_guard<std::mutex> l(work_mu_);
    kicked_ = true;
  }
  work_cv_.notify_one();
}

// Sleeps while there is nothing to index (an idle mount never wakes): work
// queued after IndexSome looked was followed by a Kick, which set kicked_
// before the wait can start, so it is never slept through.
void CollectionsImpl::IndexerLoop() {
  std::unique_lock<std::mutex> l(work_mu_);
  while (!stop_) {
    kicked_ = false;
    l.unlock();
    const bool did = IndexSome();
    l.lock();
    if (!did) {
      idle_cv_.notify_all();
      work_cv_.wait(l, [this] { return stop_ || kicked_; });
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
        if (!c->index) continue;
        for (const auto& [ino, p] : c->pending) empty &= p.stuck;
      }
    }
    if (empty) return;
    Kick();
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
    {
      // An index missing vectors it refused is not saved: the next mount
      // rebuilds from the stored vectors (and searches those exactly).
      std::lock_guard<std::mutex> l(c->pmu);
      if (std::any_of(c->pending.begin(), c->pending.end(), [](const auto& e) { return e.second.stuck; })) {
        Log("collection at inode " + std::to_string(c->dir) +
            ": index not saved (it refused some vectors); it will be rebuilt at the next mount");
        continue;
      }
    }
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
  Kick();
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
  Kick();
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

Status CollectionsImpl::Candidates(Coll& c, const float* q, size_t kk, size_t effort,
                                   const engine::IdFilter* filter, std::vector<Neighbor>* out, size_t* members) {
  const size_t dim = c.cfg.dim;
  out->clear();
  std::unordered_set<uint64_t> shadow;
  c.readers_waiting++;
  std::shared_lock<std::shared_mutex> r(c.imu);
  c.readers_waiting--;
  {
    std::lock_guard<std::mutex> l(c.pmu);
    *members = c.members.size();
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
      out->push_back(Neighbor{ino, engine::MetricDistance(c.metric, cosine ? qn.data() : q, v, dim)});
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
        if (shadow.empty() || !shadow.count(n.id)) out->push_back(n);
      }
    }
  }
  auto closer = [](const Neighbor& a, const Neighbor& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  };
  if (!std::is_sorted(out->begin(), out->end(), closer)) std::sort(out->begin(), out->end(), closer);
  if (out->size() > kk) out->resize(kk);
  return Status::Ok();
}

void CollectionsImpl::RoutesLocked(uint64_t ino, uint64_t dir, uint64_t root, SearchScratch* s, Facts* facts) {
  s->nroutes = 0;
  *facts = Facts{};
  auto it = names_.find(ino);
  if (it == names_.end()) return;
  *facts = it->second.facts;
  // Names are referenced, not copied, until the path is assembled (the
  // map does not change while names_mu_ is held).
  for (const auto& lk : it->second.links) {
    s->comps.assign(1, &lk.name);
    if (s->routes.size() <= s->nroutes) s->routes.emplace_back();
    SearchScratch::Route& r = s->routes[s->nroutes];
    r.dirs.clear();
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
      s->comps.push_back(&p->second.links.front().name);
      cur = p->second.links.front().parent;
    }
    if (!ok) continue;
    r.path.clear();
    for (auto c = s->comps.rbegin(); c != s->comps.rend(); ++c) {
      if (!r.path.empty()) r.path += '/';
      r.path += **c;
    }
    std::reverse(r.dirs.begin(), r.dirs.end());
    s->nroutes++;
  }
}

void CollectionsImpl::WarmNames(const std::vector<Neighbor>& cands, size_t n, const SearchScratch& s) {
  bool undecided = false;
  for (size_t i = 0; i < n; i++) {
    const int32_t* known = s.verdict.Find(cands[i].id);
    if (known == nullptr) {
      undecided = true;
    } else if (*known >= 0) {
      __builtin_prefetch(&s.paths[static_cast<size_t>(*known)]);
    }
  }
  if (!undecided) return;
  std::lock_guard<std::mutex> l(names_mu_);
  for (size_t i = 0; i < n; i++) {
    if (s.verdict.Find(cands[i].id) != nullptr) continue;
    auto it = names_.find(cands[i].id);
    if (it == names_.end()) continue;
    const Names& e = it->second;
    __builtin_prefetch(&e.facts);
    if (!e.links.empty()) __builtin_prefetch(e.links.data());
  }
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

Result<CollectionsImpl::DirScope> CollectionsImpl::ScopeOf(uint64_t dir, uint64_t epoch, SearchScratch* s) {
  {
    std::lock_guard<std::mutex> l(scope_mu_);
    auto it = scopes_.find(dir);
    if (it != scopes_.end() && it->second.facts.epoch == epoch) return it->second;
  }
  DirScope scope;
  VEXFS_ASSIGN_OR_RETURN(Attr a, fs_->GetAttr(dir));
  if (!S_ISDIR(a.mode)) return Status::Error(ENOTDIR, "not a directory");
  VEXFS_ASSIGN_OR_RETURN(scope.root, fs_->CollectionOf(dir));
  if (scope.root == 0) return Status::NotSupported("not inside a collection");
  scope.facts = Facts{epoch, a.mode, a.uid, a.gid, a.size, a.mtime.sec};
  bool complete = true;
  if (dir != scope.root) {
    // Its path below the collection root, for "path under".
    std::lock_guard<std::mutex> l(names_mu_);
    Facts unused;
    RoutesLocked(dir, scope.root, scope.root, s, &unused);
    if (s->nroutes > 0) {
      scope.rel = s->routes[0].path;
    } else {
      complete = false;  // names not scanned yet (a collection being created)
    }
  }
  if (complete) {
    std::lock_guard<std::mutex> l(scope_mu_);
    if (scopes_.size() >= 1024) scopes_.clear();
    scopes_[dir] = scope;
  }
  return scope;
}

Result<std::vector<SearchHit>> CollectionsImpl::Search(uint64_t dir, const SearchRequest& req, const Cred& cred) {
  // Attributes fetched after this read stay current while the epoch does
  // not move: the directory's scope and the name map's cached facts are
  // used only if they were fetched at this very epoch.
  const uint64_t epoch = fs_->AttrEpoch();
  SearchScratch& s = t_scratch;
  VEXFS_ASSIGN_OR_RETURN(const DirScope scope, ScopeOf(dir, epoch, &s));
  const uint64_t root = scope.root;
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
  const engine::DistanceKernels& kernels = engine::Kernels();
  for (size_t qi = 0; qi < req.nq; qi++) {
    const float* q = req.queries.data() + qi * dim;
    if (!kernels.all_finite_f32(q, dim)) {
      const size_t i = std::find_if(q, q + dim, [](float x) { return !std::isfinite(x); }) - q;
      return Status::InvalidArgument("query component " + std::to_string(i) + " is NaN or infinite");
    }
    // Finite and not all zero (a nonzero float's square is nonzero in
    // double): NormalizeL2 cannot fail.
    if (c->metric == Metric::kCosine && !(kernels.sum_sq_f32(q, dim) > 0)) {
      return Status::InvalidArgument("a zero query vector has no direction (cosine metric)");
    }
  }
  Filter filter;
  if (!req.filter.empty()) {
    VEXFS_ASSIGN_OR_RETURN(filter, Filter::Parse(req.filter));
  }
  const size_t threads = std::min(req.threads, req.nq);
  std::vector<SearchHit> hits;
  if (threads <= 1) {
    hits.reserve(std::min<size_t>(req.nq * req.k, 4096));
    VEXFS_RETURN_IF_ERROR(SearchQueries(dir, scope, *c, req, filter, cred, epoch, 0, req.nq, &hits));
    return hits;
  }
  // Contiguous runs of queries, one per thread (the caller's among them);
  // their hits, concatenated in order, are grouped by query as in one run.
  std::vector<std::vector<SearchHit>> parts(threads);
  std::vector<Status> status(threads, Status::Ok());
  engine::ParallelFor(req.nq, threads, [&](size_t part, size_t lo, size_t hi) {
    status[part] = SearchQueries(dir, scope, *c, req, filter, cred, epoch, lo, hi, &parts[part]);
  });
  size_t total = 0;
  for (size_t t = 0; t < threads; t++) {
    VEXFS_RETURN_IF_ERROR(status[t]);
    total += parts[t].size();
  }
  hits.reserve(total);
  for (auto& part : parts) std::move(part.begin(), part.end(), std::back_inserter(hits));
  return hits;
}

Status CollectionsImpl::SearchQueries(uint64_t dir, const DirScope& scope, Coll& c_ref, const SearchRequest& req,
                                      const Filter& filter, const Cred& cred, uint64_t epoch, size_t q_begin,
                                      size_t q_end, std::vector<SearchHit>* out) {
  SearchScratch& s = t_scratch;
  Coll* const c = &c_ref;
  const uint64_t root = scope.root;
  const size_t dim = c->cfg.dim;
  std::vector<SearchHit>& hits = *out;

  // Memos of permission checks and verdicts, in per-thread scratch that
  // keeps its capacity from search to search, and its contents while
  // nothing they depend on changes (SearchScratch::MemoKey). The name
  // map's generation is read before any verdict of this search is made:
  // a change after that makes the next search start afresh.
  auto allows = [&](const Facts& f, int mask) {
    if (ConsultsGroups(f.mode, f.uid, f.gid, mask, cred)) s.groups_used = true;
    return PermissionAllows(f.mode, f.uid, f.gid, mask, cred);
  };
  const SearchScratch::MemoKey key{dir, epoch, names_gen_.load(std::memory_order_acquire), cred.uid, cred.gid};
  if (!s.reusable || s.groups_used || !(s.key == key) || !filter.MatchesAll() || s.npaths >= kMaxMemo) {
    s.verdict.Clear();
    s.dir_ok.Clear();
    s.npaths = 0;
    s.groups_used = false;
    s.key = key;
  }
  s.reusable = filter.MatchesAll();
  {
    bool fresh;
    s.dir_ok.Get(dir, 0, &fresh) = S_ISDIR(scope.facts.mode) && allows(scope.facts, X_OK);
  }
  // The visible path of `ino` below `dir` that matches the filter, or null.
  auto check = [&](uint64_t ino) -> const std::string* {
    bool fresh;
    const int32_t known = s.verdict.Get(ino, -1, &fresh);
    if (!fresh) return known < 0 ? nullptr : &s.paths[known];
    Facts attr;
    s.dir_facts.clear();
    {
      // One hold of the name map for the routes and the cached facts of
      // every directory on them not decided yet.
      std::lock_guard<std::mutex> l(names_mu_);
      RoutesLocked(ino, dir, root, &s, &attr);
      for (size_t i = 0; i < s.nroutes; i++) {
        for (uint64_t d : s.routes[i].dirs) {
          if (s.dir_ok.Find(d) != nullptr) continue;
          auto it = names_.find(d);
          s.dir_facts.emplace_back(d, it == names_.end() ? Facts{} : it->second.facts);
        }
      }
    }
    if (s.nroutes == 0 || !Refresh(ino, epoch, &attr) || !S_ISREG(attr.mode) || !allows(attr, R_OK)) {
      return nullptr;
    }
    for (auto& [d, f] : s.dir_facts) {
      const bool ok = Refresh(d, epoch, &f) && S_ISDIR(f.mode) && allows(f, X_OK);
      s.dir_ok.Get(d, 0, &fresh) = ok;
    }
    for (size_t i = 0; i < s.nroutes; i++) {
      SearchScratch::Route& r = s.routes[i];
      if (!std::all_of(r.dirs.begin(), r.dirs.end(), [&](uint64_t d) { return *s.dir_ok.Find(d) != 0; })) {
        continue;
      }
      if (!filter.MatchesAll()) {
        const std::string rel = scope.rel.empty() ? r.path : scope.rel + "/" + r.path;
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
      if (s.paths.size() <= s.npaths) s.paths.emplace_back();
      std::swap(s.paths[s.npaths], r.path);
      s.verdict.Get(ino, -1, &fresh) = static_cast<int32_t>(s.npaths);
      return &s.paths[s.npaths++];
    }
    return nullptr;
  };

  for (size_t qi = q_begin; qi < q_end; qi++) {
    const float* q = req.queries.data() + qi * dim;
    size_t members = 0;
    const size_t start = hits.size();
    auto take = [&](const std::vector<Neighbor>& cands) {
      WarmNames(cands, std::min(cands.size(), req.k + 8), s);
      for (const auto& n : cands) {
        if (hits.size() - start >= req.k) break;
        if (req.max_distance && n.distance > *req.max_distance) break;
        bool fresh;
        s.taken.Get(n.id, 0, &fresh);
        if (!fresh) continue;
        const std::string* path = check(n.id);
        if (path == nullptr) continue;
        hits.push_back(SearchHit{n.id, n.distance, static_cast<uint32_t>(qi), *path});
      }
    };
    size_t kk = req.k;
    bool complete = false;
    for (int round = 0; round < 6; round++) {
      hits.resize(start);
      s.taken.Clear();
      VEXFS_RETURN_IF_ERROR(Candidates(*c, q, kk, req.effort, nullptr, &s.cands, &members));
      take(s.cands);
      const bool exhausted = s.cands.size() < kk || kk >= members;
      const bool beyond_radius =
          req.max_distance && !s.cands.empty() && s.cands.back().distance > *req.max_distance;
      if (hits.size() - start >= req.k || exhausted || beyond_radius) {
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
      hits.resize(start);
      s.taken.Clear();
      VEXFS_RETURN_IF_ERROR(Candidates(*c, q, req.k, req.effort, &f, &s.cands, &members));
      take(s.cands);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Collections>> Collections::Attach(Filesystem* fs, const CollectionsOptions& options) {
  auto impl = std::make_unique<CollectionsImpl>(fs, options);
  VEXFS_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Collections>(std::move(impl));
}

}  // namespace vexfs
