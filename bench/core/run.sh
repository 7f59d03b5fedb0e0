#!/usr/bin/env bash
# Storage library vs host filesystem: bench/core/run.sh [--out FILE.json] [core_bench options]
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DVEXFS_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench --target vexfs_core_bench -j"$(nproc)" >/dev/null
exec build-bench/bench/core/vexfs_core_bench "$@"
