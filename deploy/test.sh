#!/usr/bin/env bash
# The one command that runs every test of the clearing ledger.
#
# It needs nothing but the Rust toolchain: everything else the tests use is
# built by cargo. It is what the README's test command and .ci/run call.
# The last line it prints is the total: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format check"
cargo fmt --all -- --check

echo "== build (release, for the demo run below)"
cargo build --release --locked --bin clearing

echo "== tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?

echo "== the README's main command"
if ./target/release/clearing demo --txns 2000 >/dev/null; then
    echo "demo ok"
else
    echo "demo FAILED"
    status=1
fi

# Totals over every test binary, from cargo's own "test result:" lines.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
