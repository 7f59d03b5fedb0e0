#!/usr/bin/env bash
# bench/fuse/run.sh: VexFS through FUSE vs libfuse's passthrough_ll vs the host
# filesystem, in one run on this machine. See bench/fuse/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/fuse/run.sh [--quick] [--rounds N] [--out FILE.json] [--systems LIST]

Builds vexfs-fuse and mkfs.vexfs (Release, build-bench/), passthrough_ll from
libfuse3-dev's example source and meta_bench, then measures sequential write
and read, 4 KiB O_DIRECT random read and write, and create/stat/readdir/unlink
for each system. Needs root, /dev/fuse, fio, fusermount3 and python3.

  --quick        256 MiB file and 20,000 files (default 1 GiB and 100,000)
  --rounds N     run every workload N times (default 3), the systems'
                 order rotated every round; each ratio is the median
                 of the per-round ratios (one round's ratio on this shared
                 machine can be off by 2x with no difference between systems)
  --out FILE     write the JSON array to FILE and the markdown table to
                 FILE with .md instead of .json (default: table on stdout only)
  --systems L    comma-separated subset of
                 vexfs,vexfs_default,passthrough_ll,host (default: all)

Environment: BUILD_DIR (default build-bench), the build directory;
SETTLE_S (default 3), seconds to wait after drop_caches before each
measurement (0 reproduces runs before the wait was added);
RAND_SLICES (default 5), the slices rand_read_4k is split into, the
systems taking turns slice by slice (1 reproduces runs before session 17);
UNLINK_SLICES (default 5), the same for unlink (1: one run per directory,
as before session 18).
EOF
}

QUICK=0
ROUNDS=3
OUT=""
SYSTEMS="vexfs,vexfs_default,passthrough_ll,host"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS="${2:?--rounds needs a number}"; shift ;;
    --rounds=*) ROUNDS="${1#--rounds=}" ;;
    --out) OUT="${2:?--out needs a file}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --systems) SYSTEMS="${2:?--systems needs a list}"; shift ;;
    --systems=*) SYSTEMS="${1#--systems=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

case "$ROUNDS" in ''|*[!0-9]*|0) echo "run.sh: --rounds wants a positive integer" >&2; exit 2 ;; esac

if [ "$QUICK" = 1 ]; then
  SIZE_MIB=256; NFILES=20000; IMG_SIZE=1G
else
  SIZE_MIB=1024; NFILES=100000; IMG_SIZE=4G
