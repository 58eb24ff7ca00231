"""SECURITY-CHECKLIST.md §1 (normative items as black-box tests) and §3 (real-world
vulnerabilities): the items the other integration files do not already cover. Each test is
named after its checklist item ("cl<N>") and the RFC section behind it. Tests that document
a server deviation are marked xfail(strict=True) with the reason."""
import base64
import os
import re
import stat
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import PASSWORD, Stack, query_of
from oauth_flow import (ALL_GRANTS, CB, CHALLENGE, COOKIE, INACTIVE, VERIFIER, Browser, auth_params, basic,
                        hidden_inputs, is_consent_page, is_login_page, uniq)


# -- helpers -------------------------------------------------------------------------------

def get_code(browser, client, user, **params):
    p = auth_params(client, **params)
    r = browser.authorize(p)
    if r.status_code not in (302, 303):
        r = browser.approve(r, user)
    q = query_of(r.headers["Location"])
    assert "code" in q, r.headers["Location"]
    return q["code"]


def exchange(stack, client, code, redirect_uri=CB, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **extra}
    if client.get("client_secret"):
        return stack.post("/token", data=data, auth=basic(client))
    data.setdefault("client_id", client["client_id"])
    return stack.post("/token", data=data)


def token(stack, client, **data):
    return stack.post("/token", data=data, auth=basic(client))


def refresh(stack, client, rt, **data):
    return token(stack, client, grant_type="refresh_token", refresh_token=rt, **data)


def password_token(stack, client, username, password=PASSWORD, **data):
    r = token(stack, client, grant_type="password", username=username, password=password, **data)
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r, status, *errors):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json()["error"] in errors, r.text


def assert_error_page(r):
    """RFC 6749 §3.1.2.4 / §4.1.2.1: an HTML page for the user, never a redirect."""
    assert r.status_code == 400, (r.status_code, r.headers.get("Location"), r.text[:200])
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


def introspect(stack, caller, tok):
    r = stack.post("/introspect", data={"token": tok}, auth=basic(caller))
    assert r.status_code == 200, r.text
    return r.json()


def confidential(stack, grants=ALL_GRANTS, scope="PRODUCTION SANDBOX", redirect=CB, *extra):
    return stack.add_client("--name", uniq("cl"), "--redirect-uri", redirect, "--grant-types", grants,
                            "--scope", scope, *extra)


def new_user(stack):
    name = uniq("u")
    stack.add_user(name)
    return name


def started(extra_config):
    return Stack(workers=2, extra_config=extra_config).start()


# -- shared fixtures on the session stack ----------------------------------------------------

@pytest.fixture(scope="module")
def rs(stack):
    return stack.add_client("--name", uniq("rs"), "--grant-types", "client_credentials", "--resource-server")


@pytest.fixture(scope="module")
def web(stack):
    """One confidential client, one user, a browser logged in with consent remembered:
    later codes come from a single GET, without PBKDF2 or forms."""
    c = confidential(stack)
    u = new_user(stack)
    b = Browser(stack)
    get_code(b, c, u, scope="PRODUCTION")
    return {"client": c, "user": u, "browser": b}


def quick_code(web, **params):
    params.setdefault("scope", "PRODUCTION")
    r = web["browser"].authorize(auth_params(web["client"], **params))
    assert r.status_code == 302, (r.status_code, r.text[:300])
    q = query_of(r.headers["Location"])
    assert "code" in q, r.headers["Location"]
    return q["code"]


# == 1.1 /authorize: client and redirect_uri validation ========================================

@pytest.fixture(scope="module")
def cb_client(stack):
    return stack.add_client("--name", uniq("cb"), "--redirect-uri", CB)


