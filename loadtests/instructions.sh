#!/usr/bin/env bash
# loadtests/instructions.sh: user-space instructions weir executes per request, counted by
# callgrind. Deterministic whatever else the machine does (unlike CPU time), so it shows
# what a hot-path change buys even on a busy box; it does not count the kernel's share.
#
#   loadtests/instructions.sh                 # the weir built from this repo (release)
#   WEIR_BIN=/path/to/weir loadtests/instructions.sh
#   METRICS=0 loadtests/instructions.sh       # with the metrics endpoint off
#   PROFILE=/tmp/weir.cg loadtests/instructions.sh   # keep the profile for callgrind_annotate
#
# weir serves loadtests/weir-bench.yaml (the benchmark's 10 % canary job) in front of the
# shared upstream pair, 1 worker, under valgrind; 1000 requests warm it up, then callgrind
# counts exactly N (default 3000) `h2load --h1 -c 10` requests. Prints Ir per request.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
N=${N:-3000}
METRICS=${METRICS:-1}
PORT=${PORT:-8181}
RAW=$(mktemp -d /tmp/weir-instr.XXXXXX)
# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    rm -rf "$RAW"
    exit "$rc"
}
trap cleanup EXIT INT TERM

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -z ${WEIR_BIN:-} ]]; then
    log "building weir (release)"
    (cd "$REPO" && cargo build --release -q -p weir-proxy)
    WEIR_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/weir
fi

for p in 9001 9002 "$PORT" $((PORT + 1)); do wait_port_free "$p"; done
render_upstream "$RAW/upstream" "$SHARED_BENCH/nginx-upstream.conf"
start_bg upstream nginx -p "$RAW/upstream" -c "$RAW/upstream/nginx.conf" -e "$RAW/upstream/error.log"
UP=$LAST_PID
wait_http http://127.0.0.1:9001/ "$UP"

metrics=(--metrics-listen 127.0.0.1:0)
((METRICS)) || metrics=(--no-metrics)
start_bg weir valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$RAW/callgrind.out" \
    "$WEIR_BIN" --config "$HERE/weir-bench.yaml" --listen "127.0.0.1:$PORT" \
    --admin-listen "127.0.0.1:$((PORT + 1))" --no-tls --workers 1 --log warn "${metrics[@]}"
WEIR=$LAST_PID
wait_http "http://127.0.0.1:$((PORT + 1))/readyz" "$WEIR" 60

h2load --h1 -n 1000 -c 10 "http://127.0.0.1:$PORT/" >"$RAW/warmup.txt"
callgrind_control -i on "$WEIR" >/dev/null 2>&1
h2load --h1 -n "$N" -c 10 "http://127.0.0.1:$PORT/" >"$RAW/measured.txt"
callgrind_control -i off "$WEIR" >/dev/null 2>&1
grep -q "$N succeeded, 0 failed, 0 errored" "$RAW/measured.txt" ||
    die "not every request succeeded: $(grep '^requests:' "$RAW/measured.txt")"
stop_pid "$WEIR"

total=$(callgrind_annotate "$RAW/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
[[ -n $total ]] || die "callgrind wrote no totals"
[[ -z ${PROFILE:-} ]] || cp "$RAW/callgrind.out" "$PROFILE"
echo "weir: $((total / N)) user-space instructions per request ($total over $N requests; metrics $( ((METRICS)) && echo on || echo off))"
