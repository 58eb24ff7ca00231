"""What the integration tests share to play the browser and the client: constants, the
form scraping of the login and consent pages, and a cookie-keeping user agent."""
import html
import re
import urllib.parse
import uuid

import requests

from conftest import PASSWORD

CB = "https://client.example.com/cb"
COOKIE = "__Host-gatehouse"
ALL_GRANTS = "authorization_code,refresh_token,client_credentials,password"
INACTIVE = {"active": False}
# RFC 7636 Appendix B
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def basic(client):
    return (client["client_id"], client["client_secret"])


_HIDDEN = re.compile(r'<input\s+type="hidden"\s+name="([^"]*)"\s+value="([^"]*)"\s*/?>')
_ACTION = re.compile(r'<form\b[^>]*\baction="([^"]*)"')


def hidden_inputs(page_html):
    return {html.unescape(n): html.unescape(v) for n, v in _HIDDEN.findall(page_html)}


def form_action(page_html):
    m = _ACTION.search(page_html)
    assert m, page_html
    return html.unescape(m.group(1))


def is_login_page(r):
    return r.status_code in (200, 401) and 'name="password"' in r.text and hidden_inputs(r.text).get("step") == "login"


def is_consent_page(r):
    return r.status_code == 200 and hidden_inputs(r.text).get("step") == "consent" and 'name="decision"' in r.text


def auth_params(client, redirect_uri=CB, **extra):
    p = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
         "state": uniq("st")}
    p.update(extra)
    return p


class Browser:
    """A cookie-keeping user agent that never follows redirects."""

    def __init__(self, stack, timeout=30):
        self.stack = stack
        self.s = stack.session()
        self.timeout = timeout

    def cookie(self):
        return self.s.cookies.get(COOKIE)

    def get_raw(self, query):
        """GET /authorize?<query> with the query sent exactly as given (requests would decode %2E)."""
        p = self.s.prepare_request(requests.Request("GET", self.stack.url + "/authorize"))
        p.url = self.stack.url + "/authorize?" + query
        return self.s.send(p, allow_redirects=False, timeout=self.timeout)

    def authorize(self, params):
        if isinstance(params, dict):
            params = [(k, v) for k, v in params.items() if v is not None]
        return self.get_raw(urllib.parse.urlencode(params, quote_via=urllib.parse.quote))

    def submit(self, page, drop=(), **fields):
        data = {k: v for k, v in hidden_inputs(page.text).items() if k not in drop}
        data.update(fields)
        return self.s.post(form_action(page.text), data=data, allow_redirects=False, timeout=self.timeout)

    def login(self, page, username, password=PASSWORD):
        assert is_login_page(page), (page.status_code, page.text[:300])
        return self.submit(page, username=username, password=password)

    def approve(self, page, username, decision="allow"):
        """From a login page (or a consent page): log in if needed, consent if asked."""
        r = page
        if is_login_page(r):
            r = self.login(r, username)
        if is_consent_page(r):
            r = self.submit(r, decision=decision)
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        return r
