#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from Debian's postgresql package, for tests and local
# clusters: initdb into a temporary folder, a unix socket in that folder only (no TCP), its
# own port, trust authentication (nothing else can reach the socket's folder), stopped and
# removed afterwards. The system's service and its clusters are never touched.
#
#   source scripts/postgres.sh; pg_up [DIR]; ...; pg_down     (sets PG_DIR and PG_URI)
#   scripts/postgres.sh up [DIR]    prints the URI;   scripts/postgres.sh down DIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The newest installed server version's binaries (/usr/lib/postgresql/15/bin on bookworm).
pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$dir/initdb" ] || fail "PostgreSQL server binaries not found (apt-get install postgresql)"
    printf '%s\n' "$dir"
}

# initdb refuses to run as root: as root, the cluster belongs to an unprivileged system user.
PG_TEST_USER=gatehouse-test
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$PG_TEST_USER" -- "$@")
    else
        "$@"
    fi
}

# pg_up [DIR]: creates and starts the cluster in DIR (default: a new temporary folder) with a
# database `gatehouse` owned by the role `gatehouse`; sets PG_DIR, PG_PORT and PG_URI.
pg_up() {
    local bin
    bin=$(pg_bindir)
    PG_DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/gh-pg.XXXXXX")}
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        id -u "$PG_TEST_USER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_TEST_USER"
        chown "$PG_TEST_USER" "$PG_DIR"
        chmod 0755 "$PG_DIR"   # others reach the socket (0777, as PostgreSQL makes it) through it
    fi
    PG_PORT=$(( 20000 + RANDOM % 20000 ))
    pg_as "$bin/initdb" -D "$PG_DIR/data" -U gatehouse -A trust -E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; fail "initdb failed"; }
    # fsync off: a test cluster that loses its data in a power cut loses nothing of value.
    pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
        -o "-c listen_addresses='' -k $PG_DIR -p $PG_PORT -c max_connections=300 -c fsync=off ${PG_EXTRA_OPTIONS:-}" \
        start >/dev/null || { cat "$PG_DIR/postgres.log" >&2; fail "PostgreSQL did not start"; }
    pg_as "$bin/createdb" -h "$PG_DIR" -p "$PG_PORT" -U gatehouse gatehouse
    PG_URI="postgresql://gatehouse@/gatehouse?host=$PG_DIR&port=$PG_PORT"
    export PG_DIR PG_PORT PG_URI
}

# pg_down [DIR]: stops the cluster of DIR (default PG_DIR) and removes the folder. Returns
# when the server has exited: pg_ctl returns when the pid file is gone, a moment before.
pg_down() {
    local dir=${1:-${PG_DIR:-}} postmaster
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    postmaster=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    pg_as "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    if alive "$postmaster"; then wait_for 15 sh -c "! kill -0 $postmaster 2>/dev/null" || true; fi
    rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        up) pg_up "${2:-}"; printf '%s\n' "$PG_URI" ;;
        down) [ -n "${2:-}" ] || fail "usage: $0 down DIR"; pg_down "$2" ;;
        *) fail "usage: $0 up [DIR] | down DIR" ;;
    esac
fi
