"""What the tests share: servers on loopback (servers), processes such as proxy.py itself
(processes), and the tools outside Python that some suites need (tools)."""

from tests.support.processes import (
    ROOT,
    RssSampler,
    rss_mib,
    run_proxy_process,
    spawn_proxy,
    spawn_server,
)
from tests.support.properties import examples
from tests.support.servers import (
    Backend,
    EchoSocket,
    LoopThread,
    Proxy,
    RecordingHandler,
    Seen,
    free_port,
    serve_app,
    serve_raw,
    start_backend,
    start_proxy,
)
from tests.support.tools import CHROMIUM, CHROMIUM_ARGS, IN_CI, chromium, require_tool

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "IN_CI",
    "ROOT",
    "Backend",
    "EchoSocket",
    "LoopThread",
    "Proxy",
    "RecordingHandler",
    "RssSampler",
    "Seen",
    "chromium",
    "examples",
    "free_port",
    "require_tool",
    "rss_mib",
    "run_proxy_process",
    "serve_app",
    "serve_raw",
    "spawn_proxy",
    "spawn_server",
    "start_backend",
    "start_proxy",
]
