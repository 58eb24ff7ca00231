#!/usr/bin/env bash
# A local Gatehouse cluster: a throwaway PostgreSQL (scripts/postgres.sh), N hosts sharing it
# and one secret.key (each its own instance folder and worker pool, FastCGI over TCP on
# loopback), and one nginx on https://127.0.0.1:${GATEHOUSE_HTTPS_PORT:-8443} with every host
# in its upstream. A stand-in for several machines (README, Several hosts).
#
#   scripts/cluster.sh up [N]          N hosts (default 3); prints the URL
#   scripts/cluster.sh down            stops everything; the database goes with it
#   scripts/cluster.sh status
#   scripts/cluster.sh gatehouse ARGS  the CLI against the cluster's database
#
# State: $GATEHOUSE_CLUSTER_HOME (default var/cluster): hostK/ (instance folders), front/
# (nginx), secret.key, postgres.env (where the database runs). Workers per host:
# GATEHOUSE_WORKERS (default 2).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"
# The database is the cluster's own (postgres.env, or pg_up below): never a PG_DIR inherited
# from the caller (scripts/test.sh exports its own), which `down` would otherwise stop.
unset PG_DIR PG_PORT PG_URI

CLUSTER=${GATEHOUSE_CLUSTER_HOME:-$ROOT/var/cluster}
FRONT=$CLUSTER/front
url="https://127.0.0.1:$GATEHOUSE_HTTPS_PORT"

hosts() { ls -d "$CLUSTER"/host[0-9]* 2>/dev/null | sort -V; }
pid_of() { cat "$1" 2>/dev/null || true; }

# The database of the running cluster: sets PG_DIR and PG_URI; false when none runs.
load_postgres() {
    [ -f "$CLUSTER/postgres.env" ] || return 1
    PG_DIR=$(sed -n 's/^dir=//p' "$CLUSTER/postgres.env")
    PG_URI=$(sed -n 's/^uri=//p' "$CLUSTER/postgres.env")
    [ -S "$(ls "$PG_DIR"/.s.PGSQL.* 2>/dev/null | head -n 1)" ]
}

up() {
    local n=${1:-3}
    case $n in ''|*[!0-9]*|0) fail "usage: $0 up [N]  (N ≥ 1)" ;; esac
    load_postgres && fail "the cluster is already up ($url); run: $0 down"
    ensure_packages "${SYSTEM_PACKAGES[@]}" postgresql
    if [ -z "${GATEHOUSE_BIN:-}" ]; then
        command -v swift >/dev/null || fail "swift is not on PATH (Swift 6 toolchain required)"
        build_release
    fi
    trap 'say "up failed; stopping what it started"; down' EXIT
    mkdir -p "$CLUSTER"
    rm -rf "$CLUSTER"/host[0-9]*   # the database is new: so are the hosts

    # A short temporary path: the socket's path must fit in 107 bytes, and as root the
    # database's own user must reach it (var/ is closed to others).
    pg_up
    printf 'dir=%s\nuri=%s\n' "$PG_DIR" "$PG_URI" > "$CLUSTER/postgres.env"
    # Every host hashes and seals with the same key, or no host accepts another's tokens.
    [ -f "$CLUSTER/secret.key" ] || (umask 077 && openssl rand -hex 32 > "$CLUSTER/secret.key")
    chmod 600 "$CLUSTER/secret.key"

    # Each host's issuer is the nginx's address (GATEHOUSE_HTTPS_PORT), the one URL clients see.
    local k home port servers=()
    for k in $(seq 1 "$n"); do
        home=$CLUSTER/host$k
        port=$(free_port)
        add_host "$home" "$CLUSTER/secret.key" "$PG_URI" "$port"
        GATEHOUSE_HOME=$home GATEHOUSE_DATABASE= GATEHOUSE_HTTPS_PORT=$GATEHOUSE_HTTPS_PORT \
            GATEHOUSE_WORKERS=${GATEHOUSE_WORKERS:-2} nohup "$BIN" serve >>"$home/logs/gatehouse.log" 2>&1 &
        servers+=("127.0.0.1:$port")
    done
    for k in $(seq 1 "$n"); do
        wait_for 20 listening "${servers[$((k - 1))]#*:}" || fail "host$k did not start; see $CLUSTER/host$k/logs/gatehouse.log"
    done

    ensure_certificate "$FRONT/tls"
    mkdir -p "$FRONT/logs" "$FRONT/run"
    render_nginx "$FRONT" "$GATEHOUSE_HTTPS_PORT" "${GATEHOUSE_EXAMPLE_PORT:-$((GATEHOUSE_HTTPS_PORT + 1))}" \
        "$CLUSTER/unused.sock" on
    cluster_upstream "$FRONT" "${servers[@]}"
    nginx -p "$FRONT/nginx" -c "$FRONT/nginx/nginx.conf" || fail "nginx did not start; see $FRONT/logs/nginx-error.log"
    wait_for 20 curl -fsk "$url/health" || fail "$url/health does not answer; see $FRONT/logs/"

    local password client
    password=$(openssl rand -base64 12 | tr -d '/+=')
    printf '%s\n' "$password" | cli user add --username demo --password-stdin >/dev/null
    client=$(cli client add --name "Demo application" --redirect-uri "$url/example/callback" \
        --redirect-uri "http://127.0.0.1/callback" --grant-types authorization_code,refresh_token,client_credentials,password \
        --scope "PRODUCTION SANDBOX" --default-scope PRODUCTION --json)
    (umask 077 && printf 'Demo user:    demo / %s\nDemo client:  %s\n' "$password" "$client" > "$CLUSTER/demo-credentials.txt")
    say "$n hosts (${servers[*]}) on one PostgreSQL; demo user and client in $CLUSTER/demo-credentials.txt"
    trap - EXIT
    printf '%s\n' "$url"
}

