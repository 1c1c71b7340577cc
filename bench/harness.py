"""Shared pieces of the benchmarks: options, nginx, processes, wrk and CPU accounting
(web_proxy itself is started by bench/webproxy.py).

Everything runs on 127.0.0.1; every load is bounded in time.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
# What the common options of the benchmarks mean (see ``options``).
_HELP = {
    "seconds": "seconds of load per wrk run",
    "connections": "wrk's open connections",
    "high": "a second, higher number of connections (0: none)",
    "rounds": "runs per target; the best is kept (2 shared cores make single runs noisy)",
    "requests": "timed GETs per page",
}


def options(doc: str | None, **defaults: int) -> argparse.Namespace:
    """The command line of a benchmark: ``--name N`` for each of ``defaults``."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in defaults.items():
        ap.add_argument(f"--{name}", type=int, default=default, help=_HELP.get(name))
    return ap.parse_args()


def make_docroot(files: Mapping[str, bytes]) -> str:
    """A new folder holding ``files``, for nginx to serve: its workers run as an
    unprivileged user, so the folder and the files are readable by all."""
    docroot = tempfile.mkdtemp(prefix="bench-docroot-")
    os.chmod(docroot, 0o755)
    for name, body in files.items():
        path = os.path.join(docroot, name)
        with open(path, "wb") as f:
            f.write(body)
        os.chmod(path, 0o644)
    return docroot


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
        self.docroot = docroot
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` now (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Measured(Protocol):
    """What a benchmark reads of the processes behind a target."""

    def cpu_seconds(self) -> float: ...

    def rss_mib(self) -> float: ...


class Process:
    """A server process we measure: its CPU time and peak RSS come from /proc."""

    def __init__(self, args: list[str], ready_url: str, headers: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_http(ready_url, headers=headers)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_mib(self) -> float:
        return rss_mib(self.proc.pid)

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
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_mib(self) -> float:
        return 0.0


@dataclass
class WrkResult:
    requests: int
    rps: float
    p99_ms: float
    errors: int


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}  # wrk's latency units, in milliseconds


def _found(pattern: str, text: str) -> re.Match[str]:
    m = re.search(pattern, text)
    if m is None:
        sys.exit(f"bench: wrk printed no {pattern!r}:\n{text}")
    return m


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
    requests = int(_found(r"(\d+) requests in", out).group(1))
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * UNITS_MS[m.group(2)] if m else float("nan")
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


def save(name: str, data: object) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return path
