#!/usr/bin/env bash
# Live disclosure overhead, one run on this machine (issue 18): the same load generator (loadgen,
# same settings, same mutual-TLS client stack) drives
#   (a) POST /v1/disclosures through the gateway under a `delivery = live` grant, which decides,
#       asks the reference source (poortwachter-source) for the two released fields, checks the
#       answer, makes the audit record durable (SQLite) and answers; and
#   (b) the same field query sent straight to the reference source, presenting the gateway's own
#       client certificate (the only one the source answers).
# It reports latency p50/p99 and CPU per request (user + system time of the server processes over
# the run, divided by the answered requests) for both, and their ratio, into BENCHMARKS.md (between
# the live-bench markers; every other section is left alone).
#
# Usage: bench/live.sh
# Settings (environment): PROFILE=release DURATION=10s WARMUP=3s CONCURRENCY=16 THREADS=1
#   GATEWAY_PORT=18454 SOURCE_PORT=18455 NOTE="free text recorded with the figures" KEEP=1
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PROFILE=${PROFILE:-release}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONCURRENCY=${CONCURRENCY:-16}
THREADS=${THREADS:-1}
GATEWAY_PORT=${GATEWAY_PORT:-18454}
SOURCE_PORT=${SOURCE_PORT:-18455}
NOTE=${NOTE:-}
CERTS=$ROOT/certs-example
SDD=00000001823288444000
UWV=00000001003214345000
GATEWAY_OIN=00000001555555555000

case $PROFILE in
    release) BIN=$ROOT/target/release; FLAG=--release ;;
    dev) BIN=$ROOT/target/debug; FLAG="" ;;
    *) BIN=$ROOT/target/$PROFILE; FLAG="--profile $PROFILE" ;;
esac
# shellcheck disable=SC2086
cargo build --quiet $FLAG -p gateway -p source -p loadgen --bins
LG=$BIN/loadgen

WORK=$(mktemp -d /tmp/poortwachter-live-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }

# CPU time (clock ticks, user + system, all threads) of a process.
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# ------------------------------------------------------------------ the reference source
python3 - "$WORK" <<'PY'
import datetime, json, sys
work = sys.argv[1]
end = (datetime.date.today() + datetime.timedelta(days=45)).isoformat()
json.dump({"records": [{"subject": "111222333", "fields": {
    "ww_end_date": end, "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898",
    "partner_income_monthly": 1450, "birth_date": "1984-03-12"}}]},
    open(f"{work}/records.json", "w"))
PY
cat >"$WORK/source.toml" <<EOF2
listen = "127.0.0.1:$SOURCE_PORT"
allowed_clients = ["$GATEWAY_OIN"]
data = "$WORK/records.json"
[tls]
cert = "$CERTS/server.pem"
key = "$CERTS/server-key.pem"
client_ca = "$CERTS/ca.pem"
EOF2
say "reference source on 127.0.0.1:$SOURCE_PORT"
POORTWACHTER_SOURCE_LOG=warn "$BIN/poortwachter-source" --config "$WORK/source.toml" >"$WORK/source.out" 2>"$WORK/source.log" &
SOURCE_PID=$!
PIDS+=("$SOURCE_PID")

# ------------------------------------------------------------------ the gateway (live covenant)
CONFIG=$("$LG" --write-demo-config "$WORK/gateway" --listen "127.0.0.1:$GATEWAY_PORT" \
    --certs "$CERTS" --covenant "$ROOT/schemas/examples/covenant-drechtsteden-live.toml")
# As bench/compare.sh: the benchmark measures the gateway's work, not its per-organisation rate
# limit (which would answer most requests with 429 at these rates).
cat >>"$CONFIG" <<EOF2

[limits]
rate_per_org_per_sec = 0

[source_client]
cert = "$CERTS/gateway-client.pem"
key = "$CERTS/gateway-client-key.pem"

[[sources]]
oin = "$UWV"
url = "https://127.0.0.1:$SOURCE_PORT"
ca = "$CERTS/ca.pem"
server_name = "localhost"
EOF2
say "poortwachter (SQLite, durable audit) on 127.0.0.1:$GATEWAY_PORT"
RUST_LOG=warn "$BIN/poortwachter" serve --config "$CONFIG" >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
"$LG" --addr "127.0.0.1:$GATEWAY_PORT" --ca "$CERTS/ca.pem" --cert "$CERTS/sdd.pem" \
    --key "$CERTS/sdd-key.pem" --wait-ready --timeout 60s --json >/dev/null

FIELDS='["ww_end_date", "adviser_contact"]'
printf '{"subject": {"bsn": "111222333"}, "purpose": "ww-end-signal", "fields": %s}\n' \
    "$FIELDS" >"$WORK/disclosure.json"
printf '{"subject": "111222333", "fields": %s, "purpose": "ww-end-signal", "requester_oin": "%s", "covenant": "bench", "disclosure_id": "dsc_bench"}\n' \
    "$FIELDS" "$SDD" >"$WORK/query.json"