fi
RAND_OPS=20000
RAND_SLICES="${RAND_SLICES:-5}"
case "$RAND_SLICES" in ''|*[!0-9]*|0) echo "run.sh: RAND_SLICES wants a positive integer" >&2; exit 2 ;; esac
UNLINK_SLICES="${UNLINK_SLICES:-5}"
case "$UNLINK_SLICES" in ''|*[!0-9]*|0) echo "run.sh: UNLINK_SLICES wants a positive integer" >&2; exit 2 ;; esac
[ "$RAND_SLICES" -le "$RAND_OPS" ] || { echo "run.sh: RAND_SLICES is at most $RAND_OPS" >&2; exit 2; }
# Seconds between drop_caches and each measurement. The block layer's
# writeback throttling (wbt) raises the device's write queue depth while a
# sync's writes complete quickly and lowers it again over ~2 s of quiet, so
# a system measured right after another's fsync would start its own fsync
# with the deeper queue. Waiting lets every measurement start alike.
SETTLE_S="${SETTLE_S:-3}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD_DIR:-$REPO/build-bench}"
AUX="$BUILD/fuse-bench"  # passthrough_ll and meta_bench live here
log() { echo "[fuse-bench $(date +%T)] $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (drop_caches, mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
for t in fio fusermount3 python3 cmake ninja cc c++ pkg-config mountpoint; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done

# ---- build ---------------------------------------------------------------
# The build is of the working tree, which other people may be editing: note
# what it was when the build started.
SRC="git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$REPO" diff --quiet HEAD -- src fuse include 2>/dev/null ||
  SRC="$SRC + uncommitted changes in src/, fuse/ or include/"
log "building vexfs-fuse and mkfs.vexfs in $BUILD (Release)"
mkdir -p "$AUX/src"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVEXFS_BUILD_TESTS=OFF \
  >"$AUX/cmake.log" 2>&1 || { cat "$AUX/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" --target vexfs-fuse mkfs.vexfs -j2 >"$AUX/build.log" 2>&1 ||
  { tail -40 "$AUX/build.log" >&2; die "build failed"; }
EX=/usr/share/doc/libfuse3-dev/examples
for f in passthrough_ll.c passthrough_helpers.h; do
  if [ -f "$EX/$f" ]; then cp "$EX/$f" "$AUX/src/$f"
  elif [ -f "$EX/$f.gz" ]; then zcat "$EX/$f.gz" >"$AUX/src/$f"
  else die "$EX/$f not found (is libfuse3-dev installed?)"; fi
done
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc -O2 -o "$AUX/passthrough_ll" "$AUX/src/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) ||
  die "compiling passthrough_ll failed"
c++ -std=c++20 -O2 -Wall -Wextra -o "$AUX/meta_bench" "$REPO/bench/fuse/meta_bench.cc" ||
  die "compiling meta_bench failed"

# ---- scratch space, mounts and cleanup --------------------------------------
TMP="$(mktemp -d /var/tmp/vexfs-fuse-bench.XXXXXX)"
MOUNTS=()
PIDS=()
cleanup() {
  local rc=$? m p i
  trap - EXIT INT TERM
  for m in "${MOUNTS[@]}"; do
    if mountpoint -q "$m"; then
      fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
        echo "run.sh: could not unmount $m" >&2
    fi
  done
  for p in "${PIDS[@]}"; do
    for i in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; fi
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/logs"
log "scratch directory $TMP ($(findmnt -no FSTYPE -T "$TMP") on $(findmnt -no SOURCE -T "$TMP"))"

wait_mounted() {  # MOUNTPOINT PID LOG
  local i
  for i in $(seq 100); do
    mountpoint -q "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "daemon for $1 exited"; }
    sleep 0.1
  done
  cat "$3" >&2
  die "$1 did not come up in 10 s"
}

declare -A DIR
IFS=, read -r -a SYS <<<"$SYSTEMS"
for s in "${SYS[@]}"; do
  case "$s" in
    vexfs|vexfs_default)
      "$BUILD/bin/mkfs.vexfs" -q -s "$IMG_SIZE" "$TMP/$s.img"
      mkdir "$TMP/mnt_$s"
      opts=()
      [ "$s" = vexfs ] && opts=(-o default_permissions)
      MOUNTS+=("$TMP/mnt_$s")
      "$BUILD/bin/vexfs-fuse" "$TMP/$s.img" "$TMP/mnt_$s" -f "${opts[@]}" \
        >"$TMP/logs/$s.log" 2>&1 &
      PIDS+=($!)
      wait_mounted "$TMP/mnt_$s" "$!" "$TMP/logs/$s.log"
      DIR[$s]="$TMP/mnt_$s" ;;
    passthrough_ll)
      mkdir "$TMP/pt_src" "$TMP/mnt_pt"
      MOUNTS+=("$TMP/mnt_pt")
      # writeback + default_permissions: the same kernel caching as the vexfs
      # system (writeback cache, 1 s entry and attribute timeouts).
      # It holds an O_PATH fd for every inode the kernel knows: NFILES of them.
      (ulimit -n "$(ulimit -Hn)"
       exec "$AUX/passthrough_ll" -f -o "source=$TMP/pt_src,writeback,default_permissions" \
         "$TMP/mnt_pt") >"$TMP/logs/pt.log" 2>&1 &
      PIDS+=($!)
      wait_mounted "$TMP/mnt_pt" "$!" "$TMP/logs/pt.log"
      DIR[$s]="$TMP/mnt_pt" ;;
    host)
      mkdir "$TMP/host"
      DIR[$s]="$TMP/host" ;;
    *) die "unknown system $s" ;;
  esac
