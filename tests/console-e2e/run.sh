#!/usr/bin/env bash
# The console in a real browser against a real OpenID provider. Installs what it needs (Debian's
# chromium; the npm packages pinned in package-lock.json, cached under target/console-e2e so a
# second run installs nothing), writes the demo's data (`poortwachter demo --once`), configures
# the console with one provider per organisation (oidc-provider on loopback, started by run.mjs)
# instead of the development login, starts `poortwachter serve`, and runs run.mjs: the login at
# the provider's own form, the privacy-officer and covenant flows, the attacks (a form without
# its CSRF token, another organisation's record, a BSN in a URL), axe-core on every page, and
# screenshots of the main pages into docs/console-*.png. Bounded by BUDGET_SECS.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
E2E="$ROOT/target/console-e2e"
BUDGET_SECS="${POORTWACHTER_CONSOLE_E2E_BUDGET_SECS:-240}"

if ! command -v chromium >/dev/null; then
  echo "== console e2e: installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq >/dev/null && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
mkdir -p "$E2E"
if ! cmp -s tests/console-e2e/package-lock.json "$E2E/package-lock.json" 2>/dev/null \
   || [ ! -d "$E2E/node_modules" ]; then
  echo "== console e2e: npm ci (oidc-provider, playwright-core, axe-core)"
  cp tests/console-e2e/package.json tests/console-e2e/package-lock.json "$E2E/"
  (cd "$E2E" && npm ci --no-audit --no-fund --silent)
fi
cp tests/console-e2e/run.mjs "$E2E/run.mjs"

cargo build --quiet --bin poortwachter
BIN="$ROOT/target/debug/poortwachter"
DATA="$(mktemp -d /tmp/poortwachter-console.XXXXXX)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
SDD_OP_PORT="$(free_port)"
GORINCHEM_OP_PORT="$(free_port)"
GATEWAY_PID=""
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

"$BIN" demo --once --port "$PORT" --data-dir "$DATA" >/dev/null
CONFIG="$DATA/poortwachter.toml"
# The production way: no development login, one provider per organisation.
sed -i 's/^development_login = true/development_login = false/' "$CONFIG"
printf 'sdd-console-secret' > "$DATA/sdd-client-secret"
printf 'gorinchem-console-secret' > "$DATA/gorinchem-client-secret"
for org in "sdd:00000001823288444000:$SDD_OP_PORT" "gorinchem:00000001001234567000:$GORINCHEM_OP_PORT"; do
  IFS=: read -r name oin op_port <<< "$org"
  cat >> "$CONFIG" <<TOML

[[console.providers]]
organisation = "$oin"
issuer = "http://127.0.0.1:$op_port"
client_id = "console-$name"
client_secret = { file = "$DATA/$name-client-secret" }
organisation_claim = "org"
TOML
done

"$BIN" serve --config "$CONFIG" > "$DATA/gateway.log" 2>&1 &
GATEWAY_PID=$!

cd "$E2E"
GATEWAY="https://localhost:$PORT" SDD_OP_PORT="$SDD_OP_PORT" \
  GORINCHEM_OP_PORT="$GORINCHEM_OP_PORT" DOCS="$ROOT/docs" \
  timeout "$BUDGET_SECS" node run.mjs
