#!/usr/bin/env bash
# keyward on PostgreSQL: one node's server CPU per key-authenticated request beside its
# no-op, key creation at 32 clients, and revocation propagation to two other nodes with and
# without NOTIFY. Builds release; not part of CI.
#
#   bash bench/cluster.sh                     # starts the local PostgreSQL (.ci/postgres.sh)
#   BENCH_POSTGRES=postgres://u:p@host:5432/postgres bash bench/cluster.sh
#   ROUNDS=3 DURATION=3 COUNT=200 bash bench/cluster.sh
#
# As bench/run.sh: node 1 (the one measured) runs pinned to CPU 0 and wrk to CPU 1, and each
# round reads the server's CPU time from /proc, so the table gives server CPU per request
# beside requests/s. PostgreSQL runs on the same two cores (it serves writes and the feed;
# the hot path never queries it). Propagation: bench/propagation.rs revokes COUNT keys one at
# a time on node 1 and polls nodes 2 and 3 until each refuses, from the 204.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
KEYS=${KEYS:-10000}
COUNT=${COUNT:-200}
CONNS=${CONNS:-32}
PORT=${PORT:-18281}
LOAD_CPU=1
TICKS=$(getconf CLK_TCK)
source bench/common.sh

command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
SERVER=${BENCH_POSTGRES:-$(bash .ci/postgres.sh)}

echo "bench: building release" >&2
cargo build --release --locked --quiet --bin keyward --example seed --example propagation
BIN=$PWD/target/release/keyward

WORK=$(mktemp -d)
: >"$WORK/empty.toml"
PIDS=()
DBNAME=keyward_bench_$$
URL=${SERVER%/*}/$DBNAME
psql_do() { psql "$SERVER" -qAt -c "$1"; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql_do "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# 10,000 keys made in SQLite by the seeder, moved to PostgreSQL with `keyward migrate`.
echo "bench: seeding $KEYS keys and migrating them" >&2
"$PWD/target/release/examples/seed" --db "$WORK/seed.db" --keys "$KEYS" --plain "$KEYS" --out "$WORK" 2>&1 | tail -1 >&2
psql_do "CREATE DATABASE $DBNAME"
MIGRATE_START=$(date +%s.%N)
KEYWARD__DATABASE__PATH="$WORK/seed.db" KEYWARD__DATABASE__URL="$URL" "$BIN" --config "$WORK/empty.toml" migrate >&2
MIGRATE_S=$(echo "$(date +%s.%N) - $MIGRATE_START" | bc)

start_node() { # n cpu notify -> sets NODE_PID
  mkdir -p "$WORK/node$1"
  (cd "$WORK/node$1" && KEYWARD__SERVER__BIND=127.0.0.1:$((PORT + $1)) KEYWARD__DATABASE__URL="$URL" \
    KEYWARD__CLUSTER__NOTIFY=$3 KEYWARD__LOG__LEVEL=warn KEYWARD__METRICS__PUBLIC=true \
    exec taskset -c "$2" "$BIN" --config "$WORK/empty.toml" >"$WORK/node$1/server.log" 2>&1) &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$((PORT + $1))/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: node $1 did not start" >&2; cat "$WORK/node$1/server.log" >&2; exit 1
}
stop_nodes() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

NODE1=http://127.0.0.1:$((PORT + 1))
start_node 1 0 true; ONE=$NODE_PID
start_node 2 1 true
start_node 3 1 true
for r in $(seq 1 "$ROUNDS"); do
  CRED_FILE=$WORK/keys.txt CRED_HEADER=X-API-Key CRED_PREFIX="" TARGET_PATH=/healthz load "$ONE" "$NODE1/" bench/me.lua >>"$WORK/noop.txt"
  CRED_FILE=$WORK/keys.txt CRED_HEADER=X-API-Key CRED_PREFIX="" TARGET_PATH=/v1/me load "$ONE" "$NODE1/" bench/me.lua >>"$WORK/key.txt"
  echo "bench: round $r/$ROUNDS done" >&2
done
ADMIN_KEY=$(head -1 "$WORK/keys.txt")
CREATE_KEY=$ADMIN_KEY load "$ONE" "$NODE1/v1/keys" bench/create.lua >"$WORK/create.txt"
PROPAGATE="$PWD/target/release/examples/propagation --writer http://127.0.0.1:$((PORT + 1)) --readers http://127.0.0.1:$((PORT + 2)),http://127.0.0.1:$((PORT + 3)) --key $ADMIN_KEY --count $COUNT"
read -r N50 N99 NMAX NN NACK < <($PROPAGATE)
stop_nodes
start_node 1 0 false; start_node 2 1 false; start_node 3 1 false
read -r P50 P99 PMAX PN PACK < <($PROPAGATE)
stop_nodes

NOOPCPU=$(col "$WORK/noop.txt" 5); KEYCPU=$(col "$WORK/key.txt" 5)
read -r CREATE _ _ CREATE_BAD _ <"$WORK/create.txt"
cat <<TABLE

keyward on PostgreSQL $(psql "$SERVER" -qAt -c 'SHOW server_version'): $(nproc) cores, node 1 on CPU 0, wrk on CPU 1 (nodes 2, 3 and PostgreSQL share the cores), $ROUNDS rounds x ${DURATION}s, $CONNS connections, medians

| measure | value |
|---|---|
| migrate $KEYS keys from SQLite | ${MIGRATE_S%???????} s |
| no-op GET /healthz, node 1 | $(col "$WORK/noop.txt" 1) req/s, server CPU $NOOPCPU us/request, p99 $(col "$WORK/noop.txt" 3) us |
| GET /v1/me, API key, node 1 | $(col "$WORK/key.txt" 1) req/s, server CPU $KEYCPU us/request, p99 $(col "$WORK/key.txt" 3) us |
| key / no-op server CPU per request | $(paired "$WORK/noop.txt" "$WORK/key.txt" 5) (target <= 1.10) |
| key creation, $CONNS clients, node 1 | $CREATE keys/s ($CREATE_BAD non-2xx; target >= 3000) |
| revocation on node 1 refused on nodes 2 and 3, NOTIFY on | p50 $N50 ms, p99 $N99 ms, max $NMAX ms over $NN (targets: p99 <= 100 ms, max <= 1000 ms); the DELETE itself p50 $NACK ms |
| the same, poll only (cluster.notify = false, poll_interval 1s) | p50 $P50 ms, p99 $P99 ms, max $PMAX ms over $PN |
TABLE
