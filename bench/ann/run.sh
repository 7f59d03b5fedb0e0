#!/usr/bin/env bash
# Builds vexfs_ann_bench in a Release build directory and runs it.
#
#   bench/ann/run.sh [--quick] [--out FILE.json] [any vexfs_ann_bench option...]
#
# Writes FILE.json (one object per measured point), FILE.md (summary tables),
# FILE.gp (gnuplot script) and FILE.png (recall@10 vs QPS; needs gnuplot).
# Environment: BUILD_DIR (default build-bench), JOBS (default 2).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
jobs="${JOBS:-2}"
out="ann_results.json"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    -h|--help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      echo "Binary options (pass after the script's own):"
      [ -x "$build/bin/vexfs_ann_bench" ] && "$build/bin/vexfs_ann_bench" --help
      exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
stem="${out%.json}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DVEXFS_BUILD_TESTS=OFF -DVEXFS_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j "$jobs" --target vexfs_ann_bench

start=$(date +%s)
status=0
"$build/bin/vexfs_ann_bench" --out "$out" "${args[@]}" || status=$?
echo "vexfs_ann_bench: $(( $(date +%s) - start )) s, exit $status" >&2

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot "$stem.gp" && echo "plot: $stem.png" >&2
else
  echo "gnuplot not found (apt-get install gnuplot-nox): no $stem.png; script in $stem.gp" >&2
fi
echo "results: $out, tables: $stem.md" >&2
exit $status
