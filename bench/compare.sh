#!/usr/bin/env bash
# Side-by-side benchmark, one run on this machine: nginx terminating mutual TLS with the same
# certificates and answering a fixed disclosure-sized JSON body (the floor any mutual-TLS gateway
# pays) against poortwachter disclosures with durable audit on SQLite (and on PostgreSQL when the
# build has that backend), all driven by the same `loadgen` settings. Both servers also answer
# `GET /healthz` under the same load, which measures their TLS and HTTP stacks alone, and every run
# records the hypervisor's steal time (how contended this shared machine was). Writes its own
# section of BENCHMARKS.md (between the compare markers) and leaves every other section alone.
#
# Usage: bench/compare.sh
# Settings (environment): DURATION=10s WARMUP=3s CONCURRENCY=32 RATE=1000 THREADS=1
#   NGINX_PORT=18443 GATEWAY_PORT=18444 PG_GATEWAY_PORT=18445
#   PG_URL (an existing PostgreSQL; otherwise, when the build has the backend, a throw-away server
#   is started on PG_PORT=54341) KEEP=1 (keep the work directory). Needs root (or sudo) only to
#   install nginx / sqlite3 / postgresql when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-1000}
THREADS=${THREADS:-1}
NGINX_PORT=${NGINX_PORT:-18443}
GATEWAY_PORT=${GATEWAY_PORT:-18444}
PG_GATEWAY_PORT=${PG_GATEWAY_PORT:-18445}
PG_PORT=${PG_PORT:-54341}
PG_URL=${PG_URL:-}
CERTS=$ROOT/certs-example
COVENANT=$ROOT/schemas/examples/covenant-drechtsteden.toml

WORK=$(mktemp -d /tmp/poortwachter-bench.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS"
PIDS=()
PG_SERVER_DIR=""

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if declare -F stop_postgres >/dev/null; then stop_postgres; fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*" >&2; }

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

# A package from Debian, when its command is missing. Services are not started by the install
# (we run our own nginx on loopback).
need() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null && return 0
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "$@"; do
        if as_root apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
            { as_root apt-get update -q >/dev/null 2>&1 &&
                as_root apt-get install -y -q "$pkg" >/dev/null 2>&1; }; then
            command -v "$cmd" >/dev/null && return 0
        fi
    done
    echo "cannot install $cmd ($*)" >&2
    exit 1
}

need nginx nginx-light nginx
need sqlite3 sqlite3
need python3 python3

say "building poortwachter and loadgen (release)"
cargo build --release -q -p gateway -p loadgen
PW=$ROOT/target/release/poortwachter
LG=$ROOT/target/release/loadgen

# loadgen against one server: common options, then the caller's.
lg() {
    local port=$1
    shift
    "$LG" --addr "127.0.0.1:$port" --ca "$CERTS/ca.pem" --cert "$CERTS/sdd.pem" \
        --key "$CERTS/sdd-key.pem" --certs "$CERTS" --threads "$THREADS" "$@"
}

now_ns() { date +%s%N; }

