#!/usr/bin/env bash
# loadtests/run.sh: weir beside nginx doing the same canary job, measured as in
# ../shared/bench/METHOD.md, in one command. See loadtests/README.md.
#
#   loadtests/run.sh                 # full run: 5 reps, layouts P, F1, F2, limit, scenarios
#   QUICK=1 loadtests/run.sh         # smoke test of the harness: 1 rep x 3 s
#
# Writes loadtests/results/<date>-<host>[-quick].md (printed at the end) and raw outputs
# under loadtests/results/raw/<stamp>/. Binds only 127.0.0.1. Stops all it started on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"

# ---- knobs (environment) ----------------------------------------------------------------
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    : "${DURATION:=3}" "${REPS:=1}" "${SWAP_DURATION:=5}" "${LAT_SLICES:=2}" "${LAT_DURATION:=2}"
    : "${IDLE_CONNS:=1000}" "${STALL_ROUNDS:=2}"
fi
DURATION=${DURATION:-10}          # s per measured wrk run
REPS=${REPS:-5}                   # repetitions of every steady measurement
LAT_SLICES=${LAT_SLICES:-3}       # latency slices per repetition, per contender and direct
LAT_DURATION=${LAT_DURATION:-4}   # s per latency slice (oha)
WARMUP=${WARMUP:-2}               # s of unmeasured load before each measured run
CONNS=${CONNS:-50}                # connections, closed and open loop
RATE=${RATE:-20000}               # open-loop offered rate for latency (req/s)
ROUTE_N=${ROUTE_N:-2000}          # requests per routing-check case
ROUTE_BAND=${ROUTE_BAND:-4}       # tolerance of the 10 % share, percentage points
SWAP_DURATION=${SWAP_DURATION:-30}
SWAP_INTERVAL=${SWAP_INTERVAL:-0.01}        # weir: a new weight every 10 ms
NGINX_SWAP_INTERVAL=${NGINX_SWAP_INTERVAL:-1}  # nginx: a reload every 1 s
IDLE_CONNS=${IDLE_CONNS:-10000}
STALL_US=${STALL_US:-3000}                  # scenario d: CPU0 taken away this long ...
STALL_PERIOD_US=${STALL_PERIOD_US:-50000}   # ... at the start of every period
STALL_MIB=${STALL_MIB:-0}                   # MiB the staller walks while it spins (0: none)
STALL_ROUNDS=${STALL_ROUNDS:-10}            # interleaved latency slices per contender
LAYOUTS=${LAYOUTS-"P F1 F2 limit"}   # set but empty: none
SCENARIOS=${SCENARIOS-"swap idle big stall burst"}  # set but empty: none
CONTENDERS=${CONTENDERS:-"nginx ingress-nginx haproxy traefik weir"}
NGINX_PORT=${NGINX_PORT:-8080}
WEIR_PORT=${WEIR_PORT:-8081}
INGRESS_NGINX_PORT=${INGRESS_NGINX_PORT:-8082}
HAPROXY_PORT=${HAPROXY_PORT:-8083}
TRAEFIK_PORT=${TRAEFIK_PORT:-8084}
TRAEFIK_BIN=${TRAEFIK_BIN:-}       # a prebuilt Traefik: skips loadtests/peers/build-traefik.sh
IDLE_PROTOCOLS=${IDLE_PROTOCOLS:-"h1 h2c h1-tls h2-tls"}  # scenario b: client protocols
IDLE_SLACK=${IDLE_SLACK:-1024}     # scenario b: connections allowed beyond IDLE_CONNS (warm-up, checks)
IDLE_SETTLE=${IDLE_SETTLE:-15}     # scenario b: seconds the connections sit idle before memory is read
BURST_CONNS=${BURST_CONNS:-2000}   # scenario e: connections opened at once
BURST_TRIM=${BURST_TRIM:-0}        # scenario e: 1 = also RSS after malloc_trim(0) by gdb
WEIR_ADMIN_PORT=${WEIR_ADMIN_PORT:-8091}
WEIR_METRICS_PORT=${WEIR_METRICS_PORT:-8092}
WEIR_STANDIN=${WEIR_STANDIN:-}     # "nginx": a second nginx plays weir (tests the harness)
WEIR_SRC=${WEIR_SRC:-$ROOT}        # the checkout to build weir from
WEIR_BIN=${WEIR_BIN:-}             # a prebuilt binary: skips the build
WEIR_REF=${WEIR_REF:-}             # a git revision (e.g. main) to export and build instead
WEIR_REV=${WEIR_REV:-}             # the revision printed in the report
SHARED_BENCH=${SHARED_BENCH:-$(cd "$ROOT/.." && pwd)/shared/bench}
UP_PORTS=(9001 9002)               # fixed by the shared upstream conf
# every contender's plain port; its TLS port is +100 and (where h2c has a port of its own) +200
declare -A BASE_PORT=([nginx]=$NGINX_PORT [weir]=$WEIR_PORT [ingress-nginx]=$INGRESS_NGINX_PORT
    [haproxy]=$HAPROXY_PORT [traefik]=$TRAEFIK_PORT)
