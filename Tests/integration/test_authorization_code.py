"""Authorization code grant, black box: a real browser-like client (requests) drives /authorize
(login form, consent form, redirects) and a client calls /token, /introspect. RFC 6749 §4.1,
RFC 7636 (PKCE), RFC 8252 §7.3 (loopback), RFC 9207 (iss), RFC 9700, and DESIGN.md."""
import base64
import re
import threading
import urllib.parse
import uuid

import pytest
import requests

from conftest import PASSWORD, query_of
from oauth_flow import (CB, CHALLENGE, COOKIE, VERIFIER, Browser, auth_params, form_action, hidden_inputs,
                        is_consent_page, is_login_page, uniq)

GENERIC_LOGIN_ERROR = "Incorrect username or password."
TOKEN_KEYS = {"access_token", "refresh_token", "scope", "token_type", "expires_in"}


# -- helpers -------------------------------------------------------------------------------

def new_client(stack, *args, redirect=CB):
    argv = ["--name", uniq("ac-client")]
    if redirect:
        argv += ["--redirect-uri", redirect]
    return stack.add_client(*argv, *args)


def new_user(stack):
    name = uniq("ac-user")
    stack.add_user(name)
    return name


def get_code(stack, client, user, browser=None, **params):
    """Runs the browser part of the flow; returns (query of the final Location, Location, browser)."""
    b = browser or Browser(stack)
    p = auth_params(client, **params)
    r = b.authorize(p)
    if r.status_code not in (302, 303):
        r = b.approve(r, user)
    loc = r.headers["Location"]
    q = query_of(loc)
    assert "code" in q, loc
    assert q.get("state") == p.get("state")
    return q, loc, b


def exchange(stack, client, code, redirect_uri=CB, auth=True, **extra):
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    data.update(extra)
    kw = {}
    if auth and client.get("client_secret"):
        kw["auth"] = (client["client_id"], client["client_secret"])
    else:
        data.setdefault("client_id", client["client_id"])
    return stack.post("/token", data=data, **kw)


def assert_token_error(r, error, status=400):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json()["error"] == error, r.text
    assert "no-store" in r.headers.get("Cache-Control", "")


def assert_error_page(r):
    """RFC 6749 §3.1.2.4 / §4.1.2.1: an HTML page for the user, never a redirect."""
    assert r.status_code == 400, (r.status_code, r.headers.get("Location"), r.text[:300])
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")
    assert "code=" not in r.text


def assert_error_redirect(stack, r, base, error, state):
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    assert loc.split("?")[0] == base, loc
    q = query_of(loc)
    assert q["error"] == error, loc
    assert q.get("state") == state, loc
    assert q["iss"] == stack.url, loc
    assert "code" not in q
    desc = q.get("error_description", "")
    assert desc, loc
    # RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E only
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in desc), desc
    return q


@pytest.fixture(scope="module")
def resource_server(stack):
    return stack.add_client("--name", uniq("ac-rs"), "--grant-types", "client_credentials", "--resource-server")


def introspect(stack, rs, token):
    r = stack.post("/introspect", data={"token": token}, auth=(rs["client_id"], rs["client_secret"]))
    assert r.status_code == 200, r.text
    return r.json()


# -- 1. the WSO2 API Cloud seed flow -------------------------------------------------------

def test_rfc6749_4_1_wso2_seed_flow_byte_for_byte(stack):
    cid, secret = "wU62DjlyDBnq87GlBwplfqvmAbAa", "x7Hq0Pn2GkTzLbV1cR9eWmYsUaIo"
    stack.add_client("--name", "WSO2 seed app", "--redirect-uri", CB, "--scope", "PRODUCTION",
                     "--client-id", cid, "--client-secret", secret)
    user = new_user(stack)
    b = Browser(stack)
    # The request exactly as the WSO2 page shows it, %2E included.
    page = b.get_raw(f"response_type=code&client_id={cid}"
                     "&redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb&scope=PRODUCTION&state=wso2-seed")
    assert page.status_code == 200 and is_login_page(page), page.text[:500]
    # The request travels sealed (issue 10): no raw parameter is echoed into the form.
    assert set(hidden_inputs(page.text)) == {"csrf", "step", "authz"}, hidden_inputs(page.text)
    assert form_action(page.text) == stack.url + "/authorize"
    r = b.login(page, user)
    assert is_consent_page(r), (r.status_code, r.text[:500])
    assert "PRODUCTION" in r.text
    r = b.submit(r, decision="allow")
    assert r.status_code == 303
    loc = r.headers["Location"]
    assert loc.startswith(CB + "?"), loc
    q = query_of(loc)
    assert set(q) == {"code", "state", "iss"}, loc
    assert q["state"] == "wso2-seed" and q["iss"] == stack.url

    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    t = stack.post("/token", data=f"grant_type=authorization_code&code={q['code']}&redirect_uri={CB}",
                   headers={"Authorization": "Basic " + basic,
                            "Content-Type": "application/x-www-form-urlencoded"})
    assert t.status_code == 200, t.text
    assert t.headers["Content-Type"].startswith("application/json")
    assert t.headers["Cache-Control"] == "no-store"
    assert t.headers["Pragma"] == "no-cache"
    body = t.json()
    assert set(body) == TOKEN_KEYS, body
    assert body["scope"] == "PRODUCTION"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"] and body["access_token"] != body["refresh_token"]
    # Shaped like WSO2's password-grant response, key order included.
    assert re.fullmatch(r'\{"access_token":"[^"]+","refresh_token":"[^"]+","scope":"PRODUCTION",'
                        r'"token_type":"Bearer","expires_in":3600\}\s*', t.text), t.text


