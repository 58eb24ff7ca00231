#!/usr/bin/env bash
# Database size after N issued-then-expired tokens and a purge (default 1,000,000).
# Seeds through SQL (fast), then runs `gatehouse purge` and reports sizes and time.
#   scripts/bench/purge-scale.sh [N]
source "$(dirname "$0")/../lib.sh"
n=${1:-1000000}
home=$(mktemp -d /tmp/gh-purge-XXXXXX)
trap 'rm -rf "$home"' EXIT
export GATEHOUSE_HOME=$home
"$BIN" migrate >/dev/null
client=$("$BIN" client add --name purge --grant-types client_credentials --json | sed 's/.*"client_id":"\([^"]*\)".*/\1/')
size() { du -k "$home/gatehouse.db" | cut -f1; }
say "seeding $n expired tokens (one grant each, as client_credentials issues them)..."
sqlite3 "$home/gatehouse.db" >/dev/null <<SQL
PRAGMA busy_timeout = 10000;
BEGIN IMMEDIATE;
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $n)
INSERT INTO families (id, client_id, user_id, scope, created_at, expires_at) SELECT i, '$client', NULL, 'PRODUCTION', 1000, 4600 FROM k;
INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at)
    SELECT randomblob(32), 0, id, client_id, NULL, scope, 1000, 4600 FROM families;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
before=$(size)
start=$(date +%s.%N)
"$BIN" purge >"$home/purge.out" 2>/dev/null
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
sqlite3 "$home/gatehouse.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
after=$(size)
echo "tokens seeded:        $n"
echo "database before purge: $((before / 1024)) MiB"
echo "purge:                $(tr '\n' ' ' < "$home/purge.out")"
echo "purge time:           ${elapsed}s"
echo "database after purge:  $((after / 1024)) MiB ($after KiB)"
