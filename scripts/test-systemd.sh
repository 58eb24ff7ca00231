#!/usr/bin/env bash
# scripts/install.sh in system mode under a real systemd, behind the system nginx:
#
#   scripts/test-systemd.sh [--binary PATH] [--require] [--keep]
#
# Boots this machine's own root file system as a container (systemd-nspawn --boot on an
# overlay: a tmpfs takes every write, the host's files are never changed), with systemd as
# PID 1 and a private network, and there, from a clone of this checkout (its uncommitted
# changes and new files included):
#
#   - scripts/install.sh (system mode), systemd-analyze verify on the unit it wrote
#   - a TLS server { } in the system nginx with the one include /etc/gatehouse/nginx/gatehouse.conf
#   - systemctl start gatehouse; the socket: nginx's user connects, `nobody` cannot
#   - over nginx: /health, discovery, client_credentials, the authorization code flow with
#     PKCE (login, consent, code, tokens, ID Token, UserInfo, introspection, refresh)
#   - systemctl reload under load: every worker replaced, not one failed request
#   - systemctl kill -s KILL on the master: Restart=on-failure brings it back
#   - logrotate -f: the old file rotated, master and workers write to the new one
#   - systemctl stop: no process left, the socket gone
#   - scripts/install.sh --uninstall: unit and includes gone, data, configuration and user kept
#   - no process of the service killed by the seccomp filter (SIGSYS), nothing denied
#
# Needs root, systemd-nspawn (package systemd-container, installed if missing) and overlayfs;
# where it cannot run, or the container does not boot, it prints why and exits 0 ("skip"),
# or 1 with --require; a failed check inside a booted container always fails. The binary is
# the release build (built under /tmp/gatehouse-build.lock if swift is here), or --binary.
# --keep leaves the container running and prints how to enter it. Takes about a minute.
source "$(dirname "$0")/lib.sh"
binary="" require=0 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --binary) [ $# -ge 2 ] || fail "--binary needs a path"; binary=$2; shift 2 ;;
        --require) require=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) fail "unknown option: $1 (see --help)" ;;
    esac
