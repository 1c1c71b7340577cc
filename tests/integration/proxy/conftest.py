"""The stack every test in this folder talks to: backends a and b, an unlisted
outsider, and two proxies over the same sites (one clears a site's fallback cookies
when the user switches sites, one keeps them)."""

import re

import pytest

from filters.rules import SubsFilterRules
from handlers.config.sites import BackendSite
from tests.integration.proxy.backends import routes
from tests.support import free_port, start_backend, start_proxy


@pytest.fixture(scope="module")
def stack(loop_thread):
    holder = {}
    a = start_backend(loop_thread, "a", routes(lambda: holder["a"].url))
    b = start_backend(loop_thread, "b", routes(lambda: holder["b"].url))
    outsider = start_backend(loop_thread, "outsider")  # never in any site table
    holder.update(a=a, b=b)
    rule = SubsFilterRules(".", re.escape(a.url), "/.site.a")
    sites = {
        "a": BackendSite("a", a.url, a.netloc, [rule]),
        "b": BackendSite("b", b.url, b.netloc, []),
        "down": BackendSite("down", f"http://127.0.0.1:{free_port()}", None, []),
        "slow": BackendSite("slow", a.url, None, [], timeout=1),
        "aware": BackendSite("aware", b.url, None, [], knows_proxy=True),
    }
    proxy = start_proxy(loop_thread, sites, clear_old_cookies=True)
    keep = start_proxy(loop_thread, sites, clear_old_cookies=False)
    return {"a": a, "b": b, "outsider": outsider, "proxy": proxy, "keep": keep}
