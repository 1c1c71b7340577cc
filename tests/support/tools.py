"""Tools outside Python that some tests need (Chromium, nginx, PHP, ...): found, or the
test skips, except in CI, where it fails so that a check cannot silently stop running."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = bool(os.environ.get("CI"))


def require_tool(path_or_name: str) -> str:
    """The tool's path; skip when it is missing, except in CI, where a skip would hide
    that a check never ran, so it fails instead."""
    found = shutil.which(path_or_name) or (path_or_name if os.path.exists(path_or_name) else None)
    if found is None:
        message = f"{path_or_name} is not installed"
        if IN_CI:
            pytest.fail(f"{message} (CI must install it: see .ci/run)")
        pytest.skip(message)
    return found


CHROMIUM = "/usr/bin/chromium"
# Chromium as this machine runs it (see the environment notes): no sandbox as root, no
# background traffic to hosts that the closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium, headless, driven by Playwright's Python package (no browser
    is downloaded). Skips where either is missing; fails instead in CI."""
    require_tool(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is not installed (requirements-dev.txt)")
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
