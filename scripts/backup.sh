#!/usr/bin/env bash
# An online, consistent backup of a Gatehouse instance, safe to take under load:
#
#   scripts/backup.sh [OUT.tar.gz] [--home DIR]
#
# The archive (mode 0600) holds gatehouse.db, a snapshot of the `database` of DIR's
# gatehouse.conf taken with SQLite's VACUUM INTO (one read transaction: consistent, never
# blocks the workers' writes, never restarts however busy they are), secret.key (the
# `secret_key_file`: without it no stored secret or token matches and the signing keys in
# the database cannot be unsealed), gatehouse.conf for reference, and MANIFEST. Restore with
# scripts/restore.sh. DIR defaults to $GATEHOUSE_HOME (var/). The archive holds the key:
# keep it as you keep the key.
source "$(dirname "$0")/lib.sh"
umask 077
out="" home=$GATEHOUSE_HOME
while [ $# -gt 0 ]; do
    case $1 in
        --home) [ $# -ge 2 ] || fail "--home needs a directory"; home=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) fail "unknown option: $1 (see --help)" ;;
        *) [ -z "$out" ] || fail "one output file only"; out=$1; shift ;;
    esac
done
home=$(cd "$home" 2>/dev/null && pwd) || fail "no instance directory $home"
database=${GATEHOUSE_DATABASE:-$(configured_path "$home" database gatehouse.db)}
case $database in postgres://*|postgresql://*) fail "the database is PostgreSQL: back it up with pg_dump (and keep secret.key with it)" ;; esac
key=$(configured_path "$home" secret_key_file secret.key)
[ -f "$database" ] || fail "no database at $database"
[ -f "$key" ] || fail "no secret key at $key"
out=${out:-$home/backups/gatehouse-$(date -u +%Y%m%dT%H%M%SZ).tar.gz}
mkdir -p "$(dirname "$out")"
ensure_packages sqlite3

work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
# busy_timeout: VACUUM INTO waits out a checkpoint's brief lock instead of failing.
sqlite3 "$database" ".timeout 10000" "VACUUM INTO '$work/gatehouse.db'" || fail "snapshot of $database failed"
check=$(sqlite3 "$work/gatehouse.db" "PRAGMA integrity_check") || fail "the snapshot cannot be read"
[ "$check" = ok ] || fail "the snapshot fails integrity_check: $check"
cp "$key" "$work/secret.key"
[ -f "$home/gatehouse.conf" ] && cp "$home/gatehouse.conf" "$work/gatehouse.conf"
{
    echo "format=gatehouse-backup-1"
    echo "created_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host=$(hostname)"
    echo "database=$database"
    echo "schema_version=$(sqlite3 "$work/gatehouse.db" "PRAGMA user_version")"
    (cd "$work" && sha256sum gatehouse.db secret.key | sed 's/^/sha256 /')
} > "$work/MANIFEST"
tar -C "$work" -czf "$out.partial" MANIFEST gatehouse.db secret.key $( [ -f "$work/gatehouse.conf" ] && echo gatehouse.conf)
chmod 600 "$out.partial"
mv "$out.partial" "$out"
say "backup written: $out ($(du -h "$out" | cut -f1); holds the secret key: keep it private)"
printf '%s\n' "$out"
