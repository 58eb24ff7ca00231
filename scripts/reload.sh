#!/usr/bin/env bash
# Re-reads gatehouse.conf and replaces the workers without dropping a request; reloads nginx.
source "$(dirname "$0")/lib.sh"
pid=$(master_pid || true)
alive "$pid" || fail "gatehouse is not running"
kill -HUP "$pid"
if alive "$(nginx_pid)"; then nginx -p "$GATEHOUSE_HOME/nginx" -c "$GATEHOUSE_HOME/nginx/nginx.conf" -s reload; fi
say "reload signalled (master $pid); see $GATEHOUSE_HOME/logs/gatehouse.log"
