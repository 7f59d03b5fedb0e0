// Vector encodings of the vector engine: an int8 scalar quantizer and
// whole-vector float16 conversion.
//
// ScalarQuantizer contract
// ------------------------
// Each dimension i has a trained range [lo_i, hi_i] (one shared range in
// kGlobal mode) and step s_i = (hi_i - lo_i) / 255. A float x_i encodes to
//
//   c_i = clamp(round((x_i - lo_i) / s_i), 0, 255) - 128        (int8)
//
// and decodes to lo_i + (c_i + 128) * s_i. Values outside the trained range
// are clamped; inside it the reconstruction error is at most s_i / 2. A
// dimension with hi_i == lo_i encodes to -128 and decodes to lo_i exactly.
//
// Approximate (asymmetric) distances compare a float32 query with codes
// without decoding them into memory: Prepare() folds the ranges into a
// per-query table once, ApproxL2/ApproxDot then cost one float*int8 pass
// through the Sq8Kernels below (scalar reference plus AVX2 and AVX-512
// variants, chosen once at run time like the distance.h kernels).
// The result equals (up to float rounding) the exact distance between the
// query and the DECODED vector. For global mode, codes may also be compared
// with each other through the exact int8 kernels of distance.h: the squared
// L2 distance between two decoded vectors is step()^2 * l2_i8(a, b, d).
//
// Thread safety: a trained ScalarQuantizer is immutable; all const methods
// may be called concurrently.
#ifndef VEXFS_ENGINE_QUANTIZER_H_
#define VEXFS_ENGINE_QUANTIZER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vexfs/engine/distance.h"
#include "vexfs/engine/serialize.h"
#include "vexfs/status.h"

namespace vexfs::engine {

// Asymmetric kernels: float32 weights `w` (and per-dimension steps `s`)
// against int8 codes `c`, d in [1, 65536], no alignment needed.
//   l2(w, s, c, d)  = sum_i (w_i - s_i * c_i)^2
//   dot(w, c, d)    = sum_i w_i * c_i
// The scalar level accumulates in double and is the accuracy reference.
// Pure and thread-safe.
struct Sq8Kernels {
  SimdLevel level;
  float (*l2)(const float* w, const float* s, const int8_t* c, size_t d);
  float (*dot)(const float* w, const int8_t* c, size_t d);
};
// Kernels for the level Kernels() (distance.h) chose; chosen once.
const Sq8Kernels& QuantKernels();
// Kernels for `level`, or nullptr when the CPU (or OS) cannot run it.
const Sq8Kernels* QuantKernelsFor(SimdLevel level);

class ScalarQuantizer {
 public:
  enum class Mode : uint8_t { kGlobal = 0, kPerDimension = 1 };

  // Trains ranges as the min/max over `data` (n * dim floats, n >= 1).
  // EINVAL for dim == 0, an empty or ragged span, or NaN/Inf values.
  static Result<ScalarQuantizer> Train(std::span<const float> data, size_t dim, Mode mode);
  // Explicit ranges: `lo`/`hi` hold one value (global) or `dim` values.
  // EINVAL unless every lo <= hi and all are finite.
  static Result<ScalarQuantizer> FromRanges(size_t dim, std::span<const float> lo,
                                            std::span<const float> hi);

  size_t dim() const { return dim_; }
  Mode mode() const { return mode_; }
  // Range and step of dimension i (i < dim()).
  float lo(size_t i) const { return lo_[mode_ == Mode::kGlobal ? 0 : i]; }
  float step(size_t i) const { return step_[mode_ == Mode::kGlobal ? 0 : i]; }
  // step(i) for every dimension (dim() values, also in global mode).
  std::span<const float> steps() const { return step_full_; }

  // REQUIRES: x and code hold dim() elements. NaN encodes as lo.
  void Encode(const float* x, int8_t* code) const;
  void Decode(const int8_t* code, float* x) const;
  // Encodes n vectors (n * dim floats) into n * dim codes.
  void EncodeBatch(std::span<const float> x, int8_t* codes) const;

  // Per-query table for ApproxL2/ApproxDot. Cheap to copy; independent of
  // the quantizer's lifetime once built.
  struct PreparedQuery {
    std::vector<float> w;  // dim() weights
    float bias = 0;        // constant term (dot) / unused (l2)
  };
  // REQUIRES: q holds dim() floats.
  PreparedQuery PrepareL2(const float* q) const;
  PreparedQuery PrepareDot(const float* q) const;
  // Squared L2 between the query and the decoded `code`.
  // REQUIRES: pq was built by PrepareL2 of this quantizer.
  float ApproxL2(const PreparedQuery& pq, const int8_t* code) const;
  // Dot product between the query and the decoded `code`.
  // REQUIRES: pq was built by PrepareDot of this quantizer.
  float ApproxDot(const PreparedQuery& pq, const int8_t* code) const;

  // Little-endian serialization, for embedding in index payloads.
  void Serialize(ByteWriter* w) const;
  // Corruption on malformed input; never reads out of bounds.
  static Result<ScalarQuantizer> Deserialize(ByteReader* r);

 private:
  ScalarQuantizer() = default;
  size_t dim_ = 0;
  Mode mode_ = Mode::kGlobal;
  std::vector<float> lo_, hi_, step_, inv_step_;  // size 1 (global) or dim
  std::vector<float> step_full_;                  // size dim
  const Sq8Kernels* kernels_ = nullptr;
};

// Whole-vector float16 conversion (round to nearest even, see distance.h).
// REQUIRES: out holds in.size() elements.
void EncodeF16(std::span<const float> in, uint16_t* out);
void DecodeF16(std::span<const uint16_t> in, float* out);

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_QUANTIZER_H_
