"""OpenID Connect edge cases through real nginx and the worker pool: RP-Initiated Logout 1.0
(what a GET, a forged confirmation, an expired or forged hint, an odd `state` and a
contradicting `client_id` may and may not do), token-type confusion (ID, refresh and access
tokens in each other's places) and /jwks across `gatehouse keys rotate` and `keys retire`."""
import base64
import hashlib
import hmac
import json
import shutil
import time
import urllib.parse

import pytest
from authlib.jose import JsonWebKey

from conftest import Stack, query_of
from oauth_flow import CB, COOKIE, Browser, auth_params, basic, hidden_inputs, uniq
from test_oidc import (JWT, LOGOUT_CB, exchange, header, jwks, login_for_code, oidc_client, oidc_user, signed_in,
                       still_signed_in, verify)

OTHER_LOGOUT_CB = "https://rp-b.example.com/bye"
PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PUBLIC = {"EC": {"kty", "crv", "x", "y", "kid", "use", "alg"}, "RSA": {"kty", "n", "e", "kid", "use", "alg"}}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def claims_of(token):
    return json.loads(unb64(token.split(".")[1]))


def compact(head, claims, sign=lambda signing_input: b""):
    signing_input = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(sign(signing_input.encode()))


def flip(text):
    """`text` with its last character changed."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def hs256(secret):
    return lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest()


def logout(b, method="GET", **params):
    """/logout from browser `b`, parameters in the query (GET) or the form body (POST)."""
    if method == "GET":
        return b.s.get(b.stack.url + "/logout", params=params, allow_redirects=False)
    return b.s.post(b.stack.url + "/logout", data=params, allow_redirects=False)


def is_confirmation(r):
    return r.status_code == 200 and "Sign out?" in r.text and "Location" not in r.headers


def keys_list(stack):
    return json.loads(stack.cli("keys", "list", "--json").stdout)


def retire(stack, kid):
    return stack.cli("keys", "retire", kid)


def bearer(stack, path, token):
    return stack.get(path, headers={"Authorization": "Bearer " + token})


def refresh(stack, client, token):
    return stack.post("/token", auth=basic(client), data={"grant_type": "refresh_token", "refresh_token": token})


@pytest.fixture(scope="module")
def short_stack():
    """A stack whose access tokens, and so ID Tokens, live two seconds."""
    s = Stack(workers=2, extra_config="access_token_lifetime = 2").start()
    yield s
    s.stop()


def wait_until_expired(token):
    exp = claims_of(token)["exp"]
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    assert time.time() > exp + 1


# -- RP-Initiated Logout 1.0 -------------------------------------------------------------------

def test_rp_initiated_logout_2_a_get_with_the_confirmation_fields_does_not_sign_out(stack):
    """Only the POST of the confirmation form confirms: a link or an <img> carrying the form's
    own fields (a GET) shows the question again and ends nothing."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    b, _ = signed_in(stack, c, u)
    page = logout(b, client_id=c["client_id"], post_logout_redirect_uri=LOGOUT_CB, state="g1")
    assert is_confirmation(page)
    fields = hidden_inputs(page.text)
    assert set(fields) == {"csrf", "logout"}, fields
    for extra in ({}, {"client_id": c["client_id"], "post_logout_redirect_uri": LOGOUT_CB, "state": "g1"}):
        r = logout(b, "GET", **fields, **extra)
        assert is_confirmation(r), (extra, r.status_code, r.headers.get("Location"))
        assert still_signed_in(b, c)
    # A copy of the session cookie, for replay after the sign-out; it works now.
    replay = Browser(stack)
    replay.s.cookies.set(COOKIE, b.cookie(), domain="127.0.0.1", path="/")
    assert still_signed_in(replay, c)
    # The same fields, posted: signed out, back to the client.
    r = logout(b, "POST", **fields)
    assert r.status_code == 303 and r.headers["Location"] == LOGOUT_CB + "?state=g1"
    assert not still_signed_in(b, c)
    # Gone server-side: the old cookie, replayed, is nobody (prompt=none: login_required).
    r = replay.authorize(auth_params(c, scope="openid", prompt="none"))
    assert r.status_code == 302 and query_of(r.headers["Location"])["error"] == "login_required"


