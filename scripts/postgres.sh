#!/usr/bin/env bash
# Makes sure a PostgreSQL answers for the tests. The project's machines and CI
# run one at 127.0.0.1:5432 (trust auth, database `test`); when nothing
# answers at $VBRIDGE_TEST_POSTGRES_URL (default that one), this installs
# Debian's PostgreSQL if needed and starts a throwaway cluster on a free port,
# in a temporary directory, for this run only. Postgres tests are never
# skipped: they need a server, and this provides one.
#
# Source it (`. scripts/postgres.sh`): it exports VBRIDGE_TEST_POSTGRES_URL and
# defines `stop_throwaway_postgres`, which the caller runs on exit.
log() { echo "postgres: $*" >&2; }

VBRIDGE_TEST_POSTGRES_URL="${VBRIDGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export VBRIDGE_TEST_POSTGRES_URL
THROWAWAY_PG=""

pg_answers() {
  # host and port from postgres://user@host:port/db
  local hostport="${1#*@}"; hostport="${hostport%%/*}"
  local host="${hostport%%:*}" port="${hostport##*:}"
  [ "$port" = "$hostport" ] && port=5432
  timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

stop_throwaway_postgres() {
  if [ -n "$THROWAWAY_PG" ]; then
    local bindir; bindir=$(cat "$THROWAWAY_PG/bindir")
    as_pg "$bindir/pg_ctl" -D "$THROWAWAY_PG/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$THROWAWAY_PG"
    THROWAWAY_PG=""
  fi
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! pg_answers "$VBRIDGE_TEST_POSTGRES_URL"; then
  log "nothing answers at $VBRIDGE_TEST_POSTGRES_URL; starting a throwaway cluster"
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql >&2
  fi
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  THROWAWAY_PG=$(mktemp -d /tmp/vbridge-pg.XXXXXX)
  echo "$bindir" > "$THROWAWAY_PG/bindir"
  [ "$(id -u)" = 0 ] && chown -R postgres "$THROWAWAY_PG"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bindir/initdb" -D "$THROWAWAY_PG/data" -U postgres --auth=trust >/dev/null
  as_pg "$bindir/pg_ctl" -D "$THROWAWAY_PG/data" -l "$THROWAWAY_PG/log" -w \
    -o "-p $port -k $THROWAWAY_PG -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  VBRIDGE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/test"
  log "throwaway cluster at $VBRIDGE_TEST_POSTGRES_URL (removed after the run)"
fi