# Raw query values (already percent-encoded as sent on the wire).
MORE_BAD_REDIRECTS = {
    "dotdot-semicolon": "https%3A%2F%2Fclient.example.com%2Fcb%2F..%3B%2Fevil",          # CVE-2026-3872 `..;/`
    "encoded-dotdot-literal": "https%3A%2F%2Fclient.example.com%2Fcb%2F%252E%252E%2Fevil",  # server sees %2E%2E
    "raw-encoded-dotdot": "https://client.example.com/cb/%2E%2E/cb",                      # decodes to /cb/../cb
    "trailing-question-mark": "https%3A%2F%2Fclient.example.com%2Fcb%3F",
    "trailing-dot-host": "https%3A%2F%2Fclient.example.com.%2Fcb",
    "backslash-userinfo": "https%3A%2F%2Fclient.example.com%5C%40evil.example%2Fcb",
    "encoded-at-in-host": "https%3A%2F%2Fclient.example.com%2540evil.example%2Fcb",
    "double-userinfo": "https%3A%2F%2Fclient.example.com%40client.example.com%40evil.example%2Fcb",  # CVE-2026-7504
    "nul-byte": "https%3A%2F%2Fclient.example.com%2Fcb%00",
    "tab": "https%3A%2F%2Fclient.example.com%2Fcb%09",
    "crlf": "https%3A%2F%2Fclient.example.com%2Fcb%0D%0ALocation%3A%20https%3A%2F%2Fevil.example",
    "path-params": "https%3A%2F%2Fclient.example.com%2Fcb%3Bx%3D1",
    "double-slash-path": "https%3A%2F%2Fclient.example.com%2F%2Fcb",
    "encoded-fragment": "https%3A%2F%2Fclient.example.com%2Fcb%2523x",
    "unicode-host": "https%3A%2F%2Fclient.ex%C3%A4mple.com%2Fcb",
}


@pytest.mark.parametrize("raw", list(MORE_BAD_REDIRECTS.values()), ids=list(MORE_BAD_REDIRECTS))
def test_cl3_rfc9700_2_1_exact_match_more_vectors_get_error_page(stack, cb_client, raw):
    q = f"response_type=code&client_id={cb_client['client_id']}&redirect_uri={raw}&state=s"
    assert_error_page(Browser(stack).get_raw(q))


def test_cl3_rfc9700_2_1_registered_query_must_match_exactly_including_order(stack):
    reg = "https://client.example.com/cb?a=1&b=2"
    c = stack.add_client("--name", uniq("q"), "--redirect-uri", reg)
    for other in ("https://client.example.com/cb?b=2&a=1", "https://client.example.com/cb?a=1",
                  "https://client.example.com/cb?a=1&b=2&c=3", "https://client.example.com/cb?a=1&b=2&a=1",
                  "https://client.example.com/cb?a=1&b=2&code=x", "https://client.example.com/cb"):
        assert_error_page(Browser(stack).authorize(auth_params(c, redirect_uri=other)))
    ok = Browser(stack).authorize(auth_params(c, redirect_uri=reg))
    assert ok.status_code == 200 and is_login_page(ok), ok.status_code


def test_cl4_rfc8252_7_3_ipv6_loopback_any_port_rest_exact(stack):
    c = stack.add_client("--name", uniq("v6"), "--redirect-uri", "http://[::1]/cb")
    ok = Browser(stack).authorize(auth_params(c, redirect_uri="http://[::1]:4711/cb"))
    assert ok.status_code == 200 and is_login_page(ok), (ok.status_code, ok.headers.get("Location"))
    for bad in ("http://[::1]:4711/other", "http://[::1]:4711/cb?x=1", "http://[::1]:4711@evil.example/cb",
                "http://[::2]:4711/cb", "https://[::1]:4711/cb", "http://localhost:4711/cb",
                "http://[::1]:47a1/cb", "http://127.0.0.1:4711/cb"):
        assert_error_page(Browser(stack).authorize(auth_params(c, redirect_uri=bad)))


def test_cl4_keycloak_cve_2024_8883_localhost_userinfo_is_refused(stack):
    c = stack.add_client("--name", uniq("lo"), "--redirect-uri", "http://127.0.0.1/cb")
    for bad in ("http://localhost:80@evil.example/cb", "http://127.0.0.1:80@evil.example/cb",
                "http://127.0.0.1@evil.example/cb", "http://evil.example@127.0.0.1/cb"):
        assert_error_page(Browser(stack).authorize(auth_params(c, redirect_uri=bad)))


