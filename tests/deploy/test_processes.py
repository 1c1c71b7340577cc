"""--processes: several processes share the port and the metrics, a dead one is replaced,
and SIGHUP to the parent reloads them all."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.operations import config_text, get
from tests.support import spawn_proxy


def test_processes_spread_requests_and_replace_a_dead_one(slow_backend, tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text(
        config_text(("b", slow_backend.url), extra='config.access_log_format = "json"')
    )
    log_path = tmp_path / "proxy.log"
    proc, port = spawn_proxy([f"--config={settings}", "--processes=2"], log=open(log_path, "w"))
    try:
        assert proc.poll() is None, log_path.read_text()

        def children():
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
            return {int(p) for p in out.stdout.split()}

        deadline = time.monotonic() + 10
        first = children()
        while len(first) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            first = children()
        assert len(first) == 2
        for i in range(60):
            assert get(port, f"/.site.b/spread/{i}")[0] == 200

        def pids():
            records = [json.loads(line) for line in log_path.read_text().splitlines()
                       if line.startswith('{"type":"request"')]  # fmt: skip
            return {r["pid"] for r in records if r["target"].startswith("/.site.b/spread/")}

        deadline = time.monotonic() + 5
        while len(pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids() == first  # both processes served
        # Any process's /.proxy/metrics sums them all (prometheus_client's multiprocess mode).
        families = text_string_to_metric_families(get(port, "/.proxy/metrics")[1].decode())
        served = sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == "web_proxy_requests_total" and sample.labels.get("site") == "b"
        )
        assert served == 60
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        after = children()
        while (len(after) < 2 or victim in after) and time.monotonic() < deadline:
            time.sleep(0.1)
            after = children()
        assert len(after) == 2 and victim not in after
        for i in range(10):
            assert get(port, f"/.site.b/after/{i}")[0] == 200
        assert "ended (signal 9): starting another" in log_path.read_text()
        # SIGHUP to the parent reaches every process: a new site, served by both.
        settings.write_text(config_text(("b", slow_backend.url), ("c", slow_backend.url),
                                    extra='config.access_log_format = "json"'))  # fmt: skip
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while log_path.read_text().count("reloaded") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        for i in range(20):
            assert get(port, f"/.site.c/reloaded/{i}")[0] == 200
    finally:
        left = children()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            for pid in [proc.pid, *left, *children()]:  # leave no process behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise
    assert code == 0
    assert not children()
