#!/usr/bin/env bash
# An online, consistent copy of the database (SQLite's backup API; never cp of a live WAL database).
source "$(dirname "$0")/lib.sh"
umask 077   # a copy of the database holds password hashes: owner only, like the database
out=${1:-$GATEHOUSE_HOME/backups/gatehouse-$(date -u +%Y%m%dT%H%M%SZ).db}
mkdir -p "$(dirname "$out")"
ensure_packages sqlite3
sqlite3 "$GATEHOUSE_HOME/gatehouse.db" ".timeout 5000" ".backup '$out'"
say "backup written: $out (keep $GATEHOUSE_HOME/secret.key with it)"
