#!/usr/bin/env bash
# Stops nginx and the worker pool gracefully; nothing is left running.
source "$(dirname "$0")/lib.sh"

if alive "$(nginx_pid)"; then
    nginx -p "$GATEHOUSE_HOME/nginx" -c "$GATEHOUSE_HOME/nginx/nginx.conf" -s quit || kill "$(nginx_pid)"
    wait_for 15 sh -c "! kill -0 $(nginx_pid) 2>/dev/null" || kill -9 "$(nginx_pid)" 2>/dev/null || true
fi
pid=$(master_pid || true)
if alive "$pid"; then
    kill -TERM "$pid"
    wait_for 40 sh -c "! kill -0 $pid 2>/dev/null" || { say "master did not stop in time; killing"; kill -9 "$pid"; pkill -9 -P "$pid" || true; }
fi
say "stopped"