done
log "systems: ${SYS[*]}; $ROUNDS round(s); file ${SIZE_MIB} MiB, ${RAND_OPS} random ops, ${NFILES} files, settle ${SETTLE_S} s"

DROP_OK=1
drop_caches() {
  sync
  if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    [ "$DROP_OK" = 1 ] && log "WARNING: cannot write /proc/sys/vm/drop_caches; reads may be cached"
    DROP_OK=0
  fi
  sleep "$SETTLE_S"
}

RESULTS="$TMP/results.jsonl"
: >"$RESULTS"
ROUND=1
record() {  # WORKLOAD SYSTEM UNIT VALUE [FILES]
  printf '{"workload":"%s","system":"%s","unit":"%s","value":%s,"files":%s,"round":%s}\n' \
    "$1" "$2" "$3" "$4" "${5:-null}" "$ROUND" >>"$RESULTS"
  log "$(printf 'round %s %-14s %-15s %12.1f %s' "$ROUND" "$1" "$2" "$4" "$3")"
}

# fio JSON -> one number. FIELD: read_mibs, write_mibs, read_iops, write_iops.
fio_value() {
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d, what = sys.argv[2].split("_")
print(j[d]["bw_bytes"] / 2**20 if what == "mibs" else j[d]["iops"])' "$1" "$2"
}

FIO_OUT="$TMP/logs/fio.json"
fio_on() {  # WORKLOAD SYSTEM fio-args...: one fio run on SYSTEM's file, JSON in $FIO_OUT
  local w=$1 s=$2
  shift 2
  fio --name="$w" --filename="${DIR[$s]}/seqfile" --size="${SIZE_MIB}m" --ioengine=psync \
    --iodepth=1 --numjobs=1 --fallocate=none --output-format=json "$@" >"$FIO_OUT" \
    2>"$TMP/logs/fio.err" || { cat "$TMP/logs/fio.err" >&2; die "fio $w on $s failed"; }
}

run_fio() {  # WORKLOAD SYSTEM FIELD UNIT fio-args...
  local w=$1 s=$2 field=$3 unit=$4
  shift 4
  fio_on "$w" "$s" "$@"
  record "$w" "$s" "$unit" "$(fio_value "$FIO_OUT" "$field")"
}

