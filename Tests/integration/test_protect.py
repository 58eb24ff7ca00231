"""API protection through nginx auth_request (RFC 6750), black box: the instance's nginx
protects /example/api/ with nginx/gatehouse-protect.conf in front of an upstream that echoes
the X-Gatehouse-Subject/-Client/-Scope headers it received."""
import re
import time
import uuid

import pytest

from conftest import PASSWORD, Stack

API = "/example/api/things"
REDIRECT = "https://app.example/cb"
GRANTS = "authorization_code,refresh_token,client_credentials,password"


# -- helpers -------------------------------------------------------------------------------
def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def confidential(stack, scope="PRODUCTION SANDBOX"):
    return stack.add_client("--name", uniq("client"), "--redirect-uri", REDIRECT, "--grant-types", GRANTS,
                            "--scope", scope)


def basic(client):
    return (client["client_id"], client["client_secret"])


def issue(stack, client, **data):
    r = stack.post("/token", data=data, auth=basic(client))
    assert r.status_code == 200, r.text
    return r.json()


def cc_token(stack, client, **data):
    return issue(stack, client, grant_type="client_credentials", **data)


def password_token(stack, client, username, **data):
    return issue(stack, client, grant_type="password", username=username, password=PASSWORD, **data)


def user(stack):
    name = uniq("user")
    stack.add_user(name)
    return name


def subject_of(stack, client, tokens):
    """The subject /introspect names for the token's user (a UUID, not the username)."""
    r = stack.post("/introspect", data={"token": tokens["access_token"]}, auth=basic(client))
    assert r.status_code == 200 and r.json()["active"], r.text
    return r.json()["sub"]


def call(stack, authorization=None, path=API, method="GET", **kw):
    headers = dict(kw.pop("headers", {}))
    if authorization is not None:
        headers["Authorization"] = authorization
    return getattr(stack, method.lower())(path, headers=headers, **kw)


def bearer(tok):
    return "Bearer " + tok


def challenges(r):
    """Every WWW-Authenticate header field, unmerged."""
    return r.raw.headers.getlist("WWW-Authenticate")


def challenge_params(value):
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', value))


def one_challenge(r):
    ch = challenges(r)
    assert len(ch) == 1, ch
    return challenge_params(ch[0])


def assert_ok(r):
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def assert_invalid_token(r):
    assert r.status_code == 401, (r.status_code, r.text)
    params = one_challenge(r)
    assert params.get("realm") == "gatehouse"
    assert params.get("error") == "invalid_token", params
    assert "message" not in r.text  # the upstream was not reached


# -- tests -----------------------------------------------------------------------------------
def test_rfc6750_3_no_credentials_401_bare_challenge(stack):
    r = call(stack)
    assert r.status_code == 401, r.text
    # §3: a request without authentication information gets no error code.
    assert challenges(r) == ['Bearer realm="gatehouse"']
    assert "message" not in r.text


@pytest.mark.parametrize("authorization", [
    "Bearer",
    "Bearer a b",
    "Basic xyz",
    "Basic " + "dXNlcjpwYXNz",
    "Bearer abc$def",
    "Bearer abc,def",
    "Bearer ab=cd",       # '=' only as trailing padding in b64token
    "Bearer \"quoted\"",
    "Token abc",
])
def test_rfc6750_3_1_malformed_authorization_400(stack, authorization):
    r = call(stack, authorization)
    assert r.status_code == 400, (authorization, r.status_code, r.text)
    params = one_challenge(r)
    assert params.get("error") == "invalid_request", params
    assert r.json()["error"] == "invalid_request"
    assert "message" not in r.text


@pytest.mark.parametrize("tok", ["unknown" + "x" * 30, "a-b.c_d~e+f/g==", "A" * 4000])
def test_rfc6750_3_1_unknown_token_401_invalid_token(stack, tok):
    r = call(stack, bearer(tok))
    assert_invalid_token(r)
    assert r.json()["error"] == "invalid_token"


