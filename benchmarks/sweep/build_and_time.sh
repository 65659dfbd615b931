#!/usr/bin/env bash
# Build one slice of the `full` manifest and time every tactic in it.
#
#   benchmarks/sweep/build_and_time.sh NAME KERNEL_GLOBS RESULTS_DIR DTYPE:MODE [DTYPE:MODE ...]
#
# Builds the kernels matching KERNEL_GLOBS (comma-separated, as W4A16_KERNELS) into
# $SWEEP_TMP/NAME (wheel installed under .../site), then for each DTYPE:MODE runs
#   python -m w4a16_build.bench --tactic all --screen 0.25 --dtype DTYPE --mode MODE
# over the shape set and M list and writes RESULTS_DIR/NAME_DTYPE_MODE.json (+ .log).
# Needs the build requirements importable (--no-build-isolation), nvidia-cutlass included.
set -euo pipefail
name=$1 globs=$2 res=$3
shift 3
root=${SWEEP_TMP:-/tmp/sweep}/$name
mkdir -p "$root" "$res"
t0=$(date +%s)
W4A16_MANIFEST=full W4A16_KERNELS="$globs" python3 -m pip wheel -v --no-build-isolation --no-deps \
  -C build-dir="$root/build" -w "$root/wheel" . > "$res/${name}_build.log" 2>&1
echo "$name: built in $(( $(date +%s) - t0 )) s" | tee -a "$res/${name}_build.log"
cp "$root"/build/build_report.json "$res/${name}_build_report.json" 2>/dev/null || true
python3 -m pip install -q --no-index --no-deps --no-compile --target "$root/site" "$root"/wheel/*.whl
for dm in "$@"; do
  dtype=${dm%%:*} mode=${dm##*:}
  t1=$(date +%s)
  PYTHONPATH="$root/site:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 python3 -m w4a16_build.bench \
    --tactic all --screen 0.25 --dtype "$dtype" --mode "$mode" \
    --json "$res/${name}_${dtype}_${mode}.json" > "$res/${name}_${dtype}_${mode}.log" 2>&1
  echo "$name $dtype $mode: timed in $(( $(date +%s) - t1 )) s" | tee -a "$res/${name}_build.log"
done
