"""Issue 3: the running stack. nginx + pre-forked FastCGI workers + SQLite WAL."""
import os
import random
import re
import socket
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import Stack, query_of
from oauth_flow import Browser


def test_health_over_https_from_a_worker(stack):
    r = stack.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"


def test_unknown_path_is_404_json(stack):
    assert stack.get("/nope").status_code == 404


def test_status_counts_requests(stack):
    before = stack.get("/gatehouse/status").json()["requests_served"]
    for _ in range(5):
        stack.get("/health")
    after = stack.get("/gatehouse/status").json()
    assert after["requests_served"] >= before + 5
    assert after["workers"] == 2


@pytest.mark.sqlite
def test_database_is_wal(stack):
    out = subprocess.run(["sqlite3", os.path.join(stack.home, "gatehouse.db"), "PRAGMA journal_mode"],
                         capture_output=True, text=True).stdout.strip()
    assert out == "wal"


def test_oversized_body_is_413_from_nginx(stack):
    r = stack.post("/token", data={"x": "a" * 40000})
    assert r.status_code == 413


def test_malformed_form_is_400_not_500(stack):
    for body in ["a=%zz", "a=%C3%28", "grant_type=client_credentials&grant_type=password"]:
        r = stack.post("/token", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"},
                       auth=("nobody", "nothing"))
        assert r.status_code in (400, 401), (body, r.status_code, r.text)


def test_killed_worker_is_replaced_while_requests_are_answered():
    s = Stack(workers=2).start()
    try:
        victim = s.worker_pids()[0]
        failures = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    if s.get("/health").status_code != 200:
                        failures.append("status")
                except requests.RequestException as e:
                    failures.append(str(e))

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        s.wait_log("event=worker_exited", timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and (len(s.worker_pids()) != 2 or victim in s.worker_pids()):
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        t.join()
        assert victim not in s.worker_pids()
        assert len(s.worker_pids()) == 2
        # Only a request in flight on the killed worker may fail (nginx answers 502).
        assert len(failures) <= 1, failures
        assert s.get("/health").status_code == 200
    finally:
        s.stop()


def test_sighup_reload_under_load_fails_no_request():
    s = Stack(workers=2).start()
    try:
        old = s.worker_pids()
        results = {"ok": 0, "failed": []}
        stop = threading.Event()

        def load():
            session = s.session()
            while not stop.is_set():
                try:
                    r = session.get(s.url + "/health", timeout=30)
                    if r.status_code == 200:
                        results["ok"] += 1
                    else:
                        results["failed"].append(r.status_code)
                except requests.RequestException as e:
                    results["failed"].append(str(e))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for i in range(3):
            s.master.send_signal(signal.SIGHUP)
            s.wait_log("event=master_reloaded", count=i + 1)
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert results["failed"] == []
        assert results["ok"] > 50
        new = s.worker_pids()
        assert len(new) == 2 and not set(old) & set(new)
    finally:
        s.stop()


def test_bad_config_value_stops_startup_naming_the_key(tmp_path):
    s = Stack(workers=1, extra_config="access_token_lifetime = soon")
    r = subprocess.run([os.environ.get("GATEHOUSE_BIN") or s.cli.__globals__["BIN"], "serve"], env=s.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "access_token_lifetime" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_stop_leaves_no_process():
    s = Stack(workers=3).start()
    pids = s.worker_pids() + [s.master.pid]
    s.stop()
    time.sleep(0.2)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(s.socket)


def test_worker_recycled_after_max_requests():
    s = Stack(workers=1, extra_config="max_requests = 5").start()
    try:
        first = s.worker_pids()
        for _ in range(12):
            assert s.get("/health").status_code == 200
        s.wait_log("event=worker_recycled", count=2)
        assert s.worker_pids() != first
    finally:
        s.stop()


def test_graceful_stop_finishes_the_request_in_flight():
    """A password-grant login spends ~0.3 s in PBKDF2: SIGTERM lands while it runs."""
    s = Stack(workers=1).start()
    c = s.add_client("--name", "slow", "--grant-types", "password")
    s.add_user("slowpoke")
    result = {}

    def login():
        result["r"] = s.post("/token", data={"grant_type": "password", "username": "slowpoke", "password": "wrong"},
                             auth=(c["client_id"], c["client_secret"]))

    t = threading.Thread(target=login)
    t.start()
    time.sleep(0.1)
    s.master.send_signal(signal.SIGTERM)
    t.join()
    assert result["r"].status_code == 400  # answered (invalid_grant), not a 502
    assert result["r"].json()["error"] == "invalid_grant"
    s.master.wait(30)
    s.stop()


@pytest.mark.sqlite
def test_sqlite_busy_past_the_timeout_is_503_not_500():
    """Another process holds the write lock longer than busy_timeout_ms: retryable 503."""
    s = Stack(workers=1, extra_config="busy_timeout_ms = 200").start()
    try:
        c = s.add_client("--name", "busy", "--grant-types", "client_credentials")
        web = s.add_client("--name", "busy-web", "--redirect-uri", "https://app.example/cb", "--skip-consent")
        s.add_user("busy-user")
        b = Browser(s)
        r = b.login(b.authorize({"response_type": "code", "client_id": web["client_id"], "state": "s0"}), "busy-user")
        assert r.status_code == 303 and "code" in query_of(r.headers["Location"])  # signed in before the lock
        holder = subprocess.Popen(["sqlite3", os.path.join(s.home, "gatehouse.db")], stdin=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN IMMEDIATE;\nINSERT INTO login_failures VALUES ('x', 1, 0, 0);\n")
        holder.stdin.flush()
        time.sleep(0.3)
        r = s.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "temporarily_unavailable"
        assert r.headers["Retry-After"] == "1"
        # An anonymous visit reads only: the login page is still shown.
        r = s.get("/authorize", params={"response_type": "code", "client_id": web["client_id"], "state": "s1"})
        assert r.status_code == 200 and 'name="password"' in r.text
        # RFC 6749 §4.1.2.1: at /authorize, once the redirect URI is verified, the client hears
        # of it (here: the signed-in user's code cannot be stored).
        r = b.authorize({"response_type": "code", "client_id": web["client_id"], "state": "s1"})
        assert r.status_code == 302, r.text
        q = query_of(r.headers["Location"])
        assert q["error"] == "temporarily_unavailable" and q["state"] == "s1" and q["iss"] == s.url
        holder.stdin.write("ROLLBACK;\n.quit\n")
        holder.stdin.close()
        holder.wait(10)
        r = s.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
        assert r.status_code == 200
        assert "database_busy" in s.read_log()
    finally:
        s.stop()


def test_master_purges_on_schedule():
    s = Stack(workers=1, extra_config="purge_interval = 1\naccess_token_lifetime = 1").start()
    try:
        c = s.add_client("--name", "purge", "--grant-types", "client_credentials")
        s.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
        s.wait_log("event=purge_done", timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline:
            n = s.sql("SELECT count(*) FROM tokens")
            if n == "0":
                break
            time.sleep(0.3)
        assert n == "0"
    finally:
        s.stop()


def test_young_worker_crashes_back_off_instead_of_fork_bombing():
    s = Stack(workers=1).start()
    try:
        for _ in range(3):
            pids = s.worker_pids()
            os.kill(pids[0], signal.SIGKILL)
            deadline = time.time() + 10
            while time.time() < deadline and (not s.worker_pids() or s.worker_pids() == pids):
                time.sleep(0.02)
        log = s.read_log()
        delays = [float(x) for x in re.findall(r"respawn_in_s=([0-9.]+)", log)]
        assert len(delays) >= 3 and delays[-1] > delays[0] > 0, delays
        assert s.get("/health").status_code == 200
    finally:
        s.stop()


def test_garbage_on_the_fastcgi_socket_does_not_take_the_pool_down(stack):
    """R9: random bytes, truncated records, oversized lengths straight to the workers' socket."""
    rng = random.Random(7)
    payloads = [b"", b"\x01", b"GET / HTTP/1.1\r\n\r\n", b"\x01\x01\x00\x01\x00\x08\x00\x00" + b"\x00" * 3,
                b"\x01\x04\x00\x01\xff\xff\x00\x00" + b"A" * 100, bytes(range(256)) * 4]
    payloads += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048))) for _ in range(60)]
    for p in payloads:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(2)
            c.connect(stack.socket)
            try:
                c.sendall(p)
                c.shutdown(socket.SHUT_WR)
                c.recv(65536)
            except OSError:
                pass
    for _ in range(20):
        assert stack.get("/health").status_code == 200
    assert "signal=" not in stack.read_log().split("master_ready", 1)[1]


