"""The gatehouse command line: clients, users, one-line errors, secrets shown once."""
import json
import os
import re
import subprocess

from conftest import BIN, PASSWORD, Stack


def test_client_add_generates_wso2_like_credentials(stack):
    c = stack.add_client("--name", "cli-gen", "--redirect-uri", "https://app.example/cb")
    for v in (c["client_id"], c["client_secret"]):
        assert re.fullmatch(r"[A-Za-z0-9_-]{28}", v) and not v.startswith("-")
    assert c["grant_types"] == ["authorization_code", "refresh_token"]
    assert c["scope"] == "PRODUCTION" and c["public"] is False
    assert set(c) >= {"client_id", "client_secret", "name", "redirect_uris", "grant_types", "scope", "public"}


def test_public_client_has_no_secret(stack):
    c = stack.add_client("--name", "cli-public", "--public", "--redirect-uri", "http://127.0.0.1/cb")
    assert "client_secret" not in c and c["public"] is True


def test_secret_is_never_shown_again(stack):
    c = stack.add_client("--name", "cli-show", "--grant-types", "client_credentials")
    shown = stack.cli("client", "show", c["client_id"], "--json").stdout
    assert c["client_secret"] not in shown
    assert "client_secret" not in json.loads(shown)
    assert c["client_secret"] not in stack.cli("client", "list").stdout


def test_rotate_secret_replaces_it_at_once(stack):
    c = stack.add_client("--name", "cli-rotate", "--grant-types", "client_credentials")
    new = json.loads(stack.cli("client", "rotate-secret", c["client_id"], "--json").stdout)
    assert new["client_secret"] != c["client_secret"]
    old = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
    assert old.status_code == 401
    ok = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], new["client_secret"]))
    assert ok.status_code == 200


def test_rotate_secret_with_an_overlap_keeps_the_old_one_until_it_ends(stack):
    """Zero-downtime rotation: instances switch to the new secret one at a time."""
    c = stack.add_client("--name", "cli-rotate-overlap", "--grant-types", "client_credentials")

    def status(secret):
        return stack.post("/token", data={"grant_type": "client_credentials"},
                          auth=(c["client_id"], secret)).status_code

    new = json.loads(stack.cli("client", "rotate-secret", c["client_id"], "--keep-old-for", "600", "--json").stdout)
    assert status(c["client_secret"]) == 200 and status(new["client_secret"]) == 200
    assert new["previous_secret_valid_until"] > 0
    assert "old secret:     still accepted until" in stack.cli("client", "show", c["client_id"]).stdout
    # Rotating again ends the overlap: only the newest secret works.
    newest = json.loads(stack.cli("client", "rotate-secret", c["client_id"], "--json").stdout)
    assert status(c["client_secret"]) == 401 and status(new["client_secret"]) == 401
    assert status(newest["client_secret"]) == 200
    assert "previous_secret_valid_until" not in newest
    r = stack.cli("client", "rotate-secret", c["client_id"], "--keep-old-for", "-5", check=False)
    assert r.returncode != 0 and r.stderr.startswith("gatehouse: error:")


def test_update_and_remove_client(stack):
    c = stack.add_client("--name", "cli-upd", "--grant-types", "client_credentials", "--scope", "A B")
    u = json.loads(stack.cli("client", "update", c["client_id"], "--scope", "A", "--json").stdout)
    assert u["scope"] == "A"
    r = stack.post("/token", data={"grant_type": "client_credentials", "scope": "B"}, auth=(c["client_id"], c["client_secret"]))
    assert r.json()["error"] == "invalid_scope"
    stack.cli("client", "remove", c["client_id"])
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 401