def test_rp_initiated_logout_2_a_confirmation_post_without_this_sessions_csrf_signs_nobody_out(stack):
    """§2/§6 (and SECURITY-CHECKLIST #120): the confirmation is bound to the browser session's
    CSRF token; a cross-site POST, another session's genuine form, an altered seal or a form
    replayed into a later session ends nothing, redirects nowhere, and is answered with the
    question again rather than a false "signed out"."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u, attacker = oidc_user(stack), oidc_user(stack)
    b, _ = signed_in(stack, c, u)
    mine = hidden_inputs(logout(b, client_id=c["client_id"], post_logout_redirect_uri=LOGOUT_CB, state="s").text)
    # The attacker's own, genuine confirmation form (its session, its CSRF token).
    evil, _ = signed_in(stack, c, attacker)
    theirs = hidden_inputs(logout(evil, client_id=c["client_id"], post_logout_redirect_uri=LOGOUT_CB, state="s").text)
    assert mine["csrf"] != theirs["csrf"]
    for forged in ({"logout": mine["logout"]},                                    # no csrf
                   {"logout": mine["logout"], "csrf": ""},                        # empty
                   {"logout": mine["logout"], "csrf": flip(mine["csrf"])},        # wrong
                   {"logout": mine["logout"], "csrf": theirs["csrf"]},            # another session's
                   theirs,                                                        # another session's form
                   {"logout": theirs["logout"], "csrf": mine["csrf"]},            # sealed for another csrf
                   {"logout": mine["logout"] + "x", "csrf": mine["csrf"]}):       # altered seal
        r = logout(b, "POST", **forged)
        assert "Location" not in r.headers, (forged, r.status_code, r.headers.get("Location"))
        # The session goes on, and the page says so by asking again (never "signed out").
        assert is_confirmation(r), (forged, r.status_code, r.text[:200])
        assert still_signed_in(b, c), forged
    # Without the session cookie the genuine fields end nothing either (and go nowhere).
    r = Browser(stack).s.post(stack.url + "/logout", data=mine, allow_redirects=False)
    assert "Location" not in r.headers and still_signed_in(b, c)
    assert still_signed_in(evil, c)  # none of that touched the attacker's session
    r = logout(b, "POST", **mine)
    assert r.status_code == 303 and r.headers["Location"] == LOGOUT_CB + "?state=s"
    assert not still_signed_in(b, c) and still_signed_in(evil, c)
    # Signed in again in the same browser: the old form, replayed, is not this session's.
    b.approve(b.authorize(auth_params(c, scope="openid")), u)
    assert still_signed_in(b, c)
    r = logout(b, "POST", **mine)
    assert "Location" not in r.headers and still_signed_in(b, c)


def test_rp_initiated_logout_2_an_expired_id_token_hint_is_accepted(short_stack):
    """§2: "The OP SHOULD accept ID Tokens when the RP ... has a current session ... even when
    the exp time has passed" (SECURITY-CHECKLIST #123): signature, issuer and subject are
    checked, exp is not. GET on one browser, the form POST on another."""
    s = short_stack
    c = oidc_client(s, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(s)
    b, id_token = signed_in(s, c, u)
    b2, id_token2 = signed_in(s, c, u)  # a second browser, for the form POST (§2: GET and POST)
    claims = claims_of(id_token)
    assert claims["exp"] - claims["iat"] == 2
    wait_until_expired(id_token2)
    assert still_signed_in(b, c) and still_signed_in(b2, c)
    r = logout(b, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB, state="late")
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB + "?state=late", (r.status_code, r.text[:300])
    assert not still_signed_in(b, c) and still_signed_in(b2, c)
    r = logout(b2, "POST", id_token_hint=id_token2, post_logout_redirect_uri=LOGOUT_CB)
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB
    assert not still_signed_in(b2, c)


STATES = ["a b&c=d", "ünï cødé ☃ 雪", "x+y%2F/?#frag;=&==", "  ", "<b>zq-marker</b>"]
QUERY_LOGOUT_CB = "https://client.example.com/signed-out?tenant=a%20b&x="


def test_rp_initiated_logout_3_state_comes_back_intact_on_the_post_logout_redirect_uri(stack):
    """`state` is opaque: characters that need encoding come back as sent, encoded once,
    whether the hint ends the session at once (302) or the user confirms first (303); after
    the registered URI's own query with `&`; never reflected in a page."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB,
                    "--post-logout-redirect-uri", QUERY_LOGOUT_CB)
    u = oidc_user(stack)

    def check(location, uri, state):
        assert location.isascii() and " " not in location, location
        assert location.startswith(uri + ("&" if "?" in uri else "?") + "state="), location
        parts = urllib.parse.urlsplit(location)
        base = urllib.parse.urlsplit(uri)
        assert parts._replace(query="") == base._replace(query="") and parts.fragment == "", location
        own = urllib.parse.parse_qsl(base.query, keep_blank_values=True)
        assert urllib.parse.parse_qsl(parts.query, keep_blank_values=True) == own + [("state", state)], location

    for state in STATES:
        for uri in (LOGOUT_CB, QUERY_LOGOUT_CB):
            b, id_token = signed_in(stack, c, u)
            r = logout(b, id_token_hint=id_token, post_logout_redirect_uri=uri, state=state)
            assert r.status_code == 302, (state, uri, r.status_code)
            check(r.headers["Location"], uri, state)
        # Through the confirmation form: the state is sealed into it and must survive that too.
        page = logout(b, client_id=c["client_id"], post_logout_redirect_uri=QUERY_LOGOUT_CB, state=state)
        assert page.status_code == 200 and "Location" not in page.headers  # signed out already: nothing to ask
        assert "zq-marker" not in page.text
        b, _ = signed_in(stack, c, u)
        page = logout(b, client_id=c["client_id"], post_logout_redirect_uri=LOGOUT_CB, state=state)
        assert is_confirmation(page)
        assert "zq-marker" not in page.text, "state reflected in the confirmation page"
        r = logout(b, "POST", **hidden_inputs(page.text))
        assert r.status_code == 303, (state, r.status_code)
        check(r.headers["Location"], LOGOUT_CB, state)
        # A URI that is not registered: the signed-out page, which does not echo the state.
        r = logout(b, id_token_hint=id_token, post_logout_redirect_uri="https://evil.example/", state=state)
        assert r.status_code == 200 and "Location" not in r.headers and "zq-marker" not in r.text


