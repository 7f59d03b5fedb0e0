// The vector layer's FUSE surface: the ioctls of
// include/uapi/vexfs/vexfs_ioctl.h and the query file (.vexfs-query) that
// every directory inside a collection answers to. Called from the handlers
// in vexfs_fuse.cc.
//
// Per open file state (staged vectors, the last search's results, the
// query file's request and answer) hangs off fuse_file_info::fh.
#ifndef VEXFS_FUSE_VECTOR_OPS_H_
#define VEXFS_FUSE_VECTOR_OPS_H_

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <vector>

#include "vexfs/collections.h"

namespace vexfs::fusefs {

// Shared by the table below and, while it lasts, by a search started at
// a write (VEXFS_QUERY_AT_WRITE): the write is answered before its search
// runs, so a release may come meanwhile and must not free the state the
// search writes into.
struct OpenFile : std::enable_shared_from_this<OpenFile> {
  // Opened for writing (O_WRONLY or O_RDWR; set by OpenFiles::Open): a
  // SETATTR that carries this handle comes from a writer
  // (SetAttrRequest::kByWriter).
  bool writable = false;
  // Held by each ioctl on the descriptor (staging buffer, last results):
  // threads sharing one descriptor take turns instead of racing.
  std::mutex ioctl_mu;
  std::vector<float> staged;
  std::vector<uint8_t> results;   // encoded vexfs_search_hit records
  std::vector<uint32_t> offsets;  // record start offsets in `results`
  bool have_results = false;
  // Query file.
  // The kernel may split one read(2) into concurrent requests: answer
  // bytes are served by offset, relative to the end of the last write.
  std::mutex mu;
  // A JSON request's text, or a binary request's head (header, filter,
  // padding: vector/query_request.h's BinaryHeadBytes); a binary request's
  // queries go to `floats` as they arrive (float_bytes bytes so far). `floats` is never cleared, only resized,
  // so that a request like the last one neither zero-fills nor allocates,
  // and it is swapped into the search instead of copied.
  std::string request;
  std::vector<float> floats;
  size_t float_bytes = 0;
  std::string answer;
  uint64_t write_end = 0;
  bool answered = false;
  // A search started at the write that completed a VEXFS_QUERY_AT_WRITE
  // request runs without `mu`: while `searching`, request, floats and
  // answer belong to it, a write fails with EBUSY, and a read by the
  // writer's credentials is parked in `parked`: the search's thread
  // answers it when the answer is ready, so no worker thread waits.
  // `writer` is the credentials it filters by and `answered_at_write` says
  // the answer came from it: a read by other credentials is refused
  // (EACCES).
  bool searching = false;
  bool answered_at_write = false;
  Cred writer;
  struct ParkedRead {
    fuse_req_t req;
    size_t size;
    off_t off;
  };
  std::vector<ParkedRead> parked;
};

// The OpenFile of every open file description. Normally freed at release;
// files still open when the session ends (the kernel sends no release
// then) are freed with the table.
class OpenFiles {
 public:
  // A new OpenFile, stored in fi->fh. The table holds one reference,
  // dropped at Release; OpenFile::shared_from_this takes others.
  OpenFile* Open(fuse_file_info* fi);
  // Frees fi->fh's OpenFile (release, or a failed open reply).
  void Release(fuse_file_info* fi);

 private:
  std::mutex mu_;
  std::unordered_map<OpenFile*, std::shared_ptr<OpenFile>> files_;
};

inline OpenFile* StateOf(const fuse_file_info* fi) {
  return fi == nullptr ? nullptr : reinterpret_cast<OpenFile*>(static_cast<uintptr_t>(fi->fh));
}

// Query-file inode numbers: the directory's inode with the top bit set.
constexpr uint64_t kQueryBit = uint64_t{1} << 63;
inline bool IsQueryIno(uint64_t ino) { return (ino & kQueryBit) != 0; }

// Lookup of VEXFS_QUERY_FILE in `parent`; returns ENOENT when `parent` is
// not inside a collection.
int QueryLookup(fuse_req_t req, uint64_t parent, fuse_entry_param* e);
void QueryGetAttr(fuse_req_t req, uint64_t ino);
void QueryOpen(fuse_req_t req, uint64_t ino, fuse_file_info* fi);
// A write that completes a binary request flagged VEXFS_QUERY_AT_WRITE
// is replied to first, then searched in the same thread.
void QueryWrite(fuse_req_t req, uint64_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi);
void QueryRead(fuse_req_t req, uint64_t ino, size_t size, off_t off, fuse_file_info* fi);

void VectorIoctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg, fuse_file_info* fi, unsigned flags,
                 const void* in_buf, size_t in_bufsz, size_t out_bufsz);

}  // namespace vexfs::fusefs

#endif  // VEXFS_FUSE_VECTOR_OPS_H_