def test_rfc8414_rfc9207_iss_matches_metadata_issuer(stack):
    meta = stack.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == stack.url
    assert meta.get("authorization_response_iss_parameter_supported") is True
    assert "code" in meta["response_types_supported"]
    assert "S256" in meta.get("code_challenge_methods_supported", [])


# -- 2. client and redirect_uri validation: error page, no redirect -------------------------

def test_rfc6749_4_1_2_1_unknown_client_gets_error_page_not_redirect(stack):
    r = Browser(stack).authorize({"response_type": "code", "client_id": "no-such-client-" + uuid.uuid4().hex,
                                  "redirect_uri": CB, "state": "s"})
    assert_error_page(r)


def test_rfc6749_4_1_2_1_missing_client_id_gets_error_page_not_redirect(stack):
    assert_error_page(Browser(stack).authorize({"response_type": "code", "redirect_uri": CB, "state": "s"}))


def test_rfc6749_3_1_duplicated_client_id_gets_error_page(stack):
    c = new_client(stack)
    q = f"response_type=code&client_id={c['client_id']}&client_id={c['client_id']}&redirect_uri={urllib.parse.quote(CB, safe='')}"
    assert_error_page(Browser(stack).get_raw(q))


BAD_REDIRECTS = [
    "https://client.example.com/cb/",                      # trailing slash
    "https://client.example.com/c",                        # prefix only
    "https://CLIENT.EXAMPLE.COM/cb",                       # upper-case host
    "HTTPS://client.example.com/cb",                       # upper-case scheme
    "https://client.example.com/CB",                       # path case
    "https://client.example.com/cb?foo=bar",               # extra query
    "https://client.example.com/cb#frag",                  # fragment
    "https://client.example.com:8443/cb",                  # different port
    "https://client.example.com:443/cb",                   # explicit default port: not the same string
    "https://client.example.com/cb/../cb",                 # dot segments
    "https://client.example.com@evil.example/cb",          # userinfo trick
    "https://client.example.com:443@evil.example/cb",      # userinfo trick with port
    "https://evil.example/cb",
    "https://client.example.com.evil.example/cb",
    "http://client.example.com/cb",                        # http for an https registration
    "//client.example.com/cb",                             # scheme-relative
]  # (an empty redirect_uri= is "omitted", RFC 6749 §3.1: allowed with one registered URI)


@pytest.mark.parametrize("redirect_uri", BAD_REDIRECTS)
def test_rfc6749_3_1_2_4_unregistered_redirect_uri_gets_error_page(stack, redirect_uri, _shared_client):
    r = Browser(stack).authorize({"response_type": "code", "client_id": _shared_client["client_id"],
                                  "redirect_uri": redirect_uri, "state": "s"})
    assert_error_page(r)


def test_rfc6749_3_1_2_4_double_encoded_redirect_uri_gets_error_page(stack, _shared_client):
    q = (f"response_type=code&client_id={_shared_client['client_id']}"
         "&redirect_uri=https%253A%252F%252Fclient.example.com%252Fcb&state=s")
    assert_error_page(Browser(stack).get_raw(q))


def test_rfc6749_3_1_duplicated_redirect_uri_gets_error_page(stack, _shared_client):
    enc = urllib.parse.quote(CB, safe="")
    q = f"response_type=code&client_id={_shared_client['client_id']}&redirect_uri={enc}&redirect_uri={enc}&state=s"
    assert_error_page(Browser(stack).get_raw(q))


def test_rfc6749_3_1_2_3_redirect_uri_may_be_omitted_with_one_registered_uri(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, loc, _ = get_code(stack, c, user, redirect_uri=None)
    assert loc.startswith(CB + "?")
    # No redirect_uri at /authorize, none needed at /token.
    r = exchange(stack, c, q["code"], redirect_uri=None)
    assert r.status_code == 200, r.text


def test_rfc6749_3_1_2_3_redirect_uri_required_with_several_registered_uris(stack):
    c = stack.add_client("--name", uniq("ac-multi"), "--redirect-uri", CB,
                         "--redirect-uri", "https://client.example.com/other")
    assert_error_page(Browser(stack).authorize({"response_type": "code", "client_id": c["client_id"], "state": "s"}))
    # Either registered URI works when named.
    r = Browser(stack).authorize(auth_params(c, redirect_uri="https://client.example.com/other"))
    assert is_login_page(r) and r.status_code == 200


@pytest.fixture(scope="module")
def _shared_client(stack):
    return new_client(stack)


# -- 3. errors after validation: redirect with error, state, iss -----------------------------

def test_rfc6749_4_1_2_1_missing_response_type_redirects_invalid_request(stack, _shared_client):
    p = auth_params(_shared_client, response_type=None)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "invalid_request", p["state"])


