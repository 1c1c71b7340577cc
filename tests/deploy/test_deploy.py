"""deploy/ as shipped: supervisor runs three proxy instances, nginx balances them.

The shipped files are used with only their paths and ports replaced for a temporary
folder; the test then follows the user's routine: browse through nginx, edit the
settings, ``supervisorctl restart``, and see the change.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.support import ROOT, free_port, require_tool, start_backend


def _wait(url, timeout=20, expect=200):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == expect:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {last}")


def _free_block(n):
    """A base port with n free ports after it."""
    for _ in range(50):
        base = free_port()
        if base + n < 65000 and all(_port_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port block")


def _port_free(port):
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _settings(backend, extra=""):
    return textwrap.dedent(
        f"""
        from settings import *
        forward_list = {{
            "intranet": BackendSite("intranet", "{backend.url}", "{backend.netloc}", []),
            {extra}
        }}
        """
    )


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, loop_thread):
    supervisord = require_tool("supervisord")
    supervisorctl = require_tool("supervisorctl")
    nginx = require_tool("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx")
    tmp = tmp_path_factory.mktemp("deploy")
    backend = start_backend(loop_thread, "intranet")
    settings_file = tmp / "settings_site.py"
    settings_file.write_text(_settings(backend))
    base = _free_block(3)
    nginx_port = free_port()

    program = (
        open(os.path.join(ROOT, "deploy/supervisor/web_proxy.conf"))
        .read()
        .replace("/opt/web_proxy/.venv/bin/python", sys.executable)
        .replace("/opt/web_proxy", ROOT)
        .replace("/var/log/web_proxy", str(tmp))
        .replace("numprocs_start = 9001", f"numprocs_start = {base}")
        .replace("--address=127.0.0.1", f"--address=127.0.0.1 --config={settings_file}")
    )
    (tmp / "program.conf").write_text(program)
    sock = tmp / "supervisor.sock"
    (tmp / "supervisord.conf").write_text(
        textwrap.dedent(
            f"""
            [unix_http_server]
            file = {sock}
            [supervisord]
            logfile = {tmp}/supervisord.log
            pidfile = {tmp}/supervisord.pid
            childlogdir = {tmp}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl = unix://{sock}
            [include]
            files = {tmp}/program.conf
            """
        )
    )
    site = open(os.path.join(ROOT, "deploy/nginx/web_proxy.conf")).read()
    for i, port in enumerate((9001, 9002, 9003)):
        site = re.sub(rf"127\.0\.0\.1:{port}\b", f"127.0.0.1:{base + i}", site)
    site = re.sub(r"listen 9000;", f"listen 127.0.0.1:{nginx_port};", site)
    site = site.replace("/var/log/nginx", str(tmp))
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        textwrap.dedent(
            f"""
            daemon off;
            pid {tmp}/nginx.pid;
            error_log {tmp}/nginx-error.log;
            events {{ worker_connections 256; }}
            http {{
                client_body_temp_path {tmp}/body;
                proxy_temp_path {tmp}/proxy;
                fastcgi_temp_path {tmp}/fastcgi;
                uwsgi_temp_path {tmp}/uwsgi;
                scgi_temp_path {tmp}/scgi;
                include {tmp}/site.conf;
            }}
            """
        )
    )
    check = subprocess.run(
        [nginx, "-t", "-c", f"{tmp}/nginx.conf", "-p", str(tmp)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    sup = subprocess.Popen([supervisord, "-n", "-c", f"{tmp}/supervisord.conf"])
    ngx = subprocess.Popen([nginx, "-c", f"{tmp}/nginx.conf", "-p", str(tmp)])
    ctl = [supervisorctl, "-c", f"{tmp}/supervisord.conf"]
    try:
        for i in range(3):
            _wait(f"http://127.0.0.1:{base + i}/.proxy/health")
        _wait(f"http://127.0.0.1:{nginx_port}/.proxy/health")
        yield {
            "backend": backend,
            "url": f"http://127.0.0.1:{nginx_port}",
            "ctl": ctl,
            "settings": settings_file,
            "base": base,
        }
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=30)
        ngx.terminate()
        for proc in (sup, ngx):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_three_instances_run_under_supervisor(deployed):
    deadline = time.monotonic() + 15  # supervisor says RUNNING after startsecs
    while True:
        out = subprocess.run([*deployed["ctl"], "status"], capture_output=True, text=True).stdout
        running = [line for line in out.splitlines() if "RUNNING" in line]
        if len(running) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(running) == 3, out


def test_browsing_through_nginx(deployed):
    backend = deployed["backend"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{deployed['url']}/.site.intranet/start?x=1") as resp:
        body = json.loads(resp.read())
    assert body["uri"] == "/start?x=1"
    # Later requests without the prefix reach the same backend, on any instance.
    for i in range(6):
        with opener.open(f"{deployed['url']}/page/{i}") as resp:
            assert json.loads(resp.read())["uri"] == f"/page/{i}"
    seen = backend.seen[-1]
    # nginx is on 127.0.0.1, a trusted proxy: its forwarding headers are kept.
    assert seen.header("X-Forwarded-For") == "127.0.0.1, 127.0.0.1"
    assert seen.header("X-Real-Ip") == "127.0.0.1"
    assert seen.header("Host") == backend.netloc
    assert seen.header("X-Forwarded-Host") == deployed["url"].split("//")[1]


def test_edit_settings_then_supervisorctl_restart(deployed, loop_thread):
    second = start_backend(loop_thread, "second")
    url = f"{deployed['url']}/.site.second/hello"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url)
    assert info.value.code == 404
    deployed["settings"].write_text(
        _settings(
            deployed["backend"], f'"second": BackendSite("second", "{second.url}", None, []),'
        )
    )
    result = subprocess.run(
        [*deployed["ctl"], "restart", "web_proxy:*"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for i in range(3):
        _wait(f"http://127.0.0.1:{deployed['base'] + i}/.proxy/health")
    # Every instance now knows the new site: several requests land on all three.
    for _ in range(6):
        with urllib.request.urlopen(url) as resp:
            assert json.loads(resp.read())["backend"] == "second"


class _Load:
    """A steady, bounded load of mixed requests through nginx from a few threads: GET
    and HEAD of pages, and POSTs (which nginx must never send twice)."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.results: list[tuple[str, int | str]] = []  # (method, status or error)
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, index: int) -> None:
        n = 0
        while not self.stop.is_set() and n < 20_000:
            n += 1
            method = ("GET", "POST", "HEAD")[n % 3]
            request = urllib.request.Request(
                f"{self.url}/.site.intranet/load/{index}/{n}",
                data=b"n=%d" % n if method == "POST" else None,
                method=method,
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    resp.read()
                    self.results.append((method, resp.status))
            except urllib.error.HTTPError as exc:
                self.results.append((method, exc.code))
            except OSError as exc:
                self.results.append((method, repr(exc)))

    def __enter__(self) -> "_Load":
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def failures(self, methods: tuple[str, ...] = ("GET", "POST", "HEAD")) -> list:
        return [(m, s) for m, s in self.results if m in methods and s != 200]


def _pids(deployed):
    """The instances' process ids, from `supervisorctl status` ("RUNNING pid 123, ...")."""
    out = subprocess.run([*deployed["ctl"], "status"], capture_output=True, text=True).stdout
    return [int(p) for p in re.findall(r"RUNNING +pid (\d+),", out)]


def test_rolling_restart_under_load_drops_nothing(deployed):
    base = deployed["base"]
    before = _pids(deployed)
    with _Load(deployed["url"]) as load:
        for i in range(3):
            result = subprocess.run(
                [*deployed["ctl"], "restart", f"web_proxy:web_proxy_{base + i}"],
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            _wait(f"http://127.0.0.1:{base + i}/.proxy/health")
    after = _pids(deployed)
    assert len(after) == 3 and not set(before) & set(after)  # every instance restarted
    print(f"rolling restart: {len(load.results)} requests, failed: {load.failures()}")
    assert len(load.results) > 300  # the load ran throughout
    assert load.failures() == []
    # The backend saw each POST once: nothing was sent twice.
    posts = [s.uri for s in deployed["backend"].seen if s.method == "POST" and "/load/" in s.uri]
    assert len(posts) == len(set(posts)) == sum(1 for m, _ in load.results if m == "POST")


def test_sigkill_of_one_instance_fails_no_idempotent_request(deployed):
    with _Load(deployed["url"]) as load:
        victim = _pids(deployed)[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(3)  # supervisor starts it again meanwhile
    print(f"SIGKILL: {len(load.results)} requests, failed: {load.failures()}")
    assert len(load.results) > 100
    assert load.failures(("GET", "HEAD")) == []
    deadline = time.monotonic() + 15
    pids = _pids(deployed)
    while (len(pids) < 3 or victim in pids) and time.monotonic() < deadline:
        time.sleep(0.3)
        pids = _pids(deployed)
    assert len(pids) == 3 and victim not in pids
