#include "vexfs/engine/quantizer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "quantizer_internal.h"
#include "vexfs/engine/distance.h"

namespace vexfs::engine {
namespace internal {
namespace {

// Scalar reference: double accumulation, like distance_scalar.cc.
float L2Sq8(const float* w, const float* s, const int8_t* c, size_t d) {
  double acc = 0;
  for (size_t i = 0; i < d; ++i) {
    const double t = static_cast<double>(w[i]) - static_cast<double>(s[i]) * c[i];
    acc += t * t;
  }
  return static_cast<float>(acc);
}

float DotSq8(const float* w, const int8_t* c, size_t d) {
  double acc = 0;
  for (size_t i = 0; i < d; ++i) acc += static_cast<double>(w[i]) * c[i];
  return static_cast<float>(acc);
}

}  // namespace

const Sq8Kernels kScalarSq8Kernels = {SimdLevel::kScalar, L2Sq8, DotSq8};

}  // namespace internal

namespace {

constexpr uint32_t kMaxDim = 1u << 16;

const Sq8Kernels* Sq8TableFor(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return &internal::kScalarSq8Kernels;
    case SimdLevel::kAvx2:
      return &internal::kAvx2Sq8Kernels;
    case SimdLevel::kAvx512:
      return &internal::kAvx512Sq8Kernels;
  }
  return &internal::kScalarSq8Kernels;
}

bool AllFinite(std::span<const float> v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

}  // namespace

const Sq8Kernels& QuantKernels() {
  static const Sq8Kernels* const best = Sq8TableFor(Kernels().level);
  return *best;
}

const Sq8Kernels* QuantKernelsFor(SimdLevel level) {
  return KernelsFor(level) != nullptr ? Sq8TableFor(level) : nullptr;
}

Result<ScalarQuantizer> ScalarQuantizer::FromRanges(size_t dim, std::span<const float> lo,
                                                    std::span<const float> hi) {
  if (dim == 0 || dim > kMaxDim) return Status::InvalidArgument("quantizer dim out of range");
  if (lo.size() != hi.size() || (lo.size() != 1 && lo.size() != dim)) {
    return Status::InvalidArgument("quantizer ranges must have 1 or dim entries");
  }
  if (!AllFinite(lo) || !AllFinite(hi)) return Status::InvalidArgument("non-finite range");
  ScalarQuantizer q;
  q.dim_ = dim;
  q.mode_ = lo.size() == 1 ? Mode::kGlobal : Mode::kPerDimension;
  const size_t n = lo.size();
  q.lo_.resize(n);
  q.hi_.resize(n);
  q.step_.resize(n);
  q.inv_step_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!(lo[i] <= hi[i])) return Status::InvalidArgument("quantizer range has lo > hi");
    // Compute in double: hi - lo may overflow float for extreme ranges.
    const double step = (static_cast<double>(hi[i]) - lo[i]) / 255.0;
    q.lo_[i] = lo[i];
    q.hi_[i] = hi[i];
    q.step_[i] = static_cast<float>(step);
    q.inv_step_[i] = step > 0 ? static_cast<float>(1.0 / step) : 0.0f;
    if (!std::isfinite(q.inv_step_[i])) q.inv_step_[i] = 0.0f;  // denormal step
  }
  q.step_full_.resize(dim);
  for (size_t i = 0; i < dim; ++i) q.step_full_[i] = q.step_[n == 1 ? 0 : i];
  q.kernels_ = &QuantKernels();
  return q;
}

Result<ScalarQuantizer> ScalarQuantizer::Train(std::span<const float> data, size_t dim, Mode mode) {
  if (dim == 0 || dim > kMaxDim) return Status::InvalidArgument("quantizer dim out of range");
  if (data.empty() || data.size() % dim != 0) {
    return Status::InvalidArgument("training data is empty or not a multiple of dim");
  }
  if (!AllFinite(data)) return Status::InvalidArgument("training data holds NaN or Inf");
  const size_t n = data.size() / dim;
  const size_t nr = mode == Mode::kGlobal ? 1 : dim;
  std::vector<float> lo(nr, data[0]), hi(nr, data[0]);
  for (size_t v = 0; v < n; ++v) {
    const float* x = data.data() + v * dim;
    for (size_t i = 0; i < dim; ++i) {
      const size_t r = mode == Mode::kGlobal ? 0 : i;
      lo[r] = std::min(lo[r], x[i]);
      hi[r] = std::max(hi[r], x[i]);
    }
  }
  VEXFS_ASSIGN_OR_RETURN(ScalarQuantizer q, FromRanges(dim, lo, hi));
  q.mode_ = mode;  // differs from FromRanges' guess only when dim == 1
  return q;
}

