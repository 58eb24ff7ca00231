"""OpenID Connect through real nginx and the worker pool: ID Tokens verified by a third-party
library (authlib.jose) against /jwks, for ES256 and RS256; nonce, at_hash, auth_time;
UserInfo; discovery; prompt=none, max_age, login_hint; JWT access tokens (RFC 9068);
signing-key rotation with the CLI."""
import base64
import hashlib
import json
import re
import time

import pytest
from authlib.jose import JsonWebKey, JsonWebToken

from conftest import PASSWORD, query_of
from oauth_flow import CB, Browser, auth_params, basic, is_consent_page, is_login_page, uniq

JWT = JsonWebToken(["ES256", "RS256"])
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def oidc_client(stack, *extra):
    return stack.add_client("--name", uniq("RP"), "--redirect-uri", CB, "--scope", "openid profile email PRODUCTION",
                            "--default-scope", "openid", *extra)


def oidc_user(stack, *attributes):
    u = uniq("alice")
    stack.cli("user", "add", "--username", u, "--password-stdin", *attributes, stdin=PASSWORD + "\n")
    return u


def jwks(stack):
    r = stack.get("/jwks")
    assert r.status_code == 200, r.text
    return JsonWebKey.import_key_set(r.json())


def verify(stack, token, client, **claims):
    """Verifies signature (against /jwks) and the OIDC Core §3.1.3.7 claims; answers the claims."""
    options = {"iss": {"essential": True, "value": stack.url}, "aud": {"essential": True, "value": client["client_id"]},
               "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}
    for k, v in claims.items():
        options[k] = {"essential": True, "value": v}
    decoded = JWT.decode(token, jwks(stack), claims_options=options)
    decoded.validate(now=int(time.time()))
    return decoded


def header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def at_hash(access_token):
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def login_for_code(stack, client, user, browser=None, **extra):
    b = browser or Browser(stack)
    r = b.approve(b.authorize(auth_params(client, **extra)), user)
    q = query_of(r.headers["location"])
    assert "code" in q, q
    return b, q["code"]


def exchange(stack, client, code):
    r = stack.post("/token", auth=basic(client), data={"grant_type": "authorization_code", "code": code, "redirect_uri": CB})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_oidc_core_3_1_3_7_id_token_verifies_against_jwks(stack, alg):
    c = oidc_client(stack, "--id-token-alg", alg)
    u = oidc_user(stack)
    before = int(time.time())
    _, code = login_for_code(stack, c, u, scope="openid", nonce="n-0S6_WzA2Mj")
    t = exchange(stack, c, code)
    claims = verify(stack, t["id_token"], c, nonce="n-0S6_WzA2Mj")
    assert header(t["id_token"])["alg"] == alg and header(t["id_token"])["kid"]
    assert UUID.match(claims["sub"]), claims
    assert claims["at_hash"] == at_hash(t["access_token"])  # §3.1.3.6
    assert before - 1 <= claims["auth_time"] <= int(time.time()) + 1
    assert claims["exp"] - claims["iat"] == 3600


def test_oidc_core_12_2_refresh_gives_a_new_id_token_with_the_original_auth_time(stack):
    c = oidc_client(stack)
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid", nonce="abc")
    first = exchange(stack, c, code)
    one = verify(stack, first["id_token"], c)
    time.sleep(1.1)
    r = stack.post("/token", auth=basic(c), data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    two = verify(stack, second["id_token"], c)
    assert (two["sub"], two["aud"], two["iss"], two["auth_time"]) == (one["sub"], one["aud"], one["iss"], one["auth_time"])
    assert two["iat"] > one["iat"] and "nonce" not in two
    assert two["at_hash"] == at_hash(second["access_token"])


def test_no_openid_no_id_token(stack):
    c = oidc_client(stack)
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="PRODUCTION")
    assert "id_token" not in exchange(stack, c, code)


def test_oidc_core_5_3_userinfo_releases_the_claims_of_the_scopes(stack):
    c = oidc_client(stack)
    u = oidc_user(stack, "--email", "alice@example.com", "--email-verified", "--name", "Alice Liddell",
                  "--given-name", "Alice", "--family-name", "Liddell")
    _, code = login_for_code(stack, c, u, scope="openid profile email")
    t = exchange(stack, c, code)
    sub = verify(stack, t["id_token"], c)["sub"]
    for method in ("GET", "POST"):
        r = (stack.get if method == "GET" else stack.post)("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
        assert r.status_code == 200, r.text
        assert r.headers["Cache-Control"] == "no-store"
        assert r.json() == {"sub": sub, "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
                            "preferred_username": u, "updated_at": r.json()["updated_at"], "email": "alice@example.com",
                            "email_verified": True}
    # The WSO2 path, and the form-body token (RFC 6750 §2.2).
    r = stack.post("/oauth2/userinfo", data={"access_token": t["access_token"]})
    assert r.status_code == 200 and r.json()["sub"] == sub
    # Only what the scope allows: openid alone gives sub alone.
    _, code = login_for_code(stack, c, u, scope="openid")
    t2 = exchange(stack, c, code)
    assert stack.get("/userinfo", headers={"Authorization": "Bearer " + t2["access_token"]}).json() == {"sub": sub}
    # The same sub at /introspect (DESIGN: one subject identifier everywhere).
    rs = stack.add_client("--name", uniq("RS"), "--grant-types", "client_credentials", "--resource-server")
    r = stack.post("/introspect", auth=basic(rs), data={"token": t["access_token"]})
    assert r.json()["sub"] == sub and r.json()["username"] == u


def test_rfc6750_3_1_userinfo_errors(stack):
    c = oidc_client(stack)
    u = oidc_user(stack)
    r = stack.get("/userinfo")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer") and "error=" not in r.headers["WWW-Authenticate"]
    r = stack.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    _, code = login_for_code(stack, c, u, scope="PRODUCTION")
    t = exchange(stack, c, code)
    r = stack.get("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    r = stack.get("/userinfo", headers={"Authorization": "Bearer " + t["refresh_token"]})
    assert r.status_code == 401
    stack.post("/revoke", auth=basic(c), data={"token": t["refresh_token"]})
    _, code = login_for_code(stack, c, u, scope="openid")
    t = exchange(stack, c, code)
    stack.post("/revoke", auth=basic(c), data={"token": t["access_token"]})
    r = stack.get("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_discovery_3_document_at_every_path(stack):
    docs = [stack.get(p) for p in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                   "/oauth2/token/.well-known/openid-configuration",
                                   "/oauth2/oidcdiscovery/.well-known/openid-configuration")]
    assert all(r.status_code == 200 for r in docs)
    d = docs[0].json()
    assert all(r.json() == d for r in docs)
    assert d["issuer"] == stack.url
    for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "end_session_endpoint",
              "scopes_supported", "response_types_supported", "subject_types_supported",
              "id_token_signing_alg_values_supported", "claims_supported", "code_challenge_methods_supported",
              "grant_types_supported", "token_endpoint_auth_methods_supported"):
        assert k in d, k
    assert d["jwks_uri"] == stack.url + "/jwks" and "ES256" in d["id_token_signing_alg_values_supported"]
    r = stack.get("/jwks")
    assert "max-age" in r.headers["Cache-Control"]
    for key in r.json()["keys"]:
        assert key["kid"] and key["use"] == "sig" and "d" not in key and "p" not in key
    assert stack.get("/oauth2/jwks").json() == r.json()


def test_oidc_core_3_1_2_1_openid_request_requires_redirect_uri(stack):
    c = oidc_client(stack)
    b = Browser(stack)
    p = auth_params(c, scope="openid")
    del p["redirect_uri"]
    r = b.authorize(p)
    assert r.status_code == 400 and "Location" not in r.headers


def test_oidc_core_3_1_2_6_prompt_none(stack):
    c = oidc_client(stack)
    u = oidc_user(stack)
    b = Browser(stack)
    r = b.authorize(auth_params(c, scope="openid", prompt="none"))
    assert r.status_code == 302 and query_of(r.headers["location"])["error"] == "login_required"
    # Logged in, consent not yet given: consent_required.
    page = b.authorize(auth_params(c, scope="openid"))
    consent = b.login(page, u)
    assert is_consent_page(consent)
    r = b.authorize(auth_params(c, scope="openid", prompt="none"))
    assert query_of(r.headers["location"])["error"] == "consent_required"
    b.submit(consent, decision="allow")
    r = b.authorize(auth_params(c, scope="openid", prompt="none"))
    assert r.status_code == 302 and "code" in query_of(r.headers["location"])
    r = b.authorize(auth_params(c, scope="openid", prompt="none login"))
    assert query_of(r.headers["location"])["error"] == "invalid_request"


def test_oidc_core_3_1_2_1_max_age_forces_a_new_login_and_login_hint_prefills(stack):
    c = oidc_client(stack, "--skip-consent")
    u = oidc_user(stack)
    b, code = login_for_code(stack, c, u, scope="openid")
    first = verify(stack, exchange(stack, c, code)["id_token"], c)
    time.sleep(2.1)
    r = b.authorize(auth_params(c, scope="openid", max_age="1", login_hint=u))
    assert is_login_page(r) and f'value="{u}"' in r.text
    r = b.login(r, u)
    assert r.status_code == 303
    second = verify(stack, exchange(stack, c, query_of(r.headers["location"])["code"])["id_token"], c)
    assert second["auth_time"] >= first["auth_time"] + 2
    r = b.authorize(auth_params(c, scope="openid", max_age="600"))
    assert r.status_code == 302 and "code" in query_of(r.headers["location"])


def test_oidc_core_3_1_2_1_prompt_login_and_max_age_cannot_be_skipped_by_posting_the_consent_step(stack):
    """The login page that prompt=login or max_age shows to a signed-in browser carries the
    session's CSRF token: posting its fields as the consent step, without a password, must
    not issue a code on the older login."""
    c = oidc_client(stack, "--skip-consent")
    u = oidc_user(stack)
    b, _ = login_for_code(stack, c, u, scope="openid")
    time.sleep(1.1)
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        page = b.authorize(auth_params(c, scope="openid", **extra))
        assert is_login_page(page), (extra, page.status_code)
        r = b.submit(page, drop=("username", "password"), step="consent", decision="allow")
        assert "code" not in query_of(r.headers.get("location", "")), (extra, r.status_code, r.headers.get("location"))
        assert r.status_code == 200 and is_login_page(r), (extra, r.status_code)
    # The password still works, and the code it gives has a fresh auth_time.
    page = b.authorize(auth_params(c, scope="openid", prompt="login"))
    r = b.login(page, u)
    assert r.status_code == 303 and "code" in query_of(r.headers["location"])
    # A client cannot plant the marker itself to lock a user out: it is not taken from a request.
    r = b.authorize(auth_params(c, scope="openid", gatehouse_login_after="99999999999"))
    assert r.status_code == 302 and "code" in query_of(r.headers["location"])


def test_oidc_core_3_1_2_6_prompt_none_never_relaxes_client_or_redirect_checks(stack):
    """prompt=none with a bad client or redirect_uri is an error page, never a redirect,
    whether or not the browser is signed in (RFC 6749 §4.1.2.1)."""
    c = oidc_client(stack, "--skip-consent")
    u = oidc_user(stack)
    signed, _ = login_for_code(stack, c, u, scope="openid")
    for b in (Browser(stack), signed):
        for bad in ({"client_id": "no-such-client"}, {"redirect_uri": "https://evil.example/cb"},
                    {"redirect_uri": CB.upper()}, {"redirect_uri": CB + "?x=1"}):
            r = b.authorize({**auth_params(c, scope="openid", prompt="none"), **bad})
            assert r.status_code == 400 and "Location" not in r.headers, (bad, r.status_code, r.headers.get("Location"))
            assert r.headers["Content-Type"].startswith("text/html")


def test_rp_initiated_logout_3_post_logout_redirect_uri_matches_exactly(stack):
    """With a valid hint the session ends, but only the registered URI, byte for byte, is a
    place to send the browser: look-alikes get the signed-out page."""
    other = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", "https://other.example/bye")
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    for uri in (LOGOUT_CB + "/", LOGOUT_CB.replace("client.example.com", "CLIENT.example.com"), LOGOUT_CB + "?x=1",
                "https://client.example.com@evil.example/signed-out", "/\\evil.example", CB, "https://other.example/bye"):
        b, id_token = signed_in(stack, c, u)
        r = b.s.get(stack.url + "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": uri},
                    allow_redirects=False)
        assert r.status_code == 200 and "Location" not in r.headers and "signed out" in r.text, (uri, r.status_code)
        assert not still_signed_in(b, c)
    assert other  # registered for another client: never a destination for this one's hint


def test_rp_initiated_logout_a_jwt_access_token_is_not_an_id_token_hint(stack):
    """RFC 9068 access tokens carry the same iss, sub and aud as an ID Token: one sent as
    id_token_hint (by any API that received it) must not sign its user out."""
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB, "--access-token-format", "jwt")
    u = oidc_user(stack)
    b, code = login_for_code(stack, c, u, scope="openid")
    t = exchange(stack, c, code)
    assert header(t["access_token"])["typ"] == "at+jwt"
    r = b.s.get(stack.url + "/logout", params={"id_token_hint": t["access_token"], "post_logout_redirect_uri": LOGOUT_CB},
                allow_redirects=False)
    assert r.status_code == 200 and "Sign out?" in r.text and "Location" not in r.headers
    assert still_signed_in(b, c)
    # The ID Token of the same answer does.
    r = b.s.get(stack.url + "/logout", params={"id_token_hint": t["id_token"], "post_logout_redirect_uri": LOGOUT_CB},
                allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == LOGOUT_CB
    assert not still_signed_in(b, c)


def test_consent_page_names_the_claims_in_words(stack):
    c = oidc_client(stack)
    u = oidc_user(stack)
    b = Browser(stack)
    consent = b.login(b.authorize(auth_params(c, scope="openid email profile")), u)
    assert is_consent_page(consent)
    assert "your email address" in consent.text and "your name and username" in consent.text


def test_rfc9068_jwt_access_token_verifies_offline_and_revokes_like_an_opaque_one(stack):
    c = oidc_client(stack, "--access-token-format", "jwt")
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid PRODUCTION")
    t = exchange(stack, c, code)
    assert header(t["access_token"])["typ"] == "at+jwt"  # RFC 9068 §2.1
    claims = JWT.decode(t["access_token"], jwks(stack))
    claims.validate(now=int(time.time()))
    assert claims["iss"] == stack.url and claims["client_id"] == c["client_id"] and claims["aud"] == c["client_id"]
    assert claims["scope"] == "openid PRODUCTION" and claims["jti"] and UUID.match(claims["sub"])
    assert stack.get("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]}).status_code == 200
    stack.post("/revoke", auth=basic(c), data={"token": t["access_token"]})
    assert stack.get("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]}).status_code == 401
    cc = stack.add_client("--name", uniq("M2M"), "--grant-types", "client_credentials", "--access-token-format", "jwt")
    r = stack.post("/token", auth=basic(cc), data={"grant_type": "client_credentials"})
    m2m = JWT.decode(r.json()["access_token"], jwks(stack))
    assert m2m["sub"] == cc["client_id"]


def test_keys_rotate_publishes_first_and_retire_keeps_the_old_key_published(stack):
    before = json.loads(stack.cli("keys", "list", "--json").stdout)
    es = [k for k in before if k["alg"] == "ES256" and k["status"] == "active"]
    assert es, before
    new = json.loads(stack.cli("keys", "rotate", "--alg", "ES256", "--publish-ahead", "3600", "--json").stdout)
    assert new["status"] == "published"
    time.sleep(31)  # workers re-read the key list every 30 s
    kids = [k["kid"] for k in stack.get("/jwks").json()["keys"]]
    assert new["kid"] in kids
    c = oidc_client(stack)
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid")
    t = exchange(stack, c, code)
    assert header(t["id_token"])["kid"] != new["kid"]  # published ahead: not signing yet
    r = stack.cli("keys", "retire", es[-1]["kid"], check=False)
    assert r.returncode != 0 and "last active" in r.stderr
    verify(stack, t["id_token"], c)


LOGOUT_CB = "https://client.example.com/signed-out"


def signed_in(stack, client, user):
    """A browser signed in for `client`, and the ID Token it got."""
    b, code = login_for_code(stack, client, user, scope="openid")
    return b, exchange(stack, client, code)["id_token"]


def still_signed_in(b, client):
    r = b.authorize(auth_params(client, scope="openid"))
    return r.status_code == 302 and "code" in query_of(r.headers["location"])


def test_rp_initiated_logout_3_valid_hint_ends_the_session_and_returns_with_state(stack):
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    b, id_token = signed_in(stack, c, u)
    assert still_signed_in(b, c)
    r = b.s.get(stack.url + "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_CB,
                                                "state": "st-1"}, allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == LOGOUT_CB + "?state=st-1"
    assert not still_signed_in(b, c)
    # WSO2's path, an unregistered return address: signed out, never redirected there.
    b, id_token = signed_in(stack, c, u)
    r = b.s.get(stack.url + "/oidc/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/"},
                allow_redirects=False)
    assert r.status_code == 200 and "signed out" in r.text and "Location" not in r.headers
    assert not still_signed_in(b, c)


def test_rp_initiated_logout_2_without_a_hint_the_user_confirms(stack):
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    u = oidc_user(stack)
    b, _ = signed_in(stack, c, u)
    page = b.s.get(stack.url + "/logout", params={"client_id": c["client_id"], "post_logout_redirect_uri": LOGOUT_CB,
                                                   "state": "s2"}, allow_redirects=False)
    assert page.status_code == 200 and "Sign out?" in page.text and still_signed_in(b, c)
    # A cross-site POST without the form's CSRF token signs nobody out.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    forged = b.s.post(stack.url + "/logout", data={"logout": fields["logout"]}, allow_redirects=False)
    assert "Location" not in forged.headers and still_signed_in(b, c)
    r = b.s.post(stack.url + "/logout", data=fields, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == LOGOUT_CB + "?state=s2"
    assert not still_signed_in(b, c)


def test_rp_initiated_logout_a_hint_for_another_user_or_a_forged_one_needs_confirmation(stack):
    c = oidc_client(stack, "--skip-consent", "--post-logout-redirect-uri", LOGOUT_CB)
    victim, attacker = oidc_user(stack), oidc_user(stack)
    b, good = signed_in(stack, c, victim)
    _, others = signed_in(stack, c, attacker)
    parts = good.split(".")
    forged = parts[0] + "." + parts[1] + "." + parts[2][:-4] + "AAAA"
    for hint in (others, forged):
        r = b.s.get(stack.url + "/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_CB},
                    allow_redirects=False)
        assert r.status_code == 200 and "Sign out?" in r.text
        assert still_signed_in(b, c)


def test_key_rotation_under_load_no_verification_fails(stack):
    """Clients fetch ID Tokens while keys rotate (published at once, no --publish-ahead) and the
    old ones retire; a relying party caches /jwks and refetches it only for an unknown kid."""
    import threading
    c = oidc_client(stack, "--skip-consent")
    u = oidc_user(stack)
    b, _ = signed_in(stack, c, u)
    cache = {"set": jwks(stack)}
    failures, verified = [], [0]
    stop = threading.Event()

    def rotate():
        for _ in range(3):
            old = [k["kid"] for k in json.loads(stack.cli("keys", "list", "--json").stdout)
                   if k["alg"] == "ES256" and k["status"] == "active"]
            stack.cli("keys", "rotate", "--alg", "ES256")
            time.sleep(1.0)
            for kid in old:
                stack.cli("keys", "retire", kid)
            time.sleep(1.0)
        stop.set()

    t = threading.Thread(target=rotate)
    t.start()
    while not stop.is_set():
        r = b.authorize(auth_params(c, scope="openid"))
        token = exchange(stack, c, query_of(r.headers["location"])["code"])["id_token"]
        kid = header(token)["kid"]
        if not any(k.kid == kid for k in cache["set"].keys):
            cache["set"] = jwks(stack)  # an unknown kid: refetch once
        try:
            JWT.decode(token, cache["set"]).validate(now=int(time.time()))
            verified[0] += 1
        except Exception as e:  # noqa: BLE001 - any failure counts
            failures.append(f"{kid}: {e}")
    t.join()
    assert not failures, failures[:5]
    assert verified[0] > 20


def test_rfc9068_4_a_forged_or_altered_jwt_access_token_is_refused(stack):
    """§4: the resource server validates the token; Gatehouse knows its own tokens by their
    hash, so a JWT signed by another key, or altered, is not a token it issued."""
    c = oidc_client(stack, "--access-token-format", "jwt")
    u = oidc_user(stack)
    _, code = login_for_code(stack, c, u, scope="openid PRODUCTION")
    real = exchange(stack, c, code)["access_token"]
    claims = JWT.decode(real, jwks(stack))
    attacker = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    forged = JWT.encode({"alg": "ES256", "typ": "at+jwt", "kid": header(real)["kid"]}, dict(claims), attacker).decode()
    for token in (forged, real[:-2] + ("AA" if not real.endswith("AA") else "BB")):
        assert stack.get("/userinfo", headers={"Authorization": "Bearer " + token}).status_code == 401
        assert stack.get("/example/api/", headers={"Authorization": "Bearer " + token}).status_code == 401
    assert stack.get("/example/api/", headers={"Authorization": "Bearer " + real}).status_code == 200


def test_es256_signatures_from_every_worker_never_share_a_nonce(stack):
    """Workers sign ES256 with nonces computed ahead, in batches. They are forked from one
    master: if a child ever signed with a nonce its parent or a sibling also holds, two
    signatures would share r = (kG).x and give the private key away. Refresh chains in
    parallel threads spread the signatures over the workers, several batches each."""
    import threading
    c = oidc_client(stack, "--skip-consent")
    u = oidc_user(stack)
    chains = []
    for _ in range(4):
        _, code = login_for_code(stack, c, u, scope="openid")
        chains.append(exchange(stack, c, code)["refresh_token"])
    tokens, errors = [], []

    def refresh(token):
        for _ in range(40):
            r = stack.post("/token", auth=basic(c), data={"grant_type": "refresh_token", "refresh_token": token})
            if r.status_code != 200:
                errors.append(r.text)
                return
            token = r.json()["refresh_token"]
            tokens.append(r.json()["id_token"])

    threads = [threading.Thread(target=refresh, args=(t,)) for t in chains]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    keys = jwks(stack)
    rs = set()
    for token in tokens:
        assert header(token)["alg"] == "ES256"
        JWT.decode(token, keys).validate(now=int(time.time()))
        part = token.split(".")[2]
        rs.add(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))[:32])
    assert len(tokens) == 160 and len(rs) == len(tokens)