def test_rfc6750_3_1_expired_token_401():
    s = Stack(workers=2, extra_config="access_token_lifetime = 1").start()
    try:
        c = confidential(s)
        t = cc_token(s, c)
        assert_ok(call(s, bearer(t["access_token"])))
        time.sleep(2.2)
        assert_invalid_token(call(s, bearer(t["access_token"])))
    finally:
        s.stop()


def test_rfc7009_revocation_is_immediate_at_the_api(stack):
    c = confidential(stack)
    t = password_token(stack, c, user(stack))
    assert_ok(call(stack, bearer(t["access_token"])))
    r = stack.post("/revoke", data={"token": t["access_token"]}, auth=basic(c))
    assert r.status_code == 200
    assert_invalid_token(call(stack, bearer(t["access_token"])))


def test_rfc7009_revoked_refresh_token_kills_family_at_the_api(stack):
    c = confidential(stack)
    t = password_token(stack, c, user(stack))
    assert_ok(call(stack, bearer(t["access_token"])))
    assert stack.post("/revoke", data={"token": t["refresh_token"]}, auth=basic(c)).status_code == 200
    assert_invalid_token(call(stack, bearer(t["access_token"])))


def test_rfc6750_3_1_refresh_token_is_not_an_access_token(stack):
    c = confidential(stack)
    t = password_token(stack, c, user(stack))
    assert_invalid_token(call(stack, bearer(t["refresh_token"])))


def test_rfc6750_2_1_valid_token_upstream_sees_identity(stack):
    c = confidential(stack)
    u = user(stack)
    t = password_token(stack, c, u, scope="PRODUCTION")
    body = assert_ok(call(stack, bearer(t["access_token"])))
    assert body["message"]
    assert body["subject"] == subject_of(stack, c, t) and body["subject"] != u
    assert body["username"] == u
    assert body["client"] == c["client_id"]
    assert body["scope"] == "PRODUCTION"
    assert challenges(call(stack, bearer(t["access_token"]))) == []


def test_rfc6750_2_1_client_credentials_token_subject(stack):
    c = confidential(stack)
    t = cc_token(stack, c, scope="SANDBOX")
    body = assert_ok(call(stack, bearer(t["access_token"])))
    assert body["client"] == c["client_id"]
    assert body["scope"] == "SANDBOX"
    assert body["subject"] == c["client_id"]  # no user: the client itself
    assert body["username"] == ""


def test_rfc6750_2_1_forged_identity_headers_are_replaced(stack):
    c = confidential(stack)
    u = user(stack)
    forged = {"X-Gatehouse-Subject": "admin", "X-Gatehouse-Username": "admin", "X-Gatehouse-Client": "root-client",
              "X-Gatehouse-Scope": "ADMIN"}
    t = password_token(stack, c, u, scope="PRODUCTION")
    body = assert_ok(call(stack, bearer(t["access_token"]), headers=forged))
    assert (body["subject"], body["username"], body["client"], body["scope"]) == (
        subject_of(stack, c, t), u, c["client_id"], "PRODUCTION")
    t = cc_token(stack, c)
    body = assert_ok(call(stack, bearer(t["access_token"]), headers=forged))
    assert (body["subject"], body["username"]) == (c["client_id"], "")
    assert body["client"] == c["client_id"]
    assert "ADMIN" not in body["scope"]
    # Forged headers alone do not get in.
    r = call(stack, headers=forged)
    assert r.status_code == 401
    assert "admin" not in r.text


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_rfc6750_2_1_scheme_is_case_insensitive(stack, scheme):
    c = confidential(stack)
    t = cc_token(stack, c)
    assert assert_ok(call(stack, f"{scheme} {t['access_token']}"))["client"] == c["client_id"]


def test_rfc6750_2_1_several_spaces_after_scheme(stack):
    """credentials = "Bearer" 1*SP b64token"""
    c = confidential(stack)
    t = cc_token(stack, c)
    assert_ok(call(stack, "Bearer  " + t["access_token"]))


