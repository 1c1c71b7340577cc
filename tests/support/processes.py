"""Processes for the tests: proxy.py as users run it, other servers, and their memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from tests.support.servers import free_port

# The repository, where proxy.py is.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spawn_proxy(args: list[str], timeout: float = 15, log: Any = None) -> tuple[Any, int]:
    """Start proxy.py (with ``args`` after --port and --address) in a process of its
    own; return (Popen, port) once it serves, or as soon as it has exited. Its output
    goes to pipes, or to the open file ``log`` (for long runs: a pipe nobody reads
    would fill up and stall the proxy)."""
    port = free_port()
    command = [sys.executable, os.path.join(ROOT, "proxy.py"), f"--port={port}"]
    proc = subprocess.Popen(
        [*command, "--address=127.0.0.1", *args],
        cwd="/",
        stdout=log or subprocess.PIPE,
        stderr=log or subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, port
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.proxy/health", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("proxy did not start")


def run_proxy_process(config_text: str, tmp_path: Any) -> tuple[Any, int]:
    """proxy.py as users run it, in its own process (so that its memory can be
    measured), serving the settings in ``config_text``. Returns (Popen, port)."""
    path = tmp_path / "settings_under_test.py"
    path.write_text(config_text)
    log_path = tmp_path / "proxy.log"
    proc, port = spawn_proxy([f"--config={path}"], log=open(log_path, "w"))
    if proc.poll() is not None:
        raise AssertionError(f"proxy exited: {log_path.read_text()}")
    return proc, port


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Samples a process's resident memory every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return
            self._halt.wait(0.05)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join(2)

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


def spawn_server(
    command: list[str],
    ready_url: str,
    log_path: Any,
    *,
    env: dict[str, str] | None = None,
    cwd: Any = None,
    timeout: float = 60,
) -> Any:
    """Start a server process (its output to ``log_path``) and return its Popen once
    ``ready_url`` answers; if it exits or stays silent, fail with its log."""
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(ready_url, timeout=2)
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                with open(log_path) as log:
                    raise AssertionError(log.read()) from None
            time.sleep(0.25)