@pytest.mark.parametrize("uri", [
    "/cb", "cb", "//client.example.com/cb",                                     # relative (Keycloak testRelativeUri)
    "file:///etc/passwd", "data:text/html,<script>alert(1)</script>",
    "javascript:alert(1)", "JavaScript:alert(1)", "JAVASCRIPT:alert(1)",        # CVE-2026-9086
    "http://client.example.com/cb",                                             # RFC 9700 §2.6
    "https://client.example.com/cb?code=x", "https://client.example.com/cb?state=x",
    "https://client.example.com/cb?iss=x",                                      # CVE-2026-9689
    "https://client.example.com/cb#",                                           # empty fragment
    "https://user@client.example.com/cb",
])
def test_cl7_rfc6749_3_1_2_registration_refuses_bad_redirect_uris(stack, uri):
    r = stack.cli("client", "add", "--json", "--name", uniq("reg"), "--redirect-uri", uri, check=False)
    assert r.returncode != 0, (uri, r.stdout)
    assert r.stdout == "" and r.stderr.startswith("gatehouse: error:"), r.stderr


# == 1.2 /authorize: errors after validation ==================================================

def test_cl15_rfc6749_3_1_empty_state_is_omitted_state(stack, cb_client, web):
    # Error redirect: state= behaves as no state.
    r = Browser(stack).authorize({"response_type": "token", "client_id": cb_client["client_id"],
                                  "redirect_uri": CB, "state": ""})
    assert r.status_code == 302, r.status_code
    q = query_of(r.headers["Location"])
    assert q["error"] == "unsupported_response_type" and "state" not in q and q["iss"] == stack.url
    # Success redirect: likewise.
    r = web["browser"].authorize(auth_params(web["client"], state="", scope="PRODUCTION"))
    assert r.status_code == 302
    q = query_of(r.headers["Location"])
    assert "code" in q and "state" not in q, r.headers["Location"]


def test_cl16_rfc6749_3_1_unknown_parameters_are_ignored(stack, web):
    code = quick_code(web, foo="bar", x_custom="<b>\"'&", nonce_like=uuid.uuid4().hex)
    r = exchange(stack, web["client"], code)
    assert r.status_code == 200, r.text
    # On a login page they are carried as hidden fields, escaped.
    page = Browser(stack).authorize(auth_params(web["client"], x_custom='"><script>alert(1)</script>'))
    assert is_login_page(page) and "<script>alert(1)" not in page.text


def test_cl20_rfc6749_5_2_token_error_description_charset_with_hostile_input(stack, rs):
    for gt in ('x"\\\r\n\t\u00e9\u0000', "a" * 300 + '"'):
        r = stack.post("/token", data={"grant_type": gt}, auth=basic(rs))
        assert_error(r, 400, "unsupported_grant_type")
        desc = r.json().get("error_description", "")
        assert all(0x20 <= ord(ch) <= 0x7E and ch not in '"\\' for ch in desc), repr(desc)
    r = stack.post("/token", data={"grant_type": "client_credentials", "scope": 'A"B\\C'}, auth=basic(rs))
    assert_error(r, 400, "invalid_scope")
    desc = r.json().get("error_description", "")
    assert all(0x20 <= ord(ch) <= 0x7E and ch not in '"\\' for ch in desc), repr(desc)


# == 1.3 success, login and consent UI hardening =================================================

def test_cl25_rfc6749_4_1_2_code_lifetime_above_10_minutes_is_refused_by_config():
    s = Stack(workers=1, extra_config="code_lifetime = 601")
    r = s.cli("check-config", check=False)
    assert r.returncode != 0 and "code_lifetime" in r.stderr, (r.returncode, r.stderr)


def test_cl27_rfc6749_10_12_get_never_grants(stack, web):
    """A logged-in user, a client without remembered consent: a GET carrying the consent form's
    fields (and even the session's CSRF token) shows the consent page; no code."""
    c = confidential(stack)
    b = web["browser"]
    page = b.authorize(auth_params(c, scope="PRODUCTION"))
    assert is_consent_page(page), (page.status_code, page.headers.get("Location"))
    fields = hidden_inputs(page.text)
    p = auth_params(c, scope="PRODUCTION", step="consent", decision="allow", csrf=fields["csrf"],
                    authz=fields["authz"])
    r = b.authorize(p)
    assert r.status_code == 200 and is_consent_page(r), (r.status_code, r.headers.get("Location"))


def test_cl28_gitlab_444467_consent_buttons_have_no_predictable_id(stack, web):
    c = confidential(stack)
    page = web["browser"].authorize(auth_params(c, scope="PRODUCTION"))
    assert is_consent_page(page)
    buttons = re.findall(r"<button\b[^>]*>", page.text)
    assert buttons and all(" id=" not in b for b in buttons), buttons


