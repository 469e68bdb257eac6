#!/bin/sh
# First start of the compose's Postgres: the event store's database and role.
# The role's password is the one in deploy/secrets/vbridge_database_url.
set -eu
url=$(cat /run/secrets/vbridge_database_url)
pass=$(printf '%s' "$url" | sed -n 's#^postgres://vbridge:\([^@]*\)@.*#\1#p')
[ -n "$pass" ] || { echo "vbridge_database_url must be postgres://vbridge:<password>@postgres:5432/vbridge" >&2; exit 1; }
psql -v ON_ERROR_STOP=1 -U postgres -v pass="$pass" <<'SQL'
CREATE ROLE vbridge LOGIN PASSWORD :'pass';
CREATE DATABASE vbridge OWNER vbridge;
SQL
