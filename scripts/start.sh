#!/usr/bin/env bash
# Brings up Gatehouse on https://127.0.0.1:${GATEHOUSE_HTTPS_PORT:-8443}: installs missing
# Debian packages, builds, creates $GATEHOUSE_HOME (default var/), starts the worker pool
# and a private nginx. Running it again is harmless.
source "$(dirname "$0")/lib.sh"

ensure_packages "${SYSTEM_PACKAGES[@]}"
command -v swift >/dev/null || fail "swift is not on PATH (Swift 6 toolchain required)"
build_release

home=$GATEHOUSE_HOME
mkdir -p "$home/logs" "$home/run"
ensure_certificate "$home/tls"
first_run=0
[ -f "$home/gatehouse.db" ] || first_run=1
"$BIN" migrate >/dev/null
socket=$(configured_socket "$home")
example_port=${GATEHOUSE_EXAMPLE_PORT:-$((GATEHOUSE_HTTPS_PORT + 1))}
render_nginx "$home" "$GATEHOUSE_HTTPS_PORT" "$example_port" "$socket" on

if alive "$(master_pid)"; then
    say "gatehouse already running (pid $(master_pid))"
else
    nohup "$BIN" serve >>"$home/logs/gatehouse.log" 2>&1 &
    wait_for 20 test -S "$socket" || fail "gatehouse did not start; see $home/logs/gatehouse.log"
fi

if alive "$(nginx_pid)"; then
    nginx -p "$home/nginx" -c "$home/nginx/nginx.conf" -s reload
else
    nginx -p "$home/nginx" -c "$home/nginx/nginx.conf" || fail "nginx did not start; see $home/logs/nginx-error.log"
fi

url="https://127.0.0.1:$GATEHOUSE_HTTPS_PORT"
wait_for 20 curl -fsk "$url/health" || fail "$url/health does not answer; see $home/logs/"

if [ "$first_run" -eq 1 ]; then
    demo_password=$(openssl rand -base64 12 | tr -d '/+=')
    printf '%s\n' "$demo_password" | "$BIN" user add --username demo --password-stdin >/dev/null
    client=$("$BIN" client add --name "Demo application" --redirect-uri "https://127.0.0.1:$GATEHOUSE_HTTPS_PORT/example/callback" \
        --redirect-uri "http://127.0.0.1/callback" --grant-types authorization_code,refresh_token,client_credentials,password \
        --scope "PRODUCTION SANDBOX" --default-scope PRODUCTION --json)
    {
        echo "Demo user:    demo / $demo_password"
        echo "Demo client:  $client"
    } > "$home/demo-credentials.txt"
    chmod 600 "$home/demo-credentials.txt"
    say ""
    say "First start: a demo user and client were created (also in $home/demo-credentials.txt):"
    cat "$home/demo-credentials.txt" >&2
fi
say ""
say "Gatehouse is up: $url   (try: curl -k $url/health)"
