// Fuzz target for the .npy parser behind `vexctl import --from FILE.npy`
// and the benchmark loaders (vexfs/engine/dataset.h).
//
// Checks: ParseNpy returns an array or Corruption/NotSupported with a
// message; an accepted array has 1 or 2 dimensions and exactly as many data
// bytes as its shape and dtype say; NpyToFloat and NpyToInt32 either convert
// it to a matrix of that shape or refuse with a message.
//
//   fuzz/npy_fuzz fuzz/corpus/npy   (seeds: npy_replay --write-seeds DIR)
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz/fuzz_seeds.h"
#include "vexfs/engine/dataset.h"

namespace {

using namespace vexfs::engine;

void Check(bool ok) {
  if (!ok) abort();
}

void CheckRefusal(const vexfs::Status& s) {
  Check(!s.ok() && !s.message().empty());
  Check(s.err() == EUCLEAN || s.err() == ENOTSUP || s.err() == EINVAL || s.err() == ERANGE ||
        s.err() == ENOMEM);
}

// A version 1.0 file with the given header dict and data bytes.
std::vector<uint8_t> NpyFile(const std::string& dict, size_t data_bytes, uint8_t major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  const size_t n = header.size();
  out.push_back(static_cast<uint8_t>(n));
  out.push_back(static_cast<uint8_t>(n >> 8));
  if (major != 1) {
    out.push_back(static_cast<uint8_t>(n >> 16));
    out.push_back(static_cast<uint8_t>(n >> 24));
  }
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(i * 37 + 11));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vexfs::Result<NpyArray> a = ParseNpy(std::span(data, size));
  if (!a.ok()) {
    CheckRefusal(a.status());
    return 0;
  }
  Check(a->shape.size() == 1 || a->shape.size() == 2);
  size_t count = 1;
  for (size_t d : a->shape) {
    Check(d == 0 || count <= SIZE_MAX / d);
    count *= d;
  }
  Check(count <= SIZE_MAX / NpyItemSize(a->type));
  Check(a->bytes.size() == count * NpyItemSize(a->type));
  const size_t rows = a->shape.size() == 2 ? a->shape[0] : 1;
  const size_t cols = a->shape.size() == 2 ? a->shape[1] : a->shape[0];
  vexfs::Result<FloatMatrix> f = NpyToFloat(*a);
  if (f.ok()) {
    Check(f->rows * f->cols == count);
    Check(f->rows == rows || f->cols == cols);
  } else {
    CheckRefusal(f.status());
  }
  vexfs::Result<Int32Matrix> i = NpyToInt32(*a);
  if (i.ok()) {
    Check(i->rows * i->cols == count);
  } else {
    CheckRefusal(i.status());
  }
  return 0;
}

std::vector<std::vector<uint8_t>> VexfsFuzzSeeds() {
  return {
      NpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 48),
      NpyFile("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", 12),
      NpyFile("{'descr': '|i1', 'fortran_order': False, 'shape': (5,), }", 5),
      NpyFile("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", 4),
      NpyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3), }", 12, 2),
      NpyFile("{\"descr\": \"<f4\", \"fortran_order\": false, \"shape\": (0, 8)}", 0, 3),
  };
}
