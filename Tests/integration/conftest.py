"""Integration harness: a real nginx and the real worker pool on free loopback ports, in a
temporary GATEHOUSE_HOME, spoken to over HTTPS. No mocks of nginx, FastCGI or SQLite.

With GATEHOUSE_DATABASE set to a PostgreSQL URI (scripts/test.sh does, on its second run)
every Stack gets a schema of its own in that database; tests that read or break the SQLite
file itself are marked `sqlite` and skip."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GATEHOUSE_BIN") or os.path.join(ROOT, ".build", "debug", "gatehouse")
PASSWORD = "correct horse battery staple"
POSTGRES = os.environ.get("GATEHOUSE_DATABASE", "")
if not POSTGRES.startswith(("postgresql://", "postgres://")):
    POSTGRES = ""


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite: reads or breaks the SQLite file itself; skipped on PostgreSQL")


def pytest_collection_modifyitems(config, items):
    if POSTGRES:
        skip = pytest.mark.skip(reason="SQLite-specific (GATEHOUSE_DATABASE is PostgreSQL)")
        for item in items:
            if "sqlite" in item.keywords:
                item.add_marker(skip)


def postgres_schema():
    """A new schema in the GATEHOUSE_DATABASE database; answers the URI that selects it."""
    schema = "gh_" + uuid.uuid4().hex
    subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", POSTGRES, "-c", f"CREATE SCHEMA {schema}"],
                   check=True, capture_output=True)
    return POSTGRES + ("&" if "?" in POSTGRES else "?") + "options=-csearch_path%3D" + schema


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """One Gatehouse instance: master + workers + nginx, all under `home`."""

    # Tests log in far faster than people do: unless a test asks for the shipped limit
    # (login_rate=None), the stack's nginx allows this many login/consent posts a second.
    TEST_LOGIN_RATE = "10000r/s"

    def __init__(self, workers=2, extra_config="", login_rate=TEST_LOGIN_RATE, peer=None, database=None):
        """`peer`: another host of the same deployment; this one shares its database (and
        schema) and its secret.key, as the hosts of a cluster do. `database` overrides the
        suite's choice: a PostgreSQL URI, or "" for the instance's own SQLite file."""
        self.home = tempfile.mkdtemp(prefix="gh-")
        self.port = free_port()
        self.example_port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.env = dict(os.environ, GATEHOUSE_HOME=self.home, GATEHOUSE_HTTPS_PORT=str(self.port))
        if database is not None:
            self.env["GATEHOUSE_DATABASE"] = database
        elif POSTGRES:
            self.env["GATEHOUSE_DATABASE"] = peer.env["GATEHOUSE_DATABASE"] if peer else postgres_schema()
        if peer:
            fd = os.open(os.path.join(self.home, "secret.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(peer.secret_key())
        self.workers = workers
        if login_rate:
            self.env["GATEHOUSE_LOGIN_RATE"] = login_rate  # read by render_nginx, which runs with self.env
        self.master = None
        self.log_path = os.path.join(self.home, "gatehouse.log")
        self.socket = os.path.join(self.home, "run", "gatehouse.sock")
        # The self-signed certificate start.sh would make; verified, not ignored.
        self.ca = os.path.join(self.home, "tls", "cert.pem")
        self.cli("migrate")
        if extra_config:
            with open(os.path.join(self.home, "gatehouse.conf"), "a") as f:
                f.write("\n" + extra_config + "\n")

    # -- processes -------------------------------------------------------------------
    def start(self):
        self.log = open(self.log_path, "ab")
        self.master = subprocess.Popen([BIN, "serve", "--workers", str(self.workers)], env=self.env,
                                       stdout=self.log, stderr=self.log, start_new_session=True)
        self.wait_log("event=master_ready")
        subprocess.run(["bash", "-c",
                        f'source "{ROOT}/scripts/lib.sh" && ensure_certificate "{self.home}/tls" && '
                        f'render_nginx "{self.home}" {self.port} {self.example_port} "{self.socket}" off'],
                       env=self.env, check=True)
        self.nginx = subprocess.Popen(["nginx", "-p", f"{self.home}/nginx", "-c", f"{self.home}/nginx/nginx.conf"],
                                      env=self.env, stdout=subprocess.DEVNULL, stderr=self.log,
                                      start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.get("/health").status_code == 200:
                    return self
            except requests.exceptions.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("stack did not come up:\n" + self.read_log())

    def stop(self):
        if getattr(self, "nginx", None) and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        if self.master and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.master.pid, signal.SIGKILL)
                raise

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.master.pid)], capture_output=True, text=True).stdout
        return sorted(int(p) for p in out.split())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, needle, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.read_log().count(needle) >= count:
                return
            if self.master and self.master.poll() is not None:
                raise RuntimeError("master exited:\n" + self.read_log())
            time.sleep(0.05)
        raise TimeoutError(f"{needle!r} x{count} not in log:\n" + self.read_log())

    def secret_key(self):
        """The text of this instance's secret.key, made now (0600) if no process made it yet."""
        path = os.path.join(self.home, "secret.key")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
        except FileExistsError:
            pass
        with open(path) as f:
            return f.read()

    # -- CLI ---------------------------------------------------------------------------
    def cli(self, *args, stdin=None, check=True):
        r = subprocess.run([BIN, *args], env=self.env, input=stdin, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"gatehouse {' '.join(args)} failed: {r.stderr}")
        return r

    def sql(self, query):
        """Runs `query` against this stack's database (sqlite3 or psql); answers its output."""
        # The query goes through stdin: one argument may not pass 128 KiB (MAX_ARG_STRLEN), and
        # a query listing a few thousand token hashes does.
        if POSTGRES:
            cmd = ["psql", "-q", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.env["GATEHOUSE_DATABASE"]]
        else:
            cmd = ["sqlite3", "-bail", "-cmd", ".timeout 10000", getattr(self, "db", os.path.join(self.home, "gatehouse.db"))]
        r = subprocess.run(cmd, input=query, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def add_client(self, *args):
        return json.loads(self.cli("client", "add", "--json", *args).stdout)

    def add_user(self, username, password=PASSWORD):
        self.cli("user", "add", "--username", username, "--password-stdin", stdin=password + "\n")

    # -- HTTP ----------------------------------------------------------------------------
    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return requests.get(self.url + path, verify=self.ca, timeout=30, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return requests.post(self.url + path, verify=self.ca, timeout=30, **kw)

    def session(self):
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE must not replace our CA
        s.verify = self.ca
        return s


@pytest.fixture(scope="session")
def stack():
    s = Stack(workers=2).start()
    yield s
    s.stop()


def blob(data):
    """A literal for bytes in this suite's database's SQL dialect."""
    return f"'\\x{data.hex()}'::bytea" if POSTGRES else f"X'{data.hex()}'"


def query_of(location):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query, keep_blank_values=True))