def test_cl29_rfc9700_4_2_4_pages_load_no_third_party_resources(stack, web):
    c = confidential(stack)
    pages = [Browser(stack).authorize(auth_params(c)),                       # login
             web["browser"].authorize(auth_params(c, scope="PRODUCTION")),   # consent
             Browser(stack).authorize({"client_id": "nope"})]                 # error
    assert is_login_page(pages[0]) and is_consent_page(pages[1]) and pages[2].status_code == 400
    for p in pages:
        assert "default-src 'none'" in p.headers["Content-Security-Policy"]
        refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', p.text, re.I)
        assert not [u for u in refs if re.match(r"(?i)(https?:)?//", u)], refs
        assert "@import" not in p.text and "url(" not in p.text


def test_cl31_cwe_384_planted_session_cookie_is_not_adopted(stack, cb_client):
    s = stack.session()
    s.cookies.set(COOKIE, "attacker-chosen-session-id", domain="127.0.0.1", path="/")
    r = s.get(stack.url + "/authorize", params=auth_params(cb_client), allow_redirects=False)
    assert is_login_page(r)
    set_cookie = r.headers.get("Set-Cookie", "")
    assert set_cookie.startswith(COOKIE + "=") and "attacker-chosen-session-id" not in set_cookie, set_cookie


def test_cl34_rfc6749_10_9_plain_http_is_never_processed(stack, rs):
    url = stack.url.replace("https://", "http://")
    r = requests.post(url + "/token", data={"grant_type": "client_credentials"}, auth=basic(rs),
                      timeout=10, allow_redirects=False)
    assert r.status_code in (301, 308, 400, 403, 497), r.status_code
    assert "access_token" not in r.text
    r = requests.get(url + "/authorize", params={"client_id": rs["client_id"]}, timeout=10, allow_redirects=False)
    assert r.status_code != 200 and "csrf" not in r.text
    if r.status_code in (301, 302, 307, 308):
        assert r.headers["Location"].startswith("https://")


# -- brute force, enumeration (private stacks: lockouts must not spill into other tests) ------

@pytest.fixture(scope="module")
def throttle_stack():
    # Both workers may hash at once: these tests count failures, the hashing bound has its own.
    s = started("login_max_failures = 3\nlogin_address_max_failures = 100000\npassword_hash_workers = 2")
    try:
        yield s
    finally:
        s.stop()


def test_cl33_rfc6749_4_3_2_password_grant_failures_lock_browser_login(throttle_stack):
    s = throttle_stack
    c = confidential(s)
    u = new_user(s)
    for _ in range(3):
        assert_error(token(s, c, grant_type="password", username=u, password="guess"), 400, "invalid_grant")
    b = Browser(s)
    r = b.submit(b.authorize(auth_params(c)), username=u, password=PASSWORD)
    assert r.status_code == 401 and is_login_page(r), (r.status_code, r.headers.get("Location"))


def test_cl33_keycloak_cve_2026_9798_browser_failures_lock_password_grant(throttle_stack):
    s = throttle_stack
    c = confidential(s)
    u = new_user(s)
    b = Browser(s)
    page = b.authorize(auth_params(c))
    for _ in range(3):
        page = b.submit(page, username=u, password="guess")
        assert page.status_code == 401
    assert_error(token(s, c, grant_type="password", username=u, password=PASSWORD), 400, "invalid_grant")


def test_cl33_r12_parallel_failures_are_all_counted(throttle_stack):
    """login_max_failures = 3: three wrong passwords at once must lock the account (a lost
    update in the counter would let the right password through afterwards)."""
    s = throttle_stack
    c = confidential(s)
    u = new_user(s)
    n = 3
    barrier = threading.Barrier(n)
    out = [None] * n

    def go(i):
        sess = s.session()
        barrier.wait()
        out[i] = sess.post(s.url + "/token", data={"grant_type": "password", "username": u, "password": f"g{i}"},
                           auth=basic(c), timeout=60).status_code

    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [400] * n, out
    assert_error(token(s, c, grant_type="password", username=u, password=PASSWORD), 400, "invalid_grant")


