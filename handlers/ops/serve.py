"""Running the proxy: listen, serve until SIGTERM or SIGINT, then drain; SIGHUP re-reads
the settings file; ``--processes`` forks ordinary servers on one shared socket.
docs/operations.md tells the operator's side."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Coroutine
from typing import Any

from tornado.netutil import bind_sockets

from filters.names import SITE_PREFIX
from handlers.app import make_app, make_server
from handlers.config.errors import ConfigError
from handlers.config.load import read_config, settings_path
from handlers.ops.processes import process_count, run_processes
from handlers.ops.state import ProxyState

log = logging.getLogger("web_proxy")


def config_error(exc: ConfigError) -> int:
    """A configuration that cannot be used: one line on standard error, exit status 2."""
    print(f"web_proxy: configuration error: {exc}", file=sys.stderr)
    return 2


def cannot_listen(address: str | None, port: int, exc: OSError) -> int:
    """Say why the port cannot be had; the exit status for it."""
    print(f"web_proxy: cannot listen on {address or '*'}:{port}: {exc.strerror}", file=sys.stderr)
    return 1


async def serve(
    port: int,
    address: str,
    config_path: str | None,
    demo: bool,
    explicit_level: bool = False,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT, then drain. ``explicit_level``: --logging was given,
    so LOGGING_LEVEL is not applied. ``sockets``: already bound (--processes)."""
    demo_sites = None
    if demo:
        from demo import start_demo_sites

        demo_sites = start_demo_sites()
    forward_list = demo_sites.forward_list if demo_sites else None
    try:
        table, options = read_config(config_path, forward_list)
    except ConfigError as exc:
        return config_error(exc)
    if not explicit_level:
        logging.getLogger().setLevel(options.logging_level)
    app = make_app(table, options)
    state: ProxyState = app.settings["state"]
    server = make_server(app, options)
    if demo and not address:
        address = "127.0.0.1"  # the demo is for this machine's browser only
    try:
        if sockets is not None:
            server.add_sockets(sockets)
        else:
            server.listen(port, address or "")
    except OSError as exc:
        return cannot_listen(address, port, exc)
    shown = address or "127.0.0.1"
    print(f"web_proxy: serving {len(table)} site(s) on http://{shown}:{port}/", flush=True)
    if demo:
        print(f"web_proxy: open http://{shown}:{port}{SITE_PREFIX}demo/ in a browser", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload, state, config_path, forward_list)
    await stop.wait()
    grace = state.context.options.shutdown_grace_seconds
    log.warning(
        "shutting down: no new connections; %d request(s) in flight get up to %.0f s",
        state.in_flight,
        grace,
    )
    server.stop()  # the listening sockets close: new connections are refused
    await state.drain(grace)
    # Connections left are idle keep-alive ones. A client (nginx) that still sends on one
    # is answered "Connection: close", so under load they close one by one; what is still
    # open after a few seconds (no load: nobody is about to send) is closed.
    linger_until = time.monotonic() + min(3.0, grace)
    while state.door and state.door.connections and time.monotonic() < linger_until:
        await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=5)
    except TimeoutError:
        pass
    for demo_server in demo_sites.servers if demo_sites else []:
        demo_server.stop()
    state.access_log.close()  # the lines still buffered
    log.warning("stopped")
    return 0


def reload(state: ProxyState, config_path: str | None, forward_list: Any) -> None:
    """SIGHUP: the settings file again, validated whole; used for new requests only if
    it is good, else the configuration in force stays and one line says why."""
    try:
        table, options = read_config(config_path, forward_list)
    except ConfigError as exc:
        log.error("reload refused, still serving the previous configuration: %s", exc)
        return
    state.reload(table, options)
    log.warning("reloaded %s: %d site(s)", settings_path(config_path), len(table))


def serve_processes(
    processes: int, port: int, address: str, config_path: str | None, explicit_level: bool
) -> int:
    """--processes: the configuration checked once here, the socket bound here, then one
    ordinary server per forked process (handlers/ops/processes.py)."""
    if processes < 0:
        print("web_proxy: --processes must be 0 (one per core) or more", file=sys.stderr)
        return 2
    try:
        read_config(config_path)
    except ConfigError as exc:
        return config_error(exc)
    try:
        sockets = bind_sockets(port, address or None)
    except OSError as exc:
        return cannot_listen(address, port, exc)
    # Each process keeps its metrics in files here; a scrape of any one sums them all.
    # (An operator's own directory is used as given and left in place.)
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = given or tempfile.mkdtemp(prefix="web_proxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    count = process_count(processes)
    print(f"web_proxy: starting {count} processes", flush=True)

    def child() -> int:
        return run(serve(port, address, config_path, False, explicit_level, sockets))

    try:
        return run_processes(count, child)
    finally:
        if not given:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run the proxy on uvloop where it is installed (it serves the same requests for
    less CPU: bench/small_page.py), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    if os.environ.get("WEB_PROXY_LOOP") == "asyncio":
        return asyncio.run(main)
    return uvloop.run(main)


__all__ = ["config_error", "reload", "run", "serve", "serve_processes"]