# Stop a server this script started, and forget it.
stop() {
    local pid=$1 keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Sum of VmRSS/VmHWM (kB) of a process and its children (nginx workers).
proc_kb() {
    local field=$1 pid=$2 total=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# CPU time (clock ticks, user + system, all threads) of a process and its children.
proc_ticks() {
    local pid=$1 total=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
    done
    echo "$total"
}

# Peak resident memory (kB, with children) of PID while the command runs, written to the file
# $1; the command's output goes to stdout. The kernel keeps the peak itself (VmHWM): it is reset
# before the command through /proc/PID/clear_refs ("5" resets the peak RSS), so nothing polls the
# server while its latency is being measured (a sampling loop forks several processes every few
# hundred milliseconds on the same two cores) and no short peak is missed between samples. For
# several processes (nginx master + workers) the peaks are summed, which is never less than the
# peak of the sum. Where the reset is not permitted, VmHWM is the peak since start: an upper bound.
with_peak_rss() {
    local out=$1 pid=$2 p
    shift 2
    for p in $pid $(pgrep -P "$pid" || true); do
        echo 5 2>/dev/null >"/proc/$p/clear_refs" || true
    done
    "$@"
    proc_kb VmHWM "$pid" >"$out"
}

# CPU time the hypervisor gave to other guests while this VM wanted to run (steal, clock ticks
# summed over all CPUs): how contended the machine was during a run.
steal_ticks() { awk '$1 == "cpu" {print $9}' /proc/stat; }

# One closed-loop load run with its CPU accounting: the generator's JSON report goes to REPORT;
# the server's CPU time (with children), the generator's own and the steal time during the run go
# to CPU (JSON). REPORT CPU PID PORT [loadgen options]
measured_run() {
    local report=$1 cpu=$2 pid=$3 ticks_before steal_before generator gen_user gen_sys
    shift 3
    ticks_before=$(proc_ticks "$pid")
    steal_before=$(steal_ticks)
    generator=$( { TIMEFORMAT='%U %S'; time lg "$@" --json >"$report"; } 2>&1 | tail -n 1)
    read -r gen_user gen_sys <<<"$generator"
    printf '{"server_ticks": %s, "clk_tck": %s, "generator_user_s": %s, "generator_sys_s": %s, "steal_ticks": %s}\n' \
        "$(($(proc_ticks "$pid") - ticks_before))" "$(getconf CLK_TCK)" "$gen_user" "$gen_sys" \
        "$(($(steal_ticks) - steal_before))" >"$cpu"
}

# The same stack without the application: GET /healthz with the throughput run's settings, so the
# cost of TLS and HTTP alone (nginx + OpenSSL vs rustls + hyper + axum) is measured apart from the
# disclosure's own work. NAME PORT PID
drive_healthz() {
    local name=$1 port=$2 pid=$3
    say "$name: GET /healthz at concurrency $CONCURRENCY for $DURATION (+$WARMUP warm-up)"
    measured_run "$RESULTS/$name-healthz.json" "$RESULTS/$name-healthz-cpu.json" "$pid" "$port" \
        --path /healthz --method GET --concurrency "$CONCURRENCY" --warmup "$WARMUP" \
        --duration "$DURATION"
}

# The gateway's Prometheus text (GET /metrics) into a file: PORT FILE.
metrics() {
    lg "$1" --path /metrics --method GET --capture "$2" >/dev/null
}

# The two load runs against one server, plus memory: NAME PORT PID [audit-count command].
drive() {
    local name=$1 port=$2 pid=$3
    shift 3
    local before="" after=""
    if [[ $# -gt 0 ]]; then before=$("$@"); fi
    say "$name: fixed concurrency $CONCURRENCY for $DURATION (+$WARMUP warm-up)"
    measured_run "$RESULTS/$name-throughput.json" "$RESULTS/$name-cpu.json" "$pid" "$port" \
        --concurrency "$CONCURRENCY" --warmup "$WARMUP" --duration "$DURATION"
    if [[ $# -gt 0 ]]; then after=$("$@"); fi
    say "$name: fixed rate $RATE/s for $DURATION (+$WARMUP warm-up)"
    # The gateway's own view of the rate run: its /metrics before and after (how long requests
    # waited for their audit records, how long the commits took).
    if [[ $# -gt 0 ]]; then metrics "$port" "$RESULTS/$name-metrics-before-rate.txt"; fi
    local hwm_before_rate steal_rate_before
    hwm_before_rate=$(proc_kb VmHWM "$pid")
    steal_rate_before=$(steal_ticks)
    with_peak_rss "$RESULTS/$name-rss-at-rate.kb" "$pid" \
        lg "$port" --rate "$RATE" --concurrency "$CONCURRENCY" --warmup "$WARMUP" \
        --duration "$DURATION" --json >"$RESULTS/$name-rate.json"
    echo $(($(steal_ticks) - steal_rate_before)) >"$RESULTS/$name-rate-steal.ticks"
    if [[ $# -gt 0 ]]; then metrics "$port" "$RESULTS/$name-metrics-after-rate.txt"; fi
    local hwm_rate
    hwm_rate=$(cat "$RESULTS/$name-rss-at-rate.kb")
    echo $((hwm_before_rate > hwm_rate ? hwm_before_rate : hwm_rate)) >"$RESULTS/$name-hwm.kb"
    proc_kb VmRSS "$pid" >"$RESULTS/$name-rss-after.kb"
    if [[ -n "$before" ]]; then
        printf '{"before": %s, "after": %s}\n' "$before" "$after" >"$RESULTS/$name-audit.json"
    fi
}

wait_ready() { # PORT SINCE_NS [TIMEOUT] → ready_ms on stdout
    lg "$1" --wait-ready --since-unix-ns "$2" --timeout "${3:-20s}" --json | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["ready_ms"])'
}

# ---------------------------------------------------------------- poortwachter on SQLite
say "poortwachter (SQLite, durable audit) on 127.0.0.1:$GATEWAY_PORT"
CONFIG=$("$LG" --write-demo-config "$WORK/sqlite" --listen "127.0.0.1:$GATEWAY_PORT" \
    --certs "$CERTS" --covenant "$COVENANT")
# The benchmark measures the gateway's work, not its per-organisation rate limit (which would
# answer most requests with 429 at these rates).
printf '\n[limits]\nrate_per_org_per_sec = 0\n' >>"$CONFIG"
DB=$WORK/sqlite/poortwachter.db
start=$(now_ns)
"$PW" serve --config "$CONFIG" 2>"$WORK/gateway-sqlite.log" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_ready "$GATEWAY_PORT" "$start" >"$RESULTS/sqlite-ready.ms"
lg "$GATEWAY_PORT" --setup-demo --capture "$WORK/disclosure.json" >&2
wc -c <"$WORK/disclosure.json" | tr -d ' ' >"$RESULTS/body-bytes.txt"
audit_rows() { sqlite3 "$DB" 'SELECT count(*) FROM audit_log'; }
drive sqlite "$GATEWAY_PORT" "$GW_PID" audit_rows
drive_healthz sqlite "$GATEWAY_PORT" "$GW_PID"
stop "$GW_PID"

# ---------------------------------------------------------------- poortwachter on PostgreSQL
# First ask the build whether it has the backend at all: `serve` with a postgres:// URL to a
# closed port either refuses the URL (no backend) or fails to connect (backend present).
say "poortwachter (PostgreSQL)"
pg_config() { # URL OUT (the server is on loopback: plaintext, which the gateway allows only there)
    sed -e "s|^url = .*|url = \"$1\"\nsslmode = \"disable\"|" \
        -e "s|^listen = .*|listen = \"127.0.0.1:$PG_GATEWAY_PORT\"|" "$CONFIG" >"$2"
}
pg_config "postgres://poortwachter@127.0.0.1:1/poortwachter" "$WORK/sqlite/postgres-probe.toml"
timeout 10 "$PW" serve --config "$WORK/sqlite/postgres-probe.toml" \
    >"$WORK/gateway-postgres-probe.log" 2>&1 || true
PG_SERVER_RUN=()
start_postgres() { # a throw-away PostgreSQL on loopback, as tests/run-all.sh does
    local bin="" d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] && bin=$d && break
    done
    if [[ -z $bin ]]; then
        need pg_ctlcluster postgresql
        for d in /usr/lib/postgresql/*/bin; do
            [[ -x $d/initdb ]] && bin=$d && break
        done
    fi
    PG_SERVER_DIR=$(mktemp -d /tmp/poortwachter-bench-pg.XXXXXX)
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home "$PG_SERVER_DIR" postgres
        chown postgres "$PG_SERVER_DIR"
        PG_SERVER_RUN=(runuser -u postgres --)
    fi
    PG_SERVER_BIN=$bin
    "${PG_SERVER_RUN[@]}" "$bin/initdb" -D "$PG_SERVER_DIR/data" -U postgres --auth=trust -E UTF8 \
        >/dev/null
    "${PG_SERVER_RUN[@]}" "$bin/pg_ctl" -D "$PG_SERVER_DIR/data" -l "$PG_SERVER_DIR/log" -w \
        -o "-p $PG_PORT -k $PG_SERVER_DIR -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}
stop_postgres() {
    [[ -n $PG_SERVER_DIR ]] || return 0
    "${PG_SERVER_RUN[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$PG_SERVER_DIR/data" -m fast stop \
        >/dev/null 2>&1 || true
    rm -rf "$PG_SERVER_DIR"
    PG_SERVER_DIR=""
}

if grep -qi "unsupported database url" "$WORK/gateway-postgres-probe.log"; then
    echo "not available in this build" >"$RESULTS/postgres.status"
else
    [[ -n $PG_URL ]] || start_postgres
    pg_config "$PG_URL" "$WORK/sqlite/postgres.toml"
    start=$(now_ns)
    "$PW" serve --config "$WORK/sqlite/postgres.toml" 2>"$WORK/gateway-postgres.log" &
    PG_PID=$!
    PIDS+=("$PG_PID")
    if wait_ready "$PG_GATEWAY_PORT" "$start" 20s >"$RESULTS/postgres-ready.ms"; then
        lg "$PG_GATEWAY_PORT" --setup-demo --capture "$WORK/disclosure-postgres.json" >&2
        if command -v psql >/dev/null; then
            pg_rows() { psql "$PG_URL" -Atc 'SELECT count(*) FROM audit_log'; }
            drive postgres "$PG_GATEWAY_PORT" "$PG_PID" pg_rows
        else
            drive postgres "$PG_GATEWAY_PORT" "$PG_PID"
        fi
        drive_healthz postgres "$PG_GATEWAY_PORT" "$PG_PID"
        echo "measured" >"$RESULTS/postgres.status"
    else
        echo "did not start: $(tail -n 1 "$WORK/gateway-postgres.log" | cut -c1-200)" \
            >"$RESULTS/postgres.status"
        rm -f "$RESULTS/postgres-ready.ms"
    fi
    stop "$PG_PID"
    stop_postgres
fi
echo "PostgreSQL: $(cat "$RESULTS/postgres.status")" >&2

# ---------------------------------------------------------------- nginx, the floor
say "nginx (mutual TLS, fixed $(wc -c <"$WORK/disclosure.json")-byte body) on 127.0.0.1:$NGINX_PORT"
mkdir -p "$WORK/nginx"
python3 - "$WORK/nginx" "$NGINX_PORT" "$CERTS" "$WORK/disclosure.json" <<'EOF'
import sys, pathlib
work, port, certs, body_file = sys.argv[1:]
body = pathlib.Path(body_file).read_text().strip()
if "$" in body:
    sys.exit("the captured body contains '$', which nginx would expand")
body = body.replace("\\", "\\\\").replace("'", "\\'")
conf = f"""# generated by bench/compare.sh
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs}/server.pem;
        ssl_certificate_key {certs}/server-key.pem;
        ssl_client_certificate {certs}/ca.pem;
        ssl_crl {certs}/crl.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /healthz {{ default_type text/plain; return 200 'ok'; }}
        location / {{ default_type application/json; return 200 '{body}'; }}
    }}
}}
"""
pathlib.Path(work, "nginx.conf").write_text(conf)
EOF
start=$(now_ns)
nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>>"$WORK/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_ready "$NGINX_PORT" "$start" >"$RESULTS/nginx-ready.ms"
drive nginx "$NGINX_PORT" "$NGINX_PID"
drive_healthz nginx "$NGINX_PORT" "$NGINX_PID"
stop "$NGINX_PID"

# ---------------------------------------------------------------- BENCHMARKS.md
say "writing BENCHMARKS.md"
lscpu >"$RESULTS/lscpu.txt"
free -m >"$RESULTS/free.txt"
df -T "$WORK" | awk 'NR == 2 {print $2 " on " $1}' >"$RESULTS/disk.txt"
uptime >"$RESULTS/uptime.txt"
nginx -v 2>"$RESULTS/nginx-version.txt" || true
rustc --version >"$RESULTS/rustc.txt"
git -C "$ROOT" rev-parse --short HEAD >"$RESULTS/commit.txt" 2>/dev/null || echo unknown >"$RESULTS/commit.txt"
# Uncommitted changes other than this script's own output (BENCHMARKS.md) mark the run.
git -C "$ROOT" status --porcelain -- . ':!BENCHMARKS.md' 2>/dev/null | grep -q . \
    && echo dirty >"$RESULTS/dirty.txt" || true
echo "DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY RATE=$RATE THREADS=$THREADS" \
    >"$RESULTS/settings.txt"
python3 "$ROOT/bench/report.py" "$RESULTS" "$ROOT/BENCHMARKS.md"
echo "BENCHMARKS.md updated (section \"Disclosure path vs nginx floor\")." >&2
