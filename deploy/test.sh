#!/usr/bin/env bash
# The one command that runs every test of the clearing ledger.
#
# It needs nothing but the Rust toolchain: everything else the tests use is
# built by cargo. It is what the README's test command and .ci/run call.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format check"
cargo fmt --all -- --check

echo "== build (release, for the CLI smoke run below)"
cargo build --release --locked --bin clearing

echo "== tests"
cargo test --workspace --locked

echo "== the README's main command"
./target/release/clearing demo --txns 2000 >/dev/null
echo "demo ok"
