#!/usr/bin/env bash
# The benchmark. Brings up a private Gatehouse (temporary GATEHOUSE_HOME, free ports,
# its own nginx and worker pool, its own clients and user), runs each scenario with wrk
# (-t2) at each connection count, prints a table, and removes everything on exit.
#
#   scripts/bench.sh [--workers N] [--duration S] [--connections "16 64"]
#                    [--scenarios "health client_credentials ..."] [--seed-tokens N]
#                    [--worker-sweep "1 2 4 8"] [--codes N] [--database URI] [--hosts N]
#                    [--pg-fsync on|off] [--rounds N] [--json] [--keep]
#
# Scenarios: health, client_credentials, code_exchange (codes minted ahead through the
# real /authorize, each exchanged once), code_exchange_openid (the same with scope openid:
# each answer carries an ES256 ID Token; not in the default list; its note gives the ratio to
# code_exchange run in the same round), full_flow (GET /authorize -> 302 -> POST /token,
# both in wrk; its requests/s are authorize+token PAIRS per second, its latencies per
# HTTP request), refresh (rotation chains, one per connection), introspect, proxied
# (GET /example/public/: the example upstream through nginx, no token check), validate
# (GET /example/api/ through nginx auth_request; its note gives the ratio to proxied),
# login_flood (client_credentials and validate alone, then beside 32 connections posting
# wrong passwords to the login form, each every BENCH_FLOOD_DELAY_MS (default 100 ms; 0 =
# as fast as answers come): "limit" through the shipped limit_req, "nolimit"
# with it lifted, as a flood from many addresses would be, where only the bound on
# concurrent password hashing protects the pool; notes give the ratio to the quiet run).
# --rounds N runs the whole list N times, every other round in reverse order, so that a
# drift of this machine's speed (other load, a growing database) weighs on every scenario
# alike; each row is then the run with the median requests/s, its note the range, and
# code_exchange_openid's note the median of its per-round ratios to code_exchange (and
# the ratio of the two scenarios' requests summed over all rounds).
# health always runs: it is the baseline of the ratio column. requests/s counts only expected answers; "errors" is
# unexpected statuses plus socket errors. GATEHOUSE_BIN overrides the binary. --database
# runs the instance on PostgreSQL (a libpq URI of an empty database or schema, e.g. from
# scripts/postgres.sh up); --seed-tokens is SQLite-only.
# --hosts N runs N hosts on one PostgreSQL, as scripts/cluster.sh does: each its own instance
# folder, secret.key copy and worker pool (--workers is per host) with FastCGI on a loopback
# TCP port, all N in the upstream of the bench's one nginx. Without --database it starts its
# own throwaway PostgreSQL (scripts/postgres.sh) and removes it at the end, with fsync on
# unless --pg-fsync off (durable commits are the honest number; SQLite's are fsynced too).
# --hosts 1 is one host over TCP, the baseline of 2 and 3.
# Columns: "cpu us" is the CPU time of the Gatehouse workers (every host) per answered
# request, "pg us" that of the PostgreSQL server (postmaster, backends, background
# processes; found through pg_stat_activity, so only a server on this machine), "nginx us"
# that of nginx, all from /proc/PID/stat (utime+stime, plus what a parent collected from
# children that exited), "wrk us" that of wrk, "other us" the rest of the machine's busy time
# (/proc/stat) per request; "busy%" is the machine's CPU use during the run: near 100 the
# cores are the limit, and the columns say who spends them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"

