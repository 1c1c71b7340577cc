"""The login page and a site list filtered by client network, in the system Chromium."""

from __future__ import annotations

import os
import tempfile

from handlers.config.sites import BackendSite
from handlers.door.login import hash_password
from tests.support import chromium, start_backend, start_proxy


def test_login_then_a_site_list_of_two_of_three_sites(loop_thread):
    backend = start_backend(loop_thread, "b")
    sites = {
        "wiki": BackendSite("wiki", backend.url, description="The team wiki"),
        "tickets": BackendSite("tickets", backend.url, description="Issue tracker"),
        # Only for clients on the office network: the browser here is 127.0.0.1.
        "payroll": BackendSite("payroll", backend.url, client_allow=["10.0.0.0/8"]),
    }
    proxy = start_proxy(
        loop_thread,
        sites,
        users={"alice": hash_password("correct horse")},
        cookie_secret="a test secret, long enough",
    )
    origin = f"http://127.0.0.1:{proxy.port}"
    shots = tempfile.mkdtemp(prefix="web_proxy-access-")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 600})
        page.goto(origin + "/.proxy/")
        assert page.url.startswith(origin + "/.proxy/login")
        assert page.inner_text("h1") == "Log in"
        page.screenshot(path=os.path.join(shots, "login.png"))
        page.fill("input[name=name]", "alice")
        page.fill("input[name=password]", "wrong")
        page.click("button")
        assert page.inner_text("#error") == "Wrong name or password."
        page.fill("input[name=password]", "correct horse")
        page.click("button")
        page.wait_for_selector("[data-site]")
        names = page.eval_on_selector_all("[data-site]", "rows => rows.map(r => r.dataset.site)")
        assert names == ["wiki", "tickets"]
        assert page.inner_text("#user") == "alice"
        page.screenshot(path=os.path.join(shots, "site-list.png"))
        # The hidden site is refused outright, and logging out locks the door again.
        response = page.goto(origin + "/.site.payroll/")
        assert response.status == 403
        page.goto(origin + "/.proxy/")
        page.click(".who button")
        assert page.url.startswith(origin + "/.proxy/login")
        page.close()
    print(f"\nscreenshots: {shots}")
