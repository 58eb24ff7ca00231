#!/usr/bin/env bash
# Re-reads gatehouse.conf and replaces the workers without dropping a request (SIGHUP to the
# master). nginx is reloaded only when its rendered configuration changed: a reload makes
# nginx's old workers close their idle keep-alive connections, and a client that is sending
# on one at that moment sees its request fail. Says which happened.
source "$(dirname "$0")/lib.sh"
pid=$(master_pid || true)
alive "$pid" || fail "gatehouse is not running"
kill -HUP "$pid"
say "gatehouse: reload signalled (master $pid); see its log for master_reloaded"

nginx_dir=$GATEHOUSE_HOME/nginx
if ! alive "$(nginx_pid)"; then
    say "nginx: not running; nothing to reload"
    exit 0
fi
# The same parameters the running configuration was rendered with (render_nginx records them);
# an instance rendered before they were recorded gets what start.sh would render.
if ! read_render_params "$nginx_dir/render.env"; then
    r_port=$GATEHOUSE_HTTPS_PORT
    r_example_port=${GATEHOUSE_EXAMPLE_PORT:-$((GATEHOUSE_HTTPS_PORT + 1))}
    r_socket=$(configured_socket "$GATEHOUSE_HOME")
    r_daemon=on
    r_scope=${GATEHOUSE_EXAMPLE_SCOPE:-}
    r_rate=10r/s
    say "nginx: $nginx_dir/render.env is missing; rendering as start.sh does (port $r_port)"
fi

tmp=$(mktemp -d "$nginx_dir/.render.XXXXXX")   # beside the live files: mv stays on one file system
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/new" "$tmp/old"
# The login limit as rendered, unless GATEHOUSE_LOGIN_RATE asks for another one now.
render_nginx_into "$tmp/new" "$GATEHOUSE_HOME" "$r_port" "$r_example_port" "$r_socket" "$r_daemon" "$r_scope" \
    "${GATEHOUSE_LOGIN_RATE:-$r_rate}"
changed=()
for f in "$tmp/new"/*; do
    name=${f##*/}
    cmp -s "$f" "$nginx_dir/$name" || changed+=("$name")
done
if [ ${#changed[@]} -eq 0 ]; then
    say "nginx: configuration unchanged; not reloaded"
    exit 0
fi

for name in "${changed[@]}"; do
    [ -e "$nginx_dir/$name" ] && cp -p "$nginx_dir/$name" "$tmp/old/$name"
    mv "$tmp/new/$name" "$nginx_dir/$name"
done
if ! nginx -t -q -p "$nginx_dir" -c "$nginx_dir/nginx.conf" 2>"$tmp/test.log"; then
    for name in "${changed[@]}"; do
        if [ -e "$tmp/old/$name" ]; then mv "$tmp/old/$name" "$nginx_dir/$name"; else rm -f "$nginx_dir/$name"; fi
    done
    cat "$tmp/test.log" >&2
    fail "nginx: the new configuration fails nginx -t; the old one stays in place and in use"
fi
nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -s reload
say "nginx: configuration changed (${changed[*]}); reloaded"