def test_cl32_jenkins_ghsa_9grj_unknown_user_costs_a_password_hash(throttle_stack):
    s = throttle_stack
    c = confidential(s)
    u = new_user(s)

    def timed(name):
        t0 = time.monotonic()
        r = token(s, c, grant_type="password", username=name, password="wrong-password")
        assert_error(r, 400, "invalid_grant")
        return time.monotonic() - t0, r.json()

    known = [timed(u) for _ in range(2)]
    unknown = [timed(uniq("ghost")) for _ in range(2)]
    assert known[0][1] == unknown[0][1]                     # same body
    k, g = min(t for t, _ in known), min(t for t, _ in unknown)
    assert g > 0.5 * k, (k, g)                              # PBKDF2 (~0.1-0.5 s) for both, not ~1 ms


def test_cl33_rfc6749_2_3_1_client_secrets_resist_guessing(stack):
    """RFC 6749 §2.3.1 asks to protect password-based client authentication against brute
    force. Gatehouse does it by entropy, not by lockout (a lockout keyed by the public
    client_id would let anyone take a client offline): generated secrets carry 168 bits and
    an imported secret shorter than 16 characters is refused."""
    cid = uniq("weak")
    r = stack.cli("client", "add", "--name", cid, "--grant-types", "client_credentials", "--client-id", cid,
                  "--client-secret", "password1", check=False)
    assert r.returncode != 0 and "--client-secret is too short" in r.stderr
    c = stack.add_client("--name", cid, "--grant-types", "client_credentials", "--client-id", cid,
                         "--client-secret", "imported-Secret-0123")
    assert c["client_id"] == cid
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, "imported-Secret-0124"))
    assert r.status_code == 401
    assert stack.post("/token", data={"grant_type": "client_credentials"}, auth=(cid, "imported-Secret-0123")).status_code == 200


@pytest.fixture(scope="module")
def address_stack():
    s = started("login_max_failures = 1000\nlogin_address_max_failures = 3")
    try:
        yield s
    finally:
        s.stop()


def test_cl33_cl92_rfc9700_4_13_address_throttle_ignores_forwarded_headers(address_stack):
    """Failures from one address lock it, whatever X-Forwarded-For / X-Real-IP /
    Forwarded the client claims: nginx's REMOTE_ADDR is the only address."""
    s = address_stack
    c = confidential(s)
    u = new_user(s)
    for i in range(3):
        fake = f"203.0.113.{i + 1}"
        r = s.post("/token", data={"grant_type": "password", "username": uniq("nobody"), "password": "x"},
                   auth=basic(c), headers={"X-Forwarded-For": fake, "X-Real-IP": fake, "Forwarded": f"for={fake}"})
        assert_error(r, 400, "invalid_grant")
    # A fourth "address", the right password of another account: the address is locked.
    r = s.post("/token", data={"grant_type": "password", "username": u, "password": PASSWORD}, auth=basic(c),
               headers={"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7"})
    assert_error(r, 400, "invalid_grant")
    b = Browser(s)
    r = b.submit(b.authorize(auth_params(c)), username=u, password=PASSWORD)
    assert r.status_code == 401 and is_login_page(r), r.status_code


# == 1.4 /token: generic handling and client authentication ======================================

def test_cl42_rfc6749_2_3_1_client_secret_in_query_is_refused_and_not_logged(stack):
    c = confidential(stack, "client_credentials")
    for path in ("/token", "/revoke", "/introspect"):
        q = urllib.parse.urlencode({"client_id": c["client_id"], "client_secret": c["client_secret"]})
        r = stack.post(f"{path}?{q}", data={"grant_type": "client_credentials", "token": "x"})
        assert r.status_code in (400, 401), (path, r.status_code, r.text)
        assert r.json()["error"] in ("invalid_request", "invalid_client"), r.text
        assert "access_token" not in r.text and "active" not in r.text
    assert c["client_secret"] not in stack.read_log()


def test_cl42_cl77_rfc6749_2_3_1_credentials_in_query_do_not_reach_any_log(stack):
    c = confidential(stack, "client_credentials,refresh_token,password")
    q = urllib.parse.urlencode({"client_id": c["client_id"], "client_secret": c["client_secret"],
                                "refresh_token": "rt-" + uuid.uuid4().hex})
    assert stack.post("/token?" + q, data={"grant_type": "client_credentials"}).status_code == 400
    assert stack.get("/token?grant_type=refresh_token&" + q).status_code in (400, 405)
    logdir = os.path.join(stack.home, "logs")
    logs = stack.read_log()
    for name in sorted(os.listdir(logdir)):
        with open(os.path.join(logdir, name), "rb") as f:
            logs += f.read().decode(errors="replace")
    assert c["client_secret"] not in logs


