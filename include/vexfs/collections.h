// Collections: the in-memory half of the vector layer. It keeps one ANN
// index per collection of a mounted Filesystem, fed by the filesystem's
// events (fs_observer.h), and answers searches with paths, honouring the
// caller's permissions and metadata filters.
//
// Freshness: a vector is searchable as soon as the call that stored it
// returns. New and changed vectors wait in a per-collection pending set
// that searches scan exactly; a background thread moves them into the ANN
// index. At attach, an index blob persisted by Close() is loaded when it
// matches the stored vectors; otherwise every vector goes to the pending
// set and the index is rebuilt in the background (info() reports which,
// and a message goes to the log callback).
//
// Security: a result is returned only if the caller may read the file
// (R on it) and reach it from the searched directory (X on that directory
// and on every directory below it on the way). Files failing the check are
// neither returned nor counted.
//
// Thread safety: all methods may be called concurrently.
#ifndef VEXFS_COLLECTIONS_H_
#define VEXFS_COLLECTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vexfs/filesystem.h"
#include "vexfs/status.h"

namespace vexfs {

struct SearchRequest {
  size_t dim = 0;
  size_t nq = 1;
  std::vector<float> queries;  // nq * dim
  size_t k = 10;               // 1..10000
  size_t effort = 0;           // ef_search / probes; 0 = collection default
  std::optional<float> max_distance;
  std::string filter;          // filter.h grammar; empty = all
  // Threads searching the batch: the queries are split into at most
  // min(threads, nq) contiguous runs, each searched on its own thread (the
  // caller's is one of them). The hits are the same as with 1.
  size_t threads = 1;
};

struct SearchHit {
  uint64_t ino = 0;
  float distance = 0;
  uint32_t query = 0;
  std::string path;  // relative to the searched directory
};

struct CollectionInfo {
  CollectionConfig config;
  uint64_t dir = 0;
  uint64_t count = 0;    // vectors stored
  uint64_t indexed = 0;  // in the ANN index
  uint64_t pending = 0;  // waiting for the indexer (searched exactly)
  uint64_t memory_bytes = 0;
  bool loaded = false;   // index came from the persisted blob
  bool rebuilt = false;  // index rebuilt from the slots at attach
};

struct CollectionsOptions {
  size_t indexer_threads = 2;
  // Receives one line per notable event (index rebuilt, save failed).
  std::function<void(const std::string&)> log;
};

class Collections {
 public:
  virtual ~Collections() = default;

  // Loads or rebuilds every collection of `fs` and registers as its
  // observer. `fs` must outlive the returned object.
  static Result<std::unique_ptr<Collections>> Attach(Filesystem* fs, const CollectionsOptions& options = {});

  // Waits for the indexer, persists changed indexes (Filesystem::
  // SaveIndexBlob) and detaches. Call before Filesystem::Unmount.
  virtual Status Close() = 0;

  virtual Status Create(uint64_t dir, const CollectionConfig& config, const Cred& cred) = 0;
  virtual Status Drop(uint64_t dir, const Cred& cred) = 0;
  // Rebuilds the index of the collection containing `dir` (which must be
  // its root) with `config`'s element type, index kind and parameters.
  virtual Status Reindex(uint64_t dir, const CollectionConfig& config, const Cred& cred) = 0;
  // The collection containing `dir` (ENOTSUP if none).
  virtual Result<CollectionInfo> Info(uint64_t dir) = 0;
  // k-NN (or range) search below directory `dir`. Hits are grouped by
  // query, best first.
  virtual Result<std::vector<SearchHit>> Search(uint64_t dir, const SearchRequest& request, const Cred& cred) = 0;
  // Blocks until every pending vector is indexed (tests, benchmarks).
  virtual void WaitIndexed() = 0;
};

}  // namespace vexfs

#endif  // VEXFS_COLLECTIONS_H_