# One closed-loop run: NAME PORT CERT KEY PATH BODY PIDS...
run() {
    local name=$1 port=$2 cert=$3 key=$4 path=$5 body=$6
    shift 6
    local before=() p i=0 total=0
    for p in "$@"; do before+=("$(proc_ticks "$p")"); done
    say "$name: concurrency $CONCURRENCY for $DURATION (+$WARMUP warm-up)"
    "$LG" --addr "127.0.0.1:$port" --ca "$CERTS/ca.pem" --cert "$cert" --key "$key" \
        --threads "$THREADS" --path "$path" --body "$body" --concurrency "$CONCURRENCY" \
        --warmup "$WARMUP" --duration "$DURATION" --json >"$WORK/$name.json"
    local ticks=()
    for p in "$@"; do ticks+=("$(($(proc_ticks "$p") - ${before[$i]}))"); i=$((i + 1)); done
    printf '%s\n' "${ticks[@]}" >"$WORK/$name.ticks"
}

# Warm-up covers connection set-up; the warm-up's CPU is counted too, divided over all answered
# requests (warm-up included), so both sides are charged alike.
run gateway "$GATEWAY_PORT" "$CERTS/sdd.pem" "$CERTS/sdd-key.pem" /v1/disclosures \
    "$WORK/disclosure.json" "$GATEWAY_PID" "$SOURCE_PID"
run direct "$SOURCE_PORT" "$CERTS/gateway-client.pem" "$CERTS/gateway-client-key.pem" \
    /v1/field-queries "$WORK/query.json" "$SOURCE_PID"

python3 - "$WORK" "$ROOT/BENCHMARKS.md" "$(getconf CLK_TCK)" "$PROFILE" "$CONCURRENCY" \
    "$DURATION" "$WARMUP" "$(nproc)" "$NOTE" <<'PY'
import json, sys, datetime
work, bench, clk, profile, conc, dur, warm, cpus, note = sys.argv[1:]
clk = int(clk)
def load(name):
    r = json.load(open(f"{work}/{name}.json"))
    ticks = [int(t) for t in open(f"{work}/{name}.ticks").read().split()]
    n = r["ok"] + r.get("warmup_requests", 0)
    return r, ticks, max(r["ok"], 1)
g, gt, gn = load("gateway")
d, dt, dn = load("direct")
assert g["errors"] == 0 and d["errors"] == 0, (g["failures"], d["failures"])
# CPU per request (microseconds): ticks over the measured + warm-up window, per measured request.
us = lambda ticks, n: ticks / clk * 1e6 / n
g_gw, g_src = us(gt[0], gn), us(gt[1], gn)
d_src = us(dt[0], dn)
rows = [
    ("through the gateway (live)", g["latency_ms"]["p50"], g["latency_ms"]["p99"], g["throughput_rps"], g_gw + g_src, f"{g_gw:.0f} gateway + {g_src:.0f} source"),
    ("straight to the source", d["latency_ms"]["p50"], d["latency_ms"]["p99"], d["throughput_rps"], d_src, f"{d_src:.0f} source"),
]
lines = [
    "<!-- live-bench:begin (bench/live.sh writes this section) -->",
    "## Live disclosure: the gateway's overhead over calling the source directly",
    "",
    f"`bench/live.sh`, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {profile} build, {cpus} CPUs, "
    f"loadgen at concurrency {conc} for {dur} (+{warm} warm-up), one run. The gateway decides, asks "
    "the reference source for the two released fields over mutual TLS, checks the answer, makes "
    "the audit record durable (SQLite) and answers; the direct call is the same field query from "
    "the same client to the same source. CPU per request is the servers' user + system time over "
    "the run (warm-up included) divided by the measured requests.",
    "",
]
if note:
    lines += [f"**{note}**", ""]
lines += [
    "| path | p50 ms | p99 ms | req/s | CPU µs/request |",
    "|---|---|---|---|---|",
]
for name, p50, p99, rps, cpu, detail in rows:
    lines.append(f"| {name} | {p50:.2f} | {p99:.2f} | {rps:.0f} | {cpu:.0f} ({detail}) |")
lines += [
    "",
    f"Ratio gateway / direct: p50 ×{g['latency_ms']['p50'] / max(d['latency_ms']['p50'], 1e-9):.1f}, "
    f"p99 ×{g['latency_ms']['p99'] / max(d['latency_ms']['p99'], 1e-9):.1f}, "
    f"CPU per request ×{(g_gw + g_src) / max(d_src, 1e-9):.1f} (whole path) / "
    f"×{g_gw / max(d_src, 1e-9):.1f} (the gateway alone, against the source's own cost).",
    "<!-- live-bench:end -->",
]
section = "\n".join(lines) + "\n"
text = open(bench).read()
b, e = "<!-- live-bench:begin", "<!-- live-bench:end -->"
if b in text:
    start = text.index(b)
    end = text.index(e) + len(e) + 1
    text = text[:start] + section + text[end:]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(bench, "w").write(text)
print(section)
PY
