#!/usr/bin/env bash
# Instructions per request under callgrind: a count that does not move with the VM's
# neighbours, unlike CPU time. Starts BIN with one worker in a temporary directory, makes 100
# keys (KIND=plain, limited: one rate limit and 10^12 credits, or imported: plaintext keys
# held by SHA-256), then under valgrind sends N requests to the no-op (/healthz) and N to
# /v1/me, each with the keys in turn in X-API-Key, and divides each phase's instruction count
# (every thread: the writer's credit reservations included) by N.
#
#   cargo build --release && KIND=limited bash bench/instructions.sh target/release/keyward
#
# valgrind cannot run blake3's AVX-512 code, so the hash counts about twice what it costs on
# the real CPU; compare binaries with one another, not with the CPU-time ratios of run.sh.
set -euo pipefail
BIN=$(realpath "${1:?usage: bench/instructions.sh BINARY [LABEL]}"); LABEL=${2:-$(basename "$BIN")}; N=${N:-2000}; PORT=${PORT:-18777}
D=$(mktemp -d); cd "$D"
export KEYWARD__SERVER__BIND=127.0.0.1:$PORT KEYWARD__SERVER__WORKERS=1 KEYWARD__LOG__LEVEL=warn KEYWARD_ADMIN_PASSWORD=callgrind-admin-pw-1
"$BIN" >/dev/null 2>&1 & P=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -fsS -X POST http://127.0.0.1:$PORT/v1/auth/token -H 'Content-Type: application/json' -d '{"username":"admin","password":"callgrind-admin-pw-1"}' | jq -r .access_token)
: > keys
case ${KIND:-plain} in
  plain|limited)
    BODY='{}'
    [ "${KIND:-plain}" = limited ] && BODY='{"ratelimits":[{"name":"r","limit":1000000,"duration":"1s"}],"credits":{"remaining":1000000000000}}'
    for i in $(seq 100); do curl -fsS -X POST http://127.0.0.1:$PORT/v1/keys -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$BODY" | jq -r .key >> keys; done ;;
  imported)
    for i in $(seq 100); do
      k="sk_bench_$(printf '%040d' $i)"
      curl -fsS -X POST http://127.0.0.1:$PORT/v1/keys/import -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"keys\":[{\"username\":\"admin\",\"name\":\"i$i\",\"key\":\"$k\"}]}" >/dev/null
      echo "$k" >> keys
    done ;;
esac
kill $P; wait $P || true
mapfile -t K < keys
: > noop.cfg; : > me.cfg
for i in $(seq 0 $((N-1))); do
  k=${K[$((i % 100))]}
  printf 'url = "http://127.0.0.1:%s/healthz"\nheader = "X-API-Key: %s"\noutput = "/dev/null"\nnext\n' $PORT "$k" >> noop.cfg
  printf 'url = "http://127.0.0.1:%s/v1/me"\nheader = "X-API-Key: %s"\noutput = "/dev/null"\nnext\n' $PORT "$k" >> me.cfg
done
sed -i '$ d' noop.cfg; sed -i '$ d' me.cfg   # no `next` after the last URL
valgrind --tool=callgrind --callgrind-out-file="$D/cg.%p" "$BIN" >/dev/null 2>"$D/vg.log" & P=$!
for _ in $(seq 600); do curl -fs http://127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break; sleep 0.2; done
curl -s -K noop.cfg >/dev/null; curl -s -K me.cfg >/dev/null   # warm up: every key seen once
callgrind_control -z $P >/dev/null
curl -s -K noop.cfg >/dev/null
callgrind_control -d noop $P >/dev/null
curl -s -K me.cfg >/dev/null
callgrind_control -d me $P >/dev/null
kill $P; wait $P || true
ir() { grep -h "^summary:\|^totals:" "$D/cg.$P.$1" | head -1 | awk '{print $2}'; }
NOOP=$(ir 1); ME=$(ir 2)
echo "$LABEL: no-op $((NOOP / N)) instr/request, key $((ME / N)) instr/request, ratio $(echo "scale=3; $ME / $NOOP" | bc)"
[ -n "${KEEP:-}" ] && echo "kept $D" || rm -rf "$D"
