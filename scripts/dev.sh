#!/usr/bin/env bash
# The run command: installs what is missing, then starts the embedded stack
# (Temporal dev server + UI on :8233, sandbox ATS on :8090, bridge on :8080).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./scripts/setup.sh)"
export VBRIDGE_TEMPORAL_CLI
exec cargo run -p vbridge -- dev "$@"
