"""Token lifecycle, black box over HTTPS: /token (client_credentials, password, refresh_token),
/revoke (RFC 7009), /introspect (RFC 7662), metadata (RFC 8414), the operator CLI and
third-party client libraries. Each test is named after the RFC section it checks."""
import base64
import json
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import PASSWORD, Stack

ALL_GRANTS = "authorization_code,refresh_token,client_credentials,password"
REDIRECT = "https://app.example/cb"


# -- helpers -------------------------------------------------------------------------------
def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def confidential(stack, grants=ALL_GRANTS, scope="PRODUCTION SANDBOX", *extra):
    return stack.add_client("--name", uniq("client"), "--redirect-uri", REDIRECT,
                            "--grant-types", grants, "--scope", scope, *extra)


def basic(client):
    return (client["client_id"], client["client_secret"])


def token(stack, client, **data):
    return stack.post("/token", data=data, auth=basic(client))


def cc_token(stack, client, **data):
    r = token(stack, client, grant_type="client_credentials", **data)
    assert r.status_code == 200, r.text
    return r.json()


def password_token(stack, client, username, password=PASSWORD, **data):
    r = token(stack, client, grant_type="password", username=username, password=password, **data)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(stack, client, refresh_token, **data):
    return token(stack, client, grant_type="refresh_token", refresh_token=refresh_token, **data)


def introspect(stack, caller, tok, **data):
    r = stack.post("/introspect", data={"token": tok, **data}, auth=basic(caller))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def subject(stack, username):
    return json.loads(stack.cli("user", "show", username, "--json").stdout)["sub"]


def revoke(stack, caller, tok, **data):
    return stack.post("/revoke", data={"token": tok, **data}, auth=basic(caller))


def user(stack):
    name = uniq("user")
    stack.add_user(name)
    return name


def assert_error(r, status, error):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == error, body
    assert r.headers["Content-Type"].startswith("application/json")


INACTIVE = {"active": False}


@pytest.fixture(scope="module")
def rs(stack):
    """A resource server: may introspect any token."""
    return stack.add_client("--name", uniq("rs"), "--grant-types", "client_credentials", "--resource-server")


# -- client_credentials (RFC 6749 §4.4) ----------------------------------------------------
def test_rfc6749_4_4_3_client_credentials_success_shape(stack):
    c = confidential(stack)
    r = token(stack, c, grant_type="client_credentials")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    body = r.json()
    # §4.4.3: a refresh token SHOULD NOT be included.
    assert set(body) == {"access_token", "scope", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"PRODUCTION", "SANDBOX"}
    assert len(body["access_token"]) >= 32


def test_rfc6749_2_3_1_client_secret_post(stack):
    c = confidential(stack)
    r = stack.post("/token", data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                   "client_secret": c["client_secret"]})
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()


def test_rfc6749_2_3_1_basic_credentials_are_form_urlencoded(stack):
    cid, secret = uniq("imported.id~x"), "s3cr:et+/=%&" + uuid.uuid4().hex
    c = stack.add_client("--name", uniq("imp"), "--grant-types", "client_credentials",
                         "--client-id", cid, "--client-secret", secret)
    assert c["client_id"] == cid
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    auth = base64.b64encode(f"{q(cid)}:{q(secret)}".encode()).decode()
    r = stack.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic " + auth})
    assert r.status_code == 200, r.text


def test_rfc6749_4_4_2_scope_narrowing_and_invalid_scope(stack):
    c = confidential(stack)
    assert cc_token(stack, c, scope="SANDBOX")["scope"] == "SANDBOX"
    assert_error(token(stack, c, grant_type="client_credentials", scope="PRODUCTION ADMIN"), 400, "invalid_scope")


def test_rfc6749_4_4_public_client_cannot_use_client_credentials(stack):
    # Registration already refuses it ...
    r = stack.cli("client", "add", "--json", "--name", uniq("pub"), "--public", "--grant-types",
                  "client_credentials", check=False)
    assert r.returncode != 0 and r.stdout == ""
    # ... and a public client asking anyway is refused at /token.
    p = stack.add_client("--name", uniq("pub"), "--public", "--redirect-uri", REDIRECT)
    assert "client_secret" not in p
    r = stack.post("/token", data={"grant_type": "client_credentials", "client_id": p["client_id"]})
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] in ("unauthorized_client", "invalid_client")
    assert "access_token" not in r.json()


