#!/usr/bin/env bash
# Runs every test of poortwachter: unit, property, schema and end-to-end tests.
# One build is shared by every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo test --workspace --doc