def test_cl43_rfc6749_2_3_1_unencoded_colon_in_secret_is_not_misparsed(stack):
    cid, secret = uniq("colon"), "s3cr:et-" + uuid.uuid4().hex
    stack.add_client("--name", cid, "--grant-types", "client_credentials", "--client-id", cid, "--client-secret", secret)
    raw = base64.b64encode(f"{cid}:{secret}".encode()).decode()          # ':' not %3A: the id ends at the first ':'
    r = stack.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic " + raw})
    assert r.status_code == 200, r.text
    # Unencoded '%' or '+' are form-decoded as RFC 6749 §2.3.1 says: a mismatch, never a different client.
    for bad in (f"{cid}:%zz", f"{cid}x:{secret}", f":{secret}", f"{cid}"):
        h = base64.b64encode(bad.encode()).decode()
        assert_error(stack.post("/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": "Basic " + h}), 401, "invalid_client")


def test_cl44_oauthlib_ghsa_7984_basic_id_must_match_body_client_id(stack):
    a, b = confidential(stack), confidential(stack)
    for grant in ({"grant_type": "client_credentials"},
                  {"grant_type": "authorization_code", "code": "x", "redirect_uri": CB}):
        r = stack.post("/token", data={**grant, "client_id": b["client_id"]}, auth=basic(a))
        assert r.status_code in (400, 401), r.text
        assert r.json()["error"] in ("invalid_request", "invalid_client"), r.text
    # Revocation and introspection too: A cannot act as B.
    t = token(stack, b, grant_type="client_credentials").json()["access_token"]
    r = stack.post("/introspect", data={"token": t, "client_id": b["client_id"]}, auth=basic(a))
    assert r.status_code in (400, 401) and "active" not in r.json()
    r = stack.post("/revoke", data={"token": t, "client_id": b["client_id"]}, auth=basic(a))
    assert r.status_code in (400, 401)
    assert introspect(stack, b, t)["active"] is True


# == 1.5 grant_type=authorization_code ===========================================================

@pytest.fixture(scope="module")
def expired_stack():
    """code_lifetime = 1 and refresh_token_idle_lifetime = 1: one code and one refresh token,
    prepared and then left to expire once for the tests below."""
    s = started("code_lifetime = 1\nrefresh_token_idle_lifetime = 1")
    try:
        c = confidential(s)
        u = new_user(s)
        b = Browser(s)
        code = get_code(b, c, u)
        tok = password_token(s, c, u)
        time.sleep(2.2)
        yield {"stack": s, "client": c, "code": code, "tokens": tok}
    finally:
        s.stop()


def test_cl49_rfc6749_4_1_2_code_replay_revokes_tokens_refreshed_from_it(stack, web, rs):
    c = web["client"]
    code = quick_code(web)
    t0 = exchange(stack, c, code).json()
    t1 = refresh(stack, c, t0["refresh_token"]).json()
    assert introspect(stack, rs, t1["access_token"])["active"] is True
    assert_error(exchange(stack, c, code), 400, "invalid_grant")
    assert introspect(stack, rs, t1["access_token"]) == INACTIVE
    assert_error(refresh(stack, c, t1["refresh_token"]), 400, "invalid_grant")


def test_cl53_rfc6749_4_1_2_expired_code_is_invalid_grant(expired_stack):
    e = expired_stack
    assert_error(exchange(e["stack"], e["client"], e["code"]), 400, "invalid_grant")


def test_cl55_rfc6749_4_1_3_code_of_a_removed_user_is_invalid_grant(stack, web):
    c = confidential(stack)
    u = new_user(stack)
    code = get_code(Browser(stack), c, u)
    stack.cli("user", "remove", u)
    assert_error(exchange(stack, c, code), 400, "invalid_grant")