def test_rfc6749_5_2_unauthorized_client_grant_not_registered(stack):
    c = confidential(stack, grants="authorization_code,refresh_token")
    assert_error(token(stack, c, grant_type="client_credentials"), 400, "unauthorized_client")


def test_rfc6749_5_2_unsupported_grant_type(stack):
    c = confidential(stack)
    assert_error(token(stack, c, grant_type="urn:example:nope"), 400, "unsupported_grant_type")


def test_rfc6749_5_2_missing_grant_type_is_invalid_request(stack):
    c = confidential(stack)
    assert_error(token(stack, c, scope="PRODUCTION"), 400, "invalid_request")


def test_rfc6749_5_2_invalid_client_basic_is_401_with_challenge(stack):
    c = confidential(stack)
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], "wrong"))
    assert_error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].lower().startswith("basic")
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=("nobody-" + uuid.uuid4().hex, "x"))
    assert_error(r, 401, "invalid_client")
    assert "WWW-Authenticate" in r.headers


def test_rfc6749_5_2_invalid_client_post(stack):
    c = confidential(stack)
    r = stack.post("/token", data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                   "client_secret": "wrong"})
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"
    r = stack.post("/token", data={"grant_type": "client_credentials"})  # no authentication at all
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"


def test_rfc6749_2_3_two_authentication_methods_refused(stack):
    """§2.3: the client MUST NOT use more than one authentication method in each request."""
    c = confidential(stack)
    r = stack.post("/token", data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                   "client_secret": c["client_secret"]}, auth=basic(c))
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] in ("invalid_request", "invalid_client")


def test_rfc6749_3_2_json_body_refused(stack):
    c = confidential(stack)
    r = stack.post("/token", json={"grant_type": "client_credentials"}, auth=basic(c))
    assert_error(r, 400, "invalid_request")


def test_rfc6749_3_2_repeated_parameter_refused(stack):
    """§3.2: request and response parameters MUST NOT be included more than once."""
    c = confidential(stack)
    r = stack.post("/token", data="grant_type=client_credentials&scope=PRODUCTION&scope=SANDBOX",
                   headers={"Content-Type": "application/x-www-form-urlencoded"}, auth=basic(c))
    assert_error(r, 400, "invalid_request")


def test_rfc6749_3_2_token_endpoint_requires_post(stack):
    c = confidential(stack)
    r = stack.get("/token?grant_type=client_credentials", auth=basic(c))
    assert r.status_code in (400, 405), r.text
    assert "access_token" not in r.text


# -- password grant (RFC 6749 §4.3) ---------------------------------------------------------
def test_rfc6749_4_3_3_password_grant_success_wso2_shape(stack):
    c = confidential(stack)
    u = user(stack)
    r = token(stack, c, grant_type="password", username=u, password=PASSWORD, scope="PRODUCTION")
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "scope", "token_type", "expires_in"}, body
    assert body["scope"] == "PRODUCTION"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] != body["refresh_token"]


def test_rfc6749_1_5_no_refresh_token_without_refresh_grant(stack):
    c = confidential(stack, grants="password")
    body = password_token(stack, c, user(stack))
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"


def test_rfc6749_4_3_password_grant_off_by_default(stack):
    c = stack.add_client("--name", uniq("default"), "--redirect-uri", REDIRECT)  # default grants
    u = user(stack)
    r = token(stack, c, grant_type="password", username=u, password=PASSWORD)
    assert_error(r, 400, "unauthorized_client")


def test_rfc6749_5_2_password_wrong_or_unknown_user_is_invalid_grant(stack):
    c = confidential(stack)
    u = user(stack)
    r1 = token(stack, c, grant_type="password", username=u, password="wrong")
    r2 = token(stack, c, grant_type="password", username=uniq("ghost"), password=PASSWORD)
    assert_error(r1, 400, "invalid_grant")
    assert_error(r2, 400, "invalid_grant")
    # One generic answer: no user-enumeration oracle.
    assert r1.json() == r2.json()


def test_rfc6749_4_3_2_password_missing_parameters_invalid_request(stack):
    c = confidential(stack)
    u = user(stack)
    assert_error(token(stack, c, grant_type="password", username=u), 400, "invalid_request")
    assert_error(token(stack, c, grant_type="password", password=PASSWORD), 400, "invalid_request")