def test_rp_initiated_logout_2_a_client_id_that_contradicts_the_hint_is_not_believed(stack):
    """§2: with both, the OP MUST verify that client_id is the hint's audience; a mismatch
    sends the browser to neither client's URI and ends no session without the user's word."""
    a = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    other = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", OTHER_LOGOUT_CB)
    u = oidc_user(stack)
    for uri in (OTHER_LOGOUT_CB, LOGOUT_CB):
        for method in ("GET", "POST"):
            b, id_token = signed_in(stack, a, u)
            r = logout(b, method, id_token_hint=id_token, client_id=other["client_id"], post_logout_redirect_uri=uri,
                       state="x")
            assert r.status_code == 200 and "Location" not in r.headers, (uri, method, r.status_code, r.headers.get("Location"))
            assert LOGOUT_CB not in r.text and OTHER_LOGOUT_CB not in r.text
            # Such a hint is no hint: the session goes on until the user confirms.
            assert is_confirmation(r) and still_signed_in(b, a), (uri, method)
    # The hint's own client_id agrees: back to that client.
    b, id_token = signed_in(stack, a, u)
    r = logout(b, id_token_hint=id_token, client_id=a["client_id"], post_logout_redirect_uri=LOGOUT_CB, state="x")
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB + "?state=x"