@pytest.mark.parametrize("rt", ["token", "id_token", "code token", "foo"])
def test_rfc6749_4_1_2_1_unsupported_response_type(stack, _shared_client, rt):
    p = auth_params(_shared_client, response_type=rt)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "unsupported_response_type", p["state"])


def test_rfc6749_4_1_2_1_unknown_scope_redirects_invalid_scope(stack, _shared_client):
    p = auth_params(_shared_client, scope="PRODUCTION ADMIN")
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "invalid_scope", p["state"])


def test_rfc6749_3_1_duplicated_parameter_redirects_invalid_request(stack, _shared_client):
    p = auth_params(_shared_client)
    params = list(p.items()) + [("response_type", "code")]
    assert_error_redirect(stack, Browser(stack).authorize(params), CB, "invalid_request", p["state"])


def test_rfc6749_4_1_2_1_client_without_code_grant_redirects_unauthorized_client(stack):
    c = new_client(stack, "--grant-types", "client_credentials")
    p = auth_params(c)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "unauthorized_client", p["state"])


def test_rfc7636_4_4_1_public_client_without_code_challenge_redirects_invalid_request(stack):
    c = new_client(stack, "--public")
    p = auth_params(c)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "invalid_request", p["state"])


def test_rfc7636_4_4_1_require_pkce_confidential_client_without_challenge(stack):
    c = new_client(stack, "--require-pkce")
    p = auth_params(c)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "invalid_request", p["state"])


@pytest.mark.parametrize("extra", [
    {"code_challenge": CHALLENGE, "code_challenge_method": "S512"},     # unknown method
    {"code_challenge_method": "S256"},                                  # method without challenge
    {"code_challenge": "tooshort", "code_challenge_method": "S256"},    # < 43 chars
    {"code_challenge": CHALLENGE + "!", "code_challenge_method": "S256"},  # outside the ABNF
    {"code_challenge": "a" * 129, "code_challenge_method": "S256"},     # > 128 chars
], ids=["unknown-method", "method-without-challenge", "short", "bad-char", "long"])
def test_rfc7636_4_4_1_malformed_pkce_parameters_redirect_invalid_request(stack, _shared_client, extra):
    p = auth_params(_shared_client, **extra)
    assert_error_redirect(stack, Browser(stack).authorize(p), CB, "invalid_request", p["state"])


def test_rfc6749_4_1_2_1_consent_denied_redirects_access_denied(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    p = auth_params(c)
    r = b.login(b.authorize(p), user)
    assert is_consent_page(r)
    r = b.submit(r, decision="deny")
    assert r.status_code == 303
    assert_error_redirect(stack, r, CB, "access_denied", p["state"])


def test_rfc6749_4_1_2_state_is_echoed_exactly_and_absent_when_not_sent(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    odd = "a b&c=d/é?%2F+" + "x" * 300
    q, _, b = get_code(stack, c, user, browser=b, state=odd)
    assert q["state"] == odd
    r = b.authorize({"response_type": "code", "client_id": c["client_id"], "redirect_uri": CB})
    assert r.status_code == 302, r.text[:300]          # consent remembered
    q = query_of(r.headers["Location"])
    assert "code" in q and "state" not in q and q["iss"] == stack.url


def test_rfc6749_3_1_2_registered_redirect_query_is_retained(stack):
    reg = "https://client.example.com/cb?tenant=42"
    c = new_client(stack, redirect=reg)
    user = new_user(stack)
    q, loc, _ = get_code(stack, c, user, redirect_uri=reg)
    assert loc.startswith(reg + "&code="), loc
    assert q["tenant"] == "42"
    assert exchange(stack, c, q["code"], redirect_uri=reg).status_code == 200


# -- 4. scope ------------------------------------------------------------------------------

@pytest.mark.parametrize("scope", [None, ""], ids=["omitted", "empty"])
def test_rfc6749_3_3_omitted_scope_gets_client_default_scope(stack, scope):
    c = new_client(stack, "--scope", "PRODUCTION SANDBOX", "--default-scope", "SANDBOX")
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, scope=scope)
    r = exchange(stack, c, q["code"])
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "SANDBOX"


def test_rfc6749_3_3_requested_subset_scope_is_granted(stack):
    c = new_client(stack, "--scope", "PRODUCTION SANDBOX")
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, scope="SANDBOX PRODUCTION")
    r = exchange(stack, c, q["code"])
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"PRODUCTION", "SANDBOX"}