def test_operator_templates_replace_the_built_in_pages(tmp_path):
    s = Stack(workers=1)
    tdir = os.path.join(s.home, "templates")
    os.makedirs(tdir)
    for name in ("login", "consent", "error"):
        with open(os.path.join(tdir, name + ".mustache"), "w") as f:
            f.write(f"<!doctype html><title>ACME {name}</title><p>ACME {name} page for {{{{client_name}}}}{{{{message}}}}</p>"
                    '<form method="post"><input type="hidden" name="csrf" value="{{csrf}}"></form>')
    with open(os.path.join(s.home, "gatehouse.conf"), "a") as f:
        f.write("\ntemplate_dir = templates\n")
    s.start()
    try:
        assert "ACME error page" in s.get("/authorize?client_id=nobody").text
        c = s.add_client("--name", "Acme App", "--redirect-uri", "https://acme.example/cb")
        r = s.get("/authorize", params={"response_type": "code", "client_id": c["client_id"]})
        assert "ACME login page for Acme App" in r.text
        assert r.headers["X-Frame-Options"] == "DENY"
    finally:
        s.stop()


def test_broken_template_dir_stops_startup_naming_the_key():
    s = Stack(workers=1, extra_config="template_dir = /nonexistent/templates")
    r = subprocess.run([s.cli.__globals__["BIN"], "serve"], env=s.env, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "template_dir" in r.stderr
