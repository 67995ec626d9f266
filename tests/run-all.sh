#!/usr/bin/env bash
# Runs every test of poortwachter: unit, property, schema and end-to-end tests, on SQLite and on
# PostgreSQL, and a schema-driven fuzzer over the OpenAPI description. Installs and starts what the
# tests need (a PostgreSQL 15 server on loopback, in a throw-away data directory; a pinned Python
# environment for the fuzzer), and stops it again. One build is shared by every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT="${POORTWACHTER_TEST_PG_PORT:-54329}"
PG_DIR="$(mktemp -d /tmp/poortwachter-pg.XXXXXX)"
PG_BIN=""

find_pg_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PG_BIN="$d"; return 0; fi
  done
  return 1
}

start_postgres() {
  if ! find_pg_bin; then
    echo "== installing PostgreSQL (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
    else
      sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq postgresql >/dev/null
    fi
    find_pg_bin
  fi
  # initdb refuses to run as root: run the server as the `postgres` system user when we are root.
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$PG_DIR" postgres
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  echo "== starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"
  "${run[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
  export POORTWACHTER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  # The PostgreSQL tests fail instead of skipping when the server is missing.
  export POORTWACHTER_REQUIRE_POSTGRES=1
}

stop_postgres() {
  if [ -n "$PG_BIN" ] && [ -d "$PG_DIR/data" ]; then
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    else
      "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$PG_DIR"
}
trap stop_postgres EXIT

start_postgres

echo "== policy stays pure: built alone, chrono has no clock, so a clock read does not compile"
cargo check -p policy

echo "== the benchmark report (bench/report.py writes BENCHMARKS.md from compare.sh's results)"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s bench -p 'test_*.py'

echo "== cargo test (SQLite always; PostgreSQL via POORTWACHTER_TEST_POSTGRES_URL)"
cargo test --workspace --all-targets
cargo test --workspace --doc

# The end-to-end, covenant and audited-refusal suites once more, every gateway on a fresh
# PostgreSQL database (tests/postgres.rs, run above, adds two instances on one database).
echo "== end-to-end suites on PostgreSQL"
POORTWACHTER_TEST_DATABASE=postgres cargo test --workspace --test e2e --test covenants \
  --test refusals_audited

# Schemathesis (pinned, in a virtual environment the script makes; needs python3 and PyPI) over
# every operation of schemas/openapi.yaml, against `poortwachter serve` on the demo
# configuration, with each role's credentials: no 5xx, no answer outside the contract.
echo "== the contract, fuzzed (tests/contract/run.sh)"
bash tests/contract/run.sh
