"""Two applications in two tabs, both logged in, through the proxy, in the system Chromium.

``notes`` is a single-page app that builds every URL in script from ``"baseUrl": "/"``;
``team`` is installed under ``/team/`` with a ``Path=/team/`` session cookie of the same
name (``sid``). The checks are made on the backends' own request logs, not on the
pages: every request of each tab reached its own backend, as its logged-in user, and
none needed the ``.site`` cookie to get there.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest

from demo import start_demo_sites
from tests.support import chromium, start_proxy

ROUNDS = 30


@pytest.fixture(scope="module")
def apps(loop_thread):
    async def start_sites():
        return start_demo_sites()

    demo = loop_thread.run(start_sites())
    # With the cookie clearing that settings.py ships: switching sites must not log
    # anybody out, since each site's cookies are kept apart.
    proxy = start_proxy(loop_thread, demo.forward_list, clear_old_cookies=True)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 900, "height": 700})
        yield {
            "origin": f"http://127.0.0.1:{proxy.port}",
            "context": context,
            "apps": demo.apps,
            "backends": [s.netloc for s in demo.forward_list.values()],
        }
        context.close()


class Tab:
    """A page and every request and WebSocket it made."""

    def __init__(self, apps, path):
        self.page = apps["context"].new_page()
        self.urls: list[str] = []
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on("websocket", lambda ws: self.urls.append(ws.url))
        self.page.goto(apps["origin"] + path)

    def front(self):
        """The page, brought to the front as a user switching tabs would (a background
        tab's animation frames, which Playwright's waits poll on, are paused)."""
        self.page.bring_to_front()
        return self.page

    def paths(self) -> list[str]:
        return [urlsplit(u).path for u in self.urls]


def backend_paths(app, methods=("GET", "POST", "HEAD", "WS")):
    return [s.path for s in app.log if s.method in methods]


def test_two_tabs_two_sites_thirty_rounds(apps):
    notes_app, team_app = apps["apps"]["notes"], apps["apps"]["team"]
    notes_app.log.clear()
    team_app.log.clear()

    a = Tab(apps, "/.site.notes/")
    a.page.wait_for_selector("#login:not([hidden])")
    a.page.fill("#name", "alice")
    a.page.click("#login button")
    a.page.wait_for_function("document.getElementById('editor').textContent.includes('chunk')")
    a.page.wait_for_function("document.getElementById('ws').textContent === 'open'")

    # Opening the second site switches the .site cookie (and, as configured, clears
    # the first site's fallback copies): the first tab must not notice.
    b = Tab(apps, "/.site.team/")
    assert b.page.url.endswith("/.site.team/team/")
    b.page.click("#signin")
    b.page.fill("#login input[name=name]", "bob")
    b.page.click("#login button")
    b.page.wait_for_selector("#post")
    assert b.page.inner_text("#user") == "bob"

    for i in range(1, ROUNDS + 1):
        a.front()
        # notes: an API call (fetch POST with the XSRF header from document.cookie),
        # then the list through XHR.
        a.page.fill("#text", f"note {i}")
        a.page.click("#add")
        a.page.wait_for_function(f"document.body.dataset.notes === '{i}'")
        b.front()
        # team: a form post (a navigation), then the page's own AJAX call.
        b.page.fill("#post input[name=text]", f"post {i}")
        b.page.click("#post button")
        b.page.wait_for_function(f"document.querySelectorAll('#posts li').length === {i}")
        b.page.wait_for_function(f"document.getElementById('count').textContent === '{i}'")
        a.front()
        # notes: a WebSocket message, answered for the logged-in user.
        pongs = int(a.page.evaluate("document.body.dataset.pongs || '0'"))
        a.page.click("#ping")
        a.page.wait_for_function(f"Number(document.body.dataset.pongs || 0) > {pongs}")
        assert a.page.inner_text("#pong").startswith("pong for alice: ping")
        b.front()
        # team: navigations by links.
        b.page.click("nav a:text-is('About')")
        b.page.wait_for_selector("#about")
        b.page.click("nav a:text-is('Board')")
        b.page.wait_for_selector("#posts")
        if i % 10 == 0:
            # notes: a reload navigates, and switches the cookie back to notes; team's
            # next round must not care either.
            a.front()
            a.page.reload()
            a.page.wait_for_function("document.body.dataset.ready === '1'")
            a.page.wait_for_function(f"document.body.dataset.notes === '{i}'")
            a.page.wait_for_function("document.getElementById('ws').textContent === 'open'")

    # Both sessions survived every round.
    assert a.page.inner_text("#user") == "alice"
    assert b.page.inner_text("#user") == "bob"
    assert notes_app.items == [f"note {i}" for i in range(1, ROUNDS + 1)]
    assert team_app.items == [f"post {i}" for i in range(1, ROUNDS + 1)]

    # Every request each tab made carried its site's prefix: none needed the cookie
    # fallback, and none went to a backend's own port.
    origin = urlsplit(apps["origin"]).netloc
    for tab, prefix in ((a, "/.site.notes/"), (b, "/.site.team/")):
        assert all(urlsplit(u).netloc == origin for u in tab.urls)
        unprefixed = [p for p in tab.paths() if not p.startswith((prefix, "/.proxy/"))]
        assert unprefixed == [], unprefixed

    # From the backends' side: each received exactly its own tab's requests ...
    def sent(tab, prefix):
        return Counter(p[len(prefix) - 1 :] for p in tab.paths() if p.startswith(prefix))

    assert Counter(backend_paths(notes_app)) == sent(a, "/.site.notes/")
    assert Counter(backend_paths(team_app)) == sent(b, "/.site.team/")

    # ... and every one after signing in came with the session: nothing was refused
    # for want of a cookie, and no WebSocket message went unauthenticated.
    def after_login(app, path):
        first = next(i for i, s in enumerate(app.log) if s.path == path and s.method == "POST")
        return app.log[first + 1 :]

    assert {s.user for s in after_login(notes_app, "/api/login")} == {"alice"}
    assert {s.user for s in after_login(team_app, "/team/login")} == {"bob"}
    pings = [s for s in notes_app.log if s.method == "WS-MESSAGE"]
    assert len(pings) == ROUNDS and {s.user for s in pings} == {"alice"}
    assert len([s for s in notes_app.log if s.method == "WS"]) == 1 + ROUNDS // 10
    a.page.close()
    b.page.close()


def test_sub_path_app_logs_in_posts_counts_and_logs_out(apps):
    team_app = apps["apps"]["team"]
    tab = Tab(apps, "/.site.team/team/login")
    tab.page.fill("#login input[name=name]", "carol")
    tab.page.click("#login button")
    tab.page.wait_for_selector("#post")
    assert tab.page.url == apps["origin"] + "/.site.team/team/"
    assert tab.page.inner_text("#user") == "carol"
    before = len(team_app.items)
    tab.page.fill("#post input[name=text]", "from carol")
    tab.page.click("#post button")
    tab.page.wait_for_function(f"document.getElementById('count').textContent === '{before + 1}'")
    tab.page.click("#recount")  # the page's own fetch("/team/api/count") again
    tab.page.wait_for_function(f"document.getElementById('count').textContent === '{before + 1}'")
    assert team_app.log[-1].path == "/team/api/count" and team_app.log[-1].user == "carol"
    # The session cookie lives under the site's prefix, not where another app's would.
    cookies = {(c["name"], c["path"]) for c in apps["context"].cookies()}
    assert ("sid", "/.site.team/team/") in cookies
    assert (".site~team~sid", "/team/") in cookies
    tab.page.click("#logout button")
    tab.page.wait_for_selector("#signin")
    assert tab.page.inner_text("#user") == "signed out"
    # Signing out deleted both copies of the cookie.
    cookies = {(c["name"], c["path"]) for c in apps["context"].cookies()}
    assert ("sid", "/.site.team/team/") not in cookies
    assert (".site~team~sid", "/team/") not in cookies
    tab.page.close()


def test_single_page_app_signs_out_and_its_cookies_go(apps):
    tab = Tab(apps, "/.site.notes/")
    tab.page.wait_for_function("document.body.dataset.ready === '1'")
    if tab.page.is_visible("#login"):
        tab.page.fill("#name", "dave")
        tab.page.click("#login button")
        tab.page.wait_for_function("document.getElementById('ws').textContent === 'open'")
    # document.cookie shows the site's own script-readable cookie by its own name, and
    # none of the proxy's.
    shown = tab.page.evaluate("document.cookie")
    assert shown.startswith("xsrf=") and "~" not in shown and ".site" not in shown
    tab.page.click("#logout")
    tab.page.wait_for_selector("#login:not([hidden])")
    names = {c["name"] for c in apps["context"].cookies() if "notes" in c["name"] + c["path"]}
    assert names == set(), names
    tab.page.close()