down() {
    # The pids are read first: a master removes its pid file before it has exited.
    local home pid pids=()
    pid=$(pid_of "$FRONT/run/nginx.pid")
    if alive "$pid"; then kill -QUIT "$pid"; pids+=("$pid"); fi
    for home in $(hosts); do
        pid=$(pid_of "$home/run/gatehouse.pid")
        if alive "$pid"; then kill -TERM "$pid"; pids+=("$pid"); fi
    done
    for pid in "${pids[@]}"; do
        wait_for 40 sh -c "! kill -0 $pid 2>/dev/null" || { say "pid $pid did not stop in time; killing"; kill -9 "$pid" 2>/dev/null || true; }
    done
    if load_postgres || [ -n "${PG_DIR:-}" ]; then pg_down "$PG_DIR"; fi
    rm -f "$CLUSTER/postgres.env"
    say "cluster stopped"
}

status() {
    local home pid state=0
    if load_postgres; then echo "postgresql: running ($PG_DIR)"; else echo "postgresql: not running"; state=3; fi
    for home in $(hosts); do
        pid=$(pid_of "$home/run/gatehouse.pid")
        if alive "$pid"; then
            echo "$(basename "$home"): pid $pid, $(sed -n 's/^listen = //p' "$home/gatehouse.conf" | tail -n 1), workers $(pgrep -P "$pid" | tr '\n' ' ')"
        else
            echo "$(basename "$home"): not running"; state=3
        fi
    done
    pid=$(pid_of "$FRONT/run/nginx.pid")
    if alive "$pid"; then echo "nginx: pid $pid, $url"; else echo "nginx: not running"; state=3; fi
    return $state
}

# The CLI with the first host's configuration: every host's database is the same.
cli() {
    local first
    first=$(hosts | head -n 1)
    [ -n "$first" ] || fail "no cluster in $CLUSTER; run: $0 up"
    GATEHOUSE_HOME=$first GATEHOUSE_DATABASE= "$BIN" "$@"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    status) status ;;
    gatehouse) shift; cli "$@" ;;
    *) fail "usage: $0 up [N] | down | status | gatehouse ARGS…" ;;
esac