def test_rp_initiated_logout_2_a_valid_hint_without_a_session_returns_to_the_client(stack):
    """Nobody signed in in this browser (a new one, one that only saw the login page, one
    already signed out): there is nothing to confirm, and the hint ties the URI to its client."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    signed, id_token = signed_in(stack, c, u)
    fresh = Browser(stack)
    visitor = Browser(stack)
    assert visitor.authorize(auth_params(c, scope="openid")).status_code == 200 and visitor.cookie()
    for b in (fresh, visitor):
        r = logout(b, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB, state="gone")
        assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB + "?state=gone", (r.status_code, r.text[:200])
    assert still_signed_in(signed, c)  # other browsers' logouts end only their own sessions
    r = logout(signed, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB)
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB
    # Signed out already, the same hint again: straight back again.
    r = logout(signed, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB, state="again")
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB + "?state=again"
    # Without a registered URI for that client: the signed-out page.
    r = logout(fresh, id_token_hint=id_token, post_logout_redirect_uri=OTHER_LOGOUT_CB)
    assert r.status_code == 200 and "Location" not in r.headers and "signed out" in r.text


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_rp_initiated_logout_2_a_hint_with_alg_none_hs256_or_an_unknown_kid_needs_confirmation(stack, alg):
    """Classic JWS forgeries of a real hint's claims, none signed by a key of /jwks: none ends
    the session without confirmation, and none sends even a signed-out browser to the URI."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB, "--id-token-alg", alg)
    u = oidc_user(stack)
    b, id_token = signed_in(stack, c, u)
    real_head, claims = header(id_token), claims_of(id_token)
    assert real_head["alg"] == alg
    kid = real_head["kid"]
    ours = JsonWebKey.import_key(next(k for k in stack.get("/jwks").json()["keys"] if k["kid"] == kid))
    attacker = (JsonWebKey.generate_key("EC", "P-256", is_private=True) if alg == "ES256"
                else JsonWebKey.generate_key("RSA", 2048, is_private=True))

    def by_attacker(head):
        return JWT.encode(head, claims, attacker).decode()

    secret = c["client_secret"].encode()
    pem = ours.as_pem(is_private=False)
    real_sig = id_token.split(".")[2]
    forgeries = {
        "alg none, no signature": compact({"alg": "none", "typ": "JWT", "kid": kid}, claims),
        "alg none, real signature": compact({"alg": "none", "typ": "JWT", "kid": kid}, claims).rstrip(".") + "." + real_sig,
        "alg None, no kid": compact({"alg": "None", "typ": "JWT"}, claims),
        "HS256 with the client secret": compact({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, hs256(secret)),
        "HS256 with the client secret, no kid": compact({"alg": "HS256", "typ": "JWT"}, claims, hs256(secret)),
        "HS256 with the public key PEM": compact({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, hs256(pem)),
        "HS256 with the public JWK": compact({"alg": "HS256", "typ": "JWT", "kid": kid}, claims,
                                             hs256(json.dumps(ours.as_dict()).encode())),
        "garbage kid": by_attacker({"alg": alg, "typ": "JWT", "kid": "garbage"}),
        "no kid": by_attacker({"alg": alg, "typ": "JWT"}),
        "path kid": by_attacker({"alg": alg, "typ": "JWT", "kid": "../../../secret.key"}),
        "sql kid": by_attacker({"alg": alg, "typ": "JWT", "kid": "' OR '1'='1"}),
        "dev null kid": by_attacker({"alg": alg, "typ": "JWT", "kid": "../../../../dev/null"}),
        "empty kid": by_attacker({"alg": alg, "typ": "JWT", "kid": ""}),
        "10 KB kid": by_attacker({"alg": alg, "typ": "JWT", "kid": "k" * 10240}),
        "numeric kid": by_attacker({"alg": alg, "typ": "JWT", "kid": 0}),
        "our kid, attacker's key": by_attacker({"alg": alg, "typ": "JWT", "kid": kid}),
        "embedded jwk": by_attacker({"alg": alg, "typ": "JWT", "kid": "x",
                                     "jwk": {k: v for k, v in attacker.as_dict().items() if k not in PRIVATE}}),
        "jku": by_attacker({"alg": alg, "typ": "JWT", "kid": "x", "jku": "https://evil.example/jwks"}),
        "real signature, other header": compact({"alg": alg, "typ": "JWT", "kid": kid, "x": 1}, claims).rstrip(".")
                                        + "." + real_sig,
        "real token, trailing garbage": id_token + "x",
        "real token, four parts": id_token + ".e30",
    }
    for name, hint in forgeries.items():
        for method in ("GET", "POST"):
            r = logout(b, method, id_token_hint=hint, post_logout_redirect_uri=LOGOUT_CB, state="f")
            assert "Location" not in r.headers, (name, method, r.headers.get("Location"))
            assert r.status_code in (200, 400, 414), (name, method, r.status_code)  # 414: nginx, 10 KB in a GET
            if r.status_code == 200:
                assert "Sign out?" in r.text, (name, method)
            assert still_signed_in(b, c), (name, method)
            # Signed out, a forged hint still ties no URI to a client.
            r = logout(Browser(stack), method, id_token_hint=hint, post_logout_redirect_uri=LOGOUT_CB, state="f")
            assert "Location" not in r.headers, (name, method, "no session", r.headers.get("Location"))
    # The genuine hint does.
    r = logout(b, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB)
    assert r.status_code == 302 and r.headers["Location"] == LOGOUT_CB
    assert not still_signed_in(b, c)


def test_rp_initiated_logout_2_a_hint_for_a_removed_client_is_no_valid_hint(stack):
    """SECURITY-CHECKLIST #121: a hint is valid only if its signature verifies with a key of
    /jwks *and its aud is a registered client*. After `client remove` (which removes every
    token issued to the client) its ID Tokens are no valid hint: the user confirms, rather
    than being signed out silently by whoever kept such a token."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    b, id_token = signed_in(stack, c, u)
    stack.cli("client", "remove", c["client_id"])
    other = oidc_client(stack, "--skip-consent")
    assert still_signed_in(b, other)  # the browser session outlives the removed client
    r = logout(b, id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_CB)
    assert "Location" not in r.headers
    assert is_confirmation(r), (r.status_code, r.text[:300])
    assert still_signed_in(b, other)


# -- token-type confusion ------------------------------------------------------------------------

def test_oidc_core_5_3_1_an_id_token_is_not_a_userinfo_access_token(stack):
    """§5.3.1: UserInfo takes the access token. An ID Token (a JWT we signed, naming the
    user) is not one, for opaque and for JWT access-token clients alike."""
    u = oidc_user(stack)
    for extra in ((), ("--access-token-format", "jwt")):
        c = oidc_client(stack, *extra)
        _, code = login_for_code(stack, c, u, scope="openid profile")
        t = exchange(stack, c, code)
        verify(stack, t["id_token"], c)
        r = bearer(stack, "/userinfo", t["id_token"])
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], (extra, r.status_code)
        r = stack.post("/userinfo", data={"access_token": t["id_token"]})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], extra
        assert bearer(stack, "/example/api/", t["id_token"]).status_code == 401
        assert bearer(stack, "/userinfo", t["access_token"]).status_code == 200


def test_rfc6750_3_1_a_refresh_token_is_not_a_bearer_token_at_userinfo(stack):
    u = oidc_user(stack)
    for extra in ((), ("--access-token-format", "jwt")):
        c = oidc_client(stack, *extra)
        _, code = login_for_code(stack, c, u, scope="openid")
        t = exchange(stack, c, code)
        for send in (lambda tok: bearer(stack, "/userinfo", tok),
                     lambda tok: stack.post("/userinfo", headers={"Authorization": "Bearer " + tok}),
                     lambda tok: stack.post("/userinfo", data={"access_token": tok})):
            r = send(t["refresh_token"])
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], (extra, r.status_code)
        assert bearer(stack, "/example/api/", t["refresh_token"]).status_code == 401
        # Refused there, the refresh token is still a refresh token.
        assert refresh(stack, c, t["refresh_token"]).status_code == 200


def test_rfc6749_6_an_access_token_or_id_token_is_not_a_refresh_token_nor_a_code(stack):
    """§6, §4.1.3, §5.2: only a refresh token issued to the client refreshes and only a code
    redeems; anything else is invalid_grant, and the failed attempts revoke nothing."""
    u = oidc_user(stack)
    opaque = oidc_client(stack)
    jwt_client = oidc_client(stack, "--access-token-format", "jwt")
    for c in (opaque, jwt_client):
        _, code = login_for_code(stack, c, u, scope="openid")
        t = exchange(stack, c, code)
        _, unused_code = login_for_code(stack, c, u, scope="openid")
        for name, value in (("access token", t["access_token"]), ("id token", t["id_token"]),
                            ("authorization code", unused_code)):
            r = refresh(stack, c, value)
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (name, r.status_code, r.text)
        # Nor is any token an authorization code (§4.1.3).
        for name, value in (("refresh token", t["refresh_token"]), ("access token", t["access_token"]),
                            ("id token", t["id_token"])):
            r = stack.post("/token", auth=basic(c), data={"grant_type": "authorization_code", "code": value,
                                                          "redirect_uri": CB})
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", (name, r.text)
        assert bearer(stack, "/userinfo", t["access_token"]).status_code == 200
        r = refresh(stack, c, t["refresh_token"])
        assert r.status_code == 200, r.text
        exchange(stack, c, unused_code)


def test_oidc_core_5_3_a_client_credentials_token_is_not_a_user_at_userinfo(stack):
    """A client-credentials token carries no End-User, even with `openid` in its scope (and a
    JWT one has the client id as `sub`): UserInfo must refuse it, never answer as if the
    client were a user."""
    for extra in ((), ("--access-token-format", "jwt")):
        cc = stack.add_client("--name", uniq("M2M"), "--grant-types", "client_credentials", "--scope", "openid profile",
                              *extra)
        r = stack.post("/token", auth=basic(cc), data={"grant_type": "client_credentials", "scope": "openid profile"})
        if r.status_code != 200:
            assert r.json()["error"] in ("invalid_scope", "unauthorized_client"), r.text  # refusing openid here is fine too
            continue
        token = r.json()["access_token"]
        assert "id_token" not in r.json()
        r = bearer(stack, "/userinfo", token)
        assert r.status_code in (401, 403) and "sub" not in r.text, (extra, r.status_code, r.text)


def test_rfc6750_2_3_userinfo_takes_no_token_from_the_query(stack):
    """SECURITY-CHECKLIST #117: `?access_token=` (§2.3, which leaks tokens into logs and
    Referer) is not a way in: answered as no credentials at all."""
    c = oidc_client(stack)
    _, code = login_for_code(stack, c, oidc_user(stack), scope="openid")
    t = exchange(stack, c, code)
    for method in (stack.get, stack.post):
        r = method("/userinfo?" + urllib.parse.urlencode({"access_token": t["access_token"]}))
        assert r.status_code == 401 and "sub" not in r.text and "error=" not in r.headers["WWW-Authenticate"]


def test_rfc6750_2_userinfo_takes_one_token_by_one_method(stack):
    """§2: "Clients MUST NOT use more than one method to transmit the token in each request";
    §3.1: a request that "uses more than one method for including an access token" is
    invalid_request, and the resource server SHOULD answer 400, not serve whichever token it
    happens to read (here: an access token beside an ID Token, or beside itself)."""
    c = oidc_client(stack)
    _, code = login_for_code(stack, c, oidc_user(stack), scope="openid")
    t = exchange(stack, c, code)
    for in_header, in_body in ((t["access_token"], t["id_token"]), (t["id_token"], t["access_token"]),
                               (t["access_token"], t["access_token"])):
        r = stack.post("/userinfo", headers={"Authorization": "Bearer " + in_header}, data={"access_token": in_body})
        assert r.status_code == 400 and r.json().get("error") == "invalid_request", (r.status_code, r.text)
    # A header beside an empty or unrelated form is one method: served (libraries do post that).
    form = {"Authorization": "Bearer " + t["access_token"], "Content-Type": "application/x-www-form-urlencoded"}
    for body in ("", "client_id=x"):
        r = stack.post("/userinfo", headers=form, data=body)
        assert r.status_code == 200 and "sub" in r.json(), (body, r.status_code, r.text)
    # No header and a form without a token: no credentials (§3.1), not a malformed request.
    r = stack.post("/userinfo", data={"client_id": "x"})
    assert r.status_code == 401 and "error=" not in r.headers["WWW-Authenticate"], (r.status_code, r.text)


def test_rfc9068_jwt_access_token_works_at_userinfo_only_while_not_revoked(stack):
    """A JWT access token verifies offline for ever (till exp), but Gatehouse's own endpoints
    check the record: revoking its refresh token (the family) or the user's tokens ends it."""
    c = oidc_client(stack, "--access-token-format", "jwt")
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid")
    t = exchange(stack, c, code)
    assert header(t["access_token"])["typ"] == "at+jwt"
    assert bearer(stack, "/userinfo", t["access_token"]).status_code == 200
    r = refresh(stack, c, t["refresh_token"])
    assert r.status_code == 200
    t2 = r.json()
    assert header(t2["access_token"])["typ"] == "at+jwt" and bearer(stack, "/userinfo", t2["access_token"]).status_code == 200
    # RFC 7009 §2.1 / DESIGN: revoking the refresh token revokes the access tokens of its family.
    assert stack.post("/revoke", auth=basic(c), data={"token": t2["refresh_token"]}).status_code == 200
    for token in (t["access_token"], t2["access_token"]):
        r = bearer(stack, "/userinfo", token)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert bearer(stack, "/example/api/", token).status_code == 401
    JWT.decode(t2["access_token"], jwks(stack)).validate(now=int(time.time()))  # still a valid signature offline
    # `gatehouse token revoke --user`.
    _, code = login_for_code(stack, c, u, scope="openid")
    t3 = exchange(stack, c, code)
    assert bearer(stack, "/userinfo", t3["access_token"]).status_code == 200
    stack.cli("token", "revoke", "--user", u)
    assert bearer(stack, "/userinfo", t3["access_token"]).status_code == 401
    assert refresh(stack, c, t3["refresh_token"]).json()["error"] == "invalid_grant"
    # `user disable` and `client remove` (SECURITY-CHECKLIST #127): at /userinfo, at the nginx
    # location and at /introspect, though signature and exp still pass.
    rs = stack.add_client("--name", uniq("RS"), "--grant-types", "client_credentials", "--resource-server")
    for how in ("user disable", "client remove"):
        c = oidc_client(stack, "--access-token-format", "jwt")
        u = oidc_user(stack)
        _, code = login_for_code(stack, c, u, scope="openid")
        at = exchange(stack, c, code)["access_token"]
        assert bearer(stack, "/userinfo", at).status_code == 200
        assert stack.post("/introspect", auth=basic(rs), data={"token": at}).json()["active"] is True
        stack.cli(*how.split(), u if how == "user disable" else c["client_id"])
        r = bearer(stack, "/userinfo", at)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], how
        assert bearer(stack, "/example/api/", at).status_code == 401, how
        assert stack.post("/introspect", auth=basic(rs), data={"token": at}).json() == {"active": False}, how
        JWT.decode(at, jwks(stack)).validate(now=int(time.time()))