# -- 5, 6. single use -----------------------------------------------------------------------

def test_rfc6749_4_1_2_code_replay_is_refused_and_revokes_its_tokens(stack, resource_server):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    first = exchange(stack, c, q["code"])
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert introspect(stack, resource_server, tokens["access_token"])["active"] is True

    assert_token_error(exchange(stack, c, q["code"]), "invalid_grant")

    assert introspect(stack, resource_server, tokens["access_token"]) == {"active": False}
    assert introspect(stack, resource_server, tokens["refresh_token"]) == {"active": False}
    r = stack.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                   auth=(c["client_id"], c["client_secret"]))
    assert_token_error(r, "invalid_grant")


def test_rfc6749_10_5_parallel_exchanges_of_one_code_issue_tokens_once(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    n = 10
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = exchange(stack, c, q["code"])
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = [r.status_code if isinstance(r, requests.Response) else repr(r) for r in results]
    assert codes.count(200) == 1, codes
    for r in results:
        if r.status_code != 200:
            assert_token_error(r, "invalid_grant")


def test_rfc6749_4_1_3_unknown_and_missing_code(stack, _shared_client):
    assert_token_error(exchange(stack, _shared_client, "not-a-code-" + uuid.uuid4().hex), "invalid_grant")
    r = stack.post("/token", data={"grant_type": "authorization_code", "redirect_uri": CB},
                   auth=(_shared_client["client_id"], _shared_client["client_secret"]))
    assert_token_error(r, "invalid_request")


def test_rfc6749_3_2_duplicated_code_parameter_is_invalid_request(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    body = (f"grant_type=authorization_code&code={q['code']}&code={q['code']}"
            f"&redirect_uri={urllib.parse.quote(CB, safe='')}")
    r = stack.post("/token", data=body, auth=(c["client_id"], c["client_secret"]),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_token_error(r, "invalid_request")


# -- 7. binding and client authentication at /token --------------------------------------------

def test_rfc6749_4_1_3_code_is_bound_to_its_client(stack):
    a, b = new_client(stack), new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, a, user)
    assert_token_error(exchange(stack, b, q["code"]), "invalid_grant")


def test_rfc6749_4_1_3_other_clients_attempt_does_not_burn_an_unused_code(stack):
    a, b = new_client(stack), new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, a, user)
    assert_token_error(exchange(stack, b, q["code"]), "invalid_grant")
    assert exchange(stack, a, q["code"]).status_code == 200


def test_rfc6749_4_1_3_unauthenticated_replay_does_not_revoke(stack, resource_server):
    """Checklist §1.5 #50: authentication comes first; a holder of a leaked code without the secret revokes nothing."""
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    first = exchange(stack, c, q["code"])
    assert first.status_code == 200, first.text
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": q["code"], "redirect_uri": CB},
                   auth=(c["client_id"], "not-the-secret"))
    assert_token_error(r, "invalid_client", status=401)
    assert introspect(stack, resource_server, first.json()["access_token"])["active"] is True


def test_rfc9700_replay_by_another_client_does_not_revoke_the_owners_tokens(stack, resource_server):
    """Checklist §1.5 #50: a stranger holding a leaked code must not be able to revoke the owner's tokens."""
    a, b = new_client(stack), new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, a, user)
    first = exchange(stack, a, q["code"])
    assert first.status_code == 200, first.text
    at = first.json()["access_token"]
    assert introspect(stack, resource_server, at)["active"] is True
    assert_token_error(exchange(stack, b, q["code"]), "invalid_grant")
    assert introspect(stack, resource_server, at)["active"] is True


def test_rfc6749_5_2_code_of_a_disabled_user_is_invalid_grant(stack):
    """Checklist §1.5 #55 (node-oidc-provider 'validates account is still there')."""
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    stack.cli("user", "disable", user)
    assert_token_error(exchange(stack, c, q["code"]), "invalid_grant")


def test_rfc6749_2_3_1_basic_credentials_are_form_urlencoded(stack):
    cid = "ac%2B" + uuid.uuid4().hex[:8]
    secret = "p%&s:x+y/= z-long-enough"
    c = stack.add_client("--name", uniq("ac-enc"), "--redirect-uri", CB, "--client-id", cid, "--client-secret", secret)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    enc = urllib.parse.quote_plus
    basic = base64.b64encode(f"{enc(cid)}:{enc(secret)}".encode()).decode()
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": q["code"], "redirect_uri": CB},
                   headers={"Authorization": "Basic " + basic})
    assert r.status_code == 200, r.text


