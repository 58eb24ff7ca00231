#!/usr/bin/env bash
# Installs Gatehouse as a system service behind the system's nginx:
#
#   scripts/install.sh [--prefix DIR] [--binary PATH] [--nginx-user USER] [--issuer URL]
#   scripts/install.sh [--prefix DIR] --uninstall
#
#   /usr/local/lib/gatehouse/gatehouse   the binary (a release build, unless --binary)
#   /usr/local/bin/gatehouse             the CLI for this instance (switches to the gatehouse user)
#   /etc/gatehouse/gatehouse.conf        the configuration (written once, kept on reinstall)
#   /etc/gatehouse/nginx/                the includes: in a server { } that terminates TLS,
#                                          include /etc/gatehouse/nginx/gatehouse.conf;
#   /etc/nginx/conf.d/gatehouse.conf     the upstream at http { } level (Debian's nginx loads conf.d)
#   /var/lib/gatehouse                   state: database, secret.key (0600), pid file
#   /var/log/gatehouse                   gatehouse.log, rotated by /etc/logrotate.d/gatehouse (USR1)
#   /run/gatehouse/gatehouse.sock        the FastCGI socket: directory gatehouse:<nginx user>
#                                          2750, socket 0660, so nginx's user and no one else reaches it
#   /etc/tmpfiles.d/gatehouse.conf       makes that directory at boot (and at each start)
#   /etc/systemd/system/gatehouse.service  start/stop, reload = SIGHUP, restart on failure, hardened
#
# Running it again is harmless: files are replaced, the configuration and the data are kept,
# and a running service is restarted onto the new binary. --uninstall stops the service and
# removes everything but the data: the configuration, /var/lib/gatehouse, the logs and the
# gatehouse user stay.
#
# --prefix DIR puts every path under DIR (the tests do this). System changes — creating the
# gatehouse user, chown, systemctl, reloading nginx — happen only when installing to / as
# root; otherwise files belong to whoever runs the script and the unit names the prefixed
# paths, so `systemd-analyze verify` can check it.
source "$(dirname "$0")/lib.sh"
prefix="" binary="" nginx_user="" issuer="" uninstall=0
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --binary) [ $# -ge 2 ] || fail "--binary needs a path"; binary=$2; shift 2 ;;
        --nginx-user) [ $# -ge 2 ] || fail "--nginx-user needs a user"; nginx_user=$2; shift 2 ;;
        --issuer) [ $# -ge 2 ] || fail "--issuer needs a URL"; issuer=$2; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) fail "unknown option: $1 (see --help)" ;;
    esac
done
if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)
    [ "$prefix" = / ] && prefix=""
