"""A stock JupyterLab (from PyPI) behind the proxy, in the system Chromium, beside the same
notebook opened directly: real software nobody here wrote.

JupyterLab is the single-page app of the issue that made the shim: it builds its API,
kernel WebSocket and chunk URLs from ``"baseUrl": "/"`` in a JSON page config. Through
``/.site.lab/`` it must run a cell as it does directly, keep running cells after another
tab has switched the ``.site`` cookie to another site, and send every request with its
prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from urllib.parse import urlsplit

import pytest

from demo import start_demo_sites
from handlers.config.sites import BackendSite
from tests.support import IN_CI, chromium, free_port, spawn_server, start_proxy

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["print(6 * 7)"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _jupyter_lab() -> str:
    found = shutil.which("jupyter-lab", path=os.path.dirname(sys.executable))
    if found is None:
        message = "jupyterlab is not installed (requirements-dev.txt)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory, loop_thread):
    command = _jupyter_lab()
    home = tmp_path_factory.mktemp("jupyter")
    (home / "notebooks").mkdir()
    (home / "notebooks" / "hello.ipynb").write_text(json.dumps(NOTEBOOK))
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    direct = f"http://127.0.0.1:{port}"
    # No token or password: it listens on loopback only, for this test alone.
    server = spawn_server(
        [
            command,
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={home / 'notebooks'}",
        ],
        f"{direct}/api/status",
        home / "jupyter.log",
        env=env,
    )

    async def start_sites():
        return start_demo_sites()

    sites = dict(loop_thread.run(start_sites()).forward_list)
    sites["lab"] = BackendSite("lab", direct)
    proxy = start_proxy(loop_thread, sites, clear_old_cookies=True)
    try:
        with chromium() as browser:
            yield {
                "direct": direct,
                "origin": f"http://127.0.0.1:{proxy.port}",
                "browser": browser,
            }
    finally:
        server.terminate()
        server.wait(10)


def _run_cell(page, code: str, expected: str) -> None:
    page.bring_to_front()
    page.click(".jp-Cell .jp-InputArea-editor")
    page.keyboard.press("Control+a")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        f"document.querySelector('.jp-Notebook').innerText.includes({expected!r})",
        timeout=60_000,
    )


def _open_notebook(context, url: str, seen: list[str] | None = None):
    page = context.new_page()
    if seen is not None:
        page.on("websocket", lambda ws: seen.append(ws.url))
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # The kernel is ready when the status bar says so.
    page.wait_for_function(
        "document.body.innerText.includes('Python 3 (ipykernel) | Idle')", timeout=60_000
    )
    return page


def _failures(context, prefix: str) -> list[tuple[str, str, int]]:
    """Collects the (method, path without prefix, status) of every failed response."""
    failed: list[tuple[str, str, int]] = []

    def seen(response):
        if response.status >= 400 and "/.site.notes/" not in response.url:
            path = urlsplit(response.url).path.removeprefix(prefix)
            failed.append((response.request.method, path, response.status))

    context.on("response", seen)
    return failed


def test_notebook_runs_directly_and_through_the_proxy_alike(lab):
    # Directly: the reference.
    context = lab["browser"].new_context(viewport={"width": 1200, "height": 800})
    failed_direct = _failures(context, "")
    page = _open_notebook(context, lab["direct"] + "/lab/tree/hello.ipynb")
    _run_cell(page, "print(6 * 7)", "42")
    page.wait_for_timeout(1500)  # the layout is saved a moment after a change
    context.close()

    # Through the proxy, with a second site opened in another tab half-way.
    context = lab["browser"].new_context(viewport={"width": 1200, "height": 800})
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    failed_proxied = _failures(context, "/.site.lab")
    page = _open_notebook(context, lab["origin"] + "/.site.lab/lab/tree/hello.ipynb", urls)
    _run_cell(page, "print(6 * 7)", "42")
    other = context.new_page()
    other.goto(lab["origin"] + "/.site.notes/")  # switches the .site cookie to notes
    other.wait_for_load_state()
    assert {c["value"] for c in context.cookies() if c["name"] == ".site"} == {"notes"}
    _run_cell(page, "print(6 * 8)", "48")  # the kernel's WebSocket and API calls, still lab's
    page.wait_for_timeout(1500)
    context.close()
    # No request the app made failed through the proxy that did not fail directly (its
    # layout saves: PUTs that the server's Origin check refuses unless Origin is mapped).
    assert failed_proxied == failed_direct

    origin = urlsplit(lab["origin"]).netloc
    assert all(urlsplit(u).netloc == origin for u in urls)
    lab_urls = [u for u in urls if "/.site.notes/" not in u]
    unprefixed = [
        u for u in lab_urls if not urlsplit(u).path.startswith(("/.site.lab/", "/.proxy/"))
    ]
    assert unprefixed == []
    sockets = [u for u in urls if u.startswith("ws:")]
    assert any("/.site.lab/api/kernels/" in u for u in sockets), sockets
    assert len(lab_urls) > 50  # the app's own requests were all seen
