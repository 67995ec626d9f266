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

# A throw-away CA and a server certificate for 127.0.0.1 signed by it (openssl), in $1.
make_postgres_tls() {
  local dir="$1"
  if ! command -v openssl >/dev/null; then
    echo "== installing openssl (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null && apt-get install -y -qq openssl >/dev/null
    else sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq openssl >/dev/null; fi
  fi
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=poortwachter test database CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" \
    2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$dir/server-key.pem" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    > "$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  chmod 600 "$dir/server-key.pem" "$dir/ca-key.pem"
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
  echo "== starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR), TLS only"
  make_postgres_tls "$PG_DIR/tls"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$PG_DIR/tls"; fi
  "${run[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  # Over TCP only TLS connections are accepted: a test that connected in plaintext would fail.
  cat > "$PG_DIR/data/pg_hba.conf" <<'HBA'
local     all all                trust
hostssl   all all 127.0.0.1/32   trust
hostnossl all all 0.0.0.0/0      reject
HBA
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 \
        -c ssl=on -c ssl_cert_file=$PG_DIR/tls/server.pem -c ssl_key_file=$PG_DIR/tls/server-key.pem" \
    start >/dev/null
  export POORTWACHTER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  # The gateway and the tests reach it with sslmode verify-full against this CA.
  export POORTWACHTER_TEST_POSTGRES_CA="$PG_DIR/tls/ca.pem"
  # For tests that start (and kill) a throw-away server of their own (tests/outage.rs).
  export POORTWACHTER_TEST_PG_BIN="$PG_BIN"
  export POORTWACHTER_TEST_PG_TLS="$PG_DIR/tls"
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

# The SQLite full-disk test (tests/outage.rs) mounts a small tmpfs: required wherever that works.
probe_dir="$(mktemp -d)"
if mount -t tmpfs -o size=1m tmpfs "$probe_dir" 2>/dev/null \
   || sudo -n mount -t tmpfs -o size=1m tmpfs "$probe_dir" 2>/dev/null; then
  umount "$probe_dir" 2>/dev/null || sudo -n umount "$probe_dir"
  export POORTWACHTER_REQUIRE_MOUNT=1
else
  echo "== no tmpfs can be mounted here (needs root or sudo): the SQLite full-disk test skips"
fi
rmdir "$probe_dir"

# Every crate of Cargo.lock, for every platform: the Dockerfile test loads the workspace offline
# (`cargo metadata --offline`), which needs crates a build for this platform never downloads.
echo "== cargo fetch --locked"
cargo fetch --locked

echo "== policy stays pure: built alone, chrono has no clock, so a clock read does not compile"
cargo check -p policy

echo "== the benchmark report (bench/report.py writes BENCHMARKS.md from compare.sh's results)"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s bench -p 'test_*.py'

echo "== cargo test (SQLite always; PostgreSQL via POORTWACHTER_TEST_POSTGRES_URL)"
cargo test --workspace --all-targets
cargo test --workspace --doc

# The end-to-end, covenant, Logboek-export and audited-refusal suites once more, every gateway on a fresh
# PostgreSQL database (tests/postgres.rs, run above, adds two instances on one database).
echo "== end-to-end suites on PostgreSQL"
POORTWACHTER_TEST_DATABASE=postgres cargo test --workspace --test e2e --test covenants --test logboek \
  --test refusals_audited

# Schemathesis (pinned, in a virtual environment the script makes; needs python3 and PyPI) over
# every operation of schemas/openapi.yaml, against `poortwachter serve` on the demo
# configuration, with each role's credentials: no 5xx, no answer outside the contract.
echo "== the contract, fuzzed (tests/contract/run.sh)"
bash tests/contract/run.sh

# The web console in headless Chromium (Debian's) against a real OpenID provider (oidc-provider
# from npm), with axe-core on every page; installs both (npm packages cached under target/) and
# writes the screenshots in docs/. Bounded to a few minutes.
echo "== the web console in a real browser (tests/console-e2e/run.sh)"
bash tests/console-e2e/run.sh
