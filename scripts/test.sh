#!/usr/bin/env bash
# Builds VexFS and runs the whole test suite: a release build, then the same
# suite under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600
if [ "${VEXFS_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVEXFS_SANITIZE=ON -DVEXFS_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  VEXFS_CRASH_POINTS=150 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900 -LE slow
fi
