// Internal to the engine: per-level tables of the asymmetric int8 kernels
// (quantizer.h, Sq8Kernels). The scalar table lives in quantizer.cc, the
// others in quantizer_<isa>.cc, each compiled under its own
// `#pragma GCC target` after all standard headers are included.
#ifndef VEXFS_SRC_ENGINE_QUANTIZER_INTERNAL_H_
#define VEXFS_SRC_ENGINE_QUANTIZER_INTERNAL_H_

#include "vexfs/engine/quantizer.h"

namespace vexfs::engine::internal {

extern const Sq8Kernels kScalarSq8Kernels;
extern const Sq8Kernels kAvx2Sq8Kernels;    // AVX2 + FMA
extern const Sq8Kernels kAvx512Sq8Kernels;  // AVX-512 F + BW

}  // namespace vexfs::engine::internal

#endif  // VEXFS_SRC_ENGINE_QUANTIZER_INTERNAL_H_
