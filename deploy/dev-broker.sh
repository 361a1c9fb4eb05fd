#!/usr/bin/env bash
# Apache Kafka 4.4 (KRaft) on 127.0.0.1, for the tests, the benchmarks and
# for trying the ledger on Kafka by hand. The jars come from Maven Central
# (deploy/kafka/pom.xml), fetched once into a cache; nothing else is
# downloaded.
#
#   deploy/dev-broker.sh start [--nodes N]   installs Kafka if needed, formats fresh
#                                KRaft storage, starts N combined broker+controller
#                                nodes (default 1) on free ports, waits until they
#                                serve metadata, and prints the bootstrap address
#                                (127.0.0.1:PORT[,…]) as its last line
#   deploy/dev-broker.sh stop    stops every node this script started, by PID
#   deploy/dev-broker.sh kill N  SIGKILLs node N (1, 2, …), as a crash would
#   deploy/dev-broker.sh resume [N]
#                                starts node N again (every stopped node when N is
#                                not given) on its ports and its state, and waits
#                                until the cluster serves metadata
#   deploy/dev-broker.sh address prints the bootstrap address
#   deploy/dev-broker.sh pid N   prints node N's PID
#   deploy/dev-broker.sh tool CLASS ARGS…
#                                runs one of Kafka's own tools from the cached jars,
#                                e.g. org.apache.kafka.tools.consumer.ConsoleConsumer
#
# State lives in $CLEARING_BROKER_DIR (default target/dev-broker), the jars in
# $CLEARING_KAFKA_CACHE (default ~/.cache/clearing-kafka-4.4.0). Each node's
# heap is bounded by $CLEARING_KAFKA_HEAP (default 512m).
set -euo pipefail

KAFKA_VERSION=4.4.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLEARING_BROKER_DIR:-$ROOT/target/dev-broker}
CACHE=${CLEARING_KAFKA_CACHE:-$HOME/.cache/clearing-kafka-$KAFKA_VERSION}
LIB=$CACHE/lib
HEAP=${CLEARING_KAFKA_HEAP:-512m}
# How long a node may take to serve metadata after it is started.
READY_WAIT_SECS=${CLEARING_KAFKA_READY_SECS:-90}

install() {
    if [ -f "$LIB/.complete" ]; then
        return
    fi
    echo "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIB (first time only)" >&2
    rm -rf "$LIB"
    mkdir -p "$LIB"
    mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$LIB" >&2
    touch "$LIB/.complete"
}

java_cp() {
    java -cp "$LIB/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" "$@"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nodes() {
    cat "$DIR/nodes"
}

node_dir() {
    echo "$DIR/node-$1"
}

write_log_config() {
    cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.target = SYSTEM_ERR
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
EOF
}

# server.properties of node $1 of $2, from the ports chosen at start.
write_node_config() {
    local id=$1 n=$2 voters="" i
    for i in $(seq 1 "$n"); do
        voters="${voters:+$voters,}$i@127.0.0.1:$(cat "$(node_dir "$i")/controller_port")"
    done
    local rf=$(( n < 3 ? n : 3 ))
    local isr=$(( rf > 1 ? 2 : 1 ))
    local d
    d=$(node_dir "$id")
    cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
listeners=PLAINTEXT://127.0.0.1:$(cat "$d/port"),CONTROLLER://127.0.0.1:$(cat "$d/controller_port")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cat "$d/port")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=$voters
log.dirs=$d/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
unclean.leader.election.enable=false
auto.create.topics.enable=false
log.retention.ms=-1
log.retention.bytes=-1
log.segment.bytes=268435456
EOF
}

launch_node() {
    local id=$1 d
    d=$(node_dir "$id")
    if [ -f "$d/pid" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; then
        return
    fi
    KAFKA_HEAP_OPTS="" nohup java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC \
        -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -cp "$LIB/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
        kafka.Kafka "$d/server.properties" >>"$d/broker.log" 2>&1 &
    echo $! >"$d/pid"
}

address() {
    local out="" id
    for id in $(seq 1 "$(nodes)"); do
        out="${out:+$out,}127.0.0.1:$(cat "$(node_dir "$id")/port")"
    done
    echo "$out"
}

# Waits until every running node accepts connections and the cluster
# answers a metadata request (a topic listing through Kafka's own tool).
wait_ready() {
    local deadline=$((SECONDS + READY_WAIT_SECS)) id d
    for id in $(seq 1 "$(nodes)"); do
        d=$(node_dir "$id")
        [ -f "$d/pid" ] || continue
        until (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$d/port")") 2>/dev/null; do
            if ! kill -0 "$(cat "$d/pid")" 2>/dev/null; then
                echo "node $id exited; the end of $d/broker.log:" >&2
                tail -20 "$d/broker.log" >&2
                exit 1
            fi
            if [ $SECONDS -ge $deadline ]; then
                echo "node $id did not listen within ${READY_WAIT_SECS} s" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    until java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "$(address)" --list >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "the cluster did not serve metadata within ${READY_WAIT_SECS} s" >&2
            exit 1
        fi
        sleep 0.5
    done
}

start() {
    local n=1
    if [ "${1:-}" = "--nodes" ]; then
        n=${2:?--nodes needs a number}
    fi
    install
    stop_all quiet
    rm -rf "$DIR"
    mkdir -p "$DIR"
    echo "$n" >"$DIR/nodes"
    write_log_config
    local id
    for id in $(seq 1 "$n"); do
        mkdir -p "$(node_dir "$id")"
        free_port >"$(node_dir "$id")/port"
        free_port >"$(node_dir "$id")/controller_port"
    done
    local cluster
    cluster=$(java_cp kafka.tools.StorageTool random-uuid)
    for id in $(seq 1 "$n"); do
        write_node_config "$id" "$n"
        java_cp kafka.tools.StorageTool format -t "$cluster" \
            -c "$(node_dir "$id")/server.properties" >>"$(node_dir "$id")/broker.log" 2>&1
    done
    for id in $(seq 1 "$n"); do
        launch_node "$id"
    done
    wait_ready
    echo "Apache Kafka $KAFKA_VERSION: $n node(s), state in $DIR" >&2
    address
}

resume() {
    install
    local ids
    if [ -n "${1:-}" ]; then
        ids=$1
    else
        ids=$(seq 1 "$(nodes)")
    fi
    local id
    for id in $ids; do
        launch_node "$id"
    done
    wait_ready
    address
}

stop_node() {
    local id=$1 signal=${2:-TERM} d pid
    d=$(node_dir "$id")
    [ -f "$d/pid" ] || return 0
    pid=$(cat "$d/pid")
    if kill -"$signal" "$pid" 2>/dev/null; then
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$d/pid"
}

stop_all() {
    [ -f "$DIR/nodes" ] || return 0
    local id
    for id in $(seq 1 "$(nodes)"); do
        stop_node "$id"
    done
    [ "${1:-}" = quiet ] || echo "Apache Kafka stopped ($DIR)" >&2
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop_all ;;
    kill) stop_node "${2:?kill needs a node number}" KILL ;;
    resume) resume "${2:-}" ;;
    address) address ;;
    pid) cat "$(node_dir "${2:?pid needs a node number}")/pid" ;;
    tool)
        shift
        install
        [ -f "$DIR/log4j2.properties" ] || { mkdir -p "$DIR"; write_log_config; }
        java_cp "$@"
        ;;
    *)
        echo "usage: $0 start [--nodes N] | stop | kill N | resume [N] | address | pid N | tool CLASS ARGS…" >&2
        exit 2
        ;;
esac
