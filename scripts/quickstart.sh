#!/usr/bin/env bash
# Quick start: installs dependencies, builds VexFS, makes a 512 MiB image,
# mounts it with vexfs-fuse, turns a directory into a collection, imports
# 2,000 sample documents with 64-dimensional embeddings, searches them
# (nearest neighbours, with a filter, through the query file), unmounts and
# checks the volume. Needs root (or FUSE access) and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
img=${VEXFS_DEMO_IMAGE:-vexfs-demo.img}
bin=build/bin
mnt=$(mktemp -d /tmp/vexfs-demo-mnt.XXXXXX)
work=$(mktemp -d /tmp/vexfs-demo.XXXXXX)
pid=""
cleanup() {
  if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" || umount -l "$mnt"; fi
  if [ -n "$pid" ]; then wait "$pid" || true; fi
  rmdir "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== mkfs.vexfs: a 512 MiB image at $img"
"$bin/mkfs.vexfs" -f -q -s 512M -L demo "$img"
echo "== vexfs-fuse: mounting it at $mnt"
"$bin/vexfs-fuse" "$img" "$mnt" -f >"$work/vexfs-fuse.log" 2>&1 &
pid=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { cat "$work/vexfs-fuse.log" >&2; exit 1; }

echo "== vexctl collection create: $mnt/docs, 64 dimensions, cosine, HNSW"
mkdir "$mnt/docs"
"$bin/vexctl" collection create "$mnt/docs" --dim 64 --metric cosine --index hnsw
echo "== vexctl import: 2,000 sample documents (text, a user.group xattr, an embedding)"
"$bin/vexctl" sample --jsonl "$work/docs.jsonl" --count 2000 --dim 64
"$bin/vexctl" import "$mnt/docs" --jsonl "$work/docs.jsonl" --no-progress
"$bin/vexctl" collection info "$mnt/docs"

echo "== vexctl search: the 5 documents nearest to doc-000042.txt"
cat "$mnt/docs/doc-000042.txt"
"$bin/vexctl" search "$mnt/docs" --like "$mnt/docs/doc-000042.txt" -k 5
echo "== the same, only documents whose user.group is g1"
"$bin/vexctl" search "$mnt/docs" --like "$mnt/docs/doc-000042.txt" -k 5 --filter 'xattr.group = "g1"'
echo "== no vexctl needed: write a JSON request to .vexfs-query, read the answer"
vec=$(sed -n 43p "$work/docs.jsonl" | grep -o '"vector":\[[^]]*\]')
exec 3<>"$mnt/docs/.vexfs-query"
printf '{%s, "k": 3}' "$vec" >&3
cat <&3
exec 3>&-

echo "== unmount, fsck.vexfs"
fusermount3 -u "$mnt"
wait "$pid"
pid=""
"$bin/fsck.vexfs" -f "$img"