def test_rfc6750_2_3_query_parameter_not_accepted(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    r = call(stack, path=API + "?access_token=" + t["access_token"])
    assert r.status_code == 401, r.text
    assert "message" not in r.text


def test_rfc6750_2_2_form_body_not_accepted(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    r = call(stack, method="POST", data={"access_token": t["access_token"]})
    assert r.status_code == 401, r.text
    assert "message" not in r.text


def test_rfc6750_2_1_post_with_body_passes(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    r = call(stack, bearer(t["access_token"]), method="POST", data={"payload": "x" * 2000})
    assert assert_ok(r)["client"] == c["client_id"]


def test_validate_location_is_internal(stack):
    c = confidential(stack)
    t = cc_token(stack, c)
    for path in ("/_gatehouse/validate", "/_gatehouse/validate?x=1"):
        r = stack.get(path, headers={"Authorization": bearer(t["access_token"])})
        assert r.status_code == 404, r.text
        assert "X-Gatehouse-Subject" not in r.headers


def test_cli_operator_actions_apply_at_the_api(stack):
    a, b = confidential(stack), confidential(stack)
    u, v = user(stack), user(stack)
    ta, tb, tv = password_token(stack, a, u), password_token(stack, b, u), password_token(stack, b, v)
    for t in (ta, tb, tv):
        assert_ok(call(stack, bearer(t["access_token"])))
    stack.cli("token", "revoke", "--client", a["client_id"])
    assert_invalid_token(call(stack, bearer(ta["access_token"])))
    assert_ok(call(stack, bearer(tb["access_token"])))
    stack.cli("user", "disable", u)
    assert_invalid_token(call(stack, bearer(tb["access_token"])))
    assert_ok(call(stack, bearer(tv["access_token"])))
    stack.cli("token", "revoke", "--user", v)
    assert_invalid_token(call(stack, bearer(tv["access_token"])))
    c = confidential(stack)
    tc = cc_token(stack, c)
    assert_ok(call(stack, bearer(tc["access_token"])))
    stack.cli("client", "remove", c["client_id"])
    assert_invalid_token(call(stack, bearer(tc["access_token"])))


# -- required scope (GATEHOUSE_EXAMPLE_SCOPE=SANDBOX at render time) ---------------------------
@pytest.fixture(scope="module")
def scoped_stack():
    s = Stack(workers=2)
    s.env["GATEHOUSE_EXAMPLE_SCOPE"] = "SANDBOX"  # read by render_nginx, which runs with s.env
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_rfc6750_3_1_insufficient_scope_403(scoped_stack):
    s = scoped_stack
    c = confidential(s)
    t = cc_token(s, c, scope="PRODUCTION")
    r = call(s, bearer(t["access_token"]))
    assert r.status_code == 403, (r.status_code, r.text)
    params = one_challenge(r)
    assert params.get("realm") == "gatehouse"
    assert params.get("error") == "insufficient_scope", params
    assert params.get("scope") == "SANDBOX", params
    assert r.json()["error"] == "insufficient_scope"
    assert "message" not in r.text


def test_rfc6750_3_1_required_scope_present_200(scoped_stack):
    s = scoped_stack
    c = confidential(s)
    u = user(s)
    for scope in ("SANDBOX", "PRODUCTION SANDBOX"):
        t = password_token(s, c, u, scope=scope)
        body = assert_ok(call(s, bearer(t["access_token"])))
        assert body["username"] == u
        assert set(body["scope"].split()) == set(scope.split())


def test_rfc6750_3_1_scoped_location_still_401_without_token(scoped_stack):
    s = scoped_stack
    r = call(s)
    assert r.status_code == 401
    assert challenges(r) == ['Bearer realm="gatehouse"']
    assert_invalid_token(call(s, bearer("unknown-token-" + uuid.uuid4().hex)))
