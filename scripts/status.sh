#!/usr/bin/env bash
# The pool at a glance, like php-fpm's status page: the master, nginx, requests served, and
# per worker its state (idle, reading, running, finishing, starting), requests served,
# start time, and the current request's endpoint and age.
#
#   scripts/status.sh [--json] [--url URL]
#
# --json prints the status document itself (/gatehouse/status, the fields README lists).
# URL is where nginx serves Gatehouse (default: the local instance of scripts/start.sh,
# https://127.0.0.1:PORT); the status location answers loopback clients only.
# Exit status: 0 running, 3 not running (as init scripts do), 1 status not reachable.
source "$(dirname "$0")/lib.sh"
json=0 url=""
while [ $# -gt 0 ]; do
    case $1 in
        --json) json=1; shift ;;
        --url) [ $# -ge 2 ] || fail "--url needs a value"; url=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) fail "unknown option: $1 (see --help)" ;;
    esac
done
pid=$(master_pid || true)
if [ -z "$url" ] && ! alive "$pid"; then
    [ "$json" -eq 1 ] && echo '{"running":false}' || echo "gatehouse: not running"
    exit 3
fi
if [ -z "$url" ]; then
    port=$GATEHOUSE_HTTPS_PORT
    read_render_params "$GATEHOUSE_HOME/nginx/render.env" && port=$r_port
    url="https://127.0.0.1:$port"
fi
doc=$(curl -fsS --max-time 5 -k "$url/gatehouse/status" 2>&1) || { say "status not reachable at $url/gatehouse/status: $doc"; exit 1; }
if [ "$json" -eq 1 ]; then
    printf '%s\n' "$doc"
    exit 0
fi
nginx_line="not running"
alive "$(nginx_pid)" && nginx_line="pid $(nginx_pid)"
python3 - "$doc" "$nginx_line" <<'PY'
import json, sys, time
s, nginx = json.loads(sys.argv[1]), sys.argv[2]
w = s["worker_list"]
busy = sum(1 for x in w if x["busy"])
print(f"master:            pid {s['master']['pid']} ({s['master']['state']})")
print(f"nginx:             {nginx}")
print(f"requests served:   {s['requests_served']}")
print(f"workers:           {s['workers']} (busy {busy}, idle {len(w) - busy})")
print(f"password hashing:  {s['password_hashes_in_progress']}")
print()
print(f"{'pid':>7}  {'state':<9}  {'requests':>8}  {'started (UTC)':<19}  {'endpoint':<12}  {'age':>8}")
for x in sorted(w, key=lambda x: x["pid"]):
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(x["started_at"])) if x.get("started_at") else "-"
    age = f"{x['request_age_ms']} ms" if x["request_age_ms"] is not None else "-"
    print(f"{x['pid']:>7}  {x['state']:<9}  {x['requests']:>8}  {started:<19}  {x['endpoint'] or '-':<12}  {age:>8}")
PY