PEERS=$HERE/peers

NGINX_TMPL=$SHARED_BENCH/nginx-canary-proxy.conf.tmpl
UPSTREAM_CONF=$SHARED_BENCH/nginx-upstream.conf
BIG_UPSTREAM_CONF=$HERE/nginx-upstream-1mib.conf
WEIR_TABLE=$HERE/weir-bench.yaml
PY=python3
MEASURE=$HERE/lib/measure.py

# ---- tools ------------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v curl >/dev/null || missing+=(curl)
    [[ " $CONTENDERS " == *" haproxy "* ]] && ! command -v haproxy >/dev/null && missing+=(haproxy)
    command -v openssl >/dev/null || missing+=(openssl)
    if [[ " $SCENARIOS " == *" stall "* ]]; then
        command -v cc >/dev/null || missing+=(gcc)
        command -v chrt >/dev/null || missing+=(util-linux)
    fi
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (apt-get)"
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
    # oha: the latency slices (any layout) and scenario (d) only
    if [[ -n ${LAYOUTS// /} || " $SCENARIOS " == *" stall "* ]] && ! command -v oha >/dev/null; then
        log "installing oha (cargo install oha --locked; several minutes on 2 cores, once)"
        cargo install oha --locked
    fi
    command -v "$PY" >/dev/null || die "python3 is needed"
    local who
    for who in $CONTENDERS; do
        [[ -n ${BASE_PORT[$who]:-} ]] || die "unknown contender $who (${!BASE_PORT[*]})"
    done
    if [[ " $CONTENDERS " == *" traefik "* && -z $TRAEFIK_BIN ]]; then
        log "Traefik: loadtests/peers/build-traefik.sh (cached per version; the first build takes minutes)"
        TRAEFIK_BIN=$("$PEERS/build-traefik.sh") || die "could not build Traefik"
    fi
    [[ " $CONTENDERS " != *" traefik "* || -x $TRAEFIK_BIN ]] || die "no Traefik binary at $TRAEFIK_BIN"
    [[ -r $NGINX_TMPL && -r $UPSTREAM_CONF ]] || die "no shared bench files in $SHARED_BENCH"
}

build_weir() {
    if [[ $WEIR_STANDIN == nginx ]]; then
        log "weir is played by a second nginx (WEIR_STANDIN=nginx): harness test only"
        return
    fi
    if [[ -n $WEIR_REF && -z $WEIR_BIN ]]; then
        # build a committed revision from an export: nobody's working tree is touched, and
        # the report names exactly what was built
        WEIR_REV=$(git -C "$ROOT" rev-parse --short "$WEIR_REF") || die "no git revision $WEIR_REF"
        WEIR_SRC=${TMPDIR:-/tmp}/weir-src-$WEIR_REV
        if [[ ! -f $WEIR_SRC/Cargo.toml ]]; then
            rm -rf "$WEIR_SRC.tmp" && mkdir -p "$WEIR_SRC.tmp"
            # -m: files get the current time, not the commit's; with a shared target dir,
            # cargo compares mtimes and would otherwise call an older binary fresh
            git -C "$ROOT" archive "$WEIR_REV" | tar -x -m -C "$WEIR_SRC.tmp"
            mv "$WEIR_SRC.tmp" "$WEIR_SRC"
        fi
        # one target dir for every export: dependencies are built once
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    fi
    if [[ -z $WEIR_BIN ]]; then
        log "building weir: cargo build --release -p weir-proxy in $WEIR_SRC"
        (cd "$WEIR_SRC" && cargo build --release -p weir-proxy)
        WEIR_BIN=${CARGO_TARGET_DIR:-$WEIR_SRC/target}/release/weir
    fi
    [[ -x $WEIR_BIN ]] || die "no weir binary at $WEIR_BIN"
    WEIR_EXTRA=()
    local help
    help=$("$WEIR_BIN" --help 2>&1) || true
    grep -q -- '--admin-listen' <<<"$help" || die "$WEIR_BIN has no --admin-listen: not the weir proxy?"
    grep -q -- '--metrics-listen' <<<"$help" && WEIR_EXTRA+=(--metrics-listen "127.0.0.1:$WEIR_METRICS_PORT")
    grep -q -- '--log ' <<<"$help" && WEIR_EXTRA+=(--log warn)
    # the bench job is plain HTTP; weir's TLS listener would bind 0.0.0.0:8443 by default
    grep -q -- '--no-tls' <<<"$help" && WEIR_EXTRA+=(--no-tls)
    return 0
}

# ---- processes --------------------------------------------------------------------------
UP_PID=
PROXY_PID=

start_upstream() { # CONF
    local dir=$RUNDIR/upstream
    rm -rf "$dir"
    render_upstream "$dir" "$1"
    [[ $1 == "$BIG_UPSTREAM_CONF" ]] && head -c 1048576 /dev/urandom >"$dir/www/1mib.bin" && chmod a+r "$dir/www/1mib.bin"
    local p
    for p in "${UP_PORTS[@]}"; do wait_port_free "$p"; done
    start_bg upstream "${UP_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
    UP_PID=$LAST_PID
    for p in "${UP_PORTS[@]}"; do wait_http "http://127.0.0.1:$p/" "$UP_PID"; done
    assert_loopback_only "$UP_PID"
}

stop_upstream() {
    stop_pid "$UP_PID"
    UP_PID=
}

# start_proxy CONTENDER WORKERS [MAX_CONNECTIONS] [TLS]: sets PROXY_PID, PROXY_PORT, PROXY_URL,
# PROXY_CONF. MAX_CONNECTIONS: nginx's worker_connections / HAProxy's maxconn, for the idle
# and burst scenarios (default 8192, the template's). TLS=1 (idle scenario) adds a TLS
# listener (ALPN h2 and http/1.1) on PROXY_TLS_PORT and h2c by prior knowledge on
# PROXY_H2C_PORT (the plain port itself for weir, HAProxy and Traefik, which tell h2c from
# HTTP/1.1 by the preface; a port of its own for nginx, whose `http2` listen is h2c only).
start_proxy() {
    local who=$1 workers=$2 wc=${3:-8192} tls=${4:-0} dir port
    dir=$RUNDIR/$who
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    port=${BASE_PORT[$who]}
    local tport=$((port + 100)) hport=$((port + 200)) reuse=""
    ((workers > 1)) && reuse=reuseport
    PROXY_TLS_PORT='' PROXY_H2C_PORT=''
    if ((tls)); then PROXY_TLS_PORT=$tport PROXY_H2C_PORT=$hport; fi
    local cert=(CERT="$RUNDIR/cert/cert.pem" KEY="$RUNDIR/cert/key.pem" PEM="$RUNDIR/cert/both.pem")
    wait_port_free "$port"
    if [[ $who == nginx || ($who == weir && $WEIR_STANDIN == nginx) ]]; then
        render_nginx_proxy "$dir" "$workers" "$port" "$wc" "$tls"
        start_bg "proxy-$who" "${PROXY_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        PROXY_CONF=$dir/nginx.conf
    elif [[ $who == ingress-nginx ]]; then
        render_tmpl "$PEERS/ingress-nginx.conf.tmpl" "$dir/nginx.conf" "$tls" WORKERS="$workers" \
            RUNDIR="$dir" PORT="$port" TLS_PORT="$tport" H2C_PORT="$hport" REUSEPORT="$reuse" \
            WORKER_CONNECTIONS="$wc" "${cert[@]}"
        chmod -R a+rX "$dir"
        start_bg "proxy-$who" "${PROXY_PIN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        PROXY_CONF=$dir/nginx.conf
    elif [[ $who == haproxy ]]; then
        render_tmpl "$PEERS/haproxy.cfg.tmpl" "$dir/haproxy.cfg" "$tls" WORKERS="$workers" \
            RUNDIR="$dir" PORT="$port" TLS_PORT="$tport" H2C_PORT="$hport" MAXCONN="$wc" "${cert[@]}"
        echo "weight 10" >"$dir/weight.map"
        haproxy -c -q -f "$dir/haproxy.cfg" >"$RAW/haproxy-check.log" 2>&1 ||
            die "haproxy refuses its config: $(head -5 "$RAW/haproxy-check.log")"
        # -db: foreground, one process (threads), so PROXY_PID is all of HAProxy
        start_bg "proxy-$who" "${PROXY_PIN[@]}" haproxy -db -f "$dir/haproxy.cfg"
        PROXY_CONF=$dir/haproxy.cfg
    elif [[ $who == traefik ]]; then
        render_tmpl "$PEERS/traefik-dynamic.yml.tmpl" "$dir/dynamic.yml" "$tls" "${cert[@]}"
        render_tmpl "$PEERS/traefik.yml.tmpl" "$dir/traefik.yml" "$tls" PORT="$port" TLS_PORT="$tport" \
            DYNAMIC="$dir/dynamic.yml"
        ((tls)) && PROXY_H2C_PORT=$port
        # workers = GOMAXPROCS (Go's scheduler threads running Go code)
        start_bg "proxy-$who" "${PROXY_PIN[@]}" env GOMAXPROCS="$workers" "$TRAEFIK_BIN" \
            --configFile="$dir/traefik.yml"
        PROXY_CONF=$dir/dynamic.yml
    else
        local table=$dir/weir.yaml extra=("${WEIR_EXTRA[@]}")
        cp "$WEIR_TABLE" "$table"
        if ((tls)); then
            printf 'tls:\n  defaultCertificate: { certificateFile: %s, keyFile: %s }\n' \
                "$RUNDIR/cert/cert.pem" "$RUNDIR/cert/key.pem" >>"$table"
            extra=()
            local e
            for e in "${WEIR_EXTRA[@]}"; do [[ $e == --no-tls ]] || extra+=("$e"); done
            extra+=(--tls-listen "127.0.0.1:$tport")
            PROXY_H2C_PORT=$port
        fi
        wait_port_free "$WEIR_ADMIN_PORT"
        start_bg "proxy-$who" "${PROXY_PIN[@]}" "$WEIR_BIN" --config "$table" \
            --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$WEIR_ADMIN_PORT" \
            --workers "$workers" --max-connections "$((wc > 16384 ? wc : 16384))" "${extra[@]}"
        PROXY_CONF=$table
        PROXY_PID=$LAST_PID
        wait_http "http://127.0.0.1:$WEIR_ADMIN_PORT/readyz" "$PROXY_PID"
    fi
    PROXY_PID=$LAST_PID
    PROXY_PORT=$port
    PROXY_URL=http://127.0.0.1:$port/
    wait_http "$PROXY_URL" "$PROXY_PID"
    local p
    for p in $PROXY_TLS_PORT $PROXY_H2C_PORT; do wait_listen "$p" "$PROXY_PID"; done
    assert_loopback_only "$PROXY_PID"
}

stop_proxy() {
    stop_pid "$PROXY_PID"
    PROXY_PID=
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    [[ -n ${RUNDIR:-} && ${KEEP_RUNDIR:-0} != 1 ]] && rm -rf "$RUNDIR"
    exit "$rc"
}

# ---- one measured step ------------------------------------------------------------------
snap() { "$PY" "$MEASURE" snap "$@"; }

# measure NAME TOOL PID FIELDS -- CMD...: snapshot PID's tree, run CMD (output to a raw file),
# snapshot again, append one JSON row to results.jsonl.
measure() {
    local name=$1 tool=$2 pid=$3 fields=$4
    shift 5
    local out=$RAW/$name.out
    snap "$pid" >"$RAW/$name.before.json"
    "$@" >"$out" 2>"$RAW/$name.err" || log "$name: load tool exited non-zero (see $RAW/$name.err)"
    snap "$pid" >"$RAW/$name.after.json"
    local args=() f
    for f in $fields; do args+=(--field "$f"); done
    "$PY" "$MEASURE" record --before "$RAW/$name.before.json" --after "$RAW/$name.after.json" \
        --tool "$tool" --out "$out" "${args[@]}" >>"$RESULTS"
}

wrk_cmd() { # URL SECONDS
    WRK=("${LG_PIN[@]}" timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"$2"s "$1")
}
oha_cmd() { # URL SECONDS
    OHA=("${LG_PIN[@]}" timeout $(($2 + 30)) oha --no-tui -z "$2"s -c "$CONNS" -q "$RATE"
        --latency-correction --wait-ongoing-requests-after-deadline --output-format json "$1")
}

warm_up() { # URL
    wrk_cmd "$1" "$WARMUP"
    "${WRK[@]}" >/dev/null 2>&1 || true
}

# ---- the steps of the method ------------------------------------------------------------
route_check() {
    log "routing check (layout F, 1 worker): $ROUTE_N requests per case"
    set_pins - - -
    start_upstream "$UPSTREAM_CONF"
    local who ok=1
    for who in $CONTENDERS; do
        start_proxy "$who" 1
        # every contender but the shared plain reference also has the canary cookie
        local cookie=(--cookie canary)
        [[ $who == nginx || ($who == weir && $WEIR_STANDIN == nginx) ]] && cookie=()
        if "$PY" "$HERE/lib/routecheck.py" --port "$PROXY_PORT" -n "$ROUTE_N" \
            --band "$ROUTE_BAND" "${cookie[@]}" >"$RAW/route-$who.json"; then
            log "  $who: routing ok $(cat "$RAW/route-$who.json")"
        else
            log "  $who: ROUTING WRONG $(cat "$RAW/route-$who.json")"
            ok=0
        fi
        stop_proxy
    done
    stop_upstream
    ((ok)) || die "routing check failed: nothing timed (METHOD: correctness before timing)"
}

# layout_pins LAYOUT: P = proxy on CPU0, load generator + upstream on CPU1; F* = unpinned.
layout_pins() {
    case $1 in
    P) set_pins 0 1 1 ;;
    F1 | F2) set_pins - - - ;;
    limit) set_pins - 1 0 ;;
    *) die "unknown layout $1 (P F1 F2 limit)" ;;
    esac
}

