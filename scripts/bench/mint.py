#!/usr/bin/env python3
"""Benchmark helper: drives the real /authorize flow of a bench instance.

  mint.py login   -> logs the user in once (login form, consent "allow"), prints the
                     session cookie (NAME=VALUE); consent is then remembered, so each
                     further GET /authorize with that cookie answers 302 with a code.
  mint.py tokens  -> mints N codes and exchanges each at /token; writes one line
                     "ACCESS REFRESH" per code to --out.
  mint.py loginform -> fetches a login page as an anonymous visitor would and prints two
                     lines: its cookie (NAME=VALUE) and the form body without username and
                     password (for login_flood.lua).

Codes in bulk are minted by wrk (mint.lua), which is much faster than Python.
Settings come from the environment bench.sh exports: BENCH_URL, BENCH_CA,
BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT, BENCH_USER, BENCH_PASSWORD.
"""
import argparse
import html.parser
import os
import sys
import urllib.parse

import requests

E = os.environ
URL, CA = E["BENCH_URL"], E["BENCH_CA"]
CLIENT_ID, SECRET, REDIRECT = E["BENCH_CLIENT_ID"], E["BENCH_CLIENT_SECRET"], E["BENCH_REDIRECT"]
AUTHORIZE = "/authorize?" + urllib.parse.urlencode(
    {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": "bench"})


class Form(html.parser.HTMLParser):
    """Collects the hidden inputs of the page's form."""

    def __init__(self, text):
        super().__init__()
        self.hidden = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.hidden[a["name"]] = a.get("value") or ""


def session():
    s = requests.Session()
    s.trust_env = False
    s.verify = CA
    return s


def code_from(resp):
    if resp.status_code not in (302, 303):
        sys.exit(f"mint: /authorize answered {resp.status_code}, expected a redirect: {resp.text[:200]}")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(resp.headers["Location"]).query))
    if "code" not in q:
        sys.exit(f"mint: no code in {resp.headers['Location']}")
    return q["code"]


def login():
    s = session()
    page = s.get(URL + AUTHORIZE, allow_redirects=False)
    form = Form(page.text).hidden
    if "csrf" not in form:
        sys.exit(f"mint: no login form ({page.status_code}): {page.text[:200]}")
    r = s.post(URL + "/authorize", data={**form, "username": E["BENCH_USER"], "password": E["BENCH_PASSWORD"]},
               allow_redirects=False)
    if r.status_code == 200:  # the consent page
        form = Form(r.text).hidden
        r = s.post(URL + "/authorize", data={**form, "decision": "allow"}, allow_redirects=False)
    code_from(r)
    # Consent is remembered now: a plain GET must redirect with a code.
    code_from(s.get(URL + AUTHORIZE, allow_redirects=False))
    cookie = next(c for c in s.cookies if c.name.startswith("__Host-gatehouse"))
    print(f"{cookie.name}={cookie.value}")


def tokens(n, out, cookie):
    s = session()
    s.headers["Cookie"] = cookie
    with open(out, "w") as f:
        for _ in range(n):
            code = code_from(s.get(URL + AUTHORIZE, allow_redirects=False))
            r = s.post(URL + "/token", auth=(CLIENT_ID, SECRET),
                       data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
            if r.status_code != 200:
                sys.exit(f"mint: /token answered {r.status_code}: {r.text[:200]}")
            t = r.json()
            f.write(f"{t['access_token']} {t['refresh_token']}\n")


def loginform():
    s = session()
    page = s.get(URL + AUTHORIZE, allow_redirects=False)
    form = Form(page.text).hidden
    if page.status_code != 200 or "csrf" not in form:
        sys.exit(f"mint: no login form ({page.status_code}): {page.text[:200]}")
    cookie = next(iter(s.cookies))
    print(f"{cookie.name}={cookie.value}")
    print(urllib.parse.urlencode(form))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("login")
    sub.add_parser("loginform")
    t = sub.add_parser("tokens")
    t.add_argument("--count", type=int, required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--cookie", required=True)
    a = p.parse_args()
    if a.cmd == "login":
        login()
    elif a.cmd == "loginform":
        loginform()
    else:
        tokens(a.count, a.out, a.cookie)


if __name__ == "__main__":
    main()
