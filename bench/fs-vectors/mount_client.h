// The benchmark's side of a mounted VexFS volume: plain system calls and the
// ioctl ABI of include/uapi/vexfs/vexfs_ioctl.h, nothing linked from the
// library. Every function returns 0 or a positive errno; none prints.
//
// Thread safety: StoreVectors runs its own workers; QueryFileSend and
// QueryFileReceive may run on two threads for different slots; the rest is
// called from one thread at a time per MountDir object.
#ifndef VEXFS_BENCH_FS_VECTORS_MOUNT_CLIENT_H_
#define VEXFS_BENCH_FS_VECTORS_MOUNT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vexfs/engine/dataset.h"

struct vexfs_ioc_collection;
struct vexfs_ioc_search;
struct vexfs_ioc_stage;
struct vexfs_ioc_results;

namespace vexfs::bench {

struct CollectionSpec {
  uint32_t dim = 0;
  uint8_t metric = 0;  // VEXFS_METRIC_*
  uint16_t M = 16;
  uint16_t ef_construction = 200;
  uint8_t element_type = 0;  // VEXFS_ELEM_*: the index's element type (0 = f32)
};

struct CollectionState {
  uint32_t state = 0;  // VEXFS_COLL_STATE_*
  uint32_t flags = 0;
  uint64_t count = 0, indexed = 0, pending = 0, memory_bytes = 0;
};

// How a file gets its vector.
enum class StoreMethod {
  kSetxattr,  // open(O_CREAT) + fsetxattr("user.vexfs.vector") + close
  kIoctlPut,  // open(O_CREAT) + VEXFS_IOC_PUT + close
};

// Where one QueryFileBatch call spent its wall time, in seconds.
struct QueryFileTimes {
  double build = 0;  // assembling the request
  double write = 0;  // inside write(2): the request's round trip through FUSE
  double read = 0;   // inside read(2): the search and the answer's round trip
  double parse = 0;  // decoding the answer's records
};

struct StoreResult {
  int err = 0;            // first failure (errno), 0 if none
  std::string what;       // the failing call, for the log
  double seconds = 0;     // first create .. last close
  double sync_seconds = 0;  // syncfs + fsync(dir) after that
  std::vector<uint64_t> ino;  // st_ino of row i's file
};

// A directory on the mount, open for the duration of the object.
class MountDir {
 public:
  // Creates `path` (mkdir; EEXIST is an error) and opens it.
  static int Create(const std::string& path, std::unique_ptr<MountDir>* out);
  // Opens the existing directory `path`.
  static int Open(const std::string& path, std::unique_ptr<MountDir>* out);
  ~MountDir();
  MountDir(const MountDir&) = delete;
  MountDir& operator=(const MountDir&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  int CreateCollection(const CollectionSpec& spec);
  int Info(CollectionState* out);

  // Creates files FileName(0..rows-1) below this directory, each holding
  // row i of `base` as its vector, split over `threads` workers (contiguous
  // ranges), then makes them durable: syncfs(2) on the directory, then
  // fsync(2) of the directory. (Linux does not pass syncfs to an ordinary
  // FUSE daemon, only to virtiofs; vexfs-fuse commits its journal on any
  // fsync, which covers every earlier operation.)
  StoreResult StoreVectors(const engine::FloatMatrix& base, size_t threads, StoreMethod method);

  // One VEXFS_IOC_SEARCH for one query; appends the hits' (ino, path) in
  // rank order. REQUIRES: query has `dim` floats.
  int Search(const float* query, uint32_t dim, uint32_t k, uint32_t ef,
             std::vector<uint64_t>* inos, std::vector<std::string>* paths);

  // One batch: the `nq` queries (nq * dim floats) staged with
  // VEXFS_IOC_STAGE, one VEXFS_IOC_SEARCH with VEXFS_SEARCH_STAGED, the
  // records beyond the first page fetched with VEXFS_IOC_RESULTS. Hits of
  // query q are appended to (*inos)[q] and (*paths)[q] in rank order.
  // REQUIRES: inos and paths hold nq vectors.
  int SearchBatch(const float* queries, uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef,
                  std::vector<std::vector<uint64_t>>* inos,
                  std::vector<std::vector<std::string>>* paths);

  // One batch through the query file (VEXFS_QUERY_FILE of this directory,
  // opened at the first call and kept open): a binary request (struct
  // vexfs_query_req and the `nq` queries) in one writev(2), the answer
  // (struct vexfs_query_ans and the records) in one read(2) unless it is
  // longer than the buffer. Hits as for SearchBatch; an answer carrying an
  // errno returns it. `times` (optional) gets the call's phases added.
  // `threads` goes to qq_threads (0: one daemon thread). Uses slot 0 of
  // QueryFileSend / QueryFileReceive below.
  int QueryFileBatch(const float* queries, uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef,
                     std::vector<std::vector<uint64_t>>* inos,
                     std::vector<std::vector<std::string>>* paths, QueryFileTimes* times = nullptr,
                     uint32_t threads = 0);

  // QueryFileBatch in two halves, on query-file descriptor `slot` (0 or 1,
  // each opened at its first use): Send writes the request, Receive reads
  // and parses its answer. The daemon searches a request when its answer
  // is first read, so a client that sends batch i+1 on one slot while it
  // reads batch i's answer on the other overlaps its next request with the
  // search and still has one search running at a time as long as it reads
  // the slots one after the other. Send and Receive of different slots may
  // run on two threads at once; each slot is used by one thread at a time.
  static constexpr int kQuerySlots = 2;
  int QueryFileSend(int slot, const float* queries, uint32_t nq, uint32_t dim, uint32_t k, uint32_t ef,
                    QueryFileTimes* times = nullptr, uint32_t threads = 0);
  int QueryFileReceive(int slot, uint32_t nq, uint32_t k, std::vector<std::vector<uint64_t>>* inos,
                       std::vector<std::vector<std::string>>* paths, QueryFileTimes* times = nullptr);

  // qq_flags of every later query-file request (QueryFileBatch,
  // QueryFileSend): 0 (the default) or VEXFS_QUERY_AT_WRITE, which has the
  // daemon search each request when its write arrives instead of at the
  // read (docs/ioctl.md section 10). With two slots in flight, that means
  // two searches at once.
  void SetQueryFlags(uint32_t flags) { query_flags_ = flags; }

  static std::string FileName(size_t row);
  // Row index from a FileName() (-1 if it is not one).
  static int64_t RowOf(std::string_view name);

 private:
  MountDir(std::string path, int fd);
  std::string path_;
  int fd_ = -1;
  // Parses `count` records of `bytes` bytes in `buf`.
  static int ParseHits(const uint8_t* buf, uint32_t bytes, uint32_t count, uint32_t nq,
                       std::vector<std::vector<uint64_t>>* inos,
                       std::vector<std::vector<std::string>>* paths);

  std::unique_ptr<vexfs_ioc_search> search_;  // 16 KiB, reused per query
  std::unique_ptr<vexfs_ioc_stage> stage_;
  std::unique_ptr<vexfs_ioc_results> results_;
  int query_fd_[kQuerySlots] = {-1, -1};  // the query file, once opened
  uint32_t query_flags_ = 0;
  std::vector<uint8_t> answer_[kQuerySlots];
};

// Durability for a directory tree filled by someone else (vexctl import).
int SyncDir(int dir_fd, double* seconds);

}  // namespace vexfs::bench

#endif  // VEXFS_BENCH_FS_VECTORS_MOUNT_CLIENT_H_
