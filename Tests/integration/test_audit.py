"""The audit log: one line per security event, with stable names, after known actions (login
form, password grant, consent, revocation, replays, CLI changes), in logfmt and in JSON, and
never a secret, password or token in it."""
import getpass
import json
import os
import pwd
import re

import pytest

from conftest import PASSWORD, Stack, query_of
from oauth_flow import CB, Browser, auth_params, basic, uniq

ALL = "authorization_code,refresh_token,client_credentials,password"
WRONG = "Wr0ng-passw0rd-never-logged"


class JSONStack(Stack):
    """A stack whose log is JSON: the harness's `event=X` needles become `"event":"X"`."""

    def wait_log(self, needle, count=1, timeout=20):
        m = re.fullmatch(r"event=(\w+)", needle)
        return super().wait_log(f'"event":"{m.group(1)}"' if m else needle, count, timeout)


def run_actions(s):
    """Every audited action once; answers the secrets they handled."""
    client = s.add_client("--name", uniq("audit"), "--redirect-uri", CB, "--grant-types", ALL)
    user, victim = uniq("alice"), uniq("mallory")
    s.add_user(user)
    s.add_user(victim)
    secrets = [client["client_secret"], PASSWORD, WRONG]
    # Login form: one wrong password, then the right one, then consent.
    b = Browser(s)
    page = b.authorize(auth_params(client))
    failed = b.login(page, user, WRONG)
    assert failed.status_code == 401
    r = b.approve(failed, user)
    code = query_of(r.headers["Location"])["code"]
    secrets.append(code)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB}
    tokens = s.post("/token", data=exchange, auth=basic(client)).json()
    assert s.post("/token", data=exchange, auth=basic(client)).status_code == 400  # code replay
    secrets += [tokens["access_token"], tokens["refresh_token"]]
    # Password grant: a success, then failures until the victim's name is locked out.
    pw = s.post("/token", data={"grant_type": "password", "username": user, "password": PASSWORD}, auth=basic(client)).json()
    secrets += [pw["access_token"], pw["refresh_token"]]
    for _ in range(2):
        s.post("/token", data={"grant_type": "password", "username": victim, "password": WRONG}, auth=basic(client))
    # Refresh rotation, then reuse of the rotated token.
    rt = pw["refresh_token"]
    rotated = s.post("/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=basic(client)).json()
    secrets += [rotated["access_token"], rotated["refresh_token"]]
    assert s.post("/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=basic(client)).status_code == 400
    # Revocation by the owner, and an attempt by another client.
    other = s.add_client("--name", uniq("other"), "--grant-types", "client_credentials")
    secrets.append(other["client_secret"])
    cc = s.post("/token", data={"grant_type": "client_credentials"}, auth=basic(client)).json()["access_token"]
    secrets.append(cc)
    assert s.post("/revoke", data={"token": cc}, auth=basic(other)).status_code == 200
    assert s.post("/revoke", data={"token": cc}, auth=basic(client)).status_code == 200
    # CLI changes.
    rotated_secret = json.loads(s.cli("client", "rotate-secret", client["client_id"], "--json").stdout)["client_secret"]
    secrets.append(rotated_secret)
    s.cli("user", "passwd", victim, "--password-stdin", stdin="An0ther-secret-pw\n")
    secrets.append("An0ther-secret-pw")
    s.cli("user", "disable", user)
    s.cli("token", "revoke", "--user", user)
    s.cli("client", "remove", other["client_id"])
    return client, user, victim, other, secrets


EXPECTED = ["client_added", "user_added", "login_failed", "login_succeeded", "consent_granted", "code_replayed",
            "login_lockout", "refresh_token_reused", "token_revoked", "token_revoke_refused", "client_secret_rotated",
            "user_password_set", "user_disabled", "tokens_revoked_by_operator", "client_removed"]


def test_logfmt_audit_lines_name_who_and_never_a_secret():
    s = Stack(workers=2, extra_config="log_file = gatehouse.log\nlogin_max_failures = 2").start()
    try:
        client, user, victim, other, secrets = run_actions(s)
        s.wait_log("event=client_removed")
        log = s.read_log()
    finally:
        s.stop()
    lines = log.splitlines()

    def events(name):
        return [l for l in lines if f" event={name} " in l]

    for name in EXPECTED:
        assert events(name), f"no {name} line in:\n{log}"
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert f"by={me}" in events("client_added")[0] and f"client={client['client_id']}" in events("client_added")[0]
    failed = [l for l in events("login_failed") if "via=login_form" in l][0]
    assert f"username={user}" in failed and "address=127.0.0.1" in failed and f"client={client['client_id']}" in failed
    assert "reason=wrong_password" in failed
    assert any(f"username={user}" in l and "via=login_form" in l for l in events("login_succeeded"))
    assert any(f"username={user}" in l and "via=password_grant" in l for l in events("login_succeeded"))
    assert any(f"username={victim}" in l and "locked=username" in l for l in events("login_lockout"))
    assert f"username={user}" in events("consent_granted")[0]
    assert f"client={client['client_id']}" in events("token_revoked")[0] and "kind=access" in events("token_revoked")[0]
    assert f"client={other['client_id']}" in events("token_revoke_refused")[0]
    assert f"username={user}" in events("tokens_revoked_by_operator")[0] and f"by={me}" in events("tokens_revoked_by_operator")[0]
    for secret in secrets:
        assert secret not in log, "a secret reached the log"


def test_json_log_format_gives_one_valid_object_per_line_with_the_same_keys():
    s = JSONStack(workers=2, extra_config="log_file = gatehouse.log\nlog_format = json\nlogin_max_failures = 2").start()
    try:
        client, user, victim, other, secrets = run_actions(s)
        s.wait_log("event=client_removed")
        log = s.read_log()
    finally:
        s.stop()
    objects = []
    for line in log.splitlines():
        assert not line.startswith("ts="), line
        if line.startswith("{"):
            objects.append(json.loads(line))
    assert objects and all(isinstance(o, dict) and {"ts", "level", "event", "pid"} <= o.keys() for o in objects)
    names = {o["event"] for o in objects}
    for name in EXPECTED:
        assert name in names, name
    failed = next(o for o in objects if o["event"] == "login_failed" and o.get("via") == "login_form")
    assert failed["username"] == user and failed["address"] == "127.0.0.1" and failed["client"] == client["client_id"]
    assert isinstance(next(o for o in objects if o["event"] == "master_ready")["workers"], int)
    for secret in secrets:
        assert secret not in log, "a secret reached the log"
