"""web_proxy as the benchmarks run it: its settings file, its process, its sites' URLs.

The proxy's reserved names come from the proxy (filters/names.py), so that a benchmark
asks for what the proxy serves.
"""

from __future__ import annotations

import os
import sys
import tempfile

from harness import ROOT, Process

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from filters.names import HEALTH_PATH, SITE_COOKIE, SITE_MARK, SITE_PREFIX


def write_config(site_lines: str, extra: str = "") -> str:
    """A settings file for web_proxy holding ``site_lines`` as its forward_list body, and
    ``extra`` lines of Python after its own settings (``config.x = ...``)."""
    fd, path = tempfile.mkstemp(prefix="bench-settings-", suffix=".py")
    # As nginx here: no access log (WEB_PROXY_BENCH_ACCESS_LOG=1 measures its cost; the
    # lines go to the process's standard error, which the harness discards).
    access_log = '"-"' if os.environ.get("WEB_PROXY_BENCH_ACCESS_LOG") else "None"
    with os.fdopen(fd, "w") as f:
        f.write(
            "from settings import *\n"
            "config.LOGGING_LEVEL = 'WARNING'\n"
            f"config.access_log = {access_log}\n"
            f"{extra}"
            f"forward_list = {{\n{site_lines}\n}}\n"
        )
    return path


def start_web_proxy(port: int, config: str) -> Process:
    """proxy.py on 127.0.0.1:``port`` with the settings file ``config``, once it answers
    its health check."""
    return Process(
        [sys.executable, "proxy.py", f"--port={port}", "--address=127.0.0.1", f"--config={config}"],
        f"http://127.0.0.1:{port}{HEALTH_PATH}",
    )


def site_path(site: str, path: str) -> str:
    """The proxy's path for ``path`` on ``site``: with the site's prefix."""
    return f"{SITE_PREFIX}{site}{path}"


def site_cookie(site: str) -> dict[str, str]:
    """The request header that sends unprefixed requests to ``site``."""
    return {"Cookie": f"{SITE_COOKIE}={site}"}


def site_url(port: int, site: str, path: str) -> str:
    """The URL of ``path`` on ``site`` through the proxy on ``port``."""
    return f"http://127.0.0.1:{port}{site_path(site, path)}"


__all__ = ["SITE_MARK", "site_cookie", "site_path", "site_url", "start_web_proxy", "write_config"]
