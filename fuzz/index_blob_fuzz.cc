// Fuzz target for the index deserializers (HNSW, flat, LSH, IVF): the blobs
// the FUSE daemon loads from a volume at mount time.
//
// Input: byte 0 picks the index kind (mod 4), byte 1 the payload format
// version (1 + byte % 3), the rest is the payload. The target wraps it in a
// valid blob header (magic, lengths and CRCs right), so every input reaches
// the payload parser instead of stopping at a checksum.
//
// Checks: Deserialize returns an index or an error with errno EUCLEAN,
// ENOTSUP or EINVAL and a message. An index it accepts must behave: Ids()
// lists size() distinct ids, each Contains(); a search returns at most k
// ids it holds, in distance order; it serializes and loads back with the
// same ids; Add and Remove work or fail cleanly.
//
//   fuzz/index_blob_fuzz fuzz/corpus/index_blob   (seeds: index_blob_replay
//                                                  --write-seeds DIR)
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <span>
#include <vector>

#include "fuzz/fuzz_seeds.h"
#include "vexfs/engine/flat_index.h"
#include "vexfs/engine/hnsw.h"
#include "vexfs/engine/ivf.h"
#include "vexfs/engine/lsh.h"
#include "vexfs/engine/serialize.h"

namespace {

using vexfs::Result;
using vexfs::Status;
using namespace vexfs::engine;

void Check(bool ok) {
  if (!ok) abort();
}

// Errors a hostile blob may legitimately produce.
void CheckRefusal(const Status& s) {
  Check(!s.ok());
  Check(s.err() == EUCLEAN || s.err() == ENOTSUP || s.err() == EINVAL || s.err() == ENOMEM);
  Check(!s.message().empty());
}

Result<std::unique_ptr<VectorIndex>> Load(IndexKind kind, std::span<const uint8_t> blob) {
  auto up = [](auto r) -> Result<std::unique_ptr<VectorIndex>> {
    if (!r.ok()) return r.status();
    return std::unique_ptr<VectorIndex>(std::move(*r));
  };
  switch (kind) {
    case IndexKind::kHnsw:
      return up(HnswIndex::Deserialize(blob));
    case IndexKind::kFlat:
      return up(FlatIndex::Deserialize(blob));
    case IndexKind::kLsh:
      return up(LshIndex::Deserialize(blob));
    case IndexKind::kIvf:
      return up(IvfIndex::Deserialize(blob));
  }
  abort();
}

void Exercise(VectorIndex* index, IndexKind kind) {
  const std::vector<uint64_t> ids = index->Ids();
  const std::set<uint64_t> idset(ids.begin(), ids.end());
  Check(ids.size() == index->size() && idset.size() == ids.size());
  for (size_t i = 0; i < ids.size() && i < 64; ++i) Check(index->Contains(ids[i]));
  const size_t dim = index->dim();
  Check(dim >= 1 && dim <= 65536);
  std::vector<float> q(dim);
  for (size_t i = 0; i < dim; ++i) q[i] = static_cast<float>((i * 7 + 3) % 11) - 5.0f;
  SearchParams sp;
  sp.k = 10;
  Result<std::vector<Neighbor>> r = index->Search(q, sp);
  if (r.ok()) {
    Check(r->size() <= sp.k && r->size() <= ids.size());
    for (size_t i = 0; i < r->size(); ++i) {
      Check(idset.count((*r)[i].id) == 1);
      if (i > 0) Check(!((*r)[i].distance < (*r)[i - 1].distance));
    }
  } else {
    CheckRefusal(r.status());
  }
  Result<std::vector<uint8_t>> again = index->Serialize();
  Check(again.ok());
  Result<std::unique_ptr<VectorIndex>> back = Load(kind, *again);
  Check(back.ok());
  std::vector<uint64_t> a = ids, b = (*back)->Ids();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  Check(a == b);
  // Mutations on the loaded graph: an insert next to hostile links, and the
  // removal of an existing node.
  const uint64_t fresh = idset.empty() ? 1 : *idset.rbegin() + 1;
  if (fresh != 0) {
    Status s = index->Add(fresh, q);
    if (!s.ok()) CheckRefusal(s);
  }
  if (!ids.empty()) {
    Status s = index->Remove(ids.front());
    if (!s.ok()) CheckRefusal(s);
    Check(!index->Contains(ids.front()));
  }
  r = index->Search(q, sp);
  if (!r.ok()) CheckRefusal(r.status());
}

// A small index of each kind (seeds for the corpus).
std::vector<uint8_t> Seed(IndexKind kind, std::span<const uint8_t> blob) {
  Result<BlobView> v = UnwrapBlob(blob, kind, 3);
  Check(v.ok());
  std::vector<uint8_t> out{static_cast<uint8_t>(kind), static_cast<uint8_t>(v->version - 1)};
  out.insert(out.end(), v->payload.begin(), v->payload.end());
  return out;
}

void Fill(VectorIndex* index, size_t n, size_t dim) {
  std::vector<float> v(dim);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < dim; ++j) v[j] = std::sin(static_cast<float>(i * dim + j));
    Check(index->Add(i * 3 + 1, v).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > (1u << 20)) return 0;
  const auto kind = static_cast<IndexKind>(data[0] % 4);
  const auto version = static_cast<uint16_t>(1 + data[1] % 3);
  const std::vector<uint8_t> blob = WrapBlob(kind, version, std::span(data + 2, size - 2));
  Result<std::unique_ptr<VectorIndex>> index = Load(kind, blob);
  if (!index.ok()) {
    CheckRefusal(index.status());
    return 0;
  }
  Check((*index)->kind() == kind);
  Exercise(index->get(), kind);
  return 0;
}

std::vector<std::vector<uint8_t>> VexfsFuzzSeeds() {
  std::vector<std::vector<uint8_t>> seeds;
  // One small index per configuration, `n` vectors, serialized.
  auto add = [&](IndexKind kind, auto created, size_t n) {
    Check(created.ok());
    VectorIndex* index = created->get();
    Fill(index, n, index->dim());
    if (n > 30) Check(index->Remove(4).ok());  // a deleted slot in the blob
    Result<std::vector<uint8_t>> blob = index->Serialize();
    Check(blob.ok());
    seeds.push_back(Seed(kind, *blob));
  };
  for (ElementType et : {ElementType::kFloat32, ElementType::kFloat16, ElementType::kInt8}) {
    HnswParams p;
    p.dim = 8;
    p.metric = et == ElementType::kInt8 ? Metric::kL2 : Metric::kCosine;
    p.element_type = et;
    p.M = 4;
    p.ef_construction = 16;
    p.int8_train_size = 16;
    add(IndexKind::kHnsw, HnswIndex::Create(p), 40);
  }
  for (ElementType et : {ElementType::kFloat32, ElementType::kInt8}) {
    FlatIndexOptions o;
    o.dim = 6;
    o.metric = Metric::kInnerProduct;
    o.element_type = et;
    add(IndexKind::kFlat, FlatIndex::Create(o), 20);
  }
  LshOptions lsh;
  lsh.dim = 8;
  lsh.num_tables = 2;
  lsh.num_bits = 4;
  add(IndexKind::kLsh, LshIndex::Create(lsh), 20);
  IvfOptions ivf;
  ivf.dim = 4;
  ivf.nlist = 3;
  ivf.train_size = 12;
  add(IndexKind::kIvf, IvfIndex::Create(ivf), 30);
  return seeds;
}
