#!/usr/bin/env bash
# The GPU checks an issue is closed with, on a machine with a GPU of sm_80 or newer, from the
# repository root:
#
#   bash tests/gpu_check.sh OUT_DIR [WHEEL]
#
# Without WHEEL: builds `default` with the SM80 kernels' PTX too (so that Hopper can run the SM80
# path), W4A16_BUILD_JOBS from the core count, and keeps the wheel in OUT_DIR (needs the build
# requirements installed: nvidia-cutlass==4.2.0.0, scikit-build-core, cmake, ninja, pybind11).
# Then installs the wheel and runs the GPU suite unforced and with W4A16_FORCE_SM80=1 (four pytest
# processes on the one GPU where pytest-xdist is installed), memcheck of the skinny80 and tiled
# kernels without the caching allocator, and racecheck of one skinny80 kernel. Each step's output
# is in OUT_DIR; the exit status is the first failing step's.
set -uo pipefail
out=${1:?usage: bash tests/gpu_check.sh OUT_DIR [WHEEL]}
mkdir -p "$out"
out=$(realpath "$out")
whl=${2:+$(realpath "$2")}
cd "$(dirname "$0")/.."
rc=0
step() {  # step NAME CMD...: run, keep the output, remember the first failure
  local name=$1; shift
  local start=$(date +%s)
  "$@" > "$out/$name.txt" 2>&1
  local r=$?
  echo "$name: rc=$r, $(( $(date +%s) - start )) s; $(tail -n 1 "$out/$name.txt")"
  [ $r -ne 0 ] && [ $rc -eq 0 ] && rc=$r
  return $r
}
if [ -z "$whl" ]; then
  rm -f "$out"/w4a16_build-*.whl   # test the wheel built now, never an older one left there
  W4A16_BUILD_JOBS=${W4A16_BUILD_JOBS:-$(nproc)} W4A16_MANIFEST=default \
    W4A16_CUDA_ARCHS="80-real;80-virtual;90a-real" \
    step build python3 -m pip wheel -v --no-build-isolation --no-deps -w "$out" . || exit 1
  whl=$(ls "$out"/w4a16_build-*.whl)
fi
step install python3 -m pip install --no-deps --force-reinstall "$whl" || exit 1
xdist=""
python3 -c "import xdist" 2>/dev/null && xdist="-n 4"   # pytest-xdist where installed
step unforced python3 -m pytest -q -p no:cacheprovider tests -m gpu -rfEs $xdist
W4A16_FORCE_SM80=1 step forced python3 -m pytest -q -p no:cacheprovider tests -m gpu -rfEs $xdist
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
step memcheck_skinny80 compute-sanitizer --tool memcheck --error-exitcode 3 python3 tests/sanitize_tactics.py '*skinny80*'
step memcheck_tiled compute-sanitizer --tool memcheck --error-exitcode 3 python3 tests/sanitize_tactics.py '*tiled*'
step racecheck_skinny80 compute-sanitizer --tool racecheck --error-exitcode 3 python3 tests/sanitize_tactics.py 'fp16_int4_groupwise_skinny80_m32*'
exit $rc
