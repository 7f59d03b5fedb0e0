#!/usr/bin/env bash
# Quick start: installs dependencies, builds VexFS, creates a 256 MiB image,
# fills it with 2,000 sample documents carrying 64-dimensional embeddings,
# runs a nearest-neighbour search and checks the volume.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
img=${VEXFS_DEMO_IMAGE:-vexfs-demo.img}
bin=build/bin
echo "== mkfs.vexfs: a 256 MiB image at $img"
"$bin/mkfs.vexfs" -f -s 256M -L demo "$img"
echo "== vexctl sample: 2,000 documents with embeddings under /docs"
"$bin/vexctl" sample "$img" --dir /docs --count 2000 --dim 64
echo "== vexctl search: the 5 documents nearest to /docs/doc-000042.txt"
"$bin/vexctl" search "$img" /docs --like /docs/doc-000042.txt -k 5
echo "== fsck.vexfs"
"$bin/fsck.vexfs" -f "$img"
echo "== vexctl info"
"$bin/vexctl" info "$img" | head -12