def test_rfc9068_an_expired_jwt_access_token_is_refused_at_userinfo(short_stack):
    """RFC 9068 §4 / RFC 6750 §3.1: past its exp a JWT access token is invalid_token, at
    /userinfo and at the nginx location alike (the record's expiry, not just the claim)."""
    s = short_stack
    c = oidc_client(s, "--access-token-format", "jwt")
    u = oidc_user(s)
    _, code = login_for_code(s, c, u, scope="openid")
    t = exchange(s, c, code)
    assert bearer(s, "/userinfo", t["access_token"]).status_code == 200
    wait_until_expired(t["access_token"])
    r = bearer(s, "/userinfo", t["access_token"])
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert bearer(s, "/example/api/", t["access_token"]).status_code == 401


# -- /jwks across rotation and retirement ---------------------------------------------------------

def check_public(key):
    """One JWK of /jwks: the public members of its key type and nothing else (RFC 7518 §6)."""
    assert not PRIVATE & set(key), key
    assert set(key) == PUBLIC[key["kty"]], key
    assert key["use"] == "sig" and key["kid"]
    if key["kty"] == "EC":
        assert key["alg"] == "ES256" and key["crv"] == "P-256"
        assert len(unb64(key["x"])) == 32 and len(unb64(key["y"])) == 32
    else:
        assert key["alg"] == "RS256" and unb64(key["e"]) == b"\x01\x00\x01"
        assert len(unb64(key["n"])) * 8 >= 2048
    JsonWebKey.import_key(key)  # a key a relying party can load


