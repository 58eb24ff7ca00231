"""scripts/backup.sh under load and scripts/restore.sh into a new instance: every client,
user and live token of the backup is there (tokens introspect active), and the archive is
private and holds the key."""
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time

import pytest

from conftest import PASSWORD, ROOT, Stack
from oauth_flow import basic, uniq

BACKUP = os.path.join(ROOT, "scripts", "backup.sh")
RESTORE = os.path.join(ROOT, "scripts", "restore.sh")


def script(path, *args, env, check=True):
    r = subprocess.run(["bash", path, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.mark.sqlite  # backup.sh copies the SQLite file; PostgreSQL deployments use pg_dump
def test_backup_under_load_restores_every_client_user_and_live_token():
    # The database is not at the default path: the `database` key must be respected.
    s = Stack(workers=2)
    os.makedirs(os.path.join(s.home, "data"))
    shutil.move(os.path.join(s.home, "gatehouse.db"), os.path.join(s.home, "data", "auth.db"))
    with open(os.path.join(s.home, "gatehouse.conf"), "a") as f:
        f.write("\ndatabase = data/auth.db\n")
    s.start()
    restored = None
    try:
        rs = s.add_client("--name", uniq("rs"), "--resource-server", "--grant-types", "client_credentials")
        app = s.add_client("--name", uniq("app"), "--grant-types", "client_credentials,password,refresh_token")
        users = [uniq("u") for _ in range(3)]
        for u in users:
            s.add_user(u)
        before = [s.post("/token", data={"grant_type": "password", "username": u, "password": PASSWORD},
                         auth=basic(app)).json() for u in users]
        live = [t["access_token"] for t in before] + [t["refresh_token"] for t in before]

        # Load: a thread issuing tokens for the whole backup.
        stop, issued, errors = threading.Event(), [], []

        def load():
            while not stop.is_set():
                r = s.post("/token", data={"grant_type": "client_credentials"}, auth=basic(app))
                (issued if r.status_code == 200 else errors).append(r.json().get("access_token", r.text))

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.3)
        out = os.path.join(s.home, "backups", "b.tar.gz")
        env = dict(s.env)
        started = len(issued)
        r = script(BACKUP, out, env=env)
        during = len(issued) - started
        stop.set()
        t.join()
        assert not errors, errors[:3]
        assert during > 0, "the load thread issued nothing while the backup ran"
        live += issued[:started]  # committed before the snapshot began
        assert r.stdout.strip() == out
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        with tarfile.open(out) as tar:
            names = set(tar.getnames())
        assert {"MANIFEST", "gatehouse.db", "secret.key", "gatehouse.conf"} <= names
        clients = s.cli("client", "list", "--json").stdout
        user_list = s.cli("user", "list", "--json").stdout
    finally:
        s.stop()

    restored = Stack(workers=2)
    try:
        # Restoring over an existing database needs --force.
        r = script(RESTORE, out, "--home", restored.home, env=restored.env, check=False)
        assert r.returncode != 0 and "--force" in r.stderr
        script(RESTORE, out, "--home", restored.home, "--force", env=restored.env)
        key = os.path.join(restored.home, "secret.key")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.join(restored.home, "gatehouse.db")).st_mode) == 0o600
        restored.start()
        assert restored.cli("client", "list", "--json").stdout == clients
        assert restored.cli("user", "list", "--json").stdout == user_list
        for tok in live:
            r = restored.post("/introspect", data={"token": tok}, auth=basic(rs))
            assert r.status_code == 200 and r.json()["active"] is True, (tok[:6], r.text)
        # The restored key unseals the signing keys: the restored instance signs and serves /jwks.
        assert restored.get("/jwks").json()["keys"]
        # And it is a working instance, not a read-only copy.
        r = restored.post("/token", data={"grant_type": "password", "username": users[0], "password": PASSWORD},
                          auth=basic(app))
        assert r.status_code == 200, r.text
        # A running instance refuses a restore.
        r = script(RESTORE, out, "--home", restored.home, "--force", env=restored.env, check=False)
        assert r.returncode != 0 and "running" in r.stderr
    finally:
        restored.stop()
