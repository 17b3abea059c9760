#!/usr/bin/env bash
# Starts the PostgreSQL this machine carries (Debian's, installing `postgresql` with apt-get if
# it is missing), makes a role the tests log in with over 127.0.0.1, and prints the url the
# tests use to make (and drop) a database of their own each:
#   export KEYWARD_TEST_POSTGRES=$(bash .ci/postgres.sh)
# Everything it says goes to standard error; standard output is the url alone.
set -euo pipefail
ROLE=${PG_ROLE:-keyward_test}
PASSWORD=${PG_PASSWORD:-keyward_test}
say() { echo "$@" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "postgres: installing postgresql (apt-get)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || {
      say "postgres: could not be installed"; exit 1; }
  else
    say "postgres: not installed and no apt-get"; exit 1
  fi
fi
# The first cluster (e.g. "15 main"), created if the package made none.
read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -1) || true
if [ -z "${VERSION:-}" ]; then
  VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
  say "postgres: creating cluster $VERSION main"
  pg_createcluster "$VERSION" main >/dev/null
  read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -1)
fi
if [ "$STATUS" != "online" ]; then
  say "postgres: starting cluster $VERSION $CLUSTER (port $PORT)"
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi
for _ in $(seq 1 50); do
  su postgres -c "psql -p $PORT -tAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
# A role that may create databases, with a password, for connections over 127.0.0.1 (Debian's
# pg_hba.conf asks for one there).
su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -q" >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SQL
say "postgres: $VERSION $CLUSTER on 127.0.0.1:$PORT, role $ROLE"
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/postgres"