void ScalarQuantizer::Encode(const float* x, int8_t* code) const {
  const bool global = mode_ == Mode::kGlobal;
  for (size_t i = 0; i < dim_; ++i) {
    const size_t r = global ? 0 : i;
    float t = (x[i] - lo_[r]) * inv_step_[r];
    // !(t > 0) also catches NaN.
    t = !(t > 0.0f) ? 0.0f : (t > 255.0f ? 255.0f : t);
    code[i] = static_cast<int8_t>(static_cast<int>(std::nearbyint(t)) - 128);
  }
}

void ScalarQuantizer::Decode(const int8_t* code, float* x) const {
  const bool global = mode_ == Mode::kGlobal;
  for (size_t i = 0; i < dim_; ++i) {
    const size_t r = global ? 0 : i;
    x[i] = lo_[r] + static_cast<float>(static_cast<int>(code[i]) + 128) * step_[r];
  }
}

void ScalarQuantizer::EncodeBatch(std::span<const float> x, int8_t* codes) const {
  for (size_t off = 0; off + dim_ <= x.size(); off += dim_) Encode(x.data() + off, codes + off);
}

// x_i = lo_i + (c_i + 128) s_i, so q_i - x_i = r_i - s_i c_i with
// r_i = q_i - lo_i - 128 s_i.
ScalarQuantizer::PreparedQuery ScalarQuantizer::PrepareL2(const float* q) const {
  PreparedQuery pq;
  pq.w.resize(dim_);
  for (size_t i = 0; i < dim_; ++i) pq.w[i] = q[i] - lo(i) - 128.0f * step(i);
  return pq;
}

// q . x = sum q_i (lo_i + 128 s_i) + sum (q_i s_i) c_i.
ScalarQuantizer::PreparedQuery ScalarQuantizer::PrepareDot(const float* q) const {
  PreparedQuery pq;
  pq.w.resize(dim_);
  double bias = 0;
  for (size_t i = 0; i < dim_; ++i) {
    pq.w[i] = q[i] * step(i);
    bias += static_cast<double>(q[i]) * (static_cast<double>(lo(i)) + 128.0 * step(i));
  }
  pq.bias = static_cast<float>(bias);
  return pq;
}

float ScalarQuantizer::ApproxL2(const PreparedQuery& pq, const int8_t* code) const {
  return kernels_->l2(pq.w.data(), step_full_.data(), code, dim_);
}

float ScalarQuantizer::ApproxDot(const PreparedQuery& pq, const int8_t* code) const {
  return pq.bias + kernels_->dot(pq.w.data(), code, dim_);
}

// Layout: u32 dim, u8 mode, u8[3] reserved, then per range (1 or dim):
// f32 lo, f32 hi.
void ScalarQuantizer::Serialize(ByteWriter* w) const {
  w->PutU32(static_cast<uint32_t>(dim_));
  w->PutU8(static_cast<uint8_t>(mode_));
  w->PutU8(0);
  w->PutU8(0);
  w->PutU8(0);
  for (size_t r = 0; r < lo_.size(); ++r) {
    w->PutF32(lo_[r]);
    w->PutF32(hi_[r]);
  }
}

Result<ScalarQuantizer> ScalarQuantizer::Deserialize(ByteReader* r) {
  uint32_t dim;
  uint8_t mode, pad[3];
  VEXFS_RETURN_IF_ERROR(r->ReadU32(&dim));
  VEXFS_RETURN_IF_ERROR(r->ReadU8(&mode));
  VEXFS_RETURN_IF_ERROR(r->ReadBytes(pad, 3));
  if (dim == 0 || dim > kMaxDim) return Status::Corruption("quantizer dim out of range");
  if (mode > 1) return Status::Corruption("unknown quantizer mode");
  if (pad[0] != 0 || pad[1] != 0 || pad[2] != 0) {
    return Status::Corruption("quantizer reserved bytes are not zero");
  }
  const size_t nr = mode == 0 ? 1 : dim;
  VEXFS_RETURN_IF_ERROR(r->CheckAvailable(nr, 8));
  std::vector<float> lo(nr), hi(nr);
  for (size_t i = 0; i < nr; ++i) {
    VEXFS_RETURN_IF_ERROR(r->ReadF32(&lo[i]));
    VEXFS_RETURN_IF_ERROR(r->ReadF32(&hi[i]));
  }
  auto q = FromRanges(dim, lo, hi);
  if (!q.ok()) return Status::Corruption("bad quantizer ranges: " + q.status().message());
  q->mode_ = static_cast<Mode>(mode);
  return q;
}

void EncodeF16(std::span<const float> in, uint16_t* out) {
  for (size_t i = 0; i < in.size(); ++i) out[i] = FloatToHalf(in[i]);
}

void DecodeF16(std::span<const uint16_t> in, float* out) {
  for (size_t i = 0; i < in.size(); ++i) out[i] = HalfToFloat(in[i]);
}

}  // namespace vexfs::engine
