#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test (unit and
# integration) against real parts: the Temporal dev server, SQLite, a real
# PostgreSQL (a throwaway cluster when none answers), HTTP, Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./scripts/setup.sh)"
export VBRIDGE_TEMPORAL_CLI VBRIDGE_SCHEMATHESIS
. ./scripts/postgres.sh
trap stop_throwaway_postgres EXIT
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "test: cargo-nextest not found; using cargo test" >&2
  cargo test --workspace --no-fail-fast "$@"
fi
