"""SECURITY-CHECKLIST.md §4.2 (reliability on a 2-core machine), the items test_stack.py,
test_tokens.py and test_authorization_code.py do not already cover. Black box: real nginx,
real workers, real SQLite (or PostgreSQL: conftest); the database is only read (sqlite3,
psql) to check the invariants I1-I3 and to hold its write lock from outside. Tests assert outcomes (which statuses, how
many successes, what survives), never latencies. Server deviations are xfail(strict=True)."""
import hashlib
import hmac
import os
import platform
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import BIN, PASSWORD, POSTGRES, ROOT, Stack, blob, query_of
from oauth_flow import ALL_GRANTS, CB, INACTIVE, auth_params, basic, uniq
from oauth_flow import Browser as _Browser

# accept(2) / accept4(2) / ppoll(2): where an idle worker waits (first field of /proc/<pid>/syscall).
ACCEPT_SYSCALLS = {"aarch64": {"202", "242", "73"}}.get(platform.machine(), {"43", "288", "271"})


# -- helpers: processes, database, waiting --------------------------------------------------

def wait_until(predicate, timeout=15, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def db_path(s):
    return getattr(s, "db", os.path.join(s.home, "gatehouse.db"))


def sql(s, query):
    return s.sql(query)


def count_live_tokens(s, tokens):
    """How many of `tokens` are stored and not revoked, found by their HMAC under the server key."""
    if not tokens:
        return 0
    with open(os.path.join(s.home, "secret.key")) as f:
        key = bytes.fromhex(f.read().strip())
    hashes = ",".join(blob(hmac.new(key, t.encode(), hashlib.sha256).digest()) for t in set(tokens))
    return int(s.sql(f"SELECT count(*) FROM tokens WHERE revoked_at IS NULL AND hash IN ({hashes})"))


def live_workers(s):
    """Worker pids that are running (zombies not yet reaped do not count)."""
    out = []
    for pid in s.worker_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
        except OSError:
            pass
    return out


def syscall_of(pid):
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "gone"


def busy_workers(s):
    return [p for p in live_workers(s) if syscall_of(p) not in ACCEPT_SYSCALLS]


def wait_busy(s, n, timeout=15):
    """Until `n` workers have left accept() (they are inside a request) for 5 polls in a row."""
    deadline = time.time() + timeout
    streak = 0
    while time.time() < deadline:
        streak = streak + 1 if len(busy_workers(s)) >= n else 0
        if streak >= 5:
            return busy_workers(s)
        time.sleep(0.02)
    raise AssertionError(f"{n} workers never got busy: {[(p, syscall_of(p)) for p in live_workers(s)]}")


def log_since(s, mark):
    return s.read_log()[mark:]


class WriteLock:
    """Another process holding the database write lock: the sqlite3 shell in BEGIN IMMEDIATE,
    or psql with every table the workers write locked EXCLUSIVE (reads go on, as in WAL)."""

    def __init__(self, s):
        if POSTGRES:
            self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-d", s.env["GATEHOUSE_DATABASE"]],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.p.stdin.write("BEGIN;\nLOCK TABLE codes, families, tokens, sessions, consents, login_failures "
                               "IN EXCLUSIVE MODE;\nSELECT 'locked';\n")
        else:
            self.p = subprocess.Popen(["sqlite3", db_path(s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.p.stdin.write("BEGIN IMMEDIATE;\nINSERT INTO login_failures VALUES ('rel-lock', 1, 0, 0);\n"
                               "SELECT 'locked';\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "locked"

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("ROLLBACK;\n" + ("\\q\n" if POSTGRES else ".quit\n"))
            self.p.stdin.close()
            self.p.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class Reader:
    """Another process holding a read transaction (a WAL snapshot) open."""

    def __init__(self, s):
        self.p = subprocess.Popen(["sqlite3", db_path(s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN;\nSELECT 'reading', count(*) FROM tokens;\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().startswith("reading")

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("COMMIT;\n.quit\n")
            self.p.stdin.close()
            self.p.wait(10)


def assert_invariants(s, workers=None, signals_allowed=0, since=None):
    """I1-I3 and I5 of §4.2, after the load has stopped. Signals are counted in the log from
    offset `since`, when given."""
    # I1: the file is sound and the WAL can be checkpointed to empty (SQLite's own checks).
    if not POSTGRES:
        assert sql(s, "PRAGMA integrity_check") == "ok"
        assert sql(s, "PRAGMA wal_checkpoint(TRUNCATE)").split("|")[0] == "0"
    # I2: a consumed code has exactly one family; no family without its client; no code shared.
    assert sql(s, "SELECT count(*) FROM codes WHERE consumed_at IS NOT NULL AND family_id IS NULL") == "0"
    assert sql(s, "SELECT count(*) FROM codes WHERE consumed_at IS NULL AND family_id IS NOT NULL") == "0"
    assert sql(s, "SELECT count(*) FROM (SELECT family_id FROM codes WHERE family_id IS NOT NULL "
                  "GROUP BY family_id HAVING count(*) > 1) AS shared") == "0"
    assert sql(s, "SELECT count(*) FROM families f LEFT JOIN clients c ON c.id = f.client_id WHERE c.id IS NULL") == "0"
    # No orphan token: a family it names exists; one without a family (client_credentials,
    # since migration 4) is an access token with no user, of a client that exists.
    assert sql(s, "SELECT count(*) FROM tokens t LEFT JOIN families f ON f.id = t.family_id "
                  "WHERE t.family_id IS NOT NULL AND f.id IS NULL") == "0"
    assert sql(s, "SELECT count(*) FROM tokens WHERE family_id IS NULL AND (kind != 0 OR user_id IS NOT NULL)") == "0"
    assert sql(s, "SELECT count(*) FROM tokens t LEFT JOIN clients c ON c.id = t.client_id WHERE c.id IS NULL") == "0"
    # I3: at most one live refresh token per family (no grace period configured in these stacks).
    assert sql(s, "SELECT count(*) FROM (SELECT family_id FROM tokens WHERE kind = 1 AND rotated_at IS NULL "
                  "AND revoked_at IS NULL GROUP BY family_id HAVING count(*) > 1) AS live") == "0"
    # I5: the pool is back to its size; no worker died of a signal nobody sent.
    if workers is not None:
        wait_until(lambda: len(live_workers(s)) == workers, what=f"{workers} workers")
    if since is not None:
        assert log_since(s, since).count("exit=\"signal=") <= signals_allowed, log_since(s, since)


# -- helpers: OAuth ----------------------------------------------------------------------------

def confidential(s, grants=ALL_GRANTS):
    return s.add_client("--name", uniq("rel-client"), "--redirect-uri", CB, "--grant-types", grants,
                        "--scope", "PRODUCTION SANDBOX")


def resource_server(s):
    return s.add_client("--name", uniq("rel-rs"), "--grant-types", "client_credentials", "--resource-server")


def post_token(s, client, session=None, **data):
    if session is None:
        return s.post("/token", data=data, auth=basic(client))
    return session.post(s.url + "/token", data=data, auth=basic(client), timeout=60, allow_redirects=False)


def introspect(s, rs, tok):
    r = s.post("/introspect", data={"token": tok}, auth=basic(rs))
    assert r.status_code == 200, r.text
    return r.json()


def assert_oauth_error(r, status, *errors):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json()["error"] in errors, r.text


class Browser(_Browser):
    """The shared user agent, with the longer timeout of a loaded machine."""

    def __init__(self, s):
        super().__init__(s, timeout=60)


class CodeMinter:
    """One logged-in user with remembered consent: every /authorize GET answers a fresh code at
    once (one PBKDF2 login in all, so codes and refresh-token families are cheap)."""

    def __init__(self, s):
        self.stack = s
        self.client = confidential(s, "authorization_code,refresh_token")
        self.user = uniq("rel-user")
        s.add_user(self.user)
        self.browser = Browser(s)
        page = self.browser.authorize(auth_params(self.client))
        consent = self.browser.submit(page, username=self.user, password=PASSWORD)
        assert consent.status_code == 200 and "decision" in consent.text, consent.status_code
        r = self.browser.submit(consent, decision="allow")
        assert r.status_code == 303 and "code" in query_of(r.headers["Location"])

    def consent_page(self):
        """A consent form for a new request (prompt=consent asks again)."""
        r = self.browser.authorize(auth_params(self.client, prompt="consent"))
        assert r.status_code == 200 and 'name="decision"' in r.text, r.status_code
        return r

    def code(self):
        r = self.browser.authorize(auth_params(self.client))
        assert r.status_code == 302, (r.status_code, r.text[:200])
        return query_of(r.headers["Location"])["code"]

    def exchange(self, code, session=None):
        return post_token(self.stack, self.client, session, grant_type="authorization_code", code=code, redirect_uri=CB)

    def tokens(self):
        r = self.exchange(self.code())
        assert r.status_code == 200, r.text
        return r.json()


# -- helpers: raw FastCGI (the workers' socket, bypassing nginx) ---------------------------------

def fcgi_record(rtype, rid, content=b"", version=1, declared=None):
    length = len(content) if declared is None else declared
    return struct.pack(">BBHHBB", version, rtype, rid, length, 0, 0) + content


def fcgi_nv(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def fcgi_begin(rid=1, role=1, keep=False):
    return fcgi_record(1, rid, struct.pack(">HB5x", role, 1 if keep else 0))


def fcgi_params(params, rid=1):
    data = b"".join(fcgi_nv(k, v) for k, v in params.items())
    out = b"".join(fcgi_record(4, rid, data[i:i + 65535]) for i in range(0, len(data), 65535))
    return out + fcgi_record(4, rid)


def fcgi_stdin(body, rid=1):
    return b"".join(fcgi_record(5, rid, body[i:i + 65535]) for i in range(0, len(body), 65535)) + fcgi_record(5, rid)


HEALTH = {"GATEHOUSE_ENDPOINT": "health", "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/health"}


def fcgi_request(params=HEALTH, body=b"", rid=1):
    return fcgi_begin(rid) + fcgi_params(params, rid) + fcgi_stdin(body, rid)


def fcgi_exchange(s, payload, timeout=5):
    """Sends `payload`, closes our side, reads to EOF. Answers the STDOUT bytes; raises on a hang."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(timeout)
        c.connect(s.socket)
        try:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the worker may drop a bad connection before reading all of it
        buf = b""
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    out, i = b"", 0
    while i + 8 <= len(buf):
        _, rtype, _, length, pad, _ = struct.unpack(">BBHHBB", buf[i:i + 8])
        if rtype == 6:
            out += buf[i + 8:i + 8 + length]
        i += 8 + length + pad
    return out


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool():
    """The §4.2 setup: nginx + 4 workers (2 per core) on a unix socket, WAL, FULL."""
    s = Stack(workers=4).start()
    try:
        s.rs = resource_server(s)
        s.minter = CodeMinter(s)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def tuned():
    """Small throttling and lifetime limits for R12 (login counters) and R14 (expiry). Every
    worker may hash at once: R12 counts parallel logins; the hashing bound has its own tests
    (test_hardening.py)."""
    s = Stack(workers=4, extra_config="login_max_failures = 6\nlogin_address_max_failures = 100000\n"
                                      "code_lifetime = 1\nrefresh_token_idle_lifetime = 1\npassword_hash_workers = 4").start()
    try:
        yield s
    finally:
        s.stop()


# == R2: kill -9 of a worker ========================================================================

def test_r2_worker_killed_mid_code_exchange_leaves_no_trace_and_the_retry_succeeds(pool):
    """The worker dies inside the BEGIN IMMEDIATE of a code exchange (it holds the pool's write
    gate and waits for SQLite's lock): nginx answers 502, nothing is committed, the pool's write
    gate is not left locked, and the client's retry gets tokens (not invalid_grant)."""
    s = pool
    mark = len(s.read_log())
    code = s.minter.code()
    result = {}
    with WriteLock(s) as lock:
        t = threading.Thread(target=lambda: result.setdefault("r", s.minter.exchange(code)))
        t.start()
        victim = wait_busy(s, 1)[0]
        os.kill(victim, signal.SIGKILL)
        t.join(30)
        assert result["r"].status_code == 502, result["r"].text[:200]
        lock.release()
    assert sql(s, "SELECT count(*) FROM codes WHERE consumed_at IS NOT NULL AND family_id IS NULL") == "0"
    retry = s.minter.exchange(code)
    assert retry.status_code == 200, retry.text
    tokens = retry.json()
    assert introspect(s, s.rs, tokens["access_token"])["active"] is True
    # Every later writer still gets through the write gate the dead worker held.
    r = post_token(s, s.minter.client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 200, r.text
    c = confidential(s, "client_credentials")
    for _ in range(8):
        assert post_token(s, c, grant_type="client_credentials").status_code == 200
    assert_invariants(s, workers=4, signals_allowed=1, since=mark)


def test_r2_repeated_worker_kills_under_mixed_load_fail_only_as_502_and_lose_no_acknowledged_token():
    """Mixed load (refresh 60 %, code exchange 25 %, introspect 10 %, revoke 5 %) from 4 threads
    while workers are killed with SIGKILL: every failure is an nginx 502, at most one per kill
    (one request in flight per worker, POST never re-sent), the pool returns to full size, I1-I3
    hold, and every access token a client saw in a 200 is still active unless it revoked it."""
    s = Stack(workers=4).start()
    try:
        rs = resource_server(s)
        minter = CodeMinter(s)
        codes = [minter.code() for _ in range(50)]
        codes_lock = threading.Lock()
        acknowledged, revoked, uncertain, failures, unexpected = [], [], [], [], []
        stop = threading.Event()
        kills = []

        def next_code():
            with codes_lock:
                return codes.pop() if codes else None

        def load(seed):
            rng = random.Random(seed)
            session = s.session()
            chains = []
            while not stop.is_set():
                roll = rng.random()
                try:
                    if roll < 0.60 and chains:
                        i = rng.randrange(len(chains))
                        r = post_token(s, minter.client, session, grant_type="refresh_token", refresh_token=chains[i])
                        if r.status_code == 200:
                            chains[i] = r.json()["refresh_token"]
                            acknowledged.append(r.json()["access_token"])
                        elif r.status_code == 502:
                            failures.append(("refresh", 502))
                            chains.pop(i)  # rotated or not: unknown, so this chain is abandoned
                        else:
                            unexpected.append(("refresh", r.status_code, r.text[:200]))
                    elif roll < 0.85 or not chains:
                        code = next_code()
                        if code is None:
                            time.sleep(0.01)
                            continue
                        r = minter.exchange(code, session)
                        if r.status_code == 200:
                            chains.append(r.json()["refresh_token"])
                            acknowledged.append(r.json()["access_token"])
                        elif r.status_code == 502:
                            failures.append(("code", 502))
                        else:
                            unexpected.append(("code", r.status_code, r.text[:200]))
                    elif roll < 0.95 and acknowledged:
                        tok = acknowledged[rng.randrange(len(acknowledged))]
                        r = session.post(s.url + "/introspect", data={"token": tok}, auth=basic(rs), timeout=60)
                        if r.status_code == 502:
                            failures.append(("introspect", 502))
                        elif r.status_code != 200:
                            unexpected.append(("introspect", r.status_code, r.text[:200]))
                    elif acknowledged:
                        tok = acknowledged[rng.randrange(len(acknowledged))]
                        r = session.post(s.url + "/revoke", data={"token": tok}, auth=basic(minter.client), timeout=60)
                        if r.status_code == 200:
                            revoked.append(tok)
                        elif r.status_code == 502:
                            failures.append(("revoke", 502))
                            uncertain.append(tok)  # may or may not have been committed
                        else:
                            unexpected.append(("revoke", r.status_code, r.text[:200]))
                except requests.RequestException as e:
                    unexpected.append(("exception", repr(e)))

        mark = len(s.read_log())
        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        rng = random.Random(42)
        for _ in range(5):
            time.sleep(0.7)
            pids = wait_until(lambda: len(live_workers(s)) == 4 and live_workers(s), what="full pool")
            victim = rng.choice(pids)
            os.kill(victim, signal.SIGKILL)
            kills.append(victim)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(60)
        assert unexpected == [], unexpected
        assert all(status == 502 for _, status in failures), failures
        assert len(failures) <= len(kills), (failures, kills)
        assert len(acknowledged) > 30, len(acknowledged)
        assert_invariants(s, workers=4, signals_allowed=len(kills), since=mark)
        assert not set(kills) & set(live_workers(s))
        # I4: no token a client saw in a 200 was lost; what it revoked stays revoked. All of them
        # by their stored HMAC (README: tokens are kept only as HMAC-SHA-256 under the server key),
        # a sample through /introspect.
        kept = sorted(set(acknowledged) - set(revoked) - set(uncertain))
        assert count_live_tokens(s, kept) == len(kept)
        assert count_live_tokens(s, revoked) == 0
        for tok in kept[:: max(1, len(kept) // 40)]:
            assert introspect(s, rs, tok)["active"] is True
        for tok in revoked[:10]:
            assert introspect(s, rs, tok) == INACTIVE
    finally:
        s.stop()


# == R3: kill -9 of the master ========================================================================

def test_r3_workers_exit_when_the_master_is_killed():
    s = Stack(workers=2).start()
    workers = live_workers(s)
    try:
        os.kill(s.master.pid, signal.SIGKILL)
        s.master.wait(10)
        deadline = time.time() + 2
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in workers):
            time.sleep(0.05)
        orphans = [p for p in workers if os.path.exists(f"/proc/{p}")]
        assert orphans == [], f"orphaned workers still accepting on {s.socket}: {orphans}"
    finally:
        for p in workers:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        s.stop()


def test_r3_restart_after_kill_9_of_the_whole_pool_keeps_every_committed_grant_and_revocation():
    """SIGKILL to the master and all workers at once, then a new master on the same home: it comes
    up, nginx reaches it, and what was committed before the crash holds: an issued token is
    active, a revoked one is revoked, a rotated refresh token counts as reuse."""
    s = Stack(workers=2).start()
    try:
        rs = resource_server(s)
        minter = CodeMinter(s)
        cc = confidential(s, "client_credentials")
        kept = post_token(s, cc, grant_type="client_credentials").json()["access_token"]
        gone = post_token(s, cc, grant_type="client_credentials").json()["access_token"]
        assert s.post("/revoke", data={"token": gone}, auth=basic(cc)).status_code == 200
        t0 = minter.tokens()
        r = post_token(s, minter.client, grant_type="refresh_token", refresh_token=t0["refresh_token"])
        assert r.status_code == 200, r.text
        t1 = r.json()

        pool = live_workers(s)
        os.killpg(s.master.pid, signal.SIGKILL)
        s.master.wait(10)
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in pool), what="pool gone")
        s.master = subprocess.Popen([BIN, "serve", "--workers", "2"], env=s.env, stdout=s.log, stderr=s.log,
                                    start_new_session=True)
        s.wait_log("event=master_ready", count=2, timeout=10)
        wait_until(lambda: s.get("/health").status_code == 200, timeout=10, what="health after restart")

        assert introspect(s, rs, kept)["active"] is True
        assert introspect(s, rs, gone) == INACTIVE
        assert introspect(s, rs, t1["refresh_token"])["active"] is True
        reuse = post_token(s, minter.client, grant_type="refresh_token", refresh_token=t0["refresh_token"])
        assert_oauth_error(reuse, 400, "invalid_grant")
        assert introspect(s, rs, t1["access_token"]) == INACTIVE  # the reuse revoked the family
        assert_invariants(s, workers=2)
    finally:
        s.stop()


# == R4: graceful reload ==============================================================================

def test_r4_reload_answers_a_connection_the_old_worker_had_already_accepted(pool):
    """nginx connected and its records are still on the way when SIGHUP lands: the old worker owns
    that connection and must answer it before it exits."""
    s = pool
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(10)
        c.connect(s.socket)
        wait_busy(s, 1)  # a worker accepted it and waits for the records
        before = s.read_log().count("event=master_reloaded")
        s.master.send_signal(signal.SIGHUP)
        s.wait_log("event=master_reloaded", count=before + 1)
        wait_until(lambda: "event=worker_exited" in s.read_log().rsplit("event=master_reloaded", 1)[1],
                   what="a drained worker exit")
        time.sleep(0.3)
        answer = b""
        try:
            c.sendall(fcgi_request())
            c.shutdown(socket.SHUT_WR)
            while chunk := c.recv(65536):
                answer += chunk
        except OSError as e:
            answer += repr(e).encode()
    wait_until(lambda: len(live_workers(s)) == 4, what="4 workers after reload")
    assert b"Status: 200" in answer, answer


def test_r4_reload_during_slow_logins_page_renders_and_token_posts_fails_no_request(pool):
    """Three SIGHUPs while PBKDF2 password grants (~0.4 s each), /authorize page renders and
    client_credentials POSTs are in flight: every request is answered by its worker (no 502,
    no reset), old workers finish their request, and new workers take over."""
    s = pool
    c = confidential(s)
    user = uniq("rel-reload")
    s.add_user(user)
    old = live_workers(s)
    results = {"ok": 0, "slow_ok": 0, "failed": []}
    stop = threading.Event()

    def run(kind):
        session = s.session()
        while not stop.is_set():
            try:
                if kind == "password":
                    r = post_token(s, c, session, grant_type="password", username=user, password=PASSWORD)
                elif kind == "page":
                    r = session.get(s.url + "/authorize", params=auth_params(c), timeout=60, allow_redirects=False)
                else:
                    r = post_token(s, c, session, grant_type="client_credentials")
                if r.status_code == 200:
                    results["slow_ok" if kind == "password" else "ok"] += 1
                else:
                    results["failed"].append((kind, r.status_code))
            except requests.RequestException as e:
                results["failed"].append((kind, repr(e)))

    # One password client: a second concurrent hash would be refused by design on a small
    # host (password_hash_workers, tested in test_hardening.py), which is not what R4 is about.
    threads = [threading.Thread(target=run, args=(k,)) for k in ("password", "page", "token", "token")]
    for t in threads:
        t.start()
    before = s.read_log().count("event=master_reloaded")
    for i in range(3):
        time.sleep(0.6)
        s.master.send_signal(signal.SIGHUP)
        s.wait_log("event=master_reloaded", count=before + i + 1)
    time.sleep(0.6)
    stop.set()
    for t in threads:
        t.join(60)
    assert results["failed"] == [], results
    assert results["slow_ok"] >= 3 and results["ok"] > 20, results
    wait_until(lambda: len(live_workers(s)) == 4, what="4 workers after reloads")
    assert not set(old) & set(live_workers(s))


# == R5: crash loop ===================================================================================

def test_r5_workers_that_cannot_start_back_off_and_the_pool_recovers_once_fixed():
    """A worker that dies at start-up (its template vanished) is respawned with growing delays,
    not in a fork loop; a request that arrives meanwhile waits in the listen backlog and is
    served once the fault is repaired, without restarting the master."""
    s = Stack(workers=1)
    tdir = os.path.join(s.home, "templates")
    shutil.copytree(os.path.join(ROOT, "Sources", "AuthServer", "Browser", "Pages", "Templates"), tdir)
    with open(os.path.join(s.home, "gatehouse.conf"), "a") as f:
        f.write("\ntemplate_dir = templates\n")
    s.start()
    try:
        mark = len(s.read_log())
        login = os.path.join(tdir, "login.mustache")
        os.rename(login, login + ".gone")
        os.kill(live_workers(s)[0], signal.SIGKILL)
        s.wait_log("event=worker_init_failed", count=3, timeout=20)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", s.get("/health")))
        t.start()
        time.sleep(0.2)
        os.rename(login + ".gone", login)
        t.join(40)
        assert result["r"].status_code == 200, result["r"].text[:200]
        log = log_since(s, mark)
        assert log.count("event=worker_started") <= 8, log  # about 2 s of failures: no fork bomb
        delays = [float(x) for x in re.findall(r"respawn_in_s=([0-9.]+)", log)]
        assert len(delays) >= 3 and delays == sorted(delays) and delays[-1] > delays[0], delays
        assert s.get("/health").status_code == 200
        assert len(live_workers(s)) == 1
    finally:
        s.stop()


# == R6: SQLITE_BUSY ===================================================================================

def test_r6_write_storm_from_16_clients_on_4_workers_surfaces_no_busy_and_no_5xx(pool):
    """16 concurrent clients on write paths only (client_credentials, refresh rotation, code
    exchange, revocation): every answer is a 200, no database_busy is logged, I1-I3 hold."""
    s = pool
    mark = len(s.read_log())
    cc = confidential(s, "client_credentials")
    chains = [s.minter.tokens()["refresh_token"] for _ in range(8)]
    codes = [s.minter.code() for _ in range(16)]
    bad = []
    stop = threading.Event()
    counts = [0] * 16

    def storm(i):
        session = s.session()
        rt = chains[i] if i < 8 else None
        n = 0
        while not stop.is_set():
            try:
                if rt is not None:
                    r = post_token(s, s.minter.client, session, grant_type="refresh_token", refresh_token=rt)
                    if r.status_code == 200:
                        rt = r.json()["refresh_token"]
                elif n == 0:
                    r = s.minter.exchange(codes[i], session)
                else:
                    r = post_token(s, cc, session, grant_type="client_credentials")
                    if r.status_code == 200 and n % 3 == 0:
                        r = session.post(s.url + "/revoke", data={"token": r.json()["access_token"]}, auth=basic(cc),
                                         timeout=60)
                if r.status_code != 200:
                    bad.append((i, r.status_code, r.text[:200]))
            except requests.RequestException as e:
                bad.append((i, repr(e)))
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=storm, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(60)
    assert bad == [], bad[:10]
    assert sum(counts) > 100, counts
    assert "database_busy" not in log_since(s, mark)
    assert_invariants(s, workers=4, since=mark)


def test_r6_busy_past_the_timeout_under_concurrency_is_503_with_retry_after_and_reads_keep_working():
    """The write lock is held from outside longer than busy_timeout_ms while 6 writers and 2
    readers arrive at once: each writer gets 503 temporarily_unavailable + Retry-After (never a
    500), every request is answered while the lock is still held (no deadlock behind the
    pool's write gate), introspection answers 200, and writes work again once it is released."""
    s = Stack(workers=2, extra_config="busy_timeout_ms = 200").start()
    try:
        c = confidential(s, "client_credentials")
        rs = resource_server(s)
        held = post_token(s, c, grant_type="client_credentials").json()["access_token"]
        results = []
        with WriteLock(s) as lock:
            def call(kind):
                if kind == "token":
                    r = post_token(s, c, s.session(), grant_type="client_credentials")
                elif kind == "revoke":
                    r = s.post("/revoke", data={"token": held}, auth=basic(c))
                else:
                    r = s.post("/introspect", data={"token": held}, auth=basic(rs))
                results.append((kind, r))

            kinds = ["token"] * 4 + ["revoke"] * 2 + ["introspect"] * 2
            threads = [threading.Thread(target=call, args=(k,)) for k in kinds]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert lock.p.poll() is None  # everything was answered while the lock was held
        assert len(results) == len(kinds)
        for kind, r in results:
            if kind == "introspect":
                assert r.status_code == 200 and r.json()["active"] is True, r.text
            else:
                assert_oauth_error(r, 503, "temporarily_unavailable")
                assert r.headers["Retry-After"] == "1"
        assert post_token(s, c, grant_type="client_credentials").status_code == 200
        assert introspect(s, rs, held)["active"] is True  # the 503 revocations did not happen ...
        assert s.post("/revoke", data={"token": held}, auth=basic(c)).status_code == 200
        assert introspect(s, rs, held) == INACTIVE        # ... and the client's retry does
        assert_invariants(s, workers=2)
    finally:
        s.stop()


@pytest.mark.sqlite
def test_r6_wal_stops_growing_once_a_long_reader_ends(pool):
    """Checkpoint starvation: while another process holds a read snapshot, every commit grows the
    WAL; once it ends, the next checkpoint completes and the same amount of writing reuses the
    file instead of growing it (no worker keeps a read transaction open)."""
    s = pool
    c = confidential(s, "client_credentials")
    wal = db_path(s) + "-wal"
    session = s.session()

    def write(n):
        for _ in range(n):
            assert post_token(s, c, session, grant_type="client_credentials").status_code == 200

    assert sql(s, "PRAGMA wal_checkpoint(TRUNCATE)").split("|")[0] == "0"
    reader = Reader(s)
    try:
        write(400)
        starved = os.path.getsize(wal)
    finally:
        reader.release()
    assert starved > 1000 * 4096, starved  # past wal_autocheckpoint: the reader did hold it back
    write(400)
    # Reused from its start after one last append (without a checkpoint it would double).
    assert os.path.getsize(wal) <= starved * 1.1, (os.path.getsize(wal), starved)


# == R7: disk full ========================================================================================

def fill(directory):
    """Fills the file system holding `directory`; answers the filler's path (delete it to free)."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


@pytest.fixture(scope="module")
def small_disks():
    """A stack whose database and log file each live on their own 4 MiB tmpfs."""
    mounts = [tempfile.mkdtemp(prefix="gh-full-db-"), tempfile.mkdtemp(prefix="gh-full-log-")]
    mounted = []
    s = None
    try:
        for m in mounts:
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", m], capture_output=True).returncode:
                pytest.skip("cannot mount a tmpfs here (needs root)")
            mounted.append(m)
        s = Stack(workers=2, extra_config=f"database = {mounts[0]}/gatehouse.db\nlog_file = {mounts[1]}/gatehouse.log")
        s.db = os.path.join(mounts[0], "gatehouse.db")
        s.log_path = os.path.join(mounts[1], "gatehouse.log")
        s.dbdisk, s.logdisk = mounts
        s.start()
        s.rs = resource_server(s)
        s.minter = CodeMinter(s)
        yield s
    finally:
        if s is not None:
            s.stop()
        for m in mounted:
            subprocess.run(["umount", "-l", m], capture_output=True)


def test_r7_full_log_partition_neither_blocks_nor_breaks_the_pool(small_disks):
    """With no space left for log lines, requests that log (failed logins, replays, busy) are
    answered normally and a killed worker is still replaced (the master does not block on it)."""
    s = small_disks
    cc = confidential(s)
    filler = fill(s.logdisk)
    try:
        name = uniq("rel-logfull")
        s.add_user(name)
        assert_oauth_error(post_token(s, cc, grant_type="password", username=name, password="wrong"), 400,
                           "invalid_grant")
        code = s.minter.code()
        assert s.minter.exchange(code).status_code == 200
        assert_oauth_error(s.minter.exchange(code), 400, "invalid_grant")  # logs code_replayed
        victim = live_workers(s)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(live_workers(s)) == 2 and victim not in live_workers(s), what="replacement worker")
        for _ in range(10):
            assert post_token(s, cc, grant_type="client_credentials").status_code == 200
        assert s.get("/authorize", params=auth_params(s.minter.client)).status_code == 200
    finally:
        os.unlink(filler)


@pytest.mark.sqlite
def test_r7_full_database_disk_fails_writes_with_an_error_keeps_reads_and_recovers_without_restart(small_disks):
    """The database's file system fills up: writes answer 503/500 JSON (never a 200 for a token
    that was not committed), /authorize redirects with an error (never a code), introspection
    of existing tokens works, and freeing space is enough to recover (I1 holds)."""
    s = small_disks
    rs, minter = s.rs, s.minter
    cc = confidential(s, "client_credentials")
    existing = post_token(s, cc, grant_type="client_credentials").json()["access_token"]
    chain = minter.tokens()
    filler = fill(s.dbdisk)
    try:
        session = s.session()
        acknowledged, failed = [], None
        for _ in range(2000):
            r = post_token(s, cc, session, grant_type="client_credentials")
            if r.status_code != 200:
                failed = r
                break
            acknowledged.append(r.json()["access_token"])
        assert failed is not None, "the full disk never surfaced"
        # A full disk passes once an operator frees space: 503 temporarily_unavailable, so
        # clients retry (SECURITY-CHECKLIST R7), and the log names it.
        assert_oauth_error(failed, 503, "temporarily_unavailable")
        r = post_token(s, minter.client, grant_type="refresh_token", refresh_token=chain["refresh_token"])
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
        r = s.post("/revoke", data={"token": existing}, auth=basic(cc))
        assert r.status_code == 503, r.status_code  # the client learns the revocation did not happen
        r = minter.browser.authorize(auth_params(minter.client))
        assert r.status_code == 302, r.status_code
        q = query_of(r.headers["Location"])
        assert "code" not in q and q["error"] == "temporarily_unavailable", q
        assert "database_full" in s.read_log()
        assert introspect(s, rs, existing)["active"] is True
    finally:
        os.unlink(filler)
    assert post_token(s, cc, grant_type="client_credentials").status_code == 200
    r = post_token(s, minter.client, grant_type="refresh_token", refresh_token=chain["refresh_token"])
    assert r.status_code == 200, r.text  # the failed rotation left the refresh token unused
    assert "code" in query_of(minter.browser.authorize(auth_params(minter.client)).headers["Location"])
    for tok in acknowledged[-20:]:
        assert introspect(s, rs, tok)["active"] is True
    assert_invariants(s, workers=2)


# == R9: malformed input ===================================================================================

MALFORMED = [
    # (name, method, path, headers, body)
    ("nul-byte", "POST", "/token", {}, b"grant_type=client_credentials\x00&scope=PRODUCTION"),
    ("percent-00", "POST", "/token", {}, b"grant_type=client_credentials&scope=%00"),
    ("semicolons", "POST", "/token", {}, b"grant_type=client_credentials;scope=PRODUCTION"),
    ("text-plain", "POST", "/token", {"Content-Type": "text/plain"}, b"grant_type=client_credentials"),
    ("multipart", "POST", "/token", {"Content-Type": "multipart/form-data; boundary=x"},
     b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n"),
    ("latin1", "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded; charset=latin1"},
     b"grant_type=client_credentials&scope=PRODUCTION\xe9"),
    ("json", "POST", "/revoke", {"Content-Type": "application/json"}, b'{"token":"x"}'),
    ("empty", "POST", "/introspect", {}, b""),
    ("bad-utf8", "POST", "/introspect", {}, b"token=%C3%28"),
    ("bad-percent", "POST", "/revoke", {}, b"token=%zz"),
    ("dup", "POST", "/introspect", {}, b"token=a&token=b"),
    ("authorize-nul", "GET", "/authorize?client_id=%00&response_type=code", {}, None),
    ("authorize-bad-utf8", "GET", "/authorize?client_id=%FF%FE&response_type=code", {}, None),
    ("authorize-bad-percent", "GET", "/authorize?client_id=%zz", {}, None),
    ("authorize-post-json", "POST", "/authorize", {"Content-Type": "application/json"}, b'{"client_id":"x"}'),
    ("authorize-post-empty", "POST", "/authorize", {}, b""),
]


@pytest.mark.parametrize("name,method,path,headers,body", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_r9_malformed_requests_through_nginx_get_4xx_never_5xx(pool, name, method, path, headers, body):
    s = pool
    c = s.rs
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers} if body is not None else headers
    kw = {"auth": basic(c)} if path in ("/token", "/revoke", "/introspect") else {}
    r = requests.request(method, s.url + path, data=body, headers=headers, verify=s.ca, timeout=30,
                         allow_redirects=False, **kw)
    assert 200 <= r.status_code < 500, (r.status_code, r.text[:300])
    if path in ("/token", "/revoke") and r.status_code >= 400:
        assert r.headers["Content-Type"].startswith("application/json") and "error" in r.json(), r.text[:300]


def test_r9_chunked_oversized_query_and_cookies_are_handled_by_nginx_or_parsed_normally(pool):
    s = pool
    c = confidential(s, "client_credentials")

    def chunks():
        yield b"grant_type=client_"
        yield b"credentials"

    r = s.post("/token", data=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=basic(c))
    assert r.status_code == 200, r.text  # nginx buffers the chunked body and passes its length
    assert s.get("/authorize?client_id=" + "a" * 9000).status_code == 414
    big = "; ".join(f"c{i}={'x' * 1000}" for i in range(100))
    assert s.get("/health", headers={"Cookie": big}).status_code in (400, 431)
    assert s.get("/health").status_code == 200


SQL_META = ["' OR 1=1--", "\" OR \"\"=\"", "1; DROP TABLE tokens;--", "%00' UNION SELECT * FROM clients--", "x" * 4000]


def test_r9_sql_metacharacters_in_every_parameter_get_normal_oauth_errors(pool):
    s = pool
    c = confidential(s)
    before = sql(s, "SELECT (SELECT count(*) FROM clients) || '/' || (SELECT count(*) FROM tokens)")
    for v in SQL_META:
        assert_oauth_error(s.post("/token", data={"grant_type": "client_credentials"}, auth=(v, "x")),
                           401, "invalid_client")
        assert_oauth_error(post_token(s, c, grant_type="refresh_token", refresh_token=v), 400, "invalid_grant")
        assert_oauth_error(post_token(s, c, grant_type="authorization_code", code=v, redirect_uri=CB), 400,
                           "invalid_grant")
        assert_oauth_error(post_token(s, c, grant_type="client_credentials", scope=v), 400, "invalid_scope")
        assert introspect(s, s.rs, v) == INACTIVE
        assert s.post("/revoke", data={"token": v}, auth=basic(c)).status_code == 200
        r = s.get("/authorize", params={"response_type": "code", "client_id": v, "redirect_uri": CB})
        assert r.status_code == 400 and "Location" not in r.headers
        r = s.get("/authorize", params={"response_type": "code", "client_id": c["client_id"], "redirect_uri": v})
        assert r.status_code == 400 and "Location" not in r.headers
        r = s.get("/authorize", params={"response_type": "code", "client_id": c["client_id"], "state": v})
        if len(v) <= 2048:
            assert r.status_code == 200  # the login page; state is only carried
        else:  # too long to travel back in a Location header: shown, never redirected (issue 10)
            assert r.status_code == 400 and "Location" not in r.headers
    for v in SQL_META[:2]:  # one PBKDF2 (dummy) each
        assert_oauth_error(post_token(s, c, grant_type="password", username=v, password=v), 400, "invalid_grant")
    assert sql(s, "SELECT (SELECT count(*) FROM clients) || '/' || (SELECT count(*) FROM tokens)") == before
    if not POSTGRES:
        assert sql(s, "PRAGMA integrity_check") == "ok"


FCGI_ABUSE = {
    "wrong-version": fcgi_record(1, 1, struct.pack(">HB5x", 1, 0), version=2) + fcgi_params(HEALTH) + fcgi_stdin(b""),
    "length-beyond-data": fcgi_begin() + fcgi_record(4, 1, b"\x05\x05hello", declared=5000),
    "64k-params": fcgi_request({**HEALTH, "HTTP_X_BIG": "b" * 65536, "HTTP_" + "N" * 70000: "v"}),
    "zero-length-params": fcgi_begin() + fcgi_params({"": "", "A": ""}) + fcgi_params(HEALTH) + fcgi_stdin(b""),
    "interleaved-ids": fcgi_begin(1) + fcgi_begin(2) + fcgi_params(HEALTH, 2) + fcgi_params(HEALTH, 1)
    + fcgi_stdin(b"", 2) + fcgi_stdin(b"", 1),
    "abort-mid-body": fcgi_begin() + fcgi_params({"GATEHOUSE_ENDPOINT": "token", "REQUEST_METHOD": "POST",
                                                   "DOCUMENT_URI": "/token", "CONTENT_LENGTH": "100",
                                                   "CONTENT_TYPE": "application/x-www-form-urlencoded"})
    + fcgi_record(5, 1, b"grant_type") + fcgi_record(2, 1),
    "content-length-beyond-body": fcgi_request({"GATEHOUSE_ENDPOINT": "token", "REQUEST_METHOD": "POST",
                                                "DOCUMENT_URI": "/token", "CONTENT_LENGTH": "5000",
                                                "CONTENT_TYPE": "application/x-www-form-urlencoded"}, b"grant_type=x"),
    "content-length-negative": fcgi_request({**HEALTH, "GATEHOUSE_ENDPOINT": "token", "REQUEST_METHOD": "POST",
                                             "CONTENT_LENGTH": "-1"}, b"x"),
    "content-length-huge": fcgi_request({**HEALTH, "GATEHOUSE_ENDPOINT": "token", "REQUEST_METHOD": "POST",
                                         "CONTENT_LENGTH": "99999999999999999999999"}, b"x"),
    "get-values": fcgi_record(9, 0, fcgi_nv("FCGI_MAX_CONNS", "") + fcgi_nv("FCGI_MPXS_CONNS", "")),
    "unknown-type": fcgi_record(42, 1, b"?" * 8) + fcgi_request(),
    "authorizer-role": fcgi_begin(role=2) + fcgi_params(HEALTH) + fcgi_stdin(b""),
    "keep-conn-then-eof": fcgi_begin(keep=True) + fcgi_params(HEALTH) + fcgi_stdin(b""),
    "end-of-params-only": fcgi_begin() + fcgi_record(4, 1),
}


def test_r9_fastcgi_protocol_abuse_on_the_worker_socket_never_hangs_or_kills_a_worker(pool):
    """Straight to the workers' socket: wrong version, lengths beyond the data, 64 KiB params,
    empty names, interleaved request ids, FCGI_ABORT_REQUEST mid-body, absurd CONTENT_LENGTH,
    management and unknown records. Each connection ends (answered or dropped) within 5 s, no
    worker dies, and the pool then serves normally."""
    s = pool
    mark = len(s.read_log())
    workers = live_workers(s)
    assert b"Status: 200" in fcgi_exchange(s, fcgi_request())  # the client itself is sound
    answers = {name: fcgi_exchange(s, payload) for name, payload in FCGI_ABUSE.items()}
    assert b"Status: 5" not in answers["content-length-beyond-body"]
    too_big = fcgi_request({**HEALTH, "GATEHOUSE_ENDPOINT": "token", "REQUEST_METHOD": "POST",
                            "CONTENT_LENGTH": "1000000"}, b"x" * 100)
    assert b"Status: 413" in fcgi_exchange(s, too_big)
    for name, out in answers.items():
        assert b"Status: 500" not in out, (name, out[:300])
    for _ in range(12):
        assert s.get("/health").status_code == 200
    assert live_workers(s) == workers
    assert "signal=" not in log_since(s, mark)


def test_r9_stalled_fastcgi_peers_do_not_pin_the_pool(pool):
    s = pool
    stalled = []
    try:
        for _ in range(4):
            c = socket.socket(socket.AF_UNIX)
            c.connect(s.socket)
            c.sendall(fcgi_begin()[:5])
            stalled.append(c)
        wait_busy(s, 4)
        # Workers drop a peer silent for 2 s (SO_RCVTIMEO), then libfcgi's close waits up to
        # 2 s more for the peer to hang up: the pool is back within ~4 s, not never.
        r = requests.get(s.url + "/health", verify=s.ca, timeout=8)
        assert r.status_code == 200
    finally:
        for c in stalled:
            c.close()
        wait_until(lambda: len(busy_workers(s)) == 0, what="idle pool")


# == R10: oversize bodies =====================================================================================

def test_r10_body_under_the_size_limit_with_thousands_of_parameters_is_400(pool):
    s = pool
    c = confidential(s, "client_credentials")
    body = "grant_type=client_credentials&" + "&".join("p" for _ in range(7000))
    assert len(body) < 16384
    r = s.post("/token", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=basic(c))
    assert_oauth_error(r, 400, "invalid_request")
    r = s.get("/authorize?" + "&".join(f"p{i}=" for i in range(1000)))
    assert r.status_code == 400


def test_r10_twenty_concurrent_megabyte_bodies_are_refused_by_nginx_before_any_worker(pool):
    s = pool
    workers = live_workers(s)
    served = s.get("/gatehouse/status").json()["requests_served"]
    outcomes = []

    def big():
        try:
            r = s.post("/token", data=b"a=" + b"x" * (1 << 20),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
            outcomes.append(r.status_code)
        except requests.ConnectionError:
            outcomes.append("reset")  # nginx may answer 413 and close while the body is still sent

    threads = [threading.Thread(target=big) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 20 and set(outcomes) <= {413, "reset"} and 413 in outcomes, outcomes
    after = s.get("/gatehouse/status").json()["requests_served"]
    assert after - served <= 2, (served, after)  # only the two status calls reached a worker
    assert live_workers(s) == workers


# == R11: slow clients =======================================================================================

def test_r11_slow_headers_and_slow_bodies_are_held_by_nginx_not_by_workers(pool):
    """150 connections that send half a header or half a body and then wait: nginx buffers them,
    no worker is busy with any, and legitimate requests keep succeeding."""
    s = pool
    ctx = ssl.create_default_context(cafile=s.ca)
    slow = []
    try:
        for i in range(150):
            raw = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            if i % 2:
                tls.sendall(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-")
            else:
                tls.sendall(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type=")
            slow.append(tls)
        for _ in range(20):
            assert s.get("/health").status_code == 200
        status = s.get("/gatehouse/status").json()
        assert status["busy_workers"] == 1, status  # only the worker answering this status call
    finally:
        for c in slow:
            c.close()


# == R12: races =================================================================================================

def _revoke_vs_refresh(s, rounds=12):
    for _ in range(rounds):
        t0 = s.minter.tokens()
        barrier = threading.Barrier(2)
        out = {}

        def refresh():
            session = s.session()
            barrier.wait()
            out["refresh"] = post_token(s, s.minter.client, session, grant_type="refresh_token",
                                        refresh_token=t0["refresh_token"])

        def revoke():
            session = s.session()
            barrier.wait()
            out["revoke"] = session.post(s.url + "/revoke", data={"token": t0["refresh_token"]},
                                         auth=basic(s.minter.client), timeout=60)

        threads = [threading.Thread(target=refresh), threading.Thread(target=revoke)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert out["revoke"].status_code == 200
        assert out["refresh"].status_code in (200, 400), out["refresh"].text
        family = [t0["access_token"], t0["refresh_token"]]
        if out["refresh"].status_code == 200:
            family += [out["refresh"].json()["access_token"], out["refresh"].json()["refresh_token"]]
        else:
            assert out["refresh"].json()["error"] == "invalid_grant"
        for tok in family:
            assert introspect(s, s.rs, tok) == INACTIVE


def test_r12_revoke_racing_refresh_leaves_the_family_without_an_active_token(pool):
    mark = len(pool.read_log())
    _revoke_vs_refresh(pool)
    assert_invariants(pool, since=mark)


def test_r12_fifty_parallel_exchanges_of_one_code_issue_one_family_which_the_replays_revoke(pool):
    """One winner; the 49 others are replays by the same client, which (RFC 6749 §4.1.2 SHOULD,
    the documented choice) revoke what the code produced; I2 holds."""
    s = pool
    code = s.minter.code()
    n = 50
    barrier = threading.Barrier(n)
    out = [None] * n

    def go(i):
        session = s.session()
        barrier.wait()
        out[i] = s.minter.exchange(code, session)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    statuses = [r.status_code for r in out]
    assert statuses.count(200) == 1, statuses
    for r in out:
        if r.status_code != 200:
            assert_oauth_error(r, 400, "invalid_grant")
    winner = next(r.json() for r in out if r.status_code == 200)
    assert introspect(s, s.rs, winner["access_token"]) == INACTIVE
    assert introspect(s, s.rs, winner["refresh_token"]) == INACTIVE
    assert_invariants(s)


def test_r12_two_concurrent_submissions_of_one_consent_form_issue_one_code(pool):
    """Both POSTs pass the CSRF check before either rotates it (the outside write lock parks both
    at their first write, which makes the interleaving certain); only one may get a code."""
    s = pool
    page = s.minter.consent_page()
    answers = []
    with WriteLock(s):
        threads = [threading.Thread(target=lambda: answers.append(s.minter.browser.submit(page, decision="allow")))
                   for _ in range(2)]
        for t in threads:
            t.start()
        wait_busy(s, 2)
    for t in threads:
        t.join(60)
    with_code = [r for r in answers if r.status_code in (302, 303) and "code" in query_of(r.headers["Location"])]
    assert len(answers) == 2
    assert len(with_code) == 1, [(r.status_code, r.headers.get("Location")) for r in answers]


def _password_grants(s, client, username, password, n):
    barrier = threading.Barrier(n)
    out = [None] * n

    def go(i):
        session = s.session()
        barrier.wait()
        out[i] = post_token(s, client, session, grant_type="password", username=username, password=password)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_r12_parallel_wrong_passwords_are_each_counted_once_and_trigger_the_lockout(tuned):
    """login_max_failures = 6. Five parallel failures leave the account open (none counted twice);
    six lock it (none lost), so the right password is then refused."""
    s = tuned
    c = confidential(s)
    under, at = uniq("rel-under"), uniq("rel-at")
    s.add_user(under)
    s.add_user(at)
    for r in _password_grants(s, c, under, "wrong", 5):
        assert_oauth_error(r, 400, "invalid_grant")
    assert post_token(s, c, grant_type="password", username=under, password=PASSWORD).status_code == 200
    for r in _password_grants(s, c, at, "wrong", 6):
        assert_oauth_error(r, 400, "invalid_grant")
    assert_oauth_error(post_token(s, c, grant_type="password", username=at, password=PASSWORD), 400, "invalid_grant")


def test_r12_parallel_correct_logins_for_one_user_all_succeed(tuned):
    s = tuned
    c = confidential(s)
    name = uniq("rel-many")
    s.add_user(name)
    answers = _password_grants(s, c, name, PASSWORD, 12)
    assert [r.status_code for r in answers] == [200] * 12, [r.text[:100] for r in answers if r.status_code != 200]
    assert len({r.json()["access_token"] for r in answers}) == 12


# == R13 (short form): no descriptor leak =========================================================

def test_r13_worker_file_descriptors_stay_flat_across_many_requests(pool):
    s = pool
    c = confidential(s, "client_credentials")
    session = s.session()

    def fds():
        return {p: len(os.listdir(f"/proc/{p}/fd")) for p in live_workers(s)}

    def requests_by_pid():
        return {w["pid"]: w["requests"] for w in s.get("/gatehouse/status").json()["worker_list"]}

    for _ in range(200):  # warm up: every connection has opened its database, WAL and -shm files
        post_token(s, c, session, grant_type="client_credentials")
    served = requests_by_pid()
    baseline = fds()
    warm = [p for p in baseline if served.get(p, 0) >= 20]
    assert warm, served
    for i in range(300):
        r = post_token(s, c, session, grant_type="client_credentials")
        assert r.status_code == 200
        if i % 3 == 0:
            assert introspect(s, s.rs, r.json()["access_token"])["active"] is True
        if i % 10 == 0:
            assert s.get("/authorize", params=auth_params(s.minter.client)).status_code == 200
    after = fds()
    for p in warm:
        assert after[p] == baseline[p], (p, baseline[p], after[p])


# == R14 (real clock): expiry ================================================================================

def test_r14_code_and_idle_refresh_token_are_refused_one_second_after_expiry(tuned):
    s = tuned
    c = confidential(s)
    name = uniq("rel-clock")
    s.add_user(name)
    b = Browser(s)
    consent = b.submit(b.authorize(auth_params(c)), username=name, password=PASSWORD)
    r = b.submit(consent, decision="allow")
    code = query_of(r.headers["Location"])["code"]
    rt = post_token(s, c, grant_type="password", username=name, password=PASSWORD).json()["refresh_token"]
    time.sleep(2.2)  # code_lifetime = refresh_token_idle_lifetime = 1
    assert_oauth_error(post_token(s, c, grant_type="authorization_code", code=code, redirect_uri=CB), 400,
                       "invalid_grant")
    assert_oauth_error(post_token(s, c, grant_type="refresh_token", refresh_token=rt), 400, "invalid_grant")
