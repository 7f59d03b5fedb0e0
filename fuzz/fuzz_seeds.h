// Shared by the fuzz targets and their replay driver (replay_main.cc).
//
// Each target defines LLVMFuzzerTestOneInput (libFuzzer's entry point) and
// VexfsFuzzSeeds(): well-formed inputs built in code, so the replay test and
// a fresh fuzzing corpus start from valid structures rather than from
// nothing (`NAME_replay --write-seeds DIR` writes them out).
#ifndef VEXFS_FUZZ_FUZZ_SEEDS_H_
#define VEXFS_FUZZ_FUZZ_SEEDS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
std::vector<std::vector<uint8_t>> VexfsFuzzSeeds();

#endif  // VEXFS_FUZZ_FUZZ_SEEDS_H_
