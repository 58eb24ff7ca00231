#!/usr/bin/env bash
# Reports the master, its workers and the requests they served.
source "$(dirname "$0")/lib.sh"
pid=$(master_pid || true)
if ! alive "$pid"; then echo "gatehouse: not running"; exit 3; fi
echo "gatehouse master: pid $pid"
echo "workers: $(pgrep -P "$pid" | tr '\n' ' ')"
if alive "$(nginx_pid)"; then echo "nginx: pid $(nginx_pid)"; else echo "nginx: not running"; fi
curl -fsk "https://127.0.0.1:$GATEHOUSE_HTTPS_PORT/gatehouse/status" && echo || echo "status endpoint not reachable"