def test_imported_wso2_keys_work_verbatim(stack):
    c = stack.add_client("--name", "cli-import", "--grant-types", "client_credentials",
                         "--client-id", "Kx2vQ3fA1bHWeRdmZ9pLcY7tNsUa", "--client-secret", "Tq8zR2wXc5VbN1mKj4HgFd6SaPo0")
    assert c["client_id"] == "Kx2vQ3fA1bHWeRdmZ9pLcY7tNsUa"
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], "Tq8zR2wXc5VbN1mKj4HgFd6SaPo0"))
    assert r.status_code == 200
    dup = stack.cli("client", "add", "--name", "again", "--grant-types", "client_credentials",
                    "--client-id", "Kx2vQ3fA1bHWeRdmZ9pLcY7tNsUa", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr


def test_bad_input_is_one_line_error_and_nothing_written(stack):
    before = stack.cli("client", "list").stdout
    for args in (["--name", "x", "--redirect-uri", "https://a.example/cb#f"],
                 ["--name", "x", "--redirect-uri", "javascript:alert(1)"],
                 ["--name", "x", "--grant-types", "implicit"],
                 ["--name", "x", "--grant-types", "client_credentials", "--scope", "A", "--default-scope", "B"],
                 ["--name", "x", "--public", "--grant-types", "client_credentials"]):
        r = stack.cli("client", "add", *args, check=False)
        assert r.returncode != 0, args
        assert r.stderr.startswith("gatehouse: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert stack.cli("client", "list").stdout == before


def test_users_with_tenant_names_passwd_disable_remove(stack):
    out = json.loads(stack.cli("user", "add", "--username", "john@org", "--password-stdin", "--json",
                               stdin=PASSWORD + "\n").stdout)
    assert out == {"username": "john@org"}
    c = stack.add_client("--name", "cli-users", "--grant-types", "password")

    def login(pw):
        return stack.post("/token", data={"grant_type": "password", "username": "john@org", "password": pw},
                          auth=(c["client_id"], c["client_secret"])).status_code

    assert login(PASSWORD) == 200
    old = stack.post("/token", data={"grant_type": "password", "username": "john@org", "password": PASSWORD},
                     auth=(c["client_id"], c["client_secret"])).json()
    out = stack.cli("user", "passwd", "john@org", "--password-stdin", stdin="a new passphrase\n").stdout
    assert "grant(s) revoked" in out
    assert login(PASSWORD) == 400 and login("a new passphrase") == 200
    # A reset ends what the old password obtained (RFC 9700 §4.14.2) ...
    r = stack.post("/introspect", data={"token": old["access_token"]}, auth=(c["client_id"], c["client_secret"]))
    assert r.json() == {"active": False}
    # ... and --keep-tokens is for a routine change.
    kept = stack.post("/token", data={"grant_type": "password", "username": "john@org", "password": "a new passphrase"},
                      auth=(c["client_id"], c["client_secret"])).json()
    stack.cli("user", "passwd", "john@org", "--password-stdin", "--keep-tokens", stdin="a third passphrase\n")
    r = stack.post("/introspect", data={"token": kept["access_token"]}, auth=(c["client_id"], c["client_secret"]))
    assert r.json()["active"] is True
    stack.cli("user", "passwd", "john@org", "--password-stdin", stdin="a new passphrase\n")
    stack.cli("user", "disable", "john@org")
    assert login("a new passphrase") == 400
    stack.cli("user", "enable", "john@org")
    assert login("a new passphrase") == 200
    stack.cli("user", "remove", "john@org")
    assert "john@org" not in stack.cli("user", "list").stdout
    r = stack.cli("user", "add", "--username", "nopw", "--password-stdin", stdin="", check=False)
    assert r.returncode != 0 and r.stderr.startswith("gatehouse: error:")


def test_password_never_taken_as_argument(stack):
    r = stack.cli("user", "add", "--username", "argpw", check=False)
    assert r.returncode != 0 and "--password-stdin" in r.stderr


def test_purge_refuses_a_batch_size_that_cannot_finish(stack):
    """`purge --batch 0` used to loop forever (a batch of 0 rows is never the last one).
    The timeout turns that hang into a failure instead of a stuck suite."""
    for bad in (["--batch", "0"], ["--batch=-5"], ["--batch", "100001"]):
        r = subprocess.run([BIN, "purge", *bad], env=stack.env, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, (bad, r.stdout)
        assert "--batch" in r.stderr and "1 and 100000" in r.stderr, r.stderr
    r = subprocess.run([BIN, "purge", "--batch", "1"], env=stack.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "tokens:" in r.stdout, r.stderr


def _tree(home):
    """Every file under `home` with its size and modification time."""
    out = {}
    for root, _, files in os.walk(home):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, home)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def test_check_config_changes_nothing():
    """check-config may run as root beside a service running as `gatehouse`: it must not
    create the server key, migrate, or make SQLite's -wal/-shm files as its user."""
    s = Stack(workers=1)
    try:
        key = os.path.join(s.home, "secret.key")
        if os.path.exists(key):
            os.unlink(key)
        before = _tree(s.home)
        r = s.cli("check-config")
        assert "configuration ok" in r.stdout, r.stdout
        assert "not there yet; the first start creates it" in r.stdout, r.stdout
        assert re.search(r"database: schema version \d+, current", r.stdout), r.stdout
        assert _tree(s.home) == before
        # Running: the WAL is live, and check-config reads through SQLite, still writing nothing.
        s.start()
        s.add_client("--name", "check-live", "--grant-types", "client_credentials")
        before = _tree(s.home)
        r = s.cli("check-config")
        assert "secret key:" in r.stdout and "readable, mode 0600" in r.stdout, r.stdout
        assert re.search(r"database: schema version \d+, current", r.stdout), r.stdout
        # The workers may checkpoint meanwhile: the same files with the same modes is the test.
        assert {k: v[2] for k, v in _tree(s.home).items()} == {k: v[2] for k, v in before.items()}
    finally:
        s.stop()


def test_check_config_refuses_a_file_that_is_not_a_database(tmp_path):
    s = Stack(workers=1, database="")
    try:
        with open(os.path.join(s.home, "gatehouse.conf"), "a") as f:
            f.write(f"\ndatabase = {tmp_path}/not-a-db\n")
        (tmp_path / "not-a-db").write_bytes(b"hello, this is not SQLite" * 10)
        r = s.cli("check-config", check=False)
        assert r.returncode != 0 and "not a SQLite database" in r.stderr, (r.returncode, r.stdout, r.stderr)
        assert (tmp_path / "not-a-db").read_bytes() == b"hello, this is not SQLite" * 10
    finally:
        s.stop()
