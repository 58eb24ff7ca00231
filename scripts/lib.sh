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

SYSTEM_PACKAGES=(nginx libfcgi-dev libsqlite3-dev libssl-dev libpq-dev openssl curl sqlite3 ca-certificates)

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

NGINX_TEMPLATES=(gatehouse.conf gatehouse-upstream.conf gatehouse-fastcgi.conf gatehouse-protect.conf dev-server.conf)

# render_nginx HOME HTTPS_PORT EXAMPLE_PORT SOCKET DAEMON(on|off)
# Renders the templates of nginx/ into HOME/nginx/ (nginx.conf is the full local server), and
# records the parameters in HOME/nginx/render.env, so reload.sh can render them again alike.
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
    render_nginx_into "$out" "$home" "$port" "$example_port" "$socket" "$daemon" "${GATEHOUSE_EXAMPLE_SCOPE:-}" \
        "${GATEHOUSE_LOGIN_RATE:-10r/s}"
}

# render_nginx_into DIR HOME HTTPS_PORT EXAMPLE_PORT SOCKET DAEMON EXAMPLE_SCOPE LOGIN_RATE
# The rendered files for HOME/nginx, written into DIR (HOME/nginx itself, or a temporary
# folder to compare with it): nginx.conf, the includes, render.env.
render_nginx_into() {
    local dir=$1 home=$2 port=$3 example_port=$4 socket=$5 daemon=$6 scope=$7 rate=$8
    local nginx_dir=$home/nginx
    local user_directive=""
    [ "$(id -u)" -eq 0 ] && user_directive="user root root;"   # workers must reach the 0660 socket
    local f
    for f in "${NGINX_TEMPLATES[@]}"; do
        sed -e "s|@HOME@|$home|g" -e "s|@NGINX_DIR@|$nginx_dir|g" -e "s|@SOCKET@|$socket|g" \
            -e "s|@HTTPS_PORT@|$port|g" -e "s|@EXAMPLE_PORT@|$example_port|g" -e "s|@DAEMON@|$daemon|g" \
            -e "s|@USER_DIRECTIVE@|$user_directive|g" -e "s|@EXAMPLE_SCOPE@|$scope|g" \
            -e "s|@LOGIN_RATE@|$rate|g" \
            "$ROOT/nginx/$f" > "$dir/$f"
    done
    mv "$dir/dev-server.conf" "$dir/nginx.conf"
    printf 'port=%s\nexample_port=%s\nsocket=%s\ndaemon=%s\nexample_scope=%s\nlogin_rate=%s\n' \
        "$port" "$example_port" "$socket" "$daemon" "$scope" "$rate" > "$dir/render.env"
}

# cluster_upstream HOME ADDRESS...: makes the upstream rendered into HOME/nginx (by
# render_nginx, for one socket) list every host of a cluster: ADDRESS is host:port or
# unix:/path. A host that fails once is skipped for fail_timeout (GATEHOUSE_FAIL_TIMEOUT,
# default 10s), then tried again; the zone shares that state between nginx's workers.
cluster_upstream() {
    local file=$1/nginx/gatehouse-upstream.conf; shift
    local servers="" a
    for a in "$@"; do servers+="    server $a max_fails=1 fail_timeout=${GATEHOUSE_FAIL_TIMEOUT:-10s};\n"; done
    awk -v servers="$servers" '/^[[:space:]]*server unix:/ { printf "%s    zone gatehouse 64k;\n", servers; next } { print }' \
        "$file" > "$file.new"
    mv "$file.new" "$file"
}

# A loopback TCP port nothing listens on, below the kernel's ephemeral range (where the
# source ports of outgoing connections come from: a listener bound there can collide with one).
free_port() {
    local p low=32768
    read -r low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$low" -gt 21000 ] 2>/dev/null || low=40000
    while :; do
        p=$(( 20000 + RANDOM % (low - 20000) ))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { printf '%s\n' "$p"; return; }
    done
}

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# add_host HOME SECRET_KEY DATABASE PORT: the instance folder of one host of a cluster
# (scripts/cluster.sh, scripts/bench.sh --hosts): the cluster's secret.key (every host hashes
# and seals with the same key, or no host accepts another's tokens), the default
# configuration and the schema (gatehouse migrate; the migrations take an advisory lock),
# then FastCGI on 127.0.0.1:PORT and the shared database.
add_host() {
    local home=$1 key=$2 database=$3 port=$4
    mkdir -p "$home/logs" "$home/run"
    install -m 600 "$key" "$home/secret.key"
    GATEHOUSE_HOME=$home GATEHOUSE_DATABASE=$database "$BIN" migrate >/dev/null
    printf '\n# a host of a local cluster (scripts/lib.sh add_host)\nlisten = 127.0.0.1:%s\ndatabase = %s\n' \
        "$port" "$database" >> "$home/gatehouse.conf"
}

# read_render_params FILE: sets r_port r_example_port r_socket r_daemon r_scope r_rate from a
# render.env written by render_nginx_into; false if there is none.
read_render_params() {
    local file=$1 k v
    [ -f "$file" ] || return 1
    r_port="" r_example_port="" r_socket="" r_daemon="" r_scope="" r_rate=10r/s
    while IFS='=' read -r k v; do
        case $k in
            port) r_port=$v ;;
            example_port) r_example_port=$v ;;
            socket) r_socket=$v ;;
            daemon) r_daemon=$v ;;
            example_scope) r_scope=$v ;;
            login_rate) r_rate=$v ;;
        esac
    done < "$file"
    [ -n "$r_port" ] && [ -n "$r_example_port" ] && [ -n "$r_socket" ] && [ -n "$r_daemon" ]
}

# configured_socket HOME: the FastCGI socket path of HOME/gatehouse.conf (`listen`).
configured_socket() {
    local home=$1 socket
    socket=$(awk -F= '/^[[:space:]]*listen[[:space:]]*=/{gsub(/[[:space:]]/,"",$2); print $2}' "$home/gatehouse.conf")
    case "$socket" in /*) ;; *) socket="$home/$socket" ;; esac
    printf '%s\n' "$socket"
}

# configured_path HOME KEY DEFAULT: a path key of HOME/gatehouse.conf (`database`,
# `secret_key_file`, ...), relative ones resolved against HOME as gatehouse does. The last
# line of the key wins, as in gatehouse; DEFAULT when the key is absent or empty.
configured_path() {
    local home=$1 key=$2 default=$3 value=""
    [ -f "$home/gatehouse.conf" ] && value=$(awk -F= -v k="$key" '
        { line = $0; sub(/^[[:space:]]+/, "", line) }
        line ~ /^#/ { next }
        { name = $1; gsub(/[[:space:]]/, "", name) }
        name == k { v = substr($0, index($0, "=") + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v); found = v }
        END { print found }' "$home/gatehouse.conf")
    [ -n "$value" ] || value=$default
    case "$value" in /*) ;; *) value="$home/$value" ;; esac
    printf '%s\n' "$value"
}

master_pid() { cat "$GATEHOUSE_HOME/run/gatehouse.pid" 2>/dev/null; }
nginx_pid() { cat "$GATEHOUSE_HOME/run/nginx.pid" 2>/dev/null; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
