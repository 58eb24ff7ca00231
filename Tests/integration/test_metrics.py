"""/metrics: the Prometheus text format, parsed with prometheus_client's own parser, and
counters that move with known requests and survive a worker killed and respawned."""
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD, POSTGRES, Stack, query_of
from oauth_flow import CB, Browser, auth_params, basic, uniq

ALL = "authorization_code,refresh_token,client_credentials,password"


@pytest.fixture(scope="module")
def mstack():
    s = Stack(workers=2, extra_config="login_max_failures = 3").start()
    yield s
    s.stop()


def scrape(stack):
    r = stack.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        assert family.name.startswith("gatehouse_"), family.name
        assert family.documentation, family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_scrape_parses_with_help_and_type_for_every_family(mstack):
    text = mstack.get("/metrics").text
    samples = scrape(mstack)
    for name in ("gatehouse_http_requests_total", "gatehouse_http_request_duration_seconds", "gatehouse_tokens_issued_total",
                 "gatehouse_code_replays_total", "gatehouse_refresh_token_reuses_total", "gatehouse_login_failures_total",
                 "gatehouse_login_lockouts_total", "gatehouse_database_busy_total", "gatehouse_worker_restarts_total",
                 "gatehouse_workers", "gatehouse_tokens_live") + (() if POSTGRES else ("gatehouse_database_wal_bytes",)):
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text, name
    assert sum(v for (n, _), v in samples.items() if n == "gatehouse_workers") == 2
    # The WAL is SQLite's; on PostgreSQL the server's own exporter reports its WAL.
    assert (("gatehouse_database_wal_bytes", ()) in samples) == (not POSTGRES)


def test_token_requests_move_counters_and_histogram(mstack):
    client = mstack.add_client("--name", uniq("m"), "--grant-types", "client_credentials")
    before = scrape(mstack)
    for _ in range(5):
        assert mstack.post("/token", data={"grant_type": "client_credentials"}, auth=basic(client)).status_code == 200
    assert mstack.post("/token", data={"grant_type": "client_credentials"}, auth=(client["client_id"], "wrong")).status_code == 401
    after = scrape(mstack)
    d = lambda name, **l: value(after, name, **l) - value(before, name, **l)  # noqa: E731
    assert d("gatehouse_tokens_issued_total", grant_type="client_credentials") == 5
    assert d("gatehouse_http_requests_total", endpoint="token", status="2xx") == 5
    assert d("gatehouse_http_requests_total", endpoint="token", status="4xx") == 1
    assert d("gatehouse_http_request_duration_seconds_count", endpoint="token") == 6
    assert d("gatehouse_http_request_duration_seconds_bucket", endpoint="token", le="+Inf") == 6
    assert d("gatehouse_http_request_duration_seconds_sum", endpoint="token") > 0
    if not POSTGRES:
        assert value(after, "gatehouse_database_wal_bytes") > 0  # tokens were written since the start
    # Counted over the expiry index at most every 10 s per worker, so it may lag this test's tokens.
    assert ("gatehouse_tokens_live", ()) in after
    # The earlier scrape itself was counted.
    assert d("gatehouse_http_requests_total", endpoint="metrics", status="2xx") == 1


def test_login_failures_lockout_and_refresh_reuse_and_code_replay(mstack):
    client = mstack.add_client("--name", uniq("m"), "--redirect-uri", CB, "--grant-types", ALL)
    user = uniq("u")
    mstack.add_user(user)
    before = scrape(mstack)
    for _ in range(3):
        r = mstack.post("/token", data={"grant_type": "password", "username": user, "password": "nope"}, auth=basic(client))
        assert r.status_code == 400
    # Locked now: even the right password fails, and counts as a failure.
    r = mstack.post("/token", data={"grant_type": "password", "username": user, "password": PASSWORD}, auth=basic(client))
    assert r.status_code == 400
    other = uniq("u")
    mstack.add_user(other)
    tokens = mstack.post("/token", data={"grant_type": "password", "username": other, "password": PASSWORD},
                         auth=basic(client)).json()
    rt = tokens["refresh_token"]
    assert mstack.post("/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=basic(client)).status_code == 200
    assert mstack.post("/token", data={"grant_type": "refresh_token", "refresh_token": rt}, auth=basic(client)).status_code == 400
    b = Browser(mstack)
    r = b.approve(b.authorize(auth_params(client)), other)
    code = query_of(r.headers["Location"])["code"]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB}
    assert mstack.post("/token", data=exchange, auth=basic(client)).status_code == 200
    assert mstack.post("/token", data=exchange, auth=basic(client)).status_code == 400
    after = scrape(mstack)
    d = lambda name, **l: value(after, name, **l) - value(before, name, **l)  # noqa: E731
    assert d("gatehouse_login_failures_total") == 4
    assert d("gatehouse_login_lockouts_total") == 1
    assert d("gatehouse_tokens_issued_total", grant_type="password") == 1
    assert d("gatehouse_tokens_issued_total", grant_type="refresh_token") == 1
    assert d("gatehouse_tokens_issued_total", grant_type="authorization_code") == 1
    assert d("gatehouse_refresh_token_reuses_total") == 1
    assert d("gatehouse_code_replays_total") == 1
    assert d("gatehouse_http_requests_total", endpoint="authorize", status="3xx") >= 1


def test_counts_survive_a_killed_worker(mstack):
    client = mstack.add_client("--name", uniq("m"), "--grant-types", "client_credentials")
    for _ in range(4):
        assert mstack.post("/token", data={"grant_type": "client_credentials"}, auth=basic(client)).status_code == 200
    before = scrape(mstack)
    for pid in mstack.worker_pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            after = scrape(mstack)
            if value(after, "gatehouse_worker_restarts_total", reason="crash") - value(
                    before, "gatehouse_worker_restarts_total", reason="crash") >= 2:
                break
        except Exception:
            pass
        time.sleep(0.1)
    after = scrape(mstack)
    assert value(after, "gatehouse_worker_restarts_total", reason="crash") - value(
        before, "gatehouse_worker_restarts_total", reason="crash") == 2
    for key, v in before.items():
        if key[0].endswith("_total") or key[0].endswith("_bucket") or key[0].endswith("_count"):
            assert after.get(key, 0) >= v, key


def test_scrape_is_cheap(mstack):
    t = time.perf_counter()
    for _ in range(50):
        assert mstack.get("/metrics").status_code == 200
    per = (time.perf_counter() - t) / 50
    health_t = time.perf_counter()
    for _ in range(50):
        mstack.get("/health")
    health = (time.perf_counter() - health_t) / 50
    samples = scrape(mstack)
    server = value(samples, "gatehouse_http_request_duration_seconds_sum", endpoint="metrics") / value(
        samples, "gatehouse_http_request_duration_seconds_count", endpoint="metrics")
    print(f"scrape {per * 1000:.2f} ms, health {health * 1000:.2f} ms (over HTTPS, new connection each); "
          f"in the worker {server * 1000:.3f} ms")
    assert per < 0.25
