#!/usr/bin/env bash
# bench/fs-vectors/run.sh: the original prototype's scenario (10,000 files
# with 1,536-dim vectors, 1,000 queries, k = 10) through a mounted VexFS,
# beside VexFS's engine in-process, in one run. See bench/fs-vectors/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/fs-vectors/run.sh [--quick] [--out FILE.json] [driver options...]

Builds vexfs-fuse, mkfs.vexfs, vexctl and vexfs_fs_vectors_bench (Release,
BUILD_DIR, default build-fsvec/), makes a fresh image in a scratch directory
under /var/tmp, mounts it with vexfs-fuse -f -o default_permissions, runs the
driver against the mount (which at the end unmounts it and searches the
indexes the daemon persisted, in-process, from the image: the "same index"
baseline), and unmounts (also on failure or ^C). Needs root
(or fuse access), /dev/fuse and fusermount3.

  --quick        2,000 files, 200 queries, short ef sweep (< 2 minutes)
  --out FILE     JSON array to FILE, markdown table to FILE with .md
                 (default: the table on stdout only)
  anything else  passed to vexfs_fs_vectors_bench (--paths, --ef, --threads,
                 --reps, ...; see its --help)

Environment: BUILD_DIR, JOBS (default 2), VEXFS_BIN (a directory with
prebuilt vexfs-fuse, mkfs.vexfs and vexctl to use instead of building them), IMAGE_SIZE (default 4G, 1G with
--quick), IMPORT_CMD (bulk import command template for the "import" path,
with {dir} {npy} {names} {threads}; default: `vexctl import` when it exists,
otherwise the driver's own multithreaded create + setxattr, labelled so).
EOF
}