def test_cl56_rfc6749_4_1_3_public_client_exchange_without_client_id(stack):
    c = stack.add_client("--name", uniq("pub"), "--public", "--redirect-uri", CB)
    u = new_user(stack)
    b = Browser(stack)
    code = get_code(b, c, u, code_challenge=CHALLENGE, code_challenge_method="S256")
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": CB,
                                   "code_verifier": VERIFIER})
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] in ("invalid_request", "invalid_client")
    # The refused attempt did not burn the code.
    r = exchange(stack, c, code, code_verifier=VERIFIER)
    assert r.status_code == 200, r.text


# == 1.6 PKCE at /token ==========================================================================

@pytest.mark.parametrize("verifier", [VERIFIER[:42], VERIFIER + "A" * 86, VERIFIER[:-1] + "+", VERIFIER[:-1] + " "],
                         ids=["42-chars", "129-chars", "plus", "space"])
def test_cl62_rfc7636_4_1_malformed_verifier_is_refused(stack, web, verifier):
    code = quick_code(web, code_challenge=CHALLENGE, code_challenge_method="S256")
    r = exchange(stack, web["client"], code, code_verifier=verifier)
    # Checklist: invalid_request (node-oidc-provider); RFC 7636 §4.6 only names invalid_grant for a mismatch.
    assert_error(r, 400, "invalid_request", "invalid_grant")


# == 1.7 grant_type=refresh_token ================================================================

def test_cl70_gluu_829_code_is_not_a_refresh_token_and_back(stack, web):
    c = web["client"]
    code = quick_code(web)
    assert_error(refresh(stack, c, code), 400, "invalid_grant")
    t = exchange(stack, c, code).json()                   # the failed attempt did not consume it
    assert "refresh_token" in t, t
    assert_error(exchange(stack, c, t["refresh_token"]), 400, "invalid_grant")
    assert_error(exchange(stack, c, t["access_token"]), 400, "invalid_grant")
    assert refresh(stack, c, t["refresh_token"]).status_code == 200


def test_cl71_rfc9700_4_14_2_idle_refresh_token_expires(expired_stack):
    e = expired_stack
    assert_error(refresh(e["stack"], e["client"], e["tokens"]["refresh_token"]), 400, "invalid_grant")


def test_cl66_cl50_rfc6749_10_4_other_clients_replay_of_rotated_rt_does_not_revoke(stack, rs):
    a, b = confidential(stack), confidential(stack)
    u = new_user(stack)
    t0 = password_token(stack, a, u)
    t1 = refresh(stack, a, t0["refresh_token"]).json()
    assert_error(refresh(stack, b, t0["refresh_token"]), 400, "invalid_grant")
    assert introspect(stack, rs, t1["access_token"])["active"] is True
    assert refresh(stack, a, t1["refresh_token"]).status_code == 200


# == 1.9 token and code properties ===============================================================

def test_cl75_rfc6749_10_10_tokens_unique_constant_shape_128_bits(stack, web):
    c = confidential(stack, "client_credentials")
    sess = stack.session()
    toks = [sess.post(stack.url + "/token", data={"grant_type": "client_credentials"}, auth=basic(c),
                      timeout=30).json()["access_token"] for _ in range(100)]
    codes = [quick_code(web) for _ in range(5)]
    t = exchange(stack, web["client"], codes[0]).json()
    everything = toks + codes + [t["access_token"], t["refresh_token"]]
    assert len(set(everything)) == len(everything)
    for v in everything:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", v), v
        assert len(v) * 6 >= 160, v                           # ≥ 160 bits if every char is random
    assert len({len(v) for v in everything}) == 1
    assert len({v[:6] for v in toks}) == len(toks)            # no shared prefix


@pytest.mark.sqlite
def test_cl76_rfc6819_4_5_2_database_holds_no_raw_token_code_or_secret(stack, web):
    c = confidential(stack)
    code = get_code(web["browser"], c, web["user"])           # consent page, then a code
    code2 = quick_code(web)                                   # issued, never redeemed
    t = exchange(stack, c, code).json()
    secrets = [code, code2, t["access_token"], t["refresh_token"], c["client_secret"], PASSWORD]
    blob = b""
    for suffix in ("", "-wal"):
        path = os.path.join(stack.home, "gatehouse.db" + suffix)
        if os.path.exists(path):
            with open(path, "rb") as f:
                blob += f.read()
    assert blob
    for s in secrets:
        assert s.encode() not in blob, s