done
skip() {
    if [ "$require" -eq 1 ]; then fail "cannot run the systemd test: $*"; fi
    say "SKIP systemd test: $*"
    exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (it mounts an overlay and boots a container)"
if ! command -v systemd-nspawn >/dev/null; then
    ensure_packages systemd-container >/dev/null 2>&1 || true
    command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed (apt-get install systemd-container)"
fi
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs"
[ -x /lib/systemd/systemd ] || skip "systemd is not installed on this machine (the container boots this root)"
command -v nginx >/dev/null || skip "nginx is not installed on this machine"
command -v logrotate >/dev/null || ensure_packages logrotate >/dev/null 2>&1 || true
command -v logrotate >/dev/null || skip "logrotate is not installed"

if [ -z "$binary" ]; then
    command -v swift >/dev/null || skip "no swift to build the release binary (or pass --binary PATH)"
    say "building release (under /tmp/gatehouse-build.lock)..."
    (cd "$ROOT" && flock /tmp/gatehouse-build.lock swift build -c release --static-swift-stdlib 2>&1 \
        | grep -E 'error|Build complete' | tail -3 >&2)
    binary=$ROOT/.build/release/gatehouse
fi
[ -x "$binary" ] || fail "no executable at $binary"

started=$(date +%s)
work=$(mktemp -d /tmp/gatehouse-systemd.XXXXXX)
root=$work/root machine=gatehouse-test-$$ nspawn_pid="" leader="" mounted_propagate=0 made_propagate=0
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${st:0:1}" != Z ]; }
cleanup() {
    local rc=$?
    set +e
    if [ "$keep" -eq 1 ] && [ -n "$leader" ]; then
        say "container kept: nsenter -t $leader -a bash"
        say "  then: kill -RTMIN+4 $leader; umount $root $work; rmdir $work$([ "$mounted_propagate" -eq 1 ] && echo "; umount /run/systemd/nspawn")"
        exit $rc
    fi
    if [ -n "$nspawn_pid" ] && running "$nspawn_pid"; then
        [ -n "$leader" ] && kill -RTMIN+4 "$leader" 2>/dev/null   # systemd: poweroff
        wait_for 30 sh -c "! ps -o stat= -p $nspawn_pid | grep -qv Z" \
            || { [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null; sleep 1; kill -KILL "$nspawn_pid" 2>/dev/null; }
    fi
    [ -n "$nspawn_pid" ] && wait "$nspawn_pid" 2>/dev/null
    mountpoint -q "$root" && umount "$root"
    mountpoint -q "$work" && umount "$work"
    rmdir "$work" 2>/dev/null
    [ "$mounted_propagate" -eq 1 ] && umount /run/systemd/nspawn
    [ "$made_propagate" -eq 1 ] && rmdir /run/systemd/nspawn
    exit $rc
}
trap cleanup EXIT

# The container's root: this machine's / (the root file system only, not the mounts under
# it) with a tmpfs on top; everything the test writes, installs and creates lands there.
mount -t tmpfs -o mode=700,size=2G gatehouse-systemd-test "$work"
mkdir -p "$work/ovl" "$root"
mkdir -m 755 "$work/upper"   # the container's / takes this mode: every user must traverse it
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/ovl" "$root" \
    || skip "cannot mount an overlay of / (inside a container already?)"
# A fresh machine: an earlier install on this host is removed in the overlay only.
rm -rf "$root/etc/gatehouse" "$root/var/lib/gatehouse" "$root/var/log/gatehouse" "$root/usr/local/lib/gatehouse" \
    "$root/usr/local/bin/gatehouse" "$root/etc/systemd/system/gatehouse.service" "$root/etc/tmpfiles.d/gatehouse.conf" \
    "$root/etc/systemd/system/multi-user.target.wants/gatehouse.service" "$root/etc/nginx/conf.d/gatehouse.conf" \
    "$root/etc/logrotate.d/gatehouse"
for f in passwd group shadow gshadow; do
    [ -f "$root/etc/$f" ] && sed -i '/^gatehouse:/d' "$root/etc/$f"
done
# Only what the test needs boots: no database server, no timers, no getty.
for u in postgresql.service cron.service apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer logrotate.timer systemd-timesyncd.service console-getty.service; do
    ln -sfn /dev/null "$root/etc/systemd/system/$u"
done
# The checkout: a clone (what is committed) plus the working tree's uncommitted changes and
# new files; without git, a copy of the tree.
src=$root/root/gatehouse
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git clone -q --no-hardlinks "$ROOT" "$src"
    changes=$(git -C "$ROOT" diff HEAD --binary)
    [ -z "$changes" ] || printf '%s\n' "$changes" | git -C "$src" apply
    (cd "$ROOT" && git ls-files -z --others --exclude-standard | tar --null -T - -cf -) | tar -C "$src" -xf -
else
    mkdir -p "$src"
    (cd "$ROOT" && tar --exclude=./.build --exclude=./.venv --exclude=./var -cf - .) | tar -C "$src" -xf -
fi
install -m 755 "$binary" "$root/root/gatehouse.bin"

# nspawn keeps state in /run/systemd/nspawn and cleans it only on a tmpfs; where /run is
# not one (a host whose PID 1 is not systemd), it gets a tmpfs for the run.
[ -d /run/systemd/nspawn ] || { mkdir -p /run/systemd/nspawn && made_propagate=1; }
if [ "$(findmnt -n -o FSTYPE --target /run/systemd/nspawn)" != tmpfs ]; then
    mount -t tmpfs -o mode=755,size=1M gatehouse-nspawn /run/systemd/nspawn && mounted_propagate=1
fi
nspawn_args=(--boot --directory="$root" --machine="$machine" --private-network --register=no --link-journal=no
             --console=passive)
# Under a systemd host nspawn makes its own scope; without one it stays in the caller's cgroup.
[ -d /run/systemd/system ] || nspawn_args+=(--keep-unit)
say "booting $machine (systemd-nspawn on an overlay of /)..."
systemd-nspawn "${nspawn_args[@]}" </dev/null >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
deadline=$(( $(date +%s) + 60 ))
while [ -z "$leader" ]; do
    running "$nspawn_pid" || { cat "$work/nspawn.log" >&2; skip "systemd-nspawn could not boot a container here"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/nspawn.log" >&2; skip "the container's init did not start within 60 s"; }
    for p in $(pgrep -P "$nspawn_pid"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ] && leader=$p; done
    sleep 0.2
done
inside() {
    nsenter -t "$leader" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 "$@"
}
# systemctl answers once systemd has its private socket; then --wait until boot is over.
wait_for 60 inside test -S /run/systemd/private || { cat "$work/nspawn.log" >&2; skip "the container's systemd never answered"; }
state=$(inside timeout 90 systemctl is-system-running --wait 2>/dev/null || true)
case $state in
    running|degraded) say "container up ($state) in $(( $(date +%s) - started ))s" ;;
    *) inside systemctl --failed --no-pager >&2 || true; skip "the container's systemd did not finish booting (state: ${state:-none})" ;;
esac
[ "$state" = running ] || inside systemctl --failed --no-pager >&2 || true

cat > "$root/root/inside.sh" <<'INSIDE'
#!/usr/bin/env bash
# Runs inside the container as root; systemd is PID 1.
set -euo pipefail
ok() { printf 'ok: %s\n' "$*"; }
die() {
    printf 'FAIL: %s\n' "$*"
    systemctl status gatehouse --no-pager -l 2>&1 | tail -20 || true
    journalctl -u gatehouse --no-pager 2>&1 | tail -30 || true
    tail -5 /var/log/nginx/error.log 2>/dev/null || true
    exit 1
}
URL=https://127.0.0.1:8443 CA=/etc/nginx/gatehouse-test/cert.pem
get() { curl -sS --max-time 10 --cacert "$CA" -o /dev/null -w '%{http_code}' "$@"; }
cd /root/gatehouse

# ---- install, system mode -------------------------------------------------------------------
scripts/install.sh --binary /root/gatehouse.bin --issuer "$URL" >/root/install.log 2>&1 || { cat /root/install.log; die "install.sh"; }
id gatehouse >/dev/null && ok "system user gatehouse"
[ "$(stat -c '%a %U %G' /etc/gatehouse/gatehouse.conf)" = "640 root gatehouse" ] || die "gatehouse.conf mode"
[ "$(stat -c '%a %U %G' /var/lib/gatehouse)" = "750 gatehouse gatehouse" ] || die "state directory mode"
[ "$(stat -c '%a %U %G' /run/gatehouse)" = "2750 gatehouse www-data" ] || die "socket directory: $(stat -c '%a %U %G' /run/gatehouse)"
systemctl is-enabled gatehouse >/dev/null || die "not enabled"
out=$(systemd-analyze verify /etc/systemd/system/gatehouse.service 2>&1) || die "systemd-analyze verify: $out"
! grep -q gatehouse.service <<<"$out" || die "systemd-analyze verify: $out"
ok "installed; systemd-analyze verify clean"
systemd-analyze security gatehouse.service --no-pager 2>/dev/null | tail -1 | sed 's/^/   systemd-analyze security: /' || true

# ---- the system nginx, one include in a TLS server { } ------------------------------------------
mkdir -p /etc/nginx/gatehouse-test
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout /etc/nginx/gatehouse-test/key.pem -out "$CA" >/dev/null 2>&1
cat > /etc/nginx/sites-enabled/gatehouse-test <<'NGINX'
server {
    listen 127.0.0.1:8443 ssl;
    ssl_certificate /etc/nginx/gatehouse-test/cert.pem;
    ssl_certificate_key /etc/nginx/gatehouse-test/key.pem;
    include /etc/gatehouse/nginx/gatehouse.conf;
}
NGINX
nginx -t -q || die "nginx -t"
systemctl reload-or-restart nginx
systemctl is-active -q nginx || die "nginx is not running"
ok "system nginx with one include"

# ---- start ---------------------------------------------------------------------------------
systemctl start gatehouse
for _ in $(seq 100); do [ "$(get "$URL/health" 2>/dev/null)" = 200 ] && break; sleep 0.1; done
systemctl is-active -q gatehouse || die "not active after start"
[ "$(get "$URL/health")" = 200 ] || die "/health through nginx"
ok "systemctl start: active, /health 200 through nginx"
[ "$(stat -c '%a %U %G' /run/gatehouse/gatehouse.sock)" = "660 gatehouse www-data" ] || die "socket: $(stat -c '%a %U %G' /run/gatehouse/gatehouse.sock)"
connect='import socket,sys
s=socket.socket(socket.AF_UNIX)
try: s.connect("/run/gatehouse/gatehouse.sock"); print("connected")
except OSError as e: print(type(e).__name__)'
[ "$(runuser -u www-data -- python3 -c "$connect")" = connected ] || die "www-data cannot connect to the socket"
[ "$(runuser -u nobody -- python3 -c "$connect")" = PermissionError ] || die "nobody reaches the socket"
ok "socket 0660 gatehouse:www-data: www-data connects, nobody is refused"
# The sandbox is really there: seccomp filter, no new privileges, no capabilities, a read-only
# /usr and /etc, a private /tmp, and the master runs as gatehouse.
main=$(systemctl show -P MainPID gatehouse)
status=$(cat /proc/$main/status)
grep -qE '^Seccomp:\s+2$' <<<"$status" || die "no seccomp filter on the master"
grep -qE '^NoNewPrivs:\s+1$' <<<"$status" || die "NoNewPrivs is off"
grep -qE '^CapEff:\s+0+$' <<<"$status" || die "the master has capabilities"
[ "$(stat -c %U /proc/$main)" = gatehouse ] || die "the master does not run as gatehouse"
! nsenter -t "$main" -m touch /etc/gatehouse/x /usr/local/lib/gatehouse/x 2>/dev/null || die "/etc or /usr writable in the service"
nsenter -t "$main" -m touch /var/lib/gatehouse/x /var/log/gatehouse/x /run/gatehouse/x || die "a ReadWritePaths directory is read-only"
nsenter -t "$main" -m rm -f /var/lib/gatehouse/x /var/log/gatehouse/x /run/gatehouse/x
touch /tmp/gatehouse-host-tmp && ! nsenter -t "$main" -m test -e /tmp/gatehouse-host-tmp || die "/tmp is not private"
ok "sandbox in force: seccomp, NoNewPrivs, no capabilities, /etc and /usr read-only, private /tmp"

# A second install on a running service: the configuration kept, restarted onto the binary.
scripts/install.sh --binary /root/gatehouse.bin >/root/install2.log 2>&1 || { cat /root/install2.log; die "second install.sh"; }
grep -q "kept /etc/gatehouse/gatehouse.conf" /root/install2.log || die "the configuration was not kept"
for _ in $(seq 100); do [ "$(get "$URL/health" 2>/dev/null)" = 200 ] && break; sleep 0.1; done
[ "$(systemctl show -P MainPID gatehouse)" != "$main" ] || die "not restarted by the second install"
systemctl is-active -q gatehouse && [ "$(get "$URL/health")" = 200 ] || die "not serving after the second install"
ok "install.sh again: configuration kept, service restarted, serving"

# ---- OAuth through nginx ---------------------------------------------------------------------
client=$(gatehouse client add --name "systemd test" --grant-types authorization_code,refresh_token,client_credentials \
    --redirect-uri https://client.example/cb --scope "openid profile email" --json)
printf '%s\n' 'correct horse battery staple' | gatehouse user add --username alice --password-stdin --email alice@example.com >/dev/null
CLIENT=$client URL=$URL CA=$CA python3 - <<'PY' || die "OAuth flows through nginx"
import base64, hashlib, html, http.cookiejar, json, os, re, ssl, urllib.error, urllib.parse, urllib.request
url, client = os.environ["URL"], json.loads(os.environ["CLIENT"])
ctx = ssl.create_default_context(cafile=os.environ["CA"])
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def call(path, data=None, auth=None, bearer=None):
    req = urllib.request.Request(path if path.startswith("http") else url + path,
                                 data=urllib.parse.urlencode(data).encode() if data is not None else None)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    try:
        with opener.open(req, timeout=30) as r: return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e: return e.code, dict(e.headers), e.read().decode()
creds = (client["client_id"], client["client_secret"])
s, _, body = call("/.well-known/openid-configuration")
meta = json.loads(body); assert s == 200 and meta["issuer"] == url, body
s, _, body = call("/token", {"grant_type": "client_credentials"}, auth=creds)
assert s == 200 and json.loads(body)["token_type"] == "Bearer", body
print("ok: discovery, client_credentials token")
verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
q = urllib.parse.urlencode({"response_type": "code", "client_id": creds[0], "redirect_uri": "https://client.example/cb",
                            "scope": "openid profile email", "state": "st-1", "nonce": "n-1",
                            "code_challenge": challenge, "code_challenge_method": "S256"})
def submit(page, **fields):
    data = {html.unescape(n): html.unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    data.update(fields)
    action = html.unescape(re.search(r'<form\b[^>]*\baction="([^"]*)"', page).group(1))
    return call(urllib.parse.urljoin(url + "/authorize", action), data)
s, h, page = call("/authorize?" + q)
assert s == 200 and 'name="password"' in page, (s, page[:300])
s, h, page = submit(page, username="alice", password="correct horse battery staple")
if s == 200 and 'name="decision"' in page:
    s, h, page = submit(page, decision="allow")
assert s in (302, 303), (s, page[:300])
loc = urllib.parse.urlparse(h["Location"]); params = dict(urllib.parse.parse_qsl(loc.query))
assert loc.netloc == "client.example" and params["state"] == "st-1" and "code" in params, h["Location"]
s, _, body = call("/token", {"grant_type": "authorization_code", "code": params["code"],
                             "redirect_uri": "https://client.example/cb", "code_verifier": verifier}, auth=creds)
tokens = json.loads(body); assert s == 200 and tokens["access_token"] and tokens["id_token"] and tokens["refresh_token"], body
claims = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "=="))
assert claims["iss"] == url and claims["aud"] in (creds[0], [creds[0]]) and claims["nonce"] == "n-1", claims
s, _, body = call("/userinfo", bearer=tokens["access_token"])
assert s == 200 and json.loads(body)["sub"] == claims["sub"], body
s, _, body = call("/introspect", {"token": tokens["access_token"]}, auth=creds)
assert s == 200 and json.loads(body)["active"] is True, body
s, _, body = call("/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=creds)
assert s == 200 and json.loads(body)["access_token"], body
print("ok: authorization code + PKCE: login, consent, code, tokens, ID Token, UserInfo, introspection, refresh")
PY

# ---- reload under load -------------------------------------------------------------------------
main=$(systemctl show -P MainPID gatehouse)
old_workers=$(pgrep -P "$main" | sort | tr '\n' ' ')
[ -n "$old_workers" ] || die "no workers under the master $main"
CLIENT=$client URL=$URL CA=$CA OLD="$old_workers" MAIN=$main python3 - <<'PY' || die "reload under load"
import base64, json, os, ssl, subprocess, threading, time, urllib.error, urllib.request
url, client, old = os.environ["URL"], json.loads(os.environ["CLIENT"]), set(os.environ["OLD"].split())
ctx = ssl.create_default_context(cafile=os.environ["CA"])
auth = "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
done, results, lock = threading.Event(), {"ok": 0, "failed": []}, threading.Lock()
def load():
    while not done.is_set():
        req = urllib.request.Request(url + "/token", data=b"grant_type=client_credentials", headers={"Authorization": auth})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                ok = r.status == 200
                status = r.status
        except urllib.error.HTTPError as e: ok, status = False, e.code
        except Exception as e: ok, status = False, repr(e)
        with lock:
            if ok: results["ok"] += 1
            else: results["failed"].append(status)
threads = [threading.Thread(target=load) for _ in range(4)]
for t in threads: t.start()
time.sleep(1)
subprocess.run(["systemctl", "reload", "gatehouse"], check=True)
deadline = time.time() + 60
def alive(pid): return os.path.exists(f"/proc/{pid}")
while time.time() < deadline and any(alive(p) for p in old): time.sleep(0.1)
time.sleep(1)
done.set()
for t in threads: t.join()
assert not any(alive(p) for p in old), "old workers still running after 60 s"
main = subprocess.run(["systemctl", "show", "-P", "MainPID", "gatehouse"], capture_output=True, text=True).stdout.strip()
assert main == os.environ["MAIN"], "the master changed on reload"
assert results["ok"] > 0 and not results["failed"], results
print(f"ok: systemctl reload under load: {len(old)} workers replaced, master kept, {results['ok']} requests, none failed")
PY

# ---- the master killed: Restart=on-failure ----------------------------------------------------
restarts=$(systemctl show -P NRestarts gatehouse)
systemctl kill -s KILL --kill-who=main gatehouse
for _ in $(seq 150); do
    [ "$(systemctl show -P NRestarts gatehouse)" -gt "$restarts" ] && systemctl is-active -q gatehouse \
        && [ "$(get "$URL/health" 2>/dev/null)" = 200 ] && break
    sleep 0.1
done
[ "$(systemctl show -P NRestarts gatehouse)" -gt "$restarts" ] || die "not restarted after SIGKILL"
[ "$(systemctl show -P MainPID gatehouse)" != "$main" ] || die "same master after SIGKILL"
[ "$(get "$URL/health")" = 200 ] || die "/health after the restart"
! pgrep -P "$main" >/dev/null || die "workers of the killed master left behind"
ok "systemctl kill -s KILL on the master: restarted (Restart=on-failure), old workers gone, /health 200"

# ---- logrotate: USR1 --------------------------------------------------------------------------
log=/var/log/gatehouse/gatehouse.log
logrotate -f /etc/logrotate.d/gatehouse || die "logrotate"
[ -s $log.1 ] || die "no $log.1"
for _ in $(seq 50); do grep -q event=log_reopened $log 2>/dev/null && break; sleep 0.1; done
grep -q event=log_reopened $log || die "the master did not reopen $log"
[ "$(stat -c '%a %U %G' $log)" = "640 gatehouse gatehouse" ] || die "new log: $(stat -c '%a %U %G' $log)"
CLIENT=$client URL=$URL CA=$CA python3 - <<'PY' || die "a worker's line after logrotate"
import html, http.cookiejar, json, os, re, ssl, urllib.error, urllib.parse, urllib.request
url, client = os.environ["URL"], json.loads(os.environ["CLIENT"])
ctx = ssl.create_default_context(cafile=os.environ["CA"])
# A wrong password on the login form: the worker writes event=login_failed.
q = urllib.parse.urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": "https://client.example/cb",
                            "scope": "openid", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                            "code_challenge_method": "S256"})
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
page = opener.open(url + "/authorize?" + q, timeout=30).read().decode()
data = {html.unescape(n): html.unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
data.update(username="alice", password="not the password")
try: opener.open(url + "/authorize", data=urllib.parse.urlencode(data).encode(), timeout=30)
except urllib.error.HTTPError: pass
PY
for _ in $(seq 50); do grep -q event=login_failed $log && break; sleep 0.1; done
grep -q event=login_failed $log || die "a worker still writes to the rotated file"
! grep -q event=login_failed $log.1 || die "a worker wrote to the rotated file"
ok "logrotate -f: rotated, USR1 reopened the log in the master and the workers"

# ---- stop ---------------------------------------------------------------------------------------
systemctl stop gatehouse
systemctl is-active -q gatehouse && die "still active after stop"
! pgrep -u gatehouse >/dev/null || die "processes of gatehouse left after stop: $(pgrep -a -u gatehouse)"
[ ! -e /run/gatehouse/gatehouse.sock ] || die "the socket is left after stop"
result=$(systemctl show -P Result gatehouse)
[ "$result" = success ] || die "stop result: $result"
ok "systemctl stop: inactive (result: success), no process left, socket removed"

# ---- the sandbox never killed or denied anything -----------------------------------------------
journal=$(journalctl -u gatehouse --no-pager -o cat)
! grep -E 'SIGSYS|status=31|Bad system call|Operation not permitted|Permission denied|level=error' <<<"$journal" \
    || die "the sandbox got in the way (above)"
! grep -E 'level=error' /var/log/gatehouse/gatehouse.log* || die "errors in the log (above)"
ok "no SIGSYS, no EPERM/EACCES, no level=error in the journal or the log"

# ---- uninstall ----------------------------------------------------------------------------------
systemctl start gatehouse
rm -f /etc/nginx/sites-enabled/gatehouse-test
scripts/install.sh --uninstall >/root/uninstall.log 2>&1 || { cat /root/uninstall.log; die "install.sh --uninstall"; }
systemctl is-active -q gatehouse && die "active after uninstall"
for f in /etc/systemd/system/gatehouse.service /etc/tmpfiles.d/gatehouse.conf /etc/logrotate.d/gatehouse \
         /etc/nginx/conf.d/gatehouse.conf /etc/gatehouse/nginx /usr/local/bin/gatehouse /usr/local/lib/gatehouse/gatehouse \
         /run/gatehouse; do
    [ ! -e "$f" ] || die "$f left after uninstall"
done
for f in /etc/gatehouse/gatehouse.conf /var/lib/gatehouse/gatehouse.db /var/lib/gatehouse/secret.key $log; do
    [ -e "$f" ] || die "$f removed by uninstall"
done
id gatehouse >/dev/null || die "the gatehouse user was removed"
[ "$(systemctl show -P LoadState gatehouse)" = not-found ] || die "systemd still knows gatehouse.service"
nginx -t -q && systemctl is-active -q nginx || die "nginx broken after uninstall"
ok "uninstall: service and files gone; configuration, database, key, logs and user kept; nginx fine"
INSIDE
chmod 755 "$root/root/inside.sh"

say "running the checks inside the container..."
if inside /root/inside.sh; then
    say "systemd test passed in $(( $(date +%s) - started ))s"
else
    fail "systemd test failed (rerun with --keep to look inside)"
fi
