#!/usr/bin/env bash
# The official image's start-up, the parts orderflow's compose file relies on. On an empty
# PGDATA: initdb as POSTGRES_USER with POSTGRES_PASSWORD; password (scram-sha-256) logins from
# the network, trust on the socket and loopback inside the container; POSTGRES_DB created; then
# every file of /docker-entrypoint-initdb.d run in name order (*.sh executed, or sourced when not
# executable; *.sql through psql) against a temporary server that listens on the socket only,
# which is stopped before the real one starts. A PGDATA that holds a database is left as it is.
set -Eeuo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required to initialise a new database}"
    export POSTGRES_USER="${POSTGRES_USER:-postgres}"
    export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    echo "docker-entrypoint: initialising $PGDATA"
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=trust ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres -qc "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh)
                echo "docker-entrypoint: running $f"
                if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql)
                echo "docker-entrypoint: running $f"
                "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) echo "docker-entrypoint: ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "docker-entrypoint: initialisation complete"
fi

exec postgres -c listen_addresses='*' "${@:2}"