def test_cl77_rfc9700_4_3_2_no_token_or_code_in_logs(stack, web):
    c = web["client"]
    code = quick_code(web)
    t = exchange(stack, c, code).json()
    t2 = refresh(stack, c, t["refresh_token"]).json()
    introspect(stack, c, t2["access_token"])
    stack.post("/revoke", data={"token": t2["refresh_token"]}, auth=basic(c))
    assert_error(exchange(stack, c, code), 400, "invalid_grant")      # a replay gets logged as code_replayed
    logs = stack.read_log()
    logdir = os.path.join(stack.home, "logs")
    for name in sorted(os.listdir(logdir)):
        with open(os.path.join(logdir, name), "rb") as f:
            logs += f.read().decode(errors="replace")
    for s in (code, t["access_token"], t["refresh_token"], t2["access_token"], t2["refresh_token"],
              c["client_secret"]):
        assert s not in logs, s


# == 1.10 revocation ==============================================================================

def test_cl82_rfc7009_2_1_revoke_requires_post(stack, rs):
    t = token(stack, rs, grant_type="client_credentials").json()["access_token"]
    r = stack.get("/revoke", params={"token": t}, auth=basic(rs))
    assert r.status_code in (400, 405), r.status_code
    assert introspect(stack, rs, t)["active"] is True


def test_cl80_rfc7009_2_1_unknown_token_type_hint_is_ignored(stack, rs):
    t = token(stack, rs, grant_type="client_credentials").json()["access_token"]
    r = stack.post("/revoke", data={"token": t, "token_type_hint": "urn:example:whatever"}, auth=basic(rs))
    assert r.status_code == 200, r.text
    assert introspect(stack, rs, t) == INACTIVE


# == 1.11 introspection ==============================================================================

def test_cl88_rfc7662_2_1_introspection_is_post_only_and_not_cached(stack, rs):
    t = token(stack, rs, grant_type="client_credentials").json()["access_token"]
    r = stack.get("/introspect", params={"token": t}, auth=basic(rs))
    assert r.status_code in (400, 405), r.status_code
    assert "active" not in r.text
    for tok in (t, "unknown-" + uuid.uuid4().hex):
        r = stack.post("/introspect", data={"token": tok}, auth=basic(rs))
        assert r.status_code == 200 and "no-store" in r.headers.get("Cache-Control", ""), r.headers


# == 1.13 proxy and transport =======================================================================

def test_cl93_rfc9700_4_13_fastcgi_socket_not_world_accessible(stack):
    st = os.stat(stack.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_mode & 0o007 == 0, oct(st.st_mode)


def test_cl94_hsts_on_every_response(stack, rs):
    responses = [stack.get("/health"), stack.get("/.well-known/oauth-authorization-server"),
                 stack.post("/token", data={"grant_type": "client_credentials"}, auth=basic(rs)),
                 stack.post("/token", data={}), Browser(stack).authorize({"client_id": "nope"}), stack.get("/nope")]
    for r in responses:
        assert "max-age=" in r.headers.get("Strict-Transport-Security", ""), (r.url, r.status_code, r.headers)


# == 3. real-world vulnerabilities ===================================================================

SQLI = ["' OR 1=1--", "\" OR \"\"=\"", "x'; DROP TABLE tokens;--", "%00", "a" * 2000]


def test_s3_ghsa_crhg_xgrg_vvcc_sql_metacharacters_give_normal_oauth_errors(stack, rs, web):
    for v in SQLI:
        r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(v, v))
        assert_error(r, 401, "invalid_client")
        assert_error(stack.post("/token", data={"grant_type": "client_credentials", "client_id": v, "client_secret": v}),
                     400, "invalid_client")
        assert_error(exchange(stack, web["client"], v), 400, "invalid_grant")
        assert_error(refresh(stack, rs, v), 400, "invalid_grant", "unauthorized_client")
        assert introspect(stack, rs, v) == INACTIVE
        assert stack.post("/revoke", data={"token": v}, auth=basic(rs)).status_code == 200
        r = Browser(stack).authorize({"response_type": "code", "client_id": v, "redirect_uri": CB})
        assert_error_page(r)
        r = web["browser"].authorize(auth_params(web["client"], scope=v.replace("%", "")))
        assert r.status_code == 302 and query_of(r.headers["Location"])["error"] == "invalid_scope"
    # The database is intact and still answers.
    assert token(stack, rs, grant_type="client_credentials").status_code == 200