def test_rfc6749_10_10_password_grant_throttled_per_user(stack):
    c = confidential(stack)
    victim, other = user(stack), user(stack)
    for _ in range(5):
        assert_error(token(stack, c, grant_type="password", username=victim, password="guess"), 400, "invalid_grant")
    # Locked: even the right password is refused now ...
    assert_error(token(stack, c, grant_type="password", username=victim, password=PASSWORD), 400, "invalid_grant")
    # ... while another user is not affected.
    password_token(stack, c, other)


# -- refresh (RFC 6749 §6, RFC 9700 §4.14) -----------------------------------------------------
def test_rfc6749_6_refresh_rotates(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    r = refresh(stack, c, t0["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    t1 = r.json()
    assert set(t1) == {"access_token", "refresh_token", "scope", "token_type", "expires_in"}
    assert t1["refresh_token"] != t0["refresh_token"]
    assert t1["access_token"] != t0["access_token"]
    assert t1["scope"] == t0["scope"]
    assert introspect(stack, c, t1["access_token"])["active"] is True
    r = refresh(stack, c, t1["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] not in (t0["refresh_token"], t1["refresh_token"])


def test_rfc6749_6_refresh_narrower_scope(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack), scope="PRODUCTION SANDBOX")
    r = refresh(stack, c, t0["refresh_token"], scope="SANDBOX")
    assert r.status_code == 200, r.text
    t1 = r.json()
    assert t1["scope"] == "SANDBOX"
    assert introspect(stack, c, t1["access_token"])["scope"] == "SANDBOX"


def test_rfc6749_6_omitted_scope_is_the_original_grant(stack):
    """§6: an omitted scope is treated as equal to the scope originally granted."""
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack), scope="PRODUCTION SANDBOX")
    t1 = refresh(stack, c, t0["refresh_token"], scope="SANDBOX").json()
    r = refresh(stack, c, t1["refresh_token"])
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"PRODUCTION", "SANDBOX"}


def test_rfc6749_6_refresh_wider_scope_is_invalid_scope(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack), scope="PRODUCTION")
    assert_error(refresh(stack, c, t0["refresh_token"], scope="PRODUCTION SANDBOX"), 400, "invalid_scope")
    # A refused request does not consume the refresh token.
    r = refresh(stack, c, t0["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "PRODUCTION"


def test_rfc6749_6_refresh_token_bound_to_its_client(stack):
    a, b = confidential(stack), confidential(stack)
    t0 = password_token(stack, a, user(stack))
    assert_error(refresh(stack, b, t0["refresh_token"]), 400, "invalid_grant")


def test_rfc6749_5_2_unknown_refresh_token_invalid_grant(stack):
    c = confidential(stack)
    assert_error(refresh(stack, c, "not-a-refresh-token"), 400, "invalid_grant")
    assert_error(token(stack, c, grant_type="refresh_token"), 400, "invalid_request")


def test_rfc6749_6_access_token_is_not_a_refresh_token(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    assert_error(refresh(stack, c, t0["access_token"]), 400, "invalid_grant")


def test_rfc9700_4_14_2_refresh_reuse_revokes_family(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    t1 = refresh(stack, c, t0["refresh_token"]).json()
    t2 = refresh(stack, c, t1["refresh_token"]).json()
    assert introspect(stack, c, t2["access_token"])["active"] is True
    # The attacker (or the client) replays a rotated refresh token:
    assert_error(refresh(stack, c, t0["refresh_token"]), 400, "invalid_grant")
    for t in (t0, t1, t2):
        assert introspect(stack, c, t["access_token"]) == INACTIVE
    assert introspect(stack, c, t2["refresh_token"]) == INACTIVE
    assert_error(refresh(stack, c, t2["refresh_token"]), 400, "invalid_grant")


def test_rfc9700_4_14_2_parallel_refresh_exactly_one_wins(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    n = 30
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        s = stack.session()
        barrier.wait()
        try:
            r = s.post(stack.url + "/token", data={"grant_type": "refresh_token", "refresh_token": t0["refresh_token"]},
                       auth=basic(c), timeout=60)
            results[i] = (r.status_code, r.json())
        except requests.RequestException as e:  # pragma: no cover - reported below
            results[i] = (None, str(e))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 1, results
    for status, body in results:
        if status != 200:
            assert status == 400 and body["error"] == "invalid_grant", results
    # Every loser was a reuse of a rotated token: the whole family, the winner's tokens too, is revoked.
    winner = next(body for status, body in results if status == 200)
    assert introspect(stack, c, winner["access_token"]) == INACTIVE
    assert_error(refresh(stack, c, winner["refresh_token"]), 400, "invalid_grant")


@pytest.fixture(scope="module")
def grace_stack():
    s = Stack(workers=2, extra_config="refresh_grace_period = 5").start()
    try:
        yield s
    finally:
        s.stop()


def test_rfc9700_4_14_2_grace_window_previous_token_works(grace_stack):
    s = grace_stack
    c = confidential(s)
    t0 = password_token(s, c, user(s))
    r1 = refresh(s, c, t0["refresh_token"])
    assert r1.status_code == 200, r1.text
    # A retry with the immediately preceding token within the window is honoured once ...
    r2 = refresh(s, c, t0["refresh_token"])
    assert r2.status_code == 200, r2.text
    t2 = r2.json()
    assert t2["refresh_token"] != t0["refresh_token"]
    assert introspect(s, c, t2["access_token"])["active"] is True


def test_rfc9700_4_14_2_grace_window_only_once(grace_stack):
    s = grace_stack
    c = confidential(s)
    t0 = password_token(s, c, user(s))
    assert refresh(s, c, t0["refresh_token"]).status_code == 200
    assert refresh(s, c, t0["refresh_token"]).status_code == 200  # the one retry the window allows
    # A third use is reuse, not a retry.
    assert_error(refresh(s, c, t0["refresh_token"]), 400, "invalid_grant")


def test_rfc9700_4_14_2_grace_window_only_immediately_preceding(grace_stack):
    s = grace_stack
    c = confidential(s)
    t0 = password_token(s, c, user(s))
    t1 = refresh(s, c, t0["refresh_token"]).json()
    t2 = refresh(s, c, t1["refresh_token"]).json()
    assert "refresh_token" in t2
    # t0 is two generations back: reuse, refused.
    assert_error(refresh(s, c, t0["refresh_token"]), 400, "invalid_grant")


def test_rfc9700_4_14_2_grace_window_expires(grace_stack):
    s = grace_stack
    c = confidential(s)
    t0 = password_token(s, c, user(s))
    t1 = refresh(s, c, t0["refresh_token"]).json()
    assert "refresh_token" in t1
    time.sleep(6.1)
    assert_error(refresh(s, c, t0["refresh_token"]), 400, "invalid_grant")
    # Outside the window it is reuse: the family is gone.
    assert introspect(s, c, t1["access_token"]) == INACTIVE


def test_rfc9700_4_14_2_no_grace_by_default(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    assert refresh(stack, c, t0["refresh_token"]).status_code == 200
    assert_error(refresh(stack, c, t0["refresh_token"]), 400, "invalid_grant")


# -- revocation (RFC 7009) ------------------------------------------------------------------
def test_rfc7009_2_2_unknown_token_200(stack):
    c = confidential(stack)
    r = revoke(stack, c, "no-such-token-" + uuid.uuid4().hex)
    assert r.status_code == 200, r.text
    r = revoke(stack, c, "no-such-token", token_type_hint="refresh_token")
    assert r.status_code == 200, r.text


def test_rfc7009_2_1_revoke_access_token(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    assert revoke(stack, c, t["access_token"]).status_code == 200
    assert introspect(stack, c, t["access_token"]) == INACTIVE
    # Revoking again: still 200.
    assert revoke(stack, c, t["access_token"]).status_code == 200


def test_rfc7009_2_1_other_clients_token_200_and_still_active(stack):
    owner, other = confidential(stack), confidential(stack)
    t = password_token(stack, owner, user(stack))
    for tok in (t["access_token"], t["refresh_token"]):
        r = revoke(stack, other, tok)
        assert r.status_code == 200, r.text
    assert introspect(stack, owner, t["access_token"])["active"] is True
    assert introspect(stack, owner, t["refresh_token"])["active"] is True


def test_rfc7009_2_1_refresh_token_revokes_family(stack):
    c = confidential(stack)
    t0 = password_token(stack, c, user(stack))
    t1 = refresh(stack, c, t0["refresh_token"]).json()
    assert revoke(stack, c, t1["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert introspect(stack, c, t1["access_token"]) == INACTIVE
    assert introspect(stack, c, t0["access_token"]) == INACTIVE
    assert_error(refresh(stack, c, t1["refresh_token"]), 400, "invalid_grant")


def test_rfc7009_2_1_wrong_token_type_hint_still_revokes(stack):
    c = confidential(stack)
    t = password_token(stack, c, user(stack))
    assert revoke(stack, c, t["access_token"], token_type_hint="refresh_token").status_code == 200
    assert introspect(stack, c, t["access_token"]) == INACTIVE
    t = password_token(stack, c, user(stack))
    assert revoke(stack, c, t["refresh_token"], token_type_hint="access_token").status_code == 200
    assert_error(refresh(stack, c, t["refresh_token"]), 400, "invalid_grant")


def test_rfc7009_2_1_client_authentication_required(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    r = stack.post("/revoke", data={"token": t["access_token"]}, auth=(c["client_id"], "wrong"))
    assert_error(r, 401, "invalid_client")
    r = stack.post("/revoke", data={"token": t["access_token"]})
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"
    assert introspect(stack, c, t["access_token"])["active"] is True


def test_rfc7009_2_1_missing_token_invalid_request(stack):
    c = confidential(stack)
    r = stack.post("/revoke", data={"token_type_hint": "access_token"}, auth=basic(c))
    assert_error(r, 400, "invalid_request")


# -- introspection (RFC 7662) -----------------------------------------------------------------
def test_rfc7662_2_2_active_access_token_all_fields(stack):
    c = confidential(stack)
    u = user(stack)
    before = int(time.time())
    t = password_token(stack, c, u, scope="PRODUCTION")
    after = int(time.time())
    body = introspect(stack, c, t["access_token"])
    assert body["active"] is True
    assert body["scope"] == "PRODUCTION"
    assert body["client_id"] == c["client_id"]
    assert body["username"] == u
    assert body["sub"] == subject(stack, u)  # the OpenID Connect subject, not the username
    assert body["token_type"] == "Bearer"
    assert body["aud"] == c["client_id"]
    assert body["iss"] == stack.url
    for k in ("exp", "iat", "nbf"):
        assert isinstance(body[k], int), body
    assert before - 1 <= body["iat"] <= after + 1
    assert body["nbf"] <= body["iat"] + 1
    assert body["exp"] - body["iat"] == 3600


def test_rfc7662_2_2_refresh_token_type(stack):
    c = confidential(stack)
    u = user(stack)
    t = password_token(stack, c, u)
    body = introspect(stack, c, t["refresh_token"], token_type_hint="refresh_token")
    assert body["active"] is True
    assert body["token_type"] == "Refresh"
    assert body["sub"] == subject(stack, u)  # the OpenID Connect subject, not the username
    assert body["client_id"] == c["client_id"]
    assert body["exp"] > body["iat"] + 3600


def test_rfc7662_2_2_client_credentials_sub_is_client_id(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    body = introspect(stack, c, t["access_token"])
    assert body["active"] is True
    assert body["sub"] == c["client_id"]
    assert body["client_id"] == c["client_id"]
    assert body["aud"] == c["client_id"]
    assert body["token_type"] == "Bearer"


def test_rfc7662_2_1_wrong_hint_still_found(stack):
    c = confidential(stack)
    t = password_token(stack, c, user(stack))
    assert introspect(stack, c, t["access_token"], token_type_hint="refresh_token")["token_type"] == "Bearer"
    assert introspect(stack, c, t["refresh_token"], token_type_hint="access_token")["token_type"] == "Refresh"


def test_rfc7662_2_2_inactive_exact_body(stack):
    c = confidential(stack)
    r = stack.post("/introspect", data={"token": "unknown-" + uuid.uuid4().hex}, auth=basic(c))
    assert r.status_code == 200
    assert r.json() == INACTIVE
    t = cc_token(stack, c)
    revoke(stack, c, t["access_token"])
    assert introspect(stack, c, t["access_token"]) == INACTIVE


def test_rfc7662_2_1_other_clients_token_invisible(stack):
    owner, other = confidential(stack), confidential(stack)
    t = password_token(stack, owner, user(stack))
    assert introspect(stack, other, t["access_token"]) == INACTIVE
    assert introspect(stack, other, t["refresh_token"]) == INACTIVE
    assert introspect(stack, owner, t["access_token"])["active"] is True


def test_rfc7662_2_1_resource_server_sees_any(stack, rs):
    owner = confidential(stack)
    u = user(stack)
    t = password_token(stack, owner, u)
    body = introspect(stack, rs, t["access_token"])
    assert body["active"] is True
    assert body["client_id"] == owner["client_id"]
    assert body["sub"] == subject(stack, u)  # the OpenID Connect subject, not the username


def test_rfc7662_2_1_public_client_refused(stack):
    p = stack.add_client("--name", uniq("pub"), "--public", "--redirect-uri", REDIRECT)
    c = confidential(stack)
    t = cc_token(stack, c)
    r = stack.post("/introspect", data={"token": t["access_token"], "client_id": p["client_id"]})
    assert_error(r, 400, "invalid_client")  # DESIGN.md: 401 + challenge only when Basic was used


def test_rfc7662_2_1_authentication_required(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    r = stack.post("/introspect", data={"token": t["access_token"]})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert "active" not in r.json()
    r = stack.post("/introspect", data={"token": t["access_token"]}, auth=(c["client_id"], "wrong"))
    assert_error(r, 401, "invalid_client")
    assert "WWW-Authenticate" in r.headers


def test_rfc7662_2_1_missing_token_invalid_request(stack):
    c = confidential(stack)
    assert_error(stack.post("/introspect", data={}, auth=basic(c)), 400, "invalid_request")


# -- metadata (RFC 8414) ----------------------------------------------------------------------
def test_rfc8414_3_2_metadata(stack):
    r = stack.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    m = r.json()
    assert m["issuer"] == stack.url
    assert m["authorization_endpoint"] == stack.url + "/authorize"
    assert m["token_endpoint"] == stack.url + "/token"
    assert m["revocation_endpoint"] == stack.url + "/revoke"
    assert m["introspection_endpoint"] == stack.url + "/introspect"
    assert set(m["grant_types_supported"]) >= {"authorization_code", "refresh_token", "client_credentials", "password"}
    assert "code" in m["response_types_supported"]
    assert set(m["token_endpoint_auth_methods_supported"]) >= {"client_secret_basic", "client_secret_post"}
    assert "S256" in m["code_challenge_methods_supported"]
    assert "PRODUCTION" in m["scopes_supported"]
    assert m["authorization_response_iss_parameter_supported"] is True
    # The advertised endpoints answer.
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = urllib.parse.urlsplit(m[key]).path
        assert stack.post(path, data={}).status_code in (400, 401)


# -- operator CLI -----------------------------------------------------------------------------
def test_cli_token_revoke_client(stack, rs):
    a, b = confidential(stack), confidential(stack)
    u = user(stack)
    ta, tb = password_token(stack, a, u), password_token(stack, b, u)
    ca = cc_token(stack, a)
    stack.cli("token", "revoke", "--client", a["client_id"])
    assert introspect(stack, rs, ta["access_token"]) == INACTIVE
    assert introspect(stack, rs, ta["refresh_token"]) == INACTIVE
    assert introspect(stack, rs, ca["access_token"]) == INACTIVE
    assert_error(refresh(stack, a, ta["refresh_token"]), 400, "invalid_grant")
    assert introspect(stack, rs, tb["access_token"])["active"] is True
    # The client itself still works: new tokens can be issued.
    assert introspect(stack, rs, cc_token(stack, a)["access_token"])["active"] is True


def test_cli_token_revoke_user(stack, rs):
    c = confidential(stack)
    u, other = user(stack), user(stack)
    t1, t2, to = password_token(stack, c, u), password_token(stack, c, u), password_token(stack, c, other)
    stack.cli("token", "revoke", "--user", u)
    for t in (t1, t2):
        assert introspect(stack, rs, t["access_token"]) == INACTIVE
        assert_error(refresh(stack, c, t["refresh_token"]), 400, "invalid_grant")
    assert introspect(stack, rs, to["access_token"])["active"] is True


def test_cli_token_revoke_unknown_fails(stack):
    r = stack.cli("token", "revoke", "--client", uniq("nope"), check=False)
    r2 = stack.cli("token", "revoke", "--user", uniq("nope"), check=False)
    assert r.returncode != 0 and r.stderr.strip()
    assert r2.returncode != 0 and r2.stderr.strip()


def test_cli_user_disable_stops_tokens(stack, rs):
    c = confidential(stack)
    u = user(stack)
    t = password_token(stack, c, u)
    assert introspect(stack, rs, t["access_token"])["active"] is True
    stack.cli("user", "disable", u)
    assert introspect(stack, rs, t["access_token"]) == INACTIVE
    assert_error(refresh(stack, c, t["refresh_token"]), 400, "invalid_grant")
    assert_error(token(stack, c, grant_type="password", username=u, password=PASSWORD), 400, "invalid_grant")


def _count(stack, table):
    return int(stack.sql(f"SELECT count(*) FROM {table}"))


def test_cli_purge_prints_counts(stack):
    r = stack.cli("purge")
    assert r.returncode == 0
    lines = dict(line.split(":", 1) for line in r.stdout.strip().splitlines())
    for table in ("codes", "tokens", "sessions"):
        assert table in lines, r.stdout
        assert lines[table].split()[0].isdigit(), r.stdout


def test_cli_purge_deletes_expired_tokens():
    s = Stack(workers=2, extra_config="access_token_lifetime = 1").start()
    try:
        c = confidential(s)
        t = cc_token(s, c)
        assert t["expires_in"] == 1
        for _ in range(4):
            cc_token(s, c)
        assert _count(s, "tokens") == 5
        time.sleep(2.2)
        assert introspect(s, c, t["access_token"]) == INACTIVE  # expired
        r = s.cli("purge")
        lines = dict(line.split(":", 1) for line in r.stdout.strip().splitlines())
        assert lines["tokens"].split()[0] == "5", r.stdout
        assert _count(s, "tokens") == 0
        # (That live tokens survive a purge is a unit test: with a 1 s lifetime here it would be a race.)
    finally:
        s.stop()


# -- interop: third-party client libraries ----------------------------------------------------
def test_interop_authlib_client_credentials_and_refresh(stack):
    from authlib.integrations.requests_client import OAuth2Session

    c = confidential(stack)
    u = user(stack)
    s = OAuth2Session(c["client_id"], c["client_secret"], token_endpoint_auth_method="client_secret_basic")
    s.trust_env = False
    s.verify = stack.ca
    tok = s.fetch_token(stack.url + "/token", grant_type="client_credentials")
    assert tok["token_type"] == "Bearer" and "refresh_token" not in tok

    s = OAuth2Session(c["client_id"], c["client_secret"], scope="PRODUCTION",
                      token_endpoint_auth_method="client_secret_post")
    s.trust_env = False
    s.verify = stack.ca
    first = s.fetch_token(stack.url + "/token", username=u, password=PASSWORD)
    assert first["scope"] == "PRODUCTION"
    second = s.refresh_token(stack.url + "/token")
    assert second["refresh_token"] != first["refresh_token"]
    assert s.token["access_token"] == second["access_token"]
    assert introspect(stack, c, second["access_token"])["active"] is True


def test_interop_requests_oauthlib_backend_application(stack):
    from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
    from requests_oauthlib import OAuth2Session

    c = confidential(stack)
    s = OAuth2Session(client=BackendApplicationClient(client_id=c["client_id"]))
    s.trust_env = False
    tok = s.fetch_token(token_url=stack.url + "/token", client_id=c["client_id"],
                        client_secret=c["client_secret"], verify=stack.ca)
    assert tok["token_type"] == "Bearer"
    assert introspect(stack, c, tok["access_token"])["sub"] == c["client_id"]

    u = user(stack)
    s = OAuth2Session(client=LegacyApplicationClient(client_id=c["client_id"]))
    s.trust_env = False
    tok = s.fetch_token(token_url=stack.url + "/token", username=u, password=PASSWORD,
                        client_id=c["client_id"], client_secret=c["client_secret"], verify=stack.ca)
    assert "refresh_token" in tok
    new = s.refresh_token(stack.url + "/token", auth=basic(c), verify=stack.ca)
    assert new["refresh_token"] != tok["refresh_token"]
