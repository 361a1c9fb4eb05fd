#!/usr/bin/env bash
# The one command that runs every test of the clearing ledger.
#
# It needs nothing but the Rust toolchain, python3, Java 17 with Maven,
# Node.js with npm, and apt (Debian): it builds what the tests use,
# installs hledger and chromium (once) and playwright-core (into target/),
# fetches Apache Kafka 4.4 from Maven Central (once, cached), starts it on
# 127.0.0.1 for the Kafka tests, and stops it by its PID at the end, also
# when tests fail. It is what the README's test command and .ci/run call.
# The last line it prints is the total: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format check"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== build (release, for the demo run below)"
cargo build --release --locked --bin clearing

echo "== outside clients (Python confluent-kafka for interoperability tests, PyYAML for deploy/compose.yaml, schemathesis for the API)"
if [ ! -x target/outside-client/bin/python ] || ! target/outside-client/bin/python -c 'import confluent_kafka, yaml, schemathesis' 2>/dev/null; then
    python3 -m venv target/outside-client
    target/outside-client/bin/pip install --quiet --disable-pip-version-check confluent-kafka==2.16.1 pyyaml==6.0.3 schemathesis==4.32.5
fi
CLEARING_TEST_PYTHON=$PWD/target/outside-client/bin/python
export CLEARING_TEST_PYTHON

echo "== hledger (Debian package: the outside check of the double entry)"
if ! command -v hledger >/dev/null 2>&1; then
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo -n)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hledger >/dev/null
fi
hledger --version

echo "== browser (Debian's chromium, driven headless by playwright-core from npm, for the dashboard test)"
# (a CJK font, so that 一清/二清 and merchant names render in screenshots)
if ! command -v chromium >/dev/null 2>&1 || [ ! -d /usr/share/fonts/truetype/wqy ]; then
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo -n)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei >/dev/null
fi
chromium --version
if [ ! -d target/browser/node_modules/playwright-core ]; then
    npm install --silent --no-audit --no-fund --prefix target/browser playwright-core@1.65.1
fi
CLEARING_TEST_NODE_PATH=$PWD/target/browser/node_modules
CLEARING_TEST_CHROMIUM=$(command -v chromium)
export CLEARING_TEST_NODE_PATH CLEARING_TEST_CHROMIUM

echo "== broker (Apache Kafka, KRaft, one node)"
log=$(mktemp)
trap 'deploy/dev-broker.sh stop; rm -f "$log"' EXIT
CLEARING_TEST_KAFKA=$(deploy/dev-broker.sh start | tail -n 1)
export CLEARING_TEST_KAFKA
echo "broker at $CLEARING_TEST_KAFKA"

echo "== tests"

status=0
# Release mode: the build above is reused, and the kill and cluster tests
# push 100,000-line days through the binary.
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?

echo "== fuzzing (cargo fuzz: every parser and decoder of outside input, ${CLEARING_FUZZ_SECS:-20} s each)"
# cargo fuzz needs rustc's unstable sanitizer flags; RUSTC_BOOTSTRAP lets
# the stable toolchain take them for this build only.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
fuzz_log=$(mktemp)
fuzz_runs=0
if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build); then
    echo "fuzz targets FAILED to build"
    status=1
fi
for target in $(cd fuzz && cargo fuzz list); do
    corpus=$(mktemp -d)
    cp fuzz/corpus/"$target"/* "$corpus"/
    if (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" -- \
        -max_total_time="${CLEARING_FUZZ_SECS:-20}" -rss_limit_mb=1024 -timeout=10 -max_len=8192) >"$fuzz_log" 2>&1; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$fuzz_log" | tail -n 1)
        echo "fuzz $target: ${runs:-0} executions, no crash, hang or over-allocation"
        fuzz_runs=$((fuzz_runs + ${runs:-0}))
    else
        echo "fuzz $target FAILED:"
        tail -n 30 "$fuzz_log"
        status=1
    fi
    rm -rf "$corpus"
done
rm -f "$fuzz_log"
echo "fuzz: $fuzz_runs executions in all"

echo "== the README's main command"
if ./target/release/clearing demo --txns 2000 >/dev/null; then
    echo "demo ok"
else
    echo "demo FAILED"
    status=1
fi

deploy/dev-broker.sh stop

# Totals over every test binary, from cargo's own "test result:" lines.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