def check_jwks(stack):
    r = stack.get("/jwks")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    cc = [d.strip() for d in r.headers["Cache-Control"].split(",")]
    ages = [int(d.split("=", 1)[1]) for d in cc if d.startswith("max-age=")]
    assert len(ages) == 1 and ages[0] > 0, cc
    assert "no-store" not in cc and "private" not in cc
    doc = r.json()
    assert set(doc) == {"keys"}
    for key in doc["keys"]:
        check_public(key)
    kids = [k["kid"] for k in doc["keys"]]
    assert len(kids) == len(set(kids)), kids
    assert stack.get("/oauth2/jwks").json() == doc
    return {k["kid"]: k for k in doc["keys"]}


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_rfc7517_5_a_rotated_key_is_in_jwks_at_once_and_a_retired_one_stays(stack, alg):
    """DESIGN (Signing): `keys rotate` publishes the new key in /jwks at once (every request
    reads the store); `keys retire` stops it signing but keeps it listed while tokens it
    signed live. Public members only, for either key type, at every step."""
    c = oidc_client(stack, "--id-token-alg", alg)
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid")
    before_token = exchange(stack, c, code)["id_token"]
    old = [k["kid"] for k in keys_list(stack) if k["alg"] == alg and k["status"] == "active"]
    assert old and header(before_token)["kid"] in check_jwks(stack)

    new = json.loads(stack.cli("keys", "rotate", "--alg", alg, "--json").stdout)
    assert new["alg"] == alg and new["status"] == "active"
    listed = check_jwks(stack)  # no sleep: /jwks reads the store on every request
    assert new["kid"] in listed and listed[new["kid"]]["alg"] == alg
    assert listed[new["kid"]]["kty"] == {"ES256": "EC", "RS256": "RSA"}[alg]
    ahead = json.loads(stack.cli("keys", "rotate", "--alg", alg, "--publish-ahead", "3600", "--json").stdout)
    assert ahead["status"] == "published" and ahead["kid"] in check_jwks(stack)

    for kid in old:
        retire(stack, kid)
    status = {k["kid"]: k["status"] for k in keys_list(stack)}
    assert all(status[kid] == "retired" for kid in old) and status[new["kid"]] == "active"
    listed = check_jwks(stack)
    assert set(old) <= set(listed), (old, list(listed))  # right after retirement: still published
    verify(stack, before_token, c)  # what the retired key signed still verifies against /jwks
    retire(stack, ahead["kid"])  # leave one signing key per algorithm, nothing pending
    listed = check_jwks(stack)
    assert ahead["kid"] in listed and new["kid"] in listed
    # A signer for the algorithm remains: tokens keep coming and verify.
    _, code = login_for_code(stack, c, u, scope="openid")
    verify(stack, exchange(stack, c, code)["id_token"], c)