ALL="health client_credentials code_exchange full_flow refresh introspect proxied validate login_flood"
OPTIONAL="code_exchange_openid"
workers="" duration=5 connections="16 64" scenarios=$ALL seed=0 sweep="" codes="" json=0 keep=0 database="" hosts="" pg_fsync=on rounds=1
while [ $# -gt 0 ]; do
    case $1 in
        --workers) workers=$2 ;;
        --duration) duration=$2 ;;
        --connections) connections=$2 ;;
        --scenarios) scenarios=$2 ;;
        --seed-tokens) seed=$2 ;;
        --worker-sweep) sweep=$2 ;;
        --codes) codes=$2 ;;
        --database) database=$2 ;;
        --hosts) hosts=$2 ;;
        --pg-fsync) pg_fsync=$2 ;;
        --rounds) rounds=$2 ;;
        --json) json=1; shift; continue ;;
        --keep) keep=1; shift; continue ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) fail "unknown option: $1 (see --help)" ;;
    esac
    [ $# -ge 2 ] || fail "$1 needs a value"
    shift 2
done
is_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for n in $duration $connections $sweep ${workers:-1} ${codes:-1} ${hosts:-1} $rounds; do is_int "$n" || fail "not a positive integer: $n"; done
[[ $seed =~ ^[0-9]+$ ]] || fail "--seed-tokens: not a number: $seed"
for s in $scenarios; do [[ " $ALL $OPTIONAL " == *" $s "* ]] || fail "unknown scenario: $s (one of: $ALL $OPTIONAL)"; done
[ -n "$database$hosts" ] && [ "$seed" -gt 0 ] && fail "--seed-tokens seeds through sqlite3: not with --database or --hosts"
case $database in ''|postgresql://*|postgres://*) ;; *) [ -z "$hosts" ] || fail "--hosts needs PostgreSQL: --database postgresql://… (or none: a throwaway one)" ;; esac
[[ $pg_fsync =~ ^(on|off)$ ]] || fail "--pg-fsync: on or off, not $pg_fsync"
own_pg=0
[ -n "$hosts" ] && [ -z "$database" ] && own_pg=1
scenarios="health ${scenarios//health/}"
for c in $connections; do [ "$c" -ge 2 ] || fail "connections must be >= 2 (wrk -t2)"; done

ensure_packages wrk nginx curl sqlite3 openssl
python3 -c 'import requests' 2>/dev/null || ensure_packages python3 python3-requests
[ -n "$database$hosts" ] && ensure_packages postgresql-client
[ "$own_pg" -eq 1 ] && ensure_packages postgresql
[ -x "$BIN" ] || fail "no gatehouse binary at $BIN (build first, or set GATEHOUSE_BIN)"

# ---- the private instance ---------------------------------------------------------------
BENCH_DIR=$ROOT/scripts/bench
export BENCH_DIR BENCH_THREADS=2
export GATEHOUSE_HOME; GATEHOUSE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
home=$GATEHOUSE_HOME
# new_port: a free loopback port none of this run's others (free_port's are random).
ports=()
new_port() {
    local p
    while p=$(free_port); [[ " ${ports[*]} " == *" $p "* ]]; do :; done
    ports+=("$p"); printf '%s\n' "$p"
}
export GATEHOUSE_HTTPS_PORT; GATEHOUSE_HTTPS_PORT=$(new_port)
example_port=$(new_port)
master="" masters=() host_homes=("$home") upstream=() nginx="" wrk_pid="" PG_DIR=""

cleanup() {
    set +e
    [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
    [ -n "$nginx" ] && kill -QUIT "$nginx" 2>/dev/null
    stop_gatehouse
    [ -n "$nginx" ] && wait "$nginx" 2>/dev/null
    [ "$own_pg" -eq 1 ] && [ -n "$PG_DIR" ] && pg_down "$PG_DIR"
    if [ "$keep" -eq 1 ]; then say "kept $home"; else rm -rf "$home"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every host (one unless --hosts): host_homes are their instance folders, masters their
# masters' pids; master is the first's.
readies() { if [ -f "$1/logs/gatehouse.log" ]; then grep -c event=master_ready "$1/logs/gatehouse.log" || true; else echo 0; fi; }
more_readies_than() { [ "$(readies "$1")" -gt "$2" ]; }
start_gatehouse() {  # [WORKERS]
    local h before=() i
    for h in "${host_homes[@]}"; do before+=("$(readies "$h")"); done
    masters=()
    for h in "${host_homes[@]}"; do
        GATEHOUSE_HOME=$h "$BIN" serve ${1:+--workers "$1"} >>"$h/logs/gatehouse.log" 2>&1 &
        masters+=($!)
    done
    master=${masters[0]}
    for i in "${!host_homes[@]}"; do
        wait_for 30 more_readies_than "${host_homes[i]}" "${before[i]}" ||
            fail "gatehouse did not start; see ${host_homes[i]}/logs/gatehouse.log"
    done
}
stop_gatehouse() {
    local m
    for m in "${masters[@]}"; do kill -TERM "$m" 2>/dev/null; done
    for m in "${masters[@]}"; do wait "$m" 2>/dev/null; done
    masters=() master=""
}
worker_pids() { local m; for m in "${masters[@]}"; do pgrep -P "$m"; done | sort -n; }

say "bench instance in $home (https port $GATEHOUSE_HTTPS_PORT)"
mkdir -p "$home/logs" "$home/run"; touch "$home/logs/gatehouse.log"
if [ "$own_pg" -eq 1 ]; then
    # fsync on by default: the durable number is the honest one (SQLite's commits are fsynced).
    PG_EXTRA_OPTIONS="-c fsync=$pg_fsync ${PG_EXTRA_OPTIONS:-}" pg_up
    database=$PG_URI
    say "PostgreSQL in $PG_DIR (fsync=$pg_fsync)"
fi
[ -n "$database" ] && export GATEHOUSE_DATABASE=$database
bench_config() {  # HOME: the benchmark's lines of HOME/gatehouse.conf
    printf '\n# bench.sh: codes are minted ahead of the code_exchange runs\ncode_lifetime = 600\n' >>"$1/gatehouse.conf"
    # Extra configuration lines for the benchmark instance, e.g. GATEHOUSE_BENCH_CONFIG="durability = normal".
    # login_flood comes from one address: without this, the per-address lock would make most
    # of its posts cheap, where a flood from many addresses would not be.
    printf 'login_address_max_failures = 100000\n' >>"$1/gatehouse.conf"
    [ -n "${GATEHOUSE_BENCH_CONFIG:-}" ] && printf '%s\n' "$GATEHOUSE_BENCH_CONFIG" >>"$1/gatehouse.conf"
    return 0
}
if [ -z "$hosts" ]; then
    "$BIN" migrate >/dev/null
    bench_config "$home"
    socket=$(configured_socket "$home")
else
    # As scripts/cluster.sh: the first host is the bench's own folder (the CLI below runs there).
    (umask 077 && openssl rand -hex 32 >"$home/cluster.key")
    for k in $(seq 1 "$hosts"); do
        h=$home; [ "$k" -gt 1 ] && h=$home/host$k
        port=$(new_port)
        add_host "$h" "$home/cluster.key" "$database" "$port"
        bench_config "$h"
        [ "$k" -gt 1 ] && host_homes+=("$h")
        upstream+=("127.0.0.1:$port")
    done
    socket=$home/run/unused.sock
fi
ensure_certificate "$home/tls"
# render_bench_nginx: nginx.conf for the bench, with every host in the upstream.
render_bench_nginx() {
    render_nginx "$home" "$GATEHOUSE_HTTPS_PORT" "$example_port" "$socket" off
    if [ ${#upstream[@]} -gt 0 ]; then cluster_upstream "$home" "${upstream[@]}"; fi
}
render_bench_nginx

export BENCH_URL="https://127.0.0.1:$GATEHOUSE_HTTPS_PORT" BENCH_CA="$home/tls/cert.pem"
export BENCH_REDIRECT="$BENCH_URL/bench/callback" BENCH_USER=bench
export BENCH_PASSWORD; BENCH_PASSWORD=$(openssl rand -hex 12)
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
app=$("$BIN" client add --name "Bench app" --redirect-uri "$BENCH_REDIRECT" --json \
    --grant-types authorization_code,refresh_token,client_credentials,password)
rs=$("$BIN" client add --name "Bench resource server" --resource-server --grant-types client_credentials --json)
printf '%s\n' "$BENCH_PASSWORD" | "$BIN" user add --username "$BENCH_USER" --password-stdin >/dev/null
export BENCH_CLIENT_ID BENCH_CLIENT_SECRET BENCH_BASIC BENCH_RS_BASIC
BENCH_CLIENT_ID=$(field client_id <<<"$app"); BENCH_CLIENT_SECRET=$(field client_secret <<<"$app")
BENCH_BASIC="Basic $(printf '%s:%s' "$BENCH_CLIENT_ID" "$BENCH_CLIENT_SECRET" | base64 -w0)"
BENCH_RS_BASIC="Basic $(printf '%s:%s' "$(field client_id <<<"$rs")" "$(field client_secret <<<"$rs")" | base64 -w0)"
# code_exchange_openid: a first-party relying party (no consent page) whose codes carry openid.
oidc=$("$BIN" client add --name "Bench RP" --redirect-uri "$BENCH_REDIRECT" --json --skip-consent \
    --scope "openid PRODUCTION" --default-scope "openid PRODUCTION")
OIDC_CLIENT_ID=$(field client_id <<<"$oidc")
OIDC_BASIC="Basic $(printf '%s:%s' "$OIDC_CLIENT_ID" "$(field client_secret <<<"$oidc")" | base64 -w0)"

if [ "$seed" -gt 0 ]; then
    say "seeding $seed live tokens..."
    sqlite3 "$home/gatehouse.db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN IMMEDIATE;
CREATE TEMP TABLE base AS SELECT COALESCE(MAX(id), 0) AS id FROM families;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $seed)
INSERT INTO families (client_id, scope, created_at, expires_at)
    SELECT '$BENCH_CLIENT_ID', 'PRODUCTION', unixepoch(), unixepoch() + 315360000 FROM n;
INSERT INTO tokens (hash, kind, family_id, client_id, scope, issued_at, expires_at)
    SELECT randomblob(32), 0, id, client_id, scope, created_at, expires_at
    FROM families WHERE id > (SELECT id FROM temp.base);
COMMIT;
SQL
fi

start_gatehouse "$workers"
nginx -p "$home/nginx" -c "$home/nginx/nginx.conf" 2>>"$home/logs/nginx-error.log" &
nginx=$!
wait_for 20 curl -fs --cacert "$BENCH_CA" "$BENCH_URL/health" || fail "nginx does not answer; see $home/logs/"
nworkers=$(worker_pids | wc -l)
export BENCH_COOKIE; BENCH_COOKIE=$(python3 "$BENCH_DIR/mint.py" login)
python3 "$BENCH_DIR/mint.py" tokens --count 1 --cookie "$BENCH_COOKIE" --out "$home/access.txt"
export BENCH_TOKEN; BENCH_TOKEN=$(cut -d' ' -f1 "$home/access.txt")

# ---- running wrk --------------------------------------------------------------------------
# run_wrk SCRIPT CONNECTIONS: prints the BENCH line of common.lua's done().
run_wrk() {
    local out
    out=$(wrk -t"$BENCH_THREADS" -c"$2" -d"${duration}s" --timeout 10s -s "$BENCH_DIR/$1.lua" "$BENCH_URL") ||
        fail "wrk $1 failed: $out"
    grep '^BENCH ' <<<"$out" || fail "no BENCH line from wrk $1: $out"
}
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# mint_codes COUNT FILE: codes through the real /authorize, with wrk (mint.lua).
mint_codes() {
    rm -f "$2".*
    BENCH_COUNT=$1 BENCH_FILE=$2 wrk -t"$BENCH_THREADS" -c16 -d600s -s "$BENCH_DIR/mint.lua" "$BENCH_URL" >/dev/null &
    wrk_pid=$!
    until [ "$(ls "$2".*.done 2>/dev/null | wc -l)" -ge "$BENCH_THREADS" ]; do
        kill -0 "$wrk_pid" 2>/dev/null || fail "minting codes failed (wrk exited early)"
        sleep 0.2
    done
    kill -INT "$wrk_pid" 2>/dev/null || true; wait "$wrk_pid" || true; wrk_pid=""
    cat "$2".[0-9] >"$2"
}

declare -A RPS
results=$home/results.tsv   # scenario connections rps p50 p99 errors worker-cpu-us note pg-cpu-us nginx-cpu-us busy% wrk-cpu-us other-cpu-us
runs=$home/runs.tsv         # the same plus the round, one line per run (results.tsv is made from it)
round=1
run_scenario() {  # SCENARIO CONNECTIONS
    local s=$1 c=$2 note="" line
    case $s in
        code_exchange|code_exchange_openid)
            local n=${codes:-$(( ${RPS[client_credentials,$c]:-3000} * duration * 3 / 2 + 1000 ))}
            say "  minting $n codes..."
            if [ "$s" = code_exchange_openid ]; then
                BENCH_CLIENT_ID=$OIDC_CLIENT_ID mint_codes "$n" "$home/codes.txt"
            else
                mint_codes "$n" "$home/codes.txt"
            fi
            export BENCH_FILE=$home/codes.txt ;;
        refresh)
            python3 "$BENCH_DIR/mint.py" tokens --count "$c" --cookie "$BENCH_COOKIE" --out "$home/chains.txt"
            cut -d' ' -f2 "$home/chains.txt" >"$home/refresh.txt"
            export BENCH_FILE=$home/refresh.txt ;;
    esac
    [ "$s" = login_flood ] && { login_flood "$c"; return; }
    say "  $s, $c connections..."
    local snap; snap=$(cpu_snapshot)
    if [ "$s" = code_exchange_openid ]; then
        line=$(BENCH_BASIC=$OIDC_BASIC run_wrk "$s" "$c")
    else
        line=$(run_wrk "$s" "$c")
    fi
    line="$line $(cpu_per_request "$snap" "$line")"
    [ "$s" = full_flow ] && note="pairs/s"
    [ "$(val starved_threads "$line")" -gt 0 ] && note="ran out of input" && say "  warning: $s ran out of input at $c connections (code_exchange: raise --codes)"
    record "$s" "$c" "$line" "$note"
}

# ticks PID...: utime+stime of each PID, in clock ticks (0 for one that is gone).
ticks() {
    local t=0 p
    for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done
    echo "$t"
}
# reaped PID: the CPU time PID has collected from its children that exited (cutime+cstime).
reaped() { awk '{print $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# tree_ticks PID: PID's own CPU time, its live children's and its exited children's.
tree_ticks() {
    [ -n "$1" ] || { echo 0; return; }
    # shellcheck disable=SC2046
    echo $(( $(ticks "$1" $(pgrep -P "$1")) + $(reaped "$1") ))
}
# CPU time of the worker pools, in clock ticks: the live workers' own, plus what the masters
# have collected from workers that exited (recycled after max_requests).
worker_ticks() {
    local m t=0
    # shellcheck disable=SC2046
    for m in "${masters[@]}"; do t=$(( t + $(reaped "$m") + $(ticks $(pgrep -P "$m")) )); done
    echo "$t"
}
# The PostgreSQL server's postmaster, when it runs on this machine: the parent of its
# checkpointer, whose pid pg_stat_activity gives. Empty on SQLite or a remote server.
postmaster=""
find_postmaster() {
    local pid ppid
    case ${GATEHOUSE_DATABASE:-} in postgresql://*|postgres://*) ;; *) return 0 ;; esac
    pid=$(psql -X -At -d "$GATEHOUSE_DATABASE" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'" 2>/dev/null | head -n 1)
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || return 0
    ppid=$(awk '{print $4}' "/proc/$pid/stat")
    [ "$(cat "/proc/$ppid/comm" 2>/dev/null)" = postgres ] && postmaster=$ppid
    return 0
}
# machine_ticks: busy and total CPU time of the machine since boot (/proc/stat; busy is
# user, nice, system, irq and softirq; total adds idle, iowait and steal).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }
# cpu_snapshot: "WORKERS POSTGRES NGINX CLIENT BUSY TOTAL" in clock ticks, before a run.
# CLIENT is what this script has collected from its children: wrk, mostly.
cpu_snapshot() { echo "$(worker_ticks) $(tree_ticks "$postmaster") $(tree_ticks "$nginx") $(reaped $$) $(machine_ticks)"; }
# cpu_per_request SNAPSHOT BENCH_LINE: "cpu_us=W pg_us=P nginx_us=N wrk_us=C other_us=O busy=B":
# CPU microseconds per answered request of the workers, PostgreSQL (- without a local
# PostgreSQL), nginx, wrk, and the rest of the machine's busy time (the kernel's loopback
# work that no process is charged for, and whatever else runs: noise), and the machine's
# busy percentage over the run. Unlike requests/s, the first four hardly move with
# whatever else the machine is running.
cpu_per_request() {
    local n=$(( $(val good "$2") + $(val bad "$2") ))
    awk -v hz="$(getconf CLK_TCK)" -v n="$n" -v pg="${postmaster:-}" \
        'NR == 1 { for (i = 1; i <= 6; i++) a[i] = $i } NR == 2 { for (i = 1; i <= 6; i++) d[i] = $i - a[i] }
         END { us = n > 0 ? 1e6 / hz / n : 0
               pgus = (pg == "") ? "-" : sprintf("%.0f", d[2] * us)
               busy = (d[6] > 0) ? sprintf("%.0f", 100 * d[5] / d[6]) : "-"
               other = (d[5] - d[1] - d[2] - d[3] - d[4]) * us
               printf "cpu_us=%.0f pg_us=%s nginx_us=%.0f wrk_us=%.0f other_us=%.0f busy=%s\n", d[1] * us, pgus, d[3] * us,
                   d[4] * us, (other > 0 ? other : 0), busy }' <<<"$1
$(cpu_snapshot)"
}

# record ROW CONNECTIONS BENCH_LINE NOTE: one row of the results table.
record() {
    local s=$1 c=$2 line=$3 note=$4 rps p50 p99 errors cpu pg ngx busy client other
    rps=$(val rps "$line"); p50=$(val p50_ms "$line"); p99=$(val p99_ms "$line"); cpu=$(val cpu_us "$line")
    pg=$(val pg_us "$line"); ngx=$(val nginx_us "$line"); busy=$(val busy "$line")
    client=$(val wrk_us "$line"); other=$(val other_us "$line")
    errors=$(( $(val bad "$line") + $(val socket_errors "$line") ))
    [ "$errors" -gt 0 ] && say "  warning: $errors errors (statuses $(val statuses "$line"), socket errors $(val socket_errors "$line"))"
    [ "$s" = full_flow ] && rps=$(awk -v r="$rps" 'BEGIN{printf "%.1f", r/2}')
    [ "$s" = validate ] && [ -n "${RPS[proxied,$c]:-}" ] && [ "${RPS[proxied,$c]}" -gt 0 ] \
        && note="vs proxied: $(awk -v a="$rps" -v b="${RPS[proxied,$c]}" 'BEGIN{printf "%.2f", a/b}')"
    RPS[$s,$c]=${rps%.*}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$c" "$rps" "$p50" "$p99" "$errors" "${cpu:--}" "$note" \
        "${pg:--}" "${ngx:--}" "${busy:--}" "${client:--}" "${other:--}" "$round" >>"$runs"
}

# set_login_rate RATE: re-renders nginx with the login limit at RATE and reloads it.
set_login_rate() {
    GATEHOUSE_LOGIN_RATE=$1 render_bench_nginx
    nginx -p "$home/nginx" -c "$home/nginx/nginx.conf" -s reload 2>>"$home/logs/nginx-error.log"
    sleep 1
}

# login_flood CONNECTIONS: see the header. Rows "lf <variant> <what>".
login_flood() {
    local c=$1 form line variant s flood_pid
    form=$(python3 "$BENCH_DIR/mint.py" loginform) || fail "login_flood: no login form"
    export BENCH_FLOOD_COOKIE BENCH_FLOOD_FORM
    BENCH_FLOOD_COOKIE=$(sed -n 1p <<<"$form"); BENCH_FLOOD_FORM=$(sed -n 2p <<<"$form")
    for variant in quiet limit nolimit; do
        [ "$variant" = nolimit ] && set_login_rate 100000r/s
        if [ "$variant" != quiet ]; then
            say "  login_flood: 32 connections posting wrong passwords ($variant)..."
            wrk -t1 -c32 -d600s --timeout 10s -s "$BENCH_DIR/login_flood.lua" "$BENCH_URL" >"$home/flood.out" 2>&1 &
            flood_pid=$!; wrk_pid=$flood_pid
            sleep 1
        fi
        for s in client_credentials validate; do
            say "  login_flood ($variant): $s, $c connections..."
            line=$(run_wrk "$s" "$c")
            local note=""
            [ "$variant" != quiet ] && note="$(awk -v a="$(val rps "$line")" -v b="${RPS[lf quiet $s,$c]}" 'BEGIN{printf "%.2f", a/b}') of quiet"
            record "lf $variant $s" "$c" "$line" "$note"
        done
        if [ "$variant" != quiet ]; then
            kill -INT "$flood_pid" 2>/dev/null; wait "$flood_pid" || true; wrk_pid=""
            line=$(grep '^BENCH ' "$home/flood.out") || fail "login_flood: no BENCH line: $(cat "$home/flood.out")"
            record "lf $variant posts" 32 "$line" "statuses $(val statuses "$line")"
        fi
    done
    set_login_rate "${GATEHOUSE_LOGIN_RATE:-10r/s}"
}

find_postmaster
# What the database is, for the report: "sqlite", or "postgresql VERSION fsync=… synchronous_commit=…".
dbinfo=sqlite
if [ -n "$database" ]; then
    dbinfo="postgresql $(psql -X -At -F ' ' -d "$database" -c "SELECT current_setting('server_version'), 'fsync=' || current_setting('fsync'), 'synchronous_commit=' || current_setting('synchronous_commit')" 2>/dev/null || echo '(settings unknown)')"
fi
started=$(date -R)
say "running: $scenarios at $connections connections, ${duration}s each$([ "$rounds" -gt 1 ] && echo ", $rounds rounds")"
order=$scenarios
for round in $(seq "$rounds"); do
    [ "$rounds" -gt 1 ] && say "round $round of $rounds"
    for s in $order; do for c in $connections; do run_scenario "$s" "$c"; done; done
    order=$(tr ' ' '\n' <<<"$order" | grep . | tac | xargs)   # the next round runs them backwards
done

# One row per scenario and connection count: the run with the median requests/s; with
# several rounds its note gives the range, and code_exchange_openid's note the ratio to
# code_exchange of the same round (the median of those ratios).
python3 - "$runs" >"$results" <<'PY'
import statistics, sys
from collections import OrderedDict
runs = OrderedDict()
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    runs.setdefault((f[0], f[1]), []).append(f)
for (s, c), rows in runs.items():
    row = list(sorted(rows, key=lambda f: float(f[2]))[(len(rows) - 1) // 2])
    notes = [row[7]] if row[7] else []
    if len(rows) > 1:
        rps = [float(f[2]) for f in rows]
        notes.append("median of %d runs (%.0f-%.0f)" % (len(rows), min(rps), max(rps)))
    if s == "code_exchange_openid":
        base = {f[13]: float(f[2]) for f in runs.get(("code_exchange", c), [])}
        pairs = [(float(f[2]), base[f[13]]) for f in rows if base.get(f[13])]
        if pairs:
            ratios = [a / b for a, b in pairs]
            notes.append("vs code_exchange: %.2f" % statistics.median(ratios) + (
                " (rounds: %s; all rounds summed: %.2f)" % (" ".join("%.2f" % r for r in ratios),
                sum(a for a, _ in pairs) / sum(b for _, b in pairs)) if len(pairs) > 1 else ""))
    row[7] = "; ".join(notes)
    print("\t".join(row[:13]))
PY

rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_master=$(rss "$master")
rss_workers=$(for p in $(worker_pids); do rss "$p"; done | xargs)

sweep_file=$home/sweep.tsv   # workers scenario rps
sweep_c=64
for w in $sweep; do
    say "worker sweep: $w workers"
    stop_gatehouse; start_gatehouse "$w"
    for s in health client_credentials; do
        printf '%s\t%s\t%s\n' "$w" "$s" "$(val rps "$(run_wrk "$s" "$sweep_c")")" >>"$sweep_file"
    done
done

# ---- report -------------------------------------------------------------------------------
machine="$(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)"
if [ "$json" -eq 1 ]; then
    python3 - "$results" "$sweep_file" "$nworkers" "$machine" "$rss_master" "$rss_workers" "$duration" \
        "${#host_homes[@]}" "$dbinfo" <<'PY'
import json, os, sys
res, sweep, workers, machine, rss_m, rss_w, duration, hosts, dbinfo = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(res)]
health = {c: float(r) for s, c, r, *_ in rows if s == "health"}
out = {"scenarios": {}, "workers": int(workers), "machine": machine, "duration_s": int(duration),
       "hosts": int(hosts), "database": dbinfo}
num = lambda v: int(v) if v.isdigit() else None
for s, c, rps, p50, p99, err, cpu, note, pg, ngx, busy, client, other in rows:
    d = {"rps": float(rps), "p50_ms": float(p50), "p99_ms": float(p99),
         "ratio": round(float(rps) / health[c], 3) if health.get(c) else None, "errors": int(err),
         "worker_cpu_us": num(cpu), "pg_cpu_us": num(pg), "nginx_cpu_us": num(ngx),
         "wrk_cpu_us": num(client), "other_cpu_us": num(other), "busy_pct": num(busy)}
    if note: d["note"] = note
    out["scenarios"].setdefault(s, {})["c" + c] = d
if os.path.exists(sweep):
    for w, s, rps in (l.split() for l in open(sweep)):
        out.setdefault("worker_sweep", {}).setdefault(w, {})[s] = float(rps)
out["rss_kb"] = {"master": int(rss_m), "workers": [int(x) for x in rss_w.split()]}
print(json.dumps(out))
PY
    exit 0
fi

echo "Gatehouse benchmark, $started"
echo "machine: $machine"
echo "workers: $nworkers, wrk -t$BENCH_THREADS, ${duration}s per run$([ "$seed" -gt 0 ] && echo ", $seed seeded tokens")"
[ -n "$hosts" ] && echo "hosts: ${#host_homes[@]} (each its own worker pool, FastCGI over loopback TCP), one nginx"
[ "$dbinfo" != sqlite ] && echo "database: $dbinfo"
echo
awk -F'\t' 'BEGIN { printf "%-19s %5s %10s %9s %9s %7s %7s %7s %7s %8s %6s %8s %6s\n", "scenario", "conns", "req/s", "p50 ms", "p99 ms", "ratio", "errors", "cpu us", "pg us", "nginx us", "wrk us", "other us", "busy%" }
    { row[NR] = $0; if ($1 == "health") h[$2] = $3 }
    END { for (i = 1; i <= NR; i++) { split(row[i], f, "\t")
            ratio = h[f[2]] > 0 ? sprintf("%.2f", f[3] / h[f[2]]) : "-"
            printf "%-19s %5s %10s %9s %9s %7s %7s %7s %7s %8s %6s %8s %6s  %s\n", f[1], f[2], f[3], f[4], f[5], ratio, f[6], f[7], f[9], f[10], f[12], f[13], f[11], f[8] } }' "$results"
echo "(full_flow: req/s = authorize+token pairs per second; latencies are per HTTP request)"
echo "(cpu us: CPU time of the worker pool$([ -n "$hosts" ] && echo "s of every host") per answered HTTP request, from /proc; pg us, nginx us, wrk us:"
echo " the same for the PostgreSQL server, nginx and wrk; other us: the rest of the machine's busy time per request"
echo " (kernel work charged to no process, other programs); busy%: the machine's CPU use during the run)"
if [ -s "$sweep_file" ]; then
    echo; echo "worker sweep ($sweep_c connections), req/s:"
    printf '%8s %12s %20s\n' workers health client_credentials
    awk '{ r[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END { for (i = 1; i <= n; i++) printf "%8s %12s %20s\n", order[i], r[order[i], "health"], r[order[i], "client_credentials"] }' "$sweep_file"
fi
echo
echo "RSS (after the scenarios): master ${rss_master} kB; workers (kB): ${rss_workers}"
