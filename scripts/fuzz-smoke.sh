#!/usr/bin/env bash
# A seconds-long fuzz smoke run for CI: every target replays its whole saved
# corpus (fuzz/corpus, a regression check of every input found so far), then
# fuzzes for a few seconds. The long runs and their figures: docs/fuzzing.md.
# Installs cargo-fuzz from crates.io when it is missing; RUSTC_BOOTSTRAP lets
# this stable toolchain accept the one nightly flag cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install --quiet cargo-fuzz
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-5}"
for target in intake_parse redact_depth signature_headers policy_load provider_map provider_headers ats_map evidence_verify; do
  # Fuzz in a scratch copy, so a smoke run never grows the committed corpus.
  scratch=$(mktemp -d)
  cp -r "corpus/$target/." "$scratch/"
  log="$scratch.log"
  status=0
  cargo fuzz run -O "$target" "$scratch" -- -max_total_time="$seconds" -max_len=4096 >"$log" 2>&1 || status=$?
  grep -E "^(Done|INFO: seed corpus|==[0-9]+==|thread .* panicked)" "$log" || tail -n 20 "$log"
  rm -rf "$scratch" "$log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz smoke: $target failed (see fuzz/artifacts/$target)" >&2
    exit 1
  fi
  echo "fuzz smoke: $target ok"
done
