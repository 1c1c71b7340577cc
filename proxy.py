"""web_proxy: many web sites behind one address.

    python proxy.py --port=9001                   # serve the sites in settings.py
    python proxy.py --config=/etc/web_proxy.py    # ... or in another file of that shape
    python proxy.py --demo                        # built-in demo sites, no network

``/.site.<name>/path`` reaches backend <name>; a ``.site`` cookie keeps later requests
(without the prefix) on the same backend. See README.md.
"""

from __future__ import annotations

import os
import sys

from tornado.options import OptionParser

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from handlers.ops.serve import run, serve, serve_processes  # noqa: E402


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
    if parser.demo:
        print("web_proxy: --demo runs in one process; leave out --processes", file=sys.stderr)
        return 2
    args = (parser.processes, parser.port, parser.address, parser.config, explicit_level)
    return serve_processes(*args)


if __name__ == "__main__":
    sys.exit(main())