def test_rfc7517_jwks_never_holds_a_private_member(stack):
    """Every key of /jwks (either algorithm, any status), and `keys list --json` too, is free
    of private members; Cache-Control lets relying parties cache it."""
    for alg in ("ES256", "RS256"):
        c = oidc_client(stack, "--id-token-alg", alg)
        _, code = login_for_code(stack, c, oidc_user(stack), scope="openid")
        assert header(exchange(stack, c, code)["id_token"])["kid"] in check_jwks(stack)
    listed = check_jwks(stack)
    assert {k["kty"] for k in listed.values()} == {"EC", "RSA"}
    assert {k["kid"] for k in keys_list(stack) if k["status"] != "retired"} <= set(listed)
    for k in keys_list(stack):
        assert set(k) <= {"kid", "alg", "status", "created_at", "active_from", "retired_at"} and not PRIVATE & set(k), k
    raw = stack.get("/jwks").text
    for member in PRIVATE:
        assert f'"{member}"' not in raw, member


def test_keys_retire_takes_every_kid_that_keys_rotate_can_make():
    """DESIGN.md: `gatehouse keys retire KID`, KID as `keys list` prints it. A kid is 12 random
    bytes in base64url, so about one key in 64 gets a kid beginning with "-" (this file's
    first runs drew `-G3DI9Z352G9fPdQ`). Such a kid is made here directly (renamed in the
    store: `keys retire` reads only the row, never the sealed key), on an instance that is
    migrated but never started."""
    s = Stack(workers=1)
    try:
        first = json.loads(s.cli("keys", "rotate", "--alg", "ES256", "--json").stdout)
        second = json.loads(s.cli("keys", "rotate", "--alg", "ES256", "--json").stdout)
        dashed = "-" + first["kid"][1:]
        s.sql(f"UPDATE signing_keys SET kid = '{dashed}' WHERE kid = '{first['kid']}'")
        assert {k["kid"] for k in keys_list(s)} == {dashed, second["kid"]}
        r = s.cli("keys", "retire", dashed, check=False)
        assert r.returncode == 0, r.stderr
        assert {k["kid"]: k["status"] for k in keys_list(s)}[dashed] == "retired"
        # New kids never start with '-' (as client ids), and `--` before a kid works too.
        for _ in range(40):
            made = json.loads(s.cli("keys", "rotate", "--alg", "ES256", "--json").stdout)["kid"]
            assert not made.startswith("-"), made
        assert s.cli("keys", "retire", "--", second["kid"]).returncode == 0
    finally:
        shutil.rmtree(s.home, ignore_errors=True)
