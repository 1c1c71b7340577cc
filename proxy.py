"""web_proxy: many web sites behind one address.

    python proxy.py --port=9001                   # serve the sites in settings.py
    python proxy.py --config=/etc/web_proxy.py    # ... or in another file of that shape
    python proxy.py --demo                        # built-in demo sites, no network

``/.site.<name>/path`` reaches backend <name>; a ``.site`` cookie keeps later requests
(without the prefix) on the same backend. See README.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Coroutine
from types import ModuleType
from typing import Any

from tornado.netutil import bind_sockets
from tornado.options import OptionParser

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from handlers.app import make_app, make_server  # noqa: E402
from handlers.config.options import (  # noqa: E402
    Options,
    check_sites,
    locate,
)
from handlers.config.sites import ConfigError, RuleError, SettingError, SiteTable, build_site_table  # noqa: E402  # noqa: E402
from handlers.ops.processes import process_count, run_processes  # noqa: E402
from handlers.ops.state import ProxyState  # noqa: E402

log = logging.getLogger("web_proxy")


def define_options(parser: OptionParser) -> None:
    parser.define("port", default=9001, type=int, help="TCP port to listen on")
    parser.define("address", default="", help="address to listen on (default: all interfaces)")
    parser.define("config", default=None, help="settings file to load instead of settings.py")
    parser.define("demo", default=False, type=bool, help="serve the built-in demo sites")
    parser.define(
        "processes",
        default=1,
        type=int,
        help="proxy processes sharing the port (0: one per CPU core); a process that dies"
        " is replaced, and SIGTERM/SIGHUP reach them all",
    )
    parser.define(
        "hash_password",
        default=False,
        type=bool,
        help="read a password (typed, or one line of standard input) and print the hash"
        " to put in config.users",
    )


def settings_path(path: str | None) -> str:
    """The settings file in use: ``--config``, else the settings.py beside proxy.py."""
    return os.path.abspath(path) if path else os.path.join(HERE, "settings.py")


def load_settings(path: str | None = None) -> ModuleType:
    """Load ``settings.py`` (or the file at ``path``) as a module; a file that fails to
    load becomes one ConfigError naming the file, the line and the reason."""
    path = settings_path(path)
    if not os.path.isfile(path):
        raise ConfigError(f"settings file {path!r} does not exist")
    name = "settings" if path == os.path.join(HERE, "settings.py") else "web_proxy_user_settings"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        line = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename == path
            ),
            None,
        )
        where = f"{path}, line {line}" if line else path
        kind = "" if isinstance(exc, (RuleError, ConfigError)) else f"{type(exc).__name__}: "
        raise ConfigError(f"{where}: {kind}{exc}") from None
    if name == "settings":
        sys.modules.setdefault("settings", module)
    for required in ("forward_list", "config"):
        if not hasattr(module, required):
            raise ConfigError(
                f"{path} defines no {required!r} (start it with 'from settings import *')"
            )
    return module


class ConfigProblem(Exception):
    """The configuration cannot be used; the message says where and why, in one line."""


def read_config(config_path: str | None, forward_list: Any = None) -> tuple[SiteTable, Options]:
    """The site table and options of the settings file, fully validated (ConfigProblem
    otherwise). ``forward_list`` replaces the file's sites (the demo's)."""
    try:
        settings = load_settings(config_path)
        # Options first: a bad Config value is reported even when the sites are fine.
        options = Options.from_config(settings.config)
        table = build_site_table(forward_list or settings.forward_list)
        check_sites(table, options)
    except SettingError as exc:
        path = settings_path(config_path)
        line = locate(path, exc.setting, exc.site)
        where = f"{path}, line {line}: " if line else ""
        raise ConfigProblem(f"{where}{exc}") from None
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    return table, options


async def serve(
    port: int,
    address: str,
    config_path: str | None,
    demo: bool,
    explicit_level: bool = False,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT, then drain (README: "Operating it"). SIGHUP
    re-reads the settings file. ``sockets``: already bound (--processes)."""
    demo_sites = None
    if demo:
        from demo import start_demo_sites

        demo_sites = start_demo_sites()
    forward_list = demo_sites.forward_list if demo_sites else None
    try:
        table, options = read_config(config_path, forward_list)
    except ConfigProblem as exc:
        print(f"web_proxy: configuration error: {exc}", file=sys.stderr)
        return 2
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
        print(
            f"web_proxy: cannot listen on {address or '*'}:{port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    shown = address or "127.0.0.1"
    print(f"web_proxy: serving {len(table)} site(s) on http://{shown}:{port}/", flush=True)
    if demo:
        print(f"web_proxy: open http://{shown}:{port}/.site.demo/ in a browser", flush=True)
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
    except ConfigProblem as exc:
        log.error("reload refused, still serving the previous configuration: %s", exc)
        return
    state.reload(table, options)
    log.warning("reloaded %s: %d site(s)", settings_path(config_path), len(table))


def print_password_hash() -> int:
    import getpass

    from handlers.door.login import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("web_proxy: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("web_proxy: an empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OptionParser()
    define_options(parser)
    # Tornado's logging options (--logging, --log_file_prefix, ...) come with it.
    from tornado.log import define_logging_options

    define_logging_options(parser)
    argv = list(argv if argv is not None else sys.argv)
    try:
        parser.parse_command_line(argv)
    except Exception as exc:  # tornado.options.Error: unknown or malformed option
        print(f"web_proxy: {exc}", file=sys.stderr)
        return 2
    if parser.hash_password:
        return print_password_hash()
    explicit_level = any(a.startswith("--logging") for a in argv[1:])
    if parser.processes == 1:
        return run(serve(parser.port, parser.address, parser.config, parser.demo, explicit_level))
    return serve_processes(parser, explicit_level)


def serve_processes(parser: OptionParser, explicit_level: bool) -> int:
    """--processes: the configuration checked once here, the socket bound here, then one
    ordinary server per forked process (handlers/ops/processes.py)."""
    if parser.demo:
        print("web_proxy: --demo runs in one process; leave out --processes", file=sys.stderr)
        return 2
    if parser.processes < 0:
        print("web_proxy: --processes must be 0 (one per core) or more", file=sys.stderr)
        return 2
    try:
        read_config(parser.config)
    except ConfigProblem as exc:
        print(f"web_proxy: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        sockets = bind_sockets(parser.port, parser.address or None)
    except OSError as exc:
        where = f"{parser.address or '*'}:{parser.port}"
        print(f"web_proxy: cannot listen on {where}: {exc.strerror}", file=sys.stderr)
        return 1
    # Each process keeps its metrics in files here; a scrape of any one sums them all.
    # (An operator's own directory is used as given and left in place.)
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = given or tempfile.mkdtemp(prefix="web_proxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    count = process_count(parser.processes)
    print(f"web_proxy: starting {count} processes", flush=True)

    def child() -> int:
        args = (parser.port, parser.address, parser.config, False, explicit_level, sockets)
        return run(serve(*args))

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


if __name__ == "__main__":
    sys.exit(main())