def test_rfc6749_4_1_3_redirect_uri_mismatch_at_token_is_invalid_grant(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    assert_token_error(exchange(stack, c, q["code"], redirect_uri=CB + "?thensome"), "invalid_grant")


def test_rfc6749_4_1_3_redirect_uri_omitted_at_token_when_sent_to_authorize(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    r = exchange(stack, c, q["code"], redirect_uri=None)
    assert r.status_code == 400, r.text
    assert r.json()["error"] in ("invalid_request", "invalid_grant")


def test_rfc6749_5_2_wrong_secret_with_basic_is_401_with_www_authenticate(stack, _shared_client):
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CB},
                   auth=(_shared_client["client_id"], "wrong-" + _shared_client["client_secret"]))
    assert_token_error(r, "invalid_client", status=401)
    assert r.headers["WWW-Authenticate"].startswith("Basic"), r.headers


def test_rfc6749_5_2_unknown_client_with_basic_is_401(stack):
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CB},
                   auth=("no-such-client", "whatever"))
    assert_token_error(r, "invalid_client", status=401)
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_rfc6749_2_3_1_wrong_secret_in_body_is_invalid_client(stack, _shared_client):
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CB,
                                   "client_id": _shared_client["client_id"], "client_secret": "wrong"})
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"


def test_rfc6749_2_3_1_client_secret_post_works(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    r = exchange(stack, c, q["code"], auth=False, client_secret=c["client_secret"])
    assert r.status_code == 200, r.text
    assert set(r.json()) == TOKEN_KEYS


def test_rfc6749_3_2_1_confidential_client_without_credentials_is_invalid_client(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    r = exchange(stack, c, q["code"], auth=False)   # client_id in the body, no secret
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"


def test_rfc6749_2_3_credentials_both_basic_and_body_is_invalid_request(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    r = exchange(stack, c, q["code"], client_id=c["client_id"], client_secret=c["client_secret"])
    assert_token_error(r, "invalid_request")


def test_rfc6749_3_2_get_token_is_400(stack):
    r = stack.get("/token", params={"grant_type": "authorization_code", "code": "x"})
    assert_token_error(r, "invalid_request")


# -- 8. PKCE ---------------------------------------------------------------------------------

def test_rfc7636_appendix_b_s256_public_client_happy_path(stack):
    c = new_client(stack, "--public")
    assert "client_secret" not in c
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, code_challenge=CHALLENGE, code_challenge_method="S256")
    r = exchange(stack, c, q["code"], code_verifier=VERIFIER)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    assert r.headers["Cache-Control"] == "no-store"


def test_rfc7636_4_6_wrong_verifier_is_invalid_grant(stack):
    c = new_client(stack, "--public")
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, code_challenge=CHALLENGE, code_challenge_method="S256")
    assert_token_error(exchange(stack, c, q["code"], code_verifier=VERIFIER[:-1] + "A"), "invalid_grant")


def test_rfc7636_4_6_missing_verifier_is_invalid_grant(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, code_challenge=CHALLENGE, code_challenge_method="S256")
    assert_token_error(exchange(stack, c, q["code"]), "invalid_grant")


def test_rfc7636_4_3_plain_method(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, code_challenge=VERIFIER, code_challenge_method="plain")
    assert exchange(stack, c, q["code"], code_verifier=VERIFIER).status_code == 200


def test_rfc9700_4_8_2_verifier_for_code_without_challenge_is_refused(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user)
    r = exchange(stack, c, q["code"], code_verifier=VERIFIER)
    assert r.status_code == 400, r.text
    # The brief says invalid_grant, RFC 9700 / OAuth 2.1 lean to invalid_request: refusal is what counts.
    assert r.json()["error"] in ("invalid_grant", "invalid_request")


def test_rfc7636_4_1_malformed_verifier_is_refused(stack):
    c = new_client(stack)
    user = new_user(stack)
    q, _, _ = get_code(stack, c, user, code_challenge=CHALLENGE, code_challenge_method="S256")
    r = exchange(stack, c, q["code"], code_verifier="short")
    assert r.status_code == 400
    assert r.json()["error"] in ("invalid_request", "invalid_grant")


# -- 9. loopback redirect URIs ------------------------------------------------------------------

def test_rfc8252_7_3_loopback_any_port_at_authorize_exact_port_at_token(stack):
    reg = "http://127.0.0.1/cb"
    c = new_client(stack, redirect=reg)
    user = new_user(stack)
    used = "http://127.0.0.1:51234/cb"
    q, loc, b = get_code(stack, c, user, redirect_uri=used)
    assert loc.startswith(used + "?"), loc
    assert exchange(stack, c, q["code"], redirect_uri=used).status_code == 200
    # /token compares the port string exactly.
    for other in (reg, "http://127.0.0.1:51235/cb"):
        q2, _, b = get_code(stack, c, user, browser=b, redirect_uri=used)
        assert_token_error(exchange(stack, c, q2["code"], redirect_uri=other), "invalid_grant")


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:51234/other",
    "http://127.0.0.1:51234/cb?x=1",
    "http://localhost:51234/cb",
    "http://127.0.0.2:51234/cb",
    "https://127.0.0.1:51234/cb",
    "http://127.0.0.1:51234@evil.example/cb",
    "http://evil.example:51234/cb",
])
def test_rfc8252_7_3_loopback_exception_is_port_only(stack, redirect_uri, _loopback_client):
    r = Browser(stack).authorize({"response_type": "code", "client_id": _loopback_client["client_id"],
                                  "redirect_uri": redirect_uri, "state": "s"})
    assert_error_page(r)


