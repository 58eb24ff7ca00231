#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh into an instance directory:
#
#   scripts/restore.sh BACKUP.tar.gz [--home DIR] [--force]
#
# Checks the archive (MANIFEST checksums, SQLite integrity_check), then puts its database at
# the `database` path of DIR's gatehouse.conf and its key at `secret_key_file` (both 0600;
# the configuration in DIR is kept, the archive's copy is not installed: its paths may name
# the old host's files). Gatehouse must not be running on DIR. An existing database or key
# is moved aside (*.before-restore-TIMESTAMP) only with --force. Then `gatehouse migrate`
# brings an older backup's schema up to date. DIR defaults to $GATEHOUSE_HOME (var/).
source "$(dirname "$0")/lib.sh"
umask 077
backup="" home=$GATEHOUSE_HOME force=0
while [ $# -gt 0 ]; do
    case $1 in
        --home) [ $# -ge 2 ] || fail "--home needs a directory"; home=$2; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) fail "unknown option: $1 (see --help)" ;;
        *) [ -z "$backup" ] || fail "one backup file only"; backup=$1; shift ;;
    esac
done
[ -n "$backup" ] || fail "usage: scripts/restore.sh BACKUP.tar.gz [--home DIR] [--force]"
[ -f "$backup" ] || fail "no backup file $backup"
mkdir -p "$home"
home=$(cd "$home" && pwd)
pid=$(cat "$home/run/gatehouse.pid" 2>/dev/null || true)
alive "$pid" && fail "gatehouse is running on $home (pid $pid): stop it first (scripts/stop.sh or systemctl stop gatehouse)"
ensure_packages sqlite3

work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$backup" MANIFEST gatehouse.db secret.key || fail "$backup is not a Gatehouse backup"
grep -qx 'format=gatehouse-backup-1' "$work/MANIFEST" || fail "$backup: unknown backup format"
(cd "$work" && sed -n 's/^sha256 //p' MANIFEST | sha256sum --quiet -c -) || fail "$backup: checksum mismatch (damaged archive)"
check=$(sqlite3 "$work/gatehouse.db" "PRAGMA integrity_check") || fail "$backup: the database cannot be read"
[ "$check" = ok ] || fail "$backup: the database fails integrity_check: $check"

database=${GATEHOUSE_DATABASE:-$(configured_path "$home" database gatehouse.db)}
case $database in postgres://*|postgresql://*) fail "the instance uses PostgreSQL: restore with pg_restore" ;; esac
key=$(configured_path "$home" secret_key_file secret.key)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for f in "$database" "$key"; do
    [ -e "$f" ] || continue
    [ "$force" -eq 1 ] || fail "$f exists; add --force to move it aside and restore over it"
    mv "$f" "$f.before-restore-$stamp"
    say "moved aside: $f.before-restore-$stamp"
done
# The old database's WAL and shared-memory files belong to it: never beside the restored one.
for f in "$database-wal" "$database-shm"; do
    [ -e "$f" ] && mv "$f" "${f%-*}.before-restore-$stamp-${f##*-}"
done
mkdir -p "$(dirname "$database")" "$(dirname "$key")"
install -m 600 "$work/gatehouse.db" "$database.restoring"
mv "$database.restoring" "$database"
install -m 600 "$work/secret.key" "$key"
# Run as root for an installed service: the files belong to the instance's owner (the
# owner of DIR, `gatehouse`), or the service could not open them.
if [ "$(id -u)" -eq 0 ]; then chown "$(stat -c %u:%g "$home")" "$database" "$key"; fi
if [ -x "$BIN" ] || [ -x "$ROOT/.build/debug/gatehouse" ]; then
    [ -x "$BIN" ] || BIN=$ROOT/.build/debug/gatehouse
    if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %u "$home")" -ne 0 ]; then
        runuser -u "$(stat -c %U "$home")" -- env GATEHOUSE_HOME="$home" "$BIN" migrate >&2
    else
        GATEHOUSE_HOME=$home "$BIN" migrate >&2
    fi
fi
say "restored $backup into $home ($(sed -n 's/^created_at=//p' "$work/MANIFEST"), database $database)"
