"""Shared pieces of the benchmarks: nginx, processes, wrk and CPU accounting.

Everything runs on 127.0.0.1; every load is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.05)


def need(tool: str) -> str:
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path is None:
        sys.exit(f"bench: {tool} is not installed (apt-get install {os.path.basename(tool)})")
    return path


class Nginx:
    """A private nginx: serves ``docroot`` on one port and proxies ``proxy_to`` on another."""

    def __init__(self, docroot: str, proxy_to: str | None = None, extra: str = "") -> None:
        self.binary = (
            need("/usr/sbin/nginx") if os.path.exists("/usr/sbin/nginx") else need("nginx")
        )
        self.dir = tempfile.mkdtemp(prefix="bench-nginx-")
        os.chmod(self.dir, 0o755)  # workers run unprivileged and need its temp folders
        self.static_port = free_port()
        self.proxy_port = free_port()
        upstream = proxy_to or f"http://127.0.0.1:{self.static_port}"
        conf = textwrap.dedent(
            f"""
            daemon off;
            worker_processes 1;
            pid {self.dir}/nginx.pid;
            error_log {self.dir}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {self.dir}/body;
                proxy_temp_path {self.dir}/proxy;
                fastcgi_temp_path {self.dir}/fastcgi;
                uwsgi_temp_path {self.dir}/uwsgi;
                scgi_temp_path {self.dir}/scgi;
                types {{ text/html html; application/octet-stream bin; }}
                upstream backend {{ server {upstream.split("//", 1)[1]}; keepalive 64; }}
                server {{
                    listen 127.0.0.1:{self.static_port};
                    root {docroot};
                    {extra}
                }}
                server {{
                    listen 127.0.0.1:{self.proxy_port};
                    location / {{
                        proxy_pass http://backend;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $http_host;
                    }}
                }}
            }}
            """
        )
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.conf, "-p", self.dir, "-e", f"{self.dir}/error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"http://127.0.0.1:{self.static_port}/")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """A server process we measure: its CPU time and peak RSS come from /proc."""

    def __init__(self, args: list[str], ready_url: str, headers: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_http(ready_url, headers=headers)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Workers:
    """CPU time of processes we did not start ourselves (nginx's workers)."""

    def __init__(self, master_pid: int) -> None:
        out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True)
        self.pids = [int(p) for p in out.stdout.split()]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss_mib(self) -> float:
        return 0.0


@dataclass
class WrkResult:
    requests: int
    rps: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    seconds: int = 8,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    cmd = [need("wrk"), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    if errors:
        print(out, file=sys.stderr)
    return WrkResult(requests, rps, p99, errors)


def write_config(site_lines: str) -> str:
    """A settings file for web_proxy holding ``site_lines`` as its forward_list body."""
    fd, path = tempfile.mkstemp(prefix="bench-settings-", suffix=".py")
    # As nginx here: no access log (WEB_PROXY_BENCH_ACCESS_LOG=1 measures its cost; the
    # lines go to the process's standard error, which the harness discards).
    access_log = '"-"' if os.environ.get("WEB_PROXY_BENCH_ACCESS_LOG") else "None"
    with os.fdopen(fd, "w") as f:
        f.write(
            "from settings import *\n"
            "config.LOGGING_LEVEL = 'WARNING'\n"
            f"config.access_log = {access_log}\n"
            f"forward_list = {{\n{site_lines}\n}}\n"
        )
    return path


def save(name: str, data: object) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return path