fi
system=0   # 1: real system changes (users, ownership, systemd, nginx)
[ -z "$prefix" ] && [ "$(id -u)" -eq 0 ] && system=1
[ -z "$prefix" ] && [ "$system" -eq 0 ] && fail "installing to / needs root (or use --prefix DIR)"
has_systemd() { [ "$system" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

USER_NAME=gatehouse
LIB=$prefix/usr/local/lib/gatehouse
BIN_PATH=$LIB/gatehouse
CLI=$prefix/usr/local/bin/gatehouse
ETC=$prefix/etc/gatehouse
CONF=$ETC/gatehouse.conf
NGINX_OUT=$ETC/nginx
NGINX_CONFD=$prefix/etc/nginx/conf.d/gatehouse.conf
STATE=$prefix/var/lib/gatehouse
LOGS=$prefix/var/log/gatehouse
RUN=$prefix/run/gatehouse
SOCKET=$RUN/gatehouse.sock
UNIT=$prefix/etc/systemd/system/gatehouse.service
TMPFILES=$prefix/etc/tmpfiles.d/gatehouse.conf
LOGROTATE=$prefix/etc/logrotate.d/gatehouse

# ---- uninstall ------------------------------------------------------------------------------
if [ "$uninstall" -eq 1 ]; then
    if has_systemd; then
        systemctl disable --now gatehouse.service 2>/dev/null || true
    elif alive "$(cat "$STATE/run/gatehouse.pid" 2>/dev/null)"; then
        kill -TERM "$(cat "$STATE/run/gatehouse.pid")"
        wait_for 40 sh -c "! kill -0 $(cat "$STATE/run/gatehouse.pid" 2>/dev/null || echo 0) 2>/dev/null" || true
    fi
    rm -f "$UNIT" "$TMPFILES" "$LOGROTATE" "$NGINX_CONFD" "$CLI" "$BIN_PATH"
    rm -rf "$RUN"   # the socket's directory (the service is stopped; recreated by a new install)
    rm -rf "$NGINX_OUT"
    rmdir "$LIB" 2>/dev/null || true
    has_systemd && systemctl daemon-reload
    if [ "$system" -eq 1 ] && command -v nginx >/dev/null; then
        if nginx -t -q 2>/dev/null; then
            systemctl reload nginx 2>/dev/null || nginx -s reload 2>/dev/null || true
        else
            say "warning: nginx's configuration no longer loads (a server { } still includes $NGINX_OUT/gatehouse.conf?): remove that include, then reload nginx"
        fi
    fi
    say "gatehouse uninstalled; kept: $CONF, $STATE (database, secret.key), $LOGS and the $USER_NAME user"
    exit 0
fi

# ---- install --------------------------------------------------------------------------------
if [ -z "$binary" ]; then
    command -v swift >/dev/null || fail "swift is not on PATH (or pass --binary PATH)"
    ensure_packages "${SYSTEM_PACKAGES[@]}"
    build_release
    binary=$ROOT/.build/release/gatehouse
fi
[ -x "$binary" ] || fail "no executable at $binary"
if [ -z "$nginx_user" ]; then
    nginx_user=$(awk '$1 == "user" { sub(/;$/, "", $2); print $2; exit }' /etc/nginx/nginx.conf 2>/dev/null || true)
    nginx_user=${nginx_user:-www-data}
fi
owner=$(id -un)
if [ "$system" -eq 1 ]; then
    owner=$USER_NAME
    if ! id "$USER_NAME" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/gatehouse --no-create-home --shell /usr/sbin/nologin \
            --comment "Gatehouse OAuth server" "$USER_NAME"
        say "created system user $USER_NAME"
    fi
    id "$nginx_user" >/dev/null 2>&1 || fail "nginx's user '$nginx_user' does not exist (install nginx, or pass --nginx-user)"
fi
socket_group=$nginx_user
[ "$system" -eq 1 ] || socket_group=$(id -gn)

umask 022
install -d -m 755 "$LIB" "$prefix/usr/local/bin" "$(dirname "$UNIT")" "$(dirname "$LOGROTATE")" "$(dirname "$NGINX_CONFD")" \
    "$(dirname "$TMPFILES")"
install -d -m 755 "$ETC" "$NGINX_OUT"
install -d -m 750 "$STATE" "$LOGS"
[ "$system" -eq 1 ] && chown "$USER_NAME:$USER_NAME" "$STATE" "$LOGS"

# The socket's directory: the service's user and nginx's group, nothing for others. The
# setgid bit gives the socket nginx's group; listen_mode 0660 lets that group connect.
# Not systemd's RuntimeDirectory=: systemd chowns that directory (and the socket in it) to
# User:Group before every command of the unit, which would take nginx's group away again.
# tmpfiles.d makes it at boot (/run is a tmpfs); it is made here too, for this boot.
cat > "$TMPFILES" <<TMP
# The FastCGI socket's directory for gatehouse.service (written by scripts/install.sh).
d $RUN 2750 $owner $socket_group -
TMP
chmod 644 "$TMPFILES"
install -d -m 2750 "$RUN"
[ "$system" -eq 1 ] && chown "$USER_NAME:$socket_group" "$RUN" && chmod 2750 "$RUN"
tmpfiles_bin=$(command -v systemd-tmpfiles || echo /usr/bin/systemd-tmpfiles)

# The binary, replaced atomically (a running master keeps its old inode until restarted).
install -m 755 "$binary" "$BIN_PATH.new"
mv "$BIN_PATH.new" "$BIN_PATH"

# The configuration: the binary's own documented default, with the system paths; never
# replaced once there (the operator's edits win).
if [ ! -f "$CONF" ]; then
    tmp=$(mktemp -d)
    GATEHOUSE_HOME=$tmp "$BIN_PATH" migrate >/dev/null   # writes the default file into a new instance
    host=$(hostname -f 2>/dev/null || hostname)
    sed -e "s|^listen = .*|listen = $SOCKET|" \
        -e "s|^database = .*|database = $STATE/gatehouse.db|" \
        -e "s|^secret_key_file = .*|secret_key_file = $STATE/secret.key|" \
        -e "s|^log_file =.*|log_file = $LOGS/gatehouse.log|" \
        -e "s|^issuer = .*|issuer = ${issuer:-https://$host}|" \
        "$tmp/gatehouse.conf" > "$CONF.new"
    rm -rf "$tmp"
    grep -q "^listen = $SOCKET\$" "$CONF.new" || fail "the default configuration has an unexpected shape"
    install -m 640 "$CONF.new" "$CONF"; rm -f "$CONF.new"
    say "wrote $CONF (set issuer to this server's public https URL)"
else
    say "kept $CONF"
fi
[ "$system" -eq 1 ] && chown "root:$USER_NAME" "$CONF" && chmod 640 "$CONF"
# gatehouse reads $GATEHOUSE_HOME/gatehouse.conf: the state directory points at /etc.
ln -sfn "$CONF" "$STATE/gatehouse.conf"
# Never readable by group or others: the key and the database (gatehouse makes them 0600;
# this repairs files copied in by hand).
for f in "$STATE/secret.key" "$STATE/gatehouse.db" "$STATE/gatehouse.db-wal" "$STATE/gatehouse.db-shm"; do
    [ -e "$f" ] && chmod go-rwx "$f"
done

# The CLI: this instance's configuration, as the gatehouse user (files it creates stay
# the service's); the audit log names who ran it (SUDO_USER, else the invoking user).
{
    echo '#!/bin/sh'
    echo "# The gatehouse CLI for the instance installed by scripts/install.sh."
    echo "export GATEHOUSE_HOME=$STATE"
    if [ "$system" -eq 1 ]; then
        echo "if [ \"\$(id -u)\" -eq 0 ]; then"
        echo "    exec runuser -u $USER_NAME -- env GATEHOUSE_HOME=$STATE SUDO_USER=\"\${SUDO_USER:-root}\" $BIN_PATH \"\$@\""
        echo "fi"
    fi
    echo "exec $BIN_PATH \"\$@\""
} > "$CLI.new"
install -m 755 "$CLI.new" "$CLI"; rm -f "$CLI.new"

# nginx includes, rendered for this layout.
for f in gatehouse.conf gatehouse-upstream.conf gatehouse-fastcgi.conf gatehouse-protect.conf; do
    sed -e "s|@NGINX_DIR@|$NGINX_OUT|g" -e "s|@SOCKET@|$SOCKET|g" -e "s|@LOGIN_RATE@|10r/s|g" \
        "$ROOT/nginx/$f" > "$NGINX_OUT/$f"
    chmod 644 "$NGINX_OUT/$f"
done
cat > "$NGINX_CONFD" <<NG
# Gatehouse's upstream, rate-limit zone and log format, at http { } level (Debian's nginx
# includes conf.d/*.conf there). The locations: include $NGINX_OUT/gatehouse.conf;
# inside the server { } that terminates TLS. Written by scripts/install.sh.
include $NGINX_OUT/gatehouse-upstream.conf;
NG

# systemd unit.
shutdown_timeout=$(awk -F= '/^[[:space:]]*shutdown_timeout[[:space:]]*=/{gsub(/[[:space:]]/,"",$2); v=$2} END{print v+0}' "$CONF")
[ "$shutdown_timeout" -gt 0 ] || shutdown_timeout=30
cat > "$UNIT" <<UNIT
# Gatehouse OAuth 2.0 authorization server (written by scripts/install.sh).
[Unit]
Description=Gatehouse OAuth 2.0 / OpenID Connect server (FastCGI worker pool)
Documentation=file://$ETC/gatehouse.conf
# After a PostgreSQL server on this host, when there is one (the database may live there).
After=network.target postgresql.service

[Service]
Type=simple
User=$owner
Group=$owner
Environment=GATEHOUSE_HOME=$STATE
ExecStart=$BIN_PATH serve
# Reload: the master re-reads the configuration and replaces its workers one by one.
ExecReload=/bin/kill -HUP \$MAINPID
KillSignal=SIGTERM
# Stop: TERM to the master alone, which lets each worker finish its request (shutdown_timeout),
# then kills the late ones; whatever is left when the master has gone gets KILL.
KillMode=mixed
TimeoutStopSec=$((shutdown_timeout + 15))
Restart=on-failure
RestartSec=2
# The socket's directory ($owner:$socket_group 2750, from $TMPFILES), made again if it
# went missing ('+': as root, outside the sandbox below).
ExecStartPre=+$tmpfiles_bin --create $TMPFILES
UMask=0027
LimitNOFILE=65536
# Hardening, all of it verified under systemd 252 by scripts/test-systemd.sh (the static Swift
# runtime maps no writable+executable memory; the shared scoreboard is an anonymous shared
# mapping). Only the state, log and socket directories are writable.
ReadWritePaths=$STATE $LOGS $RUN
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
PrivateUsers=yes
RemoveIPC=yes
ProcSubset=pid
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
# AF_INET/AF_INET6, and no PrivateNetwork= or IPAddressDeny=: the database may be a
# PostgreSQL server on another host (database = postgresql://...).
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
# Not ~@resources as well: a password hash runs on a thread at nice 10 (setpriority), and the
# filter would kill the worker at the first login (SIGSYS).
SystemCallFilter=~@privileged

[Install]
WantedBy=multi-user.target
UNIT
chmod 644 "$UNIT"

# logrotate: USR1 makes the master and every worker reopen the log (no copytruncate, no lost line).
# As the service's user (su): the directory is its, so root never follows a link planted there.
create_owner="" su_line=""
[ "$system" -eq 1 ] && create_owner=" $USER_NAME $USER_NAME" && su_line="    su $USER_NAME $USER_NAME
"
cat > "$LOGROTATE" <<ROT
$LOGS/*.log {
$su_line    daily
    rotate 14
    compress
    delaycompress
    missingok
    notifempty
    create 0640$create_owner
    sharedscripts
    postrotate
        [ -s $STATE/run/gatehouse.pid ] && kill -USR1 "\$(cat $STATE/run/gatehouse.pid)" 2>/dev/null || true
    endscript
}
ROT
chmod 644 "$LOGROTATE"

if has_systemd; then
    systemctl daemon-reload
    systemctl enable gatehouse.service >/dev/null 2>&1
    if systemctl is-active -q gatehouse.service; then
        systemctl restart gatehouse.service
        say "installed; gatehouse restarted onto the new binary"
    else
        say "installed; start it with: systemctl start gatehouse"
    fi
    if command -v nginx >/dev/null && nginx -t -q 2>/dev/null; then systemctl reload nginx 2>/dev/null || true; fi
else
    say "installed under ${prefix:-/}; start it with: GATEHOUSE_HOME=$STATE $BIN_PATH serve"
fi
say "nginx: add  include $NGINX_OUT/gatehouse.conf;  inside your TLS server { } (the upstream is in $NGINX_CONFD)"