@pytest.fixture(scope="module")
def _loopback_client(stack):
    return new_client(stack, redirect="http://127.0.0.1/cb")


def test_rfc8252_8_3_localhost_is_refused_at_registration(stack):
    r = stack.cli("client", "add", "--name", uniq("ac-lh"), "--redirect-uri", "http://localhost/cb", check=False)
    assert r.returncode != 0
    assert "localhost" in r.stderr or "loopback" in r.stderr


def test_design_cli_bad_redirect_uri_error_line_format(stack):
    r = stack.cli("client", "add", "--name", uniq("ac-lh"), "--redirect-uri", "http://localhost/cb", check=False)
    assert r.returncode != 0
    assert r.stderr.startswith("gatehouse: error:") and r.stderr.count("\n") == 1, repr(r.stderr)


# -- 10. page hardening, cookies, session renewal -------------------------------------------------

def assert_page_headers(r):
    h = r.headers
    assert h["Content-Type"].startswith("text/html"), h
    assert h["X-Frame-Options"] == "DENY", h
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"], h
    assert "no-store" in h["Cache-Control"], h
    assert h["Referrer-Policy"] == "no-referrer", h
    assert 'name="viewport"' in r.text


def session_cookie_header(r):
    for v in r.raw.headers.getlist("Set-Cookie"):
        if v.startswith(COOKIE + "="):
            return v
    return None


def assert_cookie_flags(set_cookie):
    assert set_cookie, "no session cookie set"
    attrs = [a.strip().lower() for a in set_cookie.split(";")[1:]]
    assert "httponly" in attrs and "secure" in attrs and "samesite=lax" in attrs, set_cookie
    assert "path=/" in attrs and not any(a.startswith("domain=") for a in attrs), set_cookie  # __Host- rules


