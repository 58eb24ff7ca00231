"""scripts/status.sh: per worker state, requests, start, current endpoint and age, as text
and --json, like php-fpm's status page."""
import json
import os
import socket
import subprocess
import time

from conftest import ROOT, Stack

STATUS = os.path.join(ROOT, "scripts", "status.sh")


def status(s, *args):
    env = {k: v for k, v in s.env.items() if k != "GATEHOUSE_HTTPS_PORT"}  # the port comes from render.env
    return subprocess.run(["bash", STATUS, *args], env=env, capture_output=True, text=True, timeout=30)


def test_status_sh_shows_each_worker_with_state_requests_endpoint_and_age():
    s = Stack(workers=3).start()
    try:
        for _ in range(5):
            assert s.get("/health").status_code == 200
        # A connection that never sends its request holds one worker in `reading`.
        held = socket.socket(socket.AF_UNIX)
        held.connect(s.socket)
        time.sleep(0.3)
        r = status(s, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        workers = doc["worker_list"]
        assert len(workers) == 3 and sorted(w["pid"] for w in workers) == s.worker_pids()
        assert doc["requests_served"] >= 5 and sum(w["requests"] for w in workers) == doc["requests_served"]
        states = sorted(w["state"] for w in workers)
        assert states == ["idle", "reading", "running"], states
        running = next(w for w in workers if w["state"] == "running")
        assert running["endpoint"] == "status" and running["request_age_ms"] >= 0  # the status request itself
        reading = next(w for w in workers if w["state"] == "reading")
        assert reading["request_age_ms"] >= 250
        assert all(abs(w["started_at"] - time.time()) < 120 for w in workers)

        text = status(s)
        assert text.returncode == 0, text.stderr
        out = text.stdout
        assert f"pid {s.master.pid} (running)" in out and "workers:           3 (busy 2, idle 1)" in out
        for w in workers:
            assert str(w["pid"]) in out
        assert " reading " in out and " status " in out
        held.close()
    finally:
        s.stop()
    r = status(s)
    assert r.returncode == 3 and "not running" in r.stdout
