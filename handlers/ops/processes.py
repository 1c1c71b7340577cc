"""``--processes=N``: one command for N proxy processes sharing one listening socket.

The parent binds the socket, forks the children, and then only watches: it forwards
SIGTERM, SIGINT and SIGHUP to every child, and starts a new child in place of one that
exits while the parent is not stopping. Each child runs the ordinary single-process
server on the inherited socket (the kernel spreads connections over them), so a child's
SIGTERM drain and SIGHUP reload are the same as without ``--processes``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("web_proxy")

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def process_count(asked: int) -> int:
    """0 means one per CPU core."""
    return asked if asked > 0 else (os.cpu_count() or 1)


def run_processes(count: int, child: Callable[[], int]) -> int:
    """Run ``child()`` in ``count`` forked processes until SIGTERM or SIGINT; returns 0
    once every child has exited after it. ``child`` returns the child's exit code."""
    children: dict[int, float] = {}  # pid -> when it started
    stopping = False

    def spawn() -> None:
        # Signals wait while the child is made: one that arrived between the fork and the
        # child's own handlers would run the parent's forward() in the child.
        signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
        try:
            pid = os.fork()
            if pid:
                children[pid] = time.monotonic()
                return
            for sig in _FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
        code = 1  # the child, from here on
        try:
            code = child()
        except BaseException:
            log.exception("a proxy process failed")
        finally:
            os._exit(code)

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    for _ in range(count):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None:
            continue
        _forget_metrics(pid)
        if stopping:
            continue
        log.error(
            "proxy process %d ended (%s): starting another",
            pid,
            _how(status),
        )
        if time.monotonic() - started < 1:
            time.sleep(1)  # one that dies at once must not make the parent spin
        spawn()
    return 0


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _forget_metrics(pid: int) -> None:
    """prometheus_client's multiprocess mode: a dead process's live gauges go."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
