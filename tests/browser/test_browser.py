"""The demo sites in a real browser, through the proxy: what users judge.

Drives the system Chromium (/usr/bin/chromium, from Debian) headless with Playwright's
Python package and ``executable_path``; no browser is downloaded. Screenshots of the
site list and of a demo page are written to a temporary folder, printed at the end.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit

import pytest

from demo import start_demo_sites
from tests.support import chromium, start_proxy


@pytest.fixture(scope="module")
def demo(loop_thread):
    async def start_sites():
        return start_demo_sites()

    forward_list = loop_thread.run(start_sites()).forward_list
    proxy = start_proxy(loop_thread, forward_list, clear_old_cookies=True)  # as settings.py ships
    origin = f"http://127.0.0.1:{proxy.port}"
    backends = [site.netloc for site in forward_list.values()]
    shots = tempfile.mkdtemp(prefix="web_proxy-screenshots-")
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        yield {
            "origin": origin,
            "context": context,
            "requests": requests,
            "backends": backends,
            "shots": shots,
        }
        context.close()
    print(f"\nscreenshots: {shots}")


def _open(demo, path):
    page = demo["context"].new_page()
    page.on("websocket", lambda ws: demo["requests"].append(ws.url))
    page.goto(demo["origin"] + path)
    page.wait_for_load_state("networkidle")
    return page


def test_demo_page_renders_completely(demo):
    page = _open(demo, "/.site.demo/")
    # Every image loaded, whether its URL was absolute or root-relative.
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.src, i.naturalWidth])")
    assert len(widths) == 3 and all(w > 0 for _, w in widths), widths
    # The stylesheet (an absolute URL) applied, including its url() background.
    color = page.eval_on_selector("h1", "h => getComputedStyle(h).color")
    assert color == "rgb(31, 95, 191)"
    background = page.eval_on_selector(".banner", "b => getComputedStyle(b).backgroundImage")
    assert "/.site.demo/static/banner.png" in background
    # The script fetched the backend's absolute URL and got its answer.
    page.wait_for_function("document.getElementById('time').textContent.match(/\\d+:\\d+:\\d+/)")
    page.screenshot(path=os.path.join(demo["shots"], "demo-page.png"), full_page=True)
    page.close()


def test_login_holds_across_pages(demo):
    page = _open(demo, "/.site.demo/login")
    page.fill("input[name=user]", "alice")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url == demo["origin"] + "/.site.demo/account"
    assert page.inner_text("#account") == "Welcome back, alice."
    page.click("text=About")  # a root-relative link
    page.wait_for_load_state("networkidle")
    assert page.url == demo["origin"] + "/.site.demo/about"
    assert page.inner_text("#user") == "alice"
    page.click("text=Account")  # a protocol-relative link
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#account") == "Welcome back, alice."
    page.close()


def test_redirect_and_switching_sites_and_back(demo):
    page = _open(demo, "/.site.demo/old-page")
    assert page.url == demo["origin"] + "/.site.demo/about"
    page.click("#other")
    page.wait_for_load_state("networkidle")
    assert page.url == demo["origin"] + "/.site.wiki/"
    assert page.inner_text("h1") == "Demo wiki"
    page.click("#other")
    page.wait_for_load_state("networkidle")
    assert page.url == demo["origin"] + "/.site.demo/"
    assert page.inner_text("h1") == "Demo intranet"
    page.close()


def test_two_tabs_on_two_sites_side_by_side(demo):
    a = _open(demo, "/.site.demo/")
    b = _open(demo, "/.site.wiki/")  # the cookie now names the wiki
    a.click("text=About")
    a.wait_for_load_state("networkidle")
    assert a.inner_text("#about").startswith("Served by Demo intranet")
    b.click("text=About")
    b.wait_for_load_state("networkidle")
    assert b.inner_text("#about").startswith("Served by Demo wiki")
    # The first tab still reaches its own site, images and all.
    a.reload()
    a.wait_for_load_state("networkidle")
    assert a.eval_on_selector("img.logo", "i => i.naturalWidth") > 0
    assert a.inner_text("#about").startswith("Served by Demo intranet")
    a.close()
    b.close()


def test_websocket_echo_and_event_stream_clock(demo):
    page = _open(demo, "/.site.demo/live")
    page.wait_for_function("document.getElementById('echo').textContent === 'echo: hello'")
    page.wait_for_function("document.getElementById('clock').textContent.includes(':')")
    first = page.inner_text("#clock")
    page.wait_for_function(
        f"document.getElementById('clock').textContent !== {first!r}", timeout=5000
    )
    page.close()


def test_gbk_page_reads_correctly(demo):
    page = _open(demo, "/.site.demo/gbk")
    assert page.inner_text("#gbk") == "你好，世界"
    assert page.eval_on_selector("#home", "a => a.getAttribute('href')") == "/.site.demo/"
    page.close()


def test_site_list_shows_sites_health_and_current(demo):
    page = _open(demo, "/.proxy/")
    page.wait_for_function(
        "[...document.querySelectorAll('.health')].every(b => b.textContent === 'up')"
    )
    names = page.eval_on_selector_all("[data-site]", "rows => rows.map(r => r.dataset.site)")
    assert names == ["demo", "wiki", "notes", "team"]
    assert page.inner_text(".current") == "current"
    page.screenshot(path=os.path.join(demo["shots"], "site-list.png"), full_page=True)
    page.close()


def test_error_pages_share_the_look_and_lead_back(demo):
    page = _open(demo, "/.site.nope/")
    assert page.inner_text(".code") == "404"
    page.click("text=All sites")
    page.wait_for_load_state("networkidle")
    assert page.url == demo["origin"] + "/.proxy/"
    page.close()


def test_every_request_went_to_the_proxy(demo):
    """Runs last in this module: by now the pages above have made all their requests."""
    assert demo["requests"], "no requests were recorded"
    assert any(u.startswith("ws://") for u in demo["requests"]), "the WebSocket was not seen"
    proxy = urlsplit(demo["origin"]).netloc
    elsewhere = [u for u in demo["requests"] if urlsplit(u).netloc != proxy]
    assert elsewhere == [], elsewhere
    for backend in demo["backends"]:
        assert not any(backend in u for u in demo["requests"])