QUICK=0
OUT=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="${2:?--out needs a file}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    -h|--help) usage; exit 0 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD_DIR:-$REPO/build-fsvec}"
JOBS="${JOBS:-2}"
BIN="$BUILD/bin"
if [ "$QUICK" = 1 ]; then IMAGE_SIZE="${IMAGE_SIZE:-1G}"; else IMAGE_SIZE="${IMAGE_SIZE:-4G}"; fi
log() { echo "[fs-vectors $(date +%T)] $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

[ -c /dev/fuse ] || die "/dev/fuse is missing"
for t in fusermount3 mountpoint cmake ninja; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done
case "$OUT" in ""|/*) ;; *) OUT="$PWD/$OUT" ;; esac

# ---- build ---------------------------------------------------------------
log "building in $BUILD (Release, -j$JOBS)"
mkdir -p "$BUILD"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVEXFS_BUILD_TESTS=OFF \
  -DVEXFS_BUILD_BENCH=ON >"$BUILD/fsvec-cmake.log" 2>&1 ||
  { cat "$BUILD/fsvec-cmake.log" >&2; die "cmake configure failed"; }
TARGETS=(vexfs_fs_vectors_bench)
[ -n "${VEXFS_BIN:-}" ] || TARGETS+=(vexfs-fuse mkfs.vexfs)
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" \
  >"$BUILD/fsvec-build.log" 2>&1 || { tail -40 "$BUILD/fsvec-build.log" >&2; die "build failed"; }
if [ -z "${VEXFS_BIN:-}" ]; then
  # vexctl only matters for its bulk import; a failure here is not fatal.
  cmake --build "$BUILD" -j "$JOBS" --target vexctl >>"$BUILD/fsvec-build.log" 2>&1 ||
    log "vexctl did not build; the import path falls back to the driver"
fi
TOOLS="${VEXFS_BIN:-$BIN}"

# ---- scratch image, mount, cleanup -----------------------------------------
TMP="$(mktemp -d /var/tmp/vexfs-fsvec.XXXXXX)"
MNT="$TMP/mnt"
PID=""
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null ||
      echo "run.sh: could not unmount $MNT" >&2
  fi
  # Our daemon, then the driver's remount (not our child): each gets 60 s
  # to persist its indexes and exit.
  local p
  for p in "$PID" "$(cat "$TMP/remount.pid" 2>/dev/null || true)"; do
    [ -n "$p" ] || continue
    for i in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null || true
    if [ "$p" = "$PID" ]; then wait "$PID" 2>/dev/null || true; fi
  done
  [ "$rc" -ne 0 ] && [ -s "$TMP/fuse.log" ] && { echo "--- vexfs-fuse log:" >&2; tail -20 "$TMP/fuse.log" >&2; }
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$TOOLS/mkfs.vexfs" -q -s "$IMAGE_SIZE" "$TMP/vexfs.img"
mkdir "$MNT"
"$TOOLS/vexfs-fuse" "$TMP/vexfs.img" "$MNT" -f -o default_permissions >"$TMP/fuse.log" 2>&1 &
PID=$!
for i in $(seq 100); do
  mountpoint -q "$MNT" && break
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/fuse.log" >&2; die "vexfs-fuse exited"; }
  sleep 0.1
done
mountpoint -q "$MNT" || { cat "$TMP/fuse.log" >&2; die "$MNT did not come up in 10 s"; }
log "mounted $TMP/vexfs.img ($IMAGE_SIZE, on $(findmnt -no FSTYPE -T "$TMP")) at $MNT, vexfs-fuse pid $PID"

# ---- the import path --------------------------------------------------------
IMPORT_ARGS=()
PATHS=""
if [ -n "${IMPORT_CMD:-}" ]; then
  IMPORT_ARGS=(--import-cmd "$IMPORT_CMD" --import-label "$IMPORT_CMD")
elif [ -x "$TOOLS/vexctl" ] && "$TOOLS/vexctl" --help 2>&1 | grep -Eq '^ +import( |$)'; then
  # vexctl import DIR --npy FILE.npy --names FILE.txt: one file per row.
  IMPORT_ARGS=(--import-cmd "$TOOLS/vexctl import {dir} --npy {npy} --names {names} --threads {threads} --no-progress"
               --import-label "vexctl import --npy --threads N")
fi
if [ ${#IMPORT_ARGS[@]} -eq 0 ]; then
  log "no vexctl import: the import path is the driver's multithreaded create + setxattr"
  PATHS="xattr,import"
else
  PATHS="xattr,xattr-mt,import"
fi

# ---- run -------------------------------------------------------------------
SRC="git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$REPO" diff --quiet HEAD -- src fuse include tools 2>/dev/null ||
  SRC="$SRC + uncommitted changes in src/, fuse/, include/ or tools/"
NOTE="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at start $(cut -d' ' -f1-3 /proc/loadavg); build: $SRC; mount: vexfs-fuse -o default_permissions, image $IMAGE_SIZE on $(findmnt -no FSTYPE -T "$TMP")."
[ -n "${VEXFS_BIN:-}" ] && NOTE="$NOTE (vexfs-fuse and mkfs.vexfs: prebuilt from $VEXFS_BIN, not this tree.)"
JSON_OUT="${OUT:-$TMP/out.json}"
# After the same-index phase the driver mounts the volume again with this
# command (the daemon in the background, its pid in a file) for the direct
# same-index pairs; cleanup unmounts it like the first one.
REMOUNT="'$TOOLS/vexfs-fuse' '$TMP/vexfs.img' '$MNT' -f -o default_permissions >>'$TMP/fuse.log' 2>&1 & echo \$! >'$TMP/remount.pid'"
DRIVER=("$BIN/vexfs_fs_vectors_bench" --mount "$MNT" --daemon-pid "$PID" --image "$TMP/vexfs.img" --scratch "$TMP"
        --paths "$PATHS" --out "$JSON_OUT" --note "$NOTE" --qfile-at-write "${IMPORT_ARGS[@]}"
        --remount-cmd "$REMOUNT" --remount-pidfile "$TMP/remount.pid")
[ "$QUICK" = 1 ] && DRIVER+=(--quick)
start=$(date +%s)
status=0
"${DRIVER[@]}" "${ARGS[@]}" || status=$?
log "driver: $(( $(date +%s) - start )) s, exit $status"
[ -f "${JSON_OUT%.json}.md" ] && cat "${JSON_OUT%.json}.md"
[ -n "$OUT" ] && log "wrote $OUT and ${OUT%.json}.md"
exit $status
