"""scripts/install.sh --prefix: installs the binary, the configuration (kept on reinstall),
the systemd unit, tmpfiles.d, logrotate and the nginx includes; the installed binary serves a
token request through an nginx that uses the installed include; --uninstall keeps the data.
(The system mode under a real systemd: scripts/test-systemd.sh.)"""
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import requests

from conftest import BIN, PASSWORD, ROOT, free_port
from oauth_flow import basic

INSTALL = os.path.join(ROOT, "scripts", "install.sh")


def install(prefix, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    r = subprocess.run(["bash", INSTALL, "--prefix", prefix, *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_install_into_a_prefix_serves_through_the_installed_include_then_uninstalls():
    prefix = tempfile.mkdtemp(prefix="gh-install-")
    p = lambda path: prefix + path  # noqa: E731
    master = nginx = None
    try:
        install(prefix, "--binary", BIN, "--issuer", "https://auth.example")
        conf = p("/etc/gatehouse/gatehouse.conf")
        for f in ("/usr/local/lib/gatehouse/gatehouse", "/usr/local/bin/gatehouse", "/etc/gatehouse/nginx/gatehouse.conf",
                  "/etc/gatehouse/nginx/gatehouse-upstream.conf", "/etc/nginx/conf.d/gatehouse.conf",
                  "/etc/systemd/system/gatehouse.service", "/etc/tmpfiles.d/gatehouse.conf", "/etc/logrotate.d/gatehouse"):
            assert os.path.exists(p(f)), f
        assert mode(conf) == 0o640 and mode(p("/var/lib/gatehouse")) & 0o007 == 0 and mode(p("/var/log/gatehouse")) & 0o007 == 0
        assert mode(p("/run/gatehouse")) == 0o2750
        text = open(conf).read()
        assert f"listen = {p('/run/gatehouse/gatehouse.sock')}\n" in text and "issuer = https://auth.example\n" in text
        unit = open(p("/etc/systemd/system/gatehouse.service")).read()
        for line in ("ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "KillMode=mixed", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "PrivateTmp=yes", "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service",
                     f"ReadWritePaths={p('/var/lib/gatehouse')} {p('/var/log/gatehouse')} {p('/run/gatehouse')}\n",
                     f"--create {p('/etc/tmpfiles.d/gatehouse.conf')}\n"):
            assert line in unit, line
        # Not RuntimeDirectory=: systemd would chown it (and the socket) to the service's group
        # before every command, and nginx's user could no longer connect.
        assert "RuntimeDirectory" not in unit
        assert f"d {p('/run/gatehouse')} 2750 " in open(p("/etc/tmpfiles.d/gatehouse.conf")).read()
        assert "kill -USR1" in open(p("/etc/logrotate.d/gatehouse")).read()
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", p("/etc/systemd/system/gatehouse.service")],
                               capture_output=True, text=True, timeout=60)
            problems = [l for l in (r.stdout + r.stderr).splitlines() if "gatehouse.service:" in l]
            assert r.returncode == 0 and not problems, r.stdout + r.stderr

        # Idempotent: a second run keeps the operator's configuration.
        with open(conf, "a") as f:
            f.write("\n# operator's edit\nlogin_max_failures = 7\n")
        r = install(prefix, "--binary", BIN)
        assert "kept" in r.stderr and "login_max_failures = 7" in open(conf).read()

        # The installed CLI and binary, as the unit runs them.
        cli = p("/usr/local/bin/gatehouse")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        client = subprocess.run([cli, "client", "add", "--name", "installed", "--grant-types", "client_credentials,password",
                                 "--json"], env=env, capture_output=True, text=True, check=True).stdout
        client = json.loads(client)
        subprocess.run([cli, "user", "add", "--username", "op", "--password-stdin"], input=PASSWORD + "\n", env=env,
                       check=True, capture_output=True, text=True)
        master = subprocess.Popen([cli, "serve", "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        log = p("/var/log/gatehouse/gatehouse.log")
        deadline = time.time() + 20
        while time.time() < deadline and not (os.path.exists(log) and "event=master_ready" in open(log).read()):
            time.sleep(0.05)
        assert "event=master_ready" in open(log).read()
        assert mode(p("/var/lib/gatehouse/secret.key")) == 0o600 and mode(p("/var/lib/gatehouse/gatehouse.db")) == 0o600
        assert mode(p("/run/gatehouse/gatehouse.sock")) == 0o660

        # An nginx like the system's: conf.d at http level, one include in the TLS server.
        port, ngx = free_port(), p("/nginx-test")
        os.makedirs(ngx + "/tmp")
        subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && ensure_certificate "{ngx}/tls"'], check=True)
        user = "user root root;" if os.getuid() == 0 else ""
        with open(ngx + "/nginx.conf", "w") as f:
            f.write(f"""{user}
pid {ngx}/nginx.pid; error_log {ngx}/error.log warn; daemon off;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {ngx}/tmp/body; fastcgi_temp_path {ngx}/tmp/fastcgi; proxy_temp_path {ngx}/tmp/proxy;
    uwsgi_temp_path {ngx}/tmp/uwsgi; scgi_temp_path {ngx}/tmp/scgi; access_log off;
    include {p('/etc/nginx/conf.d')}/*.conf;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {ngx}/tls/cert.pem; ssl_certificate_key {ngx}/tls/key.pem;
        include {p('/etc/gatehouse/nginx/gatehouse.conf')};
    }}
}}
""")
        with open(ngx + "/stderr.log", "wb") as err:
            nginx = subprocess.Popen(["nginx", "-p", ngx, "-c", ngx + "/nginx.conf"], stdout=subprocess.DEVNULL,
                                     stderr=err, start_new_session=True)
        url, ca = f"https://127.0.0.1:{port}", ngx + "/tls/cert.pem"
        deadline = time.time() + 20
        while True:
            try:
                if requests.get(url + "/health", verify=ca, timeout=5).status_code == 200:
                    break
            except requests.exceptions.ConnectionError:
                pass
            assert time.time() < deadline and nginx.poll() is None, open(ngx + "/stderr.log").read()
            time.sleep(0.1)
        r = requests.post(url + "/token", data={"grant_type": "client_credentials"}, auth=basic(client), verify=ca, timeout=30)
        assert r.status_code == 200 and r.json()["token_type"] == "Bearer", r.text
        r = requests.post(url + "/token", data={"grant_type": "password", "username": "op", "password": PASSWORD},
                          auth=basic(client), verify=ca, timeout=30)
        assert r.status_code == 200, r.text
        assert "gatehouse_tokens_issued_total" in requests.get(url + "/metrics", verify=ca, timeout=10).text
        # The audit lines of the installed CLI went to the installed log file.
        assert "event=client_added" in open(log).read()
    finally:
        for proc, sig in ((nginx, signal.SIGQUIT), (master, signal.SIGTERM)):
            if proc and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    install(prefix, "--uninstall")
    for f in ("/usr/local/lib/gatehouse/gatehouse", "/usr/local/bin/gatehouse", "/etc/gatehouse/nginx",
              "/etc/nginx/conf.d/gatehouse.conf", "/etc/systemd/system/gatehouse.service", "/etc/tmpfiles.d/gatehouse.conf",
              "/etc/logrotate.d/gatehouse", "/run/gatehouse"):
        assert not os.path.exists(p(f)), f
    for f in ("/etc/gatehouse/gatehouse.conf", "/var/lib/gatehouse/gatehouse.db", "/var/lib/gatehouse/secret.key",
              "/var/log/gatehouse/gatehouse.log"):
        assert os.path.exists(p(f)), f
    shutil.rmtree(prefix)
