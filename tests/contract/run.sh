#!/usr/bin/env bash
# Schema-driven fuzzing of the contract of record. Schemathesis (pinned in requirements.txt, in a
# virtual environment this script makes under target/) reads the operations from
# schemas/openapi.yaml and sends what it generates from them — the documented examples, the
# boundaries of every schema (coverage) and random schema-valid and schema-invalid requests
# (fuzzing) — to a `poortwachter serve` on the demo configuration, over TLS, with each role's
# credentials. It fails on any 5xx (`not_a_server_error`) and on any answer that the description
# does not allow (`response_schema_conformance`, and its status and content type).
#
# Operations are chosen by tag, never by path, so that routes can move without a change here; an
# operation whose tag no run covers fails the script. Bounded: EXAMPLES cases per operation and
# phase, and BUDGET_SECS for all runs together (about a minute is usual; a description whose
# patterns the generator cannot fill, like the 11-check as a regular expression, runs out of it). Set POORTWACHTER_CONTRACT_SEED to explore other inputs
# (CI uses a fixed seed, so that a red run is reproducible). One worker: with two threads, the
# Python 3.11 AST parser that hypothesis calls to describe filters fails now and then
# ("AST constructor recursion depth mismatch"), an error of the tool, not of the gateway.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROOT="$(pwd)"
REQUIREMENTS=tests/contract/requirements.txt
VENV="${POORTWACHTER_CONTRACT_VENV:-$ROOT/target/contract-venv}"
EXAMPLES="${POORTWACHTER_CONTRACT_EXAMPLES:-25}"
SEED="${POORTWACHTER_CONTRACT_SEED:-20261130}"
BUDGET_SECS="${POORTWACHTER_CONTRACT_BUDGET_SECS:-300}"
# What fails the run: a 5xx, or an answer the description does not allow (its body, status or
# content type). Not `positive_data_acceptance`: the gateway refuses schema-valid requests that
# break rules no schema states (the BSN's 11-check, the field catalogue, covenant rules, a
# well-formed JWS that is no consent, `to` after `from`), each with its documented 4xx. Set
# `all` (or any list `st run --checks` takes) to explore by hand.
CHECKS="${POORTWACHTER_CONTRACT_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance}"
CERTS="$ROOT/certs-example"
# The description under test (another copy only to compare descriptions by hand).
SPEC="${POORTWACHTER_CONTRACT_SPEC:-$ROOT/schemas/openapi.yaml}"
UWV=00000001003214345000
SDD=00000001823288444000

# The pinned environment, rebuilt when requirements.txt changes.
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null; then
  echo "== contract: creating $VENV ($(grep '^schemathesis==' "$REQUIREMENTS"))"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
ST="$VENV/bin/st"

# Every tag some operation carries must be covered by a run below.
COVERED="consents handovers disclosures audit covenants operations"
"$VENV/bin/python" - "$COVERED" "$SPEC" <<'EOF'
import sys, yaml
covered = set(sys.argv[1].split())
spec = yaml.safe_load(open(sys.argv[2]))
methods = {"get", "put", "post", "delete", "patch", "head", "options"}
missing = [
    f"{m.upper()} {path} (tags {op.get('tags')})"
    for path, item in spec["paths"].items()
    for m, op in item.items()
    if m in methods and not covered.intersection(op.get("tags", []))
]
if missing:
    sys.exit("contract: no run covers " + "; ".join(missing))
print(f"== contract: {sum(1 for i in spec['paths'].values() for m in i if m in methods)} operations in {sys.argv[2]}")
EOF

cargo build --quiet --bin poortwachter
BIN=target/debug/poortwachter
DATA="$(mktemp -d /tmp/poortwachter-contract.XXXXXX)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
GATEWAY_PID=""
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

# The demo's data (a consent, a handover record, disclosures, a revocation), then the production
# command on the demo configuration.
"$BIN" demo --once --port "$PORT" --data-dir "$DATA/data" --certs "$CERTS" >"$DATA/demo.log" 2>&1 ||
  { cat "$DATA/demo.log"; exit 1; }
"$BIN" serve --config "$DATA/data/poortwachter.toml" >"$DATA/serve.log" 2>&1 &
GATEWAY_PID=$!
for _ in $(seq 1 100); do
  if curl -sf --cacert "$CERTS/ca.pem" "https://localhost:$PORT/readyz" >/dev/null; then break; fi
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then cat "$DATA/serve.log"; exit 1; fi
  sleep 0.1
done
curl -sf --cacert "$CERTS/ca.pem" "https://localhost:$PORT/readyz" >/dev/null ||
  { echo "contract: the gateway did not become ready"; cat "$DATA/serve.log"; exit 1; }

OFFICER="$("$BIN" dev token --certs "$CERTS" --sub fg-sdd-1 --org "$SDD" --role privacy-officer)"
ADMIN="$("$BIN" dev token --certs "$CERTS" --sub admin-1 --org "$UWV" --role covenant-admin)"

FAILED=0
STARTED="$(date +%s)"
run() {
  local who="$1"
  shift
  local left=$((BUDGET_SECS - ($(date +%s) - STARTED)))
  echo "== contract: schemathesis as $who (${left}s of the budget left)"
  if [ "$left" -lt 5 ]; then
    echo "contract: the time budget (${BUDGET_SECS}s) is spent"
    FAILED=1
    return
  fi
  # Run from the scratch directory: schemathesis keeps a cache in its working directory.
  if ! (cd "$DATA" && timeout "$left" "$ST" run "$SPEC" \
    --url "https://localhost:$PORT" \
    --tls-verify "$CERTS/ca.pem" \
    --checks "$CHECKS" \
    --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --generation-database none \
    --no-color \
    "$@" >"$DATA/run.log" 2>&1); then
    cat "$DATA/run.log"
    FAILED=1
  else
    grep -E "^(API Operations|  Selected|  Tested|Test cases|  [0-9]+ generated)" "$DATA/run.log" || true
  fi
}

run "UWV (source and consent issuer)" \
  --request-cert "$CERTS/uwv.pem" --request-cert-key "$CERTS/uwv-key.pem" \
  --include-tag consents --include-tag handovers --include-tag disclosures
run "the Sociale Dienst (recipient)" \
  --request-cert "$CERTS/sdd.pem" --request-cert-key "$CERTS/sdd-key.pem" \
  --include-tag disclosures --include-tag consents --include-tag handovers
run "a privacy officer" -H "Authorization: Bearer $OFFICER" --include-tag audit
run "a covenant administrator" -H "Authorization: Bearer $ADMIN" --include-tag covenants
run "nobody (no certificate, no token)"

if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
  echo "contract: the gateway died during the run"
  cat "$DATA/serve.log"
  exit 1
fi
if [ "$FAILED" != 0 ]; then
  echo "contract: schemathesis found answers the contract does not allow (above); gateway log:"
  tail -50 "$DATA/serve.log"
  exit 1
fi
echo "== contract: every answer was within the contract"
