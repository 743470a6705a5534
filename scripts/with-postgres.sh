#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server: RUNBASE_TEST_POSTGRES holds its URL.
# Installs Debian's postgresql when no server is on the machine (needs root). Without a
# server the command still runs (PostgreSQL tests skip) unless CI=true, where it fails.
set -uo pipefail

find_bin() {
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin=$(find_bin)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql from Debian ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
    bin=$(find_bin)
fi
if [ -z "$bin" ]; then
    [ "${CI:-}" = true ] && { echo "no PostgreSQL server available" >&2; exit 1; }
    echo "no PostgreSQL server: its tests will be skipped" >&2
    exec "$@"
fi

data=$(mktemp -d /tmp/runbase-pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$data"
as_owner "'$bin/initdb' -D '$data/db' -A trust -U postgres" >/dev/null || exit 1
as_owner "'$bin/pg_ctl' -D '$data/db' -o '-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off' -l '$data/log' -w start" >/dev/null || { cat "$data/log" >&2; exit 1; }
stop() { as_owner "'$bin/pg_ctl' -D '$data/db' -m immediate stop" >/dev/null 2>&1; rm -rf "$data"; }
trap stop EXIT

export RUNBASE_TEST_POSTGRES="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
"$@"
