#!/bin/sh
# Start PostgreSQL; on the first start (no PG_VERSION in PGDATA) create the server's files with the superuser
# POSTGRES_USER (default postgres) and POSTGRES_PASSWORD, the database POSTGRES_DB, then run the scripts of
# /docker-entrypoint-initdb.d (*.sh sourced, *.sql through psql) against a server listening only on its socket.
set -eu
if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
    exec "$@"
fi
shift
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA POSTGRES_USER POSTGRES_DB
socket_dir=/var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: POSTGRES_PASSWORD is empty: set it (the superuser's password) for the first start" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA"
    rm -f "$password_file"
    printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$socket_dir" start
    export PGHOST="$socket_dir" PGUSER="$POSTGRES_USER"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        psql -v ON_ERROR_STOP=1 --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh) echo "postgres: running $script"; . "$script" ;;
            *.sql) echo "postgres: running $script"; psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" -f "$script" ;;
            *) ;;
        esac
    done
    unset PGHOST PGUSER
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec postgres -D "$PGDATA" -c "unix_socket_directories=$socket_dir" "$@"
