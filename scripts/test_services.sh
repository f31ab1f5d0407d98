#!/usr/bin/env bash
# PostgreSQL and Redis for `make test`: reuse the ones already listening, otherwise start
# throwaway instances with their data under var/test-services/ and stop them afterwards.
#
#   scripts/test_services.sh up PG_PORT REDIS_PORT   # start what is missing
#   scripts/test_services.sh down                    # stop only what `up` started
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=var/test-services
INSTALL_HINT="make test needs PostgreSQL and Redis on this machine: install them (Debian/Ubuntu: apt-get install postgresql redis-server; macOS: brew install postgresql redis)."

pg_bin() {
    # Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
    command -v "$1" 2>/dev/null && return
    ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1 || true
}

as_owner() {
    # The PostgreSQL server refuses to run as root; root runs it as the postgres user.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
    local port=$1 initdb pg_ctl data
    if pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; then return; fi
    initdb=$(pg_bin initdb); pg_ctl=$(pg_bin pg_ctl)
    if [ -z "$initdb" ] || [ -z "$pg_ctl" ] || ! command -v pg_isready >/dev/null; then
        echo "$INSTALL_HINT" >&2; exit 1
    fi
    data=$(pwd)/$STATE/pg
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data" && chmod 700 "$data"
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$STATE/pg-init.log"
    fi
    echo "test services: starting a throwaway PostgreSQL on 127.0.0.1:$port ($STATE/pg)"
    # Throwaway data: no fsync, no full-page writes.
    as_owner "$pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
        -o "-h 127.0.0.1 -p $port -k $data -c fsync=off -c full_page_writes=off" >/dev/null
    echo "$pg_ctl" >"$STATE/pg.started"
}

redis_up() {
    local port=$1
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then return; fi
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        echo "$INSTALL_HINT" >&2; exit 1
    fi
    echo "test services: starting a throwaway Redis on 127.0.0.1:$port"
    mkdir -p "$STATE/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$(pwd)/$STATE/redis" --logfile "$(pwd)/$STATE/redis/server.log"
    echo "$port" >"$STATE/redis.started"
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "test services: Redis did not start on port $port (see $STATE/redis/server.log)" >&2
    exit 1
}

down() {
    if [ -f "$STATE/pg.started" ]; then
        as_owner "$(cat "$STATE/pg.started")" -D "$(pwd)/$STATE/pg" -m fast -w stop >/dev/null
        rm -f "$STATE/pg.started"
        echo "test services: stopped the throwaway PostgreSQL"
    fi
    if [ -f "$STATE/redis.started" ]; then
        redis-cli -h 127.0.0.1 -p "$(cat "$STATE/redis.started")" shutdown nosave >/dev/null || true
        rm -f "$STATE/redis.started"
        echo "test services: stopped the throwaway Redis"
    fi
}

case "${1:-}" in
up)
    mkdir -p "$STATE"
    trap 'down' ERR
    pg_up "${2:-5432}"
    redis_up "${3:-6379}"
    ;;
down) down ;;
*) echo "usage: $0 up PG_PORT REDIS_PORT | down" >&2; exit 2 ;;
esac
