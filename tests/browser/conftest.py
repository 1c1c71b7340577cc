"""The stack of the shim's browser tests: sites a and b behind the proxy and a Chromium
context whose ``.site`` cookie names b, the *other* site, so that a request that is not
mapped cannot reach the right backend by luck."""

from __future__ import annotations

import pytest
from tornado.web import Application

from handlers.config.sites import BackendSite
from tests.browser.shim_sites import Any, Echo, Site
from tests.support import chromium, serve_app, start_proxy


@pytest.fixture(scope="module")
def shimmed(loop_thread):
    sites = {"a": Site("a"), "b": Site("b")}

    for site in sites.values():
        app = Application([(r"/hook/ws", Echo, {"site": site}), (r".*", Any, {"site": site})])
        site.url = f"http://127.0.0.1:{serve_app(loop_thread, app)}"
    proxy = start_proxy(loop_thread, {n: BackendSite(n, s.url) for n, s in sites.items()})
    origin = f"http://127.0.0.1:{proxy.port}"
    with chromium() as browser:
        context = browser.new_context()
        # The cookie fallback points at b: only mapping (or the Referer) reaches a.
        context.add_cookies([{"name": ".site", "value": "b", "url": origin}])
        yield {"origin": origin, "context": context, "sites": sites, "browser": browser}
        context.close()
