# Shared helpers for the scripts (sourced, not run).
set -euo pipefail
# Nothing the scripts create is for other users: the database, its backups, logs (client
# addresses, usernames) and the rendered nginx files. Group keeps read and traverse, so
# nginx's user can reach the socket through a shared group; gatehouse sets its own umask.
umask 027

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export GATEHOUSE_HOME=${GATEHOUSE_HOME:-$ROOT/var}
GATEHOUSE_HTTPS_PORT=${GATEHOUSE_HTTPS_PORT:-8443}
BIN=${GATEHOUSE_BIN:-$ROOT/.build/release/gatehouse}

say() { printf '%s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# Installs the Debian packages that are missing (nginx, libfcgi-dev, ...).
ensure_packages() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

SYSTEM_PACKAGES=(nginx libfcgi-dev libsqlite3-dev libssl-dev openssl curl sqlite3 ca-certificates)

# Release build with the Swift runtime linked statically, so the binary copies to
# another host of the same distribution.
build_release() {
    say "building release..."
    (cd "$ROOT" && swift build -c release --static-swift-stdlib 2>&1 | grep -E 'error|warning: unre|Compiling|Build complete' | tail -3 >&2)
    [ -x "$ROOT/.build/release/gatehouse" ] || fail "build failed"
}

# wait_for SECONDS COMMAND...: retries COMMAND until it succeeds or time runs out.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# Self-signed certificate for 127.0.0.1 (first start only).
ensure_certificate() {
    local dir=$1
    [ -f "$dir/cert.pem" ] && return 0
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
    chmod 600 "$dir/key.pem"
}

# render_nginx HOME HTTPS_PORT EXAMPLE_PORT SOCKET DAEMON(on|off)
# Renders the templates of nginx/ into HOME/nginx/ (nginx.conf is the full local server).
render_nginx() {
    local home=$1 port=$2 example_port=$3 socket=$4 daemon=$5
    local out=$home/nginx
    mkdir -p "$out/tmp" "$home/logs" "$home/run"
    # nginx creates its logs 0644 minus the umask of whoever starts it (the test harness,
    # systemd, a shell): created here first, they stay private however nginx is started.
    local f
    for f in nginx-error.log nginx-access.log; do
        [ -e "$home/logs/$f" ] || : > "$home/logs/$f"
        chmod o-rwx "$home/logs/$f" 2>/dev/null || true
    done
    local user_directive=""
    [ "$(id -u)" -eq 0 ] && user_directive="user root root;"   # workers must reach the 0660 socket
    for f in gatehouse.conf gatehouse-upstream.conf gatehouse-fastcgi.conf gatehouse-protect.conf dev-server.conf; do
        sed -e "s|@HOME@|$home|g" -e "s|@NGINX_DIR@|$out|g" -e "s|@SOCKET@|$socket|g" \
            -e "s|@HTTPS_PORT@|$port|g" -e "s|@EXAMPLE_PORT@|$example_port|g" -e "s|@DAEMON@|$daemon|g" \
            -e "s|@USER_DIRECTIVE@|$user_directive|g" -e "s|@EXAMPLE_SCOPE@|${GATEHOUSE_EXAMPLE_SCOPE:-}|g" \
            "$ROOT/nginx/$f" > "$out/$f"
    done
    mv "$out/dev-server.conf" "$out/nginx.conf"
}

master_pid() { cat "$GATEHOUSE_HOME/run/gatehouse.pid" 2>/dev/null; }
nginx_pid() { cat "$GATEHOUSE_HOME/run/nginx.pid" 2>/dev/null; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
