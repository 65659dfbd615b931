#!/usr/bin/env bash
# The whole sweep of issue 6 on one device machine (16 cores, one GPU), run detached:
#   setsid nohup benchmarks/sweep/device_sweep.sh RESULTS_DIR > RESULTS_DIR/sweep.log 2>&1 &
# A: every fp16 groupwise kernel of `full` (CUTLASS and GEMV), built and timed.
# B: the best configurations of A (pick_configs.py) in the five other (dtype, mode) pairs.
# RESULTS_DIR/DONE_A and DONE_B mark the phases' ends.
set -euo pipefail
res=$1
here=$(cd "$(dirname "$0")" && pwd)
"$here/build_and_time.sh" A 'fp16_int4_groupwise_t*,fp16_int4_groupwise_gemv_*' "$res" fp16:groupwise
touch "$res/DONE_A"
pairs=bf16:groupwise,fp16:per_column,bf16:per_column,fp16:groupwise_zero,bf16:groupwise_zero
globs=$(python3 "$here/pick_configs.py" "$res/A_fp16_groupwise.json" --count "${SWEEP_COUNT:-24}" --pairs "$pairs")
echo "$globs" > "$res/B_kernels.txt"
"$here/build_and_time.sh" B "$globs" "$res" ${pairs//,/ }
touch "$res/DONE_B"
