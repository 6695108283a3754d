#!/bin/sh
# Arguments that are options only (`--appendonly yes ...`) are redis-server's; anything else runs as given.
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
exec "$@"
