# shellcheck shell=bash
# lib/common.sh: process control, readiness polls and config rendering for run.sh.
# Sourced, not run. Every process started here is tracked in PIDS and stopped by cleanup.

PIDS=()
LAST_PID=

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# start_bg NAME CMD...: run CMD in the background, output to $RAW/NAME.log; pid in LAST_PID.
start_bg() {
    local name=$1
    shift
    "$@" >>"$RAW/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# finish_pid PID SECONDS: give PID up to SECONDS (bounded, polled) to end on its own, then
# stop_pid it. Never fails.
finish_pid() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$1"
}

# stop_pid PID: TERM, then KILL after 5 s; reaps it. Never fails.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored TERM for 5 s: KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
}

# http_code URL [curl args...]: the status code, or 000 when nothing answers.
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

# wait_http URL PID [SECONDS]: poll URL until 200 while PID lives; bounded.
wait_http() {
    local url=$1 pid=$2 secs=${3:-15} i
    for ((i = 0; i < secs * 10; i++)); do
        [[ $(http_code "$url") == 200 ]] && return 0
        kill -0 "$pid" 2>/dev/null || die "process $pid died before $url answered (see $RAW/*.log)"
        sleep 0.1
    done
    die "$url did not answer 200 within ${secs}s"
}

# wait_listen PORT PID [SECONDS]: poll until something accepts on 127.0.0.1:PORT while PID lives.
wait_listen() {
    local port=$1 pid=$2 secs=${3:-15} i
    for ((i = 0; i < secs * 10; i++)); do
        port_free "$port" || return 0
        kill -0 "$pid" 2>/dev/null || die "process $pid died before it listened on $port (see $RAW/*.log)"
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$port ${secs}s after the start"
}

# assert_loopback_only PID: every socket PID listens on is on 127.0.0.1 (a new flag with a
# 0.0.0.0 default must not slip a benchmark listener onto the network).
assert_loopback_only() {
    local pid=$1 addrs bad
    command -v ss >/dev/null || return 0
    addrs=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$pid," 'index($0, p) {print $4}')
    [[ -n $addrs ]] || die "process $pid listens on nothing (ss found no socket)"
    bad=$(grep -v '^127\.' <<<"$addrs" || true)
    [[ -z $bad ]] || die "process $pid listens beyond loopback: $(echo "$bad" | xargs)"
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port_free PORT: after a stop, the port must be free before the next start; bounded.
wait_port_free() {
    local i
    for ((i = 0; i < 100; i++)); do
        port_free "$1" && return 0
        sleep 0.1
    done
    die "port $1 still busy 10 s after its process was stopped"
}

# render_nginx_proxy DIR WORKERS PORT [WORKER_CONNECTIONS] [TLS]: the reference proxy conf,
# from the shared template with its placeholders filled. Pinning is done with taskset, so the
# affinity line stays empty; reuseport spreads connections over 2 workers as the kernel would
# with several ingress-nginx workers. Only the listen port and, for the idle and burst
# scenarios, worker_connections (8192 cannot hold 10,000 clients) differ from the template;
# with TLS=1 (idle scenario) a TLS listener (PORT+100, `ssl http2`: ALPN h2 and http/1.1)
# and an h2c one (PORT+200, `http2`: prior knowledge only) are added beside the plain one.
render_nginx_proxy() {
    local dir=$1 workers=$2 port=$3 wc=${4:-} tls=${5:-0} reuse=""
    ((workers > 1)) && reuse=reuseport
    mkdir -p "$dir/tmp"
    local wc_expr="s|worker_connections 8192;|worker_connections 8192;|"
    [[ -n $wc ]] && wc_expr="s|worker_connections 8192;|worker_connections $wc;|"
    # comment lines (starting with #) keep their placeholders
    sed -e "/^#/!s|@WORKERS@|$workers|" \
        -e "/^#/!s|@AFFINITY_LINE@|# affinity: set by taskset in run.sh|" \
        -e "/^#/!s|@REUSEPORT@|$reuse|" \
        -e "/^#/!s|@RUNDIR@|$dir|g" \
        -e "s|listen 127.0.0.1:8080 |listen 127.0.0.1:$port |" \
        -e "$wc_expr" \
        "$NGINX_TMPL" >"$dir/nginx.conf"
    grep -q "listen 127.0.0.1:$port " "$dir/nginx.conf" || die "template listen line changed: cannot set port $port"
    if [[ $tls == 1 ]]; then
        sed -i -e "/listen 127.0.0.1:$port /a\\
        listen 127.0.0.1:$((port + 100)) ssl http2 backlog=4096 $reuse;\\
        listen 127.0.0.1:$((port + 200)) http2 backlog=4096 $reuse;\\
        ssl_certificate $RUNDIR/cert/cert.pem;\\
        ssl_certificate_key $RUNDIR/cert/key.pem;" "$dir/nginx.conf"
    fi
    chmod -R a+rX "$dir"
}

# render_upstream DIR CONF: an upstream conf with @RUNDIR@ filled.
render_upstream() {
    local dir=$1 conf=$2
    mkdir -p "$dir/tmp" "$dir/www"
    sed -e "s|@RUNDIR@|$dir|g" "$conf" >"$dir/nginx.conf"
    chmod -R a+rX "$dir"
}

# set_pins PROXY_CPU LOADGEN_CPU UPSTREAM_CPU ("-" = unpinned): the taskset prefixes, as arrays
# so that an unpinned command gets no prefix at all.
# shellcheck disable=SC2034 # the arrays are used by run.sh
set_pins() {
    PROXY_PIN=() LG_PIN=() UP_PIN=()
    [[ $1 == - ]] || PROXY_PIN=(taskset -c "$1")
    [[ $2 == - ]] || LG_PIN=(taskset -c "$2")
    [[ $3 == - ]] || UP_PIN=(taskset -c "$3")
}

# render_tmpl TEMPLATE OUT TLS KEY=VALUE...: a peer's config from its template in
# ../peers/: every @KEY@ replaced by VALUE; lines starting with #TLS# or #H2C# kept (marker
# removed) when TLS is 1 (the idle scenario's TLS and h2c listeners), dropped otherwise.
render_tmpl() {
    local tmpl=$1 out=$2 tls=$3 kv
    shift 3
    local args=()
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    if [[ $tls == 1 ]]; then
        args+=(-e 's/^#TLS#//' -e 's/^#H2C#//')
    else
        args+=(-e '/^#TLS#/d' -e '/^#H2C#/d')
    fi
    sed "${args[@]}" "$tmpl" >"$out"
    ! grep -n '@[A-Z_]*@' "$out" | grep -v '^[0-9]*:#' >&2 || die "unfilled placeholder in $out"
}

# make_cert DIR: a self-signed ECDSA P-256 certificate for 127.0.0.1 / bench (the idle
# scenario's TLS listeners): DIR/cert.pem, DIR/key.pem and DIR/both.pem (HAProxy's form).
make_cert() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=bench -addext "subjectAltName=DNS:bench,IP:127.0.0.1" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
    cat "$dir/cert.pem" "$dir/key.pem" >"$dir/both.pem"
    chmod a+r "$dir"/*.pem
}
