"""Several hosts, one PostgreSQL database (issue 12): each host is a Stack of its own (instance
folder, worker pool, nginx) sharing the database, its schema and secret.key with the first.
Codes, refresh tokens and revocations must mean the same on every host at once, and an nginx
in front of all of them must route around a host that dies. PostgreSQL only: on SQLite there
is nothing to share between hosts."""
import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, PASSWORD, POSTGRES, ROOT, Stack, free_port, postgres_schema
from oauth_flow import ALL_GRANTS, CB, uniq
from test_authorization_code import exchange, get_code

pytestmark = pytest.mark.skipif(not POSTGRES, reason="several hosts need a shared PostgreSQL database")


@pytest.fixture(scope="module")
def hosts():
    first = Stack(workers=2).start()
    started = [first]
    try:
        for _ in range(2):
            started.append(Stack(workers=2, peer=first).start())
        yield started
    finally:
        for h in started:
            h.stop()


def basic(client):
    return (client["client_id"], client["client_secret"])


def new_client(host, grants=ALL_GRANTS):
    return host.add_client("--name", uniq("cluster"), "--redirect-uri", CB, "--grant-types", grants)


def resource_server(host):
    return host.add_client("--name", uniq("rs"), "--grant-types", "client_credentials", "--resource-server")


def active(host, caller, tok):
    r = host.post("/introspect", data={"token": tok}, auth=basic(caller))
    assert r.status_code == 200, r.text
    return r.json()["active"]


def new_user(host):
    name = uniq("cluster-user")
    host.add_user(name)
    return name


def test_code_issued_on_host_1_redeemed_on_host_2(hosts):
    h1, h2, h3 = hosts
    c, rs = new_client(h1), resource_server(h3)
    q, _, _ = get_code(h1, c, new_user(h1))
    r = exchange(h2, c, q["code"])
    assert r.status_code == 200, r.text
    assert active(h3, rs, r.json()["access_token"])


def test_thirty_concurrent_redemptions_over_three_hosts_one_winner(hosts):
    c, rs = new_client(hosts[0]), resource_server(hosts[0])
    q, _, _ = get_code(hosts[0], c, new_user(hosts[0]))
    n = 30
    barrier = threading.Barrier(n)
    results = [None] * n

    def redeem(i):
        barrier.wait()
        try:
            results[i] = exchange(hosts[i % 3], c, q["code"])
        except requests.RequestException as e:
            results[i] = e

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [getattr(r, "status_code", repr(r)) for r in results]
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == n - 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code == 400)
    # The losers replayed the code: the winner's grant is revoked (RFC 6749 §4.1.2), on every host.
    winner = next(r for r in results if r.status_code == 200).json()
    for h in hosts:
        assert not active(h, rs, winner["access_token"])


def test_refresh_rotated_on_one_host_replayed_on_another_revokes_the_family(hosts):
    h1, h2, h3 = hosts
    c, rs = new_client(h1), resource_server(h1)
    first = exchange(h1, c, get_code(h1, c, new_user(h1))[0]["code"]).json()
    rotated = h2.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=basic(c))
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    replay = h3.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=basic(c))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    for h in hosts:
        assert not active(h, rs, second["access_token"])
        assert not active(h, rs, second["refresh_token"])


def test_revocation_on_host_3_refused_at_host_1_at_once(hosts):
    h1, h2, h3 = hosts
    c = new_client(h1)
    tok = h2.post("/token", data={"grant_type": "client_credentials"}, auth=basic(c)).json()["access_token"]
    assert active(h1, c, tok)
    assert h3.post("/revoke", data={"token": tok}, auth=basic(c)).status_code == 200
    assert not active(h1, c, tok)


