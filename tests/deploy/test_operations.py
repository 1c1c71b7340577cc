"""Operating the proxy like nginx, with real processes: SIGTERM drains, SIGHUP reloads,
--processes runs several, and the metrics and the access log tell what happened."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.web import Application
from tornado.websocket import websocket_connect

from handlers.config.sites import BackendSite
from tests.support import (
    ROOT,
    EchoSocket,
    free_port,
    require_tool,
    run_proxy_process,
    serve_app,
    spawn_proxy,
    start_backend,
    start_proxy,
)

ROOT_PATH = Path(ROOT)
DOWNLOAD = 4 << 20


async def _slow(handler):
    await asyncio.sleep(1.5)
    handler.finish(b"slow done")


async def _download(handler):
    handler.set_header("Content-Length", str(DOWNLOAD))
    piece = b"d" * (DOWNLOAD // 32)
    for _ in range(32):
        handler.write(piece)
        await handler.flush()
        await asyncio.sleep(0.05)
    handler.finish()


async def _events(handler):
    handler.set_header("Content-Type", "text/event-stream")
    for i in range(5):
        handler.write(f"data: event {i}\n\n")
        await handler.flush()
        await asyncio.sleep(0.3)
    handler.finish()


@pytest.fixture(scope="module")
def slow_backend(loop_thread):
    return start_backend(
        loop_thread, "slow", {"/slow": _slow, "/download": _download, "/events": _events}
    )


def _config(*sites: tuple[str, str], extra: str = "") -> str:
    lines = "".join(f'    "{n}": BackendSite("{n}", "{url}", None, []),\n' for n, url in sites)
    return f"from settings import *\n{extra}\nforward_list = {{\n{lines}}}\n"


def _get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _in_thread(results: dict, key: str, fn, *args) -> threading.Thread:
    def run():
        try:
            results[key] = fn(*args)
        except Exception as exc:  # recorded, and the test says which one failed
            results[key] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(
    slow_backend, loop_thread, tmp_path
):
    ws_port = free_port()

    serve_app(loop_thread, Application([(r"/ws", EchoSocket)]), ws_port)
    proc, port = run_proxy_process(
        _config(
            ("b", slow_backend.url),
            ("w", f"http://127.0.0.1:{ws_port}"),
            extra="config.shutdown_grace_seconds = 20",
        ),
        tmp_path,
    )

    async def open_ws():
        conn = await websocket_connect(f"ws://127.0.0.1:{port}/.site.w/ws")
        await conn.write_message("hi")
        assert await conn.read_message() == "hi"
        return conn

    ws = loop_thread.run(open_ws())
    seen_before = len(slow_backend.seen)
    results: dict = {}
    threads = [
        _in_thread(results, name, _get, port, f"/.site.b/{name}")
        for name in ("slow", "download", "events")
    ]
    deadline = time.monotonic() + 10
    while len(slow_backend.seen) < seen_before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # A new connection is refused (the listening socket is closed).
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)

    # The WebSocket is told the proxy is going away.
    async def read():
        return await ws.read_message()

    closed = loop_thread.run(read())
    assert closed is None and ws.close_code == 1001
    for thread in threads:
        thread.join(30)
    assert results["slow"] == (200, b"slow done")
    status, body = results["download"]
    assert status == 200 and len(body) == DOWNLOAD
    status, body = results["events"]
    assert status == 200 and body.decode().count("data: event") == 5
    assert proc.wait(30) == 0
    # The WebSocket session got its access log line when it ended.
    sessions = [line for line in (tmp_path / "proxy.log").read_text().splitlines()
                if '"WEBSOCKET /.site.w/ws"' in line]  # fmt: skip
    assert len(sessions) == 1 and " 1001 site=w " in sessions[0]
    assert "frames_in=1 frames_out=1" in sessions[0]


def test_sighup_reloads_sites_and_keeps_the_old_ones_when_the_file_is_broken(
    slow_backend, loop_thread, tmp_path
):
    other = start_backend(loop_thread, "other")
    proc, port = run_proxy_process(_config(("b", slow_backend.url)), tmp_path)
    settings = tmp_path / "settings_under_test.py"
    log_path = tmp_path / "proxy.log"
    try:
        assert _get(port, "/.site.c/x")[0] == 404
        results: dict = {}
        slow = _in_thread(results, "slow", _get, port, "/.site.b/slow")
        time.sleep(0.3)  # in flight
        settings.write_text(_config(("b", slow_backend.url), ("c", other.url)))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _get(port, "/.site.c/x")[0] != 200:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert json.loads(_get(port, "/.site.c/x")[1])["backend"] == "other"
        slow.join(30)
        assert results["slow"] == (200, b"slow done")  # not dropped by the reload

        for broken, why in (
            ("forward_list = {\n", "was never closed"),
            (_config(("b", slow_backend.url), extra="config.max_body_size = -1"), "max_body_size"),
        ):
            settings.write_text(broken)
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while why not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            refused = [line for line in log_path.read_text().splitlines() if why in line]
            assert len(refused) == 1 and "reload refused" in refused[0]
            # The previous configuration serves on: both sites still there.
            assert _get(port, "/.site.c/x")[0] == 200
            assert _get(port, "/.site.b/x")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_processes_spread_requests_and_replace_a_dead_one(slow_backend, tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text(_config(("b", slow_backend.url), extra='config.access_log_format = "json"'))
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
            assert _get(port, f"/.site.b/spread/{i}")[0] == 200

        def pids():
            records = [json.loads(line) for line in log_path.read_text().splitlines()
                       if line.startswith('{"type":"request"')]  # fmt: skip
            return {r["pid"] for r in records if r["target"].startswith("/.site.b/spread/")}

        deadline = time.monotonic() + 5
        while len(pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids() == first  # both processes served
        # Any process's /.proxy/metrics sums them all (prometheus_client's multiprocess mode).
        families = text_string_to_metric_families(_get(port, "/.proxy/metrics")[1].decode())
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
            assert _get(port, f"/.site.b/after/{i}")[0] == 200
        assert "ended (signal 9): starting another" in log_path.read_text()
        # SIGHUP to the parent reaches every process: a new site, served by both.
        settings.write_text(_config(("b", slow_backend.url), ("c", slow_backend.url),
                                    extra='config.access_log_format = "json"'))  # fmt: skip
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while log_path.read_text().count("reloaded") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        for i in range(20):
            assert _get(port, f"/.site.c/reloaded/{i}")[0] == 200
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


def test_metrics_and_access_log_match_the_requests_sent(loop_thread, tmp_path):
    backend = start_backend(loop_thread, "m")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    access = tmp_path / "access.log"
    proxy = start_proxy(
        loop_thread,
        {"m": BackendSite("m", backend.url, None, []), "dead": BackendSite("dead", dead, None, [])},
        access_log=str(access),
    )
    sent = []
    for i in range(5):
        sent.append(("GET", f"/.site.m/page/{i}", 200))
    sent += [("GET", "/.site.nope/x", 404), ("GET", "/.site.nope/y", 404)]
    sent.append(("GET", "/.site.m/" + "a" * 9000, 414))  # answered by the front door
    sent.append(("POST", "/.site.m/form", 200))
    sent.append(("GET", "/.site.dead/x", 502))
    for method, path, status in sent:
        response, _ = proxy.request(method, path, body=b"a=1" if method == "POST" else None)
        assert response.status == status
    response, body = proxy.request("GET", "/.proxy/metrics")
    assert response.status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0)

    assert value("web_proxy_requests_total", site="m", method="GET", status="2xx") == 5
    assert value("web_proxy_requests_total", site="m", method="POST", status="2xx") == 1
    assert value("web_proxy_requests_total", site="-", method="GET", status="4xx") == 3
    assert value("web_proxy_requests_total", site="dead", method="GET", status="5xx") == 1
    assert value("web_proxy_upstream_errors_total", site="dead", kind="connect") == 1
    assert value("web_proxy_upstream_seconds_count", site="m") == 6
    assert value("web_proxy_received_bytes_total", site="m") == 3
    assert value("web_proxy_requests_in_flight") == 1  # this scrape
    assert value("web_proxy_sent_bytes_total", site="m") > 0

    # One access log line per request, in nginx's combined format plus the timings.
    # Lines are written in batches, within half a second. (The scrape's own line may or
    # may not be there yet: it is written once it ends.)
    deadline = time.monotonic() + 5
    while True:
        text = access.read_text() if access.exists() else ""
        lines = [line for line in text.splitlines() if "/.proxy/metrics" not in line]
        if len(lines) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == len(sent)
    line_re = re.compile(
        r'^127\.0\.0\.1 - - \[[^\]]+\] "(\w+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "-" "[^"]*"'
        r" site=(\S+) rt=\d+\.\d{3} urt=(-|\d+\.\d{3})$"
    )
    for line, (method, path, status) in zip(lines, sent, strict=True):
        m = line_re.match(line)
        assert m, line
        assert (m.group(1), m.group(2), int(m.group(3))) == (method, path, status)
        site = {"/.site.m": "m", "/.site.d": "dead"}.get(path[:8], "-")
        assert m.group(5) == (site if status != 414 else "-")
        assert (m.group(6) == "-") == (status in (404, 414))

    # Only config.metrics_allow may read them; behind a trusted proxy, the browser's
    # address is the one that counts.
    response, _ = proxy.request(
        "GET", "/.proxy/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert response.status == 403


def test_systemd_units_verify(tmp_path):
    analyze = require_tool("systemd-analyze")
    for name in ("web_proxy.service", "web_proxy@.service"):
        text = (ROOT_PATH / "deploy" / "systemd" / name).read_text()
        # As installed: the project in /opt/web_proxy; here, this checkout.
        target = tmp_path / (name if "@" not in name else "web_proxy@9001.service")
        target.write_text(text.replace("/opt/web_proxy", str(ROOT_PATH)))
        result = subprocess.run(
            [analyze, "verify", "--man=no", str(target)], capture_output=True, text=True
        )
        problems = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if str(target) in line or "web_proxy" in line
        ]
        assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_access_log_is_written_in_batches_and_follows_logrotate(tmp_path):
    from handlers.ops.accesslog import AccessLog

    async def main():
        path = tmp_path / "access.log"
        access = AccessLog(str(path), "json")
        record = {"method": "GET", "target": "/x", "status": 200}
        access.request(record)
        assert not path.exists() or path.read_text() == ""  # buffered
        await asyncio.sleep(AccessLog.FLUSH_SECONDS + 0.2)
        assert path.read_text().count('"target":"/x"') == 1  # written within the period
        path.rename(tmp_path / "access.log.1")  # logrotate moves it away
        access.request({**record, "target": "/y"})
        access.close()  # shutdown writes what waits
        assert '"target":"/y"' in path.read_text()
        assert '"target":"/y"' not in (tmp_path / "access.log.1").read_text()

    asyncio.run(main())
