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
import signal
import sys
import traceback
from collections.abc import Coroutine
from types import ModuleType
from typing import Any

from tornado.options import OptionParser

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from handlers import Options, build_site_table, make_app, make_server  # noqa: E402
from handlers.options import check_sites, locate  # noqa: E402
from handlers.sites import ConfigError, RuleError, SettingError  # noqa: E402

log = logging.getLogger("web_proxy")


def define_options(parser: OptionParser) -> None:
    parser.define("port", default=9001, type=int, help="TCP port to listen on")
    parser.define("address", default="", help="address to listen on (default: all interfaces)")
    parser.define("config", default=None, help="settings file to load instead of settings.py")
    parser.define("demo", default=False, type=bool, help="serve the built-in demo sites")
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


async def serve(
    port: int, address: str, config_path: str | None, demo: bool, explicit_level: bool = False
) -> int:
    try:
        settings = load_settings(config_path)
        forward_list = settings.forward_list
        demo_servers = []
        if demo:
            from demo import start_demo_sites

            demo_sites = start_demo_sites()
            forward_list, demo_servers = demo_sites.forward_list, demo_sites.servers
        # Options first: a bad Config value is reported even when the sites are fine.
        options = Options.from_config(settings.config)
        table = build_site_table(forward_list)
        check_sites(table, options)
    except SettingError as exc:
        path = settings_path(config_path)
        line = locate(path, exc.setting, exc.site)
        where = f"{path}, line {line}: " if line else ""
        print(f"web_proxy: configuration error: {where}{exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"web_proxy: configuration error: {exc}", file=sys.stderr)
        return 2
    if not explicit_level:
        logging.getLogger().setLevel(options.logging_level)
    app = make_app(table, options)
    server = make_server(app, options)
    if demo and not address:
        address = "127.0.0.1"  # the demo is for this machine's browser only
    try:
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
    await stop.wait()
    log.info("shutting down")
    server.stop()
    for demo_server in demo_servers:
        demo_server.stop()
    # Let requests in flight finish, briefly; supervisor's stopwaitsecs bounds us anyway.
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=5)
    except TimeoutError:
        pass
    return 0


def print_password_hash() -> int:
    import getpass

    from handlers.login import hash_password

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
    return run(serve(parser.port, parser.address, parser.config, parser.demo, explicit_level))


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