# rand_read_4k in RAND_SLICES slices of RAND_OPS / RAND_SLICES reads, the
# systems taking turns slice by slice (slice j of a round starts at its j-th
# system; each slice has its own seed, the same for every system). A cold
# 4 KiB O_DIRECT read is one trip to the disk on every system (~80 us
# here), and this disk's latency drifts by 10-20% within a minute
# (bench/fuse/README.md, "Issue 3, session 17"): in one fio run per system
# the drift between runs decided the ratio. Each system's figure is its
# reads over its summed run time.
run_rand_read() {  # SYSTEM...
  local sys=("$@") j i s n t
  local -A ios=() ms=()
  for s in "${sys[@]}"; do ios[$s]=0; ms[$s]=0; done
  for (( j=0; j<RAND_SLICES; j++ )); do
    for (( i=0; i<${#sys[@]}; i++ )); do
      s=${sys[$(( (j + i) % ${#sys[@]} ))]}
      drop_caches
      fio_on rand_read_4k "$s" --rw=randread --bs=4k --direct=1 \
        --number_ios=$(( RAND_OPS / RAND_SLICES )) --randseed=$(( 42 + j ))
      read -r n t < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(r["total_ios"], r["runtime"])' "$FIO_OUT")
      ios[$s]=$(( ${ios[$s]} + n )); ms[$s]=$(( ${ms[$s]} + t ))
    done
  done
  for s in "${sys[@]}"; do
    [ "${ms[$s]}" -gt 0 ] || die "rand_read_4k on $s: no run time"
    record rand_read_4k "$s" ops_per_s "$(python3 -c "print(${ios[$s]} * 1000 / ${ms[$s]})")"
  done
}

# passthrough_ll keeps an O_PATH fd open for every inode the kernel holds, so
# it cannot create (or stat, or readdirplus) more files than RLIMIT_NOFILE
# allows; when the hard limit cannot be raised (no CAP_SYS_RESOURCE, as in
# containers), it gets fewer files and the table says so.
PT_MAX=$(( $(ulimit -Hn) - 1000 ))
PT_SAME_N=0
[[ ",$SYSTEMS," == *,passthrough_ll,* ]] && [ "$NFILES" -gt "$PT_MAX" ] && PT_SAME_N=1
# The files a system's metadata phases run on: NFILES, or PT_MAX for
# passthrough_ll when RLIMIT_NOFILE holds it below that.
files_of() {  # SYSTEM
  if [ "$1" = passthrough_ll ] && [ "$NFILES" -gt "$PT_MAX" ]; then echo "$PT_MAX"; else echo "$NFILES"; fi
}
# Whether SYSTEM also runs each metadata phase on passthrough_ll's file
# count, in a directory of its own (meta_pt_n), so that one ratio compares
# directories of the same size (report.py: PHASE_at_pt_n).
at_pt_n() {  # SYSTEM
  [ "$PT_SAME_N" = 1 ] && { [ "$1" = vexfs ] || [ "$1" = vexfs_default ]; }
}
# Every unlink slice must hold a file (meta_bench refuses an empty one).
[ "$UNLINK_SLICES" -le "$NFILES" ] && { [ "$PT_SAME_N" = 0 ] || [ "$UNLINK_SLICES" -le "$PT_MAX" ]; } ||
  die "UNLINK_SLICES ($UNLINK_SLICES) exceeds the files of a directory"

# One round: each workload runs on every system (in the order given) before
# the next starts, so the numbers compared in one ratio were taken minutes
# apart at most.
run_round() {  # SYSTEM...
  local s phase n line
  for s in "$@"; do
    drop_caches
    run_fio seq_write "$s" write_mibs MiB_per_s --rw=write --bs=1m --end_fsync=1
  done
  for s in "$@"; do
    drop_caches
    run_fio seq_read "$s" read_mibs MiB_per_s --rw=read --bs=1m
  done
  run_rand_read "$@"
  for s in "$@"; do
    drop_caches
    # Buffered, not O_DIRECT: passthrough_ll hands libfuse's unaligned write
    # buffer to an O_DIRECT fd, which fails with EINVAL. Nearly every write
    # still reaches the daemon as its own 4 KiB WRITE, during the final fsync.
    run_fio rand_write_4k "$s" write_iops ops_per_s --rw=randwrite --bs=4k \
      --number_ios="$RAND_OPS" --randseed=43 --end_fsync=1
  done
  for s in "$@"; do rm -f "${DIR[$s]}/seqfile"; done

  for phase in create stat readdir; do
    for s in "$@"; do
      n=$(files_of "$s")
      [ "$n" != "$NFILES" ] && [ "$phase" = create ] && [ "$ROUND" = 1 ] &&
        log "$s: $n files only (RLIMIT_NOFILE hard limit $(ulimit -Hn))"
      meta_phase "$phase" "$s" meta "$n" "$phase"
      if at_pt_n "$s"; then
        meta_phase "$phase" "$s" meta_pt_n "$PT_MAX" "${phase}_at_pt_n"
      fi
    done
  done
  run_unlink "$@"
}

# unlink in UNLINK_SLICES slices, like rand_read_4k: every directory of the
# metadata phases (each system's, and VexFS's PHASE_at_pt_n one) loses the
# next 1/UNLINK_SLICES of its files in turn, slice j starting at its j-th
# directory, each slice after drop_caches. An unlink is the same five FUSE
# requests on VexFS and passthrough_ll, and the same 19,000 unlinks ran at
# 11.3k and 6.0k ops/s ten minutes apart on this machine (bench/fuse/
# README.md, "Issue 3, session 18"). A figure is the files over the summed
# run time; the last slice also removes the directory, as one run did.
run_unlink() {  # SYSTEM...
  local j i s key n first last t line
  local keys=()
  local -A sys_of=() sub_of=() n_of=() secs=()
  for s in "$@"; do
    keys+=("unlink/$s"); sys_of["unlink/$s"]=$s; sub_of["unlink/$s"]=meta; n_of["unlink/$s"]=$(files_of "$s")
    if at_pt_n "$s"; then
      key="unlink_at_pt_n/$s"
      keys+=("$key"); sys_of[$key]=$s; sub_of[$key]=meta_pt_n; n_of[$key]=$PT_MAX
    fi
  done
  for key in "${keys[@]}"; do secs[$key]=0; done
  for (( j=0; j<UNLINK_SLICES; j++ )); do
    for (( i=0; i<${#keys[@]}; i++ )); do
      key=${keys[$(( (j + i) % ${#keys[@]} ))]}
      n=${n_of[$key]}
      first=$(( n * j / UNLINK_SLICES )); last=$(( n * (j + 1) / UNLINK_SLICES ))
      drop_caches
      line="$("$AUX/meta_bench" unlink "${DIR[${sys_of[$key]}]}/${sub_of[$key]}" "$n" "$first" "$last")" ||
        die "meta_bench unlink on ${sys_of[$key]} (files $first..$last of $n) failed"
      t=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$line")
      secs[$key]=$(python3 -c "print(${secs[$key]} + $t)")
    done
  done
  for key in "${keys[@]}"; do
    record "${key%%/*}" "${sys_of[$key]}" ops_per_s "$(python3 -c "print(${n_of[$key]} / ${secs[$key]})")" \
      "${n_of[$key]}"
  done
}

meta_phase() {  # PHASE SYSTEM SUBDIR FILES WORKLOAD
  local line
  drop_caches
  line="$("$AUX/meta_bench" "$1" "${DIR[$2]}/$3" "$4")" || die "meta_bench $1 on $2 ($4 files) failed"
  record "$5" "$2" ops_per_s \
    "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ops_per_s"])' "$line")" "$4"
}

# Rounds rotate the systems' order (round r starts at the r-th system), so
# each system is measured first in at most one round of every ${#SYS[@]}. The
# first write after a large cache drop and a round's file churn runs slower
# on every system (bench/fuse/README.md, "Issue 3, session 16"); reversing
# the order every other round put the same two systems first every time.
for (( ROUND=1; ROUND<=ROUNDS; ROUND++ )); do
  ORDER=()
  for (( i=0; i<${#SYS[@]}; i++ )); do ORDER+=("${SYS[$(( (ROUND - 1 + i) % ${#SYS[@]} ))]}"); done
  run_round "${ORDER[@]}"
done

# ---- report ------------------------------------------------------------------
REPORT_ARGS=("$RESULTS" "$ROUNDS" "$QUICK" "$SIZE_MIB" "$NFILES" "$RAND_OPS" "$RAND_SLICES" "$UNLINK_SLICES" "$DROP_OK" "$SETTLE_S" "$SRC")
JSON_OUT="${OUT:-$TMP/out.json}"
MD_OUT="${JSON_OUT%.json}.md"
[ "$MD_OUT" = "$JSON_OUT" ] && MD_OUT="$JSON_OUT.md"
python3 "$REPO/bench/fuse/report.py" "${REPORT_ARGS[@]}" "$JSON_OUT" "$MD_OUT"
cat "$MD_OUT"
[ -n "$OUT" ] && log "wrote $JSON_OUT and $MD_OUT"
exit 0
