#!/usr/bin/env bash
# Wait up to $1 seconds for RESULTS_DIR/$2 to appear, then pack RESULTS_DIR into $OUT/sweep.tgz.
# (Device calls are limited to 10 minutes; the detached sweep runs on between calls.)
res=${3:-/tmp/res}
for _ in $(seq "$(( $1 / 10 ))"); do
  [ -e "$res/$2" ] && break
  sleep 10
done
tail -n 3 "$res"/*_build.log "$res/sweep.log" 2>/dev/null
grep -h "Building CUDA" "$res"/*_build.log 2>/dev/null | tail -n 1
free -g | head -2
tar czf "$OUT/sweep.tgz" -C "$res" . 2>/dev/null
ls "$res"
