#!/bin/sh
# Start MariaDB as the official mysql image's entry point starts MySQL. Options alone as arguments start the
# server with them. On the first start (no mysql/ folder in the data folder) create the server's files, the
# root account (password MYSQL_ROOT_PASSWORD, or none with MYSQL_ALLOW_EMPTY_PASSWORD; reachable from the
# hosts MYSQL_ROOT_HOST names, default any), the database MYSQL_DATABASE and the account MYSQL_USER with
# MYSQL_PASSWORD and every privilege on that database, then run the scripts of /docker-entrypoint-initdb.d
# (*.sh sourced, *.sql through the client into MYSQL_DATABASE) against a server listening only on a socket.
set -eu
if [ "${1#-}" != "$1" ]; then
    set -- mariadbd "$@"
fi
case "$1" in
    mariadbd | mysqld) shift ;;
    *) exec "$@" ;;
esac

datadir=/var/lib/mysql
previous=
for arg do
    case "$previous" in --datadir) datadir=$arg ;; esac
    case "$arg" in --datadir=*) datadir=${arg#--datadir=} ;; --help | --version | -V) exec mariadbd "$@" ;; esac
    previous=$arg
done

fail() {
    echo "mariadb: $*" >&2
    exit 1
}
# a value inside '...' in SQL, and a name inside `...`
quoted() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }
name() { printf '%s' "$1" | sed -e 's/`/``/g'; }

if [ ! -d "$datadir/mysql" ]; then
    if [ -z "${MYSQL_ROOT_PASSWORD:-}" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
        fail "set MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD=yes) for the first start"
    fi
    user=${MYSQL_USER:-}
    if [ "$user" = root ]; then
        fail "MYSQL_USER=root: root is made from MYSQL_ROOT_PASSWORD; name another account"
    fi
    if [ -n "$user" ] && [ -z "${MYSQL_PASSWORD:-}" ]; then
        fail "MYSQL_USER is set without MYSQL_PASSWORD"
    fi
    echo "mariadb: first start: creating the server's files in $datadir"
    # --force: no host name lookup (the accounts name addresses; a container may have no /etc/hosts)
    if ! output=$(mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve --force "$@" 2>&1); then
        printf '%s\n' "$output" >&2
        fail "mariadb-install-db failed (its output is above)"
    fi
    # on the configured socket only, where the scripts' clients look for it
    mariadbd --datadir="$datadir" "$@" --skip-networking &
    pid=$!
    waited=0
    until mariadb-admin --user=root --silent ping > /dev/null 2>&1; do
        kill -0 "$pid" 2> /dev/null || fail "the server stopped during the first start (its log is above)"
        waited=$((waited + 1))
        [ "$waited" -le 60 ] || fail "the server did not answer on its socket within 60 s"
        sleep 1
    done
    root_password=$(quoted "${MYSQL_ROOT_PASSWORD:-}")
    root_host=$(quoted "${MYSQL_ROOT_HOST:-%}")
    database=${MYSQL_DATABASE:-}
    {
        # only root and the server's own account, then the accounts asked for
        echo "DELETE FROM mysql.global_priv WHERE NOT (Host = 'localhost' AND User IN ('root', 'mariadb.sys'));"
        echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
        echo "FLUSH PRIVILEGES;"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';"
        if [ "$root_host" != localhost ]; then
            echo "CREATE USER 'root'@'$root_host' IDENTIFIED BY '$root_password';"
            echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
        fi
        if [ -n "$database" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$(name "$database")\`;"
        fi
        if [ -n "$user" ]; then
            echo "CREATE USER '$(quoted "$user")'@'%' IDENTIFIED BY '$(quoted "$MYSQL_PASSWORD")';"
            if [ -n "$database" ]; then
                echo "GRANT ALL ON \`$(name "$database")\`.* TO '$(quoted "$user")'@'%';"
            fi
        fi
    } | mariadb --user=root
    # root's password from here on, for the scripts' clients too
    MYSQL_PWD=${MYSQL_ROOT_PASSWORD:-}
    export MYSQL_PWD
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh) echo "mariadb: running $script"; . "$script" ;;
            *.sql)
                echo "mariadb: running $script"
                mariadb --user=root ${database:+--database="$database"} < "$script"
                ;;
            *) ;;
        esac
    done
    mariadb-admin --user=root shutdown
    wait "$pid"
    unset MYSQL_PWD
    echo "mariadb: first start done"
fi
exec mariadbd --datadir="$datadir" "$@"
