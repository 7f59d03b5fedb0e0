// Null factories for engines whose packages were not found at configure time,
// so the benchmark still builds (and runs the engines it has).
#include "runner.h"

namespace vexfs::bench {

#if !VEXFS_ANN_HAVE_HNSWLIB
std::unique_ptr<AnnRunner> MakeHnswlibRunner(const RunnerConfig&) { return nullptr; }
std::string HnswlibBuildInfo() { return "hnswlib: not found at configure time"; }
#endif

#if !VEXFS_ANN_HAVE_FAISS
std::unique_ptr<AnnRunner> MakeFaissFlatRunner(const RunnerConfig&) { return nullptr; }
std::unique_ptr<AnnRunner> MakeFaissHnswRunner(const RunnerConfig&) { return nullptr; }
std::unique_ptr<AnnRunner> MakeFaissIvfRunner(const RunnerConfig&) { return nullptr; }
std::string FaissBuildInfo() { return "faiss: not found at configure time"; }
#endif

}  // namespace vexfs::bench