class FrontNginx:
    """One nginx with every host's FastCGI socket in its upstream, as scripts/cluster.sh runs."""

    def __init__(self, hosts):
        self.home = os.path.join(hosts[0].home, "front")
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = os.path.join(self.home, "tls", "cert.pem")
        sockets = " ".join(f'"unix:{h.socket}"' for h in hosts)
        env = dict(hosts[0].env, GATEHOUSE_HOME=self.home, GATEHOUSE_FAIL_TIMEOUT="30s")
        subprocess.run(["bash", "-c",
                        f'source "{ROOT}/scripts/lib.sh" && ensure_certificate "{self.home}/tls" && '
                        f'render_nginx "{self.home}" {self.port} {free_port()} "{hosts[0].socket}" off && '
                        f'cluster_upstream "{self.home}" {sockets}'], env=env, check=True)
        self.nginx = subprocess.Popen(["nginx", "-p", f"{self.home}/nginx", "-c", f"{self.home}/nginx/nginx.conf"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        while True:
            try:
                if requests.get(self.url + "/health", verify=self.ca, timeout=5).status_code == 200:
                    break
            except requests.exceptions.ConnectionError:
                if time.time() > deadline:
                    raise
            time.sleep(0.1)

    def post(self, path, session=None, **kw):
        return (session or requests).post(self.url + path, verify=self.ca, timeout=30, **kw)

    def stop(self):
        self.nginx.send_signal(signal.SIGQUIT)
        self.nginx.wait(10)


def test_host_killed_under_load_nginx_routes_around_it_and_no_token_is_lost(hosts):
    victim = Stack(workers=2, peer=hosts[0]).start()
    front = FrontNginx([hosts[0], victim, hosts[1]])
    try:
        c, rs = new_client(hosts[0], grants="client_credentials"), resource_server(hosts[0])
        received, failures, lock = [], [], threading.Lock()
        stop = threading.Event()

        def client():
            s = requests.Session()
            while not stop.is_set():
                r = front.post("/token", session=s, data={"grant_type": "client_credentials"}, auth=basic(c))
                with lock:
                    if r.status_code == 200:
                        received.append((time.time(), r.json()["access_token"]))
                    else:
                        failures.append((time.time(), r.status_code))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.8)
        os.killpg(victim.master.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.master.wait(10)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(30)

        # Only what the victim held when it died fails (502; nginx never re-sends a POST a
        # host received): at most one request per client, all at the moment of the kill.
        assert len(failures) <= len(threads), failures
        assert all(status == 502 and at - killed_at < 1 for at, status in failures), (killed_at, failures)
        after = [tok for at, tok in received if at > killed_at + 0.5]
        assert len(after) >= 10, (len(after), len(received))
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            states = list(pool.map(lambda tok: active(hosts[1], rs, tok), [tok for _, tok in received]))
        inactive = [tok for (_, tok), ok in zip(received, states) if not ok]
        assert not inactive, f"{len(inactive)} of {len(received)} tokens a client received are not active"
    finally:
        front.stop()
        victim.stop()


def processes_of(cluster):
    """Every process scripts/cluster.sh started: masters, their workers, nginx, PostgreSQL."""
    pg_dir = dict(line.split("=", 1) for line in open(os.path.join(cluster, "postgres.env")).read().split())["dir"]
    pid_files = [os.path.join(pg_dir, "data", "postmaster.pid")]
    for name in sorted(os.listdir(cluster)):
        pid_files += [os.path.join(cluster, name, "run", f) for f in ("gatehouse.pid", "nginx.pid")]
    pids = []
    for pid_file in filter(os.path.exists, pid_files):
        pid = int(open(pid_file).readline())
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [pid] + [int(p) for p in children]
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_cluster_script_up_token_introspect_down(tmp_path):
    port = free_port()
    env = dict(os.environ, GATEHOUSE_CLUSTER_HOME=str(tmp_path / "cluster"), GATEHOUSE_HTTPS_PORT=str(port),
               GATEHOUSE_EXAMPLE_PORT=str(free_port()), GATEHOUSE_WORKERS="1", GATEHOUSE_BIN=BIN)
    script = os.path.join(ROOT, "scripts", "cluster.sh")
    up = subprocess.run([script, "up", "2"], env=env, capture_output=True, text=True, timeout=120)
    pids = []
    try:
        assert up.returncode == 0, up.stderr
        url = up.stdout.strip().splitlines()[-1]
        assert url == f"https://127.0.0.1:{port}"
        pids = processes_of(env["GATEHOUSE_CLUSTER_HOME"])
        status = subprocess.run([script, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and "host2: pid" in status.stdout, status.stdout
        c = json.loads(subprocess.run([script, "gatehouse", "client", "add", "--name", uniq("cluster-sh"), "--grant-types",
                                       "client_credentials", "--resource-server", "--json"],
                                      env=env, capture_output=True, text=True, check=True, timeout=30).stdout)
        ca = os.path.join(env["GATEHOUSE_CLUSTER_HOME"], "front", "tls", "cert.pem")
        tokens = [requests.post(url + "/token", data={"grant_type": "client_credentials"}, auth=basic(c), verify=ca,
                                timeout=30).json()["access_token"] for _ in range(4)]
        for tok in tokens:
            r = requests.post(url + "/introspect", data={"token": tok}, auth=basic(c), verify=ca, timeout=30)
            assert r.json()["active"] is True, r.text
    finally:
        down = subprocess.run([script, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert pids and not [p for p in pids if alive(p)]


def test_cluster_down_never_stops_a_database_it_did_not_start(tmp_path):
    """`cluster.sh down` with no cluster up, run from a shell that has a PG_DIR of its own
    (scripts/test.sh exports its test cluster's): that PostgreSQL keeps running."""
    theirs = tmp_path / "theirs"
    (theirs / "data").mkdir(parents=True)
    marker = theirs / "data" / "postmaster.pid"
    marker.write_text("999999\n")
    env = dict(os.environ, GATEHOUSE_CLUSTER_HOME=str(tmp_path / "cluster"), PG_DIR=str(theirs))
    down = subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), "down"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert down.returncode == 0, down.stderr
    assert marker.exists(), "cluster.sh down removed a database folder it did not create"


def test_copy_store_moves_a_sqlite_deployment_with_live_tokens(tmp_path):
    """A SQLite instance with live grants is copied into an empty schema; a host on that
    schema, with the old secret.key, accepts what the old instance issued."""
    old = Stack(workers=1, database="").start()
    try:
        c, rs = new_client(old), resource_server(old)
        name = new_user(old)
        old.cli("user", "update", name, "--email", "ann@example.com", "--email-verified", "--name", "Ann")
        cc = old.post("/token", data={"grant_type": "client_credentials"}, auth=basic(c)).json()
        pw = old.post("/token", data={"grant_type": "password", "username": name, "password": PASSWORD}, auth=basic(c)).json()
        flow = exchange(old, c, get_code(old, c, name)[0]["code"]).json()
        rotated = old.post("/token", data={"grant_type": "refresh_token", "refresh_token": flow["refresh_token"]},
                           auth=basic(c)).json()
        revoked = old.post("/token", data={"grant_type": "client_credentials"}, auth=basic(c)).json()["access_token"]
        assert old.post("/revoke", data={"token": revoked}, auth=basic(c)).status_code == 200
        user_before = json.loads(old.cli("user", "show", name, "--json").stdout)
        keys_before = json.loads(old.cli("keys", "list", "--json").stdout)
    finally:
        old.stop()  # a copy is taken with the old instance stopped

    target = postgres_schema()
    db = os.path.join(old.home, "gatehouse.db")
    copy = old.cli("copy-store", "--from", db, "--to", target)
    assert "clients: 2 copied" in copy.stdout and "users: 1 copied" in copy.stdout, copy.stdout
    again = old.cli("copy-store", "--from", db, "--to", target, check=False)
    assert again.returncode != 0 and "empty" in again.stderr, again.stderr

    new = Stack(workers=1, database=target, peer=old).start()
    try:
        for tok in (cc["access_token"], pw["access_token"], pw["refresh_token"], rotated["access_token"],
                    rotated["refresh_token"]):
            assert active(new, rs, tok), tok
        assert not active(new, rs, revoked)
        assert json.loads(new.cli("user", "show", name, "--json").stdout) == user_before
        assert json.loads(new.cli("keys", "list", "--json").stdout) == keys_before
        # The copied grants go on: a refresh rotates; the replay of a rotated token revokes its family.
        r = new.post("/token", data={"grant_type": "refresh_token", "refresh_token": pw["refresh_token"]}, auth=basic(c))
        assert r.status_code == 200, r.text
        replay = new.post("/token", data={"grant_type": "refresh_token", "refresh_token": flow["refresh_token"]},
                          auth=basic(c))
        assert replay.status_code == 400, replay.text
        assert not active(new, rs, rotated["access_token"])
        # New rows get ids after the copied ones.
        new_user(new)
        assert new.post("/token", data={"grant_type": "password", "username": name, "password": PASSWORD},
                        auth=basic(c)).status_code == 200
    finally:
        new.stop()
