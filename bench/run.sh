#!/usr/bin/env bash
# keyward benchmark: key verification against the no-op route, access tokens, key creation,
# memory, and rps at 10k vs 1M stored keys. Builds release; not part of CI (too long).
#
#   bash bench/run.sh            # full: 10k and 1M keys, 5 rounds of 5 s
#   ROUNDS=3 DURATION=3 BIG=100000 bash bench/run.sh   # shorter
#   BIG=0 bash bench/run.sh      # the 10k-key rounds only
#
# The server runs with the default worker count (one per core) pinned to CPU 0, and wrk is
# pinned to CPU 1 (taskset), so the two never compete for a core; rounds are interleaved and
# the table shows medians. wrk with a Lua script can saturate its own core before the server
# does, and then requests/s measures wrk: so each round also reads the server's CPU time
# (utime + stime from /proc/<pid>/stat) before and after, and the table gives the server's
# CPU time per request beside requests/s. Rows are medians over the rounds; each ratio to the
# no-op is the median of the rounds' own ratios (each round's rows run seconds apart), with
# a 95% confidence interval for that median (6 rounds or more; the default 5 prints none) and
# their range. On a noisy VM compare the interval with a target, not the median: on the
# 2-core VM of 2026-12-02, ROUNDS=45 DURATION=2 narrowed it to about +-0.1 (up to +-0.17).
# SERVER_CPU=0-1 lets the server use every core (sharing one with wrk); WORKERS=1 runs one
# worker.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-3}  # seconds of each row before the rounds, not measured (0: none)
SMALL=${SMALL:-10000}
BIG=${BIG:-1000000}
CONNS=${CONNS:-32}
LIMITED=${LIMITED:-1000}  # keys with one rate limit and credits, rotated by their own row
IMPORTED=${IMPORTED:-1000}  # imported keys (plaintext, held by SHA-256), rotated by their own row
PORT=${PORT:-18181}
WORKERS=${WORKERS:-0}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TICKS=$(getconf CLK_TCK)
source bench/common.sh

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

echo "bench: building release" >&2
cargo build --release --locked --quiet --bin keyward --example seed
BIN=$PWD/target/release/keyward
SEED=$PWD/target/release/examples/seed

WORK=$(mktemp -d)
: >"$WORK/empty.toml" # built-in defaults; the environment below sets the rest
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

seed() { # name count
  mkdir -p "$WORK/$1"
  "$SEED" --db "$WORK/$1/keyward.db" --keys "$2" --plain "$SMALL" --limited "${3:-0}" --imported "${4:-0}" --out "$WORK/$1" 2>&1 | tail -1 >&2
}

start_server() { # name
  KEYWARD__SERVER__BIND=127.0.0.1:$PORT KEYWARD__DATABASE__PATH="$WORK/$1/keyward.db" \
    KEYWARD__SERVER__WORKERS=$WORKERS KEYWARD__LOG__LEVEL=warn KEYWARD__METRICS__PUBLIC=true \
    taskset -c "$SERVER_CPU" "$BIN" --config "$WORK/empty.toml" >"$WORK/$1/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: server did not start" >&2; cat "$WORK/$1/server.log" >&2; exit 1
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER_PID/status"; }

# One row of round_robin: the data set's directory, the row's label (noop key lim imp token),
# and the file to append its line to (default: the label's).
row() { # dir label [file]
  local dir=$1 file cred=keys.txt header=X-API-Key prefix="" path=/v1/me
  case $2 in
    noop) path=/healthz ;;
    key) ;;
    lim) [ -s "$dir/limited.txt" ] || return 0; cred=limited.txt ;;
    imp) [ -s "$dir/imported.txt" ] || return 0; cred=imported.txt ;;
    token) cred=tokens.txt header=Authorization prefix="Bearer " ;;
  esac
  file=${3:-$dir/$2.txt}
  CRED_FILE=$dir/$cred CRED_HEADER=$header CRED_PREFIX=$prefix TARGET_PATH=$path load "$SERVER_PID" "http://127.0.0.1:$PORT/" bench/me.lua >>"$file"
}

round_robin() { # name -> files noop.txt key.txt (lim.txt imp.txt) token.txt, one line per round
  local dir=$WORK/$1 order row_name
  # Unmeasured first: a key's first use checks its signature (once per key and process),
  # and a limited key reserves its first blocks of credits (64, then sized by the pace the
  # last was spent at). The rounds measure a server past that. A limited key still reserves
  # in them: the other rows' seconds count as its idle time, so its blocks come out smaller
  # than a steadily busy key's, and the row leans pessimistic.
  if [ "$WARMUP" -gt 0 ]; then
    for r in noop key lim imp token; do DURATION=$WARMUP row "$dir" "$r" /dev/null; done
  fi
  for r in $(seq 1 "$ROUNDS"); do
    # The no-op gets the very same requests (same script, same key header) but the path:
    # the load generator does equal work, and only the server's handling differs. Every
    # other round runs the rows in reverse, so no row always runs just after the no-op:
    # a VM that drifts between rows moves the ratios both ways.
    order="noop key lim imp token"
    [ $((r % 2)) -eq 0 ] && order="token imp lim key noop"
    for row_name in $order; do row "$dir" "$row_name"; done
    echo "bench: $1 round $r/$ROUNDS done" >&2
  done
}