layout_workers() { case $1 in F2) echo 2 ;; *) echo 1 ;; esac }

steady_layout() {
    local layout=$1 workers rep who order
    workers=$(layout_workers "$layout")
    layout_pins "$layout"
    log "layout $layout: $REPS rep(s), proxy workers $workers"
    start_upstream "$UPSTREAM_CONF"
    for ((rep = 1; rep <= REPS; rep++)); do
        local base="layout=$layout workers=$workers rep=$rep"
        if [[ $layout == limit ]]; then
            # the physical limit: client on CPU1, upstream alone on CPU0, no proxy
            warm_up "http://127.0.0.1:9001/"
            wrk_cmd "http://127.0.0.1:9001/" "$DURATION"
            measure "limit-r$rep-wrk" wrk "$UP_PID" "$base contender=direct kind=steady" -- "${WRK[@]}"
            continue
        fi
        # closed loop, one contender at a time: rps and CPU per request
        # alternate who goes first, so a drift in the machine does not favour one contender
        order=$CONTENDERS
        # shellcheck disable=SC2086 # word splitting of the list is the point
        ((rep % 2 == 0)) && order=$(printf '%s\n' $CONTENDERS | tac | xargs)
        for who in $order; do
            log "  rep $rep: $who"
            start_proxy "$who" "$workers"
            warm_up "$PROXY_URL"
            wrk_cmd "$PROXY_URL" "$DURATION"
            measure "$layout-r$rep-$who-wrk" wrk "$PROXY_PID" "$base contender=$who kind=steady" -- "${WRK[@]}"
            stop_proxy
        done
        latency_slices "$layout" "$workers" "$rep"
    done
    stop_upstream
}

