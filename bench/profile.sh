#!/usr/bin/env bash
# Profile the gateway on the disclosure path: start poortwachter (release build, demo
# configuration, SQLite, rate limit off), drive permitted disclosures with `loadgen` at fixed
# concurrency, record the gateway with `perf record --call-graph dwarf` once warmed up, and write
#   target/profile/breakdown.md   the share of CPU per tracked cost (bench/breakdown.py)
#   target/profile/perf.script    the samples as text (`perf script`)
#   target/profile/stacks.folded  the samples as folded stacks (input for any flamegraph tool)
#   target/profile/flamegraph.svg when `inferno-flamegraph` is installed (`cargo install inferno`)
# This is how the "where the time goes" tables in BENCHMARKS.md are made.
#
# Usage: bench/profile.sh
# Settings (environment): CONCURRENCY=32 WARMUP=2 (s) SECONDS_RECORDED=3 FREQ=999 (Hz)
#   PORT=18446 OUT=target/profile KEEP=1 (keep the work directory with perf.data)
# Needs `perf` (Debian: linux-perf; installed when missing and permitted) and permission to
# profile another process (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONCURRENCY=${CONCURRENCY:-32}
WARMUP=${WARMUP:-2}
SECONDS_RECORDED=${SECONDS_RECORDED:-3}
FREQ=${FREQ:-999}
PORT=${PORT:-18446}
OUT=${OUT:-$ROOT/target/profile}
CERTS=$ROOT/certs-example

say() { printf '\n== %s\n' "$*" >&2; }

if ! command -v perf >/dev/null; then
    say "installing perf (linux-perf)"
    if [[ $(id -u) == 0 ]]; then as_root=(); else as_root=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get install -y -q linux-perf >/dev/null 2>&1 ||
        { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 &&
            "${as_root[@]}" apt-get install -y -q linux-perf >/dev/null 2>&1; } ||
        { echo "cannot install perf (Debian package linux-perf)" >&2; exit 1; }
fi
if [[ $(id -u) != 0 ]] && (($(cat /proc/sys/kernel/perf_event_paranoid) > 1)); then
    echo "perf may not profile other processes here: run as root, or" \
        "sysctl kernel.perf_event_paranoid=1" >&2
    exit 1
fi

WORK=$(mktemp -d /tmp/poortwachter-profile.XXXXXX)
GW_PID=""
LOAD_PID=""
cleanup() {
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null || true
    if [[ -n $GW_PID ]]; then
        kill -TERM "$GW_PID" 2>/dev/null || true
        wait "$GW_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

say "building poortwachter and loadgen (release, with debug info for the call graphs)"
cargo build --release -q -p gateway -p loadgen
PW=$ROOT/target/release/poortwachter
LG=$ROOT/target/release/loadgen
lg() {
    "$LG" --addr "127.0.0.1:$PORT" --ca "$CERTS/ca.pem" --cert "$CERTS/sdd.pem" \
        --key "$CERTS/sdd-key.pem" --certs "$CERTS" "$@"
}

say "poortwachter (SQLite, durable audit) on 127.0.0.1:$PORT"
CONFIG=$("$LG" --write-demo-config "$WORK/data" --listen "127.0.0.1:$PORT" --certs "$CERTS")
printf '\n[limits]\nrate_per_org_per_sec = 0\n' >>"$CONFIG"
"$PW" serve --config "$CONFIG" 2>"$WORK/gateway.log" &
GW_PID=$!
lg --wait-ready --timeout 20s >/dev/null
lg --setup-demo --capture /dev/null >&2

say "disclosures at concurrency $CONCURRENCY; recording ${SECONDS_RECORDED}s after ${WARMUP}s"
lg --concurrency "$CONCURRENCY" --warmup 0s --duration "$((WARMUP + SECONDS_RECORDED + 1))s" \
    >"$WORK/loadgen.txt" 2>&1 &
LOAD_PID=$!
sleep "$WARMUP"
perf record -F "$FREQ" --call-graph dwarf,16384 -p "$GW_PID" -o "$WORK/perf.data" \
    -- sleep "$SECONDS_RECORDED" 2>"$WORK/perf-record.log" >&2
wait "$LOAD_PID"
LOAD_PID=""
grep -E "answered|latency" "$WORK/loadgen.txt" >&2 || true

say "reading the samples (perf script resolves inlined frames; this takes a minute or two)"
mkdir -p "$OUT"
perf script -F comm,ip,sym -i "$WORK/perf.data" 2>/dev/null >"$OUT/perf.script"
python3 "$ROOT/bench/breakdown.py" <"$OUT/perf.script" >"$OUT/breakdown.md"
cat "$OUT/breakdown.md"

python3 "$ROOT/bench/breakdown.py" --folded <"$OUT/perf.script" >"$OUT/stacks.folded"
if command -v inferno-flamegraph >/dev/null; then
    inferno-flamegraph <"$OUT/stacks.folded" \
        --title "poortwachter: disclosures at concurrency $CONCURRENCY" >"$OUT/flamegraph.svg"
    echo "flamegraph: $OUT/flamegraph.svg" >&2
else
    echo "no flamegraph: install inferno (cargo install inferno) for $OUT/flamegraph.svg" >&2
fi
echo "breakdown: $OUT/breakdown.md; samples: $OUT/perf.script, $OUT/stacks.folded" >&2