echo "bench: seeding $SMALL keys" >&2
seed small "$SMALL" "$LIMITED" "$IMPORTED"
start_server small
RSS_SMALL=$(rss_mb)
round_robin small
# Key creation, 32 concurrent clients, authenticated with one of the keys.
CREATE_KEY=$(head -1 "$WORK/small/keys.txt") load "$SERVER_PID" "http://127.0.0.1:$PORT/v1/keys" bench/create.lua >"$WORK/small/create.txt"
stop_server

if [ "$BIG" -gt 0 ]; then
  echo "bench: seeding $BIG keys" >&2
  seed big "$BIG"
  start_server big
  RSS_BIG=$(rss_mb)
  round_robin big
  RSS_BIG_AFTER=$(rss_mb)
  stop_server
else # BIG=0: the 10k-key rounds only (for quick comparisons)
  mkdir -p "$WORK/big"; cp "$WORK/small/key.txt" "$WORK/big/key.txt"; RSS_BIG=- RSS_BIG_AFTER=-
fi

S=$WORK/small B=$WORK/big
NOOP=$(col "$S/noop.txt" 1); KEY=$(col "$S/key.txt" 1); TOK=$(col "$S/token.txt" 1)
NOOP99=$(col "$S/noop.txt" 3); KEY99=$(col "$S/key.txt" 3); TOK99=$(col "$S/token.txt" 3)
NOOPCPU=$(col "$S/noop.txt" 5); KEYCPU=$(col "$S/key.txt" 5); TOKCPU=$(col "$S/token.txt" 5)
KEYBIG=$(col "$B/key.txt" 1)
if [ -s "$S/lim.txt" ]; then LIM=$(col "$S/lim.txt" 1); LIM99=$(col "$S/lim.txt" 3); LIMCPU=$(col "$S/lim.txt" 5); LIMBAD=$(col "$S/lim.txt" 4)
else LIM=- LIM99=- LIMCPU=- LIMBAD=-; fi
if [ -s "$S/imp.txt" ]; then IMP=$(col "$S/imp.txt" 1); IMP99=$(col "$S/imp.txt" 3); IMPCPU=$(col "$S/imp.txt" 5); IMPBAD=$(col "$S/imp.txt" 4)
else IMP=- IMP99=- IMPCPU=- IMPBAD=-; fi
read -r CREATE _ _ CREATE_BAD _ <"$S/create.txt"

cat <<TABLE

keyward bench: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $ROUNDS rounds x ${DURATION}s, $CONNS connections, server workers ${WORKERS/#0/default (one per core)} on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU, medians

| measure | value |
|---|---|
| no-op GET /healthz (same requests) | $NOOP req/s, server CPU $NOOPCPU us/request, p50 $(col "$S/noop.txt" 2) us, p99 $NOOP99 us |
| GET /v1/me, API key ($SMALL keys) | $KEY req/s, server CPU $KEYCPU us/request, p50 $(col "$S/key.txt" 2) us, p99 $KEY99 us |
| GET /v1/me, access token (20 tokens) | $TOK req/s, server CPU $TOKCPU us/request, p50 $(col "$S/token.txt" 2) us, p99 $TOK99 us |
| GET /v1/me, API key with one rate limit and credits ($LIMITED keys) | $LIM req/s, server CPU $LIMCPU us/request, p50 $(col "$S/lim.txt" 2 2>/dev/null) us, p99 $LIM99 us, $LIMBAD non-2xx |
| GET /v1/me, imported key ($IMPORTED keys sk_bench_..., SHA-256 only: not a JWT, no blake3) | $IMP req/s, server CPU $IMPCPU us/request, p50 $(col "$S/imp.txt" 2 2>/dev/null) us, p99 $IMP99 us, $IMPBAD non-2xx |
| key / no-op server CPU per request | $(paired "$S/noop.txt" "$S/key.txt" 5) (target <= 1.10) |
| imported key / no-op server CPU per request | $([ -s "$S/imp.txt" ] && paired "$S/noop.txt" "$S/imp.txt" 5 || echo -) (target <= 1.10) |
| limited key / no-op server CPU per request | $([ -s "$S/lim.txt" ] && paired "$S/noop.txt" "$S/lim.txt" 5 || echo -) (target <= 1.20) |
| limited key / plain key server CPU per request (what the limits add) | $([ -s "$S/lim.txt" ] && paired "$S/key.txt" "$S/lim.txt" 5 || echo -) |
| token / no-op server CPU per request | $(paired "$S/noop.txt" "$S/token.txt" 5) |
| key / no-op rps | $(paired "$S/noop.txt" "$S/key.txt" 1) (target >= 0.90) |
| key / no-op p99 | $(paired "$S/noop.txt" "$S/key.txt" 3) (target <= 1.5) |
| token / no-op rps | $(paired "$S/noop.txt" "$S/token.txt" 1) (target >= 0.90) |
| token / no-op p99 | $(paired "$S/noop.txt" "$S/token.txt" 3) (target <= 1.5) |
| GET /v1/me, API key, $BIG keys stored | $KEYBIG req/s |
| rps at $BIG / at $SMALL keys | $(ratio "$KEYBIG" "$KEY") (target >= 0.95) |
| key creation, $CONNS clients, synchronous=FULL | $CREATE keys/s ($CREATE_BAD non-2xx) |
| RSS with $SMALL keys | $RSS_SMALL MB |
| RSS with $BIG keys (start / after load) | $RSS_BIG / $RSS_BIG_AFTER MB |
TABLE