# start_side_by_side WORKERS: every contender started and warmed up at once, for slices that
# take turns (the idle one costs nothing); their pids and URLs in SIDE_PID and SIDE_URL.
declare -A SIDE_PID SIDE_URL
start_side_by_side() {
    local who
    for who in $CONTENDERS; do
        start_proxy "$who" "$1"
        warm_up "$PROXY_URL"
        SIDE_PID[$who]=$PROXY_PID
        SIDE_URL[$who]=$PROXY_URL
        PROXY_PID=
    done
}

stop_side_by_side() {
    local who
    for who in $CONTENDERS; do stop_pid "${SIDE_PID[$who]}"; done
}

# latency_slices LAYOUT WORKERS REP: open-loop latency of the direct path and of every
# contender in LAT_SLICES short interleaved slices, the contenders running side by side
# (the idle one costs nothing) and the order rotated each slice. On a shared VM the tail
# drifts within seconds; a slice's added latency is taken against the direct slice of the
# same round, seconds apart, rather than one direct run per repetition.
latency_slices() {
    local layout=$1 workers=$2 rep=$3 who s i
    start_side_by_side "$workers"
    SIDE_PID[direct]=$UP_PID
    SIDE_URL[direct]=http://127.0.0.1:9001/
    # shellcheck disable=SC2206 # word splitting of the list is the point
    local paths=(direct $CONTENDERS)
    log "  rep $rep: latency, $LAT_SLICES slice(s) of ${LAT_DURATION}s each: ${paths[*]}"
    for ((s = 1; s <= LAT_SLICES; s++)); do
        for ((i = 0; i < ${#paths[@]}; i++)); do
            who=${paths[(i + s + rep) % ${#paths[@]}]}
            oha_cmd "${SIDE_URL[$who]}" "$LAT_DURATION"
            measure "$layout-r$rep-s$s-$who-oha" oha "${SIDE_PID[$who]}" \
                "layout=$layout workers=$workers rep=$rep slice=$s contender=$who kind=latency" -- "${OHA[@]}"
        done
    done
    stop_side_by_side
}

# (a) the weight changes every SWAP_INTERVAL s (weir, admin API) or every
# NGINX_SWAP_INTERVAL s (nginx, rewrite + reload) under closed-loop load.
scenario_swap() {
    layout_pins P
    log "scenario swap: ${SWAP_DURATION}s under load, weir every ${SWAP_INTERVAL}s, nginx every ${NGINX_SWAP_INTERVAL}s"
    start_upstream "$UPSTREAM_CONF"
    local who
    for who in $CONTENDERS; do
        start_proxy "$who" 1
        warm_up "$PROXY_URL"
        local sw=("${LG_PIN[@]}" timeout $((SWAP_DURATION + 30)) "$PY" "$HERE/lib/swap_weights.py"
            --duration "$SWAP_DURATION" --out "$RAW/swap-$who.json")
        if [[ $who == weir && $WEIR_STANDIN != nginx ]]; then
            sw+=(--mode weir --interval "$SWAP_INTERVAL" --table "$WEIR_TABLE" --admin "127.0.0.1:$WEIR_ADMIN_PORT")
        elif [[ $who == haproxy ]]; then
            # the runtime API changes the weight map without a reload: as often as weir
            sw+=(--mode haproxy --interval "$SWAP_INTERVAL" --socket "$RUNDIR/haproxy/haproxy.sock"
                --map "$RUNDIR/haproxy/weight.map")
        elif [[ $who == traefik ]]; then
            sw+=(--mode traefik --interval "$NGINX_SWAP_INTERVAL" --dynamic "$PROXY_CONF")
        else
            sw+=(--mode nginx --interval "$NGINX_SWAP_INTERVAL" --conf "$PROXY_CONF" --pid "$PROXY_PID")
        fi
        start_bg "swap-$who" "${sw[@]}"
        local swap_pid=$LAST_PID
        wrk_cmd "$PROXY_URL" "$SWAP_DURATION"
        measure "swap-$who-wrk" wrk "$PROXY_PID" "layout=P workers=1 rep=1 contender=$who kind=swap" -- "${WRK[@]}"
        finish_pid "$swap_pid" 30
        [[ -s $RAW/swap-$who.json ]] || echo '{"swaps_failed": -1}' >"$RAW/swap-$who.json"
        "$PY" - "$RESULTS" "$RAW/swap-$who.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sw = json.load(open(sys.argv[2]))
rows[-1]["swap"] = sw
if sw.get("swaps_failed"):
    rows[-1]["void"] = True
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
EOF
        stop_proxy
    done
    stop_upstream
}

# (b) IDLE_CONNS idle keep-alive client connections: memory per connection, for every client
# protocol of IDLE_PROTOCOLS (h1, h2c, h1-tls, h2-tls), each on a freshly started proxy (so
# one protocol's freed memory does not lower the next one's figure).
scenario_idle() {
    layout_pins P
    log "scenario idle: $IDLE_CONNS idle keep-alive connections, protocols $IDLE_PROTOCOLS"
    start_upstream "$UPSTREAM_CONF"
    local who proto port
    for who in $CONTENDERS; do
        for proto in $IDLE_PROTOCOLS; do
            start_proxy "$who" 1 $((IDLE_CONNS + IDLE_SLACK)) 1
            case $proto in
            h1) port=$PROXY_PORT ;;
            h2c) port=$PROXY_H2C_PORT ;;
            h1-tls | h2-tls) port=$PROXY_TLS_PORT ;;
            *) die "unknown idle protocol $proto (h1 h2c h1-tls h2-tls)" ;;
            esac
            warm_up "$PROXY_URL"
            local tag=idle-$who-$proto
            rm -f "$RAW/$tag.ready" "$RAW/$tag.result"
            snap "$PROXY_PID" >"$RAW/$tag.before.json"
            start_bg "$tag" "${LG_PIN[@]}" timeout 300 "$PY" "$HERE/lib/idle_conns.py" \
                --port "$port" -n "$IDLE_CONNS" --hold 120 --proto "$proto" \
                --ready-file "$RAW/$tag.ready" --result-file "$RAW/$tag.result"
            local idle_pid=$LAST_PID i
            for ((i = 0; i < 1800; i++)); do
                [[ -s $RAW/$tag.ready ]] && break
                kill -0 "$idle_pid" 2>/dev/null || break
                sleep 0.1
            done
            [[ -s $RAW/$tag.ready ]] || die "idle_conns.py ($proto) did not open its connections within 180 s"
            # Idle means idle: the connections sit a while before they are weighed, as
            # real idle clients' would (weir releases an HTTP/1.1 connection's buffers
            # after a quiet second, and its allocator returns freed pages within 10 s;
            # nginx frees its buffers at once).
            sleep "$IDLE_SETTLE"
            snap "$PROXY_PID" >"$RAW/$tag.after.json"
            stop_pid "$idle_pid"
            "$PY" "$MEASURE" record --before "$RAW/$tag.before.json" --after "$RAW/$tag.after.json" \
                --tool none --field "layout=P" --field "workers=1" --field "rep=1" --field "contender=$who" \
                --field "kind=idle" --field "proto=$proto" --field "idle=$(cat "$RAW/$tag.ready")" \
                --field "idle_end=$(cat "$RAW/$tag.result" 2>/dev/null || echo null)" >>"$RESULTS"
            stop_proxy
        done
    done
    stop_upstream
}

# (c) 1 MiB responses streamed through the proxy: throughput and memory.
scenario_big() {
    layout_pins P
    log "scenario big: 1 MiB responses, ${DURATION}s closed loop"
    start_upstream "$BIG_UPSTREAM_CONF"
    warm_up "http://127.0.0.1:9001/"
    wrk_cmd "http://127.0.0.1:9001/" "$DURATION"
    measure "big-direct-wrk" wrk "$UP_PID" "layout=P workers=1 rep=1 contender=direct kind=big" -- "${WRK[@]}"
    local who
    for who in $CONTENDERS; do
        start_proxy "$who" 1
        warm_up "$PROXY_URL"
        wrk_cmd "$PROXY_URL" "$DURATION"
        measure "big-$who-wrk" wrk "$PROXY_PID" "layout=P workers=1 rep=1 contender=$who kind=big" -- "${WRK[@]}"
        stop_proxy
    done
    stop_upstream
}

# (d) CPU stalls: while each latency slice runs, a SCHED_FIFO spinner pinned to the proxy's
# CPU takes it away for STALL_US at the start of every STALL_PERIOD_US (lib/stall.c). Both
# proxies run side by side and take turns, order rotated each round, as in latency_slices.
# What it shows: how much of a stall each proxy passes on to requests, and how fast it
# drains the backlog afterwards; the same stall for both, where the VM's own are random.
scenario_stall() {
    layout_pins P
    log "scenario stall: CPU0 taken ${STALL_US} µs in every ${STALL_PERIOD_US} µs, $STALL_ROUNDS slice(s) of ${LAT_DURATION}s per contender"
    local stall_bin=$RUNDIR/stall
    cc -O2 -o "$stall_bin" "$HERE/lib/stall.c" || die "cannot build lib/stall.c"
    chrt -f 50 "$stall_bin" 1 2 1 || die "scenario stall needs SCHED_FIFO (root or CAP_SYS_NICE)"
    start_upstream "$UPSTREAM_CONF"
    start_side_by_side 1
    local who r i
    # shellcheck disable=SC2206 # word splitting of the list is the point
    local paths=($CONTENDERS)
    for ((r = 1; r <= STALL_ROUNDS; r++)); do
        for ((i = 0; i < ${#paths[@]}; i++)); do
            who=${paths[(i + r) % ${#paths[@]}]}
            # the staller outlives the slice by a second; the next slice waits for it to end
            start_bg stall chrt -f 50 taskset -c 0 "$stall_bin" "$STALL_US" "$STALL_PERIOD_US" \
                $((LAT_DURATION * 1000 + 1000)) "$STALL_MIB"
            local stall_pid=$LAST_PID
            oha_cmd "${SIDE_URL[$who]}" "$LAT_DURATION"
            measure "stall-r$r-$who-oha" oha "${SIDE_PID[$who]}" \
                "layout=P workers=1 rep=$r slice=1 contender=$who kind=stall" -- "${OHA[@]}"
            finish_pid "$stall_pid" 5
        done
    done
    stop_side_by_side
    stop_upstream
}

# (e) burst: BURST_CONNS client connections opened at once, one request each in flight
# together, then all closed (lib/burst.py). Memory and open files before, at the peak (all
# answered, connections still open) and after (once open files and RSS have been still for
# 2 s, at most 20 s): what a contender keeps after a reconnect storm, and what it keeps it in
# (fd_kinds: upstream connections left in its pool, client sockets not yet closed, ...).
scenario_burst() {
    layout_pins P
    log "scenario burst: $BURST_CONNS connections at once, then closed"
    start_upstream "$UPSTREAM_CONF"
    local who
    for who in $CONTENDERS; do
        # each request in flight holds a client and an upstream connection
        start_proxy "$who" 1 $((2 * BURST_CONNS + 2048))
        warm_up "$PROXY_URL"
        local tag=burst-$who i
        rm -f "$RAW/$tag.ready"
        snap "$PROXY_PID" --smaps >"$RAW/$tag.before.json"
        start_bg "$tag" "${LG_PIN[@]}" timeout 120 "$PY" "$HERE/lib/burst.py" --port "$PROXY_PORT" \
            -n "$BURST_CONNS" --hold 60 --ready-file "$RAW/$tag.ready"
        local burst_pid=$LAST_PID
        for ((i = 0; i < 900; i++)); do
            [[ -s $RAW/$tag.ready ]] && break
            kill -0 "$burst_pid" 2>/dev/null || break
            sleep 0.1
        done
        [[ -s $RAW/$tag.ready ]] || die "burst.py did not finish its burst within 90 s"
        snap "$PROXY_PID" --smaps >"$RAW/$tag.peak.json"
        # TERM: burst.py closes every connection at once and exits
        finish_pid "$burst_pid" 10
        "$PY" "$MEASURE" settle "$PROXY_PID" --quiet 2 --max 20 --smaps >"$RAW/$tag.after.json"
        local trim='null'
        if [[ $BURST_TRIM == 1 && $who != traefik ]] && command -v gdb >/dev/null; then
            # how much of what is kept is free heap the allocator has not given back: glibc's
            # malloc_trim(0) in the process (gdb attaches for a moment); Go has no malloc
            gdb -p "$PROXY_PID" -batch -ex 'call (int) malloc_trim(0)' >"$RAW/$tag.gdb.log" 2>&1 || true
            trim=$("$PY" "$MEASURE" snap "$PROXY_PID" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["rss_kb"])')
        fi
        "$PY" "$MEASURE" record --before "$RAW/$tag.before.json" --after "$RAW/$tag.after.json" \
            --tool none --field "layout=P" --field "workers=1" --field "rep=1" --field "contender=$who" \
            --field "kind=burst" --field "burst=$(cat "$RAW/$tag.ready")" \
            --field "peak=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("rss_kb", "fds", "threads", "fd_kinds", "smaps")}))' "$RAW/$tag.peak.json")" \
            --field "rss_after_trim_kb=$trim" \
            --field "settle_s=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["settle_s"])' "$RAW/$tag.after.json")" \
            >>"$RESULTS"
        stop_proxy
    done
    stop_upstream
}

write_meta() {
    local weir_rev=${WEIR_REV:-standin}
    if [[ $WEIR_STANDIN != nginx && -z $WEIR_REV ]]; then
        weir_rev=$(git -C "$WEIR_SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
        [[ -n $(git -C "$WEIR_SRC" status --porcelain -- proxy config 2>/dev/null) ]] && weir_rev+="+dirty"
    fi
    "$PY" - "$RAW/meta.json" <<EOF
import json, os, platform, sys
meta = {
    "date": "$(date -u +%FT%TZ)", "host": "$(hostname)", "kernel": platform.release(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
    "ncpu": os.cpu_count(), "quick": "$QUICK" == "1",
    "duration": $DURATION, "reps": $REPS, "warmup": $WARMUP, "conns": $CONNS, "rate": $RATE,
    "lat_slices": $LAT_SLICES, "lat_duration": $LAT_DURATION,
    "swap_duration": $SWAP_DURATION, "swap_interval": $SWAP_INTERVAL,
    "nginx_swap_interval": $NGINX_SWAP_INTERVAL, "idle_conns": $IDLE_CONNS,
    "stall_us": $STALL_US, "stall_period_us": $STALL_PERIOD_US, "stall_mib": $STALL_MIB,
    "stall_rounds": $STALL_ROUNDS,
    "layouts": "$LAYOUTS", "scenarios": "$SCENARIOS", "contenders": "$CONTENDERS",
    "weir": "$([[ $WEIR_STANDIN == nginx ]] && echo "stand-in: nginx" || echo "$WEIR_BIN")",
    "weir_rev": "$weir_rev",
    "nginx": "$(nginx -v 2>&1 | sed 's/.*: //')",
    "haproxy": "$(command -v haproxy >/dev/null && haproxy -v 2>/dev/null | head -1 | awk '{print $3}')",
    "traefik": "$([[ -x $TRAEFIK_BIN ]] && "$TRAEFIK_BIN" version 2>/dev/null | awk '/^Version:/ {print $2}')",
    "idle_protocols": "$IDLE_PROTOCOLS", "idle_settle_s": $IDLE_SETTLE, "burst_conns": $BURST_CONNS, "wrk": "$(wrk -v 2>&1 | head -1 | awk '{print $2}')",
    "oha": "$(oha --version 2>/dev/null | awk '{print $2}')",
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
}

main() {
    ensure_tools
    build_weir
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    (($(ulimit -n) > IDLE_CONNS + IDLE_SLACK)) || log "warning: ulimit -n $(ulimit -n) is low for $IDLE_CONNS idle connections"
    if [[ " $SCENARIOS " == *" idle "* && " $CONTENDERS " == *" haproxy "* ]]; then
        # HAProxy will not start when its maxconn needs more descriptors than the limit
        # (two per connection, client and server side, whether used or not): every contender
        # then holds as many idle connections as HAProxy can, the same count for all
        local fit=$((($(ulimit -n) - 200) / 2 - IDLE_SLACK))
        if ((IDLE_CONNS > fit)); then
            log "idle scenario: $fit connections, not $IDLE_CONNS: HAProxy's maxconn needs 2 descriptors each and ulimit -n is $(ulimit -n)"
            IDLE_CONNS=$fit
        fi
    fi

    local stamp
    stamp=$(date +%Y%m%d-%H%M%S)
    RAW=$HERE/results/raw/$stamp
    mkdir -p "$RAW"
    RESULTS=$RAW/results.jsonl
    : >"$RESULTS"
    RUNDIR=$(mktemp -d /tmp/weir-bench.XXXXXX)
    chmod 755 "$RUNDIR"
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    local p
    local who
    for p in "${UP_PORTS[@]}" "$WEIR_ADMIN_PORT"; do
        port_free "$p" || die "127.0.0.1:$p is already in use: stop what listens there or change the *_PORT variables"
    done
    for who in $CONTENDERS; do
        for p in "${BASE_PORT[$who]}" $((BASE_PORT[$who] + 100)) $((BASE_PORT[$who] + 200)); do
            port_free "$p" || die "127.0.0.1:$p ($who) is already in use: stop what listens there or change the *_PORT variables"
        done
    done
    make_cert "$RUNDIR/cert"
    write_meta
    log "raw outputs: $RAW"

    route_check
    local l s
    for l in $LAYOUTS; do steady_layout "$l"; done
    for s in $SCENARIOS; do
        case $s in
        swap) scenario_swap ;;
        idle) scenario_idle ;;
        big) scenario_big ;;
        stall) scenario_stall ;;
        burst) scenario_burst ;;
        *) die "unknown scenario $s (swap idle big stall burst)" ;;
        esac
    done

    local md
    local suffix=""
    [[ $QUICK == 1 ]] && suffix=-quick
    md=$HERE/results/$(date +%Y-%m-%d)-$(hostname)$suffix.md
    local n=2 base=${md%.md}
    while [[ -e $md ]]; do md=$base-$n.md; n=$((n + 1)); done
    "$PY" "$HERE/lib/report.py" --raw "$RAW" >"$md"
    cat "$md"
    log "written: ${md#"$ROOT"/}"
}

main "$@"