def test_rfc9700_4_16_pages_send_hardening_headers_and_cookie_flags(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    login = b.authorize(auth_params(c))
    assert login.status_code == 200 and is_login_page(login)
    assert_page_headers(login)
    assert_cookie_flags(session_cookie_header(login))

    bad = b.login(login, user, password="wrong password")
    assert bad.status_code == 401 and is_login_page(bad)
    assert GENERIC_LOGIN_ERROR in bad.text
    assert_page_headers(bad)

    consent = b.login(bad, user)
    assert is_consent_page(consent)
    assert_page_headers(consent)
    assert_cookie_flags(session_cookie_header(consent))
    # The consent page must not block its own redirect to the client (DESIGN: form-action).
    csp = consent.headers["Content-Security-Policy"]
    fa = re.search(r"form-action ([^;]*)", csp)
    if fa:
        assert "https://client.example.com" in fa.group(1) or "https:" in fa.group(1).split(), csp

    err = Browser(stack).authorize({"response_type": "code", "client_id": "nope", "redirect_uri": CB})
    assert_error_page(err)
    assert_page_headers(err)

    # No CORS on /authorize (RFC 9700 §2.6).
    for method in ("GET", "OPTIONS"):
        r = stack.session().request(method, stack.url + "/authorize", params=auth_params(c),
                                    headers={"Origin": "https://evil.example",
                                             "Access-Control-Request-Method": "POST"}, allow_redirects=False)
        assert "Access-Control-Allow-Origin" not in r.headers, (method, r.headers)

    forbidden = b.submit(consent, drop=("csrf",), decision="allow")
    assert forbidden.status_code == 403
    assert "Location" not in forbidden.headers
    assert_page_headers(forbidden)


def test_cwe_384_session_id_changes_after_login_and_old_id_is_not_authenticated(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    before = b.cookie()
    assert before
    csrf_before = hidden_inputs(page.text)["csrf"]
    consent = b.login(page, user)
    assert is_consent_page(consent)
    after = b.cookie()
    assert after and after != before
    assert hidden_inputs(consent.text)["csrf"] != csrf_before
    assert b.submit(consent, decision="allow").status_code == 303

    # The pre-login id authenticates nothing: it gets the login page, not a code.
    old = stack.session()
    old.cookies.set(COOKIE, before, domain="127.0.0.1", path="/")
    p = auth_params(c)
    p["state"] = "old"
    r = old.get(stack.url + "/authorize", params=p, allow_redirects=False)
    assert r.status_code == 200 and is_login_page(r), (r.status_code, r.headers.get("Location"))


def test_rfc9700_4_12_login_post_redirects_with_303_not_307(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    _, _, b = get_code(stack, c, user, browser=b)             # consent now remembered
    # prompt=login: the login POST itself now answers the redirect.
    r = b.login(b.authorize(auth_params(c, prompt="login")), user)
    assert r.status_code == 303, r.status_code
    assert "code" in query_of(r.headers["Location"])


def test_rfc6749_10_12_login_without_or_with_wrong_csrf_is_403(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    r = b.submit(page, drop=("csrf",), username=user, password=PASSWORD)
    assert r.status_code == 403 and "Location" not in r.headers
    r = b.submit(page, csrf="A" * 43, username=user, password=PASSWORD)
    assert r.status_code == 403 and "Location" not in r.headers


def test_rfc6749_10_12_consent_csrf_is_bound_to_the_session(stack):
    """A consent form (csrf) from one session cannot be submitted with another session's cookie."""
    c = new_client(stack)
    user = new_user(stack)
    victim, attacker = Browser(stack), Browser(stack)
    v_consent = victim.login(victim.authorize(auth_params(c)), user)
    a_consent = attacker.login(attacker.authorize(auth_params(c)), user)
    assert is_consent_page(v_consent) and is_consent_page(a_consent)
    forged = dict(hidden_inputs(v_consent.text))
    forged["csrf"] = hidden_inputs(a_consent.text)["csrf"]
    forged["decision"] = "allow"
    r = victim.s.post(form_action(v_consent.text), data=forged, allow_redirects=False)
    assert r.status_code == 403 and "Location" not in r.headers
    r = victim.s.post(form_action(v_consent.text), data={**hidden_inputs(v_consent.text), "decision": "allow"},
                      allow_redirects=False)
    assert r.status_code == 303


def test_rfc6749_10_12_consent_form_scope_cannot_be_widened_after_display(stack):
    """Checklist §1.3 #27: the consent token is bound to the session AND to this authorization request."""
    c = new_client(stack, "--scope", "PRODUCTION SANDBOX")
    user = new_user(stack)
    b = Browser(stack)
    consent = b.login(b.authorize(auth_params(c, scope="SANDBOX")), user)
    assert is_consent_page(consent)
    r = b.submit(consent, decision="allow", scope="PRODUCTION SANDBOX")
    if r.status_code in (302, 303) and "code" in query_of(r.headers["Location"]):
        t = exchange(stack, c, query_of(r.headers["Location"])["code"])
        assert t.json().get("scope") == "SANDBOX", t.text     # what the user was shown, at most
    else:
        assert r.status_code in (400, 403), r.status_code


def test_rfc6749_10_12_consent_form_client_cannot_be_swapped(stack):
    a, b_client = new_client(stack), new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    consent = b.login(b.authorize(auth_params(a)), user)
    assert is_consent_page(consent) and a["name"] in consent.text
    r = b.submit(consent, decision="allow", client_id=b_client["client_id"])
    assert r.status_code in (400, 403), (r.status_code, r.headers.get("Location"))
    assert "Location" not in r.headers


def test_rfc6749_10_12_consent_token_is_single_use(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    consent = b.login(b.authorize(auth_params(c)), user)
    first = b.submit(consent, decision="allow")
    assert first.status_code == 303 and "code" in query_of(first.headers["Location"])
    again = b.submit(consent, decision="allow")
    assert again.status_code in (400, 403), (again.status_code, again.headers.get("Location"))


# -- 11. prompt ---------------------------------------------------------------------------------

def test_oidc_prompt_login_forces_login_with_a_logged_in_session(stack):
    c = new_client(stack)
    user = new_user(stack)
    _, _, b = get_code(stack, c, user)
    r = b.authorize(auth_params(c))
    assert r.status_code == 302                                # remembered consent
    r = b.authorize(auth_params(c, prompt="login"))
    assert r.status_code == 200 and is_login_page(r), (r.status_code, r.headers.get("Location"))


def test_oidc_prompt_consent_asks_again_even_if_remembered(stack):
    c = new_client(stack)
    user = new_user(stack)
    _, _, b = get_code(stack, c, user)
    r = b.authorize(auth_params(c, prompt="consent"))
    assert is_consent_page(r), (r.status_code, r.headers.get("Location"))
    r = b.submit(r, decision="allow")
    assert r.status_code == 303 and "code" in query_of(r.headers["Location"])


def test_oidc_prompt_consent_asks_after_a_fresh_login_too(stack):
    """prompt=consent from a browser without a session: the login must lead to the consent
    page even though consent is remembered (found in review: the forms dropped prompt)."""
    c = new_client(stack)
    user = new_user(stack)
    get_code(stack, c, user)                                  # consent remembered
    b = Browser(stack)
    r = b.login(b.authorize(auth_params(c, prompt="consent")), user)
    assert is_consent_page(r), (r.status_code, r.headers.get("Location"))
    # prompt=login consent: one login page, then the consent page, never the login again.
    b = Browser(stack)
    r = b.login(b.authorize(auth_params(c, prompt="login consent")), user)
    assert is_consent_page(r), (r.status_code, r.headers.get("Location"))
    r = b.submit(r, decision="allow")
    assert r.status_code == 303 and "code" in query_of(r.headers["Location"])


def test_rfc6749_10_2_remembered_consent_is_per_scope(stack):
    c = new_client(stack, "--scope", "PRODUCTION SANDBOX", "--default-scope", "PRODUCTION")
    user = new_user(stack)
    _, _, b = get_code(stack, c, user, scope="PRODUCTION")
    r = b.authorize(auth_params(c, scope="PRODUCTION SANDBOX"))
    assert is_consent_page(r), (r.status_code, r.headers.get("Location"))


def test_rfc8252_8_6_public_client_consent_is_never_remembered(stack):
    c = new_client(stack, "--public")
    user = new_user(stack)
    pk = {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    _, _, b = get_code(stack, c, user, **pk)
    r = b.authorize(auth_params(c, **pk))
    assert is_consent_page(r), (r.status_code, r.headers.get("Location"))


# -- 12. failed-login throttling -----------------------------------------------------------------

def test_rfc6819_5_1_4_2_3_login_throttled_after_max_failures_with_generic_message(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    unknown = b.login(page, "no-such-user-" + uuid.uuid4().hex, password="wrong")
    page = unknown                                             # each failure rotates the form's token
    for _ in range(5):                                         # login_max_failures = 5
        page = b.login(page, user, password="wrong password")
        assert page.status_code == 401 and GENERIC_LOGIN_ERROR in page.text
    r = b.login(page, user, password=PASSWORD)
    assert r.status_code == 401 and is_login_page(r), (r.status_code, r.headers.get("Location"))
    assert GENERIC_LOGIN_ERROR in r.text
    # Same answer for locked, wrong-password and unknown users: no account oracle.
    assert unknown.status_code == 401 and GENERIC_LOGIN_ERROR in unknown.text

    # The lock is per username: another user from the same address still gets in.
    other = new_user(stack)
    b2 = Browser(stack)
    r = b2.login(b2.authorize(auth_params(c)), other)
    assert is_consent_page(r), (r.status_code, r.text[:300])


# -- 13. interop with third-party client libraries ---------------------------------------------------

def _drive_browser(stack, url, user):
    b = Browser(stack)
    page = b.s.get(url, allow_redirects=False)
    return b.approve(page, user).headers["Location"]


def test_interop_authlib_oauth2session_pkce(stack):
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    c = new_client(stack)
    user = new_user(stack)
    sess = OAuth2Session(c["client_id"], c["client_secret"], redirect_uri=CB, scope="PRODUCTION",
                         code_challenge_method="S256")
    sess.trust_env = False
    verifier = generate_token(48)
    url, state = sess.create_authorization_url(stack.url + "/authorize", code_verifier=verifier)
    back = _drive_browser(stack, url, user)
    assert query_of(back)["state"] == state
    token = sess.fetch_token(stack.url + "/token", authorization_response=back, code_verifier=verifier,
                             verify=stack.ca)
    assert token["token_type"] == "Bearer" and token["scope"] == "PRODUCTION" and token["access_token"]


def test_interop_requests_oauthlib_oauth2session_pkce(stack):
    requests_oauthlib = pytest.importorskip("requests_oauthlib")
    c = new_client(stack)
    user = new_user(stack)
    sess = requests_oauthlib.OAuth2Session(c["client_id"], redirect_uri=CB, scope=["PRODUCTION"], pkce="S256")
    sess.trust_env = False
    url, state = sess.authorization_url(stack.url + "/authorize")
    back = _drive_browser(stack, url, user)
    assert query_of(back)["state"] == state
    token = sess.fetch_token(stack.url + "/token", authorization_response=back,
                             client_secret=c["client_secret"], verify=stack.ca)
    assert token["token_type"] == "Bearer" and token["access_token"]


def test_first_party_client_with_skip_consent_goes_from_login_to_the_code(stack):
    """Hydra's skip-consent for trusted clients: the login is the only page, unless
    prompt=consent asks; a public client cannot be registered with it."""
    c = stack.add_client("--name", uniq("first-party"), "--redirect-uri", CB, "--skip-consent")
    assert c["skip_consent"] is True
    user = new_user(stack)
    b = Browser(stack)
    r = b.login(b.authorize(auth_params(c)), user)
    assert r.status_code == 303 and "code" in query_of(r.headers["Location"]), r.text[:300]
    assert is_consent_page(b.authorize(auth_params(c, prompt="consent")))
    r = stack.cli("client", "add", "--name", uniq("pub"), "--redirect-uri", CB, "--public", "--skip-consent", check=False)
    assert r.returncode != 0 and "--skip-consent" in r.stderr
    # Turned off again: a new user is asked for consent after logging in.
    stack.cli("client", "update", c["client_id"], "--skip-consent", "no")
    b = Browser(stack)
    assert is_consent_page(b.login(b.authorize(auth_params(c)), new_user(stack)))
