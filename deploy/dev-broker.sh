#!/usr/bin/env bash
# A Kafka-protocol broker on 127.0.0.1 for tests and for trying the ledger
# on Kafka by hand.
#
#   deploy/dev-broker.sh start   installs the broker if needed (cached), starts
#                                it on a free port and prints its bootstrap
#                                address (127.0.0.1:PORT) as the last line
#   deploy/dev-broker.sh stop    stops the broker this script started
#   deploy/dev-broker.sh resume  starts it again on the same port and the same
#                                state, after a stop or a crash
#
# The broker is tansu (Apache-2.0, a Kafka-compatible broker in Rust), built
# from crates.io with its durable SQLite storage engine. The build takes
# about 11 minutes on 2 cores the first time and is cached in
# $CLEARING_BROKER_CACHE (default ~/.cache/tansu-0.6.0-libsql).
# State lives in $CLEARING_BROKER_DIR (default target/dev-broker).
set -euo pipefail

TANSU_VERSION=0.6.0
CACHE=${CLEARING_BROKER_CACHE:-$HOME/.cache/tansu-$TANSU_VERSION-libsql}
DIR=${CLEARING_BROKER_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/dev-broker}
BIN=$CACHE/bin/tansu

install() {
    if [ -x "$BIN" ]; then
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
        --storage-engine sqlite://tansu.db >>"$DIR/broker.log" 2>&1) &
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
