"""Issue 10, items 1-4: what an anonymous request can make the server spend or show.
Real nginx (the shipped include), real workers, real SQLite; the database is only read."""
import html.parser
import os
import threading
import time
import urllib.parse

import pytest

from conftest import PASSWORD, Stack
from test_authorization_code import new_client, new_user
from test_reliability import sql
from oauth_flow import (CB, Browser, auth_params, basic, form_action, hidden_inputs, is_consent_page, is_login_page,
                        uniq)


class Attributes(html.parser.HTMLParser):
    """Every (tag, attribute name) of a page, as a browser's tokenizer sees them."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.seen = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.seen += [(tag, name, value) for name, value in attrs]


# -- item 2: markup injection ------------------------------------------------------------------

INJECTION = 'x"\u0301 onmouseover=alert(1) y="'


def test_issue10_2_combining_mark_after_a_quote_cannot_open_an_attribute(stack):
    c = new_client(stack)
    b = Browser(stack)
    query = urllib.parse.urlencode(dict(auth_params(c), state=INJECTION), quote_via=urllib.parse.quote)
    page = b.get_raw(query)
    assert is_login_page(page), page.text[:300]
    attrs = Attributes(page.text).seen
    assert not [a for a in attrs if a[1].startswith("on") or a[1] == "y"], attrs
    assert INJECTION not in page.text and '"\u0301' not in page.text
    # The request is not echoed at all: only our three hidden fields.
    assert set(hidden_inputs(page.text)) == {"csrf", "step", "authz"}
    # ... and still arrives intact: the state comes back byte for byte.
    user = new_user(stack)
    r = b.approve(page, user)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert q["state"] == [INJECTION]


def test_issue10_2_client_name_and_username_are_escaped_by_scalar(stack):
    c = stack.add_client("--name", 'Evil"\u0301 onfocus=alert(1) autofocus x="', "--redirect-uri", CB)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    assert is_login_page(page)
    bad = b.login(page, 'user"\u0301 onmouseover=alert(2) z="', password="wrong")
    for p in (page, bad):
        attrs = Attributes(p.text).seen
        assert not [a for a in attrs if a[1].startswith("on") or a[1] in ("z", "x")], attrs
        assert '"\u0301' not in p.text
        assert "&quot;\u0301" in p.text


# -- item 3: an anonymous GET writes nothing ---------------------------------------------------------

COUNTED = ["sessions", "codes", "tokens", "families", "login_failures", "consents"]


def database_shape(stack):
    rows = {t: sql(stack, f"SELECT COUNT(*) FROM {t}") for t in COUNTED}
    return rows, sql(stack, "PRAGMA page_count")


@pytest.mark.sqlite
def test_issue10_3_two_thousand_cookieless_gets_leave_the_database_unchanged(stack):
    c = new_client(stack)
    query = urllib.parse.urlencode(auth_params(c))
    before = database_shape(stack)
    wal = os.path.join(stack.home, "gatehouse.db-wal")
    wal_before = os.path.getsize(wal) if os.path.exists(wal) else 0
    statuses = {}
    lock = threading.Lock()

    def run(n):
        s = stack.session()
        for _ in range(n):
            s.cookies.clear()
            r = s.get(stack.url + "/authorize?" + query, allow_redirects=False, timeout=30)
            with lock:
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=run, args=(500,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == {200: 2000}, statuses
    assert database_shape(stack) == before
    # Nothing was written at all: the WAL did not grow.
    assert (os.path.getsize(wal) if os.path.exists(wal) else 0) == wal_before


def test_issue10_3_the_login_form_works_without_a_row_and_the_row_is_born_at_login(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    sessions = int(sql(stack, "SELECT COUNT(*) FROM sessions"))
    page = b.authorize(auth_params(c))
    assert b.cookie() and b.cookie().startswith("p.")
    assert int(sql(stack, "SELECT COUNT(*) FROM sessions")) == sessions
    consent = b.login(page, user)
    assert is_consent_page(consent)
    assert int(sql(stack, "SELECT COUNT(*) FROM sessions")) == sessions + 1
    assert not b.cookie().startswith("p.")


def test_issue10_1_csrf_token_is_rotated_after_every_failed_login(stack):
    c = new_client(stack)
    user = new_user(stack)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    bad = b.login(page, user, password="wrong")
    assert bad.status_code == 401 and is_login_page(bad)
    assert hidden_inputs(bad.text)["csrf"] != hidden_inputs(page.text)["csrf"]
    # The first form is spent: posting it again (even with the right password) is refused.
    again = b.login(page, user)
    assert again.status_code == 403 and "Location" not in again.headers
    assert is_consent_page(b.login(bad, user))


def test_issue10_2_a_sealed_request_cannot_be_edited(stack):
    c = new_client(stack)
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    fields = hidden_inputs(page.text)
    payload, mac = fields["authz"].rsplit(".", 1)
    forged = urllib.parse.quote(urllib.parse.urlencode(dict(auth_params(c), scope="SANDBOX")))
    for authz in (payload + "x." + mac, forged + "." + mac, "", "." + mac):
        r = b.s.post(form_action(page.text), data=dict(fields, authz=authz, username="u", password="p"),
                     allow_redirects=False, timeout=30)
        assert r.status_code == 403 and "Location" not in r.headers, (authz, r.status_code)


# -- item 4: no 5xx for long parameters -----------------------------------------------------------------

BIG = "A" * 8192


def test_issue10_4_every_parameter_at_8kb_gets_a_4xx_or_a_redirect(stack):
    c = new_client(stack, "--grant-types", "authorization_code,refresh_token,client_credentials,password")
    b = Browser(stack)
    page = b.authorize(auth_params(c))
    seen = []

    def check(what, r):
        seen.append((what, r.status_code))
        assert r.status_code < 500, (what, r.status_code, r.text[:200])

    authorize = ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                 "code_challenge_method", "prompt", "nonce", "response_mode", "unknown"]
    for name in authorize:
        # 8 KiB in the query: nginx itself may refuse the request line (414); never a 5xx.
        check(("GET /authorize", name), Browser(stack).authorize(dict(auth_params(c), **{name: BIG})))
        # Just under nginx's request-line limit: reaches the worker.
        check(("GET /authorize 6k", name), Browser(stack).authorize(dict(auth_params(c), **{name: "B" * 6000})))
    for name in ["csrf", "step", "authz", "username", "password", "decision", "unknown"]:
        check(("POST /authorize", name), b.s.post(form_action(page.text), data=dict(hidden_inputs(page.text), **{name: BIG}),
                                                  allow_redirects=False, timeout=30))
    token = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "username",
             "password", "client_id", "client_secret", "unknown"]
    for grant in ["authorization_code", "refresh_token", "client_credentials", "password"]:
        base = {"grant_type": grant, "code": "x", "refresh_token": "x", "username": "u", "password": "p"}
        for name in token:
            check(("POST /token", grant, name), stack.post("/token", data=dict(base, **{name: BIG}), auth=basic(c)))
    check(("POST /token", "basic user"), stack.post("/token", data={"grant_type": "client_credentials"}, auth=(BIG, "x")))
    for path in ["/revoke", "/introspect"]:
        for name in ["token", "token_type_hint", "unknown"]:
            check(("POST", path, name), stack.post(path, data=dict({"token": "x"}, **{name: BIG}), auth=basic(c)))
    check(("GET protected", "bearer"), stack.get("/example/api/", headers={"Authorization": "Bearer " + "A" * 6000}))
    check(("GET metadata", "query"), stack.get("/.well-known/oauth-authorization-server?x=" + BIG))
    assert len(seen) > 80


def test_issue10_4_long_state_in_an_error_redirect_fits_nginx_buffers(stack):
    """The fuzz's 502: an error redirect whose Location outgrew nginx's default 4 KiB header buffer."""
    c = new_client(stack)
    state = "é" * 1024                      # 2048 bytes, 6 KiB percent-encoded
    r = Browser(stack).authorize(dict(auth_params(c), scope="NOT-ALLOWED" * 100, state=state))
    assert r.status_code == 302, (r.status_code, r.text[:200])
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_scope"] and q["state"] == [state]
    assert "NOT-ALLOWED" not in r.headers["Location"]          # descriptions never echo input
    # One byte more and the state is shown on the error page, not redirected.
    r = Browser(stack).authorize(dict(auth_params(c), state="s" * 2049))
    assert r.status_code == 400 and "Location" not in r.headers and "state" in r.text


# -- item 1: login floods -----------------------------------------------------------------------------------

def post_login(stack, page_fields, action, cookies, password="wrong"):
    s = stack.session()
    s.cookies.update(cookies)
    return s.post(action, data=dict(page_fields, username="nobody", password=password), allow_redirects=False,
                  timeout=30)


def test_issue10_1_shipped_limit_answers_429_page_to_a_login_flood_and_never_limits_gets():
    s = Stack(workers=2, login_rate=None).start()     # the include exactly as shipped: 10r/s, burst 50
    try:
        c = s.add_client("--name", "flood", "--redirect-uri", CB)
        b = Browser(s)
        for _ in range(80):                            # GETs are not counted
            assert b.authorize(auth_params(c)).status_code == 200
        page = b.authorize(auth_params(c))
        fields, action = hidden_inputs(page.text), form_action(page.text)
        statuses = {}
        lock = threading.Lock()
        too_many = []

        def flood():
            for _ in range(15):
                r = post_login(s, fields, action, b.s.cookies)
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 429:
                        too_many.append(r)

        threads = [threading.Thread(target=flood) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.get(429, 0) >= 40, statuses     # 120 posts in a few seconds: the burst of 50 is spent
        assert not [k for k in statuses if k >= 500 and k != 503], statuses
        r = too_many[0]
        assert r.headers["Content-Type"].startswith("text/html")
        assert "Too many attempts" in r.text and "Gatehouse" in r.text
        assert r.headers["X-Frame-Options"] == "DENY" and "Retry-After" in r.headers
        # /token is never limited by it.
        rs = s.add_client("--name", "rs", "--grant-types", "client_credentials")
        for _ in range(20):
            assert s.post("/token", data={"grant_type": "client_credentials"}, auth=basic(rs)).status_code == 200
    finally:
        s.stop()


def test_issue10_1_password_hashing_never_occupies_the_whole_pool():
    """password_hash_workers = 1 of 3 workers: while 12 connections post wrong passwords, the
    excess gets a fast 503 login page, and /token and auth_request keep answering."""
    s = Stack(workers=3, extra_config="password_hash_workers = 1").start()
    try:
        c = s.add_client("--name", "flood", "--redirect-uri", CB)
        rs = s.add_client("--name", "rs", "--grant-types", "client_credentials")
        token = s.post("/token", data={"grant_type": "client_credentials"}, auth=basic(rs)).json()["access_token"]
        b = Browser(s)
        page = b.authorize(auth_params(c))
        fields, action = hidden_inputs(page.text), form_action(page.text)
        stop = time.time() + 4
        statuses = {}
        lock = threading.Lock()

        def flood():
            while time.time() < stop:
                r = post_login(s, fields, action, b.s.cookies)
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        threads = [threading.Thread(target=flood) for _ in range(12)]
        for t in threads:
            t.start()
        served = {"token": 0, "validate": 0}
        while time.time() < stop:
            r = s.post("/token", data={"grant_type": "client_credentials"}, auth=basic(rs))
            assert r.status_code == 200, r.text
            served["token"] += 1
            r = s.get("/example/api/", headers={"Authorization": "Bearer " + token})
            assert r.status_code == 200, r.text
            served["validate"] += 1
        for t in threads:
            t.join()
        assert statuses.get(503, 0) > 0, statuses        # the bound was reached, and answered at once
        assert set(statuses) <= {401, 403, 503}, statuses
        assert served["token"] > 0 and served["validate"] > 0
        busy = Browser(s)
        assert "event=login_busy" in s.read_log()
        # When the flood is over, logins work again.
        user = uniq("u")
        s.add_user(user)
        assert is_consent_page(busy.login(busy.authorize(auth_params(c)), user, password=PASSWORD))
    finally:
        s.stop()


def test_issue10_1_password_grant_past_the_bound_is_503_temporarily_unavailable():
    s = Stack(workers=3, extra_config="password_hash_workers = 1").start()
    try:
        c = s.add_client("--name", "pw", "--grant-types", "password")
        out = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)

        def go():
            barrier.wait()
            r = s.post("/token", data={"grant_type": "password", "username": "nobody", "password": "x"}, auth=basic(c))
            with lock:
                out.append((r.status_code, r.json().get("error"), r.headers.get("Retry-After")))

        threads = [threading.Thread(target=go) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {o[:2] for o in out} <= {(400, "invalid_grant"), (503, "temporarily_unavailable")}, out
        assert (503, "temporarily_unavailable", "1") in out, out
    finally:
        s.stop()
