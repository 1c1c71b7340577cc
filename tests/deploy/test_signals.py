"""Signals to a proxy process, as nginx takes them: SIGTERM lets requests in flight finish
(and tells WebSockets it is going away) and refuses new ones; SIGHUP reloads the sites,
or keeps the old ones when the new file is broken."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
from tornado.web import Application
from tornado.websocket import websocket_connect

from tests.deploy.operations import DOWNLOAD, config_text, get, in_thread
from tests.support import EchoSocket, free_port, run_proxy_process, serve_app, start_backend


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(
    slow_backend, loop_thread, tmp_path
):
    ws_port = free_port()

    serve_app(loop_thread, Application([(r"/ws", EchoSocket)]), ws_port)
    proc, port = run_proxy_process(
        config_text(
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
        in_thread(results, name, get, port, f"/.site.b/{name}")
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
    proc, port = run_proxy_process(config_text(("b", slow_backend.url)), tmp_path)
    settings = tmp_path / "settings_under_test.py"
    log_path = tmp_path / "proxy.log"
    try:
        assert get(port, "/.site.c/x")[0] == 404
        results: dict = {}
        slow = in_thread(results, "slow", get, port, "/.site.b/slow")
        time.sleep(0.3)  # in flight
        settings.write_text(config_text(("b", slow_backend.url), ("c", other.url)))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while get(port, "/.site.c/x")[0] != 200:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert json.loads(get(port, "/.site.c/x")[1])["backend"] == "other"
        slow.join(30)
        assert results["slow"] == (200, b"slow done")  # not dropped by the reload

        for broken, why in (
            ("forward_list = {\n", "was never closed"),
            (
                config_text(("b", slow_backend.url), extra="config.max_body_size = -1"),
                "max_body_size",
            ),
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
            assert get(port, "/.site.c/x")[0] == 200
            assert get(port, "/.site.b/x")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
